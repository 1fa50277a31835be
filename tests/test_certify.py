"""Interval bounds certify filters that cannot fire on any input in a box."""

import pytest
import torch
import torchvision
from torch import fx

from sparsitylib.certify import CertificationError, certify_dead, normalized_box, propagate, _box
from sparsitylib.filters import trace
from sparsitylib.prune import max_logit_difference, prune_dead
from sparsitylib.sparsity import measure_sparsity

from .planted import planted_network
from .test_filters import calibrated


class Recorder(fx.Interpreter):
    def run_node(self, node):
        value = super().run_node(node)
        self.values[node.name] = value.clone() if torch.is_tensor(value) else value  # before an in-place ReLU acts
        return value


@pytest.mark.parametrize("build,shape", [
    (planted_network, (1, 16, 16)),
    (lambda: calibrated(torchvision.models.resnet18(num_classes=10), (3, 32, 32)), (3, 32, 32)),
    (lambda: calibrated(torchvision.models.mobilenet_v2(num_classes=10), (3, 32, 32)), (3, 32, 32)),
    # Hardswish, squeeze-excite gates (Hardsigmoid, and sigmoid with SiLU) multiplying their input, GELU after LayerNorm
    (lambda: calibrated(torchvision.models.mobilenet_v3_small(num_classes=10), (3, 32, 32)), (3, 32, 32)),
    (lambda: calibrated(torchvision.models.efficientnet_b0(num_classes=10), (3, 32, 32)), (3, 32, 32)),
    (lambda: torchvision.models.convnext_tiny(num_classes=10), (3, 32, 32)),
])
def test_every_value_of_every_input_in_the_box_lies_within_its_bounds(build, shape):
    torch.manual_seed(0)
    model = build().eval().double()
    graph = trace(model)
    env, notes = propagate(graph, _box(-1.0, 2.0, shape))
    assert notes == []
    inputs = torch.rand(16, *shape, dtype=torch.float64) * 3 - 1
    inputs[0], inputs[1] = -1.0, 2.0  # the box's corners
    recorder = Recorder(graph)
    recorder.values = {}
    with torch.no_grad():
        recorder.run(inputs)
    checked = 0
    for name, value in recorder.values.items():
        bound = env.get(name)
        if torch.is_tensor(value) and value.is_floating_point() and hasattr(bound, "low"):
            assert (value >= bound.low - 1e-9).all() and (value <= bound.high + 1e-9).all(), name
            checked += 1
    assert checked > 10


def test_the_planted_dead_filters_are_certified_and_pruning_them_is_exact_on_inputs_never_measured():
    model = planted_network().double()
    images = torch.rand(64, 1, 16, 16, dtype=torch.float64) * 2 - 1
    report = measure_sparsity(model, images)
    certificate = certify_dead(model, low=-1.0, high=1.0, report=report)
    certified = certificate.filters[certificate.filters["dead_by_activation"]]
    # gamma 0 and beta < 0 (C2/1), zero weights and beta < 0 (C2/3, C5/0); C2/2 (gamma 0, beta > 0) fires
    assert sorted(zip(certified["layer"], certified["filter"])) == [("C2", 1), ("C2", 3), ("C5", 0)]
    layers = certificate.layers.set_index("layer")
    assert layers.loc["C2", "dead_on_data"] == layers.loc["C2", "certified"] == 2 and layers.loc["C2", "certified_of_dead"] == 1
    result = prune_dead(model, certificate.filters, input_shape=(1, 16, 16))
    assert sum(len(v) for v in result.removed.values()) == 3
    unseen = torch.rand(256, 1, 16, 16, dtype=torch.float64) * 2 - 1
    unseen[0], unseen[1] = -1.0, 1.0
    assert max_logit_difference(model, result.model, unseen) < 1e-12


def test_a_filter_dead_only_on_the_images_measured_is_not_certified_and_the_box_decides():
    model = planted_network().double()
    first = model.blocks[0]
    with torch.no_grad():  # C1/0: all-negative weights behind BN (0 mean, unit variance, gamma 1, beta 0)
        first.conv.weight[0] = -first.conv.weight[0].abs() - 0.1
        first.bn.running_mean[0], first.bn.running_var[0], first.bn.weight[0], first.bn.bias[0] = 0.0, 1.0, 1.0, 0.0
    positive = torch.rand(64, 1, 16, 16, dtype=torch.float64)  # images in [0, 1]: it never fires on them
    report = measure_sparsity(model, positive)
    assert report.filters.set_index(["layer", "filter"]).loc[("C1", 0), "dead_by_activation"]
    on_positive = certify_dead(model, low=0.0, high=1.0, report=report).filters.set_index(["layer", "filter"])
    assert on_positive.loc[("C1", 0), "dead_by_activation"]  # no image in [0, 1] can make it fire
    wider = certify_dead(model, (1, 16, 16), low=-1.0, high=1.0).filters.set_index(["layer", "filter"])
    assert not wider.loc[("C1", 0), "dead_by_activation"]
    with torch.no_grad():  # and it does fire on an input outside [0, 1]: the measured evidence alone was not a proof
        assert first(-torch.rand(8, 1, 16, 16, dtype=torch.float64))[:, 0].max() > 0.1


def test_bad_boxes_are_refused_with_the_reason():
    model = planted_network()
    with pytest.raises(CertificationError, match="pass input_shape"):
        certify_dead(model)
    with pytest.raises(CertificationError, match="the box is empty"):
        certify_dead(model, (1, 16, 16), low=1.0, high=0.0)
    with pytest.raises(CertificationError, match=r"one per input channel \(1\)"):
        certify_dead(model, (1, 16, 16), low=[0.0, 0.0], high=1.0)
    assert normalized_box([0.5, 0.25], [0.5, 0.25]) == ([-1.0, -1.0], [1.0, 3.0])

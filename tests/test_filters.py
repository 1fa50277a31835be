"""Filters are found from the graph of any CNN, and dead ones planted by hand are measured exactly."""

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sparsitylib.filters import TraceError, find_filter_layers
from sparsitylib.sparsity import measure_sparsity


@torch.no_grad()
def plant(model: nn.Module, bn: str, channels, gamma=0.0, beta=-1.0) -> nn.Module:
    """Make ``channels`` of BatchNorm ``bn`` output the constant ``beta`` (dead after a ReLU when < 0)."""
    module = model.get_submodule(bn)
    module.weight[channels] = gamma
    module.bias[channels] = beta
    return model


@torch.no_grad()
def calibrated(model: nn.Module, shape=(3, 32, 32)) -> nn.Module:
    """``model`` in eval mode with BatchNorm statistics of random images, as after training: every
    channel is normalized, so none is dead by accident."""
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a cumulative average over the calibration batches
    model.train()
    for _ in range(4):
        model(torch.randn(32, *shape))
    return model.eval()


def dead(report, layer: str) -> set[int]:
    rows = report.filters[report.filters["layer"] == layer]
    return set(rows.loc[rows["dead_by_activation"], "filter"].astype(int))


def test_resnet18_filters_come_from_the_graph():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    layers = {layer.name: layer for layer in find_filter_layers(model)}
    assert len(layers) == 20  # 17 convolutions on the main path + 3 downsample convolutions
    assert layers["layer1.0.bn1"].measured and layers["layer1.0.bn1"].conv == "layer1.0.conv1"
    # the block's one nn.ReLU is called twice; the first call is the filter's activation
    assert layers["layer1.0.bn1"].activation == "layer1_0_relu"
    for residual in ("layer1.0.bn2", "layer2.0.downsample.1", "layer4.1.bn2"):
        assert not layers[residual].measured and "residual addition" in layers[residual].reason


def test_planted_dead_channels_in_resnet18_are_found_exactly():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    plant(model, "layer1.0.bn1", [2, 5])
    plant(model, "layer3.1.bn1", [0])
    plant(model, "layer2.0.bn2", [7])  # the end of a residual branch: gamma 0 there is an idle branch
    calibrated(model, (3, 64, 64))
    report = measure_sparsity(model, torch.randn(16, 3, 64, 64), batch_size=6)
    assert dead(report, "layer1.0.bn1") == {2, 5} and dead(report, "layer3.1.bn1") == {0}
    assert report.totals["dead_by_activation_count"] == 3
    residual = report.filters[report.filters["layer"] == "layer2.0.bn2"]
    assert not residual["measured"].any() and residual["max_activation"].isna().all()
    assert residual.loc[residual["idle_branch"], "filter"].tolist() == [7] and not residual["dead_by_gamma"].any()
    assert report.totals["filters_measured"] == sum(
        layer.channels for layer in find_filter_layers(model) if layer.measured)
    assert report.totals["dead_by_activation"] == pytest.approx(3 / report.totals["filters_measured"])
    layer_rows = report.layers.set_index("layer")
    assert bool(layer_rows.loc["layer1.0.bn1", "measured"]) and not bool(layer_rows.loc["layer1.0.bn2", "measured"])


def test_planted_dead_channels_in_mobilenet_v2_behind_relu6():
    torch.manual_seed(0)
    model = plant(torchvision.models.mobilenet_v2(num_classes=10), "features.1.conv.0.1", [0, 7])  # depthwise conv -> BN -> ReLU6
    report = measure_sparsity(calibrated(model, (3, 64, 64)), torch.randn(16, 3, 64, 64))
    assert dead(report, "features.1.conv.0.1") == {0, 7}
    assert report.totals["dead_by_activation_count"] == 2
    projection = report.filters[report.filters["layer"] == "features.1.conv.2"]  # linear bottleneck: no activation
    assert not projection["measured"].any()


def test_a_dataloader_gives_the_same_report_as_a_tensor():
    torch.manual_seed(0)
    model = calibrated(plant(torchvision.models.resnet18(num_classes=10), "layer1.1.bn1", [1]))
    images = torch.randn(10, 3, 32, 32)
    from_tensor = measure_sparsity(model, images)
    from_loader = measure_sparsity(model, DataLoader(TensorDataset(images, torch.zeros(10)), batch_size=3))
    assert from_loader.totals == from_tensor.totals
    assert torch.allclose(torch.tensor(from_loader.filters["max_activation"].to_numpy()),
                          torch.tensor(from_tensor.filters["max_activation"].to_numpy()), rtol=1e-4, atol=1e-6, equal_nan=True)


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x):
        if x.sum() > 0:  # control flow on a value: torch.fx cannot trace it
            x = -x
        return torch.relu(self.bn(self.conv(x)))


def test_an_untraceable_model_gets_a_clear_error():
    with pytest.raises(TraceError, match=r"cannot trace DataDependent with torch.fx \(in test_filters.py:\d+ forward\)"):
        measure_sparsity(DataDependent(), torch.randn(2, 3, 8, 8))


def test_a_model_without_filters_is_refused():
    with pytest.raises(ValueError, match="no convolution followed by BatchNorm or an activation"):
        measure_sparsity(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), torch.randn(2, 3, 2, 2))

"""Units of any network: linear layers' neurons behind BatchNorm, LayerNorm or nothing, with
ReLU-family or smooth activations; transformers' feed-forward neurons."""

import pytest
import torch
import torchvision
from torch import nn

from sparsitylib.certify import certify_dead
from sparsitylib.filters import find_filter_layers
from sparsitylib.models import TinyTransformerLM
from sparsitylib.monitor import SparsityMonitor
from sparsitylib.prune import max_logit_difference, prune_dead
from sparsitylib.recycle import recycle_dead
from sparsitylib.sparsity import measure_sparsity


def dead_units(report, layer, column="dead_by_activation"):
    rows = report.filters[report.filters["layer"] == layer]
    return set(rows.loc[rows[column].astype(bool), "filter"].astype(int))


def planted_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                          nn.Linear(16, 3)).eval()
    with torch.no_grad():
        model[2].running_var.fill_(1.0)
        model[2].weight[[1, 4]], model[2].bias[[1, 4]] = 0.0, -1.0  # behind BatchNorm1d: gamma 0, beta < 0
        model[4].weight[7], model[4].bias[7] = 0.0, -1.0  # no norm: zero weights, negative bias
    return model


def test_an_mlps_dead_neurons_are_found_certified_removed_and_recycled_exactly():
    model = planted_mlp()
    images = torch.randn(64, 1, 4, 4)
    report = measure_sparsity(model, images)
    assert [layer.name for layer in find_filter_layers(model)] == ["2", "4"]  # the classifier has no activation
    assert dead_units(report, "2") == {1, 4} and dead_units(report, "4") == {7}
    assert dead_units(report, "2", "dead_by_gamma") == {1, 4}
    assert certify_dead(model, low=-5.0, high=5.0, report=report).certified == 3
    result = prune_dead(model, report, input_shape=(1, 4, 4))
    assert result.removed == {"2": [1, 4], "4": [7]}
    assert max_logit_difference(model, result.model, torch.randn(256, 1, 4, 4) * 3) < 1e-12  # unseen inputs
    before = model(images)
    recycled = recycle_dead(model, report, input_shape=(1, 4, 4))
    assert recycled.recycled == {"2": [1, 4], "4": [7]}
    assert torch.allclose(model(images), before, atol=0, rtol=0)  # outgoing weights zeroed: unchanged at that moment


@pytest.mark.parametrize("activation", [nn.ReLU, nn.GELU])
def test_a_transformers_feed_forward_neurons_are_units_measured_by_each_definition_that_applies(activation):
    torch.manual_seed(0)
    model = TinyTransformerLM(activation=activation).eval()
    with torch.no_grad():  # feed-forward neuron 5 of the first block: zero weights, a large negative bias
        model.blocks[0].up.weight[5], model.blocks[0].up.bias[5] = 0.0, -10.0
    layers = find_filter_layers(model)
    assert [(layer.name, layer.channels, layer.unit_dim) for layer in layers] == [("blocks.0.up", 128, -1),
                                                                                  ("blocks.1.up", 128, -1)]
    report = measure_sparsity(model, torch.randint(0, 64, (32, 16)))
    definitions = report.totals["definitions"]
    assert dead_units(report, "blocks.0.up", "dormant_tau_0.025") == {5}  # ReDo's score applies behind any activation
    if activation is nn.ReLU:
        assert dead_units(report, "blocks.0.up") == {5} and definitions["activation"] == {"count": 1, "of": 256,
                                                                                           "fraction": 1 / 256}
        assert definitions["dormant-1%"]["of"] == 256
    else:  # GELU(-10) is -7.6e-23, not zero: the criteria that need zero say n/a, and why
        assert definitions["activation"]["of"] == definitions["dormant-1%"]["of"] == 0
        assert report.filters["note"].iloc[0].startswith("GELU is not ReLU-family (never exactly zero)")
        assert definitions["dormant-0.025"]["of"] == 256


def test_the_monitor_follows_a_transformers_neurons_while_it_trains():
    torch.manual_seed(0)
    model = TinyTransformerLM(layers=2)
    tokens = torch.randint(0, 64, (256, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2, weight_decay=5e-3)  # a high rate and L2: neurons die
    monitor = SparsityMonitor(model, tokens[:64], optimizer, warn=False)
    for epoch in range(1, 4):
        model.train()
        for start in range(0, 256, 32):
            batch = tokens[start:start + 32]
            loss = nn.functional.cross_entropy(model(batch)[:, :-1].flatten(0, 1), batch[:, 1:].flatten())  # next token
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        monitor(epoch)
    history = monitor.history
    assert history["layer"].unique().tolist() == ["blocks.0.up", "blocks.1.up"]
    assert history["epoch"].unique().tolist() == [1, 2, 3] and (history["filters"] == 128).all()
    assert {"dead", "dormant-0.025", "dormant-1%"} <= set(history.columns)
    last = history[history["epoch"] == 3]
    assert (last["dead"] <= last["dormant-1%"]).all()  # a dead neuron fires on no value: dormant by Dohare's rule too


def test_vision_transformers_and_convnext_feed_forward_neurons_are_found_behind_gelu():
    vit = torchvision.models.vit_b_16(image_size=32).eval()
    layers = find_filter_layers(vit)
    assert len(layers) == 12 and all(layer.channels == 3072 and layer.observed and not layer.measured for layer in layers)
    report = measure_sparsity(vit, torch.randn(2, 3, 32, 32))
    assert report.totals["definitions"]["dormant-0.1"]["of"] == 12 * 3072
    convnext = find_filter_layers(torchvision.models.convnext_tiny())
    assert len(convnext) == 18 and all(layer.unit_dim == -1 and not layer.measured for layer in convnext)

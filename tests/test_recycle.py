"""Recycling re-initializes dead filters without changing the network's output at that moment."""

import pytest
import torch
import torchvision

from sparsitylib.recycle import RecycleError, recycle_dead
from sparsitylib.sparsity import measure_sparsity

from .planted import planted_network
from .test_filters import calibrated, plant


def _adam_with_state(model):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    model.train()
    model(torch.randn(8, 1, 16, 16)).sum().backward()
    optimizer.step()
    model.eval()
    return optimizer


def test_recycled_filters_fire_again_and_the_output_is_unchanged_at_that_moment():
    model = planted_network()
    optimizer = _adam_with_state(model)  # one step: moments everywhere (the planted dead filters stay dead)
    images = torch.randn(64, 1, 16, 16)
    report = measure_sparsity(model, images)
    assert report.totals["dead_by_activation_count"] == 3
    with torch.no_grad():
        before = model(images)
    result = recycle_dead(model, report, optimizer)
    assert result.recycled == {"C2": [1, 3], "C5": [0]} and not result.skipped
    with torch.no_grad():
        assert torch.equal(model(images), before)  # silent filters, zero outgoing weights: exact
    c2, c3 = model.blocks[1], model.blocks[2]
    assert c2.bn.weight[1] == 1 and c2.bn.bias[1] == 0 and c2.bn.running_var[1] == 1
    assert c2.conv.weight[3].abs().sum() > 0  # had zero weights: re-initialized
    assert torch.equal(c3.conv.weight[:, [1, 3]], torch.zeros_like(c3.conv.weight[:, [1, 3]]))
    state = optimizer.state[c3.conv.weight]
    assert state["exp_avg"][:, [1, 3]].abs().sum() == 0 and state["exp_avg"][:, 0].abs().sum() > 0
    assert optimizer.state[c2.bn.bias]["exp_avg_sq"][1] == 0
    after = measure_sparsity(model, images)
    assert after.totals["dead_by_activation_count"] == 0  # they respond again


def test_a_channel_tied_to_the_residual_stream_is_left_alone_with_the_reason():
    model = calibrated(torchvision.models.resnet18(num_classes=10))
    with torch.no_grad():
        plant(model, "bn1", [4])  # the stem: its channel is the residual stream's channel 4
        plant(model, "layer1.0.bn1", [7])
    images = torch.randn(16, 3, 32, 32)
    report = measure_sparsity(model, images)
    with torch.no_grad():
        before = model(images)
    result = recycle_dead(model, report)
    assert result.recycled == {"layer1.0.bn1": [7]}
    assert "tied to other convolutions" in result.skipped["bn1"][4]
    with torch.no_grad():
        assert torch.equal(model(images), before)


def test_an_expansion_filter_is_recycled_through_its_depthwise_channel_and_the_output_is_unchanged():
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(num_classes=10)
    with torch.no_grad():
        plant(model, "features.2.conv.0.1", [3, 7])  # expansion channels, each read by one depthwise channel
    model = calibrated(model, (3, 32, 32))
    images = torch.randn(16, 3, 32, 32)
    report = measure_sparsity(model, images)
    with torch.no_grad():
        before = model(images)
    result = recycle_dead(model, report)
    assert result.recycled["features.2.conv.0.1"] == [3, 7]
    depthwise, project = model.features[2].conv[1][0], model.features[2].conv[2]
    assert depthwise.weight[[3, 7]].abs().sum() == 0  # the depthwise channel's weights are the outgoing ones
    assert project.weight[:, [3, 7]].abs().sum() > 0  # what reads the depthwise output is left alone
    with torch.no_grad():
        assert torch.equal(model(images), before)
    after = measure_sparsity(model, images).filters.set_index(["layer", "filter"])
    assert not after.loc[("features.2.conv.0.1", 3), "dead_by_activation"]  # it fires again


def test_bad_requests_are_refused_before_any_change():
    model = planted_network()
    report = measure_sparsity(model, torch.randn(8, 1, 16, 16))
    with pytest.raises(RecycleError, match="no column 'nope'"):
        recycle_dead(model, report, column="nope")
    with pytest.raises(RecycleError, match="expected a per-filter DataFrame .*, a SparsityReport or a run record"):
        recycle_dead(model, [report])
    with pytest.raises(RecycleError, match="no column 'dead_by_activation'; use one of"):
        recycle_dead(model, {"filters": []})  # a run record without filters


def test_a_training_run_can_recycle_its_dead_filters_each_epoch_and_old_run_ids_stay_valid():
    from sparsitylib.config import RunConfig
    from sparsitylib.presets import preset_config
    from sparsitylib.train import train

    settings = dict(dataset="synthetic", width=0.125, epochs=3, batch_size=50, train_size=500, test_size=200,
                    snapshot_size=64, device="cpu", optimizer="adam", lr=3e-2, decay=5e-3)  # kills filters by epoch 2
    plain = train(preset_config(None, **settings), quiet=True).record
    recycled = train(preset_config(None, **settings, recycle=True), quiet=True).record
    dead = [row["dead_per_layer"] for row in recycled["history"]]
    # BasicNet: every dead filter can be recycled; never after the last epoch, whose filters the final measurement judges
    assert [row.get("recycled_per_layer") for row in recycled["history"]] == dead[:-1] + [None]
    first = next(i for i, counts in enumerate(dead) if sum(counts) > 0)  # the first recycling
    assert first < 2
    assert dead[: first + 1] == [row["dead_per_layer"] for row in plain["history"]][: first + 1]  # identical until then
    assert recycled["history"][first + 1]["train_loss"] != plain["history"][first + 1]["train_loss"]
    assert "recycle" not in RunConfig().identity() and RunConfig(recycle=True).run_id != RunConfig().run_id

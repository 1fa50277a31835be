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
    # fresh draws of the network's own initialization; whether one fires on these near-constant
    # inputs is the draw's (the depthwise test below sees a recycled filter fire on richer ones)
    assert result.init == {"C2": "He normal, fan-out", "C5": "He normal, fan-out"}


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
    assert "tied to other layers" in result.skipped["bn1"][4]
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


def _dead_stem(model, bn: str, channels):
    model = calibrated(model, (3, 32, 32))
    with torch.no_grad():
        plant(model, bn, channels)
    return model, measure_sparsity(model, torch.randn(16, 3, 32, 32))


def test_recycled_filters_are_drawn_from_the_networks_own_initialization_with_the_bias_zeroed():
    torch.manual_seed(0)
    model, report = _dead_stem(torchvision.models.resnet18(num_classes=10), "layer1.0.bn1", list(range(32)))
    result = recycle_dead(model, report)
    assert result.recycled["layer1.0.bn1"] == list(range(32)) and result.init["layer1.0.bn1"] == "He normal, fan-out"
    conv = model.layer1[0].conv1  # 64 x 64 x 3 x 3: torchvision draws N(0, 2 / fan-out), fan-out 576
    drawn = conv.weight[:32].std().item()
    assert drawn == pytest.approx((2 / 576) ** 0.5, rel=0.05)  # 18,432 draws: the estimate's own spread is 0.5%
    default = torch.nn.Conv2d(64, 64, 3, bias=False).weight.std().item()  # PyTorch's: U(+-1/sqrt(fan-in)), 0.024
    assert default < 0.6 * drawn

    class Custom(torch.nn.Module):  # a network no library describes: PyTorch's default, said so; the bias zeroed
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.head = torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Conv2d(8, 2, 1)

        def forward(self, x):
            return self.head(torch.relu(self.bn(self.conv(x))))

    model, report = _dead_stem(Custom(), "bn", [2, 5])
    with torch.no_grad():
        model.conv.bias.fill_(3.0)
    result = recycle_dead(model, report)
    assert result.recycled == {"bn": [2, 5]} and "not known; pass init=" in result.init["bn"]
    assert model.conv.bias[[2, 5]].tolist() == [0.0, 0.0] and model.conv.bias[0] == 3.0


def test_recycling_draws_from_an_initializer_passed_or_as_before_from_pytorchs_default():
    import copy

    torch.manual_seed(0)
    model, report = _dead_stem(torchvision.models.resnet18(num_classes=10), "layer1.0.bn1", [3, 9])
    recycle_dead(model, report, init=torch.nn.init.ones_)
    assert torch.equal(model.layer1[0].conv1.weight[[3, 9]], torch.ones(2, 64, 3, 3))
    with torch.no_grad():
        plant(model, "layer1.0.bn1", [3, 9])
    conv = model.layer1[0].conv1
    torch.manual_seed(7)
    expected = copy.deepcopy(conv)
    expected.reset_parameters()
    torch.manual_seed(7)
    result = recycle_dead(model, report, init="pytorch")  # what stored runs with recycle_init "pytorch" did
    assert torch.equal(conv.weight[[3, 9]], expected.weight[[3, 9]]) and "reset_parameters" in result.init["layer1.0.bn1"]
    before = conv.weight.clone()
    with pytest.raises(RecycleError, match="init='xavier': use one of"):
        recycle_dead(model, report, init="xavier")
    assert torch.equal(conv.weight, before)


def test_recycle_init_is_part_of_the_run_id_only_where_recycling_used_the_networks_initialization():
    from sparsitylib.config import RunConfig, from_record

    recycled = RunConfig(recycle=True)
    assert recycled.recycle_init == "network" and recycled.identity()["recycle_init"] == "network"
    assert "recycle_init" not in RunConfig(recycle=True, recycle_init="pytorch").identity()  # the runs stored before
    assert RunConfig(recycle_init="pytorch").run_id == RunConfig().run_id  # without recycling it cannot matter
    stored = {k: v for k, v in RunConfig(recycle=True).to_dict().items() if k != "recycle_init"}  # an older record
    assert from_record(stored).recycle_init == "pytorch"

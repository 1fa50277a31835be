"""Pruned models compute what the originals compute."""

import pytest
import torch
import torchvision

from sparsitylib.models import ModelSpec, build_model
from sparsitylib.presets import preset_config
from sparsitylib.prune import (PruningError, load_pruned_model, prune_by_gamma, prune_channels, prune_dead,
                               save_pruned_model)
from sparsitylib.sparsity import measure_sparsity
from sparsitylib.train import load_config_data, train

from .planted import WIDTHS, planted_network
from .test_filters import calibrated


@torch.no_grad()
def largest_logit_difference(a, b, images):
    return float((a.eval()(images) - b.eval()(images)).abs().max())


def test_planted_dead_filters_are_removed_and_outputs_do_not_change():
    model = planted_network()
    images = torch.randn(64, 1, 16, 16)
    result = prune_dead(model, measure_sparsity(model, images))
    assert result.removed == {"C1": [], "C2": [1, 3], "C3": [], "C4": [], "C5": [0], "C6": [], "C7": []}
    assert result.spec.widths == (4, 4, 6, 8, 7, 8, 8) and result.model.spec == result.spec
    assert largest_logit_difference(model, result.model, torch.randn(256, 1, 16, 16)) < 1e-5


def test_a_trained_network_pruned_gives_the_same_logits_on_the_whole_test_set():
    config = preset_config(None, dataset="synthetic", width=0.125, epochs=2, batch_size=32, optimizer="adam",
                           lr=2e-2, decay_mode="l2", decay=1e-2, snapshot_size=64, device="cpu")
    run = train(config, quiet=True)
    dead = run.record["metrics"]["dead_by_activation_count"]
    assert dead > 0, "this seeded run is meant to have dead filters"
    result = prune_dead(run.model, run.record)
    assert result.removed_count == dead - len(result.kept_to_avoid_empty_layer)
    assert sum(result.spec.widths) == sum(run.record["model_spec"]["widths"]) - result.removed_count
    data = load_config_data(config)
    assert largest_logit_difference(run.model, result.model, data.test_images) < 1e-5


def test_gamma_pruning_folds_the_constant_exactly_away_from_borders():
    model = planted_network()
    with torch.no_grad():  # C3 reads C2's constant filter 2 only through its centre tap: no border effect
        centre = model.blocks[2].conv.weight[:, 2, 1, 1].clone()
        model.blocks[2].conv.weight[:, 2] = 0.0
        model.blocks[2].conv.weight[:, 2, 1, 1] = centre
    images = torch.randn(128, 1, 16, 16)
    result = prune_by_gamma(model, measure_sparsity(model, images))
    assert result.removed["C2"] == [1, 2]
    assert largest_logit_difference(model, result.model, images) < 1e-5


@torch.no_grad()
def c3_output(model, images):
    """The output of C3, the layer that reads C2's constant filter (through its zero padding)."""
    return model.eval().features[:4](images)


def test_gamma_pruning_is_inexact_only_at_borders_and_better_than_dropping_the_constant():
    model = planted_network()
    with torch.no_grad():
        model.blocks[2].bn.running_var.fill_(1.0)  # let C3's differences show at full size
    images = torch.randn(32, 1, 16, 16)
    stats = measure_sparsity(model, images)
    folded = prune_by_gamma(model, stats)
    assert any("borders" in note for note in folded.notes)
    difference = (c3_output(model, images) - c3_output(folded.model, images)).abs()
    interior, border = difference[:, :, 1:-1, 1:-1], difference.clone()
    border[:, :, 1:-1, 1:-1] = 0
    assert interior.max() < 1e-5 and border.max() > 1e-3
    stats.filters.loc[(stats.filters["layer"] == "C2") & (stats.filters["filter"] == 2), "dead_by_activation"] = True
    dropped = prune_dead(model, stats)  # removes the constant filter without folding it: wrong everywhere
    assert (c3_output(model, images) - c3_output(dropped.model, images))[:, :, 1:-1, 1:-1].abs().max() > 1e-3


def test_a_layer_is_never_emptied():
    model = planted_network()
    stats = measure_sparsity(model, torch.randn(16, 1, 16, 16))
    stats.filters.loc[stats.filters["layer"] == "C1", "dead_by_activation"] = True
    stats.filters.loc[(stats.filters["layer"] == "C1") & (stats.filters["filter"] == 2), "max_activation"] = 9.0
    result = prune_dead(model, stats)
    assert result.kept_to_avoid_empty_layer == {"C1": 2} and result.spec.widths[0] == 1
    assert any("kept filter 2" in note for note in result.notes)


def test_no_dead_filters_returns_the_model_unchanged_and_says_so():
    model = build_model(ModelSpec("basicnet", WIDTHS, 1, 3))
    images = torch.randn(8, 1, 16, 16)
    stats = measure_sparsity(model, images)
    stats.filters["dead_by_activation"] = False
    result = prune_dead(model, stats)
    assert result.spec == model.spec and result.removed_count == 0
    assert any("unchanged" in note for note in result.notes)
    assert largest_logit_difference(model, result.model, images) == 0.0


def test_pruned_models_save_as_widths_and_a_state_dict(tmp_path):
    model = planted_network()
    result = prune_dead(model, measure_sparsity(model, torch.randn(8, 1, 16, 16)))
    result.save(tmp_path / "pruned.pt")
    loaded = load_pruned_model(tmp_path / "pruned.pt")  # torch.load(weights_only=True) inside
    assert loaded.spec == result.spec
    images = torch.randn(8, 1, 16, 16)
    assert largest_logit_difference(loaded, result.model, images) == 0.0
    torch.save({"spec": result.spec.to_dict(), "state_dict": result.model.state_dict()}, tmp_path / "older.pt")
    assert largest_logit_difference(load_pruned_model(tmp_path / "older.pt"), result.model, images) == 0.0


def test_one_format_and_one_loader_for_every_pruned_model(tmp_path):
    model = calibrated(build_model(ModelSpec("resnet18", (8, 8, 8, 8), in_channels=1, num_classes=3)), (1, 16, 16))
    with torch.no_grad():
        model.layer1[0].bn1.weight[[1, 4]] = 0.0
        model.layer1[0].bn1.bias[[1, 4]] = -1.0
    images = torch.randn(8, 1, 16, 16)
    result = prune_dead(model, measure_sparsity(model, images))  # a ResNet from the store: spec, pruned widths inside
    assert result.removed["layer1.0.bn1"] == [1, 4] and result.spec is None
    result.save(tmp_path / "resnet.pt")
    loaded = load_pruned_model(tmp_path / "resnet.pt")
    assert loaded.layer1[0].conv1.out_channels == 6
    assert largest_logit_difference(loaded, model, images) < 1e-5
    user_model = torchvision.models.resnet18(num_classes=10)  # inspect --prune names how to build it
    save_pruned_model(user_model, tmp_path / "user.pt", "torchvision:resnet18:num_classes=10")
    assert isinstance(load_pruned_model(tmp_path / "user.pt"), torchvision.models.ResNet)
    with pytest.raises(PruningError, match="pass rebuild_with"):
        save_pruned_model(user_model, tmp_path / "unknown.pt")
    torch.save(user_model.state_dict(), tmp_path / "state_dict.pt")
    with pytest.raises(PruningError, match="is not a pruned model saved by sparsitylib"):
        load_pruned_model(tmp_path / "state_dict.pt")


def test_the_same_surgery_works_on_torchvisions_resnet18():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    with torch.no_grad():
        bn = model.layer1[0].bn1
        bn.weight[[0, 5]] = 0.0
        bn.bias[[0, 5]] = -1.0  # these two channels are dead after the ReLU, for every input
    images = torch.randn(4, 3, 32, 32)
    pruned = prune_channels(model, images[:1], {"layer1.0.conv1": [0, 5]})
    assert pruned.layer1[0].conv1.out_channels == 62 and pruned.layer1[0].conv2.in_channels == 62
    assert pruned.layer1[0].bn1.num_features == 62
    assert largest_logit_difference(model, pruned, images) < 1e-5


def test_bad_requests_give_clear_errors():
    model = planted_network()
    stats = measure_sparsity(model, torch.randn(8, 1, 16, 16))
    with pytest.raises(PruningError, match="gamma_threshold must be in"):
        prune_by_gamma(model, stats, gamma_threshold=1.5)
    with pytest.raises(PruningError, match="activation_threshold must be in"):
        prune_dead(model, stats, activation_threshold=-1)
    with pytest.raises(PruningError, match="were they measured on this model"):
        prune_dead(build_model(ModelSpec("basicnet", (5, 6, 6, 8, 8, 8, 8), 1, 3)), stats)
    with pytest.raises(PruningError, match="no BatchNorm"):
        plain = build_model(ModelSpec("basicnet", WIDTHS, 1, 3, norm="none"))
        prune_by_gamma(plain, measure_sparsity(plain, torch.randn(8, 1, 16, 16)))
    with pytest.raises(PruningError, match="not a Conv2d"):
        prune_channels(model, torch.zeros(1, 1, 16, 16), {"features.0.bn": [0]})
    with pytest.raises(PruningError, match="cannot trace"):
        prune_channels(model, torch.zeros(1, 3, 16, 16), {"features.0.conv": [0]})  # wrong input channels


def test_leaky_relu_filters_are_not_removable():
    model = build_model(ModelSpec("basicnet", WIDTHS, 1, 3, activation="leaky_relu"))
    with pytest.raises(PruningError, match="exact only with ReLU"):
        prune_dead(model, measure_sparsity(model, torch.randn(8, 1, 16, 16)))

"""`inspect` measures and prunes a user's own torchvision model from a checkpoint."""

import json

import torch
import torchvision

from sparsitylib.prune import load_pruned_model

from .test_cli import cli
from .test_filters import calibrated, plant

MODEL = "torchvision:resnet18:num_classes=10"


def planted_checkpoint(path):
    model = plant(torchvision.models.resnet18(num_classes=10), "layer1.0.bn1", [2, 5])
    plant(model, "bn1", [4])  # the residual stream's channel 4: dead in the stem, alive after layer1's blocks
    torch.save(calibrated(model, (3, 16, 16)).state_dict(), path)
    return model


def test_inspect_prints_the_table_and_prunes_only_what_is_exact(isolated_store, tmp_path):
    weights = tmp_path / "resnet18.pt"
    model = planted_checkpoint(weights)
    table = cli("inspect", MODEL, "--weights", str(weights), "--data", "synthetic", "--images", "64",
                env_root=isolated_store)
    assert table.returncode == 0, table.stderr
    assert "layer1.0.bn1" in table.stdout and "residual addition" in table.stdout
    pruned_path = tmp_path / "pruned.pt"
    result = cli("inspect", MODEL, "--weights", str(weights), "--data", "synthetic", "--images", "64", "--json",
                 "--prune", str(pruned_path), "--min-run-time", "0.05", env_root=isolated_store)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    pruning = report["pruning"]
    assert pruning["filters_removed"]["layer1.0.bn1"] == 2 and pruning["filters_removed_total"] == 2
    assert list(pruning["dead_but_not_removable"]["bn1"]) == ["4"]
    assert pruning["max_logit_difference"] < 1e-5 and pruning["macs"]["after"] < pruning["macs"]["before"]
    assert pruning["latency"]["as_trained"]["batch_1"]["before"]["threads"] == 1
    loaded = load_pruned_model(pruned_path)  # torch.load(weights_only=True) inside
    assert loaded.layer1[0].conv1.out_channels == 62
    images = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    assert (loaded.double()(images) - model.eval().double()(images)).abs().max() < 1e-9


def test_inspect_rejects_bad_input_with_one_message_each(isolated_store, tmp_path):
    bad_weights = tmp_path / "other.pt"
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), bad_weights)
    cases = [
        (["torchvision:resnet18:num_classes=10", "--weights", str(tmp_path / "missing.pt")], "does not exist"),
        (["torchvision:resnet18:num_classes=10", "--weights", str(bad_weights)], "does not fit the model"),
        (["torchvision:no_such_net"], "torchvision has no model 'no_such_net'"),
        (["torchvision:resnet18", "--data", "mnist-typo"], "unknown data 'mnist-typo'"),
        (["torch.nn:Identity"], "no convolution -> BatchNorm -> ReLU"),
        (["sparsitylib.no_module:make"], "cannot import make from sparsitylib.no_module"),
    ]
    for args, message in cases:
        result = cli("inspect", *args, env_root=isolated_store)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr

"""`inspect` measures and prunes a user's own torchvision model from a checkpoint."""

import json
import re

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from sparsitylib.inspection import (InspectError, InspectWarning, build_user_model, load_images, named_weights,
                                    warn_if_uncalibrated)
from sparsitylib.filters import find_filter_layers
from sparsitylib.prune import load_pruned_model
from sparsitylib.sparsity import measure_sparsity

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
    header = next(line for line in table.stdout.splitlines() if line.startswith("layer "))
    assert header.split()[:9] == ["layer", "filters", "activation", "gamma", "idle-branch", "dormant-0", "dormant-0.025",
                                  "dormant-0.1", "dormant-1%"]
    assert "agreement (Jaccard overlap" in table.stdout and "Sokar et al., ICML 2023" in table.stdout
    # where a definition is not computed as its source computes it, the output says how
    assert "differs from its source: a value fires when > 1e-12 (theirs: != 0" in table.stdout
    assert "training mode, batch statistics" in table.stdout and "(Hu et al.: == 0" in table.stdout
    pruned_path = tmp_path / "pruned.pt"
    result = cli("inspect", MODEL, "--weights", str(weights), "--data", "synthetic", "--images", "64", "--json",
                 "--prune", str(pruned_path), "--min-run-time", "0.05", env_root=isolated_store)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    layers = {layer["layer"]: layer for layer in report["layers"]}
    assert layers["layer1.0.bn1"]["dead_channels"]["activation"] == [2, 5] and layers["bn1"]["dead_count"]["gamma"] == 1
    assert layers["layer1.0.bn2"]["dead_count"]["activation"] is None  # a residual branch: no activation criterion
    assert report["totals"]["activation"]["filters"] == 1984 and {"dead_count", "dead_fraction"} <= set(report["totals"]["gamma"])
    assert {"dormant-0.1", "dormant-1%"} <= {d["name"] for d in report["definitions"]} and report["agreement"]
    differs = {d["name"]: d["differs_from_source"] for d in report["definitions"]}
    assert differs["activation"] is None and "residual block's output" in differs["dormant-1%"]
    assert len(report["filters"]) == 4800 and "firing_fraction" in report["filters"][0]
    pruning = report["pruning"]
    assert pruning["filters_removed"]["layer1.0.bn1"] == 2 and pruning["filters_removed_total"] == 2
    assert list(pruning["dead_but_not_removable"]["bn1"]) == ["4"]
    assert pruning["max_logit_difference"] < 1e-5 and pruning["macs"]["after"] < pruning["macs"]["before"]
    assert pruning["latency"]["as_trained"]["batch_1"]["before"]["threads"] == 1
    loaded = load_pruned_model(pruned_path)  # torch.load(weights_only=True) inside
    assert loaded.layer1[0].conv1.out_channels == 62
    images = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    assert (loaded.double()(images) - model.eval().double()(images)).abs().max() < 1e-9


def test_prune_removes_only_definitions_it_can_remove_exactly(isolated_store, tmp_path):
    weights = tmp_path / "resnet18.pt"
    planted_checkpoint(weights)
    out = tmp_path / "pruned.pt"
    refused = cli("inspect", MODEL, "--weights", str(weights), "--data", "synthetic", "--images", "16",
                  "--criterion", "dormant-0.1", "--prune", str(out), env_root=isolated_store)
    assert refused.returncode == 2 and "still fire" in refused.stderr and not out.exists()
    zero = cli("inspect", MODEL, "--weights", str(weights), "--data", "synthetic", "--images", "64", "--json",
               "--criterion", "dormant-0", "--prune", str(out), "--min-run-time", "0.05", env_root=isolated_store)
    assert zero.returncode == 0, zero.stderr
    removed = {layer: n for layer, n in json.loads(zero.stdout)["pruning"]["filters_removed"].items() if n}
    assert removed == {"layer1.0.bn1": 2}  # exactly zero: the dead ones


def test_inspect_rejects_bad_input_with_one_message_each(isolated_store, tmp_path):
    bad_weights = tmp_path / "other.pt"
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), bad_weights)
    pickled = tmp_path / "whole_model.pt"
    torch.save(torchvision.models.resnet18(num_classes=10), pickled)
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("hello, not a checkpoint\n")
    (tmp_path / "no_images").mkdir()
    (tmp_path / "out").mkdir()
    cases = [
        (["torchvision:resnet18:num_classes=10", "--weights", str(tmp_path / "missing.pt")], "does not exist"),
        (["torchvision:resnet18:num_classes=10", "--weights", str(bad_weights)], "does not fit the model"),
        (["torchvision:resnet18:num_classes=10", "--weights", str(pickled)],
         f"{pickled} holds a pickled torchvision.models.resnet.ResNet object, not a state_dict; save it with "
         f"torch.save(model.state_dict(), '{pickled}')"),
        (["torchvision:resnet18:num_classes=10", "--weights", str(tmp_path / "empty.pt")], "empty.pt is empty"),
        (["torchvision:resnet18:num_classes=10", "--weights", str(tmp_path / "out")], "out is a folder; pass the state_dict"),
        (["torchvision:resnet18:num_classes=10", "--weights", str(tmp_path / "text.pt")],
         "text.pt as a state_dict: it is not a file torch.save wrote, or it is damaged (torch.load with weights_only=True: "),
        (["torchvision:resnet18:num_classes=ten"], "num_classes='ten' read as text: options are Python literals"),
        (["torchvision:no_such_net"], "torchvision has no model 'no_such_net'"),
        (["torchvision:resnet18:weights=NO_SUCH"], "torchvision:resnet18 has no weights 'NO_SUCH'; use weights=DEFAULT"),
        (["torchvision:resnet18", "--data", "mnist-typo"], "unknown data 'mnist-typo'"),
        (["torchvision:resnet18", "--data", f"imagefolder:{tmp_path / 'no_images'}"], "ImageFolder needs"),
        (["torchvision:resnet18", "--image-size", "-3"], "--image-size must be at least 1 (pixels), got -3"),
        (["torchvision:resnet18", "--image-size", "0"], "--image-size must be at least 1 (pixels), got 0"),
        (["torchvision:resnet18", "--prune", str(tmp_path / "missing" / "pruned.pt")], "does not exist; create it"),
        (["torchvision:resnet18", "--prune", str(tmp_path / "out")], "is a folder: give a file name"),
        (["torch.nn:Identity"], "no convolution -> BatchNorm -> ReLU"),
        (["sparsitylib.no_module:make"], "cannot import make from sparsitylib.no_module"),
    ]
    for args, message in cases:
        result = cli("inspect", *args, env_root=isolated_store)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and "\x1b[" not in result.stderr, (args, result.stderr)  # one plain line
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def write_images(folder, count, size=(20, 20)):
    folder.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(generator.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_an_image_folder_needs_class_subfolders(tmp_path):
    model = torchvision.models.resnet18(num_classes=10)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty_class" / "cats").mkdir(parents=True)
    write_images(tmp_path / "flat", 3)
    for name in ("empty", "empty_class", "flat"):
        with pytest.raises(InspectError, match=f"torchvision's ImageFolder needs {tmp_path / name}/<class>/<image> files"):
            load_images(f"imagefolder:{tmp_path / name}", 10, model)
    with pytest.raises(InspectError, match="the 3 images directly in .* are not read: move them into a subfolder"):
        load_images(f"imagefolder:{tmp_path / 'flat'}", 10, model)


def test_unreadable_images_are_skipped_with_a_warning_naming_the_first(tmp_path):
    model = torchvision.models.resnet18(num_classes=10)
    write_images(tmp_path / "photos" / "cats", 5)
    good = (tmp_path / "photos" / "cats" / "0.png").read_bytes()
    Image.open(tmp_path / "photos" / "cats" / "0.png").save(tmp_path / "photos" / "cats" / "truncated.jpg")
    truncated = (tmp_path / "photos" / "cats" / "truncated.jpg").read_bytes()
    (tmp_path / "photos" / "cats" / "truncated.jpg").write_bytes(truncated[: len(truncated) // 2])
    (tmp_path / "photos" / "cats" / "corrupt.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(InspectWarning) as caught:
        images = load_images(f"imagefolder:{tmp_path / 'photos'}", 1000, model)
    assert images.shape == (5, 3, 20, 20)  # every readable image, none of the two broken ones
    assert re.match(r"skipped 2 unreadable image file\(s\) in .*photos; the first: .*cats/(corrupt|truncated)\.jpg",
                    str(caught[0].message))
    assert str(caught[1].message).startswith("measured on 5 images, not the 1000 asked for")
    (tmp_path / "broken" / "cats").mkdir(parents=True)
    (tmp_path / "broken" / "cats" / "corrupt.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "broken" / "cats" / "half.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(InspectError, match=r"none of the 2 image files in .*broken can be read; the first: .*cats"):
        load_images(f"imagefolder:{tmp_path / 'broken'}", 10, model)


def test_fewer_images_than_asked_for_or_than_100_are_used_with_a_warning(tmp_path):
    model = torchvision.models.resnet18(num_classes=10)
    write_images(tmp_path / "photos" / "cats", 8)
    with pytest.warns(InspectWarning, match="measured on 8 images, not the 1000 asked for: .* has no more; dead-filter "
                                            "counts on fewer than 100 images overcount"):
        assert len(load_images(f"imagefolder:{tmp_path / 'photos'}", 1000, model)) == 8
    with pytest.warns(InspectWarning, match="^measured on 16 images; dead-filter counts on fewer than 100"):
        load_images("synthetic", 16, model)
    with pytest.warns(InspectWarning, match="^measured on 2000 images, not the 5000 asked for: synthetic has no more$"):
        load_images("synthetic", 5000, model)


def test_the_cli_says_how_many_images_it_used_and_warns_about_few_and_about_an_untrained_model(isolated_store, tmp_path):
    write_images(tmp_path / "photos" / "cats", 8)
    result = cli("inspect", "torchvision:resnet18:num_classes=10", "--data", f"imagefolder:{tmp_path / 'photos'}",
                 env_root=isolated_store)
    assert result.returncode == 0, result.stderr
    assert "filters on 8 imagefolder:" in result.stdout
    warnings = result.stderr.splitlines()
    assert warnings[0].startswith("warning: measured on 8 images, not the 1000 asked for"), result.stderr
    assert warnings[1].startswith("warning: every BatchNorm of the model still has its initial running statistics")
    assert len(warnings) == 2  # plain one-line warnings, no source lines


def test_building_a_model_is_seeded_and_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = build_user_model("torchvision:mobilenet_v2:num_classes=10")
    assert torch.equal(torch.rand(3), expected_next)  # the caller's random stream is untouched
    second = build_user_model("torchvision:mobilenet_v2:num_classes=10")
    other_seed = build_user_model("torchvision:mobilenet_v2:num_classes=10", seed=1)
    weights = "features.1.conv.0.0.weight"
    assert torch.equal(first.state_dict()[weights], second.state_dict()[weights])
    assert not torch.equal(first.state_dict()[weights], other_seed.state_dict()[weights])


def test_an_untrained_model_is_flagged_and_a_calibrated_one_is_not():
    model = torchvision.models.resnet18(num_classes=10)
    with pytest.warns(InspectWarning, match="initial running statistics"):
        assert warn_if_uncalibrated(model)
    assert not warn_if_uncalibrated(calibrated(model, (3, 16, 16)))
    assert not warn_if_uncalibrated(torch.nn.Conv2d(3, 4, 3))  # no BatchNorm: nothing to say


def test_named_weights_are_loaded_and_their_own_transforms_applied(monkeypatch, tmp_path):
    """weights=DEFAULT needs a download; here torchvision's weight loading is replaced, the rest is real."""
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    pretrained = torchvision.models.resnet18().state_dict()
    with torch.no_grad():
        pretrained["conv1.weight"].fill_(0.5)
    monkeypatch.setattr(torchvision.models.ResNet18_Weights, "get_state_dict",
                        lambda self, *args, **kwargs: pretrained)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *args, **kwargs: pytest.fail("downloaded"))
    for spec in ("torchvision:resnet18:weights=DEFAULT", "torchvision:resnet18:weights=IMAGENET1K_V1",
                 "torchvision:resnet18:weights=ResNet18_Weights.IMAGENET1K_V1"):
        assert named_weights(spec) is weights
    assert named_weights("torchvision:resnet18:num_classes=10") is None
    model = build_user_model("torchvision:resnet18:weights=DEFAULT")
    assert (model.conv1.weight == 0.5).all() and model.fc.out_features == 1000
    write_images(tmp_path / "photos" / "cats", 1, size=(300, 260))
    with pytest.warns(InspectWarning):
        images = load_images(f"imagefolder:{tmp_path / 'photos'}", 1, model, weights=weights)
    expected = weights.transforms()(Image.open(tmp_path / "photos" / "cats" / "0.png").convert("RGB"))
    assert images.shape == (1, 3, 224, 224) and torch.equal(images[0], expected)  # resized, cropped, normalized
    with pytest.warns(InspectWarning):
        assert load_images(f"imagefolder:{tmp_path / 'photos'}", 1, model, 64, weights=weights).shape == (1, 3, 64, 64)


def test_timm_models_are_built_by_name_and_measured():
    pytest.importorskip("timm", reason="the timm extra is not installed")
    model = build_user_model("timm:resnet18:num_classes=10")
    assert model.fc.out_features == 10 and not model.training
    report = measure_sparsity(model, torch.randn(8, 3, 32, 32))
    assert report.totals["filters_measured"] == sum(layer.channels for layer in find_filter_layers(model) if layer.measured) > 0
    with pytest.raises(InspectError, match="timm has no model 'nope'"):
        build_user_model("timm:nope")


def test_a_network_without_a_measurable_activation_reports_no_dead_fraction():
    model = torchvision.models.efficientnet_b0(num_classes=10).eval()  # SiLU everywhere: no activation criterion
    report = measure_sparsity(model, torch.randn(2, 3, 32, 32))
    assert report.totals["filters_measured"] == 0
    assert np.isnan(report.totals["dead_by_activation"]) and np.isnan(report.totals["criteria_agreement"])


def test_every_data_source_honours_the_image_size_and_a_model_that_needs_more_is_told_which():
    model = torchvision.models.resnet18(num_classes=10)
    images = load_images("synthetic", 8, model, image_size=24)
    assert tuple(images.shape) == (8, 3, 24, 24)  # synthetic images are 16x16, gray: resized and repeated
    needs_more = torch.nn.Sequential(torch.nn.Conv2d(3, 4, kernel_size=20), torch.nn.ReLU(), torch.nn.Flatten())
    with pytest.raises(InspectError, match=r"cannot take these images \(\(3, 16, 16\)\).*it takes 32x32 images: "
                                           r"pass --image-size 32"):
        load_images("synthetic", 8, needs_more)
    assert load_images("synthetic", 8, needs_more, image_size=32).shape[-1] == 32


def test_inspect_certifies_the_dead_filters_that_no_input_in_the_box_can_make_fire(isolated_store, tmp_path):
    weights = tmp_path / "resnet18.pt"
    planted_checkpoint(weights)  # three channels with gamma 0 and beta < 0
    table = cli("inspect", MODEL, "--weights", str(weights), "--data", "synthetic", "--images", "32",
                "--certify", "data", env_root=isolated_store)
    assert table.returncode == 0, table.stderr
    assert "3 of the 3 filters dead on the images are certified (100%)" in table.stdout
    result = cli("inspect", MODEL, "--weights", str(weights), "--data", "synthetic", "--images", "32", "--json",
                 "--certify=-3,3", env_root=isolated_store)
    certificate = json.loads(result.stdout)["certificate"]
    assert certificate["certified"] == 3 and certificate["certified_channels"]["layer1.0.bn1"] == [2, 5]
    assert certificate["box"] == {"low": [-3.0] * 3, "high": [3.0] * 3} and certificate["unbounded_operations"] == []
    refused = cli("inspect", MODEL, "--data", "synthetic", "--images", "32", "--certify", "3,-3", env_root=isolated_store)
    assert refused.returncode == 2 and "LOW must not be above HIGH" in refused.stderr

"""Dead filters are removed from any traceable CNN only where that is exact; coupled ones are reported."""

import pytest
import torch
import torchvision

from sparsitylib.prune import PruningError, max_logit_difference, prune_by_gamma, prune_channels, prune_dead
from sparsitylib.sparsity import measure_sparsity

from .test_filters import calibrated, plant

IMAGES = (16, 3, 64, 64)


def pruned_and_measured(model, images):
    report = measure_sparsity(model, images)
    assert report.input_shape == tuple(images.shape[1:])
    result = prune_dead(model, report)  # the input shape comes from the report
    return result, max_logit_difference(model, result.model, images)


def resnet18(*plants):
    model = torchvision.models.resnet18(num_classes=10)
    for bn, channels in plants:
        plant(model, bn, channels)
    return calibrated(model, IMAGES[1:])


def test_resnet18_dead_filters_inside_blocks_go_and_the_residual_stream_stays():
    torch.manual_seed(1)
    # layer1.0.bn1 feeds a ReLU inside the block: removable. The stem's channel 7 is dead too, but it
    # is the residual stream's channel 7, which layer1's blocks add to and which is alive after them.
    model = resnet18(("layer1.0.bn1", [2, 5]), ("layer2.1.bn1", [0]), ("bn1", [7]))
    images = torch.randn(*IMAGES)
    result, difference = pruned_and_measured(model, images)
    assert result.removed["layer1.0.bn1"] == [2, 5] and result.removed["layer2.1.bn1"] == [0]
    assert result.removed["bn1"] == [] and list(result.not_exact["bn1"]) == [7]
    assert "layer1.0.conv2[7]" in result.not_exact["bn1"][7]
    assert result.model.layer1[0].conv1.out_channels == 62 and result.model.conv1.out_channels == 64
    assert difference < 1e-5


def test_a_residual_channel_dead_in_every_coupled_layer_is_removed_exactly():
    torch.manual_seed(2)
    model = resnet18(("bn1", [9]), ("layer1.0.bn2", [9]), ("layer1.1.bn2", [9]))
    images = torch.randn(*IMAGES)
    result, difference = pruned_and_measured(model, images)
    assert result.removed["bn1"] == [9] and result.removed["layer1.0.bn2"] == [9] and result.removed["layer1.1.bn2"] == [9]
    assert result.model.conv1.out_channels == 63 and result.model.layer1[1].conv2.out_channels == 63
    assert result.model.layer2[0].downsample[0].in_channels == 63
    assert difference < 1e-5


def test_resnet50_bottleneck_inner_filters_are_removed_exactly():
    torch.manual_seed(3)
    model = torchvision.models.resnet50(num_classes=10)
    plant(model, "layer1.0.bn2", [1, 4])
    plant(model, "layer2.0.bn1", [3])
    calibrated(model, IMAGES[1:])
    images = torch.randn(8, *IMAGES[1:])
    result, difference = pruned_and_measured(model, images)
    assert result.removed["layer1.0.bn2"] == [1, 4] and result.removed["layer2.0.bn1"] == [3]
    assert result.model.layer1[0].conv2.out_channels == 62 and result.model.layer1[0].conv3.in_channels == 62
    assert difference < 1e-5
    # conv3 feeds the residual addition: its channel 0 is the stream's, shared with the downsample branch
    with pytest.raises(PruningError, match=r"layer1.0.downsample.0\[0\]"):
        prune_channels(model, images[:1], {"layer1.0.conv3": [0]})


def test_mobilenet_v2_expansion_channel_goes_only_with_its_depthwise_channel():
    torch.manual_seed(4)
    model = torchvision.models.mobilenet_v2(num_classes=10)
    plant(model, "features.2.conv.0.1", [5, 11])  # expansion conv -> BN -> ReLU6
    plant(model, "features.2.conv.1.1", [5])  # the depthwise channel that reads channel 5
    calibrated(model, IMAGES[1:])
    with torch.no_grad():
        model.features[2].conv[1][1].bias[11] = 0.5  # channel 11's depthwise twin: ReLU6(beta) = 0.5 on a zero input
    images = torch.randn(*IMAGES)
    result, difference = pruned_and_measured(model, images)
    # removing 11 would remove its depthwise twin, a constant 0.5 that the projection reads: it stays
    assert result.removed["features.2.conv.0.1"] == [5] and 11 in result.not_exact["features.2.conv.0.1"]
    assert result.model.features[2].conv[1][0].out_channels == 95
    assert difference < 1e-5


def test_a_dead_depthwise_channel_goes_exactly_with_the_live_channel_that_only_feeds_it():
    torch.manual_seed(4)
    model = torchvision.models.mobilenet_v2(num_classes=10)
    plant(model, "features.2.conv.1.1", [3, 7])  # depthwise channels dead; the expansion channels feeding them live
    calibrated(model, IMAGES[1:])
    images = torch.randn(*IMAGES)
    report = measure_sparsity(model, images)
    expansion = report.filters.set_index(["layer", "filter"]).loc["features.2.conv.0.1", "dead_by_activation"]
    assert not expansion.loc[[3, 7]].any()
    result, difference = pruned_and_measured(model, images)
    assert result.removed["features.2.conv.1.1"] == [3, 7] and {3, 7} <= set(result.removed["features.2.conv.0.1"])
    assert "features.2.conv.1.1" not in result.not_exact and difference < 1e-9


def test_prune_channels_refuses_to_remove_channels_it_was_not_asked_for():
    model = torchvision.models.resnet18(num_classes=10).eval()
    with pytest.raises(PruningError, match=r"would also remove \d+ coupled channel\(s\) not asked for \(.*conv1\[3\]"):
        prune_channels(model, torch.zeros(1, 3, 32, 32), {"layer1.0.conv2": [3]})


def test_naming_coupled_convolutions_removes_each_original_channel_once():
    torch.manual_seed(5)
    model = torchvision.models.resnet18(num_classes=10).eval()
    names = ["conv1", "layer1.0.conv2", "layer1.1.conv2"]
    pruned = prune_channels(model, torch.zeros(1, 3, 32, 32), {name: [3] for name in names})
    for name in names:
        kept = [i for i in range(64) if i != 3]
        assert torch.equal(pruned.get_submodule(name).weight, model.get_submodule(name).weight[kept])
    assert pruned.layer1[0].conv1.in_channels == 63
    forced = prune_channels(model, torch.zeros(1, 3, 32, 32), {"layer1.0.conv2": [3, 4]}, allow_coupled=True)
    assert forced.conv1.out_channels == 62


def output_of(model, module_name, images):
    captured = []
    handle = model.get_submodule(module_name).register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    with torch.no_grad():
        model.eval()(images)
    handle.remove()
    return captured[0]


def test_gamma_criterion_folds_a_constant_into_the_next_convolution_of_any_network():
    from sparsitylib.prune import prune_by_gamma

    torch.manual_seed(6)
    model = torchvision.models.resnet18(num_classes=10)
    plant(model, "layer2.1.bn1", [4], gamma=0.0, beta=0.5)  # a constant 0.5 that layer2.1.conv2 reads
    plant(model, "layer1.0.bn2", [1], gamma=0.0, beta=0.0)  # residual: no activation of its own
    calibrated(model, IMAGES[1:])
    images = torch.randn(*IMAGES)
    result = prune_by_gamma(model, measure_sparsity(model, images), input_shape=IMAGES[1:])
    assert result.removed["layer2.1.bn1"] == [4] and result.model.layer2[1].conv1.out_channels == 127
    assert "residual addition" in result.not_exact["layer1.0.bn2"][1]
    difference = (output_of(model, "layer2.1.bn2", images) - output_of(result.model, "layer2.1.bn2", images)).abs()
    interior, border = difference[:, :, 1:-1, 1:-1], difference.clone()
    border[:, :, 1:-1, 1:-1] = 0
    assert interior.max() < 1e-4 and border.max() > 1e-3  # exact except where zero padding saw the constant


def grouped_network():
    """conv1 -> BN -> ReLU -> conv2 (groups=2) -> BN -> ReLU -> conv3 -> BN -> ReLU -> pool -> linear."""
    from torch import nn

    torch.manual_seed(6)
    def block(in_channels, out_channels, groups=1):
        return [nn.Conv2d(in_channels, out_channels, 3, padding=1, groups=groups, bias=False),
                nn.BatchNorm2d(out_channels), nn.ReLU()]
    model = nn.Sequential(*block(3, 8), *block(8, 8, groups=2), *block(8, 6), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(6, 3))
    plant(model, "1", [1])  # feeds the grouped convolution
    plant(model, "4", [3])  # the grouped convolution's own filter
    plant(model, "7", [2])  # after it: removable
    return calibrated(model, (3, 16, 16))


def test_filters_that_feed_or_belong_to_a_grouped_convolution_are_kept_with_a_reason():
    model = grouped_network()
    images = torch.randn(8, 3, 16, 16)
    result, difference = pruned_and_measured(model, images)  # Torch-Pruning would fail: INDICES element out of bounds
    assert result.removed == {"1": [], "4": [], "7": [2]} and result.model[6].out_channels == 5
    assert result.not_exact["1"][1] == ("kept: feeds a grouped convolution, 3 (groups=2), whose channels "
                                        "Torch-Pruning cannot remove exactly")
    assert result.not_exact["4"][3].startswith("kept: its convolution is grouped (groups=2)")
    assert difference < 1e-5
    gamma = prune_by_gamma(model, measure_sparsity(model, images), input_shape=(3, 16, 16))
    assert gamma.removed["4"] == [] and "grouped" in gamma.not_exact["4"][3] and gamma.model[3].out_channels == 8
    with pytest.raises(PruningError, match=r"would cut the grouped convolution 3 \(groups=2\)"):
        prune_channels(model, images[:1], {"0": [1]})


def test_a_bare_filter_table_of_a_foreign_network_needs_the_input_shape():
    model = resnet18(("layer1.0.bn1", [3]))
    report = measure_sparsity(model, torch.randn(4, *IMAGES[1:]))
    with pytest.raises(PruningError, match="pass the input shape"):
        prune_dead(model, report.filters)
    assert prune_dead(model, report.filters, input_shape=IMAGES[1:]).removed["layer1.0.bn1"] == [3]


def test_timms_fused_batchnorm_activation_is_a_filter_layer_measured_and_pruned_exactly():
    timm = pytest.importorskip("timm", reason="the timm extra is not installed")
    from sparsitylib.filters import find_filter_layers

    torch.manual_seed(0)
    model = timm.create_model("densenet121", num_classes=10)
    layers = find_filter_layers(model)  # the stem and each dense layer's 1x1 convolution -> BatchNormAct2d(ReLU)
    assert len(layers) == 59 and all(layer.measured for layer in layers)
    norm = "features.denseblock1.denselayer1.norm2"
    assert [layer.bn for layer in layers].count(norm) == 1
    model = calibrated(plant(model, norm, [0, 3, 5]), (3, 32, 32))
    result, difference = pruned_and_measured(model, torch.randn(8, 3, 32, 32))
    assert {0, 3, 5} <= set(result.removed[norm]) and difference < 1e-9


def test_a_fused_norm_with_an_activation_that_is_never_zero_says_why_it_has_no_activation_criterion():
    timm = pytest.importorskip("timm", reason="the timm extra is not installed")
    from sparsitylib.filters import find_filter_layers

    layers = find_filter_layers(timm.create_model("efficientnet_b0"))
    # 49 convolutions behind BatchNorm and the 16 squeeze-excite reductions behind SiLU: SiLU throughout, so
    # none has the activation criterion; the dormancy scores observe all but the 16 linear bottlenecks
    assert len(layers) == 65 and not any(layer.measured for layer in layers)
    assert sum(layer.observed for layer in layers) == 49 and sum(layer.bn is not None for layer in layers) == 49
    assert layers[0].reason.startswith("'bn1' applies SiLU itself: SiLU is not ReLU-family (never exactly zero): the activation criterion, Dohare's")
    small = find_filter_layers(timm.create_model("mobilenetv3_small_100"))
    assert len(small) == 44 and sum(layer.measured for layer in small) == 14  # its ReLU layers, not the Hardswish ones
    assert sum(layer.observed for layer in small) == 33


def test_a_zero_gamma_at_the_end_of_a_residual_branch_is_an_idle_branch_counted_apart_not_a_dead_filter():
    timm = pytest.importorskip("timm", reason="the timm extra is not installed")
    from sparsitylib.dormancy import removable

    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=10).eval()  # zero_init_last: every block's bn2 starts at gamma 0
    report = measure_sparsity(model, torch.randn(8, 3, 64, 64))
    branches = [n for n, m in model.named_modules() if n.endswith(".bn2")]
    assert len(branches) == 8
    totals = report.totals
    assert totals["idle_branch_count"] == 64 * 2 + 128 * 2 + 256 * 2 + 512 * 2  # the bn2s' channels
    assert totals["residual_branch_filters"] == 1920 + 128 + 256 + 512  # and the shortcuts' (downsample) BatchNorms
    assert totals["dead_by_gamma_count"] == 0 and totals["dead_by_gamma"] == 0.0  # was 1,920 of 4,800: 40%
    layers = report.layers.set_index("layer")
    assert layers.loc["layer1.0.bn2", "idle_branch"] == 64 and layers.loc["layer1.0.bn1", "idle_branch"] == 0
    definitions = report.totals["definitions"]
    assert definitions["idle-branch"] == {"count": 1920, "of": 2816, "fraction": 1920 / 2816}
    assert definitions["gamma"]["of"] == 4800 - 2816
    assert "residual stream still carries" in removable("idle-branch")

import pytest
import torch
from torch import nn

from sparsitylib.models import ModelSpec, build_model, scaled_widths


@pytest.mark.parametrize("name,convs", [("basicnet", 7), ("vgg11", 8), ("vgg16", 13)])
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_models_run_on_both_input_sizes(name, convs, channels, size):
    widths = tuple(scaled_widths(name, 0.125))
    model = build_model(ModelSpec(name, widths, in_channels=channels, num_classes=7))
    assert len(model.blocks) == convs and model.layer_names[-1] == f"C{convs}"
    assert model(torch.randn(2, channels, size, size)).shape == (2, 7)


def test_basicnet_widths_follow_our_reconstruction():
    assert scaled_widths("basicnet", 1.0) == [64, 128, 128, 256, 256, 512, 512]
    assert scaled_widths("basicnet", 0.25) == [16, 32, 32, 64, 64, 128, 128]


def test_norm_and_activation_options():
    widths = tuple(scaled_widths("basicnet", 0.125))
    plain = build_model(ModelSpec("basicnet", widths, 1, 10, norm="none", activation="leaky_relu", negative_slope=0.2))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert all(block.conv.bias is not None for block in plain.blocks)
    assert plain.blocks[0].act.negative_slope == 0.2
    bn = build_model(ModelSpec("basicnet", widths, 1, 10))
    assert all(isinstance(block.bn, nn.BatchNorm2d) and block.conv.bias is None for block in bn.blocks)


def test_spec_round_trips_through_plain_values():
    spec = ModelSpec("vgg16", tuple(scaled_widths("vgg16", 0.25)), 3, 100)
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_bad_widths_are_rejected():
    with pytest.raises(ValueError, match="7 convolution layers, got 2"):
        build_model(ModelSpec("basicnet", (4, 4), 1, 10))
    with pytest.raises(ValueError, match="at least one channel"):
        build_model(ModelSpec("basicnet", (4, 0, 4, 4, 4, 4, 4), 1, 10))


def test_cifar_resnet18_keeps_small_images_whole_and_scales_its_stages():
    from sparsitylib.filters import find_filter_layers
    from sparsitylib.models import RESNETS, scaled_widths

    spec = ModelSpec("resnet18", tuple(scaled_widths("resnet18", 0.125)), in_channels=1, num_classes=10)
    model = build_model(spec).eval()
    assert spec.widths == (8, 16, 32, 64) and model.conv1.stride == (1, 1) and model.conv1.kernel_size == (3, 3)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert model.layer4[1].conv2.out_channels == 64 and len(model.layer1) == RESNETS["resnet18"][0]
    layers = find_filter_layers(model)
    assert layers[0].name == "bn1" and len(layers) == 1 + 2 * 8 + 3  # stem, two convolutions per block, 3 downsamples
    assert sum(layer.measured for layer in layers) == 1 + 8  # the stem and each block's first convolution


def test_resnets_are_built_with_batchnorm_and_relu_only():
    from sparsitylib.config import ConfigError, RunConfig

    with pytest.raises(ConfigError, match="resnet18 is built with BatchNorm and ReLU only"):
        RunConfig(model="resnet18", norm="none")
    with pytest.raises(ValueError, match="4 stages"):
        build_model(ModelSpec("resnet18", (8, 16, 32), 1, 10))

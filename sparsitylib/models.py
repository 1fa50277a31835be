"""The networks we study: BasicNet and the CIFAR form of VGG-11/16, all built from one plan, and
torchvision's ResNet-18/34 in their CIFAR form.

A plan lists convolution widths, with ``"M"`` for a 2x2 max-pool. Every convolution is a
``ConvBlock``: 3x3 conv -> BatchNorm (or nothing) -> ReLU (or leaky ReLU). After the last block
the network averages over space and applies one linear layer.

BasicNet is our reconstruction of the paper's network: the paper names seven convolution layers
C1-C7, each followed by BatchNorm and ReLU, and a fully connected head, but does not list their
widths in the text we have. We use 64-128-128-256-256-512-512 with 3x3 kernels, max-pooling after
C1, C3 and C5, and global average pooling into one linear layer.

A model is described by a ``ModelSpec`` (plain values), so a pruned network is just a spec with
smaller widths plus a state_dict: it saves and loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

POOL = "M"
PLANS: dict[str, tuple] = {
    "basicnet": (64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512),
    "vgg11": (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    "vgg16": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL),
}
# ResNets in their CIFAR form: blocks per stage; the stages' widths are RESNET_WIDTHS x width.
RESNETS: dict[str, tuple[int, ...]] = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
RESNET_WIDTHS = (64, 128, 256, 512)
MODELS = (*PLANS, *RESNETS)
NORMS = ("batchnorm", "none")
ACTIVATIONS = ("relu", "leaky_relu")


def base_widths(model: str) -> list[int]:
    """The convolution widths of ``model`` at width 1 (a ResNet: one per stage)."""
    return list(RESNET_WIDTHS) if model in RESNETS else [c for c in PLANS[model] if c != POOL]


def scaled_widths(model: str, width: float) -> list[int]:
    """The convolution widths of ``model`` times the width multiplier, rounded."""
    return [int(round(c * width)) for c in base_widths(model)]


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a model; a pruned model differs only in ``widths``."""

    model: str
    widths: tuple[int, ...]
    in_channels: int
    num_classes: int
    norm: str = "batchnorm"
    activation: str = "relu"
    negative_slope: float = 0.01

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, values: dict) -> "ModelSpec":
        return cls(**{**values, "widths": tuple(values["widths"])})


def init_convolutions(model: nn.Module) -> None:
    """He initialization (fan-out, for ReLU) of every convolution's weights, biases zeroed."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class ConvBlock(nn.Module):
    """conv 3x3 -> BatchNorm -> activation: one 'filter' per output channel."""

    def __init__(self, in_channels, out_channels, norm, activation, negative_slope):
        super().__init__()
        use_bn = norm == "batchnorm"
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not use_bn)
        self.bn = nn.BatchNorm2d(out_channels) if use_bn else nn.Identity()
        self.act = nn.ReLU(inplace=True) if activation == "relu" else nn.LeakyReLU(negative_slope, inplace=True)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class ConvNet(nn.Module):
    """A plain feed-forward CNN built from a plan of ConvBlocks and max-pools."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        layers, widths, in_channels = [], iter(spec.widths), spec.in_channels
        for item in PLANS[spec.model]:
            if item == POOL:
                # ceil_mode keeps odd sizes alive: 28 -> 14 -> 7 -> 4 -> 2 -> 1 for VGG on 28x28.
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                out_channels = next(widths)
                layers.append(ConvBlock(in_channels, out_channels, spec.norm, spec.activation, spec.negative_slope))
                in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, spec.num_classes)
        init_convolutions(self)

    @property
    def blocks(self) -> list[ConvBlock]:
        return [m for m in self.features if isinstance(m, ConvBlock)]

    @property
    def layer_names(self) -> list[str]:
        """C1, C2, ... in order, as the paper names BasicNet's layers."""
        return [f"C{i + 1}" for i in range(len(self.blocks))]

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class CifarResNet(nn.Module):
    """torchvision's ResNet (its ``BasicBlock``) in the CIFAR form for small images: a 3x3 stride-1
    stem without max-pool, four stages of ``spec.widths`` channels (strides 1, 2, 2, 2), global
    average pooling and one linear layer. Filters are named by module path (``layer1.0.bn1``)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        stem = spec.widths[0]
        self.conv1 = nn.Conv2d(spec.in_channels, stem, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        stages, in_channels = [], stem
        for index, (width, blocks) in enumerate(zip(spec.widths, RESNETS[spec.model])):
            stride = 1 if index == 0 else 2
            layers = []
            for block in range(blocks):
                downsample = None
                if block == 0 and (stride != 1 or in_channels != width):
                    downsample = nn.Sequential(conv1x1(in_channels, width, stride), nn.BatchNorm2d(width))
                layers.append(BasicBlock(in_channels, width, stride if block == 0 else 1, downsample))
                in_channels = width
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, spec.num_classes)
        init_convolutions(self)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_model(spec: ModelSpec) -> nn.Module:
    if spec.model in RESNETS:
        if len(spec.widths) != len(RESNET_WIDTHS):
            raise ValueError(f"{spec.model} has {len(RESNET_WIDTHS)} stages, got {len(spec.widths)} widths")
        if spec.norm != "batchnorm" or spec.activation != "relu":
            raise ValueError(f"{spec.model} is built with BatchNorm and ReLU only")
        if min(spec.widths) < 1:
            raise ValueError(f"every stage needs at least one channel, got widths {list(spec.widths)}")
        return CifarResNet(spec)
    if spec.model not in PLANS:
        raise ValueError(f"unknown model {spec.model!r}; choose one of {sorted(MODELS)}")
    expected = sum(1 for c in PLANS[spec.model] if c != POOL)
    if len(spec.widths) != expected:
        raise ValueError(f"{spec.model} has {expected} convolution layers, got {len(spec.widths)} widths")
    if min(spec.widths) < 1:
        raise ValueError(f"every layer needs at least one channel, got widths {list(spec.widths)}")
    return ConvNet(spec)


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: attention, then a feed-forward layer (``up`` -> activation ->
    ``down``) whose hidden units are the neurons that can die."""

    def __init__(self, width: int, heads: int, activation: type[nn.Module], context: int):
        super().__init__()
        self.norm1, self.attention = nn.LayerNorm(width), nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2, self.up, self.act, self.down = nn.LayerNorm(width), nn.Linear(width, 4 * width), activation(), nn.Linear(4 * width, width)
        self.register_buffer("causal", torch.ones(context, context, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attention(h, h, h, attn_mask=self.causal, need_weights=False)[0]  # a token sees those before it
        return x + self.down(self.act(self.up(self.norm2(x))))


class TinyTransformerLM(nn.Module):
    """A small language model (token and position embeddings, ``layers`` pre-norm blocks, a linear
    head) for measuring dead feed-forward neurons where people ask about them; not one of the
    configurations ``RunConfig`` trains. Input: token ids (batch, ``context``), each position seeing
    only those before it; output: logits."""

    def __init__(self, vocab: int = 64, width: int = 32, layers: int = 2, heads: int = 4, context: int = 16,
                 activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.embed, self.position = nn.Embedding(vocab, width), nn.Parameter(torch.zeros(1, context, width))
        self.blocks = nn.Sequential(*(TransformerBlock(width, heads, activation, context) for _ in range(layers)))
        self.norm, self.head = nn.LayerNorm(width), nn.Linear(width, vocab)

    def forward(self, tokens):
        return self.head(self.norm(self.blocks(self.embed(tokens) + self.position)))

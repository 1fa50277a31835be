"""Give dead filters back to the network: re-initialize them (ReDo's recycling, Sokar et al. 2023,
applied to the filters the paper finds dead).

``recycle_dead(model, report, optimizer)`` re-initializes each dead filter's incoming convolution
weights with the network's own initialization for that layer (``network_init``: what the network's
library draws its convolutions from; or one the caller passes) and zeroes its bias, as ReDo does;
sets its BatchNorm gamma, beta and running statistics to (1, 0, 0, 1); zeroes its outgoing weights
(the input channels of every layer that reads it, found by Torch-Pruning's dependency graph; for a
depthwise convolution, which reads it alone, that channel's own weights, as in MobileNets'
expansion layers) and resets the optimizer's moments of all those entries. Because the filter was
silent on the measured data and its outgoing weights are now zero, the network's output on those
data is unchanged at that moment; training then decides whether the filter becomes useful again.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from .filters import FilterLayer, find_filter_layers
from .prune import example_input, filters_table, is_depthwise, out_pruner


class RecycleError(ValueError):
    """The model or the request cannot be recycled as asked; the message says why."""


@dataclass
class RecycleResult:
    """The filters recycled per layer, those left alone with the reason, and per layer with a
    recycled filter the initialization its incoming weights were drawn from."""

    recycled: dict[str, list[int]] = field(default_factory=dict)
    skipped: dict[str, dict[int, str]] = field(default_factory=dict)
    init: dict[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.recycled.values())


Initializer = Callable[[nn.Module, torch.Tensor], None]  # (the convolution, a tensor of its weight's shape to fill)


def _he_fan_out(module: nn.Module, weight: torch.Tensor) -> None:
    nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")


def _he_fan_in(module: nn.Module, weight: torch.Tensor) -> None:
    nn.init.kaiming_normal_(weight, nonlinearity="relu")


def _he_fan_out_per_group(module: nn.Module, weight: torch.Tensor) -> None:
    fan_out = weight.shape[0] * weight[0, 0].numel() // getattr(module, "groups", 1)
    nn.init.normal_(weight, 0.0, math.sqrt(2.0 / fan_out))


def _truncated_normal(module: nn.Module, weight: torch.Tensor) -> None:
    nn.init.trunc_normal_(weight, std=0.02)


HE_FAN_OUT = ("He normal, fan-out", _he_fan_out)
# How each library's networks initialize their convolutions, read from their source:
# (the package the network's class is defined in, its class names, (description, initializer)).
NETWORK_INITS = [
    ("sparsitylib.", ("ConvNet", "CifarResNet"), HE_FAN_OUT),
    ("torchvision.models.", ("ResNet", "VGG", "MobileNetV2", "MobileNetV3", "EfficientNet", "MNASNet", "RegNet"),
     HE_FAN_OUT),  # RegNet draws N(0, 2 / (k x k x out)), which is He fan-out
    ("torchvision.models.", ("DenseNet",), ("He normal, fan-in", _he_fan_in)),
    ("torchvision.models.", ("ConvNeXt",), ("truncated normal, std 0.02", _truncated_normal)),
    ("timm.models.", ("ResNet",), HE_FAN_OUT),
    ("timm.models.", ("DenseNet",), ("He normal, fan-in", _he_fan_in)),
    ("timm.models.", ("EfficientNet", "MobileNetV3", "RegNet"),
     ("He normal, fan-out divided by groups (timm)", _he_fan_out_per_group)),
    ("timm.models.", ("ConvNeXt",), ("truncated normal, std 0.02", _truncated_normal)),
]
PYTORCH_DEFAULT = "PyTorch's default (the layer's reset_parameters)"
RECYCLE_INITS = ("network", "pytorch")


def network_init(model: nn.Module) -> dict[str, tuple[str, Initializer]]:
    """Module name -> (description, initializer) for the networks of known libraries inside
    ``model`` (``NETWORK_INITS``; the model itself, ``""``, or a backbone it holds). A convolution
    takes the initialization of the innermost known network that contains it (``_layer_init``)."""
    found = {}
    for name, module in model.named_modules():
        cls = type(module)
        for package, classes, init in NETWORK_INITS:
            if cls.__module__.startswith(package) and cls.__name__ in classes:
                found[name] = init
    return found


def _layer_init(networks: dict[str, tuple[str, Initializer]], conv_name: str) -> tuple[str, Initializer] | None:
    owners = [name for name in networks if name == "" or conv_name.startswith(name + ".")]
    return networks[max(owners, key=len)] if owners else None


def _fresh_weights(conv: nn.Module, init, networks, conv_name: str) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """(weights, bias, description) to draw recycled filters from, in ``conv``'s shape."""
    if callable(init):
        weight = torch.empty_like(conv.weight)
        init(weight)
        return weight, None, getattr(init, "__name__", "the initializer passed")
    known = _layer_init(networks, conv_name) if init == "network" else None
    if known is None:
        fresh = copy.deepcopy(conv)
        fresh.reset_parameters()
        bias = fresh.bias if init == "pytorch" else None  # runs stored before the setting existed re-drew the bias
        what = PYTORCH_DEFAULT if init == "pytorch" else f"{PYTORCH_DEFAULT}: the network's own is not known; pass init="
        return fresh.weight.detach(), bias, what
    description, initializer = known
    weight = torch.empty_like(conv.weight)
    initializer(conv, weight)
    return weight, None, description


def _reset_optimizer_entries(optimizer: torch.optim.Optimizer | None, parameter: torch.Tensor, index) -> None:
    """Zero the optimizer's per-entry state (Adam's moments, SGD's momentum buffer) at ``index``."""
    if optimizer is None or parameter not in optimizer.state:
        return
    for value in optimizer.state[parameter].values():
        if isinstance(value, torch.Tensor) and value.shape == parameter.shape:
            value[index] = 0


def _consumers(graph: tp.DependencyGraph, conv: nn.Conv2d, index: int) -> tuple[list[nn.Module], str | None]:
    """The layers that read output channel ``index`` of ``conv`` (their input channels), or why it
    cannot be recycled alone (its channel is tied to other layers' channels). A depthwise
    convolution reads channel ``index`` alone and writes its own channel ``index``: it is the
    reader whose weight is zeroed, and what reads its output is left as it is (Torch-Pruning's
    group runs on through it, as pruning must)."""
    readers = []
    beyond: set[int] = set()  # the modules after a depthwise reader, in the group's order
    for item in graph.get_pruning_group(conv, out_pruner(conv), idxs=[index]):
        source, module, handler = item.dep.source.module, item.dep.target.module, item.dep.handler.__name__
        if id(source) in beyond:
            beyond.add(id(module))
            continue
        if is_depthwise(module) and module is not conv:
            readers.append((module, list(item.idxs)))
            beyond.add(id(module))
            continue
        if isinstance(module, (nn.Conv2d, nn.Linear)) and handler == "prune_out_channels" and module is not conv:
            return [], "its channel is tied to other layers' channels (a residual addition or concatenation)"
        if isinstance(module, (nn.Conv2d, nn.Linear)) and handler == "prune_in_channels":
            if isinstance(module, nn.Conv2d) and module.groups not in (1, module.in_channels):
                return [], f"it feeds a grouped convolution (groups={module.groups})"
            readers.append((module, list(item.idxs)))
    return readers, None


def recycle_dead(model: nn.Module, report, optimizer: torch.optim.Optimizer | None = None,
                 column: str = "dead_by_activation", input_shape=None, init="network") -> RecycleResult:
    """Re-initialize the filters marked in ``column`` of ``report`` (a ``SparsityReport`` of this
    model, its per-filter table, a run record, or the monitor's latest rows), in place. ``input_shape`` (channels,
    height, width) of the images, for the dependency graph: sparsitylib's networks and reports
    measured by ``measure_sparsity`` know theirs.

    ``init``: where the incoming weights are drawn from. ``"network"`` (the default): the network's
    own initialization for that layer (``network_init``: sparsitylib's, torchvision's and timm's
    CNNs), the bias zeroed; a layer of a network not known there gets PyTorch's default, and
    ``RecycleResult.init`` says so. ``"pytorch"``: the layer's ``reset_parameters``, bias included
    (what recycling did before this option). Or a function that fills a weight tensor in place,
    such as ``torch.nn.init.orthogonal_``; the bias is zeroed."""
    if not (callable(init) or init in RECYCLE_INITS):
        raise RecycleError(f"init={init!r}: use one of {list(RECYCLE_INITS)} or a function that fills a weight "
                           "tensor in place (e.g. torch.nn.init.kaiming_normal_)")
    filters = filters_table(report, RecycleError)
    if column not in filters:
        raise RecycleError(f"the report has no column {column!r}; use one of "
                           f"{[c for c in filters.columns if filters[c].dtype == bool]}")
    inputs = example_input(model, input_shape or getattr(report, "input_shape", None), RecycleError)
    layers: list[FilterLayer] = find_filter_layers(model)
    marked = {name: sorted(int(f) for f in rows.loc[rows[column].astype(bool), "filter"])
              for name, rows in filters.groupby("layer", sort=False)}
    result = RecycleResult()
    if not any(marked.values()):
        return result
    twin = copy.deepcopy(model).eval()  # tracing runs a forward pass: never on the model itself
    graph = tp.DependencyGraph().build_dependency(twin, example_inputs=inputs)
    names = {id(module): name for name, module in twin.named_modules()}
    networks = network_init(model) if init == "network" else {}
    with torch.no_grad():
        for layer in layers:
            indices = marked.get(layer.name, [])
            if not indices:
                continue
            conv, twin_conv = model.get_submodule(layer.conv), twin.get_submodule(layer.conv)
            weight, bias, described = _fresh_weights(conv, init, networks, layer.conv)
            bn = model.get_submodule(layer.bn) if layer.bn else None
            for index in indices:
                readers, reason = _consumers(graph, twin_conv, index)
                if reason:
                    result.skipped.setdefault(layer.name, {})[index] = reason
                    continue
                conv.weight[index] = weight[index]
                _reset_optimizer_entries(optimizer, conv.weight, index)
                if conv.bias is not None:
                    conv.bias[index] = bias[index] if bias is not None else 0.0
                    _reset_optimizer_entries(optimizer, conv.bias, index)
                if bn is not None:
                    bn.weight[index], bn.bias[index] = 1.0, 0.0
                    if getattr(bn, "running_mean", None) is not None:  # a LayerNorm has none
                        bn.running_mean[index], bn.running_var[index] = 0.0, 1.0
                    _reset_optimizer_entries(optimizer, bn.weight, index)
                    _reset_optimizer_entries(optimizer, bn.bias, index)
                for twin_module, inputs in readers:
                    module = model.get_submodule(names[id(twin_module)])
                    entries = (inputs,) if is_depthwise(module) else (slice(None), inputs)  # depthwise: channel i is weight[i]
                    module.weight[entries] = 0
                    _reset_optimizer_entries(optimizer, module.weight, entries)
                result.recycled.setdefault(layer.name, []).append(index)
                result.init[layer.name] = described
    return result

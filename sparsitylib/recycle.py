"""Give dead filters back to the network: re-initialize them (ReDo's recycling, Sokar et al. 2023,
applied to the filters the paper finds dead).

``recycle_dead(model, report, optimizer)`` re-initializes each dead filter's incoming convolution
weights (the convolution's own ``reset_parameters``), its BatchNorm gamma, beta and running
statistics (1, 0, 0, 1), zeroes its outgoing weights (the input channels of every layer that
reads it, found by Torch-Pruning's dependency graph; for a depthwise convolution, which reads it
alone, that channel's own weights, as in MobileNets' expansion layers) and resets the optimizer's
moments of all those entries. Because the filter was silent on the measured data and its outgoing weights are
now zero, the network's output on those data is unchanged at that moment; training then decides
whether the filter becomes useful again.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from .filters import FilterLayer, find_filter_layers
from .prune import example_input, filters_table, is_depthwise


class RecycleError(ValueError):
    """The model or the request cannot be recycled as asked; the message says why."""


@dataclass
class RecycleResult:
    """The filters recycled per layer, and those left alone with the reason."""

    recycled: dict[str, list[int]] = field(default_factory=dict)
    skipped: dict[str, dict[int, str]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.recycled.values())


def _reset_optimizer_entries(optimizer: torch.optim.Optimizer | None, parameter: torch.Tensor, index) -> None:
    """Zero the optimizer's per-entry state (Adam's moments, SGD's momentum buffer) at ``index``."""
    if optimizer is None or parameter not in optimizer.state:
        return
    for value in optimizer.state[parameter].values():
        if isinstance(value, torch.Tensor) and value.shape == parameter.shape:
            value[index] = 0


def _consumers(graph: tp.DependencyGraph, conv: nn.Conv2d, index: int) -> tuple[list[nn.Module], str | None]:
    """The layers that read output channel ``index`` of ``conv`` (their input channels), or why it
    cannot be recycled alone (its channel is tied to other convolutions' channels). A depthwise
    convolution reads channel ``index`` alone and writes its own channel ``index``: it is the
    reader whose weight is zeroed, and what reads its output is left as it is (Torch-Pruning's
    group runs on through it, as pruning must)."""
    readers = []
    beyond: set[int] = set()  # the modules after a depthwise reader, in the group's order
    for item in graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[index]):
        source, module, handler = item.dep.source.module, item.dep.target.module, item.dep.handler.__name__
        if id(source) in beyond:
            beyond.add(id(module))
            continue
        if is_depthwise(module) and module is not conv:
            readers.append((module, list(item.idxs)))
            beyond.add(id(module))
            continue
        if isinstance(module, nn.Conv2d) and handler == "prune_out_channels" and module is not conv:
            return [], "its channel is tied to other convolutions' channels (a residual addition or concatenation)"
        if isinstance(module, (nn.Conv2d, nn.Linear)) and handler == "prune_in_channels":
            if isinstance(module, nn.Conv2d) and module.groups not in (1, module.in_channels):
                return [], f"it feeds a grouped convolution (groups={module.groups})"
            readers.append((module, list(item.idxs)))
    return readers, None


def recycle_dead(model: nn.Module, report, optimizer: torch.optim.Optimizer | None = None,
                 column: str = "dead_by_activation", input_shape=None) -> RecycleResult:
    """Re-initialize the filters marked in ``column`` of ``report`` (a ``SparsityReport`` of this
    model, its per-filter table, a run record, or the monitor's latest rows), in place. ``input_shape`` (channels,
    height, width) of the images, for the dependency graph: sparsitylib's networks and reports
    measured by ``measure_sparsity`` know theirs."""
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
    with torch.no_grad():
        for layer in layers:
            indices = marked.get(layer.name, [])
            if not indices:
                continue
            conv, twin_conv = model.get_submodule(layer.conv), twin.get_submodule(layer.conv)
            fresh = copy.deepcopy(conv)
            fresh.reset_parameters()
            bn = model.get_submodule(layer.bn) if layer.bn else None
            for index in indices:
                readers, reason = _consumers(graph, twin_conv, index)
                if reason:
                    result.skipped.setdefault(layer.name, {})[index] = reason
                    continue
                conv.weight[index] = fresh.weight[index]
                _reset_optimizer_entries(optimizer, conv.weight, index)
                if conv.bias is not None:
                    conv.bias[index] = fresh.bias[index]
                    _reset_optimizer_entries(optimizer, conv.bias, index)
                if bn is not None:
                    bn.weight[index], bn.bias[index] = 1.0, 0.0
                    bn.running_mean[index], bn.running_var[index] = 0.0, 1.0
                    _reset_optimizer_entries(optimizer, bn.weight, index)
                    _reset_optimizer_entries(optimizer, bn.bias, index)
                for twin_module, inputs in readers:
                    module = model.get_submodule(names[id(twin_module)])
                    entries = (inputs,) if is_depthwise(module) else (slice(None), inputs)  # depthwise: channel i is weight[i]
                    module.weight[entries] = 0
                    _reset_optimizer_entries(optimizer, module.weight, entries)
                result.recycled.setdefault(layer.name, []).append(index)
    return result

"""Turn dead filters into a smaller dense network.

The channel surgery is Torch-Pruning's ``DependencyGraph``: removing a convolution's output
channels also removes the coupled BatchNorm entries and the next layer's input channels, in any
architecture the graph can trace (tested on torchvision's ResNet-18 too).

- ``prune_dead``: removes exactly the filters dead by the activation criterion. They output zero
  on every training image, so in inference mode the pruned network computes the same function on
  those images (and on any input that does not wake a dead filter up).
- ``prune_by_gamma``: removes the filters with |gamma| below a threshold. Such a filter outputs the
  constant act(beta), not zero, so that constant is first folded into what consumes it (the next
  BatchNorm's running mean or conv bias, or the classifier's bias). The fold is exact except at
  image borders, where the next convolution's zero padding used to see the constant: report the
  logit difference (``max_logit_difference``).

A layer is never emptied: if every filter of a layer qualifies, the strongest one (largest
maximum activation, then largest |gamma|) is kept and the result says so.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import fx, nn

from . import __version__
from .files import check_output_file, save_atomically
from .filters import FilterLayer, find_filter_layers, trace
from .models import ConvNet, ModelSpec, build_model
from .sparsity import ACTIVATION_THRESHOLD, GAMMA_THRESHOLD


class PruningError(ValueError):
    """The model or the request cannot be pruned as asked; the message says why."""


@dataclass
class PruneResult:
    """The pruned network (a fresh ``ConvNet`` built from ``spec``), what was removed per layer,
    which layers kept one filter that qualified (so as not to be emptied), and notes."""

    model: nn.Module
    spec: ModelSpec | None
    removed: dict[str, list[int]]
    kept_to_avoid_empty_layer: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    not_exact: dict[str, dict[int, str]] = field(default_factory=dict)

    @property
    def removed_count(self) -> int:
        return sum(len(v) for v in self.removed.values())

    def save(self, path) -> None:
        """Save the pruned model in the one format ``load_pruned_model`` reads (``save_pruned_model``)."""
        save_pruned_model(self.model, path)


SHAPE_ATTRIBUTES = {nn.Conv2d: ("in_channels", "out_channels", "groups"), nn.BatchNorm2d: ("num_features",),
                    nn.BatchNorm1d: ("num_features",), nn.Linear: ("in_features", "out_features")}
UNIT_LAYERS = (nn.Conv2d, nn.Linear)


def out_pruner(module: nn.Module):
    """Torch-Pruning's function that removes ``module``'s output channels (or features)."""
    return tp.prune_linear_out_channels if isinstance(module, nn.Linear) else tp.prune_conv_out_channels


def save_pruned_model(model: nn.Module, path, rebuild_with: str | None = None) -> None:
    """Save a pruned model of any architecture as plain tensors, numbers and strings: how to build
    the unpruned network (``rebuild_with``, the MODEL string of ``inspection.build_user_model``, or
    for sparsitylib's own networks their ``ModelSpec``), each layer's channel counts, and the
    state_dict. ``load_pruned_model`` reads it back with ``torch.load(weights_only=True)``.

    The file is written through a temporary file in the same folder, so a failed write (a full
    disk) leaves none; it raises ``files.OutputPathError`` then."""
    spec = getattr(model, "spec", None)
    if rebuild_with is None and not isinstance(spec, ModelSpec):
        raise PruningError("pass rebuild_with, the MODEL string that builds the unpruned network "
                           "(e.g. 'torchvision:resnet18:num_classes=10'); only sparsitylib's own networks know it")
    shapes = {name: {attr: getattr(module, attr) for attr in attrs}
              for name, module in model.named_modules()
              for kind, attrs in SHAPE_ATTRIBUTES.items() if isinstance(module, kind)}
    save_atomically({"rebuild_with": rebuild_with, "spec": spec.to_dict() if rebuild_with is None else None,
                     "shapes": shapes, "state_dict": model.state_dict()}, path)


def load_pruned_model(path) -> nn.Module:
    """The model saved by ``save_pruned_model`` (``inspect --prune``, ``prune --save``,
    ``PruneResult.save``): the unpruned network rebuilt, each layer resized to the saved channel
    counts, then the saved weights loaded; in eval mode. A MODEL string naming pretrained weights
    (``weights=DEFAULT``) loads them first, from torch's cache where ``inspect`` put them."""
    from .inspection import build_user_model

    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or "state_dict" not in saved or not (saved.get("rebuild_with") or saved.get("spec")):
        raise PruningError(f"{path} is not a pruned model saved by sparsitylib (save_pruned_model)")
    model = (build_user_model(saved["rebuild_with"]) if saved.get("rebuild_with")
             else build_model(ModelSpec.from_dict(saved["spec"])))
    state = saved["state_dict"]
    for name, attributes in saved.get("shapes", {}).items():  # files from before shapes were saved: widths in spec
        module = model.get_submodule(name)
        for attr, value in attributes.items():
            setattr(module, attr, value)
        for tensor_name, current in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            key = f"{name}.{tensor_name}" if name else tensor_name
            if key in state and state[key].shape != current.shape:
                resized = torch.empty_like(state[key])
                if isinstance(current, nn.Parameter):
                    setattr(module, tensor_name, nn.Parameter(resized, requires_grad=current.requires_grad))
                else:
                    module.register_buffer(tensor_name, resized)
    model.load_state_dict(state)
    return model.eval()


# --- generic surgery ---------------------------------------------------------------------------


def _dependency_graph(model: nn.Module, example_inputs: torch.Tensor) -> tp.DependencyGraph:
    try:
        return tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs)
    except Exception as error:  # tracing failures come in many types
        raise PruningError(f"Torch-Pruning's dependency graph cannot trace this model: {type(error).__name__}: {error}") from error


def _conv(model: nn.Module, name: str, indices) -> nn.Module:
    """Convolution (or linear layer) ``name`` of ``model``, checked to have output ``indices``."""
    try:
        module = model.get_submodule(name)
    except AttributeError as error:
        raise PruningError(f"the model has no module {name!r}") from error
    if not isinstance(module, UNIT_LAYERS):
        raise PruningError(f"{name} is a {type(module).__name__}, not a Conv2d or Linear")
    outputs = module.out_features if isinstance(module, nn.Linear) else module.out_channels
    if max(indices) >= outputs or min(indices) < 0:
        raise PruningError(f"{name} has {outputs} output channels; cannot remove {sorted(indices)}")
    return module


def coupled_channels(graph: tp.DependencyGraph, model: nn.Module, name: str, indices) -> set[tuple[str, int]]:
    """The (convolution, output channel) pairs that removing ``indices`` of convolution ``name``
    removes with them: Torch-Pruning's group (a residual addition or a concatenation ties
    channels of several convolutions together)."""
    names = {id(module): module_name for module_name, module in model.named_modules()}
    module = _conv(model, name, indices)
    group = graph.get_pruning_group(module, out_pruner(module), idxs=sorted(indices))
    return {(names[id(item.dep.target.module)], int(index)) for item in group
            if isinstance(item.dep.target.module, UNIT_LAYERS) and item.dep.handler.__name__ == "prune_out_channels"
            for index in item.idxs}


def is_depthwise(module: nn.Module) -> bool:
    """A depthwise convolution (groups == in_channels == out_channels): channel i reads channel i
    alone, so its channels go one for one with those it reads."""
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels == module.out_channels


def grouped_convolution(graph: tp.DependencyGraph, model: nn.Module, name: str, indices) -> tuple[str, int] | None:
    """A convolution with groups > 1 that removing ``indices`` of convolution ``name`` would cut
    (``name`` itself, or one that reads those channels), as (its name, groups); else None.
    Torch-Pruning cuts a grouped convolution's weight as if it were ungrouped, which fails or breaks
    the groups. A depthwise convolution (groups == in_channels == out_channels) is not one: its
    channels go one for one with the channel it reads, which Torch-Pruning prunes exactly."""
    names = {id(module): module_name for module_name, module in model.named_modules()}
    module = _conv(model, name, indices)
    group = graph.get_pruning_group(module, out_pruner(module), idxs=sorted(indices))
    for item in group:
        module = item.dep.target.module
        if isinstance(module, nn.Conv2d) and module.groups > 1 and not is_depthwise(module):
            return names[id(module)], module.groups
    return None


def _grouped_reason(conv: str, grouped: tuple[str, int]) -> str:
    """Why a filter of convolution ``conv`` is kept when removing it would cut ``grouped``."""
    name, groups = grouped
    what = "its convolution is grouped" if name == conv else f"feeds a grouped convolution, {name}"
    return f"kept: {what} (groups={groups}), whose channels Torch-Pruning cannot remove exactly"


def _clusters(requests: dict[str, set[tuple[str, int]]]) -> list[tuple[list[str], set[tuple[str, int]]]]:
    """Requests whose coupled channels share a convolution, merged: (names, union of channels)."""
    clusters: list[tuple[list[str], set[tuple[str, int]]]] = []
    for name, channels in requests.items():
        convs = {conv for conv, _ in channels}
        touching = [c for c in clusters if convs & {conv for conv, _ in c[1]}]
        merged = ([name] + [n for c in touching for n in c[0]], channels.union(*(c[1] for c in touching)))
        clusters = [c for c in clusters if not any(c is t for t in touching)] + [merged]
    return clusters


def prune_channels(model: nn.Module, example_inputs: torch.Tensor, removals: dict[str, list[int]],
                   allow_coupled: bool = False) -> nn.Module:
    """A copy of ``model`` without the given output channels of the named convolutions, through
    Torch-Pruning's dependency graph (the BatchNorm entries and the next layers' input channels
    go with them).

    Indices always refer to the original model: naming several convolutions that a residual
    addition couples removes each original channel once. A removal that would also remove
    channels the caller did not name (coupled convolutions' channels) is refused, since those may
    be alive, unless ``allow_coupled``."""
    pruned = copy.deepcopy(model).eval()
    graph = _dependency_graph(pruned, example_inputs)
    requests = {name: coupled_channels(graph, pruned, name, indices) for name, indices in removals.items() if indices}
    named = {(name, int(i)) for name, indices in removals.items() for i in indices}
    for names, channels in _clusters(requests):
        unnamed = sorted(channels - named)
        if unnamed and not allow_coupled:
            shown = ", ".join(f"{conv}[{i}]" for conv, i in unnamed[:6]) + (" ..." if len(unnamed) > 6 else "")
            raise PruningError(
                f"removing the named channels of {', '.join(sorted(names))} would also remove {len(unnamed)} coupled "
                f"channel(s) not asked for ({shown}): they share a residual addition or a concatenation. Name them "
                "too if they are dead, or pass allow_coupled=True to remove them anyway")
        root = names[0]
        indices = sorted(i for conv, i in channels if conv == root)
        grouped = grouped_convolution(graph, pruned, root, indices)
        if grouped:
            raise PruningError(f"removing channels {indices} of {root} would cut the grouped convolution {grouped[0]} "
                               f"(groups={grouped[1]}), which Torch-Pruning cannot prune exactly")
        group = graph.get_pruning_group(pruned.get_submodule(root), out_pruner(pruned.get_submodule(root)), idxs=indices)
        if not graph.check_pruning_group(group):
            raise PruningError(f"removing channels {indices} of {root} would empty a layer coupled to it")
        group.prune()
    return pruned


# --- removing dead filters, any model ----------------------------------------------------------


def filters_table(stats, error: type[Exception] = PruningError) -> pd.DataFrame:
    """The per-filter table of ``stats``: a per-filter DataFrame, a SparsityReport or a run record
    (anything else raises ``error``: pruning and recycling each name their own)."""
    if isinstance(stats, pd.DataFrame):
        return stats
    if hasattr(stats, "filters") and isinstance(stats.filters, pd.DataFrame):
        return stats.filters
    if isinstance(stats, dict) and "filters" in stats:
        return pd.DataFrame(stats["filters"])
    raise error("expected a per-filter DataFrame (layer, filter and the criterion's column), a SparsityReport "
                "or a run record")


def _select(layers: list[FilterLayer], filters: pd.DataFrame, mask: pd.Series) -> tuple[dict, dict, list]:
    """Filters to remove per layer, never all of a layer."""
    removed, kept, notes = {}, {}, []
    for layer in layers:
        rows = filters[filters["layer"] == layer.name]
        if len(rows) != layer.channels:
            raise PruningError(f"stats describe {len(rows)} filters in {layer.name} but the model has "
                               f"{layer.channels}: were they measured on this model?")
        chosen = rows.loc[mask.loc[rows.index], "filter"].astype(int).tolist()
        if chosen and len(chosen) == len(rows):
            strength = rows.assign(abs_gamma=rows["gamma"].abs().fillna(0)).sort_values(
                ["max_activation", "abs_gamma"], ascending=False)
            keep = int(strength["filter"].iloc[0])
            chosen.remove(keep)
            kept[layer.name] = keep
            notes.append(f"every filter of {layer.name} qualified; kept filter {keep}, the strongest, so the layer is not emptied")
        removed[layer.name] = sorted(chosen)
    return removed, kept, notes


def _carries_nothing(filters: pd.DataFrame, dead: pd.Series, layers: list[FilterLayer], threshold: float
                     ) -> set[tuple[str, int]]:
    """(convolution, channel) pairs whose output is zero on every measured image where anything
    reads it: the filters judged dead, and channels zero after the residual stream's activation."""
    conv_of = {layer.name: layer.conv for layer in layers}
    rows = filters[filters["layer"].isin(conv_of)]
    silent = dead.loc[rows.index].astype(bool)
    if "stream_max_activation" in rows:
        silent |= rows["stream_max_activation"].lt(threshold)
    return {(conv_of[layer], int(f)) for layer, f in zip(rows.loc[silent, "layer"], rows.loc[silent, "filter"])}


def _feeding_depthwise(graph: fx.GraphModule, layers: list[FilterLayer]) -> dict[str, str]:
    """Convolution -> the depthwise convolution that alone reads its output (after its BatchNorm
    and activation), as in MobileNets' expansion layers: channel i of the first feeds only channel
    i of the second, so when that one carries nothing, both go exactly, whatever the first carries.
    ``graph``: the model traced (``filters.trace``), as ``layers`` were found in it."""
    modules = dict(graph.named_modules())
    nodes = {node.name: node for node in graph.graph.nodes}
    feeding = {}
    for layer in layers:
        if layer.activation is None:
            continue
        users = list(nodes[layer.activation].users)
        if len(users) == 1 and users[0].op == "call_module":
            if is_depthwise(modules[users[0].target]):
                feeding[layer.conv] = users[0].target
    return feeding


def example_input(model: nn.Module, input_shape=None, error: type[Exception] = PruningError) -> torch.Tensor:
    """A dummy batch for tracing the dependency graph; any image size traces the same graph.
    Without ``input_shape`` only sparsitylib's own networks know theirs (else ``error``)."""
    spec = getattr(model, "spec", None)
    if input_shape is None and spec is None:
        raise error("pass the input shape (channels, height, width), e.g. that of the images the report was "
                    "measured on; a SparsityReport from measure_sparsity knows it, a bare filter table does not")
    shape = tuple(input_shape) if input_shape is not None else (spec.in_channels, 32, 32)
    first = next(model.parameters(), None)
    device, dtype = (first.device, first.dtype) if first is not None else (torch.device("cpu"), torch.float32)
    return torch.zeros(1, *shape, device=device, dtype=dtype)  # a float64 model traces with float64


def rebuild(model: ConvNet, pruned: nn.Module) -> tuple[ConvNet, ModelSpec]:
    """A fresh model of ``model``'s kind with ``pruned``'s widths, holding ``pruned``'s weights."""
    widths = tuple(block.conv.out_channels for block in pruned.blocks)
    spec = ModelSpec(**{**model.spec.to_dict(), "widths": widths})
    rebuilt = build_model(spec)
    rebuilt.load_state_dict(pruned.state_dict())
    return rebuilt.eval(), spec


def _finish(model: nn.Module, pruned: nn.Module) -> tuple[nn.Module, ModelSpec | None]:
    return rebuild(model, pruned) if isinstance(model, ConvNet) else (pruned.eval(), None)


def _check_relu(model: nn.Module) -> None:
    spec = getattr(model, "spec", None)
    leaky = (spec is not None and spec.activation != "relu") or any(isinstance(m, nn.LeakyReLU) for m in model.modules())
    if leaky:
        raise PruningError("removing filters that never fire is exact only with ReLU; this model uses leaky ReLU, "
                           "whose 'dead' filters still pass a scaled negative signal")


def prune_dead(model: nn.Module, stats, activation_threshold: float | None = None, input_shape=None) -> PruneResult:
    """Remove the filters dead by the activation criterion, where that is exact.

    ``stats``: the per-filter table of ``measure_sparsity`` on this model (a ``SparsityReport``,
    its ``filters`` DataFrame, or a run record). A dead filter is removed only when every channel
    Torch-Pruning couples to it carries nothing too (zero after its activation, or after the
    residual stream's activation; a channel read only by a depthwise channel that carries nothing
    goes with it, whatever it carries) and its removal cuts no grouped convolution (depthwise ones
    are fine); the others are kept and listed in ``not_exact`` with the reason. With
    ``activation_threshold``, deadness is re-decided from ``max_activation``.
    ``input_shape`` (channels, height, width): by default the shape the ``SparsityReport`` was
    measured on (a bare filter table or run record needs it for networks other than sparsitylib's).
    """
    _check_relu(model)
    filters = filters_table(stats).reset_index(drop=True)
    threshold = ACTIVATION_THRESHOLD if activation_threshold is None else activation_threshold
    if not 0 <= threshold < 1:
        raise PruningError(f"activation_threshold must be in [0, 1), got {activation_threshold}")
    mask = (filters["dead_by_activation"].astype(bool) if activation_threshold is None
            else filters["max_activation"] < activation_threshold)
    traced = trace(model)
    layers = find_filter_layers(model, traced)
    removed, kept, notes = _select(layers, filters, mask)
    if not any(removed.values()):
        return _unchanged(model, removed, kept, notes + ["no filter is dead by the activation criterion: the model is unchanged"])
    inputs = example_input(model, input_shape or getattr(stats, "input_shape", None))
    graph = _dependency_graph(copy.deepcopy(model).eval(), inputs)
    silent = _carries_nothing(filters, mask, layers, threshold)
    feeding = _feeding_depthwise(traced, layers)
    conv_of = {layer.name: layer.conv for layer in layers}
    layer_of = {layer.conv: layer.name for layer in layers}
    not_exact: dict[str, dict[int, str]] = {}
    exact: dict[str, set[int]] = {}
    for layer_name, indices in removed.items():
        grouped = grouped_convolution(graph, graph.model, conv_of[layer_name], indices) if indices else None
        for index in indices:
            if grouped:
                not_exact.setdefault(layer_name, {})[index] = _grouped_reason(conv_of[layer_name], grouped)
                continue
            coupled = coupled_channels(graph, graph.model, conv_of[layer_name], [index])
            alive = sorted((conv, i) for conv, i in coupled - silent  # a channel read only by a silent depthwise one is free
                           if not (conv in feeding and (feeding[conv], i) in silent & coupled))
            if alive:
                shown = ", ".join(f"{conv}[{i}]" for conv, i in alive[:4]) + (" ..." if len(alive) > 4 else "")
                not_exact.setdefault(layer_name, {})[index] = f"coupled to channels that are not shown to carry nothing: {shown}"
                continue
            for conv, coupled_index in coupled:  # the filter itself and what goes with it, listed where it belongs
                if conv in layer_of:
                    exact.setdefault(layer_of[conv], set()).add(coupled_index)
    removed = {layer.name: sorted(exact.get(layer.name, ())) for layer in layers
               if layer.name in removed or exact.get(layer.name)}
    if not_exact:
        notes.append(f"{sum(len(v) for v in not_exact.values())} dead filter(s) kept: removing them would also remove "
                     "coupled channels that are alive or not measured, or cut a grouped convolution (see not_exact)")
    if not any(removed.values()):
        return _unchanged(model, removed, kept, notes + ["no dead filter can be removed exactly: the model is unchanged"],
                          not_exact)
    pruned = prune_channels(model, inputs, {conv_of[name]: idx for name, idx in removed.items() if idx})
    final, spec = _finish(model, pruned)
    return PruneResult(final, spec, removed, kept, notes, not_exact)


def _unchanged(model: nn.Module, removed, kept, notes, not_exact=None) -> PruneResult:
    final, spec = _finish(model, copy.deepcopy(model))
    return PruneResult(final, spec, removed, kept, notes, not_exact or {})


def prune_by_gamma(model: nn.Module, stats, gamma_threshold: float = GAMMA_THRESHOLD, input_shape=None) -> PruneResult:
    """Remove the filters with |gamma| < ``gamma_threshold``, folding their constant output
    act(beta) into the layers that consume it: a convolution (into its BatchNorm's running mean,
    or its bias) or a linear layer after global pooling (its bias), through max-pooling, average
    pooling, dropout and flattening. A filter whose output reaches anything else (a residual
    addition, a concatenation, a depthwise convolution), or whose channel is coupled to other
    convolutions' channels, is kept and listed in ``not_exact`` with the reason."""
    if not 0 < gamma_threshold < 1:
        raise PruningError(f"gamma_threshold must be in (0, 1), got {gamma_threshold}")
    layers = find_filter_layers(model)
    if not any(layer.bn is not None for layer in layers):
        raise PruningError("the model has no BatchNorm, so the gamma criterion does not apply; use prune_dead")
    filters = filters_table(stats).reset_index(drop=True)
    gamma = {layer.name: model.get_submodule(layer.bn).weight.detach().abs().cpu() for layer in layers if layer.bn}
    mask = pd.Series([bool(gamma[name][f] < gamma_threshold) if name in gamma else False
                      for name, f in zip(filters["layer"], filters["filter"])], index=filters.index)
    removed, kept, notes = _select(layers, filters, mask)
    if not any(removed.values()):
        return _unchanged(model, removed, kept, notes + [f"no filter has |gamma| < {gamma_threshold}: the model is unchanged"])
    folded = copy.deepcopy(model).eval()
    graph = trace(folded)
    inputs = example_input(model, input_shape or getattr(stats, "input_shape", None))
    dependencies = _dependency_graph(copy.deepcopy(model).eval(), inputs)
    not_exact: dict[str, dict[int, str]] = {}
    for layer in layers:
        wanted = removed.get(layer.name, [])
        consumers, reason = _constant_consumers(graph, layer) if wanted else ([], None)
        grouped = grouped_convolution(dependencies, dependencies.model, layer.conv, wanted) if wanted else None
        reason = _grouped_reason(layer.conv, grouped) if grouped else reason
        for index in list(wanted):
            coupled = coupled_channels(dependencies, dependencies.model, layer.conv, [index]) - {(layer.conv, index)}
            why = reason or (f"coupled to {', '.join(f'{c}[{i}]' for c, i in sorted(coupled)[:4])}" if coupled else None)
            if why:
                wanted.remove(index)
                not_exact.setdefault(layer.name, {})[index] = why
        if wanted:
            _fold_constant(folded, graph, layers, layer, wanted, consumers)
    if not_exact:
        notes.append(f"{sum(len(v) for v in not_exact.values())} filter(s) with small |gamma| kept: their constant "
                     "output cannot be folded away (see not_exact)")
    if not any(removed.values()):
        return _unchanged(model, removed, kept, notes + ["no such filter can be folded away: the model is unchanged"], not_exact)
    conv_of = {layer.name: layer.conv for layer in layers}
    pruned = prune_channels(folded, inputs, {conv_of[name]: idx for name, idx in removed.items() if idx})
    final, spec = _finish(model, pruned)
    notes.append("constant outputs act(beta) folded into the next layer; inexact at image borders (zero padding)")
    return PruneResult(final, spec, removed, kept, notes, not_exact)


PASS_CONSTANT_MODULES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout, nn.Identity,
                         nn.Flatten)
PASS_CONSTANT_FUNCTIONS = {torch.flatten, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.dropout}


def _constant_consumers(graph: fx.GraphModule, layer: FilterLayer) -> tuple[list[str], str | None]:
    """The convolutions and linear layers that read ``layer``'s output, through layers that keep a
    constant channel constant; or a reason why its constant cannot be folded into them."""
    if not layer.measured:
        return [], layer.reason or "no activation after BatchNorm"
    modules = dict(graph.named_modules())
    nodes = {node.name: node for node in graph.graph.nodes}
    consumers, frontier = [], list(nodes[layer.activation].users)
    while frontier:
        node = frontier.pop()
        module = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(module, nn.Conv2d) and module.groups == 1:
            consumers.append(node.target)
        elif isinstance(module, nn.Linear):
            consumers.append(node.target)
        elif isinstance(module, PASS_CONSTANT_MODULES) or (node.op == "call_function" and node.target in PASS_CONSTANT_FUNCTIONS) \
                or (node.op == "call_method" and node.target in ("flatten", "view", "reshape")):
            frontier.extend(node.users)
        else:
            what = type(module).__name__ if module is not None else getattr(node.target, "__name__", str(node.target))
            return [], f"its constant output reaches {what} ({node.name}), which cannot absorb it"
    return consumers, None


def _activation(graph: fx.GraphModule, layer: FilterLayer):
    """The activation that follows ``layer``, as a function of one tensor."""
    node = next(n for n in graph.graph.nodes if n.name == layer.activation)
    if node.op == "call_module":
        return graph.get_submodule(node.target)
    if node.op == "call_method":
        return torch.relu
    options = {k: v for k, v in node.kwargs.items() if k != "inplace"}
    return lambda x: node.target(x, *node.args[1:], **options)


@torch.no_grad()
def _fold_constant(model: nn.Module, graph: fx.GraphModule, layers: list[FilterLayer], layer: FilterLayer,
                   channels: list[int], consumers: list[str]) -> None:
    """Add the constant act(beta) of ``layer``'s ``channels`` to what ``consumers`` compute from it;
    ``graph`` is ``model`` traced (it shares its modules)."""
    constant = _activation(graph, layer)(model.get_submodule(layer.bn).bias[channels].clone())  # gamma ~ 0
    bn_after = {other.conv: other.bn for other in layers}  # a consumer convolution's own BatchNorm, if any
    for name in consumers:
        consumer = model.get_submodule(name)
        if isinstance(consumer, nn.Linear):  # after global pooling: one feature per channel
            consumer.bias += consumer.weight[:, channels] @ constant
            continue
        delta = (consumer.weight[:, channels].sum(dim=(2, 3)) * constant).sum(dim=1)
        if bn_after.get(name) is not None:
            model.get_submodule(bn_after[name]).running_mean -= delta  # BN(x; mean - delta) == BN(x + delta; mean)
        elif consumer.bias is not None:
            consumer.bias += delta
        else:
            consumer.bias = nn.Parameter(delta.clone())


# --- a stored run, end to end ------------------------------------------------------------------


# A removal is exact when no test logit moves by more than float64 rounding over a few layers
# (~1e-12). A larger difference is real: a filter dead on every training image fired on some test
# image. One constant for every "changes no output" claim.
EXACT_LOGIT_TOLERANCE = 1e-9


@torch.inference_mode()
def max_logit_difference(original: nn.Module, pruned: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> float:
    """The largest absolute difference between the two networks' logits over ``images``,
    computed in float64 so that float32 rounding (different channel counts sum in a different
    order) does not hide or fake a real difference."""
    original, pruned = (copy.deepcopy(m).double().eval() for m in (original, pruned))
    worst = 0.0
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].double()
        worst = max(worst, float((original(batch) - pruned(batch)).abs().max()))
    return worst


def prune_run(store, run_id: str, criterion: str = "activation", gamma_threshold: float = GAMMA_THRESHOLD,
              threads: int = 1, min_run_time: float = 0.5, save_to=None) -> dict:
    """Prune a stored run and report what it bought: filters removed per layer, params, MACs and
    latency (batch 1 and 128; median and IQR at a fixed thread count) before and after, test
    error before and after, and the largest logit difference over the test set."""
    from .config import from_record
    from .train import load_config_data

    if criterion not in ("activation", "gamma"):
        raise PruningError(f"criterion must be 'activation' or 'gamma', got {criterion!r}")
    if save_to is not None:
        check_output_file(save_to)  # before any work
    record = store.get(run_id)
    if record is None and (config := store.set_aside_config(run_id)) is not None:
        # its copy was corrupt (weights failing their checksum) and moved aside: recompute it, as the warning said
        print(f"training run {run_id} again: its stored copy was corrupt and is in {store.root / '.trash'}",
              file=sys.stderr, flush=True)
        record = store.run(config, quiet=True)
    if record is None:
        known = store.run_ids()
        raise PruningError(f"no stored run {run_id!r} in {store.root} ({len(known)} runs there"
                           + (f", e.g. {known[0]}" if known else "") + ")")
    if record["status"] != "completed":
        raise PruningError(f"run {run_id} failed ({record.get('failure_reason')}); it has no weights to prune")
    model = store.load_model(run_id)
    record = store.get(run_id)  # an archived run was retrained for its weights: use the matching record
    config = from_record(record["config"])
    data = load_config_data(config)
    model = model.to(memory_format=torch.channels_last)
    convnet = isinstance(model, ConvNet)
    shape = tuple(data.test_images.shape[1:])
    result = (prune_dead(model, record, input_shape=shape) if criterion == "activation"
              else prune_by_gamma(model, record, gamma_threshold, input_shape=shape))
    result.model.to(memory_format=torch.channels_last)
    if save_to is not None:
        save_pruned_model(result.model, save_to)
    report = pruning_report(model, result, data.test_images, data.test_labels, threads, min_run_time,
                            fold_batchnorm=model.spec.norm == "batchnorm")
    widths = {"widths_before": list(model.spec.widths), "widths_after": list(result.spec.widths)} if convnet else {}
    return {"run_id": run_id, "criterion": criterion, **widths,
            "dead_filters": int(filters_table(record)["dead_by_activation"].astype(bool).sum()), **report}


def pruning_report(model: nn.Module, result: PruneResult, images: torch.Tensor, labels: torch.Tensor | None = None,
                   threads: int = 1, min_run_time: float = 0.5, fold_batchnorm: bool = True) -> dict:
    """What a pruning bought, measured on ``images``: filters removed, params, MACs, latency as
    trained and with BatchNorm folded (median and IQR, ``threads`` fixed), test error (with
    ``labels``) and the largest logit difference (float64)."""
    from .cost import cost
    from .train import evaluate

    shape = tuple(images.shape[1:])
    before, after = (cost(m, shape, threads=threads, min_run_time=min_run_time) for m in (model, result.model))
    forms = {"as_trained": (before["latency"], after["latency"])}
    if fold_batchnorm:
        forms["bn_folded"] = tuple(cost(m, shape, threads=threads, min_run_time=min_run_time, fold_batchnorm=True)["latency"]
                                   for m in (model, result.model))
    report = {
        "filters_removed": {layer: len(indices) for layer, indices in result.removed.items()},
        "filters_removed_total": result.removed_count,
        "kept_to_avoid_empty_layer": result.kept_to_avoid_empty_layer,
        "dead_but_not_removable": {layer: {str(i): why for i, why in kept.items()} for layer, kept in result.not_exact.items()},
        "params": {"before": before["params"], "after": after["params"]},
        "macs": {"before": before["macs"], "after": after["macs"], "reduction": before["macs"] / after["macs"],
                 "note": "multiply-accumulates per image; FLOPs = 2 x MACs"},
        "latency": {form: {batch: {"before": pair[0][batch], "after": pair[1][batch],
                                   "speedup": pair[0][batch]["median_ms"] / pair[1][batch]["median_ms"]}
                           for batch in pair[0]}
                    for form, pair in forms.items()},
        "latency_note": (f"torch.utils.benchmark, {threads} thread(s), median and interquartile range of timed blocks; "
                         "'trustworthy' is false where the IQR exceeds 10% of the median"),
        "max_logit_difference": max_logit_difference(model, result.model, images),
        "notes": result.notes,
    }
    if labels is not None:
        report["test_error"] = {"before": evaluate(model, images, labels), "after": evaluate(result.model, images, labels)}
    return report


def pruning_table(store, records: list[dict], threads: int = 1, min_run_time: float = 0.2) -> pd.DataFrame:
    """``prune_run`` on each stored run (activation criterion), one row each: dead filters, how many
    were removed and how many kept because a coupled channel is alive, MACs, latency (BN folded,
    median and IQR) and the largest logit difference on the test set. Each run's row is kept in the
    store (``RunStore.keep_measured("pruning", ...)``, committed beside the run archive), so a
    re-render needs no weights."""
    rows = []
    for record in records:
        key = hashlib.sha256(json.dumps([record["run_id"], threads, min_run_time, __version__]).encode()).hexdigest()[:16]
        kept = store.measured("pruning", key)
        if kept is not None:
            rows.append(kept)
            continue
        report = prune_run(store, record["run_id"], threads=threads, min_run_time=min_run_time)
        latency = report["latency"]["bn_folded"] if "bn_folded" in report["latency"] else report["latency"]["as_trained"]
        row = {"run_id": record["run_id"], "seed": record["config"]["seed"], "dead": report["dead_filters"],
               "removed": report["filters_removed_total"],
               "not_exact": sum(len(v) for v in report["dead_but_not_removable"].values()),
               "macs_before_M": report["macs"]["before"] / 1e6, "macs_after_M": report["macs"]["after"] / 1e6,
               "mac_reduction": report["macs"]["reduction"], "max_logit_difference": report["max_logit_difference"]}
        for batch, timing in latency.items():
            row[f"{batch}_ms_before"] = timing["before"]["median_ms"]
            row[f"{batch}_ms_after"] = timing["after"]["median_ms"]
            row[f"{batch}_speedup"] = timing["speedup"]
            row[f"{batch}_trustworthy"] = timing["before"]["trustworthy"] and timing["after"]["trustworthy"]
        store.keep_measured("pruning", key, row)
        rows.append(row)
    return pd.DataFrame(rows)

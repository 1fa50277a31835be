"""Find the filters (and neurons) of any PyTorch network from its graph, and record each one's response.

A *filter* is one output channel of a convolution that feeds a BatchNorm (or feeds the activation
directly) whose output goes straight into a ReLU (or ReLU6 or leaky ReLU), or that feeds a fused
norm-activation module (timm's ``BatchNormAct2d``, kept whole when tracing) applying one. A
*neuron* is one output feature of a linear layer that feeds, through a BatchNorm or LayerNorm or
directly, an activation: the hidden units of MLPs and of transformers' feed-forward blocks, their
units along the last dimension. Behind a smooth activation (GELU, SiLU, Hardswish, Mish, ELU),
which is never exactly zero, a unit is observed for the dormancy scores only (``relu_family``
False). The graph comes from ``torch.fx``, so a module called in several places (torchvision's
ResNet blocks reuse one ``nn.ReLU``) is measured at each call, and residual additions are seen as
what they are: a channel whose BatchNorm output goes into an addition (or anywhere else) has no
activation criterion, only the gamma one, and the layer says why.
"""

from __future__ import annotations

import copy
import operator
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.experimental.optimization import fuse

ACTIVATION_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)
ACTIVATION_FUNCTIONS = {F.relu, F.relu_, F.relu6, F.leaky_relu, F.leaky_relu_, torch.relu, torch.relu_}
ACTIVATION_METHODS = {"relu", "relu_"}
# smooth activations: never exactly zero, so only the dormancy scores apply behind them
SMOOTH_MODULES = (nn.GELU, nn.SiLU, nn.Hardswish, nn.Mish, nn.ELU)
SMOOTH_FUNCTIONS = {F.gelu, F.silu, F.hardswish, F.mish, F.elu}
ADDITIONS = (operator.add, operator.iadd, torch.add)
CONVOLUTIONS = (nn.Conv2d,)
LINEAR = (nn.Linear,)
NORMS = (nn.BatchNorm2d,)
LINEAR_NORMS = (nn.BatchNorm1d, nn.LayerNorm)
LEAVES = (nn.MultiheadAttention,)  # data-dependent checks inside: traced as one call


class TraceError(ValueError):
    """The model's graph cannot be traced; the message names the part that failed."""


@dataclass(frozen=True)
class FilterLayer:
    """One convolution's output channels seen as filters.

    ``name`` is the display name (the BatchNorm's module path, or the convolution's without BN,
    or the model's own ``layer_names``); ``activation`` is the graph node measured for the
    activation criterion, None when the channels do not go straight into an activation, with
    ``reason`` saying where they go instead. ``stream``: for such a layer whose output is added to
    a residual stream that then goes through an activation, that activation's node: where the
    stream's channels can be seen to carry nothing. ``residual``: the layer's output goes straight
    into a residual addition (the end of a residual branch): a channel whose gamma is zero there is
    an idle branch, not a dead filter, since the stream still carries the channel.
    ``relu_family``: the activation is ReLU, ReLU6 or leaky ReLU, where zero means "carries
    nothing" (the activation criterion, dormant-0, Dohare's rule and APoZ apply); False behind a
    smooth activation, observed for ReDo's dormancy scores only. ``unit_dim``: the dimension of the
    layer's output that holds its units (1 for a convolution's channels, -1 for a linear layer's
    features)."""

    name: str
    conv: str
    bn: str | None
    activation: str | None
    channels: int
    reason: str | None = None
    stream: str | None = None
    residual: bool = False
    relu_family: bool = True
    unit_dim: int = 1

    @property
    def measured(self) -> bool:
        """The activation criterion applies: observed behind a ReLU-family activation."""
        return self.activation is not None and self.relu_family

    @property
    def observed(self) -> bool:
        """Its activation's output is recorded (for the dormancy scores, at least)."""
        return self.activation is not None


def _library_leaves() -> tuple[tuple[type, ...], tuple]:
    """The modules and functions a model library asks ``torch.fx`` not to trace into: timm's
    (``timm.layers.get_notrace_modules``, e.g. its fused ``BatchNormAct2d``), when timm is imported.
    Tracing into a fused norm-activation module would turn its BatchNorm into a bare function call
    and hide the filters behind it."""
    import sys

    timm_layers = sys.modules.get("timm.layers")
    if timm_layers is None:
        return (), ()
    return tuple(timm_layers.get_notrace_modules()), tuple(timm_layers.get_notrace_functions())


class _Tracer(fx.Tracer):
    """``torch.fx``'s tracer, keeping the library leaves (``_library_leaves``) as single calls."""

    def __init__(self):
        self.leaf_types, functions = _library_leaves()
        super().__init__(autowrap_functions=functions)

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, (*self.leaf_types, *LEAVES)) or super().is_leaf_module(module, qualified_name)


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx`` tracing (with the leaves a model library declares, ``_library_leaves``) and an
    error that names the part that could not be traced."""
    try:
        tracer = _Tracer()
        graph = tracer.trace(model)
        return fx.GraphModule(tracer.root, graph, type(model).__name__)
    except Exception as error:  # tracing fails in many ways: data-dependent control flow, asserts, ...
        frames = _frames(error)
        where = f" (in {frames[-1]})" if frames else ""
        raise TraceError(
            f"cannot trace {type(model).__name__} with torch.fx{where}: {type(error).__name__}: {error}. "
            "Models with data-dependent control flow in forward() cannot be measured; wrap that part in "
            "a module and mark it a leaf, or measure a traceable sub-module.") from error


def _frames(error: BaseException) -> list[str]:
    """The traced model's own frames of an error's traceback, innermost last."""
    return [f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}"
            for frame in traceback.extract_tb(error.__traceback__) if "torch/fx" not in frame.filename]


def _is_activation(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], ACTIVATION_MODULES)
    if node.op == "call_function":
        return node.target in ACTIVATION_FUNCTIONS
    return node.op == "call_method" and node.target in ACTIVATION_METHODS


def _is_smooth(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], SMOOTH_MODULES)
    return node.op == "call_function" and node.target in SMOOTH_FUNCTIONS


def _activation_name(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    return type(modules[node.target]).__name__ if node.op == "call_module" else getattr(node.target, "__name__", str(node.target))


def _smooth_reason(name: str) -> str:
    return (f"{name} is not ReLU-family (never exactly zero): the activation criterion, Dohare's rule and APoZ do not "
            "apply; ReDo's dormancy scores do")


def _is_module(node: fx.Node, modules: dict[str, nn.Module], kinds) -> bool:
    return node.op == "call_module" and isinstance(modules[node.target], kinds)


def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{type(modules[node.target]).__name__} '{node.target}'"
    if node.target in ADDITIONS:
        return "a residual addition"
    return f"{getattr(node.target, '__name__', node.target)}"


def _fused_activation(module: nn.Module) -> nn.Module | None:
    """The activation a fused norm-activation module applies after its norm (timm's
    ``BatchNormAct2d``: a ``BatchNorm2d`` with an ``act``); None for a plain norm or ``act=Identity``."""
    act = getattr(module, "act", None)
    return None if act is None or isinstance(act, nn.Identity) else act


def _users(node: fx.Node, modules: dict[str, nn.Module]) -> list[fx.Node]:
    """The nodes that use ``node``'s output, looking through ``nn.Identity`` modules."""
    users = []
    for user in node.users:
        users.extend(_users(user, modules) if _is_module(user, modules, nn.Identity) else [user])
    return users


def find_filter_layers(model: nn.Module, graph: fx.GraphModule | None = None) -> list[FilterLayer]:
    """Every convolution of ``model`` in forward order, as a ``FilterLayer``, and every linear
    layer whose output goes (through a BatchNorm or LayerNorm, or directly) into an activation.

    A convolution whose output is used by more than its BatchNorm (or whose BatchNorm's output is
    used by more than one activation) gets no activation criterion: a zero after the activation
    would not mean the channel carries nothing."""
    graph = graph or trace(model)
    modules = dict(graph.named_modules())
    layers = []
    for node in graph.graph.nodes:
        linear = _is_module(node, modules, LINEAR)
        if not (linear or _is_module(node, modules, CONVOLUTIONS)):
            continue
        conv = modules[node.target]
        users = _users(node, modules)
        bn = users[0] if len(users) == 1 and _is_module(users[0], modules, LINEAR_NORMS if linear else NORMS) else None
        after = bn if bn is not None else node
        following = _users(after, modules)
        activation, reason, relu_family = None, None, True
        fused = _fused_activation(modules[bn.target]) if bn is not None else None
        if fused is not None:  # the norm applies its activation itself: measured at the module's output
            activation = bn.name
            if not isinstance(fused, ACTIVATION_MODULES):
                relu_family, reason = False, f"'{bn.target}' applies {type(fused).__name__} itself: " + _smooth_reason(
                    type(fused).__name__)
        elif len(following) == 1 and _is_activation(following[0], modules):
            activation = following[0].name
        elif len(following) == 1 and _is_smooth(following[0], modules):
            activation, relu_family = following[0].name, False
            reason = _smooth_reason(_activation_name(following[0], modules))
        elif linear:
            continue  # a linear layer not followed by an activation (a classifier, a projection): no units
        elif bn is None and len(following) == 1:
            reason = f"the output goes into {_describe(following[0], modules)}, not straight into an activation"
        elif len(following) != 1:
            reason = f"{'BatchNorm' if bn is not None else 'the convolution'}'s output is used in {len(following)} places ({', '.join(_describe(u, modules) for u in following)})"
        else:
            reason = f"BatchNorm's output goes into {_describe(following[0], modules)}, not straight into an activation"
        if bn is None and activation is None:
            continue  # a convolution without BN or activation (a stem or a classifier): not a filter
        stream = None
        residual = activation is None and fused is None and len(following) == 1 and following[0].target in ADDITIONS
        if residual:
            after_add = _users(following[0], modules)
            if len(after_add) == 1 and _is_activation(after_add[0], modules):
                stream = after_add[0].name
        layers.append(FilterLayer(name=bn.target if bn is not None else node.target, conv=node.target,
                                  bn=bn.target if bn is not None else None, activation=activation,
                                  channels=conv.out_features if linear else conv.out_channels, reason=reason,
                                  stream=stream, residual=residual, relu_family=relu_family,
                                  unit_dim=-1 if linear else 1))
    display = getattr(model, "layer_names", None)
    if display is not None and len(display) == len(layers):
        layers = [replace(layer, name=name) for name, layer in zip(display, layers)]
    return layers


class _Probe(nn.Module):
    """Passes its input through. Keeps each image's maximum over space (or over tokens) and,
    streamed over every batch, per unit: the sum of |activation| over images and positions, the
    count of activations above ``threshold`` ("firing"), and how many values each unit had.
    ``unit_dim``: the dimension holding the units (1: channels; -1: a linear layer's features)."""

    def __init__(self, threshold: float = 0.0, unit_dim: int = 1):
        super().__init__()
        self.threshold, self.unit_dim = threshold, unit_dim
        self.maxima: list[torch.Tensor] = []
        self.abs_sum: torch.Tensor | None = None
        self.firing: torch.Tensor | None = None
        self.values = 0

    def forward(self, output):
        x = output.movedim(self.unit_dim, 1) if self.unit_dim != 1 and output.dim() > 2 else output
        spatial = tuple(range(2, x.dim()))
        self.maxima.append((x.amax(dim=spatial) if spatial else x).float().cpu())  # amax over () would reduce all
        every = (0, *spatial)
        abs_sum = x.abs().sum(dim=every, dtype=torch.float64).cpu()
        firing = (x > self.threshold).sum(dim=every).cpu()
        self.abs_sum = abs_sum if self.abs_sum is None else self.abs_sum + abs_sum
        self.firing = firing if self.firing is None else self.firing + firing
        self.values += x.numel() // x.shape[1]
        return output


def probed_copy(model: nn.Module, layers: list[FilterLayer], graph: fx.GraphModule | None = None,
                threshold: float = 0.0):
    """An eval-mode traced copy of ``model`` with BatchNorm folded into its convolutions (exact
    algebra, ``fuse_conv_bn_eval``) and a probe after every measured activation and every
    residual stream's activation (counting values above ``threshold`` as firing). Returns the
    copy, the layers' probes in the order of ``layers`` (None for a layer without activation
    criterion) and the streams' probes by node name."""
    graph = copy.deepcopy(graph or trace(model)).eval()
    nodes = {node.name: node for node in graph.graph.nodes}

    def probe_after(node_name: str, probe_name: str, unit_dim: int = 1) -> _Probe:
        probe, node = _Probe(threshold, unit_dim), nodes[node_name]
        graph.add_submodule(probe_name, probe)
        with graph.graph.inserting_after(node):
            probed = graph.graph.call_module(probe_name, (node,))
        node.replace_all_uses_with(probed, delete_user_cb=lambda user: user is not probed)
        return probe

    probes = [probe_after(layer.activation, f"sparsity_probe_{i}", layer.unit_dim) if layer.observed else None
              for i, layer in enumerate(layers)]
    streams = {}
    for layer in layers:
        if layer.stream is not None and layer.stream not in streams:
            streams[layer.stream] = probe_after(layer.stream, f"sparsity_stream_probe_{len(streams)}")
    graph.recompile()
    return fuse(graph, inplace=True, no_trace=True), probes, streams


def batches(data, batch_size: int) -> Iterable[torch.Tensor]:
    """Images from a tensor (in slices of ``batch_size``) or from an iterable of batches (a
    ``DataLoader``: the first element of a tuple or list batch is taken as the images)."""
    if isinstance(data, torch.Tensor):
        for start in range(0, len(data), batch_size):
            yield data[start : start + batch_size]
        return
    for batch in data:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"expected batches of image tensors, got {type(images).__name__}")
        yield images

"""A certificate that a filter can never fire: interval bounds propagated from a box of inputs.

A filter found dead on the images measured may still fire on an image that was not among them.
``certify_dead(model, input_shape, low, high)`` propagates, through the model's ``torch.fx`` graph
in float64, the interval each value can take when every input pixel lies in ``[low, high]`` (per
channel; e.g. images in [0, 1] after the model's normalization, ``normalized_box``): convolutions
and linear layers with their positive weights on one end and negative ones on the other,
BatchNorm in inference mode as its affine map, monotone activations and pooling on both ends,
smooth activations with one minimum (GELU, SiLU, Hardswish, Mish) exactly, products (a
squeeze-excite gate times its input) from their ends' products, sums and concatenations as such
(interval bound propagation, Gowal et al. 2018); every affine step widens its bounds by the
worst-case float64 rounding of its sums (fan-in x 2^-52 of the terms' magnitudes), so that
rounding cannot make them unsound. A filter is *certified dead* when the upper bound of its activation's output is
below the activation criterion's threshold (1e-12) at every position: it cannot fire on any input
in the box, so removing it (``prune.prune_dead`` on ``Certificate.filters``) is exact on any such
input, not only on the images measured.

The bounds are sound but loose: they widen with depth, so a filter that is dead only because of
what real images look like is not certified; one that is dead because of its own parameters (BN's
gamma near zero and beta below zero, as the paper finds) usually is. An operation the propagation
does not know is bounded by (-inf, inf), and ``Certificate.notes`` names it.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import fx, nn
from torchvision.ops import stochastic_depth  # identity in inference mode (EfficientNet, ConvNeXt)
from torchvision.ops.misc import Permute

from .filters import FilterLayer, find_filter_layers, trace
from .sparsity import ACTIVATION_THRESHOLD


class CertificationError(ValueError):
    """The request cannot be certified as asked; the message says why."""


@dataclass
class Interval:
    low: torch.Tensor
    high: torch.Tensor



@dataclass
class Certificate:
    """Per filter (``filters``: layer, filter, measured, ``upper_bound`` of its activation over every
    position, ``dead_by_activation``: certified dead) and per layer (``layers``: filters,
    certified, and where a measured report was given, dead on its images and how many of those are
    certified); the input box; the operations bounded by (-inf, inf)."""

    filters: pd.DataFrame
    layers: pd.DataFrame
    box: tuple[list[float], list[float]]
    notes: list[str] = field(default_factory=list)

    @property
    def certified(self) -> int:
        return int(self.filters["dead_by_activation"].sum())


# value -> value functions that never decrease: applied to both ends of an interval
MONOTONE_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh, nn.Sigmoid, nn.Hardsigmoid, nn.Tanh, nn.ELU,
                    nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Dropout,
                    nn.Identity, Permute)
MONOTONE_FUNCTIONS = {F.relu, F.relu6, F.leaky_relu, F.hardtanh, F.hardsigmoid, F.elu, torch.relu, torch.sigmoid,
                      torch.tanh, torch.flatten, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d,
                      F.dropout, torch.cat, torch.reshape, torch.permute, torch.transpose, torch.squeeze, torch.unsqueeze,
                      operator.getitem, stochastic_depth}
# smooth activations that fall to one minimum and then rise: bounded exactly from where that minimum is
UNIMODAL_MODULES = {nn.GELU: F.gelu, nn.SiLU: F.silu, nn.Hardswish: F.hardswish, nn.Mish: F.mish}
UNIMODAL_FUNCTIONS = set(UNIMODAL_MODULES.values())
SOUNDNESS_MARGIN = 1e-12  # below the minimum found numerically, so the lower bound stays below the true one
SHAPE_METHODS = {"view", "reshape", "flatten", "contiguous", "squeeze", "unsqueeze", "permute", "transpose"}
MONOTONE_METHODS = SHAPE_METHODS | {"relu", "relu_", "sigmoid", "tanh", "clamp", "mean", "sum"}


def normalized_box(mean, std, low: float = 0.0, high: float = 1.0) -> tuple[list[float], list[float]]:
    """The per-channel box that images with pixels in [``low``, ``high``] occupy after the
    normalization (x - mean) / std."""
    mean, std = np.atleast_1d(np.asarray(mean, float)), np.atleast_1d(np.asarray(std, float))
    return ((low - mean) / std).tolist(), ((high - mean) / std).tolist()


def _box(low, high, shape) -> Interval:
    channels = shape[0]
    ends = []
    for name, value in (("low", low), ("high", high)):
        values = np.atleast_1d(np.asarray(value, float))
        if values.size not in (1, channels) or not np.isfinite(values).all():
            raise CertificationError(f"{name} must be one finite number or one per input channel ({channels}), got {value!r}")
        ends.append(torch.as_tensor(np.broadcast_to(values, (channels,)).copy(), dtype=torch.float64))
    if (ends[0] > ends[1]).any():
        raise CertificationError(f"the box is empty: low {low!r} is above high {high!r} in some channel")
    return Interval(*(end.view(1, channels, *([1] * (len(shape) - 1))).expand(1, *shape).clone() for end in ends))


UNIT_ROUNDOFF = 2.0 ** -52  # twice float64's: a sum of n terms errs by at most n u times the sum of their magnitudes
ROUNDING_SLACK = 8 * UNIT_ROUNDOFF  # a BatchNorm's multiply-add, a LayerNorm's bound


def _batchnorm(module: nn.modules.batchnorm._BatchNorm, x: Interval) -> Interval:
    shape = (1, -1) + (1,) * (x.low.dim() - 2)
    scale = (module.weight if module.weight is not None else torch.ones_like(module.running_var)).double() \
        / torch.sqrt(module.running_var.double() + module.eps)
    shift = (module.bias.double() if module.bias is not None else torch.zeros_like(scale)) \
        - module.running_mean.double() * scale
    scale, shift = scale.view(shape), shift.view(shape)
    ends = (x.low * scale + shift, x.high * scale + shift)
    slack = ROUNDING_SLACK * (torch.maximum(x.low.abs(), x.high.abs()) * scale.abs() + shift.abs())
    return Interval(torch.minimum(*ends) - slack, torch.maximum(*ends) + slack)


def _affine(module: nn.Module, x: Interval) -> Interval:
    """A convolution or linear layer: the positive weights take each end, the negative ones the
    other (no centre and radius, whose difference loses a small end beside a huge one), widened by
    the worst rounding of the sums."""
    weight, bias = module.weight.double(), module.bias.double() if module.bias is not None else None

    def apply(values, w, b=None):
        return F.linear(values, w, b) if isinstance(module, nn.Linear) else module._conv_forward(values, w, b)

    positive, negative = weight.clamp(min=0), weight.clamp(max=0)
    low = apply(x.low, positive, bias) + apply(x.high, negative)
    high = apply(x.high, positive, bias) + apply(x.low, negative)
    magnitude = apply(torch.maximum(x.low.abs(), x.high.abs()), weight.abs(), bias.abs() if bias is not None else None)
    slack = (weight[0].numel() + 2) * UNIT_ROUNDOFF * magnitude  # the sum over the fan-in, then the two halves and bias
    return Interval(low - slack, high + slack)


def _both_ends(function, args, kwargs):
    """Apply a monotone ``function`` to the low ends and to the high ends of its interval arguments."""
    def pick(value, end):
        if isinstance(value, Interval):
            return getattr(value, end).clone()  # an in-place activation (ReLU(inplace=True)) must not change the bound
        if isinstance(value, (list, tuple)):
            return type(value)(pick(v, end) for v in value)
        return value
    low = function(*pick(args, "low"), **{k: pick(v, "low") for k, v in kwargs.items()})
    high = function(*pick(args, "high"), **{k: pick(v, "high") for k, v in kwargs.items()})
    return Interval(low, high) if torch.is_tensor(low) else low


def _unbounded(function, args, kwargs) -> Interval:
    try:
        shaped = _both_ends(function, args, kwargs)
    except Exception as error:  # noqa: BLE001 - any failure means the shape cannot be had either
        raise CertificationError(f"cannot bound {getattr(function, '__name__', function)} and cannot run it on the "
                                 f"bounds to learn its output's shape: {type(error).__name__}: {error}") from error
    like = shaped.low if isinstance(shaped, Interval) else shaped
    return Interval(torch.full_like(like, -math.inf), torch.full_like(like, math.inf))


_MINIMA: dict = {}  # the search below, once per activation (and its settings: GELU's approximate=)


def _minimum(function) -> tuple[float, float]:
    """(x, f(x)) at the minimum of a unimodal ``function``, by ternary search on [-10, 0] in float64."""
    key = (type(function), function.extra_repr()) if isinstance(function, nn.Module) else function
    if key not in _MINIMA:
        _MINIMA[key] = _search_minimum(function)
    return _MINIMA[key]


def _search_minimum(function) -> tuple[float, float]:
    low, high = -10.0, 0.0
    for _ in range(200):
        a, b = low + (high - low) / 3, high - (high - low) / 3
        fa, fb = (float(function(torch.tensor(v, dtype=torch.float64))) for v in (a, b))
        low, high = (low, b) if fa < fb else (a, high)
    x = (low + high) / 2
    return x, float(function(torch.tensor(x, dtype=torch.float64))) - SOUNDNESS_MARGIN


def _unimodal(function, x: Interval) -> Interval:
    """Exact bounds of a function falling to one minimum at x* and rising after it: decreasing
    below x*, increasing above, and at its minimum where the interval holds x*."""
    at, least = _minimum(function)
    f_low, f_high = function(x.low.clone()), function(x.high.clone())  # clones: the module may act in place
    low = torch.where(x.high <= at, f_high, torch.where(x.low >= at, f_low, torch.full_like(f_low, least)))
    return Interval(torch.minimum(low, torch.minimum(f_low, f_high)), torch.maximum(f_low, f_high))


def _multiply(first, second) -> Interval:
    if not (isinstance(first, Interval) and isinstance(second, Interval)):
        interval, factor = (first, second) if isinstance(first, Interval) else (second, first)
        ends = (interval.low * factor, interval.high * factor)
        return Interval(torch.minimum(*ends), torch.maximum(*ends)) if torch.is_tensor(ends[0]) else \
            (Interval(*ends) if factor >= 0 else Interval(*ends[::-1]))
    products = torch.stack(torch.broadcast_tensors(*(a * b for a in (first.low, first.high)
                                                      for b in (second.low, second.high))))
    return Interval(products.amin(0), products.amax(0))


def _layer_norm(x: Interval, normalized_shape, weight, bias) -> Interval:
    """LayerNorm over its last dimensions: a standardized vector of n values has each within
    +-sqrt(n - 1), whatever the input, so the output lies in beta +- |gamma| sqrt(n - 1) (sound, and
    loose: the input's bounds are not used)."""
    weight, bias = (v.high if isinstance(v, Interval) else v for v in (weight, bias))  # get_attr constants
    n = math.prod(normalized_shape)
    reach = math.sqrt(max(n - 1, 0)) * (1 + ROUNDING_SLACK)
    scale = weight.double().abs() if weight is not None else torch.ones(normalized_shape, dtype=torch.float64)
    shift = bias.double() if bias is not None else torch.zeros(normalized_shape, dtype=torch.float64)
    low, high = (shift - reach * scale).expand_as(x.low), (shift + reach * scale).expand_as(x.high)
    return Interval(low.clone(), high.clone())


def _add(first, second) -> Interval:
    if isinstance(first, Interval) and isinstance(second, Interval):
        return Interval(first.low + second.low, first.high + second.high)
    interval, constant = (first, second) if isinstance(first, Interval) else (second, first)
    return Interval(interval.low + constant, interval.high + constant)


def _fused_norm_activation(module: nn.Module, x: Interval) -> Interval | None:
    """timm's ``BatchNormAct2d`` (a BatchNorm that applies ``act`` and ``drop`` itself), or None."""
    act = getattr(module, "act", None)
    if not isinstance(module, nn.modules.batchnorm._BatchNorm) or act is None:
        return None
    x = _batchnorm(module, x)
    if type(act) in UNIMODAL_MODULES:
        return _unimodal(act, x)
    if not isinstance(act, MONOTONE_MODULES):
        return None
    return Interval(act(x.low.clone()), act(x.high.clone()))


def propagate(graph: fx.GraphModule, box: Interval) -> tuple[dict[str, object], list[str]]:
    """The interval of every node of ``graph`` (inference mode) for inputs in ``box``; and the
    operations it could not bound (bounded by (-inf, inf) instead)."""
    modules = dict(graph.named_modules())
    env: dict[str, object] = {}
    notes: list[str] = []

    def value(arg):
        return fx.node.map_arg(arg, lambda node: env[node.name])

    for node in graph.graph.nodes:
        args, kwargs = value(node.args), value(node.kwargs)
        if node.op == "placeholder":
            if env:
                raise CertificationError(f"the model takes more than one input ({node.name}); certify a model of one")
            env[node.name] = box
        elif node.op == "get_attr":
            constant = graph
            for part in node.target.split("."):  # a nested attribute: "classifier.weight"
                constant = getattr(constant, part)
            env[node.name] = Interval(constant.double(), constant.double()) if torch.is_tensor(constant) else constant
        elif node.op == "output":
            continue
        elif node.op == "call_module":
            module = modules[node.target]
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                env[node.name] = _affine(module, args[0])
            elif getattr(module, "act", None) is not None and isinstance(module, nn.modules.batchnorm._BatchNorm):
                fused = _fused_norm_activation(module, args[0])
                if fused is None:
                    notes.append(f"{node.target} ({type(module).__name__} with {type(module.act).__name__})")
                    fused = _unbounded(lambda x: x, args, {})
                env[node.name] = fused
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                env[node.name] = _batchnorm(module, args[0])
            elif isinstance(module, nn.LayerNorm):
                env[node.name] = _layer_norm(args[0], module.normalized_shape, module.weight, module.bias)
            elif isinstance(module, MONOTONE_MODULES):
                env[node.name] = _both_ends(module, args, kwargs)
            elif type(module) in UNIMODAL_MODULES:
                env[node.name] = _unimodal(module, args[0])
            else:
                notes.append(f"{node.target} ({type(module).__name__})")
                env[node.name] = _unbounded(module, args, kwargs)
        elif node.op == "call_function":
            if node.target in (operator.add, operator.iadd, torch.add) and len(args) == 2 and not kwargs:
                env[node.name] = _add(*args)
            elif node.target in (operator.mul, operator.imul, torch.mul) and len(args) == 2 and not kwargs:
                env[node.name] = _multiply(*args)  # a squeeze-excite gate times its input, a scale times a value
            elif node.target is F.layer_norm and isinstance(args[0], Interval):
                given = {**dict(zip(("input", "normalized_shape", "weight", "bias"), args)), **kwargs}
                env[node.name] = _layer_norm(args[0], given["normalized_shape"], given.get("weight"), given.get("bias"))
            elif node.target in UNIMODAL_FUNCTIONS and len(args) == 1 and isinstance(args[0], Interval):
                env[node.name] = _unimodal(node.target, args[0])
            elif not any(isinstance(a, Interval) for a in (*args, *kwargs.values())) and not any(
                    isinstance(a, (list, tuple)) and any(isinstance(v, Interval) for v in a) for a in args):
                env[node.name] = node.target(*args, **kwargs)  # on shapes and constants
            elif node.target in MONOTONE_FUNCTIONS:
                env[node.name] = _both_ends(node.target, args, kwargs)
            else:
                notes.append(f"{node.name} ({getattr(node.target, '__name__', node.target)})")
                env[node.name] = _unbounded(node.target, args, kwargs)
        elif node.op == "call_method":
            self, rest = args[0], args[1:]
            if not isinstance(self, Interval):
                env[node.name] = getattr(self, node.target)(*rest, **kwargs)
            elif node.target in ("size", "dim"):
                env[node.name] = getattr(self.low, node.target)(*rest, **kwargs)
            elif node.target in MONOTONE_METHODS:
                env[node.name] = Interval(getattr(self.low, node.target)(*rest, **kwargs),
                                          getattr(self.high, node.target)(*rest, **kwargs))
            else:
                notes.append(f"{node.name} (.{node.target})")
                env[node.name] = _unbounded(lambda x: getattr(x, node.target)(*rest, **kwargs), [self], {})
    return env, notes


def certify_dead(model: nn.Module, input_shape=None, low=0.0, high=1.0, report=None,
                 threshold: float = ACTIVATION_THRESHOLD) -> Certificate:
    """Which filters of ``model`` (its ``filters.find_filter_layers``) cannot fire on any input whose
    values lie in [``low``, ``high``] (one number, or one per input channel: ``normalized_box``).

    ``input_shape``: (channels, height, width) of the inputs (padding makes the bounds depend on
    the size); by default the shape ``report`` was measured on. ``report``: the ``SparsityReport`` of
    the same model on real images: the layers table then says how many of the filters dead on those
    images are certified. A filter is certified when its activation's upper bound is below
    ``threshold`` at every position."""
    shape = tuple(input_shape) if input_shape is not None else getattr(report, "input_shape", None)
    if shape is None:
        raise CertificationError("pass input_shape (channels, height, width) of the inputs the box describes")
    box = _box(low, high, shape)
    was_training = model.training
    model.eval()
    try:
        graph = trace(model)
        layers: list[FilterLayer] = find_filter_layers(model, graph)
        with torch.no_grad():
            env, notes = propagate(graph, box)
    finally:
        model.train(was_training)
    rows = []
    for layer in layers:
        if not layer.measured:  # no activation, or one that is never exactly zero: nothing to certify
            upper = np.full(layer.channels, np.nan)
        else:
            bound = env[layer.activation]
            units = 1 if layer.unit_dim == 1 else bound.high.dim() - 1
            upper = bound.high.amax(dim=tuple(d for d in range(bound.high.dim()) if d != units)).numpy()
        rows.append(pd.DataFrame({"layer": layer.name, "filter": np.arange(layer.channels), "measured": layer.measured,
                                  "upper_bound": upper, "dead_by_activation": upper < threshold}))
    filters = pd.concat(rows, ignore_index=True)
    per_layer = filters.groupby("layer", sort=False).agg(filters=("filter", "size"), measured=("measured", "all"),
                                                          certified=("dead_by_activation", "sum")).reset_index()
    if report is not None:
        measured = report.filters.set_index(["layer", "filter"])["dead_by_activation"].astype(bool)
        dead = measured.reindex(pd.MultiIndex.from_frame(filters[["layer", "filter"]])).fillna(False).to_numpy(bool)
        filters["dead_on_data"] = dead
        if (filters["dead_by_activation"] & ~dead).any():  # a certified filter fired on real images: a bug, never the data
            wrong = filters[filters["dead_by_activation"] & ~dead][["layer", "filter"]].head(3).to_dict(orient="records")
            raise CertificationError(f"certified filters fired on the measured images ({wrong}): the images lie outside "
                                     f"the box [{low}, {high}], or the report is of another model")
        grouped = filters.groupby("layer", sort=False)
        per_layer["dead_on_data"] = grouped["dead_on_data"].sum().to_numpy()
        per_layer["certified_of_dead"] = per_layer["certified"] / per_layer["dead_on_data"].where(per_layer["dead_on_data"] > 0)
    return Certificate(filters=filters, layers=per_layer, box=(box.low[0, :, *([0] * (len(shape) - 1))].tolist(),
                                                               box.high[0, :, *([0] * (len(shape) - 1))].tolist()),
                       notes=notes)

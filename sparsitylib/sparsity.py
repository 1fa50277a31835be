"""Filter-level sparsity and feature selectivity, measured as in the paper.

A *filter* is one output channel of a convolution together with its BatchNorm and activation.
One pass over the training images, BN in inference mode, records for every filter and image the
maximum post-activation value over space. From that (images x filters) table:

- ``dead_by_activation``: the filter's maximum over all images is below ``activation_threshold``
  (1e-12 in the paper): it never fires, so removing it changes nothing.
- ``dead_by_gamma``: ``|gamma| < gamma_threshold`` (1e-3; the rule of the author's later pruning
  code). Such a filter outputs the constant ``act(beta)``, which is not necessarily zero. Not for
  the last BatchNorm of a residual branch (``residual_branch``): a channel with gamma near zero
  there is an ``idle_branch``, counted apart (timm initializes those gammas to zero), since the
  residual stream still carries it.
- ``selectivity``: the fraction of images whose maximum response, divided by the filter's maximum
  over the training set, is at most ``selectivity_threshold`` (1e-3). ``universality`` is
  ``1 - selectivity``. Undefined (NaN) for dead filters, which respond to nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import fx
from torch.fx.experimental.optimization import fuse

from .dormancy import DORMANCY_TAUS, DORMANT_FIRING, add_definitions, agreement
from .dormancy import totals as definition_totals
from .filters import FilterLayer, batches, find_filter_layers, probed_copy, trace

ACTIVATION_THRESHOLD = 1e-12  # paper: a filter whose max activation is below this is inactive
GAMMA_THRESHOLD = 1e-3  # paper / author's pruning code: |gamma| below this is inactive
SELECTIVITY_THRESHOLD = 1e-3  # paper: normalized per-image response at or below this = "off"
MEASURE_BATCH_SIZE = 1000


@dataclass
class SparsityReport:
    """Per-filter table, per-layer summary and network totals of one measurement."""

    filters: pd.DataFrame
    layers: pd.DataFrame
    totals: dict
    input_shape: tuple[int, ...] | None = None  # (channels, height, width) of the images measured

    def agreement(self) -> pd.DataFrame:
        """How far the definitions' sets agree: ``dormancy.agreement`` on this report's filters."""
        return agreement(self.filters)

    def to_dict(self) -> dict:
        return {
            "filters": self.filters.to_dict(orient="list"),
            "layers": self.layers.to_dict(orient="records"),
            "totals": self.totals,
        }


def inference_copy(model):
    """A traced eval-mode copy of ``model`` with each BatchNorm folded into its convolution.

    Folding is exact algebra (``torch.nn.utils.fusion.fuse_conv_bn_eval``) and saves the separate
    BN pass; outputs agree with the unfolded eval-mode model to float rounding (~1e-6 relative).
    """
    return fuse(trace(model).eval(), inplace=True, no_trace=True)


@dataclass
class ChannelStatistics:
    """One filter layer's responses over the data, after its activation (BatchNorm in inference
    mode): each image's maximum per channel (images x filters), and per channel the mean |value|
    over images and positions and the fraction of those values above the activation threshold."""

    per_image_max: torch.Tensor
    mean_abs: np.ndarray
    firing_fraction: np.ndarray


def record_statistics(model, data, batch_size: int = MEASURE_BATCH_SIZE, layers: list[FilterLayer] | None = None,
                      graph: fx.GraphModule | None = None, activation_threshold: float = ACTIVATION_THRESHOLD
                      ) -> tuple[list[ChannelStatistics | None], dict[str, torch.Tensor], tuple[int, ...] | None]:
    """One streaming pass over ``data`` (a tensor of images or an iterable of batches, of any
    size): ``ChannelStatistics`` for each filter layer of ``model`` (``find_filter_layers``; None
    for a layer without activation criterion or when no image was seen), each residual stream's
    per-image maxima by node name, and the images' shape (channels, height, width; None when there
    were none). ``model`` itself is not changed; ``graph``, ``model`` traced, saves tracing it again."""
    graph = graph or trace(model)
    layers = layers if layers is not None else find_filter_layers(model, graph)
    probed, probes, streams = probed_copy(model, layers, graph, threshold=activation_threshold)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    shape = None
    with torch.inference_mode():
        for images in batches(data, batch_size):
            shape = shape or tuple(images.shape[1:])
            probed(images.to(device))
    per_layer = [ChannelStatistics(torch.cat(probe.maxima), (probe.abs_sum / probe.values).numpy(),
                                   (probe.firing.double() / probe.values).numpy())
                 if probe is not None and probe.maxima else None for probe in probes]
    return per_layer, {name: torch.cat(probe.maxima) for name, probe in streams.items() if probe.maxima}, shape


def record_maxima(model, data, batch_size: int = MEASURE_BATCH_SIZE, layers: list[FilterLayer] | None = None,
                  graph: fx.GraphModule | None = None) -> tuple[list[torch.Tensor | None], dict[str, torch.Tensor]]:
    """Each image's maximum response per channel (``record_statistics``' per_image_max), per
    filter layer and per residual stream."""
    per_layer, streams, _ = record_statistics(model, data, batch_size, layers, graph)
    return [stats.per_image_max if stats is not None else None for stats in per_layer], streams


def per_image_max_activations(model, data, batch_size: int = MEASURE_BATCH_SIZE, layers: list[FilterLayer] | None = None,
                              graph: fx.GraphModule | None = None) -> list[torch.Tensor | None]:
    """The filter layers' part of ``record_maxima``."""
    return record_maxima(model, data, batch_size, layers, graph)[0]


def batchnorm_parameters(model, layers: list[FilterLayer] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(gamma, beta) per filter layer; NaN arrays for layers without BatchNorm."""
    layers = layers if layers is not None else find_filter_layers(model)
    result = []
    for layer in layers:
        if layer.bn is not None:
            bn = model.get_submodule(layer.bn)
            result.append((bn.weight.detach().cpu().double().numpy(), bn.bias.detach().cpu().double().numpy()))
        else:
            nan = np.full(layer.channels, np.nan)
            result.append((nan, nan))
    return result


def selectivity(per_image_max: torch.Tensor, threshold: float = SELECTIVITY_THRESHOLD,
                activation_threshold: float = ACTIVATION_THRESHOLD) -> np.ndarray:
    """Fraction of images whose normalized maximum response is <= ``threshold``, per filter.

    ``per_image_max`` is (images x filters). NaN where the filter never exceeds
    ``activation_threshold`` (a dead filter has no response to normalize by).
    """
    maxima = per_image_max.double().amax(dim=0)
    alive = maxima >= activation_threshold
    normalized = per_image_max.double() / torch.where(alive, maxima, torch.ones_like(maxima))
    fraction = (normalized <= threshold).double().mean(dim=0)
    return torch.where(alive, fraction, torch.full_like(fraction, float("nan"))).numpy()


def measure_sparsity(
    model,
    data,
    *,
    activation_threshold: float = ACTIVATION_THRESHOLD,
    gamma_threshold: float = GAMMA_THRESHOLD,
    selectivity_threshold: float = SELECTIVITY_THRESHOLD,
    batch_size: int = MEASURE_BATCH_SIZE,
    dormancy_taus=DORMANCY_TAUS,
    dormant_firing: float = DORMANT_FIRING,
) -> SparsityReport:
    """Measure every filter of any traceable CNN on ``data`` (normally the training set): a tensor
    of images or an iterable of batches such as a ``DataLoader``.

    Filters are found from the graph (``filters.find_filter_layers``). A layer whose channels do
    not go straight into an activation (e.g. into a residual addition) has only the gamma
    criterion: its rows have ``measured`` False, ``max_activation`` NaN and ``dead_by_activation``
    False, and ``note`` says why; where such a layer is added to a residual stream that then goes
    through an activation, ``stream_max_activation`` is that stream's maximum per channel (zero: the
    stream carries nothing in that channel after the addition).

    The same pass gives the other communities' definitions (``dormancy``): per filter
    ``mean_abs_activation`` and ``firing_fraction`` over images and positions, ``apoz``,
    ``dormancy_score`` (ReDo), ``dormant_tau_<tau>`` for each of ``dormancy_taus`` and
    ``dormant_<p>pct`` (fires on fewer than ``dormant_firing`` of its values); ``totals["definitions"]``
    counts each, and ``SparsityReport.agreement()`` compares their sets."""
    for name, value in (("activation_threshold", activation_threshold), ("gamma_threshold", gamma_threshold),
                        ("selectivity_threshold", selectivity_threshold), ("dormant_firing", dormant_firing),
                        *((f"dormancy tau {tau!r}", tau) for tau in dormancy_taus)):
        if not (0 <= value < 1):
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    graph = trace(model)
    layers = find_filter_layers(model, graph)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no convolution followed by BatchNorm or an activation: "
                         "there are no filters to measure")
    statistics, streams, input_shape = record_statistics(model, data, batch_size, layers, graph, activation_threshold)
    if all(m is None for m in statistics) and any(layer.observed for layer in layers):
        raise ValueError("no images to measure on: the data is empty")
    frames = []
    for layer, stats, (gamma, beta) in zip(layers, statistics, batchnorm_parameters(model, layers)):
        max_activation = selective = mean_abs = firing = np.full(layer.channels, np.nan)
        if stats is not None:
            mean_abs = stats.mean_abs  # ReDo's score applies behind any activation
            if layer.measured:  # the rest needs zero to mean "carries nothing": ReLU-family only
                max_activation = stats.per_image_max.double().amax(dim=0).numpy()
                selective = selectivity(stats.per_image_max, selectivity_threshold, activation_threshold)
                firing = stats.firing_fraction
        stream = streams.get(layer.stream)
        stream_max = stream.double().amax(dim=0).numpy() if stream is not None else np.full(layer.channels, np.nan)
        small_gamma = np.abs(gamma) < gamma_threshold  # NaN (no BN) compares False
        frames.append(pd.DataFrame({
            "layer": layer.name,
            "filter": np.arange(layer.channels),
            "measured": layer.measured,
            "observed": layer.observed,
            "max_activation": max_activation,
            "gamma": gamma,
            "beta": beta,
            "dead_by_activation": max_activation < activation_threshold,  # NaN (not measured) compares False
            "dead_by_gamma": small_gamma & (not layer.residual),
            "residual_branch": layer.residual,
            "idle_branch": small_gamma & layer.residual,
            "selectivity": selective,
            "mean_abs_activation": mean_abs,
            "firing_fraction": firing,
            "stream_max_activation": stream_max,
            "note": layer.reason or "",
        }))
    filters = pd.concat(frames, ignore_index=True)
    filters["universality"] = 1.0 - filters["selectivity"]
    filters = add_definitions(filters, dormancy_taus, dormant_firing)
    if not any(layer.stream for layer in layers):
        filters = filters.drop(columns="stream_max_activation")
    if not any(layer.residual for layer in layers):
        filters = filters.drop(columns=["residual_branch", "idle_branch"])
    if all(layer.measured for layer in layers):
        filters = filters.drop(columns="note")
    return SparsityReport(filters=filters, layers=summarize_layers(filters), totals=summarize_totals(filters),
                          input_shape=input_shape)


def summarize_layers(filters: pd.DataFrame) -> pd.DataFrame:
    """Per-layer counts and fractions of dead filters, and the median selectivity of live ones."""
    grouped = filters.groupby("layer", sort=False)
    layers = pd.DataFrame({
        "filters": grouped.size(),
        "measured": grouped["measured"].all(),
        "dead_by_activation": grouped["dead_by_activation"].sum().astype(int),
        "dead_by_gamma": grouped["dead_by_gamma"].sum().astype(int),
        "median_selectivity": grouped["selectivity"].median(),
    }).reset_index()
    layers["dead_by_activation_pct"] = 100.0 * layers["dead_by_activation"] / layers["filters"]
    layers["dead_by_gamma_pct"] = 100.0 * layers["dead_by_gamma"] / layers["filters"]
    if "idle_branch" in filters:
        layers["residual_branch"] = grouped["residual_branch"].all().to_numpy()
        layers["idle_branch"] = grouped["idle_branch"].sum().astype(int).to_numpy()
    return layers


def summarize_totals(filters: pd.DataFrame) -> dict:
    """Network totals: counts, fractions, and how often the two criteria agree. The activation
    criterion's fraction and the agreement are over the filters it applies to (``measured``), the
    gamma criterion's over the filters that do not end a residual branch; idle residual branches
    are counted apart (``idle_branch_count`` of ``residual_branch_filters``)."""
    measured = filters["measured"].to_numpy(bool) if "measured" in filters else np.ones(len(filters), bool)
    by_activation = filters["dead_by_activation"].to_numpy(bool)
    by_gamma = filters["dead_by_gamma"].to_numpy(bool)
    branch = filters["residual_branch"].to_numpy(bool) if "residual_branch" in filters else np.zeros(len(filters), bool)
    n, n_measured, n_gamma = len(filters), int(measured.sum()), int((~branch).sum())
    totals = {
        "filters": n,
        "dead_by_activation_count": int(by_activation.sum()),
        "dead_by_gamma_count": int(by_gamma.sum()),
        # no filter has the activation criterion (e.g. every activation is SiLU): no number, not 0%
        "dead_by_activation": float(by_activation.sum() / n_measured) if n_measured else float("nan"),
        "dead_by_gamma": float(by_gamma.sum() / n_gamma) if n_gamma else 0.0,
        "dead_by_both": int((by_activation & by_gamma).sum()),
        "dead_by_activation_only": int((by_activation & ~by_gamma).sum()),
        "dead_by_gamma_only": int((~by_activation & by_gamma & measured).sum()),
        "criteria_agreement": float((by_activation == by_gamma)[measured].mean()) if n_measured else float("nan"),
    }
    if n_measured < n:
        totals["filters_measured"] = n_measured  # the others have the gamma criterion only
    if branch.any():
        totals["residual_branch_filters"] = int(branch.sum())
        totals["idle_branch_count"] = int(filters["idle_branch"].to_numpy(bool).sum())
    if "apoz" in filters:
        totals["definitions"] = definition_totals(filters)
    return totals


def epoch_snapshot(model, images: torch.Tensor, layers: list[FilterLayer] | None = None, dormancy: bool = False) -> dict:
    """Cheap per-epoch view on a fixed sample of training images: dead filters per layer; per filter
    its dead flag on the sample (None where the layer has no activation criterion), selectivity (NaN
    when dead), |gamma| and beta (NaN without BatchNorm), so when each filter died and what its BN
    parameters did before can be read from the run; and |gamma| quantiles per layer. ``layers``
    (``find_filter_layers(model)``, which does not change during training) saves finding them again.
    ``dormancy``: also each filter's mean |activation| and firing fraction on the sample
    (``filter_mean_abs``, ``filter_firing``; NaN without activation criterion), from which the
    dormant definitions follow (``dormancy``)."""
    graph = trace(model)
    layers = layers if layers is not None else find_filter_layers(model, graph)
    statistics = record_statistics(model, images, layers=layers, graph=graph)[0]
    # the activation criterion and selectivity need zero to mean "carries nothing": ReLU-family only
    maxima = [stats.per_image_max if stats is not None and layer.measured else None
              for stats, layer in zip(statistics, layers)]
    parameters = batchnorm_parameters(model, layers)
    dead = [(m.amax(dim=0) < ACTIVATION_THRESHOLD) if m is not None else None for m in maxima]
    extra = {}
    if dormancy:
        for key, field in (("filter_mean_abs", "mean_abs"), ("filter_firing", "firing_fraction")):
            extra[key] = np.concatenate([getattr(stats, field) if stats is not None and (layer.measured or key == "filter_mean_abs")
                                         else np.full(layer.channels, np.nan)
                                         for stats, layer in zip(statistics, layers)]).tolist()
    return {
        "dead_per_layer": [int(d.sum()) if d is not None else None for d in dead],
        "gamma_quantiles": gamma_quantiles(parameters),
        # per filter, so how fast each filter's scale decays can be followed (NaN without BatchNorm)
        "filter_gamma": np.concatenate([np.abs(gamma) for gamma, _ in parameters]).round(7).tolist(),
        "filter_beta": np.concatenate([beta for _, beta in parameters]).round(7).tolist(),
        "filter_dead": [flag for d, layer in zip(dead, layers)
                        for flag in (d.tolist() if d is not None else [None] * layer.channels)],
        "filter_selectivity": np.concatenate([selectivity(m) if m is not None else np.full(layer.channels, np.nan)
                                              for m, layer in zip(maxima, layers)]).round(6).tolist(),
        **extra,
    }


GAMMA_QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)


def gamma_quantiles(parameters: list[tuple[np.ndarray, np.ndarray]], quantiles=GAMMA_QUANTILES) -> list[list[float]]:
    """Quantiles of |gamma| per filter layer (NaN without BatchNorm), from ``batchnorm_parameters``."""
    return [np.quantile(np.abs(gamma), quantiles).tolist() for gamma, _ in parameters]

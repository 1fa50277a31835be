"""Filter-level sparsity and feature selectivity, measured as in the paper.

A *filter* is one output channel of a convolution together with its BatchNorm and activation.
One pass over the training images, BN in inference mode, records for every filter and image the
maximum post-activation value over space. From that (images x filters) table:

- ``dead_by_activation``: the filter's maximum over all images is below ``activation_threshold``
  (1e-12 in the paper): it never fires, so removing it changes nothing.
- ``dead_by_gamma``: ``|gamma| < gamma_threshold`` (1e-3; the rule of the author's later pruning
  code). Such a filter outputs the constant ``act(beta)``, which is not necessarily zero.
- ``selectivity``: the fraction of images whose maximum response, divided by the filter's maximum
  over the training set, is at most ``selectivity_threshold`` (1e-3). ``universality`` is
  ``1 - selectivity``. Undefined (NaN) for dead filters, which respond to nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

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

    def to_dict(self) -> dict:
        return {
            "filters": self.filters.to_dict(orient="list"),
            "layers": self.layers.to_dict(orient="records"),
            "totals": self.totals,
        }


def inference_copy(model):
    """A copy of ``model`` in eval mode with each BatchNorm folded into its convolution.

    Folding is exact algebra (``torch.nn.utils.fusion.fuse_conv_bn_eval``) and saves the separate
    BN pass; outputs agree with the unfolded eval-mode model to float rounding (~1e-6 relative).
    """
    folded = copy.deepcopy(model).eval()
    for block in folded.blocks:
        if isinstance(block.bn, nn.BatchNorm2d):
            block.conv = fuse_conv_bn_eval(block.conv, block.bn)
            block.bn = nn.Identity()
    return folded


@torch.inference_mode()
def per_image_max_activations(model, images: torch.Tensor, batch_size: int = MEASURE_BATCH_SIZE) -> list[torch.Tensor]:
    """For each ConvBlock, an (images x filters) tensor of each image's maximum response,
    with BatchNorm in inference mode (running statistics). ``model`` itself is not changed."""
    folded = inference_copy(model)
    collected: list[list[torch.Tensor]] = [[] for _ in folded.blocks]
    for block, store in zip(folded.blocks, collected):
        block.register_forward_hook(lambda _m, _i, out, store=store: store.append(out.amax(dim=(2, 3)).float().cpu()))
    for start in range(0, len(images), batch_size):
        folded(images[start : start + batch_size])
    return [torch.cat(parts) for parts in collected]


def batchnorm_parameters(model) -> list[tuple[np.ndarray, np.ndarray]]:
    """(gamma, beta) per ConvBlock; NaN arrays for blocks without BatchNorm."""
    result = []
    for block in model.blocks:
        if isinstance(block.bn, nn.BatchNorm2d):
            result.append((block.bn.weight.detach().cpu().double().numpy(), block.bn.bias.detach().cpu().double().numpy()))
        else:
            nan = np.full(block.conv.out_channels, np.nan)
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
    images: torch.Tensor,
    *,
    activation_threshold: float = ACTIVATION_THRESHOLD,
    gamma_threshold: float = GAMMA_THRESHOLD,
    selectivity_threshold: float = SELECTIVITY_THRESHOLD,
    batch_size: int = MEASURE_BATCH_SIZE,
) -> SparsityReport:
    """Measure every filter of ``model`` (a ``ConvNet``) on ``images`` (normally the training set)."""
    for name, value in (("activation_threshold", activation_threshold), ("gamma_threshold", gamma_threshold),
                        ("selectivity_threshold", selectivity_threshold)):
        if not (0 <= value < 1):
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    maxima_per_layer = per_image_max_activations(model, images, batch_size)
    bn = batchnorm_parameters(model)
    frames = []
    for name, per_image, (gamma, beta) in zip(model.layer_names, maxima_per_layer, bn):
        max_activation = per_image.double().amax(dim=0).numpy()
        frames.append(pd.DataFrame({
            "layer": name,
            "filter": np.arange(per_image.shape[1]),
            "max_activation": max_activation,
            "gamma": gamma,
            "beta": beta,
            "dead_by_activation": max_activation < activation_threshold,
            "dead_by_gamma": np.abs(gamma) < gamma_threshold,  # NaN (no BN) compares False
            "selectivity": selectivity(per_image, selectivity_threshold, activation_threshold),
        }))
    filters = pd.concat(frames, ignore_index=True)
    filters["universality"] = 1.0 - filters["selectivity"]
    return SparsityReport(filters=filters, layers=summarize_layers(filters), totals=summarize_totals(filters))


def summarize_layers(filters: pd.DataFrame) -> pd.DataFrame:
    """Per-layer counts and fractions of dead filters, and the median selectivity of live ones."""
    grouped = filters.groupby("layer", sort=False)
    layers = pd.DataFrame({
        "filters": grouped.size(),
        "dead_by_activation": grouped["dead_by_activation"].sum().astype(int),
        "dead_by_gamma": grouped["dead_by_gamma"].sum().astype(int),
        "median_selectivity": grouped["selectivity"].median(),
    }).reset_index()
    layers["dead_by_activation_pct"] = 100.0 * layers["dead_by_activation"] / layers["filters"]
    layers["dead_by_gamma_pct"] = 100.0 * layers["dead_by_gamma"] / layers["filters"]
    return layers


def summarize_totals(filters: pd.DataFrame) -> dict:
    """Network totals: counts, fractions, and how often the two criteria agree."""
    by_activation = filters["dead_by_activation"].to_numpy(bool)
    by_gamma = filters["dead_by_gamma"].to_numpy(bool)
    n = len(filters)
    return {
        "filters": n,
        "dead_by_activation_count": int(by_activation.sum()),
        "dead_by_gamma_count": int(by_gamma.sum()),
        "dead_by_activation": float(by_activation.mean()) if n else 0.0,
        "dead_by_gamma": float(by_gamma.mean()) if n else 0.0,
        "dead_by_both": int((by_activation & by_gamma).sum()),
        "dead_by_activation_only": int((by_activation & ~by_gamma).sum()),
        "dead_by_gamma_only": int((~by_activation & by_gamma).sum()),
        "criteria_agreement": float((by_activation == by_gamma).mean()) if n else 1.0,
    }


def epoch_snapshot(model, images: torch.Tensor) -> dict:
    """Cheap per-epoch view on a fixed sample of training images: dead filters per layer, each
    filter's selectivity (NaN when dead on the sample) and |gamma| quantiles per layer."""
    maxima = per_image_max_activations(model, images)
    return {
        "dead_per_layer": [int((m.amax(dim=0) < ACTIVATION_THRESHOLD).sum()) for m in maxima],
        "gamma_quantiles": gamma_quantiles(model),
        "filter_selectivity": np.concatenate([selectivity(m) for m in maxima]).round(6).tolist(),
    }


def gamma_quantiles(model, quantiles=(0.0, 0.1, 0.5, 0.9, 1.0)) -> list[list[float]]:
    """Quantiles of |gamma| per layer (NaN without BatchNorm)."""
    return [np.quantile(np.abs(gamma), quantiles).tolist() for gamma, _ in batchnorm_parameters(model)]

"""Watch filters die in your own training loop.

    monitor = SparsityMonitor(model, sample_images, optimizer)
    for epoch in range(epochs):
        train_one_epoch(...)
        monitor(epoch)           # measures; warns when filters start dying
    monitor.history              # one row per epoch and layer: dead filters, |gamma| quantiles
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from .filters import find_filter_layers
from .sparsity import epoch_snapshot

ADAPTIVE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.Adamax, torch.optim.Adagrad, torch.optim.Adadelta,
            torch.optim.RMSprop, torch.optim.NAdam, torch.optim.RAdam)
GAMMA_QUANTILES = ("gamma_min", "gamma_q10", "gamma_median", "gamma_q90", "gamma_max")


class FiltersDyingWarning(UserWarning):
    """Filters that were alive at the previous measurement are dead now."""


def decayed_batchnorm(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> float:
    """The largest ``weight_decay`` the optimizer applies to a BatchNorm parameter (0 if none)."""
    if optimizer is None:
        return 0.0
    bn_parameters = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                     for p in m.parameters()}
    return max((group.get("weight_decay", 0.0) for group in optimizer.param_groups
                if any(id(p) in bn_parameters for p in group["params"])), default=0.0)


def likely_cause(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> str:
    """The paper's practical advice, when it applies to this optimizer."""
    decay = decayed_batchnorm(model, optimizer)
    if not isinstance(optimizer, ADAPTIVE) or decay == 0:
        return ""
    kind = "decoupled weight decay" if isinstance(optimizer, torch.optim.AdamW) else "L2 (weight_decay)"
    return (f" Likely cause: {type(optimizer).__name__} with {kind} {decay:g} on BatchNorm's gamma and beta; an "
            "adaptive optimizer with L2 drives filters to a constant negative output (Mehta et al., CVPR 2019). "
            "If you do not want the sparsity, exclude BatchNorm parameters from weight decay or lower it.")


class SparsityMonitor:
    """Measures dead filters per layer (ReLU output zero on every sample image, BatchNorm in
    inference mode) and |gamma| quantiles each time it is called.

    Args:
        model: any traceable CNN (see ``filters.find_filter_layers``).
        images: a fixed sample of training images (a few hundred to a thousand is enough).
        optimizer: optional; lets a warning name the likely cause.
        warn: issue a ``FiltersDyingWarning`` when the number of dead filters grows.
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, optimizer: torch.optim.Optimizer | None = None,
                 warn: bool = True):
        self.model, self.images, self.optimizer, self.warn = model, images, optimizer, warn
        self.layers = find_filter_layers(model)
        self._rows: list[dict] = []
        self._dead: dict[str, int] | None = None

    def __call__(self, epoch: int | None = None) -> dict:
        """Measure now; returns the snapshot (dead_per_layer, gamma_quantiles, filter_selectivity)."""
        snapshot = epoch_snapshot(self.model, self.images, self.layers)  # measures a copy: the model's mode is kept
        epoch = len({row["epoch"] for row in self._rows}) + 1 if epoch is None else epoch
        dead = {}
        for layer, count, quantiles in zip(self.layers, snapshot["dead_per_layer"], snapshot["gamma_quantiles"]):
            dead[layer.name] = count or 0
            self._rows.append({"epoch": epoch, "layer": layer.name, "filters": layer.channels, "measured": layer.measured,
                               "dead": count, "dead_pct": 100.0 * count / layer.channels if count is not None else np.nan,
                               **dict(zip(GAMMA_QUANTILES, np.abs(quantiles)))})
        if self.warn:
            self._warn_if_dying(epoch, dead)
        self._dead = dead
        return snapshot

    def _warn_if_dying(self, epoch, dead: dict[str, int]) -> None:
        before = self._dead or {name: 0 for name in dead}
        grown = {name: dead[name] - before[name] for name in dead if dead[name] > before[name]}
        if grown:
            where = ", ".join(f"{name} +{n}" for name, n in grown.items())
            warnings.warn(FiltersDyingWarning(
                f"epoch {epoch}: {sum(grown.values())} more filter(s) dead ({where}); {sum(dead.values())} of "
                f"{sum(layer.channels for layer in self.layers if layer.measured)} now." + likely_cause(self.model, self.optimizer)),
                stacklevel=3)

    @property
    def history(self) -> pd.DataFrame:
        """One row per call and layer: epoch, layer, filters, dead, dead_pct, |gamma| quantiles."""
        return pd.DataFrame(self._rows, columns=["epoch", "layer", "filters", "measured", "dead", "dead_pct", *GAMMA_QUANTILES])

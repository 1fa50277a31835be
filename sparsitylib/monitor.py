"""Watch filters die in your own training loop.

    monitor = SparsityMonitor(model, sample_images, optimizer)
    for epoch in range(epochs):
        train_one_epoch(...)
        monitor(epoch)           # measures; warns when filters start dying
    monitor.history              # one row per epoch and layer: dead filters by every definition, |gamma| quantiles
    monitor.deaths()             # per dead filter: the epoch it died, its gamma and beta before
    monitor.plot()               # dead filters per layer over epochs
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from .dormancy import GRAMA_TAU, add_definitions, grama_scores, layer_counts
from .filters import find_filter_layers
from .recycle import RECYCLE_INITS, RecycleError, recycle_dead
from .sparsity import GAMMA_THRESHOLD, epoch_snapshot

ADAPTIVE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.Adamax, torch.optim.Adagrad, torch.optim.Adadelta,
            torch.optim.RMSprop, torch.optim.NAdam, torch.optim.RAdam)
GAMMA_QUANTILES = ("gamma_min", "gamma_q10", "gamma_median", "gamma_q90", "gamma_max")
DEATH_COLUMNS = ["layer", "filter", "died_at", "gamma_first", "beta_first", "gamma_at_death", "beta_at_death"]


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


def _measured_module(model: nn.Module) -> nn.Module:
    """The module to measure: a ``torch.compile``d model's original (its graph is not traceable)."""
    return getattr(model, "_orig_mod", model)


class SparsityMonitor:
    """Measures each filter (ReLU output on a fixed sample of images, BatchNorm in inference mode)
    each time it is called: dead filters per layer by every definition of ``dormancy``, |gamma|
    quantiles, and per filter gamma, beta and its flags, so when each filter died can be read back.

    Args:
        model: any traceable CNN (see ``filters.find_filter_layers``); a ``torch.compile``d one is
            measured through its original module.
        images: a fixed sample of training images (a few hundred to a thousand is enough).
        optimizer: optional; lets a warning name the likely cause.
        warn: issue a ``FiltersDyingWarning`` when the number of dead filters grows. The first
            measurement is the baseline: it never warns.
        dormancy: also measure the dormant definitions (mean |activation|, firing fraction).
        recycle: after each measurement, re-initialize the filters dead on the sample
            (``recycle.recycle_dead``, with the optimizer's moments reset); the snapshot then
            has ``recycled_per_layer``.
        recycle_init: where recycled filters are drawn from (``recycle.recycle_dead``'s ``init``:
            ``network``, the network's own initialization, or ``pytorch``, or a function).
        keep_filter_measurements: how many of the latest per-filter tables ``filter_history`` keeps
            (in memory and in ``state_dict``, so a checkpoint stays bounded: about 70 bytes per filter
            and measurement, 1.8 MB per epoch for ResNet-50); None keeps every one. ``deaths`` is
            exact whatever is kept: it follows each filter's current run of dead measurements.
        labels, loss: the sample's labels and a loss function (``loss(model(images), labels)``, e.g.
            ``torch.nn.functional.cross_entropy``): with them each measurement also scores every unit
            by GraMa (``dormancy.grama_scores``: its incoming weights' mean |gradient| on the sample,
            relative to its layer's) and flags ``dormant_grama`` (score <= ``GRAMA_TAU``), beside the
            activation-based definitions.
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, optimizer: torch.optim.Optimizer | None = None,
                 warn: bool = True, dormancy: bool = True, recycle: bool = False, recycle_init="network",
                 keep_filter_measurements: int | None = None, labels: torch.Tensor | None = None, loss=None):
        self.model, self.images, self.optimizer, self.warn, self.dormancy = model, images, optimizer, warn, dormancy
        if not (callable(recycle_init) or recycle_init in RECYCLE_INITS):
            raise RecycleError(f"recycle_init={recycle_init!r}: use one of {list(RECYCLE_INITS)} or a function that "
                               "fills a weight tensor in place")
        if keep_filter_measurements is not None and (not isinstance(keep_filter_measurements, int)
                                                     or keep_filter_measurements < 0):
            raise ValueError(f"keep_filter_measurements must be a whole number >= 0 or None (keep all), "
                             f"got {keep_filter_measurements!r}")
        if (labels is None) != (loss is None):
            raise ValueError("GraMa needs both labels= (one per image) and loss= (e.g. torch.nn.functional.cross_entropy)")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"labels= has {len(labels)} entries for {len(images)} images; give one per image")
        self.recycle, self.recycle_init, self.keep_filter_measurements = recycle, recycle_init, keep_filter_measurements
        self.labels, self.loss = labels, loss
        self.layers = find_filter_layers(_measured_module(model))
        self._rows: list[dict] = []
        self._filter_rows: list[pd.DataFrame] = []
        self._dead: dict[str, int] | None = None
        self._streaks: pd.DataFrame | None = None  # per filter: see _track
        self._explained = False

    def __call__(self, epoch: int | None = None, recycle: bool | None = None) -> dict:
        """Measure now; returns the snapshot (``sparsity.epoch_snapshot``). ``recycle`` overrides
        the monitor's setting for this call."""
        snapshot = epoch_snapshot(_measured_module(self.model), self.images, self.layers, dormancy=self.dormancy)  # a copy: the model's mode is kept
        epoch = len({row["epoch"] for row in self._rows}) + 1 if epoch is None else epoch
        filters = self._filter_table(snapshot, epoch)
        counts = layer_counts(filters).set_index("layer") if self.dormancy else None
        dead = {}
        for layer, count, quantiles in zip(self.layers, snapshot["dead_per_layer"], snapshot["gamma_quantiles"]):
            dead[layer.name] = count or 0
            row = {"epoch": epoch, "layer": layer.name, "filters": layer.channels, "measured": layer.measured,
                   "dead": count, "dead_pct": 100.0 * count / layer.channels if count is not None else np.nan,
                   **dict(zip(GAMMA_QUANTILES, np.abs(quantiles)))}
            if counts is not None:
                row.update({name: counts.loc[layer.name, name] for name in counts.columns if name not in ("filters", "activation")})
            self._rows.append(row)
        self._keep(filters)
        if self.warn and self._dead is not None:
            self._warn_if_dying(epoch, dead)
        self._dead = dead
        if self.recycle if recycle is None else recycle:
            result = recycle_dead(_measured_module(self.model), filters, self.optimizer,
                                  input_shape=tuple(self.images.shape[1:]), init=self.recycle_init)
            snapshot["recycled_per_layer"] = [len(result.recycled.get(layer.name, ())) for layer in self.layers]
            self._dead = {name: count - len(result.recycled.get(name, ())) for name, count in dead.items()}
        return snapshot

    def _filter_table(self, snapshot: dict, epoch) -> pd.DataFrame:
        """One row per filter: epoch, layer, filter, gamma, beta, and each definition's flag."""
        names = [layer.name for layer in self.layers for _ in range(layer.channels)]
        filters = pd.DataFrame({
            "epoch": epoch, "layer": names,
            "filter": [i for layer in self.layers for i in range(layer.channels)],
            "measured": [layer.measured for layer in self.layers for _ in range(layer.channels)],
            "observed": [layer.observed for layer in self.layers for _ in range(layer.channels)],
            "gamma": snapshot["filter_gamma"], "beta": snapshot["filter_beta"],
            "dead_by_activation": [bool(flag) for flag in snapshot["filter_dead"]],
        })
        small_gamma = filters["gamma"].abs() < GAMMA_THRESHOLD  # NaN (no BatchNorm) compares False
        if any(layer.residual for layer in self.layers):  # an idle residual branch is not a dead filter (sparsity.py)
            filters["residual_branch"] = [layer.residual for layer in self.layers for _ in range(layer.channels)]
            filters["dead_by_gamma"] = small_gamma & ~filters["residual_branch"]
            filters["idle_branch"] = small_gamma & filters["residual_branch"]
        else:
            filters["dead_by_gamma"] = small_gamma
        if self.dormancy:
            filters["mean_abs_activation"], filters["firing_fraction"] = snapshot["filter_mean_abs"], snapshot["filter_firing"]
            filters = add_definitions(filters)
        if self.labels is not None:
            scores = grama_scores(_measured_module(self.model), self.layers, self.images, self.labels, self.loss)
            filters["grama_score"] = np.concatenate(scores)
            filters["dormant_grama"] = filters["grama_score"] <= GRAMA_TAU
        return filters

    def _keep(self, filters: pd.DataFrame) -> None:
        self._track(filters)
        self._filter_rows.append(filters)
        if self.keep_filter_measurements is not None:
            self._filter_rows = self._filter_rows[len(self._filter_rows) - self.keep_filter_measurements:]

    def _track(self, filters: pd.DataFrame) -> None:
        """Per filter: its gamma and beta at the first measurement, and for each flag the epoch at
        which its current run of flagged measurements began, with gamma and beta then (NaN while
        not flagged). What ``deaths`` reads, in a size that does not grow with the epochs."""
        if self._streaks is None:
            self._streaks = pd.DataFrame({"layer": filters["layer"].to_numpy(), "filter": filters["filter"].to_numpy(),
                                          "gamma_first": filters["gamma"].to_numpy(float),
                                          "beta_first": filters["beta"].to_numpy(float)})
        streaks = self._streaks
        epoch = float(filters["epoch"].iloc[0])
        for flag in (c for c in filters.columns if filters[c].dtype == bool and c not in ("measured", "residual_branch")):
            on = filters[flag].to_numpy(bool)
            since = streaks[f"{flag}:since"].to_numpy(float) if f"{flag}:since" in streaks else np.full(len(on), np.nan)
            began = on & np.isnan(since)
            for key, now in (("since", epoch), ("gamma", filters["gamma"].to_numpy(float)),
                             ("beta", filters["beta"].to_numpy(float))):
                column = f"{flag}:{key}"
                before = streaks[column].to_numpy(float) if column in streaks else np.full(len(on), np.nan)
                streaks[column] = np.where(began, now, np.where(on, before, np.nan))

    def _warn_if_dying(self, epoch, dead: dict[str, int]) -> None:
        grown = {name: dead[name] - self._dead[name] for name in dead if dead[name] > self._dead[name]}
        if grown:
            where = ", ".join(f"{name} +{n}" for name, n in grown.items())
            warnings.warn(FiltersDyingWarning(
                f"epoch {epoch}: {sum(grown.values())} more filter(s) dead ({where}); {sum(dead.values())} of "
                f"{sum(layer.channels for layer in self.layers if layer.measured)} now."
                + ("" if self._explained else likely_cause(self.model, self.optimizer))), stacklevel=3)
            self._explained = True  # the cause once; then one line per change

    @property
    def history(self) -> pd.DataFrame:
        """One row per measurement and layer: epoch, layer, filters, measured, dead (activation
        criterion) and dead_pct, |gamma| quantiles, and how many filters each other definition
        marks (``gamma``, ``dormant-0`` ...; NaN where it does not apply)."""
        columns = ["epoch", "layer", "filters", "measured", "dead", "dead_pct", *GAMMA_QUANTILES]
        extra = [c for c in (self._rows[0] if self._rows else {}) if c not in columns]
        return pd.DataFrame(self._rows, columns=columns + extra)

    @property
    def filter_history(self) -> pd.DataFrame:
        """One row per kept measurement (``keep_filter_measurements``) and filter: epoch, layer,
        filter, gamma, beta, and each definition's flag (``dead_by_activation``, ``dead_by_gamma``,
        ``dormant_tau_0`` ...)."""
        return pd.concat(self._filter_rows, ignore_index=True) if self._filter_rows else pd.DataFrame()

    def deaths(self, column: str = "dead_by_activation") -> pd.DataFrame:
        """Per filter that is dead (by ``column``) at the last measurement and stayed dead since
        some epoch: that epoch, and its gamma and beta at the first measurement and at death."""
        if self._streaks is None:
            return pd.DataFrame(columns=DEATH_COLUMNS)
        streaks = self._streaks
        if f"{column}:since" not in streaks:
            flags = sorted({c.split(":")[0] for c in streaks if c.endswith(":since")})
            raise ValueError(f"no flag {column!r} in the measurements; use one of {flags}")
        dead = streaks[streaks[f"{column}:since"].notna()]
        return pd.DataFrame({"layer": dead["layer"], "filter": dead["filter"],
                             "died_at": dead[f"{column}:since"].astype("int64"),
                             "gamma_first": dead["gamma_first"], "beta_first": dead["beta_first"],
                             "gamma_at_death": dead[f"{column}:gamma"], "beta_at_death": dead[f"{column}:beta"]},
                            columns=DEATH_COLUMNS).reset_index(drop=True)

    def plot(self, column: str = "dead", ax=None):
        """Dead filters per layer (``column`` of ``history``: ``dead`` by activation, or another
        definition's name) against epoch, one line per layer; returns the figure."""
        import matplotlib.pyplot as plt

        history = self.history
        if column not in history:
            raise ValueError(f"no column {column!r} in the history; use one of {list(history.columns[4:])}")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        for layer, rows in history[history[column].notna()].groupby("layer", sort=False):
            ax.plot(rows["epoch"], rows[column], marker="o", markersize=3, label=layer)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"filters ({'dead by activation' if column == 'dead' else column})")
        ax.set_ylim(bottom=0)
        if history["layer"].nunique() <= 12:
            ax.legend(fontsize="small", ncol=2, frameon=False)
        return ax.figure

    def state_dict(self) -> dict:
        """The history, so that a resumed training keeps it (``load_state_dict``): the per-layer
        rows, the kept per-filter tables and each filter's current runs of flags (for ``deaths``)."""
        plain = [{key: value.item() if isinstance(value, np.generic) else value for key, value in row.items()}
                 for row in self._rows]  # plain numbers: checkpoints load with torch.load(weights_only=True)
        return {"rows": plain, "filter_rows": [frame.to_dict(orient="list") for frame in self._filter_rows],
                "streaks": self._streaks.to_dict(orient="list") if self._streaks is not None else None,
                "dead": dict(self._dead) if self._dead is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self._rows = list(state["rows"])
        self._filter_rows = [pd.DataFrame(frame) for frame in state["filter_rows"]]
        self._dead = dict(state["dead"]) if state["dead"] is not None else None
        if "streaks" in state:
            self._streaks = pd.DataFrame(state["streaks"]) if state["streaks"] is not None else None
        else:  # a checkpoint from before the runs were tracked holds every per-filter table: follow them again
            self._streaks = None
            for frame in self._filter_rows:
                self._track(frame)

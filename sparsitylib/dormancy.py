"""Every community's definition of a dead or dormant unit, from one measurement.

Each community that looks for units that stopped working has its own definition. All of them are
computed from the same streaming pass (``sparsity.record_statistics``), after each filter's own
activation (after BatchNorm, in inference mode), over the whole data given:

==================  ===============================================================  ======
definition          a filter is counted when                                         exact
==================  ===============================================================  ======
``activation``      its maximum over every image and position is below 1e-12          yes
                    (this paper: Mehta, Kim and Theobalt, CVPR 2019)
``gamma``           its BatchNorm ``|gamma|`` is below 1e-3 (the authors' pruning      no
                    code); it then outputs the constant act(beta)
``tau-dormant``     its mean ``|activation|`` over images and positions, divided by   tau=0
                    the mean of that over its layer, is <= tau (ReDo: Sokar et al.,    only
                    ICML 2023; tau 0, 0.025 and 0.1 reported)
``dormant-1%``      fewer than 1% of its (image, position) values fire, i.e. exceed   no
                    1e-12 (loss of plasticity: Dohare et al., Nature 2024)
==================  ===============================================================  ======

APoZ (Hu et al. 2016, "Network Trimming"), the average percentage of zeros of a channel's
outputs, is a score for ranking, not a rule: it is reported per filter (``apoz``, the complement
of ``firing_fraction``) and as a layer mean; ``dormant-1%`` is APoZ above 99%.

*Exact* means removing the filters provably leaves the network's outputs on the measured data
unchanged: they output zero everywhere. A 0-dormant filter is zero everywhere, so it is also dead
by activation; the other dormant filters still fire, only rarely or weakly.

Two definitions' agreement is the Jaccard overlap of their sets, |A and B| / |A or B|, over the
filters both apply to (NaN when neither marks any filter there).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import torch
from torch import nn

from .definitions import (APOZ_DIFFERS, DOHARE_DIFFERS, DORMANCY_TAUS, DORMANT_FIRING, GRAMA_DIFFERS, GRAMA_TAU,  # noqa: F401
                          ZERO_OUTPUT, Definition, definitions, firing_column, tau_column)


def grama_scores(model: nn.Module, layers, images: torch.Tensor, labels: torch.Tensor, loss) -> list[np.ndarray]:
    """GraMa's score per unit of each layer: the mean |gradient of ``loss``| over the unit's
    incoming weights (a convolution's filter, a linear layer's row), on ``images`` and ``labels``
    with the model in inference mode, divided by the layer's mean of that. The parameters'
    ``.grad`` are left as they were."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    saved = [p.grad for p in parameters]
    was_training = model.training
    try:
        model.eval()
        for p in parameters:
            p.grad = None
        with torch.enable_grad():
            loss(model(images), labels).backward()
        scores = []
        for layer in layers:
            grad = model.get_submodule(layer.conv).weight.grad
            per_unit = grad.abs().flatten(1).mean(dim=1).double().cpu().numpy() if grad is not None \
                else np.zeros(layer.channels)
            scores.append(dormancy_scores(per_unit))  # scale-free: no epsilon added to the layer mean
        return scores
    finally:
        for p, grad in zip(parameters, saved):
            p.grad = grad
        model.train(was_training)


def dormancy_scores(mean_abs: np.ndarray) -> np.ndarray:
    """ReDo's score: each unit's mean |activation| divided by its layer's mean of that (0 for
    every unit of a layer that outputs nothing at all)."""
    layer_mean = float(np.mean(mean_abs))
    return mean_abs / layer_mean if layer_mean > 0 else np.zeros_like(mean_abs)


def add_definitions(filters: pd.DataFrame, taus=DORMANCY_TAUS, firing: float = DORMANT_FIRING) -> pd.DataFrame:
    """The per-filter table with ``apoz``, ``dormancy_score`` and one boolean column per dormant
    definition added, from its ``mean_abs_activation`` and ``firing_fraction`` columns (NaN, and
    False, where a layer has no activation criterion)."""
    filters = filters.copy()
    filters["apoz"] = 1.0 - filters["firing_fraction"]
    filters["dormancy_score"] = filters.groupby("layer", sort=False)["mean_abs_activation"].transform(
        lambda values: dormancy_scores(values.to_numpy()) if values.notna().all() else np.nan)
    for tau in taus:
        filters[tau_column(tau)] = filters["dormancy_score"] <= tau  # NaN compares False
    filters[firing_column(firing)] = filters["firing_fraction"] < firing
    return filters


def applies_to(filters: pd.DataFrame, definition: Definition) -> np.ndarray:
    """Which filters ``definition`` can judge: those with an activation criterion, or with BatchNorm."""
    if definition.applies == "relu":
        return filters["measured"].to_numpy(bool)
    if definition.applies == "observed":
        return filters["observed" if "observed" in filters else "measured"].to_numpy(bool)
    if definition.applies == "any":
        return filters[definition.column.replace("dormant_", "") + "_score"].notna().to_numpy()
    branch = filters["residual_branch"].to_numpy(bool) if "residual_branch" in filters else np.zeros(len(filters), bool)
    has_gamma = filters["gamma"].notna().to_numpy()
    return has_gamma & branch if definition.column == "idle_branch" else has_gamma & ~branch


def jaccard(first: np.ndarray, second: np.ndarray) -> float:
    """|A and B| / |A or B| of two boolean masks; NaN when both are empty."""
    union = int((first | second).sum())
    return float((first & second).sum() / union) if union else float("nan")


def agreement(filters: pd.DataFrame, chosen: list[Definition] | None = None) -> pd.DataFrame:
    """One row per pair of definitions: the Jaccard overlap of their sets over the filters both
    apply to, and how many filters each marks there."""
    chosen = chosen or [d for d in definitions() if d.column in filters]
    rows = []
    for first, second in combinations(chosen, 2):
        both = applies_to(filters, first) & applies_to(filters, second)
        a, b = filters[first.column].to_numpy(bool) & both, filters[second.column].to_numpy(bool) & both
        rows.append({"first": first.name, "second": second.name, "filters": int(both.sum()),
                     "first_count": int(a.sum()), "second_count": int(b.sum()), "both": int((a & b).sum()),
                     "jaccard": jaccard(a, b)})
    return pd.DataFrame(rows, columns=["first", "second", "filters", "first_count", "second_count", "both", "jaccard"])


def layer_counts(filters: pd.DataFrame, chosen: list[Definition] | None = None) -> pd.DataFrame:
    """Per layer: filters, and how many each definition marks (NaN where it does not apply), and
    the mean APoZ of the layer's filters."""
    chosen = chosen or [d for d in definitions() if d.column in filters]
    rows = []
    for name, rows_of_layer in filters.groupby("layer", sort=False):
        row = {"layer": name, "filters": len(rows_of_layer)}
        for definition in chosen:
            applies = applies_to(rows_of_layer, definition)
            row[definition.name] = int(rows_of_layer[definition.column].to_numpy(bool)[applies].sum()) if applies.any() else np.nan
        row["mean_apoz"] = float(rows_of_layer["apoz"].mean()) if "apoz" in rows_of_layer else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def totals(filters: pd.DataFrame, chosen: list[Definition] | None = None) -> dict:
    """Per definition: how many filters it marks, of how many it applies to, and the fraction."""
    chosen = chosen or [d for d in definitions() if d.column in filters]
    result = {}
    for definition in chosen:
        applies = applies_to(filters, definition)
        count = int(filters[definition.column].to_numpy(bool)[applies].sum())
        result[definition.name] = {"count": count, "of": int(applies.sum()),
                                   "fraction": count / int(applies.sum()) if applies.any() else None}
    return result


def removable(name: str) -> str | None:
    """None if ``inspect --prune`` can remove the filters of definition ``name``; else why not."""
    chosen = {d.name: d for d in definitions()}
    if name not in chosen:
        return f"unknown definition {name!r}; choose one of {list(chosen)}"
    if chosen[name].exact or name == "gamma":
        return None
    if name == "idle-branch":
        return ("idle-branch marks channels of residual branches, which the residual stream still carries: removing "
                "one would remove the stream's channel in every block it joins; --prune does not remove them")
    return (f"{name} marks filters that still fire (weakly or rarely), so removing them changes the network's "
            "outputs; --prune removes only filters it can remove exactly: --criterion activation or dormant-0 "
            "(or gamma, whose constant output it folds into the next layer)")

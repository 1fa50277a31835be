"""The paper's claims, one function per notebook, each turning the runs' tables into verdicts.

Every function takes the tidy tables of the notebook's runs and returns a list of ``Verdict``;
what decides each verdict is in ``verdict.py``. Nothing here knows the expected outcome: the same
code says "does not hold" when the data say so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .compare import IMPLICIT, L1_NORM, SLIMMING, UNPRUNED_ADAPTIVE
from .prune import EXACT_LOGIT_TOLERANCE
from .data import DATASETS
from .grid import equal_step_epochs, steps_of
from .optim import OPTIMIZERS, cumulative_lr, run_high_rate_lr_x_steps
from .sparsity import GAMMA_THRESHOLD
from .store import RunTables
from .claims import Design, bound, paired_runs, two_arm
from .verdict import (
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    UNTESTABLE,
    UNTRAINED_MARGIN,
    Verdict,
    all_bounds,
    all_equivalent,
    combine,
    describe,
    did_not_train,
    equivalent,
    greater,
    invalid,
    near_zero,
    not_reached,
    paired_equivalent,
    paired_greater,
    t_interval,
    trend,
)

DEAD = "dead_by_activation"


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "completed"] if len(runs) else runs


def select(runs: pd.DataFrame, metric: str = DEAD, **where) -> np.ndarray:
    """Per-seed values of ``metric`` for the completed runs matching every ``column=value``."""
    runs = completed(runs)
    mask = pd.Series(True, index=runs.index)
    for column, value in where.items():
        mask &= runs[column] == value
    return runs.loc[mask, metric].to_numpy(dtype=float)


# --- 1. optimizer x regularizer -----------------------------------------------------------------


HEADLINE = (("adam", "l2"), ("sgd", "l2"), ("adam", "none"), ("adam", "wd"))  # the arms notebook 01's seeds are for
COMPARED_WD = ("adam", "sgd")  # the optimizers whose WD arms are compared; the others' are shown


def optimizer_grid(exp, optimizers, compared_seeds, other_seeds, unregularized=None, weight_decay=None,
                   decoupled=()) -> list:
    """Notebook 01's runs: every optimizer with L2, those in ``unregularized`` without regularization
    and those in ``weight_decay`` with the paper's WD (None: every optimizer). The headline arms
    (``HEADLINE``) get the notebook's seeds, the other arms compared pairwise (the other adaptive
    methods with L2, Adam and SGD with WD) ``compared_seeds``, the rest ``other_seeds``. The
    optimizers in ``decoupled`` (``adamw``) run with their own decay as a preset gives it
    (``presets.OPTIMIZER_DEFAULTS``), with the notebook's seeds."""
    if not optimizers:
        raise ValueError("grid values for 'optimizer' must be a non-empty list: name at least one optimizer")
    arms = ([(o, "l2") for o in optimizers]
            + [(o, "none") for o in (optimizers if unregularized is None else unregularized)]
            + [(o, "wd") for o in (optimizers if weight_decay is None else weight_decay)])
    configs = []
    for optimizer, mode in arms:
        seeds = (None if (optimizer, mode) in HEADLINE
                 else compared_seeds if mode == "l2" or (mode == "wd" and optimizer in COMPARED_WD) else other_seeds)
        configs += exp.grid(seeds=seeds, optimizer=[optimizer], decay_mode=[mode])
    for optimizer in decoupled:
        configs += exp.grid(optimizer=[optimizer])
    return configs


def optimizer_regularizer(tables: RunTables, compared_to_sgd: list | None = None) -> list[Verdict]:
    """Each adaptive optimizer with L2 against SGD with L2 (one claim each, Adam first; only those
    in ``compared_to_sgd`` when given, the others are shown in the table but not tested); the bound
    "nothing dies without regularization"; with Adam, L2 and WD each against no regularization and
    against each other; Adam against SGD under the paper's WD. Claims whose arms were not run are
    left out."""
    runs = tables.runs
    arms = set(zip(runs["optimizer"], runs["decay_mode"]))
    adaptive = [o for o in OPTIMIZERS if o != "sgd" and (o, "l2") in arms
                and (compared_to_sgd is None or o in compared_to_sgd)]

    def arm(optimizer, mode):
        return select(runs, optimizer=optimizer, decay_mode=mode)

    verdicts = [greater(f"With L2, {o} leaves more dead filters than SGD", arm(o, "l2"), arm("sgd", "l2"),
                        f"{o}+l2", "sgd+l2", claim_id="adam-vs-sgd" if o == "adam" else "other-adaptive-vs-sgd")
                for o in adaptive]
    unregularized = sorted(o for o, mode in arms if mode == "none")
    verdicts.append(all_bounds("Without regularization no filters die, for every optimizer run without it",
                               [near_zero(f"{o}+none", arm(o, "none"), f"{o}+none") for o in unregularized],
                               claim_id="none-without-regularization"))
    pairs = [("With Adam, L2 leaves more dead filters than no regularization", ("adam", "l2"), ("adam", "none"),
              "l2-vs-none"),
             ("With Adam, the paper's weight decay also leaves dead filters (more than no regularization)",
              ("adam", "wd"), ("adam", "none"), "wd-vs-none"),
             ("With Adam, L2 leaves more dead filters than the paper's weight decay (same lambda)",
              ("adam", "l2"), ("adam", "wd"), "l2-vs-wd"),
             ("With the paper's weight decay (same lambda), Adam leaves more dead filters than SGD",
              ("adam", "wd"), ("sgd", "wd"), "wd-adam-vs-sgd"),
             ("AdamW (torch's decoupled decay at its usual strength) leaves dead filters (more than Adam "
              "without regularization)", ("adamw", "decoupled"), ("adam", "none"), "adamw-vs-none")]
    verdicts += [greater(claim, arm(*a), arm(*b), "+".join(a), "+".join(b), claim_id=claim_id)
                 for claim, a, b, claim_id in pairs if a in arms and b in arms]
    return verdicts


def optimizer_designs(seeds, optimizers, unregularized, weight_decay, other_seeds) -> list[Design]:
    """Notebook 01's primary claims, as its parameters design them: Adam+L2 against SGD+L2 and
    against Adam+WD (the headline arms, ``seeds`` each), and the bound without regularization
    (``seeds`` runs for Adam, ``other_seeds`` for the others)."""
    designs = []
    if "adam" in optimizers and "sgd" in optimizers:
        designs.append(two_arm("adam-vs-sgd", len(seeds), len(seeds)))
    if "adam" in optimizers and "adam" in (optimizers if weight_decay is None else weight_decay):
        designs.append(two_arm("l2-vs-wd", len(seeds), len(seeds)))
    bounded = optimizers if unregularized is None else unregularized
    if bounded:
        designs.append(bound("none-without-regularization",
                             min(len(seeds) if o in ("adam", "sgd") else len(other_seeds) for o in bounded)))
    return designs


ARM_METRICS = ("dead_by_activation", "dead_by_gamma", "test_error")


def arm_facts(runs: pd.DataFrame) -> dict:
    """Per arm (``adam+l2``) of the completed runs: how many, at which learning rate, and the mean,
    smallest and largest over its runs of each fraction in ``ARM_METRICS``: the Table 1 numbers a
    reader quotes, for the arms shown but not tested as well (described, not tested)."""
    facts = {}
    for (optimizer, decay_mode), arm in completed(runs).groupby(["optimizer", "decay_mode"], sort=False):
        facts[f"{optimizer}+{decay_mode}"] = {
            "runs": len(arm), "lr": sorted(float(lr) for lr in arm["lr"].unique()),
            **{metric: {"mean": float(arm[metric].mean()), "min": float(arm[metric].min()), "max": float(arm[metric].max())}
               for metric in ARM_METRICS}}
    return facts


def adaptive_summary(verdicts: list[Verdict]) -> str:
    """Adam's primary verdict against SGD, and each other adaptive method's difference from SGD with
    its interval (secondary: described, not tested for a status)."""
    parts = [v for v in verdicts if v.claim_id in ("adam-vs-sgd", "other-adaptive-vs-sgd")]
    lines = [f"- {v.claim.split()[2]}: {v.status}, difference from SGD+L2 {v.effect_text}" for v in parts]
    return "Each adaptive optimizer with L2 against SGD with L2 (Adam primary, the others described):\n\n" + "\n".join(lines)


# --- 2. where sparsity lives --------------------------------------------------------------------


MIN_SELECTIVITY_EFFECT = 0.01  # selectivity is a fraction of images: one point, as for dead fractions


def mean_live_selectivity(tables: RunTables) -> pd.Series:
    """Per run: the mean selectivity of its live filters."""
    if tables.filters.empty:
        return pd.Series(dtype=float)
    live = tables.filters[~tables.filters[DEAD]]
    return live.groupby("run_id")["selectivity"].mean()


HEALTHY_GAMMA = 0.05  # a filter with |gamma| above this at the end is far from dying


def mean_healthy_selectivity(tables: RunTables) -> pd.Series:
    """Per run: the mean selectivity of its live filters with |gamma| > ``HEALTHY_GAMMA``."""
    if tables.filters.empty or tables.filters["gamma"].isna().all():
        return pd.Series(dtype=float)
    filters = tables.filters
    healthy = filters[~filters[DEAD] & (filters["gamma"].abs() > HEALTHY_GAMMA)]
    return healthy.groupby("run_id")["selectivity"].mean()


def where_sparsity_lives(tables: RunTables) -> list[Verdict]:
    """Notebook 02: Adam+L2 against SGD+L2 on the mean selectivity of live filters (primary), and
    of healthy filters only (secondary: the dying ones, selective because they are dying, left out)."""
    runs = completed(tables.runs).copy()
    runs["mean_selectivity"] = runs["run_id"].map(mean_live_selectivity(tables))
    runs["healthy_selectivity"] = runs["run_id"].map(mean_healthy_selectivity(tables))
    verdicts = []
    for column, claim, claim_id in (
            ("mean_selectivity", "Adam+L2 learns more selective features than SGD+L2 (mean selectivity of live filters)",
             "more-selective"),
            ("healthy_selectivity", f"Adam+L2's healthy filters (|gamma| > {HEALTHY_GAMMA:g}) are more selective than "
             f"SGD+L2's", "more-selective-healthy")):
        verdicts.append(greater(claim, select(runs, column, optimizer="adam", decay_mode="l2"),
                                select(runs, column, optimizer="sgd", decay_mode="l2"), "adam+l2", "sgd+l2",
                                fmt="{:.3f}", min_effect=MIN_SELECTIVITY_EFFECT, claim_id=claim_id))
    return verdicts


def layer_facts(tables: RunTables) -> dict:
    """Per arm (``adam+l2``) and per layer, then ``total``: the filters a run has, and the fraction
    dead by each criterion over the arm's runs (mean, its 95% Student interval, smallest, largest):
    the magnitude a reader sets beside the paper's."""
    runs = completed(tables.runs)
    facts = {}
    for (optimizer, decay_mode), arm in runs.groupby(["optimizer", "decay_mode"], sort=False):
        layers = tables.layers[tables.layers["run_id"].isin(arm["run_id"])]
        by_layer = {name: group for name, group in layers.groupby("layer", sort=False)}
        totals = layers.groupby("run_id")[["filters", "dead_by_activation", "dead_by_gamma"]].sum().reset_index()
        arm_facts = {}
        for name, group in [*by_layer.items(), ("total", totals)]:
            entry = {"runs": int(group["run_id"].nunique()), "filters": int(group["filters"].iloc[0])}
            for criterion in ("dead_by_activation", "dead_by_gamma"):
                fractions = (group[criterion] / group["filters"]).to_numpy(dtype=float)
                entry[criterion] = {"mean": float(fractions.mean()), "ci": t_interval(fractions),
                                    "min": float(fractions.min()), "max": float(fractions.max())}
            arm_facts[name] = entry
        facts[f"{optimizer}+{decay_mode}"] = arm_facts
    return facts


def layer_observation(tables: RunTables, optimizer: str = "adam", decay_mode: str = "l2") -> str:
    """Where the dead filters of a setting are, layer by layer (a measurement, not a verdict)."""
    runs = completed(tables.runs)
    ids = runs.loc[(runs["optimizer"] == optimizer) & (runs["decay_mode"] == decay_mode), "run_id"]
    layers = tables.layers[tables.layers["run_id"].isin(ids)]
    if layers.empty:
        return f"No completed {optimizer}+{decay_mode} runs."
    means = layers.groupby("layer", sort=False)["dead_by_activation_pct"].mean()
    parts = ", ".join(f"{layer} {value:.0f}%" for layer, value in means.items())
    return f"{optimizer}+{decay_mode}, % dead by activation per layer (mean over seeds): {parts}; most in {means.idxmax()}."


# --- 3. BatchNorm parameters and dynamics -------------------------------------------------------

def dead_beta_description(tables: RunTables) -> str:
    """Per run: how many dead filters sit at beta <= 0, and their median |gamma| against the live
    ones'. A description, not a test: in inference mode a filter with beta > 0 and gamma near 0
    outputs max(beta, 0) > 0 on every image, so dead filters sit at beta <= 0 almost by definition."""
    runs = completed(tables.runs).set_index("run_id")
    if tables.filters.empty:
        return "No completed runs with BatchNorm."
    filters = tables.filters[tables.filters["run_id"].isin(runs.index) & tables.filters["gamma"].notna()]
    lines = []
    for run_id, group in filters.groupby("run_id", sort=False):
        dead, live = group[group[DEAD]], group[~group[DEAD]]
        run = runs.loc[run_id]
        if dead.empty:
            lines.append(f"- {run.optimizer}+{run.decay_mode}, seed {run.seed}: no dead filters")
            continue
        lines.append(f"- {run.optimizer}+{run.decay_mode}, seed {run.seed}: {int((dead['beta'] <= 0).sum())} of "
                     f"{len(dead)} dead filters at beta <= 0; median |gamma| dead {dead['gamma'].abs().median():.2g}, "
                     f"alive {live['gamma'].abs().median():.2g}")
    return "\n".join(lines) if lines else "No completed runs with BatchNorm."


HALF = 0.5  # BatchNorm's gamma starts at 1: a filter's scale has halved when |gamma| <= 0.5


def gamma_halving(tables: RunTables) -> pd.DataFrame:
    """Per run: the epoch at which each filter's |gamma| first falls to half its initial value (1),
    from the per-epoch snapshots; filters that never halve within training count as epochs + 1
    (censored). Columns: run_id, optimizer, decay_mode, seed, epochs, halved (fraction of filters),
    median_halving_epoch (over all filters, censored values included), and each filter's log-decay
    rate, ln(1/|gamma|) at the end divided by the epochs, summarized three ways:
    gamma_log_decay_per_epoch (the mean over all filters: the few dead ones, at |gamma| ~ 1e-4,
    weigh most), median_log_decay_per_epoch (the median over all filters: the typical filter) and
    survivors_log_decay_per_epoch (the mean over the filters alive at the end)."""
    runs = completed(tables.runs).set_index("run_id")
    per_filter = tables.history_filters()
    if per_filter.empty or "gamma" not in per_filter or per_filter["gamma"].isna().all():
        return pd.DataFrame()
    per_filter = per_filter[per_filter["run_id"].isin(runs.index) & per_filter["gamma"].notna()]
    ends_dead = tables.filters.set_index(["run_id", "layer", "filter"])[DEAD].astype(bool)
    rows = []
    for run_id, group in per_filter.groupby("run_id", sort=False):
        epochs = int(runs.loc[run_id, "epochs"])
        halved = group[group["gamma"] <= HALF].groupby(["layer", "filter"])["epoch"].min()
        filters = group.groupby(["layer", "filter"]).ngroups
        epochs_to_half = np.concatenate([halved.to_numpy(dtype=float), np.full(filters - len(halved), epochs + 1.0)])
        final = group[group["epoch"] == group["epoch"].max()]
        rates = -np.log(np.clip(final["gamma"].abs().to_numpy(dtype=float), 1e-12, None)) / epochs
        dead = ends_dead.reindex(pd.MultiIndex.from_frame(final[["run_id", "layer", "filter"]])).fillna(False).to_numpy(bool)
        rows.append({"run_id": run_id, **{c: runs.loc[run_id, c] for c in ("optimizer", "decay_mode", "seed")},
                     "epochs": epochs, "halved": len(halved) / filters,
                     "median_halving_epoch": float(np.median(epochs_to_half)),
                     "gamma_log_decay_per_epoch": float(np.mean(rates)),
                     "median_log_decay_per_epoch": float(np.median(rates)),
                     "survivors_log_decay_per_epoch": float(np.mean(rates[~dead])) if (~dead).any() else float("nan")})
    return pd.DataFrame(rows)


def min_decay_rate_effect(epochs: int) -> float:
    """The smallest decay-rate difference that counts: one worth 1% of |gamma| by the end of
    ``epochs`` epochs (the rate is a total log-decay divided by the epochs, so the floor scales
    with the length of training)."""
    return float(np.log(1 / 0.99) / epochs)


GAMMA_DECAY_QUANTITIES = (
    ("median_log_decay_per_epoch", "BatchNorm scales (gamma) of the typical filter decay faster with Adam+L2 than "
     "with Adam+WD or SGD+L2", "gamma-decays-faster", "the median over all filters"),
    ("survivors_log_decay_per_epoch", "BatchNorm scales of the filters that survive decay faster with Adam+L2 than "
     "with Adam+WD or SGD+L2", "gamma-decays-faster-survivors", "the mean over the filters alive at the end"),
)


def batchnorm_dynamics(tables: RunTables) -> list[Verdict]:
    """Do BatchNorm scales decay faster with Adam+L2 than with Adam+WD or SGD+L2? Each filter's
    per-epoch log-decay of |gamma| (ln(1/|gamma|) at the end divided by the epochs; its half-life
    is ln 2 / rate; higher is faster), per run summarized by the median over all filters (primary:
    the typical filter, which the few dead filters cannot dominate) and by the mean over the
    filters that survive (secondary: the subset every arm has)."""
    speed = gamma_halving(tables)
    if speed.empty:
        return [Verdict(claim, INCONCLUSIVE, "no per-epoch |gamma| in these runs (stored before it was recorded)",
                        claim_id=claim_id) for _, claim, claim_id, _ in GAMMA_DECAY_QUANTITIES]
    floor = min_decay_rate_effect(int(speed["epochs"].max()))
    speed = speed.assign(status="completed")  # one row per completed run already
    verdicts = []
    for column, claim, claim_id, summary in GAMMA_DECAY_QUANTITIES:
        def arm(optimizer, decay_mode, column=column):
            return select(speed, column, optimizer=optimizer, decay_mode=decay_mode)

        faster = combine(claim, [
            greater("adam+l2 > adam+wd", arm("adam", "l2"), arm("adam", "wd"), "adam+l2", "adam+wd", fmt="{:.4f}",
                    min_effect=floor),
            greater("adam+l2 > sgd+l2", arm("adam", "l2"), arm("sgd", "l2"), "adam+l2", "sgd+l2", fmt="{:.4f}",
                    min_effect=floor),
        ], claim_id=claim_id)
        faster.evidence = (f"log-decay of |gamma| per epoch (ln 1/|gamma| at the end / epochs), {summary}, per run. "
                           + faster.evidence)
        verdicts.append(faster)
    return verdicts


def criteria_agreement(tables: RunTables) -> pd.DataFrame:
    """Per completed run and layer, over the filters the activation criterion applies to: how many
    are dead by activation (never fire on the training set), by |gamma| < 1e-3, by both, and the
    Jaccard index of the two dead sets (both / either; NaN when neither finds one)."""
    runs = completed(tables.runs)
    filters = tables.filters
    if filters.empty:
        return pd.DataFrame()
    filters = filters[filters["run_id"].isin(runs["run_id"])]
    if "measured" in filters:
        filters = filters[filters["measured"].astype(bool)]
    activation, gamma = filters["dead_by_activation"].astype(bool), filters["dead_by_gamma"].astype(bool)
    frame = pd.DataFrame({"run_id": filters["run_id"], "layer": filters["layer"], "activation": activation,
                          "gamma": gamma, "both": activation & gamma, "either": activation | gamma})
    counts = frame.groupby(["run_id", "layer"], sort=False).agg(
        filters=("activation", "size"), dead_by_activation=("activation", "sum"), dead_by_gamma=("gamma", "sum"),
        dead_by_both=("both", "sum"), dead_by_either=("either", "sum")).reset_index()
    counts["jaccard"] = (counts["dead_by_both"] / counts["dead_by_either"]).where(counts["dead_by_either"] > 0)
    settings = runs.set_index("run_id")[["optimizer", "decay_mode", "seed"]]
    return counts.join(settings, on="run_id")


def criteria_description(agreement: pd.DataFrame) -> str:
    """Per run: filters dead by each criterion and the Jaccard index of the two sets, network-wide."""
    if agreement.empty:
        return "no per-filter measurements"
    totals = agreement.groupby(["optimizer", "decay_mode", "seed", "run_id"], sort=True)[
        ["filters", "dead_by_activation", "dead_by_gamma", "dead_by_both", "dead_by_either"]].sum().reset_index()
    parts = []
    for (optimizer, decay_mode), group in totals.groupby(["optimizer", "decay_mode"], sort=False):
        runs = "; ".join(
            f"{r.dead_by_activation / r.filters:.1%} vs {r.dead_by_gamma / r.filters:.1%}"
            + (f" (Jaccard {r.dead_by_both / r.dead_by_either:.2f})" if r.dead_by_either else " (none dead)")
            for r in group.itertuples())
        parts.append(f"{optimizer}+{decay_mode}, per run, dead by activation vs by |gamma| < {GAMMA_THRESHOLD:g}: {runs}")
    return ". ".join(parts)


def spread(values) -> dict:
    """Per-run values with their mean, sd (0 for one run) and range; None entries (undefined in a
    run) are kept in ``per_run`` and left out of the summary."""
    known = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not known:
        return {"per_run": list(values), "runs": 0, "mean": None, "sd": None, "min": None, "max": None}
    return {"per_run": list(values), "runs": len(known), "mean": float(np.mean(known)),
            "sd": float(np.std(known, ddof=1)) if len(known) > 1 else 0.0, "min": min(known), "max": max(known)}


def criteria_facts(agreement: pd.DataFrame) -> dict:
    """Per setting (``adam+l2``): how many filters each criterion finds dead, how many both find
    and the Jaccard index of the two dead sets, the runs pooled (network-wide and per layer; None
    where neither finds one) and per run with its spread (``jaccard_runs``): the numbers a reader
    quotes for "do the two criteria agree", run by run."""
    def jaccard(rows) -> float | None:
        either = int(rows["dead_by_either"].sum())
        return round(int(rows["dead_by_both"].sum()) / either, 4) if either else None

    facts = {}
    if agreement.empty:
        return facts
    for (optimizer, decay_mode), group in agreement.groupby(["optimizer", "decay_mode"], sort=False):
        facts[f"{optimizer}+{decay_mode}"] = {
            "runs": int(group["run_id"].nunique()), "filters": int(group["filters"].sum()),
            **{column: int(group[column].sum()) for column in ("dead_by_activation", "dead_by_gamma", "dead_by_both")},
            "jaccard": jaccard(group),
            "jaccard_runs": spread([jaccard(rows) for _, rows in group.groupby("run_id", sort=True)]),
            "jaccard_per_layer": {layer: jaccard(rows) for layer, rows in group.groupby("layer", sort=False)}}
    return facts


# --- 4, 5. regularization strength, learning rate, batch size ----------------------------------


def increases_with(tables: RunTables, setting: str, claim: str, direction: int = 1, claim_id: str | None = None,
                   **where) -> Verdict:
    """A trend verdict on the fraction of dead filters against one setting (runs matching ``where``),
    'not reached' when a level had not had its chance (``level_unreached``)."""
    runs = completed(tables.runs)
    for column, value in where.items():
        runs = runs[runs[column] == value]
    return not_reached(trend(claim, runs, setting, DEAD, direction, claim_id=claim_id), level_unreached(runs, setting))


def level_unreached(runs: pd.DataFrame, setting: str) -> dict[str, str]:
    """The levels of ``setting`` (labelled as trend verdicts label them, 'batch_size=128') that had
    not reached their onset (``unreached_arms`` with the regime's reach)."""
    if runs.empty:
        return {}
    runs = completed(runs)
    return unreached_arms(runs.assign(level=[f"{setting}={value:g}" for value in runs[setting]]), "level", {},
                          SCREEN_REACH)


def regularization_grid(exp, optimizer, decays, reference_optimizer, reference_decays, learning_rates):
    """Notebook 04's runs: (the lambda sweep: ``optimizer`` with L2 and WD at ``decays``, the
    reference optimizer at ``reference_decays``, both without regularization; the learning-rate sweep
    of ``optimizer`` with L2)."""
    decay_configs = (exp.grid(optimizer=[optimizer], decay_mode=["l2", "wd"], decay=decays)
                     + exp.grid(optimizer=[reference_optimizer], decay_mode=["l2", "wd"], decay=reference_decays)
                     + exp.grid(optimizer=[optimizer, reference_optimizer], decay_mode=["none"]))
    return decay_configs, exp.grid(optimizer=[optimizer], decay_mode=["l2"], lr=learning_rates)


def batch_size_grid(exp, optimizer, batch_sizes):
    """Notebook 05's runs: (``optimizer`` with L2 at each batch size for the preset's epochs, and for
    the epochs that give the preset's number of steps: ``grid.equal_step_epochs``)."""
    reference = exp.config(optimizer=optimizer)
    epoch_configs = exp.grid(optimizer=[optimizer], decay_mode=["l2"], batch_size=batch_sizes)
    step_configs = [c for b in batch_sizes for c in exp.grid(optimizer=[optimizer], decay_mode=["l2"], batch_size=[b],
                                                             epochs=[equal_step_epochs(reference, batch_size=b)])]
    return epoch_configs, step_configs


def task_grid(exp, optimizer, class_counts, train_sizes, datasets):
    """Notebook 06's runs: (``optimizer`` with L2 on the first k classes for each of ``class_counts``,
    on each training-set size at equal steps, on each of ``datasets``)."""
    reference = exp.config(optimizer=optimizer)
    class_configs = [c for k in class_counts for c in exp.grid(optimizer=[optimizer], decay_mode=["l2"],
                     classes=[None if k == reference.num_classes else tuple(range(k))])]
    size_configs = [c for n in train_sizes for c in exp.grid(optimizer=[optimizer], decay_mode=["l2"], train_size=[n],
                    epochs=[equal_step_epochs(reference, n)])]
    dataset_configs = exp.grid(optimizer=[optimizer], decay_mode=["l2"], dataset=datasets) if datasets else []
    return class_configs, size_configs, dataset_configs


def capacity_grid(exp, width_seeds, widths, architectures):
    """Notebook 07's runs: (Adam+L2 BasicNet at each of ``widths`` over ``width_seeds``; Adam+L2 and
    SGD+L2 for each of ``architectures`` at the preset's width over the notebook's seeds)."""
    width_configs = exp.grid(seeds=width_seeds, optimizer=["adam"], decay_mode=["l2"], model=["basicnet"], width=widths)
    return width_configs, exp.grid(optimizer=["adam", "sgd"], decay_mode=["l2"], model=architectures)


def pruning_grid(exp, models, datasets, optimizer, decay, slimming_gamma_l1) -> list:
    """Notebook 09's runs, per model and dataset: ``optimizer`` with L2 (the implicit arm), SGD with
    L2 (the explicit methods' base network) and SGD with L2 and an L1 penalty of
    ``slimming_gamma_l1`` on BatchNorm's gamma (Network Slimming's training); all at ``decay``
    (None: the preset's)."""
    strength = {} if decay is None else {"decay": [decay]}
    common = {"model": models, "dataset": datasets, "decay_mode": ["l2"], **strength}
    return (exp.grid(optimizer=[optimizer], **common) + exp.grid(optimizer=["sgd"], **common)
            + exp.grid(optimizer=["sgd"], gamma_l1=[slimming_gamma_l1], **common))


def resnet_grid(exp):
    """Notebook 11's runs: Adam with L2 and without regularization, SGD with L2."""
    return exp.grid(optimizer=["adam"], decay_mode=["l2", "none"]) + exp.grid(optimizer=["sgd"], decay_mode=["l2"])


ERROR_BUDGET = 0.02  # "at equal test error": at most 2 points of test error above no regularization


def with_lambda_zero(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs without regularization as lambda = 0 (their config keeps the preset's unused decay)."""
    runs = completed(runs).copy()
    runs.loc[runs["decay_mode"] == "none", "decay"] = 0.0
    return runs


def error_by_decay(runs: pd.DataFrame, optimizer: str, decay_mode: str) -> pd.Series:
    """Mean test error over seeds at each lambda of one optimizer x regularizer (0: no regularization)."""
    runs = with_lambda_zero(runs)
    runs = runs[(runs["optimizer"] == optimizer) & runs["decay_mode"].isin([decay_mode, "none"])]
    return runs.groupby("decay")["test_error"].mean().sort_index()


def budget_decay(runs: pd.DataFrame, optimizer: str, decay_mode: str, budget: float = ERROR_BUDGET) -> float | None:
    """The strongest lambda whose mean test error is at most ``budget`` above the optimizer's
    without regularization: the regularizer's most sparsity at (nearly) equal test error. Chosen
    by test error alone, never by the dead fraction it is then compared on."""
    errors = error_by_decay(runs, optimizer, decay_mode)
    if 0.0 not in errors.index or len(errors) < 2:
        return None
    eligible = errors[(errors.index > 0) & (errors <= errors.loc[0.0] + budget)]
    return float(eligible.index.max()) if len(eligible) else None


def regularization_strength(decay_tables: RunTables, optimizer: str = "adam") -> list[Verdict]:
    """Notebook 4's lambda sweeps (lambda = 0 included): trends, and L2 against WD at an equal
    test-error budget (each regularizer at its strongest lambda within 2 points of no
    regularization), and WD at its budget lambda against no regularization."""
    runs = with_lambda_zero(decay_tables.runs)
    mine = runs[runs["optimizer"] == optimizer]
    verdicts = [trend(f"{optimizer}+{m}: stronger regularization leaves more dead filters", mine[mine["decay_mode"].isin(
        [m, "none"])], "decay", DEAD, claim_id="stronger-regularization" if m == "l2" else "stronger-wd")
        for m in ("l2", "wd") if len(select(mine, decay_mode=m))]
    chosen = {m: budget_decay(runs, optimizer, m) for m in ("l2", "wd")}
    budget = f"test error at most {ERROR_BUDGET:.0%} above {optimizer} without regularization"
    claim = f"At equal test error ({budget}), {optimizer}+L2 leaves more dead filters than {optimizer}+WD"
    if None in chosen.values():
        verdicts.append(Verdict(claim, INCONCLUSIVE, f"needs lambda 0 and an L2 and a WD lambda within the budget; "
                                f"chosen: {chosen}", claim_id="equal-error-l2-vs-wd"))
    else:
        verdicts.append(greater(claim, select(mine, decay_mode="l2", decay=chosen["l2"]),
                                select(mine, decay_mode="wd", decay=chosen["wd"]),
                                f"{optimizer}+l2 at {chosen['l2']:g}", f"{optimizer}+wd at {chosen['wd']:g}",
                                claim_id="equal-error-l2-vs-wd"))
    claim = f"With {optimizer}, the paper's WD also leaves dead filters at equal test error ({budget})"
    if chosen["wd"] is None:
        verdicts.append(Verdict(claim, INCONCLUSIVE, "no WD lambda within the budget", claim_id="equal-error-wd-vs-none"))
    else:
        verdicts.append(greater(claim, select(mine, decay_mode="wd", decay=chosen["wd"]),
                                select(mine, decay_mode="none"), f"{optimizer}+wd at {chosen['wd']:g}",
                                f"{optimizer}+none", claim_id="equal-error-wd-vs-none"))
    return verdicts


def sparsity_error_curves(runs: pd.DataFrame, optimizer: str = "adam") -> pd.DataFrame:
    """Per regularizer and lambda (0 shared): mean and sd of test error and dead fraction over
    seeds, for the dead-against-error figure, with each regularizer's budget lambda marked."""
    runs = with_lambda_zero(runs)
    runs = runs[runs["optimizer"] == optimizer]
    rows = []
    for mode in ("l2", "wd"):
        chosen = budget_decay(runs, optimizer, mode)
        part = runs[runs["decay_mode"].isin([mode, "none"])]
        for decay, group in part.groupby("decay"):
            rows.append({"regularizer": mode, "decay": decay, "runs": len(group),
                         "test_error": group["test_error"].mean(), "test_error_sd": group["test_error"].std(),
                         "dead": group[DEAD].mean(), "dead_sd": group[DEAD].std(), "budget_lambda": decay == chosen})
    return pd.DataFrame(rows)


# --- 6. task difficulty -------------------------------------------------------------------------


def number_of_classes(runs: pd.DataFrame) -> pd.Series:
    return runs.apply(lambda r: len(r["classes"]) if isinstance(r["classes"], (list, tuple))
                      else DATASETS[r["dataset"]].num_classes, axis=1)


def task_difficulty(class_tables: RunTables, size_tables: RunTables, dataset_tables: RunTables | None = None) -> list[Verdict]:
    classes = completed(class_tables.runs).copy()
    classes["n_classes"] = number_of_classes(classes)
    verdicts = [trend("Fewer classes (an easier task) leave more dead filters", classes, "n_classes", DEAD, -1,
                      claim_id="fewer-classes"),
                trend("A smaller training set (easier to fit; same number of steps) leaves more dead filters",
                      completed(size_tables.runs), "train_size", DEAD, -1, claim_id="smaller-training-set")]
    if dataset_tables is not None and len(dataset_tables.runs) and {"cifar10", "cifar100"} <= set(dataset_tables.runs["dataset"]):
        runs = dataset_tables.runs
        verdicts.append(greater("CIFAR-10 leaves more dead filters than CIFAR-100",
                                select(runs, dataset="cifar10"), select(runs, dataset="cifar100"),
                                "cifar10", "cifar100", claim_id="cifar10-vs-cifar100"))
    return verdicts


# --- 7. capacity and architecture ---------------------------------------------------------------


PRIMARY_MODEL = "basicnet"  # the network of notebook 01, where Adam+L2 against SGD+L2 is tested


def capacity(width_tables: RunTables, arch_tables: RunTables) -> list[Verdict]:
    """Notebook 07: the width trend, and Adam+L2 against SGD+L2 in each architecture but BasicNet,
    whose comparison is notebook 01's primary claim (tested there once, on the same runs)."""
    width = trend("A narrower network (less capacity) has a larger fraction of dead filters",
                  completed(width_tables.runs), "width", DEAD, -1, claim_id="narrower")
    runs = arch_tables.runs
    per_model = [greater(f"{m}: adam+l2 > sgd+l2", select(runs, model=m, optimizer="adam", decay_mode="l2"),
                         select(runs, model=m, optimizer="sgd", decay_mode="l2"), "adam+l2", "sgd+l2")
                 for m in sorted(set(runs["model"])) if m != PRIMARY_MODEL]
    claim = f"Adam+L2 leaves more dead filters than SGD+L2 in every other architecture ({PRIMARY_MODEL}: notebook 01)"
    return [width, combine(claim, per_model, claim_id="every-architecture")]


# --- 8. mechanism -------------------------------------------------------------------------------

BASELINE = "ReLU + BN, all decayed"


def mechanism_variant(row) -> str:
    if row["activation"] == "leaky_relu":
        return "leaky ReLU"
    if row["norm"] == "none":
        return "no BatchNorm"
    if row["decay_params"] == "weights_only":
        return "BN params not decayed"
    return BASELINE


def mechanism(tables: RunTables, lead_epochs: int = 2, early_epoch: int = 1) -> list[Verdict]:
    """Notebook 8. Leaky ReLU is judged by the gamma criterion (a leaky unit that is never positive
    still passes 0.01x its input, so "never positive" is not dead); a variant that did not train
    makes its comparison invalid rather than a direction. The workshop's "selective features
    emerge, then get pruned" is tested on selectivity at ``early_epoch``, while filters are healthy
    (``early_selectivity``); the selectivity ``lead_epochs`` before each death is described."""
    runs = completed(tables.runs).copy()
    runs["variant"] = runs.apply(mechanism_variant, axis=1)
    variants = set(runs["variant"])
    baseline = select(runs, variant=BASELINE)
    verdicts = []
    if "leaky ReLU" in variants:
        leaky = greater("With leaky ReLU fewer filters die (gamma criterion: |gamma| < 1e-3)",
                        select(runs, "dead_by_gamma", variant=BASELINE),
                        select(runs, "dead_by_gamma", variant="leaky ReLU"), BASELINE, "leaky ReLU",
                        claim_id="leaky-relu")
        leaky.evidence += (f"; never positive on the training images (not dead: the unit still passes "
                           f"{runs.loc[runs['variant'] == 'leaky ReLU', 'negative_slope'].max():g}x): "
                           f"{describe(select(runs, variant='leaky ReLU'))}")
        verdicts.append(leaky)
    if "no BatchNorm" in variants:
        verdicts.append(without_batchnorm(runs, baseline))
    if "BN params not decayed" in variants:
        not_decayed = select(runs, variant="BN params not decayed")
        verdicts += [
            greater("Decaying BN's gamma and beta is needed for the full effect (more die than when only weights decay)",
                    baseline, not_decayed, BASELINE, "BN params not decayed", claim_id="bn-decay-needed"),
            near_zero("With BN's gamma and beta not decayed, no filters die (the paper's mechanism: the regularizer "
                      "pulls gamma and beta down)", not_decayed, "BN params not decayed",
                      claim_id="none-die-bn-not-decayed")]
    baseline_ids = runs.loc[runs["variant"] == BASELINE, "run_id"]
    verdicts.append(early_selectivity(tables, baseline_ids, early_epoch))
    verdicts.append(selective_before_death(tables, baseline_ids, lead_epochs))
    return verdicts


def mechanism_designs(seeds, baseline_seeds, variants) -> list[Design]:
    """Notebook 8's primary claims as its parameters design them: everything decayed
    (``baseline_seeds``) against BatchNorm's parameters not decayed (``seeds``), and the sign-flip
    test of early selectivity over the baseline's runs."""
    designs = [paired_runs("early-selectivity-predicts-death", len(baseline_seeds))]
    if "bn_params_not_decayed" in variants:
        designs.append(two_arm("bn-decay-needed", len(baseline_seeds), len(seeds)))
    return designs


MECHANISM_VARIANTS = {"leaky_relu": lambda slope: {"activation": ["leaky_relu"], "negative_slope": [slope]},
                      "no_batchnorm": lambda slope: {"norm": ["none"]},
                      "bn_params_not_decayed": lambda slope: {"decay_params": ["weights_only"]}}


def mechanism_grid(exp, optimizer: str, baseline_seeds, variants, leaky_slope: float) -> list:
    """Notebook 8's runs: the baseline (``optimizer`` + L2, ReLU, BatchNorm, everything decayed)
    over ``baseline_seeds`` and each named variant (``MECHANISM_VARIANTS``) over the notebook's seeds."""
    unknown = [v for v in variants if v not in MECHANISM_VARIANTS]
    if unknown:
        raise ValueError(f"unknown mechanism variants {unknown}; choose from {sorted(MECHANISM_VARIANTS)}")
    return (exp.grid(seeds=baseline_seeds, optimizer=[optimizer], decay_mode=["l2"])
            + [c for v in variants for c in exp.grid(optimizer=[optimizer], decay_mode=["l2"],
                                                      **MECHANISM_VARIANTS[v](leaky_slope))])


def without_batchnorm(runs: pd.DataFrame, baseline) -> Verdict:
    claim = "Without BatchNorm fewer filters die"
    no_bn = runs[runs["variant"] == "no BatchNorm"]
    compared = greater(claim, baseline, no_bn[DEAD].to_numpy(dtype=float), BASELINE, "no BatchNorm",
                       claim_id="no-batchnorm")
    if len(no_bn) == 0:
        return compared
    classes = int(number_of_classes(no_bn).iloc[0])
    untrained = did_not_train(no_bn["test_error"], classes)
    if untrained.any():  # a network that learned nothing has "dead" filters for reasons that say nothing here
        trained = no_bn[~untrained]
        return invalid(claim, f"invalid: {int(untrained.sum())} of {len(no_bn)} runs without BatchNorm did not train "
                              f"(test error within {UNTRAINED_MARGIN:.0%} of chance, {1 - 1 / classes:.0%}: "
                              f"{', '.join(f'{e:.1%}' for e in no_bn['test_error'])}); the dead fraction of an untrained "
                              f"network says nothing about BatchNorm"
                              + (f". The runs that trained: dead {', '.join(f'{d:.1%}' for d in trained[DEAD])} at "
                                 f"test error {', '.join(f'{e:.1%}' for e in trained['test_error'])}" if len(trained) else ""),
                       [compared], claim_id="no-batchnorm")
    return compared


def death_epochs(history_filters: pd.DataFrame) -> pd.DataFrame:
    """Per filter that ends dead: the first snapshot epoch from which it stays dead on the snapshot
    images (NaN selectivity at that epoch and every later one)."""
    frame = history_filters.sort_values("epoch")
    alive = frame["selectivity"].notna()
    last_alive = frame[alive].groupby(["run_id", "layer", "filter"])["epoch"].max()
    dying = frame[frame[DEAD]].groupby(["run_id", "layer", "filter"])["epoch"].min().rename("first_epoch")
    deaths = dying.to_frame().join(last_alive.rename("last_alive"))
    deaths["death_epoch"] = deaths["last_alive"].fillna(deaths["first_epoch"] - 1) + 1
    deaths = deaths[deaths["death_epoch"] <= frame["epoch"].max()]  # dead on no snapshot: no epoch of death to align on
    return deaths.reset_index()[["run_id", "layer", "filter", "death_epoch"]]


def bn_around_death(history_filters: pd.DataFrame) -> pd.DataFrame:
    """Every snapshot of every filter that dies, aligned on its epoch of death (``death_epochs``):
    run_id, layer, filter, death_epoch, epoch, epochs_from_death (negative before it), |gamma| and
    beta (NaN for runs stored before beta was recorded)."""
    if history_filters.empty:
        return pd.DataFrame()
    frame = history_filters.merge(death_epochs(history_filters), on=["run_id", "layer", "filter"])
    frame["epochs_from_death"] = frame["epoch"] - frame["death_epoch"]
    return frame[["run_id", "layer", "filter", "death_epoch", "epoch", "epochs_from_death", "gamma", "beta"]]


def gamma_lag(aligned: pd.DataFrame, runs: pd.DataFrame) -> dict:
    """Per setting (``optimizer+decay_mode``), from ``bn_around_death``: how many filters died, the
    median |gamma| at their epoch of death, and the median number of epochs from death until |gamma|
    first fell below the gamma criterion's 1e-3 (over the filters that got there within training;
    negative: before they stopped firing), the filters pooled and, with their spread, per run
    (``*_runs``: each run's median)."""
    if aligned.empty:
        return {}
    settings = runs.set_index("run_id")[["optimizer", "decay_mode"]]
    frame = aligned.join(settings, on="run_id")
    result = {}
    for (optimizer, decay_mode), group in frame.groupby(["optimizer", "decay_mode"], sort=True):
        filters = group.groupby(["run_id", "layer", "filter"])
        at_death = group.loc[group["epochs_from_death"] == 0, "gamma"]
        below = group[group["gamma"] < GAMMA_THRESHOLD].groupby(["run_id", "layer", "filter"])["epochs_from_death"].min()
        result[f"{optimizer}+{decay_mode}"] = {
            "dying_filters": int(filters.ngroups),
            "median_gamma_at_death": float(at_death.median()) if len(at_death) else None,
            "below_threshold_within_training": int(len(below)),
            "median_epochs_from_death_to_threshold": float(below.median()) if len(below) else None,
            "median_gamma_at_death_runs": spread(
                [float(g.loc[g["epochs_from_death"] == 0, "gamma"].median()) for _, g in group.groupby("run_id", sort=True)]),
            "median_epochs_from_death_to_threshold_runs": spread(
                [float(below.loc[run_id].median()) if run_id in below.index.get_level_values(0) else None
                 for run_id in sorted(group["run_id"].unique())])}
    return result


def selectivity_before_death(history_filters: pd.DataFrame) -> pd.DataFrame:
    """Each dying filter's selectivity at every live epoch before its death, beside the mean
    selectivity of the filters of the same layer that survive training, at the same epoch.
    Columns: run_id, layer, filter, death_epoch, epoch, epochs_before_death, selectivity,
    survivors_selectivity, difference."""
    if history_filters.empty:
        return pd.DataFrame()
    deaths = death_epochs(history_filters)
    survivors = (history_filters[~history_filters[DEAD]].groupby(["run_id", "layer", "epoch"])["selectivity"].mean()
                 .rename("survivors_selectivity"))
    frame = history_filters.merge(deaths, on=["run_id", "layer", "filter"])
    frame = frame[frame["epoch"] < frame["death_epoch"]].join(survivors, on=["run_id", "layer", "epoch"])
    frame = frame.dropna(subset=["selectivity", "survivors_selectivity"])
    frame["epochs_before_death"] = frame["death_epoch"] - frame["epoch"]
    frame["difference"] = frame["selectivity"] - frame["survivors_selectivity"]
    return frame[["run_id", "layer", "filter", "death_epoch", "epoch", "epochs_before_death", "selectivity",
                  "survivors_selectivity", "difference"]]


def lead_curve(aligned: pd.DataFrame) -> pd.DataFrame:
    """Per run and lead (epochs before death), from ``selectivity_before_death``: the mean of dying
    minus same-layer survivors' selectivity over the run's dying filters, and how many there were.
    Columns: run_id, epochs_before_death, difference, filters."""
    if aligned.empty:
        return pd.DataFrame(columns=["run_id", "epochs_before_death", "difference", "filters"])
    return (aligned.groupby(["run_id", "epochs_before_death"])["difference"].agg(["mean", "size"])
            .rename(columns={"mean": "difference", "size": "filters"}).reset_index())


def selectivity_auc(history_filters: pd.DataFrame, final_filters: pd.DataFrame) -> pd.DataFrame:
    """Per run and snapshot epoch: how well selectivity at that epoch separates the filters that
    end dead (``final_filters``' activation criterion) from the survivors of the same layer: the
    AUC over all (dying, surviving) pairs within layers (1: every dying filter more selective, 0.5:
    no separation; ties count half), over the filters still firing at that epoch. Columns: run_id,
    epoch, auc, pairs, dying (filters), dying_median_gamma (their median |gamma| at that epoch)."""
    ends = final_filters[["run_id", "layer", "filter", DEAD]].rename(columns={DEAD: "ends_dead"})
    frame = history_filters.merge(ends, on=["run_id", "layer", "filter"])
    frame = frame[frame["selectivity"].notna()]
    rows = []
    for (run_id, epoch), snapshot in frame.groupby(["run_id", "epoch"], sort=True):
        wins = pairs = 0.0
        for _, layer in snapshot.groupby("layer", sort=False):
            dying = layer.loc[layer["ends_dead"].astype(bool), "selectivity"].to_numpy(dtype=float)
            surviving = layer.loc[~layer["ends_dead"].astype(bool), "selectivity"].to_numpy(dtype=float)
            if len(dying) and len(surviving):
                difference = dying[:, None] - surviving[None, :]
                wins += (difference > 0).sum() + 0.5 * (difference == 0).sum()
                pairs += difference.size
        dying_gamma = snapshot.loc[snapshot["ends_dead"].astype(bool), "gamma"].abs()
        rows.append({"run_id": run_id, "epoch": int(epoch), "auc": wins / pairs if pairs else float("nan"),
                     "pairs": int(pairs), "dying": int(snapshot["ends_dead"].astype(bool).sum()),
                     "dying_median_gamma": float(dying_gamma.median()) if len(dying_gamma) else float("nan")})
    return pd.DataFrame(rows, columns=["run_id", "epoch", "auc", "pairs", "dying", "dying_median_gamma"])


MIN_AUC_EFFECT = 0.05  # an AUC within 0.05 of chance (0.45 to 0.55) predicts nothing worth the name


def early_selectivity(tables: RunTables, run_ids, early_epoch: int = 1) -> Verdict:
    """Workshop paper: selective features emerge, then get pruned. Does selectivity measured while
    filters are healthy, at ``early_epoch`` (after one epoch by default, long before the first
    death), predict which filters of a layer end dead? Per run the within-layer AUC
    (``selectivity_auc``) minus 0.5; a sign-flip test over runs (the run is the unit), minimum
    effect ``MIN_AUC_EFFECT``."""
    claim_id = "early-selectivity-predicts-death"
    claim = (f"Selectivity at epoch {early_epoch}, while filters are healthy, predicts their later death within their "
             f"layer (selective features emerge, then get pruned)")
    per_filter = tables.history_filters()
    if per_filter.empty:
        return Verdict(claim, INCONCLUSIVE, "no per-epoch filter history", claim_id=claim_id)
    aucs = selectivity_auc(per_filter[per_filter["run_id"].isin(run_ids) & (per_filter["epoch"] == early_epoch)],
                           tables.filters[tables.filters["run_id"].isin(run_ids)])
    aucs = aucs[aucs["pairs"] > 0]
    if aucs.empty:
        return Verdict(claim, INCONCLUSIVE, f"no run has both dying and surviving filters firing at epoch "
                       f"{early_epoch}", claim_id=claim_id)
    verdict = paired_greater(claim, (aucs["auc"] - 0.5).to_numpy(), "AUC - 0.5", fmt="{:+.3f}",
                             min_effect=MIN_AUC_EFFECT, claim_id=claim_id)
    verdict.evidence += (f"; per-run AUC {', '.join(f'{a:.2f}' for a in aucs['auc'])}; the dying filters' median "
                         f"|gamma| at epoch {early_epoch}: {', '.join(f'{g:.2f}' for g in aucs['dying_median_gamma'])} "
                         f"(healthy: BatchNorm's scale starts at 1)")
    return verdict


def selective_before_death(tables: RunTables, run_ids, lead_epochs: int = 2) -> Verdict:
    """Aligned on each filter's epoch of death d, its selectivity at d - ``lead_epochs`` minus the
    mean selectivity of its layer's survivors at that same epoch (so layer and training time are
    matched); per run the mean over its dying filters; a sign-flip test over runs. Secondary: a
    filter about to die fires on few images because it is dying (``lead_curve`` shows the whole
    curve), so this describes filters becoming selective as they die."""
    claim = f"Filters are more selective than their layer's survivors {lead_epochs} epoch(s) before they die"
    claim_id = "selective-as-they-die"
    per_filter = tables.history_filters()
    if per_filter.empty:
        return Verdict(claim, INCONCLUSIVE, "no per-epoch filter history", claim_id=claim_id)
    aligned = selectivity_before_death(per_filter[per_filter["run_id"].isin(run_ids)])
    at_lead = aligned[aligned["epochs_before_death"] == lead_epochs] if len(aligned) else aligned
    if at_lead.empty:
        return Verdict(claim, INCONCLUSIVE, f"no filter died {lead_epochs} or more epochs after the first snapshot",
                       claim_id=claim_id)
    per_run = at_lead.groupby("run_id")["difference"].mean()
    verdict = paired_greater(claim, per_run.to_numpy(), "dying - same-layer survivors", fmt="{:+.3f}",
                             min_effect=MIN_SELECTIVITY_EFFECT, claim_id=claim_id)
    verdict.evidence += (f"; {len(at_lead)} dying filters over {len(per_run)} runs "
                         f"({', '.join(f'{n}' for n in at_lead.groupby('run_id').size())} per run)")
    return verdict


# --- 9. pruning ---------------------------------------------------------------------------------

PAR_TOLERANCE = 0.01  # "at par": within one percentage point of test error
# Below this cut of MACs (median over seeds of implicit pruning's reduction) "at par" is vacuous:
# any method is at par when it removes 5% of the network, so the claim is not testable there.
MIN_MAC_REDUCTION = 1.25
EXPLICIT = (L1_NORM, SLIMMING)


EXACT_CAVEAT = ("a filter dead on every training image may still fire on a test image; a difference above float64 "
                "rounding means one did")


def exactness(claim: str, cases: list[str], differences, claim_id: str) -> Verdict:
    """A per-run check, not a test: every largest test-logit difference below ``EXACT_LOGIT_TOLERANCE``."""
    differences = np.asarray(differences, dtype=float)
    if len(differences) == 0:
        return Verdict(claim, INCONCLUSIVE, "no pruned runs", claim_id=claim_id)
    exact = int((differences < EXACT_LOGIT_TOLERANCE).sum())
    status = HOLDS if exact == len(differences) else DOES_NOT_HOLD
    return Verdict(claim, status, f"{exact} of {len(differences)} runs exact; " + "; ".join(cases) + f" ({EXACT_CAVEAT})",
                   f"check per run: largest |logit difference| < {EXACT_LOGIT_TOLERANCE:g} (float64)", n={"runs": len(cases)},
                   effect=float(differences.max()), effect_label="largest logit difference over runs", fmt="{:.2g}",
                   claim_id=claim_id)


def pruning(comparison: pd.DataFrame) -> list[Verdict]:
    """``comparison``: the rows of ``compare.compare_runs``. Exactness is a check per run; "at
    par" is a non-inferiority test per architecture over seeds (implicit's test error after
    fine-tuning against the best explicit method's plus ``PAR_TOLERANCE``), every architecture
    must pass (intersection-union). An architecture whose implicit pruning removes less than
    ``MIN_MAC_REDUCTION`` of its MACs (median over seeds) makes the claim not testable (status
    ``UNTESTABLE``): at so small a cut every method is at par."""
    exact_claim = ("Removing the dead filters (dead on every training image) changes no output on the test set "
                   f"(largest logit difference < {EXACT_LOGIT_TOLERANCE:g}, float64)")
    implicit = comparison[comparison["method"] == IMPLICIT] if len(comparison) else comparison
    cases = []
    if len(implicit):
        unpruned = comparison[comparison["method"] == UNPRUNED_ADAPTIVE].set_index(["model", "dataset", "seed"])
        cases = [f"{r.model}/{r.dataset}/seed {r.seed}: {r.max_logit_difference:.2g}"
                 + ("" if r.test_error_pruned == unpruned.loc[(r.model, r.dataset, r.seed), "test_error_pruned"]
                    else " (test error changed)") for r in implicit.itertuples()]
    exact = exactness(exact_claim, cases, implicit["max_logit_difference"] if len(implicit) else [], "exact-removal")
    parts, shallow = [], []
    for (model, dataset), group in comparison.groupby(["model", "dataset"]) if len(comparison) else []:
        errors = group.pivot_table(index="seed", columns="method", values="test_error_finetuned")
        reductions = group[group["method"] == IMPLICIT]["mac_reduction"]
        if (reductions <= 1.0).all():
            parts.append(Verdict(f"{model} on {dataset}", INCONCLUSIVE, "no filter died, so there is nothing to compare"))
            continue
        if reductions.median() < MIN_MAC_REDUCTION:
            shallow.append(f"{model} on {dataset}: implicit pruning cut the MACs by a median {reductions.median():.2f}x "
                           f"({1 - 1 / reductions.median():.1%} removed), below the {MIN_MAC_REDUCTION:g}x at which "
                           f"being at par says something")
            continue
        best_explicit = errors[list(EXPLICIT)].min(axis=1)
        parts.append(greater(f"{model} on {dataset}: implicit within {PAR_TOLERANCE:.0%} of the best explicit or better",
                             best_explicit + PAR_TOLERANCE, errors[IMPLICIT], "best explicit + tolerance", "implicit",
                             min_effect=0.0))
    claim = ("Implicit pruning is at par with or better than explicit pruning at matched MACs (test error after the "
             f"same fine-tuning; par = within {PAR_TOLERANCE:.0%})")
    if shallow:
        par = Verdict(claim, UNTESTABLE, "not testable: " + "; ".join(shallow), "not tested",
                      parts=[part.to_dict() for part in parts], claim_id="at-par")
    elif parts:
        par = combine(claim, parts, claim_id="at-par")
    else:
        par = Verdict(claim, INCONCLUSIVE, "no complete comparison", claim_id="at-par")
    return [exact, par]


# --- 10. training length and learning rate ------------------------------------------------------


def training_progress(tables: RunTables) -> pd.DataFrame:
    """Per run and epoch: update steps so far, cumulative learning rate (the sum of lr over those
    steps; lr x steps at a constant rate), and the fraction of filters dead on the snapshot images."""
    runs = completed(tables.runs).set_index("run_id")
    history = tables.history[tables.history["run_id"].isin(runs.index)].copy()
    if history.empty:
        return history
    run = runs.loc[history["run_id"]]
    steps_per_epoch = (run["steps"] / run["epochs"]).to_numpy()
    history["steps"] = (history["epoch"].to_numpy() * steps_per_epoch).astype(int)
    history["lr_x_steps"] = [
        cumulative_lr(r.lr, r.schedule, int(r.steps), int(steps), r.step_milestones, r.step_gamma)
        for r, steps in zip(run.itertuples(), history["steps"])]
    history["dead_fraction"] = history["dead_total"].to_numpy() / run["filters"].to_numpy()
    per_filter = tables.history_filters()
    if not per_filter.empty and per_filter["gamma"].notna().any():
        by_gamma = (per_filter["gamma"] < GAMMA_THRESHOLD).groupby([per_filter["run_id"], per_filter["epoch"]]).mean()
        by_gamma = by_gamma.where(per_filter["gamma"].notna().groupby([per_filter["run_id"], per_filter["epoch"]]).all())
        history["dead_gamma_fraction"] = by_gamma.reindex(pd.MultiIndex.from_frame(history[["run_id", "epoch"]])).to_numpy()
    else:  # runs stored before per-filter |gamma| was recorded
        history["dead_gamma_fraction"] = np.nan
    for column in ("optimizer", "decay_mode", "lr", "seed", "decay", "decay_params", "width", "precision"):
        if column in run:
            history[column] = run[column].to_numpy()
    return history


def onset(progress: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer, regularizer and learning rate (seeds pooled): the lr x steps reached by the end
    of training, and the lr x steps and step at the first epoch with a dead filter (NaN if none
    died). A learning rate whose final lr x steps stays below another's onset has not yet been
    trained "as long" in the sense of lr x steps."""
    rows = []
    for (optimizer, decay_mode, lr), runs in progress.groupby(["optimizer", "decay_mode", "lr"]):
        dying = runs[runs["dead_fraction"] > 0]
        first = dying.loc[dying["lr_x_steps"].idxmin()] if len(dying) else None
        rows.append({"optimizer": optimizer, "decay_mode": decay_mode, "lr": lr,
                     "final_lr_x_steps": runs["lr_x_steps"].max(), "final_dead_pct": 100 * runs.loc[
                         runs["lr_x_steps"].idxmax(), "dead_fraction"],
                     "onset_lr_x_steps": first["lr_x_steps"] if first is not None else float("nan"),
                     "onset_step": first["steps"] if first is not None else float("nan")})
    return pd.DataFrame(rows)


def lr_x_steps_design(reference_lr: float, reference_epochs: int, learning_rates) -> list[tuple[float, int]]:
    """(lr, epochs) pairs that reach the reference run's lr x steps at every learning rate, at a
    constant rate and the same batch size: epochs = reference epochs x reference lr / lr, which
    must be a whole number (choose the rates as the reference divided by whole numbers)."""
    design = []
    for lr in learning_rates:
        epochs = reference_epochs * reference_lr / lr
        if abs(epochs - round(epochs)) > 1e-9 or round(epochs) < 1:
            raise ValueError(f"lr {lr:g} needs {epochs:g} epochs to reach lr x steps of {reference_lr:g} x "
                             f"{reference_epochs} epochs; use learning rates that divide {reference_lr:g} by a whole number")
        design.append((lr, int(round(epochs))))
    return design


def training_length(tables: RunTables) -> list[Verdict]:
    """Notebook 10: Adam+L2 at several learning rates, each trained to the same lr x steps. If lr
    x steps governs, they end at the same dead fraction (equivalence within ``PRESENT_LEVEL``); if
    the learning rate itself governs, the larger rate kills more."""
    runs = completed(tables.runs)
    adam = runs[(runs["optimizer"] == "adam") & (runs["decay_mode"] == "l2")]
    totals = (adam["lr"] * adam["steps"]).round(6).unique() if len(adam) else []
    claim = ("At equal lr x steps, the learning rate does not change the dead fraction (Adam+L2; lr x steps, not the "
             "learning rate or the number of steps alone, governs)")
    if len(totals) > 1:
        return [Verdict(claim, INCONCLUSIVE, f"the runs do not share one lr x steps ({', '.join(f'{t:g}' for t in sorted(totals))}): "
                        f"train every learning rate to the same total (see lr_x_steps_design)", claim_id="lr-x-steps")]
    verdict = equivalent(claim, adam, "lr", DEAD, claim_id="lr-x-steps")
    verdict.evidence += f" (lr x steps of every run: {', '.join(f'{t:g}' for t in totals)})"
    return [verdict]


def first_dead_epoch(progress: pd.DataFrame, column: str) -> float:
    """The first epoch at which ``column`` (a dead fraction) is above 0; NaN if never."""
    dying = progress.loc[progress[column] > 0, "epoch"]
    return float(dying.min()) if len(dying) else float("nan")


def pilot_facts(run: pd.DataFrame, chosen_epochs: int | None = None) -> dict:
    """The numbers of one pilot run (its rows of ``training_progress``): setting, length, the first
    epoch with a dead filter by each criterion (None if none died), and the dead fractions and test
    error at ``chosen_epochs`` (when the run reached it) and at the end."""
    run = run.sort_values("epoch")
    first = {name: first_dead_epoch(run, column)
             for name, column in (("activation", "dead_fraction"), ("gamma", "dead_gamma_fraction"))}

    def at(row) -> dict:
        return {"epoch": int(row["epoch"]), "dead_by_activation": float(row["dead_fraction"]),
                "dead_by_gamma": float(row["dead_gamma_fraction"]), "test_error": float(row["test_error"])}

    by_epoch = run.set_index("epoch")
    return {"run_id": run["run_id"].iloc[0], "optimizer": run["optimizer"].iloc[0],
            "decay_mode": run["decay_mode"].iloc[0], "lr": float(run["lr"].iloc[0]), "seed": int(run["seed"].iloc[0]),
            "epochs": int(run["epoch"].max()), "steps": int(run["steps"].max()),
            "first_dead_epoch": {name: (None if math.isnan(epoch) else int(epoch)) for name, epoch in first.items()},
            "at_chosen": at({**by_epoch.loc[chosen_epochs], "epoch": chosen_epochs}) if chosen_epochs in by_epoch.index
            else None,
            "at_end": at(run.iloc[-1])}


def pilot_description(progress: pd.DataFrame, chosen_epochs: int | None = None) -> str:
    """One line per pilot run: when the first filter died by each criterion, and how many were dead
    at the chosen length and at the end (of all filters)."""
    lines = []
    for _, run in progress.groupby("run_id", sort=False):
        facts = pilot_facts(run, chosen_epochs)
        head = (f"{facts['optimizer']}+{facts['decay_mode']} at lr {facts['lr']:g}, seed {facts['seed']}, "
                f"{facts['epochs']} epochs ({facts['steps']:,} steps) at a constant rate")
        onsets = [f"{label}: first dead filter at epoch {facts['first_dead_epoch'][name]}"
                  if facts["first_dead_epoch"][name] is not None else f"{label}: none dead"
                  for label, name in (("by activation", "activation"), ("by |gamma| < 1e-3", "gamma"))]
        ends = ([(f"epoch {chosen_epochs}", facts["at_chosen"])] if facts["at_chosen"] else []) + [
            (f"epoch {facts['epochs']} (end)", facts["at_end"])]
        dead = "; ".join(f"at {label}: {row['dead_by_activation']:.1%} dead by activation, {row['dead_by_gamma']:.1%} "
                         f"by |gamma|, test error {row['test_error']:.1%} (1,000 test images)" for label, row in ends)
        lines.append(f"- {head}. {'; '.join(onsets)}. {dead}.")
    return "\n".join(lines)


def screen_arm(row, base_width: float) -> str:
    """A screen run's arm: 'adam+l2 5e-4, float32', with what differs from the preset's network
    ('BN not decayed', 'width 0.5') and its precision."""
    decay = f"{row['decay']:.0e}".replace("e-0", "e-")
    extras = [("BN not decayed" if row.get("decay_params") == "weights_only" else None),
              (f"width {row['width']:g}" if row["width"] != base_width else None),
              str(row.get("precision", "float32"))]
    return f"{row['optimizer']}+{row['decay_mode']} {decay}" + "".join(f", {extra}" for extra in extras if extra)


# The screen's arms at Adam's usual rate, held constant: each changes one thing from Adam+L2 5e-4
# (``width_factor`` multiplies the preset's width).
SCREEN_ARMS = (
    {"width_factor": 2, "decay": 5e-4}, {"width_factor": 2, "decay": 2e-3},
    {"decay": 5e-4}, {"decay": 2e-3}, {"decay_mode": "wd", "decay": 5e-4},
    {"decay": 5e-4, "decay_params": "weights_only"},
)


def lr_design_grid(exp, optimizer: str, design) -> list:
    """Notebook 10's runs at equal lr x steps: ``optimizer`` with L2 at each (lr, epochs) of
    ``design`` (``lr_x_steps_design``)."""
    return [c for lr, n in design for c in exp.grid(optimizer=[optimizer], decay_mode=["l2"], lr=[lr], epochs=[n])]


def screen_grid(exp, seed: int, lr: float, epochs: int, precision: str) -> list:
    """The screen: one run per arm (``SCREEN_ARMS``), Adam at ``lr`` held constant for ``epochs``;
    the widest arms first, so that two workers finish together."""
    width = exp.config().width
    configs = []
    for arm in SCREEN_ARMS:
        settings = {"optimizer": "adam", "decay_mode": "l2", "lr": lr, "epochs": epochs, "schedule": "constant",
                    "precision": precision, **{k: v for k, v in arm.items() if k != "width_factor"},
                    "width": width * arm.get("width_factor", 1)}
        configs += exp.grid(seeds=[seed], **{k: [v] for k, v in settings.items()})
    return configs


def run_onsets(progress: pd.DataFrame) -> pd.DataFrame:
    """Per run (``training_progress`` rows with an ``arm`` column): its arm, the lr x steps and the epoch of
    the first snapshot with a dead filter by each criterion (NaN when none died), and the lr x steps,
    dead fractions and test error at its last epoch."""
    rows = []
    for run_id, run in progress.sort_values("epoch").groupby("run_id", sort=False):
        last = run.iloc[-1]
        row = {"run_id": run_id, "arm": last["arm"], "seed": int(last["seed"]), "epochs": int(last["epoch"]),
               "final_lr_x_steps": float(last["lr_x_steps"]), "final_dead": float(last["dead_fraction"]),
               "final_dead_gamma": float(last["dead_gamma_fraction"]), "final_test_error": float(last["test_error"])}
        for name, column in (("activation", "dead_fraction"), ("gamma", "dead_gamma_fraction")):
            dying = run[run[column] > 0]
            row[f"onset_lr_x_steps_{name}"] = float(dying["lr_x_steps"].iloc[0]) if len(dying) else float("nan")
            row[f"onset_epoch_{name}"] = float(dying["epoch"].iloc[0]) if len(dying) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def arm_onsets(progress: pd.DataFrame, runs: pd.DataFrame) -> dict:
    """Per arm (``progress`` from ``training_progress`` with an ``arm`` column; ``runs`` the run
    table, for each run's schedule): how many runs, the lr x steps of its high-rate phase (before the
    rate first halves), and by each criterion how many runs lost a filter and the onset over those
    runs (lr x steps and epoch of the first dead filter: median, smallest, largest; None where none
    died). The spread over seeds of when an arm starts to die, for the README and the closing table."""
    runs = completed(runs).set_index("run_id")
    onsets = run_onsets(progress)
    facts = {}
    for arm, group in onsets.groupby("arm", sort=False):
        schedule = runs.loc[group["run_id"]]
        reach = [run_high_rate_lr_x_steps(r) for r in schedule.itertuples()]
        arm_facts = {"runs": len(group), "high_rate_lr_x_steps": float(min(reach))}
        for name in ("activation", "gamma"):
            died = group.dropna(subset=[f"onset_lr_x_steps_{name}"])
            arm_facts[name] = {"runs_with_deaths": len(died)}
            for unit in ("lr_x_steps", "epoch"):
                values = died[f"onset_{unit}_{name}"]
                arm_facts[name][unit] = ({"median": float(values.median()), "min": float(values.min()),
                                          "max": float(values.max())} if len(values) else None)
        facts[arm] = arm_facts
    return facts


def optimizer_progress(tables: RunTables) -> pd.DataFrame:
    """``training_progress`` of notebook 01's runs, each labelled by its arm (``adam+l2``), the
    headline arms first, then by optimizer."""
    progress = training_progress(tables)
    if progress.empty:
        return progress
    progress["arm"] = progress["optimizer"] + "+" + progress["decay_mode"]
    headline = [f"{o}+{m}" for o, m in HEADLINE]
    order = progress["arm"].map(lambda arm: (headline.index(arm) if arm in headline else len(headline),
                                             OPTIMIZERS.index(arm.split("+")[0]) if arm.split("+")[0] in OPTIMIZERS
                                             else len(OPTIMIZERS)))
    return progress.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)


def mechanism_progress(tables: RunTables) -> pd.DataFrame:
    """``training_progress`` of notebook 08's runs, each labelled by its variant."""
    progress = training_progress(tables)
    if not progress.empty:
        variants = completed(tables.runs).set_index("run_id").apply(mechanism_variant, axis=1)
        progress["arm"] = variants.loc[progress["run_id"]].to_numpy()
    return progress


def saturation_grid(exp, optimizers, seeds, epochs: int, batch_size: int, reach: float) -> list:
    """The clock up to the paper's: each optimizer with L2 at its preset rate, ``epochs`` at
    ``batch_size`` (the same steps for all), the rate held until the first optimizer's lr x steps
    reaches ``reach``, then divided by 10 twice (the first milestone, rounded up to a hundredth, and
    halfway from it to the end). Raises ValueError when ``epochs`` cannot give ``reach``."""
    first = exp.config(optimizer=optimizers[0], batch_size=batch_size, epochs=epochs)
    steps = steps_of(first)
    milestone = math.ceil(100 * reach / (first.lr * steps)) / 100
    if milestone >= 0.99:
        raise ValueError(f"{epochs} epochs at batch {batch_size} give {optimizers[0]} at lr {first.lr:g} lr x steps "
                         f"{first.lr * steps:.3g} in all: at least {reach:g} must come before the rate drops; "
                         f"train longer")
    schedule = {"schedule": ["step"], "step_milestones": [(milestone, round((1 + milestone) / 2, 4))],
                "step_gamma": [0.1]}
    return [c for optimizer in optimizers
            for c in exp.grid(seeds=seeds, optimizer=[optimizer], decay_mode=["l2"], batch_size=[batch_size],
                              epochs=[epochs], **schedule)]


def saturation_facts(progress: pd.DataFrame, tables: RunTables, fractions=(0.25, 0.5, 0.75, 1.0)) -> dict:
    """Per arm of the saturation runs: the dead fraction by both criteria (mean, smallest, largest
    over runs) at each of ``fractions`` of the high-rate phase (the last snapshot at or before that
    lr x steps) and at the end; the gain over the high-rate phase's last quarter (mean and 95%
    interval over runs: near zero when the dead fraction has saturated); and each layer's dead
    fraction at the end (``layer_facts``)."""
    runs = completed(tables.runs).set_index("run_id")
    layers = layer_facts(tables)
    facts = {}
    for arm, group in progress.groupby("arm", sort=False):
        per_run = {}
        for run_id, run in group.sort_values("lr_x_steps").groupby("run_id", sort=False):
            high = run_high_rate_lr_x_steps(runs.loc[run_id])
            points = {}
            for fraction in fractions:
                before = run[run["lr_x_steps"] <= fraction * high + 1e-9]
                points[f"{fraction:g}"] = before.iloc[-1] if len(before) else run.iloc[0]
            points["end"] = run.iloc[-1]
            per_run[run_id] = {"high": high, "points": points}
        arm_facts = {"runs": len(per_run), "high_rate_lr_x_steps": float(min(v["high"] for v in per_run.values()))}
        for point in [*(f"{f:g}" for f in fractions), "end"]:
            rows = [v["points"][point] for v in per_run.values()]
            arm_facts[f"at {point}"] = {
                "lr_x_steps": float(np.median([row["lr_x_steps"] for row in rows])),
                **{name: {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values))}
                   for name, values in (("dead_by_activation", [row["dead_fraction"] for row in rows]),
                                        ("dead_by_gamma", [row["dead_gamma_fraction"] for row in rows]))}}
        if 0.75 in fractions and 1.0 in fractions:
            gains = [v["points"]["1"]["dead_fraction"] - v["points"]["0.75"]["dead_fraction"] for v in per_run.values()]
            arm_facts["last_quarter_gain"] = {"mean": float(np.mean(gains)), "ci": t_interval(gains)}
        arm_facts["layers_at_end"] = layers.get(arm, {})
        facts[arm] = arm_facts
    return facts


# The lr x steps every arm of a regime must give at its initial rate before the rate drops: the
# latest onset notebook 10's screen measured (Adam+WD 5e-4: 6.9 by activation, 10.7 by |gamma|),
# rounded up, and notebook 10's ``screen_reach``. An arm without deaths is held to it (not to its own
# screened onset, which is earlier for most arms and unknown for arms not screened).
SCREEN_REACH = 11.0


def optimizer_unreached(runs: pd.DataFrame) -> dict[str, str]:
    """Notebook 01's arms (``adam+l2``) that had not reached their onset (``unreached_arms``)."""
    runs = completed(runs)
    return unreached_arms(runs.assign(arm=runs["optimizer"] + "+" + runs["decay_mode"]), "arm", {}, SCREEN_REACH)


def mechanism_unreached(runs: pd.DataFrame) -> dict[str, str]:
    """Notebook 08's variants that had not reached their onset (``unreached_arms``)."""
    runs = completed(runs).copy()
    runs["variant"] = runs.apply(mechanism_variant, axis=1)
    return unreached_arms(runs, "variant", {}, SCREEN_REACH)


def unreached_arms(runs: pd.DataFrame, arm: str, onsets: dict[str, float], default_onset: float) -> dict[str, str]:
    """The arms (values of column ``arm`` of completed ``runs``) that had not reached their onset:
    their high-rate lr x steps (``optim.high_rate_lr_x_steps``: at the initial rate, before it first
    halves) stayed below the onset measured for the arm (``onsets``: arm -> lr x steps, from a
    screen) or, for an arm not in ``onsets``, ``default_onset``, and in at least one of their runs no
    filter died (by activation). The run is the unit: an arm whose deaths come from some of its runs
    only has not had its chance in the others. Returns arm -> why, for ``verdict.not_reached``."""
    unreached = {}
    for name, group in completed(runs).groupby(arm):
        spared = int((group[DEAD] == 0).sum())
        if not spared:
            continue  # filters died in every run: it has reached its onset, whatever its schedule
        reach = min(run_high_rate_lr_x_steps(r) for r in group.itertuples())
        needed = onsets.get(name, default_onset)
        if reach < needed:
            source = "its onset in the screen" if name in onsets else "the reach every regime must give"
            unreached[name] = (f"not reached: no filter died in {spared} of its {len(group)} runs, and its high-rate "
                               f"phase gave lr x steps {reach:.3g} before the rate first halved, short of {source} "
                               f"({needed:.3g})")
    return unreached


def dead_at_epochs(progress: pd.DataFrame, epochs) -> dict:
    """Per arm (its one run) the dead fractions by both criteria at each of ``epochs`` it reached:
    {arm: {epoch: {"activation": ..., "gamma": ...}}}, e.g. to set a run beside its twin."""
    facts = {}
    for arm, run in progress.groupby("arm", sort=False):
        by_epoch = run.set_index("epoch")
        facts[arm] = {int(e): {"activation": float(by_epoch.loc[e, "dead_fraction"]),
                               "gamma": float(by_epoch.loc[e, "dead_gamma_fraction"])}
                      for e in epochs if e in by_epoch.index}
    return facts


def screen_facts(onsets: pd.DataFrame) -> dict:
    """The screen's numbers by arm, for the README: onsets (lr x steps and epoch, both criteria;
    None where nothing died) and the state at the end."""
    def plain_value(value):
        return None if isinstance(value, float) and math.isnan(value) else value

    return {row["arm"]: {key: plain_value(value) for key, value in row.items() if key != "arm"}
            for row in onsets.to_dict(orient="records")}


# --- 11. ResNets ---------------------------------------------------------------------------------


def stage_of(layer: str) -> str:
    """'stem' for the first convolution's BatchNorm (``bn1``), 'stage 1'..'stage 4' for ``layer1...``."""
    return f"stage {layer[5]}" if layer.startswith("layer") else "stem"


def dead_per_stage(tables: RunTables) -> pd.DataFrame:
    """Per run and stage: filters, dead by each criterion (the activation criterion over the filters
    it applies to), and how often the criteria agree there."""
    runs = completed(tables.runs).set_index("run_id")
    filters = tables.filters[tables.filters["run_id"].isin(runs.index)].copy()
    filters["stage"] = filters["layer"].map(stage_of)
    measured = filters["measured"].astype(bool) if "measured" in filters else pd.Series(True, index=filters.index)
    filters["measured_dead"] = filters["dead_by_activation"].astype(bool) & measured
    filters["agree"] = (filters["dead_by_activation"].astype(bool) == filters["dead_by_gamma"].astype(bool)).where(measured)
    filters["measured"] = measured
    grouped = filters.groupby(["run_id", "stage"])
    frame = pd.DataFrame({
        "filters": grouped.size(),
        "measured": grouped["measured"].sum(),
        "dead_by_activation_pct": 100 * grouped["measured_dead"].sum() / grouped["measured"].sum(),
        "dead_by_gamma_pct": 100 * grouped["dead_by_gamma"].mean(),
        "criteria_agreement": grouped["agree"].mean(),
    }).reset_index()
    for column in ("optimizer", "decay_mode", "seed"):
        frame[column] = runs.loc[frame["run_id"], column].to_numpy()
    frame["setting"] = frame["optimizer"] + "+" + frame["decay_mode"]
    return frame


def resnets(tables: RunTables, pruned: pd.DataFrame) -> list[Verdict]:
    """Notebook 11: does implicit sparsity emerge in ResNets, and can it be removed exactly?"""
    runs = tables.runs
    adam_l2 = select(runs, optimizer="adam", decay_mode="l2")
    verdicts = [
        greater("In ResNet-18, Adam+L2 leaves more dead filters than SGD+L2", adam_l2,
                select(runs, optimizer="sgd", decay_mode="l2"), "adam+l2", "sgd+l2", claim_id="resnet-vs-sgd"),
        greater("In ResNet-18, Adam+L2 leaves more dead filters than Adam without regularization", adam_l2,
                select(runs, optimizer="adam", decay_mode="none"), "adam+l2", "adam+none", claim_id="resnet-vs-none"),
    ]
    claim = ("Removing the dead filters that can be removed exactly changes no output on the test set (largest logit "
             f"difference < {EXACT_LOGIT_TOLERANCE:g}, float64)")
    cases = [f"seed {row.seed}: {row.max_logit_difference:.2g}, {row.removed} of {row.dead} dead filters removed"
             for row in pruned.itertuples()] if len(pruned) else []
    verdicts.append(exactness(claim, cases, pruned["max_logit_difference"] if len(pruned) else [],
                              "resnet-exact-removal"))
    return verdicts


# --- 12. recycling dead filters ----------------------------------------------------------------

MIN_ERROR_EFFECT = 0.01  # a difference in test error must exceed one percentage point
RECYCLED = ", recycled"


def recycling_arm(row) -> str:
    """'adam+l2', or 'adam+l2, recycled' for a run trained with ``recycle`` (runs stored before
    the setting existed have none: not recycled)."""
    recycled = row.get("recycle")
    return f"{row['optimizer']}+{row['decay_mode']}" + (RECYCLED if isinstance(recycled, (bool, np.bool_)) and recycled else "")


def recycling_grid(exp, optimizer: str = "adam", recycle_init: str = "network") -> list:
    """Notebook 12's runs over the notebook's seeds: ``optimizer`` + L2 with and without recycling
    (its filters drawn from ``recycle_init``, ``config.RunConfig``), ``optimizer`` alone and SGD + L2
    (the references its accuracy is held against)."""
    return (exp.grid(optimizer=[optimizer], decay_mode=["l2"], recycle=[False, True], recycle_init=[recycle_init])
            + exp.grid(optimizer=[optimizer], decay_mode=["none"]) + exp.grid(optimizer=["sgd"], decay_mode=["l2"]))


def recycling(tables: RunTables, optimizer: str = "adam") -> list[Verdict]:
    """Notebook 12: does ``optimizer`` + L2 lose accuracy against ``optimizer`` alone, and does
    recycling its dead filters leave fewer dead and lower its test error? Runs are the unit."""
    runs = completed(tables.runs).copy()
    runs["arm"] = runs.apply(recycling_arm, axis=1) if len(runs) else []
    base, recycled, alone = f"{optimizer}+l2", f"{optimizer}+l2{RECYCLED}", f"{optimizer}+none"
    error = dict(fmt="{:.1%}", min_effect=MIN_ERROR_EFFECT)
    return [
        greater(f"{optimizer}+L2 has a higher test error than {optimizer} without regularization (the accuracy gap)",
                select(runs, "test_error", arm=base), select(runs, "test_error", arm=alone), base, alone,
                claim_id="accuracy-gap", **error),
        greater("Recycling leaves fewer filters dead at the end of training",
                select(runs, arm=base), select(runs, arm=recycled), base, recycled, claim_id="recycling-fewer-dead"),
        greater(f"Recycling lowers {optimizer}+L2's test error", select(runs, "test_error", arm=base),
                select(runs, "test_error", arm=recycled), base, recycled, claim_id="recycling-lower-error", **error),
    ]


def recycling_summary(tables: RunTables) -> pd.DataFrame:
    """Per arm: runs, mean and standard deviation of the dead fraction and of the test error."""
    runs = completed(tables.runs).copy()
    runs["arm"] = runs.apply(recycling_arm, axis=1)
    grouped = runs.groupby("arm")
    return pd.DataFrame({"runs": grouped.size(), "dead_mean": grouped[DEAD].mean(), "dead_sd": grouped[DEAD].std(),
                         "test_error_mean": grouped["test_error"].mean(), "test_error_sd": grouped["test_error"].std()})


# --- 13. training precision -----------------------------------------------------------------------


PRECISIONS = ("float32", "bfloat16")  # the reference first
# Margins, stated before the runs (issue 23): what a change of method may move and still measure
# the same. The total dead fraction within 2 points (twice the minimum effect of every dead-fraction
# claim), a layer's within 5 points of its own filters (a layer of 16 filters moves 6 points with one
# filter), the test error within 1 point (the minimum effect of every test-error claim).
PRECISION_MARGINS = {"total": 0.02, "layer": 0.05, "test error": 0.01}
TOTAL, ERROR = "total", "test error"
CRITERIA = {"activation": "dead_by_activation", "gamma": "dead_by_gamma"}


def precision_grid(exp, optimizers) -> list:
    """Each optimizer with L2, in float32 and in bfloat16, over the notebook's seeds: pairs that
    share a seed share their initialization and batches."""
    return exp.grid(optimizer=list(optimizers), decay_mode=["l2"], precision=list(PRECISIONS))


def precision_designs(seeds) -> list[Design]:
    return [paired_runs("bf16-equivalent", len(seeds))]


def precision_pairs(tables: RunTables) -> pd.DataFrame:
    """One row per (optimizer, seed, quantity, criterion) that has both precisions: the float32 and
    bfloat16 values, their difference and its margin. Quantities: each layer's dead fraction (of
    its own filters) and the total, by each criterion, and the test error (criterion empty)."""
    runs = completed(tables.runs)
    if runs.empty:
        return pd.DataFrame(columns=["optimizer", "seed", "quantity", "criterion", *PRECISIONS, "difference", "margin"])
    keys = runs.set_index("run_id")[["optimizer", "seed", "precision"]]
    rows = []
    for run_id, run in runs.set_index("run_id").iterrows():
        for criterion, column in CRITERIA.items():
            rows.append((run_id, TOTAL, criterion, float(run[column])))
        rows.append((run_id, ERROR, "", float(run["test_error"])))
    layers = tables.layers[tables.layers["run_id"].isin(keys.index)]
    for _, layer in layers.iterrows():
        for criterion, column in CRITERIA.items():
            rows.append((layer["run_id"], layer["layer"], criterion, layer[column] / layer["filters"]))
    values = pd.DataFrame(rows, columns=["run_id", "quantity", "criterion", "value"]).join(keys, on="run_id")
    wide = values.pivot_table(index=["optimizer", "seed", "quantity", "criterion"], columns="precision",
                              values="value", aggfunc="first").reset_index()
    wide = wide.dropna(subset=[p for p in PRECISIONS if p in wide]) if all(p in wide for p in PRECISIONS) else wide.iloc[:0]
    for precision in PRECISIONS:
        if precision not in wide:
            wide[precision] = pd.Series(dtype=float)
    wide["difference"] = wide[PRECISIONS[1]] - wide[PRECISIONS[0]]
    wide["margin"] = [PRECISION_MARGINS.get(q, PRECISION_MARGINS["layer"]) for q in wide["quantity"]]
    order = {TOTAL: 0, ERROR: 1}
    wide["_order"] = [order.get(q, 2) for q in wide["quantity"]]
    wide = wide.sort_values(["optimizer", "_order", "criterion", "quantity", "seed"], kind="stable")
    return wide.drop(columns="_order").reset_index(drop=True)


def precision_part_label(optimizer: str, quantity: str, criterion: str) -> str:
    what = ERROR if quantity == ERROR else f"{quantity}, dead by {criterion}"
    return f"{optimizer}+l2, {what}"


def precision_equivalence(tables: RunTables) -> list[Verdict]:
    """Notebook 13: per optimizer and quantity, bfloat16 minus float32 over the seeds run in both,
    equivalent within its margin (sign-flip TOST); the check holds when every part does."""
    pairs = precision_pairs(tables)
    claim = ("Training in bfloat16 (autocast) leaves the same dead filters (both criteria, each layer and in total) "
             "and test error as float32")
    parts = [paired_equivalent(precision_part_label(optimizer, quantity, criterion), group["difference"],
                               "bfloat16 - float32", float(group["margin"].iloc[0]))
             for (optimizer, quantity, criterion), group in pairs.groupby(["optimizer", "quantity", "criterion"],
                                                                           sort=False)]
    if not parts:
        return [Verdict(claim, INCONCLUSIVE, "no seed was run in both precisions", claim_id="bf16-equivalent")]
    return [all_equivalent(claim, parts, claim_id="bf16-equivalent")]


def precision_part_p_values(verdicts: list[Verdict], pairs: pd.DataFrame) -> dict:
    """(optimizer, quantity, criterion) -> the TOST p of that part of ``precision_equivalence``."""
    by_label = {part["claim"]: part["p_value"] for verdict in verdicts for part in verdict.parts
                if part["p_value"] is not None}
    keys = pairs[["optimizer", "quantity", "criterion"]].drop_duplicates().itertuples(index=False)
    return {tuple(key): by_label[precision_part_label(*key)] for key in keys if precision_part_label(*key) in by_label}


def precision_facts(tables: RunTables) -> dict:
    """Per optimizer and precision, the spread over runs of the dead fractions and the test error,
    and the median training time per run (seconds, as recorded: it depends on what else ran)."""
    runs = completed(tables.runs)
    facts = {}
    for (optimizer, precision), group in runs.groupby(["optimizer", "precision"]):
        facts.setdefault(optimizer, {})[precision] = {
            **{metric: spread(group.sort_values("seed")[metric].tolist()) for metric in ARM_METRICS},
            "median_duration_s": float(group["duration_s"].median())}
    return facts

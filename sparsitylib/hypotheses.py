"""The paper's claims, one function per notebook, each turning the runs' tables into verdicts.

Every function takes the tidy tables of the notebook's runs and returns a list of ``Verdict``;
what decides each verdict is in ``verdict.py``. Nothing here knows the expected outcome: the same
code says "does not hold" when the data say so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .compare import IMPLICIT, L1_NORM, SLIMMING, UNPRUNED_ADAPTIVE
from .data import DATASETS
from .optim import OPTIMIZERS, cumulative_lr
from .store import RunTables
from .verdict import (
    ALPHA,
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    Verdict,
    combine,
    count_holding,
    describe,
    greater,
    near_zero,
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


def optimizer_regularizer(tables: RunTables) -> list[Verdict]:
    runs = tables.runs
    adaptive = [o for o in OPTIMIZERS if o != "sgd" and o in set(runs["optimizer"])]
    sgd_l2 = select(runs, optimizer="sgd", decay_mode="l2")
    more_than_sgd = count_holding(
        "Adaptive optimizers with L2 leave more dead filters than SGD with L2",
        [greater(f"{o}+l2 > sgd+l2", select(runs, optimizer=o, decay_mode="l2"), sgd_l2, f"{o}+l2", "sgd+l2")
         for o in adaptive],
    )
    adam = greater("With Adam, L2 leaves more dead filters than SGD+L2",
                   select(runs, optimizer="adam", decay_mode="l2"), sgd_l2, "adam+l2", "sgd+l2")
    vanish = combine(
        "Without regularization no filters die, for every optimizer",
        [near_zero(f"{o}+none", select(runs, optimizer=o, decay_mode="none"), f"{o}+none")
         for o in sorted(set(runs["optimizer"]))],
    )
    verdicts = [adam, more_than_sgd, vanish]
    if "wd" in set(runs["decay_mode"]):
        verdicts.append(greater("With Adam, weight decay (the paper's, same lambda) leaves more dead filters than SGD "
                                "with weight decay", select(runs, optimizer="adam", decay_mode="wd"),
                                select(runs, optimizer="sgd", decay_mode="wd"), "adam+wd", "sgd+wd"))
    return verdicts


# --- 2. where sparsity lives --------------------------------------------------------------------


def mean_live_selectivity(tables: RunTables) -> pd.Series:
    """Per run: the mean selectivity of its live filters."""
    live = tables.filters[~tables.filters[DEAD]]
    return live.groupby("run_id")["selectivity"].mean()


def where_sparsity_lives(tables: RunTables) -> list[Verdict]:
    runs = completed(tables.runs).copy()
    runs["mean_selectivity"] = runs["run_id"].map(mean_live_selectivity(tables))
    selective = greater("Adam+L2 learns more selective features than SGD+L2 (mean selectivity of live filters)",
                        select(runs, "mean_selectivity", optimizer="adam", decay_mode="l2"),
                        select(runs, "mean_selectivity", optimizer="sgd", decay_mode="l2"),
                        "adam+l2", "sgd+l2", fmt="{:.3f}")
    return [selective]


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

DEAD_BETA_SHARE = 0.9  # "dead filters sit at beta <= 0" holds when at least this share of them does


def batchnorm_dynamics(tables: RunTables) -> list[Verdict]:
    runs = completed(tables.runs)
    filters = tables.filters.merge(runs[["run_id", "optimizer", "decay_mode"]], on="run_id")
    dead = filters[filters[DEAD] & filters["gamma"].notna()]
    claim = "Dead filters sit at beta <= 0, so BN's output never turns the ReLU on"
    test = f"binomial: share of dead filters with beta <= 0 against 1/2; holds at >= {DEAD_BETA_SHARE:.0%}"
    if dead.empty:
        beta_verdict = Verdict(claim, INCONCLUSIVE, "no dead filters with BatchNorm in these runs", test)
    else:
        at_or_below = int((dead["beta"] <= 0).sum())
        share = at_or_below / len(dead)
        p_above = float(stats.binomtest(at_or_below, len(dead), 0.5, alternative="greater").pvalue)
        p_below = float(stats.binomtest(at_or_below, len(dead), 0.5, alternative="less").pvalue)
        status = (HOLDS if share >= DEAD_BETA_SHARE and p_above <= ALPHA
                  else DOES_NOT_HOLD if share < 0.5 and p_below <= ALPHA else INCONCLUSIVE)
        live = filters[~filters[DEAD] & filters["gamma"].notna()]
        beta_verdict = Verdict(claim, status, (
            f"{share:.0%} of {len(dead)} dead filters (pooled over {dead['run_id'].nunique()} runs) have beta <= 0 "
            f"(holds at >= {DEAD_BETA_SHARE:.0%}; binomial p={p_above if share >= 0.5 else p_below:.3g}); "
            f"median |gamma| dead {dead['gamma'].abs().median():.2g} vs alive {live['gamma'].abs().median():.2g}"),
            test, p_above if share >= 0.5 else p_below, share, {"dead filters": len(dead)})

    history = tables.history.merge(runs[["run_id", "optimizer", "decay_mode"]], on="run_id")
    mean_dead = history.groupby(["run_id", "optimizer", "decay_mode"], as_index=False)["dead_total"].mean()

    def area(optimizer, decay_mode):
        return select(mean_dead.assign(status="completed"), "dead_total", optimizer=optimizer, decay_mode=decay_mode)

    faster = combine("Filters die sooner with Adam+L2 than with Adam+WD or SGD+L2 "
                     "(dead filters averaged over epochs)", [
                         greater("adam+l2 > adam+wd", area("adam", "l2"), area("adam", "wd"),
                                 "adam+l2", "adam+wd", fmt="{:.1f}"),
                         greater("adam+l2 > sgd+l2", area("adam", "l2"), area("sgd", "l2"), "adam+l2", "sgd+l2",
                                 fmt="{:.1f}"),
                     ])
    return [beta_verdict, faster]


# --- 4, 5. regularization strength, learning rate, batch size ----------------------------------


def increases_with(tables: RunTables, setting: str, claim: str, direction: int = 1, **where) -> Verdict:
    """A trend verdict on the fraction of dead filters against one setting (runs matching ``where``)."""
    runs = completed(tables.runs)
    for column, value in where.items():
        runs = runs[runs[column] == value]
    return trend(claim, runs, setting, DEAD, direction)


NEAR_BEST_ERROR = 0.02  # "whose test error is within 2 points of the best"


def error_by_decay(runs: pd.DataFrame, optimizer: str, decay_mode: str) -> pd.Series:
    """Mean test error over seeds at each lambda of one optimizer x regularizer."""
    runs = completed(runs)
    runs = runs[(runs["optimizer"] == optimizer) & (runs["decay_mode"] == decay_mode)]
    return runs.groupby("decay")["test_error"].mean().sort_index()


def best_decay(runs: pd.DataFrame, optimizer: str, decay_mode: str) -> float | None:
    """The lambda with the lowest mean test error (the smaller lambda on a tie)."""
    errors = error_by_decay(runs, optimizer, decay_mode)
    return float(errors.idxmin()) if len(errors) else None


def regularization_strength(decay_tables: RunTables, optimizer: str = "adam") -> list[Verdict]:
    """Notebook 4's lambda sweeps: trends, L2 against WD at each one's best lambda, and whether WD
    leaves dead filters at a lambda that costs at most ``NEAR_BEST_ERROR`` of test error."""
    runs = completed(decay_tables.runs)
    verdicts = [increases_with(decay_tables, "decay", f"{o}+{m}: stronger regularization leaves more dead filters",
                               optimizer=o, decay_mode=m)
                for o, m in [(optimizer, "l2"), (optimizer, "wd")] if len(select(runs, optimizer=o, decay_mode=m))]
    l2_best, wd_best = best_decay(runs, optimizer, "l2"), best_decay(runs, optimizer, "wd")
    claim = (f"With {optimizer}, L2 leaves more dead filters than WD, each at its lowest-test-error lambda "
             f"(the paper's table)")
    if l2_best is None or wd_best is None:
        verdicts.append(Verdict(claim, INCONCLUSIVE, "needs both an L2 and a WD sweep"))
    else:
        verdicts.append(greater(claim, select(runs, optimizer=optimizer, decay_mode="l2", decay=l2_best),
                                select(runs, optimizer=optimizer, decay_mode="wd", decay=wd_best),
                                f"{optimizer}+l2 at {l2_best:g}", f"{optimizer}+wd at {wd_best:g}"))
    verdicts.append(wd_leaves_dead_filters(runs, optimizer))
    return verdicts


def wd_leaves_dead_filters(runs: pd.DataFrame, optimizer: str = "adam") -> Verdict:
    """Claim: with WD, some lambda whose mean test error is within 2 points of the sweep's best
    leaves more dead filters than no regularization. The lambda with the most dead filters among
    the k eligible ones is tested, and its p-value multiplied by k (Bonferroni), since it was picked
    after looking."""
    claim = (f"With {optimizer}, weight decay also leaves dead filters at some lambda whose test error is within "
             f"{NEAR_BEST_ERROR:.0%} of the best (against {optimizer} without regularization)")
    errors = error_by_decay(runs, optimizer, "wd")
    baseline = select(runs, optimizer=optimizer, decay_mode="none")
    if errors.empty or len(baseline) == 0:
        return Verdict(claim, INCONCLUSIVE, f"needs a WD sweep and {optimizer} runs without regularization")
    eligible = [float(d) for d, e in errors.items() if e <= errors.min() + NEAR_BEST_ERROR]
    dead = {d: select(runs, optimizer=optimizer, decay_mode="wd", decay=d) for d in eligible}
    chosen = max(eligible, key=lambda d: (dead[d].mean(), -d))
    tested = greater(claim, dead[chosen], baseline, f"{optimizer}+wd at {chosen:g}", f"{optimizer}+none")
    if tested.p_value is None:
        return tested
    p_value = min(1.0, tested.p_value * len(eligible))
    effect = tested.effect or 0.0
    status = HOLDS if effect > 0 and p_value <= ALPHA else DOES_NOT_HOLD if tested.status == DOES_NOT_HOLD else INCONCLUSIVE
    return Verdict(claim, status, f"{tested.evidence}; eligible lambdas {eligible} (mean test error within "
                   f"{NEAR_BEST_ERROR:.0%} of {errors.min():.1%}); Bonferroni p={p_value:.3g}",
                   f"{tested.test}, Bonferroni over {len(eligible)} lambdas", p_value, effect, tested.n, tested.values)


# --- 6. task difficulty -------------------------------------------------------------------------


def number_of_classes(runs: pd.DataFrame) -> pd.Series:
    return runs.apply(lambda r: len(r["classes"]) if isinstance(r["classes"], (list, tuple))
                      else DATASETS[r["dataset"]].num_classes, axis=1)


def task_difficulty(class_tables: RunTables, size_tables: RunTables, dataset_tables: RunTables | None = None) -> list[Verdict]:
    classes = completed(class_tables.runs).copy()
    classes["n_classes"] = number_of_classes(classes)
    verdicts = [trend("Fewer classes (an easier task) leave more dead filters", classes, "n_classes", DEAD, -1),
                trend("A smaller training set (easier to fit; same number of steps) leaves more dead filters",
                      completed(size_tables.runs), "train_size", DEAD, -1)]
    if dataset_tables is not None and len(dataset_tables.runs) and {"cifar10", "cifar100"} <= set(dataset_tables.runs["dataset"]):
        runs = dataset_tables.runs
        verdicts.append(greater("CIFAR-10 leaves more dead filters than CIFAR-100",
                                select(runs, dataset="cifar10"), select(runs, dataset="cifar100"),
                                "cifar10", "cifar100"))
    return verdicts


# --- 7. capacity and architecture ---------------------------------------------------------------


def capacity(width_tables: RunTables, arch_tables: RunTables) -> list[Verdict]:
    width = trend("A narrower network (less capacity) has a larger fraction of dead filters",
                  completed(width_tables.runs), "width", DEAD, -1)
    runs = arch_tables.runs
    per_model = [greater(f"{m}: adam+l2 > sgd+l2", select(runs, model=m, optimizer="adam", decay_mode="l2"),
                         select(runs, model=m, optimizer="sgd", decay_mode="l2"), "adam+l2", "sgd+l2")
                 for m in sorted(set(runs["model"]))]
    return [width, combine("Adam+L2 leaves more dead filters than SGD+L2 in every architecture", per_model)]


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


def mechanism(tables: RunTables, early_epoch: int = 1) -> list[Verdict]:
    runs = completed(tables.runs).copy()
    runs["variant"] = runs.apply(mechanism_variant, axis=1)
    baseline = select(runs, variant=BASELINE)
    verdicts = [
        combine("Leaky ReLU removes the sparsity", [
            greater("baseline > leaky ReLU", baseline, select(runs, variant="leaky ReLU"), BASELINE, "leaky ReLU"),
            near_zero("leaky ReLU vanishes", select(runs, variant="leaky ReLU"), "leaky ReLU"),
        ]),
        greater("Without BatchNorm fewer filters die", baseline, select(runs, variant="no BatchNorm"),
                BASELINE, "no BatchNorm"),
        greater("Decaying BN's gamma and beta is needed for the full effect (more die than when only weights decay)",
                baseline, select(runs, variant="BN params not decayed"), BASELINE, "BN params not decayed"),
        selective_filters_die(tables, runs.loc[runs["variant"] == BASELINE, "run_id"], early_epoch),
    ]
    return verdicts


def selective_filters_die(tables: RunTables, run_ids, early_epoch: int = 1) -> Verdict:
    """Were the filters that end dead more selective at ``early_epoch`` than those that survive?"""
    claim = f"Filters that die were the more selective ones earlier (epoch {early_epoch})"
    per_filter = tables.history_filters()
    if per_filter.empty:
        return Verdict(claim, INCONCLUSIVE, "no per-epoch filter history")
    early = per_filter[(per_filter["epoch"] == early_epoch) & per_filter["run_id"].isin(run_ids)]
    early = early.dropna(subset=["selectivity"])  # filters already dead at that epoch have no selectivity
    # the mean, not the median: early on most filters respond to every image (selectivity 0)
    means = early.groupby(["run_id", DEAD])["selectivity"].mean().unstack()
    if True not in means.columns or False not in means.columns or means.isna().any().any():
        return Verdict(claim, INCONCLUSIVE, f"too few filters that die after epoch {early_epoch} to compare")
    dies, survives = means[True].to_numpy(), means[False].to_numpy()
    counts = early.groupby(DEAD).size()
    tested = greater(claim, dies, survives, "will die", "survive")
    return Verdict(claim, tested.status,
                   f"mean selectivity at epoch {early_epoch}, per run: will die {describe(dies, '{:.3f}')}, "
                   f"survive {describe(survives, '{:.3f}')} ({int(counts.get(True, 0))} vs "
                   f"{int(counts.get(False, 0))} filters over all runs)"
                   + (f"; one-sided p={tested.p_value:.3g}" if tested.p_value is not None else ""),
                   tested.test, tested.p_value, tested.effect, tested.n, tested.values)


# --- 9. pruning ---------------------------------------------------------------------------------

PAR_TOLERANCE = 0.01  # "at par": within one percentage point of test error
EXPLICIT = (L1_NORM, SLIMMING)


def pruning(comparison: pd.DataFrame) -> list[Verdict]:
    """``comparison``: the rows of ``compare.compare_runs``."""
    exact_claim = ("Removing the dead filters (dead on every training image) changes no output on the test set "
                   "(largest logit difference < 1e-5, in float64)")
    implicit = comparison[comparison["method"] == IMPLICIT] if len(comparison) else comparison
    if len(implicit):
        unpruned = comparison[comparison["method"] == UNPRUNED_ADAPTIVE].set_index(["model", "dataset", "seed"])
        cases = [f"{r.model}/{r.dataset}/seed {r.seed}: {r.max_logit_difference:.2g}"
                 + ("" if r.test_error_pruned == unpruned.loc[(r.model, r.dataset, r.seed), "test_error_pruned"]
                    else " (test error changed)") for r in implicit.itertuples()]
        worst = float(implicit["max_logit_difference"].max())
        exact = Verdict(exact_claim, HOLDS if worst < 1e-5 else DOES_NOT_HOLD, "; ".join(cases))
    else:
        exact = Verdict(exact_claim, INCONCLUSIVE, "no pruned runs")
    parts = []
    for (model, dataset, seed), group in comparison.groupby(["model", "dataset", "seed"]):
        errors = group.set_index("method")["test_error_finetuned"]
        macs = group.set_index("method")["macs"]
        if group.set_index("method").loc[IMPLICIT, "mac_reduction"] <= 1.0:
            parts.append(Verdict(f"{model} on {dataset}, seed {seed}", INCONCLUSIVE,
                                 "no filter died, so there is nothing to compare"))
            continue
        best_explicit = min(errors[m] for m in EXPLICIT)
        gap = errors[IMPLICIT] - best_explicit
        status = HOLDS if gap <= PAR_TOLERANCE else DOES_NOT_HOLD
        parts.append(Verdict(f"{model} on {dataset}, seed {seed}", status,
                             f"implicit {errors[IMPLICIT]:.1%} at {macs[IMPLICIT] / 1e6:.2f}M MACs vs best explicit "
                             f"{best_explicit:.1%} at <= the same MACs (gap {gap:+.1%}, par = within {PAR_TOLERANCE:.0%})"))
    par = combine("Implicit pruning is at par with or better than explicit pruning at matched MACs "
                  "(test error after the same fine-tuning)", parts) if parts else Verdict(
        "Implicit pruning is at par with or better than explicit pruning", INCONCLUSIVE, "no complete comparison")
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
    for column in ("optimizer", "decay_mode", "lr", "seed"):
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


def training_length(tables: RunTables, usual_lr: float = 1e-3) -> list[Verdict]:
    """Notebook 10: the long runs at the optimizers' usual learning rates."""
    runs = completed(tables.runs)
    adam_l2 = select(runs, optimizer="adam", decay_mode="l2", lr=usual_lr)
    verdicts = [
        greater(f"At the usual Adam learning rate ({usual_lr:g}), Adam+L2 also leaves dead filters given enough "
                f"steps (more than Adam without regularization)", adam_l2,
                select(runs, optimizer="adam", decay_mode="none", lr=usual_lr), "adam+l2", "adam+none"),
        greater(f"At lr {usual_lr:g}, Adam+L2 leaves more dead filters than SGD+L2 after the longest training",
                adam_l2, select(runs, optimizer="sgd", decay_mode="l2"), "adam+l2", "sgd+l2"),
    ]
    progress = training_progress(tables)
    if progress.empty:
        return verdicts + [Verdict("SGD+L2 leaves no dead filters at any length", INCONCLUSIVE, "no history")]
    sgd = progress[(progress["optimizer"] == "sgd") & (progress["decay_mode"] == "l2")]
    verdicts.append(near_zero("SGD+L2 leaves no dead filters at any length (most dead on the snapshot images "
                              "at any epoch)", sgd.groupby("run_id")["dead_fraction"].max().to_numpy(), "sgd+l2"))
    verdicts.append(governed_by_lr_x_steps(progress))
    return verdicts


def governed_by_lr_x_steps(progress: pd.DataFrame) -> Verdict:
    """Claim: across Adam+L2's learning rates, the dead fraction follows lr x steps (cumulative
    learning rate) more closely than the number of steps. It does not test that the curves
    collapse exactly onto one. Holds when, pooled over the learning rates' epochs, the dead fraction rises with
    cumulative lr x steps (Spearman permutation test) and follows it more closely than it follows
    the number of steps (rho against lr x steps > rho against steps). Epochs of one run are not
    independent, so the p-value is optimistic."""
    claim = "With Adam+L2 the dead fraction follows lr x steps (cumulative learning rate) more closely than the number of steps"
    adam = progress[(progress["optimizer"] == "adam") & (progress["decay_mode"] == "l2")]
    if adam["lr"].nunique() < 2:
        return Verdict(claim, INCONCLUSIVE, "needs Adam+L2 runs at two or more learning rates")
    by_lr_steps = trend(claim, adam, "lr_x_steps", "dead_fraction")
    by_steps = trend(claim, adam, "steps", "dead_fraction")
    if by_lr_steps.effect is None or by_steps.effect is None:
        return by_lr_steps
    closer = by_lr_steps.effect > by_steps.effect
    status = by_lr_steps.status if by_lr_steps.status != HOLDS or closer else INCONCLUSIVE
    evidence = (f"over {len(adam)} epochs of {adam['lr'].nunique()} learning rates: Spearman rho with lr x steps "
                f"{by_lr_steps.effect:+.2f} (p={by_lr_steps.p_value:.3g}), with steps alone {by_steps.effect:+.2f}")
    return Verdict(claim, status, evidence, "permutation: Spearman rho (pooled epochs)", by_lr_steps.p_value,
                   by_lr_steps.effect, {"epochs": len(adam)})


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
                select(runs, optimizer="sgd", decay_mode="l2"), "adam+l2", "sgd+l2"),
        greater("In ResNet-18, Adam+L2 leaves more dead filters than Adam without regularization", adam_l2,
                select(runs, optimizer="adam", decay_mode="none"), "adam+l2", "adam+none"),
    ]
    claim = "Removing the dead filters that can be removed exactly changes no output (largest logit difference < 1e-5, float64)"
    if pruned.empty:
        verdicts.append(Verdict(claim, INCONCLUSIVE, "no Adam+L2 run was pruned"))
    else:
        exact = pruned["max_logit_difference"] < 1e-5
        cases = "; ".join(f"seed {row.seed}: {row.max_logit_difference:.2g}, {row.removed} of {row.dead} dead filters removed"
                          for row in pruned.itertuples())
        verdicts.append(Verdict(claim, HOLDS if exact.all() else DOES_NOT_HOLD, cases, "check per run", None, None,
                                {"runs": len(pruned)}))
    return verdicts

"""The notebooks' verdict functions decide from the data: the same code holds or fails.

Every test builds its runs by hand, so the expected status, and the exact p-value where the number
of relabellings is known (3 runs against 3: 1/20; 5 against 5: 1/252; a sign flip over n runs:
1/2^n), follows from the numbers; reversing the numbers must reverse the verdict (``p_value`` is the
one-sided p for the claim, ``p_against`` the reversed one's). A status straight out of a hypotheses
function is decided at the raw level 0.05; ``adjust`` then decides a primary claim within its
regime's family (Bonferroni) and describes a secondary one (``claims.REGISTRY``).
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparsitylib import claims, hypotheses
from sparsitylib.optim import OPTIMIZERS as ALL_OPTIMIZERS, SELF_DECAYING, high_rate_lr_x_steps

OPTIMIZERS = [o for o in ALL_OPTIMIZERS if o not in SELF_DECAYING]  # the paper's Table 1: each takes L2
from sparsitylib.notebook import start
from sparsitylib.presets import REPORTS
from sparsitylib.reproduce import notebook_defaults
from sparsitylib.prune import EXACT_LOGIT_TOLERANCE
from sparsitylib.store import RunTables, tables_from_records
from sparsitylib.verdict import (DESCRIBED, DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, INVALID, NOT_REACHED, PRIMARY, SECONDARY,
                                  UNTESTABLE, adjust)

NAN = float("nan")


def tables(rows, filters=None, history=None, records=None):
    runs = pd.DataFrame(rows)
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    runs["status"] = "completed"
    empty = pd.DataFrame()
    return RunTables(runs=runs, layers=empty, filters=filters if filters is not None else empty,
                     history=history if history is not None else empty, history_layers=empty,
                     records=records if records is not None else [])


def in_family(verdicts, preset="quick"):
    """``verdicts`` decided as the preset's report decides them: each claim's role from the
    registry, primary claims tested at 0.05 / m (Bonferroni over the report's m primary claims)."""
    return adjust(verdicts, claims.ROLES, claims.family_size(preset), f"the {preset} report")


SEEDS = (0, 1, 2)
FIVE_SEEDS = (0, 1, 2, 3, 4)
ADAPTIVE = [o for o in OPTIMIZERS if o != "sgd"]


# --- 1. optimizer x regularizer -------------------------------------------------------------------


def optimizer_rows(adaptive_l2, sgd_l2, adam_wd, sgd_wd, none_level, seeds=SEEDS, wd=True):
    """Every optimizer with L2 (``adaptive_l2``: one level, or a dict per adaptive optimizer) and
    without regularization, Adam and SGD with WD; each seed adds 0.01 (the arms stay separated)."""
    rows = []
    for seed in seeds:
        for optimizer in OPTIMIZERS:
            if optimizer == "sgd":
                l2 = sgd_l2
            else:
                l2 = adaptive_l2[optimizer] if isinstance(adaptive_l2, dict) else adaptive_l2
            rows += [{"optimizer": optimizer, "decay_mode": "l2", "seed": seed, "dead_by_activation": l2 + 0.01 * seed},
                     {"optimizer": optimizer, "decay_mode": "none", "seed": seed, "dead_by_activation": none_level}]
        if wd:
            rows += [{"optimizer": "adam", "decay_mode": "wd", "seed": seed, "dead_by_activation": adam_wd + 0.01 * seed},
                     {"optimizer": "sgd", "decay_mode": "wd", "seed": seed, "dead_by_activation": sgd_wd + 0.01 * seed}]
    return rows


def test_each_adaptive_optimizer_is_its_own_claim_against_sgd():
    verdicts = hypotheses.optimizer_regularizer(tables(optimizer_rows(0.2, 0.0, 0.05, 0.0, 0.0)))
    # one per adaptive optimizer, the bound; with Adam, L2 and WD against none and each other; Adam vs SGD under WD
    assert len(verdicts) == len(ADAPTIVE) + 5
    assert [v.claim for v in verdicts[:len(ADAPTIVE)]] == [
        f"With L2, {o} leaves more dead filters than SGD" for o in ADAPTIVE]
    assert verdicts[0].claim.split()[2] == "adam"  # Adam first
    # Adam's is the paper's primary claim, the other adaptive methods' one secondary claim each
    assert [v.claim_id for v in verdicts] == ["adam-vs-sgd"] + ["other-adaptive-vs-sgd"] * (len(ADAPTIVE) - 1) + [
        "none-without-regularization", "l2-vs-none", "wd-vs-none", "l2-vs-wd", "wd-adam-vs-sgd"]
    assert all(v.claim_id in claims.BY_ID for v in verdicts)
    assert [v.status for v in verdicts] == [HOLDS] * len(verdicts)  # raw p 0.05: before the family
    for optimizer, verdict in zip(ADAPTIVE, verdicts):
        assert verdict.n == {f"{optimizer}+l2": 3, "sgd+l2": 3}
        assert verdict.p_value == pytest.approx(1 / 20) and verdict.p_min == pytest.approx(1 / 20)
        assert verdict.effect == pytest.approx(0.2)
    bound, l2_none, wd_none, l2_wd, wd = verdicts[len(ADAPTIVE):]
    assert bound.claim.startswith("Without regularization") and bound.p_value is None
    assert l2_none.n == {"adam+l2": 3, "adam+none": 3} and l2_none.effect == pytest.approx(0.21)  # 0.2 + 0.01 mean seed
    assert wd_none.n == {"adam+wd": 3, "adam+none": 3} and wd_none.effect == pytest.approx(0.06)
    assert l2_wd.n == {"adam+l2": 3, "adam+wd": 3} and l2_wd.effect == pytest.approx(0.15)
    assert len(bound.parts) == len(OPTIMIZERS) and bound.n == {"runs": 3 * len(OPTIMIZERS)}
    assert wd.n == {"adam+wd": 3, "sgd+wd": 3} and wd.p_value == pytest.approx(0.05)
    assert wd.effect == pytest.approx(0.05)


def test_reversed_optimizer_data_do_not_hold():
    verdicts = hypotheses.optimizer_regularizer(tables(optimizer_rows(0.0, 0.2, 0.1, 0.3, 0.2)))
    assert [v.status for v in verdicts] == [DOES_NOT_HOLD] * len(verdicts)
    tested = [v for v in verdicts if v.p_value is not None]
    assert len(tested) == len(verdicts) - 1  # all but the bound
    # the reversed test rejects at 1/20; the claim's own test has nothing: p = 1
    assert all(v.p_against == pytest.approx(0.05) and v.p_value == pytest.approx(1.0) for v in tested)
    assert verdicts[0].effect == pytest.approx(-0.2)


def test_optimizer_claims_without_wd_runs_or_with_only_some_optimizers_dying():
    without_wd = hypotheses.optimizer_regularizer(tables(optimizer_rows(0.2, 0.0, 0, 0, 0.0, wd=False)))
    assert [v.claim for v in without_wd[len(ADAPTIVE):]] == [
        "Without regularization no filters die, for every optimizer run without it",
        "With Adam, L2 leaves more dead filters than no regularization"]
    levels = {o: 0.0 for o in ADAPTIVE} | {"adam": 0.2, "rmsprop": 0.3}
    verdicts = hypotheses.optimizer_regularizer(tables(optimizer_rows(levels, 0.0, 0.05, 0.0, 0.0)))
    statuses = {v.claim.split()[2]: v.status for v in verdicts[:len(ADAPTIVE)]}
    assert statuses == {o: HOLDS if o in ("adam", "rmsprop") else INCONCLUSIVE for o in ADAPTIVE}
    # each arm's sd is 1 point over 3 seeds: Welch's half-width t(0.975, 4 df) x sqrt(2 x 0.01^2 / 3) = 2.3 points
    summary = hypotheses.adaptive_summary(verdicts).splitlines()
    assert summary[:2] == ["Each adaptive optimizer with L2 against SGD with L2 (Adam primary, the others described):", ""]
    assert summary[2:] == [f"- {o}: {statuses[o]}, difference from SGD+L2 " + {
        "adam": "20.0% [17.7%, 22.3%]", "rmsprop": "30.0% [27.7%, 32.3%]"}.get(o, "0.0% [-2.3%, 2.3%]") for o in ADAPTIVE]
    # a single optimizer without regularization that loses filters breaks the bound
    rows = optimizer_rows(0.2, 0.0, 0.05, 0.0, 0.0)
    for row in rows:
        if row["optimizer"] == "adagrad" and row["decay_mode"] == "none":
            row["dead_by_activation"] = 0.2
    bound = hypotheses.optimizer_regularizer(tables(rows))[len(ADAPTIVE)]
    assert bound.status == DOES_NOT_HOLD
    assert [p["status"] for p in bound.parts] == [DOES_NOT_HOLD if o == "adagrad" else HOLDS for o in sorted(OPTIMIZERS)]


def test_two_seeds_per_arm_leave_every_comparison_inconclusive():
    verdicts = hypotheses.optimizer_regularizer(tables(optimizer_rows(0.2, 0.0, 0.05, 0.0, 0.0, seeds=(0, 1))))
    adam, wd = verdicts[0], verdicts[-1]
    assert adam.status == INCONCLUSIVE and adam.p_value == pytest.approx(1 / 6) and wd.status == INCONCLUSIVE
    assert adam.p_min == pytest.approx(1 / 6)


def test_in_the_quick_family_three_seeds_cannot_decide_notebook_01s_primary_claims_and_five_can():
    """3 runs against 3 reach p = 1/20 at best, which cannot reach the quick family's level (0.05 / 10
    primary claims); 5 against 5 can (10/252 < 0.05). Only Adam+L2 against SGD+L2 and against Adam+WD
    are primary: the other comparisons are described, with their raw p-values, whatever the seeds."""
    primary = {"adam-vs-sgd", "l2-vs-wd"}
    three = in_family(hypotheses.optimizer_regularizer(tables(optimizer_rows(0.2, 0.0, 0.05, 0.0, 0.0))))
    tested = [v for v in three if v.p_value is not None]
    assert len(tested) == 10 and {v.claim_id for v in tested if v.role == PRIMARY} == primary
    for verdict in tested:
        assert verdict.p_value == pytest.approx(0.05)  # raw, kept
        if verdict.role == PRIMARY:
            assert verdict.p_adjusted == pytest.approx(0.5) and verdict.status == INCONCLUSIVE
            assert verdict.family == "Bonferroni over the 10 primary claims of the quick report"
        else:
            assert verdict.role == SECONDARY and verdict.status == DESCRIBED and verdict.p_adjusted is None
    bound = three[len(ADAPTIVE)]
    assert bound.role == PRIMARY and bound.status == HOLDS and bound.p_adjusted is None  # a bound: no p-value
    summary = hypotheses.adaptive_summary(three).splitlines()
    assert summary[2].startswith("- adam: inconclusive, ") and summary[3].startswith("- amsgrad: described, ")

    five = in_family(hypotheses.optimizer_regularizer(tables(optimizer_rows(0.2, 0.0, 0.05, 0.0, 0.0, seeds=FIVE_SEEDS))))
    tested = [v for v in five if v.p_value is not None]
    assert all(v.p_value == pytest.approx(1 / 252) for v in tested[:-1])
    # the null is shifted: Adam+WD minus 1 point (4% at seed 0) ties SGD+WD at seed 4 once, so 2 relabellings of 252
    assert tested[-1].claim_id == "wd-adam-vs-sgd" and tested[-1].p_value == pytest.approx(2 / 252)
    assert [v.p_adjusted for v in tested if v.role == PRIMARY] == pytest.approx([10 / 252, 10 / 252])
    assert {v.claim_id: v.status for v in five if v.role == PRIMARY} == {
        "adam-vs-sgd": HOLDS, "l2-vs-wd": HOLDS, "none-without-regularization": HOLDS}
    assert {v.status for v in five if v.role == SECONDARY} == {DESCRIBED}


def test_the_long_runs_of_notebook_01_decide_its_primary_claims_in_the_long_family():
    """The long report's notebook 01: the four headline arms with 5 seeds, the other adaptive methods
    with L2 with 3 (shown, not tested against SGD), no SGD+WD. Its two primary claims each reach
    1/252, below the long family's level 0.05 / 7; its secondary claims are described."""
    rows = [row for row in optimizer_rows(0.2, 0.0, 0.05, 0.0, 0.0, seeds=FIVE_SEEDS)
            if (row["optimizer"], row["decay_mode"]) in hypotheses.HEADLINE
            or (row["decay_mode"] == "l2" and row["seed"] < 3)]
    verdicts = in_family(hypotheses.optimizer_regularizer(tables(rows), compared_to_sgd=["adam"]), "long")
    assert [v.claim_id for v in verdicts] == ["adam-vs-sgd", "none-without-regularization", "l2-vs-none", "wd-vs-none",
                                             "l2-vs-wd"]
    assert [v.claim for v in verdicts] == [
        "With L2, adam leaves more dead filters than SGD",
        "Without regularization no filters die, for every optimizer run without it",
        "With Adam, L2 leaves more dead filters than no regularization",
        "With Adam, the paper's weight decay also leaves dead filters (more than no regularization)",
        "With Adam, L2 leaves more dead filters than the paper's weight decay (same lambda)"]
    assert all(v.p_value == pytest.approx(1 / 252) for v in verdicts if v.p_value is not None)
    adam, bound, l2_none, wd_none, l2_wd = verdicts
    assert adam.p_adjusted == pytest.approx(7 / 252) and l2_wd.p_adjusted == pytest.approx(7 / 252)
    assert (adam.status, l2_wd.status, bound.status) == (HOLDS, HOLDS, HOLDS) and bound.p_adjusted is None
    assert (l2_none.status, wd_none.status) == (DESCRIBED, DESCRIBED) and l2_none.p_adjusted is None
    assert "7 primary claims of the long report" in adam.family
    # the same runs with every adaptive method compared: 3 against 5 (1/56 at best), described all the same
    everything = in_family(hypotheses.optimizer_regularizer(tables(rows)), "long")
    amsgrad = next(v for v in everything if v.claim == "With L2, amsgrad leaves more dead filters than SGD")
    assert amsgrad.p_min == pytest.approx(1 / 56) and amsgrad.p_value == pytest.approx(1 / 56)
    assert amsgrad.status == DESCRIBED and amsgrad.p_adjusted is None


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def planned_designs(preset):
    """The primary claims' designs that the preset's report plan gives, notebook by notebook (the
    plan's parameters over each notebook's defaults), built as the notebooks build them."""
    designs = []
    for name, overrides in REPORTS[preset].items():
        p = {**notebook_defaults(name, NOTEBOOKS), **overrides}
        seeds = len(p["seeds"])
        designs += {
            "01_optimizer_regularizer": lambda: hypotheses.optimizer_designs(
                p["seeds"], p["optimizers"], p["unregularized"], p["weight_decay"], p["other_seeds"]),
            "02_where_sparsity_lives": lambda: [claims.two_arm("more-selective", seeds, seeds)],
            "03_batchnorm_dynamics": lambda: [claims.two_arm("gamma-decays-faster", seeds, seeds)],
            "08_mechanism": lambda: hypotheses.mechanism_designs(p["seeds"], p["baseline_seeds"], p["variants"]),
            "04_regularization_and_lr": lambda: [claims.trend_runs("stronger-regularization",
                                                                   [seeds] * (len(p["decays"]) + 1))],
            "05_batch_size": lambda: [claims.trend_runs("smaller-batch", [seeds] * len(p["batch_sizes"]))],
            "06_task_difficulty": lambda: [claims.trend_runs("fewer-classes", [seeds] * len(p["class_counts"]))],
            "09_pruning": lambda: [claims.two_arm("at-par", seeds, seeds)],
            "10_training_length": lambda: [],  # described: no primary claim
            "12_recycling": lambda: [],
            "07_capacity_architecture": lambda: [],  # described: no primary claim
            "11_resnets": lambda: [],
            "13_precision": lambda: hypotheses.precision_designs(p["seeds"]),
        }[name]()
    return designs


def test_the_long_report_plan_designs_every_primary_claim_to_reach_its_level():
    designs = planned_designs("long")
    # every primary claim of the long family is designed by its notebook, and the bound without regularization
    assert {d.claim_id for d in designs} == ({c.id for c in claims.family("long")}
                                             | {"none-without-regularization", "bf16-equivalent"})
    assert claims.design_problems("long", designs) == []
    by_id = {d.claim_id: d for d in designs}
    assert by_id["adam-vs-sgd"].p_min == pytest.approx(1 / 252) and by_id["l2-vs-wd"].runs == "5 vs 5 runs"
    assert by_id["early-selectivity-predicts-death"].p_min == pytest.approx(1 / 256)  # 8 baseline runs
    assert by_id["bn-decay-needed"].runs == "8 vs 5 runs" and by_id["none-without-regularization"].p_min == 0.0
    assert by_id["bf16-equivalent"].p_min == pytest.approx(1 / 256)  # 8 seeds paired: the check's level is 0.05


def test_the_usual_report_plan_so_far_designs_its_primary_claims_to_reach_their_level_with_adamw_beside():
    designs = planned_designs("usual")
    assert {d.claim_id for d in designs} == ({c.id for c in claims.family("usual")}
                                             | {"none-without-regularization", "bf16-equivalent"})
    assert claims.design_problems("usual", designs) == []
    assert REPORTS["usual"]["01_optimizer_regularizer"]["decoupled"] == ["adamw"]


def test_notebook_01s_designs_are_refused_with_three_seeds_or_a_bound_on_fewer_than_three_runs():
    designs = hypotheses.optimizer_designs([0, 1, 2], ["sgd", "adam", "rmsprop"], None, ["adam"], [0, 1])
    assert [d.claim_id for d in designs] == ["adam-vs-sgd", "l2-vs-wd", "none-without-regularization"]
    problems = claims.design_problems("long", designs)
    assert len(problems) == 3
    assert "not testable with 3 vs 3 runs (smallest p 0.05)" in problems[0] and problems[0].endswith("needs 5 vs 5 runs")
    # rmsprop without regularization has only the 2 other seeds: the bound on it says nothing
    assert "is a bound: with 2 runs in a group" in problems[2] and problems[2].endswith("at least 3 runs in every group")
    # without SGD, or without Adam+WD, there is no such comparison to design
    assert [d.claim_id for d in hypotheses.optimizer_designs([0], ["adam"], [], ["adam"], [0])] == ["l2-vs-wd"]
    assert [d.claim_id for d in hypotheses.optimizer_designs([0], ["adam", "sgd"], ["adam"], [], [0])] == [
        "adam-vs-sgd", "none-without-regularization"]


class FakeExperiment:
    seeds = [0, 1, 2, 3, 4]

    def grid(self, seeds=None, **vary):
        (optimizer,), (mode,) = vary["optimizer"], vary["decay_mode"]
        return [(optimizer, mode, seed) for seed in (self.seeds if seeds is None else seeds)]


def test_optimizer_grid_gives_the_headline_arms_the_notebooks_seeds():
    grid = hypotheses.optimizer_grid(FakeExperiment(), ["sgd", "adam", "adagrad"], compared_seeds=[0, 1, 2],
                                     other_seeds=[7], unregularized=["adam", "sgd"], weight_decay=None)
    seeds = {}
    for optimizer, mode, seed in grid:
        seeds.setdefault(f"{optimizer}+{mode}", []).append(seed)
    assert seeds == {"adam+l2": [0, 1, 2, 3, 4], "sgd+l2": [0, 1, 2, 3, 4], "adam+none": [0, 1, 2, 3, 4],
                     "adam+wd": [0, 1, 2, 3, 4], "adagrad+l2": [0, 1, 2], "sgd+wd": [0, 1, 2],
                     "sgd+none": [7], "adagrad+wd": [7]}
    assert len(grid) == len(set(grid))


def test_adamw_runs_with_its_own_decoupled_decay_and_the_headline_seeds(tmp_path):
    exp = start("01_optimizer_regularizer", preset="usual", seeds=[0, 1, 2, 3, 4], runs_dir=str(tmp_path),
                figures_dir=str(tmp_path / "figures"))
    grid = hypotheses.optimizer_grid(exp, ["sgd", "adam"], [0, 1, 2], [0, 1, 2], ["adam"], ["adam"], ["adamw"])
    adamw = [c for c in grid if c.optimizer == "adamw"]
    assert [(c.decay_mode, c.decay, c.seed) for c in adamw] == [("decoupled", 0.01, s) for s in range(5)]
    assert adamw[0].run_id == exp.config(optimizer="adamw").run_id  # what a user asking for adamw gets
    assert len(grid) == 25


# --- 2. where sparsity lives ------------------------------------------------------------------------


def selectivity_tables(adam, sgd, seeds=SEEDS, weak=None):
    """Adam+L2 and SGD+L2 runs, each with two healthy live filters at ``level +- 0.05`` (|gamma| 1 and
    0.8), a dead one at selectivity 1 (dead filters must not count) and, for the optimizers in
    ``weak``, a live filter at that selectivity with |gamma| 0.05 (not healthy: healthy is above it);
    every live selectivity +0.001 per seed."""
    rows, filters = [], []
    for seed in seeds:
        for optimizer, level in (("adam", adam), ("sgd", sgd)):
            run_id = f"r{len(rows)}"
            rows.append({"optimizer": optimizer, "decay_mode": "l2", "seed": seed})
            live = [(level - 0.05, 1.0), (level + 0.05, -0.8)] + (
                [(weak[optimizer], 0.05)] if weak and optimizer in weak else [])
            for selectivity, gamma in live:
                filters.append({"run_id": run_id, "dead_by_activation": False, "selectivity": selectivity + 0.001 * seed,
                                "gamma": gamma})
            filters.append({"run_id": run_id, "dead_by_activation": True, "selectivity": 1.0, "gamma": 1e-4})
    return tables(rows, pd.DataFrame(filters))


def test_where_sparsity_lives_compares_live_filters_selectivity():
    verdict, healthy = hypotheses.where_sparsity_lives(selectivity_tables(0.6, 0.4))
    assert verdict.claim_id == "more-selective" and healthy.claim_id == "more-selective-healthy"
    assert verdict.status == HOLDS and verdict.p_value == pytest.approx(0.05)
    assert verdict.values["adam+l2"] == pytest.approx([0.6, 0.601, 0.602])  # the dead filter at 1.0 left out
    assert verdict.effect == pytest.approx(0.2) and verdict.min_effect == hypotheses.MIN_SELECTIVITY_EFFECT == 0.01
    assert healthy.values == verdict.values  # every live filter here is healthy
    reversed_, _ = hypotheses.where_sparsity_lives(selectivity_tables(0.4, 0.6))
    assert reversed_.status == DOES_NOT_HOLD and reversed_.p_against == pytest.approx(0.05)
    assert reversed_.p_value == pytest.approx(1.0)
    # separated, but half a point of selectivity is below the minimum effect: with the null shifted by it,
    # Adam - 1 point lies below every SGD run and Adam + 1 point above: neither direction has any evidence
    tiny, _ = hypotheses.where_sparsity_lives(selectivity_tables(0.405, 0.4))
    assert tiny.effect == pytest.approx(0.005) and tiny.status == INCONCLUSIVE
    assert tiny.p_value == pytest.approx(1.0) and tiny.p_against == pytest.approx(1.0)


def test_healthy_filters_leave_out_the_live_ones_near_death():
    """Adam's extra selectivity here is all in one live filter per run at |gamma| 0.05, selective
    because it is dying: the live filters' verdict holds, the healthy filters' finds no difference."""
    assert hypotheses.HEALTHY_GAMMA == 0.05
    live, healthy = hypotheses.where_sparsity_lives(selectivity_tables(0.4, 0.4, weak={"adam": 0.97}))
    assert live.values["adam+l2"] == pytest.approx([0.59, 0.591, 0.592])  # (0.35 + 0.45 + 0.97) / 3
    assert live.status == HOLDS and live.effect == pytest.approx(0.19)
    assert healthy.values == {"adam+l2": pytest.approx([0.4, 0.401, 0.402]), "sgd+l2": pytest.approx([0.4, 0.401, 0.402])}
    assert healthy.effect == pytest.approx(0.0) and healthy.status == INCONCLUSIVE
    assert healthy.claim.startswith("Adam+L2's healthy filters (|gamma| > 0.05) are more selective")
    # the healthy verdict is secondary: described in the report's family, the live filters' decided
    live, healthy = in_family([live, healthy])
    assert (live.role, healthy.role, healthy.status) == (PRIMARY, SECONDARY, DESCRIBED)


def test_runs_without_healthy_filters_are_left_out_and_cannot_make_the_healthy_claim_hold():
    no_gamma = selectivity_tables(0.6, 0.4)
    no_gamma.filters["gamma"] = NAN  # no |gamma| recorded: no filter is known to be healthy
    live, healthy = hypotheses.where_sparsity_lives(no_gamma)
    assert live.status == HOLDS
    assert healthy.status == INCONCLUSIVE and healthy.p_value is None and "left out, without a value" in healthy.evidence


# --- 3. BatchNorm parameters and dynamics -----------------------------------------------------------


def test_dead_beta_description_is_one_line_per_run_with_counts():
    rows = [{"optimizer": "adam", "decay_mode": "l2", "seed": 0}, {"optimizer": "sgd", "decay_mode": "l2", "seed": 1},
            {"optimizer": "adam", "decay_mode": "none", "seed": 2}]
    filters = pd.DataFrame({
        "run_id": ["r0"] * 5 + ["r1"] * 2 + ["r2"] * 2,
        "dead_by_activation": [True, True, True, False, False, False, False, True, False],
        "gamma": [1e-4, -2e-4, 3e-4, 0.9, -1.1, 0.8, 1.0, NAN, NAN],  # r2 has no BatchNorm
        "beta": [-0.2, -0.1, 0.3, 0.1, 0.2, 0.1, 0.1, NAN, NAN],
    })
    text = hypotheses.dead_beta_description(tables(rows, filters))
    assert text == ("- adam+l2, seed 0: 2 of 3 dead filters at beta <= 0; median |gamma| dead 0.0002, alive 1\n"
                    "- sgd+l2, seed 1: no dead filters")
    assert not isinstance(text, list)  # a description, not a verdict
    no_bn = filters[filters["run_id"] == "r2"]
    assert hypotheses.dead_beta_description(tables(rows, no_bn)) == "No completed runs with BatchNorm."


def snapshot(epoch, selectivity, gamma=None):
    row = {"epoch": epoch, "dead_per_layer": [0], "gamma_quantiles": [[1, 1, 1, 1, 1]], "filter_selectivity": selectivity}
    if gamma is not None:
        row["filter_gamma"] = gamma
    return row


def gamma_record(run_id, optimizer, decay_mode, seed, factor, epochs=4, filters=3, with_gamma=True):
    """|gamma| of filter f at epoch e: (factor + 0.001 seed)^e x (1 - 0.01 f)."""
    rate = factor + 0.001 * seed
    history = [snapshot(e, [0.5] * filters, [rate ** e * (1 - 0.01 * f) for f in range(filters)] if with_gamma else None)
               for e in range(1, epochs + 1)]
    return {"run_id": run_id, "status": "completed",
            "config": {"optimizer": optimizer, "decay_mode": decay_mode, "seed": seed, "epochs": epochs},
            "metrics": {}, "layers": [],
            "filters": [{"layer": "C1", "filter": f, "dead_by_activation": False} for f in range(filters)],
            "history": history}


def gamma_tables(adam_l2, others, seeds=SEEDS, with_gamma=True):
    records = []
    for seed in seeds:
        for optimizer, mode, factor in (("adam", "l2", adam_l2), ("adam", "wd", others), ("sgd", "l2", others)):
            records.append(gamma_record(f"{optimizer}-{mode}-{seed}", optimizer, mode, seed, factor,
                                        with_gamma=with_gamma))
    return tables_from_records(records)


def test_gamma_halving_reads_the_per_epoch_gammas():
    record = gamma_record("a", "adam", "l2", 0, 1.0)
    gammas = {1: [0.9, 0.4, 1.0], 2: [0.6, 0.2, 0.9], 3: [0.5, 0.1, 0.8], 4: [0.3, 0.05, 0.7]}
    record["history"] = [snapshot(e, [0.5] * 3, gammas[e]) for e in range(1, 5)]
    (row,) = hypotheses.gamma_halving(tables_from_records([record])).to_dict("records")
    # filter 0 halves at epoch 3 (|gamma| <= 0.5 counts), filter 1 at 1, filter 2 never: censored at epochs + 1
    assert row["halved"] == pytest.approx(2 / 3) and row["median_halving_epoch"] == 3.0
    assert row["gamma_log_decay_per_epoch"] == pytest.approx(np.mean(-np.log([0.3, 0.05, 0.7])) / 4)
    assert (row["optimizer"], row["decay_mode"], row["seed"], row["epochs"]) == ("adam", "l2", 0, 4)


def test_gamma_halving_summarizes_the_log_decay_rates_by_the_mean_the_median_and_the_survivors_mean():
    """Four filters; filter 1 ends dead (by activation, from the final measurement) at |gamma| 1e-4.
    Each filter's rate is ln(1/|gamma|) at the end / 4 epochs: ln 2, 4 ln 10, ln 4 and ln 1.25, / 4."""
    record = gamma_record("a", "adam", "l2", 0, 1.0, filters=4)
    record["history"][-1]["filter_gamma"] = [0.5, 1e-4, -0.25, 0.8]  # |gamma| counts
    record["filters"][1]["dead_by_activation"] = True
    (row,) = hypotheses.gamma_halving(tables_from_records([record])).to_dict("records")
    ln2, ln10, ln125 = math.log(2), math.log(10), math.log(1.25)
    # the mean over all filters is dominated by the one dead filter
    assert row["gamma_log_decay_per_epoch"] == pytest.approx((ln2 + 4 * ln10 + 2 * ln2 + ln125) / 4 / 4)
    # the median: the typical filter, halfway between ln 2 and ln 4
    assert row["median_log_decay_per_epoch"] == pytest.approx(1.5 * ln2 / 4)
    # the survivors' mean: filters 0, 2 and 3
    assert row["survivors_log_decay_per_epoch"] == pytest.approx((ln2 + 2 * ln2 + ln125) / 3 / 4)
    # a run where every filter ends dead has no survivors' rate
    for f in record["filters"]:
        f["dead_by_activation"] = True
    (row,) = hypotheses.gamma_halving(tables_from_records([record])).to_dict("records")
    assert math.isnan(row["survivors_log_decay_per_epoch"])
    assert row["median_log_decay_per_epoch"] == pytest.approx(1.5 * ln2 / 4)


def test_gamma_decays_faster_with_adam_l2():
    speed = hypotheses.gamma_halving(gamma_tables(0.5, 0.95))
    fast = speed[(speed["optimizer"] == "adam") & (speed["decay_mode"] == "l2")]
    assert (fast["halved"] == 1.0).all() and (fast["median_halving_epoch"] == 1.0).all()
    slow = speed[speed["decay_mode"] == "wd"]
    assert (slow["halved"] == 0.0).all() and (slow["median_halving_epoch"] == 5.0).all()
    typical, survivors = hypotheses.batchnorm_dynamics(gamma_tables(0.5, 0.95))
    assert (typical.claim_id, survivors.claim_id) == ("gamma-decays-faster", "gamma-decays-faster-survivors")
    assert "the median over all filters" in typical.evidence
    assert "the mean over the filters alive at the end" in survivors.evidence
    for verdict in (typical, survivors):  # every filter survives here: the two differ only in the summary
        assert verdict.status == HOLDS and verdict.p_value == pytest.approx(0.05) and len(verdict.parts) == 2
        assert [p["status"] for p in verdict.parts] == [HOLDS, HOLDS]
        assert verdict.parts[0]["n"] == {"adam+l2": 3, "adam+wd": 3}
        assert verdict.parts[1]["n"] == {"adam+l2": 3, "sgd+l2": 3}
        # ln(1/0.5) - ln(1/0.95) per epoch: the filters' common factor (1 - 0.01 f) cancels
        assert verdict.parts[0]["effect"] == pytest.approx(np.log(0.951 / 0.501), abs=1e-3)


def test_gamma_decaying_slower_with_adam_l2_does_not_hold():
    five, _ = hypotheses.batchnorm_dynamics(gamma_tables(0.95, 0.5, seeds=FIVE_SEEDS))
    # both parts reversed: the largest of their reversed p-values
    assert five.status == DOES_NOT_HOLD and five.p_against == pytest.approx(1 / 252)
    assert five.p_value == pytest.approx(1.0)
    assert in_family([five])[0].status == DOES_NOT_HOLD  # 10/252 in the quick family
    # with 3 runs an arm the reversal reaches p = 0.05: enough at the raw level, not in the quick family (0.5)
    three, _ = hypotheses.batchnorm_dynamics(gamma_tables(0.95, 0.5))
    assert three.status == DOES_NOT_HOLD and three.p_against == pytest.approx(0.05)
    (three,) = in_family([three])
    assert three.status == INCONCLUSIVE and three.p_against_adjusted == pytest.approx(0.5)


def test_the_decay_rate_floor_is_one_percent_of_gamma_over_the_runs_epochs():
    assert hypotheses.min_decay_rate_effect(8) == pytest.approx(math.log(1 / 0.99) / 8, rel=1e-15)
    assert hypotheses.min_decay_rate_effect(80) == pytest.approx(hypotheses.min_decay_rate_effect(8) / 10)
    for verdict in hypotheses.batchnorm_dynamics(gamma_tables(0.5, 0.95)):  # 4-epoch runs
        assert [part["min_effect"] for part in verdict.parts] == [pytest.approx(math.log(1 / 0.99) / 4)] * 2


def test_arm_facts_give_each_arms_runs_learning_rate_and_mean_min_max_of_each_fraction():
    rows = [{"optimizer": "rmsprop", "decay_mode": "l2", "lr": 0.01, "seed": seed, "dead_by_activation": dead,
             "dead_by_gamma": dead / 2, "test_error": 0.1 + seed / 100} for seed, dead in enumerate([0.75, 0.8, 0.85])]
    rows.append({"optimizer": "adam", "decay_mode": "none", "lr": 0.001, "seed": 0, "dead_by_activation": 0.0,
                 "dead_by_gamma": 0.0, "test_error": 0.12})
    runs = tables(rows).runs
    runs.loc[3, "status"] = "failed"  # a failed run is not an arm's run
    runs.loc[4] = {**rows[0], "run_id": "r4", "status": "completed", "seed": 3, "dead_by_activation": 0.8}
    facts = hypotheses.arm_facts(runs)
    assert list(facts) == ["rmsprop+l2"]
    rmsprop = facts["rmsprop+l2"]
    assert rmsprop["runs"] == 4 and rmsprop["lr"] == [0.01]
    assert rmsprop["dead_by_activation"] == {"mean": pytest.approx(0.8), "min": 0.75, "max": 0.85}
    assert rmsprop["dead_by_gamma"]["max"] == 0.425 and rmsprop["test_error"]["min"] == pytest.approx(0.1)
    json.dumps(facts)  # the verdict file can hold it
    assert hypotheses.arm_facts(runs.iloc[:0]) == {}  # no runs


def test_criteria_agreement_counts_each_criterion_per_layer_and_their_jaccard_index():
    rows = [{"optimizer": "adam", "decay_mode": "l2", "seed": 0}, {"optimizer": "sgd", "decay_mode": "l2", "seed": 0}]
    filters = pd.DataFrame({
        "run_id": ["r0"] * 6 + ["r1"] * 2,
        "layer": ["C1", "C1", "C1", "C2", "C2", "C2", "C1", "C1"],
        "measured": [True, True, True, True, True, False, True, True],  # r0's last C2 filter: gamma criterion only
        "dead_by_activation": [True, True, False, True, False, False, False, False],
        "dead_by_gamma": [True, False, False, False, True, True, False, False],
    })
    agreement = hypotheses.criteria_agreement(tables(rows, filters)).set_index(["run_id", "layer"])
    c1 = agreement.loc[("r0", "C1")]
    assert (c1["filters"], c1["dead_by_activation"], c1["dead_by_gamma"], c1["dead_by_both"]) == (3, 2, 1, 1)
    assert c1["jaccard"] == 0.5
    c2 = agreement.loc[("r0", "C2")]
    assert (c2["filters"], c2["dead_by_both"], c2["dead_by_either"], c2["jaccard"]) == (2, 0, 2, 0.0)
    assert math.isnan(agreement.loc[("r1", "C1"), "jaccard"])  # neither criterion finds a dead filter
    text = hypotheses.criteria_description(hypotheses.criteria_agreement(tables(rows, filters)))
    assert text == ("adam+l2, per run, dead by activation vs by |gamma| < 0.001: 60.0% vs 40.0% (Jaccard 0.25). "
                    "sgd+l2, per run, dead by activation vs by |gamma| < 0.001: 0.0% vs 0.0% (none dead)")
    facts = hypotheses.criteria_facts(hypotheses.criteria_agreement(tables(rows, filters)))
    assert facts["adam+l2"] == {"runs": 1, "filters": 5, "dead_by_activation": 3, "dead_by_gamma": 2, "dead_by_both": 1,
                                "jaccard": 0.25, "jaccard_per_layer": {"C1": 0.5, "C2": 0.0},
                                "jaccard_runs": {"per_run": [0.25], "runs": 1, "mean": 0.25, "sd": 0.0, "min": 0.25,
                                                 "max": 0.25}}
    assert facts["sgd+l2"]["jaccard"] is None and facts["sgd+l2"]["jaccard_per_layer"] == {"C1": None}
    assert facts["sgd+l2"]["jaccard_runs"] == {"per_run": [None], "runs": 0, "mean": None, "sd": None, "min": None,
                                               "max": None}
    json.dumps(facts)  # the verdict file can hold it
    assert hypotheses.criteria_facts(pd.DataFrame()) == {}  # no per-filter measurements


def test_layer_facts_give_each_layers_and_the_totals_dead_fraction_over_runs():
    base = tables([{"optimizer": "adam", "decay_mode": "l2", "seed": s} for s in (0, 1)])
    layers = pd.DataFrame({"run_id": ["r0", "r0", "r1", "r1"], "layer": ["C1", "C2"] * 2, "filters": [4, 12] * 2,
                           "dead_by_activation": [1, 3, 0, 6], "dead_by_gamma": [0, 3, 0, 6]})
    facts = hypotheses.layer_facts(RunTables(base.runs, layers, *[pd.DataFrame()] * 3, records=[]))["adam+l2"]
    assert list(facts) == ["C1", "C2", "total"]
    assert facts["C2"]["filters"] == 12 and facts["C2"]["dead_by_activation"]["mean"] == pytest.approx(0.375)
    assert facts["C2"]["dead_by_activation"]["min"] == 0.25 and facts["C2"]["dead_by_activation"]["max"] == 0.5
    half = stats.t.ppf(0.975, 1) * np.std([0.25, 0.5], ddof=1) / math.sqrt(2)
    assert facts["C2"]["dead_by_activation"]["ci"] == pytest.approx([0.375 - half, 0.375 + half])
    total = facts["total"]  # per run: 4 of 16 and 6 of 16 by activation, 3 and 6 by |gamma|
    assert (total["runs"], total["filters"]) == (2, 16)
    assert total["dead_by_activation"]["mean"] == pytest.approx(0.3125) and total["dead_by_activation"]["max"] == 0.375
    assert total["dead_by_gamma"]["mean"] == pytest.approx(0.28125) and total["dead_by_gamma"]["min"] == 0.1875
    json.dumps(facts)


def test_criteria_facts_give_the_jaccard_index_run_by_run_with_its_spread():
    rows = [{"optimizer": "adam", "decay_mode": "l2", "seed": s} for s in (0, 1, 2)]
    filters = pd.DataFrame({  # per run, 4 filters of one layer: r0 agrees on 1 of 2, r1 on 1 of 1, r2 finds none
        "run_id": ["r0"] * 4 + ["r1"] * 4 + ["r2"] * 4, "layer": "C1", "measured": True,
        "dead_by_activation": [True, True, False, False, True, False, False, False, False, False, False, False],
        "dead_by_gamma": [True, False, False, False, True, False, False, False, False, False, False, False]})
    facts = hypotheses.criteria_facts(hypotheses.criteria_agreement(tables(rows, filters)))["adam+l2"]
    assert facts["jaccard"] == round(2 / 3, 4)  # the runs pooled: 2 found by both of 3 found by either
    assert facts["jaccard_runs"] == {"per_run": [0.5, 1.0, None], "runs": 2, "mean": 0.75,
                                     "sd": pytest.approx(math.sqrt(0.125)), "min": 0.5, "max": 1.0}


def test_spread_summarizes_per_run_values_and_keeps_the_undefined_ones():
    assert hypotheses.spread([0.2, None, 0.4, NAN]) == {
        "per_run": [0.2, None, 0.4, pytest.approx(NAN, nan_ok=True)], "runs": 2, "mean": pytest.approx(0.3),
        "sd": pytest.approx(math.sqrt(0.02)), "min": 0.2, "max": 0.4}  # sd over runs (n - 1)
    assert hypotheses.spread([3]) == {"per_run": [3], "runs": 1, "mean": 3.0, "sd": 0.0, "min": 3.0, "max": 3.0}
    assert hypotheses.spread([None]) == {"per_run": [None], "runs": 0, "mean": None, "sd": None, "min": None, "max": None}
    json.dumps(hypotheses.spread([0.2, None]))  # a verdict file can hold it


def test_runs_without_per_epoch_gamma_are_inconclusive():
    old = gamma_tables(0.5, 0.95, with_gamma=False)
    assert hypotheses.gamma_halving(old).empty
    verdicts = hypotheses.batchnorm_dynamics(old)
    assert [v.claim_id for v in verdicts] == ["gamma-decays-faster", "gamma-decays-faster-survivors"]
    for verdict in verdicts:
        assert verdict.status == INCONCLUSIVE and verdict.p_value is None and "no per-epoch |gamma|" in verdict.evidence


# --- 4, 5. regularization strength, learning rate, batch size ---------------------------------------


LAMBDAS = (1e-4, 5e-4, 2e-3, 1e-2)


def sweep_rows(dead, error, none_dead=0.0, none_error=0.10, none=True):
    """Adam with L2 and WD at four lambdas (``dead[mode][i]``, ``error[mode][i]``), and without
    regularization (its config keeps the preset's unused decay, 5e-4); three seeds each, the values
    +0.001 per seed (mean: +0.001)."""
    rows = []
    for seed in SEEDS:
        for mode in ("l2", "wd"):
            for decay, d, e in zip(LAMBDAS, dead[mode], error[mode]):
                rows.append({"optimizer": "adam", "decay_mode": mode, "decay": decay, "seed": seed,
                             "dead_by_activation": d + 0.001 * seed, "test_error": e + 0.001 * seed})
        if none:
            rows.append({"optimizer": "adam", "decay_mode": "none", "decay": 5e-4, "seed": seed,
                         "dead_by_activation": none_dead, "test_error": none_error + 0.001 * seed})
    return rows


# mean test error of no regularization 0.101, budget 0.121: L2 eligible at 1e-4 and 2e-3 (not 5e-4),
# WD at 1e-4 and 5e-4 (its 2e-3 kills more filters but costs 3 points)
L2_ERROR = [0.10, 0.15, 0.115, 0.20]
WD_ERROR = [0.10, 0.105, 0.13, 0.14]


def test_lambda_zero_comes_from_the_runs_without_regularization():
    rows = sweep_rows({"l2": [0.1] * 4, "wd": [0.1] * 4}, {"l2": L2_ERROR, "wd": WD_ERROR})
    runs = tables(rows).runs
    runs.loc[len(runs)] = {**rows[0], "run_id": "failed", "status": "failed"}
    zero = hypotheses.with_lambda_zero(runs)
    assert "failed" not in set(zero["run_id"])
    assert (zero.loc[zero["decay_mode"] == "none", "decay"] == 0.0).all()
    assert sorted(zero.loc[zero["decay_mode"] != "none", "decay"].unique()) == list(LAMBDAS)
    errors = hypotheses.error_by_decay(runs, "adam", "l2")
    assert list(errors.index) == [0.0, *LAMBDAS] and errors.loc[0.0] == pytest.approx(0.101)


def test_budget_lambda_is_the_strongest_within_two_points_chosen_by_error_alone():
    runs = tables(sweep_rows({"l2": [0.1, 0.2, 0.4, 0.6], "wd": [0.0, 0.05, 0.3, 0.5]},
                             {"l2": L2_ERROR, "wd": WD_ERROR})).runs
    assert hypotheses.ERROR_BUDGET == 0.02
    assert hypotheses.budget_decay(runs, "adam", "l2") == 2e-3  # 5e-4 is out of budget, 2e-3 back in
    assert hypotheses.budget_decay(runs, "adam", "wd") == 5e-4  # not 2e-3, where more filters die
    # the dead fractions do not enter the choice
    other = tables(sweep_rows({"l2": [0.9, 0.0, 0.0, 0.0], "wd": [0.0, 0.0, 0.9, 0.9]},
                              {"l2": L2_ERROR, "wd": WD_ERROR})).runs
    assert hypotheses.budget_decay(other, "adam", "l2") == 2e-3 and hypotheses.budget_decay(other, "adam", "wd") == 5e-4
    assert hypotheses.budget_decay(runs, "adam", "l2", budget=0.005) == 1e-4
    # no lambda within the budget, or no lambda 0 to measure it from
    assert hypotheses.budget_decay(tables(sweep_rows({"l2": [0.1] * 4, "wd": [0.1] * 4}, {"l2": [0.2] * 4, "wd": [0.2] * 4})).runs,
                                   "adam", "wd") is None
    assert hypotheses.budget_decay(tables(sweep_rows({"l2": [0.1] * 4, "wd": [0.1] * 4}, {"l2": L2_ERROR, "wd": WD_ERROR},
                                                     none=False)).runs, "adam", "l2") is None


def test_regularization_strength_compares_l2_and_wd_at_their_budget_lambdas():
    rows = sweep_rows({"l2": [0.1, 0.2, 0.4, 0.6], "wd": [0.0, 0.05, 0.3, 0.5]}, {"l2": L2_ERROR, "wd": WD_ERROR})
    l2_trend, wd_trend, l2_vs_wd, wd_vs_none = hypotheses.regularization_strength(tables(rows))
    assert l2_trend.status == HOLDS and wd_trend.status == HOLDS
    assert set(l2_trend.n) == {"decay=0", "decay=0.0001", "decay=0.0005", "decay=0.002", "decay=0.01"}  # lambda 0 in
    assert l2_vs_wd.status == HOLDS and l2_vs_wd.n == {"adam+l2 at 0.002": 3, "adam+wd at 0.0005": 3}
    assert l2_vs_wd.p_value == pytest.approx(0.05) and l2_vs_wd.effect == pytest.approx(0.35)
    assert wd_vs_none.status == HOLDS and wd_vs_none.n == {"adam+wd at 0.0005": 3, "adam+none": 3}
    assert wd_vs_none.p_value == pytest.approx(0.05) and wd_vs_none.effect == pytest.approx(0.051)


def test_regularization_strength_does_not_hold_when_the_budget_lambdas_say_otherwise():
    # L2's 1e-2 kills 60% but is out of budget; at its budget lambda L2 kills fewer than WD at its own
    rows = sweep_rows({"l2": [0.01, 0.02, 0.03, 0.6], "wd": [0.0, 0.3, 0.4, 0.5]}, {"l2": L2_ERROR, "wd": WD_ERROR})
    *_, l2_vs_wd, wd_vs_none = hypotheses.regularization_strength(tables(rows))
    assert l2_vs_wd.status == DOES_NOT_HOLD and l2_vs_wd.p_against == pytest.approx(0.05)
    assert l2_vs_wd.effect == pytest.approx(0.03 - 0.3) and wd_vs_none.status == HOLDS
    # WD at its budget lambda leaves fewer dead filters than no regularization
    rows = sweep_rows({"l2": [0.1, 0.2, 0.4, 0.6], "wd": [0.0, 0.0, 0.3, 0.5]}, {"l2": L2_ERROR, "wd": WD_ERROR},
                      none_dead=0.2)
    *_, wd_vs_none = hypotheses.regularization_strength(tables(rows))
    assert wd_vs_none.status == DOES_NOT_HOLD and wd_vs_none.p_against == pytest.approx(0.05)


def test_regularization_strength_without_a_budget_lambda_is_inconclusive():
    rows = sweep_rows({"l2": [0.1, 0.2, 0.4, 0.6], "wd": [0.0, 0.05, 0.3, 0.5]}, {"l2": L2_ERROR, "wd": [0.2] * 4})
    *_, l2_vs_wd, wd_vs_none = hypotheses.regularization_strength(tables(rows))
    assert l2_vs_wd.status == INCONCLUSIVE and l2_vs_wd.p_value is None and "chosen" in l2_vs_wd.evidence
    assert "'wd': None" in l2_vs_wd.evidence and "'l2': 0.002" in l2_vs_wd.evidence
    assert wd_vs_none.status == INCONCLUSIVE and wd_vs_none.p_value is None
    rows = sweep_rows({"l2": [0.1, 0.2, 0.4, 0.6], "wd": [0.0, 0.05, 0.3, 0.5]}, {"l2": L2_ERROR, "wd": WD_ERROR},
                      none=False)
    *_, l2_vs_wd, wd_vs_none = hypotheses.regularization_strength(tables(rows))
    assert l2_vs_wd.status == INCONCLUSIVE and wd_vs_none.status == INCONCLUSIVE


def test_sparsity_error_curves_mark_each_regularizers_budget_lambda():
    rows = sweep_rows({"l2": [0.1, 0.2, 0.4, 0.6], "wd": [0.0, 0.05, 0.3, 0.5]}, {"l2": L2_ERROR, "wd": WD_ERROR})
    curves = hypotheses.sparsity_error_curves(tables(rows).runs)
    l2 = curves[curves["regularizer"] == "l2"].set_index("decay")
    assert list(l2.index) == [0.0, *LAMBDAS] and (l2["runs"] == 3).all()
    assert l2["budget_lambda"].tolist() == [False, False, False, True, False]
    assert l2.loc[0.0, "test_error"] == pytest.approx(0.101) and l2.loc[2e-3, "dead"] == pytest.approx(0.401)
    assert l2.loc[2e-3, "dead_sd"] == pytest.approx(0.001)
    wd = curves[curves["regularizer"] == "wd"].set_index("decay")
    assert wd["budget_lambda"].tolist() == [False, False, True, False, False]


def test_trend_verdicts_on_a_setting():
    rows = [{"decay": d, "seed": s, "dead_by_activation": d * 100 + s * 0.01} for d in (1e-4, 5e-4, 1e-3) for s in SEEDS]
    assert hypotheses.increases_with(tables(rows), "decay", "more decay, more dead").status == HOLDS
    assert hypotheses.increases_with(tables(rows), "decay", "more decay, fewer dead", direction=-1).status == DOES_NOT_HOLD
    # ``where`` restricts the runs
    rows += [{"decay": d, "seed": s, "dead_by_activation": 0.5 - d * 100} for d in (1e-4, 5e-4, 1e-3) for s in SEEDS]
    frame = tables(rows)
    frame.runs["optimizer"] = ["adam"] * 9 + ["sgd"] * 9
    assert hypotheses.increases_with(frame, "decay", "more", optimizer="sgd").status == DOES_NOT_HOLD
    assert hypotheses.increases_with(frame, "decay", "more", optimizer="adam").n == {
        "decay=0.0001": 3, "decay=0.0005": 3, "decay=0.001": 3}


def test_a_trend_whose_level_had_not_had_its_chance_is_not_reached():
    clock = dict(lr=1e-2, schedule="constant", step_milestones=(0.5, 0.75), step_gamma=0.1)
    rows = [{"batch_size": b, "seed": s, "steps": 8 * 10000 // b, "dead_by_activation": dead, **clock}
            for b, dead in ((32, 0.3), (64, 0.2), (128, 0.0)) for s in SEEDS]
    verdict = hypotheses.increases_with(tables(rows), "batch_size", "smaller, more dead", direction=-1)
    assert verdict.status == NOT_REACHED and verdict.evidence.startswith("batch_size=128: not reached")
    assert "lr x steps 6.25" in verdict.evidence  # 625 steps at 1e-2, short of 11
    assert list(hypotheses.level_unreached(tables(rows).runs, "batch_size")) == ["batch_size=128"]
    for row in rows:
        row["steps"] *= 2  # batch 128 now gives 12.5: every level has had its chance, and the trend is decided
    assert hypotheses.increases_with(tables(rows), "batch_size", "smaller, more dead", direction=-1).status == HOLDS


# --- 6, 7. task difficulty, capacity ----------------------------------------------------------------


def test_number_of_classes():
    runs = pd.DataFrame({"classes": [None, (0, 1), [0, 1, 2]], "dataset": ["cifar100", "fashion-mnist", "fashion-mnist"]})
    assert hypotheses.number_of_classes(runs).tolist() == [100, 2, 3]


def test_task_difficulty_trends_and_the_dataset_comparison():
    class_rows = [{"classes": classes, "dataset": "fashion-mnist", "seed": s, "dead_by_activation": dead + 0.01 * s}
                  for classes, dead in (((0, 1), 0.4), ((0, 1, 2, 3, 4), 0.2), (None, 0.05)) for s in SEEDS]
    size_rows = [{"train_size": size, "seed": s, "dead_by_activation": dead + 0.01 * s}
                 for size, dead in ((1000, 0.4), (5000, 0.2), (20000, 0.05)) for s in SEEDS]
    dataset_rows = [{"dataset": d, "seed": s, "dead_by_activation": dead + 0.01 * s}
                    for d, dead in (("cifar10", 0.3), ("cifar100", 0.1)) for s in SEEDS]
    classes, size, datasets = hypotheses.task_difficulty(tables(class_rows), tables(size_rows), tables(dataset_rows))
    assert classes.status == HOLDS and set(classes.n) == {"n_classes=2", "n_classes=5", "n_classes=10"}
    assert size.status == HOLDS and datasets.status == HOLDS and datasets.p_value == pytest.approx(0.05)
    assert len(hypotheses.task_difficulty(tables(class_rows), tables(size_rows))) == 2
    flipped = [{**r, "dead_by_activation": 0.5 - r["dead_by_activation"]} for r in class_rows]
    assert hypotheses.task_difficulty(tables(flipped), tables(size_rows))[0].status == DOES_NOT_HOLD


def test_capacity_width_trend_and_every_architecture():
    width_rows = [{"width": w, "seed": s, "dead_by_activation": dead + 0.01 * s}
                  for w, dead in ((0.5, 0.4), (1.0, 0.2), (2.0, 0.05)) for s in SEEDS]
    arch_rows = [{"model": m, "optimizer": o, "decay_mode": "l2", "seed": s, "dead_by_activation": dead + 0.01 * s}
                 for m in ("basicnet", "vgg11", "vgg16") for o, dead in (("adam", 0.3), ("sgd", 0.0)) for s in SEEDS]
    width, every = hypotheses.capacity(tables(width_rows), tables(arch_rows))
    assert (width.claim_id, every.claim_id) == ("narrower", "every-architecture")
    assert width.status == HOLDS and every.status == HOLDS and every.p_value == pytest.approx(0.05)
    # BasicNet's comparison is notebook 01's primary claim, tested there: here only the other architectures
    assert hypotheses.PRIMARY_MODEL == "basicnet"
    assert [p["claim"] for p in every.parts] == ["vgg11: adam+l2 > sgd+l2", "vgg16: adam+l2 > sgd+l2"]
    assert every.claim == "Adam+L2 leaves more dead filters than SGD+L2 in every other architecture (basicnet: notebook 01)"
    # so BasicNet's runs cannot change it
    no_basicnet_effect = [{**r, "dead_by_activation": 0.0} if r["model"] == "basicnet" else r for r in arch_rows]
    assert hypotheses.capacity(tables(width_rows), tables(no_basicnet_effect))[1].status == HOLDS
    # one other architecture without the effect: the intersection does not hold
    arch_rows = [{**r, "dead_by_activation": 0.0} if r["model"] == "vgg11" else r for r in arch_rows]
    assert hypotheses.capacity(tables(width_rows), tables(arch_rows))[1].status == INCONCLUSIVE


# --- 8. mechanism -----------------------------------------------------------------------------------


def test_mechanism_variant_labels():
    base = {"activation": "relu", "norm": "batchnorm", "decay_params": "all"}
    assert hypotheses.mechanism_variant(base) == hypotheses.BASELINE
    assert hypotheses.mechanism_variant({**base, "activation": "leaky_relu"}) == "leaky ReLU"
    assert hypotheses.mechanism_variant({**base, "norm": "none"}) == "no BatchNorm"
    assert hypotheses.mechanism_variant({**base, "decay_params": "weights_only"}) == "BN params not decayed"


def mechanism_rows(leaky_activation=0.5, leaky_gamma=0.0, no_bn_dead=0.0, no_bn_error=0.15, weights_only=0.1):
    """Fashion-MNIST (10 classes, chance error 0.9): the baseline at 30% dead by either criterion,
    and each variant; +0.01 per seed."""
    base = {"activation": "relu", "norm": "batchnorm", "decay_params": "all", "negative_slope": 0.01,
            "classes": None, "dataset": "fashion-mnist", "test_error": 0.1}
    rows = []
    for seed in SEEDS:
        j = 0.01 * seed
        rows += [
            {**base, "seed": seed, "dead_by_activation": 0.3 + j, "dead_by_gamma": 0.3 + j},
            {**base, "seed": seed, "activation": "leaky_relu", "dead_by_activation": leaky_activation + j,
             "dead_by_gamma": leaky_gamma + j},
            {**base, "seed": seed, "norm": "none", "dead_by_activation": no_bn_dead + j, "dead_by_gamma": NAN,
             "test_error": no_bn_error + 0.001 * seed},
            {**base, "seed": seed, "decay_params": "weights_only", "dead_by_activation": weights_only + j,
             "dead_by_gamma": weights_only + j},
        ]
    return rows


def test_leaky_relu_is_judged_by_the_gamma_criterion():
    # never positive on the training images (50%) is not dead for a leaky unit: |gamma| says none died
    leaky, *_ = hypotheses.mechanism(tables(mechanism_rows(leaky_activation=0.5, leaky_gamma=0.0)))
    assert leaky.status == HOLDS and leaky.p_value == pytest.approx(0.05) and leaky.effect == pytest.approx(0.3)
    assert leaky.values["leaky ReLU"] == pytest.approx([0.0, 0.01, 0.02])
    assert "never positive" in leaky.evidence and "0.01x" in leaky.evidence and "51.0%" in leaky.evidence
    leaky, *_ = hypotheses.mechanism(tables(mechanism_rows(leaky_activation=0.0, leaky_gamma=0.5)))
    assert leaky.status == DOES_NOT_HOLD  # by the gamma criterion more die with leaky ReLU


def test_a_no_batchnorm_control_at_chance_makes_its_comparison_invalid():
    _, no_bn, weights_only, _, early, selective = hypotheses.mechanism(tables(mechanism_rows(no_bn_error=0.9)))
    assert no_bn.status == INVALID and no_bn.p_value is None and no_bn.claim_id == "no-batchnorm"
    assert "3 of 3 runs without BatchNorm did not train" in no_bn.evidence and "chance, 90%" in no_bn.evidence
    assert len(no_bn.parts) == 1 and no_bn.parts[0]["status"] == HOLDS  # what the comparison would have said
    assert weights_only.status == HOLDS and weights_only.p_value == pytest.approx(0.05)
    for verdict in (early, selective):
        assert verdict.status == INCONCLUSIVE and "no per-epoch filter history" in verdict.evidence
    leaky, no_bn, weights_only, vanishes, early, selective = in_family(
        hypotheses.mechanism(tables(mechanism_rows(no_bn_error=0.9))))
    assert no_bn.status == INVALID and no_bn.p_adjusted is None  # invalid stays invalid, in no family
    assert weights_only.role == PRIMARY and weights_only.p_adjusted == pytest.approx(0.5)  # 0.05 x 10
    assert weights_only.status == INCONCLUSIVE
    # a secondary bound keeps its outcome (10% die without BN decay), a secondary comparison is described
    assert leaky.status == DESCRIBED and vanishes.role == SECONDARY and vanishes.status == DOES_NOT_HOLD
    assert early.role == PRIMARY and early.status == INCONCLUSIVE and early.p_adjusted is None  # no p-value


def test_one_untrained_run_of_the_control_is_enough_to_make_it_invalid():
    rows = mechanism_rows(no_bn_dead=0.7, no_bn_error=0.9)
    for row in rows:
        if row.get("norm") == "none" and row["seed"] == 0:
            row["test_error"] = 0.185  # this one trained
    _, no_bn, *_ = hypotheses.mechanism(tables(rows))
    assert no_bn.status == INVALID and "2 of 3 runs without BatchNorm did not train" in no_bn.evidence
    assert "The runs that trained: dead 70.0% at test error 18.5%" in no_bn.evidence


def test_a_trained_no_batchnorm_control_is_an_ordinary_comparison():
    _, fewer, *_ = hypotheses.mechanism(tables(mechanism_rows(no_bn_dead=0.0, no_bn_error=0.15)))
    assert fewer.status == HOLDS and fewer.p_value == pytest.approx(0.05)
    assert fewer.n == {hypotheses.BASELINE: 3, "no BatchNorm": 3}
    _, more, *_ = hypotheses.mechanism(tables(mechanism_rows(no_bn_dead=0.6, no_bn_error=0.15)))
    assert more.status == DOES_NOT_HOLD
    _, _, weights_only, vanishes, _, _ = hypotheses.mechanism(tables(mechanism_rows(weights_only=0.6)))
    assert weights_only.status == DOES_NOT_HOLD and weights_only.claim_id == "bn-decay-needed"
    assert vanishes.status == DOES_NOT_HOLD and vanishes.p_value is None  # 60% die without BN decay: a bound fails
    assert vanishes.claim_id == "none-die-bn-not-decayed"


def test_only_the_variants_run_are_judged_and_sparsity_vanishing_without_bn_decay_is_a_bound():
    rows = [r for r in mechanism_rows() if r["activation"] == "relu" and r["norm"] == "batchnorm"]
    for row in rows:
        if row["decay_params"] == "weights_only":
            row["dead_by_activation"] = 0.005 * row["seed"]  # 0-1%: within the bound
    verdicts = hypotheses.mechanism(tables(rows))
    assert [v.claim.split(" (")[0] for v in verdicts] == [
        "Decaying BN's gamma and beta is needed for the full effect",
        "With BN's gamma and beta not decayed, no filters die",
        "Selectivity at epoch 1, while filters are healthy, predicts their later death within their layer",
        "Filters are more selective than their layer's survivors 2 epoch(s) before they die"]
    assert [v.claim_id for v in verdicts] == ["bn-decay-needed", "none-die-bn-not-decayed",
                                             "early-selectivity-predicts-death", "selective-as-they-die"]
    assert verdicts[0].status == HOLDS and verdicts[1].status == HOLDS
    assert verdicts[1].n == {"BN params not decayed": 3}


def test_mechanism_grid_runs_the_baseline_over_its_seeds_and_each_named_variant():
    class Exp:
        def grid(self, seeds=None, **vary):
            return [(tuple(seeds or (0, 1, 2)), tuple(sorted((k, tuple(v)) for k, v in vary.items())))]

    grid = hypotheses.mechanism_grid(Exp(), "adam", [0, 1, 2, 3, 4, 5, 6], ["bn_params_not_decayed"], 0.01)
    assert grid == [((0, 1, 2, 3, 4, 5, 6), (("decay_mode", ("l2",)), ("optimizer", ("adam",)))),
                    ((0, 1, 2), (("decay_mode", ("l2",)), ("decay_params", ("weights_only",)), ("optimizer", ("adam",))))]
    with pytest.raises(ValueError, match="unknown mechanism variants \\['dropout'\\]"):
        hypotheses.mechanism_grid(Exp(), "adam", [0], ["dropout"], 0.01)


# -- death epochs and selectivity before death

# Six snapshots of one run. Layer C1: filter 0 is alive on epochs 1-3 and dead from 4 on (death 4);
# filter 1 dies at 2, revives at 4 and dies again at 5 (death 5: its last death); filter 2 is dead
# from epoch 1 (no live epoch before death); filters 3 and 4 survive (filter 4 is silent on the
# epoch-2 snapshot only). Layer C2: one survivor at 0.9, which must not enter C1's comparison.
FILTERS = [("C1", 0, True), ("C1", 1, True), ("C1", 2, True), ("C1", 3, False), ("C1", 4, False), ("C2", 0, False)]


def death_record(run_id, shift=0.0, dying=((0.5, 0.6, 0.7), (0.3, 0.45)), config=None, metrics=None):
    (a1, a2, a3), (b1, b4) = dying
    selectivity = {
        ("C1", 0): [a1 + shift, a2 + shift, a3 + shift, NAN, NAN, NAN],
        ("C1", 1): [b1 + shift, NAN, NAN, b4 + shift, NAN, NAN],
        ("C1", 2): [NAN] * 6,
        ("C1", 3): [0.2] * 6,
        ("C1", 4): [0.4, NAN, 0.4, 0.4, 0.4, 0.4],
        ("C2", 0): [0.9] * 6,
    }
    return {"run_id": run_id, "status": "completed", "config": config or {}, "metrics": metrics or {}, "layers": [],
            "filters": [{"layer": layer, "filter": f, "dead_by_activation": dead} for layer, f, dead in FILTERS],
            "history": [snapshot(e + 1, [selectivity[(layer, f)][e] for layer, f, _ in FILTERS]) for e in range(6)]}


LESS_SELECTIVE = ((0.1, 0.1, 0.1), (0.1, 0.05))


def test_death_epochs_are_the_start_of_the_last_run_of_dead_snapshots():
    history = tables_from_records([death_record("a")]).history_filters()
    deaths = hypotheses.death_epochs(history).set_index(["layer", "filter"])["death_epoch"]
    assert deaths.to_dict() == {("C1", 0): 4, ("C1", 1): 5, ("C1", 2): 1}  # survivors have none


def test_selectivity_before_death_is_against_same_layer_survivors_at_the_same_epoch():
    history = tables_from_records([death_record("a")]).history_filters()
    aligned = hypotheses.selectivity_before_death(history).sort_values(["filter", "epoch"])
    rows = [(r.filter, r.epoch, r.epochs_before_death) for r in aligned.itertuples()]
    # filter 1's silent epochs 2 and 3 have no selectivity; filter 2 has no live epoch before death
    assert rows == [(0, 1, 3), (0, 2, 2), (0, 3, 1), (1, 1, 4), (1, 4, 1)]
    # C1 survivors: mean of 0.2 and 0.4, except epoch 2, where filter 4 is silent (0.2); C2's 0.9 left out
    assert aligned["survivors_selectivity"].tolist() == pytest.approx([0.3, 0.2, 0.3, 0.3, 0.3])
    assert aligned["difference"].tolist() == pytest.approx([0.2, 0.4, 0.4, 0.0, 0.15])
    assert hypotheses.selectivity_before_death(pd.DataFrame()).empty


def death_tables(shifts, dying=((0.5, 0.6, 0.7), (0.3, 0.45)), others=()):
    return tables_from_records([death_record(f"run{i}", shift, dying) for i, shift in enumerate(shifts)]
                               + [death_record(f"other{i}", 0.0, LESS_SELECTIVE) for i in range(len(others))])


def test_five_runs_with_selective_dying_filters_hold_at_one_in_32():
    shifts = [0.0, 0.01, 0.02, 0.03, 0.04]
    ids = [f"run{i}" for i in range(5)]
    verdict = hypotheses.selective_before_death(death_tables(shifts, others=range(3)), ids, lead_epochs=1)
    # per run, at one epoch before death: filter 0 (+0.4) and filter 1 (+0.15), averaged
    assert verdict.values["dying - same-layer survivors"] == pytest.approx([0.275 + s for s in shifts])
    assert verdict.status == HOLDS and verdict.p_value == pytest.approx(1 / 32) and verdict.p_min == pytest.approx(1 / 32)
    assert verdict.n == {"dying - same-layer survivors": 5}  # the other runs were not asked for
    assert verdict.claim_id == "selective-as-they-die"
    assert verdict.claim == "Filters are more selective than their layer's survivors 1 epoch(s) before they die"
    assert "10 dying filters over 5 runs" in verdict.evidence
    two_before = hypotheses.selective_before_death(death_tables(shifts), ids, lead_epochs=2)
    assert two_before.values["dying - same-layer survivors"] == pytest.approx([0.4 + s for s in shifts])
    assert two_before.status == HOLDS


def test_three_runs_cannot_decide_and_less_selective_dying_filters_do_not_hold():
    three = hypotheses.selective_before_death(death_tables([0.0, 0.01, 0.02]), ["run0", "run1", "run2"],
                                              lead_epochs=1)
    assert three.status == INCONCLUSIVE and three.p_value == pytest.approx(1 / 8)
    shifts = [0.0, 0.01, 0.02, 0.03, 0.04]
    less = hypotheses.selective_before_death(death_tables(shifts, LESS_SELECTIVE), [f"run{i}" for i in range(5)],
                                             lead_epochs=1)
    # filter 0: 0.1 - 0.3, filter 1: 0.05 - 0.3
    assert less.values["dying - same-layer survivors"] == pytest.approx([-0.225 + s for s in shifts])
    assert less.status == DOES_NOT_HOLD and less.p_against == pytest.approx(1 / 32)
    assert less.p_value == pytest.approx(1.0)


def test_lead_curve_averages_each_runs_dying_filters_at_each_lead():
    history = tables_from_records([death_record("a"), death_record("b", 0.01)]).history_filters()
    curve = hypotheses.lead_curve(hypotheses.selectivity_before_death(history))
    assert list(curve.columns) == ["run_id", "epochs_before_death", "difference", "filters"]
    a = curve[curve["run_id"] == "a"].set_index("epochs_before_death")
    # one epoch before death: filter 0 (+0.4) and filter 1 (+0.15); two and three: filter 0; four: filter 1
    assert a["difference"].to_dict() == pytest.approx({1: 0.275, 2: 0.4, 3: 0.2, 4: 0.0})
    assert a["filters"].to_dict() == {1: 2, 2: 1, 3: 1, 4: 1}
    b = curve[curve["run_id"] == "b"].set_index("epochs_before_death")
    assert b["difference"].to_dict() == pytest.approx({1: 0.285, 2: 0.41, 3: 0.21, 4: 0.01})  # the dying shifted
    empty = hypotheses.lead_curve(pd.DataFrame())
    assert empty.empty and list(empty.columns) == ["run_id", "epochs_before_death", "difference", "filters"]


def test_selectivity_auc_pairs_dying_filters_with_their_own_layers_survivors_ties_counting_half():
    history = pd.DataFrame([
        # run a, epoch 1. C1: two filters that end dead (0.2 and 0.3) and two survivors (0.2 and 0.4);
        # a third dying filter is silent (not firing: left out). C2: one survivor, at 0.9.
        *[{"run_id": "a", "epoch": 1, "layer": "C1", "filter": f, "selectivity": sel, "gamma": g}
          for f, sel, g in ((0, 0.2, -0.9), (1, 0.3, 0.7), (2, NAN, 0.01), (3, 0.2, 1.0), (4, 0.4, 1.0))],
        {"run_id": "a", "epoch": 1, "layer": "C2", "filter": 0, "selectivity": 0.9, "gamma": 1.0},
        # run a, epoch 2: only filter 0 of the dying still fires, at 0.5
        *[{"run_id": "a", "epoch": 2, "layer": "C1", "filter": f, "selectivity": sel, "gamma": g}
          for f, sel, g in ((0, 0.5, 0.3), (1, NAN, 0.1), (2, NAN, 0.01), (3, 0.2, 1.0), (4, 0.4, 1.0))],
        # run b, epoch 1: no filter that ends dead fires
        {"run_id": "b", "epoch": 1, "layer": "C1", "filter": 0, "selectivity": NAN, "gamma": 0.5},
        {"run_id": "b", "epoch": 1, "layer": "C1", "filter": 1, "selectivity": 0.3, "gamma": 1.0},
    ])
    final = pd.DataFrame([{"run_id": "a", "layer": "C1", "filter": f, "dead_by_activation": f < 3} for f in range(5)]
                         + [{"run_id": "a", "layer": "C2", "filter": 0, "dead_by_activation": False},
                            {"run_id": "b", "layer": "C1", "filter": 0, "dead_by_activation": True},
                            {"run_id": "b", "layer": "C1", "filter": 1, "dead_by_activation": False}])
    aucs = hypotheses.selectivity_auc(history, final)
    assert list(aucs.columns) == ["run_id", "epoch", "auc", "pairs", "dying", "dying_median_gamma"]
    a1, a2, b1 = aucs.to_dict("records")
    # pairs within C1: 0.2 vs 0.2 a tie (1/2), 0.2 vs 0.4 lost, 0.3 vs 0.2 won, 0.3 vs 0.4 lost: 1.5 of 4
    # (with C2's survivor pooled in it would be 1.5 of 6)
    assert (a1["epoch"], a1["auc"], a1["pairs"], a1["dying"]) == (1, 0.375, 4, 2)
    assert a1["dying_median_gamma"] == pytest.approx(0.8)  # |-0.9| and 0.7
    assert (a2["epoch"], a2["auc"], a2["pairs"], a2["dying"], a2["dying_median_gamma"]) == (2, 1.0, 2, 1, 0.3)
    assert b1["run_id"] == "b" and b1["pairs"] == 0 and b1["dying"] == 0 and math.isnan(b1["auc"])


def test_early_selectivity_holds_when_dying_filters_are_more_selective_while_healthy():
    ids = [f"run{i}" for i in range(5)]
    # at epoch 1 the dying filters of C1 fire at 0.5 and 0.3, its survivors at 0.2 and 0.4: AUC 3/4 in every run
    verdict = hypotheses.early_selectivity(death_tables([0.0, 0.01, 0.02, 0.03, 0.04], others=range(3)), ids)
    assert verdict.claim_id == "early-selectivity-predicts-death" and hypotheses.MIN_AUC_EFFECT == 0.05
    assert verdict.values == {"AUC - 0.5": pytest.approx([0.25] * 5)} and verdict.min_effect == 0.05
    # 0.25 - 0.05 > 0 in all 5 runs: 1 of the 2^5 sign patterns
    assert verdict.status == HOLDS and verdict.p_value == pytest.approx(1 / 32) and verdict.p_min == pytest.approx(1 / 32)
    assert verdict.effect == pytest.approx(0.25) and "per-run AUC 0.75, 0.75" in verdict.evidence
    # three runs: 1/8 at best
    three = hypotheses.early_selectivity(death_tables([0.0, 0.01, 0.02]), ids[:3])
    assert three.status == INCONCLUSIVE and three.p_value == pytest.approx(1 / 8)


def test_early_selectivity_does_not_hold_when_dying_filters_are_consistently_less_selective_early():
    ids = [f"run{i}" for i in range(5)]
    # at epoch 1 the dying filters fire at 0.1, below both survivors (0.2, 0.4): AUC 0 in every run
    verdict = hypotheses.early_selectivity(death_tables([0.0, 0.01, 0.02, 0.03, 0.04], LESS_SELECTIVE), ids)
    assert verdict.values == {"AUC - 0.5": pytest.approx([-0.5] * 5)} and verdict.effect == pytest.approx(-0.5)
    assert verdict.status == DOES_NOT_HOLD and verdict.p_against == pytest.approx(1 / 32)  # raw, <= 0.05
    assert verdict.p_value == pytest.approx(1.0)
    # in the long family (0.05 / 7) 5 runs cannot say so: 7/32; the report plan gives it 8 runs
    (decided,) = in_family([verdict], "long")
    assert decided.status == INCONCLUSIVE and decided.p_against_adjusted == pytest.approx(7 / 32)


def test_early_selectivity_without_history_or_pairs_is_inconclusive():
    assert "no per-epoch filter history" in hypotheses.early_selectivity(tables([{"seed": 0}]), ["r0"]).evidence
    # at epoch 6 no filter that ends dead still fires
    late = hypotheses.early_selectivity(death_tables([0.0]), ["run0"], early_epoch=6)
    assert late.status == INCONCLUSIVE and "no run has both dying and surviving filters firing at epoch 6" in late.evidence
    assert hypotheses.early_selectivity(death_tables([0.0]), ["nope"]).status == INCONCLUSIVE


def test_selective_before_death_without_deaths_or_history_is_inconclusive():
    assert hypotheses.selective_before_death(death_tables([0.0]), ["run0"], lead_epochs=5).status == INCONCLUSIVE
    assert hypotheses.selective_before_death(death_tables([0.0]), ["nope"], lead_epochs=1).status == INCONCLUSIVE
    assert "no per-epoch filter history" in hypotheses.selective_before_death(tables([{"seed": 0}]), ["r0"]).evidence


def test_bn_around_death_aligns_each_dying_filters_gamma_and_beta_on_its_death():
    history = pd.DataFrame({"run_id": "a", "layer": "C1", "filter": [0, 0, 0, 1, 1, 1], "epoch": [1, 2, 3, 1, 2, 3],
                            "dead_by_activation": [True, True, True, False, False, False],
                            "selectivity": [0.5, NAN, NAN, 0.4, 0.4, 0.4],
                            "gamma": [0.5, 0.01, 1e-4, 0.9, 0.9, 0.9], "beta": [0.1, -0.2, -0.3, 0.2, 0.2, 0.2]})
    aligned = hypotheses.bn_around_death(history)
    assert aligned["filter"].tolist() == [0, 0, 0]  # filter 1 survives
    assert aligned["epochs_from_death"].tolist() == [-1, 0, 1] and aligned["death_epoch"].tolist() == [2, 2, 2]
    assert aligned["beta"].tolist() == [0.1, -0.2, -0.3] and aligned["gamma"].tolist() == [0.5, 0.01, 1e-4]
    assert hypotheses.bn_around_death(pd.DataFrame()).empty
    runs = pd.DataFrame({"run_id": ["a"], "optimizer": ["adam"], "decay_mode": ["l2"]})
    assert hypotheses.gamma_lag(aligned, runs) == {"adam+l2": {
        "dying_filters": 1, "median_gamma_at_death": 0.01, "below_threshold_within_training": 1,
        "median_epochs_from_death_to_threshold": 1.0,  # |gamma| 1e-4 < 1e-3 one epoch after death
        "median_gamma_at_death_runs": hypotheses.spread([0.01]),
        "median_epochs_from_death_to_threshold_runs": hypotheses.spread([1.0])}}
    # a second run, whose dying filter stays above 1e-3 to the end: pooled, and run by run with the spread
    second = history.assign(run_id="b", gamma=[0.5, 0.02, 0.01, 0.9, 0.9, 0.9])
    both = hypotheses.bn_around_death(pd.concat([history, second], ignore_index=True))
    runs = pd.DataFrame({"run_id": ["a", "b"], "optimizer": "adam", "decay_mode": "l2"})
    lag = hypotheses.gamma_lag(both, runs)["adam+l2"]
    assert (lag["dying_filters"], lag["median_gamma_at_death"], lag["below_threshold_within_training"]) == (
        2, pytest.approx(0.015), 1)
    assert lag["median_gamma_at_death_runs"] == {"per_run": [0.01, 0.02], "runs": 2, "mean": pytest.approx(0.015),
                                                 "sd": pytest.approx(0.005 * math.sqrt(2)), "min": 0.01, "max": 0.02}
    assert lag["median_epochs_from_death_to_threshold_runs"] == {"per_run": [1.0, None], "runs": 1, "mean": 1.0,
                                                                 "sd": 0.0, "min": 1.0, "max": 1.0}


def test_mechanism_aligns_deaths_in_the_baseline_runs_only():
    base = {"activation": "relu", "norm": "batchnorm", "decay_params": "all", "negative_slope": 0.01,
            "classes": None, "dataset": "fashion-mnist"}
    metrics = {"dead_by_activation": 0.3, "dead_by_gamma": 0.3, "test_error": 0.1}
    records = [death_record(f"base{s}", 0.01 * s, config={**base, "seed": s}, metrics=metrics) for s in FIVE_SEEDS]
    records += [death_record(f"leaky{s}", 0.0, LESS_SELECTIVE, config={**base, "seed": s, "activation": "leaky_relu"},
                             metrics={**metrics, "dead_by_gamma": 0.0}) for s in SEEDS]
    *_, early, selective = hypotheses.mechanism(tables_from_records(records), lead_epochs=1)
    assert selective.status == HOLDS and selective.p_value == pytest.approx(1 / 32)
    assert selective.values["dying - same-layer survivors"] == pytest.approx([0.275 + 0.01 * s for s in FIVE_SEEDS])
    # the early test too runs on the baseline's runs only: the leaky runs' AUC at epoch 1 would be 0
    assert early.values == {"AUC - 0.5": pytest.approx([0.25] * 5)} and early.status == HOLDS
    *_, early, _ = hypotheses.mechanism(tables_from_records(records), early_epoch=2)
    assert early.values == {"AUC - 0.5": pytest.approx([0.5] * 5)} and early.claim.startswith("Selectivity at epoch 2,")
    *_, two_before = hypotheses.mechanism(tables_from_records(records), lead_epochs=2)
    assert two_before.values["dying - same-layer survivors"] == pytest.approx([0.4 + 0.01 * s for s in FIVE_SEEDS])
    assert two_before.claim.startswith("Filters are more selective than their layer's survivors 2 epoch(s) before")


# --- 9. pruning -------------------------------------------------------------------------------------


def pruning_table(implicit_error=0.105, differences=(1e-14, 1e-14, 1e-14), models=("basicnet",), reduction=2.0,
                  changed_seed=None):
    """Per model and seed: the unpruned adaptive network, implicit pruning and the two explicit
    methods, fine-tuned test errors +0.001 per seed; the best explicit one (slimming) at 0.10."""
    rows = []
    for model in models:
        error = implicit_error[model] if isinstance(implicit_error, dict) else implicit_error
        factor_of_implicit = reduction[model] if isinstance(reduction, dict) else reduction
        for seed, difference in zip(SEEDS, differences):
            j = 0.001 * seed
            for method, macs, before, after, factor, diff in [
                    ("unpruned (adaptive + L2)", 100, 0.20, 0.20, 1.0, NAN),
                    ("implicit: dead filters removed", 50, 0.20 + (0.01 if seed == changed_seed else 0), error + j,
                     factor_of_implicit, difference),
                    ("L1-norm filters (Li et al.)", 49, 0.60, 0.12 + j, 2.04, NAN),
                    ("Network Slimming (Liu et al.)", 50, 0.50, 0.10 + j, 2.0, NAN)]:
                rows.append({"model": model, "dataset": "fashion-mnist", "seed": seed, "method": method, "macs": macs,
                             "test_error_pruned": before, "test_error_finetuned": after, "mac_reduction": factor,
                             "max_logit_difference": diff})
    return pd.DataFrame(rows)


def test_exactness_uses_the_float64_tolerance():
    assert EXACT_LOGIT_TOLERANCE == 1e-9
    exact, par = hypotheses.pruning(pruning_table(differences=(1e-14, 1e-14, 1e-14)))
    assert (exact.claim_id, par.claim_id) == ("exact-removal", "at-par")
    assert exact.status == HOLDS and exact.p_value is None and "3 of 3 runs exact" in exact.evidence
    assert exact.effect == pytest.approx(1e-14)
    for bad in (1.7e-4, 7.9e-6):
        exact, _ = hypotheses.pruning(pruning_table(differences=(1e-14, bad, 1e-14)))
        assert exact.status == DOES_NOT_HOLD and "2 of 3 runs exact" in exact.evidence
        assert exact.effect == pytest.approx(bad) and f"seed 1: {bad:.2g}" in exact.evidence
    exact, _ = hypotheses.pruning(pruning_table(changed_seed=2))
    assert "seed 2: 1e-14 (test error changed)" in exact.evidence and "seed 0: 1e-14;" in exact.evidence
    empty = hypotheses.exactness("exact", [], [], "exact-removal")
    assert empty.status == INCONCLUSIVE and empty.evidence == "no pruned runs" and empty.claim_id == "exact-removal"
    check = hypotheses.exactness("exact", ["seed 0: 1e-14"], [1e-14], "resnet-exact-removal")
    assert check.status == HOLDS and check.claim_id == "resnet-exact-removal" and check.n == {"runs": 1}


def test_par_is_non_inferiority_per_architecture():
    _, par = hypotheses.pruning(pruning_table(implicit_error=0.105))  # within 1 point of slimming's 0.10
    assert par.status == HOLDS and par.p_value == pytest.approx(0.05) and len(par.parts) == 1
    assert par.parts[0]["n"] == {"best explicit + tolerance": 3, "implicit": 3}
    assert par.parts[0]["effect"] == pytest.approx(0.005)  # 0.10 + 0.01 - 0.105
    _, par = hypotheses.pruning(pruning_table(implicit_error=0.13))  # 3 points worse than the best explicit
    assert par.status == DOES_NOT_HOLD and par.p_against == pytest.approx(0.05) and par.p_value == pytest.approx(1.0)
    # every architecture must pass, and it does not hold only when every one is reversed: one part each way
    # is neither (the largest of the parts' p-values each way: 1 and 1)
    _, par = hypotheses.pruning(pruning_table(implicit_error={"basicnet": 0.105, "vgg11": 0.13},
                                              models=("basicnet", "vgg11")))
    assert [p["status"] for p in par.parts] == [HOLDS, DOES_NOT_HOLD]
    assert par.status == INCONCLUSIVE and par.p_value == pytest.approx(1.0) and par.p_against == pytest.approx(1.0)
    _, par = hypotheses.pruning(pruning_table(implicit_error=0.105, models=("basicnet", "vgg11")))
    assert par.status == HOLDS and len(par.parts) == 2


def test_par_without_dead_filters_or_comparisons_is_inconclusive():
    _, par = hypotheses.pruning(pruning_table(reduction=1.0))
    assert par.status == INCONCLUSIVE and par.parts[0]["evidence"] == "no filter died, so there is nothing to compare"
    exact, par = hypotheses.pruning(pd.DataFrame())
    assert exact.status == INCONCLUSIVE and par.status == INCONCLUSIVE


def test_par_below_a_meaningful_cut_of_macs_is_not_testable_whatever_the_errors():
    assert hypotheses.MIN_MAC_REDUCTION == 1.25
    for error in (0.105, 0.13):  # at par, and 3 points worse: neither can be told at a 5% cut
        _, par = hypotheses.pruning(pruning_table(implicit_error=error, reduction=1.05))
        assert par.status == UNTESTABLE and par.p_value is None
        assert par.evidence == ("not testable: basicnet on fashion-mnist: implicit pruning cut the MACs by a median "
                                "1.05x (4.8% removed), below the 1.25x at which being at par says something")
    _, par = hypotheses.pruning(pruning_table(reduction=1.25))
    assert par.status == HOLDS  # 1.25x is enough
    _, par = hypotheses.pruning(pruning_table(reduction={"basicnet": 2.0, "vgg11": 1.1}, models=("basicnet", "vgg11")))
    assert par.status == UNTESTABLE and [p["status"] for p in par.parts] == [HOLDS] and "vgg11" in par.evidence
    assert in_family([par])[0].status == UNTESTABLE  # the family does not decide it


# --- 10. training length and learning rate ----------------------------------------------------------


def test_lr_x_steps_design_keeps_lr_times_epochs():
    assert hypotheses.lr_x_steps_design(1e-2, 8, [1e-2, 5e-3, 2.5e-3]) == [(1e-2, 8), (5e-3, 16), (2.5e-3, 32)]
    for epochs in (e for _, e in hypotheses.lr_x_steps_design(1e-2, 8, [1e-2, 5e-3, 2.5e-3])):
        assert isinstance(epochs, int)
    with pytest.raises(ValueError, match="lr 0.003 needs"):
        hypotheses.lr_x_steps_design(1e-2, 8, [1e-2, 3e-3])
    with pytest.raises(ValueError, match="lr 0.1"):  # 0.8 epochs
        hypotheses.lr_x_steps_design(1e-2, 8, [1e-1])


def length_rows(dead_by_lr, seeds=SEEDS):
    """Adam+L2 at each lr for 8 / lr steps (lr x steps = 8), given dead fractions (+0.005 per
    seed), and SGD and Adam without regularization runs that must be left out."""
    rows = []
    for seed in seeds:
        for lr, dead in dead_by_lr.items():
            rows.append({"optimizer": "adam", "decay_mode": "l2", "lr": lr, "steps": round(8 / lr), "seed": seed,
                         "dead_by_activation": dead + 0.005 * seed})
        rows += [{"optimizer": "sgd", "decay_mode": "l2", "lr": 0.1, "steps": 80, "seed": seed, "dead_by_activation": 0.9},
                 {"optimizer": "adam", "decay_mode": "none", "lr": 1e-1, "steps": 80, "seed": seed,
                  "dead_by_activation": 0.9}]
    return rows


def test_training_length_equivalence_at_equal_lr_x_steps():
    (same,) = hypotheses.training_length(tables(length_rows({1e-2: 0.30, 5e-3: 0.31, 2.5e-3: 0.302})))
    # TOST: both one-sided tests against "beyond +-5 points" reject at 1/20; nothing beyond the margin
    assert same.status == HOLDS and same.p_value == pytest.approx(0.05) and same.p_against == pytest.approx(1.0)
    assert same.n == {"lr=0.0025": 3, "lr=0.005": 3, "lr=0.01": 3} and same.claim_id == "lr-x-steps"
    assert same.effect == pytest.approx(-0.002) and "lr x steps of every run: 8)" in same.evidence
    # 30 points apart, beyond the margin on the upper side: its p (1/20) doubled for the two sides, 0.1 with 3 runs
    (ordered,) = hypotheses.training_length(tables(length_rows({1e-2: 0.40, 5e-3: 0.20, 2.5e-3: 0.10})))
    assert ordered.status == INCONCLUSIVE and ordered.p_against == pytest.approx(0.1)
    assert ordered.p_value == pytest.approx(1.0) and ordered.effect == pytest.approx(0.30)
    # with 4 runs a rate: 2 / C(8, 4) = 2/70
    (ordered,) = hypotheses.training_length(tables(length_rows({1e-2: 0.40, 5e-3: 0.20, 2.5e-3: 0.10},
                                                               seeds=(0, 1, 2, 3))))
    assert ordered.status == DOES_NOT_HOLD and ordered.p_against == pytest.approx(2 / 70)
    unequal = length_rows({1e-2: 0.30, 2.5e-3: 0.30})
    for row in unequal:
        if row["lr"] == 2.5e-3:
            row["steps"] = 800  # 2.5e-3 x 800 = 2, not the 8 of the other rate
    (mixed,) = hypotheses.training_length(tables(unequal))
    assert mixed.status == INCONCLUSIVE and "do not share one lr x steps (2, 8)" in mixed.evidence


def long_records(dead_by_lr, sgd_dead=0, seeds=SEEDS):
    """Runs of 4 epochs x 10 steps at a constant rate: Adam+L2 at each lr (dead filters per epoch
    given), Adam without regularization and SGD+L2 (``sgd_dead`` filters every epoch); 10 filters."""
    def record(run_id, optimizer, mode, lr, seed, dead):
        config = {"optimizer": optimizer, "decay_mode": mode, "lr": lr, "seed": seed, "epochs": 4,
                  "schedule": "constant", "step_milestones": [0.5, 0.75], "step_gamma": 0.1}
        return {"run_id": run_id, "status": "completed", "config": config,
                "metrics": {"steps": 40, "filters": 10, "dead_by_activation": dead[-1] / 10},
                "history": [{"epoch": e + 1, "dead_per_layer": [d], "gamma_quantiles": [[1] * 5]}
                            for e, d in enumerate(dead)]}
    records = []
    for lr, dead in dead_by_lr.items():
        for seed in seeds if lr == 1e-3 else seeds[:1]:
            records.append(record(f"adam-{lr}-{seed}", "adam", "l2", lr, seed, [d + (seed if d else 0) for d in dead]))
    for seed in seeds:
        records.append(record(f"none-{seed}", "adam", "none", 1e-3, seed, [0, 0, 0, 0]))
        records.append(record(f"sgd-{seed}", "sgd", "l2", 0.1, seed, [sgd_dead] * 4))
    return records


def test_training_progress_reads_the_histories():
    collapse = {1e-3: [0, 1, 2, 4], 4e-3: [4, 6, 7, 8], 1.6e-2: [8, 9, 9, 9]}
    progress = hypotheses.training_progress(tables_from_records(long_records(collapse)))
    first = progress[(progress["run_id"] == "adam-0.004-0") & (progress["epoch"] == 2)].iloc[0]
    assert first["steps"] == 20 and first["lr_x_steps"] == pytest.approx(4e-3 * 20) and first["dead_fraction"] == 0.6
    assert set(progress["run_id"]) >= {"none-0", "sgd-2"} and len(progress) == 4 * (3 + 2 + 6)


def test_training_progress_counts_gamma_dead_filters_per_epoch_from_the_snapshots():
    record = gamma_record("a", "adam", "l2", 0, 1.0)
    gammas = {1: [0.9, 0.4, 1.0], 2: [5e-4, 0.2, 0.9], 3: [1e-4, 9e-4, 0.8], 4: [1e-4, 1e-3, 0.7]}
    record["history"] = [snapshot(e, [0.5] * 3, gammas[e]) for e in range(1, 5)]
    record["config"].update(lr=1e-3, schedule="constant", step_milestones=[0.5, 0.75], step_gamma=0.1)
    record["metrics"] = {"steps": 40, "filters": 3}
    progress = hypotheses.training_progress(tables_from_records([record]))
    # |gamma| < 1e-3 is dead; 1e-3 itself is not
    assert progress["dead_gamma_fraction"].tolist() == [0, 1 / 3, 2 / 3, 1 / 3]
    assert progress["dead_fraction"].tolist() == [0, 0, 0, 0]  # the activation criterion, from dead_per_layer


def test_pilot_description_gives_each_criterions_onset_and_the_dead_fraction_at_the_chosen_length():
    progress = pd.DataFrame({"run_id": "p", "optimizer": "adam", "decay_mode": "l2", "lr": 1e-3, "seed": 0,
                             "epoch": [1, 2, 3, 4], "steps": [10, 20, 30, 40],
                             "dead_fraction": [0, 0.1, 0.2, 0.3], "dead_gamma_fraction": [0, 0, 0, 0.05],
                             "test_error": [0.3, 0.2, 0.15, 0.1]})
    assert hypotheses.pilot_description(progress, chosen_epochs=3) == (
        "- adam+l2 at lr 0.001, seed 0, 4 epochs (40 steps) at a constant rate. by activation: first dead filter at "
        "epoch 2; by |gamma| < 1e-3: first dead filter at epoch 4. at epoch 3: 20.0% dead by activation, 0.0% by "
        "|gamma|, test error 15.0% (1,000 test images); at epoch 4 (end): 30.0% dead by activation, 5.0% by |gamma|, "
        "test error 10.0% (1,000 test images).")
    facts = hypotheses.pilot_facts(progress, chosen_epochs=3)
    assert facts["first_dead_epoch"] == {"activation": 2, "gamma": 4} and facts["steps"] == 40
    assert facts["at_chosen"] == {"epoch": 3, "dead_by_activation": 0.2, "dead_by_gamma": 0.0, "test_error": 0.15}
    assert hypotheses.pilot_facts(progress, chosen_epochs=9)["at_chosen"] is None  # the pilot did not get that far
    never = progress.assign(dead_gamma_fraction=0.0)
    assert hypotheses.pilot_facts(never)["first_dead_epoch"]["gamma"] is None
    assert "by |gamma| < 1e-3: none dead" in hypotheses.pilot_description(never)


def test_onset_finds_the_first_dead_epoch_in_lr_x_steps():
    dead = {1e-3: [0, 0, 0, 0], 4e-3: [0, 0, 3, 5]}
    onset = hypotheses.onset(hypotheses.training_progress(tables_from_records(long_records(dead)))).set_index(
        ["optimizer", "decay_mode", "lr"])
    late = onset.loc[("adam", "l2", 4e-3)]
    assert late["onset_step"] == 30 and late["onset_lr_x_steps"] == pytest.approx(4e-3 * 30)
    assert late["final_lr_x_steps"] == pytest.approx(4e-3 * 40) and late["final_dead_pct"] == pytest.approx(50)
    never = onset.loc[("adam", "l2", 1e-3)]
    assert math.isnan(never["onset_step"]) and never["final_lr_x_steps"] == pytest.approx(1e-3 * 40)


# --- 11. ResNets ------------------------------------------------------------------------------------


def resnet_rows(adam_l2, sgd_l2, adam_none):
    return [{"optimizer": o, "decay_mode": m, "seed": s, "dead_by_activation": dead + 0.01 * s}
            for o, m, dead in (("adam", "l2", adam_l2), ("sgd", "l2", sgd_l2), ("adam", "none", adam_none))
            for s in SEEDS]


def pruned_rows(differences):
    return pd.DataFrame([{"seed": s, "max_logit_difference": d, "removed": 10, "dead": 12}
                         for s, d in zip(SEEDS, differences)])


def test_resnet_verdicts():
    verdicts = hypotheses.resnets(tables(resnet_rows(0.3, 0.0, 0.0)), pruned_rows([1e-14, 2e-14, 1e-14]))
    assert [v.status for v in verdicts] == [HOLDS, HOLDS, HOLDS]
    assert [v.p_value for v in verdicts[:2]] == pytest.approx([0.05, 0.05]) and verdicts[2].p_value is None
    assert verdicts[0].n == {"adam+l2": 3, "sgd+l2": 3} and verdicts[1].n == {"adam+l2": 3, "adam+none": 3}
    assert "seed 1: 2e-14, 10 of 12 dead filters removed" in verdicts[2].evidence
    verdicts = hypotheses.resnets(tables(resnet_rows(0.0, 0.3, 0.3)), pruned_rows([1e-14, 7.9e-6, 1e-14]))
    assert [v.status for v in verdicts] == [DOES_NOT_HOLD, DOES_NOT_HOLD, DOES_NOT_HOLD]
    assert hypotheses.resnets(tables(resnet_rows(0.3, 0.0, 0.0)), pd.DataFrame())[2].status == INCONCLUSIVE


def test_dead_per_stage_counts_each_criterion_over_its_filters():
    rows = [{"optimizer": "adam", "decay_mode": "l2", "seed": 0}]
    filters = pd.DataFrame({
        "run_id": ["r0"] * 6,
        "layer": ["bn1", "bn1", "layer1.0.bn1", "layer1.0.bn1", "layer2.0.bn2", "layer2.0.bn2"],
        "dead_by_activation": [True, False, True, False, True, False],
        "dead_by_gamma": [True, False, False, False, True, True],
        "measured": [True, True, True, True, False, False],
    })
    assert hypotheses.stage_of("bn1") == "stem" and hypotheses.stage_of("layer3.1.bn2") == "stage 3"
    stages = hypotheses.dead_per_stage(tables(rows, filters)).set_index("stage")
    assert list(stages.index) == ["stage 1", "stage 2", "stem"]
    assert stages.loc["stem", "dead_by_activation_pct"] == 50 and stages.loc["stem", "criteria_agreement"] == 1.0
    assert stages.loc["stage 1", "criteria_agreement"] == 0.5 and stages.loc["stage 1", "dead_by_gamma_pct"] == 0
    assert stages.loc["stage 2", "measured"] == 0 and math.isnan(stages.loc["stage 2", "dead_by_activation_pct"])
    assert stages.loc["stage 2", "dead_by_gamma_pct"] == 100 and (stages["setting"] == "adam+l2").all()


def precision_tables(error_shift=0.0, seeds=range(8), missing_twin=None):
    """Adam+L2 runs in both precisions, two layers of 16 and 32 filters; bfloat16 equal to float32
    except for ``error_shift`` on the test error; ``missing_twin``: a seed without its bfloat16 run."""
    runs, layers = [], []
    for seed in seeds:
        for precision in hypotheses.PRECISIONS:
            if precision == "bfloat16" and seed == missing_twin:
                continue
            run_id = f"{precision}-{seed}"
            dead = [seed % 3, 2 * (seed % 2)]
            runs.append({"run_id": run_id, "status": "completed", "optimizer": "adam", "seed": seed,
                         "precision": precision, "dead_by_activation": sum(dead) / 48, "dead_by_gamma": dead[1] / 48,
                         "test_error": 0.1 + 0.01 * seed + (error_shift if precision == "bfloat16" else 0.0),
                         "duration_s": 10.0})
            layers += [{"run_id": run_id, "layer": name, "filters": n, "dead_by_activation": d,
                        "dead_by_gamma": d if name == "C2" else 0} for name, n, d in (("C1", 16, dead[0]), ("C2", 32, dead[1]))]
    empty = pd.DataFrame()
    return RunTables(runs=pd.DataFrame(runs), layers=pd.DataFrame(layers), filters=empty, history=empty,
                     history_layers=empty, records=[])


def test_precision_pairs_match_each_seed_with_its_twin_and_every_part_is_tested():
    pairs = hypotheses.precision_pairs(precision_tables(missing_twin=7))
    assert set(pairs["seed"]) == set(range(7))  # seed 7 has no bfloat16 twin: left out
    assert list(dict.fromkeys(zip(pairs["quantity"], pairs["criterion"])))[:3] == [
        ("total", "activation"), ("total", "gamma"), ("test error", "")]
    assert dict(zip(pairs["quantity"], pairs["margin"])) == {"total": 0.02, "test error": 0.01, "C1": 0.05, "C2": 0.05}
    c1 = pairs[(pairs["quantity"] == "C1") & (pairs["criterion"] == "activation") & (pairs["seed"] == 2)].iloc[0]
    assert c1["float32"] == 2 / 16 and c1["difference"] == 0.0
    (verdict,) = hypotheses.precision_equivalence(precision_tables())
    assert verdict.status == HOLDS and len(verdict.parts) == 7 and verdict.p_value == pytest.approx(1 / 256)
    p_values = hypotheses.precision_part_p_values([verdict], hypotheses.precision_pairs(precision_tables()))
    assert p_values[("adam", "C2", "gamma")] == pytest.approx(1 / 256)


def test_precision_equivalence_fails_when_one_part_leaves_its_margin():
    (verdict,) = hypotheses.precision_equivalence(precision_tables(error_shift=0.03))
    assert verdict.status != HOLDS and "6 of 7 parts within their margins" in verdict.evidence
    assert "adam+l2, test error" in verdict.evidence and verdict.p_value == 1.0
    (only_one,) = hypotheses.precision_equivalence(precision_tables(seeds=[0]))
    assert only_one.status == INCONCLUSIVE  # one pair: no test


def test_run_onsets_give_each_runs_first_dead_snapshot_on_the_clock_of_lr_x_steps():
    progress = pd.DataFrame({
        "run_id": ["a"] * 3 + ["b"] * 3, "epoch": [1, 2, 3] * 2, "seed": 0, "arm": ["x"] * 3 + ["y"] * 3,
        "lr_x_steps": [0.5, 1.0, 1.5] * 2, "dead_fraction": [0.0, 0.1, 0.2, 0.0, 0.0, 0.0],
        "dead_gamma_fraction": [0.0, 0.0, 0.1, 0.0, 0.0, 0.0], "test_error": [0.3, 0.2, 0.1] * 2})
    onsets = hypotheses.run_onsets(progress).set_index("arm")
    assert onsets.loc["x", "onset_lr_x_steps_activation"] == 1.0 and onsets.loc["x", "onset_epoch_activation"] == 2
    assert onsets.loc["x", "onset_lr_x_steps_gamma"] == 1.5 and onsets.loc["x", "final_dead"] == 0.2
    assert math.isnan(onsets.loc["y", "onset_lr_x_steps_activation"])  # never died: no onset, not zero
    facts = hypotheses.screen_facts(onsets.reset_index())
    assert facts["y"]["onset_epoch_gamma"] is None and facts["x"]["final_lr_x_steps"] == 1.5


def test_arm_onsets_give_the_spread_over_seeds_and_how_many_runs_lost_a_filter():
    rows = []
    for run_id, arm, first_dead in (("a", "x", 2), ("b", "x", 3), ("c", "x", None), ("d", "y", None)):
        for epoch in (1, 2, 3):
            dead = 0.1 if first_dead is not None and epoch >= first_dead else 0.0
            rows.append({"run_id": run_id, "arm": arm, "seed": ord(run_id), "epoch": epoch, "lr_x_steps": 0.5 * epoch,
                         "dead_fraction": dead, "dead_gamma_fraction": 0.0, "test_error": 0.1})
    runs = pd.DataFrame({"run_id": list("abcd"), "status": "completed", "lr": 1e-3, "schedule": "step", "steps": 1000,
                         "step_milestones": [(0.5, 0.75)] * 4, "step_gamma": 0.1})
    facts = hypotheses.arm_onsets(pd.DataFrame(rows), runs)
    assert facts["x"]["runs"] == 3 and facts["x"]["high_rate_lr_x_steps"] == pytest.approx(0.5)  # 500 steps at 1e-3
    assert facts["x"]["activation"] == {"runs_with_deaths": 2, "lr_x_steps": {"median": 1.25, "min": 1.0, "max": 1.5},
                                        "epoch": {"median": 2.5, "min": 2.0, "max": 3.0}}
    assert facts["x"]["gamma"] == {"runs_with_deaths": 0, "lr_x_steps": None, "epoch": None}
    assert facts["y"]["activation"]["runs_with_deaths"] == 0


def test_the_saturation_runs_hold_the_rate_until_the_first_optimizer_has_the_reach(tmp_path):
    exp = start("10_training_length", preset="usual", seeds=[0], runs_dir=str(tmp_path), figures_dir=str(tmp_path / "f"))
    adam, *_, sgd = hypotheses.saturation_grid(exp, ["adam", "sgd"], [0, 1], 200, 32, 60.0)
    assert (adam.optimizer, adam.lr, sgd.optimizer, sgd.lr) == ("adam", 1e-3, "sgd", 0.1)
    assert adam.step_milestones == sgd.step_milestones == (0.96, 0.98) and adam.batch_size == 32
    steps = 200 * 313  # 10,000 images at batch 32
    assert high_rate_lr_x_steps(adam.lr, adam.schedule, steps, adam.step_milestones, adam.step_gamma) >= 60.0
    with pytest.raises(ValueError, match="give adam at lr 0.001 lr x steps 31.3 in all: at least 60"):
        hypotheses.saturation_grid(exp, ["adam"], [0], 100, 32, 60.0)


def test_saturation_facts_read_each_arm_at_fractions_of_its_high_rate_phase():
    runs, rows, layers = [], [], []
    for seed, slope in ((0, 0.01), (1, 0.02)):
        run_id = f"r{seed}"
        runs.append({"run_id": run_id, "optimizer": "adam", "decay_mode": "l2", "seed": seed, "status": "completed",
                     "lr": 1.0, "schedule": "step", "steps": 10, "step_milestones": (0.8, 0.9), "step_gamma": 0.1})
        rows += [{"run_id": run_id, "arm": "adam+l2", "seed": seed, "epoch": e, "lr_x_steps": float(min(e, 8)),
                  "dead_fraction": slope * min(e, 8), "dead_gamma_fraction": 0.0} for e in range(1, 11)]
        layers.append({"run_id": run_id, "layer": "C1", "filters": 10, "dead_by_activation": seed,
                       "dead_by_gamma": 0})
    empty = pd.DataFrame()
    facts = hypotheses.saturation_facts(pd.DataFrame(rows), RunTables(pd.DataFrame(runs), pd.DataFrame(layers),
                                                                       empty, empty, empty, records=[]))["adam+l2"]
    assert facts["high_rate_lr_x_steps"] == 8.0 and facts["runs"] == 2
    assert facts["at 0.5"]["lr_x_steps"] == 4.0 and facts["at 0.5"]["dead_by_activation"]["mean"] == pytest.approx(0.06)
    assert facts["at 1"]["dead_by_activation"] == {"mean": pytest.approx(0.12), "min": 0.08, "max": 0.16}
    assert facts["last_quarter_gain"]["mean"] == pytest.approx(0.03)  # 6 -> 8 of lr x steps: 0.02 and 0.04
    assert facts["layers_at_end"]["C1"]["dead_by_activation"]["mean"] == pytest.approx(0.05)
    json.dumps(facts)


def test_screen_arms_name_what_differs_from_the_presets_network():
    row = {"optimizer": "adam", "decay_mode": "l2", "decay": 5e-4, "decay_params": "all", "width": 0.25,
           "precision": "float32"}
    assert hypotheses.screen_arm(row, 0.25) == "adam+l2 5e-4, float32"
    assert hypotheses.screen_arm({**row, "width": 0.5, "decay": 2e-3, "precision": "bfloat16"}, 0.25) == \
        "adam+l2 2e-3, width 0.5, bfloat16"
    assert hypotheses.screen_arm({**row, "decay_params": "weights_only"}, 0.25) == "adam+l2 5e-4, BN not decayed, float32"


def test_an_arm_annealed_before_its_onset_is_not_reached_and_so_is_every_claim_about_it():
    from sparsitylib.verdict import NOT_REACHED, greater, not_reached

    common = dict(lr=1e-3, schedule="step", steps=6280, step_milestones=(0.8, 0.9), step_gamma=0.1)
    rows = ([{"arm": "adam+l2", "dead_by_activation": 0.03, **common}] * 3  # died: reached, whatever the clock
            + [{"arm": "adam+wd", "dead_by_activation": 0.0, **common}] * 3  # 5.02 of lr x steps < 7.7
            + [{"arm": "sgd+l2", "dead_by_activation": 0.0, **common, "lr": 0.1}] * 3)  # 502 >= 11
    runs = tables(rows).runs
    unreached = hypotheses.unreached_arms(runs, "arm", {"adam+wd": 7.7}, default_onset=11.0)
    assert list(unreached) == ["adam+wd"] and "lr x steps 5.02" in unreached["adam+wd"]
    assert "its onset in the screen (7.7)" in unreached["adam+wd"]
    assert list(hypotheses.unreached_arms(runs, "arm", {}, default_onset=500.0)) == ["adam+wd"]  # 502 >= 500
    one_died = tables(rows[:6] + [{"arm": "adam+wd", "dead_by_activation": 0.002, **common}]).runs
    assert "no filter died in 3 of its 4 runs" in hypotheses.unreached_arms(one_died, "arm", {}, 11.0)["adam+wd"]
    verdict = greater("L2 leaves more than WD", [0.03] * 3, [0.0] * 3, "adam+l2", "adam+wd", claim_id="l2-vs-wd")
    assert not_reached(verdict, unreached).status == NOT_REACHED
    assert verdict.evidence.startswith("adam+wd: not reached")
    assert in_family([verdict])[0].status == NOT_REACHED  # the family does not decide it again
    other = greater("Adam beats SGD", [0.03] * 3, [0.0] * 3, "adam+l2", "sgd+l2", claim_id="adam-vs-sgd")
    assert not_reached(other, unreached).status == HOLDS  # raw p 0.05: no arm unreached


def test_a_notebook_concludes_claims_about_arms_not_reached_as_such_and_writes_it(tmp_path):
    from sparsitylib.verdict import NOT_REACHED, greater

    exp = start("01_optimizer_regularizer", preset="long", seeds=[0, 1, 2], runs_dir=str(tmp_path),
                figures_dir=str(tmp_path / "figures"))
    claims_made = [greater("L2 leaves more than WD", [0.03] * 5, [0.0] * 5, "adam+l2", "adam+wd", claim_id="l2-vs-wd"),
                   greater("Adam beats SGD", [0.03] * 5, [0.0] * 5, "adam+l2", "sgd+l2", claim_id="adam-vs-sgd")]
    decided = exp.conclude(claims_made, unreached={"adam+wd": "not reached: short"})
    assert [v.status for v in decided] == [NOT_REACHED, HOLDS]
    written = json.loads((tmp_path / "figures" / "01_optimizer_regularizer.verdict.json").read_text())
    assert [v["status"] for v in written["verdicts"]] == [NOT_REACHED, HOLDS]


def test_dead_at_epochs_sets_each_arms_run_at_the_same_epochs():
    progress = pd.DataFrame({"arm": ["a"] * 3 + ["b"] * 2, "epoch": [10, 20, 30, 10, 20],
                             "dead_fraction": [0.0, 0.1, 0.2, 0.0, 0.05], "dead_gamma_fraction": [0.0, 0.0, 0.1, 0.0, 0.0]})
    facts = hypotheses.dead_at_epochs(progress, [10, 30])
    assert facts == {"a": {10: {"activation": 0.0, "gamma": 0.0}, 30: {"activation": 0.2, "gamma": 0.1}},
                     "b": {10: {"activation": 0.0, "gamma": 0.0}}}

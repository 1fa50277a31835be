"""The notebooks' verdict functions decide from the data: the same code holds or fails."""

import math

import pandas as pd
import pytest

from sparsitylib import hypotheses
from sparsitylib.store import RunTables
from sparsitylib.verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE


def tables(rows, filters=None, history=None):
    runs = pd.DataFrame(rows)
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    runs["status"] = "completed"
    empty = pd.DataFrame()
    return RunTables(runs=runs, layers=empty, filters=filters if filters is not None else empty,
                     history=history if history is not None else empty, history_layers=empty, records=[])


SEEDS = (0, 1, 2)


def optimizer_rows(adam_l2, sgd_l2, adam_wd, sgd_wd, none_level):
    rows = []
    for seed in SEEDS:
        rows += [
            {"optimizer": "adam", "decay_mode": "l2", "seed": seed, "dead_by_activation": adam_l2[seed]},
            {"optimizer": "sgd", "decay_mode": "l2", "seed": seed, "dead_by_activation": sgd_l2[seed]},
            {"optimizer": "adam", "decay_mode": "wd", "seed": seed, "dead_by_activation": adam_wd[seed]},
            {"optimizer": "sgd", "decay_mode": "wd", "seed": seed, "dead_by_activation": sgd_wd[seed]},
            {"optimizer": "adam", "decay_mode": "none", "seed": seed, "dead_by_activation": none_level},
            {"optimizer": "sgd", "decay_mode": "none", "seed": seed, "dead_by_activation": none_level},
        ]
    return rows


def test_optimizer_verdicts_follow_the_numbers():
    paper_like = hypotheses.optimizer_regularizer(tables(optimizer_rows([0.2, 0.25, 0.3], [0.0] * 3, [0.05, 0.02, 0.03],
                                                                        [0.0] * 3, 0.0)))
    assert [v.status for v in paper_like] == [HOLDS] * 4
    assert paper_like[0].p_value == pytest.approx(0.05) and paper_like[0].n == {"adam+l2": 3, "sgd+l2": 3}
    reversed_ = hypotheses.optimizer_regularizer(tables(optimizer_rows([0.0] * 3, [0.2, 0.25, 0.3], [0.0] * 3,
                                                                       [0.3, 0.4, 0.35], 0.2)))
    assert [v.status for v in reversed_] == [DOES_NOT_HOLD] * 4


def test_two_seeds_per_arm_leave_every_comparison_inconclusive():
    rows = [r for r in optimizer_rows([0.2, 0.25, 0.3], [0.0] * 3, [0.05, 0.02, 0.03], [0.0] * 3, 0.0) if r["seed"] < 2]
    adam, _, _, wd = hypotheses.optimizer_regularizer(tables(rows))
    assert adam.status == INCONCLUSIVE and adam.p_value == pytest.approx(1 / 6) and wd.status == INCONCLUSIVE


def sweep_rows(dead, error):
    """Adam with L2 and WD at four lambdas (``dead[mode][i]``, ``error[mode][i]``), and without
    regularization; three seeds each, jittered by 0.001 per seed."""
    rows = []
    for seed in SEEDS:
        for mode in ("l2", "wd"):
            for decay, d, e in zip(LAMBDAS, dead[mode], error[mode]):
                rows.append({"optimizer": "adam", "decay_mode": mode, "decay": decay, "seed": seed,
                             "dead_by_activation": d + 0.001 * seed, "test_error": e + 0.001 * seed})
        rows.append({"optimizer": "adam", "decay_mode": "none", "decay": 5e-4, "seed": seed,
                     "dead_by_activation": 0.0, "test_error": 0.11})
    return rows


LAMBDAS = (1e-4, 5e-4, 2e-3, 1e-2)


def test_l2_and_wd_are_compared_at_each_ones_lowest_test_error_lambda():
    # L2 is best at 5e-4 (20% dead); WD is best at 2e-3 (5% dead), and within 2 points at 1e-2 (15% dead)
    rows = sweep_rows(dead={"l2": [0.01, 0.2, 0.4, 0.6], "wd": [0.0, 0.01, 0.05, 0.15]},
                      error={"l2": [0.12, 0.10, 0.13, 0.2], "wd": [0.13, 0.125, 0.10, 0.115]})
    l2_trend, wd_trend, l2_vs_wd, wd_dead = hypotheses.regularization_strength(tables(rows))
    assert l2_trend.status == HOLDS and wd_trend.status == HOLDS
    assert l2_vs_wd.status == HOLDS and set(l2_vs_wd.n) == {"adam+l2 at 0.0005", "adam+wd at 0.002"}
    # WD at 1e-2 is the eligible lambda with most dead filters; p = 0.05 x 2 eligible lambdas (Bonferroni)
    assert "adam+wd at 0.01" in wd_dead.n and wd_dead.p_value == pytest.approx(0.1) and wd_dead.status == INCONCLUSIVE


def test_wd_leaves_dead_filters_when_one_lambda_near_the_best_error_is_eligible():
    rows = sweep_rows(dead={"l2": [0.01, 0.2, 0.4, 0.6], "wd": [0.0, 0.01, 0.05, 0.15]},
                      error={"l2": [0.12, 0.10, 0.13, 0.2], "wd": [0.13, 0.14, 0.10, 0.2]})
    *_, l2_vs_wd, wd_dead = hypotheses.regularization_strength(tables(rows))
    assert "adam+wd at 0.002" in wd_dead.n and wd_dead.p_value == pytest.approx(0.05) and wd_dead.status == HOLDS
    rows = sweep_rows(dead={"l2": [0.0] * 4, "wd": [0.0] * 4}, error={"l2": [0.1] * 4, "wd": [0.1] * 4})
    *_, l2_vs_wd, wd_dead = hypotheses.regularization_strength(tables(rows))
    assert l2_vs_wd.status == INCONCLUSIVE and wd_dead.status == INCONCLUSIVE


def test_trend_verdicts_on_a_setting():
    rows = [{"decay": d, "seed": s, "dead_by_activation": d * 100 + s * 0.01} for d in (1e-4, 5e-4, 1e-3) for s in SEEDS]
    assert hypotheses.increases_with(tables(rows), "decay", "more decay, more dead").status == HOLDS
    assert hypotheses.increases_with(tables(rows), "decay", "more decay, fewer dead", direction=-1).status == DOES_NOT_HOLD


def test_dead_filters_with_negative_beta():
    dead = 10  # 10 of 10 at beta <= 0: binomial p = 1/1024 against a coin flip
    filters = pd.DataFrame({"run_id": ["r0"] * (dead + 2), "dead_by_activation": [True] * dead + [False, False],
                            "gamma": [0.0] * dead + [1.0, 0.8], "beta": [-0.3] * dead + [0.2, -0.1]})
    history = pd.DataFrame({"run_id": ["r0", "r0"], "epoch": [1, 2], "dead_total": [0, dead]})
    rows = [{"optimizer": "adam", "decay_mode": "l2", "seed": 0, "dead_by_activation": 0.5}]
    beta, _ = hypotheses.batchnorm_dynamics(tables(rows, filters, history))
    assert beta.status == HOLDS and "100% of 10 dead filters" in beta.evidence
    assert beta.p_value == pytest.approx(1 / 1024)
    filters["beta"] = [0.3] * dead + [0.2, -0.1]
    beta, _ = hypotheses.batchnorm_dynamics(tables(rows, filters, history))
    assert beta.status == DOES_NOT_HOLD
    filters["beta"] = [-0.3, -0.3] + [0.3] * (dead - 2) + [0.2, -0.1]
    assert hypotheses.batchnorm_dynamics(tables(rows, filters.iloc[:2].assign(beta=[-0.3, -0.2]), history))[0].status \
        == INCONCLUSIVE  # 2 of 2 is too few to tell from chance


def test_number_of_classes():
    runs = pd.DataFrame({"classes": [None, (0, 1), [0, 1, 2]], "dataset": ["cifar100", "fashion-mnist", "fashion-mnist"]})
    assert hypotheses.number_of_classes(runs).tolist() == [100, 2, 3]


def test_mechanism_variant_labels():
    base = {"activation": "relu", "norm": "batchnorm", "decay_params": "all"}
    assert hypotheses.mechanism_variant(base) == hypotheses.BASELINE
    assert hypotheses.mechanism_variant({**base, "activation": "leaky_relu"}) == "leaky ReLU"
    assert hypotheses.mechanism_variant({**base, "norm": "none"}) == "no BatchNorm"
    assert hypotheses.mechanism_variant({**base, "decay_params": "weights_only"}) == "BN params not decayed"


def test_selective_filters_die_compares_filters_that_die_with_survivors():
    from sparsitylib.store import tables_from_records

    def record(run_id, early, dead):
        return {"run_id": run_id, "status": "completed", "config": {}, "metrics": {}, "layers": [],
                "filters": {"layer": ["C1"] * 4, "filter": [0, 1, 2, 3], "dead_by_activation": dead},
                "history": [{"epoch": 1, "dead_per_layer": [0], "gamma_quantiles": [[1, 1, 1, 1, 1]],
                             "filter_selectivity": early}]}

    fates = [True, True, False, False]
    dies_selective = tables_from_records([record("a", [0.9, 0.8, 0.1, 0.2], fates), record("b", [0.7, 0.9, 0.0, 0.3], fates),
                                          record("c", [0.6, 0.9, 0.2, 0.3], fates)])
    assert hypotheses.selective_filters_die(dies_selective, ["a", "b", "c"]).status == HOLDS
    dies_universal = tables_from_records([record("a", [0.1, 0.0, 0.9, 0.8], fates), record("b", [0.2, 0.0, 0.9, 0.7], fates),
                                          record("c", [0.1, 0.1, 0.5, 0.8], fates)])
    assert hypotheses.selective_filters_die(dies_universal, ["a", "b", "c"]).status == DOES_NOT_HOLD


def pruning_table(implicit_error, difference):
    rows = [("unpruned (adaptive + L2)", 100, 0.20, 0.20, 1.0, float("nan")),
            ("implicit: dead filters removed", 50, 0.20, implicit_error, 2.0, difference),
            ("L1-norm filters (Li et al.)", 49, 0.60, 0.10, 2.04, float("nan")),
            ("Network Slimming (Liu et al.)", 50, 0.50, 0.12, 2.0, float("nan"))]
    return pd.DataFrame([{"model": "basicnet", "dataset": "fashion-mnist", "seed": 0, "method": m, "macs": macs,
                          "test_error_pruned": before, "test_error_finetuned": after, "mac_reduction": reduction,
                          "max_logit_difference": diff} for m, macs, before, after, reduction, diff in rows])


def test_pruning_verdicts():
    exact, par = hypotheses.pruning(pruning_table(implicit_error=0.105, difference=1e-14))
    assert exact.status == HOLDS and par.status == HOLDS
    exact, par = hypotheses.pruning(pruning_table(implicit_error=0.13, difference=2e-4))
    assert exact.status == DOES_NOT_HOLD and par.status == DOES_NOT_HOLD


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


def test_training_length_verdicts_read_the_histories():
    from sparsitylib.store import tables_from_records

    # dead filters a function of lr x steps: lr 1e-3 reaches at epoch 4 what 4e-3 reaches at epoch 1
    collapse = {1e-3: [0, 1, 2, 4], 4e-3: [4, 6, 7, 8], 1.6e-2: [8, 9, 9, 9]}
    adam_vs_none, adam_vs_sgd, sgd_none, governed = hypotheses.training_length(tables_from_records(long_records(collapse)))
    assert adam_vs_none.status == HOLDS and adam_vs_sgd.status == HOLDS and sgd_none.status == HOLDS
    assert governed.status == HOLDS and governed.effect > 0.9
    progress = hypotheses.training_progress(tables_from_records(long_records(collapse)))
    first = progress[(progress["run_id"] == "adam-0.004-0") & (progress["epoch"] == 2)].iloc[0]
    assert first["steps"] == 20 and first["lr_x_steps"] == pytest.approx(4e-3 * 20) and first["dead_fraction"] == 0.6
    # SGD+L2 with dead filters: the "none at any length" claim fails
    _, _, sgd_none, _ = hypotheses.training_length(tables_from_records(long_records(collapse, sgd_dead=3)))
    assert sgd_none.status == DOES_NOT_HOLD


def test_onset_finds_the_first_dead_epoch_in_lr_x_steps():
    from sparsitylib.store import tables_from_records

    dead = {1e-3: [0, 0, 0, 0], 4e-3: [0, 0, 3, 5]}
    onset = hypotheses.onset(hypotheses.training_progress(tables_from_records(long_records(dead)))).set_index(
        ["optimizer", "decay_mode", "lr"])
    late = onset.loc[("adam", "l2", 4e-3)]
    assert late["onset_step"] == 30 and late["onset_lr_x_steps"] == pytest.approx(4e-3 * 30)
    assert late["final_lr_x_steps"] == pytest.approx(4e-3 * 40) and late["final_dead_pct"] == pytest.approx(50)
    never = onset.loc[("adam", "l2", 1e-3)]
    assert math.isnan(never["onset_step"]) and never["final_lr_x_steps"] == pytest.approx(1e-3 * 40)

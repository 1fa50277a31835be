"""The notebooks' verdict functions decide from the data: the same code holds or fails."""

import pandas as pd

from sparsitylib import hypotheses
from sparsitylib.store import RunTables
from sparsitylib.verdict import DOES_NOT_HOLD, HOLDS


def tables(rows, filters=None, history=None):
    runs = pd.DataFrame(rows)
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    runs["status"] = "completed"
    empty = pd.DataFrame()
    return RunTables(runs=runs, layers=empty, filters=filters if filters is not None else empty,
                     history=history if history is not None else empty, history_layers=empty, records=[])


def optimizer_rows(adam_l2, sgd_l2, adam_wd, none_level):
    rows = []
    for seed in (0, 1):
        rows += [
            {"optimizer": "adam", "decay_mode": "l2", "seed": seed, "dead_by_activation": adam_l2[seed]},
            {"optimizer": "sgd", "decay_mode": "l2", "seed": seed, "dead_by_activation": sgd_l2[seed]},
            {"optimizer": "adam", "decay_mode": "decoupled", "seed": seed, "dead_by_activation": adam_wd[seed]},
            {"optimizer": "adam", "decay_mode": "none", "seed": seed, "dead_by_activation": none_level},
            {"optimizer": "sgd", "decay_mode": "none", "seed": seed, "dead_by_activation": none_level},
        ]
    return rows


def test_optimizer_verdicts_follow_the_numbers():
    paper_like = hypotheses.optimizer_regularizer(tables(optimizer_rows([0.2, 0.25], [0.0, 0.0], [0.05, 0.02], 0.0)))
    assert [v.status for v in paper_like] == [HOLDS, HOLDS, HOLDS, HOLDS]
    reversed_ = hypotheses.optimizer_regularizer(tables(optimizer_rows([0.0, 0.0], [0.2, 0.25], [0.3, 0.4], 0.2)))
    assert [v.status for v in reversed_] == [DOES_NOT_HOLD] * 4


def test_trend_verdicts_on_a_setting():
    rows = [{"decay": d, "seed": s, "dead_by_activation": d * 100 + s * 0.01} for d in (1e-4, 5e-4, 1e-3) for s in (0, 1)]
    assert hypotheses.increases_with(tables(rows), "decay", "more decay, more dead").status == HOLDS
    assert hypotheses.increases_with(tables(rows), "decay", "more decay, fewer dead", direction=-1).status == DOES_NOT_HOLD


def test_dead_filters_with_negative_beta():
    filters = pd.DataFrame({"run_id": ["r0"] * 4, "dead_by_activation": [True, True, False, False],
                            "gamma": [0.0, 1e-4, 1.0, 0.8], "beta": [-0.3, -0.1, 0.2, -0.1]})
    history = pd.DataFrame({"run_id": ["r0", "r0"], "epoch": [1, 2], "dead_total": [0, 2]})
    rows = [{"optimizer": "adam", "decay_mode": "l2", "seed": 0, "dead_by_activation": 0.5}]
    beta, _ = hypotheses.batchnorm_dynamics(tables(rows, filters, history))
    assert beta.status == HOLDS and "100% of 2 dead filters" in beta.evidence
    filters["beta"] = [0.3, 0.1, 0.2, -0.1]
    beta, _ = hypotheses.batchnorm_dynamics(tables(rows, filters, history))
    assert beta.status == DOES_NOT_HOLD


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

    dies_selective = tables_from_records([record("a", [0.9, 0.8, 0.1, 0.2], [True, True, False, False]),
                                          record("b", [0.7, 0.9, 0.0, 0.3], [True, True, False, False])])
    assert hypotheses.selective_filters_die(dies_selective, ["a", "b"]).status == HOLDS
    dies_universal = tables_from_records([record("a", [0.1, 0.0, 0.9, 0.8], [True, True, False, False])])
    assert hypotheses.selective_filters_die(dies_universal, ["a"]).status == DOES_NOT_HOLD


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

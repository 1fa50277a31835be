import pandas as pd
import pytest

from sparsitylib.verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, combine, count_holding, greater, near_zero, trend


@pytest.mark.parametrize("a,b,status", [
    ([0.3, 0.2], [0.0, 0.1], HOLDS),
    ([0.0, 0.0], [0.0, 0.0], DOES_NOT_HOLD),  # equal is not greater
    ([0.1, 0.0], [0.2, 0.3], DOES_NOT_HOLD),
    ([0.3, 0.05], [0.1, 0.0], INCONCLUSIVE),  # the seeds overlap
    ([], [0.1], INCONCLUSIVE),
])
def test_greater_is_decided_by_every_seed(a, b, status):
    verdict = greater("a > b", a, b, "A", "B")
    assert verdict.status == status
    if a:
        assert "A:" in verdict.evidence and "n=" in verdict.evidence


def frame(levels, values):
    return pd.DataFrame({"x": levels, "y": values})


def test_trend_holds_only_for_an_ordered_and_separated_sweep():
    rising = frame([1, 1, 2, 2, 3, 3], [0.0, 0.01, 0.1, 0.12, 0.3, 0.2])
    assert trend("up", rising, "x", "y").status == HOLDS
    assert trend("down", rising, "x", "y", direction=-1).status == DOES_NOT_HOLD
    flat = frame([1, 2, 3], [0.0, 0.0, 0.0])
    assert trend("up", flat, "x", "y").status == DOES_NOT_HOLD
    bumpy = frame([1, 1, 2, 2, 3, 3], [0.0, 0.2, 0.3, 0.3, 0.1, 0.25])
    assert trend("up", bumpy, "x", "y").status == INCONCLUSIVE
    assert trend("up", frame([1, 2], [0.0, 1.0]), "x", "y").status == INCONCLUSIVE


def test_near_zero():
    assert near_zero("vanishes", [0.0, 0.005], "x").status == HOLDS
    assert near_zero("vanishes", [0.2, 0.3], "x").status == DOES_NOT_HOLD
    assert near_zero("vanishes", [0.0, 0.04], "x").status == INCONCLUSIVE


def test_combining_verdicts():
    holds, fails, unsure = (greater("h", [1], [0], "a", "b"), greater("f", [0], [1], "a", "b"),
                            greater("u", [0, 2], [1], "a", "b"))
    assert combine("all", [holds, holds]).status == HOLDS
    assert combine("all", [holds, fails]).status == DOES_NOT_HOLD
    assert combine("all", [holds, unsure]).status == INCONCLUSIVE
    assert count_holding("most", [holds, holds, fails]).status == HOLDS
    assert count_holding("most", [holds, fails, fails]).status == INCONCLUSIVE
    assert count_holding("most", [fails, unsure]).status == DOES_NOT_HOLD

"""The verdict rule on constructed data: exact p-values where the permutation count is known."""

import itertools
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparsitylib.verdict import (
    ALPHA,
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    combine,
    count_holding,
    greater,
    near_zero,
    spearman_p_values,
    trend,
)


def test_three_separated_seeds_against_three_give_p_one_in_twenty_and_hold():
    verdict = greater("a > b", [0.3, 0.2, 0.25], [0.0, 0.1, 0.05], "A", "B")
    assert verdict.p_value == pytest.approx(1 / 20, abs=1e-12)  # 1 of C(6, 3) relabellings
    assert verdict.status == HOLDS and ALPHA == 0.05
    assert verdict.n == {"A": 3, "B": 3} and verdict.values == {"A": [0.3, 0.2, 0.25], "B": [0.0, 0.1, 0.05]}
    assert verdict.effect == pytest.approx(0.2)
    assert "A:" in verdict.evidence and "n=3" in verdict.evidence and "p=0.05" in verdict.evidence


def test_two_seeds_against_two_can_never_decide():
    verdict = greater("a > b", [0.3, 0.2], [0.0, 0.1], "A", "B")
    assert verdict.p_value == pytest.approx(1 / 6, abs=1e-12)
    assert verdict.status == INCONCLUSIVE


def test_the_opposite_direction_at_p_005_does_not_hold():
    verdict = greater("a > b", [0.0, 0.1, 0.05], [0.3, 0.2, 0.25], "A", "B")
    assert verdict.status == DOES_NOT_HOLD and verdict.p_value == pytest.approx(1 / 20, abs=1e-12)
    assert verdict.effect == pytest.approx(-0.2)


@pytest.mark.parametrize("a,b", [
    ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),  # no difference: neither direction is shown
    ([0.3, 0.05, 0.2], [0.1, 0.0, 0.25]),  # the seeds overlap
    ([], [0.1]),
])
def test_everything_else_is_inconclusive(a, b):
    assert greater("a > b", a, b, "A", "B").status == INCONCLUSIVE


def test_overlapping_four_against_four_matches_a_count_of_all_seventy_relabellings():
    a, b = [1.0, 2.0, 3.0, 4.5], [0.0, 0.5, 0.7, 4.0]
    pooled, observed = a + b, np.mean(a) - np.mean(b)
    splits = list(itertools.combinations(range(8), 4))
    at_least = sum(np.mean([pooled[i] for i in s]) - np.mean([pooled[i] for i in range(8) if i not in s])
                   >= observed - 1e-12 for s in splits)
    verdict = greater("a > b", a, b, "A", "B")
    assert len(splits) == 70 and verdict.p_value == pytest.approx(at_least / 70, abs=1e-12)
    assert verdict.status == (HOLDS if at_least / 70 <= ALPHA else INCONCLUSIVE)


def frame(levels, values):
    return pd.DataFrame({"x": levels, "y": values})


def test_trend_p_value_is_the_exact_permutation_p_of_spearman_rho():
    # 4 distinct levels in perfect order: rho = 1, reached by 1 of 4! = 24 orderings
    rho, p_up, p_down = spearman_p_values([1, 2, 3, 4], [0.0, 0.1, 0.2, 0.3])
    assert rho == pytest.approx(1.0) and p_up == pytest.approx(1 / 24) and p_down == pytest.approx(1.0)
    assert trend("up", frame([1, 2, 3, 4], [0.0, 0.1, 0.2, 0.3]), "x", "y").status == HOLDS
    assert trend("down", frame([1, 2, 3, 4], [0.0, 0.1, 0.2, 0.3]), "x", "y", direction=-1).status == DOES_NOT_HOLD
    # 3 levels in perfect order: 1 of 3! = 6 orderings, p = 1/6: not enough runs to decide
    assert trend("up", frame([1, 2, 3], [0.0, 0.1, 0.2]), "x", "y").status == INCONCLUSIVE


def test_trend_statistic_is_scipys_spearman_rho_with_ties():
    x = [1, 1, 1, 2, 2, 2, 3, 3, 3]
    y = [0.0, 0.01, 0.0, 0.1, 0.12, 0.1, 0.3, 0.2, 0.2]
    rho, p_up, _ = spearman_p_values(x, y)
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic)
    verdict = trend("up", frame(x, y), "x", "y")
    assert verdict.status == HOLDS and verdict.p_value == p_up < 0.01
    assert verdict.n == {"x=1": 3, "x=2": 3, "x=3": 3} and verdict.effect == pytest.approx(rho)


def test_trend_without_variation_or_with_too_few_levels_is_inconclusive():
    assert trend("up", frame([1, 2, 3], [0.0, 0.0, 0.0]), "x", "y").status == INCONCLUSIVE
    bumpy = frame([1, 1, 2, 2, 3, 3], [0.0, 0.2, 0.3, 0.3, 0.1, 0.25])
    assert trend("up", bumpy, "x", "y").status == INCONCLUSIVE
    assert trend("up", frame([1, 2], [0.0, 1.0]), "x", "y").status == INCONCLUSIVE


def test_near_zero_is_a_bound_without_p_value():
    assert near_zero("vanishes", [0.0, 0.005, 0.0], "x").status == HOLDS
    assert near_zero("vanishes", [0.2, 0.3], "x").status == DOES_NOT_HOLD
    assert near_zero("vanishes", [0.0, 0.04], "x").status == INCONCLUSIVE
    assert near_zero("vanishes", [0.0], "x").p_value is None


def test_combining_verdicts():
    a, b = [0.3, 0.2, 0.25], [0.0, 0.1, 0.05]
    holds, fails, unsure = (greater("h", a, b, "a", "b"), greater("f", b, a, "a", "b"),
                            greater("u", [0.3, 0.05, 0.2], [0.1, 0.0, 0.25], "a", "b"))
    both = combine("all", [holds, holds])
    assert both.status == HOLDS and both.p_value == pytest.approx(0.05) and len(both.parts) == 2
    assert combine("all", [holds, fails]).status == DOES_NOT_HOLD
    assert combine("all", [holds, unsure]).status == INCONCLUSIVE and combine("all", [holds, unsure]).p_value is None
    assert count_holding("most", [holds, holds, fails]).status == HOLDS
    assert count_holding("most", [holds, fails, unsure]).status == INCONCLUSIVE
    assert count_holding("most", [fails, fails, unsure]).status == DOES_NOT_HOLD

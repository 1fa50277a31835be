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
    INVALID,
    MIN_DEAD_EFFECT,
    Verdict,
    adjust,
    all_bounds,
    combine,
    did_not_train,
    equivalent,
    greater,
    holm,
    invalid,
    near_zero,
    paired_greater,
    spearman_p_values,
    trend,
    trend_p_min,
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


def test_combining_verdicts_is_an_intersection_union_test():
    a, b = [0.3, 0.2, 0.25], [0.0, 0.1, 0.05]
    holds, fails, unsure = (greater("h", a, b, "a", "b"), greater("f", b, a, "a", "b"),
                            greater("u", [0.3, 0.05, 0.2], [0.1, 0.0, 0.25], "a", "b"))
    both = combine("all", [holds, holds])
    assert both.status == HOLDS and both.p_value == pytest.approx(0.05) and len(both.parts) == 2
    # a part against the claim: its p times the number of parts (0.05 x 2): not enough to say "does not hold"
    mixed = combine("all", [holds, fails])
    assert mixed.supports == -1 and mixed.p_value == pytest.approx(0.1) and mixed.status == INCONCLUSIVE
    weak = combine("all", [holds, unsure])
    assert weak.status == INCONCLUSIVE and weak.p_value == pytest.approx(unsure.p_value)
    assert combine("all", [holds, near_zero("bound", [0.0], "x")]).status == INCONCLUSIVE  # parts need p-values


def test_bounds_combine_without_a_p_value():
    ok, bad = near_zero("a", [0.0, 0.0], "a"), near_zero("b", [0.2, 0.3], "b")
    assert all_bounds("all", [ok, ok]).status == HOLDS and all_bounds("all", [ok, ok]).p_value is None
    assert all_bounds("all", [ok, bad]).status == DOES_NOT_HOLD
    assert all_bounds("all", [ok, ok]).n == {"runs": 4}


def test_five_seeds_against_five_reach_one_in_252():
    verdict = greater("a > b", [0.30, 0.31, 0.32, 0.33, 0.34], [0.0, 0.01, 0.0, 0.02, 0.0], "A", "B")
    assert verdict.p_value == pytest.approx(1 / 252) and verdict.p_min == pytest.approx(1 / 252)
    assert greater("a > b", [0.3, 0.2, 0.25], [0.0, 0.1, 0.05], "A", "B").p_min == pytest.approx(1 / 20)


def test_a_separated_effect_below_the_minimum_is_not_a_finding():
    tiny = greater("a > b", [0.009, 0.008, 0.009], [0.0, 0.0, 0.0], "A", "B")
    assert tiny.p_value == pytest.approx(0.05) and tiny.effect < MIN_DEAD_EFFECT
    assert tiny.status == INCONCLUSIVE and tiny.supports == 0
    assert greater("a > b", [0.02, 0.03, 0.02], [0.0, 0.0, 0.0], "A", "B").status == HOLDS
    # the same holds the other way: a tiny reversal does not "not hold"
    assert greater("a > b", [0.0, 0.0, 0.0], [0.009, 0.008, 0.009], "A", "B").status == INCONCLUSIVE


def test_a_trend_needs_its_extreme_levels_apart_by_the_minimum_effect():
    x = [1, 1, 1, 2, 2, 2, 3, 3, 3]
    tiny = [0.0, 0.001, 0.0, 0.002, 0.003, 0.002, 0.004, 0.005, 0.004]  # perfectly ordered, 0.4 points in all
    assert trend("up", frame(x, tiny), "x", "y").status == INCONCLUSIVE
    assert trend("up", frame(x, [v * 10 for v in tiny]), "x", "y").status == HOLDS


def test_trend_p_min_counts_the_distinct_assignments_of_values_to_levels():
    assert trend_p_min([1, 1, 1, 1]) == pytest.approx(1 / 24)
    assert trend_p_min([3, 3, 3]) == pytest.approx(1 / 1680)  # 9! / (3! 3! 3!) assignments of runs to levels
    assert trend_p_min([6, 6, 6]) == pytest.approx(1 / 10000)  # more assignments than resamples


def test_holm_adjusts_exactly():
    # sorted 0.01, 0.02, 0.03, 0.04 -> 4 x 0.01, max(.04, 3 x .02), max(.06, 2 x .03), max(.06, .04)
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.01, 0.9]) == pytest.approx([0.02, 0.9]) and holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def test_adjust_decides_on_the_holm_p_and_leaves_bounds_and_invalid_verdicts_out():
    at_252 = greater("strong", [0.30, 0.31, 0.32, 0.33, 0.34], [0.0, 0.01, 0.0, 0.02, 0.0], "A", "B")
    at_20 = greater("weak", [0.3, 0.2, 0.25], [0.0, 0.1, 0.05], "A", "B")
    also_20 = greater("weak too", [0.3, 0.2, 0.25], [0.0, 0.1, 0.05], "A", "B")
    bound, broken = near_zero("bound", [0.0], "x"), invalid("broken", "the control did not train")
    verdicts = adjust([at_252, at_20, also_20, bound, broken], "nb")
    assert at_252.p_adjusted == pytest.approx(3 / 252) and at_252.status == HOLDS
    assert at_20.p_adjusted == pytest.approx(0.1) and at_20.status == INCONCLUSIVE  # was "holds" at raw p 0.05
    assert at_20.p_value == pytest.approx(0.05) and "Holm over 3" in at_20.family
    assert bound.p_adjusted is None and bound.status == HOLDS and broken.status == INVALID and len(verdicts) == 5


def test_the_largest_p_of_a_family_is_compared_with_alpha_itself():
    at_252 = greater("strong", [0.30, 0.31, 0.32, 0.33, 0.34], [0.0, 0.01, 0.0, 0.02, 0.0], "A", "B")
    at_20 = greater("weak", [0.3, 0.2, 0.25], [0.0, 0.1, 0.05], "A", "B")
    adjust([at_252, at_20])
    assert at_20.p_adjusted == pytest.approx(0.05) and at_20.status == HOLDS


def test_paired_sign_flip_test_is_exact():
    verdict = paired_greater("dies more selective", [0.1, 0.2, 0.05, 0.3, 0.15], "difference")
    assert verdict.p_value == pytest.approx(1 / 32) and verdict.p_min == pytest.approx(1 / 32)
    assert verdict.status == HOLDS and verdict.n == {"difference": 5}
    three = paired_greater("three runs", [0.1, 0.2, 0.3], "difference")
    assert three.p_value == pytest.approx(1 / 8) and three.status == INCONCLUSIVE  # 3 runs can never decide
    mixed = paired_greater("mixed", [0.1, -0.2, 0.05, 0.3, 0.15], "difference")
    # sign patterns with a mean >= 0.08: count them over all 32
    d = np.array([0.1, -0.2, 0.05, 0.3, 0.15])
    count = sum(np.mean(d * np.array(signs)) >= d.mean() - 1e-12 for signs in itertools.product([1, -1], repeat=5))
    assert mixed.p_value == pytest.approx(count / 32)


def test_equivalence_holds_only_when_both_one_sided_tests_reject():
    same = frame([1, 1, 1, 2, 2, 2], [0.25, 0.26, 0.24, 0.25, 0.27, 0.26])
    verdict = equivalent("lr does not matter", same, "x", "y", margin=0.05)
    assert verdict.status == HOLDS and verdict.p_value == pytest.approx(0.05) and verdict.supports == 1
    apart = frame([1, 1, 1, 2, 2, 2], [0.0, 0.01, 0.0, 0.25, 0.26, 0.24])
    assert equivalent("lr does not matter", apart, "x", "y", margin=0.05).status == DOES_NOT_HOLD
    noisy = frame([1, 1, 1, 2, 2, 2], [0.1, 0.3, 0.2, 0.12, 0.35, 0.2])
    assert equivalent("lr does not matter", noisy, "x", "y", margin=0.05).status == INCONCLUSIVE


def test_an_untrained_control_makes_a_comparison_invalid():
    assert did_not_train([0.898, 0.9, 0.185], num_classes=10).tolist() == [True, True, False]  # per run
    assert not did_not_train([0.2, 0.15], num_classes=10).any() and did_not_train([0.81], num_classes=10).all()
    verdict = invalid("no BN, fewer die", "the control did not train")
    assert verdict.status == INVALID and verdict.p_value is None


def test_every_verdict_carries_an_interval_around_its_effect():
    verdict = greater("a > b", [0.3, 0.2, 0.25], [0.0, 0.1, 0.05], "A", "B")
    low, high = verdict.ci
    assert low <= verdict.effect <= high and low >= 0.1 and high <= 0.3  # the extreme resamples
    assert verdict.effect_text.startswith("20.0% [")
    rho = trend("up", frame([1, 1, 1, 2, 2, 2, 3, 3, 3], [0.0, 0.01, 0.0, 0.1, 0.12, 0.1, 0.3, 0.2, 0.2]), "x", "y")
    assert -1 <= rho.ci[0] <= rho.effect + 1e-12 and rho.effect <= rho.ci[1] + 1e-12 <= 1 + 1e-12
    assert Verdict("c", HOLDS, "e").effect_text == ""


def test_conclude_writes_holm_adjusted_verdicts_run_ids_and_recorded_facts(tmp_path):
    import json

    from sparsitylib.notebook import start
    from sparsitylib.verdict import Verdict

    exp = start("01_alpha", preset="smoke", seeds=[0], runs_dir=str(tmp_path / "runs"), figures_dir=str(tmp_path))
    exp.run_ids += ["b", "a"]
    exp.record("pilot", {"first_dead_epoch": {"activation": 24, "gamma": None}})
    exp.conclude([Verdict("x", "holds", "", "permutation", p_value=0.01, effect=0.2, min_effect=0.01),
                  Verdict("y", "holds", "", "permutation", p_value=0.02, effect=0.2, min_effect=0.01)])
    written = json.loads((tmp_path / "01_alpha.verdict.json").read_text())
    assert written["run_ids"] == ["a", "b"]
    assert written["facts"] == {"pilot": {"first_dead_epoch": {"activation": 24, "gamma": None}}}
    assert [v["p_adjusted"] for v in written["verdicts"]] == [pytest.approx(0.02), pytest.approx(0.02)]
    assert not (tmp_path / "runs").exists()  # concluding trains nothing

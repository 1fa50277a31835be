"""The verdict rules on constructed data: exact p-values where the permutation count is known."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparsitylib.verdict import (
    ALPHA,
    DESCRIBED,
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    INVALID,
    MIN_DEAD_EFFECT,
    PRIMARY,
    SECONDARY,
    Verdict,
    adjust,
    all_bounds,
    combine,
    did_not_train,
    equivalent,
    greater,
    invalid,
    NOT_REACHED,
    near_zero,
    not_reached,
    paired_greater,
    permutation_p_values,
    spearman_p_values,
    t_interval,
    trend,
    trend_p_min,
    welch_interval,
)


def test_three_separated_seeds_against_three_give_p_one_in_twenty_and_hold():
    verdict = greater("a > b", [0.3, 0.2, 0.25], [0.0, 0.1, 0.05], "A", "B")
    assert verdict.p_value == pytest.approx(1 / 20, abs=1e-12)  # 1 of C(6, 3) relabellings
    assert verdict.p_against == pytest.approx(1.0) and verdict.status == HOLDS and ALPHA == 0.05
    assert verdict.n == {"A": 3, "B": 3} and verdict.values == {"A": [0.3, 0.2, 0.25], "B": [0.0, 0.1, 0.05]}
    assert verdict.effect == pytest.approx(0.2)
    assert "A:" in verdict.evidence and "n=3" in verdict.evidence and "p=0.05 for the claim" in verdict.evidence


def test_two_seeds_against_two_can_never_decide():
    verdict = greater("a > b", [0.3, 0.2], [0.0, 0.1], "A", "B")
    assert verdict.p_value == pytest.approx(1 / 6, abs=1e-12)
    assert verdict.status == INCONCLUSIVE


def test_does_not_hold_is_the_reversed_test_with_the_same_evidence():
    verdict = greater("a > b", [0.0, 0.1, 0.05], [0.3, 0.2, 0.25], "A", "B")
    assert verdict.status == DOES_NOT_HOLD and verdict.p_against == pytest.approx(1 / 20, abs=1e-12)
    assert verdict.p_value == pytest.approx(1.0) and verdict.effect == pytest.approx(-0.2)


@pytest.mark.parametrize("a,b", [
    ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),  # no difference: neither direction is shown
    ([0.3, 0.05, 0.2], [0.1, 0.0, 0.25]),  # the seeds overlap
    ([], [0.1]),
])
def test_everything_else_is_inconclusive(a, b):
    assert greater("a > b", a, b, "A", "B").status == INCONCLUSIVE


def test_overlapping_four_against_four_matches_a_count_of_all_seventy_relabellings_of_the_shifted_values():
    a, b = [1.0, 2.0, 3.0, 4.5], [0.0, 0.5, 0.7, 4.0]
    shift = 0.5
    pooled = [v - shift for v in a] + b
    observed = np.mean(pooled[:4]) - np.mean(b)
    splits = list(itertools.combinations(range(8), 4))
    at_least = sum(np.mean([pooled[i] for i in s]) - np.mean([pooled[i] for i in range(8) if i not in s])
                   >= observed - 1e-12 for s in splits)
    verdict = greater("a > b", a, b, "A", "B", fmt="{:.2f}", min_effect=shift)
    assert len(splits) == 70 and verdict.p_value == pytest.approx(at_least / 70, abs=1e-12)


def test_the_minimum_effect_shifts_the_null_not_only_the_point_estimate():
    a, b = [0.012, 0.013, 0.030, 0.031, 0.032], [0.0, 0.0, 0.005, 0.006, 0.008]
    assert permutation_p_values(a, b)[0] == pytest.approx(1 / 252)  # separated: the unshifted test's floor
    verdict = greater("a > b", a, b, "A", "B")  # but a - 1 point overlaps b
    assert verdict.effect > MIN_DEAD_EFFECT and verdict.p_value > 10 / 252 and verdict.status == INCONCLUSIVE


def test_a_separated_effect_below_the_minimum_is_not_a_finding_either_way():
    tiny = greater("a > b", [0.009, 0.008, 0.009], [0.0, 0.0, 0.0], "A", "B")
    assert tiny.effect < MIN_DEAD_EFFECT and tiny.p_value == pytest.approx(1.0) and tiny.status == INCONCLUSIVE
    assert greater("a > b", [0.02, 0.03, 0.02], [0.0, 0.0, 0.0], "A", "B").status == HOLDS
    assert greater("a > b", [0.0, 0.0, 0.0], [0.009, 0.008, 0.009], "A", "B").status == INCONCLUSIVE


def test_five_seeds_against_five_reach_one_in_252():
    verdict = greater("a > b", [0.30, 0.31, 0.32, 0.33, 0.34], [0.0, 0.01, 0.0, 0.02, 0.0], "A", "B")
    assert verdict.p_value == pytest.approx(1 / 252) and verdict.p_min == pytest.approx(1 / 252)
    assert greater("a > b", [0.3, 0.2, 0.25], [0.0, 0.1, 0.05], "A", "B").p_min == pytest.approx(1 / 20)


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


def test_the_distinct_assignments_give_the_p_value_of_all_orderings_with_ties():
    x = [1, 1, 1, 2, 2, 2, 3, 3, 3]
    y = np.array([0.0, 0.01, 0.0, 0.1, 0.12, 0.1, 0.3, 0.2, 0.2])
    rho, p_up, p_down = spearman_p_values(x, y)  # over the 1,680 distinct assignments
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic)
    every = np.array(list(itertools.permutations(range(9))))  # all 362,880 orderings
    x_ranks, y_ranks = stats.rankdata(x), stats.rankdata(y)
    statistic = (y_ranks[every] * x_ranks).sum(axis=1)  # rho is increasing in this sum when both ranks are fixed
    observed = (y_ranks * x_ranks).sum()
    assert p_up == pytest.approx(np.mean(statistic >= observed - 1e-9))
    assert p_down == pytest.approx(np.mean(statistic <= observed + 1e-9))


def test_a_trend_is_tested_after_taking_off_a_ramp_of_the_minimum_effect():
    x = [1, 1, 1, 2, 2, 2, 3, 3, 3]
    y = [0.0, 0.01, 0.0, 0.1, 0.12, 0.1, 0.3, 0.2, 0.2]
    ramp = np.array([0.0] * 3 + [MIN_DEAD_EFFECT / 2] * 3 + [MIN_DEAD_EFFECT] * 3)
    verdict = trend("up", frame(x, y), "x", "y")
    assert verdict.p_value == pytest.approx(spearman_p_values(x, np.array(y) - ramp)[1])
    assert verdict.p_against == pytest.approx(spearman_p_values(x, np.array(y) + ramp)[2])
    assert verdict.status == HOLDS and verdict.p_value < 0.01
    assert verdict.n == {"x=1": 3, "x=2": 3, "x=3": 3}
    assert verdict.effect == pytest.approx(np.mean(y[6:]) - np.mean(y[:3]))  # the extreme levels' difference


def test_a_perfectly_ordered_trend_smaller_than_the_minimum_effect_is_not_a_finding():
    x = [1, 1, 1, 2, 2, 2, 3, 3, 3]
    tiny = [0.0, 0.001, 0.0, 0.002, 0.003, 0.002, 0.004, 0.005, 0.004]  # perfectly ordered, 0.4 points in all
    assert trend("up", frame(x, tiny), "x", "y").status == INCONCLUSIVE
    assert trend("up", frame(x, [v * 10 for v in tiny]), "x", "y").status == HOLDS


def test_trend_without_variation_or_with_too_few_levels_is_inconclusive():
    assert trend("up", frame([1, 2, 3], [0.0, 0.0, 0.0]), "x", "y").status == INCONCLUSIVE
    bumpy = frame([1, 1, 2, 2, 3, 3], [0.0, 0.2, 0.3, 0.3, 0.1, 0.25])
    assert trend("up", bumpy, "x", "y").status == INCONCLUSIVE
    assert trend("up", frame([1, 2], [0.0, 1.0]), "x", "y").status == INCONCLUSIVE


def test_trend_p_min_counts_the_distinct_assignments_and_enumerates_up_to_100000():
    assert trend_p_min([1, 1, 1, 1]) == pytest.approx(1 / 24)
    assert trend_p_min([3, 3, 3]) == pytest.approx(1 / 1680)  # 9! / (3! 3! 3!) assignments of runs to levels
    assert trend_p_min([2, 2, 2, 2]) == pytest.approx(1 / 2520)
    assert trend_p_min([2, 2, 2, 2, 2]) == pytest.approx(1 / 10000)  # 113,400 assignments: 9,999 resampled
    assert trend_p_min([6, 6, 6]) == pytest.approx(1 / 10000)


def test_a_bound_needs_three_runs_and_has_no_p_value():
    assert near_zero("vanishes", [0.0, 0.005, 0.0], "x").status == HOLDS
    assert near_zero("vanishes", [0.0, 0.0], "x").status == INCONCLUSIVE  # two runs bound nothing
    assert near_zero("vanishes", [0.0], "x").status == INCONCLUSIVE and near_zero("v", [0.0], "x").p_value is None
    assert near_zero("vanishes", [0.2, 0.3, 0.25], "x").status == DOES_NOT_HOLD
    assert near_zero("vanishes", [0.0, 0.04, 0.0], "x").status == INCONCLUSIVE


def test_combining_verdicts_is_an_intersection_union_test_both_ways():
    a, b = [0.3, 0.2, 0.25], [0.0, 0.1, 0.05]
    holds, fails, unsure = (greater("h", a, b, "a", "b"), greater("f", b, a, "a", "b"),
                            greater("u", [0.3, 0.05, 0.2], [0.1, 0.0, 0.25], "a", "b"))
    both = combine("all", [holds, holds])
    assert both.status == HOLDS and both.p_value == pytest.approx(0.05) and len(both.parts) == 2
    against = combine("all", [fails, fails])
    assert against.status == DOES_NOT_HOLD and against.p_against == pytest.approx(0.05)
    mixed = combine("all", [holds, fails])  # one part each way: neither
    assert mixed.status == INCONCLUSIVE and mixed.p_value == pytest.approx(1.0) and mixed.p_against == pytest.approx(1.0)
    weak = combine("all", [holds, unsure])
    assert weak.status == INCONCLUSIVE and weak.p_value == pytest.approx(unsure.p_value)
    assert combine("all", [holds, near_zero("bound", [0.0], "x")]).status == INCONCLUSIVE  # parts need p-values


def test_a_bound_over_an_arm_not_reached_is_not_reached_unless_a_reached_arm_broke_it():
    why = {"adam+none": "not reached: short of the reach"}
    spared, other = near_zero("adam", [0.0] * 3, "adam+none"), near_zero("sgd", [0.0] * 3, "sgd+none")
    whole = not_reached(all_bounds("none die", [spared, other]), why)
    assert whole.status == NOT_REACHED and whole.evidence.startswith("adam+none: not reached")
    assert [part["status"] for part in whole.parts] == [NOT_REACHED, HOLDS]
    broken = not_reached(all_bounds("none die", [spared, near_zero("sgd", [0.2] * 3, "sgd+none")]), why)
    assert broken.status == DOES_NOT_HOLD and broken.parts[0]["status"] == NOT_REACHED
    assert not_reached(all_bounds("none die", [other, other]), why).status == HOLDS


def test_bounds_combine_without_a_p_value():
    ok, bad = near_zero("a", [0.0, 0.0, 0.0], "a"), near_zero("b", [0.2, 0.3, 0.2], "b")
    assert all_bounds("all", [ok, ok]).status == HOLDS and all_bounds("all", [ok, ok]).p_value is None
    assert all_bounds("all", [ok, bad]).status == DOES_NOT_HOLD
    assert all_bounds("all", [ok, near_zero("c", [0.0], "c")]).status == INCONCLUSIVE
    assert all_bounds("all", [ok, ok]).n == {"runs": 6}


def test_a_primary_claim_is_tested_at_alpha_over_its_family_and_a_secondary_one_is_described():
    at_252 = greater("strong", [0.30, 0.31, 0.32, 0.33, 0.34], [0.0, 0.01, 0.0, 0.02, 0.0], "A", "B", claim_id="p1")
    at_20 = greater("weak", [0.3, 0.2, 0.25], [0.0, 0.1, 0.05], "A", "B", claim_id="p2")
    secondary = greater("other", [0.3, 0.2, 0.25], [0.0, 0.1, 0.05], "A", "B", claim_id="s")
    bound = near_zero("bound", [0.0, 0.0, 0.0], "x", claim_id="p3")
    broken = invalid("broken", "the control did not train", claim_id="p4")
    roles = {"p1": PRIMARY, "p2": PRIMARY, "p3": PRIMARY, "p4": PRIMARY, "s": SECONDARY}
    verdicts = adjust([at_252, at_20, secondary, bound, broken], roles, family_size=10, family="the quick report")
    assert at_252.p_adjusted == pytest.approx(10 / 252) and at_252.status == HOLDS
    assert at_20.p_adjusted == pytest.approx(0.5) and at_20.status == INCONCLUSIVE  # "holds" at raw p 0.05
    assert at_20.p_value == pytest.approx(0.05) and at_20.family == "Bonferroni over the 10 primary claims of the quick report"
    assert secondary.status == DESCRIBED and secondary.p_adjusted is None and secondary.p_value == pytest.approx(0.05)
    assert bound.status == HOLDS and bound.p_adjusted is None and broken.status == INVALID and len(verdicts) == 5
    assert [v.role for v in verdicts] == [PRIMARY, PRIMARY, SECONDARY, PRIMARY, PRIMARY]
    reversed_claim = greater("r", [0.0, 0.01, 0.0, 0.02, 0.0], [0.30, 0.31, 0.32, 0.33, 0.34], "A", "B", claim_id="p1")
    adjust([reversed_claim], roles, family_size=10, family="f")
    assert reversed_claim.status == DOES_NOT_HOLD and reversed_claim.p_against_adjusted == pytest.approx(10 / 252)


def test_paired_sign_flip_test_is_exact_and_shifted():
    verdict = paired_greater("dies more selective", [0.1, 0.2, 0.05, 0.3, 0.15], "difference")
    assert verdict.p_value == pytest.approx(1 / 32) and verdict.p_min == pytest.approx(1 / 32)
    assert verdict.status == HOLDS and verdict.n == {"difference": 5}
    three = paired_greater("three runs", [0.1, 0.2, 0.3], "difference")
    assert three.p_value == pytest.approx(1 / 8) and three.status == INCONCLUSIVE  # 3 runs can never decide
    d = np.array([0.1, -0.2, 0.05, 0.3, 0.15])
    shifted = d - 0.02
    count = sum(np.mean(shifted * np.array(signs)) >= shifted.mean() - 1e-12
                for signs in itertools.product([1, -1], repeat=5))
    assert paired_greater("mixed", d, "difference", min_effect=0.02).p_value == pytest.approx(count / 32)
    below = paired_greater("AUC", [-0.2, -0.25, -0.3, -0.22, -0.21], "AUC - 0.5", min_effect=0.05)
    assert below.status == DOES_NOT_HOLD and below.p_against == pytest.approx(1 / 32)


def test_equivalence_holds_within_the_margin_and_does_not_hold_only_beyond_it():
    same = frame([1, 1, 1, 2, 2, 2], [0.25, 0.26, 0.24, 0.25, 0.27, 0.26])
    verdict = equivalent("lr does not matter", same, "x", "y", margin=0.05)
    assert verdict.status == HOLDS and verdict.p_value == pytest.approx(0.05)
    apart = frame([1, 1, 1, 2, 2, 2], [0.0, 0.01, 0.0, 0.25, 0.26, 0.24])
    three = equivalent("lr does not matter", apart, "x", "y", margin=0.05)
    assert three.status == INCONCLUSIVE and three.p_against == pytest.approx(2 / 20)  # either side: 2 x 1/20 > 0.05
    apart = frame([1, 1, 1, 1, 2, 2, 2, 2], [0.0, 0.01, 0.0, 0.02, 0.25, 0.26, 0.24, 0.25])
    beyond = equivalent("lr does not matter", apart, "x", "y", margin=0.05)
    assert beyond.status == DOES_NOT_HOLD and beyond.p_against == pytest.approx(2 / 70)
    # 7 points apart, separated, but not separated from a 5-point margin: not shown beyond it
    near = frame([1, 1, 1, 2, 2, 2], [0.10, 0.12, 0.14, 0.17, 0.19, 0.21])
    assert permutation_p_values([0.17, 0.19, 0.21], [0.10, 0.12, 0.14])[0] == pytest.approx(1 / 20)
    assert equivalent("lr does not matter", near, "x", "y", margin=0.05).status == INCONCLUSIVE
    noisy = frame([1, 1, 1, 2, 2, 2], [0.1, 0.3, 0.2, 0.12, 0.35, 0.2])
    assert equivalent("lr does not matter", noisy, "x", "y", margin=0.05).status == INCONCLUSIVE


def test_an_untrained_control_makes_a_comparison_invalid():
    assert did_not_train([0.898, 0.9, 0.185], num_classes=10).tolist() == [True, True, False]  # per run
    assert not did_not_train([0.2, 0.15], num_classes=10).any() and did_not_train([0.81], num_classes=10).all()
    verdict = invalid("no BN, fewer die", "the control did not train")
    assert verdict.status == INVALID and verdict.p_value is None


def test_the_intervals_are_welchs_and_students_t():
    a, b = [0.3, 0.2, 0.25, 0.4], [0.0, 0.1, 0.05]
    assert welch_interval(a, b) == pytest.approx(list(stats.ttest_ind(a, b, equal_var=False).confidence_interval()))
    assert t_interval(a) == pytest.approx(list(stats.ttest_1samp(a, 0).confidence_interval()))
    assert welch_interval([0.1, 0.1], [0.0, 0.0]) == pytest.approx([0.1, 0.1])  # nothing varies: a point
    verdict = greater("a > b", a, b, "A", "B")
    assert verdict.ci == pytest.approx(welch_interval(a, b)) and verdict.effect_text == "23.7% [10.4%, 37.1%]"
    assert Verdict("c", HOLDS, "e").effect_text == ""


def percentile_bootstrap(a, b, rng, resamples=999):
    means_a = a[rng.integers(0, len(a), (resamples, len(a)))].mean(axis=1)
    means_b = b[rng.integers(0, len(b), (resamples, len(b)))].mean(axis=1)
    return np.percentile(means_a - means_b, [2.5, 97.5])


@pytest.mark.parametrize("runs", [3, 5])
def test_welchs_interval_keeps_its_coverage_at_three_and_five_runs_where_the_bootstrap_does_not(runs):
    rng = np.random.default_rng(runs)
    trials, welch, bootstrap = 2000, 0, 0
    for _ in range(trials):  # true difference 1, unequal spreads
        a, b = rng.normal(1.0, 1.0, runs), rng.normal(0.0, 2.0, runs)
        low, high = welch_interval(a, b)
        welch += low <= 1.0 <= high
        low, high = percentile_bootstrap(a, b, rng)
        bootstrap += low <= 1.0 <= high
    assert welch / trials >= 0.94  # Welch's t is, if anything, conservative here
    assert bootstrap / trials <= (0.85 if runs == 3 else 0.92)  # the percentile bootstrap falls short


def test_students_interval_of_a_mean_keeps_its_coverage_at_five_runs():
    rng = np.random.default_rng(0)
    covered = sum(low <= 0.2 <= high for low, high in (t_interval(rng.normal(0.2, 0.1, 5)) for _ in range(2000)))
    assert 0.93 <= covered / 2000 <= 0.97


def test_runs_without_a_value_are_left_out_and_said_so():
    nan = float("nan")
    verdict = greater("a > b", [0.3, 0.2, 0.25, nan], [0.0, 0.1, 0.05], "A", "B")
    assert verdict.n == {"A": 3, "B": 3} and verdict.p_value == pytest.approx(1 / 20) and verdict.status == HOLDS
    assert verdict.evidence.endswith("; left out, without a value: 1 run of A")
    reversed_ = greater("a > b", [0.1, 0.2, nan], [0.3, 0.4, 0.5], "A", "B")  # 2 against 3 left: p at best 1/10
    assert reversed_.status == INCONCLUSIVE and reversed_.p_against == pytest.approx(1 / 10)
    assert paired_greater("d", [0.1, nan], "d").status == INCONCLUSIVE
    assert paired_greater("d", [0.1, 0.2, nan, 0.1, 0.1], "d").n == {"d": 4}


def test_paired_equivalence_holds_within_the_margin_and_fails_beyond_it():
    from sparsitylib.verdict import all_equivalent, paired_equivalent

    same = paired_equivalent("same", [0.0] * 8, "d", margin=0.02)
    assert same.status == HOLDS and same.p_value == pytest.approx(1 / 256) and same.p_min == pytest.approx(1 / 256)
    beyond = paired_equivalent("beyond", [0.05, 0.06, 0.04, 0.05, 0.07, 0.05, 0.06, 0.05], "d", margin=0.02)
    assert beyond.status == DOES_NOT_HOLD and beyond.p_against == pytest.approx(2 / 256)
    unclear = paired_equivalent("unclear", [0.03, -0.03, 0.01, -0.02, 0.04, -0.04, 0.0, 0.02], "d", margin=0.02)
    assert unclear.status == INCONCLUSIVE
    joined = all_equivalent("all", [same, same])
    assert joined.status == HOLDS and joined.p_value == same.p_value
    one_off = all_equivalent("all", [same, unclear, beyond])
    assert one_off.status == DOES_NOT_HOLD and one_off.p_against == pytest.approx(3 * 2 / 256)
    assert one_off.p_value == max(v.p_value for v in (same, unclear, beyond))
    assert "1 of 3 parts within their margins" in one_off.evidence
    assert all_equivalent("all", [same, unclear]).status == INCONCLUSIVE


def test_a_check_is_decided_at_alpha_on_its_own():
    from sparsitylib.verdict import CHECK, adjust, paired_equivalent

    verdict = paired_equivalent("same", [0.0] * 5, "d", margin=0.02, claim_id="c")  # p = 1/32 = 0.031
    adjust([verdict], {"c": CHECK}, family_size=10, family="a report")
    assert verdict.status == HOLDS and verdict.p_adjusted is None and "on its own" in verdict.family

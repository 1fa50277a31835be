"""Verdicts computed from data: does a claim of the paper hold at our scale?

Each claim is one-sided and stated before the data: "A leaves more dead filters than B by more
than ``min_effect``". Two one-sided tests decide it, the run being the unit of replication:

- *holds*: the test of the claim rejects "the effect is at most +``min_effect``" (the null is
  shifted by the minimum effect) at the claim's level;
- *does not hold*: the reversed test rejects "the effect is at least -``min_effect``" at the same
  level: the same evidence, pointing the other way. Neither direction is chosen from the data;
- *invalid*: the comparison cannot say anything (its control did not train);
- *not reached*: an arm was annealed before its onset (``not_reached``): the comparison would
  measure when filters start to die, not whether they do;
- *inconclusive*: everything else, with the numbers.

The level: a **check** of our own method (``claims.REGISTRY``; e.g. that bfloat16 training
measures what float32 does) is decided at ``ALPHA`` on its own: it is not one of the paper's
claims and licenses a change of method, not a finding. A **primary** claim (the paper's stated findings, ``claims.REGISTRY``) is tested at
``ALPHA`` / m, Bonferroni over the m primary claims its regime's report tests (see
docs/verdicts.md for why Bonferroni). A **secondary** claim (our analyses) is *described*: its
effect, interval and raw one-sided p-values, no status. ``adjust`` applies the family.

The tests (exact unless said otherwise):

- ``greater`` (A > B, one value per run): the difference of means, all ``C(n_a + n_b, n_a)``
  relabellings (``scipy.stats.permutation_test``), of A - ``min_effect`` against B (the
  shift-model permutation test). 3 runs against 3 reach at best p = 1/20, 5 against 5 p = 1/252.
- ``paired_greater`` (one within-run difference per run): a sign-flip test of the mean over all
  2^n sign patterns of d - ``min_effect``. n runs reach at best p = 1/2^n.
- ``trend`` (a setting moves the value up or down): Spearman's rho between the setting and the
  value over runs, every distinct assignment of the values to the levels enumerated when there are
  at most ``EXACT_TREND_ASSIGNMENTS`` (else ``TREND_RESAMPLES`` seeded permutations). The minimum
  effect is a shifted null too: a ramp rising by ``min_effect`` from the smallest to the largest
  level (linear in the level's rank) is taken off the values before the test.
- ``equivalent`` (a setting does *not* move the value): two one-sided tests (TOST) that the
  difference between the extreme levels lies within +-``margin``; it does not hold when that
  difference is shown beyond the margin (either side, Bonferroni over the two).
- ``paired_equivalent`` (a change of method does *not* move a per-run value): TOST by sign-flip
  tests over the paired differences (the same seed in both arms), within +-``margin``;
  ``all_equivalent`` joins such parts: it holds when every part does (intersection-union) and
  does not hold when any part is shown beyond its margin (Bonferroni over the parts).
- ``near_zero`` (a quantity vanishes) is a bound on every run of at least ``MIN_BOUND_RUNS``
  runs, not a test: no p-value, not in the family.

Every effect carries a 95% interval that keeps its coverage at 3-5 runs an arm: Welch's t for a
difference of means (the trend's effect is the difference between its extreme levels), Student's
t for a mean of paired differences (``tests/test_verdict.py`` checks both by simulation). ``p_min``
is the smallest p-value the design can reach, so a reader sees whether a claim could have held;
``design_threshold`` refuses, before any run, a design that cannot reach its level.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, INVALID = "holds", "does not hold", "inconclusive", "invalid"
DESCRIBED = "described"  # a secondary claim: effect, interval and raw p-values, no status
UNTESTABLE = "untestable"  # an illustrative preset's design cannot reach the claim's level
NOT_REACHED = "not reached"  # an arm was annealed before its onset: it had not had its chance
PRIMARY, SECONDARY = "primary", "secondary"
CHECK = "check"  # a check of our method (not a claim of the paper): decided at ALPHA on its own
ALPHA = 0.05
TREND_RESAMPLES = 9999
EXACT_TREND_ASSIGNMENTS = 100_000  # distinct assignments of values to levels: enumerate up to this many
CI_LEVEL = 0.95
VANISH_LEVEL = 0.01  # fraction of filters: "no sparsity" means at most 1% dead in every run
PRESENT_LEVEL = 0.05  # a mean above 5% dead is clearly sparsity
MIN_BOUND_RUNS = 3  # a bound on fewer runs says nothing about the setting
MIN_DEAD_EFFECT = VANISH_LEVEL  # a difference in dead fraction must exceed what counts as "none"
DEAD_FMT = "{:.1%}"


@dataclass
class Verdict:
    """A claim, its status, a readable summary of the evidence, and the numbers behind it.

    ``test`` names the rule; ``effect`` (described by ``effect_label``, printed with ``fmt``) is the
    difference of means (A - B), the mean paired difference or the extreme-level difference, with
    its ``ci``; ``p_value`` is the raw one-sided p of the claim (against "effect <= min_effect"),
    ``p_against`` that of the reversed claim (against "effect >= -min_effect"); ``p_adjusted`` and
    ``p_against_adjusted`` are the same within the claim's ``family`` (``None`` outside one);
    ``n`` maps each arm to its number of runs and ``values`` to its per-run values; ``parts``
    holds a combined verdict's parts; ``claim_id`` names the claim in ``claims.REGISTRY`` and
    ``role`` is primary or secondary.
    """

    claim: str
    status: str
    evidence: str
    test: str | None = None
    p_value: float | None = None
    effect: float | None = None
    n: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    parts: list = field(default_factory=list)
    effect_label: str | None = None
    ci: list | None = None
    fmt: str = "{:.3g}"
    min_effect: float | None = None
    p_against: float | None = None
    p_min: float | None = None
    p_adjusted: float | None = None
    p_against_adjusted: float | None = None
    family: str | None = None
    claim_id: str | None = None
    role: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def significance(self) -> str:
        """'n=5 vs 5, p=0.004, adjusted p=0.04' (or the rule, for verdicts without a p-value)."""
        sizes = " vs ".join(str(v) for v in self.n.values())
        n = f"n={sizes}" if sizes else ""
        if self.p_value is None:
            return ", ".join(part for part in (n, self.test or "") if part)
        adjusted = f"adjusted p={self.p_adjusted:.2g}" if self.p_adjusted is not None else ""
        return ", ".join(part for part in (n, f"p={self.p_value:.2g}", adjusted) if part)

    @property
    def effect_text(self) -> str:
        """'+25.5% [21.9%, 28.7%]' (the effect and its interval), or '' without an effect."""
        if self.effect is None:
            return ""
        text = self.fmt.format(self.effect)
        if self.ci is not None and None not in self.ci and not any(map(math.isnan, self.ci)):
            text += f" [{self.fmt.format(self.ci[0])}, {self.fmt.format(self.ci[1])}]"
        return text

    def _repr_markdown_(self) -> str:
        effect = f"; effect {self.effect_text}" if self.effect_text else ""
        role = f" *{self.role}*" if self.role else ""
        return f"**{self.status.upper()}**{role} ({self.significance}{effect}): {self.claim}  \n{self.evidence}"


def rule(p_value: float | None, p_against: float | None, level: float = ALPHA) -> str:
    """The one rule: the claim's test at ``level`` holds, the reversed test at ``level`` does not."""
    if p_value is not None and p_value <= level:
        return HOLDS
    if p_against is not None and p_against <= level:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def defined(values) -> tuple[np.ndarray, int]:
    """The per-run values that are defined (not NaN: e.g. a mean over a run's healthy filters when
    it has none), and how many were left out."""
    values = np.asarray(values, dtype=float)
    keep = ~np.isnan(values)
    return values[keep], int((~keep).sum())


def left_out(counts: dict) -> str:
    """'; left out: 1 run of adam+l2 without a value' (runs whose value is undefined), or ''."""
    parts = [f"{count} run{'s' if count > 1 else ''} of {label}" for label, count in counts.items() if count]
    return f"; left out, without a value: {', '.join(parts)}" if parts else ""


def describe(values, fmt: str = DEAD_FMT) -> str:
    """'mean +- sd (n=3)' of per-run values."""
    values = np.asarray(values, dtype=float)
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{fmt.format(values.mean())} +- {fmt.replace('+', '').format(sd)} (n={len(values)})"


# --- intervals ------------------------------------------------------------------------------------


def welch_interval(a, b, level: float = CI_LEVEL) -> list[float]:
    """``level`` interval of mean(a) - mean(b) by Welch's t (Welch-Satterthwaite degrees of
    freedom); a point when neither arm varies, NaN with fewer than 2 runs in an arm."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    difference = float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")
    if len(a) < 2 or len(b) < 2:
        return [float("nan"), float("nan")]
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return [difference, difference]
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df) * math.sqrt(va + vb))
    return [difference - half, difference + half]


def t_interval(d, level: float = CI_LEVEL) -> list[float]:
    """``level`` interval of mean(d) by Student's t over runs; NaN with fewer than 2 runs."""
    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return [float("nan"), float("nan")]
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return [float(d.mean() - half), float(d.mean() + half)]


# --- tests ----------------------------------------------------------------------------------------


def _mean_difference(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def permutation_p(a, b, alternative: str) -> float:
    """Exact one-sided permutation p-value of mean(a) - mean(b) ("greater": for a > b, "less")."""
    return float(stats.permutation_test((a, b), _mean_difference, permutation_type="independent",
                                        alternative=alternative, n_resamples=math.inf, vectorized=True).pvalue)


def permutation_p_values(a, b) -> tuple[float, float]:
    """Exact one-sided permutation p-values of mean(a) - mean(b): (for a > b, for a < b)."""
    return permutation_p(a, b, "greater"), permutation_p(a, b, "less")


def shifted_p_values(a, b, shift: float) -> tuple[float, float]:
    """(p against "mean(a) - mean(b) <= shift", p against "mean(a) - mean(b) >= -shift"): the exact
    permutation tests of a - shift against b and of a + shift against b."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return permutation_p(a - shift, b, "greater"), permutation_p(a + shift, b, "less")


def greater_p_min(n_a: int, n_b: int) -> float:
    """The smallest p the two-arm permutation test can give: 1 / C(n_a + n_b, n_a)."""
    return 1 / math.comb(n_a + n_b, n_a)


def greater(claim: str, a, b, a_label: str, b_label: str, fmt: str = DEAD_FMT,
            min_effect: float = MIN_DEAD_EFFECT, claim_id: str | None = None) -> Verdict:
    """Claim: the values of ``a`` (one per run) exceed those of ``b`` by more than ``min_effect``
    (default: 1 point of dead fraction); exact permutation tests with the null shifted by it. Runs
    whose value is undefined (NaN) are left out, and the evidence says how many."""
    (a, missing_a), (b, missing_b) = defined(a), defined(b)
    missing = left_out({a_label: missing_a, b_label: missing_b})
    values = {a_label: a.tolist(), b_label: b.tolist()}
    n = {a_label: len(a), b_label: len(b)}
    common = dict(test="permutation: difference of means, null shifted by the minimum effect", n=n, values=values,
                  fmt=fmt, min_effect=min_effect, effect_label=f"difference of means ({a_label} - {b_label})",
                  claim_id=claim_id)
    if len(a) < 2 or len(b) < 2:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 2 runs in each arm; {a_label}: {a.tolist()}, "
                       f"{b_label}: {b.tolist()}{missing}", **common)
    effect = float(a.mean() - b.mean())
    p_for, p_against = shifted_p_values(a, b, min_effect)
    evidence = (f"{a_label}: {describe(a, fmt)}; {b_label}: {describe(b, fmt)}; difference {fmt.format(effect)} "
                f"(minimum effect {fmt.format(min_effect)}); one-sided p={p_for:.3g} for the claim, "
                f"p={p_against:.3g} against it{missing}")
    return Verdict(claim, rule(p_for, p_against), evidence, p_value=p_for, p_against=p_against, effect=effect,
                   ci=welch_interval(a, b), p_min=greater_p_min(len(a), len(b)), **common)


def sign_flip_p(d, alternative: str) -> float:
    """Exact one-sided sign-flip p-value of mean(d) over all 2^n sign patterns ("greater": for > 0, "less")."""
    return float(stats.permutation_test((np.asarray(d, dtype=float),), lambda x, axis=-1: np.mean(x, axis=axis),
                                        permutation_type="samples", alternative=alternative, n_resamples=math.inf,
                                        vectorized=True).pvalue)


def paired_p_min(n: int) -> float:
    """The smallest p a sign-flip test over ``n`` runs can give: 1 / 2^n."""
    return 1 / 2**n


def paired_greater(claim: str, differences, label: str, fmt: str = "{:.3f}", min_effect: float = 0.0,
                   unit: str = "run", claim_id: str | None = None) -> Verdict:
    """Claim: the per-run differences (one value per run, e.g. a within-run AUC minus 0.5) exceed
    ``min_effect`` on average; exact sign-flip tests over runs with the null shifted by it. Runs
    whose value is undefined (NaN) are left out, and the evidence says how many."""
    d, missing = defined(differences)
    missing = left_out({label: missing})
    test = f"sign-flip permutation over {unit}s: mean paired difference, null shifted by the minimum effect"
    common = dict(test=test, n={label: len(d)}, values={label: d.tolist()}, fmt=fmt, min_effect=min_effect,
                  effect_label=f"mean over {unit}s ({label})", claim_id=claim_id)
    if len(d) < 2:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 2 {unit}s, got {len(d)}{missing}", **common)
    effect = float(d.mean())
    p_for, p_against = sign_flip_p(d - min_effect, "greater"), sign_flip_p(d + min_effect, "less")
    evidence = (f"{label}, per {unit}: {describe(d, fmt)} (minimum effect {fmt.format(min_effect)}); one-sided "
                f"sign-flip p={p_for:.3g} for the claim, p={p_against:.3g} against it (n={len(d)} {unit}s){missing}")
    return Verdict(claim, rule(p_for, p_against), evidence, p_value=p_for, p_against=p_against, effect=effect,
                   ci=t_interval(d), p_min=paired_p_min(len(d)), **common)


def paired_equivalent(claim: str, differences, label: str, margin: float, fmt: str = DEAD_FMT, unit: str = "seed",
                      claim_id: str | None = None) -> Verdict:
    """Claim: the per-pair differences (one per ``unit``, e.g. bfloat16 minus float32 of the same
    seed) lie within +-``margin`` on average. Holds by two one-sided sign-flip tests (TOST: p = the
    larger of the two); does not hold when the mean difference is shown beyond the margin on either
    side (the smaller one-sided p, doubled for the two sides). Undefined (NaN) pairs are left out."""
    d, missing = defined(differences)
    missing = left_out({label: missing})
    common = dict(test=f"TOST sign-flip over {unit}s: mean paired difference within +-{fmt.format(margin)}",
                  n={label: len(d)}, values={label: d.tolist()}, fmt=fmt, min_effect=margin,
                  effect_label=f"mean paired difference ({label})", claim_id=claim_id)
    if len(d) < 2:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 2 {unit}s, got {len(d)}{missing}", **common)
    effect = float(d.mean())
    p_for = max(sign_flip_p(d - margin, "less"), sign_flip_p(d + margin, "greater"))
    p_against = min(1.0, 2 * min(sign_flip_p(d - margin, "greater"), sign_flip_p(d + margin, "less")))
    evidence = (f"{label}: {describe(d, fmt)} (equal = within +-{fmt.format(margin)}); TOST p={p_for:.3g}, "
                f"beyond the margin p={p_against:.3g} (n={len(d)} {unit}s){missing}")
    return Verdict(claim, rule(p_for, p_against), evidence, p_value=p_for, p_against=p_against, effect=effect,
                   ci=t_interval(d), p_min=paired_p_min(len(d)), **common)


def all_equivalent(claim: str, verdicts: list[Verdict], claim_id: str | None = None) -> Verdict:
    """Equivalence parts joined: holds when every part holds (intersection-union: the largest of the
    parts' p-values, no correction needed); does not hold when any part is shown beyond its margin
    (the smallest of the parts' p-values against, times the number of parts: Bonferroni). The
    effect shown is the weakest part's (the largest p for equivalence)."""
    parts = [v.to_dict() for v in verdicts]
    failing = [v for v in verdicts if v.status != HOLDS]
    evidence = (f"{len(verdicts) - len(failing)} of {len(verdicts)} parts within their margins"
                + (": not " + "; ".join(f"{v.claim} ({v.evidence})" for v in failing) if failing else ""))
    test = f"every part within its margin (intersection-union over {len(verdicts)} parts)"
    if not verdicts or any(v.p_value is None for v in verdicts):
        return Verdict(claim, INCONCLUSIVE, evidence if verdicts else "no parts", test, parts=parts, claim_id=claim_id)
    p_for = max(v.p_value for v in verdicts)
    p_against = min(1.0, len(verdicts) * min(v.p_against for v in verdicts))
    weakest = max(verdicts, key=lambda v: v.p_value)
    return Verdict(claim, rule(p_for, p_against), evidence, test, p_for, p_against=p_against,
                   p_min=max(v.p_min or 0 for v in verdicts), parts=parts, effect=weakest.effect, ci=weakest.ci,
                   fmt=weakest.fmt, min_effect=weakest.min_effect, n=weakest.n,
                   effect_label=f"the weakest part's: {weakest.claim}, {weakest.effect_label}", claim_id=claim_id)


def _spearman_rho(x_ranks: np.ndarray, y, axis=-1):
    """Spearman's rho of fixed ``x_ranks`` with each row of ``y`` (Pearson on average ranks)."""
    y_ranks = stats.rankdata(y, axis=axis)
    xc = x_ranks - x_ranks.mean()
    yc = y_ranks - y_ranks.mean(axis=axis, keepdims=True)
    denominator = np.sqrt((xc**2).sum() * (yc**2).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (yc * xc).sum(axis=axis) / denominator


def distinct_assignments(level_sizes: list[int]) -> int:
    """How many ways the runs' values can be split among levels of these sizes (a multinomial)."""
    return math.factorial(sum(level_sizes)) // math.prod(math.factorial(k) for k in level_sizes)


def _assignments(level_sizes: list[int]) -> np.ndarray:
    """Every distinct assignment of positions 0..n-1 to levels of ``level_sizes``: an array
    (assignments, n) whose row lists, level by level, the positions given to that level."""
    everything = set(range(sum(level_sizes)))
    rows = [()]
    for size in level_sizes[:-1]:
        rows = [row + pick for row in rows for pick in itertools.combinations(sorted(everything - set(row)), size)]
    return np.array([row + tuple(sorted(everything - set(row))) for row in rows], dtype=int)


def spearman_p_values(x, y, seed: int = 0) -> tuple[float, float, float]:
    """Spearman's rho of ``y`` against ``x`` with permutation p-values: (rho, p for rho > 0, p for
    rho < 0). Exact over the distinct assignments of values to the levels of ``x`` when there are
    at most ``EXACT_TREND_ASSIGNMENTS``, else ``TREND_RESAMPLES`` seeded random permutations."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rho = float(stats.spearmanr(x, y).statistic)
    x_ranks = stats.rankdata(x)
    levels = np.unique(x)
    sizes = [int((x == level).sum()) for level in levels]
    if distinct_assignments(sizes) <= EXACT_TREND_ASSIGNMENTS:
        order = np.concatenate([np.flatnonzero(x == level) for level in levels])  # positions, level by level
        permuted = np.empty((distinct_assignments(sizes), len(y)))
        permuted[:, order] = y[_assignments(sizes)]  # each row: the values placed on the level positions
        statistics = _spearman_rho(x_ranks, permuted, axis=-1)
        tolerance = 1e-12
        return rho, float(np.mean(statistics >= rho - tolerance)), float(np.mean(statistics <= rho + tolerance))
    p = {}
    for alternative in ("greater", "less"):
        p[alternative] = float(stats.permutation_test(
            (y,), lambda values, axis=-1: _spearman_rho(x_ranks, values, axis), permutation_type="pairings",
            alternative=alternative, n_resamples=TREND_RESAMPLES, vectorized=True,
            rng=np.random.default_rng(seed)).pvalue)
    return rho, p["greater"], p["less"]


def trend_p_min(level_sizes: list[int]) -> float:
    """The smallest p the Spearman permutation test can give for runs in groups of these sizes:
    one of the distinct assignments (or 1/(resamples + 1) when there are too many to enumerate)."""
    assignments = distinct_assignments(level_sizes)
    return 1 / assignments if assignments <= EXACT_TREND_ASSIGNMENTS else 1 / (TREND_RESAMPLES + 1)


def _by_level(frame: pd.DataFrame, x: str, y: str, fmt: str) -> tuple[list, dict, dict, str]:
    """The sorted levels of ``x``, runs per level, per-run values per level (keyed 'x=level'), and
    a readable 'x=level: mean +- sd (n)' summary."""
    levels = sorted(frame[x].unique())
    groups = {f"{x}={level:g}": frame.loc[frame[x] == level, y].astype(float) for level in levels}
    return (levels, {key: len(g) for key, g in groups.items()}, {key: g.tolist() for key, g in groups.items()},
            "; ".join(f"{key}: {describe(g, fmt)}" for key, g in groups.items()))


def trend(claim: str, frame: pd.DataFrame, x: str, y: str, direction: int = 1, fmt: str = DEAD_FMT,
          min_effect: float = MIN_DEAD_EFFECT, claim_id: str | None = None) -> Verdict:
    """Claim: ``y`` moves in ``direction`` (+1 up, -1 down) as ``x`` grows, by more than
    ``min_effect`` from the smallest to the largest level. ``frame`` has one row per run. The test
    is Spearman's rho over runs after taking off a ramp of ``min_effect`` across the levels (linear
    in the level's rank, the claimed way), the reversed test after adding it; the effect is the
    difference between the means at the largest and the smallest level, with a Welch interval."""
    frame = frame.dropna(subset=[y])
    levels, n, values, per_level = _by_level(frame, x, y, fmt)
    common = dict(test="permutation: Spearman rho, null shifted by a ramp of the minimum effect", n=n, values=values,
                  fmt=fmt, min_effect=min_effect, effect_label=f"mean {y} at the largest minus the smallest {x}",
                  claim_id=claim_id)
    if len(levels) < 3:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 3 levels of {x}, got {levels}", **common)
    p_min = trend_p_min(list(n.values()))
    high = frame.loc[frame[x] == levels[-1], y].to_numpy(dtype=float)
    low = frame.loc[frame[x] == levels[0], y].to_numpy(dtype=float)
    span = float(high.mean() - low.mean())
    ramp = frame[x].map({level: min_effect * k / (len(levels) - 1) for k, level in enumerate(levels)}).to_numpy()
    observed = frame[y].to_numpy(dtype=float)
    rho = float(stats.spearmanr(frame[x], observed).statistic) if frame[y].nunique() > 1 else 0.0
    _, up, down = spearman_p_values(frame[x], observed - direction * ramp)
    p_for = up if direction > 0 else down
    _, up, down = spearman_p_values(frame[x], observed + direction * ramp)
    p_against = down if direction > 0 else up
    evidence = (f"Spearman rho over {len(frame)} runs {rho:+.2f} (claimed direction {'up' if direction > 0 else 'down'}); "
                f"mean at the largest minus the smallest {x}: {fmt.format(span)} (minimum effect "
                f"{fmt.format(min_effect)}); one-sided p={p_for:.3g} for the claim, p={p_against:.3g} against it. "
                f"{per_level}")
    return Verdict(claim, rule(p_for, p_against), evidence, p_value=p_for, p_against=p_against, effect=span,
                   ci=welch_interval(high, low), p_min=p_min, **common)


def equivalent(claim: str, frame: pd.DataFrame, x: str, y: str, margin: float = PRESENT_LEVEL,
               fmt: str = DEAD_FMT, claim_id: str | None = None) -> Verdict:
    """Claim: ``y`` does not depend on ``x``: the difference between the means at the largest and
    the smallest level of ``x`` lies within +-``margin``. Holds by two one-sided permutation tests
    (TOST: p = the larger of the two); does not hold when the difference is shown beyond the margin
    on either side (the smaller one-sided p, doubled for the two sides)."""
    frame = frame.dropna(subset=[y])
    levels, n, values, per_level = _by_level(frame, x, y, fmt)
    common = dict(test=f"TOST permutation: extreme levels within +-{fmt.format(margin)}", n=n, values=values,
                  fmt=fmt, min_effect=margin, effect_label=f"mean {y} at the largest minus the smallest {x}",
                  claim_id=claim_id)
    if len(levels) < 2:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 2 levels of {x}, got {levels}", **common)
    high = frame.loc[frame[x] == levels[-1], y].to_numpy(dtype=float)
    low = frame.loc[frame[x] == levels[0], y].to_numpy(dtype=float)
    if len(high) < 2 or len(low) < 2:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 2 runs at {x}={levels[0]:g} and {x}={levels[-1]:g}, "
                       f"got {len(low)} and {len(high)}", **common)
    effect = float(high.mean() - low.mean())
    above_upper, within_upper = permutation_p_values(high - margin, low)  # against ">= +margin": the second
    within_lower, below_lower = permutation_p_values(high + margin, low)  # against "<= -margin": the first
    p_for = max(within_upper, within_lower)
    p_against = min(1.0, 2 * min(above_upper, below_lower))
    evidence = (f"{fmt.format(effect)} between {x}={levels[-1]:g} and {x}={levels[0]:g} (equal = within "
                f"+-{fmt.format(margin)}); TOST p={p_for:.3g}, beyond the margin p={p_against:.3g}. {per_level}")
    return Verdict(claim, rule(p_for, p_against), evidence, p_value=p_for, p_against=p_against, effect=effect,
                   ci=welch_interval(high, low), p_min=greater_p_min(len(high), len(low)), **common)


def near_zero(claim: str, values, label: str, fmt: str = DEAD_FMT, claim_id: str | None = None) -> Verdict:
    """Claim: the values (one per run, fractions) vanish. A bound on every run of at least
    ``MIN_BOUND_RUNS`` runs, not a test."""
    values = np.asarray(values, dtype=float)
    test = f"bound: every run <= {VANISH_LEVEL:.0%} (at least {MIN_BOUND_RUNS} runs)"
    if len(values) == 0:
        return Verdict(claim, INCONCLUSIVE, f"no data for {label}", test, n={label: 0}, fmt=fmt, claim_id=claim_id)
    summary = f"{label}: {describe(values, fmt)} (vanishing = every run <= {VANISH_LEVEL:.0%})"
    if len(values) < MIN_BOUND_RUNS:
        status, summary = INCONCLUSIVE, summary + f"; a bound needs at least {MIN_BOUND_RUNS} runs"
    elif values.max() <= VANISH_LEVEL:
        status = HOLDS
    elif values.mean() > PRESENT_LEVEL:
        status = DOES_NOT_HOLD
    else:
        status = INCONCLUSIVE
    return Verdict(claim, status, summary, test, effect=float(values.mean()), n={label: len(values)},
                   values={label: values.tolist()}, fmt=fmt, effect_label=f"mean of {label}", ci=t_interval(values),
                   claim_id=claim_id)


def all_bounds(claim: str, verdicts: list[Verdict], claim_id: str | None = None) -> Verdict:
    """Bounds combined: holds when every part holds, does not hold when any part does not; no p-value."""
    statuses = [v.status for v in verdicts]
    status = (HOLDS if statuses and all(s == HOLDS for s in statuses)
              else DOES_NOT_HOLD if DOES_NOT_HOLD in statuses else INCONCLUSIVE)
    runs = sum(sum(v.n.values()) for v in verdicts)
    return Verdict(claim, status, " | ".join(f"{v.claim}: {v.status} ({v.evidence})" for v in verdicts),
                   f"bound on every run ({runs} runs in {len(verdicts)} groups, at least {MIN_BOUND_RUNS} each)",
                   n={"runs": runs}, parts=[v.to_dict() for v in verdicts], claim_id=claim_id)


UNTRAINED_MARGIN = 0.10  # a network within 10 points of chance error has not learned the task


def did_not_train(test_errors, num_classes: int) -> np.ndarray:
    """Per run: True when its test error is within ``UNTRAINED_MARGIN`` of chance (1 - 1/classes)."""
    return np.asarray(test_errors, dtype=float) >= (1 - 1 / num_classes) - UNTRAINED_MARGIN


def invalid(claim: str, reason: str, parts: list[Verdict] | None = None, claim_id: str | None = None) -> Verdict:
    """A comparison that cannot be evidence either way (e.g. its control did not train)."""
    return Verdict(claim, INVALID, reason, "not tested", parts=[v.to_dict() for v in parts or []], claim_id=claim_id)


def combine(claim: str, verdicts: list[Verdict], claim_id: str | None = None) -> Verdict:
    """Every part must hold (an intersection-union test): the claim's p-value is the largest of the
    parts'. It does not hold by the same evidence the other way: every part shown reversed, the
    largest of the parts' reversed p-values. Parts that point different ways leave it inconclusive."""
    parts = [v.to_dict() for v in verdicts]
    evidence = " | ".join(f"{v.claim}: {v.status} ({v.evidence})" for v in verdicts)
    test = "all parts hold (intersection-union)"
    tested = [v for v in verdicts if v.p_value is not None]
    if not verdicts or len(tested) < len(verdicts):
        return Verdict(claim, INCONCLUSIVE, evidence or "no parts", test, parts=parts, claim_id=claim_id)
    p_for = max(v.p_value for v in verdicts)
    p_against = max(v.p_against for v in verdicts)
    weakest = min(verdicts, key=lambda v: v.effect if v.effect is not None else math.inf)
    return Verdict(claim, rule(p_for, p_against), evidence, test, p_for, p_against=p_against,
                   p_min=max(v.p_min or 0 for v in verdicts), parts=parts, effect=weakest.effect, ci=weakest.ci,
                   fmt=weakest.fmt, effect_label=f"the smallest part's: {weakest.effect_label}"
                   if weakest.effect_label else None, claim_id=claim_id)


def not_reached(verdict: Verdict, unreached: dict[str, str]) -> Verdict:
    """``verdict`` with status ``NOT_REACHED`` when one of its arms (the keys of its ``n``, or of a
    part's) is in ``unreached`` (arm -> why: its high-rate lr x steps against its onset), the reasons
    first in its evidence; unchanged otherwise. A claim about an arm that had not reached its onset
    when the schedule annealed compares onset times, not what the arms do. A part about such an arm
    is marked too; a whole that a reached part already refutes (a bound some arm broke) keeps its
    status."""
    def reasons(arms):
        return "; ".join(f"{arm}: {unreached[arm]}" for arm in arms) + ". "

    unreached_parts = []
    for part in verdict.parts:
        arms = [arm for arm in part.get("n", {}) if arm in unreached]
        if arms:
            part["status"] = NOT_REACHED
            part["evidence"] = reasons(arms) + part["evidence"]
            unreached_parts += arms
    arms = [arm for arm in verdict.n if arm in unreached]
    refuted = any(part["status"] == DOES_NOT_HOLD for part in verdict.parts)
    if arms or (unreached_parts and not refuted):
        verdict.status = NOT_REACHED
        verdict.evidence = reasons(arms or unreached_parts) + verdict.evidence
    return verdict


def adjust(verdicts: list[Verdict], roles: dict[str, str], family_size: int, family: str) -> list[Verdict]:
    """Decide each verdict by its role (``roles`` maps claim ids to primary, secondary or check): a
    primary claim with p-values is tested at ``ALPHA`` / ``family_size`` (Bonferroni over the
    regime's primary claims, ``family`` naming them), a check at ``ALPHA`` on its own (its status as
    computed), a secondary claim with p-values is described (status ``DESCRIBED``, its raw p-values
    kept). Bounds, per-run checks and invalid comparisons keep their
    status. Returns the same verdicts, updated."""
    for verdict in verdicts:
        verdict.role = roles[verdict.claim_id]
        if verdict.p_value is None or verdict.status in (INVALID, NOT_REACHED):
            continue
        if verdict.role == PRIMARY:
            verdict.p_adjusted = min(1.0, verdict.p_value * family_size)
            verdict.p_against_adjusted = min(1.0, verdict.p_against * family_size)
            verdict.family = f"Bonferroni over the {family_size} primary claims of {family}"
            verdict.status = rule(verdict.p_adjusted, verdict.p_against_adjusted)
        elif verdict.role == CHECK:
            verdict.family = f"a check of our method, decided at {ALPHA:g} on its own (not one of the paper's claims)"
        else:
            verdict.family = "secondary: described, not tested for a status"
            verdict.status = DESCRIBED
    return verdicts


def design_threshold(p_min: float, family_size: int) -> bool:
    """Whether a design whose smallest p is ``p_min`` can reach the level of a primary claim."""
    return p_min * family_size <= ALPHA + 1e-12


class Verdicts(list):
    """A notebook's verdicts; shows as Markdown (status, n, raw and adjusted p, effect, claim, evidence)."""

    def _repr_markdown_(self) -> str:
        return "\n\n".join(v._repr_markdown_() for v in self)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"claim": v.claim, "role": v.role, "status": v.status, "n": v.n, "p_value": v.p_value,
                              "p_adjusted": v.p_adjusted, "effect": v.effect_text, "evidence": v.evidence}
                             for v in self])

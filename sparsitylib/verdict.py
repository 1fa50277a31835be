"""Verdicts computed from data: does a claim of the paper hold at our scale?

One rule for every tested claim: a one-sided test in the claimed direction and one in the
opposite direction.

- *holds*: the effect points the claimed way with p <= ``ALPHA``;
- *does not hold*: it points the other way with p <= ``ALPHA``;
- *inconclusive*: everything else, with the numbers.

The tests (``scipy.stats.permutation_test``):

- ``greater`` (A > B over runs, one value per seed): the exact permutation test of the difference
  of means, all ``C(n_a + n_b, n_a)`` relabellings. With 3 seeds against 3, complete separation
  gives p = 1/20 = 0.05, the smallest p there is; with 2 against 2 it is 1/6, so two seeds can
  never decide a verdict.
- ``trend`` (a setting moves the value up or down): Spearman's rho between the setting and the
  value over all runs, with a permutation test of rho (exact up to 8 runs, else
  ``TREND_RESAMPLES`` seeded random permutations).
- ``near_zero`` (a quantity vanishes) is a bound, not a test: it holds when every run is at most
  ``VANISH_LEVEL`` and does not hold when the mean is above ``PRESENT_LEVEL``; it has no p-value.

Every verdict keeps the numbers that decided it (per-arm values, n, effect, p-value) in its JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
ALPHA = 0.05
TREND_RESAMPLES = 9999
EXACT_TREND_RUNS = 8  # 8! = 40,320 orderings: enumerate them; more runs get random permutations
VANISH_LEVEL = 0.01  # fraction of filters: "no sparsity" means at most 1% dead in every seed
PRESENT_LEVEL = 0.05  # a mean above 5% dead is clearly sparsity


@dataclass
class Verdict:
    """A claim, its status, a readable summary of the evidence, and the numbers behind it.

    ``test`` names the rule (``permutation: difference of means``, ``permutation: Spearman rho``,
    ``bound``, ``all parts``, ...); ``effect`` is the difference of means (A - B) or rho; ``n`` maps
    each arm to its number of runs; ``values`` maps each arm to its per-run values; ``parts`` holds
    the verdicts a combined verdict was made of.
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

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def significance(self) -> str:
        """'n=3 vs 3, p=0.05' (or the rule, for verdicts without a p-value)."""
        sizes = " vs ".join(str(v) for v in self.n.values())
        n = f"n={sizes}" if sizes else ""
        if self.p_value is None:
            return ", ".join(part for part in (n, self.test or "") if part)
        return ", ".join(part for part in (n, f"p={self.p_value:.3g}") if part)

    def _repr_markdown_(self) -> str:
        return f"**{self.status.upper()}** ({self.significance}): {self.claim}  \n{self.evidence}"


def decide(effect: float, p_claimed: float, p_opposite: float) -> str:
    """The one rule: the claimed direction at p <= ALPHA holds, the opposite at p <= ALPHA does not."""
    if effect > 0 and p_claimed <= ALPHA:
        return HOLDS
    if effect < 0 and p_opposite <= ALPHA:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def describe(values, fmt: str = "{:.1%}") -> str:
    """'mean +- sd (n=3)' of per-seed values."""
    values = np.asarray(values, dtype=float)
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{fmt.format(values.mean())} +- {fmt.format(sd)} (n={len(values)})"


def _mean_difference(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def permutation_p_values(a, b) -> tuple[float, float]:
    """Exact one-sided permutation p-values of mean(a) - mean(b): (for a > b, for a < b)."""
    p = {}
    for alternative in ("greater", "less"):
        p[alternative] = float(stats.permutation_test((a, b), _mean_difference, permutation_type="independent",
                                                      alternative=alternative, n_resamples=math.inf,
                                                      vectorized=True).pvalue)
    return p["greater"], p["less"]


def greater(claim: str, a, b, a_label: str, b_label: str, fmt: str = "{:.1%}") -> Verdict:
    """Claim: the values of ``a`` (one per run) exceed those of ``b``; exact permutation test."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    values = {a_label: a.tolist(), b_label: b.tolist()}
    n = {a_label: len(a), b_label: len(b)}
    if len(a) < 2 or len(b) < 2:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 2 runs in each arm; {a_label}: {a.tolist()}, "
                       f"{b_label}: {b.tolist()}", "permutation: difference of means", n=n, values=values)
    effect = float(a.mean() - b.mean())
    p_greater, p_less = permutation_p_values(a, b)
    status = decide(effect, p_greater, p_less)
    p_value = p_greater if effect >= 0 else p_less
    evidence = (f"{a_label}: {describe(a, fmt)}; {b_label}: {describe(b, fmt)}; "
                f"difference {fmt.format(effect)}, one-sided p={p_value:.3g}")
    return Verdict(claim, status, evidence, "permutation: difference of means", p_value, effect, n, values)


def _spearman_rho(x_ranks: np.ndarray, y, axis=-1):
    """Spearman's rho of fixed ``x_ranks`` with each row of ``y`` (Pearson on average ranks)."""
    y_ranks = stats.rankdata(y, axis=axis)
    xc = x_ranks - x_ranks.mean()
    yc = y_ranks - y_ranks.mean(axis=axis, keepdims=True)
    denominator = np.sqrt((xc**2).sum() * (yc**2).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (yc * xc).sum(axis=axis) / denominator


def spearman_p_values(x, y, seed: int = 0) -> tuple[float, float, float]:
    """Spearman's rho of ``y`` against ``x`` with permutation p-values: (rho, p for rho > 0, p for rho < 0)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rho = float(stats.spearmanr(x, y).statistic)
    x_ranks = stats.rankdata(x)
    resamples = math.inf if len(y) <= EXACT_TREND_RUNS else TREND_RESAMPLES
    p = {}
    for alternative in ("greater", "less"):
        p[alternative] = float(stats.permutation_test(
            (y,), lambda values, axis=-1: _spearman_rho(x_ranks, values, axis), permutation_type="pairings",
            alternative=alternative, n_resamples=resamples, vectorized=True, rng=np.random.default_rng(seed)).pvalue)
    return rho, p["greater"], p["less"]


def trend(claim: str, frame: pd.DataFrame, x: str, y: str, direction: int = 1, fmt: str = "{:.1%}") -> Verdict:
    """Claim: ``y`` moves in ``direction`` (+1 up, -1 down) as ``x`` grows. ``frame`` has one row
    per run; the test is Spearman's rho over runs with a permutation p-value."""
    frame = frame.dropna(subset=[y])
    levels = sorted(frame[x].unique())
    n = {f"{x}={level:g}": int((frame[x] == level).sum()) for level in levels}
    values = {f"{x}={level:g}": frame.loc[frame[x] == level, y].astype(float).tolist() for level in levels}
    test = "permutation: Spearman rho"
    if len(levels) < 3:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 3 levels of {x}, got {levels}", test, n=n, values=values)
    per_level = "; ".join(f"{x}={level:g}: {describe(frame.loc[frame[x] == level, y], fmt)}" for level in levels)
    if frame[y].nunique() == 1:
        return Verdict(claim, INCONCLUSIVE, f"{y} is {fmt.format(frame[y].iloc[0])} in every run: no trend to test. "
                       f"{per_level}", test, n=n, values=values, effect=0.0)
    rho, p_up, p_down = spearman_p_values(frame[x], frame[y])
    effect = rho * direction
    p_claimed, p_opposite = (p_up, p_down) if direction > 0 else (p_down, p_up)
    status = decide(effect, p_claimed, p_opposite)
    p_value = p_claimed if effect >= 0 else p_opposite
    evidence = (f"Spearman rho over {len(frame)} runs {rho:+.2f} (claimed direction {'up' if direction > 0 else 'down'}), "
                f"one-sided p={p_value:.3g}. {per_level}")
    return Verdict(claim, status, evidence, test, p_value, rho, n, values)


def near_zero(claim: str, values, label: str, fmt: str = "{:.1%}") -> Verdict:
    """Claim: the values (one per seed, fractions) vanish. A bound on every run, not a test."""
    values = np.asarray(values, dtype=float)
    test = f"bound: every run <= {VANISH_LEVEL:.0%}"
    if len(values) == 0:
        return Verdict(claim, INCONCLUSIVE, f"no data for {label}", test, n={label: 0})
    if values.max() <= VANISH_LEVEL:
        status = HOLDS
    elif values.mean() > PRESENT_LEVEL:
        status = DOES_NOT_HOLD
    else:
        status = INCONCLUSIVE
    return Verdict(claim, status, f"{label}: {describe(values, fmt)} (vanishing = every seed <= {VANISH_LEVEL:.0%})",
                   test, effect=float(values.mean()), n={label: len(values)}, values={label: values.tolist()})


def combine(claim: str, verdicts: list[Verdict]) -> Verdict:
    """All parts hold -> holds; any part does not hold -> does not hold; else inconclusive.

    The p-value of "every part holds" is the largest of the parts' p-values (an
    intersection-union test); it is kept only when the combination holds.
    """
    statuses = [v.status for v in verdicts]
    if statuses and all(s == HOLDS for s in statuses):
        status = HOLDS
    elif DOES_NOT_HOLD in statuses:
        status = DOES_NOT_HOLD
    else:
        status = INCONCLUSIVE
    p_values = [v.p_value for v in verdicts]
    p_value = max(p_values) if status == HOLDS and p_values and None not in p_values else None
    return Verdict(claim, status, " | ".join(f"{v.claim}: {v.status} ({v.evidence})" for v in verdicts),
                   "all parts", p_value, parts=[v.to_dict() for v in verdicts])


def count_holding(claim: str, verdicts: list[Verdict], majority: float = 0.5) -> Verdict:
    """Holds when more than ``majority`` of the parts hold; does not hold when more than
    ``majority`` of them do not hold; inconclusive otherwise."""
    n = sum(v.status == HOLDS for v in verdicts)
    against = sum(v.status == DOES_NOT_HOLD for v in verdicts)
    if not verdicts:
        return Verdict(claim, INCONCLUSIVE, "no parts", "majority of parts")
    status = (HOLDS if n > majority * len(verdicts) else DOES_NOT_HOLD if against > majority * len(verdicts)
              else INCONCLUSIVE)
    details = "; ".join(f"{v.claim}: {v.status} ({v.evidence})" for v in verdicts)
    return Verdict(claim, status, f"{n} of {len(verdicts)} hold. {details}", "majority of parts",
                   parts=[v.to_dict() for v in verdicts])


class Verdicts(list):
    """A notebook's verdicts; shows as Markdown (status, n and p-value, claim, evidence)."""

    def _repr_markdown_(self) -> str:
        return "\n\n".join(v._repr_markdown_() for v in self)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"claim": v.claim, "status": v.status, "n": v.n, "p_value": v.p_value,
                              "effect": v.effect, "evidence": v.evidence} for v in self])

"""Verdicts computed from data: does a claim of the paper hold at our scale?

One rule for every tested claim, applied to the run as the unit of replication:

- *holds*: the effect points the claimed way, is larger than the level that counts as "none"
  (``min_effect``), and its p-value, Holm-adjusted over the notebook's claims, is <= ``ALPHA``;
- *does not hold*: the same, pointing the other way;
- *invalid*: the comparison cannot say anything (its control did not train);
- *inconclusive*: everything else, with the numbers.

The tests (``scipy.stats.permutation_test``, exact unless said otherwise):

- ``greater`` (A > B, one value per run): the difference of means, all ``C(n_a + n_b, n_a)``
  relabellings. 3 runs against 3 reach at best p = 1/20, 5 against 5 p = 1/252.
- ``paired_greater`` (within-run differences, e.g. filters that die against filters of the same
  layer that survive): a sign-flip test of the mean difference over runs; n runs reach at best
  p = 1/2^n, so 3 runs can never decide.
- ``trend`` (a setting moves the value up or down): Spearman's rho between setting and value over
  runs, a permutation test of rho (exact up to ``EXACT_TREND_RUNS`` runs, else
  ``TREND_RESAMPLES`` seeded permutations). Its minimum effect is on the difference between the
  means at the extreme levels.
- ``equivalent`` (a setting does *not* move the value): two one-sided permutation tests (TOST)
  that the difference between the extreme levels lies within +-``margin``.
- ``near_zero`` (a quantity vanishes) is a bound, not a test: no p-value, not in the family.

``adjust`` applies Holm's step-down correction to a notebook's top-level claims; a combined
verdict (``combine``: every part must hold, an intersection-union test whose p-value is the
largest of its parts') counts once. Every verdict carries its effect with a 95% bootstrap
interval over runs (percentile, ``BOOTSTRAP_RESAMPLES`` seeded resamples within each arm; with
3 runs an arm it is rough, and says so by being wide), the raw and the adjusted p-value, and
``p_min``, the smallest p-value its design can reach, so a reader sees whether it could have held.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, INVALID = "holds", "does not hold", "inconclusive", "invalid"
ALPHA = 0.05
TREND_RESAMPLES = 9999
EXACT_TREND_RUNS = 8  # 8! = 40,320 orderings: enumerate them; more runs get random permutations
BOOTSTRAP_RESAMPLES = 9999
CI_LEVEL = 0.95
VANISH_LEVEL = 0.01  # fraction of filters: "no sparsity" means at most 1% dead in every run
PRESENT_LEVEL = 0.05  # a mean above 5% dead is clearly sparsity
MIN_DEAD_EFFECT = VANISH_LEVEL  # a difference in dead fraction must exceed what counts as "none"
DEAD_FMT = "{:.1%}"


@dataclass
class Verdict:
    """A claim, its status, a readable summary of the evidence, and the numbers behind it.

    ``test`` names the rule; ``effect`` (described by ``effect_label``, printed with ``fmt``) is the
    difference of means (A - B), rho, or the extreme-level difference, with its ``ci``; ``supports``
    is +1 when the effect points the claimed way beyond ``min_effect``, -1 when it points the other
    way beyond it, 0 otherwise; ``p_value`` is the raw one-sided p in the effect's direction and
    ``p_adjusted`` the Holm-adjusted one (``None`` outside the family); ``n`` maps each arm to its
    number of runs and ``values`` to its per-run values; ``parts`` holds a combined verdict's parts.
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
    supports: int = 0
    p_min: float | None = None
    p_adjusted: float | None = None
    family: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def significance(self) -> str:
        """'n=5 vs 5, p=0.004, Holm p=0.016' (or the rule, for verdicts without a p-value)."""
        sizes = " vs ".join(str(v) for v in self.n.values())
        n = f"n={sizes}" if sizes else ""
        if self.p_value is None:
            return ", ".join(part for part in (n, self.test or "") if part)
        adjusted = f"Holm p={self.p_adjusted:.2g}" if self.p_adjusted is not None else ""
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
        return f"**{self.status.upper()}** ({self.significance}{effect}): {self.claim}  \n{self.evidence}"


def rule(supports: int, p_value: float | None) -> str:
    """The one rule: a substantial effect the claimed way at p <= ALPHA holds, the other way does not."""
    if p_value is not None and p_value <= ALPHA:
        if supports > 0:
            return HOLDS
        if supports < 0:
            return DOES_NOT_HOLD
    return INCONCLUSIVE


def direction_of(effect: float, min_effect: float) -> int:
    """+1 / -1 when ``effect`` (signed so that positive is the claim) is beyond ``min_effect``, else 0."""
    if effect > min_effect:
        return 1
    if effect < -min_effect:
        return -1
    return 0


def describe(values, fmt: str = DEAD_FMT) -> str:
    """'mean +- sd (n=3)' of per-run values."""
    values = np.asarray(values, dtype=float)
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{fmt.format(values.mean())} +- {fmt.replace('+', '').format(sd)} (n={len(values)})"


# --- bootstrap intervals --------------------------------------------------------------------------


def _interval(statistics: np.ndarray) -> list[float]:
    tail = 100 * (1 - CI_LEVEL) / 2
    low, high = np.nanpercentile(statistics, [tail, 100 - tail])
    return [float(low), float(high)]


def bootstrap_difference(a, b, seed: int = 0) -> list[float]:
    """95% percentile interval of mean(a) - mean(b), resampling runs within each arm."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    means_a = a[rng.integers(0, len(a), (BOOTSTRAP_RESAMPLES, len(a)))].mean(axis=1)
    means_b = b[rng.integers(0, len(b), (BOOTSTRAP_RESAMPLES, len(b)))].mean(axis=1)
    return _interval(means_a - means_b)


def bootstrap_mean(d, seed: int = 0) -> list[float]:
    """95% percentile interval of mean(d), resampling runs."""
    rng = np.random.default_rng(seed)
    d = np.asarray(d, dtype=float)
    return _interval(d[rng.integers(0, len(d), (BOOTSTRAP_RESAMPLES, len(d)))].mean(axis=1))


def bootstrap_rho(x, y, seed: int = 0) -> list[float]:
    """95% percentile interval of Spearman's rho, resampling runs within each level of ``x``."""
    rng = np.random.default_rng(seed)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    groups = [np.flatnonzero(x == level) for level in np.unique(x)]
    picks = np.concatenate([g[rng.integers(0, len(g), (BOOTSTRAP_RESAMPLES, len(g)))] for g in groups], axis=1)
    x_ranks = stats.rankdata(x[np.concatenate(groups)])
    return _interval(_spearman_rho(x_ranks, y[picks], axis=-1))


# --- tests ----------------------------------------------------------------------------------------


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


def greater(claim: str, a, b, a_label: str, b_label: str, fmt: str = DEAD_FMT,
            min_effect: float = MIN_DEAD_EFFECT) -> Verdict:
    """Claim: the values of ``a`` (one per run) exceed those of ``b`` by more than ``min_effect``
    (default: 1 point of dead fraction); exact permutation test of the difference of means."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    values = {a_label: a.tolist(), b_label: b.tolist()}
    n = {a_label: len(a), b_label: len(b)}
    test = "permutation: difference of means"
    common = dict(test=test, n=n, values=values, fmt=fmt, min_effect=min_effect,
                  effect_label=f"difference of means ({a_label} - {b_label})")
    if len(a) < 2 or len(b) < 2:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 2 runs in each arm; {a_label}: {a.tolist()}, "
                       f"{b_label}: {b.tolist()}", **common)
    effect = float(a.mean() - b.mean())
    p_greater, p_less = permutation_p_values(a, b)
    p_value = p_greater if effect >= 0 else p_less
    supports = direction_of(effect, min_effect)
    evidence = (f"{a_label}: {describe(a, fmt)}; {b_label}: {describe(b, fmt)}; "
                f"difference {fmt.format(effect)} (minimum effect {fmt.format(min_effect)}), one-sided p={p_value:.3g}")
    return Verdict(claim, rule(supports, p_value), evidence, p_value=p_value, effect=effect,
                   ci=bootstrap_difference(a, b), supports=supports, p_min=1 / math.comb(len(a) + len(b), len(a)),
                   **common)


def sign_flip_p_values(d) -> tuple[float, float]:
    """Exact one-sided sign-flip p-values of mean(d) over all 2^n sign patterns: (for > 0, for < 0)."""
    d = np.asarray(d, dtype=float)
    p = {}
    for alternative in ("greater", "less"):
        p[alternative] = float(stats.permutation_test((d,), lambda x, axis=-1: np.mean(x, axis=axis),
                                                      permutation_type="samples", alternative=alternative,
                                                      n_resamples=math.inf, vectorized=True).pvalue)
    return p["greater"], p["less"]


def paired_greater(claim: str, differences, label: str, fmt: str = "{:.3f}", min_effect: float = 0.0,
                   unit: str = "run") -> Verdict:
    """Claim: the per-run paired differences (one value per run, e.g. dying minus surviving
    filters of the same layer) are positive on average; exact sign-flip test over runs."""
    d = np.asarray(differences, dtype=float)
    test = f"sign-flip permutation over {unit}s: mean paired difference"
    common = dict(test=test, n={label: len(d)}, values={label: d.tolist()}, fmt=fmt, min_effect=min_effect,
                  effect_label=f"mean paired difference ({label})")
    if len(d) < 2:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 2 {unit}s, got {len(d)}", **common)
    effect = float(d.mean())
    p_greater, p_less = sign_flip_p_values(d)
    p_value = p_greater if effect >= 0 else p_less
    supports = direction_of(effect, min_effect)
    evidence = f"{label}, per {unit}: {describe(d, fmt)}; one-sided sign-flip p={p_value:.3g} (n={len(d)} {unit}s)"
    return Verdict(claim, rule(supports, p_value), evidence, p_value=p_value, effect=effect, ci=bootstrap_mean(d),
                   supports=supports, p_min=1 / 2 ** len(d), **common)


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


def trend_p_min(level_sizes: list[int]) -> float:
    """The smallest p a Spearman permutation test can give for runs in groups of these sizes: one of
    the distinct assignments of values to levels (or 1/(resamples + 1) when resampled)."""
    assignments = math.factorial(sum(level_sizes)) / math.prod(math.factorial(k) for k in level_sizes)
    p = 1 / assignments
    return p if sum(level_sizes) <= EXACT_TREND_RUNS else max(p, 1 / (TREND_RESAMPLES + 1))


def _by_level(frame: pd.DataFrame, x: str, y: str, fmt: str) -> tuple[list, dict, dict, str]:
    """The sorted levels of ``x``, runs per level, per-run values per level (keyed 'x=level'), and
    a readable 'x=level: mean +- sd (n)' summary."""
    levels = sorted(frame[x].unique())
    groups = {f"{x}={level:g}": frame.loc[frame[x] == level, y].astype(float) for level in levels}
    return (levels, {key: len(g) for key, g in groups.items()}, {key: g.tolist() for key, g in groups.items()},
            "; ".join(f"{key}: {describe(g, fmt)}" for key, g in groups.items()))


def trend(claim: str, frame: pd.DataFrame, x: str, y: str, direction: int = 1, fmt: str = DEAD_FMT,
          min_effect: float = MIN_DEAD_EFFECT) -> Verdict:
    """Claim: ``y`` moves in ``direction`` (+1 up, -1 down) as ``x`` grows. ``frame`` has one row
    per run; the test is Spearman's rho over runs with a permutation p-value, and the difference
    between the means at the largest and the smallest level must exceed ``min_effect``."""
    frame = frame.dropna(subset=[y])
    levels, n, values, per_level = _by_level(frame, x, y, fmt)
    common = dict(test="permutation: Spearman rho", n=n, values=values, fmt="{:+.2f}", min_effect=min_effect,
                  effect_label=f"Spearman rho of {y} with {x}")
    if len(levels) < 3:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 3 levels of {x}, got {levels}", **common)
    means = frame.groupby(x)[y].mean()
    span = float(means.iloc[-1] - means.iloc[0])  # largest level minus smallest
    p_min = trend_p_min(list(n.values()))
    if frame[y].nunique() == 1:
        return Verdict(claim, INCONCLUSIVE, f"{y} is {fmt.format(frame[y].iloc[0])} in every run: no trend to test. "
                       f"{per_level}", effect=0.0, p_min=p_min, **common)
    rho, p_up, p_down = spearman_p_values(frame[x], frame[y])
    claimed = rho * direction
    supports = int(np.sign(claimed)) if direction_of(span * direction, min_effect) == np.sign(claimed) else 0
    p_claimed, p_opposite = (p_up, p_down) if direction > 0 else (p_down, p_up)
    p_value = p_claimed if claimed >= 0 else p_opposite
    evidence = (f"Spearman rho over {len(frame)} runs {rho:+.2f} (claimed direction {'up' if direction > 0 else 'down'}), "
                f"one-sided p={p_value:.3g}; mean at the largest minus the smallest {x}: {fmt.format(span)} (minimum "
                f"effect {fmt.format(min_effect)}). {per_level}")
    return Verdict(claim, rule(supports, p_value), evidence, p_value=p_value, effect=rho,
                   ci=bootstrap_rho(frame[x], frame[y]), supports=supports, p_min=p_min, **common)


def equivalent(claim: str, frame: pd.DataFrame, x: str, y: str, margin: float = PRESENT_LEVEL,
               fmt: str = DEAD_FMT) -> Verdict:
    """Claim: ``y`` does not depend on ``x``: the difference between the means at the largest and
    the smallest level of ``x`` lies within +-``margin``. Holds by two one-sided permutation tests
    (TOST: the difference shifted by the margin, each way; p = the larger of the two); does not hold
    when that difference is beyond the margin with a one-sided permutation p <= ALPHA."""
    frame = frame.dropna(subset=[y])
    levels, n, values, per_level = _by_level(frame, x, y, fmt)
    common = dict(test=f"TOST permutation: extreme levels within +-{fmt.format(margin)}", n=n, values=values,
                  fmt=fmt, min_effect=margin, effect_label=f"mean {y} at the largest minus the smallest {x}")
    if len(levels) < 2:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 2 levels of {x}, got {levels}", **common)
    high = frame.loc[frame[x] == levels[-1], y].to_numpy(dtype=float)
    low = frame.loc[frame[x] == levels[0], y].to_numpy(dtype=float)
    if len(high) < 2 or len(low) < 2:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 2 runs at {x}={levels[0]:g} and {x}={levels[-1]:g}, "
                       f"got {len(low)} and {len(high)}", **common)
    effect = float(high.mean() - low.mean())
    p_above_lower, _ = permutation_p_values(high + margin, low)  # against "difference <= -margin"
    _, p_below_upper = permutation_p_values(high - margin, low)  # against "difference >= +margin"
    p_tost = max(p_above_lower, p_below_upper)
    p_greater, p_less = permutation_p_values(high, low)
    if abs(effect) <= margin:
        supports, p_value = 1, p_tost
    else:
        supports, p_value = -1, (p_greater if effect > 0 else p_less)
    evidence = (f"{fmt.format(effect)} between {x}={levels[-1]:g} and {x}={levels[0]:g} (equal = within "
                f"+-{fmt.format(margin)}); TOST p={p_tost:.3g}, difference p={min(p_greater, p_less):.3g}. {per_level}")
    return Verdict(claim, rule(supports, p_value), evidence, p_value=p_value, effect=effect,
                   ci=bootstrap_difference(high, low), supports=supports,
                   p_min=1 / math.comb(len(high) + len(low), len(high)), **common)


def near_zero(claim: str, values, label: str, fmt: str = DEAD_FMT) -> Verdict:
    """Claim: the values (one per run, fractions) vanish. A bound on every run, not a test."""
    values = np.asarray(values, dtype=float)
    test = f"bound: every run <= {VANISH_LEVEL:.0%}"
    if len(values) == 0:
        return Verdict(claim, INCONCLUSIVE, f"no data for {label}", test, n={label: 0}, fmt=fmt)
    if values.max() <= VANISH_LEVEL:
        status = HOLDS
    elif values.mean() > PRESENT_LEVEL:
        status = DOES_NOT_HOLD
    else:
        status = INCONCLUSIVE
    return Verdict(claim, status, f"{label}: {describe(values, fmt)} (vanishing = every run <= {VANISH_LEVEL:.0%})",
                   test, effect=float(values.mean()), n={label: len(values)}, values={label: values.tolist()},
                   fmt=fmt, effect_label=f"mean of {label}", ci=bootstrap_mean(values))


def all_bounds(claim: str, verdicts: list[Verdict]) -> Verdict:
    """Bounds combined: holds when every part holds, does not hold when any part does not; no p-value."""
    statuses = [v.status for v in verdicts]
    status = (HOLDS if statuses and all(s == HOLDS for s in statuses)
              else DOES_NOT_HOLD if DOES_NOT_HOLD in statuses else INCONCLUSIVE)
    runs = sum(sum(v.n.values()) for v in verdicts)
    return Verdict(claim, status, " | ".join(f"{v.claim}: {v.status} ({v.evidence})" for v in verdicts),
                   f"bound on every run ({runs} runs in {len(verdicts)} groups)", n={"runs": runs},
                   parts=[v.to_dict() for v in verdicts])


UNTRAINED_MARGIN = 0.10  # a network within 10 points of chance error has not learned the task


def did_not_train(test_errors, num_classes: int) -> np.ndarray:
    """Per run: True when its test error is within ``UNTRAINED_MARGIN`` of chance (1 - 1/classes)."""
    return np.asarray(test_errors, dtype=float) >= (1 - 1 / num_classes) - UNTRAINED_MARGIN


def invalid(claim: str, reason: str, parts: list[Verdict] | None = None) -> Verdict:
    """A comparison that cannot be evidence either way (e.g. its control did not train)."""
    return Verdict(claim, INVALID, reason, "not tested", parts=[v.to_dict() for v in parts or []])


def combine(claim: str, verdicts: list[Verdict]) -> Verdict:
    """Every part must hold (an intersection-union test): its p-value is the largest of the parts',
    and it counts once in the notebook's family. It does not hold when a part points the other way
    beyond its minimum effect, with that part's p-value times the number of parts (Bonferroni
    within the claim)."""
    parts = [v.to_dict() for v in verdicts]
    evidence = " | ".join(f"{v.claim}: {v.status} ({v.evidence})" for v in verdicts)
    tested = [v for v in verdicts if v.p_value is not None]
    if not verdicts or len(tested) < len(verdicts):
        return Verdict(claim, INCONCLUSIVE, evidence or "no parts", "all parts hold (intersection-union)", parts=parts)
    against = [v for v in verdicts if v.supports < 0]
    if against:
        p_value, supports = min(1.0, min(v.p_value for v in against) * len(verdicts)), -1
    else:
        p_value, supports = max(v.p_value for v in verdicts), int(all(v.supports > 0 for v in verdicts))
    weakest = min(verdicts, key=lambda v: v.effect if v.effect is not None else math.inf)
    return Verdict(claim, rule(supports, p_value), evidence, "all parts hold (intersection-union)", p_value,
                   supports=supports, p_min=max(v.p_min or 0 for v in verdicts), parts=parts, effect=weakest.effect,
                   ci=weakest.ci, fmt=weakest.fmt, effect_label=f"the smallest part's: {weakest.effect_label}"
                   if weakest.effect_label else None)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (monotone, capped at 1), in the input order."""
    order = np.argsort(p_values, kind="stable")
    m = len(p_values)
    adjusted, running = [0.0] * m, 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def adjust(verdicts: list[Verdict], family: str = "the notebook") -> list[Verdict]:
    """Holm-adjust the p-values of the tested claims among ``verdicts`` (bounds, descriptions and
    invalid comparisons are not in the family) and re-decide each one's status with its adjusted
    p-value. Returns the same verdicts, updated."""
    members = [v for v in verdicts if v.p_value is not None and v.status != INVALID]
    for verdict, p_adjusted in zip(members, holm([v.p_value for v in members])):
        verdict.p_adjusted = p_adjusted
        verdict.family = f"Holm over {len(members)} tested claims of {family}"
        verdict.status = rule(verdict.supports, p_adjusted)
    return verdicts


class Verdicts(list):
    """A notebook's verdicts; shows as Markdown (status, n, raw and adjusted p, effect, claim, evidence)."""

    def _repr_markdown_(self) -> str:
        return "\n\n".join(v._repr_markdown_() for v in self)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"claim": v.claim, "status": v.status, "n": v.n, "p_value": v.p_value,
                              "p_adjusted": v.p_adjusted, "effect": v.effect_text, "evidence": v.evidence}
                             for v in self])

"""Verdicts computed from data: does a claim of the paper hold at our scale?

Each verdict compares per-seed values, so the spread over seeds decides as much as the means:

- ``greater``: A > B *holds* when every seed of A is above every seed of B, *does not hold* when no
  seed of A is above any seed of B (equal counts as not above), and is *inconclusive* otherwise.
- ``trend``: a claimed direction across the levels of a setting *holds* when the seed means are
  ordered that way (Spearman rho >= ``TREND_RHO``) and the extreme levels separate over all seeds;
  it *does not hold* when rho points the other way or is flat (rho <= 0, or no variation at all),
  and is *inconclusive* otherwise.
- ``near_zero``: a quantity "vanishes" when every seed is at most ``VANISH_LEVEL``; it does not
  vanish when the mean exceeds ``PRESENT_LEVEL``; in between is inconclusive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
TREND_RHO = 0.8
VANISH_LEVEL = 0.01  # fraction of filters: "no sparsity" means at most 1% dead in every seed
PRESENT_LEVEL = 0.05  # a mean above 5% dead is clearly sparsity


@dataclass
class Verdict:
    claim: str
    status: str
    evidence: str

    def to_dict(self) -> dict:
        return asdict(self)

    def _repr_markdown_(self) -> str:
        return f"**{self.status.upper()}**: {self.claim}  \n{self.evidence}"


def describe(values, fmt: str = "{:.1%}") -> str:
    """'mean +- sd (n seeds)' of per-seed values."""
    values = np.asarray(values, dtype=float)
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{fmt.format(values.mean())} +- {fmt.format(sd)} (n={len(values)})"


def greater(claim: str, a, b, a_label: str, b_label: str, fmt: str = "{:.1%}") -> Verdict:
    """Claim: the values of ``a`` (one per seed) exceed those of ``b``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        return Verdict(claim, INCONCLUSIVE, f"no data for {a_label if len(a) == 0 else b_label}")
    if a.min() > b.max():
        status = HOLDS
    elif a.max() <= b.min():
        status = DOES_NOT_HOLD
    else:
        status = INCONCLUSIVE
    return Verdict(claim, status, f"{a_label}: {describe(a, fmt)}; {b_label}: {describe(b, fmt)}")


def trend(claim: str, frame: pd.DataFrame, x: str, y: str, direction: int = 1, fmt: str = "{:.1%}") -> Verdict:
    """Claim: ``y`` moves in ``direction`` (+1 up, -1 down) as ``x`` grows. ``frame`` has one row
    per run (seed)."""
    frame = frame.dropna(subset=[y])
    levels = sorted(frame[x].unique())
    if len(levels) < 3:
        return Verdict(claim, INCONCLUSIVE, f"needs at least 3 levels of {x}, got {levels}")
    means = frame.groupby(x)[y].mean().reindex(levels)
    per_level = "; ".join(f"{x}={level:g}: {describe(frame.loc[frame[x] == level, y], fmt)}" for level in levels)
    if means.nunique() == 1:
        return Verdict(claim, DOES_NOT_HOLD, f"{y} is the same at every level. {per_level}")
    # Spearman's rho = Pearson correlation of the ranks (no SciPy needed)
    rho = float(pd.Series(levels, dtype=float).rank().corr(means.reset_index(drop=True).rank())) * direction
    first, last = frame.loc[frame[x] == levels[0], y], frame.loc[frame[x] == levels[-1], y]
    separated = (last.min() > first.max()) if direction > 0 else (last.max() < first.min())
    if rho >= TREND_RHO and separated:
        status = HOLDS
    elif rho <= 0:
        status = DOES_NOT_HOLD
    else:
        status = INCONCLUSIVE
    return Verdict(claim, status, f"Spearman rho in the claimed direction {rho:+.2f}. {per_level}")


def near_zero(claim: str, values, label: str, fmt: str = "{:.1%}") -> Verdict:
    """Claim: the values (one per seed, fractions) vanish."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return Verdict(claim, INCONCLUSIVE, f"no data for {label}")
    if values.max() <= VANISH_LEVEL:
        status = HOLDS
    elif values.mean() > PRESENT_LEVEL:
        status = DOES_NOT_HOLD
    else:
        status = INCONCLUSIVE
    return Verdict(claim, status, f"{label}: {describe(values, fmt)} (vanishing = every seed <= {VANISH_LEVEL:.0%})")


def combine(claim: str, verdicts: list[Verdict]) -> Verdict:
    """All parts hold -> holds; any part does not hold -> does not hold; else inconclusive."""
    statuses = [v.status for v in verdicts]
    if statuses and all(s == HOLDS for s in statuses):
        status = HOLDS
    elif DOES_NOT_HOLD in statuses:
        status = DOES_NOT_HOLD
    else:
        status = INCONCLUSIVE
    return Verdict(claim, status, " | ".join(f"{v.claim}: {v.status} ({v.evidence})" for v in verdicts))


def count_holding(claim: str, verdicts: list[Verdict], majority: float = 0.5) -> Verdict:
    """Holds when more than ``majority`` of the parts hold; does not hold when none does."""
    n = sum(v.status == HOLDS for v in verdicts)
    if not verdicts:
        return Verdict(claim, INCONCLUSIVE, "no parts")
    status = HOLDS if n > majority * len(verdicts) else DOES_NOT_HOLD if n == 0 else INCONCLUSIVE
    details = "; ".join(f"{v.claim}: {v.status} ({v.evidence})" for v in verdicts)
    return Verdict(claim, status, f"{n} of {len(verdicts)} hold. {details}")


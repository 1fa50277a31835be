"""The definitions of a dead or dormant unit, as data: names, rules, sources, thresholds.

Torch-free, so that the command line can offer them before it loads torch. ``dormancy`` computes
them; its docstring says what each one counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DORMANCY_TAUS = (0.0, 0.025, 0.1)  # ReDo's three thresholds
# a filter whose maximum is below this outputs exactly zero: the 0-dormant filters, removed as dead
ZERO_OUTPUT = math.nextafter(0.0, 1.0)
DORMANT_FIRING = 0.01  # Dohare et al.: dormant when fewer than 1% of its values are non-zero
GRAMA_TAU = 0.01  # ReGraMa's default score threshold (Liu et al. 2025, as a public reimplementation has it)
GRAMA_DIFFERS = ("gradients of the loss on the monitor's fixed sample, BatchNorm in inference mode (ReGraMa: the "
                 "training batch's); the definition as a public JAX reimplementation of ReGraMa computes it: mean "
                 "|gradient| over the unit's incoming weights, divided by the layer's mean of that")


@dataclass(frozen=True)
class Definition:
    """One definition: ``name`` (as ``inspect --criterion`` takes it), the boolean column of the
    per-filter table, the rule in words, its source, whether removal is exact, and where our
    measurement differs from the way its source computes it (``differs``; empty where it does not)."""

    name: str
    column: str
    rule: str
    source: str
    exact: bool
    # which units it can judge: "relu" (observed behind a ReLU-family activation: ``measured``),
    # "observed" (behind any activation: the dormancy scores) or "gamma" (BatchNorm's parameters)
    applies: str = "relu"
    differs: str = ""


# Where Dohare et al.'s procedure (loss-of-plasticity code) counts differently; the fractions are
# comparable only for a plain ReLU network measured without residual streams.
DOHARE_DIFFERS = ("a value fires when > 1e-12 (theirs: != 0, so a leaky ReLU's negative outputs fire there); BatchNorm "
                  "in inference mode (theirs: training mode, batch statistics); filters only (they also count each "
                  "residual block's output after the addition as units: 3,904 in ResNet-18 against our 1,984)")
APOZ_DIFFERS = "zeros are values <= 1e-12 (Hu et al.: == 0; the same after ReLU, not after leaky ReLU)"


def tau_column(tau: float) -> str:
    return f"dormant_tau_{tau:g}"


def definitions(taus=DORMANCY_TAUS, firing: float = DORMANT_FIRING) -> list[Definition]:
    """The definitions measured, in the order tables show them."""
    return [
        Definition("activation", "dead_by_activation", "max activation over the data < 1e-12",
                   "Mehta et al., CVPR 2019", exact=True),
        Definition("gamma", "dead_by_gamma", "|gamma| < 1e-3", "Mehta et al., the authors' pruning code", exact=False,
                   applies="gamma"),
        Definition("idle-branch", "idle_branch", "|gamma| < 1e-3 where BatchNorm's output is added to a residual "
                   "stream (an idle branch: the stream still carries the channel)", "ours; timm starts these gammas at 0",
                   exact=False, applies="gamma"),
        *(Definition(f"dormant-{tau:g}", tau_column(tau), f"mean |activation| / layer mean <= {tau:g}",
                     "ReDo, Sokar et al., ICML 2023", exact=tau == 0, applies="observed") for tau in taus),
        Definition(f"dormant-{100 * firing:g}%", firing_column(firing), f"fires on < {100 * firing:g}% of values",
                   "Dohare et al., Nature 2024", exact=False, differs=DOHARE_DIFFERS),
        Definition("grama", "dormant_grama", f"mean |gradient of its incoming weights| / layer mean <= {GRAMA_TAU:g}",
                   "GraMa, Liu et al. 2025 (arXiv 2505.24061)", exact=False, applies="any", differs=GRAMA_DIFFERS),
    ]


def firing_column(firing: float) -> str:
    return f"dormant_{100 * firing:g}pct"

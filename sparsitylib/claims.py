"""The registry of the paper's claims: each claim once, with its home notebook and its role.

- **primary**: the paper's stated findings (CVPR 2019 and its ICML 2019 workshop companion), one
  per hypothesis. A regime's report tests its primary claims together: each at ``ALPHA`` / m,
  Bonferroni over the m primary claims with a p-value that the regime's report plan makes
  (``family_size``). A design that cannot reach that level is refused before any run
  (``design_problems``).
- **check**: a check of our own method (not a claim of the paper), e.g. that training in bfloat16
  measures what float32 does. It licenses a change of method, so it is decided on its own, at
  ``ALPHA``, and its design must reach that level.
- **secondary**: our own analyses, and the paper's claims in settings it did not report (other
  architectures, the same claim on another quantity). They are described: effect, interval and
  raw p-values, no status. A bound or a per-run check has no p-value and keeps its outcome.

A claim reused by another notebook is tested once, in its home notebook, and cited by the others
(``cited_by``). ``python -m sparsitylib claims`` writes docs/claims.md from this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from .presets import REPORTS
from .verdict import ALPHA, CHECK, MIN_BOUND_RUNS, PRIMARY, SECONDARY, greater_p_min, paired_p_min, trend_p_min

PAPER = "Mehta, Kim, Theobalt, CVPR 2019"
WORKSHOP = "Mehta, Kim, Theobalt, ICML 2019 workshop"
NOTEBOOKS = (
    "01_optimizer_regularizer", "02_where_sparsity_lives", "03_batchnorm_dynamics", "04_regularization_and_lr",
    "05_batch_size", "06_task_difficulty", "07_capacity_architecture", "08_mechanism", "09_pruning",
    "10_training_length", "11_resnets", "12_recycling", "13_precision",
)


@dataclass(frozen=True)
class Claim:
    """One claim: ``id`` (unique), its home ``notebook``, the ``statement`` as tested, its ``role``,
    where it comes from (``source``), the quantity and test in words (``quantity``), whether it
    has a p-value (``tested``; bounds and per-run checks have none) and the notebooks that show it
    without testing it again (``cited_by``)."""

    id: str
    notebook: str
    statement: str
    role: str
    source: str
    quantity: str
    tested: bool = True
    cited_by: tuple[str, ...] = ()


DEAD = "per run, the fraction of filters dead by activation (never positive on the training set)"
REGISTRY: tuple[Claim, ...] = (
    # 01: optimizer x regularizer
    Claim("adam-vs-sgd", "01_optimizer_regularizer", "With L2, Adam leaves more dead filters than SGD", PRIMARY,
          f"{PAPER}, Table 1: adaptive methods give far more sparsity than SGD", f"{DEAD}; Adam+L2 against SGD+L2",
          cited_by=("07_capacity_architecture", "11_resnets")),
    Claim("l2-vs-wd", "01_optimizer_regularizer", "With Adam, L2 leaves more dead filters than the paper's weight "
          "decay (same lambda)", PRIMARY, f"{PAPER}, Table 1: with Adam, L2 gives more sparsity than weight decay",
          f"{DEAD}; Adam+L2 against Adam+WD"),
    Claim("none-without-regularization", "01_optimizer_regularizer", "Without regularization no filters die, for "
          "every optimizer run without it", PRIMARY, f"{PAPER}, Table 1: the sparsity vanishes without regularization",
          "bound: every run at most 1% dead, at least 3 runs per optimizer", tested=False),
    Claim("other-adaptive-vs-sgd", "01_optimizer_regularizer", "With L2, each other adaptive method (AMSGrad, "
          "AdaMax, AdaGrad, AdaDelta, RMSprop) leaves more dead filters than SGD", SECONDARY,
          f"{PAPER}, Table 1 (the other adaptive methods)", f"{DEAD}; one comparison per optimizer"),
    Claim("l2-vs-none", "01_optimizer_regularizer", "With Adam, L2 leaves more dead filters than no regularization",
          SECONDARY, f"{PAPER}, Table 1", f"{DEAD}; Adam+L2 against Adam alone", cited_by=("12_recycling",)),
    Claim("wd-vs-none", "01_optimizer_regularizer", "With Adam, the paper's weight decay also leaves dead filters "
          "(more than no regularization)", SECONDARY, f"{PAPER}, Table 1", f"{DEAD}; Adam+WD against Adam alone"),
    Claim("wd-adam-vs-sgd", "01_optimizer_regularizer", "With the paper's weight decay (same lambda), Adam leaves "
          "more dead filters than SGD", SECONDARY, f"{PAPER}, Table 1", f"{DEAD}; Adam+WD against SGD+WD"),
    Claim("adamw-vs-none", "01_optimizer_regularizer", "AdamW (torch's decoupled decay at its usual strength) leaves "
          "dead filters (more than Adam without regularization)", SECONDARY, "ours: the optimizer most users train "
          "with today (torch.optim.AdamW, weight_decay 0.01)", f"{DEAD}; AdamW against Adam alone"),
    # 02: where sparsity lives
    Claim("more-selective", "02_where_sparsity_lives", "Adam+L2 learns more selective features than SGD+L2 (mean "
          "selectivity of live filters)", PRIMARY, f"{PAPER}, Section 4: adaptive methods learn more selective "
          "features", "per run, the mean selectivity of the filters alive at the end; Adam+L2 against SGD+L2"),
    Claim("more-selective-healthy", "02_where_sparsity_lives", "Adam+L2's healthy filters (|gamma| > 0.05) are "
          "more selective than SGD+L2's", SECONDARY, "ours: the same claim on filters far from dying",
          "per run, the mean selectivity of the filters with |gamma| > 0.05 at the end"),
    # 03: BatchNorm dynamics
    Claim("gamma-decays-faster", "03_batchnorm_dynamics", "BatchNorm scales (gamma) of the typical filter decay "
          "faster with Adam+L2 than with Adam+WD or SGD+L2", PRIMARY, f"{PAPER}, the figure of the decay of "
          "regularized features over training", "per run, the median over all filters of ln(1/|gamma|) at the end "
          "divided by the epochs; Adam+L2 against each of the two (both must hold)"),
    Claim("gamma-decays-faster-survivors", "03_batchnorm_dynamics", "BatchNorm scales of the filters that survive "
          "decay faster with Adam+L2 than with Adam+WD or SGD+L2", SECONDARY, "ours: the matched subset (filters "
          "alive at the end in every arm)", "per run, the mean over surviving filters of the same log-decay rate"),
    # 04: regularization strength and learning rate
    Claim("stronger-regularization", "04_regularization_and_lr", "Adam+L2: stronger regularization leaves more dead "
          "filters", PRIMARY, f"{PAPER}: stronger regularization gives more sparsity",
          f"{DEAD}; Spearman trend over lambda (0 included)"),
    Claim("stronger-wd", "04_regularization_and_lr", "Adam+WD: stronger regularization leaves more dead filters",
          SECONDARY, "ours: the same claim for the paper's weight decay", f"{DEAD}; Spearman trend over lambda"),
    Claim("equal-error-l2-vs-wd", "04_regularization_and_lr", "At equal test error, Adam+L2 leaves more dead "
          "filters than Adam+WD", SECONDARY, "ours: L2 against WD at the lambdas within an error budget",
          f"{DEAD}; each regularizer at its strongest lambda within 2 points of test error of Adam alone"),
    Claim("equal-error-wd-vs-none", "04_regularization_and_lr", "At equal test error, Adam+WD leaves dead filters "
          "(more than Adam alone)", SECONDARY, "ours", f"{DEAD}; WD at its budget lambda against Adam alone"),
    Claim("larger-learning-rate", "04_regularization_and_lr", "A larger learning rate leaves more dead filters",
          SECONDARY, "ours; arXiv 2001.11216 reports it for filter collapse", f"{DEAD}; Spearman trend over lr"),
    # 05: mini-batch size
    Claim("smaller-batch", "05_batch_size", "Smaller mini-batches leave more dead filters (equal epochs)", PRIMARY,
          f"{PAPER}, Tables 3-5: smaller mini-batches give more sparsity", f"{DEAD}; Spearman trend over batch size"),
    Claim("smaller-batch-equal-steps", "05_batch_size", "Smaller mini-batches leave more dead filters (equal steps)",
          SECONDARY, "ours: the same claim with the number of updates held equal", f"{DEAD}; Spearman trend"),
    # 06: task difficulty
    Claim("fewer-classes", "06_task_difficulty", "Fewer classes (an easier task) leave more dead filters", PRIMARY,
          f"{PAPER}: easier tasks (CIFAR-10 against CIFAR-100) give more sparsity",
          f"{DEAD}; Spearman trend over the number of classes"),
    Claim("smaller-training-set", "06_task_difficulty", "A smaller training set (easier to fit; same number of "
          "steps) leaves more dead filters", SECONDARY, "ours", f"{DEAD}; Spearman trend over the training set size"),
    Claim("cifar10-vs-cifar100", "06_task_difficulty", "CIFAR-10 leaves more dead filters than CIFAR-100", SECONDARY,
          f"{PAPER} on its own data sets, where they are available (not at the CPU presets)", f"{DEAD}"),
    # 07: capacity and architecture
    Claim("narrower", "07_capacity_architecture", "A narrower network (less capacity) has a larger fraction of dead "
          "filters", SECONDARY, f"{PAPER}, Table 6 (as study notes report it; the direction is to be measured)",
          f"{DEAD}; Spearman trend over the width multiplier"),
    Claim("every-architecture", "07_capacity_architecture", "Adam+L2 leaves more dead filters than SGD+L2 in every "
          "other architecture (BasicNet: notebook 01)", SECONDARY, "ours: the primary claim of notebook 01 in the "
          "other architectures", f"{DEAD}; one comparison per architecture, all must agree"),
    # 08: mechanism
    Claim("bn-decay-needed", "08_mechanism", "Decaying BN's gamma and beta is needed for the full effect (more die "
          "than when only weights decay)", PRIMARY, f"{PAPER}, Section 5: the regularizer pulls gamma and beta down "
          "for filters that fire on few samples", f"{DEAD}; everything decayed against BatchNorm's parameters not "
          "decayed"),
    Claim("early-selectivity-predicts-death", "08_mechanism", "Selectivity measured while a filter is healthy "
          "predicts its later death within its layer (selective features emerge, then get pruned)", PRIMARY,
          f"{WORKSHOP}: selective features emerge and are then pruned by the regularizer",
          "per run, the AUC of early selectivity for filters that end dead against the survivors of the same layer "
          "(pairs within layers), minus 0.5; sign-flip over runs"),
    Claim("selective-as-they-die", "08_mechanism", "Filters are more selective than their layer's survivors shortly "
          "before they die", SECONDARY, "ours: the lead-time reading of the workshop's claim (a filter becomes "
          "selective as it dies)", "per run, the mean of dying minus same-layer survivors' selectivity a fixed "
          "number of epochs before each death"),
    Claim("leaky-relu", "08_mechanism", "With leaky ReLU fewer filters die (gamma criterion: |gamma| < 1e-3)",
          SECONDARY, f"{PAPER}, Section 5 (the mechanism needs a zero gradient)",
          "per run, the fraction of filters with |gamma| < 1e-3"),
    Claim("no-batchnorm", "08_mechanism", "Without BatchNorm fewer filters die", SECONDARY, f"{PAPER}, Section 5",
          f"{DEAD}; invalid when the runs without BatchNorm did not train"),
    Claim("none-die-bn-not-decayed", "08_mechanism", "With BN's gamma and beta not decayed, no filters die",
          SECONDARY, f"{PAPER}, Section 5 (our bound)", "bound: every run at most 1% dead", tested=False),
    # 09: pruning
    Claim("at-par", "09_pruning", "Implicit pruning is at par with or better than explicit pruning at matched MACs "
          "(test error after the same fine-tuning; par = within 1%)", PRIMARY, f"{PAPER}, Section 6: a speed-up at "
          "par with or better than explicit pruning", "per seed, test error after fine-tuning: the best explicit "
          "method + 1 point against implicit; every architecture must agree"),
    Claim("exact-removal", "09_pruning", "Removing the dead filters (dead on every training image) changes no output "
          "on the test set", SECONDARY, "ours: exactness of the removal", "per run, the largest test-logit "
          "difference below 1e-9 (float64)", tested=False),
    # 10: training length
    Claim("lr-x-steps", "10_training_length", "At equal lr x steps, the learning rate does not change the dead "
          "fraction (Adam+L2)", SECONDARY, "ours: the clock of the phenomenon",
          f"{DEAD}; equivalence of the extreme learning rates within 5 points (TOST)"),
    # 11: ResNets
    Claim("resnet-vs-sgd", "11_resnets", "In ResNet-18, Adam+L2 leaves more dead filters than SGD+L2", SECONDARY,
          f"{WORKSHOP} (ResNet-50 results); the primary claim of notebook 01 in a residual network", DEAD),
    Claim("resnet-vs-none", "11_resnets", "In ResNet-18, Adam+L2 leaves more dead filters than Adam without "
          "regularization", SECONDARY, "ours", DEAD),
    Claim("resnet-exact-removal", "11_resnets", "Removing the dead filters that can be removed exactly changes no "
          "output on the test set", SECONDARY, "ours", "per run, the largest test-logit difference below 1e-9",
          tested=False),
    # 12: recycling
    Claim("accuracy-gap", "12_recycling", "Adam+L2 has a higher test error than Adam without regularization",
          SECONDARY, f"{PAPER}: adaptive methods silently reduce capacity (part of their generalization gap)",
          "per run, the test error; Adam+L2 against Adam alone"),
    Claim("recycling-fewer-dead", "12_recycling", "Recycling leaves fewer filters dead at the end of training",
          SECONDARY, "ours (ReDo, Sokar et al. 2023)", DEAD),
    Claim("recycling-lower-error", "12_recycling", "Recycling lowers Adam+L2's test error", SECONDARY,
          "ours (ReDo, Sokar et al. 2023)", "per run, the test error"),
    # 13: training precision (our method)
    Claim("bf16-equivalent", "13_precision", "Training in bfloat16 (autocast) leaves the same dead filters and test "
          "error as float32", CHECK, "ours: whether a run may train in bfloat16 (1.8x faster on our CPU)",
          "per seed, bfloat16 minus float32 (same seed: same initialization and batches): the total dead fraction "
          "by each criterion within +-2 points, each layer's within +-5 points of its filters, the test error within "
          "+-1 point; sign-flip TOST; every part for every optimizer must hold (intersection-union)"),
)
BY_ID = {claim.id: claim for claim in REGISTRY}
assert len(BY_ID) == len(REGISTRY), "claim ids must be unique"
ROLES = {claim.id: claim.role for claim in REGISTRY}


def report_notebooks(preset: str) -> tuple[str, ...]:
    """The notebooks the preset's report runs (``presets.REPORTS``; every notebook when not listed)."""
    return tuple(REPORTS[preset]) if preset in REPORTS else NOTEBOOKS


def family(preset: str) -> list[Claim]:
    """The primary claims with a p-value that the preset's report tests: its family."""
    notebooks = report_notebooks(preset)
    return [c for c in REGISTRY if c.role == PRIMARY and c.tested and c.notebook in notebooks]


def family_size(preset: str) -> int:
    return max(1, len(family(preset)))


def threshold(preset: str) -> float:
    """The raw p-value a primary claim of the preset's report must reach: ALPHA / family size."""
    return ALPHA / family_size(preset)


def runs_needed(p_min_of, level: float, start: int = 2, limit: int = 64) -> int | None:
    """The smallest n >= ``start`` whose design (``p_min_of(n)``) reaches ``level``."""
    for n in range(start, limit + 1):
        if p_min_of(n) <= level + 1e-12:
            return n
    return None


def two_arm_needs(level: float) -> str:
    n = runs_needed(lambda k: greater_p_min(k, k), level)
    return f"{n} vs {n} runs"


def paired_needs(level: float) -> str:
    return f"{runs_needed(paired_p_min, level)} runs"


def trend_needs(levels: int, level: float) -> str:
    return f"{runs_needed(lambda k: trend_p_min([k] * levels), level, start=1)} runs at each of the {levels} levels"


@dataclass(frozen=True)
class Design:
    """What a notebook's parameters give one claim: the smallest p they can reach, and what a
    design that reaches ``level`` would need (a function of the level, for the message)."""

    claim_id: str
    p_min: float
    needs: object  # level -> str
    runs: str  # the design as given, e.g. "3 vs 3 runs"


def two_arm(claim_id: str, n_a: int, n_b: int) -> Design:
    """A two-arm permutation test's design: ``n_a`` runs against ``n_b``."""
    return Design(claim_id, greater_p_min(n_a, n_b), two_arm_needs, f"{n_a} vs {n_b} runs")


def paired_runs(claim_id: str, n: int) -> Design:
    """A sign-flip test's design over ``n`` runs."""
    return Design(claim_id, paired_p_min(n), paired_needs, f"{n} runs")


def trend_runs(claim_id: str, level_sizes: list[int]) -> Design:
    """A Spearman trend's design: runs per level."""
    return Design(claim_id, trend_p_min(level_sizes), lambda level: trend_needs(len(level_sizes), level),
                  f"{' + '.join(map(str, level_sizes))} runs at {len(level_sizes)} levels")


def bound(claim_id: str, fewest_runs: int) -> Design:
    """A bound's design: it needs ``MIN_BOUND_RUNS`` runs in every group (no p-value)."""
    return Design(claim_id, 0.0 if fewest_runs >= MIN_BOUND_RUNS else 1.0,
                  lambda level: f"at least {MIN_BOUND_RUNS} runs in every group", f"{fewest_runs} runs in a group")


def design_problems(preset: str, designs: list[Design]) -> list[str]:
    """For each primary claim or check among ``designs`` whose design cannot reach its level (a
    primary claim's: the preset's family's; a check's: ``ALPHA``): a sentence with the design, the
    family and what it would need; [] when every one can."""
    m = family_size(preset)
    problems = []
    for design in designs:
        claim = BY_ID[design.claim_id]
        level = threshold(preset) if claim.role == PRIMARY else ALPHA
        if claim.role not in (PRIMARY, CHECK) or design.p_min <= level + 1e-12:
            continue
        if claim.role == CHECK:
            problems.append(f"'{claim.statement}' is not testable with {design.runs} (smallest p {design.p_min:.3g}) "
                            f"at the level of a check, {ALPHA:g}: needs {design.needs(level)}")
            continue
        if not claim.tested:
            problems.append(f"'{claim.statement}' is a bound: with {design.runs} it says nothing; needs "
                            f"{design.needs(level)}")
        else:
            problems.append(f"'{claim.statement}' is not testable with {design.runs} (smallest p {design.p_min:.3g}) "
                            f"in the {preset} family of {m} primary claims (level {ALPHA:g}/{m} = {level:.3g}): "
                            f"needs {design.needs(level)}")
    return problems


def markdown() -> str:
    """docs/claims.md: every claim, its role, source, quantity, and each regime's family."""
    lines = ["# The paper's claims", "",
             "_Written by `python -m sparsitylib claims` from `sparsitylib/claims.py`; do not edit by hand._", "",
             "Each claim is tested once, in its home notebook; a notebook that shows it again cites it. "
             "**Primary** claims are the paper's stated findings, one per hypothesis: in each regime they form one "
             "family, each tested at 0.05 / m (Bonferroni over the m primary claims with a p-value that the "
             "regime's report tests; a bound has no p-value and is not counted). **Secondary** claims are our "
             "analyses and the paper's claims in settings it did not report: they are described with their effect, "
             "95% interval and raw one-sided p-values, without a status. A **check** tests our own method (not "
             "the paper), decided at 0.05 on its own. See docs/verdicts.md for the rules.", ""]
    for preset in ("quick", "long"):
        members = ", ".join(f"`{c.id}`" for c in family(preset))
        lines.append(f"- **{preset}** report: m = {family_size(preset)}, level 0.05/{family_size(preset)} = "
                     f"{threshold(preset):.4f}: {members}.")
    lines += ["", "| notebook | id | claim | role | source | quantity and test | cited by |",
              "|---|---|---|---|---|---|---|"]
    for claim in REGISTRY:
        role = claim.role + ("" if claim.tested else " (bound or check: no p-value)")
        cells = (claim.notebook[:2], f"`{claim.id}`", claim.statement, role, claim.source, claim.quantity,
                 ", ".join(name[:2] for name in claim.cited_by) or "-")
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"

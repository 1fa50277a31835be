"""Optimizers, the two regularizers the paper separates, and learning-rate schedules.

The regularizers (``decay_mode``):

- ``"l2"``: lambda * theta is added to the loss gradient *before* the optimizer's update, so for
  Adam and its relatives it passes through the per-parameter normalization. This is what
  ``torch.optim.Adam(weight_decay=...)`` does, and what every torch optimizer's ``weight_decay``
  argument means; we use that argument.
- ``"wd"``: the paper's weight decay. The optimizer steps on the loss gradient alone, then
  ``theta <- theta * (1 - lambda * s_t)``, with ``s_t = lr_t / lr`` the schedule's multiplier at
  that step (1 at a constant rate). Not scaled by the learning rate itself: "multiplies theta by
  (1 - lambda) after the update step based on the gradient from the main objective".
- ``"decoupled"``: torch's AdamW convention, scaled by the learning rate: the optimizer steps on
  the loss gradient alone, then ``theta <- theta * (1 - lr_t * lambda)`` with ``lr_t`` the
  scheduled learning rate (applied after the step, for every optimizer). At Adam's lr 1e-2 this is
  100 times weaker than ``"wd"`` at the same lambda.
- ``"none"``.

``optimizer="adamw"`` is ``torch.optim.AdamW`` as torch defines it: its own decoupled decay
(``decay_mode="decoupled"``, ``theta <- theta * (1 - lr_t * lambda)`` *before* the Adam step, where
our ``decoupled`` for other optimizers applies it after), at its usual lambda of 0.01 when a preset
fills the settings (``presets.OPTIMIZER_DEFAULTS``).

``decay_params`` chooses what is regularized: ``"all"`` parameters (the paper's setting: BN gamma
and beta too) or ``"weights_only"`` (convolution and linear weights; no BN parameters, no biases).
"""

from __future__ import annotations

import math

import torch
from torch import nn

OPTIMIZERS = ("sgd", "adam", "amsgrad", "adamax", "adagrad", "adadelta", "rmsprop", "adamw")
# optimizers that decay the weights themselves (torch.optim.AdamW: theta <- theta * (1 - lr_t * lambda)
# before the Adam step): decay_mode ``decoupled`` (their weight_decay) or ``none`` only
SELF_DECAYING = ("adamw",)
DECAY_MODES = ("none", "l2", "wd", "decoupled")
DECAY_PARAMS = ("all", "weights_only")
SCHEDULES = ("constant", "step", "cosine")


def parameter_groups(model: nn.Module, decay_params: str) -> tuple[list, list]:
    """Split parameters into (regularized, not regularized)."""
    if decay_params not in DECAY_PARAMS:
        raise ValueError(f"unknown decay_params {decay_params!r}; choose one of {DECAY_PARAMS}")
    decayed, kept = [], []
    for parameter in model.parameters():
        # weights of conv and linear layers have >= 2 dims; BN gamma/beta and biases have one
        (decayed if decay_params == "all" or parameter.dim() > 1 else kept).append(parameter)
    return decayed, kept


def build_optimizer(
    model: nn.Module,
    optimizer: str,
    lr: float,
    decay_mode: str = "l2",
    decay: float = 5e-4,
    decay_params: str = "all",
    momentum: float = 0.9,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """A torch optimizer whose parameter groups carry the regularizer.

    Call ``optimizer_step(optimizer)`` instead of ``optimizer.step()`` so weight decay (``wd``)
    and decoupled decay are applied.
    """
    if decay_mode not in DECAY_MODES:
        raise ValueError(f"unknown decay_mode {decay_mode!r}; choose one of {DECAY_MODES}")
    decayed, kept = parameter_groups(model, decay_params)
    l2 = decay if decay_mode == "l2" else 0.0
    decoupled = decay if decay_mode == "decoupled" else 0.0
    paper_wd = decay if decay_mode == "wd" else 0.0
    groups = [
        # base_lr: the unscheduled rate, so that wd can follow the schedule's multiplier lr_t / lr
        {"params": decayed, "weight_decay": l2, "decoupled_decay": decoupled, "paper_wd": paper_wd, "base_lr": lr},
        {"params": kept, "weight_decay": 0.0, "decoupled_decay": 0.0, "paper_wd": 0.0, "base_lr": lr},
    ]
    groups = [g for g in groups if g["params"]]
    if optimizer in SELF_DECAYING:
        if decay_mode in ("l2", "wd"):
            raise ValueError(f"{optimizer} decays the weights itself; use decay_mode 'decoupled' or 'none'")
        for group in groups:  # torch's AdamW applies its own weight_decay: not again after the step
            group["weight_decay"], group["decoupled_decay"] = group["decoupled_decay"], 0.0
        return torch.optim.AdamW(groups, lr=lr)
    if optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)
    if optimizer in ("adam", "amsgrad"):
        return torch.optim.Adam(groups, lr=lr, amsgrad=optimizer == "amsgrad")
    if optimizer == "adamax":
        return torch.optim.Adamax(groups, lr=lr)
    if optimizer == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr)
    if optimizer == "adadelta":
        return torch.optim.Adadelta(groups, lr=lr)
    if optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr)
    raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")


@torch.no_grad()
def apply_decay_after_step(optimizer: torch.optim.Optimizer) -> None:
    """Shrink the parameters of ``wd`` groups by (1 - lambda * lr_t / lr) and those of
    ``decoupled`` groups by (1 - lr_t * lambda), lr_t the rate as currently scheduled."""
    for group in optimizer.param_groups:
        factor = 1.0
        if group.get("paper_wd", 0.0):
            factor *= 1.0 - group["paper_wd"] * group["lr"] / group["base_lr"]
        if group.get("decoupled_decay", 0.0):
            factor *= 1.0 - group["lr"] * group["decoupled_decay"]
        if factor != 1.0:
            torch._foreach_mul_(group["params"], factor)


@torch.no_grad()
def add_gamma_l1(model: nn.Module, strength: float) -> None:
    """Network Slimming's sparsity training: add ``strength * sign(gamma)`` (the L1 subgradient)
    to every BatchNorm gamma's gradient."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.weight is not None and module.weight.grad is not None:
            module.weight.grad.add_(torch.sign(module.weight), alpha=strength)


def optimizer_step(optimizer: torch.optim.Optimizer) -> None:
    """One update: the optimizer's step (with L2 inside it), then weight decay or decoupled decay."""
    optimizer.step()
    apply_decay_after_step(optimizer)


def lr_factor(schedule: str, progress: float, milestones=(0.5, 0.75), gamma: float = 0.1) -> float:
    """Learning-rate multiplier at ``progress`` in [0, 1] of training.

    constant: 1. step: ``gamma`` to the number of ``milestones`` (fractions of training) passed.
    cosine: half a cosine from 1 to 0.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        return gamma ** sum(progress >= m for m in milestones)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")


def build_scheduler(optimizer, schedule: str, total_steps: int, milestones=(0.5, 0.75), gamma: float = 0.1):
    """A per-step ``LambdaLR`` following ``lr_factor``."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(schedule, step / max(total_steps, 1), milestones, gamma)
    )


def cumulative_lr(lr: float, schedule: str, total_steps: int, steps: int, milestones=(0.5, 0.75),
                  gamma: float = 0.1) -> float:
    """The sum of the scheduled learning rate over the first ``steps`` update steps (lr x steps at
    a constant rate): how far, in learning-rate units, a run has travelled."""
    return lr * sum(lr_factor(schedule, step / max(total_steps, 1), milestones, gamma) for step in range(steps))


HIGH_RATE = 0.5  # the high-rate phase lasts while the scheduled rate is at least half the initial one


def high_rate_lr_x_steps(lr: float, schedule: str, total_steps: int, milestones=(0.5, 0.75),
                         gamma: float = 0.1) -> float:
    """The lr x steps a run accumulates before its learning rate first falls below half its initial
    value (``HIGH_RATE``): all of a constant run, a step schedule's phase before its first milestone,
    a cosine's first half. The clock an arm's onset is measured against."""
    for step in range(total_steps):
        if lr_factor(schedule, step / max(total_steps, 1), milestones, gamma) < HIGH_RATE:
            return cumulative_lr(lr, schedule, total_steps, step, milestones, gamma)
    return cumulative_lr(lr, schedule, total_steps, total_steps, milestones, gamma)


def run_high_rate_lr_x_steps(run) -> float:
    """``high_rate_lr_x_steps`` of one run, from its row of a run table (a pandas row, an
    ``itertuples`` row or a dict with ``lr``, ``schedule``, ``steps``, ``step_milestones`` and
    ``step_gamma``)."""
    row = run._asdict() if hasattr(run, "_asdict") else run
    return high_rate_lr_x_steps(row["lr"], row["schedule"], int(row["steps"]), row["step_milestones"],
                                row["step_gamma"])

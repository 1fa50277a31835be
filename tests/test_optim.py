"""L2 and decoupled decay give exactly the updates their definitions give."""

import math

import pytest
import torch
from torch import nn

from sparsitylib.models import ModelSpec, build_model
from sparsitylib.optim import build_optimizer, build_scheduler, lr_factor, optimizer_step, parameter_groups

LR, DECAY, GRAD = 0.1, 0.05, 0.3
EPS = 1e-8  # torch's default epsilon for Adam


class Toy(nn.Module):
    """One scalar weight (2-d, so weights_only keeps it) with a constant loss gradient."""

    def __init__(self, value):
        super().__init__()
        self.weight = nn.Parameter(torch.full((1, 1), value, dtype=torch.float64))


def step_toy(optimizer_name, decay_mode, theta0=2.0, steps=2, **kwargs):
    model = Toy(theta0)
    optimizer = build_optimizer(model, optimizer_name, LR, decay_mode, DECAY, **kwargs)
    values = []
    for _ in range(steps):
        optimizer.zero_grad()
        model.weight.grad = torch.full_like(model.weight, GRAD)
        optimizer_step(optimizer)
        values.append(model.weight.item())
    return values


def test_adam_l2_passes_the_decay_through_the_normalization():
    theta0 = 2.0
    g1 = GRAD + DECAY * theta0
    # first Adam step: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps)
    theta1 = theta0 - LR * g1 / (abs(g1) + EPS)
    g2 = GRAD + DECAY * theta1
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    theta2 = theta1 - LR * m_hat / (math.sqrt(v_hat) + EPS)
    assert step_toy("adam", "l2") == pytest.approx([theta1, theta2], rel=1e-12, abs=0)


def test_adam_decoupled_shrinks_after_a_step_on_the_loss_gradient_alone():
    theta0 = 2.0
    theta1 = (theta0 - LR * GRAD / (GRAD + EPS)) * (1 - LR * DECAY)
    # the loss gradient is constant, so Adam's normalized step stays lr * g/(|g|+eps) exactly
    m_hat = GRAD
    v_hat = GRAD**2
    theta2 = (theta1 - LR * m_hat / (math.sqrt(v_hat) + EPS)) * (1 - LR * DECAY)
    assert step_toy("adam", "decoupled") == pytest.approx([theta1, theta2], rel=1e-12, abs=0)


def test_sgd_l2_adds_decay_to_the_gradient_before_momentum():
    theta0 = 2.0
    buf1 = GRAD + DECAY * theta0
    theta1 = theta0 - LR * buf1
    buf2 = 0.9 * buf1 + GRAD + DECAY * theta1
    theta2 = theta1 - LR * buf2
    assert step_toy("sgd", "l2") == pytest.approx([theta1, theta2], rel=1e-12, abs=0)


def test_sgd_decoupled_keeps_decay_out_of_the_momentum_buffer():
    theta0 = 2.0
    theta1 = (theta0 - LR * GRAD) * (1 - LR * DECAY)
    theta2 = (theta1 - LR * (0.9 * GRAD + GRAD)) * (1 - LR * DECAY)
    assert step_toy("sgd", "decoupled") == pytest.approx([theta1, theta2], rel=1e-12, abs=0)


def test_no_regularization_is_plain_sgd():
    assert step_toy("sgd", "none", steps=1) == pytest.approx([2.0 - LR * GRAD], rel=1e-12)


def test_decoupled_decay_follows_the_learning_rate_schedule():
    model = Toy(2.0)
    optimizer = build_optimizer(model, "sgd", LR, "decoupled", DECAY, momentum=0.0)
    scheduler = build_scheduler(optimizer, "step", total_steps=2, milestones=(0.5,), gamma=0.1)
    values = []
    for _ in range(2):
        model.weight.grad = torch.zeros_like(model.weight)
        optimizer_step(optimizer)
        scheduler.step()
        values.append(model.weight.item())
    assert values == pytest.approx([2.0 * (1 - LR * DECAY), 2.0 * (1 - LR * DECAY) * (1 - 0.1 * LR * DECAY)], rel=1e-12)


def test_weights_only_leaves_batchnorm_and_biases_unregularized():
    model = build_model(ModelSpec("basicnet", (2, 2, 2, 2, 2, 2, 2), 1, 3))
    decayed, kept = parameter_groups(model, "weights_only")
    assert all(p.dim() > 1 for p in decayed) and all(p.dim() == 1 for p in kept)
    assert len(kept) == 7 * 2 + 1  # gamma and beta of 7 BN layers, the classifier's bias
    decayed_all, kept_all = parameter_groups(model, "all")
    assert len(decayed_all) == len(list(model.parameters())) and kept_all == []


@pytest.mark.parametrize("name", ["sgd", "adam", "amsgrad", "adamax", "adagrad", "adadelta", "rmsprop"])
def test_every_optimizer_takes_both_regularizers(name):
    for mode in ("none", "l2", "wd", "decoupled"):
        values = step_toy(name, mode, steps=1)
        assert math.isfinite(values[0]) and values[0] != 2.0


def test_schedules():
    assert lr_factor("constant", 0.9) == 1.0
    assert [lr_factor("step", p) for p in (0.0, 0.49, 0.5, 0.75, 0.99)] == pytest.approx([1, 1, 0.1, 0.01, 0.01])
    assert lr_factor("cosine", 0.0) == 1.0 and lr_factor("cosine", 0.5) == pytest.approx(0.5)
    assert lr_factor("cosine", 1.0) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor("linear", 0.5)


def test_gamma_l1_adds_the_l1_subgradient_to_batchnorm_gamma_only():
    from sparsitylib.optim import add_gamma_l1

    model = nn.Sequential(nn.Conv2d(1, 3, 3, bias=False), nn.BatchNorm2d(3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.5, -0.2, 0.0]))
    model(torch.randn(2, 1, 5, 5)).sum().backward()
    conv_grad, gamma_grad, beta_grad = (p.grad.clone() for p in (model[0].weight, model[1].weight, model[1].bias))
    add_gamma_l1(model, 1e-2)
    assert torch.equal(model[1].weight.grad, gamma_grad + torch.tensor([1e-2, -1e-2, 0.0]))
    assert torch.equal(model[0].weight.grad, conv_grad) and torch.equal(model[1].bias.grad, beta_grad)


# --- the paper's weight decay (wd): theta <- theta * (1 - lambda * s_t) after the step --------------


def test_wd_with_zero_gradient_shrinks_by_exactly_one_minus_lambda_per_step():
    for name in ("adam", "sgd"):
        model = Toy(2.0)
        optimizer = build_optimizer(model, name, LR, "wd", DECAY)
        values = []
        for _ in range(3):
            model.weight.grad = torch.zeros_like(model.weight)
            optimizer_step(optimizer)
            values.append(model.weight.item())
        assert values == [2.0 * (1 - DECAY), 2.0 * (1 - DECAY) ** 2, 2.0 * (1 - DECAY) ** 3], name


def test_wd_follows_the_schedules_multiplier_not_the_learning_rate():
    model = Toy(2.0)
    optimizer = build_optimizer(model, "adam", LR, "wd", DECAY)
    scheduler = build_scheduler(optimizer, "step", total_steps=2, milestones=(0.5,), gamma=0.1)
    values = []
    for _ in range(2):
        model.weight.grad = torch.zeros_like(model.weight)
        optimizer_step(optimizer)
        scheduler.step()
        values.append(model.weight.item())
    assert values == [2.0 * (1 - DECAY), 2.0 * (1 - DECAY) * (1 - DECAY * 0.1)]


def test_adam_wd_steps_on_the_loss_gradient_alone_then_shrinks_by_one_minus_lambda():
    theta0 = 2.0
    # constant gradient: Adam's bias-corrected step is lr * g / (|g| + eps) at every step
    adam_step = LR * GRAD / (GRAD + EPS)
    theta1 = (theta0 - adam_step) * (1 - DECAY)
    theta2 = (theta1 - adam_step) * (1 - DECAY)
    theta3 = (theta2 - adam_step) * (1 - DECAY)
    assert step_toy("adam", "wd", steps=3) == pytest.approx([theta1, theta2, theta3], rel=1e-12, abs=0)


def test_sgd_wd_keeps_decay_out_of_the_momentum_buffer_and_ignores_the_learning_rate():
    theta0 = 2.0
    theta1 = (theta0 - LR * GRAD) * (1 - DECAY)
    theta2 = (theta1 - LR * (0.9 * GRAD + GRAD)) * (1 - DECAY)
    assert step_toy("sgd", "wd") == pytest.approx([theta1, theta2], rel=1e-12, abs=0)


def test_wd_is_lr_times_stronger_than_decoupled_at_the_same_lambda():
    wd, decoupled = step_toy("sgd", "wd", steps=1, momentum=0.0), step_toy("sgd", "decoupled", steps=1, momentum=0.0)
    before_decay = 2.0 - LR * GRAD
    assert 1 - wd[0] / before_decay == pytest.approx(DECAY, rel=1e-12)
    assert 1 - decoupled[0] / before_decay == pytest.approx(LR * DECAY, rel=1e-12)


def test_cumulative_lr_is_lr_times_steps_at_a_constant_rate_and_follows_a_step_schedule():
    from sparsitylib.optim import cumulative_lr

    assert cumulative_lr(1e-3, "constant", 100, 40) == pytest.approx(1e-3 * 40)
    # step at 50% and 75% of 100 steps: 50 steps at lr, 25 at lr/10, 25 at lr/100
    assert cumulative_lr(1e-3, "step", 100, 100) == pytest.approx(1e-3 * (50 + 2.5 + 0.25))


def test_adamw_is_torchs_adamw_shrinking_before_the_step_and_takes_no_l2():
    theta0 = 2.0
    # torch.optim.AdamW: theta <- theta * (1 - lr * lambda), then the Adam step on the loss gradient
    theta1 = theta0 * (1 - LR * DECAY) - LR * GRAD / (GRAD + EPS)
    theta2 = theta1 * (1 - LR * DECAY) - LR * GRAD / (GRAD + EPS)
    assert step_toy("adamw", "decoupled") == pytest.approx([theta1, theta2], rel=1e-12, abs=0)
    assert step_toy("adamw", "none", steps=1) == pytest.approx([theta0 - LR * GRAD / (GRAD + EPS)], rel=1e-12, abs=0)
    with pytest.raises(ValueError, match="adamw decays the weights itself"):
        step_toy("adamw", "l2")


def test_the_high_rate_phase_ends_where_the_rate_first_halves():
    from sparsitylib.optim import high_rate_lr_x_steps

    assert high_rate_lr_x_steps(1e-3, "constant", 1000) == pytest.approx(1.0)
    assert high_rate_lr_x_steps(1e-3, "step", 1000, (0.8, 0.9)) == pytest.approx(0.8)  # 800 steps at 1e-3
    # a cosine halves at half of training: the integral of (1 + cos(pi x)) / 2 over [0, 1/2] is 1/4 + 1/(2 pi)
    assert high_rate_lr_x_steps(1.0, "cosine", 10_000) == pytest.approx(10_000 * (0.25 + 1 / (2 * math.pi)), rel=1e-3)


def test_a_runs_high_rate_phase_reads_the_same_from_any_row_of_a_run_table():
    import pandas as pd

    from sparsitylib.optim import run_high_rate_lr_x_steps

    table = pd.DataFrame({"lr": [1e-3], "schedule": ["step"], "steps": [1000.0], "step_milestones": [(0.8, 0.9)],
                          "step_gamma": [0.1]})
    rows = [table.iloc[0], next(table.itertuples()), table.iloc[0].to_dict()]
    assert [run_high_rate_lr_x_steps(row) for row in rows] == [pytest.approx(0.8)] * 3

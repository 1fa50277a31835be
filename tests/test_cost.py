from torch import nn

import pytest

from sparsitylib.cost import Latency, cost, count_macs, count_parameters, measure_latency, time_forward


def test_macs_are_half_of_torchs_flops_and_exact_for_known_layers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(2 * 4 * 4, 5))
    # conv: 2 outputs x 16 positions x 9 taps x 1 input channel; linear: 32 x 5
    assert count_macs(model, (1, 1, 4, 4)) == 2 * 16 * 9 + 32 * 5
    assert count_parameters(model) == 2 * 9 + 32 * 5 + 5


def test_latency_and_cost_report():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    assert measure_latency(model, (2, 1, 8, 8), repeats=3) > 0
    latency = time_forward(model, (2, 1, 8, 8), threads=1, repeats=5)
    assert latency.threads == 1 and latency.blocks == 5 and latency.median_s > 0 and latency.iqr_s >= 0
    report = cost(model, (1, 8, 8), batch_sizes=(1, 4), threads=1, min_run_time=0.05)
    assert set(report) == {"params", "macs", "latency"} and set(report["latency"]) == {"batch_1", "batch_4"}
    assert set(report["latency"]["batch_1"]) == {"median_ms", "iqr_ms", "threads", "blocks", "spread", "trustworthy"}
    assert model.training  # restored
    with pytest.raises(ValueError, match="threads must be at least 1"):
        time_forward(model, (1, 1, 8, 8), threads=0)


def test_a_wide_spread_is_flagged():
    assert Latency(median_s=1.0, iqr_s=0.05, threads=1, blocks=10).trustworthy
    noisy = Latency(median_s=1.0, iqr_s=0.5, threads=1, blocks=10)
    assert not noisy.trustworthy and noisy.to_dict()["spread"] == 0.5

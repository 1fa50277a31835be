from torch import nn

from sparsitylib.cost import cost, count_macs, count_parameters, measure_latency


def test_macs_are_half_of_torchs_flops_and_exact_for_known_layers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(2 * 4 * 4, 5))
    # conv: 2 outputs x 16 positions x 9 taps x 1 input channel; linear: 32 x 5
    assert count_macs(model, (1, 1, 4, 4)) == 2 * 16 * 9 + 32 * 5
    assert count_parameters(model) == 2 * 9 + 32 * 5 + 5


def test_latency_and_cost_report():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    assert measure_latency(model, (2, 1, 8, 8), repeats=3, warmup=1) > 0
    report = cost(model, (1, 8, 8), batch_sizes=(1, 4), repeats=3)
    assert set(report) == {"params", "macs", "latency_b1_s", "latency_b4_s"}
    assert model.training  # restored

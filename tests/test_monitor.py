"""The monitor follows dead filters in a plain training loop and names the likely cause."""

import warnings

import pytest
import torch
import torchvision

from sparsitylib.monitor import FiltersDyingWarning, SparsityMonitor

from .test_filters import calibrated, plant


def test_history_and_a_warning_that_names_adam_with_weight_decay_on_batchnorm():
    model = calibrated(torchvision.models.resnet18(num_classes=10), (3, 32, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    monitor = SparsityMonitor(model, torch.randn(32, 3, 32, 32), optimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dead yet: no warning
        monitor(1)
    plant(model, "layer1.0.bn1", [3, 8])  # as training with Adam + L2 would, two filters die
    with pytest.warns(FiltersDyingWarning, match=r"epoch 2: 2 more filter\(s\) dead \(layer1.0.bn1 \+2\).*Adam with L2"):
        monitor(2)
    history = monitor.history
    assert list(history.columns[:6]) == ["epoch", "layer", "filters", "measured", "dead", "dead_pct"]
    row = history[(history["epoch"] == 2) & (history["layer"] == "layer1.0.bn1")].iloc[0]
    assert row["dead"] == 2 and row["dead_pct"] == pytest.approx(100 * 2 / 64) and row["gamma_min"] == 0.0
    assert history[history["epoch"] == 1]["dead"].sum() == 0
    assert history[~history["measured"]]["dead"].isna().all()  # residual layers: gamma quantiles only
    assert model.training is False  # the monitor leaves the mode as it found it


def test_no_cause_named_when_batchnorm_is_not_decayed():
    model = calibrated(torchvision.models.resnet18(num_classes=10), (3, 32, 32))
    bn = [p for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()]
    others = [p for p in model.parameters() if all(p is not q for q in bn)]
    optimizer = torch.optim.Adam([{"params": others, "weight_decay": 5e-4}, {"params": bn, "weight_decay": 0.0}])
    monitor = SparsityMonitor(model, torch.randn(16, 3, 32, 32), optimizer)
    monitor()
    plant(model, "layer2.0.bn1", [0])
    with pytest.warns(FiltersDyingWarning) as caught:
        monitor()
    assert "Likely cause" not in str(caught[0].message)

"""The monitor follows dead filters in a plain training loop and names the likely cause."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from sparsitylib.monitor import FiltersDyingWarning, SparsityMonitor

from .planted import WIDTHS, planted_network
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
    plant(model, "layer2.0.bn1", [5])
    with pytest.warns(FiltersDyingWarning) as later:  # the cause is said once; a later warning is one line
        monitor(3)
    assert str(later[0].message) == "epoch 3: 1 more filter(s) dead (layer2.0.bn1 +1); 3 of 1984 now."
    history = monitor.history
    assert list(history.columns[:6]) == ["epoch", "layer", "filters", "measured", "dead", "dead_pct"]
    row = history[(history["epoch"] == 2) & (history["layer"] == "layer1.0.bn1")].iloc[0]
    assert row["dead"] == 2 and row["dead_pct"] == pytest.approx(100 * 2 / 64) and row["gamma_min"] == 0.0
    assert history[history["epoch"] == 1]["dead"].sum() == 0 and history["epoch"].max() == 3
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


def _kill(block, index):
    """As training would: the filter's weights and gamma go to zero, beta negative."""
    with torch.no_grad():
        block.conv.weight[index].zero_()
        block.bn.weight[index], block.bn.bias[index] = 0.0, -0.5


def test_the_first_measurement_is_the_baseline_and_per_filter_history_dates_each_death():
    model = planted_network()  # three filters dead from the start: C2/1, C2/3, C5/0
    monitor = SparsityMonitor(model, torch.randn(32, 1, 16, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monitor(1)  # the baseline: no "3 more filters dead"
    _kill(model.blocks[2], 0)
    with pytest.warns(FiltersDyingWarning, match=r"epoch 2: 1 more filter\(s\) dead \(C3 \+1\)"):
        monitor(2)
    monitor(3)
    deaths = monitor.deaths().set_index(["layer", "filter"])
    assert sorted(deaths.index) == [("C2", 1), ("C2", 3), ("C3", 0), ("C5", 0)]
    assert deaths.loc[("C3", 0), "died_at"] == 2 and deaths.loc[("C2", 1), "died_at"] == 1
    assert deaths.loc[("C3", 0), "gamma_first"] == 1.0 and deaths.loc[("C3", 0), "gamma_at_death"] == 0.0
    assert deaths.loc[("C3", 0), "beta_at_death"] == -0.5
    history = monitor.history
    # every definition per layer and epoch; the gamma criterion sees C2/1, C2/2 and, from epoch 2, C3/0
    assert history.set_index(["epoch", "layer"]).loc[(2, "C3"), ["dead", "gamma", "dormant-0.1", "dormant-1%"]].tolist() == [1, 1, 1, 1]
    assert history.groupby("epoch")["gamma"].sum().tolist() == [2, 3, 3]
    filters = monitor.filter_history
    assert len(filters) == 3 * sum(WIDTHS) and {"gamma", "beta", "dead_by_activation", "dormant_tau_0.025"} <= set(filters)


def test_state_dict_restores_the_history_and_the_baseline():
    model = planted_network()
    monitor = SparsityMonitor(model, torch.randn(16, 1, 16, 16))
    monitor(1)
    _kill(model.blocks[2], 0)
    with pytest.warns(FiltersDyingWarning):
        monitor(2)
    resumed = SparsityMonitor(model, torch.randn(16, 1, 16, 16))
    resumed.load_state_dict(monitor.state_dict())
    pd.testing.assert_frame_equal(resumed.history, monitor.history)
    pd.testing.assert_frame_equal(resumed.deaths(), monitor.deaths())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed(3)  # nothing new died since the restored measurement: no warning
    _kill(model.blocks[3], 1)
    with pytest.warns(FiltersDyingWarning, match=r"epoch 4: 1 more"):
        resumed(4)


def test_plot_draws_one_line_per_layer_and_a_compiled_model_is_measured_through_its_original():
    model = planted_network()
    monitor = SparsityMonitor(torch.compile(model), torch.randn(16, 1, 16, 16))
    monitor(1)
    monitor(2)
    figure = monitor.plot()
    assert len(figure.axes[0].lines) == len(WIDTHS)
    assert figure.axes[0].lines[1].get_ydata().tolist() == [2, 2]  # C2
    with pytest.raises(ValueError, match="no column 'nope'"):
        monitor.plot("nope")
    plt.close(figure)


def test_a_bounded_history_keeps_the_latest_filter_tables_and_dates_every_death_as_the_full_one_does():
    full_model, kept_model = planted_network(), planted_network()
    images = torch.randn(16, 1, 16, 16)
    full = SparsityMonitor(full_model, images, warn=False)
    kept = SparsityMonitor(kept_model, images, warn=False, keep_filter_measurements=1)
    for epoch in range(1, 6):
        if epoch == 2:
            _kill(full_model.blocks[2], 0), _kill(kept_model.blocks[2], 0)
        if epoch == 4:  # C3/1 dies, and C2/3 comes back to life, then dies again: its death is its latest run's
            for model in (full_model, kept_model):
                _kill(model.blocks[2], 1)
                with torch.no_grad():
                    model.blocks[1].conv.weight[3].fill_(1.0)
        if epoch == 5:
            for model in (full_model, kept_model):
                with torch.no_grad():
                    model.blocks[1].conv.weight[3].zero_()
        full(epoch), kept(epoch)
    assert len(full.filter_history) == 5 * sum(WIDTHS) and len(kept.filter_history) == sum(WIDTHS)
    pd.testing.assert_frame_equal(kept.history, full.history)
    for column in ("dead_by_activation", "dead_by_gamma", "dormant_tau_0.1"):
        pd.testing.assert_frame_equal(kept.deaths(column), full.deaths(column))
    deaths = kept.deaths().set_index(["layer", "filter"])
    assert deaths["died_at"].to_dict() == {("C2", 1): 1, ("C2", 3): 5, ("C3", 0): 2, ("C3", 1): 4, ("C5", 0): 1}
    state = kept.state_dict()
    assert len(state["filter_rows"]) == 1
    resumed = SparsityMonitor(planted_network(), images, keep_filter_measurements=1)
    resumed.load_state_dict(state)
    pd.testing.assert_frame_equal(resumed.deaths(), kept.deaths())
    older = {k: v for k, v in full.state_dict().items() if k != "streaks"}  # a checkpoint written before tracking
    replayed = SparsityMonitor(planted_network(), images)
    replayed.load_state_dict(older)
    pd.testing.assert_frame_equal(replayed.deaths(), full.deaths())
    with pytest.raises(ValueError, match="no flag 'nope' in the measurements; use one of"):
        kept.deaths("nope")
    with pytest.raises(ValueError, match="keep_filter_measurements must be a whole number >= 0"):
        SparsityMonitor(planted_network(), images, keep_filter_measurements=-1)


def test_grama_scores_each_unit_by_its_incoming_weights_gradient_beside_the_activation_definitions():
    from sparsitylib.dormancy import grama_scores

    model = planted_network()
    images, labels = torch.randn(32, 1, 16, 16), torch.randint(0, 3, (32,))
    for parameter in model.parameters():
        parameter.grad = torch.full_like(parameter, 7.0)  # a training step's gradients, which the monitor must keep
    monitor = SparsityMonitor(model, images, warn=False, labels=labels, loss=torch.nn.functional.cross_entropy)
    monitor(1)
    filters = monitor.filter_history.set_index(["layer", "filter"])
    # no gradient reaches a filter behind gamma 0 (C2/1, C2/2) or one whose ReLU never opens (C2/3, C5/0); C2/2
    # still outputs a constant 0.5, so it is alive by activation and dormant by GraMa: the definitions disagree there
    marked = sorted(filters.index[filters["dormant_grama"]])
    assert marked == [("C2", 1), ("C2", 2), ("C2", 3), ("C5", 0)]
    assert filters.loc[("C2", 2), "grama_score"] == 0 and not filters.loc[("C2", 2), "dead_by_activation"]
    c2 = filters.loc["C2", "grama_score"]
    assert c2.mean() == pytest.approx(1.0, abs=1e-6)  # each layer's scores average to 1
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in model.parameters())
    assert monitor.history.set_index(["epoch", "layer"]).loc[(1, "C2"), "grama"] == 3
    direct = grama_scores(model, monitor.layers, images, labels, torch.nn.functional.cross_entropy)
    assert np.allclose(np.concatenate(direct), monitor.filter_history["grama_score"])
    with pytest.raises(ValueError, match="GraMa needs both labels="):
        SparsityMonitor(model, images, labels=labels)
    with pytest.raises(ValueError, match="labels= has 3 entries for 32 images"):
        SparsityMonitor(model, images, labels=labels[:3], loss=torch.nn.functional.cross_entropy)

"""Every definition of a dead or dormant filter, on a network whose answers are known by hand."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sparsitylib.dormancy import agreement, definitions, dormancy_scores, jaccard
from sparsitylib.sparsity import measure_sparsity

POSITIONS = 20 * 20


def identity_network() -> nn.Module:
    """conv 1x1 (identity) -> BatchNorm (identity: mean 0, var 1, eps 0) -> ReLU: each filter's
    activation is its input channel, rectified."""
    model = nn.Sequential(nn.Conv2d(3, 3, 1, bias=False), nn.BatchNorm2d(3, eps=0.0), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
    return model.eval()


def planted_images(count: int = 5) -> torch.Tensor:
    """Channel 0 fires (value 200) on 0.5% of its (image, position) values and is -1 elsewhere:
    mean 1.0. Channel 1 is the constant 0.05 and channel 2 the constant 1.95, so the layer's mean
    |activation| is 1.0 and channel 1 sits at 5% of it."""
    images = torch.empty(count, 3, 20, 20)
    images[:, 0] = -1.0
    flat = images[:, 0].reshape(-1)
    flat[torch.arange(0, count * POSITIONS, 200)] = 200.0  # every 200th value: 0.5%
    images[:, 0] = flat.view(count, 20, 20)
    images[:, 1] = 0.05
    images[:, 2] = 1.95
    return images


def test_each_definition_gives_its_known_answer():
    report = measure_sparsity(identity_network(), planted_images())
    f = report.filters
    assert f["firing_fraction"].tolist() == pytest.approx([0.005, 1.0, 1.0])
    assert f["apoz"].tolist() == pytest.approx([0.995, 0.0, 0.0])
    assert f["mean_abs_activation"].tolist() == pytest.approx([1.0, 0.05, 1.95], rel=1e-6)
    assert f["dormancy_score"].tolist() == pytest.approx([1.0, 0.05, 1.95], rel=1e-6)
    # channel 0 fires on 0.5% of values: dormant by Dohare's 1% rule, not dead by the paper's, not tau-dormant
    assert f["dormant_1pct"].tolist() == [True, False, False]
    assert f["dead_by_activation"].tolist() == [False, False, False]
    # channel 1 at 5% of its layer's mean: 0.1-dormant, not 0.025- or 0-dormant
    assert f["dormant_tau_0.1"].tolist() == [False, True, False]
    assert f["dormant_tau_0.025"].tolist() == [False, False, False]
    assert f["dormant_tau_0"].tolist() == [False, False, False]
    assert report.totals["definitions"]["dormant-1%"] == {"count": 1, "of": 3, "fraction": 1 / 3}


def test_a_filter_that_never_fires_is_dead_and_zero_dormant_and_the_layer_mean_ignores_nothing():
    images = planted_images()
    images[:, 0] = -1.0  # channel 0 now never fires
    f = measure_sparsity(identity_network(), images).filters
    assert f["dead_by_activation"].tolist() == [True, False, False]
    assert f["dormant_tau_0"].tolist() == [True, False, False]
    assert f["dormant_1pct"].tolist() == [True, False, False]
    # layer mean (0 + 0.05 + 1.95) / 3: channel 1's score is 0.075, still 0.1-dormant
    assert f["dormancy_score"].tolist() == pytest.approx([0.0, 0.075, 2.925], rel=1e-6)


def test_streaming_over_batches_equals_one_batch():
    images = planted_images(7)
    one = measure_sparsity(identity_network(), images, batch_size=len(images)).filters
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images), batch_size=3)  # 3 + 3 + 1
    streamed = measure_sparsity(identity_network(), loader).filters
    for column in one.columns:
        if one[column].dtype == bool or column in ("layer", "filter", "measured"):
            assert one[column].tolist() == streamed[column].tolist(), column
        else:
            np.testing.assert_allclose(one[column], streamed[column], rtol=1e-12, err_msg=column)


def test_agreement_is_the_jaccard_overlap_over_the_filters_both_apply_to():
    assert jaccard(np.array([True, True, False]), np.array([True, False, True])) == pytest.approx(1 / 3)
    assert np.isnan(jaccard(np.zeros(3, bool), np.zeros(3, bool)))
    filters = pd.DataFrame({"layer": "L", "measured": [True, True, True, False], "gamma": [0.0, 1.0, 1.0, 0.0],
                            "dead_by_activation": [True, True, False, False], "dead_by_gamma": [True, False, False, True]})
    chosen = [d for d in definitions() if d.name in ("activation", "gamma")]
    row = agreement(filters, chosen).iloc[0]
    # the unmeasured filter (gamma 0) is left out: the activation criterion does not apply to it
    assert (row["filters"], row["first_count"], row["second_count"], row["both"]) == (3, 2, 1, 1)
    assert row["jaccard"] == pytest.approx(1 / 2)


def test_dormancy_scores_of_a_silent_layer_are_zero():
    assert dormancy_scores(np.zeros(4)).tolist() == [0.0] * 4
    assert dormancy_scores(np.array([1.0, 3.0])).tolist() == [0.5, 1.5]


def test_thresholds_are_checked_before_measuring():
    with pytest.raises(ValueError, match="dormant_firing must be in"):
        measure_sparsity(identity_network(), planted_images(), dormant_firing=1.5)
    with pytest.raises(ValueError, match="dormancy tau"):
        measure_sparsity(identity_network(), planted_images(), dormancy_taus=(-0.1,))


def test_without_batchnorm_the_gamma_criterion_is_not_applicable_not_zero():
    from sparsitylib.inspect_output import definition_lines, report_json

    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    report = measure_sparsity(model, torch.randn(4, 3, 8, 8))
    row = next(line for line in definition_lines(report) if line.startswith("0 "))  # the conv's layer, by module path
    assert row.split()[:4] == ["0", "4", row.split()[2], "n/a"]
    layer = report_json(report)["layers"][0]
    assert layer["has_batchnorm"] is False and layer["dead_count"]["gamma"] is None
    assert report_json(report)["totals"]["gamma"] == {"dead_count": 0, "filters": 0, "dead_fraction": None}

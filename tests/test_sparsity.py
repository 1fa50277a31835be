"""A network with dead filters planted by hand is measured exactly."""

import math

import numpy as np
import pytest
import torch

from sparsitylib.models import ModelSpec, build_model
from sparsitylib.sparsity import measure_sparsity, selectivity

from .planted import WIDTHS, planted_network


def test_planted_dead_filters_are_found_exactly():
    images = torch.randn(64, 1, 16, 16)
    report = measure_sparsity(planted_network(), images, batch_size=10)
    filters = report.filters.set_index(["layer", "filter"])
    dead_act = set(filters.index[filters["dead_by_activation"]])
    dead_gamma = set(filters.index[filters["dead_by_gamma"]])
    assert dead_act == {("C2", 1), ("C2", 3), ("C5", 0)}
    assert dead_gamma == {("C2", 1), ("C2", 2)}
    assert filters.loc[("C2", 2), "max_activation"] == pytest.approx(0.5)
    # the other definitions: the constant-0.5 filter fires everywhere (score ~0.86 of its layer's mean)
    assert report.totals.pop("definitions") == {
        "activation": {"count": 3, "of": sum(WIDTHS), "fraction": 3 / sum(WIDTHS)},
        "gamma": {"count": 2, "of": sum(WIDTHS), "fraction": 2 / sum(WIDTHS)},
        **{name: {"count": 3, "of": sum(WIDTHS), "fraction": 3 / sum(WIDTHS)}
           for name in ("dormant-0", "dormant-0.025", "dormant-0.1", "dormant-1%")}}
    assert report.totals == {
        "filters": sum(WIDTHS),
        "dead_by_activation_count": 3,
        "dead_by_gamma_count": 2,
        "dead_by_activation": 3 / sum(WIDTHS),
        "dead_by_gamma": 2 / sum(WIDTHS),
        "dead_by_both": 1,
        "dead_by_activation_only": 2,
        "dead_by_gamma_only": 1,
        "criteria_agreement": (sum(WIDTHS) - 3) / sum(WIDTHS),
    }
    layers = report.layers.set_index("layer")
    assert layers["dead_by_activation"].tolist() == [0, 2, 0, 0, 1, 0, 0]
    assert layers["filters"].tolist() == list(WIDTHS)
    assert layers.loc["C2", "dead_by_activation_pct"] == pytest.approx(100 * 2 / 6)


def test_measurement_puts_batchnorm_in_inference_mode_and_restores_training_mode():
    model = planted_network().train()
    running_mean = model.blocks[0].bn.running_mean.clone()
    measure_sparsity(model, torch.randn(8, 1, 16, 16))
    assert model.training
    assert torch.equal(model.blocks[0].bn.running_mean, running_mean)


def test_thresholds_are_parameters():
    model = planted_network()
    images = torch.randn(16, 1, 16, 16)
    # with a threshold above 0.5, the constant-0.5 filter counts as dead by activation too
    report = measure_sparsity(model, images, activation_threshold=0.6)
    assert ("C2", 2) in set(report.filters.set_index(["layer", "filter"]).index[report.filters["dead_by_activation"]])
    # gamma threshold 0: nothing is below it
    assert measure_sparsity(model, images, gamma_threshold=0.0).totals["dead_by_gamma_count"] == 0
    with pytest.raises(ValueError, match="gamma_threshold must be in"):
        measure_sparsity(model, images, gamma_threshold=2.0)


def test_selectivity_on_constructed_responses():
    per_image_max = torch.tensor([
        [1.0, 2.0, 0.0, 4.0],
        [0.0, 2.0, 0.0, 0.00390625],  # 2**-8 / 4 = 2**-10 < 1e-3: counts as "off"
        [0.0, 2.0, 0.0, 0.0041],  # 1.025e-3 of the max: "on"
        [0.0005, 2.0, 0.0, 1.0],
    ])
    result = selectivity(per_image_max)
    assert result[0] == 0.75  # fires (above 1e-3 of its max) on one image of four
    assert result[1] == 0.0  # fires on every image: universal
    assert math.isnan(result[2])  # never fires: dead, selectivity undefined
    assert result[3] == 0.25


def test_network_without_batchnorm_has_no_gamma_criterion():
    model = build_model(ModelSpec("basicnet", WIDTHS, 1, 3, norm="none"))
    report = measure_sparsity(model, torch.randn(8, 1, 16, 16))
    assert report.filters["gamma"].isna().all()
    assert report.totals["dead_by_gamma_count"] == 0


def test_selectivity_is_consistent_with_universality():
    report = measure_sparsity(planted_network(), torch.randn(32, 1, 16, 16))
    live = report.filters[~report.filters["dead_by_activation"]]
    assert np.allclose(live["selectivity"] + live["universality"], 1.0)
    assert report.filters.loc[report.filters["dead_by_activation"], "selectivity"].isna().all()

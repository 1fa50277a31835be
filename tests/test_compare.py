"""Explicit baselines at matched MACs, on tiny synthetic networks."""

import pytest
import torch

from sparsitylib.compare import IMPLICIT, compare_methods, finetune, l1_norm_prune, slimming_prune
from sparsitylib.cost import count_macs
from sparsitylib.presets import preset_config
from sparsitylib.train import load_config_data, train

SHAPE = (1, 16, 16)
BASE = dict(dataset="synthetic", width=0.125, epochs=2, batch_size=32, train_size=600, test_size=200,
            snapshot_size=64, device="cpu", decay_mode="l2")

# the module-scoped fixture below is built once: under pytest-xdist these tests share a worker
pytestmark = pytest.mark.xdist_group("test_compare")


@pytest.fixture(scope="module")
def trained():
    adam = preset_config(None, **BASE, optimizer="adam", lr=3e-2, decay=1e-2)  # kills filters at 1 thread and at 2
    sgd = preset_config(None, **BASE, optimizer="sgd", lr=0.05)
    slim = preset_config(None, **BASE, optimizer="sgd", lr=0.05, gamma_l1=1e-3)
    return {name: (train(config, quiet=True), config) for name, config in (("adam", adam), ("sgd", sgd), ("slim", slim))}


@pytest.mark.parametrize("prune", [l1_norm_prune, slimming_prune])
def test_explicit_pruning_reaches_the_target_macs_without_emptying_a_layer(trained, prune):
    model = trained["sgd"][0].model
    full = count_macs(model, (1, *SHAPE))
    pruned = prune(model, int(0.6 * full), SHAPE)
    assert 0.3 * full < count_macs(pruned, (1, *SHAPE)) <= 0.6 * full
    assert min(pruned.spec.widths) >= 1
    unreachable = prune(model, 1, SHAPE)  # asks for everything: gets the most it may take
    assert min(unreachable.spec.widths) >= 1 and count_macs(unreachable, (1, *SHAPE)) < 0.6 * full
    assert prune(model, full, SHAPE).spec.widths == model.spec.widths  # nothing to remove


def test_finetuning_budget(trained):
    run, config = trained["sgd"]
    data = load_config_data(config)
    same = finetune(run.model, config, data, epochs=0)
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), run.model.state_dict().values()))
    tuned = finetune(run.model, config, data, epochs=1)
    assert not torch.equal(tuned.classifier.weight, run.model.classifier.weight)


def test_comparison_table(trained):
    (adam, adam_config), (sgd, sgd_config), (slim, slim_config) = trained["adam"], trained["sgd"], trained["slim"]
    assert adam.record["metrics"]["dead_by_activation_count"] > 0, "this seeded Adam+L2 run is meant to kill filters"
    data = load_config_data(adam_config)
    rows, implicit = compare_methods(adam.model, adam.record, adam_config, sgd.model, sgd_config, slim.model,
                                     slim_config, data, finetune_epochs=1, latency_repeats=2)
    by_method = {row["method"]: row for row in rows}
    assert len(rows) == 6 and IMPLICIT in by_method
    assert by_method[IMPLICIT]["test_error_pruned"] == by_method["unpruned (adaptive + L2)"]["test_error_pruned"]
    target = by_method[IMPLICIT]["macs"]
    for method in ("L1-norm filters (Li et al.)", "Network Slimming (Liu et al.)"):
        assert by_method[method]["macs"] <= target
    assert by_method[IMPLICIT]["mac_reduction"] > 1

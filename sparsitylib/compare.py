"""Implicit pruning against explicit pruning, at matched removed MACs.

- ``implicit``: the filters that died on their own in an Adam+L2 run (``prune.prune_dead``).
- ``l1_norm`` (Li et al. 2017): in a normally trained network, remove from every layer the same
  fraction of filters, those with the smallest L1 norm of their kernel weights (Torch-Pruning's
  ``MagnitudeImportance(p=1, group_reduction="first")``).
- ``network_slimming`` (Liu et al. 2017): train with an L1 penalty on BN's gamma (``gamma_l1``),
  then remove the filters with the smallest |gamma| under one global threshold (Torch-Pruning's
  ``BNScaleImportance`` with global pruning), never more than ``MAX_LAYER_PRUNING`` of a layer.

The explicit methods are tuned (a scan, then a bisection on their pruning ratio) to remove at least
as many MACs as the implicit method did; the table shows the MACs each one reached. Every pruned network then gets the same fine-tuning budget:
``finetune_epochs`` of its own training recipe at a tenth of its learning rate.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass

import pandas as pd
import torch
import torch_pruning as tp

from . import __version__
from .config import RunConfig
from .cost import count_macs, count_parameters, measure_latency
from .data import TensorData
from .models import ConvNet
from .optim import build_optimizer, build_scheduler
from .prune import PruneResult, example_input, max_logit_difference, prune_dead, rebuild
from .train import evaluate, train_epoch

IMPLICIT = "implicit: dead filters removed"
UNPRUNED_ADAPTIVE = "unpruned (adaptive + L2)"
L1_NORM = "L1-norm filters (Li et al.)"
SLIMMING = "Network Slimming (Liu et al.)"
MAX_LAYER_PRUNING = 0.95  # explicit pruners may remove at most this share of a layer (never all of it)
MAX_PRUNING_RATIO = 0.9  # the largest overall ratio tried; beyond it Torch-Pruning starts skipping layers
SCAN_STEPS, BISECTION_STEPS = 18, 8


def _prune_with(model: ConvNet, importance, ratio: float, global_pruning: bool) -> ConvNet:
    """Prune a copy with a Torch-Pruning importance at ``ratio`` and rebuild it as a ConvNet."""
    pruned = copy.deepcopy(model).eval()
    if ratio > 0:
        pruner = tp.pruner.BasePruner(pruned, example_input(pruned), importance=importance, pruning_ratio=ratio,
                                      global_pruning=global_pruning, max_pruning_ratio=MAX_LAYER_PRUNING,
                                      ignored_layers=[pruned.classifier])
        pruner.step()
    rebuilt, _ = rebuild(model, pruned)
    return rebuilt


def match_macs(model: ConvNet, importance, target_macs: int, image_shape, global_pruning: bool) -> ConvNet:
    """The network at the smallest pruning ratio that brings MACs down to ``target_macs`` or below.

    Torch-Pruning's MACs are not monotonic in the ratio near its limits (a group that would be
    over-pruned is skipped whole), so a coarse scan finds the first ratio that meets the target and
    a bisection refines it between that ratio and the one before. If no ratio up to
    ``MAX_PRUNING_RATIO`` meets the target, the smallest network found is returned."""
    def macs(candidate):
        return count_macs(candidate, (1, *image_shape))

    previous, best = 0.0, _prune_with(model, importance, 0.0, global_pruning)
    if macs(best) <= target_macs:
        return best
    smallest = best
    for step in range(1, SCAN_STEPS + 1):
        ratio = MAX_PRUNING_RATIO * step / SCAN_STEPS
        candidate = _prune_with(model, importance, ratio, global_pruning)
        if macs(candidate) < macs(smallest):
            smallest = candidate
        if macs(candidate) <= target_macs:
            low, high, best = previous, ratio, candidate
            break
        previous = ratio
    else:
        return smallest
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        candidate = _prune_with(model, importance, middle, global_pruning)
        if macs(candidate) <= target_macs:
            high, best = middle, candidate
        else:
            low = middle
    return best


def l1_norm_prune(model: ConvNet, target_macs: int, image_shape) -> ConvNet:
    importance = tp.importance.MagnitudeImportance(p=1, group_reduction="first", normalizer=None)
    return match_macs(model, importance, target_macs, image_shape, global_pruning=False)


def slimming_prune(model: ConvNet, target_macs: int, image_shape) -> ConvNet:
    importance = tp.importance.BNScaleImportance(normalizer=None)
    return match_macs(model, importance, target_macs, image_shape, global_pruning=True)


def finetune(model: ConvNet, config: RunConfig, data: TensorData, epochs: int, lr_scale: float = 0.1) -> ConvNet:
    """``epochs`` more epochs of ``config``'s own recipe (optimizer, regularizer) at
    ``lr_scale`` times its learning rate, constant. Returns a fine-tuned copy."""
    model = copy.deepcopy(model).to(data.train_labels.device, memory_format=torch.channels_last)
    if epochs == 0:
        return model.eval()
    torch.manual_seed(config.seed)
    optimizer = build_optimizer(model, config.optimizer, config.lr * lr_scale, config.decay_mode, config.decay,
                                config.decay_params, config.momentum, config.nesterov)
    scheduler = build_scheduler(optimizer, "constant", 1)
    for epoch in range(epochs):
        train_epoch(model, optimizer, scheduler, data, config, config.epochs + epoch)
    return model.eval()


@dataclass
class Candidate:
    method: str
    model: ConvNet
    config: RunConfig  # the recipe it was trained with (and is fine-tuned with)


def describe(candidate: Candidate, data: TensorData, finetune_epochs: int, latency_repeats: int = 20) -> dict:
    """Params, MACs, latency at batch 1 and 128, and test error before/after fine-tuning."""
    shape = tuple(data.test_images.shape[1:])
    model = candidate.model.eval()
    error_before = evaluate(model, data.test_images, data.test_labels)
    tuned = finetune(model, candidate.config, data, finetune_epochs)
    row = {
        "method": candidate.method,
        "widths": list(model.spec.widths),
        "params": count_parameters(model),
        "macs": count_macs(model, (1, *shape)),
        # deployment form: BN folded into the convolutions (see cost.py for why it matters)
        "latency_b1_ms": 1000 * measure_latency(model, (1, *shape), repeats=latency_repeats, fold_batchnorm=True),
        "latency_b128_ms": 1000 * measure_latency(model, (128, *shape), repeats=max(5, latency_repeats // 4),
                                                  fold_batchnorm=True),
        "test_error_pruned": error_before,
        "test_error_finetuned": evaluate(tuned, data.test_images, data.test_labels),
        "finetune_epochs": finetune_epochs,
    }
    return row


def compare_methods(implicit_model: ConvNet, implicit_record: dict, implicit_config: RunConfig,
                    dense_model: ConvNet, dense_config: RunConfig, slim_model: ConvNet, slim_config: RunConfig,
                    data: TensorData, finetune_epochs: int = 1, latency_repeats: int = 20) -> tuple[list[dict], PruneResult]:
    """The comparison table: the unpruned networks, then each method at matched removed MACs."""
    shape = tuple(data.test_images.shape[1:])
    implicit = prune_dead(implicit_model, implicit_record)
    target = count_macs(implicit.model, (1, *shape))
    candidates = [
        Candidate(UNPRUNED_ADAPTIVE, implicit_model, implicit_config),
        Candidate("implicit: dead filters removed", implicit.model, implicit_config),
        Candidate("unpruned (SGD + L2)", dense_model, dense_config),
        Candidate(L1_NORM, l1_norm_prune(dense_model, target, shape), dense_config),
        Candidate("unpruned (SGD + L2 + gamma L1)", slim_model, slim_config),
        Candidate(SLIMMING, slimming_prune(slim_model, target, shape), slim_config),
    ]
    rows = [describe(c, data, 0 if c.method.startswith("unpruned") else finetune_epochs, latency_repeats)
            for c in candidates]
    for row in rows:  # the three unpruned networks have the same architecture and cost
        row["mac_reduction"] = rows[0]["macs"] / row["macs"]
        row["speedup_b128"] = rows[0]["latency_b128_ms"] / row["latency_b128_ms"]
    return rows, implicit


def _find(records: list[dict], **where) -> dict | None:
    from .config import older_value

    for record in records:
        config = record["config"]
        if record["status"] == "completed" and all(config.get(k, older_value(k)) == v for k, v in where.items()):
            return record
    return None


def compare_runs(store, records: list[dict], finetune_epochs: int = 1, latency_repeats: int = 20,
                 slimming_gamma_l1: float = 1e-4, adaptive: str = "adam") -> pd.DataFrame:
    """For every (model, data set, seed) among ``records`` that has an ``adaptive``+L2 run (Adam
    unless said), an SGD+L2 run and an SGD+L2 run with ``gamma_l1``: the comparison table rows,
    with those three columns.

    Each case's rows are kept in the store (``RunStore.keep_measured("comparisons", ...)``, keyed by
    the three run ids and the budgets, and committed beside the run archive), so re-running the
    notebook does not fine-tune and time everything again; the latencies are then those measured
    when the case was first computed, on that machine."""
    from .config import from_record
    from .train import load_config_data

    rows = []
    cases = sorted({(r["config"]["model"], r["config"]["dataset"], r["config"]["seed"]) for r in records})
    for model_name, dataset, seed in cases:
        same = dict(model=model_name, dataset=dataset, seed=seed, decay_mode="l2")
        implicit = _find(records, **same, optimizer=adaptive, gamma_l1=0.0)
        dense = _find(records, **same, optimizer="sgd", gamma_l1=0.0)
        slim = _find(records, **same, optimizer="sgd", gamma_l1=slimming_gamma_l1)
        if not (implicit and dense and slim):
            continue
        key = hashlib.sha256(json.dumps([[r["run_id"] for r in (implicit, dense, slim)], finetune_epochs,
                                         latency_repeats, __version__]).encode()).hexdigest()[:16]
        cached = store.measured("comparisons", key)
        if cached is not None:
            rows.extend(cached)
            continue
        configs = [from_record(r["config"]) for r in (implicit, dense, slim)]
        data = load_config_data(configs[0])
        models = [store.load_model(r["run_id"]).to(memory_format=torch.channels_last) for r in (implicit, dense, slim)]
        # an archived run was retrained for its weights: measure with the record that matches them
        implicit, dense, slim = (store.get(r["run_id"]) for r in (implicit, dense, slim))
        table, pruned = compare_methods(models[0], implicit, configs[0], models[1], configs[1], models[2], configs[2],
                                        data, finetune_epochs, latency_repeats)
        difference = max_logit_difference(models[0], pruned.model, data.test_images)
        for row in table:
            row["max_logit_difference"] = difference if row["method"] == IMPLICIT else float("nan")
        case_rows = [{"model": model_name, "dataset": dataset, "seed": seed, **row} for row in table]
        store.keep_measured("comparisons", key, case_rows)
        rows.extend(case_rows)
    return pd.DataFrame(rows)

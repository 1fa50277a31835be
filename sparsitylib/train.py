"""Train one network from a ``RunConfig`` and return its run record.

The flow: config -> data + model + optimizer -> epochs (with a cheap sparsity snapshot after
each) -> full sparsity measurement over the training set -> record. The record is plain JSON data
(config, environment, metrics, per-layer and per-filter statistics, per-epoch history); the store
saves it next to the weights.

Determinism: the model is initialized from ``seed``, and the batch order and augmentation of each
epoch depend only on (seed, epoch), so the same config gives the same record on the same machine,
and a run resumed from a checkpoint ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import RunConfig
from .data import TensorData, load_data
from .environment import environment_info, pick_device
from .models import ConvNet, ModelSpec, build_model, scaled_widths
from .optim import add_gamma_l1, build_optimizer, build_scheduler, optimizer_step
from .sparsity import (
    ACTIVATION_THRESHOLD,
    GAMMA_THRESHOLD,
    SELECTIVITY_THRESHOLD,
    measure_sparsity,
)
from .monitor import SparsityMonitor

EVAL_BATCH_SIZE = 1000
PROGRESS_EVERY = 20  # steps between progress-bar updates (each one checks the loss for NaN)
FIRST_CHECKED_STEPS = 5  # the loss is also checked at each of the first steps, where divergence starts
# Per-epoch test error in the history is taken on the first images of the (seeded) test subset:
# 1,000 images give the curve to +-1 point at a fifth of the quick preset's 5,000-image cost. The
# final test error in ``metrics`` always uses the whole test subset.
HISTORY_TEST_IMAGES = 1000


@dataclass
class TrainedRun:
    record: dict
    model: ConvNet


class LossDiverged(RuntimeError):
    pass


def load_config_data(config: RunConfig, device: torch.device | str = "cpu", download: bool = False) -> TensorData:
    """The data set a config trains on, as tensors on ``device``."""
    return load_data(config.dataset, classes=config.classes, train_size=config.train_size,
                     test_size=config.test_size, augment=config.augment, normalize=config.normalize,
                     seed=config.seed, download=download, device=device)


def model_spec(config: RunConfig, data: TensorData) -> ModelSpec:
    return ModelSpec(model=config.model, widths=tuple(scaled_widths(config.model, config.width)),
                     in_channels=data.channels, num_classes=data.num_classes, norm=config.norm,
                     activation=config.activation, negative_slope=config.negative_slope)


@torch.inference_mode()
def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Error rate (fraction misclassified) in inference mode."""
    was_training = model.training
    model.eval()
    wrong = 0
    for start in range(0, len(labels), batch_size):
        logits = model(images[start : start + batch_size])
        wrong += int((logits.argmax(1) != labels[start : start + batch_size]).sum())
    model.train(was_training)
    return wrong / len(labels)


def train(
    config: RunConfig,
    *,
    checkpoint: str | Path | None = None,
    quiet: bool = False,
    download: bool = False,
    data: TensorData | None = None,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> TrainedRun:
    """Train ``config`` and measure its sparsity.

    Args:
        config: the run's settings.
        checkpoint: a file to save model, optimizer and RNG states to after every epoch; if it
            exists, training resumes from it. Removed by the caller (the store) when done.
        quiet: no progress bar.
        download: let torchvision download a missing data set.
        data: data already loaded for this config (skips loading; must match the config).
        on_epoch_end: called with each epoch's history row (for live plots, or tests).

    Returns the run record (``status`` is ``"completed"`` or ``"failed"``, with
    ``failure_reason``) and the trained model.
    """
    started = time.time()
    device = pick_device(config.device)
    data = (data or load_config_data(config, "cpu", download)).to(device)
    torch.manual_seed(config.seed)
    spec = model_spec(config, data)
    model = build_model(spec).to(device, memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config.optimizer, config.lr, config.decay_mode, config.decay,
                                config.decay_params, config.momentum, config.nesterov)
    steps_per_epoch = math.ceil(len(data.train_labels) / config.batch_size)
    scheduler = build_scheduler(optimizer, config.schedule, steps_per_epoch * config.epochs,
                                config.step_milestones, config.step_gamma)
    snapshot_generator = torch.Generator().manual_seed(config.seed)
    snapshot_index = torch.randperm(len(data.train_labels), generator=snapshot_generator)[: config.snapshot_size]
    snapshot_images = data.train_images[snapshot_index.to(device)]
    monitor = SparsityMonitor(model, snapshot_images, optimizer, warn=False, dormancy=False, recycle_init=config.recycle_init)

    history: list[dict] = []
    start_epoch = 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        start_epoch, history = _load_checkpoint(checkpoint, model, optimizer, scheduler)

    failure = None
    progress = tqdm(total=steps_per_epoch * config.epochs, initial=steps_per_epoch * start_epoch,
                    disable=quiet, desc=f"{config.optimizer}+{config.decay_mode}", unit="step", leave=False)
    try:
        for epoch in range(start_epoch, config.epochs):
            try:
                train_loss, train_accuracy = train_epoch(model, optimizer, scheduler, data, config, epoch, progress)
            except LossDiverged as error:
                failure = str(error)
                break
            row = {
                "epoch": epoch + 1,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": train_loss,
                "train_accuracy": train_accuracy,
                "test_error": evaluate(model, data.test_images[:HISTORY_TEST_IMAGES],
                                       data.test_labels[:HISTORY_TEST_IMAGES]),
                # never after the last epoch: the final measurement must see the filters training left dead
                **monitor(epoch + 1, recycle=config.recycle and epoch + 1 < config.epochs),
            }
            history.append(row)
            progress.set_postfix(epoch=epoch + 1, loss=f"{train_loss:.3f}", test_err=f"{row['test_error']:.3f}",
                                 dead=sum(d or 0 for d in row["dead_per_layer"]))
            if checkpoint is not None:
                _save_checkpoint(checkpoint, epoch + 1, history, model, optimizer, scheduler)
            if on_epoch_end is not None:
                on_epoch_end(row)
    finally:
        progress.close()

    record = {
        "run_id": config.run_id,
        "status": "failed" if failure else "completed",
        "failure_reason": failure,
        "config": config.to_dict(),
        "model_spec": spec.to_dict(),
        "environment": environment_info(device),
        "thresholds": {"activation": ACTIVATION_THRESHOLD, "gamma": GAMMA_THRESHOLD,
                       "selectivity": SELECTIVITY_THRESHOLD},
        "history": history,
    }
    if failure is None:
        report = measure_sparsity(model, data.train_images)
        last = history[-1]
        record["metrics"] = {"test_error": evaluate(model, data.test_images, data.test_labels),
                             "history_test_images": min(HISTORY_TEST_IMAGES, len(data.test_labels)),
                             "steps": steps_per_epoch * len(history), "train_loss": last["train_loss"],
                             "train_accuracy": last["train_accuracy"], "train_images": len(data.train_labels),
                             "test_images": len(data.test_labels), **report.totals}
        record["layers"] = report.layers.to_dict(orient="records")
        record["filters"] = report.filters.to_dict(orient="list")
    else:
        record["metrics"] = {}
    record["environment"]["duration_s"] = round(time.time() - started, 3)
    return TrainedRun(record=record, model=model)


AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16}


def training_precision(precision: str, device: torch.device):
    """The context a training step's forward and backward run in: nothing for float32, else
    ``torch.autocast`` on the data's device type (parameters and optimizer state stay float32)."""
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


def train_epoch(model, optimizer, scheduler, data: TensorData, config: RunConfig, epoch: int, progress=None):
    """One pass over the training tensors; returns (mean loss, accuracy). Raises LossDiverged."""
    model.train()
    precision = training_precision(config.precision, data.train_labels.device)
    loss_sum = torch.zeros((), device=data.train_labels.device)
    correct = torch.zeros((), dtype=torch.long, device=data.train_labels.device)
    for step, (images, labels) in enumerate(data.train_batches(config.batch_size, config.seed, epoch), start=1):
        with precision:
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.gamma_l1:
            add_gamma_l1(model, config.gamma_l1)
        optimizer_step(optimizer)
        scheduler.step()
        loss_sum += loss.detach() * len(labels)
        correct += (logits.detach().argmax(1) == labels).sum()
        if step % PROGRESS_EVERY == 0 or (epoch == 0 and step <= FIRST_CHECKED_STEPS):
            _check_finite(loss, epoch, step)
        if step % PROGRESS_EVERY == 0 and progress is not None:
            progress.update(PROGRESS_EVERY)
    if progress is not None:
        progress.update(step % PROGRESS_EVERY)
    _check_finite(loss, epoch, step)
    n = len(data.train_labels)
    return float(loss_sum) / n, float(correct) / n


def _check_finite(loss, epoch, step):
    if not math.isfinite(float(loss.detach())):
        raise LossDiverged(f"training loss became {float(loss.detach())} at epoch {epoch + 1}, step {step}")


def _save_checkpoint(path: Path, epoch, history, model, optimizer, scheduler):
    state = {
        "epoch": epoch,
        "history": history,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    temporary = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        torch.save(state, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)  # a half-written checkpoint must not be mistaken for one
        raise


def _load_checkpoint(path: Path, model, optimizer, scheduler):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"]:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["epoch"], state["history"]

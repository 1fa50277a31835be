"""Where a quick-preset run's time goes, and what the per-epoch test-error subset saves.

    .venv/bin/python benchmarks/run_cost.py [--preset quick] [--threads 1] [--rounds 3]

Times, in one process with a fixed thread count (a grid worker's 1 thread by default), the parts
of one run: a training epoch, the per-epoch test error on the whole test subset (before) and on
the first ``HISTORY_TEST_IMAGES`` (now), the per-epoch snapshot, and the final measurement pass.
Medians over interleaved rounds; the per-run totals are assembled from them for the preset's
epochs (now: one extra full evaluation at the end for the final test error).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sparsitylib.models import build_model
from sparsitylib.optim import build_optimizer, build_scheduler
from sparsitylib.presets import preset_config
from sparsitylib.sparsity import epoch_snapshot, measure_sparsity
from sparsitylib.train import HISTORY_TEST_IMAGES, evaluate, load_config_data, model_spec, train_epoch


def seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = preset_config(args.preset, optimizer="adam", device="cpu")
    data = load_config_data(config)
    torch.manual_seed(0)
    model = build_model(model_spec(config, data)).to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config.optimizer, config.lr, config.decay_mode, config.decay)
    scheduler = build_scheduler(optimizer, config.schedule, 10**6)
    snapshot = data.train_images[: config.snapshot_size]
    parts = {name: [] for name in ("train epoch", "test error, all", "test error, subset", "snapshot", "measurement")}
    for round_ in range(args.rounds):
        parts["train epoch"].append(seconds(lambda: train_epoch(model, optimizer, scheduler, data, config, round_)))
        parts["test error, all"].append(seconds(lambda: evaluate(model, data.test_images, data.test_labels)))
        parts["test error, subset"].append(seconds(lambda: evaluate(
            model, data.test_images[:HISTORY_TEST_IMAGES], data.test_labels[:HISTORY_TEST_IMAGES])))
        parts["snapshot"].append(seconds(lambda: epoch_snapshot(model, snapshot)))
        parts["measurement"].append(seconds(lambda: measure_sparsity(model, data.train_images)))
    median = {name: statistics.median(values) for name, values in parts.items()}
    print(f"{args.preset} preset, {len(data.train_labels)} training / {len(data.test_labels)} test images, "
          f"{args.threads} thread(s), medians of {args.rounds} rounds, torch {torch.__version__}")
    for name, value in median.items():
        print(f"  {name:<20} {value:6.2f} s")
    epochs = config.epochs
    before = epochs * (median["train epoch"] + median["test error, all"] + median["snapshot"]) + median["measurement"]
    after = (epochs * (median["train epoch"] + median["test error, subset"] + median["snapshot"])
             + median["measurement"] + median["test error, all"])
    print(f"per run of {epochs} epochs: before {before:.1f} s (test error on all {len(data.test_labels)} images every "
          f"epoch), now {after:.1f} s (first {HISTORY_TEST_IMAGES} per epoch, all at the end): "
          f"{after / before:.2f}x the time")


if __name__ == "__main__":
    main()

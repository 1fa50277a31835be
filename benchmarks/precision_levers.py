"""The CPU levers on one training step, each alone and combined, measured side by side: bfloat16
autocast, channels_last, torch.compile (Inductor: oneDNN convolutions with fused pointwise
epilogues) and the thread count, at several batch sizes; with the training FLOP/s against the
machine's matrix-product rate in float32 and in bfloat16.

    .venv/bin/python benchmarks/precision_levers.py [--steps 30] [--rounds 3] [--batch-sizes 32,64,128]

The step is the quick preset's (BasicNet width 0.25, Adam+L2, Fashion-MNIST 28x28), the one
``train.train_epoch`` takes: forward and loss (under autocast for bfloat16), backward, optimizer
step. Every variant gets a fresh model and optimizer from the same seed, its warm-up steps (where
torch.compile compiles) are not timed, and the variants are interleaved round by round: the median
of ``--rounds`` rounds of ``--steps`` steps is reported, with each variant's ratio to float32,
contiguous, eager, 1 thread at the same batch size. Training FLOPs of a step are counted by
``torch.utils.flop_counter`` over forward and backward (a multiply-add is 2 FLOPs); the matrix
product rate is the median of square products of 1024 x 1024 matrices at the same thread count.
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from sparsitylib.models import build_model
from sparsitylib.optim import build_optimizer, optimizer_step
from sparsitylib.presets import preset_config
from sparsitylib.train import load_config_data, model_spec, training_precision

PRECISIONS = ("float32", "bfloat16")
LAYOUTS = ("contiguous", "channels_last")
MODES = ("eager", "compiled")


def fresh_step(config, data, precision: str, layout: str, mode: str):
    """A training step closure for one variant, with its own model and optimizer (seed 0)."""
    torch.manual_seed(0)
    model = build_model(model_spec(config, data))
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = build_optimizer(model, config.optimizer, config.lr, config.decay_mode, config.decay)
    forward = torch.compile(model) if mode == "compiled" else model
    context = training_precision(precision, torch.device("cpu"))

    def step(images, labels):
        with context:
            loss = F.cross_entropy(forward(images.contiguous(memory_format=memory_format)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer_step(optimizer)

    return model, step


def training_flops(config, data, batch_size: int) -> int:
    """FLOPs of one training step's forward and backward (float32, eager) at ``batch_size``."""
    torch.manual_seed(0)
    model = build_model(model_spec(config, data))
    images, labels = data.train_images[:batch_size], data.train_labels[:batch_size]
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(images), labels).backward()
    return counter.get_total_flops()


def matmul_rate(dtype: torch.dtype, threads: int, size: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of a square matrix product in ``dtype`` on ``threads`` threads (median of ``repeats``)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        times.append((time.perf_counter() - start) / 4)
    return 2 * size**3 / statistics.median(times)


def measure(batch_size: int, steps: int, rounds: int, threads_options: list[int]) -> list[dict]:
    config = preset_config("quick", optimizer="adam", decay_mode="l2", batch_size=batch_size, device="cpu")
    data = load_config_data(config)
    batches = [(data.train_images[i * batch_size:(i + 1) * batch_size], data.train_labels[i * batch_size:(i + 1) * batch_size])
               for i in range(steps)]
    flops = training_flops(config, data, batch_size)
    variants = {}
    for precision, layout, mode in itertools.product(PRECISIONS, LAYOUTS, MODES):
        model, step = fresh_step(config, data, precision, layout, mode)
        for threads in threads_options:
            torch.set_num_threads(threads)
            for images, labels in batches[:5]:  # warm-up (compilation) untimed
                step(images, labels)
            variants[(precision, layout, mode, threads)] = (step, [])
    for _ in range(rounds):
        for key, (step, times) in variants.items():
            torch.set_num_threads(key[3])
            start = time.perf_counter()
            for images, labels in batches:
                step(images, labels)
            times.append((time.perf_counter() - start) / steps)
    base = statistics.median(variants[("float32", "contiguous", "eager", 1)][1])
    rows = []
    for (precision, layout, mode, threads), (_, times) in variants.items():
        seconds = statistics.median(times)
        rows.append({"batch_size": batch_size, "precision": precision, "layout": layout, "mode": mode,
                     "threads": threads, "ms_per_step": round(1000 * seconds, 1),
                     "images_per_s": round(batch_size / seconds), "speedup": round(base / seconds, 2),
                     "gflops": round(flops / seconds / 1e9, 2), "flops_per_step": flops})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    parser.add_argument("--batch-sizes", default="32,64,128", help="comma-separated batch sizes")
    parser.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1 and one per core)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    threads_options = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, cores})
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    print(f"torch {torch.__version__}, {cores} cores ({platform.processor() or platform.machine()}; avx512_bf16: "
          f"{'yes' if 'avx512_bf16' in flags else 'no'}, amx: {'yes' if 'amx_bf16' in flags else 'no'}); quick "
          f"preset step (BasicNet width 0.25, Adam+L2); median of {args.rounds} interleaved rounds of {args.steps} steps",
          flush=True)
    rates = {(dtype, threads): matmul_rate(getattr(torch, dtype), threads)
             for dtype in PRECISIONS for threads in threads_options}
    for (dtype, threads), rate in rates.items():
        print(f"matrix product 1024x1024, {dtype}, {threads} thread(s): {rate / 1e9:.1f} GFLOP/s", flush=True)
    rows = []
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        started = time.time()
        rows += measure(batch_size, args.steps, args.rounds, threads_options)
        print(f"batch {batch_size} measured in {time.time() - started:.0f} s", flush=True)
    print("\n| batch | precision | layout | mode | threads | ms/step | images/s | speed-up | GFLOP/s | of matmul rate |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        rate = rates[(row["precision"], row["threads"])]
        row["of_matmul_rate"] = round(row["gflops"] * 1e9 / rate, 3)
        print(f"| {row['batch_size']} | {row['precision']} | {row['layout']} | {row['mode']} | {row['threads']} | "
              f"{row['ms_per_step']} | {row['images_per_s']:,} | {row['speedup']:.2f}x | {row['gflops']} | "
              f"{row['of_matmul_rate']:.1%} |")
    print(json.dumps({"torch": torch.__version__, "cores": cores, "steps": args.steps, "rounds": args.rounds,
                      "matmul_gflops": {f"{d}/{t}": round(r / 1e9, 2) for (d, t), r in rates.items()},
                      "rows": rows}))


if __name__ == "__main__":
    main()

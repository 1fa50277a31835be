"""What a network costs: parameters, multiply-accumulates, measured latency.

MACs come from ``torch.utils.flop_counter.FlopCounterMode``, which counts FLOPs with a
multiply-add as two FLOPs; we report MACs = FLOPs / 2 (fvcore, thop and ptflops count MACs, which
is why FLOP numbers in papers disagree by 2x). Latency comes from ``torch.utils.benchmark.Timer``
with a fixed thread count, reported as median and interquartile range; a spread above 10% of the
median is flagged as not to be trusted. With
``fold_batchnorm`` the network is timed in deployment form, each BatchNorm folded into its
convolution: on the CPU, BatchNorm over channel counts that are not a multiple of 8 is slow
enough in channels_last to hide a pruned network's speed-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime" on CPU machines
from torch.utils.benchmark import Timer  # noqa: E402  (after the logger is quietened)
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on a tensor of ``input_shape`` (with its batch
    dimension), in eval mode. FLOPs = 2 x MACs."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.zeros(input_shape, device=device))
    model.train(was_training)
    return counter.get_total_flops() // 2


SPREAD_LIMIT = 0.1  # interquartile range above 10% of the median: too noisy to trust


@dataclass
class Latency:
    """Seconds per forward pass: median and interquartile range over timed blocks, the thread
    count they ran with, and whether the spread is small enough to trust (IQR <= 10% of median)."""

    median_s: float
    iqr_s: float
    threads: int
    blocks: int

    @property
    def spread(self) -> float:
        return self.iqr_s / self.median_s if self.median_s > 0 else float("inf")

    @property
    def trustworthy(self) -> bool:
        return self.spread <= SPREAD_LIMIT

    def to_dict(self) -> dict:
        return {"median_ms": 1000 * self.median_s, "iqr_ms": 1000 * self.iqr_s, "threads": self.threads,
                "blocks": self.blocks, "spread": self.spread, "trustworthy": self.trustworthy}


def time_forward(model: nn.Module, input_shape: tuple[int, ...], threads: int = 1, min_run_time: float = 0.5,
                 repeats: int | None = None, channels_last: bool = True, fold_batchnorm: bool = False) -> Latency:
    """Time one forward pass on a batch of ``input_shape`` in eval and inference mode with
    ``torch.utils.benchmark.Timer`` (which fixes the thread count and synchronizes CUDA):
    ``blocked_autorange`` for at least ``min_run_time`` seconds, or ``repeats`` single timings.
    The model is moved (in place) to the inputs' memory format; ``fold_batchnorm`` times a copy
    with BN folded into the convolutions (deployment form)."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    if fold_batchnorm:
        from .sparsity import inference_copy

        model = inference_copy(model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=memory_format)
    inputs = torch.randn(input_shape, device=device).contiguous(memory_format=memory_format)
    forward = torch.inference_mode()(lambda: model(inputs))
    timer = Timer(stmt="forward()", globals={"forward": forward}, num_threads=threads)
    try:
        timer.timeit(3)  # warm-up: allocator, kernels chosen on first use
        if repeats is not None:
            times = [timer.timeit(1).median for _ in range(max(1, repeats))]
        else:
            times = timer.blocked_autorange(min_run_time=min_run_time).times
    finally:
        model.train(was_training)
    quartiles = np.quantile(times, [0.25, 0.5, 0.75])
    return Latency(float(quartiles[1]), float(quartiles[2] - quartiles[0]), threads, len(times))


def measure_latency(model: nn.Module, input_shape: tuple[int, ...], repeats: int = 20, channels_last: bool = True,
                    fold_batchnorm: bool = False, threads: int | None = None) -> float:
    """Median seconds of one forward pass (``time_forward`` with ``repeats`` timings; threads:
    the process's current count unless given)."""
    return time_forward(model, input_shape, threads or torch.get_num_threads(), repeats=repeats,
                        channels_last=channels_last, fold_batchnorm=fold_batchnorm).median_s


def cost(model: nn.Module, image_shape: tuple[int, int, int], batch_sizes=(1, 128), threads: int = 1,
         min_run_time: float = 0.5, fold_batchnorm: bool = False) -> dict:
    """Parameters, MACs per image, and latency at each batch size (``Latency.to_dict``)."""
    return {
        "params": count_parameters(model),
        "macs": count_macs(model, (1, *image_shape)),
        "latency": {f"batch_{b}": time_forward(model, (b, *image_shape), threads, min_run_time,
                                               fold_batchnorm=fold_batchnorm).to_dict() for b in batch_sizes},
    }

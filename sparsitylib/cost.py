"""What a network costs: parameters, multiply-accumulates, measured latency.

MACs come from ``torch.utils.flop_counter.FlopCounterMode``, which counts FLOPs with a
multiply-add as two FLOPs; we report MACs = FLOPs / 2 (fvcore, thop and ptflops count MACs, which
is why FLOP numbers in papers disagree by 2x). Latency is the median of repeated timed forward
passes in inference mode after warm-up: wall-clock on the CPU, CUDA events on a GPU. With
``fold_batchnorm`` the network is timed in deployment form, each BatchNorm folded into its
convolution: on the CPU, BatchNorm over channel counts that are not a multiple of 8 is slow
enough in channels_last to hide a pruned network's speed-up.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
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


@torch.inference_mode()
def measure_latency(model: nn.Module, input_shape: tuple[int, ...], repeats: int = 20, warmup: int = 3,
                    channels_last: bool = True, fold_batchnorm: bool = False) -> float:
    """Median seconds of one forward pass on a batch of ``input_shape``, in eval mode. The model
    is moved (in place) to the memory format of the inputs, as training does; ``fold_batchnorm``
    times a copy with BN folded into the convolutions (our ConvNets only)."""
    if fold_batchnorm:
        from .sparsity import inference_copy

        model = inference_copy(model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=memory_format)
    inputs = torch.randn(input_shape, device=device).contiguous(memory_format=memory_format)
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(inputs)
            end.record()
            torch.cuda.synchronize()
            elapsed = start.elapsed_time(end) / 1000
        else:
            begin = time.perf_counter()
            model(inputs)
            elapsed = time.perf_counter() - begin
        if i >= warmup:
            times.append(elapsed)
    model.train(was_training)
    return statistics.median(times)


def cost(model: nn.Module, image_shape: tuple[int, int, int], batch_sizes=(1, 128), repeats: int = 20,
         fold_batchnorm: bool = False) -> dict:
    """Parameters, MACs per image, and median latency (seconds) at each batch size."""
    return {
        "params": count_parameters(model),
        "macs": count_macs(model, (1, *image_shape)),
        **{f"latency_b{b}_s": measure_latency(model, (b, *image_shape), repeats=repeats, fold_batchnorm=fold_batchnorm)
           for b in batch_sizes},
    }

"""Latency speed-up of removing the dead filters, against the MAC reduction (target: speed-up at
batch 128 on the CPU >= 0.7 x the MAC reduction ratio).

    .venv/bin/python benchmarks/prune_speedup.py [--preset quick] [--models basicnet,vgg16] [--rounds 15]

Uses the preset's Adam+L2 run of each model (trained and stored if missing). The original and the
pruned network are timed alternately, batch by batch, and medians compared, so both see the same
machine load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from sparsitylib.cost import count_macs
from sparsitylib.presets import preset_config
from sparsitylib.prune import prune_dead
from sparsitylib.store import RunStore

TARGET = 0.7


@torch.inference_mode()
def alternate_latency(a, b, shape, rounds: int, warmup: int = 3) -> tuple[float, float]:
    inputs = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    a, b = (m.eval().to(memory_format=torch.channels_last) for m in (a, b))
    times = {0: [], 1: []}
    for i in range(warmup + rounds):
        for key, model in ((0, a), (1, b)):
            start = time.perf_counter()
            model(inputs)
            if i >= warmup:
                times[key].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--models", default="basicnet,vgg16")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    store = RunStore()
    results = []
    for name in args.models.split(","):
        config = preset_config(args.preset, model=name, optimizer="adam", decay_mode="l2")
        record = store.run(config)
        model = store.load_model(record["run_id"])
        pruned = prune_dead(model, record).model
        shape = (1, model.spec.in_channels, 28 if config.dataset == "fashion-mnist" else 32, 28 if config.dataset == "fashion-mnist" else 32)
        reduction = count_macs(model, shape) / count_macs(pruned, shape)
        before, after = alternate_latency(model, pruned, (args.batch, *shape[1:]), args.rounds)
        speedup = before / after
        results.append({"model": name, "run_id": record["run_id"], "dead_filters": record["metrics"]["dead_by_activation_count"],
                        "widths_after": list(pruned.spec.widths), "mac_reduction": round(reduction, 3),
                        "latency_ms_before": round(1000 * before, 2), "latency_ms_after": round(1000 * after, 2),
                        "speedup": round(speedup, 3), "speedup_over_mac_reduction": round(speedup / reduction, 3)})
        print(f"{name}: {record['metrics']['dead_by_activation_count']} dead filters removed, MACs {reduction:.2f}x fewer, "
              f"batch-{args.batch} latency {1000 * before:.1f} -> {1000 * after:.1f} ms = {speedup:.2f}x "
              f"({speedup / reduction:.2f} of the MAC reduction; target >= {TARGET})")
    print(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__, "batch": args.batch,
                      "results": results}))


if __name__ == "__main__":
    main()

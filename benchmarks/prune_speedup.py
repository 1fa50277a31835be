"""Latency speed-up of removing the dead filters, against the MAC reduction (target: speed-up at
batch 128 on the CPU >= 0.7 x the MAC reduction ratio).

    .venv/bin/python benchmarks/prune_speedup.py [--preset quick] [--models basicnet,vgg16] [--rounds 15]

Uses the preset's Adam+L2 run of each model (trained and stored if missing). The original and the
pruned network are timed alternately, batch by batch, and medians compared, so both see the same
machine load. Both are timed as trained (conv -> BN -> ReLU) and in deployment form, with BN
folded into the convolutions (``sparsity.inference_copy``), which removes per-layer overhead that
does not shrink with the number of filters.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from sparsitylib.cost import count_macs
from sparsitylib.data import DATASETS
from sparsitylib.presets import preset_config
from sparsitylib.prune import prune_dead
from sparsitylib.sparsity import inference_copy
from sparsitylib.store import RunStore

TARGET = 0.7


@torch.inference_mode()
def alternate_latency(models: dict, shape, rounds: int, warmup: int = 3) -> dict:
    """Median seconds per forward pass of each model, timing them in turn every round."""
    inputs = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    models = {k: m.eval().to(memory_format=torch.channels_last) for k, m in models.items()}
    times = {k: [] for k in models}
    for i in range(warmup + rounds):
        for key, model in models.items():
            start = time.perf_counter()
            model(inputs)
            if i >= warmup:
                times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--models", default="basicnet,vgg16")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    store = RunStore()
    results = []
    for name in args.models.split(","):
        config = preset_config(args.preset, model=name, optimizer="adam", decay_mode="l2")
        record = store.run(config)
        model = store.load_model(record["run_id"])
        pruned = prune_dead(model, record).model
        size = DATASETS[config.dataset].image_size
        shape = (1, model.spec.in_channels, size, size)
        reduction = count_macs(model, shape) / count_macs(pruned, shape)
        medians = alternate_latency({"before": model, "after": pruned, "before_folded": inference_copy(model),
                                     "after_folded": inference_copy(pruned)}, (args.batch, *shape[1:]), args.rounds)
        speedup = medians["before"] / medians["after"]
        folded = medians["before_folded"] / medians["after_folded"]
        results.append({"model": name, "run_id": record["run_id"], "dead_filters": record["metrics"]["dead_by_activation_count"],
                        "widths_after": list(pruned.spec.widths), "mac_reduction": round(reduction, 3),
                        "latency_ms": {k: round(1000 * v, 2) for k, v in medians.items()},
                        "speedup": round(speedup, 3), "speedup_over_mac_reduction": round(speedup / reduction, 3),
                        "speedup_bn_folded": round(folded, 3), "folded_over_mac_reduction": round(folded / reduction, 3)})
        print(f"{name}: {record['metrics']['dead_by_activation_count']} dead filters removed, MACs {reduction:.2f}x fewer; "
              f"batch-{args.batch} latency {1000 * medians['before']:.1f} -> {1000 * medians['after']:.1f} ms = {speedup:.2f}x "
              f"({speedup / reduction:.2f} of the MAC reduction); BN folded {1000 * medians['before_folded']:.1f} -> "
              f"{1000 * medians['after_folded']:.1f} ms = {folded:.2f}x ({folded / reduction:.2f}); target >= {TARGET}")
    print(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__, "batch": args.batch,
                      "results": results}))


if __name__ == "__main__":
    main()

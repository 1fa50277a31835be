"""How many of a trained run's dead filters are provably dead: interval bounds over every image.

    python examples/certify_run.py [--preset quick] [--optimizer adam] [--seed 0] [--runs DIR]

Takes the preset's run of ``optimizer`` with L2 (from the run store; a run only in the preset's
committed archive is trained again for its weights), measures its filters on every training
image, and certifies with ``sparsitylib.certify`` which of them cannot fire on *any* image whose
pixels lie in [0, 1] (the box the data normalization maps them to). Prints the per-layer table
and checks, on images never measured (uniform noise in the box), that removing the certified
filters leaves the logits unchanged in float64.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sparsitylib.certify import certify_dead, normalized_box
from sparsitylib.data import load_data
from sparsitylib.inspect_output import certificate_lines
from sparsitylib.presets import preset_config
from sparsitylib.prune import max_logit_difference, prune_dead
from sparsitylib.sparsity import measure_sparsity
from sparsitylib.store import RunStore
from sparsitylib.train import load_config_data

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    args = parser.parse_args()
    config = preset_config(args.preset, optimizer=args.optimizer, decay_mode="l2", seed=args.seed)
    store = RunStore(args.runs, archive=[ROOT / "figures" / args.preset / "runs.jsonl.gz"])
    model = store.load_model(config.run_id).double()
    data = load_config_data(config)
    raw = load_data(config.dataset, classes=config.classes, train_size=config.train_size, test_size=config.test_size,
                    normalize=False, seed=config.seed).train_images
    channels = raw.transpose(0, 1).flatten(1)
    low, high = normalized_box(channels.mean(dim=1).tolist(), channels.std(dim=1).clamp_min(1e-6).tolist())
    report = measure_sparsity(model, data.train_images.double())
    certificate = certify_dead(model, low=low, high=high, report=report)
    print(f"{args.preset} {args.optimizer}+L2 seed {args.seed} (run {config.run_id}), "
          f"{len(data.train_images)} training images")
    print("\n".join(certificate_lines(certificate)))
    if certificate.certified:
        pruned = prune_dead(model, certificate.filters, input_shape=tuple(data.train_images.shape[1:])).model
        shape = (256, *data.train_images.shape[1:])
        lows, highs = (torch.tensor(v, dtype=torch.float64).view(1, -1, 1, 1) for v in (low, high))
        unseen = lows + (highs - lows) * torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        print(f"removing the {certificate.certified} certified filters: largest logit difference on 256 images never "
              f"measured (uniform in the box): {max_logit_difference(model, pruned, unseen):.1e}")


if __name__ == "__main__":
    main()

"""Training throughput of sparsitylib's tensor-resident loop against a plain torchvision
DataLoader loop, and the cost of the sparsity measurement pass, measured side by side.

    .venv/bin/python benchmarks/training_throughput.py [--images 20000] [--rounds 3]

Same model (BasicNet, width 0.25, the quick preset), optimizer (Adam + L2), batch size and thread
count for every variant, at the quick preset's batch size (64) and at 128; epochs are interleaved and the median of the rounds is reported, so the
ratios hold even on a noisy machine. Targets: sparsitylib >= 1.5x the DataLoader loop;
measurement pass <= 0.5x one training epoch over the same images.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

from sparsitylib.data import FASHION_MNIST_FILES, _find_idx_folder, _idx_file, data_root, fashion_mnist_candidates
from sparsitylib.models import build_model
from sparsitylib.optim import build_optimizer, build_scheduler, optimizer_step
from sparsitylib.presets import preset_config
from sparsitylib.sparsity import measure_sparsity
from sparsitylib.train import load_config_data, model_spec, train_epoch


def torchvision_fashion_mnist(folder: Path) -> torchvision.datasets.FashionMNIST:
    """Fashion-MNIST through torchvision's own dataset class (PIL images + transforms)."""
    source = _find_idx_folder(fashion_mnist_candidates(data_root()))
    raw = folder / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem in FASHION_MNIST_FILES.values():
        path = _idx_file(source, stem)
        with (gzip.open(path) if path.suffix == ".gz" else open(path, "rb")) as src, open(raw / stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return torchvision.datasets.FashionMNIST(str(folder), train=True, download=False)


def fresh_model_and_optimizer(config, data, channels_last: bool):
    torch.manual_seed(config.seed)
    model = build_model(model_spec(config, data))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config.optimizer, config.lr, config.decay_mode, config.decay)
    return model, optimizer


def dataloader_epoch(model, optimizer, loader, channels_last: bool) -> None:
    model.train()
    for images, labels in loader:
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer_step(optimizer)


def measure(batch_size: int, images: int, rounds: int) -> dict:
    """Interleaved epochs of every variant at one batch size; medians over ``rounds``."""
    config = preset_config("quick", optimizer="adam", decay_mode="l2", train_size=images, batch_size=batch_size,
                           device="cpu")
    data = load_config_data(config)
    mean, std = 0.2860, 0.3530  # Fashion-MNIST's training-set statistics, as a plain loop would hardcode
    with tempfile.TemporaryDirectory() as folder:
        dataset = torchvision_fashion_mnist(Path(folder))
        dataset.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:images].tolist()
        loader = DataLoader(Subset(dataset, order), batch_size=batch_size, shuffle=True, num_workers=0)

        ours_model, ours_opt = fresh_model_and_optimizer(config, data, channels_last=True)
        scheduler = build_scheduler(ours_opt, "constant", 1)
        plain_model, plain_opt = fresh_model_and_optimizer(config, data, channels_last=False)
        plain_cl_model, plain_cl_opt = fresh_model_and_optimizer(config, data, channels_last=True)

        times = {"sparsitylib": [], "dataloader": [], "dataloader+channels_last": [], "measurement": []}
        for round_ in range(rounds + 1):  # round 0 warms up every variant and is discarded
            start = time.perf_counter()
            train_epoch(ours_model, ours_opt, scheduler, data, config, round_)
            t_ours = time.perf_counter() - start
            start = time.perf_counter()
            dataloader_epoch(plain_model, plain_opt, loader, channels_last=False)
            t_plain = time.perf_counter() - start
            start = time.perf_counter()
            dataloader_epoch(plain_cl_model, plain_cl_opt, loader, channels_last=True)
            t_plain_cl = time.perf_counter() - start
            start = time.perf_counter()
            measure_sparsity(ours_model, data.train_images)
            t_measure = time.perf_counter() - start
            if round_ > 0:
                for key, value in zip(times, (t_ours, t_plain, t_plain_cl, t_measure)):
                    times[key].append(value)
    median = {key: statistics.median(values) for key, values in times.items()}
    return {
        "batch_size": batch_size,
        "images_per_s": {key: round(images / median[key]) for key in ("sparsitylib", "dataloader", "dataloader+channels_last")},
        "epoch_s": {key: round(value, 3) for key, value in median.items()},
        "speedup_vs_dataloader": round(median["dataloader"] / median["sparsitylib"], 2),
        "measurement_over_epoch": round(median["measurement"] / median["sparsitylib"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20000, help="training images per epoch")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    parser.add_argument("--batch-sizes", default="64,128", help="comma-separated batch sizes to measure")
    args = parser.parse_args()

    print(f"BasicNet width 0.25, Adam+L2, Fashion-MNIST, {args.images} images, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; median of {args.rounds} interleaved rounds")
    results = []
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        result = measure(batch_size, args.images, args.rounds)
        results.append(result)
        print(f"batch {batch_size}: images/s " + ", ".join(f"{k} {v}" for k, v in result["images_per_s"].items()))
        print(f"  speed-up over the DataLoader loop: {result['speedup_vs_dataloader']}x (target >= 1.5x)")
        print(f"  sparsity measurement pass: {result['epoch_s']['measurement']:.2f} s = "
              f"{result['measurement_over_epoch']}x one training epoch (target <= 0.5x)")
    print(json.dumps({"images": args.images, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "results": results}))


if __name__ == "__main__":
    main()

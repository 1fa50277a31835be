"""The zoo table of docs/zoo.md: what sparsitylib finds, certifies and removes in models people use.

    python scripts/zoo_table.py [--out docs/zoo.md] [--only resnet18,vit_b_16]

For each model of torchvision and timm (untrained, seed 0, its BatchNorm statistics calibrated on
64 random images, as after training) and for a small transformer language model: the units found,
how many each definition applies to, and then two units planted dead in one layer (its norm's
gamma 0 and beta below zero, or zero weights and a negative bias without a norm): found by the
definitions that apply, certified by interval bounds over the box the measured images span, and
removed, exactly (the largest logit difference on 64 new inputs, float64) or with the reason.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import torch
import torchvision
from torch import nn

from sparsitylib.certify import certify_dead
from sparsitylib.dormancy import totals
from sparsitylib.filters import find_filter_layers
from sparsitylib.models import TinyTransformerLM
from sparsitylib.prune import PruningError, max_logit_difference, prune_dead
from sparsitylib.sparsity import measure_sparsity

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64
# (library, name, build, input shape); ViT-B/16 at 32 x 32: 4 patches, the same 12 blocks
MODELS = [
    ("torchvision", "resnet18", lambda: torchvision.models.resnet18(num_classes=10), (3, SIZE, SIZE)),
    ("timm", "resnet18", lambda: _timm("resnet18"), (3, SIZE, SIZE)),
    ("torchvision", "mobilenet_v2", lambda: torchvision.models.mobilenet_v2(num_classes=10), (3, SIZE, SIZE)),
    ("timm", "mobilenetv2_100", lambda: _timm("mobilenetv2_100"), (3, SIZE, SIZE)),
    ("torchvision", "mobilenet_v3_small", lambda: torchvision.models.mobilenet_v3_small(num_classes=10), (3, SIZE, SIZE)),
    ("timm", "mobilenetv3_small_100", lambda: _timm("mobilenetv3_small_100"), (3, SIZE, SIZE)),
    ("torchvision", "densenet121", lambda: torchvision.models.densenet121(num_classes=10), (3, SIZE, SIZE)),
    ("timm", "densenet121", lambda: _timm("densenet121"), (3, SIZE, SIZE)),
    ("torchvision", "regnet_x_400mf", lambda: torchvision.models.regnet_x_400mf(num_classes=10), (3, SIZE, SIZE)),
    ("timm", "regnetx_002", lambda: _timm("regnetx_002"), (3, SIZE, SIZE)),
    ("torchvision", "efficientnet_b0", lambda: torchvision.models.efficientnet_b0(num_classes=10), (3, SIZE, SIZE)),
    ("timm", "efficientnet_b0", lambda: _timm("efficientnet_b0"), (3, SIZE, SIZE)),
    ("torchvision", "convnext_tiny", lambda: torchvision.models.convnext_tiny(num_classes=10), (3, SIZE, SIZE)),
    ("timm", "convnext_tiny", lambda: _timm("convnext_tiny"), (3, SIZE, SIZE)),
    ("torchvision", "vit_b_16", lambda: torchvision.models.vit_b_16(image_size=32, num_classes=10), (3, 32, 32)),
    ("timm", "vit_base_patch16_224", lambda: _timm("vit_base_patch16_224", img_size=32), (3, 32, 32)),
    ("sparsitylib", "TinyTransformerLM (ReLU)", lambda: TinyTransformerLM(), None),
]


def _timm(name: str, **kwargs) -> nn.Module:
    import timm

    return timm.create_model(name, num_classes=10, **kwargs)


def inputs_for(model: nn.Module, shape, count: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if shape is None:  # token ids
        return torch.randint(0, model.embed.num_embeddings, (count, model.position.shape[1]), generator=generator)
    return torch.randn(count, *shape, generator=generator)


@torch.no_grad()
def calibrate(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """BatchNorm statistics of ``images`` (a cumulative average), as after training; eval mode."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    model(images)
    return model.eval()


@torch.no_grad()
def plant(model: nn.Module, layer, units: list[int]) -> None:
    """Make ``units`` of ``layer`` output a large negative constant before its activation."""
    if layer.bn is not None:
        norm = model.get_submodule(layer.bn)
        norm.weight[units], norm.bias[units] = 0.0, -10.0
    else:
        unit = model.get_submodule(layer.conv)
        unit.weight[units] = 0.0
        unit.bias[units] = -10.0


def row(library: str, name: str, build, shape) -> dict:
    torch.manual_seed(0)
    model = build()
    images = inputs_for(model, shape, 64, seed=1)
    calibrate(model, images)
    layers = find_filter_layers(model)
    observed = [layer for layer in layers if layer.observed]
    target = next((layer for layer in observed[1:] if layer.measured), observed[min(1, len(observed) - 1)])
    units = [0, 3]
    plant(model, target, units)
    report = measure_sparsity(model, images)
    applies = totals(report.filters)
    column = "dead_by_activation" if target.measured else "dormant_tau_0.025"
    rows = report.filters[report.filters["layer"] == target.name]
    found = sorted(int(f) for f in rows.loc[rows[column].astype(bool), "filter"])
    result = {"library": library, "model": name, "layers": len(layers), "units": len(report.filters),
              "observed": int(report.filters["observed"].sum()), "measured": int(report.filters["measured"].sum()),
              "gamma": applies["gamma"]["of"], "planted_in": target.name,
              "found": f"{len([u for u in units if u in found])}/{len(units)} by {column}"}
    if target.measured and shape is not None:
        flat = images.transpose(0, 1).flatten(1)
        certificate = certify_dead(model, low=flat.amin(dim=1).tolist(), high=flat.amax(dim=1).tolist(), report=report)
        certified = certificate.filters[(certificate.filters["layer"] == target.name)
                                        & certificate.filters["dead_by_activation"]]
        result["certified"] = f"{len(certified)}/{len(units)}" + (f" ({'; '.join(certificate.notes)[:60]} unbounded)"
                                                                   if certificate.notes else "")
    else:
        result["certified"] = "n/a: " + ("token ids" if shape is None else "not ReLU-family")
    if not target.measured:
        result["removed"] = f"n/a: {target.reason.split(':')[0]}" if target.reason else "n/a"
    elif shape is None:
        result["removed"] = "n/a: token-id inputs (the pruner traces with images)"
    else:
        try:
            pruned = prune_dead(model, report, input_shape=shape)
            removed = pruned.removed.get(target.name, [])
            fresh = inputs_for(model, shape, 64, seed=2)
            result["removed"] = (f"{len(removed)}/{len(units)} ({sum(map(len, pruned.removed.values()))} removed in all); "
                                 f"logit difference {max_logit_difference(model, pruned.model, images):.1e} on the "
                                 f"measured inputs, {max_logit_difference(model, pruned.model, fresh):.1e} on 64 new ones")
            if len(removed) < len(units):
                reasons = pruned.not_exact.get(target.name, {})
                reason = next(iter(reasons.values())) if reasons else "?"
                result["removed"] += "; " + reason.removeprefix("kept: ")[:100]
        except PruningError as error:
            result["removed"] = f"not pruned: {str(error)[:90]}"
    return result


def markdown(rows: list[dict], seconds: float) -> str:
    header = ("| library | model | layers | units | observed (ReDo) | measured (activation) | gamma applies | "
              "planted in | found | certified | removed exactly |")
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['library']} | {r['model']} | {r['error']} |||||||||")
            continue
        lines.append(f"| {r['library']} | {r['model']} | {r['layers']} | {r['units']:,} | {r['observed']:,} | "
                     f"{r['measured']:,} | {r['gamma']:,} | `{r['planted_in']}` | {r['found']} | {r['certified']} | "
                     f"{r['removed']} |")
    return "\n".join(lines) + f"\n\n_Written by `python scripts/zoo_table.py` in {seconds:.0f} s._\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="write the table into this Markdown file's marked block")
    parser.add_argument("--only", default=None, help="comma-separated model names")
    args = parser.parse_args()
    chosen = [m for m in MODELS if args.only is None or m[1] in args.only.split(",")]
    started, rows = time.time(), []
    for library, name, build, shape in chosen:
        began = time.time()
        try:
            rows.append(row(library, name, build, shape))
        except Exception as error:  # noqa: BLE001 - one model's failure is a row of the table, not the end of it
            traceback.print_exc()
            rows.append({"library": library, "model": name, "error": f"{type(error).__name__}: {str(error)[:120]}"})
        print(f"{library}:{name} {time.time() - began:.0f} s: {rows[-1]}", file=sys.stderr, flush=True)
    table = markdown(rows, time.time() - started)
    if args.out is None:
        print(table)
        return 0
    text = args.out.read_text()
    start, end = "<!-- zoo:start -->\n", "<!-- zoo:end -->"
    args.out.write_text(text[: text.index(start) + len(start)] + table + text[text.index(end):])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Bring your own CNN: build it from a name, load its weights, measure and prune its dead filters.

    python -m sparsitylib inspect torchvision:resnet18:num_classes=10 --weights model.pt --data fashion-mnist

MODEL is ``torchvision:<name>[:key=value,...]`` (any ``torchvision.models.get_model`` name, built
without pretrained weights) or ``package.module:factory`` (a function that returns the model).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import torch
import torchvision
from torch import nn

from .filters import find_filter_layers


class InspectError(ValueError):
    """The model, its weights or the data cannot be used as given; the message says what to do."""


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a string


def build_user_model(spec: str) -> nn.Module:
    """``torchvision:resnet18:num_classes=10`` or ``package.module:factory`` -> the model, in eval mode."""
    if spec.startswith("torchvision:"):
        name, *options = spec.split(":", 2)[1:]
        kwargs = {}
        for option in ",".join(options).split(",") if options else []:
            key, sep, value = option.partition("=")
            if not sep:
                raise InspectError(f"expected key=value in {spec!r}, got {option!r}")
            kwargs[key.strip()] = _literal(value.strip())
        if name not in torchvision.models.list_models():
            raise InspectError(f"torchvision has no model {name!r}; e.g. resnet18, resnet50, mobilenet_v2, densenet121 "
                               "(torchvision.models.list_models() lists them)")
        try:
            return torchvision.models.get_model(name, weights=None, **kwargs).eval()
        except TypeError as error:
            raise InspectError(f"cannot build torchvision:{name} with {kwargs}: {error}") from error
    module_name, sep, factory_name = spec.partition(":")
    if not sep or not factory_name:
        raise InspectError(f"MODEL must be torchvision:<name>[:key=value,...] or package.module:factory, got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as error:
        raise InspectError(f"cannot import {factory_name} from {module_name}: {error}") from error
    model = factory()
    if not isinstance(model, nn.Module):
        raise InspectError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state_dict (or a checkpoint holding one under 'state_dict' or 'model') without
    unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise InspectError(f"weights file {path} does not exist")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file or one holding pickled objects
        raise InspectError(f"cannot read {path} as a state_dict (torch.load with weights_only=True): {error}") from error
    for key in ("state_dict", "model"):
        if isinstance(saved, dict) and isinstance(saved.get(key), dict):
            saved = saved[key]
    if not isinstance(saved, dict):
        raise InspectError(f"{path} holds a {type(saved).__name__}, not a state_dict")
    try:
        model.load_state_dict(saved)
    except RuntimeError as error:
        first = str(error).splitlines()
        raise InspectError(f"the state_dict in {path} does not fit the model: {' '.join(first[1:4]).strip() or first[0]}. "
                           "Check MODEL's options (e.g. num_classes) against how the checkpoint was made") from error
    return model.eval()


def input_channels(model: nn.Module) -> int | None:
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return first.in_channels if first is not None else None


def load_images(data: str, count: int, model: nn.Module, image_size: int | None = None, seed: int = 0) -> torch.Tensor:
    """``count`` images from one of our data sets (its training split, normalized) or from
    ``imagefolder:DIR`` (torchvision's ImageFolder, resized to ``image_size`` if given). Gray
    images are repeated to 3 channels for a model whose first convolution takes 3."""
    from .data import DATASETS, load_data

    if count < 1:
        raise InspectError(f"--images must be at least 1, got {count}")
    if data.startswith("imagefolder:"):
        folder = Path(data.split(":", 1)[1])
        if not folder.is_dir():
            raise InspectError(f"image folder {folder} does not exist")
        steps = ([torchvision.transforms.Resize((image_size, image_size))] if image_size else []) + [
            torchvision.transforms.ToTensor()]
        dataset = torchvision.datasets.ImageFolder(folder, transform=torchvision.transforms.Compose(steps))
        picked = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
        try:
            images = torch.stack([dataset[int(i)][0] for i in picked])
        except RuntimeError as error:
            raise InspectError(f"the images in {folder} differ in size; pass --image-size: {error}") from error
    elif data in DATASETS:
        images = load_data(data, train_size=min(count, DATASETS[data].train_images), test_size=1, seed=seed).train_images
    else:
        raise InspectError(f"unknown data {data!r}: use one of {sorted(DATASETS)} or imagefolder:DIR")
    wanted = input_channels(model)
    if wanted == 3 and images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    if wanted is not None and images.shape[1] != wanted:
        raise InspectError(f"the images have {images.shape[1]} channels but the model's first convolution takes {wanted}")
    try:
        with torch.inference_mode():
            model.eval()(images[:1])
    except RuntimeError as error:
        raise InspectError(f"the model cannot take these images ({tuple(images.shape[1:])}): {error}") from error
    return images.contiguous()


def check_has_filters(model: nn.Module) -> None:
    layers = find_filter_layers(model)
    if not any(layer.measured for layer in layers):
        raise InspectError(f"{type(model).__name__} has no convolution -> BatchNorm -> ReLU filter to measure "
                           f"({len(layers)} convolution layer(s) found, none followed by a ReLU)")


def layer_lines(report) -> list[str]:
    """A plain-text per-layer table of a SparsityReport."""
    width = max(5, *(len(name) for name in report.layers["layer"]))
    lines = [f"{'layer':<{width}}{'filters':>9}{'dead (act)':>12}{'dead (gamma)':>14}  note"]
    notes = report.filters.groupby("layer", sort=False)["note"].first() if "note" in report.filters else {}
    for row in report.layers.itertuples():
        act = f"{row.dead_by_activation}" if row.measured else "-"
        note = "" if row.measured else notes.get(row.layer, "") + "; gamma criterion only"
        lines.append(f"{row.layer:<{width}}{row.filters:>9}{act:>12}{row.dead_by_gamma:>14}  {note}".rstrip())
    totals = report.totals
    measured = totals.get("filters_measured", totals["filters"])
    lines.append(f"{'total':<{width}}{totals['filters']:>9}{totals['dead_by_activation_count']:>12}"
                 f"{totals['dead_by_gamma_count']:>14}")
    lines.append(f"dead by activation {100 * totals['dead_by_activation']:.1f}% of the {measured} filters it applies to; "
                 f"by gamma {100 * totals['dead_by_gamma']:.1f}% of {totals['filters']}")
    return lines

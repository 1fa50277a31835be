"""Bring your own CNN: build it from a name, load its weights, measure and prune its dead filters.

    python -m sparsitylib inspect torchvision:resnet18:num_classes=10 --weights model.pt --data fashion-mnist

MODEL is ``torchvision:<name>[:key=value,...]`` (any ``torchvision.models.get_model`` name, built
without pretrained weights unless ``weights=NAME`` names them, e.g. ``weights=DEFAULT``) or
``package.module:factory`` (a function that returns the model).
"""

from __future__ import annotations

import ast
import importlib
import pickle
import re
import warnings
from pathlib import Path

import PIL
import torch
import torchvision
from torch import nn

from .filters import find_filter_layers


class InspectError(ValueError):
    """The model, its weights or the data cannot be used as given; the message says what to do."""


class InspectWarning(UserWarning):
    """The measurement runs, but on weaker ground than asked: fewer images than requested or than
    MIN_RELIABLE_IMAGES, unreadable image files skipped, or an untrained model."""


# Below this many images a filter silent on all of them is often just unlucky: dead counts overcount.
MIN_RELIABLE_IMAGES = 100


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a string


def _options(spec: str) -> tuple[str, dict]:
    """``torchvision:resnet18:num_classes=10`` -> ``("resnet18", {"num_classes": 10})`` (also ``timm:``)."""
    name, *options = spec.split(":", 2)[1:]
    kwargs = {}
    for option in ",".join(options).split(",") if options else []:
        key, sep, value = option.partition("=")
        if not sep:
            raise InspectError(f"expected key=value in {spec!r}, got {option!r}")
        kwargs[key.strip()] = _literal(value.strip())
    return name, kwargs


def _torchvision_options(spec: str) -> tuple[str, dict]:
    name, kwargs = _options(spec)
    if name not in torchvision.models.list_models():
        raise InspectError(f"torchvision has no model {name!r}; e.g. resnet18, resnet50, mobilenet_v2, densenet121 "
                           "(torchvision.models.list_models() lists them)")
    return name, kwargs


def named_weights(spec: str):
    """The pretrained weights a MODEL names with ``weights=NAME`` (``DEFAULT``, ``IMAGENET1K_V1`` or
    ``ResNet18_Weights.IMAGENET1K_V1``), a torchvision ``WeightsEnum`` member; None when it names none."""
    if not spec.startswith("torchvision:"):
        return None
    name, kwargs = _torchvision_options(spec)
    if kwargs.get("weights") is None:
        return None
    enum = torchvision.models.get_model_weights(name)
    prefix, _, member = str(kwargs["weights"]).rpartition(".")
    if prefix not in ("", enum.__name__) or member not in enum.__members__:
        raise InspectError(f"torchvision:{name} has no weights {kwargs['weights']!r}; use weights=DEFAULT or one of "
                           f"{', '.join(w.name for w in enum)}")
    return enum[member]


def build_user_model(spec: str, seed: int = 0) -> nn.Module:
    """``torchvision:resnet18:num_classes=10`` or ``package.module:factory`` -> the model, in eval mode.

    The random initialization is seeded with ``seed`` (the global random state is restored
    afterwards), so an untrained model is the same network every time. ``weights=NAME`` loads
    torchvision's pretrained weights of that name (``named_weights``; downloaded the first time)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build_user_model(spec)


def _build_user_model(spec: str) -> nn.Module:
    if spec.startswith("torchvision:"):
        name, kwargs = _torchvision_options(spec)
        weights = named_weights(spec)
        kwargs.pop("weights", None)
        try:
            return torchvision.models.get_model(name, weights=weights, **kwargs).eval()
        except (TypeError, ValueError) as error:
            texts = [f"{key}={value!r}" for key, value in kwargs.items() if isinstance(value, str)]
            hint = (f"; {', '.join(texts)} read as text: options are Python literals, so write numbers as numbers "
                    "(num_classes=10)") if texts else ""
            raise InspectError(f"cannot build torchvision:{name} with {kwargs}"
                               + (f" and weights {weights}" if weights else "") + f": {error}{hint}") from error
        except OSError as error:  # no internet (urllib's URLError is an OSError)
            raise InspectError(f"cannot download torchvision's {weights} weights ({error}): connect to the internet "
                               "once (torch caches them), or save a state_dict and pass it with --weights") from error
    if spec.startswith("timm:"):
        return _timm_model(spec)
    module_name, sep, factory_name = spec.partition(":")
    if not sep or not factory_name:
        raise InspectError(f"MODEL must be torchvision:<name>[:key=value,...], timm:<name>[:key=value,...] or "
                           f"package.module:factory, got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as error:
        raise InspectError(f"cannot import {factory_name} from {module_name}: {error}") from error
    model = factory()
    if not isinstance(model, nn.Module):
        raise InspectError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def _timm_model(spec: str) -> nn.Module:
    """``timm:resnet18:num_classes=10``: a timm model (the optional extra ``sparsitylib[timm]``),
    without pretrained weights unless ``pretrained=True`` (which downloads them)."""
    try:
        import timm
    except ImportError as error:
        raise InspectError("timm: models need timm; install the extra: pip install 'sparsitylib[timm]'") from error
    name, kwargs = _options(spec)
    if not timm.is_model(name):
        raise InspectError(f"timm has no model {name!r}; timm.list_models('resnet*') lists them")
    try:
        return timm.create_model(name, **{"pretrained": False, **kwargs}).eval()
    except (TypeError, ValueError) as error:
        raise InspectError(f"cannot build timm:{name} with {kwargs}: {error}") from error
    except OSError as error:  # pretrained=True without the internet
        raise InspectError(f"cannot download timm's pretrained {name} ({error}); save a state_dict and pass it "
                           "with --weights") from error


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state_dict (or a checkpoint holding one under 'state_dict' or 'model') without
    unpickling arbitrary objects."""
    path = Path(path)
    if path.is_dir():
        raise InspectError(f"--weights {path} is a folder; pass the state_dict file inside it "
                           "(torch.save(model.state_dict(), 'weights.pt'))")
    if not path.is_file():
        raise InspectError(f"weights file {path} does not exist")
    if path.stat().st_size == 0:
        raise InspectError(f"weights file {path} is empty")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # weights_only refused a pickled object, e.g. a whole model
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f"a pickled {found.group(1)} object" if found else "pickled Python objects"
        raise InspectError(f"{path} holds {what}, not a state_dict; save it with "
                           f"torch.save(model.state_dict(), {str(path)!r})") from error
    except Exception as error:  # a damaged file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise InspectError(f"cannot read {path} as a state_dict: it is not a file torch.save wrote, or it is damaged "
                           f"(torch.load with weights_only=True: {type(error).__name__}{': ' + reason if reason else ''})"
                           ) from error
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


def warn_if_uncalibrated(model: nn.Module) -> bool:
    """Warn (``InspectWarning``) and return True when every BatchNorm still has its initial running
    statistics (mean 0, variance 1): an untrained model, or a checkpoint without them."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or not all(bool((m.running_mean == 0).all() and (m.running_var == 1).all()) for m in norms):
        return False
    warnings.warn("every BatchNorm of the model still has its initial running statistics (mean 0, variance 1): the "
                  "model is untrained or its checkpoint lacks them, so dead-filter counts say little about a trained "
                  "network and pruning would act on uncalibrated statistics; load trained weights (--weights FILE)",
                  InspectWarning, stacklevel=2)
    return True


def input_channels(model: nn.Module) -> int | None:
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return first.in_channels if first is not None else None


def check_image_options(count: int, image_size: int | None) -> None:
    """InspectError unless ``count`` (--images) and ``image_size`` (--image-size) are usable."""
    if count < 1:
        raise InspectError(f"--images must be at least 1, got {count}")
    if image_size is not None and image_size < 1:
        raise InspectError(f"--image-size must be at least 1 (pixels), got {image_size}")


def load_images(data: str, count: int, model: nn.Module, image_size: int | None = None, seed: int = 0,
                weights=None) -> torch.Tensor:
    """``count`` images from one of our data sets (its training split, normalized; resized to
    ``image_size`` if given) or from
    ``imagefolder:DIR`` (torchvision's ImageFolder: DIR/<class>/<image> files, resized to
    ``image_size`` if given; with ``weights``, named torchvision weights, through their own
    ``weights.transforms()`` instead, at crop and resize size ``image_size`` if given). Gray images
    are repeated to 3 channels for a model whose first convolution takes 3.

    Unreadable image files (corrupt, truncated) are skipped and others taken in their place, with
    an ``InspectWarning`` giving their number and the first; an ``InspectError`` if none can be
    read. An ``InspectWarning`` too when fewer images than ``count`` exist, and when fewer than
    MIN_RELIABLE_IMAGES are used."""
    from .data import DATASETS, load_data

    check_image_options(count, image_size)
    if data.startswith("imagefolder:"):
        images = _folder_images(Path(data.split(":", 1)[1]), count, image_size, weights, seed)
    elif data in DATASETS:
        images = load_data(data, train_size=min(count, DATASETS[data].train_images), test_size=1, seed=seed).train_images
        if image_size is not None and images.shape[-1] != image_size:  # every source honours --image-size
            images = torch.nn.functional.interpolate(images, size=(image_size, image_size), mode="bilinear",
                                                     align_corners=False)
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
        fits = _size_that_fits(model, images.shape[1], images.shape[-1])
        hint = f"; it takes {fits}x{fits} images: pass --image-size {fits}" if fits else ""
        raise InspectError(f"the model cannot take these images ({tuple(images.shape[1:])}): {error}{hint}") from error
    shortfall = f", not the {count} asked for: {data} has no more" if len(images) < count else ""
    caution = (f"; dead-filter counts on fewer than {MIN_RELIABLE_IMAGES} images overcount (a filter silent on these "
               "may fire on others)" if len(images) < MIN_RELIABLE_IMAGES else "")
    if shortfall or caution:
        warnings.warn(f"measured on {len(images)} images{shortfall}{caution}", InspectWarning, stacklevel=2)
    return images.contiguous()


CANDIDATE_SIZES = (32, 64, 96, 128, 160, 224, 299)


def _size_that_fits(model: nn.Module, channels: int, tried: int) -> int | None:
    """The smallest of ``CANDIDATE_SIZES`` above ``tried`` that the model takes, or None."""
    for size in (s for s in CANDIDATE_SIZES if s > tried):
        try:
            with torch.inference_mode():
                model.eval()(torch.zeros(1, channels, size, size, device=next(model.parameters()).device))
            return size
        except RuntimeError:
            continue
    return None


def _folder_images(folder: Path, count: int, image_size: int | None, weights, seed: int) -> torch.Tensor:
    """Up to ``count`` readable images of an ImageFolder, in a seeded random order."""
    if not folder.is_dir():
        raise InspectError(f"image folder {folder} does not exist")
    if weights is not None:
        transform = weights.transforms(**({"crop_size": image_size, "resize_size": image_size} if image_size else {}))
    else:
        transform = torchvision.transforms.Compose(
            ([torchvision.transforms.Resize((image_size, image_size))] if image_size else [])
            + [torchvision.transforms.ToTensor()])
    try:
        dataset = torchvision.datasets.ImageFolder(folder, transform=transform)
    except FileNotFoundError as error:  # no class folder, or no image in any
        loose = [p for p in folder.iterdir() if p.suffix.lower() in torchvision.datasets.folder.IMG_EXTENSIONS]
        raise InspectError(
            f"found no images in class subfolders of {folder}: torchvision's ImageFolder needs {folder}/<class>/<image> "
            f"files ({' '.join(torchvision.datasets.folder.IMG_EXTENSIONS)})"
            + (f"; the {len(loose)} images directly in {folder} are not read: move them into a subfolder, e.g. "
               f"{folder / 'images'}" if loose else "")) from error
    images, unreadable = [], []
    for index in torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist():
        if len(images) == count:
            break
        try:
            images.append(dataset[index][0])
        except OSError as error:  # PIL.UnidentifiedImageError, "image file is truncated"
            reason = "not an image file PIL can identify" if isinstance(error, PIL.UnidentifiedImageError) else error
            unreadable.append(f"{dataset.samples[index][0]} ({reason})")
    if not images:
        raise InspectError(f"none of the {len(unreadable)} image files in {folder} can be read; the first: {unreadable[0]}")
    if unreadable:
        warnings.warn(f"skipped {len(unreadable)} unreadable image file(s) in {folder}; the first: {unreadable[0]}",
                      InspectWarning, stacklevel=3)
    try:
        return torch.stack(images)
    except RuntimeError as error:
        raise InspectError(f"the images in {folder} differ in size; pass --image-size: {error}") from error


def check_has_filters(model: nn.Module) -> None:
    layers = find_filter_layers(model)
    if not any(layer.measured for layer in layers):
        raise InspectError(f"{type(model).__name__} has no convolution -> BatchNorm -> ReLU filter to measure "
                           f"({len(layers)} convolution layer(s) found, none followed by a ReLU)")


def check_prune_criterion(criterion: str) -> None:
    """``InspectError`` when ``--prune`` is asked to remove filters by a definition it cannot
    remove exactly (``dormancy.removable``)."""
    from .dormancy import removable

    reason = removable(criterion)
    if reason:
        raise InspectError(f"--criterion {criterion}: {reason}")

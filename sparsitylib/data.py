"""Data sets held as tensors on the training device.

Every data set is loaded once into memory as float tensors (normalized, channels_last) and
batches are sliced from a seeded permutation, so the training loop never touches PIL or a
DataLoader. Augmentation (random crop + horizontal flip) runs on whole batches of tensors.

Where the data comes from:
- ``fashion-mnist``: the folder named by ``SPARSITYLIB_DATA`` (or ``./data``), in torchvision's
  layout ``FashionMNIST/raw/*-idx?-ubyte[.gz]`` or as the four IDX files directly in
  ``fashion-mnist/``; then the system copy of the Debian/Ubuntu package
  ``dataset-fashion-mnist``; then torchvision's download when ``download=True``.
- ``cifar10`` / ``cifar100``: torchvision's on-disk format (``cifar-10-batches-py/``,
  ``cifar-100-python/``) under the data root, downloaded by torchvision when ``download=True``.
- ``synthetic``: generated in memory from a fixed seed; for tests.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class DatasetInfo:
    num_classes: int
    channels: int
    image_size: int
    augment_by_default: bool
    train_images: int


DATASETS = {
    "fashion-mnist": DatasetInfo(num_classes=10, channels=1, image_size=28, augment_by_default=False, train_images=60000),
    "cifar10": DatasetInfo(num_classes=10, channels=3, image_size=32, augment_by_default=True, train_images=50000),
    "cifar100": DatasetInfo(num_classes=100, channels=3, image_size=32, augment_by_default=True, train_images=50000),
    "synthetic": DatasetInfo(num_classes=10, channels=1, image_size=16, augment_by_default=False, train_images=2000),
}

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
CROP_PADDING = 4  # pixels of zero padding for the random crop, as in the usual CIFAR recipe
SYNTHETIC_TEST = 500


class DatasetNotFoundError(FileNotFoundError):
    """The data set is not on disk and could not be downloaded."""


class DatasetError(ValueError):
    """The data set is on disk but cannot be used (a damaged file, fewer images than asked for);
    the message names the file or setting and what to do."""


def data_root() -> Path:
    """The data root: ``$SPARSITYLIB_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("SPARSITYLIB_DATA", "data"))


@dataclass
class TensorData:
    """A data set held as tensors. Images are float32 NCHW (channels_last), normalized."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    augment: bool

    @property
    def channels(self) -> int:
        return self.train_images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train_images.shape[-1]

    def train_batches(self, batch_size: int, seed: int, epoch: int):
        """Yield (images, labels) mini-batches for one epoch, in a seeded random order.

        The order and the augmentation depend only on (seed, epoch), so an epoch can be replayed
        exactly after a restart. The last, smaller batch is kept.
        """
        generator = torch.Generator().manual_seed(_mix(seed, epoch))
        order = torch.randperm(len(self.train_labels), generator=generator).to(self.train_labels.device)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            images = self.train_images[index]
            if self.augment:
                images = random_crop_flip(images, generator)
            yield images, self.train_labels[index]

    def to(self, device: torch.device) -> "TensorData":
        for field in ("train_images", "train_labels", "test_images", "test_labels"):
            tensor = getattr(self, field)
            if tensor.dim() == 4:
                tensor = tensor.to(device, memory_format=torch.channels_last)
            setattr(self, field, tensor.to(device))
        return self


def _mix(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63)


def random_crop_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding ``CROP_PADDING``) and horizontal flip of a whole batch."""
    n, _, h, w = images.shape
    pad = CROP_PADDING
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(images.device)
    rows = (torch.arange(h, device=images.device)[None, :] + dy[:, None])[:, None, :, None]
    cols = torch.arange(w, device=images.device)[None, :] + dx[:, None]
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols].contiguous(memory_format=torch.channels_last)


def load_data(
    name: str = "fashion-mnist",
    *,
    classes: tuple[int, ...] | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    augment: bool | None = None,
    normalize: bool = True,
    seed: int = 0,
    root: str | Path | None = None,
    download: bool = False,
    device: torch.device | str = "cpu",
) -> TensorData:
    """Load a data set as tensors on ``device``.

    Args:
        name: one of ``DATASETS``.
        classes: keep only these class indices (relabelled 0..k-1 in the given order), to vary
            task difficulty. ``None`` keeps all.
        train_size: a seeded random subset of this many training images (after class selection).
        test_size: at most this many test images, a seeded random subset (``None``: all of them;
            fewer when a class selection leaves fewer).
        augment: random crop + flip during training; ``None`` uses the data set's default
            (on for CIFAR, off for Fashion-MNIST).
        normalize: subtract the training set's per-channel mean and divide by its std.
        seed: seeds the subsets.
        root: data root (default ``data_root()``).
        download: let torchvision download a missing data set (needs the internet).
        device: where the tensors live.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    info = DATASETS[name]
    root = Path(root) if root is not None else data_root()
    if name == "synthetic":
        train_x, train_y, test_x, test_y = _synthetic()
    elif name == "fashion-mnist":
        train_x, train_y, test_x, test_y = _fashion_mnist(root, download)
    else:
        train_x, train_y, test_x, test_y = _cifar(name, root, download)

    if classes is not None:
        train_x, train_y = _select_classes(train_x, train_y, classes)
        test_x, test_y = _select_classes(test_x, test_y, classes)
    generator = torch.Generator().manual_seed(seed)
    if train_size is not None:
        if train_size > len(train_y):
            raise DatasetError(f"train_size={train_size} is larger than the {len(train_y)} training images of {name}"
                               + (f" in classes {list(classes)}" if classes is not None else "")
                               + ("" if name == "synthetic" else f" found under {root}")
                               + f"; lower train_size to at most {len(train_y)}, or use a complete copy of {name}")
        train_x, train_y = _subset(train_x, train_y, train_size, generator, "train_size")
    if test_size is not None:
        test_x, test_y = _subset(test_x, test_y, min(test_size, len(test_y)), generator, "test_size")

    train_x = train_x.float().div_(255.0)
    test_x = test_x.float().div_(255.0)
    if normalize:
        mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
        std = train_x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
        train_x = (train_x - mean) / std
        test_x = (test_x - mean) / std
    data = TensorData(
        name=name,
        train_images=train_x,
        train_labels=train_y.long(),
        test_images=test_x,
        test_labels=test_y.long(),
        num_classes=len(classes) if classes is not None else info.num_classes,
        augment=info.augment_by_default if augment is None else augment,
    )
    return data.to(torch.device(device))


def _select_classes(images, labels, classes):
    keep = torch.isin(labels, torch.tensor(classes, dtype=labels.dtype))
    remap = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    return images[keep], remap[labels[keep].long()]


def _subset(images, labels, size, generator, what):
    if size > len(labels):
        raise ValueError(f"{what}={size} is larger than the {len(labels)} images available")
    index = torch.randperm(len(labels), generator=generator)[:size]
    return images[index], labels[index]


# --- Fashion-MNIST -------------------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (plain or gzipped), the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
            raise ValueError("not an unsigned-byte IDX file")
        ndim = raw[3]
        shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (OSError, EOFError, ValueError) as error:
        raise DatasetError(_damaged_message(path, error)) from error


def _damaged_message(path: Path, error: Exception) -> str:
    return (f"the data file {path} is damaged ({type(error).__name__}: {error}). Replace it with a good copy: "
            f"delete it and copy it again from its source (for Fashion-MNIST: sudo apt-get install --reinstall "
            f"dataset-fashion-mnist; for CIFAR: torchvision's extracted folder, or run with --download where there "
            f"is internet access)")


def fashion_mnist_candidates(root: Path) -> list[Path]:
    """Folders searched for the Fashion-MNIST IDX files, in order."""
    return [root / "FashionMNIST" / "raw", root / "fashion-mnist", DEBIAN_FASHION_MNIST]


def _find_idx_folder(folders: list[Path]) -> Path | None:
    for folder in folders:
        if all(_idx_file(folder, stem) is not None for stem in FASHION_MNIST_FILES.values()):
            return folder
    return None


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _fashion_mnist(root: Path, download: bool):
    folder = _find_idx_folder(fashion_mnist_candidates(root))
    if folder is None and download:
        from torchvision.datasets import FashionMNIST

        try:
            FashionMNIST(str(root), train=True, download=True)
        except Exception as error:  # network errors come in many types
            raise DatasetNotFoundError(_missing_message("fashion-mnist", root) + f"\nDownload failed: {error}") from error
        folder = _find_idx_folder(fashion_mnist_candidates(root))
    if folder is None:
        raise DatasetNotFoundError(_missing_message("fashion-mnist", root))
    arrays = {key: read_idx(_idx_file(folder, stem)) for key, stem in FASHION_MNIST_FILES.items()}
    return (
        torch.from_numpy(arrays["train_images"].copy())[:, None],
        torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        torch.from_numpy(arrays["test_images"].copy())[:, None],
        torch.from_numpy(arrays["test_labels"].astype(np.int64)),
    )


# --- CIFAR ---------------------------------------------------------------------------------------


def _cifar(name: str, root: Path, download: bool):
    folder = root / CIFAR_FOLDERS[name]
    train_files, test_files, label_key = _cifar_layout(name)
    if not all((folder / f).is_file() for f in train_files + test_files) and download:
        from torchvision.datasets import CIFAR10, CIFAR100

        try:
            (CIFAR10 if name == "cifar10" else CIFAR100)(str(root), train=True, download=True)
        except Exception as error:
            raise DatasetNotFoundError(_missing_message(name, root) + f"\nDownload failed: {error}") from error
    if not all((folder / f).is_file() for f in train_files + test_files):
        raise DatasetNotFoundError(_missing_message(name, root))
    train_x, train_y = _read_cifar_batches(folder, train_files, label_key)
    test_x, test_y = _read_cifar_batches(folder, test_files, label_key)
    return train_x, train_y, test_x, test_y


def _cifar_layout(name: str):
    if name == "cifar10":
        return [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels"
    return ["train"], ["test"], "fine_labels"


def _read_cifar_batches(folder: Path, files: list[str], label_key: str):
    images, labels = [], []
    for file in files:
        try:
            with open(folder / file, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(batch[label_key])
        except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as error:
            raise DatasetError(_damaged_message(folder / file, error)) from error
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)


def write_fake_cifar(root: str | Path, name: str = "cifar10", per_file: int = 20, seed: int = 0) -> Path:
    """Write a small random data set in torchvision's CIFAR on-disk format (for tests)."""
    folder = Path(root) / CIFAR_FOLDERS[name]
    folder.mkdir(parents=True, exist_ok=True)
    train_files, test_files, label_key = _cifar_layout(name)
    num_classes = DATASETS[name].num_classes
    rng = np.random.default_rng(seed)
    for file in train_files + test_files:
        batch = {
            "data": rng.integers(0, 256, size=(per_file, 3 * 32 * 32), dtype=np.uint8),
            label_key: [int(i % num_classes) for i in range(per_file)],
        }
        with open(folder / file, "wb") as f:
            pickle.dump(batch, f)
    return folder


# --- synthetic -----------------------------------------------------------------------------------


def _synthetic():
    """Ten classes of 16x16 images: a fixed random template per class plus noise."""
    generator = torch.Generator().manual_seed(1234)
    info = DATASETS["synthetic"]
    templates = torch.rand(info.num_classes, 1, info.image_size, info.image_size, generator=generator)

    def sample(count):
        labels = torch.arange(count) % info.num_classes
        noise = torch.rand(count, 1, info.image_size, info.image_size, generator=generator)
        images = (0.6 * templates[labels] + 0.4 * noise) * 255
        return images.round().to(torch.uint8), labels

    train_x, train_y = sample(info.train_images)
    test_x, test_y = sample(SYNTHETIC_TEST)
    return train_x, train_y, test_x, test_y


def _missing_message(name: str, root: Path) -> str:
    if name == "fashion-mnist":
        searched = "\n".join(f"  - {p}" for p in fashion_mnist_candidates(root))
        return (
            f"Fashion-MNIST not found. Searched:\n{searched}\n"
            "Get it in one of these ways:\n"
            "  - install the Debian/Ubuntu package: sudo apt-get install dataset-fashion-mnist\n"
            f"  - put the four IDX files (train-images-idx3-ubyte.gz, ...) in {root / 'fashion-mnist'}\n"
            "  - on a machine with internet access, pass download=True (command line: --download)\n"
            "  - point SPARSITYLIB_DATA at a folder that holds them"
        )
    return (
        f"{name} not found under {root / CIFAR_FOLDERS[name]}.\n"
        "Get it in one of these ways:\n"
        "  - on a machine with internet access, pass download=True (command line: --download)\n"
        f"  - copy torchvision's extracted {CIFAR_FOLDERS[name]}/ folder into {root}\n"
        "  - point SPARSITYLIB_DATA at the folder that holds it"
    )

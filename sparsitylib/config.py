"""One immutable, validated object that holds every setting of a training run.

``RunConfig`` is checked when it is built, so a bad value fails before any data is loaded or any
file is written. Its ``run_id`` (a hash of the settings that affect the result, plus the library
version) names the run in the store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import dataclass

from . import __version__

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("float32", "bfloat16")
# settings added after runs were stored: left out of the run id at the value older runs had, so their ids stay valid
ADDED_LATER = ("gamma_l1", "recycle", "precision", "recycle_init")
# where that value is not today's default: recycling drew PyTorch's default initialization before it could use the network's
BEFORE_IT_EXISTED = {"recycle_init": "pytorch"}


class ConfigError(ValueError):
    """A setting is invalid; the message says which and what is allowed."""


@dataclass(frozen=True)
class RunConfig:
    """Every setting of one training run. All fields have defaults; see the README for presets.

    Data
        dataset: ``fashion-mnist`` | ``cifar10`` | ``cifar100`` | ``synthetic``.
        classes: keep only these class indices (task difficulty); ``None`` = all.
        train_size: seeded random subset of the training set; ``None`` = all.
        test_size: at most this many test images (seeded subset); ``None`` = all.
        augment: random crop + flip; ``None`` = the data set's default (CIFAR on, Fashion-MNIST off).
        normalize: standardize with the training set's per-channel mean and std.
    Model
        model: ``basicnet`` | ``vgg11`` | ``vgg16`` | ``resnet18`` | ``resnet34`` (CIFAR form).
        width: multiplier on every layer's number of filters (BasicNet: 64..512).
        norm: ``batchnorm`` | ``none``.
        activation: ``relu`` | ``leaky_relu`` (slope ``negative_slope``).
    Optimizer and regularizer
        optimizer: ``sgd`` | ``adam`` | ``amsgrad`` | ``adamax`` | ``adagrad`` | ``adadelta`` | ``rmsprop``
            | ``adamw`` (torch.optim.AdamW: decay_mode ``decoupled`` or ``none`` only).
        lr: peak learning rate.
        momentum, nesterov: SGD only.
        decay_mode: ``none`` | ``l2`` (lambda * theta added to the gradient) | ``wd`` (the paper's
            weight decay: theta shrunk by (1 - lambda * s_t) after the step, s_t the schedule's
            multiplier) | ``decoupled`` (torch's AdamW convention: shrunk by (1 - lr_t * lambda)).
        decay: lambda, the regularization strength.
        decay_params: ``all`` (BN gamma/beta too, as in the paper) | ``weights_only``.
        schedule: ``constant`` | ``step`` (times ``step_gamma`` at each of ``step_milestones``,
            fractions of training) | ``cosine``.
        gamma_l1: an L1 penalty on BN's gamma (the sparsity training of Network Slimming, Liu et
            al. 2017; 0 = off). Its subgradient ``gamma_l1 * sign(gamma)`` is added to gamma's
            gradient before the optimizer step, as Torch-Pruning's ``BNScalePruner.regularize`` does.
        recycle: after each epoch's snapshot but the last, re-initialize the filters dead on the
            snapshot's images (``recycle.recycle_dead``: fresh incoming weights, gamma 1 and beta 0, zero
            outgoing weights, optimizer moments reset), as ReDo does for dormant units.
        recycle_init: where recycled filters' incoming weights are drawn from: ``network`` (the
            network's own initialization, He normal fan-out for ours, bias zeroed, as ReDo does) |
            ``pytorch`` (the layer's ``reset_parameters``: what runs stored before this setting did).
    Training
        epochs, batch_size, seed.
        device: ``auto`` (CUDA, then MPS, then CPU) | ``cpu`` | ``cuda`` | ``mps``. Not part of the
            run's identity: the record notes the device that was used.
        precision: ``float32`` (the default) | ``bfloat16``: the training steps' forward and backward
            passes under ``torch.autocast`` in bfloat16 (convolutions and matrix products; the loss in
            float32). Parameters, optimizer state, BatchNorm's running statistics, evaluation and
            every sparsity measurement stay float32 (docs/benchmarks.md: 1.8x faster on an
            avx512_bf16 CPU; notebook 13 tests whether it changes what is measured).
        snapshot_size: training images used for the cheap per-epoch sparsity snapshot.
    """

    dataset: str = "fashion-mnist"
    classes: tuple[int, ...] | None = None
    train_size: int | None = None
    test_size: int | None = None
    augment: bool | None = None
    normalize: bool = True
    model: str = "basicnet"
    width: float = 1.0
    norm: str = "batchnorm"
    activation: str = "relu"
    negative_slope: float = 0.01
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    decay_mode: str = "l2"
    decay: float = 5e-4
    decay_params: str = "all"
    schedule: str = "constant"
    step_milestones: tuple[float, ...] = (0.5, 0.75)
    step_gamma: float = 0.1
    gamma_l1: float = 0.0
    recycle: bool = False
    recycle_init: str = "network"
    epochs: int = 8
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"
    precision: str = "float32"
    snapshot_size: int = 1024

    def __post_init__(self):
        for name in ("classes", "step_milestones"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        self._validate()

    def _validate(self):
        # here, not at import: they load torch, which `python -m sparsitylib --help` need not wait for
        from .data import DATASETS
        from .models import ACTIVATIONS, MODELS, NORMS, RESNETS, base_widths, scaled_widths
        from .optim import DECAY_MODES, DECAY_PARAMS, OPTIMIZERS, SCHEDULES, SELF_DECAYING

        _choice("dataset", self.dataset, DATASETS)
        _choice("model", self.model, MODELS)
        _choice("norm", self.norm, NORMS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("decay_mode", self.decay_mode, DECAY_MODES)
        _choice("decay_params", self.decay_params, DECAY_PARAMS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("device", self.device, DEVICES)
        _choice("precision", self.precision, PRECISIONS)
        from .recycle import RECYCLE_INITS  # here, not at import: recycling pulls in Torch-Pruning

        _choice("recycle_init", self.recycle_init, RECYCLE_INITS)
        for name in ("lr", "width"):
            _positive_number(name, getattr(self, name))
        for name in ("epochs", "batch_size", "snapshot_size"):
            _positive_int(name, getattr(self, name))
        for name in ("train_size", "test_size"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        _non_negative("decay", self.decay)
        _non_negative("gamma_l1", self.gamma_l1)
        if not isinstance(self.recycle, bool):
            raise ConfigError(f"recycle must be true or false, got {self.recycle!r}")
        if self.model in RESNETS and (self.norm != "batchnorm" or self.activation != "relu"):
            raise ConfigError(f"{self.model} is built with BatchNorm and ReLU only; use model=basicnet or vgg16 for "
                              f"norm={self.norm} activation={self.activation}")
        if self.gamma_l1 and self.norm != "batchnorm":
            raise ConfigError("gamma_l1 > 0 needs norm=batchnorm: it penalizes BatchNorm's gamma")
        _non_negative("negative_slope", self.negative_slope)
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.optimizer in SELF_DECAYING and self.decay_mode in ("l2", "wd"):
            raise ConfigError(f"optimizer={self.optimizer} decays the weights itself (torch.optim.AdamW's decoupled "
                              f"decay); use decay_mode=decoupled (its weight_decay) or none, or optimizer=adam with "
                              f"decay_mode={self.decay_mode}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ConfigError("nesterov=True needs optimizer=sgd with momentum > 0")
        if not 0 < self.step_gamma <= 1:
            raise ConfigError(f"step_gamma must be in (0, 1], got {self.step_gamma!r}")
        if not all(isinstance(m, (int, float)) and 0 < m < 1 for m in self.step_milestones):
            raise ConfigError(f"step_milestones are fractions of training in (0, 1), got {self.step_milestones!r}")
        widths = scaled_widths(self.model, self.width)
        if min(widths) < 1:
            raise ConfigError(
                f"width={self.width} leaves a layer of {self.model} with zero channels (widths {widths}); "
                f"use width >= {1 / (2 * min(base_widths(self.model))):.4g}"
            )
        if self.classes is not None:
            n = DATASETS[self.dataset].num_classes
            if len(self.classes) < 2:
                raise ConfigError(f"classes needs at least two classes, got {list(self.classes)}")
            if any(not isinstance(c, int) or not 0 <= c < n for c in self.classes):
                raise ConfigError(f"classes must be integers in 0..{n - 1} for {self.dataset}, got {list(self.classes)}")
            if len(set(self.classes)) != len(self.classes):
                raise ConfigError(f"classes has duplicates: {list(self.classes)}")
        available = DATASETS[self.dataset].train_images * self.num_classes // DATASETS[self.dataset].num_classes
        if self.train_size is not None and self.train_size > available:
            raise ConfigError(f"train_size={self.train_size} is more than the {available} training images of "
                              f"{self.dataset}" + (f" in classes {list(self.classes)}" if self.classes else ""))

    # --- identity -------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    def identity(self) -> dict:
        """The settings that determine the result. Settings that cannot matter for this run
        (momentum without SGD, decay without a regularizer, ...) take their defaults, so two
        configs that train the same network share a run id. ``device`` is left out."""
        values = self.to_dict()
        ignored = {"device"}
        if self.optimizer != "sgd":
            ignored |= {"momentum", "nesterov"}
        if self.decay_mode == "none":
            ignored |= {"decay", "decay_params"}
        if self.schedule != "step":
            ignored |= {"step_milestones", "step_gamma"}
        if self.activation != "leaky_relu":
            ignored |= {"negative_slope"}
        if not self.recycle:
            ignored |= {"recycle_init"}
        for name in ignored - {"device"}:
            default = older_value(name)
            values[name] = list(default) if isinstance(default, tuple) else default
        del values["device"]
        for name in ADDED_LATER:  # settings added after runs were stored: absent at the value older runs had
            if values[name] == older_value(name):
                del values[name]
        return values

    @property
    def run_id(self) -> str:
        payload = json.dumps({"config": self.identity(), "version": __version__}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def replace(self, **changes) -> "RunConfig":
        return from_dict({**self.to_dict(), **changes})

    @property
    def num_classes(self) -> int:
        """The number of classes this run trains on."""
        from .data import DATASETS

        return len(self.classes) if self.classes is not None else DATASETS[self.dataset].num_classes


FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def older_value(name: str):
    """The value of setting ``name`` in a run stored before the setting existed (its default, but
    for ``BEFORE_IT_EXISTED``)."""
    return BEFORE_IT_EXISTED.get(name, FIELDS[name].default)


def from_record(values: dict) -> RunConfig:
    """The config of a stored run record: a setting the record lacks was added later, and the run
    was trained at its older value (``older_value``)."""
    return from_dict({**{name: older_value(name) for name in ADDED_LATER}, **values})


def from_dict(values: dict) -> RunConfig:
    """Build a config, rejecting unknown keys with the list of known ones."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown}; known keys: {sorted(FIELDS)}")
    try:
        return RunConfig(**values)
    except TypeError as error:  # e.g. a comparison between str and int inside validation
        raise ConfigError(f"invalid config value: {error}") from error


def parse_value(key: str, text: str):
    """Turn ``text`` from the command line into the type of config field ``key``."""
    if key not in FIELDS:
        raise ConfigError(f"unknown config key {key!r}; known keys: {sorted(FIELDS)}")
    hint = typing.get_type_hints(RunConfig)[key]
    args = typing.get_args(hint)
    if text.lower() in ("none", "null") and type(None) in args:
        return None
    base = next((a for a in args if a is not type(None)), hint)
    origin = typing.get_origin(base)
    try:
        if origin is tuple:
            element = typing.get_args(base)[0]
            return tuple(element(part) for part in text.split(",") if part.strip())
        if base is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if base is int:
            return int(text)
        if base is float:
            return float(text)
        return text
    except ValueError:
        raise ConfigError(f"{key}={text!r} is not a valid {getattr(base, '__name__', base)}") from None


def _choice(name, value, allowed):
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; choose one of {sorted(allowed)}")


def _positive_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _non_negative(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}")

"""Named sets of defaults: ``smoke`` (tests, CI), ``quick`` (a 2-core CPU), ``long`` (the quick
data and network trained 2.5 times longer with a step schedule, at the optimizers' usual
learning rates), ``paper`` (a GPU).

A preset fills every setting you do not give. The learning rate, when not given, comes from the
preset's table for the chosen optimizer, since one learning rate does not suit SGD and Adam alike.
"""

from __future__ import annotations

from .config import ConfigError, RunConfig, from_dict

# Learning rates at the CPU presets. Adam at 1e-2 shows the phenomenon within 8 short epochs
# (REFERENCE.md: 24% dead filters), where 1e-3 shows none; the other adaptive methods get ten
# times their torch default likewise, SGD (momentum 0.9) the usual 0.1.
CPU_LEARNING_RATES = {
    "sgd": 0.1,
    "adam": 1e-2,
    "amsgrad": 1e-2,
    "adamax": 2e-2,
    "adagrad": 1e-1,
    "adadelta": 1.0,
    "rmsprop": 1e-3,
}
# At GPU scale, the optimizers' usual learning rates with a step schedule.
PAPER_LEARNING_RATES = {
    "sgd": 0.1,
    "adam": 1e-3,
    "amsgrad": 1e-3,
    "adamax": 2e-3,
    "adagrad": 1e-2,
    "adadelta": 1.0,
    "rmsprop": 1e-4,
}

PRESETS: dict[str, dict] = {
    # seconds per run on a CPU: a small slice of Fashion-MNIST, a thin BasicNet
    "smoke": dict(dataset="fashion-mnist", train_size=1000, test_size=1000, width=0.125, epochs=2,
                  batch_size=64, snapshot_size=256, decay_mode="l2", decay=5e-4),
    # about half a minute per run on a 2-core CPU; see README "The quick regime" for its numbers
    "quick": dict(dataset="fashion-mnist", train_size=10000, test_size=5000, width=0.25, epochs=8,
                  batch_size=64, decay_mode="l2", decay=5e-4),
    # quick's data and network, 20 epochs (3,140 steps, 2.5x quick) with the learning rate divided by
    # 10 at 50% and 75% of training, as the paper schedules it; learning rates: the usual ones
    "long": dict(dataset="fashion-mnist", train_size=10000, test_size=5000, width=0.25, epochs=20,
                 batch_size=64, schedule="step", step_milestones=(0.5, 0.75), step_gamma=0.1,
                 decay_mode="l2", decay=5e-4),
    # our reconstruction of the paper's scale: full-width BasicNet on CIFAR-10, GPU hours
    "paper": dict(dataset="cifar10", width=1.0, epochs=100, batch_size=40, schedule="step",
                  step_milestones=(0.5, 0.75), decay_mode="l2", decay=5e-4),
}
LEARNING_RATES = {"smoke": CPU_LEARNING_RATES, "quick": CPU_LEARNING_RATES, "long": PAPER_LEARNING_RATES,
                  "paper": PAPER_LEARNING_RATES}
# The longer-training version of each preset, for notebook 10 (smoke stays small for CI).
LONG_VERSION = {"smoke": "smoke", "quick": "long", "long": "long", "paper": "paper"}


def preset_config(preset: str | None = None, **settings) -> RunConfig:
    """A ``RunConfig`` from a preset's defaults, overridden by ``settings``.

    >>> preset_config("quick", optimizer="sgd").lr
    0.1
    """
    if preset is None:
        return from_dict(settings)
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    values = {**PRESETS[preset], **settings}
    if "lr" not in settings:
        optimizer = values.get("optimizer", RunConfig.optimizer)
        if optimizer in LEARNING_RATES[preset]:
            values["lr"] = LEARNING_RATES[preset][optimizer]
    return from_dict(values)


# The notebooks a preset's report runs (``reproduce``), each with parameters that override the
# notebook's defaults. A preset not listed runs every notebook with its defaults.
REPORTS: dict[str, dict[str, dict]] = {}

"""Named sets of defaults: ``smoke`` (tests, CI), ``quick`` (a 2-core CPU), ``long`` (the quick
data and network at the optimizers' usual learning rates, annealed after lr x steps 5: the record
of a design that stopped some arms before their onset), ``usual`` (the usual rates trained to lr x
steps 11.3 before the first drop, past every screened arm's onset), ``paper`` (a GPU).

A preset fills every setting you do not give. The learning rate, when not given, comes from the
preset's table for the chosen optimizer, since one learning rate does not suit SGD and Adam alike.
"""

from __future__ import annotations

from .config import ConfigError, RunConfig, from_dict

# Learning rates at the CPU presets. Adam at 1e-2 shows the phenomenon within 8 short epochs
# (REFERENCE.md: 24% dead filters), where 1e-3 shows none; AMSGrad, AdaMax and AdaGrad get ten
# times their torch default likewise; AdaDelta gets its default (1.0) and RMSprop a tenth of its
# default (1e-3); SGD (momentum 0.9) the usual 0.1.
CPU_LEARNING_RATES = {
    "sgd": 0.1,
    "adam": 1e-2,
    "amsgrad": 1e-2,
    "adamax": 2e-2,
    "adagrad": 1e-1,
    "adadelta": 1.0,
    "rmsprop": 1e-3,
    "adamw": 1e-2,
}
# The optimizers' usual learning rates: torch's defaults for the adaptive methods, 0.1 for SGD
# with momentum 0.9.
USUAL_LEARNING_RATES = {
    "sgd": 0.1,
    "adam": 1e-3,
    "amsgrad": 1e-3,
    "adamax": 2e-3,
    "adagrad": 1e-2,
    "adadelta": 1.0,
    "rmsprop": 1e-2,
    "adamw": 1e-3,
}
# At GPU scale, the usual learning rates with a step schedule (RMSprop at 1e-4, our reconstruction).
PAPER_LEARNING_RATES = {**USUAL_LEARNING_RATES, "rmsprop": 1e-4}

PRESETS: dict[str, dict] = {
    # seconds per run on a CPU: a small slice of Fashion-MNIST, a thin BasicNet
    "smoke": dict(dataset="fashion-mnist", train_size=1000, test_size=1000, width=0.125, epochs=2,
                  batch_size=64, snapshot_size=256, decay_mode="l2", decay=5e-4),
    # the first five minutes: quick's data and network for 6 epochs (942 steps, where Adam+L2 at 1e-2
    # has already lost about a sixth of its filters), a smaller test set; notebook 01's three
    # headline runs, one seed each (see README "The first five minutes")
    "demo": dict(dataset="fashion-mnist", train_size=10000, test_size=2000, width=0.25, epochs=6,
                 batch_size=64, decay_mode="l2", decay=5e-4),
    # about half a minute per run on a 2-core CPU; see README "The quick regime" for its numbers
    "quick": dict(dataset="fashion-mnist", train_size=10000, test_size=5000, width=0.25, epochs=8,
                  batch_size=64, decay_mode="l2", decay=5e-4),
    # quick's data and network at the usual learning rates, chosen from the pilot (notebook 10: Adam+L2
    # at 1e-3, constant rate, first dead filter at epoch 24, 8% dead at 40, 20% at 80): 40 epochs
    # (6,280 steps, 5x quick), past the onset; the rate is divided by 10 at 80% and 90% of training
    # (ends at 1% of it), late enough that the high-rate phase (32 epochs) passes the onset
    "long": dict(dataset="fashion-mnist", train_size=10000, test_size=5000, width=0.25, epochs=40,
                 batch_size=64, schedule="step", step_milestones=(0.8, 0.9), step_gamma=0.1,
                 decay_mode="l2", decay=5e-4),
    # the usual rates on the clock of the phenomenon (issue 24, chosen from notebook 10's screen): quick's
    # data and network, 80 epochs at batch 64, the rate divided by 10 at 90% and 95% of training, so the
    # high-rate phase gives lr x steps 11.3 at Adam's 1e-3 (72 epochs), past every screened arm's onset
    # (the latest: Adam+WD at 6.9 by activation, 10.7 by |gamma|); bfloat16 (notebook 13: equivalent
    # for Adam+L2 in `long`; this report checks it again for Adam+L2 and SGD+L2). See docs/configuration.md.
    "usual": dict(dataset="fashion-mnist", train_size=10000, test_size=5000, width=0.25, epochs=80,
                  batch_size=64, schedule="step", step_milestones=(0.9, 0.95), step_gamma=0.1,
                  decay_mode="l2", decay=5e-4, precision="bfloat16"),
    # our reconstruction of the paper's scale: full-width BasicNet on CIFAR-10, GPU hours
    "paper": dict(dataset="cifar10", width=1.0, epochs=100, batch_size=40, schedule="step",
                  step_milestones=(0.5, 0.75), decay_mode="l2", decay=5e-4),
}
LEARNING_RATES = {"smoke": CPU_LEARNING_RATES, "demo": CPU_LEARNING_RATES, "quick": CPU_LEARNING_RATES,
                  "long": USUAL_LEARNING_RATES, "usual": USUAL_LEARNING_RATES, "paper": PAPER_LEARNING_RATES}


# Settings an optimizer brings when they are not given: AdamW as users train with it, torch's own
# decoupled decay at its usual strength (torch.optim.AdamW's default weight_decay).
OPTIMIZER_DEFAULTS = {"adamw": {"decay_mode": "decoupled", "decay": 1e-2}}


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
    optimizer = values.get("optimizer", RunConfig.optimizer)
    values.update({k: v for k, v in OPTIMIZER_DEFAULTS.get(optimizer, {}).items() if k not in settings})
    if "lr" not in settings:
        optimizer = values.get("optimizer", RunConfig.optimizer)
        if optimizer in LEARNING_RATES[preset]:
            values["lr"] = LEARNING_RATES[preset][optimizer]
    return from_dict(values)


# The notebooks a preset's report runs (``reproduce``), each with parameters that override the
# notebook's defaults. A preset not listed runs every notebook with its defaults.
# ``long`` spends its runs on the claims they decide (48 runs of 5 quick-run equivalents each): the
# headline arms of notebook 01 (Adam+L2, SGD+L2, Adam alone, Adam+WD) with 5 seeds, so that its
# primary claims reach the family's level (5 against 5: p 1/252, below 0.05/7); the other adaptive
# methods with L2 with 3 seeds, shown as the paper's Table 1 row (secondary: described); SGD is
# run with L2 only (SGD+L2 is the comparison; SGD+WD at 3 seeds could decide nothing); notebook 08
# runs only the BatchNorm-parameter variant (5 seeds against a baseline of 8, whose early
# selectivity is tested over its 8 runs: p down to 1/256); notebook 09 prunes BasicNet only, 5
# seeds a method; notebook 13 checks bfloat16 against float32 for Adam+L2 (8 seeds, the runs of 01
# and 08 as its float32 arm). Notebooks 02 and 03 reuse notebook 01's runs (03 with the 5 seeds of Adam+L2,
# Adam+WD and SGD+L2); 04-07, 10 and 11 are quick-regime questions.
# ``usual`` is being built notebook by notebook (issue 24); its plan holds all 13 notebooks (so the
# family, m = 10, is fixed before any is rendered; 186 runs, scripts/train_plan.py): notebook 01's plan
# of ``long`` with AdamW (torch's decoupled decay at 0.01) beside it, notebooks 02 and 03 on those
# runs, notebook 08's three variants (5 seeds each against a baseline of 8), notebook 09 at
# a sparsity where "at par" means something (RMSprop+L2 at its usual rate: 78% of the filters dead in
# `long`; Adam+L2 5e-4 left 19% in usual's first run, and L2 2e-3 25% at lr x steps 11 in the screen)
# and notebook 13's check of bfloat16 for both optimizers it trains most.
REPORTS: dict[str, dict[str, dict]] = {
    # notebook 01's headline comparison only: Adam+L2, Adam without regularization, SGD+L2, one run each
    "demo": {
        "01_optimizer_regularizer": {"seeds": [0], "compared_seeds": [0], "other_seeds": [0],
                                     "optimizers": ["adam", "sgd"], "unregularized": ["adam"], "weight_decay": []},
    },
    "long": {
        "01_optimizer_regularizer": {"compared_seeds": [0, 1, 2], "unregularized": ["adam"],
                                     "weight_decay": ["adam"], "compared_to_sgd": ["adam"]},
        "02_where_sparsity_lives": {},
        "03_batchnorm_dynamics": {},
        "08_mechanism": {"seeds": [0, 1, 2, 3, 4], "baseline_seeds": [0, 1, 2, 3, 4, 5, 6, 7],
                         "variants": ["bn_params_not_decayed"]},
        "09_pruning": {"models": ["basicnet"]},
        "13_precision": {"optimizers": ["adam"]},
    },
    "usual": {
        "01_optimizer_regularizer": {"compared_seeds": [0, 1, 2], "unregularized": ["adam"],
                                     "weight_decay": ["adam"], "compared_to_sgd": ["adam"], "decoupled": ["adamw"]},
        "02_where_sparsity_lives": {},
        "03_batchnorm_dynamics": {},
        # every lambda and rate gives at least usual's lr x steps 11.3 before the drop
        "04_regularization_and_lr": {"decays": [1e-4, 5e-4, 2e-3], "learning_rates": [1e-3, 2.5e-3, 5e-3]},
        # batch 128 at 80 epochs would give lr x steps 5.7, short of the reach: 16, 32, 64 give 45, 23, 11.3
        "05_batch_size": {"batch_sizes": [16, 32, 64]},
        "06_task_difficulty": {},
        # every variant (leaky ReLU, no BatchNorm, BatchNorm's parameters not decayed), 5 seeds each
        "08_mechanism": {"seeds": [0, 1, 2, 3, 4], "baseline_seeds": [0, 1, 2, 3, 4, 5, 6, 7]},
        "09_pruning": {"models": ["basicnet"], "optimizer": "rmsprop"},
        # lr 5e-3 x 16 epochs = 2.5e-3 x 32 = 1e-3 x 80 (01's Adam+L2); the pilot and the screen are
        # quick's (figures/quick); the clock to lr x steps 60 at batch 32
        "10_training_length": {"design_learning_rates": [5e-3, 2.5e-3, 1e-3], "reference_epochs": 16,
                               "pilot_epochs": 0, "screen_epochs": 0, "saturation_epochs": 200},
        "07_capacity_architecture": {},  # widths 0.125-0.5 (3 seeds); VGG-16 against BasicNet (5 seeds)
        "11_resnets": {},  # ResNet-18 at width 0.125, Adam+L2, Adam alone, SGD+L2, 5 seeds
        "12_recycling": {},  # 5 recycled runs; Adam alone, Adam+L2 and SGD+L2 are notebook 01's
        "13_precision": {"optimizers": ["adam", "sgd"]},
    },
}

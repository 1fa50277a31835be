import pytest

from sparsitylib.config import ConfigError, RunConfig, from_dict, parse_value
from sparsitylib.presets import preset_config


@pytest.mark.parametrize("settings,message", [
    ({"optimizer": "lion"}, "unknown optimizer 'lion'; choose one of"),
    ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
    ({"model": "resnet"}, "unknown model 'resnet'"),
    ({"decay_mode": "l1"}, "unknown decay_mode 'l1'"),
    ({"lr": 0.0}, "lr must be a positive number, got 0.0"),
    ({"lr": -1e-3}, "lr must be a positive number"),
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"epochs": 2.5}, "epochs must be a positive integer"),
    ({"width": 0.001}, "width=0.001 leaves a layer of basicnet with zero channels"),
    ({"classes": (0, 10)}, "classes must be integers in 0..9 for fashion-mnist"),
    ({"classes": (3,)}, "at least two classes"),
    ({"classes": (1, 1)}, "duplicates"),
    ({"decay": -1.0}, "decay must be a non-negative number"),
    ({"nesterov": True, "optimizer": "adam"}, "nesterov=True needs optimizer=sgd"),
    ({"train_size": 0}, "train_size must be a positive integer"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"schedule": "step", "step_milestones": (1.5,)}, "step_milestones are fractions"),
])
def test_invalid_settings_fail_with_a_clear_message(settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        RunConfig(**settings)


def test_unknown_keys_are_listed():
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['learning_rate'\]"):
        from_dict({"learning_rate": 0.1})


def test_config_is_immutable():
    with pytest.raises(AttributeError):
        RunConfig().lr = 1.0


def test_run_id_ignores_settings_that_cannot_matter():
    base = RunConfig(optimizer="adam")
    assert base.replace(momentum=0.5).run_id == base.run_id  # momentum is SGD's
    assert base.replace(device="cpu").run_id == base.run_id  # the device is recorded, not hashed
    assert RunConfig(decay_mode="none", decay=1.0).run_id == RunConfig(decay_mode="none", decay=0.1).run_id
    assert base.replace(lr=2e-3).run_id != base.run_id
    assert base.replace(optimizer="sgd").replace(momentum=0.5).run_id != base.replace(optimizer="sgd").run_id


def test_lists_become_tuples_so_configs_stay_hashable():
    config = from_dict({"classes": [0, 1], "step_milestones": [0.3]})
    assert config.classes == (0, 1) and config.step_milestones == (0.3,)
    assert from_dict(config.to_dict()) == config


def test_command_line_values_are_typed():
    assert parse_value("lr", "1e-2") == 0.01
    assert parse_value("epochs", "3") == 3
    assert parse_value("classes", "0,3,5") == (0, 3, 5)
    assert parse_value("train_size", "none") is None
    assert parse_value("augment", "true") is True
    assert parse_value("optimizer", "adam") == "adam"
    with pytest.raises(ConfigError, match="epochs='many' is not a valid int"):
        parse_value("epochs", "many")
    with pytest.raises(ConfigError, match="unknown config key 'speed'"):
        parse_value("speed", "1")


def test_presets_fill_learning_rates_per_optimizer():
    assert preset_config("quick", optimizer="sgd").lr == 0.1
    assert preset_config("quick", optimizer="adam").lr == 1e-2
    assert preset_config("quick", optimizer="adam", lr=3e-3).lr == 3e-3
    quick = preset_config("quick")
    assert (quick.width, quick.train_size, quick.epochs, quick.dataset) == (0.25, 10000, 8, "fashion-mnist")
    assert preset_config("paper").dataset == "cifar10"
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset_config("huge")


def test_settings_added_later_leave_older_run_ids_unchanged():
    config = RunConfig(optimizer="sgd")
    assert "gamma_l1" not in config.identity()
    assert config.replace(gamma_l1=1e-4).run_id != config.run_id
    with pytest.raises(ConfigError, match="gamma_l1 > 0 needs norm=batchnorm"):
        RunConfig(gamma_l1=1e-4, norm="none")


def test_adamw_takes_its_own_decoupled_decay_and_a_preset_gives_it_torchs_usual_strength():
    from sparsitylib.presets import preset_config

    with pytest.raises(ConfigError, match="optimizer=adamw decays the weights itself .* use decay_mode=decoupled"):
        RunConfig(optimizer="adamw", decay_mode="l2")
    config = preset_config("long", optimizer="adamw")
    assert (config.decay_mode, config.decay, config.lr) == ("decoupled", 1e-2, 1e-3)
    assert preset_config("quick", optimizer="adamw", decay=1e-3).decay == 1e-3  # given settings win
    assert preset_config("quick", optimizer="adamw", decay_mode="none").decay_mode == "none"


def test_precision_is_part_of_the_run_id_only_when_not_float32():
    config = RunConfig(optimizer="sgd")
    assert config.precision == "float32" and "precision" not in config.identity()
    assert config.replace(precision="bfloat16").identity()["precision"] == "bfloat16"
    assert config.replace(precision="bfloat16").run_id != config.run_id
    with pytest.raises(ConfigError, match=r"unknown precision 'float16'; choose one of \['bfloat16', 'float32'\]"):
        RunConfig(precision="float16")


def test_train_size_is_checked_against_the_selected_classes():
    assert RunConfig(classes=(0, 1), train_size=12000).train_size == 12000
    with pytest.raises(ConfigError, match=r"train_size=20000 is more than the 12000 training images of fashion-mnist in classes \[0, 1\]"):
        RunConfig(classes=(0, 1), train_size=20000)


def test_the_long_preset_trains_past_the_onset_at_the_usual_learning_rates_and_anneals_to_one_percent():
    from sparsitylib.optim import cumulative_lr
    from sparsitylib.presets import USUAL_LEARNING_RATES, preset_config

    quick, long = preset_config("quick", optimizer="adam"), preset_config("long", optimizer="adam")
    assert long.lr == 1e-3 and quick.lr == 1e-2 and preset_config("long", optimizer="sgd").lr == 0.1
    assert preset_config("long", optimizer="rmsprop").lr == USUAL_LEARNING_RATES["rmsprop"] == 1e-2  # torch's default
    assert (long.train_size, long.batch_size, long.width) == (quick.train_size, quick.batch_size, quick.width)
    assert long.schedule == "step" and long.step_gamma ** len(long.step_milestones) <= 0.01 + 1e-12
    # the high-rate phase reaches past the pilot's onset (first dead filter at epoch 24)
    assert long.step_milestones[0] * long.epochs > 24
    steps = long.epochs * 157
    high = cumulative_lr(long.lr, long.schedule, steps, int(long.step_milestones[0] * steps), long.step_milestones,
                         long.step_gamma)
    assert high == pytest.approx(long.lr * 0.8 * steps)


def test_wd_is_a_decay_mode_with_its_own_run_id():
    from sparsitylib.presets import preset_config

    ids = {mode: preset_config("quick", decay_mode=mode).run_id for mode in ("l2", "wd", "decoupled")}
    assert len(set(ids.values())) == 3

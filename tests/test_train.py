"""Short training runs on synthetic data (seconds) and on a real Fashion-MNIST subset."""

import pytest
import torch

from sparsitylib import train as train_module
from sparsitylib.presets import preset_config
from sparsitylib.sparsity import measure_sparsity
from sparsitylib.train import load_config_data, train

SYNTHETIC = dict(dataset="synthetic", width=0.125, epochs=2, batch_size=50, train_size=500, test_size=200,
                 snapshot_size=64, device="cpu")


def without_timing(record):
    environment = {k: v for k, v in record["environment"].items() if k != "duration_s"}
    return {**record, "environment": environment}


def test_training_learns_and_records_everything():
    run = train(preset_config(None, **SYNTHETIC, optimizer="adam", lr=1e-2), quiet=True)
    record = run.record
    assert record["status"] == "completed" and record["failure_reason"] is None
    assert record["metrics"]["test_error"] < 0.5  # ten classes: chance is 0.9
    assert [row["epoch"] for row in record["history"]] == [1, 2]
    assert record["history"][1]["train_loss"] < record["history"][0]["train_loss"]
    assert len(record["history"][0]["dead_per_layer"]) == 7 and len(record["history"][0]["gamma_quantiles"]) == 7
    assert len(record["filters"]["layer"]) == record["metrics"]["filters"] == sum(record["model_spec"]["widths"])
    assert record["environment"]["device"] == "cpu" and record["environment"]["torch"]
    assert record["metrics"]["steps"] == 2 * 10 and record["metrics"]["test_images"] == 200


def test_per_epoch_test_error_uses_the_first_test_images_and_the_final_one_all(monkeypatch):
    import sparsitylib.train

    monkeypatch.setattr(sparsitylib.train, "HISTORY_TEST_IMAGES", 50)
    run = train(preset_config(None, **{**SYNTHETIC, "epochs": 1}, optimizer="adam", lr=1e-2), quiet=True)
    data = sparsitylib.train.load_config_data(preset_config(None, **{**SYNTHETIC, "epochs": 1}))
    model = run.model.eval()
    assert run.record["history"][0]["test_error"] == sparsitylib.train.evaluate(model, data.test_images[:50],
                                                                                 data.test_labels[:50])
    assert run.record["metrics"]["test_error"] == sparsitylib.train.evaluate(model, data.test_images, data.test_labels)
    assert run.record["metrics"]["history_test_images"] == 50


def test_divergence_is_caught_in_the_first_steps_not_at_the_next_progress_check():
    # 10 steps an epoch; the loss is NaN from the first steps on: caught by step 5, not at step 10 or 20
    config = preset_config(None, **SYNTHETIC, optimizer="sgd", lr=1e12, decay_mode="none", norm="none")
    record = train(config, quiet=True).record
    assert record["status"] == "failed" and "epoch 1, step" in record["failure_reason"]
    assert int(record["failure_reason"].rsplit("step ", 1)[1]) <= 5


def test_same_config_gives_identical_records():
    config = preset_config(None, **{**SYNTHETIC, "epochs": 1}, optimizer="sgd", lr=0.05, decay_mode="decoupled")
    first, second = train(config, quiet=True), train(config, quiet=True)
    assert without_timing(first.record) == without_timing(second.record)


def test_a_diverging_run_is_recorded_as_failed_not_raised():
    config = preset_config(None, **SYNTHETIC, optimizer="sgd", lr=1e12, decay_mode="none", norm="none")
    record = train(config, quiet=True).record
    assert record["status"] == "failed"
    assert "training loss became" in record["failure_reason"] and "epoch 1" in record["failure_reason"]
    assert record["metrics"] == {}


class Killed(Exception):
    pass


def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_record(tmp_path):
    config = preset_config(None, **{**SYNTHETIC, "epochs": 3}, optimizer="adam", lr=1e-2, schedule="cosine")
    uninterrupted = train(config, quiet=True).record

    def kill_after_first_epoch(row):
        if row["epoch"] == 1:
            raise Killed

    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(Killed):
        train(config, checkpoint=checkpoint, quiet=True, on_epoch_end=kill_after_first_epoch)
    assert checkpoint.exists()
    seen = []
    resumed = train(config, checkpoint=checkpoint, quiet=True, on_epoch_end=seen.append).record
    assert [row["epoch"] for row in seen] == [2, 3]  # epoch 1 was not trained again
    assert without_timing(resumed) == without_timing(uninterrupted)


def test_a_smoke_run_on_real_fashion_mnist_learns_and_measures_every_filter(fashion_mnist_available):
    """A real-data smoke run: trains, beats chance, and measures every filter."""
    record = train(preset_config("smoke", optimizer="adam", device="cpu"), quiet=True).record
    assert record["status"] == "completed"
    assert record["metrics"]["test_error"] < 0.5
    assert record["metrics"]["filters"] == sum(record["model_spec"]["widths"]) == 232


def test_a_bfloat16_run_trains_under_autocast_and_records_and_measures_in_float32(monkeypatch):
    config = preset_config(None, **SYNTHETIC, optimizer="adam", lr=1e-2, precision="bfloat16")
    forward_dtypes, measured_under_autocast = set(), []
    measure = train_module.measure_sparsity

    def measure_and_check(model, images, *args, **kwargs):
        measured_under_autocast.append(torch.is_autocast_enabled("cpu"))
        return measure(model, images, *args, **kwargs)

    monkeypatch.setattr(train_module, "measure_sparsity", measure_and_check)
    original_epoch = train_module.train_epoch

    def epoch_with_hook(model, *args, **kwargs):
        first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        handle = first_conv.register_forward_hook(lambda module, inputs, output: forward_dtypes.add(output.dtype))
        try:
            return original_epoch(model, *args, **kwargs)
        finally:
            handle.remove()

    monkeypatch.setattr(train_module, "train_epoch", epoch_with_hook)
    optimizers = []
    build = train_module.build_optimizer
    monkeypatch.setattr(train_module, "build_optimizer", lambda *a, **k: optimizers.append(build(*a, **k)) or optimizers[-1])
    run = train(config, quiet=True)
    record = run.record
    assert forward_dtypes == {torch.bfloat16}  # the training steps ran in bfloat16
    assert record["config"]["precision"] == "bfloat16" and record["run_id"] == config.run_id
    assert record["run_id"] != config.replace(precision="float32").run_id
    assert record["status"] == "completed" and record["metrics"]["test_error"] < 0.5
    assert measured_under_autocast == [False]
    state = list(run.model.parameters()) + list(run.model.buffers())
    assert all(t.dtype in (torch.float32, torch.int64) for t in state)  # parameters and BN statistics stay float32
    moments = [v for s in optimizers[0].state.values() for v in s.values() if torch.is_tensor(v)]
    assert moments and all(v.dtype == torch.float32 for v in moments)  # and the optimizer's state
    data = load_config_data(config)
    again = measure_sparsity(run.model, data.train_images)  # float32, outside any autocast
    assert again.filters.to_dict(orient="list") == record["filters"]

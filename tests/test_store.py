import json
import multiprocessing
import os
import warnings

import numpy as np
import pytest
import torch

import sparsitylib.train
from sparsitylib.presets import preset_config
from sparsitylib.store import CorruptRunWarning, RunStore, RunStoreError, load_runs

TINY = dict(dataset="synthetic", width=0.125, epochs=1, batch_size=50, train_size=200, test_size=100,
            snapshot_size=32, device="cpu", optimizer="adam", lr=1e-2)


def tiny(**changes):
    return preset_config(None, **{**TINY, **changes})


def test_a_stored_run_is_returned_without_training(isolated_store, monkeypatch):
    store = RunStore()
    first = store.run(tiny(), quiet=True)
    assert first["cached"] is False and (isolated_store / first["run_id"] / "record.json").is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("a stored run was trained again")

    monkeypatch.setattr(sparsitylib.train, "train", no_training)
    second = store.run(tiny(), quiet=True)
    assert second["cached"] is True
    assert {**second, "cached": False} == json.loads(json.dumps(first))
    assert store.run(tiny(device="auto"), quiet=True)["cached"] is True  # the device is not part of the id


def test_force_retrains_and_moves_the_old_run_aside(isolated_store):
    store = RunStore()
    run_id = store.run(tiny(), quiet=True)["run_id"]
    again = store.run(tiny(), quiet=True, force=True)
    assert again["cached"] is False and again["run_id"] == run_id
    assert len(list((isolated_store / ".trash").iterdir())) == 1


def test_weights_load_with_weights_only_and_reproduce_the_test_error():
    store = RunStore()
    record = store.run(tiny(), quiet=True)
    model = store.load_model(record["run_id"])
    data = sparsitylib.train.load_config_data(tiny())
    assert sparsitylib.train.evaluate(model, data.test_images, data.test_labels) == record["metrics"]["test_error"]


def test_a_crash_while_saving_leaves_nothing_that_looks_complete(isolated_store, monkeypatch):
    store = RunStore()
    config = tiny()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("sparsitylib.store.torch.save", crash)
    with pytest.raises(OSError, match="disk full"):
        store.run(config, quiet=True)
    assert not (isolated_store / config.run_id).exists()
    assert store.get(config.run_id) is None and store.run_ids() == []
    monkeypatch.undo()
    assert store.run(config, quiet=True)["cached"] is False


@pytest.mark.parametrize("damage", ["truncate", "wrong_id", "no_weights", "null_record", "truncated_weights"])
def test_a_corrupt_run_is_warned_about_once_moved_aside_and_recomputed(isolated_store, damage):
    store = RunStore()
    config = tiny()
    store.run(config, quiet=True)
    folder = isolated_store / config.run_id
    if damage == "truncate":
        (folder / "record.json").write_text((folder / "record.json").read_text()[:100])
    elif damage == "wrong_id":
        record = json.loads((folder / "record.json").read_text())
        (folder / "record.json").write_text(json.dumps({**record, "run_id": "0" * 16}))
    elif damage == "no_weights":
        (folder / "weights.pt").unlink()
    elif damage == "null_record":
        (folder / "record.json").write_text("null")
    else:
        weights = (folder / "weights.pt").read_bytes()
        (folder / "weights.pt").write_bytes(weights[: len(weights) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rerun = store.run(config, quiet=True)
        assert store.get(config.run_id) is not None
    corrupt = [w for w in caught if issubclass(w.category, CorruptRunWarning)]
    assert len(corrupt) == 1 and config.run_id in str(corrupt[0].message) and ".trash" in str(corrupt[0].message)
    assert rerun["cached"] is False and len(list((isolated_store / ".trash").iterdir())) == 1
    assert store.load_model(config.run_id) is not None


def test_the_weights_checksum_is_recorded_and_checked(isolated_store):
    from sparsitylib.store import file_sha256

    store = RunStore()
    record = store.run(tiny(), quiet=True)
    assert record["weights_sha256"] == file_sha256(isolated_store / record["run_id"] / "weights.pt")
    assert store.get(record["run_id"])["weights_sha256"] == record["weights_sha256"]


def test_a_store_that_is_a_file_or_read_only_fails_with_one_clear_error(isolated_store, monkeypatch):
    isolated_store.parent.mkdir(parents=True, exist_ok=True)
    isolated_store.write_text("not a folder")
    with pytest.raises(RunStoreError, match="is a file, not a folder"):
        RunStore().run(tiny(), quiet=True)
    isolated_store.unlink()
    isolated_store.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(RunStoreError, match="not writable"):
        RunStore().run(tiny(), quiet=True)
    assert list(isolated_store.iterdir()) == []


def test_a_full_disk_while_saving_leaves_no_staging_folder_and_no_run(isolated_store, monkeypatch):
    import sparsitylib.store

    def disk_full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")

    monkeypatch.setattr(sparsitylib.store.torch, "save", disk_full)
    store = RunStore()
    with pytest.raises(RunStoreError, match="could not train and save a run"):
        store.run(tiny(), quiet=True)
    assert store.run_ids() == [] and list((isolated_store / ".work").iterdir()) == []
    monkeypatch.undo()
    assert store.run(tiny(), quiet=True)["cached"] is False


def test_a_stale_staging_folder_of_a_dead_process_is_removed(isolated_store):
    config = tiny()
    stale = isolated_store / ".work" / f"{config.run_id}.staging99999"
    stale.mkdir(parents=True)
    (stale / "record.json").write_text("{}")
    RunStore().run(config, quiet=True)
    assert not stale.exists()


def test_a_missing_data_set_leaves_nothing_in_the_store(isolated_store, monkeypatch, tmp_path):
    from sparsitylib.data import DatasetNotFoundError

    monkeypatch.setenv("SPARSITYLIB_DATA", str(tmp_path / "no-data"))
    monkeypatch.setattr("sparsitylib.data.DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    with pytest.raises(DatasetNotFoundError):
        RunStore().run(tiny(dataset="fashion-mnist"), quiet=True)
    assert not (isolated_store / ".work").exists() and not (isolated_store / ".locks").exists()
    assert RunStore().run_ids() == []


def test_failed_runs_are_stored_with_their_reason():
    store = RunStore()
    config = tiny(optimizer="sgd", lr=1e12, decay_mode="none", norm="none")
    assert store.run(config, quiet=True)["status"] == "failed"
    cached = store.run(config, quiet=True)
    assert cached["cached"] and cached["status"] == "failed" and "nan" in cached["failure_reason"]
    with pytest.raises(ValueError, match="failed"):
        store.load_model(config.run_id)


def _ask_for_run(root, queue):
    record = RunStore(root).run(tiny(epochs=2), quiet=True)
    queue.put((record["cached"], record["run_id"], record["metrics"]["test_error"]))


def test_two_processes_asking_for_the_same_run_train_it_once(isolated_store):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_ask_for_run, args=(str(isolated_store), queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join()
    assert sorted(cached for cached, _, _ in results) == [False, True]
    assert len({(run_id, error) for _, run_id, error in results}) == 1
    assert RunStore(isolated_store).run_ids() == [results[0][1]]


def test_load_runs_returns_tidy_tables():
    store = RunStore()
    a = store.run(tiny(epochs=2), quiet=True)
    b = store.run(tiny(epochs=2, decay_mode="decoupled"), quiet=True)
    tables = load_runs()
    assert set(tables.runs["run_id"]) == {a["run_id"], b["run_id"]}
    assert {"optimizer", "decay_mode", "test_error", "dead_by_activation", "duration_s"} <= set(tables.runs.columns)
    filters_per_run = a["metrics"]["filters"]
    assert len(tables.layers) == 2 * 7 and len(tables.filters) == 2 * filters_per_run
    assert len(tables.history) == 2 * 2 and len(tables.history_layers) == 2 * 2 * 7
    assert set(tables.history_layers.columns) >= {"run_id", "epoch", "layer", "dead", "gamma_median"}
    per_filter = tables.history_filters()
    assert len(per_filter) == 2 * 2 * filters_per_run
    assert set(per_filter.columns) == {"run_id", "epoch", "layer", "filter", "dead_by_activation", "selectivity",
                                       "gamma", "beta", "dead"}
    assert (per_filter["gamma"] >= 0).all()  # |gamma| of every filter at every epoch
    assert per_filter["beta"].notna().all()
    # the dead flag on the snapshot images is exactly "selectivity undefined"
    assert (per_filter["dead"].astype(bool) == per_filter["selectivity"].isna()).all()
    last = per_filter[per_filter["epoch"] == per_filter["epoch"].max()]
    bn = {name: module for name, module in store.load_model(a["run_id"]).named_modules()
          if isinstance(module, torch.nn.BatchNorm2d)}
    first_bn = next(iter(bn.values()))
    first = last[(last["run_id"] == a["run_id"])].head(first_bn.num_features)
    assert np.allclose(first["beta"], first_bn.bias.detach().double().numpy(), atol=1e-6)  # signed beta of the last epoch
    only_a = load_runs(run_ids=[a["run_id"]])
    assert only_a.runs["run_id"].tolist() == [a["run_id"]]


def test_the_dead_flag_of_old_records_is_read_from_the_selectivity_and_unknown_without_an_activation_criterion():
    from sparsitylib.store import tables_from_records

    record = {"run_id": "r", "status": "completed", "config": {}, "metrics": {}, "layers": [],
              "filters": [{"layer": "C1", "filter": 0, "measured": True, "dead_by_activation": True},
                          {"layer": "C1", "filter": 1, "measured": True, "dead_by_activation": False},
                          {"layer": "B1", "filter": 0, "measured": False, "dead_by_activation": False}],
              "history": [{"epoch": 1, "dead_per_layer": [1, None], "gamma_quantiles": [[1] * 5, [1] * 5],
                           "filter_selectivity": [float("nan"), 0.3, float("nan")]}]}  # stored before filter_dead
    dead = tables_from_records([record]).history_filters()["dead"]
    assert dead.isna().tolist() == [False, False, True]  # no activation criterion: unknown, not dead
    assert bool(dead.iloc[0]) and not bool(dead.iloc[1])

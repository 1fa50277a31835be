"""run_grid on the local process pool and on a real Dask LocalCluster of worker processes."""

import pytest
from distributed import Client, LocalCluster

from sparsitylib.grid import make_grid, run_grid
from sparsitylib.store import RunStore

TINY = dict(dataset="synthetic", width=0.125, epochs=1, batch_size=50, train_size=200, test_size=100,
            snapshot_size=32, device="cpu", lr=1e-2)


def test_make_grid_builds_every_combination_for_every_seed():
    configs = make_grid(TINY, seeds=[0, 1], optimizer=["sgd", "adam"], decay_mode=["l2", "none"])
    assert len(configs) == 8
    assert {(c.optimizer, c.decay_mode, c.seed) for c in configs} == {
        (o, d, s) for o in ("sgd", "adam") for d in ("l2", "none") for s in (0, 1)}
    with pytest.raises(ValueError, match="grid values for 'optimizer' must be a non-empty list"):
        make_grid(TINY, optimizer=[])
    with pytest.raises(ValueError, match="seeds must be a non-empty list"):
        make_grid(TINY, seeds=[])


def test_local_pool_trains_missing_runs_and_reads_stored_ones(isolated_store):
    configs = make_grid(TINY, seeds=[0], optimizer=["sgd", "adam"])
    first = run_grid(configs + configs[:1], quiet=True)  # a duplicate is run once
    assert first.errors == [] and first.trained == 2
    assert [r["run_id"] for r in first.records] == [c.run_id for c in configs]
    assert sorted(RunStore().run_ids()) == sorted(c.run_id for c in configs)
    again = run_grid(configs, quiet=True)
    assert again.trained == 0 and all(r["cached"] for r in again.records)
    assert len(again.tables().runs) == 2


def test_plain_progress_prints_a_line_per_finished_run_once(isolated_store, monkeypatch, capsys):
    from concurrent.futures import ThreadPoolExecutor

    from sparsitylib.grid import PLAIN_PROGRESS

    monkeypatch.setenv(PLAIN_PROGRESS, "1")  # as reproduce sets it for the notebooks
    with ThreadPoolExecutor(max_workers=1) as executor:
        run_grid(make_grid(TINY, seeds=[0, 1], optimizer=["sgd"]), executor=executor)
    lines = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if line.strip()]
    assert [line.split("|")[0].split()[-1] for line in lines if line.startswith("runs:")] == ["0%", "50%", "100%"]


def test_dask_cluster_runs_land_in_the_same_store_and_failures_do_not_stop_the_others(isolated_store, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setenv("SPARSITYLIB_DATA", str(tmp_path / "no-data"))  # workers inherit it: no CIFAR here
    good = make_grid(TINY, seeds=[0, 1], optimizer=["adam"])
    bad = make_grid({**TINY, "dataset": "cifar10"}, seeds=[0])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        result = run_grid(good + bad, executor=client.get_executor(), quiet=True)
        workers = len(client.scheduler_info()["workers"])
    assert workers == 2
    assert result.trained == 2 and [r["run_id"] for r in result.records] == [c.run_id for c in good]
    assert len(result.errors) == 1 and result.errors[0].config == bad[0]
    assert "DatasetNotFoundError" in result.errors[0].error and "cifar-10-batches-py" in result.errors[0].error
    assert sorted(RunStore().run_ids()) == sorted(c.run_id for c in good)
    with pytest.raises(RuntimeError, match="1 run\\(s\\) raised"):
        result.raise_for_errors()
    # the same configs through the local pool come from the store
    assert run_grid(good, quiet=True).trained == 0


def test_equal_step_epochs_match_the_reference_number_of_update_steps():
    from sparsitylib.grid import equal_step_epochs
    from sparsitylib.presets import preset_config

    quick = preset_config("quick")  # 10,000 images, batch 64: 157 steps an epoch, 1,256 in 8 epochs
    assert [equal_step_epochs(quick, batch_size=b) for b in (32, 64, 128, 256)] == [4, 8, 16, 31]
    assert [equal_step_epochs(quick, train_size=n) for n in (2500, 5000, 10000)] == [31, 16, 8]
    assert equal_step_epochs(quick, train_size=1_000_000) == 1  # at least one epoch


def test_the_time_estimate_uses_the_seconds_per_step_of_stored_runs_of_the_same_network():
    from sparsitylib.grid import estimate_seconds, steps_of
    from sparsitylib.presets import preset_config

    quick = preset_config("quick", optimizer="adam")
    assert steps_of(quick) == 8 * 157
    stored = [{"status": "completed", "config": preset_config("quick", optimizer="sgd", seed=s).to_dict(),
               "environment": {"duration_s": seconds}, "metrics": {"steps": 1256}}
              for s, seconds in enumerate((62.8, 125.6, 94.2))]  # 0.05, 0.1, 0.075 s a step: median 0.075
    longer = preset_config("quick", optimizer="adam", epochs=16)
    seconds, basis = estimate_seconds([quick, longer], stored, workers=2)
    assert seconds == pytest.approx(0.075 * (1256 + 2512) / 2) and basis == 3  # the 3 stored runs, once
    other_network = preset_config("quick", optimizer="adam", width=0.5)
    assert estimate_seconds([quick, other_network], stored, workers=2) == (None, 0)

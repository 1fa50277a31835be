"""The run-record archive: written deterministically, read back with every entry checked, and used
by the run store (and so by run_grid and the notebooks) for runs the store folder does not have."""

import gzip
import os
import json
import re
import shutil
import warnings

import pytest

import sparsitylib.train
from sparsitylib.archive import canonical_json, read_archive, seed_measurements, write_archive, write_measurements
from sparsitylib.cli import main
from sparsitylib.grid import _train_one, run_grid
from sparsitylib.models import ConvNet
from sparsitylib.presets import preset_config
from sparsitylib.store import CorruptRunWarning, RetrainDriftWarning, RunStore

TINY = dict(dataset="synthetic", width=0.125, epochs=1, batch_size=50, train_size=200, test_size=100,
            snapshot_size=32, device="cpu", optimizer="adam", lr=1e-2)

# the module-scoped fixture below is built once: under pytest-xdist these tests share a worker
pytestmark = pytest.mark.xdist_group("test_archive")


def tiny(**changes):
    return preset_config("smoke", **{**TINY, **changes})


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A run store with two tiny runs, and their records as ``RunStore.run`` returns them."""
    store = RunStore(tmp_path_factory.mktemp("source") / "runs", archive=[])
    return store, [store.run(tiny(seed=seed), quiet=True) for seed in (0, 1)]


def without_transient(record):
    return canonical_json({k: v for k, v in record.items() if k not in ("cached", "archived")})


def no_training(*args, **kwargs):
    raise AssertionError("an archived run was trained")


def test_records_come_back_as_written(source, tmp_path):
    _, records = source
    path = write_archive(records, tmp_path / "runs.jsonl.gz")
    back = read_archive(path)
    assert sorted(back) == sorted(r["run_id"] for r in records)
    for record in records:  # compared as JSON: records hold NaN (the selectivity of dead filters)
        assert canonical_json(back[record["run_id"]]) == without_transient(record)
        assert "cached" not in back[record["run_id"]]


def test_the_same_records_give_the_same_bytes(source, tmp_path):
    _, records = source
    first = write_archive(records, tmp_path / "a.jsonl.gz").read_bytes()
    second = write_archive(reversed(records), tmp_path / "b.jsonl.gz").read_bytes()
    assert first == second and first[4:8] == b"\0\0\0\0"  # gzip header time 0
    lines = gzip.decompress(first).decode().splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == sorted(r["run_id"] for r in records)
    assert not list(tmp_path.glob(".*tmp*"))  # written under a temporary name, then renamed


def test_an_edited_record_is_warned_about_and_not_returned(source, tmp_path):
    _, records = source
    path = write_archive(records, tmp_path / "runs.jsonl.gz")
    lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
    edited, count = re.subn(r'"test_error":0\.(\d)', lambda m: f'"test_error":0.{(int(m[1]) + 1) % 10}', lines[0], 1)
    assert count == 1
    path.write_bytes(gzip.compress("".join([edited, *lines[1:]]).encode()))
    damaged, intact = json.loads(lines[0])["run_id"], json.loads(lines[1])["run_id"]
    with pytest.warns(CorruptRunWarning, match=rf"{path.name}.*{damaged}.*sha256") as caught:
        back = read_archive(path)
    assert len(caught) == 1 and sorted(back) == [intact]


def test_an_entry_whose_config_does_not_hash_to_its_run_id_is_rejected(source, tmp_path):
    _, records = source
    moved = {**records[0], "config": {**records[0]["config"], "seed": 7}}  # a valid sha256, a wrong config
    path = write_archive([moved, records[1]], tmp_path / "runs.jsonl.gz")
    with pytest.warns(CorruptRunWarning, match=rf"{records[0]['run_id']}.*config hashes to run id"):
        back = read_archive(path)
    assert sorted(back) == [records[1]["run_id"]]


def test_a_truncated_archive_is_one_warning_and_the_entries_before_the_damage_are_used(source, tmp_path):
    _, records = source
    lines = gzip.decompress(write_archive(records, tmp_path / "whole.jsonl.gz").read_bytes()).splitlines(keepends=True)
    path = tmp_path / "runs.jsonl.gz"  # two gzip members, the second cut short
    path.write_bytes(gzip.compress(lines[0]) + gzip.compress(lines[1])[:-200])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = read_archive(path)
    assert len(caught) == 1 and "damaged" in str(caught[0].message) and str(path) in str(caught[0].message)
    assert list(back) == [json.loads(lines[0])["run_id"]]


def test_run_grid_finds_archived_runs_without_training(source, tmp_path, isolated_store, monkeypatch):
    _, records = source
    monkeypatch.setenv("SPARSITYLIB_ARCHIVE", str(write_archive(records, tmp_path / "runs.jsonl.gz")))
    monkeypatch.setattr(sparsitylib.train, "train", no_training)
    configs = [tiny(seed=0), tiny(seed=1)]
    result = run_grid(configs, quiet=True)
    assert result.trained == 0 and not result.errors
    assert [r["run_id"] for r in result.records] == [c.run_id for c in configs]
    assert all(r["archived"] and r["cached"] for r in result.records)
    assert _train_one(configs[0].to_dict(), str(isolated_store), False)["cached"]  # a worker finds it too
    store = RunStore()
    assert store.run_ids() == [] and store.records() == []  # listings are of the store folder only
    assert len(result.tables().runs) == 2


def test_the_store_s_own_record_comes_before_the_archived_one(source, tmp_path, isolated_store):
    _, records = source
    store = RunStore(isolated_store, archive=write_archive(records, tmp_path / "runs.jsonl.gz"))
    own = RunStore(isolated_store, archive=[]).run(tiny(seed=0), quiet=True)
    assert own["run_id"] == records[0]["run_id"] and "archived" not in store.get(own["run_id"])
    assert store.get(records[1]["run_id"])["archived"] is True
    assert RunStore(isolated_store, archive=[]).get(records[1]["run_id"]) is None


def test_load_model_of_an_archived_run_retrains_it(source, tmp_path, isolated_store, capsys):
    _, records = source
    store = RunStore(isolated_store, archive=write_archive(records, tmp_path / "runs.jsonl.gz"))
    run_id = records[0]["run_id"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RetrainDriftWarning)  # the same machine trains the same run
        model = store.load_model(run_id)
    assert isinstance(model, ConvNet) and not model.training
    assert f"retraining {run_id} for its weights (archived records carry none)" in capsys.readouterr().err
    assert (isolated_store / "retrained.txt").read_text().split() == [run_id]
    assert "archived" not in store.get(run_id)  # now in the store, with its weights
    store.load_model(run_id)
    assert (isolated_store / "retrained.txt").read_text().split() == [run_id]  # not trained twice


def test_a_retrained_run_that_drifts_from_its_archived_record_is_warned_about(source, tmp_path, isolated_store):
    _, records = source
    drifted = {**records[1], "metrics": {**records[1]["metrics"], "test_error": 0.999}}
    store = RunStore(isolated_store, archive=write_archive([drifted], tmp_path / "runs.jsonl.gz"))
    with pytest.warns(RetrainDriftWarning, match=r"test_error 0\.999 ->"):
        assert isinstance(store.load_model(drifted["run_id"]), ConvNet)


def verdict(folder, name, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.verdict.json").write_text(json.dumps({"notebook": name, "verdicts": [], **extra}))


def test_the_archive_command_writes_the_runs_behind_the_report(source, tmp_path, capsys):
    store, records = source
    figures = tmp_path / "figures"
    verdict(figures, "01_a", run_ids=[records[0]["run_id"]])
    assert main(["archive", "--figures", str(figures), "--runs", str(store.root)]) == 0
    assert sorted(read_archive(figures / "runs.jsonl.gz")) == [records[0]["run_id"]]
    assert "archived 1 run records" in capsys.readouterr().out
    verdict(figures, "02_b")  # no run_ids: every run in the store
    out = tmp_path / "all.jsonl.gz"
    assert main(["archive", "--figures", str(figures), "--runs", str(store.root), "--out", str(out)]) == 0
    assert sorted(read_archive(out)) == sorted(r["run_id"] for r in records)


def test_archive_add_keeps_the_archived_records_and_adds_the_new_runs(source, tmp_path, capsys):
    store, records = source
    figures = tmp_path / "figures"
    first, second = (r["run_id"] for r in records)
    verdict(figures, "01_a", run_ids=[first])
    assert main(["archive", "--figures", str(figures), "--runs", str(store.root)]) == 0
    archived = read_archive(figures / "runs.jsonl.gz")[first]
    retrained = RunStore(tmp_path / "retrained", archive=[])  # holds the first run, as trained again (say)
    retrained.root.mkdir()
    shutil.copytree(store.path(first), retrained.path(first))
    shutil.copytree(store.path(second), retrained.path(second))
    record_file = retrained.path(first) / "record.json"
    drifted = json.loads(record_file.read_text())
    drifted["metrics"]["test_error"] = 0.999  # what training it again on another machine might give
    record_file.write_text(json.dumps(drifted))
    assert retrained.get(first)["metrics"]["test_error"] == 0.999
    verdict(figures, "01_a", run_ids=[first, second])
    assert main(["archive", "--add", "--figures", str(figures), "--runs", str(retrained.root)]) == 0
    assert ", 1 of them new" in capsys.readouterr().out
    after = read_archive(figures / "runs.jsonl.gz")
    assert sorted(after) == sorted([first, second]) and canonical_json(after[first]) == canonical_json(archived)


def test_the_archive_command_refuses_when_a_listed_run_is_not_in_the_store(source, tmp_path, capsys):
    store, records = source
    figures = tmp_path / "figures"
    verdict(figures, "01_a", run_ids=[records[0]["run_id"], "0123456789abcdef"])
    assert main(["archive", "--figures", str(figures), "--runs", str(store.root)]) == 2
    assert "0123456789abcdef" in capsys.readouterr().err
    assert not list(figures.glob("*.gz")) and not list(figures.glob(".*"))


def test_reproduce_from_a_missing_archive_says_how_to_make_one(tmp_path, capsys):
    assert main(["reproduce", "--from-archive", "--preset", "smoke", "--figures", str(tmp_path)]) == 2
    assert "no run archive at" in capsys.readouterr().err


def test_reproduce_from_the_archive_counts_the_runs_each_notebook_retrained(source, tmp_path, monkeypatch, capsys):
    import nbformat

    import sparsitylib.reproduce as reproduce_module

    _, records = source
    figures = tmp_path / "figures"
    write_archive(records, figures / "runs.jsonl.gz")
    seen = {}

    def notebook_that_prunes(notebook, output, parameters, cwd):  # stands in for a papermill kernel
        store = RunStore()  # as the notebook builds it: from the environment
        seen.update(root=store.root, archives=store.archives)
        store.load_model(records[0]["run_id"])
        nbformat.write(nbformat.v4.new_notebook(), str(output))  # what the report reads of an executed notebook
        return "ok", None

    monkeypatch.setattr(reproduce_module, "execute", notebook_that_prunes)
    monkeypatch.setattr(reproduce_module, "to_html", lambda notebook: None)
    monkeypatch.delenv("SPARSITYLIB_ARCHIVE", raising=False)
    runs = reproduce_module.reproduce("smoke", only=["09"], figures_dir=figures, from_archive=True)
    assert [r.retrained for r in runs] == [[records[0]["run_id"]]]
    assert seen["archives"] == [figures.resolve() / "runs.jsonl.gz"] and not seen["root"].exists()  # temporary
    assert "retrained for their weights: 09_pruning (1 runs)" in capsys.readouterr().out
    assert "SPARSITYLIB_ARCHIVE" not in os.environ
    manifest = json.loads((figures / "MANIFEST.json").read_text())
    assert manifest["notebooks"][0]["retrained"] == [records[0]["run_id"]] and manifest["run_archive"]


@pytest.mark.parametrize("preset", ["quick", "long"])
def test_the_committed_archive_holds_every_run_behind_the_committed_verdicts(preset):
    """`make report` re-renders a preset from its archive: a verdict file naming a run the archive
    lacks could not be re-rendered without training it."""
    from sparsitylib.archive import run_ids_behind
    from sparsitylib.notebook import project_root

    figures = project_root() / "figures" / preset
    run_ids, unlisted = run_ids_behind(figures)
    assert unlisted == [] and run_ids
    assert sorted(run_ids - set(read_archive(figures / "runs.jsonl.gz"))) == []


def test_measured_tables_travel_beside_the_archive_and_seed_a_fresh_store(tmp_path):
    store = RunStore(tmp_path / "measured", archive=[])
    comparison = [{"method": "implicit: dead filters removed", "test_error_finetuned": 0.105}]
    store.keep_measured("comparisons", "case1", comparison)
    store.keep_measured("pruning", "run1", {"run_id": "run1", "removed": 3})
    path = tmp_path / "measurements.json.gz"
    assert write_measurements(store.root, path) == 2
    first = path.read_bytes()
    write_measurements(store.root, path)
    assert path.read_bytes() == first  # the same tables give the same bytes
    fresh = RunStore(tmp_path / "fresh", archive=[])
    assert seed_measurements(path, fresh.root) == 2
    assert fresh.measured("comparisons", "case1") == comparison
    assert fresh.measured("pruning", "run1") == {"run_id": "run1", "removed": 3}
    assert fresh.measured("pruning", "run2") is None
    fresh.keep_measured("pruning", "run1", {"run_id": "run1", "removed": 4})
    assert seed_measurements(path, fresh.root) == 0 and fresh.measured("pruning", "run1")["removed"] == 4  # kept
    assert seed_measurements(tmp_path / "none.json.gz", fresh.root) == 0
    assert write_measurements(tmp_path / "empty", tmp_path / "nothing.json.gz") == 0
    assert not (tmp_path / "nothing.json.gz").exists()

import contextlib
import io
import json
import os
import subprocess
import sys
import warnings

import torch

from sparsitylib.cli import main
from sparsitylib.prune import load_pruned_model
from sparsitylib.reproduce import _environment

SMALL = ["dataset=synthetic", "train_size=200", "test_size=100", "epochs=1", "width=0.125"]


def cli(*args, env_root, env=None) -> subprocess.CompletedProcess:
    """``python -m sparsitylib ARGS`` run in this process (a subprocess per call spent most of the
    suite's CLI time importing torch): its exit code, stdout and stderr, with warnings printed to
    stderr as on the command line. The environment and torch's thread count are restored after."""
    threads = torch.get_num_threads()
    out, err = io.StringIO(), io.StringIO()
    try:
        with (_environment(SPARSITYLIB_RUNS=str(env_root), **(env or {})), warnings.catch_warnings(),
              contextlib.redirect_stdout(out), contextlib.redirect_stderr(err)):
            warnings.simplefilter("default")  # Python's own defaults on the command line
            for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", hidden)
            warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: err.write(
                warnings.formatwarning(message, category, filename, lineno, line))
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse: --help, usage errors
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(["sparsitylib", *args], code, out.getvalue(), err.getvalue())


def test_python_dash_m_sparsitylib_is_the_command_line_and_returns_its_exit_code(tmp_path):
    bad = subprocess.run([sys.executable, "-m", "sparsitylib", "run", "optimizer=lion"], capture_output=True,
                         text=True, env={**os.environ, "SPARSITYLIB_RUNS": str(tmp_path / "runs")}, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip() == cli("run", "optimizer=lion", env_root=tmp_path / "runs").stderr.strip()
    assert "unknown optimizer 'lion'" in bad.stderr and not (tmp_path / "runs").exists()


def test_run_prints_a_json_summary_and_the_second_call_comes_from_the_store(isolated_store):
    first = cli("run", "--preset", "smoke", "--quiet", "optimizer=adam", "decay_mode=l2", *SMALL, env_root=isolated_store)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert {"run_id", "config", "test_error", "dead_by_activation", "dead_by_gamma", "layers"} <= set(summary)
    assert summary["cached"] is False and summary["config"]["lr"] == 1e-2 and list(summary["layers"]) == [f"C{i}" for i in range(1, 8)]
    second = json.loads(cli("run", "--preset", "smoke", "--quiet", "optimizer=adam", "decay_mode=l2", *SMALL,
                            env_root=isolated_store).stdout)
    assert second["cached"] is True
    assert {**second, "cached": False, "duration_s": None} == {**summary, "duration_s": None}


def test_bad_input_fails_before_any_work_and_writes_nothing(isolated_store):
    for args, message in ((["optimizer=lion"], "unknown optimizer 'lion'"), (["lr=-1"], "lr must be a positive"),
                          (["epochs"], "expected key=value"), (["colour=red"], "unknown config key 'colour'")):
        result = cli("run", "--preset", "smoke", *args, env_root=isolated_store)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not isolated_store.exists()


def test_layers_prints_per_layer_counts_and_table_is_its_alias_and_runs_lists_them(isolated_store):
    result = cli("layers", "--preset", "smoke", "--quiet", *SMALL, env_root=isolated_store)
    assert result.returncode == 0, result.stderr
    assert "C7" in result.stdout and "test error" in result.stdout
    alias = cli("table", "--preset", "smoke", "--quiet", *SMALL, env_root=isolated_store)
    assert alias.returncode == 0 and alias.stdout == result.stdout
    cli("run", "--preset", "smoke", "--quiet", "optimizer=sgd", *SMALL, env_root=isolated_store)
    listing = cli("runs", env_root=isolated_store)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["run_id", "status", "model", "width", "optimizer", "lr", "decay_mode", "decay",
                                "epochs", "seed", "dead", "test_error"]
    assert len(lines) == 4 and lines[-1].startswith("2 runs in")
    only_sgd = cli("runs", "optimizer=sgd", env_root=isolated_store).stdout.splitlines()
    assert len(only_sgd) == 3 and " sgd " in only_sgd[1] and only_sgd[-1].startswith("1 run in")
    assert "no stored runs" in cli("runs", "optimizer=adamax", env_root=isolated_store).stdout
    threads = json.loads(cli("run", "--preset", "smoke", "--quiet", "--threads", "2", "--force", "optimizer=sgd", *SMALL,
                             env_root=isolated_store).stdout)
    record = json.loads((isolated_store / threads["run_id"] / "record.json").read_text())
    assert record["environment"]["threads"] == 2  # the thread count is applied and recorded
    assert cli("layers", "--threads", "0", *SMALL, env_root=isolated_store).returncode == 2
    bad = cli("runs", "colour=red", env_root=isolated_store)
    assert bad.returncode == 2 and "unknown config key 'colour'" in bad.stderr
    bad_value = cli("runs", "optimizer=lion", env_root=isolated_store)  # a value no run can have is named, not listed as none
    assert bad_value.returncode == 2 and "unknown optimizer 'lion'" in bad_value.stderr
    cli("run", "--preset", "smoke", "--quiet", "decay_mode=none", *SMALL, env_root=isolated_store)
    unregularized = cli("runs", "decay_mode=none", env_root=isolated_store).stdout.splitlines()
    header = unregularized[0].split()
    assert unregularized[1].split()[header.index("decay")] == "-"  # no regularizer: no strength shown


def test_help_describes_every_command_and_shows_defaults(tmp_path):
    top = cli("--help", env_root=tmp_path).stdout
    for name in ("run", "layers (table)", "headline (tables)", "runs", "reproduce", "archive", "prune", "inspect",
                 "data", "readme", "claims"):
        assert f"    {name}" in top, name
    reproduce = cli("reproduce", "--help", env_root=tmp_path).stdout
    assert "(default: quick)" in " ".join(reproduce.split())  # --preset
    assert "(default: 1)" in " ".join(cli("inspect", "--help", env_root=tmp_path).stdout.split())  # --threads
    for command in ("run", "runs", "reproduce", "archive", "prune", "inspect", "readme", "data"):
        shown = " ".join(cli(command, "--help", env_root=tmp_path).stdout.split())
        assert "(default: None)" not in shown and "(default: False)" not in shown, command
        assert "default $SPARSITYLIB_RUNS or ./runs) (default" not in shown, command  # said once


def test_help_answers_without_loading_torch():
    """The command line parses (and answers --help and usage errors) before it imports torch."""
    probe = ("import sys; from sparsitylib.cli import build_parser; build_parser().format_help(); "
             "print(sorted(m for m in ('torch', 'torchvision', 'pandas', 'papermill') if m in sys.modules))")
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "[]"


def test_prune_prints_what_pruning_bought(isolated_store):
    settings = ["dataset=synthetic", "width=0.125", "epochs=2", "batch_size=32", "optimizer=adam", "lr=2e-2",
                "decay=1e-2", "snapshot_size=64"]
    trained = json.loads(cli("run", "--quiet", *settings, env_root=isolated_store).stdout)
    assert trained["status"] == "completed"
    result = cli("prune", trained["run_id"], "--min-run-time", "0.05", "--save", str(isolated_store / "pruned.pt"),
                 env_root=isolated_store)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    dead = sum(layer["dead_by_activation"] for layer in trained["layers"].values())
    assert report["filters_removed_total"] == dead > 0
    assert report["macs"]["after"] < report["macs"]["before"] and report["params"]["after"] < report["params"]["before"]
    assert set(report["latency"]) == {"as_trained", "bn_folded"}
    assert set(report["latency"]["bn_folded"]) == {"batch_1", "batch_128"}
    assert report["latency"]["as_trained"]["batch_1"]["before"]["threads"] == 1
    assert report["max_logit_difference"] < 1e-5
    assert report["test_error"]["before"] == report["test_error"]["after"]
    loaded = load_pruned_model(isolated_store / "pruned.pt")  # the loader of inspect --prune's files too
    assert [block.conv.out_channels for block in loaded.blocks] == report["widths_after"]


def test_prune_trains_again_a_run_whose_weights_fail_their_checksum(isolated_store):
    trained = json.loads(cli("run", "--quiet", *SMALL, env_root=isolated_store).stdout)
    with open(isolated_store / trained["run_id"] / "weights.pt", "ab") as weights:
        weights.write(b"damage")
    result = cli("prune", trained["run_id"], "--min-run-time", "0.05", env_root=isolated_store)
    assert result.returncode == 0, result.stderr
    assert "is corrupt" in result.stderr and f"training run {trained['run_id']} again" in result.stderr
    assert json.loads(result.stdout)["run_id"] == trained["run_id"]
    assert (isolated_store / trained["run_id"] / "weights.pt").is_file()  # recomputed into the store


def test_prune_checks_where_it_saves_before_any_work(isolated_store, tmp_path):
    for save, message in ((tmp_path / "missing" / "pruned.pt", "does not exist; create it first"),
                          (tmp_path, "is a folder: give a file name")):
        result = cli("prune", "0123456789abcdef", "--save", str(save), env_root=isolated_store)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_prune_rejects_an_unknown_run(isolated_store):
    result = cli("prune", "0123456789abcdef", env_root=isolated_store)
    assert result.returncode == 2 and "no stored run '0123456789abcdef'" in result.stderr


def test_exit_codes_tell_a_diverged_run_a_missing_or_damaged_data_set_and_an_unusable_store(isolated_store, tmp_path):
    from sparsitylib.data import write_fake_cifar

    diverged = cli("run", "--quiet", *SMALL, "optimizer=sgd", "lr=1e12", "decay_mode=none", "norm=none",
                   env_root=isolated_store)
    assert diverged.returncode == 3 and json.loads(diverged.stdout)["status"] == "failed"
    no_weights = cli("prune", json.loads(diverged.stdout)["run_id"], env_root=isolated_store)
    assert no_weights.returncode == 2 and "it has no weights to prune" in no_weights.stderr, no_weights.stderr

    before = sorted(p.relative_to(isolated_store) for p in isolated_store.rglob("*"))
    folder = write_fake_cifar(tmp_path / "data", "cifar10", per_file=8)
    env = {"SPARSITYLIB_DATA": str(tmp_path / "data")}
    too_few = cli("run", "--quiet", "dataset=cifar10", "train_size=100", "width=0.125", env_root=isolated_store, env=env)
    assert too_few.returncode == 4 and "train_size=100 is larger than the 40" in too_few.stderr, too_few.stderr
    (folder / "test_batch").write_bytes(b"\x80\x04")
    damaged = cli("run", "--quiet", "dataset=cifar10", "width=0.125", env_root=isolated_store, env=env)
    assert damaged.returncode == 4 and "test_batch is damaged" in damaged.stderr and "Traceback" not in damaged.stderr
    assert sorted(p.relative_to(isolated_store) for p in isolated_store.rglob("*")) == before  # no work folder, no lock

    a_file = tmp_path / "runs-file"
    a_file.write_text("")
    unusable = cli("run", "--quiet", *SMALL, env_root=a_file)
    assert unusable.returncode == 5 and "is a file, not a folder" in unusable.stderr and "Traceback" not in unusable.stderr


def test_prune_tells_a_checkpoint_from_a_run_id(isolated_store, tmp_path):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"not a run")
    result = cli("prune", str(checkpoint), env_root=isolated_store)
    assert result.returncode == 2 and "is not a run id" in result.stderr and "inspect MODEL --weights" in result.stderr
    assert "corrupt" not in result.stderr and not isolated_store.exists()

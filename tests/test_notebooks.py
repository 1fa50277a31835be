"""Every notebook runs at the smoke preset (papermill, in its own kernel) and produces its figures
and a verdict; bad parameters fail in the first cells and write nothing."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from sparsitylib.presets import PRESETS
from sparsitylib.reproduce import CANONICAL_NOTEBOOKS, notebooks, report_plan, reproduce
from sparsitylib.verdict import DESCRIBED, DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, INVALID, NOT_REACHED, UNTESTABLE

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMOKE = {"seeds": [0], "other_seeds": [0], "compared_seeds": [0], "width_seeds": [0], "baseline_seeds": [0], "train_sizes": [250, 500, 1000], "widths": [0.0625, 0.125, 0.25], "batch_sizes": [32, 64, 128],
         "decays": [1e-4, 5e-4, 2e-3], "learning_rates": [1e-3, 1e-2, 3e-2], "latency_repeats": 3, "pilot_epochs": 2,
         "screen_epochs": 2, "saturation_epochs": 2, "saturation_reach": 0.3, "saturation_seeds": [0]}


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory, fashion_mnist_available):
    folder = tmp_path_factory.mktemp("smoke")
    import os

    previous = os.environ.get("SPARSITYLIB_RUNS")
    os.environ["SPARSITYLIB_RUNS"] = str(folder / "runs")
    try:
        runs = reproduce("smoke", parameters=SMOKE, figures_dir=folder / "figures")
    finally:
        if previous is None:
            del os.environ["SPARSITYLIB_RUNS"]
        else:
            os.environ["SPARSITYLIB_RUNS"] = previous
    return folder, runs


def test_every_notebook_runs_and_writes_figures_and_a_verdict(smoke_report):
    folder, runs = smoke_report
    figures = folder / "figures"
    assert [r.name for r in runs] == [p.stem for p in notebooks(NOTEBOOKS)]
    for run in runs:
        assert run.status == "ok", f"{run.name}: {run.error}"
        verdict = json.loads((figures / f"{run.name}.verdict.json").read_text())
        assert verdict["verdicts"] and all(v["status"] in (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, INVALID, DESCRIBED, UNTESTABLE,
                                                               NOT_REACHED)
                                        for v in verdict["verdicts"])
        assert verdict["figures"], run.name
        for name in verdict["figures"]:
            assert (figures / name).stat().st_size > 1000
        assert (figures / "report" / f"{run.name}.html").is_file()
        page = (figures / "report" / f"{run.name}.html").read_text()
        # no machine paths in the report: figures_dir appears relative to notebooks/ ("../../tmp/..." when
        # the folder is outside the clone), never as the absolute path
        assert re.search(rf"(?<!\.\.){re.escape(str(folder))}", page) is None and "PosixPath" not in page, run.name
        assert run.verdicts == verdict["verdicts"]
    index = (figures / "report" / "index.html").read_text()
    assert all(f"{run.name}.html" in index for run in runs)
    assert "a plumbing check" in index  # the smoke banner, in the report
    assert "a plumbing check" in (figures / "report" / f"{runs[0].name}.html").read_text()  # and in each notebook
    manifest = json.loads((figures / "MANIFEST.json").read_text())
    assert manifest["preset"] == "smoke" and manifest["parameters"]["seeds"] == [0]
    recorded = manifest["parameters"]["figures_dir"]  # relative to the repository, as the index shows it
    assert recorded == os.path.relpath(figures, NOTEBOOKS.parent) and not Path(recorded).is_absolute()
    assert recorded in index and f"'{figures}" not in index and f'"{figures}' not in json.dumps(manifest)
    assert "n=" in index  # every verdict shows its n, and its p-value where it has one
    for verdict in (v for run in runs for v in run.verdicts if v["p_value"] is not None):
        assert f"p={verdict['p_value']:.2g}" in index


def test_source_notebooks_have_no_outputs_and_one_parameters_cell():
    for path in notebooks(NOTEBOOKS):
        cells = json.loads(path.read_text())["cells"]
        assert all(not c.get("outputs") and not c.get("execution_count") for c in cells if c["cell_type"] == "code"), path
        assert sum("parameters" in c["metadata"].get("tags", []) for c in cells) == 1, path


def test_help_notebook_documents_the_parameters():
    result = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook",
                             str(NOTEBOOKS / "01_optimizer_regularizer.ipynb")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name in ("preset", "seeds", "other_seeds", "optimizers", "scheduler_address"):
        assert name in result.stdout
    assert "smoke | demo | quick | long | paper" in result.stdout
    assert "None: <repo>/scratch/<preset>" in result.stdout  # where a notebook run by hand writes


@pytest.mark.parametrize("parameters,message", [
    ({"preset": "huge"}, "unknown preset 'huge'"),
    ({"optimizers": ["lion"]}, "unknown optimizer 'lion'"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"optimizers": []}, "grid values for 'optimizer' must be a non-empty list"),
    ({"scheduler_address": "tcp://127.0.0.1:9"}, "cannot reach the Dask scheduler"),
])
def test_bad_parameters_fail_early_and_write_nothing(tmp_path, parameters, message):
    runs, figures = tmp_path / "runs", tmp_path / "figures"
    with pytest.raises(PapermillExecutionError) as error:
        papermill.execute_notebook(str(NOTEBOOKS / "01_optimizer_regularizer.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters={"preset": "smoke", "runs_dir": str(runs), "figures_dir": str(figures),
                                               **parameters}, progress_bar=False, cwd=str(NOTEBOOKS))
    assert message in str(error.value.evalue)
    assert error.value.exec_count <= 3  # the parameters cell, the injected cell, the set-up cell
    assert not runs.exists() and not figures.exists()


def test_the_report_runs_the_canonical_notebooks_by_exact_name_never_a_copy(tmp_path):
    for name in ("01_optimizer_regularizer", "01_optimizer_regularizer-Copy1", "02_where_sparsity_lives", "scratch"):
        (tmp_path / f"{name}.ipynb").write_text("{}")
    assert [p.stem for p in notebooks(tmp_path)] == ["01_optimizer_regularizer", "02_where_sparsity_lives"]
    assert [p.stem for p in notebooks(tmp_path, ["01"])] == ["01_optimizer_regularizer"]
    assert [p.stem for p in notebooks(tmp_path, ["02_where_sparsity_lives"])] == ["02_where_sparsity_lives"]
    with pytest.raises(ValueError, match="--only 01_optimizer_regularizer-Copy1: no notebook of this report"):
        notebooks(tmp_path, ["01_optimizer_regularizer-Copy1"])
    with pytest.raises(ValueError, match="--only 0: no notebook"):
        notebooks(tmp_path, ["0"])  # no prefix matching


def test_every_canonical_notebook_exists_and_every_planned_parameter_is_one_of_its_notebooks():
    assert [p.stem for p in notebooks(NOTEBOOKS)] == list(CANONICAL_NOTEBOOKS)
    for preset in PRESETS:
        plan = report_plan(preset)
        assert plan and set(plan) <= set(CANONICAL_NOTEBOOKS), preset
        for name, parameters in plan.items():
            documented = papermill.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
            assert set(parameters) <= set(documented), (preset, name, set(parameters) - set(documented))


def test_a_copy_of_a_notebook_run_outside_reproduce_cannot_change_the_committed_report(tmp_path, fashion_mnist_available):
    """A JupyterLab copy (Jupyter names its file in JPY_SESSION_NAME) and a papermill run by hand,
    both at the demo preset (one seed: the quick preset refuses designs that cannot decide) and without
    figures_dir, write to scratch/demo/, never figures/demo/."""
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    committed = project / "figures" / "demo"
    committed.mkdir(parents=True)
    (committed / "01_optimizer_regularizer.verdict.json").write_text('{"committed": true}')
    before = {p.name: p.read_bytes() for p in committed.iterdir()}
    copy = project / "notebooks" / "01_optimizer_regularizer-Copy1.ipynb"
    copy.write_bytes((NOTEBOOKS / "01_optimizer_regularizer.ipynb").read_bytes())
    tiny = {"preset": "demo", "seeds": [0], "compared_seeds": [0], "other_seeds": [0], "optimizers": ["adam", "sgd"],
            "unregularized": ["adam"], "weight_decay": [], "epochs": 1, "width": 0.125,
            "runs_dir": str(tmp_path / "runs")}
    os.environ["JPY_SESSION_NAME"] = str(copy)
    try:
        papermill.execute_notebook(str(copy), str(tmp_path / "lab.ipynb"), parameters=tiny, progress_bar=False,
                                   cwd=str(project / "notebooks"))
    finally:
        del os.environ["JPY_SESSION_NAME"]
    papermill.execute_notebook(str(copy), str(tmp_path / "by_hand.ipynb"), parameters=tiny, progress_bar=False,
                               cwd=str(project / "notebooks"))
    assert {p.name: p.read_bytes() for p in committed.iterdir()} == before
    scratch = project / "scratch" / "demo"
    assert (scratch / "01_optimizer_regularizer-Copy1.verdict.json").is_file()  # the copy's own name
    assert (scratch / "01_optimizer_regularizer.verdict.json").is_file()  # papermill by hand: no session name
    assert (scratch / "01_optimizer_regularizer-Copy1_heatmaps.png").is_file()


def test_a_re_render_from_the_committed_archive_trains_nothing_and_gives_the_committed_verdicts(tmp_path):
    committed = NOTEBOOKS.parent / "figures" / "long"
    figures = tmp_path / "long"
    figures.mkdir()
    for name in ("runs.jsonl.gz", "measurements.json.gz"):
        (figures / name).write_bytes((committed / name).read_bytes())
    runs = reproduce("long", only=["01"], from_archive=True, figures_dir=figures)
    assert runs[0].status == "ok" and runs[0].retrained == []
    written = json.loads((figures / "01_optimizer_regularizer.verdict.json").read_text())
    assert written == json.loads((committed / "01_optimizer_regularizer.verdict.json").read_text())
    first = {path.relative_to(figures): path.read_bytes() for path in sorted(figures.rglob("*")) if path.is_file()}
    reproduce("long", only=["01"], from_archive=True, figures_dir=figures)  # again: the same bytes, every file
    second = {path.relative_to(figures): path.read_bytes() for path in sorted(figures.rglob("*")) if path.is_file()}
    assert first.keys() == second.keys() and Path("report/01_optimizer_regularizer.ipynb") in first
    assert [name for name in first if first[name] != second[name]] == []


def test_a_warning_in_a_notebook_run_by_reproduce_reaches_the_terminal_as_one_plain_line(tmp_path, capsys):
    import nbformat

    from sparsitylib.reproduce import execute

    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                 "display_name": "Python 3"},
                                                  "language_info": {"name": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell("import warnings\nfrom sparsitylib.notebook import start\n"
                                                f"start('01_optimizer_regularizer', preset='smoke', runs_dir={str(tmp_path)!r}, "
                                                f"figures_dir={str(tmp_path / 'f')!r})\n"
                                                "warnings.warn('a run was trained again')")]
    source = tmp_path / "warns.ipynb"
    nbformat.write(notebook, source)
    assert execute(source, tmp_path / "out.ipynb", {}, tmp_path) == ("ok", None)
    shown = capsys.readouterr().out
    assert "    warning: a run was trained again\n" in shown
    assert "UserWarning" not in shown and "warnings.warn(" not in shown  # no category, path or code line


def test_the_kernels_own_log_of_an_interrupt_does_not_reach_the_terminal(tmp_path, capfd):
    """jupyter_client interrupts a kernel before shutting it down; one caught handling a message logs
    '[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.' on its stderr, our terminal."""
    import nbformat

    from sparsitylib.reproduce import execute

    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                 "display_name": "Python 3"},
                                                  "language_info": {"name": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell("from ipykernel.kernelapp import IPKernelApp\n"
                                                "IPKernelApp.instance().log.error('KeyboardInterrupt caught in kernel.')\n"
                                                "print('the cell ran')")]
    source = tmp_path / "interrupted.ipynb"
    nbformat.write(notebook, source)
    assert execute(source, tmp_path / "out.ipynb", {}, tmp_path) == ("ok", None)
    shown = capfd.readouterr()
    assert "the cell ran" in shown.out
    assert "KeyboardInterrupt caught" not in shown.out + shown.err


@pytest.mark.parametrize("parameters,message", [
    ({"optimizers": ["lion"]}, "optimizers: unknown optimizer 'lion'"),
    ({"optimizers": "adam"}, "optimizers must be a list"),
    ({"colour": "red"}, "unknown notebook parameter 'colour'"),
    ({"seeds": [-1]}, "seed must be a non-negative integer"),
])
def test_reproduce_refuses_bad_notebook_parameters_before_any_notebook_runs_or_anything_is_written(tmp_path, parameters,
                                                                                                   message):
    figures = tmp_path / "figures"
    with pytest.raises(ValueError, match=message):
        reproduce("smoke", only=["01"], parameters=parameters, figures_dir=figures, runs_dir=tmp_path / "runs")
    assert not figures.exists() and not (tmp_path / "runs").exists()

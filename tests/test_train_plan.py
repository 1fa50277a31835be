"""scripts/train_plan.py: the runs of a report's plan, built as its notebooks build them."""

import importlib.util
from pathlib import Path

from sparsitylib import hypotheses
from sparsitylib.notebook import start
from sparsitylib.reproduce import planned_parameters

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_plan.py"


def load_script():
    spec = importlib.util.spec_from_file_location("train_plan", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_usual_plan_is_trained_headline_first_interleaved_by_seed_with_the_notebooks_run_ids(tmp_path):
    train_plan = load_script()
    found = train_plan.groups("usual", tmp_path)
    labels = [label for label, _ in found]
    assert labels[0] == "01 headline arms and 08's variants" and labels[1] == "08 extra baseline seeds"
    first = found[0][1]
    assert [c.seed for c in first] == sorted(c.seed for c in first) and len(first) == 40  # 8 arms x 5 seeds
    order = train_plan.ordered(found)
    assert len({c.run_id for c in order}) == len(order)
    # the ids are the ones notebook 01 asks for with the plan's parameters
    p = planned_parameters("usual", "01_optimizer_regularizer")
    exp = start("01_optimizer_regularizer", preset="usual", seeds=p["seeds"], runs_dir=str(tmp_path),
                figures_dir=str(tmp_path / "f"))
    notebook = hypotheses.optimizer_grid(exp, p["optimizers"], p["compared_seeds"], p["other_seeds"], p["unregularized"],
                                         p["weight_decay"], p["decoupled"])
    assert {c.run_id for c in notebook} <= {c.run_id for c in order}
    assert {c.optimizer for c in found[labels.index("09 pruning")][1]} == {"rmsprop", "sgd"}
    # and notebook 09's, built by the same function with the notebook's defaults
    p = planned_parameters("usual", "09_pruning")
    exp = start("09_pruning", preset="usual", seeds=p["seeds"], runs_dir=str(tmp_path), figures_dir=str(tmp_path / "f"))
    pruning = hypotheses.pruning_grid(exp, p["models"], [exp.config().dataset], p["optimizer"], p["decay"],
                                      p["slimming_gamma_l1"])
    assert {c.run_id for c in pruning} == {c.run_id for c in found[labels.index("09 pruning")][1]}
    assert len(pruning) == 3 * len(p["seeds"]) and sum(c.gamma_l1 > 0 for c in pruning) == len(p["seeds"])


def test_weights_trains_the_archived_runs_of_a_group_again_into_the_store(tmp_path, monkeypatch):
    import sys

    from sparsitylib.archive import write_archive
    from sparsitylib.presets import preset_config
    from sparsitylib.store import RunStore

    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # the spawned worker imports the script by name
    sys.modules.pop("train_plan", None)
    import train_plan

    config = preset_config("smoke", dataset="synthetic", width=0.125, epochs=1, batch_size=50, train_size=200,
                           test_size=100, snapshot_size=32, device="cpu", optimizer="adam", lr=1e-2)
    record = RunStore(tmp_path / "elsewhere", archive=[]).run(config, quiet=True)
    archive = tmp_path / "runs.jsonl.gz"
    write_archive([record], archive)
    monkeypatch.setattr(train_plan, "groups", lambda preset, runs: [("09 pruning", [config]), ("01 other", [config])])
    monkeypatch.setattr(train_plan, "archive_path", lambda preset: archive)
    runs = tmp_path / "runs"
    assert train_plan.weights("usual", runs, "09", workers=1) == 1
    assert RunStore(runs, archive=[]).run_ids() == [config.run_id]  # stored, with its weights
    assert (runs / "retrained.txt").read_text().split() == [config.run_id]
    assert train_plan.weights("usual", runs, "09", workers=1) == 0  # nothing left to train

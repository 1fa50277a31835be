"""Train the runs a preset's report plan needs, in the background, before its notebooks render.

A report at the usual rates needs about 20 hours of our 2-core machine, so it is trained over
several sessions: the runs go in priority order, each group interleaved by seed (every arm grows
together, so a session cut short leaves comparable arms), and finished runs are added to the
report's run archive, which is committed as it grows. Each notebook's runs are built by the same
functions the notebook calls, with the plan's parameters (``presets.REPORTS``), so the run ids are
the ones the notebook will ask for.

    OMP_NUM_THREADS=1 python scripts/train_plan.py train [--preset usual] [--runs DIR] [--workers 2]
    python scripts/train_plan.py archive [--preset usual] [--runs DIR]   # add finished runs to the archive
    python scripts/train_plan.py status [--preset usual] [--runs DIR]    # planned, stored, archived, per group
    python scripts/train_plan.py weights --group 09 [--preset usual] [--runs DIR] [--workers 2]

``weights`` trains again, in parallel, the archived runs of the groups whose label starts with
``--group`` (09 and 11 prune networks, and an archive keeps no weights), into the store, as
``RunStore.retrain_archived`` does (``retrained.txt``, a warning on drift): a render with
``--runs DIR`` then finds their weights instead of training them again one after another.

Priority (usual): notebook 01's headline arms, AdamW and notebook 08's variant; 08's extra baseline
seeds; 09; 01's Table 1 row; 12; 10; 05; 06; 04; 07; 11; 13 last (issue 24 asks for 01-12; 13 is
not what the usual regime is for).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sparsitylib import hypotheses
from sparsitylib.archive import read_archive, write_archive
from sparsitylib.grid import run_grid
from sparsitylib.notebook import start
from sparsitylib.reproduce import planned_parameters, report_plan
from sparsitylib.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def experiment(preset: str, name: str, runs: Path, seeds=None):
    p = planned_parameters(preset, name)
    exp = start(name, preset=preset, seeds=seeds if seeds is not None else p["seeds"], dataset=p.get("dataset"),
                model=p.get("model"), width=p.get("width"), epochs=p.get("epochs"), runs_dir=str(runs),
                figures_dir=str(ROOT / "scratch" / "train_plan" / preset))
    return exp, p


def groups(preset: str, runs: Path) -> list[tuple[str, list]]:
    """(label, configs) in priority order, for the notebooks in ``preset``'s plan."""
    plan = report_plan(preset)
    found: list[tuple[str, list]] = []

    def add(label, configs):
        found.append((label, sorted(configs, key=lambda c: c.seed)))

    if "01_optimizer_regularizer" in plan:
        exp, p = experiment(preset, "01_optimizer_regularizer", runs)
        table = hypotheses.optimizer_grid(exp, p["optimizers"], p["compared_seeds"], p["other_seeds"],
                                          p["unregularized"], p["weight_decay"], p["decoupled"])
        headline = [c for c in table if (c.optimizer, c.decay_mode) in hypotheses.HEADLINE or c.optimizer in p["decoupled"]]
        first = headline
        rest = [c for c in table if c not in headline]
    else:
        first, rest = [], []
    baseline_extra = []
    if "08_mechanism" in plan:
        exp, p = experiment(preset, "08_mechanism", runs)
        mechanism = hypotheses.mechanism_grid(exp, p["optimizer"], p["baseline_seeds"], p["variants"], p["leaky_slope"])
        first += [c for c in mechanism if c.decay_params != "all" or c.activation != "relu" or c.norm != "batchnorm"]
        baseline_extra = [c for c in mechanism if c not in first and c.seed not in p["seeds"]]
    add("01 headline arms and 08's variants", first)
    add("08 extra baseline seeds", baseline_extra)
    if "09_pruning" in plan:
        exp, p = experiment(preset, "09_pruning", runs)
        add("09 pruning", hypotheses.pruning_grid(exp, p["models"] or ["basicnet", "vgg16"],
                                                  p["datasets"] or [exp.config().dataset], p["optimizer"], p["decay"],
                                                  p["slimming_gamma_l1"]))
    add("01 Table 1 row", rest)
    if "12_recycling" in plan:
        exp, p = experiment(preset, "12_recycling", runs)
        add("12 recycling", hypotheses.recycling_grid(exp, p["optimizer"], p["recycle_init"]))
    if "10_training_length" in plan:
        exp, p = experiment(preset, "10_training_length", runs)
        design = hypotheses.lr_x_steps_design(p["design_learning_rates"][0], p["reference_epochs"] or exp.config().epochs,
                                              p["design_learning_rates"])
        add("10 learning rates at equal lr x steps", hypotheses.lr_design_grid(exp, p["optimizer"], design))
        if p["saturation_epochs"]:
            add("10 the clock to the paper's", hypotheses.saturation_grid(
                exp, p["saturation_optimizers"], p["saturation_seeds"], p["saturation_epochs"],
                p["saturation_batch_size"], p["saturation_reach"]))
    if "05_batch_size" in plan:
        exp, p = experiment(preset, "05_batch_size", runs)
        add("05 batch size", [c for configs in hypotheses.batch_size_grid(exp, p["optimizer"], p["batch_sizes"])
                              for c in configs])
    if "06_task_difficulty" in plan:
        exp, p = experiment(preset, "06_task_difficulty", runs)
        add("06 task difficulty", [c for configs in hypotheses.task_grid(exp, p["optimizer"], p["class_counts"],
                                                                         p["train_sizes"], p["datasets"] or [])
                                   for c in configs])
    if "04_regularization_and_lr" in plan:
        exp, p = experiment(preset, "04_regularization_and_lr", runs)
        add("04 regularization and learning rate", [c for configs in hypotheses.regularization_grid(
            exp, p["optimizer"], p["decays"], p["reference_optimizer"], p["reference_decays"], p["learning_rates"])
            for c in configs])
    if "07_capacity_architecture" in plan:
        exp, p = experiment(preset, "07_capacity_architecture", runs)
        add("07 capacity and architecture", [c for configs in hypotheses.capacity_grid(
            exp, p["width_seeds"], p["widths"], p["architectures"]) for c in configs])
    if "11_resnets" in plan:
        exp, p = experiment(preset, "11_resnets", runs)
        add("11 ResNet-18", hypotheses.resnet_grid(exp))
    if "13_precision" in plan:
        exp, p = experiment(preset, "13_precision", runs)
        add("13 precision", hypotheses.precision_grid(exp, p["optimizers"]))
    return found


def ordered(found) -> list:
    """Every config once, in the order of its first group."""
    seen, order = set(), []
    for _, configs in found:
        for config in configs:
            if config.run_id not in seen:
                seen.add(config.run_id)
                order.append(config)
    return order


def archive_path(preset: str) -> Path:
    return ROOT / "figures" / preset / "runs.jsonl.gz"


def archive(preset: str, runs: Path) -> int:
    """Add the finished planned runs the store holds to the preset's archive; returns how many."""
    planned = {c.run_id for c in ordered(groups(preset, runs))}
    path = archive_path(preset)
    kept = read_archive(path) if path.is_file() else {}
    store = RunStore(runs)
    new = [r for r in store.records([i for i in store.run_ids() if i in planned and i not in kept])]
    write_archive([*kept.values(), *new], path)
    print(f"{len(new)} runs added, {len(kept) + len(new)} in {path.relative_to(ROOT)}")
    return len(new)


def status(preset: str, runs: Path) -> None:
    path = archive_path(preset)
    archived = set(read_archive(path)) if path.is_file() else set()
    stored = set(RunStore(runs).run_ids())
    seen = set()
    for label, configs in groups(preset, runs):
        ids = [c.run_id for c in configs if c.run_id not in seen]
        seen.update(ids)
        print(f"{label}: {len(ids)} new runs, {sum(i in stored for i in ids)} stored, "
              f"{sum(i in archived for i in ids)} archived")


def _retrain(runs: Path, archive: Path, run_id: str) -> str:
    import warnings

    import torch

    from sparsitylib.voice import plain_warning

    warnings.formatwarning = plain_warning  # a drift warning as one "warning: ..." line, as on the command line
    torch.set_num_threads(1)
    store = RunStore(runs, archive=[archive])
    record = store.get(run_id)
    if record is not None and record.get("archived"):
        store.retrain_archived(record)
    return run_id


def weights(preset: str, runs: Path, group: str, workers: int) -> int:
    """Train again the archived runs of the groups labelled ``group...`` that the store lacks."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    found = [(label, configs) for label, configs in groups(preset, runs) if label.startswith(group)]
    if not found:
        raise SystemExit(f"error: no group of the {preset} plan starts with {group!r}")
    archived = set(read_archive(archive_path(preset))) if archive_path(preset).is_file() else set()
    stored = set(RunStore(runs, archive=[]).run_ids())
    wanted = sorted({c.run_id for _, configs in found for c in configs if c.run_id in archived - stored})
    print(f"{', '.join(label for label, _ in found)}: {len(wanted)} archived runs to train again for their weights "
          f"on {workers} workers", flush=True)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_retrain, runs, archive_path(preset), run_id) for run_id in wanted]
        for done, future in enumerate(as_completed(futures), start=1):
            print(f"  {future.result()} ({done}/{len(wanted)})", flush=True)
    return len(wanted)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["train", "archive", "status", "weights"])
    parser.add_argument("--group", default=None, help="weights: the groups whose label starts with this, e.g. 09")
    parser.add_argument("--preset", default="usual")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs", help="the run store (default ./runs)")
    parser.add_argument("--workers", type=int, default=2, help="training processes (one per core)")
    args = parser.parse_args(argv)
    if args.preset not in {"usual", "long", "quick"}:
        parser.error(f"--preset {args.preset}: this script knows the plans of usual, long and quick")
    if args.command == "train":
        order = ordered(groups(args.preset, args.runs))
        print(f"{len(order)} planned runs, in this order:", flush=True)
        for config in order:
            print(f"  {config.run_id} {config.optimizer}+{config.decay_mode} seed {config.seed}", flush=True)
        run_grid(order, root=args.runs, max_workers=args.workers).raise_for_errors()
    elif args.command == "archive":
        archive(args.preset, args.runs)
    elif args.command == "weights":
        if not args.group:
            parser.error("weights needs --group, e.g. --group 09")
        weights(args.preset, args.runs, args.group, args.workers)
    else:
        status(args.preset, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

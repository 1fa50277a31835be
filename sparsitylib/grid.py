"""Run many configs: on a local process pool by default, or on any ``concurrent.futures`` executor,
in particular Dask distributed's ``Client(...).get_executor()`` for a cluster.

Runs already in the store are read in this process and never submitted. Every submitted run is
trained by ``RunStore.run`` in a worker, so results land in the same store whichever executor ran
them (on a cluster, the store folder must be on a file system every worker sees). A run that
raises (a missing data set, a worker that died) is reported with its config; the others go on.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import statistics
import sys
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm as plain_tqdm
from tqdm.auto import tqdm

from .config import RunConfig, from_dict
from .data import DATASETS
from .store import RunStore, RunTables, tables_from_records


@dataclass
class GridError:
    config: RunConfig
    error: str


@dataclass
class GridResult:
    """Records of the grid's runs (in the order of the configs, duplicates removed), and the
    configs whose execution raised."""

    records: list[dict]
    errors: list[GridError] = field(default_factory=list)
    trained: int = 0

    def tables(self) -> RunTables:
        return tables_from_records(self.records)

    def raise_for_errors(self) -> None:
        if self.errors:
            lines = "\n".join(f"  {e.config.run_id} {e.config.to_dict()}: {e.error}" for e in self.errors)
            raise RuntimeError(f"{len(self.errors)} run(s) raised:\n{lines}")


def make_grid(base: dict | None = None, seeds=(0,), preset: str | None = None, **vary) -> list[RunConfig]:
    """Configs for every combination of the ``vary`` lists, for every seed.

    >>> configs = make_grid({"epochs": 2}, seeds=[0, 1], preset="smoke", optimizer=["sgd", "adam"])
    >>> len(configs)
    4
    """
    from .presets import preset_config

    base = dict(base or {})
    names = list(vary)
    for name, values in vary.items():
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise ValueError(f"grid values for {name!r} must be a non-empty list, got {values!r}")
    if not isinstance(seeds, (list, tuple)) or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    return [preset_config(preset, **{**base, **dict(zip(names, combo)), "seed": seed})
            for combo in itertools.product(*(vary[n] for n in names)) for seed in seeds]


def equal_step_epochs(reference: RunConfig, train_size: int | None = None, batch_size: int | None = None) -> int:
    """Epochs that give a run on ``train_size`` images at ``batch_size`` (each ``None``: the
    reference's) about as many update steps as ``reference`` (rounded, at least one).

    >>> from sparsitylib.presets import preset_config
    >>> equal_step_epochs(preset_config("quick"), batch_size=256)  # quick: batch 64, 8 epochs
    32
    """
    reference_size = reference.train_size or DATASETS[reference.dataset].train_images
    reference_steps = reference.epochs * math.ceil(reference_size / reference.batch_size)
    steps_per_epoch = math.ceil((train_size or reference_size) / (batch_size or reference.batch_size))
    return max(1, round(reference_steps / steps_per_epoch))


def _train_one(config_values: dict, root: str, download: bool) -> dict:
    """Worker side: train (or find) one run in the shared store."""
    return RunStore(root).run(from_dict(config_values), quiet=True, download=download)


def _init_worker(threads: int, gpu_ids) -> None:
    if gpu_ids is not None:
        # one GPU per worker: claim the next free id before CUDA is initialized
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_ids.get())
    import torch

    torch.set_num_threads(threads)


def local_executor(runs: int, max_workers: int | None = None) -> ProcessPoolExecutor:
    """A spawn-based process pool sized to this machine: one worker per GPU when there are
    GPUs, else one worker per core (capped by ``runs``), the cores shared out as threads."""
    import torch

    context = multiprocessing.get_context("spawn")
    cores = os.cpu_count() or 1
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus:
        workers = min(max_workers or gpus, gpus, max(runs, 1))
        queue = context.Manager().Queue()
        for gpu in range(workers):
            queue.put(gpu)
        return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                   initargs=(max(1, cores // workers), queue))
    workers = max(1, min(max_workers or cores, cores, max(runs, 1)))
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                               initargs=(max(1, cores // workers), None))


PLAIN_PROGRESS = "SPARSITYLIB_PLAIN_PROGRESS"  # set (by reproduce): a text progress line per finished run


def steps_of(config: RunConfig) -> int | None:
    """Update steps a config trains for (None when its training-set size is the data set's, unknown here)."""
    return config.epochs * math.ceil(config.train_size / config.batch_size) if config.train_size else None


def _speed_key(config: dict) -> tuple:
    return (config.get("model"), config.get("width"), config.get("batch_size"), config.get("dataset"))


def estimate_seconds(configs: list[RunConfig], records: list[dict], workers: int) -> tuple[float | None, int]:
    """Wall time to train ``configs`` on ``workers`` parallel workers, from the seconds per step of
    completed stored runs of the same network, batch size and data set (their median); (seconds,
    runs the estimate rests on), seconds None when some config has no such run."""
    per_step: dict[tuple, list[float]] = {}
    for record in records:
        duration, steps = record.get("environment", {}).get("duration_s"), record.get("metrics", {}).get("steps")
        if record.get("status") == "completed" and duration and steps:
            per_step.setdefault(_speed_key(record["config"]), []).append(duration / steps)
    total, used = 0.0, set()
    for config in configs:
        key = _speed_key(config.to_dict())
        known, steps = per_step.get(key), steps_of(config)
        if not known or steps is None:
            return None, 0
        total += statistics.median(known) * steps
        used.add(key)
    return total / max(workers, 1), sum(len(per_step[key]) for key in used)


def _announce(missing: list[RunConfig], stored: int, store: RunStore, workers: int) -> None:
    """Say, before training, how many runs will be trained and roughly how long it will take."""
    seconds, basis = estimate_seconds(missing, store.records(), workers)
    when = (f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s") if seconds is not None else \
        "time unknown (no stored run of this network to estimate from)"
    print(f"training {len(missing)} run{'s' if len(missing) != 1 else ''} ({stored} already stored) on {workers} "
          f"worker{'s' if workers != 1 else ''}: {when}" + (f", from {basis} stored runs' speed on this machine"
                                                             if seconds is not None else ""), file=sys.stderr, flush=True)


def run_grid(
    configs: list[RunConfig],
    executor: Executor | None = None,
    *,
    root: str | Path | None = None,
    max_workers: int | None = None,
    download: bool = False,
    quiet: bool = False,
) -> GridResult:
    """Make sure every config has a stored run; return their records.

    Args:
        configs: the runs to have (duplicates are run once).
        executor: any ``concurrent.futures.Executor``; ``None`` uses ``local_executor`` (a spawn
            process pool sized to the machine). For Dask: ``Client(address).get_executor()``.
        root: the run store (default ``$SPARSITYLIB_RUNS`` or ``./runs``), made absolute so that
            workers started elsewhere find it.
        max_workers: cap on the local pool's workers.
        download: let workers download a missing data set.
        quiet: no progress bar.
    """
    store = RunStore(Path(root).resolve() if root is not None else RunStore().root.resolve())
    unique = list({config.run_id: config for config in configs}.values())
    records: dict[str, dict] = {}
    missing = []
    for config in unique:
        record = store.get(config.run_id)
        if record is None:
            missing.append(config)
        else:
            records[config.run_id] = {**record, "cached": True}
    errors = []
    if missing:
        store.check_writable()  # one clear error before any work, not one per run
        own_executor = executor is None
        executor = executor or local_executor(len(missing), max_workers)
        if not quiet:
            _announce(missing, len(records), store, getattr(executor, "_max_workers", None) or 1)
        try:
            futures = {executor.submit(_train_one, config.to_dict(), str(store.root), download): config
                       for config in missing}
            bar = plain_tqdm if os.environ.get(PLAIN_PROGRESS) else tqdm
            progress = bar(as_completed(futures), total=len(futures), disable=quiet, desc="runs", unit="run",
                           # plain: a line per finished run, and not the last one again when the bar closes
                           **({"file": sys.stderr, "mininterval": 0, "ascii": True, "leave": False}
                              if bar is plain_tqdm else {}))
            for future in progress:
                config = futures[future]
                try:
                    records[config.run_id] = future.result()
                except Exception as error:  # a worker's failure must not stop the grid
                    errors.append(GridError(config, f"{type(error).__name__}: {error}"))
                progress.set_postfix(failed=len(errors), refresh=False)
        finally:
            if own_executor:
                executor.shutdown()
    return GridResult(records=[records[c.run_id] for c in unique if c.run_id in records], errors=errors,
                      trained=len(missing) - len(errors))

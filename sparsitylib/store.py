"""The run store: every run saved by its config's hash, so nothing is trained twice.

Layout under the store root (``$SPARSITYLIB_RUNS`` or ``./runs``)::

    <run_id>/record.json     config, environment, metrics, per-layer/per-filter tables, history
    <run_id>/weights.pt      the state_dict (load with weights_only=True)
    .work/<run_id>/          checkpoint of a run in progress (resumed if the run was killed)
    .locks/<run_id>.lock     held while a process trains that run
    .trash/                  corrupt or replaced runs, moved aside rather than deleted
    retrained.txt            ids of archived runs trained again for their weights, one a line

A store can also read a run-record archive (``sparsitylib.archive``; ``$SPARSITYLIB_ARCHIVE``):
``get`` falls back to it for runs not in the folder, and ``load_model`` retrains such a run, since
archived records carry no weights.

A run folder appears in one ``rename`` once both files are complete, so a killed process never
leaves something that looks finished. A process that wants a run another process is training
waits for it (an ``flock`` on the lock file) and then reads the result.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import ADDED_LATER, RunConfig, from_record, older_value
from .archive import MEASURED_KINDS, CorruptRunWarning, check_record, load_archive  # noqa: F401 (re-exported)
from .files import is_write_failure, write_atomically
from .models import ConvNet, ModelSpec, build_model

RECORD, WEIGHTS = "record.json", "weights.pt"
RETRAINED = "retrained.txt"


class RetrainDriftWarning(UserWarning):
    """An archived run trained again did not give the archived metrics (training is not
    deterministic across machines or library versions); the new run is used."""


class RunStoreError(OSError):
    """The run store cannot be written (not a folder, read-only, disk full); the message names the
    path and what to do."""


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, recorded with a run so a damaged weights file is caught."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_root() -> Path:
    return Path(os.environ.get("SPARSITYLIB_RUNS", "runs"))


def default_archives() -> list[Path]:
    """The run-record archives named by ``$SPARSITYLIB_ARCHIVE`` (paths separated by ``os.pathsep``)."""
    return [Path(p) for p in os.environ.get("SPARSITYLIB_ARCHIVE", "").split(os.pathsep) if p]


class RunStore:
    """A folder of runs, keyed by ``RunConfig.run_id``, optionally backed by run-record archives.

    ``archive``: an archive file (``sparsitylib.archive``) or a list of them, read by ``get`` for
    runs the folder does not have; ``None`` reads those named by ``$SPARSITYLIB_ARCHIVE`` (paths
    separated by ``os.pathsep``), ``[]`` none.
    """

    def __init__(self, root: str | Path | None = None, archive=None):
        self.root = Path(root) if root is not None else default_root()
        if archive is None:
            self.archives = default_archives()
        elif isinstance(archive, (str, Path)):
            self.archives = [Path(archive)]
        else:
            self.archives = [Path(p) for p in archive]

    def path(self, run_id: str) -> Path:
        return self.root / run_id

    # --- tables measured on stored networks (pruning comparisons), kept by key ------------------

    def measured(self, kind: str, key: str):
        """The rows kept under ``kind`` (``MEASURED_KINDS``) and ``key`` by ``keep_measured``, or
        ``None``: a pruning comparison or table computed once on this store's networks."""
        path = self.root / f".{kind}" / f"{key}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def keep_measured(self, kind: str, key: str, rows) -> None:
        """Keep ``rows`` (JSON-serializable) under ``kind`` and ``key``, written atomically."""
        path = self.root / f".{kind}" / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda temporary: temporary.write_text(json.dumps(rows)))

    # --- reading --------------------------------------------------------------------------------

    def get(self, run_id: str) -> dict | None:
        """The stored record of ``run_id``; else its archived record, marked ``"archived": True``
        (it has no weights); else ``None`` (no run, or only a corrupt one)."""
        folder = self.path(run_id)
        if folder.exists():
            try:
                return self._read_valid(folder, run_id)
            except (OSError, ValueError, KeyError, TypeError) as error:
                self._set_aside_corrupt(folder, run_id, error)
        return self._archived(run_id)

    def _archived(self, run_id: str) -> dict | None:
        for path in self.archives:  # the first archive that has the run wins
            record = load_archive(path).get(run_id)
            if record is not None:
                return {**record, "archived": True}
        return None

    def _set_aside_corrupt(self, folder: Path, run_id: str, error: Exception) -> None:
        """Warn once about a corrupt run and move it to ``.trash``, so the next reader finds no run
        (rather than the same damage) and it is recomputed."""
        try:
            self._move_aside(folder)
            fate = f"moved to {self.root / '.trash'}; it will be recomputed"
        except FileNotFoundError:
            return  # another process moved it aside first and warned
        except OSError as move_error:
            fate = f"it could not be moved aside ({move_error}); it will be recomputed"
        warnings.warn(f"stored run {run_id} in {folder} is corrupt ({error}); {fate}", CorruptRunWarning, stacklevel=3)

    def set_aside_config(self, run_id: str) -> RunConfig | None:
        """The config of ``run_id`` from its newest copy moved to ``.trash`` (as corrupt, or replaced)
        whose record still reads, e.g. one whose weights failed their checksum: what it takes to
        compute the run again (``run``). None if there is no such copy."""
        for folder in sorted((self.root / ".trash").glob(f"{run_id}.*"), reverse=True):  # newest first: by timestamp
            try:
                config = from_record(json.loads((folder / RECORD).read_text())["config"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if config.run_id == run_id:
                return config
        return None

    def _read_valid(self, folder: Path, run_id: str) -> dict:
        record = json.loads((folder / RECORD).read_text())
        check_record(record, run_id)
        if record["status"] == "completed":
            if not (folder / WEIGHTS).is_file():
                raise ValueError(f"{WEIGHTS} is missing")
            expected = record.get("weights_sha256")
            if expected is not None and file_sha256(folder / WEIGHTS) != expected:
                raise ValueError(f"{WEIGHTS} does not match the checksum in {RECORD} (damaged or replaced)")
        return record

    def run_ids(self) -> list[str]:
        """The ids of the runs in the store's folder (archived runs are not listed)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def records(self, run_ids=None) -> list[dict]:
        """All readable records in the folder (or those of ``run_ids``, which may be archived),
        skipping corrupt ones with a warning."""
        ids = self.run_ids() if run_ids is None else run_ids
        return [r for r in (self.get(i) for i in ids) if r is not None]

    def load_model(self, run_id: str, device: str | torch.device = "cpu") -> ConvNet:
        """The trained network of a completed run, in eval mode. A run only in an archive is
        trained again into the store first (see ``retrain_archived``)."""
        record = self.get(run_id)
        if record is None:
            raise KeyError(f"no stored run {run_id!r} in {self.root}; known runs: {len(self.run_ids())}")
        if record["status"] != "completed":
            raise ValueError(f"run {run_id} failed ({record['failure_reason']}); it has no weights")
        if record.get("archived"):
            record = self.retrain_archived(record)
        model = build_model(ModelSpec.from_dict(record["model_spec"]))
        state = torch.load(self.path(run_id) / WEIGHTS, map_location=device, weights_only=True)
        model.load_state_dict(state)
        return model.to(device).eval()

    def retrain_archived(self, archived: dict) -> dict:
        """Train an archived run again from its config, for its weights; return the new record.

        Says so on stderr, appends the run id to ``retrained.txt`` in the store root (``reproduce``
        counts retrained runs there), and warns (``RetrainDriftWarning``) if the new test error or
        share of dead filters differs from the archived one.
        """
        run_id = archived["run_id"]
        print(f"retraining {run_id} for its weights (archived records carry none)", file=sys.stderr, flush=True)
        record = self.run(from_record(archived["config"]), force=True, quiet=True)
        with open(self.root / RETRAINED, "a") as log:
            log.write(f"{run_id}\n")
        if record["status"] != "completed":
            raise ValueError(f"retraining archived run {run_id} failed ({record['failure_reason']}); it has no weights")
        drift = {key: (archived["metrics"].get(key), record["metrics"].get(key))
                 for key in ("test_error", "dead_by_activation")
                 if archived["metrics"].get(key) != record["metrics"].get(key)}
        if drift:
            changes = ", ".join(f"{key} {old} -> {new}" for key, (old, new) in drift.items())
            warnings.warn(f"run {run_id} trained again does not match its archived record ({changes}); "
                          f"using the new run", RetrainDriftWarning, stacklevel=3)
        return record

    # --- running --------------------------------------------------------------------------------

    def run(self, config: RunConfig, *, force: bool = False, quiet: bool = False, download: bool = False) -> dict:
        """The record of ``config``: from the store if there, else trained now and stored.

        ``force=True`` retrains and replaces a stored run. The returned record carries
        ``"cached": True`` when it came from the store.
        """
        from .train import load_config_data, train  # the data and model stacks; keep reading cheap

        run_id = config.run_id
        if not force:
            record = self.get(run_id)
            if record is not None:
                return {**record, "cached": True}
        self.check_writable()
        # loaded before anything is written: a missing or damaged data set leaves no trace in the store
        data = load_config_data(config, "cpu", download)
        with self._writing("train and save a run"), self._lock(run_id):
            if not force:  # another process may have finished it while we waited
                record = self.get(run_id)
                if record is not None:
                    return {**record, "cached": True}
            work = self.root / ".work" / run_id
            for stale in work.parent.glob(f"{run_id}.staging*"):  # left by a process that died publishing
                shutil.rmtree(stale, ignore_errors=True)
            work.mkdir(parents=True, exist_ok=True)
            try:
                trained = train(config, checkpoint=work / "checkpoint.pt", quiet=quiet, data=data)
            finally:
                if work.is_dir() and not any(work.iterdir()):  # nothing to resume from
                    work.rmdir()
            record = self._publish(run_id, trained.record,
                                   trained.model if trained.record["status"] == "completed" else None)
            shutil.rmtree(work, ignore_errors=True)
        return {**record, "cached": False}

    def check_writable(self) -> None:
        """Raise ``RunStoreError`` unless runs can be saved under the root (created if missing)."""
        if self.root.exists() and not self.root.is_dir():
            raise RunStoreError(f"the run store {self.root} is a file, not a folder: point SPARSITYLIB_RUNS "
                                f"(or --runs) at a folder")
        with self._writing("create the run store"):
            self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise RunStoreError(f"the run store {self.root.resolve()} is not writable: make it writable, or point "
                                f"SPARSITYLIB_RUNS (or --runs) at a folder that is")

    @contextlib.contextmanager
    def _writing(self, action: str):
        """Turn a failed write (read-only file system, full disk) into one ``RunStoreError``."""
        try:
            yield
        except RunStoreError:
            raise
        except (OSError, RuntimeError) as error:
            if not is_write_failure(error):
                raise
            raise RunStoreError(f"could not {action} in the run store {self.root.resolve()} ({error}). Free space "
                                f"or make it writable, or point SPARSITYLIB_RUNS (or --runs) at another folder; "
                                f"nothing of this run was kept") from error

    def _publish(self, run_id: str, record: dict, model) -> dict:
        """Write the run under its id in one rename; return the record as stored."""
        staging = self.root / ".work" / f"{run_id}.staging{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir(parents=True)
            if model is not None:
                torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, staging / WEIGHTS)
                record = {**record, "weights_sha256": file_sha256(staging / WEIGHTS)}
            (staging / RECORD).write_text(json.dumps(record, indent=1))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a full disk leaves nothing for the next run to trip on
            raise
        final = self.path(run_id)
        if final.exists():
            self._move_aside(final)
        os.rename(staging, final)
        return record

    def _move_aside(self, folder: Path) -> None:
        trash = self.root / ".trash"
        trash.mkdir(parents=True, exist_ok=True)
        os.rename(folder, trash / f"{folder.name}.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}")

    @contextlib.contextmanager
    def _lock(self, run_id: str):
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{run_id}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# --- tidy tables -------------------------------------------------------------------------------


@dataclass
class RunTables:
    """Runs as tidy DataFrames: ``runs`` (one row per run: config + metrics), and in long form
    ``layers`` (run x layer), ``filters`` (run x filter), ``history`` (run x epoch) and
    ``history_layers`` (run x epoch x layer: dead filters and |gamma| quantiles).
    ``history_filters()`` builds the largest table, run x epoch x filter, on first request and
    keeps it (a notebook asks for it from several analyses of the same runs)."""

    runs: pd.DataFrame
    layers: pd.DataFrame
    filters: pd.DataFrame
    history: pd.DataFrame
    history_layers: pd.DataFrame
    records: list
    _history_filters: pd.DataFrame | None = field(default=None, init=False, repr=False, compare=False)

    def history_filters(self) -> pd.DataFrame:
        """Per epoch and filter: ``dead`` on the snapshot images, selectivity (NaN when dead), |gamma|
        and beta, with the filter's final status (``dead_by_activation``) from the full measurement.
        Runs stored before a column was recorded have NaN there (``dead`` is then read from the
        selectivity, NaN exactly when the filter was dead on the snapshot). Built once; each call
        returns a shallow copy, so adding a column to it changes nothing here."""
        if self._history_filters is None:
            self._history_filters = self._build_history_filters()
        return self._history_filters.copy(deep=False)

    def _build_history_filters(self) -> pd.DataFrame:
        frames = []
        for record in self.records:
            if not record.get("filters"):
                continue
            filters = pd.DataFrame(record["filters"])
            final = filters[["layer", "filter", "dead_by_activation"]]
            # filters without an activation criterion (a residual branch): never "dead on the snapshot"
            unmeasured = ~filters["measured"].astype(bool) if "measured" in filters else pd.Series(False, filters.index)
            for row in record["history"]:
                frame = final.copy()
                frame["selectivity"] = row["filter_selectivity"]
                frame["gamma"] = row.get("filter_gamma", np.nan)
                frame["beta"] = row.get("filter_beta", np.nan)
                if "filter_dead" in row:
                    frame["dead"] = pd.Series(row["filter_dead"], dtype="boolean")
                else:  # NaN selectivity = dead, where the layer has an activation criterion at all
                    frame["dead"] = frame["selectivity"].isna().astype("boolean").mask(unmeasured)
                frame.insert(0, "epoch", row["epoch"])
                frame.insert(0, "run_id", record["run_id"])
                frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


GAMMA_QUANTILE_COLUMNS = ("gamma_min", "gamma_q10", "gamma_median", "gamma_q90", "gamma_max")
PER_LAYER_HISTORY = ("dead_per_layer", "gamma_quantiles", "filter_selectivity", "filter_gamma", "filter_beta",
                     "filter_dead")


def load_runs(root: str | Path | None = None, run_ids=None, *, include_failed: bool = True) -> RunTables:
    """Read stored runs into tidy DataFrames, joined on ``run_id``."""
    records = RunStore(root).records(run_ids)
    if not include_failed:
        records = [r for r in records if r["status"] == "completed"]
    return tables_from_records(records)


# settings added after runs were stored: a record without one was trained at its older value
ADDED_LATER_DEFAULTS = {name: older_value(name) for name in ADDED_LATER}


def tables_from_records(records: list[dict]) -> RunTables:
    runs, layers, filters, history, history_layers = [], [], [], [], []
    for record in records:
        run_id = record["run_id"]
        env = record.get("environment", {})
        runs.append({"run_id": run_id, "status": record["status"], "failure_reason": record.get("failure_reason"),
                     **ADDED_LATER_DEFAULTS, **record["config"], **record.get("metrics", {}), "device_used": env.get("device"),
                     "duration_s": env.get("duration_s")})
        layers.extend({"run_id": run_id, **row} for row in record.get("layers", []))
        if record.get("filters"):
            frame = pd.DataFrame(record["filters"])
            frame.insert(0, "run_id", run_id)
            filters.append(frame)
        names = [layer["layer"] for layer in record.get("layers", [])]
        for row in record.get("history", []):
            history.append({"run_id": run_id, **{k: v for k, v in row.items() if k not in PER_LAYER_HISTORY},
                            "dead_total": sum(d or 0 for d in row["dead_per_layer"])})  # None: no activation criterion
            for i, (dead, quantiles) in enumerate(zip(row["dead_per_layer"], row["gamma_quantiles"])):
                layer = names[i] if len(names) == len(row["dead_per_layer"]) else f"C{i + 1}"
                history_layers.append({"run_id": run_id, "epoch": row["epoch"], "layer": layer, "dead": dead,
                                       **dict(zip(GAMMA_QUANTILE_COLUMNS, quantiles))})
    return RunTables(
        runs=pd.DataFrame(runs),
        layers=pd.DataFrame(layers),
        filters=pd.concat(filters, ignore_index=True) if filters else pd.DataFrame(),
        history=pd.DataFrame(history),
        history_layers=pd.DataFrame(history_layers),
        records=records,
    )

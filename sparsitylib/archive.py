"""The run-record archive: a store's run records, without weights, in one committed file.

``figures/<preset>/runs.jsonl.gz`` holds the records behind a preset's report, so the report can
be re-rendered without training (``python -m sparsitylib reproduce --from-archive``). It is gzip'd
JSON lines sorted by run id, one per run::

    {"run_id": "...", "sha256": "<SHA-256 of the canonical JSON of the record>", "record": {...}}

where the canonical JSON is ``json.dumps(record, sort_keys=True, separators=(",", ":"))``. The same
records give the same bytes (the gzip header's time is 0), so an unchanged archive never shows up
as a change in git.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import warnings
import zlib
from pathlib import Path

from .config import from_record
from .files import write_atomically

# tables measured on a store's networks, each a folder ``.<kind>/`` of ``<key>.json``: pruning
# comparisons (notebook 09) and pruning tables (notebook 11), kept so a re-render needs no weights
MEASURED_KINDS = ("comparisons", "pruning")


class CorruptRunWarning(UserWarning):
    """A run record could not be read: a stored run is moved aside and recomputed, an archived one
    left out (its run counts as missing)."""


def check_record(record, run_id: str) -> None:
    """Raise ``ValueError`` or ``KeyError`` unless ``record`` is a readable record of ``run_id``:
    its run id, a known status, a config that parses, and a completed run's tables."""
    if not isinstance(record, dict):
        raise ValueError(f"{json.dumps(record)[:40]} is not a run record")
    if record.get("run_id") != run_id:
        raise ValueError(f"record names run {record.get('run_id')!r}")
    if record.get("status") not in ("completed", "failed"):
        raise ValueError(f"unknown status {record.get('status')!r}")
    from_record(record["config"])
    if record["status"] == "completed":
        for key in ("metrics", "layers", "filters", "history"):
            record[key]  # noqa: B018 - raises KeyError when missing


ARCHIVE_NAME = "runs.jsonl.gz"  # in figures/<preset>/
MEASUREMENTS_NAME = "measurements.json.gz"  # in figures/<preset>/: the store's measured tables
TRANSIENT_KEYS = ("cached", "archived")  # set by RunStore.run/get, not part of a stored record


def canonical_json(record: dict) -> str:
    """The JSON whose SHA-256 an archive entry carries: sorted keys, no spaces."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def write_archive(records, path: str | Path) -> Path:
    """Write run records (as ``RunStore.get`` returns them) to the archive ``path``, atomically.

    Transient keys (``cached``, ``archived``) are dropped; a run id given twice is written once.
    Returns the path written.
    """
    path = Path(path)
    by_id = {}
    for record in records:
        record = {k: v for k, v in record.items() if k not in TRANSIENT_KEYS}
        by_id[record["run_id"]] = record
    lines = []
    for run_id in sorted(by_id):
        text = canonical_json(by_id[run_id])
        digest = hashlib.sha256(text.encode()).hexdigest()
        lines.append(f'{{"run_id":{json.dumps(run_id)},"sha256":"{digest}","record":{text}}}\n')
    payload = gzip.compress("".join(lines).encode(), mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda temporary: temporary.write_bytes(payload))
    return path


def _check_entry(entry) -> tuple[str, dict]:
    """(run id, record) of one archive line, or ``ValueError`` saying what is wrong with it."""
    if not isinstance(entry, dict) or not isinstance(entry.get("record"), dict):
        raise ValueError("not an archive entry (run_id, sha256, record)")
    run_id, record = entry.get("run_id"), entry["record"]
    if hashlib.sha256(canonical_json(record).encode()).hexdigest() != entry.get("sha256"):
        raise ValueError("the record does not match its sha256 (edited or damaged)")
    check_record(record, run_id)
    config_id = from_record(record["config"]).run_id
    if config_id != run_id:
        raise ValueError(f"its config hashes to run id {config_id}, not {run_id} "
                         f"(archived by another library version, or edited)")
    return run_id, record


def read_archive(path: str | Path) -> dict[str, dict]:
    """The records of the archive ``path``, by run id, each checked like a stored record.

    An entry that fails a check (sha256, run id, config, status, missing tables) is reported with a
    ``CorruptRunWarning`` and left out, so its run counts as missing. An unreadable or truncated
    file is reported with one warning; the entries read before the damage are still used.
    """
    path = Path(path)
    lines = []
    try:
        with gzip.open(path, "rb") as handle:
            for line in handle:
                lines.append(line)
    except (OSError, EOFError, zlib.error) as error:
        if lines and not lines[-1].endswith(b"\n"):  # the cut-off line is part of the damage
            lines.pop()
        fate = ("is missing; no runs are read from it" if isinstance(error, FileNotFoundError)
                else f"is damaged ({error}); using the {len(lines)} entries before the damage")
        warnings.warn(f"run archive {path} {fate}", CorruptRunWarning, stacklevel=2)
    records = {}
    for number, line in enumerate(lines, start=1):
        entry = None
        try:
            entry = json.loads(line)
            run_id, record = _check_entry(entry)
        except (ValueError, KeyError, TypeError) as error:
            name = entry.get("run_id") if isinstance(entry, dict) else None
            warnings.warn(f"run archive {path}: entry {name or f'on line {number}'} is damaged ({error}); "
                          f"it is ignored, so that run counts as missing", CorruptRunWarning, stacklevel=2)
            continue
        records[run_id] = record
    return records


_LOADED: dict[tuple, dict[str, dict]] = {}


def load_archive(path: str | Path) -> dict[str, dict]:
    """``read_archive``, read once per process for as long as the file is unchanged (a notebook
    opens the run store several times)."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, stat.st_ino)
    except OSError:
        return read_archive(path)  # warns that it is missing
    if key not in _LOADED:
        _LOADED[key] = read_archive(path)
    return _LOADED[key]


def run_ids_behind(figures: str | Path) -> tuple[set[str], list[str]]:
    """The run ids listed (key ``run_ids``) in the verdict files ``<figures>/*.verdict.json``, and
    the names of the verdict files that list none."""
    run_ids, unlisted = set(), []
    for path in sorted(Path(figures).glob("*.verdict.json")):
        listed = json.loads(path.read_text()).get("run_ids")
        if listed is None:
            unlisted.append(path.name)
        else:
            run_ids.update(listed)
    return run_ids, unlisted


def write_measurements(store_root: str | Path, path: str | Path) -> int:
    """Write the tables measured on a store's networks (``RunStore.keep_measured``: the pruning
    comparisons of notebook 09, the pruning tables of notebook 11) to ``path``, gzip'd JSON
    ``{kind: {key: rows}}`` with sorted keys and a zero gzip time (the same tables give the same
    bytes). A re-render from the archive reads them instead of retraining runs for their weights.
    Returns how many tables were written (0: nothing written)."""
    tables = {kind: {table.stem: json.loads(table.read_text())
                     for table in sorted((Path(store_root) / f".{kind}").glob("*.json"))} for kind in MEASURED_KINDS}
    count = sum(map(len, tables.values()))
    if count:
        payload = gzip.compress(json.dumps(tables, sort_keys=True, separators=(",", ":")).encode(), mtime=0)
        write_atomically(Path(path), lambda temporary: temporary.write_bytes(payload))
    return count


def seed_measurements(path: str | Path, store_root: str | Path) -> int:
    """Copy the tables of a measurements file (``write_measurements``) into a store, leaving the
    tables it already has; returns how many were copied (0 when there is no file)."""
    path = Path(path)
    if not path.is_file():
        return 0
    copied = 0
    for kind, tables in json.loads(gzip.decompress(path.read_bytes())).items():
        folder = Path(store_root) / f".{kind}"
        for key, rows in tables.items():
            if not (folder / f"{key}.json").is_file():
                folder.mkdir(parents=True, exist_ok=True)
                write_atomically(folder / f"{key}.json", lambda temporary, rows=rows: temporary.write_text(json.dumps(rows)))
                copied += 1
    return copied

"""Run every hypothesis notebook with papermill and build the HTML report.

    python -m sparsitylib reproduce [--preset quick] [--only 01,03] [-p name value ...]
    python -m sparsitylib reproduce --from-archive [--preset quick] [--runs DIR]

Each notebook runs in its own kernel process. Executed notebooks and their HTML go to
``figures/<preset>/report/``, with ``index.html`` linking them and listing every verdict (each
figure and verdict linked to the notebook cell that made it, each notebook with its run ids); the
notebooks save their figures (PNG and PDF) in ``figures/<preset>/``; ``MANIFEST.json`` records the
commit, parameters and timings. A notebook that fails keeps its executed copy with the error
visible, the others still run, and the command exits non-zero.

``--from-archive`` re-renders the report from the committed run records
(``figures/<preset>/runs.jsonl.gz``, see ``sparsitylib.archive``) instead of training: the
notebooks run against a fresh run store (a temporary folder, or ``--runs DIR``) backed by the
archive, and only runs whose weights a notebook needs (pruning) are trained again.
"""

from __future__ import annotations

import ast
import contextlib
import html
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .claims import NOTEBOOKS
from .archive import ARCHIVE_NAME, MEASUREMENTS_NAME, seed_measurements
from .environment import git_commit
from .files import write_atomically
from .grid import PLAIN_PROGRESS
from .notebook import project_root
from .presets import PRESETS, REPORTS
from .store import RETRAINED, RunStore
from .verdict import Verdict


@dataclass
class NotebookRun:
    name: str
    status: str  # "ok" | "failed"
    seconds: float
    error: str | None
    verdicts: list
    retrained: list = field(default_factory=list)  # archived runs trained again for their weights


# The report's notebooks, by exact name: a copy (``01_optimizer_regularizer-Copy1.ipynb``) or any
# other notebook in notebooks/ is never part of it.
CANONICAL_NOTEBOOKS = NOTEBOOKS


def report_plan(preset: str) -> dict[str, dict]:
    """The notebooks a preset's report runs, each with the parameters that override its defaults
    (``presets.REPORTS``; every canonical notebook with its defaults for a preset not listed there)."""
    return REPORTS.get(preset, {name: {} for name in CANONICAL_NOTEBOOKS})


def notebook_defaults(name: str, folder: Path | None = None) -> dict:
    """The parameters cell of notebook ``name`` (under ``folder``, default the repository's
    ``notebooks/``): {parameter: default value}."""
    folder = folder or project_root() / "notebooks"
    cells = json.loads((folder / f"{name}.ipynb").read_text())["cells"]
    (cell,) = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    return {node.target.id: ast.literal_eval(node.value) for node in ast.parse("".join(cell["source"])).body
            if isinstance(node, ast.AnnAssign)}


def planned_parameters(preset: str, name: str) -> dict:
    """Notebook ``name``'s parameters in ``preset``'s report: its defaults, the plan's overrides."""
    return {**notebook_defaults(name), **report_plan(preset).get(name, {}), "preset": preset}


# notebook parameters that list values of one run setting: each value must be one a run can have
GRID_PARAMETERS = {"optimizers": "optimizer", "decays": "decay", "learning_rates": "lr", "batch_sizes": "batch_size",
                   "widths": "width", "datasets": "dataset", "models": "model", "seeds": "seed"}


def check_parameters(names: list[str], parameters: dict, folder: Path | None = None) -> None:
    """``ValueError`` (one message, before any notebook runs or anything is written) when a
    parameter given for notebooks ``names`` is none of theirs, has another kind than its default
    (a list for a list), or lists a value no run can have (``GRID_PARAMETERS``)."""
    from .config import ConfigError, RunConfig

    defaults = {name: notebook_defaults(name, folder) for name in names}
    for parameter, value in parameters.items():
        if parameter in ("preset", "figures_dir"):
            continue
        owners = [name for name, known in defaults.items() if parameter in known]
        if not owners:
            known = sorted({p for known in defaults.values() for p in known})
            raise ValueError(f"unknown notebook parameter {parameter!r} for {', '.join(names)}; they take {known}")
        default = defaults[owners[0]][parameter]
        if isinstance(default, list) and not isinstance(value, list):
            raise ValueError(f"{parameter} must be a list, e.g. -p {parameter} '{json.dumps(default[:2] or ['...'])}', "
                             f"got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and isinstance(value, str):
            raise ValueError(f"{parameter} must be a number (its default is {default!r}), got {value!r}")
        field = GRID_PARAMETERS.get(parameter)
        for item in (value if field and isinstance(value, list) else []):
            try:
                RunConfig(**{field: item})
            except (ConfigError, TypeError) as error:
                raise ValueError(f"{parameter}: {error}") from None


def _matches(name: str, selector: str) -> bool:
    """``selector`` names the notebook exactly, by its full name or by its number (``01``)."""
    return selector in (name, name.split("_", 1)[0])


def notebooks(folder: Path, only: list[str] | None = None, names=CANONICAL_NOTEBOOKS) -> list[Path]:
    """The report's notebooks (``names``, in order) found in ``folder``; ``only`` keeps those named
    by a full name or number. ``ValueError`` for a selector that names none of them."""
    found = [folder / f"{name}.ipynb" for name in names if (folder / f"{name}.ipynb").is_file()]
    if only:
        unknown = [s for s in only if not any(_matches(p.stem, s) for p in found)]
        if unknown:
            raise ValueError(f"--only {','.join(unknown)}: no notebook of this report has that name or number; "
                             f"choose from {', '.join(p.stem for p in found)}")
        found = [p for p in found if any(_matches(p.stem, s) for s in only)]
    return found


def _ipc_kernel_manager():
    """A kernel manager whose kernel talks over local IPC sockets instead of unencrypted TCP (the
    kernel then has no reason to warn about eavesdropping)."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    return IPCKernelManager


class _Indented:
    """A file-like object papermill writes the cells' stdout and stderr to: each line printed as
    it comes, indented under the notebook's name (the grid's "runs: 3/12" lines, the notebooks'
    own messages)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        for line in text.replace("\r", "\n").splitlines():
            if line.strip():
                self.stream.write(f"    {line.rstrip()}\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


# The kernel's own log goes to our terminal: jupyter_client interrupts the kernel before it shuts it
# down, and a kernel interrupted while handling a message logs "[IPKernelApp] ERROR |
# KeyboardInterrupt caught in kernel." there, now and then. Errors in cells reach the executed
# notebook and the report, not this log, so only its critical messages are let through.
QUIET_KERNEL = ["--IPKernelApp.log_level=CRITICAL"]


def execute(notebook: Path, output: Path, parameters: dict, cwd: Path, quiet: bool = False) -> tuple[str, str | None]:
    """Run one notebook with papermill; (status, error message). Unless ``quiet``, what its cells
    print (the grid's progress: runs done / total, with an estimate of their time) is shown as it
    comes; the kernel talks over local IPC sockets."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    echo = None if quiet else _Indented(sys.stdout)
    try:
        with _environment(**{PLAIN_PROGRESS: "1"}):
            papermill.execute_notebook(str(notebook), str(output), parameters=parameters, cwd=str(cwd),
                                       progress_bar=False, stdout_file=echo, stderr_file=echo, kernel_name="python3",
                                       kernel_manager_class=_ipc_kernel_manager(), extra_arguments=QUIET_KERNEL)
    except PapermillExecutionError as error:
        return "failed", f"{error.ename}: {error.evalue}"
    return "ok", None


TIMINGS = ("start_time", "end_time", "duration")  # papermill's, per notebook and per cell


def settle(notebook: Path, root: Path) -> None:
    """Make an executed notebook the same bytes whenever its cells give the same outputs: drop
    papermill's and the kernel's timestamps and durations, name papermill's injected cell by what
    it is rather than by a random id, and give the paths it records relative to ``root``."""
    import nbformat

    node = nbformat.read(notebook, as_version=4)
    recorded = node.metadata.get("papermill", {})
    for key in TIMINGS:
        recorded.pop(key, None)
    for key in ("input_path", "output_path"):
        if recorded.get(key) and Path(recorded[key]).is_absolute():
            recorded[key] = os.path.relpath(recorded[key], root)
    for cell in node.cells:
        cell.metadata.pop("execution", None)
        for key in TIMINGS:
            cell.metadata.get("papermill", {}).pop(key, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"
    write_atomically(notebook, lambda temporary: nbformat.write(node, str(temporary)))


def to_html(notebook: Path) -> Path:
    """Export an executed notebook to HTML next to it. nbconvert's lab template gives every cell
    the anchor ``id="cell-id=<cell id>"``; a cell without an id (nbformat < 4.5) gets
    ``cell-<index>`` first, so that :func:`cell_anchor` names an anchor that exists."""
    import nbformat
    from nbconvert import HTMLExporter

    node = nbformat.read(notebook, as_version=4)
    for index, cell in enumerate(node.cells):
        if not cell.get("id"):
            cell["id"] = f"cell-{index}"
    node.nbformat_minor = max(node.nbformat_minor, 5)
    body, _ = HTMLExporter().from_notebook_node(node)
    target = notebook.with_suffix(".html")
    write_atomically(target, lambda temporary: temporary.write_text(body))
    return target


@dataclass(frozen=True)
class CellLink:
    """A cell of an executed notebook, as the report links to it."""

    index: int  # position among the notebook's cells, from 0
    number: int  # its In [N] label: the execution count, else the position from 1
    anchor: str  # the id of the cell in the notebook's HTML (``cell-id=<id>``)


@dataclass
class MadeBy:
    """Which cell of an executed notebook saved each figure and which one wrote the verdicts."""

    figures: dict = field(default_factory=dict)  # figure file stem (``<notebook>_<name>``) -> CellLink
    verdicts: CellLink | None = None


def cell_anchor(cell, index: int) -> str:
    """The anchor nbconvert's lab template gives a cell (see :func:`to_html` for cells without id)."""
    return f"cell-id={cell.get('id') or f'cell-{index}'}"


def saved_names(source: str) -> list[str]:
    """The figure names a cell passes to ``exp.save(figure, "<name>")``, read from its code (names
    computed at run time are not found)."""
    code = re.sub(r"(?m)^\s*[%!].*$", "", source)  # IPython magics and shell lines
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return re.findall(r"exp\.save\(.*?,\s*[\"']([^\"']+)[\"']\s*\)", source, re.DOTALL)
    names = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "save"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "exp"):
            arguments = [*node.args[1:2], *(keyword.value for keyword in node.keywords if keyword.arg == "name")]
            names += [a.value for a in arguments if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return names


def made_by(notebook: Path) -> MadeBy:
    """The cells of an executed notebook (``<report>/<notebook>.ipynb``) that made its figures
    (the code cell calling ``exp.save(..., "<name>")`` for ``<notebook>_<name>.png``) and its
    verdicts (the first code cell calling ``exp.conclude(``)."""
    import nbformat

    made = MadeBy()
    for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        link = CellLink(index, cell.get("execution_count") or index + 1, cell_anchor(cell, index))
        if "exp.save(" in cell.source:
            for name in saved_names(cell.source):
                made.figures.setdefault(f"{notebook.stem}_{name}", link)
        if made.verdicts is None and "exp.conclude(" in cell.source:
            made.verdicts = link
    return made


def read_verdicts(figures: Path, name: str, since: float) -> list:
    """The verdicts a notebook wrote during this run (an older file does not count)."""
    path = figures / f"{name}.verdict.json"
    if not path.is_file() or path.stat().st_mtime < since:
        return []
    return json.loads(path.read_text())["verdicts"]


@contextlib.contextmanager
def _environment(**values: str):
    """Set environment variables (inherited by the notebooks' kernels) for the block."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _run_store(archive: Path | None, runs_dir: Path | None, root: Path):
    """The run store folder the notebooks use: as configured, or with an archive, ``runs_dir``
    or a temporary folder (removed afterwards) backed by that archive and holding the tables
    measured on the archived runs' networks (``archive.MEASUREMENTS_NAME``, when committed)."""
    if archive is None:
        if runs_dir is not None:
            with _environment(SPARSITYLIB_RUNS=str(Path(runs_dir).resolve())):
                yield Path(runs_dir).resolve()
            return
        yield Path(os.environ["SPARSITYLIB_RUNS"]) if "SPARSITYLIB_RUNS" in os.environ else root / "runs"
        return
    with contextlib.ExitStack() as stack:
        runs = Path(runs_dir) if runs_dir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="runs-")))
        seed_measurements(archive.parent / MEASUREMENTS_NAME, runs)  # the pruning tables: no weights needed
        stack.enter_context(_environment(SPARSITYLIB_RUNS=str(runs.resolve()), SPARSITYLIB_ARCHIVE=str(archive)))
        yield runs.resolve()


def retrained_runs(runs: Path) -> list[str]:
    """The ids in the store's ``retrained.txt``, in the order they were retrained."""
    path = runs / RETRAINED
    return path.read_text().split() if path.is_file() else []


def reproduce(preset: str = "quick", only: list[str] | None = None, parameters: dict | None = None,
              figures_dir: Path | None = None, from_archive: bool = False,
              runs_dir: Path | None = None) -> list[NotebookRun]:
    """Run the preset's report notebooks (``report_plan``; all, or those ``only`` names by number
    or full name) with their planned parameters (``parameters`` override them), and write the report.

    ``runs_dir``: the run store the notebooks use (default ``$SPARSITYLIB_RUNS`` or ``<repo>/runs``).
    ``from_archive``: read the runs from ``<figures>/runs.jsonl.gz`` instead of training them, with
    a run store in ``runs_dir`` (default: a temporary folder); ``ValueError`` if there is none.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {sorted(PRESETS)}")
    root = project_root()
    source = root / "notebooks"
    plan = report_plan(preset)
    selected = notebooks(source, only, names=tuple(plan))
    if not selected:
        raise ValueError(f"no notebooks of the {preset} report in {source}")
    check_parameters([notebook.stem for notebook in selected], parameters or {}, source)
    figures = (figures_dir or root / "figures" / preset).resolve()
    archive = figures / ARCHIVE_NAME if from_archive else None
    if archive is not None and not archive.is_file():
        raise ValueError(f"no run archive at {os.path.relpath(archive)}; run `python -m sparsitylib archive "
                         f"--preset {preset}` after a full reproduction")
    report = figures / "report"
    report.mkdir(parents=True, exist_ok=True)
    # relative paths, so the executed notebooks and the manifest name no folder of this machine:
    # notebooks run with notebooks/ as their working folder, the manifest is read from the repository
    params = {"preset": preset, "figures_dir": os.path.relpath(figures, source), **(parameters or {})}
    recorded = {**params, "figures_dir": os.path.relpath(figures, root)}
    started = time.time()
    runs = []
    with _run_store(archive, runs_dir, root) as store:
        stored_before = set(RunStore(store, archive=[]).run_ids())
        for notebook in selected:
            begun = time.time()
            print(f"{notebook.stem} ...", flush=True)
            earlier = len(retrained_runs(store))
            status, error = execute(notebook, report / notebook.name, {**plan[notebook.stem], **params}, source)
            seconds = time.time() - begun
            settle(report / notebook.name, root)
            to_html(report / notebook.name)
            verdicts = read_verdicts(figures, notebook.stem, begun)
            runs.append(NotebookRun(notebook.stem, status, round(seconds, 1), error, verdicts,
                                    retrained_runs(store)[earlier:]))
            print(f"{notebook.stem}: {status} in {seconds:.0f} s" + (f" ({error})" if error else ""), flush=True)
            for verdict in verdicts:
                print(f"  [{verdict['status']}] {verdict['claim']}", flush=True)
        not_archived = set(RunStore(store, archive=[]).run_ids()) - stored_before - set(retrained_runs(store))
        runs_total, runs_timed = runs_seconds(figures, RunStore(store))  # the archive's records count too
        precisions = runs_by_precision(figures, RunStore(store))
    total = took = time.time() - started
    entries = {r.name: {**asdict(r), "commit": git_commit(), "parameters": {**plan[r.name], **recorded}} for r in runs}
    previous = figures / "MANIFEST.json"
    if only and previous.is_file():  # a partial run keeps the other notebooks' latest results
        entries = {**{e["name"]: e for e in json.loads(previous.read_text())["notebooks"]}, **entries}
        # and the report's time stays the whole report's: each notebook's latest render, summed
        total = sum(entry["seconds"] for entry in entries.values())
    manifest = {"preset": preset, "parameters": recorded, "commit": git_commit(),
                "run_archive": os.path.relpath(archive, root) if archive else None,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "total_seconds": round(total, 1),
                "runs_seconds": round(runs_total, 1), "runs_timed": runs_timed, "runs_by_precision": precisions,
                "notebooks": [entries[name] for name in sorted(entries)]}
    recorded_manifest = json.loads(previous.read_text()) if previous.is_file() else None
    if recorded_manifest is not None and _steady(recorded_manifest) == _steady(manifest):
        manifest = recorded_manifest  # the same results: the render that made them stays on record
    else:
        write_atomically(previous, lambda temporary: temporary.write_text(json.dumps(manifest, indent=1)))
    write_index(report / "index.html", manifest, figures)
    needed_weights = [f"{r.name} ({len(r.retrained)} runs)" for r in runs if r.retrained]
    if needed_weights:
        print(f"retrained for their weights: {', '.join(needed_weights)}", flush=True)
    elif archive is not None:
        print("no notebook needed weights: nothing was retrained", flush=True)
    if archive is not None and not_archived:
        print(f"{len(not_archived)} runs were not in the archive and were trained (is {os.path.relpath(archive)} "
              f"out of date? `python -m sparsitylib archive --preset {preset}` updates it)", flush=True)
    print(f"report: {os.path.relpath(report / 'index.html')}; total {took / 60:.1f} min", flush=True)
    return runs


def significance(verdict: dict) -> str:
    """'n=3 vs 3, p=0.05' for a verdict's JSON (older verdict files without n or p give the rule)."""
    return Verdict(**{k: v for k, v in verdict.items() if k in Verdict.__dataclass_fields__}).significance


def _cell_link(notebook: str, link: CellLink | None, text: str) -> str:
    if link is None:
        return ""
    return f'<a href="{html.escape(notebook)}.html#{html.escape(link.anchor)}">{html.escape(text)}</a>'


def _run_ids(figures: Path, notebook: str) -> str:
    """A collapsible list of the run ids in the notebook's verdict file."""
    path = figures / f"{notebook}.verdict.json"
    run_ids = json.loads(path.read_text()).get("run_ids") if path.is_file() else None
    if not run_ids:
        return "<small>run ids not recorded</small>"
    items = "".join(f"<li><code>{html.escape(str(run_id))}</code></li>" for run_id in run_ids)
    return f"<details><summary>{len(run_ids)} runs</summary><ul>{items}</ul></details>"


REGIMES = ("quick", "long")  # the two regimes of the reproduction, compared claim by claim


def _regimes_section(figures: Path, preset: str) -> str:
    """When this report is one of ``REGIMES`` and every regime's verdict files exist
    (``figures/<regime>/``, side by side), a table of each claim's role, status, n and p in each."""
    from .readme import load_verdict_files, regime_rows

    if preset not in REGIMES:
        return ""
    by_preset = {name: load_verdict_files(figures.parent / name) for name in REGIMES}
    if not all(by_preset.values()):
        return ""
    head = "".join(f"<th>{html.escape(name)}: verdict</th><th>n</th><th>p</th>" for name in REGIMES)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in cells) + "</tr>"
                   for cells in regime_rows(by_preset))
    links = ", ".join(f"<a href='../../{name}/report/index.html'>{name}</a>" for name in REGIMES)
    return (f"<h2>Both regimes, claim by claim</h2><p>Every claim of the notebooks both regimes ran, with its role, status, n and p (adjusted within the primary family for a primary claim) in each "
            f"regime (reports: {links}).</p><table><tr><th>nb</th><th>claim</th><th>role</th>{head}</tr>{rows}</table>")


def _banner(preset: str) -> str:
    from .notebook import PLUMBING_PRESETS, SMOKE_BANNER

    if preset not in PLUMBING_PRESETS:
        return ""
    return f"<p style='background:#fff3cd;border:1px solid #d39e00;padding:8px'><b>{html.escape(SMOKE_BANNER)}</b></p>"


STATUS_COLOURS = {"holds": "#1a7f37", "does not hold": "#b42318", "inconclusive": "#6e7781", "invalid": "#9a6700",
                  "described": "#0969da", "untestable": "#8250df", "not reached": "#bc4c00"}


def _badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#6e7781")
    return (f"<span style='background:{colour};color:white;border-radius:4px;padding:1px 6px;white-space:nowrap'>"
            f"{html.escape(status)}</span>")


def report_records(figures: Path, store: RunStore) -> list[dict]:
    """The stored run records behind the report's verdict files (their ``run_ids``), each once."""
    run_ids = set()
    for path in figures.glob("*.verdict.json"):
        run_ids |= set(json.loads(path.read_text()).get("run_ids") or [])
    return [record for record in (store.get(run_id) for run_id in sorted(run_ids)) if record]


def runs_seconds(figures: Path, store: RunStore) -> tuple[float, int]:
    """The training time recorded in the run records behind the report's verdict files (their
    ``run_ids``), and how many of them have one: what the runs took, not what a re-render took."""
    durations = [record.get("environment", {}).get("duration_s") for record in report_records(figures, store)]
    known = [d for d in durations if d]
    return float(sum(known)), len(known)


def runs_by_precision(figures: Path, store: RunStore) -> dict[str, int]:
    """How many of the report's runs trained in each precision (a record from before the setting
    existed trained in float32)."""
    counts: dict[str, int] = {}
    for record in report_records(figures, store):
        precision = record.get("config", {}).get("precision", "float32")
        counts[precision] = counts.get(precision, 0) + 1
    return dict(sorted(counts.items()))


VOLATILE = ("finished", "total_seconds", "seconds", "commit")  # when and how fast a render ran, and from which commit


def _steady(manifest: dict) -> dict:
    """A manifest without what changes from one render of the same results to the next."""
    return {key: [_steady(entry) for entry in value] if key == "notebooks" else value
            for key, value in manifest.items() if key not in VOLATILE}


def write_index(path: Path, manifest: dict, figures: Path) -> None:
    """The report's ``index.html``: how many verdicts hold, do not hold, are inconclusive or
    invalid; then per notebook its verdicts (colour-coded status, n and p, linked to the cell that
    concluded them, the evidence one click away), its figures beside them (each captioned with the
    cell that made it), and the run ids behind it; then, when both regimes exist, the claims side
    by side. Cells are found in the executed notebooks next to ``path``."""
    counts = {}
    for run in manifest["notebooks"]:
        for verdict in run["verdicts"]:
            counts[verdict["status"]] = counts.get(verdict["status"], 0) + 1
    summary = " ".join(f"{_badge(status)} {counts[status]}" for status in STATUS_COLOURS if status in counts)
    sections = []
    for run in manifest["notebooks"]:
        name = run["name"]
        executed = path.parent / f"{name}.ipynb"
        made = made_by(executed) if executed.is_file() else MadeBy()
        concluded = _cell_link(name, made.verdicts, f"cell {made.verdicts.number}") if made.verdicts else ""
        verdicts = "".join(f"<li>{_badge(v['status'])} {html.escape(v['claim'])} <small>({html.escape(significance(v))}"
                           f"{', ' + concluded if concluded else ''})</small><details><summary><small>evidence</small>"
                           f"</summary><small>{html.escape(v['evidence'])}</small></details></li>"
                           for v in run["verdicts"])
        images = []
        for png in sorted(figures.glob(f"{name}_*.png")):
            link = made.figures.get(png.stem)
            caption = _cell_link(name, link, f"made by cell {link.number}") if link else ""
            images.append(f"<figure><img src='../{png.name}' style='max-width:100%'><figcaption>{png.stem}"
                          f"{': ' + caption if caption else ''}</figcaption></figure>")
        status = run["status"] if not run["error"] else f"{run['status']}: {html.escape(run['error'])}"
        sections.append(f"<h2><a href='{name}.html'>{name}</a></h2><p><small>{status}, rendered in "
                        f"{run['seconds']:.0f} s</small></p><ul>{verdicts or '<li>no verdict</li>'}</ul>"
                        f"{''.join(images)}{_run_ids(figures, name)}")
    compute = manifest.get("runs_seconds")
    took = (f"The {manifest.get('runs_timed', 0)} runs behind it took {compute / 3600:.1f} h of training in all "
            f"(one core each; the sum of their recorded durations); this render took "
            f"{manifest['total_seconds'] / 60:.1f} min." if compute else
            f"This render took {manifest['total_seconds'] / 60:.1f} min.")
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>Implicit filter sparsity: {manifest['preset']}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}td{{vertical-align:top;padding:4px 8px;border-bottom:1px solid #ddd}}li{{margin:4px 0}}</style>
</head><body><h1>Implicit filter-level sparsity: reproduction at the {manifest['preset']} preset</h1>
{_banner(manifest['preset'])}
<p><b>Verdicts:</b> {summary or 'none'}</p>
<p>Commit {html.escape(str(manifest['commit']))}, finished {manifest['finished']}. {took}
<details><summary><small>parameters</small></summary><code>{html.escape(json.dumps(manifest['parameters']))}</code></details></p>
{''.join(sections)}
{_regimes_section(figures, manifest['preset'])}
</body></html>"""
    path.write_text(body)

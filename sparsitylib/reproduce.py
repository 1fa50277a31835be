"""Run every hypothesis notebook with papermill and build the HTML report.

    python -m sparsitylib reproduce [--preset quick] [--only 01,03] [-p name value ...]

Each notebook runs in its own kernel process. Executed notebooks and their HTML go to
``figures/<preset>/report/``, with ``index.html`` linking them and listing every verdict; the
notebooks save their figures (PNG and PDF) in ``figures/<preset>/``; ``MANIFEST.json`` records the
commit, parameters and timings. A notebook that fails keeps its executed copy with the error
visible, the others still run, and the command exits non-zero.
"""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .environment import git_commit
from .files import write_atomically
from .notebook import project_root
from .presets import PRESETS
from .verdict import Verdict


@dataclass
class NotebookRun:
    name: str
    status: str  # "ok" | "failed"
    seconds: float
    error: str | None
    verdicts: list


def notebooks(folder: Path, only: list[str] | None = None) -> list[Path]:
    """The hypothesis notebooks in order; ``only`` keeps those whose name starts with a prefix."""
    found = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if only:
        found = [p for p in found if any(p.stem.startswith(prefix) for prefix in only)]
    return found


def execute(notebook: Path, output: Path, parameters: dict, cwd: Path) -> tuple[str, str | None]:
    """Run one notebook with papermill; (status, error message)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(str(notebook), str(output), parameters=parameters, cwd=str(cwd),
                                   progress_bar=False, kernel_name="python3")
    except PapermillExecutionError as error:
        return "failed", f"{error.ename}: {error.evalue}"
    return "ok", None


def to_html(notebook: Path) -> Path:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(notebook))
    target = notebook.with_suffix(".html")
    write_atomically(target, lambda temporary: temporary.write_text(body))
    return target


def read_verdicts(figures: Path, name: str, since: float) -> list:
    """The verdicts a notebook wrote during this run (an older file does not count)."""
    path = figures / f"{name}.verdict.json"
    if not path.is_file() or path.stat().st_mtime < since:
        return []
    return json.loads(path.read_text())["verdicts"]


def reproduce(preset: str = "quick", only: list[str] | None = None, parameters: dict | None = None,
              figures_dir: Path | None = None) -> list[NotebookRun]:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {sorted(PRESETS)}")
    root = project_root()
    source = root / "notebooks"
    selected = notebooks(source, only)
    if not selected:
        raise ValueError(f"no notebooks in {source} match {only}")
    figures = (figures_dir or root / "figures" / preset).resolve()
    report = figures / "report"
    report.mkdir(parents=True, exist_ok=True)
    # relative paths, so the executed notebooks and the manifest name no folder of this machine:
    # notebooks run with notebooks/ as their working folder, the manifest is read from the repository
    params = {"preset": preset, "figures_dir": os.path.relpath(figures, source), **(parameters or {})}
    recorded = {**params, "figures_dir": os.path.relpath(figures, root)}
    started = time.time()
    runs = []
    for notebook in selected:
        begun = time.time()
        print(f"{notebook.stem} ...", flush=True)
        status, error = execute(notebook, report / notebook.name, params, source)
        seconds = time.time() - begun
        to_html(report / notebook.name)
        verdicts = read_verdicts(figures, notebook.stem, begun)
        runs.append(NotebookRun(notebook.stem, status, round(seconds, 1), error, verdicts))
        print(f"{notebook.stem}: {status} in {seconds:.0f} s" + (f" ({error})" if error else ""), flush=True)
        for verdict in verdicts:
            print(f"  [{verdict['status']}] {verdict['claim']}", flush=True)
    total = time.time() - started
    entries = {r.name: {**asdict(r), "commit": git_commit(), "parameters": recorded} for r in runs}
    previous = figures / "MANIFEST.json"
    if only and previous.is_file():  # a partial run keeps the other notebooks' latest results
        entries = {**{e["name"]: e for e in json.loads(previous.read_text())["notebooks"]}, **entries}
    manifest = {"preset": preset, "parameters": recorded, "commit": git_commit(),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "total_seconds": round(total, 1),
                "notebooks": [entries[name] for name in sorted(entries)]}
    write_atomically(previous, lambda temporary: temporary.write_text(json.dumps(manifest, indent=1)))
    write_index(report / "index.html", manifest, figures)
    print(f"report: {os.path.relpath(report / 'index.html')}; total {total / 60:.1f} min", flush=True)
    return runs


def significance(verdict: dict) -> str:
    """'n=3 vs 3, p=0.05' for a verdict's JSON (older verdict files without n or p give the rule)."""
    return Verdict(**{k: v for k, v in verdict.items() if k in Verdict.__dataclass_fields__}).significance


def write_index(path: Path, manifest: dict, figures: Path) -> None:
    rows = []
    for run in manifest["notebooks"]:
        verdicts = "".join(f"<li><b>{html.escape(v['status'])}</b> ({html.escape(significance(v))}): "
                           f"{html.escape(v['claim'])}<br><small>{html.escape(v['evidence'])}</small></li>"
                           for v in run["verdicts"])
        status = run["status"] if not run["error"] else f"{run['status']}: {html.escape(run['error'])}"
        rows.append(f"<tr><td><a href='{run['name']}.html'>{run['name']}</a></td><td>{status}</td>"
                    f"<td>{run['seconds']:.0f} s</td><td><ul>{verdicts or '<li>no verdict</li>'}</ul></td></tr>")
    images = "".join(f"<figure><img src='../{p.name}' style='max-width:100%'><figcaption>{p.stem}</figcaption></figure>"
                     for p in sorted(figures.glob("*.png")))
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>Implicit filter sparsity: {manifest['preset']}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}td{{vertical-align:top;padding:4px 8px;border-bottom:1px solid #ddd}}</style>
</head><body><h1>Implicit filter-level sparsity: reproduction at the {manifest['preset']} preset</h1>
<p>Commit {html.escape(str(manifest['commit']))}, finished {manifest['finished']}, {manifest['total_seconds'] / 60:.1f} min.
Parameters: <code>{html.escape(json.dumps(manifest['parameters']))}</code></p>
<table><tr><th>notebook</th><th>status</th><th>time</th><th>verdicts</th></tr>{''.join(rows)}</table>
<h2>Figures</h2>{images}</body></html>"""
    path.write_text(body)

"""What every hypothesis notebook does besides its own grid and figure: check the parameters,
choose the executor, run or load the grid, save figures, publish the verdict.

A notebook starts with ``exp = start("<notebook name>", preset=..., seeds=..., ...)``. Every check
happens there or in ``exp.grid(...)``, before anything is written to the run store or to
``figures/``; a bad value raises ``ParameterError`` naming the parameter and what to use instead.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path


from . import claims
from .config import ConfigError, RunConfig
from .files import write_atomically
from .grid import PLAIN_PROGRESS, make_grid, run_grid
from .presets import PRESETS, preset_config
from .store import RunTables, default_root
from .verdict import UNTESTABLE, Verdict, Verdicts, adjust, not_reached
from .voice import speak_plainly


class ParameterError(ValueError):
    """A notebook parameter is invalid; the message says which and how to fix it."""


def project_root(start: Path | None = None) -> Path:
    """The repository root (the folder holding ``pyproject.toml`` and ``notebooks/``), searched
    upwards from the working directory, so notebooks work from JupyterLab and from papermill."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder
    return start


# a title gives n when it says how many runs (seeds, pairs) it shows: "n = 5 runs", "5 seeds", "(n=3)"
GIVES_N = re.compile(r"\bn ?= ?\d|\b\d+(?:-\d+)? (?:runs?|seeds?|seed pairs)\b")


class FigureTitleWarning(UserWarning):
    """A saved figure's title does not say how many runs it shows."""


def name_regime(figure, preset: str) -> None:
    """Make ``figure``'s title name the regime (preset) it shows, unless it already does, so that a
    figure of one regime cannot be taken for another's."""
    label = f"{preset} preset"
    title = figure._suptitle  # matplotlib keeps the suptitle here; there is no public getter
    if title is None:
        figure.suptitle(label)
    elif preset not in title.get_text():
        title.set_text(f"{title.get_text()} ({label})")


@dataclass
class Experiment:
    """One notebook's run: its name, settings, where results go, and how runs are executed."""

    name: str
    preset: str
    seeds: list[int]
    base: dict
    runs_dir: Path
    figures_dir: Path
    executor: object = None
    max_workers: int | None = None
    saved: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    untestable: dict = field(default_factory=dict)  # claim id -> why its design cannot reach its level

    def grid(self, seeds=None, **vary) -> list[RunConfig]:
        """Configs for every combination of ``vary`` (lists), over the notebook's seeds, on top
        of the notebook's base settings. Invalid values raise ``ParameterError``."""
        for name, values in vary.items():
            if isinstance(values, str):
                raise ParameterError(f"{self.name}: the grid values for {name} are the string {values!r}, not a list: "
                                     f"papermill's -p passes text, use -y '{name}: [...]'")
        try:
            return make_grid(self.base, seeds=self.seeds if seeds is None else seeds, preset=self.preset, **vary)
        except (ConfigError, ValueError) as error:
            raise ParameterError(f"{self.name}: invalid grid: {error}") from error

    def config(self, **settings) -> RunConfig:
        """One config on top of the base settings (seed 0 unless given)."""
        try:
            return preset_config(self.preset, **{**self.base, **settings})
        except ConfigError as error:
            raise ParameterError(f"{self.name}: {error}") from error

    def require(self, designs: list[claims.Design]) -> None:
        """Check, before any run, that the design of each primary claim (``claims.Design``: the
        smallest p its runs can give) can reach the level of the preset's family (``claims.threshold``)
        and that every bound has its runs. A design that cannot raises ``ParameterError`` naming the
        runs it would need; at an illustrative preset (``ILLUSTRATIVE_PRESETS``: smoke, demo) the
        claim is reported as untestable instead, and the notebook goes on."""
        problems = {design.claim_id: problem for design in designs
                    for problem in claims.design_problems(self.preset, [design])}
        if not problems:
            return
        if self.preset in ILLUSTRATIVE_PRESETS:
            self.untestable.update(problems)
            return
        raise ParameterError(f"{self.name}: " + "; ".join(problems.values()) + ". Give the notebook more seeds.")

    def run(self, configs: list[RunConfig], quiet: bool = False) -> RunTables:
        """Train what is missing, load the rest, and return the tables of exactly these runs.
        Runs that raised (not ones that diverged: those are stored as failed) stop the notebook
        after the others finished."""
        result = run_grid(configs, self.executor, root=self.runs_dir, max_workers=self.max_workers, quiet=quiet)
        result.raise_for_errors()
        self.run_ids.extend(r["run_id"] for r in result.records if r["run_id"] not in self.run_ids)
        return result.tables()

    def save(self, figure, name: str) -> None:
        """Save ``figure`` as PNG and PDF under ``figures_dir`` as ``<notebook>_<name>``, each file
        written under a temporary name and renamed, so a failure never leaves half a figure. Returns
        nothing, so that a cell ending with it shows no machine paths (``saved`` lists the files)."""
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        name_regime(figure, self.preset)
        if not GIVES_N.search(figure._suptitle.get_text()):
            warnings.warn(f"figure {self.name}_{name}: its title does not say how many runs it shows (n)",
                          FigureTitleWarning, stacklevel=2)
        for suffix in ("png", "pdf"):
            path = self.figures_dir / f"{self.name}_{name}.{suffix}"
            # no creation date in the PDF: a re-render that changes nothing leaves the same bytes
            metadata = {"CreationDate": None} if suffix == "pdf" else None
            write_atomically(path, lambda temporary: figure.savefig(
                temporary, format=suffix, dpi=130 if suffix == "png" else None, bbox_inches="tight", metadata=metadata))
            self.saved.append(path.name)

    def save_text(self, text: str, name: str, suffix: str = "md") -> Path:
        """Save ``text`` (a Markdown table, say) under ``figures_dir`` as ``<notebook>_<name>.<suffix>``."""
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        path = self.figures_dir / f"{self.name}_{name}.{suffix}"
        write_atomically(path, lambda temporary: temporary.write_text(text))
        self.saved.append(path.name)
        return path

    def record(self, name: str, values) -> None:
        """Keep numbers that are described, not tested (a pilot run's onset, say): ``conclude``
        writes them under ``facts/<name>`` in the verdict file, where the README can quote them."""
        self.facts[name] = values

    def conclude(self, verdicts: list[Verdict], unreached: dict[str, str] | None = None) -> Verdicts:
        """Decide each verdict by its role in ``claims.REGISTRY`` (primary: Bonferroni over the
        preset's family; secondary: described; see ``verdict.adjust``), mark the claims about arms in
        ``unreached`` (arm -> why, e.g. ``hypotheses.optimizer_unreached``) not reached
        (``verdict.not_reached``) and those whose design
        cannot reach their level (``require``) untestable, write the verdicts next to the figures
        (``<notebook>.verdict.json``, read by the report and the README) with the run ids behind
        them, and return them for display. A verdict without a registered claim id is an error."""
        unregistered = [v.claim for v in verdicts if v.claim_id not in claims.BY_ID]
        if unregistered:
            raise ValueError(f"{self.name}: verdicts without a claim in claims.REGISTRY: {unregistered}")
        verdicts = [not_reached(v, unreached or {}) for v in verdicts]
        verdicts = adjust(verdicts, claims.ROLES, claims.family_size(self.preset), f"the {self.preset} report")
        for verdict in verdicts:
            if verdict.claim_id in self.untestable:
                verdict.status = UNTESTABLE
                verdict.evidence = f"{self.untestable[verdict.claim_id]}. {verdict.evidence}"
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        payload = {"notebook": self.name, "preset": self.preset, "seeds": self.seeds, "base": self.base,
                   "figures": self.saved, "run_ids": sorted(self.run_ids), "verdicts": [v.to_dict() for v in verdicts]}
        if self.facts:
            payload["facts"] = self.facts
        write_atomically(self.figures_dir / f"{self.name}.verdict.json",
                         lambda temporary: temporary.write_text(json.dumps(payload, indent=1)))
        return Verdicts(verdicts)


def start(
    name: str,
    *,
    preset: str = "quick",
    seeds=(0, 1, 2),
    dataset: str | None = None,
    model: str | None = None,
    width: float | None = None,
    epochs: int | None = None,
    scheduler_address: str | None = None,
    max_workers: int | None = None,
    runs_dir: str | None = None,
    figures_dir: str | None = None,
) -> Experiment:
    """Check a notebook's common parameters and set up its experiment.

    ``None`` means "the preset's value" for dataset, model, width and epochs; runs go to
    ``runs_dir`` (default ``$SPARSITYLIB_RUNS`` or ``<repo>/runs``) and figures to
    ``figures_dir``. Only ``reproduce`` writes the committed report (it passes
    ``figures/<preset>``); a notebook run any other way (JupyterLab, papermill by hand) writes to
    ``<repo>/scratch/<preset>`` (ignored by git) unless ``figures_dir`` is given, under the name of
    the notebook file it runs from when Jupyter says which (a copy never takes the original's
    name). ``scheduler_address`` names a Dask scheduler (``tcp://host:8786``); ``None`` runs on
    local processes.
    """
    if os.environ.get(PLAIN_PROGRESS):  # run by reproduce, whose terminal shows this kernel's stderr
        speak_plainly()
    if preset not in PRESETS:
        raise ParameterError(f"unknown preset {preset!r}; use one of {sorted(PRESETS)}")
    if isinstance(seeds, str):
        raise ParameterError(f"seeds must be a list, got the string {seeds!r}: papermill's -p passes text, "
                             f"use -y 'seeds: [0, 1]' (or -p with a number per run)")
    if (not isinstance(seeds, (list, tuple)) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise ParameterError(f"seeds must be a non-empty list of non-negative integers, e.g. [0, 1]; got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ParameterError(f"seeds has duplicates: {list(seeds)}")
    base = {k: v for k, v in {"dataset": dataset, "model": model, "width": width, "epochs": epochs}.items()
            if v is not None}
    try:
        preset_config(preset, **base)
    except ConfigError as error:
        raise ParameterError(f"{name}: {error}") from error
    if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
        raise ParameterError(f"max_workers must be a positive integer or None, got {max_workers!r}")
    root = project_root()
    runs = Path(runs_dir) if runs_dir else (default_root() if "SPARSITYLIB_RUNS" in os.environ else root / "runs")
    figures = Path(figures_dir) if figures_dir else root / SCRATCH / preset
    name = own_name(name)
    if preset in PLUMBING_PRESETS:
        print(SMOKE_BANNER)
    if not figures_dir:
        print(f"{name}: figures and verdicts go to {os.path.relpath(figures)}/ (a scratch folder; `python -m "
              f"sparsitylib reproduce` writes the report in figures/{preset}/)")
    return Experiment(name=name, preset=preset, seeds=list(seeds), base=base, runs_dir=runs.resolve(),
                      figures_dir=figures.resolve(), executor=connect(scheduler_address), max_workers=max_workers)


PLUMBING_PRESETS = ("smoke",)
# presets that illustrate rather than decide: a primary claim their design cannot test is reported
# as untestable instead of refusing the notebook
ILLUSTRATIVE_PRESETS = ("smoke", "demo")
SMOKE_BANNER = ("SMOKE PRESET: a plumbing check (seconds per run, too short for any filter to die); these numbers "
                "say nothing about the paper. Use quick (or demo) for results.")
SCRATCH = "scratch"  # where notebooks run outside `reproduce` write, unless given figures_dir


def own_name(name: str) -> str:
    """The name outputs are saved under: the stem of the notebook file the kernel runs, when
    Jupyter says which (``JPY_SESSION_NAME``, set by Jupyter Server for each notebook's kernel),
    else ``name``."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    return Path(session).stem if session.endswith(".ipynb") else name


def connect(scheduler_address: str | None, timeout: str = "10s"):
    """An executor for ``scheduler_address`` (a Dask scheduler), or ``None`` for local processes."""
    if scheduler_address is None:
        return None
    if not isinstance(scheduler_address, str) or not scheduler_address.strip():
        raise ParameterError(f"scheduler_address must be a Dask scheduler address like 'tcp://host:8786' or None, "
                             f"got {scheduler_address!r}")
    from distributed import Client

    try:
        client = Client(scheduler_address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as error:
        raise ParameterError(
            f"cannot reach the Dask scheduler at {scheduler_address!r} within {timeout} ({error}). Start one "
            f"(`dask scheduler` and `dask worker <address>`), check the address, or set scheduler_address=None "
            f"to run on local processes."
        ) from error
    return client.get_executor()

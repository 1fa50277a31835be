"""The README's results, written from the committed verdict JSONs so that they cannot go stale.

    python -m sparsitylib readme [--preset quick] [--check] [--readme PATH] [--figures DIR]

Two kinds of markers in the README are regenerated from ``figures/<preset>/*.verdict.json`` and
``figures/<preset>/MANIFEST.json``:

- the verdict table, everything between ``<!-- verdicts:<preset>:start -->`` and
  ``<!-- verdicts:<preset>:end -->``: one line on where the numbers come from (preset, runs,
  seeds, commit, date) and one row per verdict, in notebook order;
- a number in prose, ``<!-- value:KEY -->text<!-- /value -->`` or
  ``<!-- value:KEY|FORMAT -->text<!-- /value -->``: the text is replaced by the value at KEY,
  a path ``<notebook>/<verdict index or claim id>/<key>/...`` into that notebook's verdict JSON
  (for example ``01_optimizer_regularizer/adam-vs-sgd/values/adam+l2/mean|{:.1%}``), or
  ``MANIFEST/<key>/...`` into the preset's ``MANIFEST.json``. A number steps into a
  list, ``mean``, ``sd``, ``min`` and ``max`` summarize a list as the last step, and a second
  step that is not a number reads the file's top level (``01_optimizer_regularizer/seeds``).
  FORMAT is a Python format string; without it a number under ``effect``, ``ci`` or ``values``
  takes the verdict's own ``fmt``, a p-value 2 significant digits, anything else ``{:.3g}``.

A key may name its preset, ``<!-- value:long:01_optimizer_regularizer/0/status -->``: it is
filled from ``figures/long/`` when the README is written for ``long``. A key without one takes
its numbers from the preset of the README's first verdict table. Markers of other presets are
left alone, and so is a README without a table for ``--preset``.

A third marker compares regimes: between ``<!-- regimes:quick,long:start -->`` and
``<!-- regimes:quick,long:end -->`` goes one row per claim (matched by notebook and claim text)
with its role, status, n and p (adjusted for a primary claim) under each named preset, read from
``figures/<preset>/*.verdict.json``; a claim one regime did not test shows "not tested". It is
filled whenever the README is written for one of the presets it names.

A fourth sets our magnitude beside the literature's: between ``<!-- magnitude:<preset>:start -->``
and ``<!-- magnitude:<preset>:end -->`` goes a table of Adam+L2's dead fraction in that preset's
report (notebook 02's ``facts/per_layer``: the total by both criteria with its 95% interval, and
each layer) beside the paper's statement and the independent log (``LITERATURE``).
"""

from __future__ import annotations

import difflib
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from .files import write_atomically

DEFAULT_FMT = "{:.3g}"
P_FMT = "{:.2g}"
VALUE = re.compile(r"<!-- value:(?:(?P<preset>[\w-]+):)?(?P<key>[^|\n]+?)(?:\|(?P<fmt>[^\n]*?))? -->(?P<text>.*?)"
                   r"<!-- /value -->", re.DOTALL)
FIRST_TABLE = re.compile(r"<!-- verdicts:(?P<preset>[\w-]+):start -->")
SUMMARIES = {"mean": statistics.fmean, "min": min, "max": max,
             "sd": lambda values: statistics.stdev(values) if len(values) > 1 else 0.0}


class ReadmeError(ValueError):
    """A marker the JSONs cannot fill (the message names the marker), or missing verdict files."""


def table_markers(preset: str) -> tuple[str, str]:
    """The start and end markers of the verdict table for ``preset``."""
    return f"<!-- verdicts:{preset}:start -->", f"<!-- verdicts:{preset}:end -->"


def load_verdict_files(figures: Path) -> dict[str, dict]:
    """Every ``<notebook>.verdict.json`` under ``figures``, by notebook name, in notebook order."""
    return {path.name.removesuffix(".verdict.json"): json.loads(path.read_text())
            for path in sorted(figures.glob("*.verdict.json"))}


def _cell(text) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def format_p(p: float | None) -> str:
    """A p-value to 2 significant digits ('0.05', '0.0001', '4.5e-99'); '-' for none."""
    return "-" if p is None else f"{p:.2g}".replace("e-0", "e-")


def _format_n(n: dict | None) -> str:
    sizes = list((n or {}).values())
    if not sizes:
        return ""
    if len(sizes) == 2:
        return " vs ".join(str(size) for size in sizes)
    if len(sizes) == 1:
        (label, size), = n.items()
        return f"{size} {label}" if re.fullmatch(r"[a-z ]+s", label) else f"{size} runs"  # a unit, or an arm
    return f"{sum(sizes)} runs in {len(sizes)} groups"


def format_n(verdict: dict) -> str:
    """'3 vs 3' for two arms, '12 runs in 4 groups' for more; for one, its size and label when
    the label is a plural noun ('356 dead filters', '100 epochs'), else '3 runs'. A verdict made
    of parts gives '2 x (3 vs 3)' when every part has the same n, else '6 parts'; '-' when nothing
    is known."""
    own = _format_n(verdict.get("n"))
    if own:
        return own
    parts = [_format_n(part.get("n")) for part in verdict.get("parts") or []]
    if not parts:
        return "-"
    if parts[0] and len(set(parts)) == 1:
        return f"{len(parts)} x ({parts[0]})"
    return f"{len(parts)} parts"


def format_effect(verdict: dict) -> str:
    """'<effect_label>: <effect> [<low>, <high>]' with the verdict's ``fmt`` (the interval left out
    when it is missing or not finite); '-' without an effect."""
    effect = verdict.get("effect")
    if effect is None:
        return "-"
    fmt = verdict.get("fmt") or DEFAULT_FMT
    text = fmt.format(effect)
    ci = verdict.get("ci")
    if ci and all(isinstance(bound, (int, float)) and not math.isnan(bound) for bound in ci):
        text += f" [{fmt.format(ci[0])}, {fmt.format(ci[1])}]"
    label = verdict.get("effect_label")
    return f"{label}: {text}" if label else text


def provenance(files: dict[str, dict], manifest: dict, preset: str) -> str:
    """The line above the table: preset, number of runs, seeds, commit and date."""
    run_ids = set().union(*(data.get("run_ids") or [] for data in files.values()))
    missing = [name[:2] for name, data in files.items() if "run_ids" not in data]
    if len(missing) == len(files):
        runs = "run ids not recorded"
    else:
        runs = f"{len(run_ids)} runs" + (f" (run ids missing in {', '.join(missing)})" if missing else "")
    seeds = sorted(set().union(*(data.get("seeds") or [] for data in files.values())))
    commit = str(manifest.get("commit") or "unknown")[:7]
    return (f"_Written by `python -m sparsitylib readme` from `figures/{preset}/*.verdict.json`: preset {preset}, "
            f"{runs}, seeds {', '.join(map(str, seeds)) or '-'}, commit {commit}, "
            f"{manifest.get('finished', 'date unknown')}._")


def family_line(files: dict[str, dict]) -> str:
    """'Bonferroni over the 10 primary claims of the quick report' (the first primary verdict's
    family), or '' when no verdict names one."""
    for data in files.values():
        for verdict in data.get("verdicts", []):
            if verdict.get("role") == "primary" and verdict.get("family"):
                return verdict["family"]
    return ""


def render_table(files: dict[str, dict], manifest: dict, preset: str) -> str:
    """The generated block between the table markers: the provenance line, the primary claims with
    their status (tested at 0.05/m; p and p adjusted for the claim, p against it) and the
    secondary claims, described (effect and interval, raw one-sided p for and against)."""
    family = family_line(files)
    primary = ["", f"**Primary claims** (the paper's findings; {family or 'no family recorded'}):", "",
               "| nb | claim | verdict | n | p | p adjusted | p against | effect [95% CI] |",
               "|---|---|---|---|---|---|---|---|"]
    secondary = ["", "**Secondary claims** (our analyses, described; p unadjusted, one-sided):", "",
                 "| nb | claim | outcome | n | p | p against | effect [95% CI] |", "|---|---|---|---|---|---|---|"]
    checks = ["", "**Checks of our method** (not the paper's claims; each decided at 0.05 on its own):", "",
              "| nb | check | verdict | n | p | p against | weakest part [95% CI] |", "|---|---|---|---|---|---|---|"]
    old_rule = [name for name, data in files.items() if not is_current_rule(data)]
    for name, data in files.items():
        for verdict in data.get("verdicts", []):
            number = name[:2] + (OLD_RULE_MARK if name in old_rule else "")
            if verdict.get("role") == "primary":
                cells = (number, verdict.get("claim", ""), verdict.get("status", ""), format_n(verdict),
                         format_p(verdict.get("p_value")), format_p(verdict.get("p_adjusted")),
                         format_p(verdict.get("p_against_adjusted")), format_effect(verdict))
                primary.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
            elif verdict.get("role") == "check":
                cells = (number, verdict.get("claim", ""), verdict.get("status", ""), format_n(verdict),
                         format_p(verdict.get("p_value")), format_p(verdict.get("p_against")), format_effect(verdict))
                checks.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
            else:
                cells = (number, verdict.get("claim", ""), verdict.get("status", ""), format_n(verdict),
                         format_p(verdict.get("p_value")), format_p(verdict.get("p_against")), format_effect(verdict))
                secondary.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines = [provenance(files, manifest, preset)] + primary + secondary + (checks if len(checks) > 5 else [])
    if old_rule:
        lines += ["", f"{OLD_RULE_MARK} {', '.join(name[:2] for name in old_rule)}: {OLD_RULE_NOTE}"]
    return "\n" + "\n".join(lines) + "\n"


OLD_RULE_MARK = "†"
OLD_RULE_NOTE = ("decided under an earlier rule (no registry of primary and secondary claims): not yet "
                 "re-rendered with the current one (see docs/verdicts.md).")


def is_current_rule(data: dict) -> bool:
    """Whether a verdict file was written under the current rule (every verdict names its claim in
    the registry and its role); older files are shown, marked, until their notebook is re-rendered."""
    return all("role" in verdict for verdict in data.get("verdicts", []))


REGIMES = re.compile(r"<!-- regimes:(?P<presets>[\w,-]+):start -->(?P<body>.*?)<!-- regimes:(?P=presets):end -->",
                     re.DOTALL)
NOT_TESTED = "not tested"


MAGNITUDE = re.compile(r"<!-- magnitude:(?P<preset>[\w-]+):start -->.*?<!-- magnitude:(?P=preset):end -->", re.DOTALL)
MAGNITUDE_ARM = "adam+l2"
# What others report for the same regularizer, as they state it (source, setting, dead, where).
LITERATURE = (
    ("the paper (Mehta et al., CVPR 2019)", "VGG-16 on CIFAR-10 and CIFAR-100, Adam with L2 5e-4",
     "70-80% of the filters removable", "not given per layer"),
    ("an independent log (hyqneuron/reinit)", "VGG-16 with BatchNorm on CIFAR-10, Adam 1e-3 with L2 5e-4, batch 128",
     "about 37% of the conv channels dead after 90 epochs, 34% after 300", "mostly the 512-wide stages"),
)


def render_magnitude(files: dict[str, dict], preset: str) -> str:
    """The block between the magnitude markers: Adam+L2's dead fraction in ``preset``'s report
    (notebook 02's per-layer facts) above the ``LITERATURE`` rows."""
    from .presets import preset_config

    try:
        facts = files["02_where_sparsity_lives"]["facts"]["per_layer"][MAGNITUDE_ARM]
    except KeyError:
        raise ReadmeError(f"figures/{preset}/02_where_sparsity_lives.verdict.json has no facts/per_layer/"
                          f"{MAGNITUDE_ARM}: render notebook 02 (reproduce --preset {preset} --only 02)") from None
    config = preset_config(preset, optimizer="adam")

    def percent(entry):
        low, high = entry["ci"]
        interval = "" if math.isnan(low) else f" [{100 * low:.1f}, {100 * high:.1f}]"
        return f"{100 * entry['mean']:.1f}%{interval}"

    total = facts["total"]
    setting = (f"BasicNet at width {config.width:g} on {config.train_size:,} {config.dataset} images, Adam "
               f"{config.lr:g} with L2 {config.decay:g}, batch {config.batch_size}, {config.epochs} epochs "
               f"({preset} preset, {total['runs']} runs)")
    ours = (f"{percent(total['dead_by_activation'])} of {total['filters']} filters dead by activation, "
            f"{percent(total['dead_by_gamma'])} by |gamma| < 1e-3 (mean [95% interval] over runs)")
    layers = ", ".join(f"{name} {100 * entry['dead_by_activation']['mean']:.0f}% of {entry['filters']}"
                       for name, entry in facts.items() if name != "total")
    rows = [("ours", setting, ours, layers), *LITERATURE]
    lines = ["", "| source | network, data, training | dead | where |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def fill_magnitude(text: str, files: dict[str, dict], preset: str) -> str:
    """``text`` with the magnitude table for ``preset`` (if it has one) filled from ``files``."""
    def fill(match: re.Match) -> str:
        if match["preset"] != preset:
            return match[0]
        start, end = f"<!-- magnitude:{preset}:start -->", f"<!-- magnitude:{preset}:end -->"
        return start + render_magnitude(files, preset) + end

    return MAGNITUDE.sub(fill, text)


def _claims(files: dict[str, dict]) -> dict[tuple[str, str], dict]:
    return {(name, verdict.get("claim", "")): verdict for name, data in files.items()
            for verdict in data.get("verdicts", [])}


def regime_rows(by_preset: dict[str, dict[str, dict]]) -> list[list[str]]:
    """Per claim (notebook and claim text): the notebook's number, the claim, its role, then status,
    n and adjusted p (raw p for a secondary claim) in each preset's verdict files (``by_preset``: preset -> notebook -> file), in
    notebook order, the first preset's claim order within a notebook; "not tested" where a preset
    did not make the claim. Only notebooks that every preset ran are compared."""
    presets = list(by_preset)
    shared = set.intersection(*(set(files) for files in by_preset.values()))
    claims = {preset: _claims({name: files[name] for name in files if name in shared})
              for preset, files in by_preset.items()}
    keys = list(dict.fromkeys(key for preset in presets for key in claims[preset]))
    keys.sort(key=lambda key: key[0])  # stable: within a notebook the order of first appearance stays
    rows = []
    for name, claim in keys:
        found = [claims[preset][(name, claim)] for preset in presets if (name, claim) in claims[preset]]
        cells = [name[:2], claim, found[0].get("role") or "-"]
        for preset in presets:
            verdict = claims[preset].get((name, claim))
            p_value = verdict and regime_p(verdict)
            cells += ([verdict.get("status", ""), format_n(verdict), format_p(p_value)] if verdict
                      else [NOT_TESTED, "-", "-"])
        rows.append(cells)
    return rows


def regime_p(verdict: dict) -> float | None:
    """The p a regime table shows: a primary claim's adjusted p (against it where it does not
    hold), a check's raw p (likewise), a secondary claim's raw p for it."""
    against = verdict.get("status") == "does not hold"
    if verdict.get("role") == "primary":
        return verdict.get("p_against_adjusted") if against else verdict.get("p_adjusted")
    if verdict.get("role") == "check":
        return verdict.get("p_against") if against else verdict.get("p_value")
    return verdict.get("p_value")


def render_regimes(by_preset: dict[str, dict[str, dict]]) -> str:
    """The block between the regimes markers: ``regime_rows`` as a Markdown table."""
    presets = list(by_preset)
    header = "| nb | claim | role | " + " | ".join(f"{preset}: verdict | n | p" for preset in presets) + " |"
    lines = [f"_Written by `python -m sparsitylib readme` from "
             f"{', '.join(f'`figures/{preset}/*.verdict.json`' for preset in presets)}. p: adjusted within the "
             f"regime's primary family for a primary claim (against it, where it does not hold), raw for a check of our "
             f"method (likewise), raw one-sided for a secondary claim._", "",
             header, "|---|---|---|" + "---|---|---|" * len(presets)]
    lines += ["| " + " | ".join(_cell(cell) for cell in cells) + " |" for cells in regime_rows(by_preset)]
    return "\n" + "\n".join(lines) + "\n"


def fill_regimes(text: str, figures_root: Path, preset: str) -> tuple[str, int]:
    """``text`` with every regimes table that names ``preset`` filled from the verdict files
    under ``figures_root/<preset>/``; (text, tables filled). A named preset without verdict files
    raises ReadmeError."""
    filled = 0

    def fill(match: re.Match) -> str:
        nonlocal filled
        presets = match["presets"].split(",")
        if preset not in presets:
            return match[0]
        by_preset = {}
        for name in presets:
            files = load_verdict_files(figures_root / name)
            if not files:
                raise ReadmeError(f"the regimes table {match['presets']} needs verdict files in "
                                  f"{figures_root / name}: run `python -m sparsitylib reproduce --preset {name}`")
            by_preset[name] = files
        filled += 1
        start, end = match[0][:match.start("body") - match.start()], match[0][match.end("body") - match.start():]
        return start + render_regimes(by_preset) + end

    return REGIMES.sub(fill, text), filled


def _walk(files: dict[str, dict], key: str) -> tuple[object, str]:
    """The value at ``key`` and the format a float there gets by default: the verdict's ``fmt``
    under ``effect``, ``ci`` and ``values``, 2 significant digits for p-values, else ``{:.3g}``."""
    notebook, *steps = key.strip().split("/")
    if notebook not in files:
        raise KeyError(f"no verdict file for notebook {notebook!r} (have: {', '.join(files) or 'none'})")
    value, where, number_fmt = files[notebook], notebook, DEFAULT_FMT
    by_id = [v for v in value.get("verdicts", []) if steps and v.get("claim_id") == steps[0]]
    if len(by_id) == 1:  # a claim id: its verdict (an id with several verdicts needs their index)
        value, where, steps = by_id[0], f"{notebook}/{steps[0]}", steps[1:]
    elif steps and re.fullmatch(r"\d+", steps[0]):  # a verdict index
        value = value.get("verdicts", [])
    for position, step in enumerate(steps):
        last = position == len(steps) - 1
        if isinstance(value, dict) and "claim" in value:  # a step into a verdict's (or part's) field
            number_fmt = ((value.get("fmt") or DEFAULT_FMT) if step in ("effect", "ci", "values", "min_effect")
                          else P_FMT if step.startswith("p_") else DEFAULT_FMT)
        if isinstance(value, list) and last and step in SUMMARIES:
            if not value:
                raise KeyError(f"{where} is an empty list: no {step}")
            value = SUMMARIES[step]([float(v) for v in value])
        elif isinstance(value, list) and re.fullmatch(r"\d+", step) and int(step) < len(value):
            value = value[int(step)]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            choices = (", ".join(map(str, value)) if isinstance(value, dict)
                       else f"0..{len(value) - 1}" + (" or mean, sd, min, max" if last else "")
                       if isinstance(value, list) else f"nothing: it is the single value {value!r}")
            raise KeyError(f"{where} has no {step!r} (choose from {choices})")
        where += f"/{step}"
    return value, number_fmt


def resolve(files: dict[str, dict], key: str):
    """The value at ``key`` (``<notebook>/<verdict index>/<key>/...``, see the module's docstring);
    KeyError saying which step failed and what there is instead."""
    return _walk(files, key)[0]


def format_value(value, fmt: str | None = None, number_fmt: str = DEFAULT_FMT) -> str:
    """``value`` through ``fmt``; without one, a float goes through ``number_fmt`` and anything
    else (an integer, a status, a list) is written as it is."""
    if fmt:
        return fmt.format(value)
    if isinstance(value, float):
        return number_fmt.format(value)
    return str(value)


@dataclass
class Rendered:
    """A README with its markers filled, and what was filled."""

    text: str
    tables: int  # verdict tables written (0: the README shows none for this preset)
    rows: int
    values: int  # value markers filled
    values_changed: int


def render(readme: str, figures: Path, preset: str) -> Rendered:
    """``readme`` with its verdict table and value markers for ``preset`` filled from ``figures``.
    Raises ReadmeError naming the marker that cannot be filled."""
    start, end = table_markers(preset)
    readme, _ = fill_regimes(readme, figures.parent, preset)
    if readme.count(start) == 0 and readme.count(end) == 0:
        return Rendered(readme, 0, 0, 0, 0)
    if readme.count(start) != 1 or readme.count(end) != 1 or readme.index(start) > readme.index(end):
        raise ReadmeError(f"expected one {start} followed by one {end}")
    files = load_verdict_files(figures)
    if not files:
        raise ReadmeError(f"no *.verdict.json in {figures}")
    manifest_path = figures / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    unnamed = FIRST_TABLE.search(readme)["preset"]  # the preset of a key that names none
    readable = {**files, "MANIFEST": manifest}  # values may also quote the manifest (timings, commit)
    changed = count = 0

    def fill(match: re.Match) -> str:
        nonlocal changed, count
        if (match["preset"] or unnamed) != preset:
            return match[0]
        count += 1
        key, fmt = match["key"], match["fmt"]
        try:
            value, number_fmt = _walk(readable, key)
            new = format_value(value, fmt, number_fmt)
        except (KeyError, ValueError, TypeError, IndexError) as error:
            line = match.string.count("\n", 0, match.start()) + 1
            message = error.args[0] if isinstance(error, KeyError) else str(error)
            marker = match.string[match.start():match.start("text")]
            raise ReadmeError(f"line {line}: {marker}: {message}") from None
        changed += new != match["text"]
        return match.string[match.start():match.start("text")] + new + "<!-- /value -->"

    text = VALUE.sub(fill, readme)  # first, so that errors name the line of the file as it is
    text = fill_magnitude(text, files, preset)
    table = render_table(files, manifest, preset)
    head, rest = text.split(start)
    text = head + start + table + end + rest.split(end, 1)[1]
    return Rendered(text, 1, table.count("\n| ") - 2, count, changed)  # less the two header rows


RESULTS = re.compile(r"<!-- results:start -->(?P<body>.*?)<!-- results:end -->", re.DOTALL)
# what a results section may write as digits without a value marker: names and definitions, not results
ALLOWED_NUMBERS = (
    r"notebooks? \d\d(?:(?:, | and |-)\d\d)*",  # notebook numbers
    r"\bL[12]\b", r"\bVGG-1[16]\b", r"\bResNet-18\b", r"\bCIFAR-10{1,2}\b",  # names
    r"0\.05/m", r"\b95% ", r"\b2-3x\b",  # the level, the interval, how machines differ
)
NOT_PROSE = re.compile(
    r"<!-- value:.*?<!-- /value -->"  # generated values
    r"|<!-- (?P<kind>verdicts|regimes|magnitude):(?P<which>[\w,-]+):start -->.*?<!-- (?P=kind):(?P=which):end -->"  # tables
    r"|<!--.*?-->|```.*?```|`[^`\n]*`"  # comments, code
    r"|!\[[^\]]*\]\([^)]*\)|\]\([^)]*\)",  # images, link targets
    re.DOTALL)


def bare_numbers(text: str) -> list[str]:
    """Numbers typed by hand in the README's results sections (between ``<!-- results:start -->``
    and ``<!-- results:end -->``): every word with a digit outside a generated value or table,
    code, a link target or ``ALLOWED_NUMBERS``, as 'line N: word'. A result must come from the
    verdict JSONs, through a value marker."""
    found = []
    for section in RESULTS.finditer(text):
        body = NOT_PROSE.sub(lambda match: re.sub(r"[^\n]", " ", match[0]), section["body"])
        for pattern in ALLOWED_NUMBERS:
            body = re.sub(pattern, lambda match: " " * len(match[0]), body)
        first_line = text.count("\n", 0, section.start("body")) + 1
        for number, line in enumerate(body.splitlines()):
            found += [f"line {first_line + number}: {word}" for word in re.findall(r"\S*\d\S*", line)]
    return found


def diff(old: str, new: str, name: str = "README.md") -> str:
    """The unified diff from ``old`` to ``new`` ('' when equal)."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"{name} (committed)", f"{name} (from the verdict JSONs)"))


def check(readme: Path, figures: Path, preset: str) -> str:
    """The diff between ``readme`` and what the verdict JSONs say it should be ('' when it matches)."""
    old = readme.read_text()
    return diff(old, render(old, figures, preset).text, readme.name)


def update(readme: Path, figures: Path, preset: str) -> Rendered:
    """Rewrite ``readme`` (atomically, only when something changed) from the verdict JSONs."""
    old = readme.read_text()
    rendered = render(old, figures, preset)
    if rendered.text != old:
        write_atomically(readme, lambda temporary: temporary.write_text(rendered.text))
    return rendered


def main(readme: Path, figures: Path, preset: str, check_only: bool = False) -> int:
    """The ``readme`` command: 0 when written (or, with ``check_only``, when it matches), 1 when
    ``check_only`` finds a difference (the diff is printed), 2 when a marker cannot be filled."""
    try:
        old = readme.read_text()
        rendered = render(old, figures, preset) if check_only else update(readme, figures, preset)
    except (ReadmeError, OSError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not rendered.tables:
        print(f"{readme} has no verdict table for the {preset} preset ({table_markers(preset)[0]}); left unchanged")
        return 0
    difference = diff(old, rendered.text, readme.name)
    if check_only:
        print(difference or f"{readme}: matches {figures}/*.verdict.json", end="" if difference else "\n")
        return 1 if difference else 0
    lines = [line for line in difference.splitlines() if line[:3] not in ("+++", "---")]
    added, removed = sum(line[:1] == "+" for line in lines), sum(line[:1] == "-" for line in lines)
    print(f"{readme}: verdict table of {rendered.rows} rows, {rendered.values} value markers "
          f"({rendered.values_changed} changed); " + (f"+{added}/-{removed} lines" if difference else "unchanged"))
    return 0

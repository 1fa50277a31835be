"""The figures of the hypothesis notebooks, drawn from the store's tidy tables.

Every function takes DataFrames from ``load_runs``/``Experiment.run`` and returns a matplotlib
figure (``table1`` and ``summary`` return tables). Conventions shared by every figure:

- a setting (``optimizer+regularizer``, e.g. ``adam+l2``) has one colour in the whole report:
  ``SETTING_COLORS`` and ``setting_color``;
- every run is drawn (a dot, or a thin line over training); bars and thick lines are means over
  seeds; no band is drawn, so no spread reaches below 0 %;
- a metric that does not apply (NaN, e.g. dead by gamma without BatchNorm) is marked "n/a", never
  drawn as 0;
- a log axis carries ticks at the tested values only, written plainly.
"""

from __future__ import annotations

import hashlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import to_hex, to_rgb
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from .optim import DECAY_MODES, OPTIMIZERS, run_high_rate_lr_x_steps
from .sparsity import GAMMA_THRESHOLD

sns.set_theme(style="whitegrid", context="notebook")
PERCENT_COLUMNS = {"dead_by_activation": "dead by activation (%)", "dead_by_gamma": "dead by gamma (%)",
                   "test_error": "test error (%)"}
AXIS_NAMES = {"lr": "learning rate", "batch_size": "mini-batch size", "train_size": "training images",
              "width": "width multiplier", "n_classes": "number of classes", "decay": "lambda"}

# --- colours ----------------------------------------------------------------------------------

OPTIMIZER_COLORS = {"sgd": "#e66101", "adam": "#1f77b4", "amsgrad": "#2ca02c", "adamax": "#9467bd",
                    "adagrad": "#bcbd22", "adadelta": "#e377c2", "rmsprop": "#17becf", "adamw": "#67001f"}
# a regularizer shades its optimizer's colour: (colour mixed in, share of it)
REGULARIZER_SHADES = {"l2": ("black", 0.0), "wd": ("black", 0.45), "none": ("white", 0.55),
                      "decoupled": ("grey", 0.5)}
# labels that are no setting get one of these, by a hash of the label
FALLBACK_COLORS = ("#7f7f7f", "#393b79", "#637939", "#843c39", "#7b4173", "#e7ba52", "#5254a3", "#3f007d")
# a filter's state, only in figures about it; no setting, method or threshold uses these
ALIVE_COLOR, DEAD_COLOR = "#969696", "#b2182b"
THRESHOLD_COLOR = "#000000"
RECYCLED_COLOR = "#8c510a"  # runs whose dead filters were recycled (notebook 12); no optimizer's colour is brown
METHOD_STYLES = {  # pruning methods: a light colour for an unpruned net, the dark one for its pruned form
    "unpruned (adaptive + L2)": ("#6baed6", "o"),
    "implicit: dead filters removed": ("#08519c", "D"),
    "unpruned (SGD + L2)": ("#fdae6b", "s"),
    "L1-norm filters (Li et al.)": ("#d94801", "^"),
    "unpruned (SGD + L2 + gamma L1)": ("#a1d99b", "P"),
    "Network Slimming (Liu et al.)": ("#238b45", "v"),
}


def _mix(color: str, other: str, share: float) -> str:
    return to_hex((1 - share) * np.array(to_rgb(color)) + share * np.array(to_rgb(other)))


SETTING_COLORS = {f"{optimizer}+{mode}": _mix(color, *REGULARIZER_SHADES[mode])
                  for optimizer, color in OPTIMIZER_COLORS.items() for mode in REGULARIZER_SHADES}


def setting_color(label) -> str:
    """The report's colour of a setting label ('adam+l2'); any other label gets a fixed colour
    chosen by a hash of the label (the same in every figure and every process)."""
    label = str(label)
    if label in SETTING_COLORS:
        return SETTING_COLORS[label]
    return FALLBACK_COLORS[hashlib.sha256(label.encode()).digest()[0] % len(FALLBACK_COLORS)]


def setting_palette(labels) -> dict:
    """``{label: colour}`` for seaborn's ``palette=``."""
    return {label: setting_color(label) for label in labels}


def _hue_colors(values, hue: str | None) -> dict:
    """Colours of a figure's hue values: the setting palette when hue is a setting, else distinct
    colours in order (so no two values share one within the figure)."""
    values = list(values)
    if hue == "setting":
        return setting_palette(values)
    return {v: FALLBACK_COLORS[i % len(FALLBACK_COLORS)] for i, v in enumerate(values)}


def _single_setting_color(data: pd.DataFrame) -> str:
    settings = data["setting"].unique() if "setting" in data else []
    return setting_color(settings[0]) if len(settings) == 1 else FALLBACK_COLORS[0]


# --- tables -----------------------------------------------------------------------------------


def setting_label(row) -> str:
    """'adam+l2', 'sgd+none', ... for a run row."""
    return f"{row['optimizer']}+{row['decay_mode']}"


def with_labels(runs: pd.DataFrame) -> pd.DataFrame:
    """Completed runs with a ``setting`` label and the fractions as percentages; dead by gamma is
    NaN for a network without BatchNorm (it has no gamma; the store records 0 there), dead by
    activation NaN with leaky ReLU (a unit that is never positive still passes a fraction of its
    input: not dead)."""
    runs = runs[runs["status"] == "completed"].copy()
    runs["setting"] = runs.apply(setting_label, axis=1)
    for column, label in PERCENT_COLUMNS.items():
        runs[label] = 100 * runs[column].astype(float)
    if "norm" in runs:
        runs.loc[runs["norm"] == "none", PERCENT_COLUMNS["dead_by_gamma"]] = np.nan
    if "activation" in runs:
        runs.loc[runs["activation"] == "leaky_relu", PERCENT_COLUMNS["dead_by_activation"]] = np.nan
    return runs


def join_runs(table: pd.DataFrame, runs: pd.DataFrame, columns=("setting",)) -> pd.DataFrame:
    """Attach run columns (default: the setting label) to a long table keyed by run_id."""
    return table.merge(runs[["run_id", *columns]], on="run_id")


def plain(value) -> str:
    """A number as written by hand: 0.0005, 32, 0.125 (never 5e-04 or 10^x)."""
    value = float(value)
    return str(int(value)) if value.is_integer() else np.format_float_positional(value, trim="-")


def mean_sd_text(values, n: bool = True, separator: str = " +- ") -> str:
    """'25.5 +- 1.9 (3)': mean, sd over seeds and the number of runs; 'n/a' when all are NaN."""
    values = pd.Series(values, dtype=float)
    finite = values.dropna()
    if finite.empty:
        return "n/a" if len(values) else ""
    text = f"{finite.mean():.1f}" + (f"{separator}{finite.std(ddof=1):.1f}" if len(finite) > 1 else "")
    return text + (f" ({len(finite)})" if n else "")


def _optimizer_key(runs: pd.DataFrame) -> pd.Series:
    return runs.apply(lambda r: (OPTIMIZERS.index(r["optimizer"]) if r["optimizer"] in OPTIMIZERS else len(OPTIMIZERS),
                                 r["optimizer"], float(r["lr"])), axis=1)


def _regularizer_key(runs: pd.DataFrame) -> pd.Series:
    return runs.apply(lambda r: (DECAY_MODES.index(r["decay_mode"]) if r["decay_mode"] in DECAY_MODES
                                 else len(DECAY_MODES), r["decay_mode"],
                                 0.0 if r["decay_mode"] == "none" else float(r["decay"])), axis=1)


def regularizer_label(mode: str, decay: float, separator: str = ", ") -> str:
    """'none', 'L2, lambda=0.0005', 'WD, lambda=0.0005'."""
    if mode == "none":
        return "none"
    name = mode.upper() if mode in ("l2", "wd") else mode
    return f"{name}{separator}lambda={plain(decay)}"


def _grid_cells(runs: pd.DataFrame):
    """Runs keyed by (optimizer, lr) rows and (regularizer, lambda) columns, in the report's order."""
    runs = with_labels(runs)
    runs["row"] = _optimizer_key(runs)
    runs["column"] = _regularizer_key(runs)
    return runs, sorted(runs["row"].unique()), sorted(runs["column"].unique())


def table1(runs: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1: one row per optimizer (with its learning rate), column groups
    regularizer x (% dead by activation, % dead by gamma, test error %); cells 'mean +- sd (n)'."""
    runs, rows, columns = _grid_cells(runs)
    metrics = list(PERCENT_COLUMNS.values())
    header = pd.MultiIndex.from_tuples([(regularizer_label(mode, decay), metric) for _, mode, decay in columns
                                        for metric in metrics], names=["regularizer", "metric"])
    table = pd.DataFrame("no runs", index=[f"{optimizer} (lr {plain(lr)})" for _, optimizer, lr in rows], columns=header)
    table.index.name = "optimizer"
    for (row, column), cell in runs.groupby(["row", "column"]):
        for metric in metrics:
            table.loc[f"{row[1]} (lr {plain(row[2])})", (regularizer_label(column[1], column[2]), metric)] = \
                mean_sd_text(cell[metric])
    return table


def markdown_table(frame: pd.DataFrame, index: bool = True) -> str:
    """A DataFrame as a GitHub Markdown table (no ``tabulate`` needed); levels of a MultiIndex
    header are joined with ': ', NaN is left empty, '|' in a cell is escaped."""
    def cell(value) -> str:
        if isinstance(value, tuple):
            return ": ".join(cell(v) for v in value)
        if pd.isna(value):
            return ""
        return (f"{value:g}" if isinstance(value, float) else str(value)).replace("|", "\\|").replace("\n", " ")

    names = [cell(c) for c in frame.columns]
    rows = [[cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    if index:
        index_names = [cell(n) for n in frame.index.names]
        names = index_names + names
        keys = [k if isinstance(k, tuple) else (k,) for k in frame.index]
        rows = [[cell(k) for k in key] + row for key, row in zip(keys, rows)]
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join(" --- " for _ in names) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def summary(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean +- sd over seeds of % dead (both criteria) and test error, one row per group ('n/a'
    where a metric does not apply); failed runs are counted in their own column."""
    labelled = with_labels(runs)
    table = labelled.groupby(by)[list(PERCENT_COLUMNS.values())].agg(lambda v: mean_sd_text(v, n=False) or "n/a")
    table["seeds"] = labelled.groupby(by).size()
    failed = runs[runs["status"] != "completed"]
    table["failed runs"] = failed.groupby(by).size().reindex(table.index).fillna(0).astype(int) if len(failed) else 0
    return table


# --- axes helpers -----------------------------------------------------------------------------


def ticks_at(axis, values, log: bool = False, which: str = "x") -> None:
    """Major ticks at exactly the tested ``values``, written plainly, and no minor ticks (a log
    axis would otherwise add 10^x ticks between them)."""
    values = sorted({float(v) for v in values if pd.notna(v)})
    if log:
        (axis.set_xscale if which == "x" else axis.set_yscale)("log")
    scale = axis.xaxis if which == "x" else axis.yaxis
    scale.set_major_locator(FixedLocator(values))
    scale.set_major_formatter(FixedFormatter([plain(v) for v in values]))
    scale.set_minor_locator(NullLocator())


def _jittered(x: pd.Series, rank: pd.Series, count: pd.Series, log: bool, spread: float) -> np.ndarray:
    """x moved by up to +-spread/2 (in log10 units on a log axis), the runs of one x evenly apart."""
    offset = np.where(count > 1, (rank / np.maximum(count - 1, 1) - 0.5) * spread, 0.0)
    x = x.to_numpy(float)
    return x * 10 ** offset if log else x + offset


def _x_spread(x: pd.Series, log: bool) -> float:
    values = np.unique(x.dropna().to_numpy(float))
    if log:
        values = np.log10(values[values > 0])
    return 0.04 * (values.max() - values.min()) if len(values) > 1 else 0.05


def _not_applicable(axis, text: str = "n/a") -> None:
    axis.text(0.5, 0.5, text, transform=axis.transAxes, ha="center", va="center", color="dimgray")


def _run_handle(color: str = "dimgray") -> Line2D:
    return Line2D([], [], ls="", marker="o", ms=4, color=color, label="one run (seed)")


def _from_zero(axis) -> None:
    """A percentage axis from 0 (a little below, so that dots at 0 show whole): the size of an
    effect is read against 0, not against the smallest value."""
    top = max(axis.get_ylim()[1], 1.0)
    axis.set_ylim(-0.03 * top, 1.04 * top)


def _run_line() -> Line2D:
    return Line2D([], [], color="black", lw=0.8, alpha=0.45, label="thin: one run (seed)")


def _runs_phrase(counts) -> str:
    counts = sorted(set(int(c) for c in counts))
    if not counts:
        return "no runs"
    if len(counts) == 1:
        return f"n = {counts[0]} run" + ("s" if counts[0] != 1 else "")
    return f"n = {counts[0]}-{counts[-1]} runs"


def _n_per(data: pd.DataFrame, by, noun: str) -> str:
    """'n = 5 runs per arm': how many runs each group of ``data`` (rows with a ``run_id``) holds."""
    return f"{_runs_phrase(data.groupby(by)['run_id'].nunique())} per {noun}" if len(data) else "no runs"


def _sorted_runs(data: pd.DataFrame) -> pd.DataFrame:
    return data.sort_values([c for c in ("seed", "run_id") if c in data], kind="stable")


def _means_and_runs(axis, data: pd.DataFrame, x: str, y: str, color: str, label: str, log: bool, spread: float,
                    linestyle: str = "-") -> None:
    """The mean over runs as a line, and every run as a small dot (spread sideways a little)."""
    data = _sorted_runs(data.dropna(subset=[x, y]))
    if data.empty:
        return
    means = data.groupby(x)[y].mean()
    axis.plot(means.index, means.to_numpy(), color=color, lw=2, ls=linestyle, label=label, zorder=3)
    grouped = data.groupby(x)[y]
    xs = _jittered(data[x], grouped.cumcount(), grouped.transform("size"), log, spread)
    axis.scatter(xs, data[y], s=16, color=color, alpha=0.7, edgecolors="white", linewidths=0.4, zorder=4)


def _bars(axis, data: pd.DataFrame, x: str, y: str, hue: str | None = None, order=None, hue_order=None,
          colors: dict | None = None, missing=lambda group: "n/a") -> None:
    """A bar per (x, hue) at the mean over runs, every run a dot on it; a group whose values are
    all NaN gets no bar but the text ``missing(group)``."""
    order = list(order) if order is not None else list(dict.fromkeys(data[x]))
    hues = [None] if hue is None else list(hue_order) if hue_order is not None else sorted(data[hue].unique())
    width = 0.8 / len(hues)
    for i, category in enumerate(order):
        for j, level in enumerate(hues):
            group = data[(data[x] == category) & ((data[hue] == level) if hue is not None else True)]
            if group.empty:
                continue
            center = i - 0.4 + width * (j + 0.5)
            color = (colors[level] if colors and level in colors else colors[category] if colors and category in colors
                     else _single_setting_color(group))
            values = _sorted_runs(group)[y].astype(float).dropna()
            if values.empty:
                axis.text(center, 0, missing(group), ha="center", va="bottom", fontsize=9, color="0.3",
                          rotation=90 if len(hues) > 1 else 0)
                continue
            axis.bar(center, values.mean(), width * 0.9, color=color, alpha=0.45, edgecolor=color, linewidth=1.2)
            offsets = np.linspace(-width * 0.25, width * 0.25, len(values)) if len(values) > 1 else [0.0]
            axis.scatter(center + np.asarray(offsets), values, s=18, color=color, edgecolors="black",
                         linewidths=0.5, zorder=3)
    axis.set_xticks(range(len(order)), [str(c) for c in order])
    axis.set_xlim(-0.6, len(order) - 0.4)
    _from_zero(axis)


def _missing_reason(group: pd.DataFrame) -> str:
    """Why a group's metric is missing (see ``with_labels``)."""
    if "norm" in group and (group["norm"] == "none").all():
        return "n/a\n(no BatchNorm)"
    if "activation" in group and (group["activation"] == "leaky_relu").all():
        return "n/a\n(leaky: never\npositive is not dead)"
    return "n/a"


def _legend(figure, handles, title: str | None = None, below: bool = False) -> None:
    """The figure's one legend, outside the panels: at the right, or ``below`` them in two columns
    (for wide legends that would crowd the title)."""
    if below:
        figure.legend(handles=handles, title=title, loc="outside lower center", ncol=2, frameon=False)
    else:
        figure.legend(handles=handles, title=title, loc="outside right upper", frameon=False)


def _setting_handles(colors: dict, kind: str = "line") -> list:
    if kind == "bar":
        return [Patch(facecolor=c, edgecolor=c, alpha=0.6, label=str(v)) for v, c in colors.items()]
    return [Line2D([], [], color=c, lw=2, label=str(v)) for v, c in colors.items()]


# --- figures ----------------------------------------------------------------------------------


def _heatmap(axis, means: np.ndarray, texts: np.ndarray, cmap: str, vmin: float, vmax: float):
    colormap = plt.get_cmap(cmap).with_extremes(bad="#eeeeee")
    image = axis.imshow(np.ma.masked_invalid(means), cmap=colormap, vmin=vmin, vmax=vmax, aspect="auto")
    for (i, j), text in np.ndenumerate(texts):
        value = means[i, j]
        dark = np.isfinite(value) and np.mean(to_rgb(colormap(image.norm(value)))) < 0.5
        axis.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black")
    axis.grid(False)
    return image


def _cell_means_and_texts(cells, rows: list, columns: list, label: str, show_n: bool):
    """The grid of means of ``label`` and its cell texts: 'mean\n±sd' (and 'n=k' when asked)."""
    means = np.full((len(rows), len(columns)), np.nan)
    texts = np.full(means.shape, "no runs", dtype=object)
    for (row, column), cell in cells:
        i, j = rows.index(row), columns.index(column)
        values = cell[label].dropna()
        sd = f"\n±{values.std(ddof=1):.1f}" if len(values) > 1 else ""
        means[i, j] = values.mean() if len(values) else np.nan
        texts[i, j] = (f"{values.mean():.1f}{sd}" if len(values) else "n/a") + (f"\nn={len(cell)}" if show_n else "")
    return means, texts


def _finite_range(*grids, low: float | None = None) -> tuple[float, float]:
    values = np.concatenate([g[np.isfinite(g)] for g in grids])
    if values.size == 0:
        return 0.0, 1.0
    low = values.min() if low is None else low
    return low, max(values.max(), low + 1.0)


def optimizer_heatmaps(runs: pd.DataFrame) -> plt.Figure:
    """Optimizer (with its lr) x regularizer (with its lambda): mean +- sd over seeds of % dead by
    each criterion (one colour scale for both, from 0) and of test error (its own scale)."""
    runs, rows, columns = _grid_cells(runs)
    cells = runs.groupby(["row", "column"])
    counts = cells.size()
    show_n = counts.nunique() > 1
    grids = [_cell_means_and_texts(cells, rows, columns, label, show_n) for label in PERCENT_COLUMNS.values()]
    limits = [_finite_range(grids[0][0], grids[1][0], low=0.0)] * 2 + [_finite_range(grids[2][0])]
    figure, axes = plt.subplots(1, 3, figsize=(max(17, 5.5 * len(columns)), 0.75 * len(rows) + 2.2), layout="constrained")
    images = []
    for axis, (means, texts), (low, high), cmap, title in zip(axes, grids, limits, ("Reds", "Reds", "Blues"),
                                                              PERCENT_COLUMNS.values()):
        images.append(_heatmap(axis, means, texts, cmap, low, high))
        axis.set_title(title)
        axis.set_xticks(range(len(columns)), [regularizer_label(mode, decay, "\n") for _, mode, decay in columns])
        axis.set_yticks(range(len(rows)), [f"{optimizer}\nlr={plain(lr)}" for _, optimizer, lr in rows])
        axis.set_xlabel("regularizer")
    figure.colorbar(images[1], ax=axes[:2], label="% dead (both panels)", shrink=0.9)
    figure.colorbar(images[2], ax=axes[2], label="test error (%)", shrink=0.9)
    if counts.max() == 1:
        summary = "one run per cell (n = 1: no spread to show)"
    else:
        summary = f"mean ± sd over seeds, {_runs_phrase(counts)} per cell" + (" (each cell gives its n)" if show_n else "")
    figure.suptitle(f"Optimizer x regularizer: {summary}")
    return figure


def per_layer(layers: pd.DataFrame, filters: pd.DataFrame, runs: pd.DataFrame) -> plt.Figure:
    """Per layer: % dead filters (every run a dot), and the selectivity of the live filters."""
    runs = with_labels(runs)
    layers = join_runs(layers, runs)
    if "measured" in layers:  # the activation criterion does not apply to an unmeasured layer
        layers["dead_by_activation_pct"] = layers["dead_by_activation_pct"].where(layers["measured"].astype(bool))
    live = join_runs(filters[~filters["dead_by_activation"].astype(bool)], runs)
    settings = sorted(layers["setting"].unique())
    colors = setting_palette(settings)
    order = list(dict.fromkeys(layers["layer"]))
    figure, axes = plt.subplots(1, 2, figsize=(15, 4.6), layout="constrained")
    _bars(axes[0], layers, "layer", "dead_by_activation_pct", "setting", order, settings, colors,
          missing=lambda group: "n/a (not measured)")
    axes[0].set_ylabel("% of the layer's filters dead by activation")
    axes[0].set_xlabel("layer")
    axes[0].set_title(f"Where filters die ({_runs_phrase(layers.groupby(['setting', 'layer']).size())} per bar)")
    sns.boxplot(live, x="layer", y="selectivity", hue="setting", order=order, hue_order=settings, palette=colors,
                ax=axes[1], fliersize=1.5, legend=False)
    axes[1].set_title("Selectivity of live filters (fraction of images it is off for; runs pooled)")
    _legend(figure, _setting_handles(colors, "bar") + [_run_handle()], "setting")
    figure.suptitle(f"Where sparsity lives: dead filters per layer and the selectivity of the live ones "
                    f"({_n_per(layers, 'setting', 'setting')})")
    return figure


def _log_symlog_ticks(axis, upper: float) -> None:
    ticks = [0.0] + [10.0 ** e for e in range(-4, int(np.ceil(np.log10(max(upper, 1e-3)))) + 1)]
    axis.xaxis.set_major_locator(FixedLocator(ticks))
    axis.xaxis.set_major_formatter(FixedFormatter([plain(t) for t in ticks]))
    axis.xaxis.set_minor_locator(NullLocator())


def gamma_beta(filters: pd.DataFrame, runs: pd.DataFrame) -> plt.Figure:
    """BN |gamma| (symlog axis, linear below 1e-4) against beta for every filter, one panel per
    setting with its seeds pooled; dead by activation in black, the dead-by-gamma threshold marked."""
    runs = with_labels(runs)
    data = join_runs(filters, runs).dropna(subset=["gamma", "beta"])
    data["|gamma|"] = data["gamma"].abs()
    settings = sorted(data["setting"].unique()) or ["(no BatchNorm runs)"]
    upper = float(data["|gamma|"].max()) * 1.5 if len(data) else 1.0
    figure, axes = plt.subplots(1, len(settings), figsize=(5.6 * len(settings), 4.8), sharey=True,
                                layout="constrained", squeeze=False)
    for axis, setting in zip(axes[0], settings):
        panel = data[data["setting"] == setting]
        dead = panel["dead_by_activation"].astype(bool)
        axis.scatter(panel.loc[~dead, "|gamma|"], panel.loc[~dead, "beta"], s=9, color=ALIVE_COLOR, alpha=0.35,
                     edgecolors="none")
        axis.scatter(panel.loc[dead, "|gamma|"], panel.loc[dead, "beta"], s=11, color=DEAD_COLOR, alpha=0.8,
                     edgecolors="none")
        axis.set_xscale("symlog", linthresh=1e-4, linscale=1.0)
        axis.set_xlim(0, upper)
        _log_symlog_ticks(axis, upper)
        axis.axvline(GAMMA_THRESHOLD, color=THRESHOLD_COLOR, ls="--", lw=1.2)
        axis.text(GAMMA_THRESHOLD, 1.0, " |gamma| = 0.001:\n dead by gamma to the left", color=THRESHOLD_COLOR,
                  fontsize=8, va="top", transform=axis.get_xaxis_transform())
        axis.axhline(0, color="black", lw=0.5, alpha=0.5)
        by_gamma = int((panel["|gamma|"] < GAMMA_THRESHOLD).sum())
        axis.set_title(f"{setting}: {len(panel)} filters of {panel['run_id'].nunique()} runs (seeds pooled)\n"
                       f"dead by activation {int(dead.sum())}, by gamma {by_gamma}", fontsize=10)
        axis.set_xlabel("|gamma| (log; linear below 0.0001)")
        if panel.empty:
            _not_applicable(axis, "n/a (no BatchNorm)")
    axes[0][0].set_ylabel("beta")
    _legend(figure, [Line2D([], [], ls="", marker="o", color=ALIVE_COLOR, label="alive"),
                     Line2D([], [], ls="", marker="o", color=DEAD_COLOR, label="dead by activation"),
                     Line2D([], [], color=THRESHOLD_COLOR, ls="--", label="dead-by-gamma threshold")], "filter")
    figure.suptitle(f"BatchNorm |gamma| and beta per filter at the end of training ({_n_per(data, 'setting', 'setting')})")
    return figure


MARKED_POINTS = 20


def _over_time(axis, data: pd.DataFrame, x: str, y: str, colors: dict, styles: dict | None = None,
               key: str = "setting") -> None:
    """Every run as a thin line, the mean over the runs of each key as a thick line with markers."""
    for value, group in data.dropna(subset=[y]).groupby(key, sort=False):
        color, style = colors[value], (styles or {}).get(value, "-")
        for _, run in group.groupby("run_id"):
            run = run.sort_values(x)
            axis.plot(run[x], run[y], color=color, lw=0.8, alpha=0.45, ls=style)
        mean = group.groupby(x)[y].mean()
        marker = "o" if len(mean) <= MARKED_POINTS else None  # markers on a long curve would hide its line style
        axis.plot(mean.index, mean.to_numpy(), color=color, lw=2.2, ls=style, marker=marker, ms=4, label=str(value))
    axis.set_xlabel(x)


def over_epochs(history: pd.DataFrame, history_layers: pd.DataFrame, runs: pd.DataFrame, total_filters: int) -> plt.Figure:
    """Dead filters (% of all, on the snapshot images), median |gamma| and test error over training."""
    runs = with_labels(runs)
    history = join_runs(history, runs)
    history["dead (%)"] = 100 * history["dead_total"] / total_filters
    history["test error (%)"] = 100 * history["test_error"]
    gammas = join_runs(history_layers, runs).groupby(["run_id", "setting", "epoch"], as_index=False)["gamma_median"].mean()
    colors = setting_palette(sorted(history["setting"].unique()))
    figure, axes = plt.subplots(1, 3, figsize=(17, 4.4), layout="constrained")
    _over_time(axes[0], history, "epoch", "dead (%)", colors)
    axes[0].set_ylabel(f"dead filters (% of all {total_filters})")
    axes[0].set_title("Dead filters over training")
    _over_time(axes[1], gammas, "epoch", "gamma_median", colors)
    axes[1].set_ylabel("median |gamma| (mean over layers)")
    axes[1].set_ylim(bottom=0)
    axes[1].set_title("BN scale over training")
    _over_time(axes[2], history, "epoch", "test error (%)", colors)
    axes[2].set_title("Test error over training")
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    _from_zero(axes[0])
    _from_zero(axes[2])
    phrase = _runs_phrase(runs.groupby("setting").size())
    _legend(figure, _setting_handles(colors) + [_run_line()],
            "setting (thick: mean)")
    figure.suptitle(f"Over training ({phrase} per setting)")
    return figure


def sweep(runs: pd.DataFrame, x: str, hue: str | None = None, log_x: bool = False, title: str = "") -> plt.Figure:
    """% dead (both criteria) and test error against one setting: the mean over seeds as a line,
    every run as a dot; ticks at the tested values."""
    runs = with_labels(runs)
    groups = [(None, runs)] if hue is None else list(runs.groupby(hue, sort=True))
    colors = _hue_colors([value for value, _ in groups], hue) if hue is not None else {None: _single_setting_color(runs)}
    spread = _x_spread(runs[x], log_x)
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.3), layout="constrained")
    for axis, label in zip(axes, PERCENT_COLUMNS.values()):
        for value, group in groups:
            _means_and_runs(axis, group, x, label, colors[value], str(value), log_x, spread)
        ticks_at(axis, runs[x], log=log_x)
        axis.set_xlabel(AXIS_NAMES.get(x, x))
        axis.set_ylabel(label)
        axis.set_title(label)
        _from_zero(axis)
        if runs[label].isna().all():
            _not_applicable(axis, "n/a (no BatchNorm)" if label == PERCENT_COLUMNS["dead_by_gamma"] else "n/a")
    handles = (_setting_handles(colors) if hue is not None else []) + [_run_handle()]
    _legend(figure, handles, hue)
    phrase = _runs_phrase(runs.groupby([c for c in (hue, x) if c]).size())
    figure.suptitle(f"{title or f'Effect of {x}'}\nline: mean over seeds; dots: single runs ({phrase} per point)")
    return figure


REGULARIZER_LINES = {"l2": "-", "wd": "--", "decoupled": ":", "none": "-."}


def regularizer_sweep(runs: pd.DataFrame, title: str = "") -> plt.Figure:
    """% dead (activation) and test error against lambda, one line per optimizer x regularizer
    (every run a dot); the lowest-test-error lambda of each line is ringed."""
    runs = with_labels(runs)
    labels = (PERCENT_COLUMNS["dead_by_activation"], PERCENT_COLUMNS["test_error"])
    settings = sorted(runs["setting"].unique())
    colors = setting_palette(settings)
    spread = _x_spread(runs["decay"], True)
    means = runs.groupby(["setting", "decay"], as_index=False)[list(labels)].mean()
    best = means.loc[means.groupby("setting")[labels[1]].idxmin()]
    figure, axes = plt.subplots(1, 2, figsize=(14, 4.5), layout="constrained")
    for axis, label in zip(axes, labels):
        for setting in settings:
            group = runs[runs["setting"] == setting]
            _means_and_runs(axis, group, "decay", label, colors[setting], setting, True, spread,
                            REGULARIZER_LINES.get(group["decay_mode"].iloc[0], "-"))
        axis.scatter(best["decay"], best[label], s=180, facecolors="none", edgecolors="black", zorder=5)
        ticks_at(axis, runs["decay"], log=True)
        axis.set_xlabel("lambda")
        axis.set_ylabel(label)
        axis.set_title(label)
        _from_zero(axis)
    handles = [Line2D([], [], color=colors[s], lw=2, ls=REGULARIZER_LINES.get(s.split("+")[-1], "-"), label=s)
               for s in settings]
    handles += [_run_handle(), Line2D([], [], ls="", marker="o", ms=12, mfc="none", mec="black",
                                      label="lowest test error")]
    _legend(figure, handles, "setting")
    phrase = _runs_phrase(runs.groupby(["setting", "decay"]).size())
    figure.suptitle((title or "Regularization strength")
                    + "\nL2: lambda x theta added to the gradient; WD: theta x (1 - lambda) after each step"
                    + f"\nline: mean over seeds; dots: single runs ({phrase} per point)")
    return figure


LR_LINES = ("-", "--", ":", "-.")


def dead_over_training(progress: pd.DataFrame, title: str = "") -> plt.Figure:
    """Dead filters (% on the snapshot images) against update steps and against cumulative
    lr x steps: colour = optimizer x regularizer, line style = learning rate; every run a thin
    line, the mean over seeds a thick one."""
    data = progress.copy()
    data["setting"] = data["optimizer"] + "+" + data["decay_mode"]
    data["run"] = data.apply(lambda r: f"{r['setting']} lr={plain(r['lr'])}", axis=1)
    data["dead (%)"] = 100 * data["dead_fraction"]
    keys = data.drop_duplicates("run")[["run", "setting", "lr"]]
    colors = {row.run: setting_color(row.setting) for row in keys.itertuples()}
    styles = {}
    for _, group in keys.groupby("setting"):
        for rank, row in enumerate(group.sort_values("lr").itertuples()):
            styles[row.run] = LR_LINES[rank % len(LR_LINES)]
    figure, axes = plt.subplots(1, 2, figsize=(15, 4.7), layout="constrained")
    _over_time(axes[0], data, "steps", "dead (%)", colors, styles, key="run")
    axes[0].set_title("Dead filters against update steps")
    _over_time(axes[1], data, "lr_x_steps", "dead (%)", colors, styles, key="run")
    axes[1].set_xscale("log")
    axes[1].xaxis.set_major_formatter(FuncFormatter(lambda value, _: plain(f"{value:.3g}")))
    axes[1].xaxis.set_minor_locator(NullLocator())
    axes[1].set_xlabel("cumulative learning rate (sum of lr over steps)")
    axes[1].set_title("Dead filters against lr x steps")
    for axis in axes:
        axis.set_ylabel("dead filters (% of all, snapshot images)")
        _from_zero(axis)
    counts = data.groupby("run")["run_id"].nunique()
    handles = [Line2D([], [], color=colors[r], ls=styles[r], lw=2, label=f"{r} (n={counts[r]})") for r in colors]
    _legend(figure, handles + [_run_line()],
            "setting, lr (thick: mean)")
    figure.suptitle(f"{title or 'Training length and learning rate'} ({_n_per(data, 'run', 'setting and lr')})")
    return figure


def categories(runs: pd.DataFrame, x: str, hue: str | None = None, title: str = "", order=None,
               colors: dict | None = None) -> plt.Figure:
    """Bars of % dead (both criteria) and test error for categorical variants: a bar at the mean
    over seeds, every run a dot; a metric that does not apply is marked n/a. Without ``hue``,
    each bar takes its runs' optimizer+regularizer colour, or ``colors[category]`` where given
    (for two categories that share those settings)."""
    runs = with_labels(runs)
    hue_order = sorted(runs[hue].unique()) if hue is not None else None
    colors = _hue_colors(hue_order, hue) if hue is not None else colors
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5), layout="constrained")
    for axis, label in zip(axes, PERCENT_COLUMNS.values()):
        _bars(axis, runs, x, label, hue, order, hue_order, colors, missing=_missing_reason)
        axis.set_ylabel(label)
        axis.set_xlabel(x)
        axis.set_title(label)
        plt.setp(axis.get_xticklabels(), rotation=20, ha="right", rotation_mode="anchor")
    _legend(figure, (_setting_handles(colors, "bar") if colors and hue is not None else []) + [_run_handle()], hue)
    phrase = _runs_phrase(runs.groupby([c for c in (x, hue) if c]).size())
    figure.suptitle(f"{title}\nbar: mean over seeds; dots: single runs ({phrase} per bar)")
    return figure


FATE_COLORS = {"survives": ALIVE_COLOR, "dies by the end": DEAD_COLOR}


def _method_style(method: str, index: int) -> tuple[str, str]:
    return METHOD_STYLES.get(method, (FALLBACK_COLORS[index % len(FALLBACK_COLORS)], "o"))


ERROR_HEADROOM = 1.6  # the error axis runs to this times the largest fine-tuned error


def _error_against_macs(axis, data: pd.DataFrame, methods: list) -> str:
    """Every run at its MACs, moved sideways a little by method and seed so that none hides
    another: filled after fine-tuning, hollow right after pruning, joined by a thin line. The axis
    fits the fine-tuned errors; errors right after pruning above it are drawn on its top edge, and
    the returned note says how many and up to what."""
    step = 0.006 * (data["MACs"].max() - data["MACs"].min() or 1.0)
    top = ERROR_HEADROOM * 100 * data["test_error_finetuned"].max()
    above = 100 * data["test_error_pruned"] > top
    for index, method in enumerate(methods):
        color, marker = _method_style(method, index)
        rows = _sorted_runs(data[data["method"] == method])
        seeds = np.arange(len(rows)) - (len(rows) - 1) / 2
        xs = rows["MACs"].to_numpy() + (4 * (index - (len(methods) - 1) / 2) + seeds) * step
        after, before = 100 * rows["test_error_finetuned"].to_numpy(), 100 * rows["test_error_pruned"].to_numpy()
        changed = ~np.isclose(after, before)
        before = np.minimum(before, top)  # beyond the axis: drawn on its edge, the largest value written there
        for x, a, b in zip(xs[changed], after[changed], before[changed]):
            axis.plot([x, x], [b, a], color=color, lw=0.8, alpha=0.6)
        axis.scatter(xs[changed], before[changed], s=55, marker=marker, facecolors="none", edgecolors=color,
                     linewidths=1.4, alpha=0.7, zorder=3, clip_on=False)
        axis.scatter(xs, after, s=50, marker=marker, color=color, edgecolors="black", linewidths=0.5, alpha=0.7,
                     zorder=4)
    axis.set_ylim(0, top)
    axis.set_xlabel("MACs (millions)")
    axis.set_ylabel("test error (%)")
    return (f"right after pruning, {int(above.sum())} runs above {top:.0f}% (up to "
            f"{100 * data['test_error_pruned'].max():.0f}%), drawn on the top edge" if above.any() else "")


def _latency_by_method(axis, data: pd.DataFrame, methods: list, column: str, batch: int) -> None:
    """Horizontal bars: mean latency per method, every run a dot; at batch 128 each method's speed-up
    over the unpruned adaptive network written as 'x1.42'."""
    for index, method in enumerate(methods):
        color, marker = _method_style(method, index)
        values = _sorted_runs(data[data["method"] == method])[column].astype(float).dropna()
        if values.empty:
            axis.text(0, index, " n/a", va="center", color="dimgray", fontsize=8)
            continue
        axis.barh(index, values.mean(), 0.7, color=color, alpha=0.45, edgecolor=color)
        offsets = np.linspace(-0.2, 0.2, len(values)) if len(values) > 1 else [0.0]
        axis.scatter(values, index + np.asarray(offsets), s=22, marker=marker, color=color, edgecolors="black",
                     linewidths=0.5, zorder=3)
        if batch == 128 and "speedup_b128" in data:
            speedup = data.loc[data["method"] == method, "speedup_b128"].mean()
            axis.text(values.max(), index, f"  x{speedup:.2f}", va="center", fontsize=8)
    axis.set_yticks(range(len(methods)), methods, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(left=0)
    axis.set_xlabel(f"latency at batch {batch} (ms)" + ("\nxN: speed-up over unpruned (adaptive + L2)"
                                                         if batch == 128 and "speedup_b128" in data else ""))


def pruning_tradeoff(comparison: pd.DataFrame) -> plt.Figure:
    """Per model and data set: test error against MACs for every method and run (filled:
    fine-tuned, hollow: right after pruning), and the latency of each method at batch 1 and 128
    (x: speedup over the unpruned adaptive network at batch 128)."""
    cases = list(dict.fromkeys(zip(comparison["model"], comparison["dataset"])))
    methods = list(dict.fromkeys(comparison["method"]))
    latencies = [(c, b) for c, b in (("latency_b1_ms", 1), ("latency_b128_ms", 128)) if c in comparison]
    columns = 1 + len(latencies)
    figure, axes = plt.subplots(len(cases), columns, figsize=(6.5 + 4.6 * len(latencies), 4.6 * len(cases)),
                                squeeze=False, layout="constrained", width_ratios=[1.5] + [1] * len(latencies))
    for row, (model, dataset) in zip(axes, cases):
        data = comparison[(comparison["model"] == model) & (comparison["dataset"] == dataset)].copy()
        data["MACs"] = data["macs"] / 1e6
        note = _error_against_macs(row[0], data, methods)
        row[0].set_title(f"{model} on {dataset} ({data['seed'].nunique()} seeds)" + (f"\n{note}" if note else ""),
                         fontsize=10)
        for axis, (column, batch) in zip(row[1:], latencies):
            _latency_by_method(axis, data, methods, column, batch)
            axis.set_title(f"{model}: latency, batch {batch}", fontsize=10)
        for axis in row[2:]:
            axis.tick_params(axis="y", labelleft=False)
    handles = [Line2D([], [], ls="", marker=_method_style(m, i)[1], color=_method_style(m, i)[0], mec="black",
                      mew=0.5, ms=8, label=m) for i, m in enumerate(methods)]
    handles += [Line2D([], [], ls="", marker="o", mfc="white", mec="black", ms=8, label="right after pruning"),
                Line2D([], [], ls="", marker="o", color="dimgray", ms=8, label="fine-tuned / unpruned")]
    _legend(figure, handles, "method (one marker per run)", below=True)
    counts = comparison.groupby(["model", "dataset", "method"])["seed"].nunique()
    figure.suptitle("Implicit pruning (removing the dead filters) against explicit pruning: test error against MACs, "
                    f"and latency\nbars: mean over runs; dots: single runs ({_runs_phrase(counts)} per method)")
    return figure


def _stage_ticks(stages: pd.DataFrame, order: list, column: str, noun: str) -> list[str]:
    counts = stages.groupby("stage")[column].agg(["min", "max"])
    labels = []
    for stage in order:
        low, high = int(counts.loc[stage, "min"]), int(counts.loc[stage, "max"])
        labels.append(f"{stage}\n{low if low == high else f'{low}-{high}'} {noun}")
    return labels


def _per_run_total(stages: pd.DataFrame, column: str) -> str:
    totals = stages.groupby("run_id")[column].sum().astype(int).unique()
    return str(totals[0]) if len(totals) == 1 else f"{totals.min()}-{totals.max()}"


def dead_per_stage(stages: pd.DataFrame, title: str = "") -> plt.Figure:
    """% dead per ResNet stage by each criterion, a bar per setting at the mean over seeds, every
    run a dot. The activation criterion applies to the ``measured`` filters only, the gamma
    criterion to all: each panel names its denominator."""
    order = sorted(stages["stage"].unique(), key=lambda s: (s != "stem", s))
    settings = sorted(stages["setting"].unique())
    colors = setting_palette(settings)
    measured = "measured" if "measured" in stages else "filters"
    figure, axes = plt.subplots(1, 2, figsize=(15, 4.6), layout="constrained")  # two denominators: own scales
    panels = ((axes[0], "dead_by_activation_pct", measured, "dead by activation", "n/a\n(no activation\ncriterion)"),
              (axes[1], "dead_by_gamma_pct", "filters", "dead by |gamma| < 0.001", "n/a"))
    for axis, column, denominator, name, missing in panels:
        _bars(axis, stages, "stage", column, "setting", order, settings, colors, missing=lambda group, m=missing: m)
        by_activation = denominator == "measured"
        axis.set_xticks(range(len(order)), _stage_ticks(stages, order, denominator,
                                                        "measured" if by_activation else "filters"))
        total = _per_run_total(stages, denominator)
        scope = f"the {total} filters with an activation criterion" if by_activation else f"all {total} filters"
        axis.set_ylabel(f"% of {scope}")
        axis.set_title(f"{name} (% of {scope})", fontsize=11)
    _legend(figure, _setting_handles(colors, "bar") + [_run_handle()], "setting")
    phrase = _runs_phrase(stages.groupby(["setting", "stage"])["run_id"].nunique())
    figure.suptitle(f"{title}\nbar: mean over seeds; dots: single runs ({phrase} per bar)")
    return figure


def _sparsity_error_panel(axis, curves: pd.DataFrame, runs: pd.DataFrame | None, optimizer: str, budget_line,
                          label_inside=None) -> None:
    """One panel of ``sparsity_vs_error``; ``label_inside(x, y)`` says which lambdas get a label."""
    for index, (regularizer, part) in enumerate(curves.groupby("regularizer", sort=False)):
        part = part.sort_values("decay")
        colour = setting_color(f"{optimizer}+{regularizer}")
        axis.plot(100 * part["test_error"], 100 * part["dead"], color=colour, marker="o", linewidth=2,
                  label=regularizer.upper())
        if runs is not None:
            mine = runs[(runs["optimizer"] == optimizer) & (runs["decay_mode"] == regularizer)]
            axis.scatter(100 * mine["test_error"], 100 * mine["dead_by_activation"], color=colour, s=14, alpha=0.6)
        for row in part.itertuples():
            if row.decay == 0 and index:  # lambda 0 is shared: written once
                continue
            if label_inside is None or label_inside(100 * row.test_error, 100 * row.dead):
                # the first regularizer's lambdas above their points, the second's below: at 0% dead they overlap
                axis.annotate("0" if row.decay == 0 else plain(row.decay), (100 * row.test_error, 100 * row.dead),
                              textcoords="offset points", xytext=(4, 5) if index % 2 == 0 else (4, -12), fontsize=8,
                              color=colour, rotation=30 if index % 2 == 0 else -30)
        chosen = part[part["budget_lambda"]]
        axis.scatter(100 * chosen["test_error"], 100 * chosen["dead"], s=220, facecolors="none", edgecolors=colour,
                     linewidths=2)
    if runs is not None:
        reference = runs[(runs["optimizer"] == optimizer) & (runs["decay_mode"] == "none")]
        axis.scatter(100 * reference["test_error"], 100 * reference["dead_by_activation"], color="black", s=14,
                     label="no regularization (each run)")
    if budget_line is not None:
        axis.axvline(budget_line[0], color=THRESHOLD_COLOR, linestyle="--", label=budget_line[1])
    axis.set_xlabel("test error (%): line = mean over seeds, dots = runs")
    axis.set_ylabel("dead by activation (%)")


ZOOM_POINTS = 6  # the zoomed panel reaches this many points of test error past the budget


def sparsity_vs_error(curves: pd.DataFrame, budget: float, runs: pd.DataFrame | None = None, optimizer: str = "adam",
                      title: str = "") -> plt.Figure:
    """Dead fraction against test error, one curve per regularizer over its lambdas (lambda 0, no
    regularization, shared): the means over seeds as a line with each lambda written beside it,
    every run as a dot (``runs``: one row per run, lambda 0 for no regularization), the
    equal-error budget (lambda 0's mean error + ``budget``) as a line, each regularizer's budget
    lambda ringed. The right panel zooms on the budget: errors up to ``ZOOM_POINTS`` past it."""
    figure, (full, zoom) = plt.subplots(1, 2, figsize=(15, 5.5), layout="constrained")
    zero = curves.loc[curves["decay"] == 0, "test_error"]
    limit = 100 * (zero.iloc[0] + budget) if len(zero) else None
    budget_line = (limit, f"budget: no regularization + {budget:.0%}") if limit is not None else None
    right = limit + ZOOM_POINTS if limit is not None else 100 * curves["test_error"].max()
    _sparsity_error_panel(full, curves, runs, optimizer, budget_line, lambda x, y: x > right)
    _sparsity_error_panel(zoom, curves, runs, optimizer, budget_line, lambda x, y: x <= right)
    inside = curves[100 * curves["test_error"] <= right]
    left = 100 * min(curves["test_error"].min(), runs["test_error"].min() if runs is not None else 1.0) - 1
    zoom.set_xlim(left, right)
    zoom.set_ylim(0, max(5.0, 100 * inside["dead"].max() * 1.2 if len(inside) else 5.0))
    _from_zero(full)
    _from_zero(zoom)
    full.set_title("all lambdas")
    zoom.set_title(f"near the budget (test error up to {ZOOM_POINTS} points past it)")
    handles, labels = full.get_legend_handles_labels()
    figure.legend(handles, labels, title="regularizer (ringed: budget lambda; numbers: lambda)", loc="outside right upper",
                  frameon=False, fontsize=9)
    figure.suptitle((title or "Dead filters against test error, one curve per regularizer")
                    + (f" ({_n_per(runs, [c for c in ('decay_mode', 'decay') if c in runs], 'point')})" if runs is not None and "run_id" in runs else ""))
    return figure


def _thinned_ticks(ticks: list, keep, most: int = 12) -> list:
    """At most about ``most`` of the integer ``ticks``, every k-th counted from ``keep`` (which
    stays): long trainings would otherwise print their labels on top of each other."""
    step = -(-len(ticks) // most)
    return sorted({tick for tick in ticks if (tick - keep) % step == 0} | {keep})


def selectivity_before_death(curve: pd.DataFrame, aucs: pd.DataFrame, lead_epochs: int = 2,
                             early_epoch: int = 1, min_auc_effect: float = 0.05) -> plt.Figure:
    """Two views of "selective features emerge, then get pruned", one line per run, the mean over
    runs thick. Left, the whole lead curve (``hypotheses.lead_curve``): aligned on each dying
    filter's epoch of death, its selectivity minus its layer's survivors', against the epochs
    before death, the described lead marked. Right, over training (``hypotheses.selectivity_auc``):
    how well each epoch's selectivity separates the filters that end dead from their layer's
    survivors (AUC; 0.5 is chance, the band within ``min_auc_effect`` of it predicts nothing), the
    tested epoch marked."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6))
    colour = FALLBACK_COLORS[0]  # one colour: the lines are runs of one setting, not settings
    if curve.empty:
        left.text(0.5, 0.5, "no filter died after the first snapshot", ha="center", transform=left.transAxes)
    else:
        for _, part in curve.groupby("run_id"):
            left.plot(-part["epochs_before_death"], part["difference"], marker="o", markersize=3, alpha=0.5,
                      linewidth=1, color=colour)
        mean = curve.groupby("epochs_before_death")["difference"].mean()
        left.plot(-mean.index, mean.to_numpy(), color=colour, linewidth=3,
                  label=f"mean of {curve['run_id'].nunique()} runs (thin lines: each run)")
        left.axvline(-lead_epochs, color="grey", linestyle="--", label=f"described lead: {lead_epochs} epoch(s)")
        left.set_xticks(_thinned_ticks(sorted(-curve["epochs_before_death"].unique()), keep=-lead_epochs))
        left.legend(fontsize=8)
    left.axhline(0, color="black", linewidth=0.8)
    left.set_xlabel("epochs before the filter's death (aligned per filter)")
    left.set_ylabel("selectivity: dying filter - same-layer survivors")
    left.set_title("As they die: the lead curve", fontsize=11)
    known = aucs.dropna(subset=["auc"]) if len(aucs) else aucs
    if known.empty:
        right.text(0.5, 0.5, "no run with dying and surviving filters", ha="center", transform=right.transAxes)
    else:
        for _, part in known.groupby("run_id"):
            right.plot(part["epoch"], part["auc"], marker="o", markersize=3, alpha=0.5, linewidth=1, color=colour)
        mean = known.groupby("epoch")["auc"].mean()
        right.plot(mean.index, mean.to_numpy(), color=colour, linewidth=3,
                   label=f"mean of {known['run_id'].nunique()} runs (thin lines: each run)")
        right.axvline(early_epoch, color="grey", linestyle="--", label=f"tested: epoch {early_epoch}")
        right.legend(fontsize=8, loc="upper left")
    right.axhline(0.5, color="black", linewidth=0.8)
    right.axhspan(0.5 - min_auc_effect, 0.5 + min_auc_effect, color=THRESHOLD_COLOR, alpha=0.08, linewidth=0)
    right.text(1.0, 0.5, f" chance\n +-{min_auc_effect:g}: no\n prediction", va="center", ha="left", fontsize=8,
               transform=right.get_yaxis_transform())
    right.set_ylim(0, 1)
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("epoch at which selectivity is measured")
    right.set_ylabel("AUC: ends dead vs same-layer survivors")
    right.set_title("Before they die: does selectivity predict death?", fontsize=11)
    n = pd.concat([curve.get("run_id", pd.Series(dtype=object)), aucs.get("run_id", pd.Series(dtype=object))]).nunique()
    figure.suptitle(f"Selective features, then pruned? (ReLU + BN, all decayed; n = {n} runs)")
    figure.tight_layout()
    return figure


def equal_lr_x_steps(progress: pd.DataFrame, title: str = "", margin: float = 0.05) -> plt.Figure:
    """Dead filters (% on the snapshot images) against update steps and against lr x steps, one
    line per run (colour: learning rate), and the final dead fraction per learning rate with
    every seed and the equivalence margin (``margin``, a fraction) around the largest rate's mean."""
    data = progress.copy()
    data["dead (%)"] = 100 * data["dead_fraction"]
    rates = sorted(data["lr"].unique(), reverse=True)
    colours = dict(zip(rates, sns.color_palette("viridis", len(rates))))
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for (lr, run_id), part in data.groupby(["lr", "run_id"]):
        for axis, x in zip(axes[:2], ("steps", "lr_x_steps")):
            axis.plot(part[x], part["dead (%)"], marker=".", color=colours[lr], alpha=0.8,
                      label=f"lr {lr:g}" if axis is axes[0] else None)
    handles = {h.get_label(): h for h in axes[0].get_lines()}
    axes[0].legend(handles.values(), handles.keys(), title="one line per run")
    axes[0].set_title("against update steps")
    axes[0].set_xlabel("update steps")
    axes[1].set_title("against lr x steps (the same total for every rate)")
    axes[1].set_xlabel("lr x steps (sum of the learning rate over the steps)")
    for axis in axes[:2]:
        axis.set_ylabel("dead on the snapshot images (%)")
    final = data.loc[data.groupby("run_id")["epoch"].idxmax()]
    for index, lr in enumerate(rates):
        values = final.loc[final["lr"] == lr, "dead (%)"]
        axes[2].scatter([index] * len(values), values, color=colours[lr], zorder=3)
        axes[2].hlines(values.mean(), index - 0.25, index + 0.25, color=colours[lr], linewidth=3)
    reference = final.loc[final["lr"] == rates[0], "dead (%)"].mean()
    axes[2].axhspan(reference - 100 * margin, reference + 100 * margin, color="grey", alpha=0.15,
                    label=f"equal: within {100 * margin:.0f} points of lr {rates[0]:g}")
    axes[2].legend(loc="lower left")
    axes[2].set_ylim(bottom=0)
    axes[2].set_xticks(range(len(rates)), [f"lr {lr:g}" for lr in rates])
    axes[2].set_ylabel("dead at the end (%), each seed")
    axes[2].set_title("at the end: equal if lr x steps governs")
    figure.suptitle(f"{title or 'Equal lr x steps'} ({_n_per(data, 'lr', 'learning rate')})")
    figure.tight_layout()
    return figure


CRITERION_STYLES = {"by activation (never fires on the snapshot images)": "-",
                    f"by |gamma| < {GAMMA_THRESHOLD:g}": "--"}


def dead_by_criterion_over_epochs(progress: pd.DataFrame, chosen_epochs: int | None = None,
                                  title: str = "", milestones=()) -> plt.Figure:
    """Dead filters by both criteria (line style) and test error against epochs, one colour per
    setting; every run a thin line, the mean a thick one; ``chosen_epochs`` (the regime's length
    chosen from this curve) drawn as a vertical line, and ``milestones`` (the epochs where that
    regime lowers its learning rate) as fainter ones. ``progress``: ``hypotheses.training_progress``."""
    data = progress.copy()
    data["setting"] = data["optimizer"] + "+" + data["decay_mode"] + " lr=" + data["lr"].map(plain)
    colors = {s: setting_color(s.split(" ")[0]) for s in data["setting"].unique()}
    long = pd.concat([data.assign(criterion=name, dead=100 * data[column])
                      for name, column in zip(CRITERION_STYLES, ("dead_fraction", "dead_gamma_fraction"))])
    long["key"] = long["setting"] + " | " + long["criterion"]
    styles = {key: CRITERION_STYLES[key.split(" | ")[1]] for key in long["key"].unique()}
    key_colors = {key: colors[key.split(" | ")[0]] for key in long["key"].unique()}
    figure, axes = plt.subplots(1, 2, figsize=(14, 4.6), layout="constrained")
    _over_time(axes[0], long, "epoch", "dead", key_colors, styles, key="key")
    axes[0].set_ylabel("dead filters (% of all)")
    axes[0].set_title("Dead filters, both criteria")
    data["test error (%)"] = 100 * data["test_error"]
    _over_time(axes[1], data, "epoch", "test error (%)", colors)
    axes[1].set_title("Test error (first 1,000 test images)")
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        _from_zero(axis)
        if chosen_epochs:
            axis.axvline(chosen_epochs, color=THRESHOLD_COLOR, lw=1, ls=":")
        for epoch in milestones:
            axis.axvline(epoch, color=THRESHOLD_COLOR, lw=0.8, ls=":", alpha=0.4)
    if chosen_epochs:
        lowered = f"\nlr / 10 at epochs {', '.join(plain(m) for m in milestones)}" if len(milestones) else ""
        axes[0].annotate(f"chosen length: {chosen_epochs} epochs{lowered}", (chosen_epochs, axes[0].get_ylim()[1]),
                         xytext=(4, -24 if lowered else -12), textcoords="offset points", fontsize=9)
    steps = data.drop_duplicates("run_id").assign(per_epoch=lambda d: d["steps"] / d["epoch"])
    handles = ([Line2D([], [], color=c, lw=2, label=s) for s, c in colors.items()]
               + [Line2D([], [], color="black", lw=1.5, ls=ls, label=name) for name, ls in CRITERION_STYLES.items()]
               + [_run_line()])
    _legend(figure, handles, "setting, criterion (thick: mean)", below=True)
    per_epoch = int(round(steps["per_epoch"].median())) if len(steps) else 0
    figure.suptitle((title or "Dead filters over training")
                    + f"\n{_runs_phrase(data.groupby('setting')['run_id'].nunique())} per setting; "
                    f"{per_epoch} update steps per epoch")
    return figure


def criteria_agreement(agreement: pd.DataFrame, title: str = "") -> plt.Figure:
    """Per layer (x) and setting (colour): dead filters by activation (bar), by |gamma| < 1e-3
    (hatched bar) and by both (dots inside), as % of the layer's measured filters, with the
    Jaccard index of the two dead sets (pooled over runs) written above each pair."""
    data = agreement.copy()
    data["setting"] = data["optimizer"] + "+" + data["decay_mode"]
    settings = sorted(data["setting"].unique())
    layers = list(dict.fromkeys(data["layer"]))
    # at most 12 inches wide, so that its labels stay readable where the README shows it at page width
    figure, axis = plt.subplots(figsize=(min(12, max(8, 1.3 * len(layers) * len(settings))), 4.8), layout="constrained")
    width = 0.8 / (2 * len(settings))
    for j, setting in enumerate(settings):
        color = setting_color(setting)
        for i, layer in enumerate(layers):
            group = data[(data["setting"] == setting) & (data["layer"] == layer)]
            if group.empty:
                continue
            for k, column in enumerate(("dead_by_activation", "dead_by_gamma")):
                center = i - 0.4 + width * (2 * j + k + 0.5)
                values = 100 * group[column] / group["filters"]
                axis.bar(center, values.mean(), width * 0.9, color=color, alpha=0.45 if k == 0 else 0.2,
                         edgecolor=color, hatch="//" if k else None, linewidth=1.2)
                axis.scatter(center + np.linspace(-width * 0.2, width * 0.2, len(values)) if len(values) > 1 else
                             [center], values, s=14, color=color, edgecolors="black", linewidths=0.4, zorder=3)
            either, both = group["dead_by_either"].sum(), group["dead_by_both"].sum()
            label = f"J={both / either:.2f}" if either else "none"
            top = 100 * max((group["dead_by_activation"] / group["filters"]).max(),
                            (group["dead_by_gamma"] / group["filters"]).max())
            axis.annotate(label, (i - 0.4 + width * (2 * j + 1), top), xytext=(0, 5), textcoords="offset points",
                          ha="center", va="bottom", fontsize=11, color="black" if either else "dimgray")
    axis.set_xticks(range(len(layers)), layers)
    axis.set_xlim(-0.6, len(layers) - 0.4)
    axis.set_ylabel("dead filters (% of the layer's measured filters)")
    _from_zero(axis)
    handles = ([Patch(facecolor=setting_color(s), alpha=0.6, label=s) for s in settings]
               + [Patch(facecolor="white", edgecolor="black", label="by activation"),
                  Patch(facecolor="white", edgecolor="black", hatch="//", label=f"by |gamma| < {GAMMA_THRESHOLD:g}"),
                  _run_handle()])
    _legend(figure, handles, "setting, criterion", below=True)
    figure.suptitle((title or "Do the two criteria find the same dead filters?")
                    + f"\nJ: Jaccard index of the two dead sets (both / either), runs pooled; "
                    f"{_runs_phrase(data.groupby('setting')['run_id'].nunique())} per setting")
    return figure


GAMMA_RECORDED_FLOOR = 1e-7  # the snapshots keep |gamma| to 7 decimals


def bn_around_death(aligned: pd.DataFrame, runs: pd.DataFrame, title: str = "") -> plt.Figure:
    """|gamma| (log axis, the 1e-3 threshold drawn) and beta of the filters that die, against
    epochs from each filter's death (0: the first snapshot from which it stays dead): per run the
    median over its dying filters (thin), per setting the mean of those medians (thick). A panel
    whose parameter was not recorded says so."""
    data = join_runs(aligned, with_labels(runs)) if len(aligned) else aligned
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.4), layout="constrained")
    colors = setting_palette(sorted(data["setting"].unique())) if len(data) else {}
    for axis, column, label in ((axes[0], "gamma", "|gamma|"), (axes[1], "beta", "beta")):
        values = data.dropna(subset=[column]) if len(data) else data
        if values.empty:
            _not_applicable(axis, f"n/a: {label} per epoch not recorded in these runs")
            axis.set_title(f"{label} of dying filters")
            axis.set_xticks([]), axis.set_yticks([])
            continue
        medians = values.groupby(["setting", "run_id", "epochs_from_death"], as_index=False)[column].median()
        if column == "gamma":  # recorded to 7 decimals: 0 means below 1e-7
            medians[column] = medians[column].clip(lower=GAMMA_RECORDED_FLOOR)
        _over_time(axis, medians, "epochs_from_death", column, colors)
        axis.axvline(0, color=THRESHOLD_COLOR, lw=0.8, ls=":")
        axis.set_xlabel("epochs from the filter's death (0: first snapshot from which it stays dead)")
        axis.set_title(f"{label} of dying filters (median per run)")
        if column == "gamma":
            axis.set_yscale("log")
            axis.axhline(GAMMA_THRESHOLD, color=THRESHOLD_COLOR, lw=1, ls="--", label=f"|gamma| = {GAMMA_THRESHOLD:g}")
            axis.set_ylabel(f"|gamma| (log; recorded to {GAMMA_RECORDED_FLOOR:g})")
        else:
            axis.axhline(0, color=THRESHOLD_COLOR, lw=1, ls="--")
            axis.set_ylabel("beta")
    counts = data.drop_duplicates(["run_id", "layer", "filter"]).groupby("setting").size() if len(data) else {}
    runs_per = data.groupby("setting")["run_id"].nunique() if len(data) else {}
    handles = [Line2D([], [], color=c, lw=2, label=f"{s} ({counts[s]} dying filters, {runs_per[s]} run{'s' if runs_per[s] != 1 else ''})")
               for s, c in colors.items()] + [_run_line(),
                                              Line2D([], [], color=THRESHOLD_COLOR, ls="--", lw=1, label=f"|gamma| = {GAMMA_THRESHOLD:g} / beta = 0")]
    _legend(figure, handles, "setting (thick: mean of the run medians)", below=True)
    figure.suptitle((title or "BatchNorm parameters of the filters that die, aligned on their death")
                    + (f" ({_n_per(data, 'setting', 'setting')} with dying filters)" if len(data) else " (no filter died)"))
    return figure


def precision_differences(pairs: pd.DataFrame, p_values: dict | None = None, title: str = "") -> plt.Figure:
    """bfloat16 minus float32 of the same seed (``hypotheses.precision_pairs``), in points: one row
    per optimizer, one panel per criterion with each layer and the total, and one for the test
    error. Each seed is a dot (colour: seed, the same in every panel; no other colour is used), the
    mean a black bar with its 95% t interval, the equivalence margin a grey band around zero.
    ``p_values`` maps (optimizer, quantity, criterion) to the part's TOST p, written under its tick."""
    from scipy import stats

    optimizers = list(dict.fromkeys(pairs["optimizer"]))
    seeds = sorted(pairs["seed"].unique())
    palette = sns.color_palette("Dark2", max(8, len(seeds)))
    seed_colors = {seed: palette[i % len(palette)] for i, seed in enumerate(seeds)}
    p_values = p_values or {}
    panels = [("activation", "dead by activation"), ("gamma", "dead by |gamma| < " + f"{GAMMA_THRESHOLD:g}"),
              ("", "test error")]
    figure, axes = plt.subplots(len(optimizers), 3, figsize=(15, 1.2 + 3.6 * len(optimizers)), squeeze=False,
                                gridspec_kw={"width_ratios": [8, 8, 1.6]}, layout="constrained")
    for row, optimizer in enumerate(optimizers):
        for column, (criterion, name) in enumerate(panels):
            axis = axes[row][column]
            data = pairs[(pairs["optimizer"] == optimizer) & (pairs["criterion"] == criterion)]
            quantities = list(dict.fromkeys(sorted((q for q in data["quantity"] if q != "total"),
                                                   key=lambda q: (len(q), q)))) + (["total"] if (data["quantity"] == "total").any() else [])
            for x, quantity in enumerate(quantities):
                part = data[data["quantity"] == quantity]
                margin = 100 * part["margin"].iloc[0]
                axis.fill_between([x - 0.4, x + 0.4], -margin, margin, color="grey", alpha=0.18, linewidth=0)
                offsets = np.linspace(-0.25, 0.25, len(seeds)) if len(seeds) > 1 else [0.0]
                for offset, seed in zip(offsets, seeds):
                    value = part.loc[part["seed"] == seed, "difference"]
                    if len(value):
                        axis.scatter(x + offset, 100 * value.iloc[0], color=seed_colors[seed], s=18, zorder=3)
                d = 100 * part["difference"].to_numpy(dtype=float)
                axis.hlines(d.mean(), x - 0.3, x + 0.3, color="black", linewidth=2.5, zorder=4)
                if len(d) > 1 and d.std(ddof=1) > 0:
                    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
                    axis.vlines(x, d.mean() - half, d.mean() + half, color="black", linewidth=1.2, zorder=4)
            axis.axhline(0, color="black", linewidth=0.6)
            labels = [(q if criterion else "") + (f"\np={p_values[(optimizer, q, criterion)]:.2g}"
                                                   if (optimizer, q, criterion) in p_values else "") for q in quantities]
            axis.set_xticks(range(len(quantities)), labels, fontsize=9)
            axis.set_xlim(-0.6, len(quantities) - 0.4)
            largest = max([100 * data["margin"].max() if len(data) else 1,
                           *(100 * data["difference"].abs()).tolist()]) * 1.15
            axis.set_ylim(-largest, largest)
            axis.set_title(f"{optimizer}+l2: {name}")
            axis.set_ylabel("bfloat16 - float32 (points)" if column == 0 else "")
    handles = [Line2D([], [], marker="o", linestyle="", color=seed_colors[s], label=f"seed {s}") for s in seeds]
    handles += [Line2D([], [], color="black", linewidth=2.5, label="mean, with its 95% interval"),
                Patch(color="grey", alpha=0.3, label="equivalence margin (stated before the runs); p: TOST, each part")]
    _legend(figure, handles, below=True)
    figure.suptitle(f"{title or 'bfloat16 against float32, same seed'} (n = {len(seeds)} seed pairs per optimizer)")
    return figure


def dead_over_lr_x_steps(progress: pd.DataFrame, arm: str = "arm", reach: float | None = None,
                         title: str = "") -> plt.Figure:
    """Dead filters against lr x steps, by activation and by |gamma| < 1e-3 (one panel each), one
    line per run coloured by its ``arm`` (a column of ``progress``), with each run's onset (its
    first dead filter) marked; ``reach``: the lr x steps every arm must reach at its initial rate, a
    vertical line."""
    arms = list(dict.fromkeys(progress[arm]))
    palette = sns.color_palette("Dark2", max(8, len(arms)))
    colors = {name: palette[i % len(palette)] for i, name in enumerate(arms)}
    figure, axes = plt.subplots(1, 2, figsize=(15, 5), layout="constrained", sharey=True)
    for axis, (column, name) in zip(axes, (("dead_fraction", "dead by activation"),
                                           ("dead_gamma_fraction", f"dead by |gamma| < {GAMMA_THRESHOLD:g}"))):
        for (label, run_id), run in progress.groupby([arm, "run_id"], sort=False):
            run = run.sort_values("lr_x_steps").dropna(subset=[column])
            axis.plot(run["lr_x_steps"], 100 * run[column], color=colors[label], lw=1.6)
            dying = run[run[column] > 0]
            if len(dying):
                axis.scatter(dying["lr_x_steps"].iloc[0], 100 * dying[column].iloc[0], color=colors[label], s=40,
                             marker="o", edgecolor="black", zorder=4)
        if reach is not None:
            axis.axvline(reach, color=THRESHOLD_COLOR, lw=1, ls=":")
            axis.annotate(f"reach: lr x steps {plain(reach)}", (reach, 1), xycoords=("data", "axes fraction"),
                          xytext=(4, -14), textcoords="offset points", fontsize=9)
        axis.set_xlabel("lr x steps (the sum of the learning rate over the steps)")
        axis.set_title(name)
        axis.set_xlim(left=0)
        _from_zero(axis)
    axes[0].set_ylabel("dead filters (% of all, snapshot images)")
    handles = [Line2D([], [], color=colors[name], lw=2, label=name) for name in arms]
    handles.append(Line2D([], [], marker="o", color="grey", markeredgecolor="black", lw=0, label="onset: first dead filter"))
    _legend(figure, handles, "arm (one run each)", below=True)
    figure.suptitle(f"{title or 'Dead filters against lr x steps'} ({_n_per(progress, arm, 'arm')})")
    return figure


def _on_scale(reach: float | None, end: float) -> bool:
    """Whether a reach line belongs on a panel whose lr x steps end at ``end``: not where the arm's
    rate is on another scale (SGD's or AdaDelta's lr is 100x Adam's)."""
    return reach is not None and end / 10 <= reach <= 10 * end


def clock_by_arm(progress: pd.DataFrame, runs: pd.DataFrame, reach: float | None = None, title: str = "",
                 columns: int = 4) -> plt.Figure:
    """Dead filters against lr x steps, one panel per arm (``progress`` with an ``arm`` column, from
    ``hypotheses.training_progress``), each on its own lr x steps axis (optimizers' rates differ by
    100x): a line per run coloured by its seed (the same seed has the same colour in every panel),
    solid by activation and dashed by |gamma| < 1e-3, each run's first dead filter marked; where the
    rate first drops (the end of the high-rate phase, from ``runs``' schedule) a dashed grey line,
    and ``reach`` (the lr x steps every arm must give before that) a dotted black one on the panels
    whose lr x steps are on its scale (within 10x of it: not SGD's or AdaDelta's), the axis extended
    to show it. Each panel has its own y scale (arms differ by 100x in how many die). Behind leaky
    ReLU, never positive is not dead: such an arm shows the gamma criterion only, and says so."""
    runs = runs.set_index("run_id")
    arms = list(dict.fromkeys(progress["arm"]))
    seeds = sorted(progress["seed"].unique())
    palette = sns.color_palette("colorblind", max(len(seeds), 3))
    seed_colors = {seed: palette[i % len(palette)] for i, seed in enumerate(seeds)}
    columns = min(columns, len(arms))
    rows = -(-len(arms) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.3 * rows + 1.4), layout="constrained",
                                squeeze=False)
    for axis in axes.flat[len(arms):]:
        axis.set_visible(False)
    for axis, name in zip(axes.flat, arms):
        arm = progress[progress["arm"] == name]
        leaky = (runs.loc[arm["run_id"].unique()].get("activation", pd.Series(dtype=object)) == "leaky_relu").any()
        criteria = (("dead_gamma_fraction", "--"),) if leaky else (("dead_fraction", "-"), ("dead_gamma_fraction", "--"))
        for run_id, run in arm.groupby("run_id", sort=False):
            run = run.sort_values("lr_x_steps")
            color = seed_colors[run["seed"].iloc[0]]
            for column, style in criteria:
                curve = run.dropna(subset=[column])
                axis.plot(curve["lr_x_steps"], 100 * curve[column], color=color, lw=1.3, ls=style)
                dying = curve[curve[column] > 0]
                if len(dying) and style == "-":
                    axis.scatter(dying["lr_x_steps"].iloc[0], 100 * dying[column].iloc[0], color=color, s=30,
                                 edgecolor="black", linewidths=0.6, zorder=4)
        first = runs.loc[arm["run_id"].iloc[0]]
        drop = run_high_rate_lr_x_steps(first)
        end = arm["lr_x_steps"].max()
        if drop < end:
            axis.axvline(drop, color="0.5", lw=1, ls="--")
        on_scale = _on_scale(reach, end)
        if on_scale:
            axis.axvline(reach, color=THRESHOLD_COLOR, lw=1, ls=":")
        axis.set_title(f"{name}, lr {plain(first['lr'])} ({arm['run_id'].nunique()} runs)"
                       + ("\nby |gamma| only: leaky ReLU's activation criterion is n/a" if leaky else ""), fontsize=10)
        axis.set_xlim(0, 1.04 * max(end, reach if on_scale else 0))
        axis.set_xlabel("lr x steps")
        _from_zero(axis)
    for row in axes:
        row[0].set_ylabel("dead filters (%)")
    handles = [Line2D([], [], color=color, lw=2, label=f"seed {seed}") for seed, color in seed_colors.items()]
    handles += [Line2D([], [], color="black", lw=1.3, label="dead by activation (dot: first dead filter)"),
                Line2D([], [], color="black", lw=1.3, ls="--", label=f"dead by |gamma| < {GAMMA_THRESHOLD:g}"),
                Line2D([], [], color="0.5", lw=1, ls="--", label="the learning rate first drops")]
    if reach is not None:
        handles.append(Line2D([], [], color=THRESHOLD_COLOR, lw=1, ls=":", label=f"reach: lr x steps {plain(reach)}"))
    _legend(figure, handles, None, below=True)
    figure.suptitle(f"{title or 'Dead filters against lr x steps, per arm'} ({_n_per(progress, 'arm', 'arm')})")
    return figure


def layers_over_lr_x_steps(progress: pd.DataFrame, history_layers: pd.DataFrame, layers: pd.DataFrame,
                           reach: float | None = None, title: str = "") -> plt.Figure:
    """Where filters die as training goes on: one panel per arm (``progress``'s ``arm``, from
    ``hypotheses.training_progress``), each layer's % of filters dead by activation against lr x
    steps, the mean over the arm's runs as a thick line (a colour per layer) and each run as a thin
    one; ``reach`` a dotted line where the panel's lr x steps are on its scale."""
    sizes = layers.drop_duplicates(["run_id", "layer"]).set_index(["run_id", "layer"])["filters"]
    clock = progress[["run_id", "epoch", "lr_x_steps", "arm"]]
    data = history_layers.merge(clock, on=["run_id", "epoch"])
    data["dead_pct"] = 100 * data["dead"].to_numpy() / sizes.loc[list(zip(data["run_id"], data["layer"]))].to_numpy()
    arms = list(dict.fromkeys(progress["arm"]))
    order = list(dict.fromkeys(layers["layer"]))
    palette = sns.color_palette("tab10", max(10, len(order)))
    colors = {layer: palette[i % len(palette)] for i, layer in enumerate(order)}
    figure, axes = plt.subplots(1, len(arms), figsize=(6.5 * len(arms), 4.6), layout="constrained", squeeze=False)
    for axis, arm in zip(axes[0], arms):
        panel = data[data["arm"] == arm]
        for layer in order:
            rows = panel[panel["layer"] == layer]
            for _, run in rows.groupby("run_id"):
                axis.plot(run["lr_x_steps"], run["dead_pct"], color=colors[layer], lw=0.6, alpha=0.4)
            mean = rows.groupby("epoch").agg(x=("lr_x_steps", "median"), y=("dead_pct", "mean"))
            axis.plot(mean["x"], mean["y"], color=colors[layer], lw=2.2)
        end = panel["lr_x_steps"].max()
        if _on_scale(reach, end):
            axis.axvline(reach, color=THRESHOLD_COLOR, lw=1, ls=":")
        axis.set_title(f"{arm} ({panel['run_id'].nunique()} runs)")
        axis.set_xlabel("lr x steps")
        axis.set_xlim(left=0)
        _from_zero(axis)
    axes[0][0].set_ylabel("% of the layer's filters dead by activation")
    handles = [Line2D([], [], color=colors[layer], lw=2.2, label=layer) for layer in order]
    handles += [Line2D([], [], color="black", lw=2.2, label="mean over runs"),
                Line2D([], [], color="black", lw=0.6, alpha=0.5, label="one run (seed)")]
    if reach is not None:
        handles.append(Line2D([], [], color=THRESHOLD_COLOR, lw=1, ls=":", label=f"reach: lr x steps {plain(reach)}"))
    _legend(figure, handles, "layer")
    figure.suptitle(f"{title or 'Dead filters per layer against lr x steps'} ({_n_per(progress, 'arm', 'arm')})")
    return figure

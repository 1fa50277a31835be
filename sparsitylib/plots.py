"""The figures of the hypothesis notebooks, drawn with seaborn from the store's tidy tables.

Every function takes DataFrames from ``load_runs``/``Experiment.run`` and returns a matplotlib
figure; means are over seeds and error bars show one standard deviation.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .optim import DECAY_MODES, OPTIMIZERS

sns.set_theme(style="whitegrid", context="notebook")
PERCENT_COLUMNS = {"dead_by_activation": "dead by activation (%)", "dead_by_gamma": "dead by gamma (%)",
                   "test_error": "test error (%)"}


def setting_label(row) -> str:
    """'adam+l2', 'sgd+none', ... for a run row."""
    return f"{row['optimizer']}+{row['decay_mode']}"


def with_labels(runs: pd.DataFrame) -> pd.DataFrame:
    """Completed runs with a ``setting`` label and the fractions as percentages."""
    runs = runs[runs["status"] == "completed"].copy()
    runs["setting"] = runs.apply(setting_label, axis=1)
    for column, label in PERCENT_COLUMNS.items():
        runs[label] = 100 * runs[column]
    return runs


def join_runs(table: pd.DataFrame, runs: pd.DataFrame, columns=("setting",)) -> pd.DataFrame:
    """Attach run columns (default: the setting label) to a long table keyed by run_id."""
    return table.merge(runs[["run_id", *columns]], on="run_id")


def optimizer_heatmaps(runs: pd.DataFrame) -> plt.Figure:
    """Optimizer x regularizer: mean % dead (both criteria) and test error, annotated."""
    runs = with_labels(runs)
    order = [o for o in OPTIMIZERS if o in set(runs["optimizer"])]
    modes = [m for m in DECAY_MODES if m in set(runs["decay_mode"])]
    figure, axes = plt.subplots(1, 3, figsize=(15, 0.55 * len(order) + 2))
    for axis, (label, cmap) in zip(axes, ((PERCENT_COLUMNS["dead_by_activation"], "Reds"),
                                          (PERCENT_COLUMNS["dead_by_gamma"], "Reds"),
                                          (PERCENT_COLUMNS["test_error"], "Blues"))):
        table = runs.pivot_table(index="optimizer", columns="decay_mode", values=label, aggfunc="mean")
        sns.heatmap(table.reindex(index=order, columns=modes), annot=True, fmt=".1f", cmap=cmap, ax=axis,
                    cbar=False, linewidths=0.5)
        axis.set_title(label)
        axis.set_xlabel("regularizer")
    figure.suptitle(f"Optimizer x regularizer (mean over {runs['seed'].nunique()} seeds)")
    figure.tight_layout()
    return figure


def per_layer(layers: pd.DataFrame, filters: pd.DataFrame, runs: pd.DataFrame) -> plt.Figure:
    """Per layer: % dead filters, and the selectivity distribution of the live filters."""
    runs = with_labels(runs)
    layers = join_runs(layers, runs)
    live = join_runs(filters[~filters["dead_by_activation"]], runs)
    figure, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    sns.barplot(layers, x="layer", y="dead_by_activation_pct", hue="setting", errorbar="sd", ax=axes[0])
    axes[0].set_ylabel("dead by activation (%)")
    axes[0].set_title("Where filters die")
    sns.boxplot(live, x="layer", y="selectivity", hue="setting", ax=axes[1], fliersize=1.5)
    axes[1].set_title("Feature selectivity of live filters (fraction of images it is off for)")
    figure.tight_layout()
    return figure


def gamma_beta(filters: pd.DataFrame, runs: pd.DataFrame) -> plt.Figure:
    """BN gamma against beta for every filter, one panel per setting, dead filters in red."""
    runs = with_labels(runs)
    data = join_runs(filters, runs)
    data["filter state"] = data["dead_by_activation"].map({True: "dead", False: "alive"})
    grid = sns.relplot(data, x="gamma", y="beta", hue="filter state", col="setting", s=12, alpha=0.6,
                       palette={"alive": "tab:blue", "dead": "tab:red"}, height=3.8, facet_kws={"sharex": False})
    for axis in grid.axes.flat:
        axis.axhline(0, color="grey", lw=0.6)
        axis.axvline(0, color="grey", lw=0.6)
    grid.figure.suptitle("BatchNorm gamma and beta per filter (final)", y=1.03)
    return grid.figure


def over_epochs(history: pd.DataFrame, history_layers: pd.DataFrame, runs: pd.DataFrame, total_filters: int) -> plt.Figure:
    """Dead filters (% of all, on the snapshot images) and median |gamma| over training."""
    runs = with_labels(runs)
    history = join_runs(history, runs)
    history["dead (%)"] = 100 * history["dead_total"] / total_filters
    gammas = join_runs(history_layers, runs).groupby(["run_id", "setting", "epoch"], as_index=False)["gamma_median"].mean()
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    sns.lineplot(history, x="epoch", y="dead (%)", hue="setting", marker="o", errorbar="sd", ax=axes[0])
    axes[0].set_title("Dead filters over training")
    sns.lineplot(gammas, x="epoch", y="gamma_median", hue="setting", marker="o", errorbar="sd", ax=axes[1])
    axes[1].set_ylabel("median |gamma| (mean over layers)")
    axes[1].set_title("BN scale over training")
    sns.lineplot(history, x="epoch", y="test_error", hue="setting", marker="o", errorbar="sd", ax=axes[2])
    axes[2].set_title("Test error over training")
    figure.tight_layout()
    return figure


def sweep(runs: pd.DataFrame, x: str, hue: str | None = None, log_x: bool = False, title: str = "") -> plt.Figure:
    """% dead (both criteria) and test error against one setting, mean +- sd over seeds."""
    runs = with_labels(runs)
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for axis, label in zip(axes, PERCENT_COLUMNS.values()):
        sns.lineplot(runs, x=x, y=label, hue=hue, marker="o", errorbar="sd", ax=axis)
        if log_x:
            axis.set_xscale("log")
        axis.set_title(label)
    figure.suptitle(title or f"Effect of {x}")
    figure.tight_layout()
    return figure


def regularizer_sweep(runs: pd.DataFrame, title: str = "") -> plt.Figure:
    """% dead (activation) and test error against lambda, one line per optimizer x regularizer;
    the lowest-test-error lambda of each line is ringed."""
    runs = with_labels(runs)
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for axis, label in zip(axes, (PERCENT_COLUMNS["dead_by_activation"], PERCENT_COLUMNS["test_error"])):
        sns.lineplot(runs, x="decay", y=label, hue="setting", style="setting", marker="o", errorbar="sd", ax=axis)
        axis.set_xscale("log")
        axis.set_xlabel("lambda")
        axis.set_title(label)
    means = runs.groupby(["setting", "decay"], as_index=False)[[PERCENT_COLUMNS["dead_by_activation"],
                                                                 PERCENT_COLUMNS["test_error"]]].mean()
    best = means.loc[means.groupby("setting")[PERCENT_COLUMNS["test_error"]].idxmin()]
    for axis, label in zip(axes, (PERCENT_COLUMNS["dead_by_activation"], PERCENT_COLUMNS["test_error"])):
        axis.scatter(best["decay"], best[label], s=180, facecolors="none", edgecolors="black", zorder=5,
                     label="lowest test error")
    figure.suptitle((title or "Regularization strength")
                    + "\nL2: lambda x theta added to the gradient; WD: theta x (1 - lambda) after each step")
    figure.tight_layout()
    return figure


def dead_over_training(progress: pd.DataFrame, title: str = "") -> plt.Figure:
    """Dead filters (% on the snapshot images) against update steps and against cumulative
    lr x steps, one line per optimizer x regularizer x learning rate (mean +- sd over seeds)."""
    data = progress.copy()
    data["run"] = data.apply(lambda r: f"{r['optimizer']}+{r['decay_mode']} lr={r['lr']:g}", axis=1)
    data["dead (%)"] = 100 * data["dead_fraction"]
    figure, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    sns.lineplot(data, x="steps", y="dead (%)", hue="run", marker=".", errorbar="sd", ax=axes[0])
    axes[0].set_title("Dead filters against update steps")
    sns.lineplot(data, x="lr_x_steps", y="dead (%)", hue="run", marker=".", errorbar="sd", ax=axes[1], legend=False)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("cumulative learning rate (sum of lr over steps)")
    axes[1].set_title("Dead filters against lr x steps")
    figure.suptitle(title or "Training length and learning rate")
    figure.tight_layout()
    return figure


def categories(runs: pd.DataFrame, x: str, hue: str | None = None, title: str = "", order=None) -> plt.Figure:
    """Bars of % dead (both criteria) and test error for categorical variants."""
    runs = with_labels(runs)
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for axis, label in zip(axes, PERCENT_COLUMNS.values()):
        sns.barplot(runs, x=x, y=label, hue=hue, errorbar="sd", ax=axis, order=order)
        axis.set_title(label)
        axis.tick_params(axis="x", rotation=20)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def selectivity_by_fate(history_filters: pd.DataFrame) -> plt.Figure:
    """Mean selectivity over training of the filters that end dead versus those that survive
    (a filter already dead at an epoch has no selectivity there and is left out)."""
    data = history_filters.dropna(subset=["selectivity"]).copy()
    data["fate"] = data["dead_by_activation"].map({True: "dies by the end", False: "survives"})
    per_run = data.groupby(["run_id", "epoch", "fate"], as_index=False)["selectivity"].mean()
    figure, axis = plt.subplots(figsize=(7, 4))
    sns.lineplot(per_run, x="epoch", y="selectivity", hue="fate", marker="o", errorbar="sd", ax=axis,
                 hue_order=["survives", "dies by the end"])
    axis.set_ylabel("mean selectivity of live filters")
    axis.set_title("Were the filters that die selective before they died?")
    figure.tight_layout()
    return figure


def summary(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean +- sd over seeds of % dead (both criteria) and test error, one row per group; failed
    runs are counted in their own column."""
    def mean_sd(values):
        return f"{values.mean():.1f} +- {values.std(ddof=1) if len(values) > 1 else 0.0:.1f}"

    labelled = with_labels(runs)
    table = labelled.groupby(by)[list(PERCENT_COLUMNS.values())].agg(mean_sd)
    table["seeds"] = labelled.groupby(by).size()
    failed = runs[runs["status"] != "completed"]
    table["failed runs"] = failed.groupby(by).size().reindex(table.index).fillna(0).astype(int) if len(failed) else 0
    return table


def pruning_tradeoff(comparison: pd.DataFrame) -> plt.Figure:
    """Test error against MACs for every method, right after pruning (crosses) and fine-tuned (dots)."""
    cases = list(dict.fromkeys(zip(comparison["model"], comparison["dataset"])))
    figure, axes = plt.subplots(1, len(cases), figsize=(7 * len(cases), 4.5), squeeze=False)
    for axis, (model, dataset) in zip(axes[0], cases):
        data = comparison[(comparison["model"] == model) & (comparison["dataset"] == dataset)].copy()
        data["MACs (millions)"] = data["macs"] / 1e6
        data["test error (%)"] = 100 * data["test_error_finetuned"]
        data["before fine-tuning (%)"] = 100 * data["test_error_pruned"]
        sns.scatterplot(data, x="MACs (millions)", y="test error (%)", hue="method", s=90, ax=axis)
        sns.scatterplot(data, x="MACs (millions)", y="before fine-tuning (%)", hue="method", s=70, ax=axis,
                        marker="X", legend=False, alpha=0.7)
        axis.set_title(f"{model} on {dataset}: dots = fine-tuned, crosses = right after pruning")
    figure.tight_layout()
    return figure


def dead_per_stage(stages: pd.DataFrame, title: str = "") -> plt.Figure:
    """% dead per ResNet stage by each criterion, one bar per setting (mean +- sd over seeds)."""
    figure, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
    order = sorted(stages["stage"].unique(), key=lambda s: (s != "stem", s))
    for axis, (column, label) in zip(axes, (("dead_by_activation_pct", "dead by activation (%)"),
                                            ("dead_by_gamma_pct", "dead by |gamma| < 1e-3 (%)"))):
        sns.barplot(stages, x="stage", y=column, hue="setting", order=order, errorbar="sd", ax=axis)
        axis.set_ylabel(label)
        axis.set_title(label)
    figure.suptitle(title)
    figure.tight_layout()
    return figure

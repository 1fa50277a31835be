"""The report's figures, built from small hand-made tables: what each must show and must not."""

import warnings

import matplotlib
import matplotlib.collections

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from sparsitylib import plots  # noqa: E402

LAYERS = ["C1", "C2", "C3"]
FILTERS_PER_LAYER = 4


def run_rows(settings, seeds=(0, 1, 2), **extra):
    """One completed run per (setting, seed); ``settings``: (optimizer, decay_mode, dead fraction)."""
    rows = []
    for optimizer, mode, dead in settings:
        for seed in seeds:
            rows.append({"run_id": f"{optimizer}-{mode}-{seed}-{len(rows)}", "status": "completed",
                         "optimizer": optimizer, "decay_mode": mode, "decay": 5e-4,
                         "lr": 0.1 if optimizer == "sgd" else 0.01, "seed": seed, "norm": "batchnorm",
                         "dead_by_activation": dead + 0.01 * seed, "dead_by_gamma": dead / 2,
                         "test_error": 0.1 + 0.01 * seed, "filters": FILTERS_PER_LAYER * len(LAYERS), **extra})
    return pd.DataFrame(rows)


def grid_runs():
    """sgd and adam x none/l2/wd; adam+l2 has five seeds, the others three."""
    runs = run_rows([("sgd", "none", 0.0), ("sgd", "l2", 0.0), ("sgd", "wd", 0.0), ("adam", "none", 0.0),
                     ("adam", "wd", 0.001)])
    return pd.concat([runs, run_rows([("adam", "l2", 0.25)], seeds=(0, 1, 2, 3, 4))], ignore_index=True)


def filters_for(runs):
    rows = []
    for run in runs.itertuples():
        for layer in LAYERS:
            for index in range(FILTERS_PER_LAYER):
                dead = run.optimizer == "adam" and run.decay_mode == "l2" and index == 0
                rows.append({"run_id": run.run_id, "layer": layer, "filter": index, "measured": True,
                             "gamma": 1e-5 if dead else 0.5 + 0.1 * index, "beta": -0.2 if dead else 0.1,
                             "dead_by_activation": dead, "dead_by_gamma": dead, "selectivity": 0.1 * index})
    return pd.DataFrame(rows)


def layers_for(filters):
    grouped = filters.groupby(["run_id", "layer"], as_index=False)
    layers = grouped.agg(filters=("filter", "size"), measured=("measured", "all"),
                         dead_by_activation=("dead_by_activation", "sum"), dead_by_gamma=("dead_by_gamma", "sum"))
    layers["dead_by_activation_pct"] = 100 * layers["dead_by_activation"] / layers["filters"]
    layers["dead_by_gamma_pct"] = 100 * layers["dead_by_gamma"] / layers["filters"]
    return layers


def history_for(runs, epochs=(1, 2, 3)):
    history, history_layers = [], []
    for run in runs.itertuples():
        for epoch in epochs:
            history.append({"run_id": run.run_id, "epoch": epoch, "test_error": 0.3 / epoch,
                            "dead_total": int(12 * run.dead_by_activation * epoch / len(epochs))})
            for layer in LAYERS:
                history_layers.append({"run_id": run.run_id, "epoch": epoch, "layer": layer,
                                       "gamma_median": 1.0 / epoch})
    return pd.DataFrame(history), pd.DataFrame(history_layers)


def variant_runs():
    runs = pd.concat([run_rows([("adam", "l2", 0.25)]).assign(variant="baseline"),
                      run_rows([("adam", "l2", 0.9)]).assign(variant="no BatchNorm", norm="none")], ignore_index=True)
    runs.loc[runs["norm"] == "none", "dead_by_gamma"] = 0.0  # as the store records it: no gamma compares False
    return runs


def stage_rows():
    rows = []
    for setting, dead in (("adam+l2", 40.0), ("sgd+l2", 0.0)):
        for seed in range(3):
            for stage, measured in (("stem", 8), ("stage 1", 0), ("stage 2", 24)):
                rows.append({"run_id": f"{setting}-{seed}", "stage": stage, "filters": 32, "measured": measured,
                             "dead_by_activation_pct": dead + seed if measured else np.nan,
                             "dead_by_gamma_pct": dead / 4, "setting": setting, "seed": seed})
    return pd.DataFrame(rows)


def comparison_rows():
    rows = []
    for seed in range(3):
        for method, macs, error, pruned in (("unpruned (adaptive + L2)", 9e6, 0.2, 0.2),
                                            ("implicit: dead filters removed", 5.5e6, 0.11, 0.2),
                                            ("L1-norm filters (Li et al.)", 5.5e6, 0.10, 0.5)):
            rows.append({"model": "basicnet", "dataset": "fashion-mnist", "seed": seed, "method": method,
                         "macs": macs, "test_error_finetuned": error, "test_error_pruned": pruned,
                         "latency_b1_ms": 0.3, "latency_b128_ms": 20 * macs / 9e6, "speedup_b128": 9e6 / macs})
    return pd.DataFrame(rows)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def line_colors(axis):
    """{label: colour} of the labelled (mean) lines of an axis."""
    return {line.get_label(): to_hex(line.get_color()) for line in axis.get_lines()
            if not line.get_label().startswith("_")}


def figure_texts(figure):
    return [text.get_text() for axis in figure.axes for text in axis.texts]


# --- palette ---------------------------------------------------------------------------------


def test_every_setting_of_the_grid_has_its_own_fixed_colour():
    settings = [f"{o}+{m}" for o in plots.OPTIMIZERS for m in ("none", "l2", "wd")]
    colours = [plots.setting_color(s) for s in settings]
    assert len(set(colours)) == len(settings)
    assert all(plots.SETTING_COLORS[s] == c for s, c in zip(settings, colours))
    assert plots.setting_color("resnet+xyz") == plots.setting_color("resnet+xyz") in plots.FALLBACK_COLORS


def test_a_setting_has_the_same_colour_in_every_panel_and_every_figure():
    runs = run_rows([("adam", "l2", 0.25), ("adam", "wd", 0.0), ("sgd", "l2", 0.0)])
    history, history_layers = history_for(runs)
    # the order of the runs differs between tables: it used to swap the colours of two panels
    history_layers = history_layers.iloc[::-1]
    epochs = plots.over_epochs(history, history_layers, runs, 12)
    expected = {s: plots.setting_color(s) for s in ("adam+l2", "adam+wd", "sgd+l2")}
    for axis in epochs.axes[:3]:
        assert line_colors(axis) == expected
    swept = runs.assign(decay=[1e-4, 5e-4, 1e-3] * 3)
    sweep = plots.regularizer_sweep(swept)
    for axis in sweep.axes:
        assert line_colors(axis) == expected
    bars = plots.categories(runs, "optimizer", hue="setting")
    faces = {to_hex(p.get_facecolor()[:3]) for p in bars.axes[0].patches}
    assert faces == {plots.setting_color(s) for s in ("adam+l2", "adam+wd", "sgd+l2")}
    legend_colours = {t.get_text(): to_hex(h.get_color()) for t, h in
                      zip(epochs.legends[0].get_texts(), epochs.legends[0].legend_handles) if "+" in t.get_text()}
    assert legend_colours == expected


def test_a_single_setting_sweep_is_drawn_in_that_settings_colour():
    runs = run_rows([("adam", "l2", 0.25)], batch_size=32)
    runs = pd.concat([runs, runs.assign(batch_size=64, run_id=runs["run_id"] + "b")], ignore_index=True)
    figure = plots.sweep(runs, "batch_size", log_x=True)
    assert {to_hex(line.get_color()) for line in figure.axes[0].get_lines()} == {plots.setting_color("adam+l2")}


# --- heatmaps and Table 1 ------------------------------------------------------------------------


def test_heatmaps_share_a_colour_scale_for_dead_filters_and_show_sd_n_lr_and_lambda():
    figure = plots.optimizer_heatmaps(grid_runs())
    panels, colorbars = figure.axes[:3], figure.axes[3:]
    assert len(colorbars) == 2
    dead_images = [axis.images[0] for axis in panels[:2]]
    assert dead_images[0].get_clim() == dead_images[1].get_clim() == (0.0, pytest.approx(27.0))
    assert panels[2].images[0].get_clim() != dead_images[0].get_clim()
    texts = [t.get_text() for t in panels[0].texts]
    assert "27.0\n±1.6\nn=5" in texts and "1.0\n±1.0\nn=3" in texts
    assert [t.get_text() for t in panels[0].get_yticklabels()] == ["sgd\nlr=0.1", "adam\nlr=0.01"]
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["none", "L2\nlambda=0.0005", "WD\nlambda=0.0005"]
    assert figure._suptitle.get_text() == ("Optimizer x regularizer: mean ± sd over seeds, n = 3-5 runs per cell "
                                           "(each cell gives its n)")


def test_heatmaps_of_one_run_per_cell_promise_no_spread():
    figure = plots.optimizer_heatmaps(grid_runs().query("seed == 0"))
    assert figure._suptitle.get_text() == "Optimizer x regularizer: one run per cell (n = 1: no spread to show)"
    assert not any("±" in t.get_text() for t in figure.axes[0].texts)


def test_table1_has_the_papers_layout_with_mean_sd_and_n():
    table = plots.table1(grid_runs())
    assert list(table.index) == ["sgd (lr 0.1)", "adam (lr 0.01)"]
    assert list(table.columns.get_level_values(0).unique()) == ["none", "L2, lambda=0.0005", "WD, lambda=0.0005"]
    assert list(table.columns.get_level_values(1).unique()) == list(plots.PERCENT_COLUMNS.values())
    assert table.loc["adam (lr 0.01)", ("L2, lambda=0.0005", "dead by activation (%)")] == "27.0 +- 1.6 (5)"
    assert table.loc["sgd (lr 0.1)", ("none", "test error (%)")] == "11.0 +- 1.0 (3)"


def test_markdown_table_of_a_2x2_frame():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x|y", None]}, index=pd.Index(["r1", "r2"], name="row"))
    assert plots.markdown_table(frame) == ("| row | a | b |\n"
                                           "| --- | --- | --- |\n"
                                           "| r1 | 1 | x\\|y |\n"
                                           "| r2 | 2 |  |\n")
    assert plots.markdown_table(frame, index=False).splitlines()[0] == "| a | b |"


def test_markdown_table_joins_the_levels_of_table1s_header():
    markdown = plots.markdown_table(plots.table1(grid_runs()))
    header = markdown.splitlines()[0]
    assert header.startswith("| optimizer | none: dead by activation (%) |")
    assert len(markdown.splitlines()) == 2 + 2 and header.count("|") == 1 + 1 + 9


# --- missing values ----------------------------------------------------------------------------


def test_no_batchnorm_dead_by_gamma_is_not_a_zero_bar():
    figure = plots.categories(variant_runs(), "variant")
    gamma = figure.axes[1]
    assert len(gamma.patches) == 1  # the baseline's bar only
    assert any("n/a\n(no BatchNorm)" == t.get_text() for t in gamma.texts)
    assert len(figure.axes[0].patches) == 2
    assert plots.summary(variant_runs(), ["variant"]).loc["no BatchNorm", "dead by gamma (%)"] == "n/a"


def test_leaky_relu_never_positive_is_not_drawn_as_dead():
    runs = pd.concat([run_rows([("adam", "l2", 0.25)]).assign(variant="baseline", activation="relu"),
                      run_rows([("adam", "l2", 0.24)]).assign(variant="leaky ReLU", activation="leaky_relu")],
                     ignore_index=True)
    figure = plots.categories(runs, "variant")
    activation, gamma = figure.axes[0], figure.axes[1]
    assert len(activation.patches) == 1 and len(gamma.patches) == 2  # leaky ReLU keeps its gamma bar
    assert any("never\npositive is not dead" in t.get_text() for t in activation.texts)
    assert plots.summary(runs, ["variant"]).loc["leaky ReLU", "dead by activation (%)"] == "n/a"
    plt.close(figure)


def test_seeds_are_drawn_on_every_bar():
    figure = plots.categories(variant_runs(), "variant")
    dots = sum(len(c.get_offsets()) for c in figure.axes[0].collections)
    assert dots == len(variant_runs())


def test_dead_per_stage_names_each_denominator_and_marks_unmeasured_stages():
    figure = plots.dead_per_stage(stage_rows(), title="resnet")
    activation, gamma = figure.axes[:2]
    assert "% of the 32 filters with an activation criterion" in activation.get_ylabel()
    assert "% of all 96 filters" in gamma.get_ylabel()
    assert [t.get_text() for t in activation.get_xticklabels()][1] == "stage 1\n0 measured"
    assert sum("no activation" in t.get_text() for t in activation.texts) == 2  # stage 1, one per setting
    assert sum(len(c.get_offsets()) for c in gamma.collections) == len(stage_rows())


# --- axes ----------------------------------------------------------------------------------------


def test_a_log_axis_has_ticks_at_the_tested_values_only():
    runs = pd.concat([run_rows([("adam", "l2", 0.25)], width=w) for w in (0.125, 0.25, 0.5)], ignore_index=True)
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    figure = plots.sweep(runs, "width", log_x=True)
    axis = figure.axes[0]
    figure.canvas.draw()
    assert axis.get_xscale() == "log"
    assert list(axis.get_xticks()) == [0.125, 0.25, 0.5]
    assert [t.get_text() for t in axis.get_xticklabels()] == ["0.125", "0.25", "0.5"]
    assert len(axis.xaxis.get_minor_ticks()) == 0 or not axis.xaxis.get_minorticklocs().size


def test_regularizer_sweep_ticks_are_the_lambdas():
    runs = pd.concat([run_rows([("adam", "l2", 0.25)]).assign(decay=d) for d in (1e-4, 5e-4, 2e-3)],
                     ignore_index=True)
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    figure = plots.regularizer_sweep(runs)
    figure.canvas.draw()
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["0.0001", "0.0005", "0.002"]


def test_sweep_draws_every_run_and_no_band():
    runs = pd.concat([run_rows([("adam", "l2", 0.0)], train_size=n) for n in (2500, 5000)], ignore_index=True)
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    runs["test_error"] = [0.0, 0.0, 0.3, 0.01, 0.02, 0.03]  # sd bands of these would reach below 0 %
    figure = plots.sweep(runs, "train_size", log_x=True)
    error = figure.axes[2]
    assert sum(len(c.get_offsets()) for c in error.collections) == len(runs)
    assert not any(isinstance(c, matplotlib.collections.PolyCollection) for c in error.collections)


def test_gamma_beta_uses_a_log_like_axis_with_the_threshold_and_two_state_colours():
    runs = run_rows([("adam", "l2", 0.25), ("sgd", "l2", 0.0)])
    figure = plots.gamma_beta(filters_for(runs), runs)
    axis = figure.axes[0]
    assert axis.get_xscale() == "symlog"
    assert any(np.allclose(line.get_xdata(), 1e-3) for line in axis.get_lines())
    assert "seeds pooled" in axis.get_title() and "3 runs" in axis.get_title()
    colours = {to_hex(c.get_facecolor()[0][:3]) for c in axis.collections}
    assert colours == {plots.ALIVE_COLOR, plots.DEAD_COLOR}
    assert not colours & set(plots.SETTING_COLORS.values())


# --- the other figures ------------------------------------------------------------------------


def test_per_layer_and_training_figures_build():
    runs = run_rows([("adam", "l2", 0.25), ("sgd", "l2", 0.0)])
    filters = filters_for(runs)
    figure = plots.per_layer(layers_for(filters), filters, runs)
    assert sum(len(c.get_offsets()) for c in figure.axes[0].collections) == len(runs) * len(LAYERS)
    progress = pd.DataFrame([{"run_id": f"r{s}{lr}", "optimizer": "adam", "decay_mode": "l2", "lr": lr, "seed": s,
                              "steps": 100 * e, "lr_x_steps": lr * 100 * e, "dead_fraction": 0.1 * e}
                             for lr in (1e-3, 1e-2) for s in range(2) for e in (1, 2)])
    figure = plots.dead_over_training(progress)
    assert {to_hex(line.get_color()) for line in figure.axes[0].get_lines()} == {plots.setting_color("adam+l2")}


def test_pruning_tradeoff_has_a_latency_panel_and_separates_the_seeds():
    figure = plots.pruning_tradeoff(comparison_rows())
    error, *latency = figure.axes
    assert len(latency) == 2 and "batch 128" in latency[1].get_xlabel()
    filled = [c for c in error.collections if len(c.get_offsets()) == 3]
    xs = [sorted(c.get_offsets()[:, 0]) for c in filled]
    assert all(len(set(x)) == 3 for x in xs)  # three seeds at one MACs value drawn apart
    assert any(t.startswith("  x1.64") for t in figure_texts(figure))
    assert "speed-up over unpruned (adaptive + L2)" in latency[1].get_xlabel()
    assert "n = 3 runs per method" in figure._suptitle.get_text() and "bars: mean" in figure._suptitle.get_text()


def test_the_error_axis_fits_the_fine_tuned_errors_and_says_what_lies_above_it():
    figure = plots.pruning_tradeoff(comparison_rows())  # fine-tuned errors up to 20%, one method 50% right after pruning
    error = figure.axes[0]
    assert error.get_ylim() == (0, pytest.approx(100 * 0.2 * plots.ERROR_HEADROOM))
    assert "right after pruning, 3 runs above 32% (up to 50%)" in error.get_title()
    hollow_tops = [c.get_offsets()[:, 1].max() for c in error.collections
                   if len(c.get_facecolors()) == 0 and len(c.get_offsets())]
    assert max(hollow_tops) == pytest.approx(error.get_ylim()[1])  # drawn on the edge, not off the figure


def test_categories_legend_is_outside_the_panels():
    runs = run_rows([("adam", "l2", 0.25), ("sgd", "l2", 0.0)], model="basicnet")
    figure = plots.categories(runs, "model", hue="setting")
    assert all(axis.get_legend() is None for axis in figure.axes) and len(figure.legends) == 1


def test_sparsity_against_error_draws_the_budget_and_rings_each_regularizers_budget_lambda():
    curves = pd.DataFrame([{"regularizer": mode, "decay": decay, "runs": 3, "test_error": 0.13 + 10 * decay,
                            "test_error_sd": 0.01, "dead": (40 if mode == "l2" else 10) * decay, "dead_sd": 0.02,
                            "budget_lambda": decay == 1e-3}
                           for mode in ("l2", "wd") for decay in (0.0, 1e-4, 1e-3, 1e-2)])
    runs = pd.DataFrame([{"optimizer": "adam", "decay_mode": mode, "decay": 0.0 if mode == "none" else 1e-3,
                          "test_error": 0.14, "dead_by_activation": 0.02} for mode in ("l2", "wd", "none")])
    figure = plots.sparsity_vs_error(curves, 0.02, runs)
    full, zoom = figure.axes[:2]
    for axis in (full, zoom):
        budget = [line for line in axis.get_lines() if list(line.get_xdata()) == [15.0, 15.0]]
        assert len(budget) == 1  # 100 x (0.13 + 0.02), a vertical line
        assert axis.get_ylim()[0] <= 0 < axis.get_ylim()[1]
        rings = [c for c in axis.collections if c.get_sizes().tolist() == [220]]
        assert len(rings) == 2 and all(len(c.get_offsets()) == 1 for c in rings)
        assert plots.setting_color("adam+l2") in {to_hex(line.get_color()) for line in axis.get_lines()}
    assert zoom.get_xlim()[1] == pytest.approx(15.0 + plots.ZOOM_POINTS)
    # each lambda is written once: in the zoom when it falls inside it (error <= 21%), else in the full view
    assert sorted(t.get_text() for t in zoom.texts) == ["0", "0.0001", "0.0001", "0.001", "0.001"]  # lambda 0 once
    assert sorted(t.get_text() for t in full.texts) == ["0.01", "0.01"]
    plt.close(figure)


LEAD_CURVE_COLUMNS = ["run_id", "epochs_before_death", "difference", "filters"]  # hypotheses.lead_curve
AUC_COLUMNS = ["run_id", "epoch", "auc", "pairs", "dying", "dying_median_gamma"]  # hypotheses.selectivity_auc


def lead_curve_rows(runs=3, leads=(1, 2, 3)):
    """Per run and lead: dying minus same-layer survivors' selectivity, larger closer to death, +0.01 per run."""
    return pd.DataFrame([{"run_id": f"r{run}", "epochs_before_death": lead, "difference": 0.1 * (4 - lead) + 0.01 * run,
                          "filters": 2} for run in range(runs) for lead in leads], columns=LEAD_CURVE_COLUMNS)


def auc_rows(runs=3, epochs=(1, 2, 3, 4)):
    """Per run and epoch: the AUC rising from 0.6 by 0.1 an epoch (+0.01 per run), and a last
    epoch where no dying filter fires any more (no pairs, AUC NaN: not drawn)."""
    rows = [{"run_id": f"r{run}", "epoch": epoch, "auc": 0.5 + 0.1 * epoch + 0.01 * run, "pairs": 4, "dying": 2,
             "dying_median_gamma": 1.0 / epoch} for run in range(runs) for epoch in epochs]
    rows += [{"run_id": f"r{run}", "epoch": max(epochs) + 1, "auc": np.nan, "pairs": 0, "dying": 0,
              "dying_median_gamma": np.nan} for run in range(runs)]
    return pd.DataFrame(rows, columns=AUC_COLUMNS)


def test_selectivity_before_death_draws_the_lead_curve_and_the_auc_per_epoch_of_every_run():
    figure = plots.selectivity_before_death(lead_curve_rows(), auc_rows(), lead_epochs=2, early_epoch=2)
    left, right = figure.axes
    # left: the lead curve, one thin line per run, their mean thick, the described lead marked
    lines = left.get_lines()
    runs = [line for line in lines if line.get_linewidth() == 1]
    assert len(runs) == 3 and all(list(line.get_xdata()) == [-1, -2, -3] for line in runs)
    (mean,) = [line for line in lines if line.get_linewidth() == 3]
    assert list(mean.get_xdata()) == [-1, -2, -3] and list(mean.get_ydata()) == pytest.approx([0.31, 0.21, 0.11])
    assert any(list(line.get_xdata()) == [-2, -2] for line in lines)  # the described lead
    assert list(left.get_xticks()) == [-3, -2, -1]  # few epochs: every one labelled
    assert "described lead: 2 epoch(s)" in [t.get_text() for t in left.get_legend().get_texts()]
    # right: each run's AUC at every epoch with pairs, chance at 0.5, the tested epoch marked
    lines = right.get_lines()
    runs = [line for line in lines if line.get_linewidth() == 1]
    assert len(runs) == 3 and all(list(line.get_xdata()) == [1, 2, 3, 4] for line in runs)  # epoch 5: no pairs
    (mean,) = [line for line in lines if line.get_linewidth() == 3]
    assert list(mean.get_ydata()) == pytest.approx([0.61, 0.71, 0.81, 0.91])
    assert any(list(line.get_xdata()) == [2, 2] for line in lines)  # the tested epoch
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in lines)
    assert [t.get_text() for t in right.texts] == [" chance\n +-0.05: no\n prediction"]
    band = right.patches[0]  # the minimum effect around chance, as drawn
    assert (band.get_y(), band.get_y() + band.get_height()) == (pytest.approx(0.45), pytest.approx(0.55))
    assert right.get_ylim() == (0, 1)
    assert "tested: epoch 2" in [t.get_text() for t in right.get_legend().get_texts()]
    plt.close(figure)


def test_selectivity_before_death_thins_long_lead_axes_and_says_when_there_is_nothing_to_draw():
    long = lead_curve_rows(runs=1, leads=range(1, 35))
    ticks = list(plots.selectivity_before_death(long, auc_rows(), lead_epochs=2).axes[0].get_xticks())
    assert len(ticks) <= 13 and -2 in ticks and set(ticks) <= set(range(-34, 0))  # 34 epochs: labels thinned
    plt.close("all")
    nothing = plots.selectivity_before_death(pd.DataFrame(columns=LEAD_CURVE_COLUMNS), pd.DataFrame(columns=AUC_COLUMNS))
    left, right = nothing.axes
    assert "no filter died after the first snapshot" in [t.get_text() for t in left.texts]
    assert "no run with dying and surviving filters" in [t.get_text() for t in right.texts]
    # runs whose AUC is undefined at every epoch (no pairs) have nothing to draw either
    undefined = auc_rows().assign(auc=np.nan, pairs=0)
    right = plots.selectivity_before_death(lead_curve_rows(), undefined).axes[1]
    assert "no run with dying and surviving filters" in [t.get_text() for t in right.texts]
    plt.close("all")


def test_equal_lr_x_steps_shows_every_seed_at_the_end_from_zero():
    rows = [{"run_id": f"{lr}-{seed}", "lr": lr, "seed": seed, "epoch": epoch, "steps": int(epoch * 0.08 / lr),
             "lr_x_steps": 0.08 * epoch, "dead_fraction": 0.03 * epoch + 0.01 * seed}
            for lr in (1e-2, 5e-3) for seed in range(3) for epoch in (1, 2, 3)]
    figure = plots.equal_lr_x_steps(pd.DataFrame(rows))
    final = figure.axes[2]
    dots = [c for c in final.collections if isinstance(c, matplotlib.collections.PathCollection)]
    assert sum(len(c.get_offsets()) for c in dots) == 6  # one dot per run
    assert final.get_ylim()[0] == 0
    plt.close(figure)


def progress_rows(seeds=(0, 1, 2), epochs=4):
    rows = []
    for optimizer, mode, lr in (("adam", "l2", 1e-3), ("sgd", "l2", 0.1)):
        for seed in seeds:
            for epoch in range(1, epochs + 1):
                dying = optimizer == "adam"
                rows.append({"run_id": f"{optimizer}-{seed}", "optimizer": optimizer, "decay_mode": mode, "lr": lr,
                             "seed": seed, "epoch": epoch, "steps": 10 * epoch,
                             "dead_fraction": 0.05 * epoch * dying, "dead_gamma_fraction": 0.02 * epoch * dying,
                             "test_error": 0.2 - 0.01 * epoch})
    return pd.DataFrame(rows)


def test_dead_by_criterion_over_epochs_draws_both_criteria_every_run_and_the_chosen_length():
    figure = plots.dead_by_criterion_over_epochs(progress_rows(), chosen_epochs=3)
    dead_axis = figure.axes[0]
    lines = [line for line in dead_axis.get_lines() if len(line.get_xdata()) == 4]
    # 2 settings x 2 criteria: 3 thin run lines and 1 mean each
    assert len(lines) == 2 * 2 * (3 + 1)
    assert {line.get_linestyle() for line in lines} == {"-", "--"}
    assert any(list(line.get_xdata()) == [3, 3] for line in dead_axis.get_lines())  # the chosen length
    assert dead_axis.get_ylim()[0] < 0 <= dead_axis.get_ylim()[1]
    assert "n = 3 runs per setting" in figure._suptitle.get_text()
    plt.close(figure)


def test_criteria_agreement_draws_both_criteria_per_layer_with_the_jaccard_index():
    agreement = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "layer": ["C1", "C2", "C1", "C2"],
                              "filters": [10, 10, 10, 10], "dead_by_activation": [4, 0, 2, 0],
                              "dead_by_gamma": [2, 0, 2, 0], "dead_by_both": [2, 0, 1, 0],
                              "dead_by_either": [4, 0, 3, 0], "optimizer": "adam", "decay_mode": "l2", "seed": [0, 0, 1, 1]})
    figure = plots.criteria_agreement(agreement)
    axis = figure.axes[0]
    texts = [t.get_text() for t in axis.texts]
    assert texts == ["J=0.43", "none"]  # pooled: 3 both of 7 either in C1; nothing dead in C2
    heights = sorted(round(p.get_height(), 6) for p in axis.patches)
    assert heights == [0, 0, 20, 30]  # C1: 30% by activation and 20% by gamma (means over 2 runs)
    assert sum(len(c.get_offsets()) for c in axis.collections) == 8  # every run, both criteria, both layers
    plt.close(figure)


def test_bn_around_death_draws_gamma_on_a_log_axis_with_the_threshold_and_marks_unrecorded_beta():
    runs = run_rows([("adam", "l2", 0.25)], seeds=(0, 1))
    aligned = pd.DataFrame([{"run_id": run_id, "layer": "C1", "filter": f, "death_epoch": 3, "epoch": e,
                             "epochs_from_death": e - 3, "gamma": 10.0 ** -e, "beta": np.nan}
                            for run_id in runs["run_id"] for f in range(2) for e in range(1, 6)])
    figure = plots.bn_around_death(aligned, runs)
    gamma, beta = figure.axes[:2]
    assert gamma.get_yscale() == "log"
    assert any(list(line.get_ydata()) == [plots.GAMMA_THRESHOLD] * 2 for line in gamma.get_lines())
    assert any("not recorded" in t.get_text() for t in beta.texts)
    thin = [line for line in gamma.get_lines() if line.get_linewidth() == 0.8 and len(line.get_xdata()) == 5]
    assert len(thin) == 2  # one line per run
    plt.close(figure)


def test_the_clock_gives_each_arm_its_own_axis_with_the_reach_only_where_it_is_on_that_scale():
    rows, runs = [], []
    for arm, lr in (("adam+l2", 1e-3), ("sgd+l2", 0.1)):
        for seed in (0, 1):
            run_id = f"{arm}-{seed}"
            runs.append({"run_id": run_id, "lr": lr, "schedule": "step", "steps": 8000,
                         "step_milestones": (0.9, 0.95), "step_gamma": 0.1})
            rows += [{"run_id": run_id, "arm": arm, "seed": seed, "epoch": e, "lr_x_steps": lr * 100 * e,
                      "dead_fraction": 0.01 * max(0, e - 40 - seed), "dead_gamma_fraction": 0.0} for e in range(1, 81)]
    figure = plots.clock_by_arm(pd.DataFrame(rows), pd.DataFrame(runs), reach=11.0, title="usual preset")
    adam, sgd = [axis for axis in figure.axes if axis.get_visible()]
    assert adam.get_title() == "adam+l2, lr 0.001 (2 runs)" and sgd.get_title() == "sgd+l2, lr 0.1 (2 runs)"

    def vertical_lines(axis):
        return sorted(round(line.get_xdata()[0], 3) for line in axis.lines if len(set(line.get_xdata())) == 1)

    assert vertical_lines(adam) == [7.2, 11.0] and adam.get_xlim()[1] >= 11.0  # the drop at 90% and the reach
    assert vertical_lines(sgd) == [720.0]  # SGD's lr x steps are not on Adam's scale: no reach drawn
    seeds = {line.get_color() for line in adam.lines if line.get_linestyle() == "-" and len(set(line.get_xdata())) > 1}
    assert len(seeds) == 2  # one colour per seed
    assert {text.get_text() for text in figure.legends[0].get_texts()} >= {"seed 0", "seed 1", "reach: lr x steps 11"}
    plt.close(figure)


def test_layers_over_the_clock_draw_each_layer_mean_and_every_run():
    progress = pd.DataFrame([{"run_id": f"r{seed}", "arm": "adam+l2", "seed": seed, "epoch": e, "lr_x_steps": 10.0 * e}
                             for seed in (0, 1) for e in (1, 2, 3)])
    history_layers = pd.DataFrame([{"run_id": f"r{seed}", "epoch": e, "layer": layer, "dead": e * (layer == "C2")}
                                   for seed in (0, 1) for e in (1, 2, 3) for layer in ("C1", "C2")])
    layers = pd.DataFrame([{"run_id": f"r{seed}", "layer": layer, "filters": 10} for seed in (0, 1) for layer in ("C1", "C2")])
    figure = plots.layers_over_lr_x_steps(progress, history_layers, layers, reach=60.0, title="usual preset")
    (axis,) = figure.axes
    thick = [line for line in axis.lines if line.get_linewidth() > 2]
    assert len(thick) == 2 and list(thick[1].get_ydata()) == [10.0, 20.0, 30.0]  # C2: 1, 2, 3 of 10 filters
    assert len([line for line in axis.lines if line.get_linewidth() < 1]) == 4  # 2 layers x 2 runs
    assert any(len(set(line.get_xdata())) == 1 and line.get_xdata()[0] == 60.0 for line in axis.lines)
    assert axis.get_title() == "adam+l2 (2 runs)"
    plt.close(figure)


def test_a_figure_saved_twice_is_the_same_bytes(tmp_path):
    import time

    import matplotlib.pyplot as plt

    from sparsitylib.notebook import start

    saved = []
    for folder in ("first", "second"):
        exp = start("01_optimizer_regularizer", preset="smoke", runs_dir=str(tmp_path / "runs"),
                    figures_dir=str(tmp_path / folder))
        figure, axis = plt.subplots()
        axis.plot([0, 1], [1, 0])
        exp.save(figure, "line")
        plt.close(figure)
        saved.append({suffix: (tmp_path / folder / f"01_optimizer_regularizer_line.{suffix}").read_bytes()
                      for suffix in ("png", "pdf")})
        time.sleep(1.1)  # a creation date in seconds would differ
    assert saved[0] == saved[1]


def test_every_saved_figure_names_its_regime_once():
    import matplotlib.pyplot as plt

    from sparsitylib.notebook import name_regime

    untitled, titled, named = plt.figure(), plt.figure(), plt.figure()
    titled.suptitle("Dead filters per layer (n = 5 runs)")
    named.suptitle("adam+L2 against lr x steps (usual preset)")
    for figure in (untitled, titled, named):
        name_regime(figure, "usual")
    assert untitled._suptitle.get_text() == "usual preset"
    assert titled._suptitle.get_text() == "Dead filters per layer (n = 5 runs) (usual preset)"
    assert named._suptitle.get_text() == "adam+L2 against lr x steps (usual preset)"
    plt.close("all")


def test_a_figure_saved_without_n_in_its_title_is_named_in_a_warning(tmp_path):
    from sparsitylib.notebook import FigureTitleWarning, start

    exp = start("01_optimizer_regularizer", preset="smoke", runs_dir=str(tmp_path / "runs"),
                figures_dir=str(tmp_path / "figures"))
    for title, warns in (("Dead filters per layer", True), ("Dead filters (n = 5 runs per setting)", False),
                         ("bfloat16 against float32 (n = 8 seed pairs per optimizer)", False),
                         ("basicnet (5 seeds)", False)):
        figure = plt.figure()
        figure.suptitle(title)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exp.save(figure, "line")
        assert any(issubclass(w.category, FigureTitleWarning) for w in caught) == warns, title
        plt.close(figure)

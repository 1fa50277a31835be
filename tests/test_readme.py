"""The README's generated parts (verdict table, value markers) and the report's links to cells."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from sparsitylib import readme
from sparsitylib.reproduce import made_by, to_html, write_index

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures" / "quick"

NEW_SCHEMA = {
    "notebook": "01_alpha", "preset": "quick", "seeds": [0, 1, 2, 3, 4], "base": {}, "figures": [],
    "run_ids": ["r2", "r1", "r3"],
    "verdicts": [
        {"claim": "A | B leaves more dead filters", "status": "holds", "evidence": "...", "test": "permutation",
         "p_value": 0.003968, "p_against": 1.0, "p_adjusted": 0.03968, "p_against_adjusted": 1.0, "effect": 0.2551,
         "effect_label": "difference of means (A - B)", "ci": [0.2012, 0.3049], "fmt": "{:.1%}", "n": {"a": 5, "b": 5},
         "p_min": 0.004, "values": {"a": [0.2, 0.25, 0.3], "b": [0.0, 0.0, 0.0]}, "parts": [], "claim_id": "adam-vs-sgd",
         "role": "primary", "family": "Bonferroni over the 10 primary claims of the quick report"},
        {"claim": "more x,\nmore y", "status": "described", "evidence": "", "test": "permutation: Spearman rho",
         "p_value": 0.21, "p_against": 0.83, "p_adjusted": None, "effect": 0.04,
         "effect_label": "mean at the largest minus the smallest x", "ci": None, "fmt": "{:.2f}",
         "n": {"x=1": 3, "x=2": 3, "x=3": 4}, "p_min": None, "parts": [], "claim_id": "smaller-batch-equal-steps",
         "role": "secondary"},
    ],
}
OLD_SCHEMA = {  # written before p_adjusted, ci, fmt, effect_label and run_ids existed
    "notebook": "02_beta", "preset": "quick", "seeds": [0, 1, 2],
    "verdicts": [
        {"claim": "nothing dies", "status": "holds", "evidence": "", "test": "all parts", "p_value": None,
         "effect": None, "n": {}, "parts": [{"claim": "a", "n": {"a": 3}}, {"claim": "b", "n": {"b": 3}}]},
        {"claim": "dead filters sit at beta <= 0", "status": "does not hold", "evidence": "", "p_value": 4.534e-99,
         "effect": 0.98876, "n": {"dead filters": 356}},
    ],
}
MANIFEST = {"preset": "quick", "commit": "0123456789abcdef", "finished": "2026-11-23 11:55:24 UTC"}

EXPECTED_TABLE = """
_Written by `python -m sparsitylib readme` from `figures/quick/*.verdict.json`: preset quick, 3 runs (run ids missing in 02), seeds 0, 1, 2, 3, 4, commit 0123456, 2026-11-23 11:55:24 UTC._

**Primary claims** (the paper's findings; Bonferroni over the 10 primary claims of the quick report):

| nb | claim | verdict | n | p | p adjusted | p against | effect [95% CI] |
|---|---|---|---|---|---|---|---|
| 01 | A \\| B leaves more dead filters | holds | 5 vs 5 | 0.004 | 0.04 | 1 | difference of means (A - B): 25.5% [20.1%, 30.5%] |

**Secondary claims** (our analyses, described; p unadjusted, one-sided):

| nb | claim | outcome | n | p | p against | effect [95% CI] |
|---|---|---|---|---|---|---|
| 01 | more x, more y | described | 10 runs in 3 groups | 0.21 | 0.83 | mean at the largest minus the smallest x: 0.04 |
| 02† | nothing dies | holds | 2 x (3 runs) | - | - | - |
| 02† | dead filters sit at beta <= 0 | does not hold | 356 dead filters | 4.5e-99 | - | 0.989 |

† 02: decided under an earlier rule (no registry of primary and secondary claims): not yet re-rendered with the current one (see docs/verdicts.md).
"""


@pytest.fixture
def figures(tmp_path):
    folder = tmp_path / "figures"
    folder.mkdir()
    for data in (OLD_SCHEMA, NEW_SCHEMA):
        (folder / f"{data['notebook']}.verdict.json").write_text(json.dumps(data))
    (folder / "MANIFEST.json").write_text(json.dumps(MANIFEST))
    return folder


def test_the_table_is_rendered_from_the_verdict_files_in_notebook_order(figures):
    files = readme.load_verdict_files(figures)
    assert list(files) == ["01_alpha", "02_beta"]
    assert readme.render_table(files, MANIFEST, "quick") == EXPECTED_TABLE


def test_render_replaces_only_the_marked_parts(figures):
    text = ("# Title\n\n<!-- verdicts:quick:start -->\nold table\n<!-- verdicts:quick:end -->\n"
            "Adam+L2: <!-- value:01_alpha/0/values/a/mean|{:.1%} -->24%<!-- /value --> "
            "(<!-- value:01_alpha/0/status -->inconclusive<!-- /value -->, p <!-- value:01_alpha/0/p_value -->"
            "0.05<!-- /value -->) vs <!-- value:01_alpha/0/values/b/max -->0<!-- /value -->.\n")
    rendered = readme.render(text, figures, "quick")
    assert rendered.text == (
        "# Title\n\n<!-- verdicts:quick:start -->" + EXPECTED_TABLE + "<!-- verdicts:quick:end -->\n"
        "Adam+L2: <!-- value:01_alpha/0/values/a/mean|{:.1%} -->25.0%<!-- /value --> "
        "(<!-- value:01_alpha/0/status -->holds<!-- /value -->, p <!-- value:01_alpha/0/p_value -->"
        "0.004<!-- /value -->) vs <!-- value:01_alpha/0/values/b/max -->0.0%<!-- /value -->.\n")
    # without a format: values take their verdict's fmt, p-values 2 significant digits
    assert (rendered.rows, rendered.values, rendered.values_changed) == (4, 4, 4)
    assert readme.render(rendered.text, figures, "quick").text == rendered.text
    # a README without a table for the preset is left alone, value markers included
    assert readme.render(text, figures, "paper").text == text


def test_each_value_marker_is_filled_from_its_own_preset(figures, tmp_path):
    later = tmp_path / "long"
    later.mkdir()
    data = json.loads(json.dumps(NEW_SCHEMA))
    data["verdicts"][0]["status"] = "inconclusive"
    (later / f"{data['notebook']}.verdict.json").write_text(json.dumps(data))
    text = ("<!-- verdicts:quick:start --><!-- verdicts:quick:end -->\n"
            "quick: <!-- value:01_alpha/0/status -->?<!-- /value -->\n"
            "<!-- verdicts:long:start --><!-- verdicts:long:end -->\n"
            "long: <!-- value:long:01_alpha/0/status -->?<!-- /value -->\n")
    quick = readme.render(text, figures, "quick")
    assert "quick: <!-- value:01_alpha/0/status -->holds<!-- /value -->" in quick.text
    assert "long: <!-- value:long:01_alpha/0/status -->?<!-- /value -->" in quick.text and quick.values == 1
    both = readme.render(quick.text, later, "long")
    assert "long: <!-- value:long:01_alpha/0/status -->inconclusive<!-- /value -->" in both.text
    assert "quick: <!-- value:01_alpha/0/status -->holds<!-- /value -->" in both.text and both.values == 1
    assert readme.render(both.text, figures, "quick").text == both.text


def test_value_paths_resolve_and_format(figures):
    files = readme.load_verdict_files(figures)
    assert readme.resolve(files, "01_alpha/0/effect") == 0.2551
    assert readme.resolve(files, "01_alpha/0/values/a/max") == 0.3
    assert readme.resolve(files, "01_alpha/0/values/a/sd") == pytest.approx(0.05)
    assert readme.resolve(files, "01_alpha/0/ci/1") == 0.3049
    assert readme.resolve(files, "02_beta/0/parts/1/n/b") == 3
    assert readme.resolve(files, "01_alpha/seeds") == [0, 1, 2, 3, 4]
    assert readme.format_value(readme.resolve(files, "01_alpha/0/values/a/mean"), "{:.1%}") == "25.0%"
    assert readme.format_value(0.000123) == "0.000123" and readme.format_value(356) == "356"


@pytest.mark.parametrize("key, says", [
    ("09_missing/0/effect", "no verdict file for notebook '09_missing'"),
    ("01_alpha/7/effect", "01_alpha has no '7' (choose from 0..1)"),
    ("01_alpha/0/effectt", "01_alpha/0 has no 'effectt'"),
    ("01_alpha/0/values/a/median", "01_alpha/0/values/a has no 'median' (choose from 0..2 or mean, sd, min, max)"),
])
def test_an_unknown_path_raises_an_error_naming_the_marker(figures, key, says):
    text = f"<!-- verdicts:quick:start --><!-- verdicts:quick:end -->\n\nsee <!-- value:{key} -->1<!-- /value -->\n"
    with pytest.raises(readme.ReadmeError) as error:
        readme.render(text, figures, "quick")
    assert f"line 3: <!-- value:{key} -->: {says}" in str(error.value)


def test_the_committed_readme_matches_the_committed_verdict_files():
    text = (ROOT / "README.md").read_text()
    assert readme.table_markers("quick")[0] in text and text.count("<!-- value:") >= 5
    # every preset whose verdict table the README shows (quick's, asserted above, and the long regime's)
    for preset in re.findall(r"<!-- verdicts:([\w-]+):start -->", text):
        assert readme.check(ROOT / "README.md", ROOT / "figures" / preset, preset) == "", \
            f"README.md is out of date: run `python -m sparsitylib readme --preset {preset}`"


def edit_first_p_value(text: str) -> tuple[str, str, str]:
    """``text`` with the last digit of the first p-value in its generated table changed; the old
    and the new row."""
    start, end = (text.index(marker) for marker in readme.table_markers("quick"))
    for row in text[start:end].splitlines():
        cells = row.split(" | ")
        if row.startswith("| ") and len(cells) == 8 and re.search(r"\d$", cells[4]):  # a primary claim's row
            cells[4] = cells[4][:-1] + str((int(cells[4][-1]) + 1) % 10)
            edited = " | ".join(cells)
            return text[:start] + text[start:end].replace(row, edited, 1) + text[end:], row, edited
    raise AssertionError("no p-value in the README's table")


def test_check_fails_on_an_edited_p_value_and_update_restores_it(tmp_path, capsys):
    original = (ROOT / "README.md").read_text()
    edited, row, edited_row = edit_first_p_value(original)
    copy = tmp_path / "README.md"
    copy.write_text(edited)
    difference = readme.check(copy, FIGURES, "quick")
    assert f"\n-{edited_row}\n" in difference and f"\n+{row}\n" in difference
    assert readme.main(copy, FIGURES, "quick", check_only=True) == 1
    assert "+++ README.md (from the verdict JSONs)" in capsys.readouterr().out
    assert copy.read_text() == edited  # --check writes nothing
    assert readme.main(copy, FIGURES, "quick") == 0
    assert copy.read_text() == original
    assert "value markers (0 changed); +1/-1 lines" in capsys.readouterr().out
    assert readme.main(copy, FIGURES, "quick", check_only=True) == 0
    assert readme.main(copy, FIGURES, "paper", check_only=True) == 0  # no table for that preset: nothing to do
    assert "has no verdict table for the paper preset" in capsys.readouterr().out


def test_the_cli_check_exits_1_with_a_diff(tmp_path):
    copy = tmp_path / "README.md"
    copy.write_text(edit_first_p_value((ROOT / "README.md").read_text())[0])
    result = subprocess.run([sys.executable, "-m", "sparsitylib", "readme", "--check", "--readme", str(copy)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("--- README.md (committed)") and "\n+| 0" in result.stdout  # the edited row, rendered again


def _notebook(ids: bool = True):
    cells = [
        nbformat.v4.new_markdown_cell("# Demo"),
        nbformat.v4.new_code_cell("exp = start('07_demo')\ntables = exp.run(configs)", execution_count=1),
        nbformat.v4.new_code_cell('exp.save(plots.sweep(runs, "width", title=f"{model}: width"),\n'
                                  '         "width")\nexp.save(plots.categories(runs), "architectures")',
                                  execution_count=2),
        nbformat.v4.new_code_cell('%matplotlib inline\nexp.save(figure, name="magic")', execution_count=3),
        nbformat.v4.new_markdown_cell("## Verdict"),
        nbformat.v4.new_code_cell("exp.conclude(hypotheses.capacity(tables))", execution_count=4),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    if not ids:  # an nbformat 4.4 notebook: cells have no id
        notebook.nbformat_minor = 4
        for cell in notebook.cells:
            del cell["id"]
    return notebook


def test_made_by_finds_the_cells_and_their_anchors_exist_in_the_html(tmp_path):
    path = tmp_path / "07_demo.ipynb"
    nbformat.write(_notebook(), path)
    cells = nbformat.read(path, as_version=4).cells
    made = made_by(path)
    assert {stem: (link.index, link.number) for stem, link in made.figures.items()} == {
        "07_demo_width": (2, 2), "07_demo_architectures": (2, 2), "07_demo_magic": (3, 3)}
    assert made.figures["07_demo_width"].anchor == f"cell-id={cells[2].id}"
    assert (made.verdicts.index, made.verdicts.number, made.verdicts.anchor) == (5, 4, f"cell-id={cells[5].id}")
    page = to_html(path).read_text()
    for link in (*made.figures.values(), made.verdicts):
        assert f'id="{link.anchor}"' in page


def test_cells_without_ids_get_anchors_that_exist(tmp_path):
    path = tmp_path / "07_demo.ipynb"
    path.write_text(json.dumps(_notebook(ids=False)))
    made = made_by(path)
    assert made.verdicts.anchor == "cell-id=cell-5" and made.figures["07_demo_width"].anchor == "cell-id=cell-2"
    page = to_html(path).read_text()
    assert 'id="cell-id=cell-5"' in page and 'id="cell-id=cell-2"' in page


def test_the_index_links_figures_and_verdicts_to_cells_and_lists_run_ids(tmp_path):
    figures, report = tmp_path / "figures", tmp_path / "figures" / "report"
    report.mkdir(parents=True)
    notebook = _notebook()
    nbformat.write(notebook, report / "07_demo.ipynb")
    (figures / "07_demo_width.png").write_bytes(b"")
    (figures / "07_demo.verdict.json").write_text(json.dumps({"run_ids": ["abc123", "def456"], "verdicts": []}))
    verdict = {"claim": "narrower, more dead", "status": "holds", "evidence": "rho -0.9", "n": {"w": 9},
               "p_value": 0.001, "test": "permutation: Spearman rho"}
    manifest = {"preset": "quick", "commit": "0123456", "finished": "today", "total_seconds": 60.0, "parameters": {},
                "notebooks": [{"name": "07_demo", "status": "ok", "seconds": 5.0, "error": None,
                               "verdicts": [verdict]}]}
    write_index(report / "index.html", manifest, figures)
    page = (report / "index.html").read_text()
    width, concluded = notebook.cells[2].id, notebook.cells[5].id
    assert (f'<figcaption>07_demo_width: <a href="07_demo.html#cell-id={width}">made by cell 2</a>'
            f'</figcaption>') in page
    assert f'narrower, more dead <small>(n=9, p=0.001, <a href="07_demo.html#cell-id={concluded}">cell 4</a>)' in page
    assert re.search(r"<details><summary>2 runs</summary><ul><li><code>abc123</code></li>"
                     r"<li><code>def456</code></li></ul></details>", page)
    # the claim comes before its figure, the count of verdicts by status opens the page
    assert page.index("narrower, more dead") < page.index("07_demo_width.png")
    assert "<b>Verdicts:</b> <span style='background:#1a7f37" in page and "holds</span> 1" in page
    assert "<details><summary><small>evidence</small></summary><small>rho -0.9</small></details>" in page


def test_a_check_of_our_method_gets_its_own_table_and_its_raw_p():
    check = {**NEW_SCHEMA["verdicts"][0], "claim": "bf16 measures the same", "status": "does not hold",
             "p_value": 0.9, "p_against": 0.02, "p_adjusted": None, "p_against_adjusted": None,
             "claim_id": "bf16-equivalent", "role": "check", "family": "a check of our method"}
    files = {"13_gamma": {**NEW_SCHEMA, "notebook": "13_gamma", "verdicts": [check]}}
    table = readme.render_table(files, MANIFEST, "quick")
    assert "**Checks of our method**" in table
    assert "| 13 | bf16 measures the same | does not hold | 5 vs 5 | 0.9 | 0.02 |" in table
    assert readme.regime_p(check) == 0.02 and readme.regime_p({**check, "status": "holds"}) == 0.9
    assert "**Checks of our method**" not in readme.render_table({"01_alpha": NEW_SCHEMA}, MANIFEST, "quick")


def test_the_regimes_table_matches_claims_across_presets_and_marks_untested_ones(tmp_path):
    quick, long = tmp_path / "quick", tmp_path / "long"
    quick.mkdir(), long.mkdir()
    (quick / "01_alpha.verdict.json").write_text(json.dumps(NEW_SCHEMA))
    later = json.loads(json.dumps(NEW_SCHEMA))
    later["verdicts"][0].update(status="inconclusive", n={"a": 3, "b": 3}, p_adjusted=0.1)
    later["verdicts"][1]["claim"] = "only in the long regime"
    (long / "01_alpha.verdict.json").write_text(json.dumps(later))
    (quick / "04_only_quick.verdict.json").write_text(json.dumps(NEW_SCHEMA))  # a notebook one regime did not run
    text = "before\n<!-- regimes:quick,long:start -->\nold\n<!-- regimes:quick,long:end -->\nafter\n"
    filled, count = readme.fill_regimes(text, tmp_path, "long")
    assert count == 1
    assert filled == """before
<!-- regimes:quick,long:start -->
_Written by `python -m sparsitylib readme` from `figures/quick/*.verdict.json`, `figures/long/*.verdict.json`. p: adjusted within the regime's primary family for a primary claim (against it, where it does not hold), raw for a check of our method (likewise), raw one-sided for a secondary claim._

| nb | claim | role | quick: verdict | n | p | long: verdict | n | p |
|---|---|---|---|---|---|---|---|---|
| 01 | A \\| B leaves more dead filters | primary | holds | 5 vs 5 | 0.04 | inconclusive | 3 vs 3 | 0.1 |
| 01 | more x, more y | secondary | described | 10 runs in 3 groups | 0.21 | not tested | - | - |
| 01 | only in the long regime | secondary | not tested | - | - | described | 10 runs in 3 groups | 0.21 |
<!-- regimes:quick,long:end -->
after
"""
    assert readme.fill_regimes(text, tmp_path, "smoke") == (text, 0)  # a table that does not name the preset
    # the report's index of either regime shows the same comparison
    (quick / "report").mkdir()
    manifest = {"preset": "quick", "commit": "0123456", "finished": "today", "total_seconds": 60.0, "parameters": {},
                "notebooks": []}
    write_index(quick / "report" / "index.html", manifest, quick)
    page = (quick / "report" / "index.html").read_text()
    assert "Both regimes, claim by claim" in page and "<td>only in the long regime</td><td>secondary</td><td>not tested</td>" in page
    assert "<td>primary</td><td>holds</td><td>5 vs 5</td><td>0.04</td><td>inconclusive</td><td>3 vs 3</td><td>0.1</td>" in page
    (long / "01_alpha.verdict.json").unlink()
    with pytest.raises(readme.ReadmeError, match="reproduce --preset long"):
        readme.fill_regimes(text, tmp_path, "quick")


def test_the_report_counts_the_training_time_of_the_runs_behind_it(tmp_path):
    from sparsitylib.reproduce import runs_by_precision, runs_seconds

    (tmp_path / "01_a.verdict.json").write_text(json.dumps({"run_ids": ["a", "b"], "verdicts": []}))
    (tmp_path / "02_b.verdict.json").write_text(json.dumps({"run_ids": ["b", "c", "gone"], "verdicts": []}))

    class Store:
        records = {"a": {"environment": {"duration_s": 60.0}},
                   "b": {"environment": {"duration_s": 30.0}, "config": {"precision": "bfloat16"}},
                   "c": {"environment": {}, "config": {"precision": "float32"}}}

        def get(self, run_id):
            return self.records.get(run_id)

    assert runs_seconds(tmp_path, Store()) == (90.0, 2)  # b counted once; c has no duration; "gone" is not stored
    assert runs_by_precision(tmp_path, Store()) == {"bfloat16": 1, "float32": 2}  # a predates the setting: float32


def test_every_table_in_the_readme_and_the_docs_renders_as_a_table():
    """A Markdown table broken by a blank line (or a stray row) renders as a paragraph of pipes:
    every source line that starts with '|' must come out as a row of a rendered table."""
    import mistune

    render = mistune.create_markdown(plugins=["table"])
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        in_code = False
        source_rows = 0
        for line in text.splitlines():
            if line.lstrip().startswith("```"):
                in_code = not in_code
            elif (not in_code and line.startswith("|") and line.rstrip().endswith("|")  # a row, not prose on |gamma|
                  and not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip())):
                source_rows += 1
        page = render(text)
        rendered_rows = page.count("<tr>")
        assert rendered_rows == source_rows, f"{path.name}: {source_rows} table lines, {rendered_rows} rendered rows"
        assert "<p>|" not in page, f"{path.name}: a table line renders as a paragraph"


def test_the_readmes_results_hold_no_number_typed_by_hand():
    assert readme.bare_numbers((ROOT / "README.md").read_text()) == []


def test_a_number_typed_into_the_results_is_found_with_its_line():
    text = (ROOT / "README.md").read_text()
    edited = text.replace("**Reading it:**", "**Reading it:** Adam+L2 leaves 25.87% of its filters dead.", 1)
    line = edited[:edited.index("25.87%")].count("\n") + 1
    assert readme.bare_numbers(edited) == [f"line {line}: 25.87%"]
    outside = "Outside the results: 25.87%.\n" + text  # only the results sections are held to it
    assert readme.bare_numbers(outside) == []


def test_values_tables_code_links_and_names_are_not_typed_numbers():
    text = ("<!-- results:start -->\nnotebooks 04-06 and notebook 01, L2 on VGG-16, 95% intervals at 0.05/m, "
            "machines differ 2-3x: <!-- value:01_alpha/0/p_value -->0.004<!-- /value -->, `lr=1e-2`, "
            "[the report](figures/quick/report/index.html), ![a figure](figures/quick/01_a.png)\n"
            "<!-- verdicts:quick:start -->\n| 01 | 25.8% |\n<!-- verdicts:quick:end -->\n"
            "```\nmake test  # 15 minutes\n```\nbut 3 seeds\n<!-- results:end -->\n")
    assert readme.bare_numbers(text) == ["line 9: 3"]


def test_the_magnitude_table_sets_adam_l2s_dead_fraction_beside_the_literature(figures):
    entry = {"runs": 2, "filters": 10, "dead_by_activation": {"mean": 0.25, "ci": [0.1, 0.4], "min": 0.2, "max": 0.3},
             "dead_by_gamma": {"mean": 0.2, "ci": [float("nan"), float("nan")], "min": 0.2, "max": 0.2}}
    per_layer = {"adam+l2": {"C1": {**entry, "filters": 4}, "total": {**entry, "filters": 14}}}
    (figures / "02_where_sparsity_lives.verdict.json").write_text(json.dumps(
        {"notebook": "02_where_sparsity_lives", "preset": "quick", "verdicts": [], "facts": {"per_layer": per_layer}}))
    text = ("# R\n<!-- verdicts:quick:start --><!-- verdicts:quick:end -->\n"
            "<!-- magnitude:quick:start -->stale<!-- magnitude:quick:end -->\n<!-- magnitude:long:start -->x<!-- magnitude:long:end -->")
    rendered = readme.render(text, figures, "quick").text
    block = rendered.split("<!-- magnitude:quick:start -->")[1].split("<!-- magnitude:quick:end -->")[0]
    rows = block.strip().splitlines()
    assert rows[0] == "| source | network, data, training | dead | where |" and len(rows) == 2 + 1 + len(readme.LITERATURE)
    assert rows[2].startswith("| ours | BasicNet at width 0.25 on 10,000 fashion-mnist images, Adam 0.01 with L2 0.0005, "
                              "batch 64, 8 epochs (quick preset, 2 runs) | 25.0% [10.0, 40.0] of 14 filters dead by "
                              "activation, 20.0% by \\|gamma\\| < 1e-3")
    assert rows[2].endswith("| C1 25% of 4 |") and "70-80% of the filters removable" in rows[3]
    assert "<!-- magnitude:long:start -->x<!-- magnitude:long:end -->" in rendered  # another preset's is left alone
    assert readme.bare_numbers(f"<!-- results:start -->{rendered}<!-- results:end -->") == []
    (figures / "02_where_sparsity_lives.verdict.json").write_text(json.dumps(
        {"notebook": "02_where_sparsity_lives", "preset": "quick", "verdicts": [], "facts": {}}))
    with pytest.raises(readme.ReadmeError, match="has no facts/per_layer/adam\\+l2: render notebook 02"):
        readme.render(text, figures, "quick")

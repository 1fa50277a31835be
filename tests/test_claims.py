"""The registry of claims: each once, its role, each regime's family, and designs refused before any run."""

import json

import pytest

from sparsitylib import claims
from sparsitylib.notebook import ParameterError, project_root, start
from sparsitylib.verdict import DESCRIBED, HOLDS, PRIMARY, UNTESTABLE, Verdict, greater


def test_every_claim_is_registered_once_in_a_notebook_of_the_report():
    assert len({c.id for c in claims.REGISTRY}) == len(claims.REGISTRY)
    assert {c.notebook for c in claims.REGISTRY} <= set(claims.NOTEBOOKS)
    assert all(c.role in ("primary", "secondary", "check") for c in claims.REGISTRY)
    assert all(set(c.cited_by) <= set(claims.NOTEBOOKS) - {c.notebook} for c in claims.REGISTRY)


def test_each_regime_has_one_family_of_primary_claims():
    quick, long = claims.family("quick"), claims.family("long")
    assert all(c.role == PRIMARY and c.tested for c in quick + long)
    assert claims.family_size("quick") == len(quick) == 10 and claims.threshold("quick") == pytest.approx(0.005)
    assert claims.family_size("long") == 7 and {c.notebook for c in long} <= set(claims.report_notebooks("long"))
    assert "none-without-regularization" not in {c.id for c in quick}  # a bound has no p-value


def test_a_design_that_cannot_reach_its_level_is_named_with_the_runs_it_needs():
    problems = claims.design_problems("long", [claims.two_arm("at-par", 3, 3), claims.two_arm("adam-vs-sgd", 5, 5),
                                               claims.paired_runs("early-selectivity-predicts-death", 5)])
    assert len(problems) == 2
    assert "3 vs 3 runs (smallest p 0.05)" in problems[0] and "family of 7" in problems[0]
    assert problems[0].endswith("needs 5 vs 5 runs")
    assert problems[1].endswith("needs 8 runs")  # 1/2^8 = 0.0039 <= 0.05/7; 1/2^7 = 0.0078 is not
    assert claims.design_problems("quick", [claims.trend_runs("smaller-batch", [3, 3, 3])]) == []
    assert claims.design_problems("quick", [claims.trend_runs("smaller-batch", [1, 1, 1])])[0].endswith(
        "needs 3 runs at each of the 3 levels")  # 2 each: 6!/(2!^3) = 90 assignments, p 1/90 > 0.005; 3 each: 1/1680
    # secondary claims are described, whatever their design
    assert claims.design_problems("quick", [claims.two_arm("recycling-lower-error", 2, 2)]) == []
    assert "a bound" in claims.design_problems("quick", [claims.bound("none-without-regularization", 1)])[0]
    # a check of our method is decided at 0.05 on its own, whatever the family: 5 paired seeds reach 1/32
    assert claims.design_problems("quick", [claims.paired_runs("bf16-equivalent", 5)]) == []
    assert claims.design_problems("long", [claims.paired_runs("bf16-equivalent", 4)])[0].endswith(
        "at the level of a check, 0.05: needs 5 runs")


def test_a_notebook_refuses_such_a_design_before_any_run(tmp_path):
    exp = start("09_pruning", preset="quick", seeds=[0, 1, 2], runs_dir=str(tmp_path / "runs"),
                figures_dir=str(tmp_path / "figures"))
    with pytest.raises(ParameterError, match="not testable with 3 vs 3 runs .* needs 5 vs 5 runs"):
        exp.require([claims.two_arm("at-par", 3, 3)])
    assert not (tmp_path / "runs").exists() and not (tmp_path / "figures").exists()


def test_an_illustrative_preset_reports_the_claim_untestable_instead(tmp_path):
    exp = start("01_optimizer_regularizer", preset="demo", seeds=[0], runs_dir=str(tmp_path / "runs"),
                figures_dir=str(tmp_path))
    exp.require([claims.two_arm("adam-vs-sgd", 1, 1)])
    verdicts = exp.conclude([greater("With L2, adam leaves more dead filters than SGD", [0.2], [0.0], "adam+l2",
                                     "sgd+l2", claim_id="adam-vs-sgd")])
    assert verdicts[0].status == UNTESTABLE and "demo family of 2" in verdicts[0].evidence
    assert "needs 4 vs 4 runs" in verdicts[0].evidence  # 1/C(8, 4) = 1/70 <= 0.05/2


def test_conclude_writes_each_verdict_with_its_role_and_family_and_refuses_unregistered_claims(tmp_path):
    exp = start("01_alpha", preset="quick", seeds=[0], runs_dir=str(tmp_path / "runs"), figures_dir=str(tmp_path))
    exp.run_ids += ["b", "a"]
    exp.record("pilot", {"first_dead_epoch": {"activation": 24, "gamma": None}})
    a, b = [0.30, 0.31, 0.32, 0.33, 0.34], [0.0, 0.01, 0.0, 0.02, 0.0]
    exp.conclude([greater("primary", a, b, "A", "B", claim_id="adam-vs-sgd"),
                  greater("secondary", a, b, "A", "B", claim_id="l2-vs-none")])
    written = json.loads((tmp_path / "01_alpha.verdict.json").read_text())
    assert written["run_ids"] == ["a", "b"]
    assert written["facts"] == {"pilot": {"first_dead_epoch": {"activation": 24, "gamma": None}}}
    primary, secondary = written["verdicts"]
    assert primary["role"] == "primary" and primary["status"] == HOLDS
    assert primary["p_adjusted"] == pytest.approx(10 / 252) and "10 primary claims of the quick report" in primary["family"]
    assert secondary["role"] == "secondary" and secondary["status"] == DESCRIBED and secondary["p_adjusted"] is None
    with pytest.raises(ValueError, match="without a claim in claims.REGISTRY"):
        exp.conclude([Verdict("made up", HOLDS, "", claim_id="no-such-claim")])
    assert not (tmp_path / "runs").exists()  # concluding trains nothing


def test_docs_claims_md_is_written_from_the_registry():
    assert (project_root() / "docs" / "claims.md").read_text() == claims.markdown()


def test_the_claims_command_writes_docs_claims_md_and_checks_it(tmp_path, monkeypatch, capsys):
    from sparsitylib.cli import main

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["claims", "--check"]) == 1  # no docs/claims.md yet: out of date
    assert "+# The paper's claims" in capsys.readouterr().out
    (tmp_path / "docs").mkdir()
    assert main(["claims"]) == 0 and (tmp_path / "docs" / "claims.md").read_text() == claims.markdown()
    assert main(["claims", "--check"]) == 0

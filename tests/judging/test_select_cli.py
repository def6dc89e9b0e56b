"""`resetkit select` through the real click group."""

from __future__ import annotations

from click.testing import CliRunner

from resetkit.cli import main
from tests.helpers.select_pools import hand_checked


def test_select_command_writes_selection(store):
    hand_checked(store)
    runner = CliRunner()
    res = runner.invoke(main, ["select", "pool", "--store", str(store.root), "--weight", "faith=0",
                               "--metric", "faith.summarization=rougeL_f1", "--name", "sel"])
    assert res.exit_code == 0, res.output
    assert "3 of 4 examples selected (1 without an eligible candidate)" in res.output
    rows = {r["example_id"]: r["candidate_id"] for r in store.resolve("sel").read("train").to_pylist()}
    # faith weight 0: e1 is a tie between c1 (T=0) and c3 (T=0.5) -> c1; e3: ROUGE-L alone -> c10
    assert rows == {"e1": "c1", "e2": "b4", "e3": "c10"}
    assert "1 winners decided by the tie-break" in res.output
    cfg = store.resolve("sel").manifest["config"]
    assert cfg["weights"] == {"task": 1.0, "instr": 2.0, "faith": 0.0}
    assert cfg["metrics"]["faith.summarization"] == "rougeL_f1"


def test_select_command_metric_none_and_min_score(store):
    hand_checked(store)
    res = CliRunner().invoke(main, ["select", "pool", "--store", str(store.root), "--metric",
                                    "faith.summarization=none", "--min-score", "1.5", "--name", "sel"])
    assert res.exit_code == 0, res.output
    # e1: c3 at 3.0; e2: b4 at 1.4 (left out); e3 without a faithfulness term: c10 at ROUGE-L 1.0 (left out)
    assert "1 of 4 examples selected (1 without an eligible candidate, 2 not above --min-score 1.5)" in res.output
    assert [r["candidate_id"] for r in store.resolve("sel").read("train").to_pylist()] == ["c3"]


def test_select_command_errors_are_one_line(store, tmp_path):
    hand_checked(store)
    runner = CliRunner()
    res = runner.invoke(main, ["select", "pool", "--store", str(store.root), "--weight", "style=3"])
    assert res.exit_code == 2 and "SIGNAL=NUMBER" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, ["select", "nope", "--store", str(store.root)])
    assert res.exit_code == 2 and "no dataset 'nope'" in res.output
    res = runner.invoke(main, ["select", "--help"])
    assert res.exit_code == 0 and "Examples:" in res.output

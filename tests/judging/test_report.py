"""The Table 4 report on small synthetic eval datasets, against hand-computed macro-averages."""

from __future__ import annotations

import csv
import math

import pytest
from click.testing import CliRunner

from judging import report as rp
from resetkit.cli import main
from resetkit.errors import ResetkitError
from tests.helpers.eval_rows import BASE, JUDGES, eval_rows, with_nq, write_eval


@pytest.fixture
def three_evals(store):
    """RESET: one run (BASE); MTL: two runs that differ only in NQ faithfulness."""
    return [write_eval(store, "eval-reset", "RESET", 1),
            write_eval(store, "eval-mtl-1", "MTL", 1, with_nq([1, 0, 0, 0])),
            write_eval(store, "eval-mtl-2", "MTL", 2, with_nq([1, 1, 0, 0]))]


def get(report, section, label, dataset):
    r = report.value(section, label, dataset)
    assert r is not None, (section, label, dataset)
    return r


def test_table4_numbers_are_macro_averages(store, three_evals):
    report = rp.build_report([rp.load_eval(store, r) for r in three_evals])
    assert report.labels == ["RESET", "MTL"]
    # abstractive: CNN/DM (1+.5)/2, MS MARCO (.2+.4+.6)/3, WikiSum .9 -> macro, not the pooled mean (.6)
    assert get(report, "faithfulness_abstractive", "RESET", "cnn_dailymail")["mean"] == pytest.approx(0.75)
    assert get(report, "faithfulness_abstractive", "RESET", "ms_marco")["mean"] == pytest.approx(0.4)
    overall = get(report, "faithfulness_abstractive", "RESET", "overall")
    assert overall["mean"] == pytest.approx((0.75 + 0.4 + 0.9) / 3)
    assert overall["mean"] != pytest.approx(3.6 / 6)
    assert math.isnan(overall["std"]) and overall["n_runs"] == 1
    # extractive: NQ 3/4, SearchQA 1, BioASQ 1/2
    assert get(report, "faithfulness_extractive", "RESET", "overall")["mean"] == pytest.approx((0.75 + 1 + 0.5) / 3)
    # instruction following: the unparseable Vicuna rating is left out and counted
    vicuna = get(report, "instruction", "RESET", "vicuna")
    assert vicuna["mean"] == pytest.approx(0.9) and vicuna["n_missing"] == 1 and vicuna["n_examples"] == 1
    assert get(report, "instruction", "RESET", "overall")["mean"] == pytest.approx((0.7 + 0.9 + 0.4) / 3)
    # task performance: EM (NQ .5, SearchQA 1, BioASQ 0) and ROUGE-L (.3, .4, .5)
    assert get(report, "task_extractive", "RESET", "overall")["mean"] == pytest.approx(0.5)
    assert get(report, "task_abstractive", "RESET", "overall")["mean"] == pytest.approx(0.4)
    # MTL: two runs, NQ .25 and .5 -> mean .375, sample std .125*sqrt(2)
    nq = get(report, "faithfulness_extractive", "MTL", "nq")
    assert nq["mean"] == pytest.approx(0.375) and nq["std"] == pytest.approx(0.125 * math.sqrt(2))
    assert nq["n_runs"] == 2 and nq["n_examples"] == 8
    # Overall: the mean of the per-run macro-averages (.25+1+.5)/3 and (.5+1+.5)/3
    runs = [(0.25 + 1 + 0.5) / 3, (0.5 + 1 + 0.5) / 3]
    ov = get(report, "faithfulness_extractive", "MTL", "overall")
    assert ov["mean"] == pytest.approx(sum(runs) / 2)
    assert ov["std"] == pytest.approx(abs(runs[0] - runs[1]) / math.sqrt(2))
    # unseen marks
    cols = {c.dataset: c.seen for c in report.columns["faithfulness_abstractive"]}
    assert cols == {"cnn_dailymail": True, "ms_marco": True, "wikisum": False, "overall": None}


def test_length_buckets_and_average_lengths(store, three_evals):
    report = rp.build_report([rp.load_eval(store, three_evals[0])])
    # CNN/DM: 10 < 50 is shorter (1.0); 200 > 50 + 100 is longer (0.5)
    assert get(report, "faithfulness_shorter", "RESET", "cnn_dailymail")["mean"] == pytest.approx(1.0)
    assert get(report, "faithfulness_longer", "RESET", "cnn_dailymail")["mean"] == pytest.approx(0.5)
    # MS MARCO: 20 == 20 is not strictly shorter; 5 < 20 is (0.4); 130 > 120 is longer (0.6)
    assert get(report, "faithfulness_shorter", "RESET", "ms_marco")["n_examples"] == 1
    assert get(report, "faithfulness_shorter", "RESET", "ms_marco")["mean"] == pytest.approx(0.4)
    assert get(report, "faithfulness_longer", "RESET", "ms_marco")["mean"] == pytest.approx(0.6)
    assert get(report, "gen_tokens", "RESET", "ms_marco")["mean"] == pytest.approx((20 + 5 + 130) / 3)
    assert get(report, "gold_tokens", "RESET", "koala")["mean"] == pytest.approx(440)
    assert report.value("faithfulness_shorter", "RESET", "nq") is None  # extractive: no buckets


def test_cli_writes_markdown_csv_and_pngs(store, three_evals, tmp_path):
    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["report", *three_evals, "-o", str(out), "--store", str(store.root),
                                    "--no-html"])
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    assert "*WikiSum*" in md and "*BioASQ*" in md and "| CNN/DM |" in md
    reset_row = next(line for line in md.splitlines() if line.startswith("| RESET |"))
    assert "0.68" in reset_row and "0.75" in reset_row and "0.67" in reset_row
    mtl_row = next(line for line in md.splitlines() if line.startswith("| MTL |"))
    assert "0.38 ± 0.18" in mtl_row and "0.62 ± 0.06" in mtl_row
    with open(out / "report.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    hit = [r for r in rows if (r["section"], r["label"], r["dataset"]) == ("faithfulness_abstractive", "RESET",
                                                                            "overall")]
    assert len(hit) == 1 and float(hit[0]["mean"]) == pytest.approx((0.75 + 0.4 + 0.9) / 3)
    assert hit[0]["std"] == "" and hit[0]["n_runs"] == "1"
    wiki = [r for r in rows if r["dataset"] == "wikisum" and r["section"] == "faithfulness_abstractive"]
    assert {r["seen"] for r in wiki} == {"false"}
    from matplotlib.image import imread

    for name in ("tradeoff", "length_faithfulness", "gen_length", "if_length_matched"):
        img = imread(out / f"{name}.png")
        assert img.shape[0] > 200 and img.shape[1] > 200 and img[..., :3].std() > 0.05, name


def test_mixed_suites_are_refused(store):
    a = write_eval(store, "eval-a", "A", 1)
    b = write_eval(store, "eval-b", "B", 1, suite="other")
    with pytest.raises(ResetkitError, match="differ in suite"):
        rp.build_report([rp.load_eval(store, a), rp.load_eval(store, b)])


def test_mixed_judge_versions_are_refused(store):
    a = write_eval(store, "eval-a", "A", 1)
    b = write_eval(store, "eval-b", "A", 2, judges={**JUDGES, "summac": "2"})
    res = CliRunner().invoke(main, ["report", a, b, "--store", str(store.root), "-o", str(store.root / "r")])
    assert res.exit_code != 0 and "differ in judge versions" in res.output
    assert not (store.root / "r" / "report.md").exists()


def test_different_source_sets_and_repeats_are_refused(store):
    a = write_eval(store, "eval-a", "A", 1)
    b = write_eval(store, "eval-b", "A", 2, {k: v for k, v in BASE.items() if k != "koala"})
    with pytest.raises(ResetkitError, match="set of sources"):
        rp.build_report([rp.load_eval(store, a), rp.load_eval(store, b)])
    with pytest.raises(ResetkitError, match="more than once"):
        rp.build_report([rp.load_eval(store, a), rp.load_eval(store, a)])
    c = write_eval(store, "eval-c", "A", 1, with_nq([0, 0, 0, 0]))
    with pytest.raises(ResetkitError, match="not independent runs"):
        rp.build_report([rp.load_eval(store, a), rp.load_eval(store, c)])


def test_missing_column_is_named(store):
    table = eval_rows("A", 1, BASE).drop_columns(["faithfulness"])
    with store.create("bad", builder="test", config={}) as w:
        w.write("test", table)
    with pytest.raises(ResetkitError, match="missing column.*faithfulness"):
        rp.load_eval(store, "bad")


def test_if_at_matched_length_figure7(store):
    """Figure 7: both models scored on the same IF examples whose lengths differ by <= 10 tokens."""
    other = {**BASE,
             "alpaca": [(0.5, None, 105, 80), (0.9, None, 90, 80)],   # +5 matched; +30 not
             "vicuna": [(0.3, None, 310, 350), (0.7, None, 200, 350)],  # +10 matched; base rating null
             "koala": [(0.2, None, 395, 440)]}                          # -5 matched
    refs = [write_eval(store, "eval-base", "BASE", 1), write_eval(store, "eval-ft", "FT", 1, other)]
    report = rp.build_report([rp.load_eval(store, r) for r in refs])
    # all IF examples: BASE (.8+.6+.9+.4)/4 (null left out), FT (.5+.9+.3+.7+.2)/5
    assert get(report, "if_all", "BASE", "all")["mean"] == pytest.approx(2.7 / 4)
    assert get(report, "if_all", "FT", "all")["mean"] == pytest.approx(2.6 / 5)
    # matched: alpaca-0, vicuna-0, koala-0 (vicuna-1 has no base rating, alpaca-1 moved 30 tokens)
    base = get(report, "if_matched", "BASE", "FT")
    ft = get(report, "if_matched", "FT", "FT")
    assert base["n_examples"] == ft["n_examples"] == 3
    assert base["mean"] == pytest.approx((0.8 + 0.9 + 0.4) / 3)
    assert ft["mean"] == pytest.approx((0.5 + 0.3 + 0.2) / 3)
    from judging.plots import if_length_matched
    from matplotlib.image import imread

    img = imread(if_length_matched(report, store.root / "fig7.png"))
    assert img.std() > 0.01

"""Top-1 selection over small pools written directly in the EXAMPLES/CANDIDATES/SCORES schemas."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest

from resetkit.errors import ResetkitError
from resetkit.schemas import CANDIDATES
from tests.helpers.select_pools import build_judged_pool, hand_checked
from tests.helpers.select_pools import candidate_row as _candidate
from tests.helpers.select_pools import example_row as _example
from tests.helpers.select_pools import score_row as _score


def test_hand_checked_winners_and_counts(store):
    from judging.select import SelectConfig, run_select

    ex, pool, scores = hand_checked(store)
    sel = run_select(store, "pool", cfg=SelectConfig())
    rows = {r["example_id"]: r for r in sel.read("train").to_pylist()}
    assert sorted(rows) == ["e1", "e2", "e3"]
    assert rows["e1"]["candidate_id"] == "c3" and rows["e1"]["score"] == pytest.approx(3.0)
    assert (rows["e1"]["s_task"], rows["e1"]["s_faith"], rows["e1"]["s_instr"]) == (1.0, 1.0, None)
    assert json.loads(rows["e1"]["metrics"]) == {"bigram_coverage": 0.5, "exact_match": 1.0,
                                                 "span_coverage": 1.0, "unigram_coverage": 1.0}
    # b4 and its duplicate a7 share the score (one text): the lower temperature (b4, 0.2) wins
    assert rows["e2"]["candidate_id"] == "b4" and rows["e2"]["duplicate_of"] is None
    assert rows["e2"]["score"] == pytest.approx(1.4) and rows["e2"]["s_task"] == 0.0
    assert json.loads(rows["e2"]["metrics"]) == {"rating": 0.7}
    assert (rows["e2"]["n_candidates"], rows["e2"]["n_eligible"]) == (4, 2)
    assert rows["e3"]["candidate_id"] == "c9" and rows["e3"]["score"] == pytest.approx(1.8)
    assert rows["e3"]["response"] == "text of c9" and rows["e3"]["prompt"] == "PROMPT e3"
    assert rows["e3"]["source"] == "cnn" and rows["e3"]["refs"] == ["gold e3"]
    m = sel.manifest
    assert m["selection"]["examples_in"] == 4 and m["selection"]["selected"] == 3
    assert m["selection"]["examples_without_eligible"] == 1
    assert m["selection"]["candidates_error"] == 3
    assert m["selection"]["candidates_missing_instr_score"] == 1
    assert m["selection"]["candidates_missing_faith_score"] == 1
    assert m["selection"]["duplicate_winners"] == 0 and m["selection"]["greedy_winners"] == 0
    assert m["selection"]["tied_winners"] == 0          # a text and its duplicate are not a tie
    assert m["selection"]["examples_below_min_score"] == 0 and "min_score" not in m["config"]
    assert m["dropped"] == {"msmarco": {"no eligible candidate": 1}}
    assert m["judge_versions"]["rouge"] == "1"
    assert {p["name"] for p in m["parents"]} == {"ex", "pool", "scores"}
    card = (sel.path / "README.md").read_text()
    for needle in ("examples without an eligible candidate", "Scores per source", "Winning decoding settings",
                   "| cnn |", "Greedy winners: 0", "duplicate winners", "top-k", "Tied winners: 0",
                   "lowest temperature"):
        assert needle in card, needle


def test_weights_and_metric_overrides(store):
    from judging.select import SelectConfig, parse_metrics, parse_weights, run_select

    hand_checked(store)
    cfg = SelectConfig(**parse_weights(["faith=0"]))
    rows = {r["example_id"]: r for r in run_select(store, "pool", cfg=cfg).read("train").to_pylist()}
    sel = run_select(store, "pool", cfg=cfg)
    assert sel.manifest["selection"]["tied_winners"] == 1
    assert rows["e1"]["candidate_id"] == "c1"        # c1 (T=0, greedy) and c3 (T=0.5) tie at 1.0
    assert rows["e1"]["greedy"] is True
    # faith weight 0 does not waive the faithfulness score: c10 (no summac) stays out
    assert rows["e3"]["candidate_id"] == "c8"
    # ROUGE-L standing for faithfulness on summarization: c10 = 1 + 2 * 1 = 3 wins
    cfg = SelectConfig(metrics=parse_metrics(["faith.summarization=rougeL_f1"]))
    rows = {r["example_id"]: r for r in run_select(store, "pool", cfg=cfg).read("train").to_pylist()}
    assert rows["e3"]["candidate_id"] == "c10" and rows["e3"]["score"] == pytest.approx(3.0)


def test_default_scores_lookup_and_errors(store, tmp_path):
    from judging.select import SelectConfig, parse_metrics, parse_weights, run_select

    hand_checked(store)
    with pytest.raises(ResetkitError, match="span_coverge"):
        run_select(store, "pool", cfg=SelectConfig(metrics=parse_metrics(["faith.extractive_qa=span_coverge"])))
    from judging.api import default_metrics

    no_instr = {k: v for k, v in default_metrics().items() if k != "instr.open_ended"}
    with pytest.raises(ResetkitError, match="need a metric for instr: pass --metric instr.open_ended=METRIC "
                                            r"\(or instr.open_ended=none"):
        run_select(store, "pool", cfg=SelectConfig(metrics=no_instr))
    with pytest.raises(ResetkitError, match="SIGNAL=NUMBER"):
        parse_weights(["faithfulness=2"])
    with pytest.raises(ResetkitError, match="SIGNAL.TASK=METRIC"):
        parse_metrics(["faith.qa=x"])
    with pytest.raises(ResetkitError, match="names no examples dataset"):
        run_select(store, "ex")
    ex = store.resolve("ex")
    with store.create("pool2", builder="test-pool", config={}, parents=[ex]) as w:
        w.write("train", pa.Table.from_pylist([_candidate("e1", "z1")], schema=CANDIDATES))
        w.extra["examples"] = ex.ref
    with pytest.raises(ResetkitError, match="no scores dataset judged on pool2@"):
        run_select(store, "pool2")
    with pytest.raises(ResetkitError, match="SQL file not found"):
        run_select(store, "pool", cfg=SelectConfig(sql=str(tmp_path / "nope.sql")))
    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT no_such_column FROM candidate_signals")
    with pytest.raises(ResetkitError, match="no_such_column"):
        run_select(store, "pool", cfg=SelectConfig(sql=str(bad)))
    assert not (store.root / "selection").exists()


def test_select_twice_is_identical_and_loads_with_datasets(store):
    import datasets

    from judging.select import SelectConfig, run_select

    hand_checked(store)
    a = run_select(store, "pool", cfg=SelectConfig(threads=2))
    files_a = {p.name: p.read_bytes() for p in a.files()}
    b = run_select(store, "pool", cfg=SelectConfig(threads=1))
    assert a.version == b.version
    assert {p.name: p.read_bytes() for p in b.files()} == files_a
    ds = datasets.load_dataset(str(b.path))
    assert ds["train"].num_rows == 3
    assert sorted(ds["train"]["candidate_id"]) == ["b4", "c3", "c9"]


def _reference_select(examples, candidates, scores, w=(1.0, 2.0, 2.0)):
    """A plain-Python selection to compare the SQL with."""
    from judging.api import default_metrics

    DEFAULT_METRICS = default_metrics()
    ex = {e["id"]: e for e in examples}
    sc = {}
    for s in scores:
        if s["value"] is not None:
            sc[(s["candidate_id"], s["metric"])] = s["value"]
    best = {}
    for c in candidates:
        e = ex[c["example_id"]]
        key = c["duplicate_of"] or c["candidate_id"]

        def get(signal, key=key, e=e):
            return sc.get((key, DEFAULT_METRICS.get(f"{signal}.{e['task']}")))
        if c["finish_reason"] == "error":
            continue
        has_task = f"task.{e['task']}" in DEFAULT_METRICS
        s_task = get("task") if has_task else 0.0
        need = {"instruction": "instr", "faithfulness": "faith"}[e["objective"]]
        s_obj = get(need)
        if s_task is None or s_obj is None:
            continue
        score = w[0] * s_task + (w[1] if need == "instr" else w[2]) * s_obj
        key = (-score, c["temperature"], c["candidate_id"])   # ties: lowest temperature, then id
        cur = best.get(c["example_id"])
        if cur is None or key < cur:
            best[c["example_id"]] = key
    return {k: v[2] for k, v in best.items()}


def test_matches_python_reference_on_random_pool(store):
    from judging.select import run_select

    rng = random.Random(5)
    kinds = [("instruction", "open_ended"), ("faithfulness", "extractive_qa"),
             ("faithfulness", "abstractive_qa"), ("faithfulness", "summarization")]
    metric_of = {"open_ended": [("llm", "rating")], "extractive_qa": [("em", "exact_match"), ("span", "span_coverage")],
                 "abstractive_qa": [("rouge", "rougeL_f1"), ("summac", "summac_zs")],
                 "summarization": [("rouge", "rougeL_f1"), ("summac", "summac_zs")]}
    examples, candidates, scores = [], [], []
    for i in range(60):
        objective, task = kinds[i % 4]
        eid = f"x{i:03d}"
        examples.append(_example(eid, f"src{i % 3}", objective, task))
        for j in range(7):
            cid = f"{rng.randrange(16**6):06x}"
            dup = candidates[-1]["candidate_id"] if j and rng.random() < 0.2 else None
            fin = "error" if rng.random() < 0.05 else "stop"
            candidates.append(_candidate(eid, cid, finish=fin, duplicate_of=dup, temperature=0.1 * (j + 1)))
            if dup:
                continue
            for judge, metric in metric_of[task]:
                if rng.random() < 0.05:
                    continue  # missing score
                scores.append(_score(cid, judge, metric, rng.choice([0.0, 0.25, 0.5, 1.0, None])))
    build_judged_pool(store, examples, candidates, scores)  # no judge_versions in the manifest
    got = {r["example_id"]: r["candidate_id"] for r in run_select(store, "pool").read("train").to_pylist()}
    assert got == _reference_select(examples, candidates, scores)
    assert len(got) > 40


def test_several_judge_versions_without_manifest_is_an_error(store):
    from judging.select import run_select

    build_judged_pool(store, [_example("e1", "nq", "faithfulness", "extractive_qa")],
                      [_candidate("e1", "c1")],
                      [_score("c1", "em", "exact_match", 1.0, "1"), _score("c1", "em", "exact_match", 0.0, "2"),
                       _score("c1", "span", "span_coverage", 1.0)])
    with pytest.raises(ResetkitError, match="several versions of judge"):
        run_select(store, "pool")


def test_metric_none_drops_the_term(store):
    """--metric SIGNAL.TASK=none: no such term for that task, and no score required for it."""
    from judging.select import SelectConfig, parse_metrics, run_select

    build_judged_pool(
        store,
        [_example("q1", "msmarco", "faithfulness", "abstractive_qa"),
         _example("o1", "dolly", "instruction", "open_ended")],
        [_candidate("q1", "x1", temperature=0.1), _candidate("q1", "x2", temperature=0.9),
         _candidate("o1", "y1", temperature=0.6), _candidate("o1", "y2", temperature=0.2)],
        [_score("x1", "rouge", "rougeL_f1", 0.4), _score("x2", "rouge", "rougeL_f1", 0.6),
         _score("y1", "llm", "rating", 0.9)])      # no NLI model: no summac_zs at all; y2 unrated
    with pytest.raises(ResetkitError, match="no scores for metric 'summac_zs'"):
        run_select(store, "pool")
    cfg = SelectConfig(metrics=parse_metrics(["faith.abstractive_qa=none"]))
    sel = run_select(store, "pool", cfg=cfg)
    rows = {r["example_id"]: r for r in sel.read("train").to_pylist()}
    assert rows["q1"]["candidate_id"] == "x2" and rows["q1"]["score"] == pytest.approx(0.6)
    assert rows["q1"]["s_faith"] is None and rows["o1"]["candidate_id"] == "y1"
    assert sel.manifest["config"]["metrics"]["faith.abstractive_qa"] is None
    assert sel.manifest["selection"]["candidates_missing_instr_score"] == 1      # y2: still required
    assert "| faith.abstractive_qa | none (no term) |" in (sel.path / "README.md").read_text()
    # instr.open_ended=none as well: every o1 candidate scores 0 -> a tie, broken on temperature
    cfg = SelectConfig(metrics=parse_metrics(["faith.abstractive_qa=none", "instr.open_ended=none"]))
    sel = run_select(store, "pool", cfg=cfg)
    rows = {r["example_id"]: r for r in sel.read("train").to_pylist()}
    assert rows["o1"]["candidate_id"] == "y2" and rows["o1"]["score"] == 0.0
    assert sel.manifest["selection"]["tied_winners"] == 1
    assert sel.manifest["selection"]["tied_winners_at_zero"] == 1


def test_min_score_leaves_out_and_counts(store):
    from judging.select import SelectConfig, run_select

    build_judged_pool(
        store,
        [_example("z1", "nq", "faithfulness", "extractive_qa"), _example("z2", "nq", "faithfulness", "extractive_qa"),
         _example("z3", "cnn", "faithfulness", "summarization")],
        [_candidate("z1", "a1", temperature=0.7), _candidate("z1", "a2", temperature=0.1),
         _candidate("z1", "a3", temperature=0.1),
         _candidate("z2", "b1"), _candidate("z3", "d1")],
        [_score("a1", "em", "exact_match", 0.0), _score("a1", "span", "span_coverage", 0.0),
         _score("a2", "em", "exact_match", 0.0), _score("a2", "span", "span_coverage", 0.0),
         _score("a3", "em", "exact_match", 0.0), _score("a3", "span", "span_coverage", 0.0),
         _score("b1", "em", "exact_match", 0.0), _score("b1", "span", "span_coverage", 0.5),
         _score("d1", "rouge", "rougeL_f1", 0.1), _score("d1", "summac", "summac_zs", 0.2)])
    plain = run_select(store, "pool", cfg=SelectConfig(), name="all")
    rows = {r["example_id"]: r["candidate_id"] for r in plain.read("train").to_pylist()}
    # z1: three texts all at 0; T=0.1 twice -> the smaller id of those two
    assert rows == {"z1": "a2", "z2": "b1", "z3": "d1"}
    s = plain.manifest["selection"]
    assert (s["tied_winners"], s["tied_winners_at_zero"]) == (1, 1)
    assert "Tied winners: 1 (33.3%)" in (plain.path / "README.md").read_text()

    sel = run_select(store, "pool", cfg=SelectConfig(min_score=0.0), name="strict")
    assert sorted(r["example_id"] for r in sel.read("train").to_pylist()) == ["z2", "z3"]
    s = sel.manifest["selection"]
    assert s["examples_below_min_score"] == 1 and s["selected"] == 2 and s["tied_winners"] == 0
    assert sel.manifest["dropped"] == {"nq": {"best score not above --min-score 0": 1}}
    assert sel.manifest["config"]["min_score"] == 0.0
    card = (sel.path / "README.md").read_text()
    assert "best score not above --min-score 0 | 1 |" in card
    # z2 scores 0 + 2 * 0.5 = 1.0, z3 0.1 + 2 * 0.2 = 0.5: "above" is strict
    higher = run_select(store, "pool", cfg=SelectConfig(min_score=0.9), name="higher")
    assert [r["example_id"] for r in higher.read("train").to_pylist()] == ["z2"]
    assert run_select(store, "pool", cfg=SelectConfig(min_score=1.0), name="none").manifest[
        "selection"]["selected"] == 0

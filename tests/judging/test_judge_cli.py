"""`resetkit judge` end to end on small pools built in the CANDIDATES schema."""

import json

import pyarrow as pa
import pytest
from click.testing import CliRunner

from resetkit.cli import main
from resetkit.schemas import CANDIDATES, SCORES
from tests.judging.pools import candidate, example, make_pool

CTX = "The cat sat on the mat. Paris is the capital of France and has many museums."


def _pool(store, **kw):
    exs = [example("q1", "extractive_qa", context=CTX, question="Where did the cat sit?",
                   references=["on the mat", "the mat"]),
           example("s1", "summarization", context=CTX, references=["A cat sat; Paris is France's capital."]),
           example("a1", "abstractive_qa", context=CTX, question="What is Paris?", references=[]),
           example("o1", "open_ended", instruction="Write a haiku.")]
    cands = [candidate("q1", "q1-0", "on the mat", i=0),
             candidate("q1", "q1-1", "on the mat", duplicate_of="q1-0", i=1),
             candidate("q1", "q1-2", "category", i=2), candidate("q1", "q1-3", "", i=3),
             candidate("s1", "s1-0", "The cat sat on the mat. Paris is the capital of France.", i=0),
             candidate("s1", "s1-1", "", i=1),
             candidate("a1", "a1-0", "Paris is the capital of France.", i=0),
             candidate("o1", "o1-0", "Silent pond, a frog.", i=0)]
    return make_pool(store, exs, cands, **kw)


def _run(store, *args):
    return CliRunner().invoke(main, ["judge", *args, "--store", str(store.root), "--quiet"],
                              catch_exceptions=False)


def test_every_cheap_judge_and_summac(store, tiny_nli):
    pool = _pool(store)
    res = _run(store, "pool", "--judges", "span,ngram,em,rouge,summac", "--nli-model", str(tiny_nli))
    assert res.exit_code == 0, res.output
    v = store.resolve("scores")
    rows = v.read().to_pylist()
    got = {(r["candidate_id"], r["metric"]): r for r in rows}
    # each judge only on the tasks it covers
    assert {m for (c, m) in got if c.startswith("q1")} == {"span_coverage", "unigram_coverage",
                                                          "bigram_coverage", "exact_match"}
    assert {m for (c, m) in got if c.startswith("s1")} == {"rougeL_f1", "summac_zs"}
    assert not any(c.startswith("o1") for c, _ in got)
    assert got[("q1-0", "exact_match")]["value"] == 1.0 and got[("q1-1", "exact_match")]["value"] == 1.0
    assert got[("q1-2", "span_coverage")]["value"] == 0.0          # "category" is not the token "cat"
    assert got[("q1-3", "span_coverage")]["value"] == 0.0 and got[("q1-3", "exact_match")]["value"] == 0.0
    assert got[("s1-1", "rougeL_f1")]["value"] == 0.0
    no_ref = got[("a1-0", "rougeL_f1")]
    assert no_ref["value"] is None and "no reference" in no_ref["error"]
    assert 0 < got[("a1-0", "summac_zs")]["value"] < 1
    m = v.manifest
    assert m["pool"] == pool.ref and m["examples"] == pool.manifest["examples"]
    assert set(m["judge_versions"]) == {"span", "ngram", "em", "rouge", "summac"}
    assert {p["name"] for p in m["parents"]} == {"pool", "ex"}
    assert m["judge_stats"]["em"]["distinct_texts"] == 3           # q1-0/q1-1 judged once
    assert (v.path / "README.md").is_file()
    assert v.schema.equals(SCORES)


def test_incremental_only_new_work(store):
    _pool(store)
    assert _run(store, "pool", "--judges", "span").exit_code == 0
    first = store.resolve("scores")
    res = _run(store, "pool", "--judges", "span,em")
    assert res.exit_code == 0, res.output
    second = store.resolve("scores")
    st = second.manifest["judge_stats"]
    assert st["span"]["candidates_scored"] == 0 and st["span"]["candidates_carried"] == 4
    assert st["em"]["candidates_scored"] == 4
    assert second.manifest["carried_from"] == first.ref
    # a judge not asked for this time keeps its rows
    assert _run(store, "pool", "--judges", "rouge").exit_code == 0
    third = store.resolve("scores")
    assert set(third.read().column("judge").to_pylist()) == {"span", "em", "rouge"}
    # same work again: same rows, same version id
    assert _run(store, "pool", "--judges", "rouge").exit_code == 0
    assert store.resolve("scores").version == third.version


def test_dry_run_writes_nothing(store):
    _pool(store)
    res = _run(store, "pool", "--judges", "span,llm", "--dry-run")
    assert res.exit_code == 0, res.output
    plan = json.loads(res.output)
    assert plan["judges"]["span"]["candidates"] == 4
    assert plan["judges"]["llm"]["calls"] == 1 and plan["judges"]["llm"]["est_usd"] > 0
    assert store.versions("scores") == []


def test_pool_missing_columns_is_a_clear_error(store):
    _pool(store, drop_columns=["text"])
    res = CliRunner().invoke(main, ["judge", "pool", "--judges", "span", "--store", str(store.root)])
    assert res.exit_code == 2 and "missing column(s): text" in res.output
    assert store.versions("scores") == []


def test_pool_without_examples_ref(store):
    t = pa.Table.from_pylist([candidate("x", "c", "t")], schema=CANDIDATES)
    with store.create("pool", builder="test", config={}) as w:
        w.write("train", t)
    res = CliRunner().invoke(main, ["judge", "pool", "--judges", "span", "--store", str(store.root)])
    assert res.exit_code == 2 and "examples" in res.output


def test_unknown_judge_suggests(store):
    _pool(store)
    res = CliRunner().invoke(main, ["judge", "pool", "--judges", "sumac", "--store", str(store.root)])
    assert res.exit_code == 2 and "Did you mean 'summac'" in res.output


def test_help_has_examples():
    res = CliRunner().invoke(main, ["judge", "--help"])
    assert res.exit_code == 0 and "Examples:" in res.output and "--max-usd" in res.output


@pytest.mark.gpu
def test_summac_half_precision_on_gpu_close_to_fp32(sharp_nli):
    import torch

    from judging.summac import ZeroShotScorer

    prem, hyp = [CTX] * 3, ["The cat sat on the mat.", "Paris is in France.", "Museums are in Paris."]
    fp32 = ZeroShotScorer(str(sharp_nli), device="cpu").score(prem, hyp)
    scorer = ZeroShotScorer(str(sharp_nli), device="cuda")
    assert scorer.dtype in (torch.bfloat16, torch.float16)  # auto picks half precision on a GPU
    gpu = scorer.score(prem, hyp)
    assert max(fp32) - min(fp32) > 0.05  # the sharp model spreads its scores: the check can fail
    assert max(abs(a - b) for a, b in zip(fp32, gpu)) < 2e-2

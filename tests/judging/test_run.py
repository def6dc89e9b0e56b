"""The run path of the judges (judging/run.py: columnar read, grouping, scores table) against
the row-by-row rule it replaced, and the run-scoped caches of the metric judges."""

import random

import pyarrow as pa
import pytest

from judging.coverage import ngram_coverage, span_coverage
from judging.exact_match import exact_match
from judging.judge import JudgeConfig
from judging.rouge import rouge_l_f1
from judging.run import run_judges
from resetkit.schemas import CANDIDATES, EXAMPLES, SCORES
from tests.judging.pools import candidate, example

SCALAR = {
    "span": lambda t, e: {"span_coverage": span_coverage(t, e["context"])},
    "ngram": lambda t, e: {"unigram_coverage": ngram_coverage(t, e["context"], 1),
                           "bigram_coverage": ngram_coverage(t, e["context"], 2)},
    "em": lambda t, e: {"exact_match": exact_match(t, e["refs"])},
    "rouge": lambda t, e: {"rougeL_f1": rouge_l_f1(t, e["refs"])},
}
TASKS = {"span": ("extractive_qa",), "ngram": ("extractive_qa",), "em": ("extractive_qa",),
         "rouge": ("abstractive_qa", "summarization")}


def _reference(examples, cands, judges, version="1"):
    """The rule, row by row: per judge, the candidates of its tasks grouped by (example, text)
    in pool order, each group scored once with the scalar functions and copied to every member;
    rows concatenated per judge and metric, then stably sorted by (candidate, judge, metric)."""
    ex = {e["id"]: e for e in examples}
    rows = []
    for j in judges:
        groups = {}
        for c in cands:
            if ex[c["example_id"]]["task"] in TASKS[j]:
                groups.setdefault((c["example_id"], c["text"] or ""), []).append(c["candidate_id"])
        per_metric = {}
        for (eid, text), cids in groups.items():
            for metric, v in SCALAR[j](text, ex[eid]).items():
                err = None if v is not None else "example has no reference"
                per_metric.setdefault(metric, []).extend(
                    {"candidate_id": c, "judge": j, "metric": metric, "value": v, "raw": None, "error": err,
                     "judge_version": version} for c in cids)
        for metric_rows in per_metric.values():
            rows += metric_rows
    table = pa.Table.from_pylist(rows, schema=SCORES)
    return table.sort_by([("candidate_id", "ascending"), ("judge", "ascending"), ("metric", "ascending")])


def _pool(store, n_examples=40, seed=0, shard_rows=7):
    """Examples of three tasks (one without references) and candidates with the grid's
    duplicates, null and empty texts, a text shared by two examples, and a candidate id that
    occurs twice; the pool written in several shards (several Parquet dictionaries)."""
    rng = random.Random(seed)
    words = "the a cat sat on mat Paris is capital of France - 's museums many".split()

    def sent(n):
        return " ".join(rng.choice(words) for _ in range(n))

    exs, cands = [], []
    for e in range(n_examples):
        task = ("extractive_qa", "abstractive_qa", "summarization")[e % 3]
        ctx = ". ".join(sent(rng.randint(4, 12)) for _ in range(3))
        refs = [] if e % 7 == 3 else [sent(rng.randint(2, 6)) for _ in range(rng.randint(1, 2))]
        exs.append(example(f"x{e:03d}", task, context=ctx, question="q?", references=refs))
        greedy = sent(rng.randint(1, 8))
        for k in range(5):
            text = rng.choice([greedy, greedy, sent(rng.randint(1, 6)), "", None, "shared text"])
            cands.append(candidate(f"x{e:03d}", f"x{e:03d}-{k}", text, i=k))
    rng.shuffle(cands)  # examples interleaved: groups are not contiguous in the pool
    cands.append(candidate("x000", "x001-2", "a second text under an existing id"))
    with store.create("ex", builder="test", config={"n": n_examples, "seed": seed}) as w:
        w.write("train", pa.Table.from_pylist(exs, schema=EXAMPLES), schema=EXAMPLES)
    with store.create("pool", builder="test", config={"n": n_examples, "seed": seed}, parents=[w.result],
                      shard_rows=shard_rows) as pw:
        pw.write("train", pa.Table.from_pylist(cands, schema=CANDIDATES), schema=CANDIDATES)
        pw.extra["examples"] = w.result.ref
    assert len(pw.result.files()) > 3
    return exs, cands


@pytest.mark.parametrize("native", ["1", "0"])
def test_scores_equal_the_row_by_row_rule(store, monkeypatch, native):
    monkeypatch.setenv("RESETKIT_NATIVE", native)
    exs, cands = _pool(store)
    judges = ["span", "ngram", "em", "rouge"]
    v = run_judges(store, "pool", judges, JudgeConfig(), progress=False)
    got = v.read()
    expected = _reference(exs, cands, judges)
    assert got.num_rows == expected.num_rows > 4 * len(cands) // 2
    assert got.equals(expected)
    stats = v.manifest["judge_stats"]
    distinct = {(c["example_id"], c["text"] or "") for c in cands
                if {e["id"]: e for e in exs}[c["example_id"]]["task"] == "extractive_qa"}
    assert stats["span"]["distinct_texts"] == len(distinct)
    assert got.filter(pa.compute.is_null(got.column("value"))).column("error").to_pylist() == \
        ["example has no reference"] * got.column("value").null_count


def test_carried_rows_and_new_rows_give_the_fresh_table(store):
    exs, cands = _pool(store, seed=1)
    first = run_judges(store, "pool", ["span", "rouge"], JudgeConfig(), progress=False)
    second = run_judges(store, "pool", ["span", "em", "rouge"], JudgeConfig(), progress=False)
    stats = second.manifest["judge_stats"]
    assert stats["span"]["candidates_carried"] > 0 and stats["span"]["distinct_texts"] == 0
    assert stats["em"]["candidates_carried"] == 0 and stats["em"]["distinct_texts"] > 0
    assert second.manifest["carried_from"] == first.ref
    assert second.read().equals(_reference(exs, cands, ["span", "em", "rouge"]))
    # a stale version of one judge: its rows are computed again, the others carried
    third = run_judges(store, "pool", ["span", "em", "rouge"], JudgeConfig(judge={"rouge": {"stemming": True}}), progress=False)
    assert third.manifest["judge_stats"]["rouge"]["candidates_carried"] == 0
    assert third.manifest["judge_stats"]["em"]["candidates_carried"] > 0


def test_metric_judges_share_a_run_and_nothing_else(store):
    """Caches live on the run's Items: the ngram judge reuses the coverage the span judge
    computed on the same Items, and judges called on other inputs in between see none of it."""
    from judging.coverage import NgramJudge, SpanJudge
    from judging.exact_match import ExactMatchJudge
    from judging.run import judge_items

    _pool(store, seed=2)
    cfg = JudgeConfig()
    items = judge_items(store, "pool", [SpanJudge(cfg), NgramJudge(cfg), ExactMatchJudge(cfg)])
    span = SpanJudge(cfg).score(items)
    assert set(items.memo) == {"normalized_text", "coverage"}
    other = [{"text": "cat sat", "context": "the cat sat", "refs": ["cat sat"]}] * 3
    assert list(NgramJudge(cfg).score(other)) == [{"unigram_coverage": (1.0, None, None),
                                                   "bigram_coverage": (1.0, None, None)}] * 3
    ngram = NgramJudge(cfg).score(items)
    as_dicts = [dict(it) for it in items]  # the same items as plain dicts: computed afresh
    assert span == SpanJudge(cfg).score(as_dicts) and ngram == NgramJudge(cfg).score(as_dicts)
    assert ExactMatchJudge(cfg).score(items) == ExactMatchJudge(cfg).score(as_dicts)
    assert [it["text"] for it in as_dicts] == items.column("text")


def test_no_module_keeps_data_between_runs():
    """No module-level cache: the metric judges' modules hold constants only (issue 15)."""
    import types

    import judging.coverage
    import judging.exact_match
    import judging.items
    import judging.kernels
    import judging.rouge
    import judging.run
    import judging.text

    constants = {("judging.text", "_ASCII_PUNCT")}  # str.maketrans's table (a dict), never written
    for mod in (judging.text, judging.kernels, judging.coverage, judging.exact_match, judging.rouge,
                judging.items, judging.run):
        for name, value in vars(mod).items():
            if name.startswith("__") or isinstance(value, (types.ModuleType, type, types.FunctionType)):
                continue
            assert not isinstance(value, (list, dict, set, bytearray)) or (mod.__name__, name) in constants, \
                f"{mod.__name__}.{name} is a module-level {type(value).__name__}"

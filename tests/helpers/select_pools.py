"""Small judged pools for the selection tests, written straight in the EXAMPLES / CANDIDATES /
SCORES schemas: one row builder per schema, ``build_judged_pool`` and the hand-checked pool whose
winners tests/judging/test_select.py works out by hand."""

from __future__ import annotations

import pyarrow as pa

from resetkit.schemas import CANDIDATES, EXAMPLES, SCORES


def example_row(eid, source, objective, task):
    return {"id": eid, "source": source, "objective": objective, "task": task, "split": "train",
            "instruction": f"instruction {eid}", "question": "q?" if "qa" in task else None,
            "context": "some context" if task != "open_ended" else None, "passages": [],
            "response": f"gold {eid}", "refs": [f"gold {eid}"], "prompt": f"PROMPT {eid}",
            "template": "alpaca", "meta": "{}"}


def candidate_row(eid, cid, *, temperature=0.3, top_k=None, arm="temperature", finish="stop",
               duplicate_of=None, text=None, greedy=False):
    return {"example_id": eid, "candidate_id": cid, "model": "tiny", "model_revision": "r1",
            "template": "alpaca", "prompt": f"PROMPT {eid}", "temperature": temperature, "top_k": top_k,
            "top_p": 1.0, "seed": 7, "arm": arm, "sample_index": 0,
            "text": text if text is not None else f"text of {cid}", "num_tokens": 3,
            "finish_reason": finish, "greedy": greedy, "duplicate_of": duplicate_of,
            "backend": "transformers", "error": "boom" if finish == "error" else None}


def score_row(cid, judge, metric, value, version="1"):
    return {"candidate_id": cid, "judge": judge, "metric": metric, "value": value, "raw": None,
            "error": None, "judge_version": version}


def build_judged_pool(store, examples, candidates, scores, judge_versions=None, names=("ex", "pool", "scores")):
    """Write examples, a pool and its scores into ``store``; returns the three versions."""
    ex_name, pool_name, scores_name = names
    with store.create(ex_name, builder="test-examples", config={"rows": examples}) as w:
        w.write("train", pa.Table.from_pylist(examples, schema=EXAMPLES))
    ex = w.result
    with store.create(pool_name, builder="test-pool", config={"rows": candidates}, parents=[ex]) as w:
        w.write("train", pa.Table.from_pylist(candidates, schema=CANDIDATES))
        w.extra["examples"] = ex.ref
    pool = w.result
    with store.create(scores_name, builder="test-judge", config={"rows": scores}, parents=[pool]) as w:
        w.write("train", pa.Table.from_pylist(scores, schema=SCORES))
        w.extra["pool"] = pool.ref
        w.extra["examples"] = ex.ref
        if judge_versions is not None:
            w.extra["judge_versions"] = judge_versions
    return ex, pool, w.result


def hand_checked(store):
    """Four examples whose winners are worked out by hand in the tests below."""
    examples = [example_row("e1", "nq", "faithfulness", "extractive_qa"),
                example_row("e2", "dolly", "instruction", "open_ended"),
                example_row("e3", "cnn", "faithfulness", "summarization"),
                example_row("e4", "msmarco", "faithfulness", "abstractive_qa")]
    candidates = [
        candidate_row("e1", "c1", temperature=0.0, top_k=5, arm="top-k", greedy=True),  # EM 1 span 0 -> 1
        candidate_row("e1", "c2", temperature=0.1),                                    # EM 0 span 1 -> 2
        candidate_row("e1", "c3", temperature=0.5),                                    # EM 1 span 1 -> 3
        candidate_row("e2", "b4", temperature=0.2),                                    # 0.7 -> 1.4
        candidate_row("e2", "c5", temperature=0.4, finish="error", text=""),           # error: out
        candidate_row("e2", "c6", temperature=0.6),                                    # rating null: out
        candidate_row("e2", "a7", temperature=0.3, duplicate_of="b4", text="text of b4"),  # = b4, smaller id
        candidate_row("e3", "c8", temperature=0.1),                                    # .5 + 2*.5 = 1.5
        candidate_row("e3", "c9", temperature=0.7),                                    # .2 + 2*.8 = 1.8
        candidate_row("e3", "c10", temperature=0.2),                                   # no summac: out
        candidate_row("e4", "d1", finish="error", text=""),
        candidate_row("e4", "d2", finish="error", text=""),
    ]
    scores = [
        score_row("c1", "em", "exact_match", 1.0), score_row("c1", "span", "span_coverage", 0.0),
        score_row("c2", "em", "exact_match", 0.0), score_row("c2", "span", "span_coverage", 1.0),
        score_row("c3", "em", "exact_match", 1.0), score_row("c3", "span", "span_coverage", 1.0),
        score_row("c3", "ngram", "unigram_coverage", 1.0), score_row("c3", "ngram", "bigram_coverage", 0.5),
        score_row("b4", "llm", "rating", 0.7), score_row("c5", "llm", "rating", 0.9),
        score_row("c6", "llm", "rating", None),
        score_row("c8", "rouge", "rougeL_f1", 0.5), score_row("c8", "summac", "summac_zs", 0.5),
        score_row("c9", "rouge", "rougeL_f1", 0.2), score_row("c9", "summac", "summac_zs", 0.8),
        score_row("c10", "rouge", "rougeL_f1", 1.0),
        # an older rouge version that would make c8 win: must be ignored
        score_row("c8", "rouge", "rougeL_f1", 5.0, version="0"),
    ]
    jv = {"em": "1", "span": "1", "ngram": "1", "llm": "1", "rouge": "1", "summac": "1"}
    return build_judged_pool(store, examples, candidates, scores, jv)

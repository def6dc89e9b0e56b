"""Eval datasets (the EVAL schema, one row per example) written straight into a store, for the
report tests: per source, (faithfulness or instruction score, task score, gen_tokens,
gold_tokens) per example."""

from __future__ import annotations

import json

import pyarrow as pa

from resetkit.schemas import EVAL

TASK = {"cnn_dailymail": "summarization", "ms_marco": "abstractive_qa", "wikisum": "summarization",
        "nq": "extractive_qa", "searchqa": "extractive_qa", "bioasq": "extractive_qa",
        "alpaca": "open_ended", "vicuna": "open_ended", "koala": "open_ended"}
SEEN = {"cnn_dailymail", "ms_marco", "nq"}
JUDGES = {"em": "1", "llm": "1", "rouge": "1", "span": "1", "summac": "1"}

# per source: (faithfulness or instruction score, task score, gen_tokens, gold_tokens) per example
BASE = {
    "cnn_dailymail": [(1.0, 0.2, 10, 50), (0.5, 0.4, 200, 50)],          # shorter / >100 longer
    "ms_marco": [(0.2, 0.3, 20, 20), (0.4, 0.3, 5, 20), (0.6, 0.6, 130, 20)],
    "wikisum": [(0.9, 0.5, 300, 100)],
    "nq": [(1.0, 1.0, 3, 3), (1.0, 0.0, 3, 3), (0.0, 0.0, 3, 3), (1.0, 1.0, 3, 3)],
    "searchqa": [(1.0, 1.0, 2, 2)],
    "bioasq": [(0.0, 0.0, 4, 4), (1.0, 0.0, 4, 4)],
    "alpaca": [(0.8, None, 100, 80), (0.6, None, 60, 80)],
    "vicuna": [(0.9, None, 300, 350), (None, None, 200, 350)],             # one unparseable rating
    "koala": [(0.4, None, 400, 440)],
}


def eval_rows(label: str, seed: int, data: dict, *, suite: str = "paper", judges: dict = JUDGES,
              model: str | None = None) -> pa.Table:
    rows = []
    for source, examples in data.items():
        task = TASK[source]
        for i, (score, task_score, gen, gold) in enumerate(examples):
            is_if = task == "open_ended"
            rows.append({
                "example_id": f"{source}-{i}", "source": source, "task": task,
                "objective": "instruction" if is_if else "faithfulness", "seen": source in SEEN,
                "prompt": f"prompt of {source} #{i} <b>not bold</b>", "generation": f"generation {label} {i}",
                "gold": f"gold {i}", "gen_tokens": gen, "gold_tokens": gold, "length_unit": "whitespace",
                "finish_reason": "stop", "faithfulness": None if is_if else score,
                "instruction": score if is_if else None, "task_score": task_score,
                "metrics": "{}", "candidate_id": f"c-{label}-{seed}-{source}-{i}", "model": model or f"./{label}",
                "model_revision": None, "label": label, "seed": seed, "suite": suite,
                "judge_versions": json.dumps(judges, sort_keys=True), "error": None})
    return pa.Table.from_pylist(rows, schema=EVAL)


def write_eval(store, name: str, label: str, seed: int, data: dict = BASE, **kw) -> str:
    with store.create(name, builder="test-eval", config={"label": label, "seed": seed}) as w:
        w.write("test", eval_rows(label, seed, data, **kw), schema=EVAL)
    return w.result.ref


def with_nq(faith: list[float]) -> dict:
    return {**BASE, "nq": [(f, 1.0, 3, 3) for f in faith]}

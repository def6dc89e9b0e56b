"""Tiny examples + candidate pools in the EXAMPLES / CANDIDATES schemas, for judge tests.

``make_pool(store, examples, candidates)`` writes an examples dataset and a pool whose
manifest names it in ``extra["examples"]`` (as builders.pool does).
"""

from __future__ import annotations

import json

import pyarrow as pa

from resetkit.schemas import CANDIDATES, EXAMPLES


def example(id, task, *, context=None, question=None, instruction=None, references=None):
    objective = "instruction" if task == "open_ended" else "faithfulness"
    refs = list(references or [])
    return {"id": id, "source": "test", "objective": objective, "task": task, "split": "train",
            "instruction": instruction or question or "Summarize.", "question": question, "context": context,
            "passages": [context] if context else [], "response": refs[0] if refs else "",
            "refs": refs, "prompt": f"prompt of {id}", "template": "alpaca", "meta": json.dumps({})}


def candidate(example_id, cid, text, *, duplicate_of=None, i=0):
    return {"example_id": example_id, "candidate_id": cid, "model": "m", "model_revision": "r",
            "template": "alpaca", "prompt": f"prompt of {example_id}", "temperature": 0.1 * i, "top_k": None,
            "top_p": 1.0, "seed": 0, "arm": "temperature", "sample_index": i, "text": text,
            "num_tokens": len((text or "").split()), "finish_reason": "stop", "greedy": False,
            "duplicate_of": duplicate_of, "backend": "test", "error": None}


def make_pool(store, examples: list[dict], candidates: list[dict], *, pool_name="pool",
              examples_name="ex", drop_columns=()):
    with store.create(examples_name, builder="test", config={"rows": examples}) as w:
        w.write("train", pa.Table.from_pylist(examples, schema=EXAMPLES), schema=EXAMPLES)
    ex = w.result
    table = pa.Table.from_pylist(candidates, schema=CANDIDATES)
    if drop_columns:
        table = table.drop_columns(list(drop_columns))
    with store.create(pool_name, builder="test", config={"rows": candidates}, parents=[ex]) as w:
        w.write("train", table)
        w.extra["examples"] = ex.ref
    return w.result

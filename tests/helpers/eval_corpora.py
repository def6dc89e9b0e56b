"""Tiny corpora for ``resetkit eval`` tests: cd-train (its test split is the seen suite part),
cd-eval and if-eval, with the sources of the paper's suite (pipeline/evaluate.py SUITES)."""

from __future__ import annotations

import pyarrow as pa

from resetkit.schemas import EXAMPLES

CD_TRAIN = {"cnn_dailymail": "summarization", "ms_marco": "abstractive_qa", "nq": "extractive_qa"}
CD_EVAL = {"wikisum": "summarization", "searchqa": "extractive_qa", "bioasq": "extractive_qa"}
IF_EVAL = {"alpaca": "open_ended", "vicuna": "open_ended", "koala": "open_ended"}
FACTS = ["The capital of France is Paris.", "Water boils at 100 degrees Celsius at sea level.",
         "Jupiter is the largest planet in the solar system."]


def corpus_rows(sources: dict, n: int, split: str) -> list[dict]:
    rows = []
    for source, task in sources.items():
        for i in range(n):
            fact = FACTS[i % len(FACTS)]
            is_if = task == "open_ended"
            question = None if is_if or task == "summarization" else f"What about fact {i}?"
            gold = "Paris" if task == "extractive_qa" else fact
            rows.append({"id": f"{source}-{i}", "source": source,
                         "objective": "instruction" if is_if else "faithfulness", "task": task, "split": split,
                         "instruction": "Please write a short poem about the sea." if is_if else "Answer.",
                         "question": question, "context": None if is_if else fact,
                         "passages": [] if is_if else [fact], "response": gold, "refs": [gold],
                         "prompt": f"### Instruction: {fact} {question or ''} ### Response:",
                         "template": "alpaca", "meta": "{}"})
    return rows


def write_corpora(store, n: int = 3):
    """cd-train (its test split is the seen suite part), cd-eval and if-eval, n examples per source."""
    for name, sources in (("cd-train", CD_TRAIN), ("cd-eval", CD_EVAL), ("if-eval", IF_EVAL)):
        with store.create(name, builder="test-corpus", config={"n": n}) as w:
            if name == "cd-train":
                w.write("train", pa.Table.from_pylist(corpus_rows(sources, 2, "train"), schema=EXAMPLES))
            w.write("test", pa.Table.from_pylist(corpus_rows(sources, n, "test"), schema=EXAMPLES))

"""Small examples datasets in the EXAMPLES schema for pool tests and benchmarks.

Built directly with ``store.create`` (no corpus builder needed): a mix of open-ended
instructions and context-dependent QA / summarization prompts rendered with the Alpaca
template, like ``reset-seed``.
"""

from __future__ import annotations

import json

import pyarrow as pa

from resetkit.schemas import EXAMPLES

# a few instructions a real instruct model answers briefly (tests/builders/test_pool_realmodel.py)
QUESTIONS = ["What is the capital of France?", "Explain what a noun is.", "Give three tips for staying healthy.",
             "Name two planets."]
TOPICS = ["the sea", "Paris", "water", "Jupiter", "Hamlet", "the cat", "machine learning", "the moon"]


def example_rows(n: int, *, empty: int = 0, context_words: int = 30, split: str = "train") -> list[dict]:
    """``n`` examples (ids ex-0000...), the first ``empty`` of them with an empty prompt."""
    from builders.templates import qa_input, render

    rows = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        kind = ("open_ended", "extractive_qa", "abstractive_qa", "summarization")[i % 4]
        context = " ".join(f"{topic} is number {j} in the list of facts about {topic}." for j in range(
            max(1, context_words // 10)))
        if kind == "open_ended":
            instruction, inp, question, ctx = f"Write a short poem about {topic} ({i}).", None, None, None
        elif kind == "summarization":
            instruction, inp, question, ctx = "Summarize the text in a few sentences.", context, None, context
        else:
            question = f"What is {topic} ({i})?"
            instruction, ctx = "Answer to the question by extracting a specific text span.", context
            inp = qa_input(question, [context])
        prompt = "" if i < empty else render("alpaca", instruction, inp)
        rows.append({"id": f"ex-{i:04d}", "source": "dolly" if kind == "open_ended" else "nq",
                     "objective": "instruction" if kind == "open_ended" else "faithfulness", "task": kind,
                     "split": split, "instruction": instruction, "question": question, "context": ctx,
                     "passages": [ctx] if ctx else [], "response": f"gold {i}", "refs": [f"gold {i}"],
                     "prompt": prompt, "template": "alpaca", "meta": json.dumps({"i": i})})
    return rows


def make_examples(store, n: int = 6, *, name: str = "reset-seed", empty: int = 0, context_words: int = 30,
                  splits=("train",)):
    """Write an examples dataset with ``n`` rows per split; returns its DatasetVersion."""
    with store.create(name, builder="test-examples", config={"n": n, "empty": empty, "cw": context_words,
                                                              "splits": list(splits)}) as w:
        for s in splits:
            rows = example_rows(n, empty=empty, context_words=context_words, split=s)
            if s != splits[0]:
                for r in rows:
                    r["id"] = f"{s}-{r['id']}"
            w.write(s, pa.Table.from_pylist(rows, schema=EXAMPLES), schema=EXAMPLES)
    return w.result


def rendered_examples(store, template: str, questions=QUESTIONS, name="reset-seed"):
    """Open-ended ``questions`` rendered with ``template`` (the real-model pool tests)."""
    from builders.templates import render

    rows = [{"id": f"q{i}", "source": "dolly", "objective": "instruction", "task": "open_ended", "split": "train",
             "instruction": q, "question": None, "context": None, "passages": [], "response": "gold",
             "refs": ["gold"], "prompt": render(template, q), "template": template,
             "meta": json.dumps({"i": i})} for i, q in enumerate(questions)]
    with store.create(name, builder="test-examples", config={"t": template, "q": list(questions)}) as w:
        w.write("train", pa.Table.from_pylist(rows, schema=EXAMPLES), schema=EXAMPLES)
    return w.result

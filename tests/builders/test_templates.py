"""Prompt templates (paper Tables 2, 6, 15) and the CD inputs (Table 3, Tables 9-14)."""

from __future__ import annotations

import pytest

from builders import templates
from builders.corpora import build_corpus, sample_sources
from resetkit.errors import ResetkitError

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
          "helpful, detailed, and polite answers to the user's questions.")


def test_alpaca_with_and_without_input():
    assert templates.render("alpaca", "Do X.", "some input") == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n### Instruction:\nDo X.\n\n"
        "### Input:\nsome input\n\n### Response:")
    assert templates.render("alpaca", "Do X.") == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\nDo X.\n\n### Response:")
    assert templates.render("alpaca", "Do X.", "") == templates.render("alpaca", "Do X.")


def test_vicuna_fastchat_v11_and_paper_variant():
    assert templates.render("vicuna", "Do X.") == f"{SYSTEM} USER: Do X. ASSISTANT:"
    assert templates.render("vicuna", "Do X.", "Passage: p") == f"{SYSTEM} USER: Do X.\nPassage: p ASSISTANT:"
    assert templates.render("vicuna-paper", "Do X.", "Passage: p") == \
        f"{SYSTEM}\n\n### USER: Do X.\nPassage: p\n###ASSISTANT:"


def test_unknown_template_did_you_mean():
    with pytest.raises(ResetkitError, match="Did you mean 'vicuna'"):
        templates.render("vicuan", "x")


def test_qa_input_question_first_one_passage_per_line():
    assert templates.qa_input("who?", ["a b", "c"]) == "Question: who?\nPassage: a b\nPassage: c"


def test_task_instructions_are_the_papers():
    assert templates.TASK_INSTRUCTIONS["extractive_qa"].startswith(
        "Answer to the question by extracting a specific text span from the given passages.")
    assert templates.TASK_INSTRUCTIONS["abstractive_qa"].startswith("Answer the question with well-formed sentences.")
    assert templates.TASK_INSTRUCTIONS["summarization"].startswith("Summarize the text in a few sentences.")


@pytest.mark.parametrize("name", ["alpaca", "vicuna", "vicuna-paper"])
def test_template_recorded_in_rows_card_and_manifest(store, name):
    v = build_corpus(store, "cd-train", sample_sources("cd-train"), template=name)
    rows = v.read("train").to_pylist()
    assert {r["template"] for r in rows} == {name}
    for r in rows:
        model_input = templates.qa_input(r["question"], r["passages"]) if r["question"] else r["context"]
        assert r["prompt"] == templates.render(name, r["instruction"], model_input)
    assert v.manifest["config"]["template"] == name and v.manifest["template"] == name
    card = (v.path / "README.md").read_text()
    assert f"**{name}** template" in card


def test_template_changes_the_version(store):
    a = build_corpus(store, "if-train", sample_sources("if-train"), template="alpaca")
    b = build_corpus(store, "if-train", sample_sources("if-train"), template="vicuna")
    assert a.version != b.version

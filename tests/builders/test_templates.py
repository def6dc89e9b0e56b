"""Prompt templates (paper Tables 2, 6, 15) and the CD inputs (Table 3, Tables 9-14)."""

from __future__ import annotations

import pytest

from builders import templates
from builders.corpora import build_corpus, sample_sources
from resetkit.chat import ChatFormat
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


@pytest.mark.parametrize("name", templates.TEMPLATES.names())
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


# -- the model's own chat template (issue 13 item 2) -------------------------------------------

def test_chat_template_stores_the_user_message_and_has_no_markup():
    assert templates.render("chat", "Do X.") == "Do X."
    assert templates.render("chat", "Do X.", "Passage: p") == "Do X.\nPassage: p"
    assert templates.affixes("chat") == ("", "")
    assert templates.stop_strings("chat") == () and "### Instruction:" in templates.stop_strings("alpaca")
    assert templates.stop_strings("vicuna") == ("USER:", "</s>") and templates.stop_strings(None) == ()


@pytest.fixture(scope="module")
def smol_tok(real_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(real_model)


def test_chat_prompt_with_the_real_models_template(smol_tok):
    p = templates.chat_prompt(smol_tok, "What is 2+2?")
    assert p == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                 "<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
    s = templates.chat_prompt(smol_tok, "What is 2+2?", "Answer in one word.")
    assert s.startswith("<|im_start|>system\nAnswer in one word.<|im_end|>\n<|im_start|>user\n")
    # idempotent: a rendered prompt (a pool's or a selection's prompt column) stays as it is
    assert ChatFormat(smol_tok).is_rendered(p) and not ChatFormat(smol_tok).is_rendered("What is 2+2?")
    assert templates.model_prompt(smol_tok, p, "chat") == p
    assert templates.model_prompt(smol_tok, "What is 2+2?", "chat") == p
    assert templates.model_prompt(smol_tok, "### Instruction: x", "alpaca") == "### Instruction: x"
    # tokenizing the text gives the template's own tokens (no BOS added twice)
    ids = smol_tok.apply_chat_template([{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True,
                                       tokenize=True, return_dict=True)["input_ids"]
    assert smol_tok(p)["input_ids"] == list(ids)


def test_chat_training_example_labels_only_the_assistant_turn(smol_tok):
    chat = ChatFormat(smol_tok, "Be brief.")
    ex = chat.example("What is 2+2?", "Four.")
    ids, labels = ex["input_ids"], ex["labels"]
    n_prompt = len(smol_tok(templates.chat_prompt(smol_tok, "What is 2+2?", "Be brief."))["input_ids"])
    assert labels[:n_prompt] == [-100] * n_prompt
    assert smol_tok.decode([t for t in labels if t != -100]) == "Four.<|im_end|>"
    full = smol_tok.apply_chat_template([{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "What is 2+2?"},
                                         {"role": "assistant", "content": "Four."}], tokenize=False)
    assert smol_tok.decode(ids) == full.rstrip("\n")  # the template's conversation, up to the end of turn
    # a rendered prompt (from a selection) gives the same example
    rendered = templates.chat_prompt(smol_tok, "What is 2+2?", "Be brief.")
    assert ChatFormat(smol_tok).example(rendered, "Four.")["input_ids"] == ids
    assert chat.example("What is 2+2?", "Four.", max_length=n_prompt) is None
    cut = chat.example("What is 2+2?", "Four.", max_length=n_prompt + 1)
    assert cut["truncated"] and cut["length"] == n_prompt + 1


def test_a_tokenizer_without_chat_template_is_a_clear_error(tiny_llama):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    with pytest.raises(ResetkitError, match="has no chat template: use a paper template"):
        templates.chat_prompt(tok, "x")

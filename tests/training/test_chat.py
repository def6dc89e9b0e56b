"""Training in the model's own chat template: exactly the assistant turn is in the loss, and the
prompt tokens are the ones generation saw (the pool's rendering)."""

from __future__ import annotations

import pytest

from resetkit.errors import ResetkitError

SYSTEM = "You are a careful assistant."
MESSAGE = "What is the capital of France?"
RESPONSE = "The capital of France is Paris."


@pytest.fixture(scope="module")
def tok(real_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(real_model)


def test_only_the_assistant_turn_is_trained(tok):
    from resetkit.chat import IGNORE_INDEX, ChatFormat

    f = ChatFormat(tok, SYSTEM).example(MESSAGE, RESPONSE, max_length=512)
    ids, labels = f["input_ids"], f["labels"]
    first = next(i for i, t in enumerate(labels) if t != IGNORE_INDEX)
    assert all(t == IGNORE_INDEX for t in labels[:first])
    assert labels[first:] == ids[first:]                      # everything after: the assistant turn
    assert tok.decode(ids[first:]) == RESPONSE + "<|im_end|>"  # the answer and its end of turn, nothing else
    shown = tok.decode(ids[:first])
    # system prompt, user message and role markers are context only
    assert shown.endswith("<|im_start|>assistant\n") and SYSTEM in shown and MESSAGE in shown
    assert f["length"] == len(ids) and not f["truncated"]


def test_prompt_tokens_equal_what_the_pool_fed_the_model(tok):
    from builders.templates import model_prompt
    from resetkit.chat import ChatFormat

    chat = ChatFormat(tok, SYSTEM)
    pool_text = model_prompt(tok, MESSAGE, "chat", SYSTEM)
    assert chat.prompt(MESSAGE) == pool_text
    assert chat.prompt(pool_text) == pool_text               # a selection's rendered prompt is kept as is
    from_message = chat.example(MESSAGE, RESPONSE, 512)
    from_rendered = ChatFormat(tok).example(pool_text, RESPONSE, 512)   # no system prompt needed: it is in the text
    assert from_message == from_rendered
    n = len(tok(pool_text)["input_ids"])
    assert from_message["input_ids"][:n] == tok(pool_text)["input_ids"]


def test_truncation_and_nothing_left(tok):
    from resetkit.chat import IGNORE_INDEX, ChatFormat

    chat = ChatFormat(tok)
    n_prompt = len(tok(chat.prompt(MESSAGE))["input_ids"])
    cut = chat.example(MESSAGE, RESPONSE, max_length=n_prompt + 2)
    assert cut["truncated"] and sum(t != IGNORE_INDEX for t in cut["labels"]) == 2
    assert chat.example(MESSAGE, RESPONSE, max_length=n_prompt) is None


def test_auto_uses_the_rows_template(tok):
    from training.sft import IGNORE_INDEX, tokenize_rows

    rows = [{"prompt": MESSAGE, "response": RESPONSE, "template": "chat"},
            {"prompt": "### Instruction:\nName a colour.\n\n### Response:\n", "response": "Blue.",
             "template": "alpaca"}]
    feats, stats = tokenize_rows(tok, rows, 512, template="auto")
    assert stats["chat_template_rows"] == 1 and stats["examples"] == 2
    trained = [tok.decode([t for t in f["labels"] if t != IGNORE_INDEX]) for f in feats]
    assert trained == [RESPONSE + "<|im_end|>", "Blue." + tok.eos_token]
    _, plain = tokenize_rows(tok, rows, 512, template="plain")
    assert plain["chat_template_rows"] == 0
    _, chat = tokenize_rows(tok, rows, 512, template="chat")
    assert chat["chat_template_rows"] == 2


def test_no_chat_template_and_bad_setting(tiny_llama):
    from transformers import AutoTokenizer

    from training.sft import SFTConfig, check_config, tokenize_rows

    tiny = AutoTokenizer.from_pretrained(tiny_llama)
    with pytest.raises(ResetkitError, match="has no chat template: .*--set template=plain"):
        tokenize_rows(tiny, [{"prompt": "p", "response": "r"}], 64, template="chat")
    feats, _ = tokenize_rows(tiny, [{"prompt": "p", "response": "r", "template": "chat"}], 64, template="plain")
    assert len(feats) == 1
    with pytest.raises(ResetkitError, match="template must be one of auto, chat, plain"):
        check_config(SFTConfig(data=("x",), template="vicuna"))

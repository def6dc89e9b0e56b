"""A real fine-tune on CPU: tiny random Llama, DeepSpeed ZeRO-3 (gloo, one rank), HF Trainer.

The runs go through the real CLI in a subprocess (see helpers.py for why).  Settings are
scaled down with --set: 8 steps, effective batch 4 made of 2 x 2 gradient accumulation, save and
evaluate every 2 steps, max_length 64, a high learning rate so the loss visibly falls on the
repeated tiny batch.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from .helpers import EXAMPLES, run_train

TINY = ["--set", "max_steps=8", "--set", "save_steps=2", "--set", "eval_steps=2", "--set", "logging_steps=1",
        "--set", "batch_size=4", "--set", "per_device_batch_size=2", "--set", "learning_rate=1e-3",
        "--set", "max_length=64", "--set", "warmup_ratio=0"]


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _state(ckpt: Path) -> dict:
    return json.loads((ckpt / "trainer_state.json").read_text())


@pytest.fixture(scope="module")
def trained_run(train_store, tiny_llama, tmp_path_factory):
    """The run as a user sees it: progress bar on, Python warnings not silenced."""
    out = tmp_path_factory.mktemp("reset-run") / "out"
    proc = run_train(["reset", "--model", tiny_llama, "--data", "sel", "--store", train_store.root,
                      "--output", out, *TINY], RESETKIT_PROGRESS="1", PYTHONWARNINGS="default")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return out, proc


@pytest.fixture(scope="module")
def trained(trained_run):
    return trained_run[0]


# -- tokenisation (no training) -------------------------------------------------------------------

def test_prompt_tokens_are_masked_and_eos_appended(tiny_llama):
    from transformers import AutoTokenizer

    from training.sft import IGNORE_INDEX, tokenize_example

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    prompt, response = EXAMPLES[0]
    f = tokenize_example(tok, prompt, response, max_length=128)
    n_prompt = len(tok(prompt)["input_ids"])
    n_resp = len(tok(response, add_special_tokens=False)["input_ids"])
    assert f["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert f["labels"][n_prompt:] == f["input_ids"][n_prompt:]
    assert len(f["input_ids"]) == n_prompt + n_resp + 1 and f["input_ids"][-1] == tok.eos_token_id
    assert tok.decode(f["input_ids"][n_prompt:-1]) == response
    assert f["input_ids"][0] == tok.bos_token_id and not f["truncated"]
    # too long: cut on the right, prompt still masked; nothing left to learn -> dropped
    cut = tokenize_example(tok, prompt, response, max_length=n_prompt + 2)
    assert cut["truncated"] and len(cut["input_ids"]) == n_prompt + 2
    assert [t != IGNORE_INDEX for t in cut["labels"]].count(True) == 2
    assert tokenize_example(tok, prompt, response, max_length=n_prompt) is None


def test_eval_split_or_seeded_holdout(train_store):
    from training.sft import SFTConfig, split_rows

    cfg = SFTConfig(data=("x",), seed=3, eval_fraction=0.25)
    train, ev, src = split_rows(train_store.resolve("cd-train"), cfg)
    assert len(train) == 8 and len(ev) == 4 and "split validation" in src
    train, ev, src = split_rows(train_store.resolve("sel"), cfg)
    assert len(train) == 48 and len(ev) == 16 and "held out" in src
    again = split_rows(train_store.resolve("sel"), cfg)
    assert again[1] == ev
    other = split_rows(train_store.resolve("sel"), SFTConfig(data=("x",), seed=4, eval_fraction=0.25))
    assert other[1] != ev or other[0] != train


def test_upsample_to_largest():
    from training.sft import upsample_to

    small = [{"i": i} for i in range(3)]
    up = upsample_to(small, 8, seed=0)
    assert len(up) == 8 and up[:6] == small * 2 and all(r in small for r in up[6:])
    assert upsample_to(small, 2, seed=0) == small


# -- the real run -------------------------------------------------------------------------------------

def test_checkpoints_at_the_configured_interval(trained):
    ckpts = sorted(int(p.name.split("-")[1]) for p in trained.glob("checkpoint-*"))
    assert ckpts == [2, 4, 6, 8]
    for step in ckpts:
        ck = trained / f"checkpoint-{step}"
        assert _state(ck)["global_step"] == step
        assert (ck / "model.safetensors").is_file()           # ZeRO-3 weights gathered on save
        assert any(ck.glob("global_step*"))                     # DeepSpeed's own state, for --resume


def test_console_is_quiet_and_the_log_has_the_rest(trained_run):
    out, proc = trained_run
    log = out / "resetkit-train.log"
    assert f"[resetkit] log: {log}" in proc.stdout and "done: 8 steps" in proc.stdout
    console = proc.stdout + proc.stderr
    for noise in ("Setting accelerator", "FutureWarning", "deprecated", "OMP_NUM_THREADS",
                  "Gradient accumulation steps mismatch", "Writing model shards", "{'loss'", "[WARNING]",
                  "warning:"):
        assert noise not in console, (noise, console[-3000:])
    # one progress bar (training steps) and one line per evaluation
    bars = {line.split(":")[0].strip() for line in proc.stderr.replace("\r", "\n").splitlines() if "%|" in line}
    assert bars == {"train"}, bars
    assert [ln for ln in console.splitlines() if ln.startswith("step ")] == [
        ln for ln in console.splitlines() if ln.startswith("step ") and "eval loss" in ln]
    assert sum(ln.startswith("step ") for ln in console.splitlines()) == 4
    text = log.read_text()
    assert "Setting accelerator to CPU" in text             # DeepSpeed's accelerator notice
    assert "is deprecated" in text and "FutureWarning" in text
    assert "{'loss'" in text and "step 8: eval loss" in text


def test_loss_finite_and_falling(trained):
    history = _state(trained / "checkpoint-8")["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == 8 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-2:]) / 2 < losses[0] - 0.5, losses
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    assert len(evals) == 4 and all(math.isfinite(x) for x in evals)
    assert all("eval_perplexity" in h for h in history if "eval_loss" in h)


def test_parameters_changed(trained, tiny_llama):
    import torch

    before, after = _weights(Path(tiny_llama)), _weights(trained)
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k].to(before[k].dtype))]
    assert len(changed) >= len(before) // 2, f"only {len(changed)} of {len(before)} tensors changed"
    assert all(torch.isfinite(t).all() for t in after.values())


def test_best_checkpoint_picked_by_eval_loss(trained):
    import torch

    state = _state(trained / "checkpoint-8")
    evals = {h["step"]: h["eval_loss"] for h in state["log_history"] if "eval_loss" in h}
    best_step = min(evals, key=evals.get)
    assert Path(state["best_model_checkpoint"]).name == f"checkpoint-{best_step}"
    results = json.loads((trained / "training_results.json").read_text())
    assert results["best_eval_loss"] == pytest.approx(evals[best_step])
    # the folder's model is the best checkpoint's, and evaluating it gives the best loss again
    final, best = _weights(trained), _weights(trained / f"checkpoint-{best_step}")
    assert all(torch.equal(final[k], best[k]) for k in final)
    assert results["final_eval_loss"] == pytest.approx(evals[best_step], rel=1e-4)
    assert results["deepspeed_zero_stage"] == 3 and results["gradient_accumulation_steps"] == 2
    tok = results["data"]["train_tokens"]
    assert 0 < tok["response_tokens"] < tok["tokens"]     # the prompt is not in the loss


def test_model_card_lineage(trained, train_store, tiny_llama):
    ref = train_store.resolve("sel").ref
    card = (trained / "README.md").read_text()
    assert f"`{ref}`" in card and f"Base model: `{tiny_llama}`" in card
    assert "checkpoint-" in card and "ZeRO stage 3" in card
    plan = yaml.safe_load((trained / "resetkit-train.yaml").read_text())
    assert plan["stages"][0]["config"]["data"] == [ref]
    assert plan["stages"][0]["config"]["learning_rate"] == 1e-3       # the --set override, resolved
    assert (trained / "tokenizer.json").is_file() and (trained / "config.json").is_file()


def test_resume_continues_from_the_last_checkpoint(trained, train_store, tiny_llama, tmp_path):
    # an interrupted run: checkpoints 2 and 4 were written, then the process died
    out = tmp_path / "out"
    shutil.copytree(trained, out, ignore=shutil.ignore_patterns("checkpoint-6", "checkpoint-8"))
    for name in ("README.md", "training_results.json", "model.safetensors"):
        (out / name).unlink()
    for ck in out.glob("checkpoint-*"):    # paths inside trainer_state point at the original folder
        state = _state(ck)
        state["best_model_checkpoint"] = str(out / Path(state["best_model_checkpoint"]).name)
        (ck / "trainer_state.json").write_text(json.dumps(state))
    plan = out / "resetkit-train.yaml"
    plan.write_text(plan.read_text().replace(str(trained), str(out)))
    args = ["reset", "--model", tiny_llama, "--data", "sel", "--store", train_store.root, "--output", out, *TINY]
    again = run_train(args)
    assert again.returncode != 0 and "--resume" in again.stderr        # no silent restart over a run
    proc = run_train([*args, "--resume"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((out / "training_results.json").read_text())
    assert Path(results["resumed_from"]).name == "checkpoint-4" and results["global_step"] == 8
    assert sorted(p.name for p in out.glob("checkpoint-*")) == [f"checkpoint-{s}" for s in (2, 4, 6, 8)]
    # the same data order and RNG: the resumed steps reproduce the uninterrupted run's losses
    done = {h["step"]: h["loss"] for h in _state(trained / "checkpoint-8")["log_history"] if "loss" in h}
    resumed = {h["step"]: h["loss"] for h in _state(out / "checkpoint-8")["log_history"] if "loss" in h}
    for step in (5, 6, 7, 8):
        assert resumed[step] == pytest.approx(done[step], rel=1e-3, abs=1e-3)
    assert "checkpoint-4" in (out / "README.md").read_text()


def test_two_stage_run_starts_stage_two_from_stage_one(train_store, tiny_llama, tmp_path):
    import torch

    out = tmp_path / "two"
    proc = run_train(["cd-then-if", "--model", tiny_llama, "--store", train_store.root, "--output", out,
                      "--set", "max_steps=2", "--set", "save_steps=2", "--set", "eval_steps=2",
                      "--set", "batch_size=4", "--set", "max_length=64", "--set", "learning_rate=1e-3",
                      "--deepspeed", "zero2"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    one, two = out / "stage1-cd", out / "stage2-if"
    plan = yaml.safe_load((out / "resetkit-train.yaml").read_text())
    assert plan["stages"][1]["config"]["model"] == str(one)
    r1 = json.loads((one / "training_results.json").read_text())
    r2 = json.loads((two / "training_results.json").read_text())
    assert r1["deepspeed_zero_stage"] == r2["deepspeed_zero_stage"] == 2
    w0, w1, w2 = _weights(Path(tiny_llama)), _weights(one), _weights(two)
    assert any(not torch.equal(w0[k], w1[k]) for k in w0) and any(not torch.equal(w1[k], w2[k]) for k in w1)
    card = (out / "README.md").read_text()
    assert train_store.resolve("cd-train").ref in card and train_store.resolve("if-train").ref in card
    assert "best checkpoint of stage `cd`" in card
    # resuming a finished run skips its finished stages
    again = run_train(["cd-then-if", "--model", tiny_llama, "--store", train_store.root, "--output", out,
                       "--set", "max_steps=2", "--set", "save_steps=2", "--set", "eval_steps=2",
                       "--set", "batch_size=4", "--set", "max_length=64", "--set", "learning_rate=1e-3",
                       "--deepspeed", "zero2", "--resume"])
    assert again.returncode == 0 and "nothing left to do" in again.stdout, again.stderr[-2000:]


@pytest.mark.gpu
def test_bf16_run_on_gpu(train_store, tiny_llama, tmp_path):
    """The same fine-tune in bf16 on CUDA (runs where a GPU is present)."""
    out = tmp_path / "gpu"
    proc = run_train(["reset", "--model", tiny_llama, "--data", "sel", "--store", train_store.root,
                      "--output", out, *TINY, "--set", "precision=bf16"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((out / "training_results.json").read_text())
    assert results["device"] == "cuda" and results["precision"] == "bf16"
    losses = [h["loss"] for h in _state(out / "checkpoint-8")["log_history"] if "loss" in h]
    assert all(math.isfinite(x) for x in losses) and sum(losses[-2:]) / 2 < losses[0] - 0.5
    evals = {h["step"]: h["eval_loss"] for h in _state(out / "checkpoint-8")["log_history"] if "eval_loss" in h}
    assert results["best_model_checkpoint"].endswith(f"checkpoint-{min(evals, key=evals.get)}")
    assert sorted(p.name for p in out.glob("checkpoint-*")) == [f"checkpoint-{s}" for s in (2, 4, 6, 8)]
    assert train_store.resolve("sel").ref in (out / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("ds", ["zero3-offload", "zero2-offload"])
def test_offload_configs_train(ds, train_store, tiny_llama, tmp_path):
    """CPU-offload variants (slow: DeepSpeed compiles its CPU Adam, ~1-4 min, on first use)."""
    out = tmp_path / ds
    proc = run_train(["reset", "--model", tiny_llama, "--data", "sel", "--store", train_store.root,
                      "--output", out, "--deepspeed", ds, "--set", "max_steps=2", "--set", "batch_size=4",
                      "--set", "max_length=64"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((out / "training_results.json").read_text())
    assert results["deepspeed_zero_stage"] == int(ds[4]) and math.isfinite(results["final_eval_loss"])

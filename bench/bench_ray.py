"""Benchmark the Ray engine (issue 8) against the local engine, in the same run.

1. Pool: the ``paper`` grid over N reset-seed-like examples with a tiny random Llama
   (transformers on CPU): ``run_pool`` with ``engine="local"`` vs ``engine="ray"`` (an
   ActorPool of model-holding actors, 1 CPU each).  Same version id and table checked.
2. Judges: span, ngram, em, rouge and SummaC-ZS (tiny random NLI model) on that pool, local
   vs Ray.  The LLM judge is left out: it runs in the driver under both engines.
3. Start-up: ``ray.init`` on this machine, an ActorPool of 2 trivial actors answering one
   call each, and a Ray Data ``map_batches`` pipeline with an actor class over 2 rows
   (why the engine uses actors rather than Ray Data).

The ratio is Ray wall time / local wall time for the stage call (Ray already started; its
start-up is reported separately).  This machine has 2 cores, so Ray can only add overhead
here: the point is to measure that overhead, not a speedup.  GPU (vLLM on Ray) is not run:
there is no GPU here.

Run:  .venv/bin/python bench/bench_ray.py [--quick]     (data and stores under bench/data/ray/)
"""

from __future__ import annotations

import argparse
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


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def quiet_ray_data():
    import logging

    for name in ("ray.data", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)


def bench_startup() -> dict:
    from resetkit.ray_engine import connect

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
    from builders.pool import PoolConfig, run_pool
    from tests.helpers.pool_examples import make_examples

    out = {}
    versions = {}
    for engine in ("local", "ray"):
        store = fresh_store(f"pool-{engine}")
        make_examples(store, n, context_words=60)
        cfg = PoolConfig(model=str(llama), max_new_tokens=new_tokens, shard_examples=max(1, n // 8),
                         batch_size=64, engine=engine)
        pool, secs = timed(lambda: run_pool(store, "reset-seed", cfg, progress=False))
        versions[engine] = pool
        out[engine] = {"seconds": round(secs, 2), "candidates": pool.manifest["counts"]["candidates"],
                       "cand_per_s": round(pool.manifest["counts"]["candidates"] / secs, 1)}
    a, b = versions["local"], versions["ray"]
    out["identical"] = a.version == b.version and a.read().equals(b.read())
    out["ratio_ray_over_local"] = round(out["ray"]["seconds"] / out["local"]["seconds"], 2)
    return out


def bench_judges(nli) -> dict:
    from judging.judge import JudgeConfig, run_judges

    out, versions = {}, {}
    judges = ["span", "ngram", "em", "rouge", "summac"]
    for engine in ("local", "ray"):
        store = fresh_store(f"judge-{engine}")
        shutil.copytree(DATA / "pool-local" / "reset-seed", store.root / "reset-seed")
        shutil.copytree(DATA / "pool-local" / "pool", store.root / "pool")
        cfg = JudgeConfig(nli_model=str(nli))
        v, secs = timed(lambda: run_judges(store, "pool", judges, cfg, progress=False, engine=engine))
        versions[engine] = v
        out[engine] = {"seconds": round(secs, 2), "rows": v.num_rows()["train"],
                       "per_judge_s": {k: s["seconds"] for k, s in v.manifest["judge_stats"].items()}}
    a, b = versions["local"], versions["ray"]
    out["identical"] = a.version == b.version and a.read().equals(b.read())
    out["ratio_ray_over_local"] = round(out["ray"]["seconds"] / out["local"]["seconds"], 2)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="40 examples instead of 160")
    ap.add_argument("--examples", type=int, default=None)
    ap.add_argument("--new-tokens", type=int, default=32)
    args = ap.parse_args()
    n = args.examples or (40 if args.quick else 160)
    DATA.mkdir(parents=True, exist_ok=True)
    llama, nli = models()
    result = {"examples": n, "new_tokens": args.new_tokens, "load_before": os.getloadavg()[0]}
    result["startup"] = bench_startup()
    result["pool"] = bench_pool(n, llama, args.new_tokens)
    result["judges"] = bench_judges(nli)
    result["load_after"] = os.getloadavg()[0]
    import ray

    ray.shutdown()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Shared helpers of the Ray engine (``--engine ray``; DESIGN.md §8).

The heavy stages (pool generation, the model-based judges) can run their work on a Ray
cluster: actors holding a loaded model process whole shards and write their results
through the same atomic store paths as the local engine.  This module holds what every
stage needs for that, and nothing stage-specific:

    ENGINES                         ("local", "ray")
    check_engine(engine, address)   validates the pair; fails fast when ray is not installed
    connect(address=None)           ray.init(...) once per process -> the ray module
    runtime_env()                   env vars every worker needs (offline Hub, thread caps...)
    worker_count(ray, per_worker)   how many model-holding actors fit the cluster
    remote_options(...)             max_restarts / max_task_retries for fault tolerance

Ray is an optional extra: nothing here imports it at module level, and ``connect``
raises the one-line ``pip install 'resetkit[ray]'`` error when it is missing.
"""

from __future__ import annotations

import os

from .errors import ResetkitError, require

ENGINES = ("local", "ray")
# environment variables copied from the driver into every Ray worker (when set)
FORWARDED_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME",
                 "HF_HUB_CACHE", "TOKENIZERS_PARALLELISM", "NLTK_DATA", "VLLM_CPU_KVCACHE_SPACE",
                 "VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_CACHE_ROOT", "RESETKIT_STORE",
                 "RESETKIT_RAY_TEST_CRASH")
# how often a killed actor is restarted and its shard retried before the run gives up
MAX_RESTARTS = 3


def check_engine(engine: str, address: str | None) -> str:
    """Validate ``--engine`` / ``--ray-address``; returns the engine name."""
    engine = (engine or "local").lower()
    if engine not in ENGINES:
        raise ResetkitError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if address and engine != "ray":
        raise ResetkitError("--ray-address is only for --engine ray")
    if engine == "ray" and not _installed("ray"):
        require("ray", "ray", "the Ray engine")  # raises the one-line install message
    return engine


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (fail fast, stay light)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ValueError, AttributeError, ImportError):
        return False


def runtime_env() -> dict:
    """Ray ``runtime_env`` for the workers: the driver's offline/cache settings.

    The code itself is not shipped: every node runs the same installed resetkit (the
    cluster image), and reads models and the store from the same shared paths.
    """
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return {"env_vars": env}


def connect(address: str | None = None, *, num_cpus: int | None = None):
    """Connect to Ray once per process and return the ``ray`` module.

    address: ``None`` -> $RAY_ADDRESS if set, else a local instance on this machine
    (``num_cpus`` of it); "auto" or "HOST:PORT" or "ray://HOST:10001" -> that cluster.
    If this process is already connected (e.g. a test fixture called ``ray.init``),
    the existing connection is used as it is.
    """
    ray = require("ray", "ray", "the Ray engine")
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs = {"runtime_env": runtime_env(), "include_dashboard": False, "log_to_driver": True,
              "logging_level": "WARNING"}
    if address is None:
        kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local instance"
        raise ResetkitError(f"cannot start Ray ({where}): {str(exc).splitlines()[0]}") from exc
    return ray


def worker_count(ray, *, num_cpus: float = 1.0, num_gpus: float = 0.0, wanted: int | None = None,
                 work_items: int | None = None) -> int:
    """Actors to start: ``wanted`` if given, else as many as the cluster's CPUs/GPUs hold,
    never more than there are work items (shards), at least 1."""
    if wanted:
        n = int(wanted)
    else:
        res = ray.cluster_resources()
        fits = []
        if num_gpus:
            fits.append(int(res.get("GPU", 0) // num_gpus))
        if num_cpus:
            fits.append(int(res.get("CPU", 1) // num_cpus))
        n = max(1, min(fits) if fits else 1)
    if work_items is not None:
        n = min(n, max(1, work_items))
    return max(1, n)


def remote_options(*, num_cpus: float = 1.0, num_gpus: float = 0.0) -> dict:
    """Actor options: resources plus restarts, so an actor killed mid-shard (node lost,
    OOM, preemption) is restarted and its shard retried; shards are keyed and written
    atomically, so a retry neither loses nor duplicates rows."""
    return {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_restarts": MAX_RESTARTS,
            "max_task_retries": MAX_RESTARTS, "runtime_env": runtime_env()}


def crash_hook(tag: str) -> None:
    """Test-only fault injection: with $RESETKIT_RAY_TEST_CRASH=DIR set, the first worker
    call of each ``tag`` kills its own process (os._exit) after leaving a marker in DIR,
    so the tests can check that Ray restarts the actor and retries the shard.  A no-op
    unless that variable is set."""
    folder = os.environ.get("RESETKIT_RAY_TEST_CRASH")
    if not folder:
        return
    marker = os.path.join(folder, f"crashed-{tag}")
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(1)

"""The one execution engine of the sharded stages (``--engine local|ray``; DESIGN.md §8).

    run_shards(jobs, worker_factory, engine="local", *, address=None, workers=None,
               num_cpus=1.0, num_gpus=0.0) -> ShardRun
        iterate it for (key, result) as shards finish; .collect() -> {key: result} in job order

A stage (the pool, the model-holding judges) cuts its work into keyed jobs ``(key,
payload)`` and passes a *worker factory*: a picklable zero-argument callable returning an
object with ``run(payload) -> result`` (and optionally ``close()``), e.g.
``functools.partial(PoolWorker.load, "transformers", model, options)``.  The engine never
imports a stage: what a worker does is the stage's business.

- ``engine="local"``: one worker, built on the first job in this process, runs the jobs
  in order (``jobs`` may be a generator: it is consumed one job at a time).
- ``engine="ray"``: ``workers`` actors (default: as many as the cluster's CPUs / GPUs
  hold, never more than there are jobs), each building its worker once (the model loads
  once per actor) and running one job at a time.  The jobs are dealt round robin when the
  ShardRun is created, so the cluster works while the driver does something else (the
  judges' LLM judge); results come back as they finish.  An actor killed mid-job (node
  lost, OOM, preemption) is restarted up to ``MAX_RESTARTS`` times and its job retried.
  A worker's exception ends the run as a one-line ResetkitError.

Workers return their results to the driver and write nothing themselves: a retried job
cannot leave a half-written or duplicated file, and the stage writes each finished
shard atomically where it always does (``resetkit.shards``).

Also here: ``ENGINES`` / ``check_engine`` (validates --engine / --ray-address, fails fast
when ray is missing), ``connect`` (ray.init once per process), ``runtime_env`` (the env
vars every worker needs), ``worker_count``.  Ray is an optional extra: nothing here
imports it at module level.
"""

from __future__ import annotations

import os
from typing import Callable, Hashable, Iterable, Iterator

from .errors import ResetkitError, require
from .threads import THREAD_VARS

ENGINES = ("local", "ray")
# environment variables copied from the driver into every Ray worker (when set)
FORWARDED_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME",
                 "HF_HUB_CACHE", "TOKENIZERS_PARALLELISM", "NLTK_DATA", "VLLM_CPU_KVCACHE_SPACE",
                 "VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_CACHE_ROOT")
# how often a killed actor is restarted and its job retried before the run gives up
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
    cluster image) and reads the models from the same paths (shared storage); workers
    never touch the store (the driver writes every file).
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


def cluster_gpus(address: str | None) -> float:
    """GPUs of the cluster ``run_shards(engine="ray", address=...)`` runs on (connects)."""
    return connect(address).cluster_resources().get("GPU", 0)


class WorkerHost:
    """Ray actor body: builds the stage's worker once, then runs one job per call."""

    def __init__(self, worker_factory: Callable):
        self.worker = worker_factory()

    def run(self, key, payload):
        """(key, the worker's result, the id of the node that ran it)."""
        import ray

        return key, self.worker.run(payload), ray.get_runtime_context().get_node_id()


def _one_line(exc: BaseException) -> str:
    """One line saying why a job failed: the worker's own error (Ray wraps it as ``cause``);
    a worker that could not be built (Ray keeps only the traceback text of its __init__);
    a worker process that kept dying."""
    cause = getattr(exc, "cause", None) or exc
    if isinstance(cause, ResetkitError):
        return cause.message.strip().splitlines()[0]
    if getattr(cause, "_actor_init_failed", False):
        lines = [ln.strip() for ln in str(getattr(cause, "error_msg", cause)).splitlines() if ln.strip()]
        name, _, text = lines[-1].partition(": ")
        name = name.rsplit(".", 1)[-1]
        return "a worker could not start: " + (text if name == "ResetkitError" else f"{name}: {text}")
    msg = (f"{type(cause).__name__}: {cause}".strip().splitlines() or ["worker failed"])[0]
    if type(cause).__name__ in ("ActorDiedError", "RayActorError", "ActorUnavailableError"):
        return (f"a worker died and was restarted {MAX_RESTARTS} times without finishing its shard (killed, "
                f"out of memory, or its node was lost): {msg}")
    return msg


class ShardRun:
    """The jobs of one ``run_shards`` call, running (Ray) or to run (local).

    Iterate for ``(key, result)`` as jobs finish; ``collect()`` for ``{key: result}`` in
    job order.  ``nodes`` maps each finished key to the node that ran it (Ray only),
    ``workers`` is the number of workers used.  Close it (or use ``with``) to stop the
    workers; iterating to the end closes it too."""

    def __init__(self, jobs: Iterable[tuple], worker_factory: Callable, engine: str, address, workers,
                 num_cpus, num_gpus):
        self.factory, self.engine = worker_factory, check_engine(engine, address)
        self.jobs = jobs  # local: consumed lazily, one job at a time
        self.nodes: dict[Hashable, str] = {}
        self.workers = 0
        self._worker = None
        self._actors: list = []
        self._refs: list = []
        self._ray = None
        if self.engine == "ray":
            self.jobs = list(jobs)
            keys = [k for k, _ in self.jobs]
            if len(set(keys)) != len(keys):
                raise ResetkitError("run_shards: job keys must be unique")
            if self.jobs:
                self._submit(address, workers, num_cpus, num_gpus)

    def _submit(self, address, workers, num_cpus, num_gpus):
        self._ray = ray = connect(address)
        n = worker_count(ray, num_cpus=num_cpus, num_gpus=num_gpus, wanted=workers, work_items=len(self.jobs))
        # an actor computes with as many threads as CPUs it holds, whatever the driver's own
        # thread settings (which a local Ray instance would otherwise hand down)
        env = runtime_env()
        threads = str(max(1, int(num_cpus)))
        env["env_vars"].update({var: threads for var in (*THREAD_VARS, "RESETKIT_THREADS")})
        cls = ray.remote(WorkerHost).options(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=MAX_RESTARTS,
                                             max_task_retries=MAX_RESTARTS, runtime_env=env)
        self._actors = [cls.remote(self.factory) for _ in range(n)]
        self.workers = n
        self._refs = [self._actors[i % n].run.remote(key, payload) for i, (key, payload) in enumerate(self.jobs)]

    def __iter__(self) -> Iterator[tuple]:
        try:
            yield from (self._iter_ray() if self._ray is not None else self._iter_local())
        finally:
            self.close()

    def _iter_local(self):
        for key, payload in self.jobs:
            if self._worker is None:
                self._worker = self.factory()
                self.workers = 1
            yield key, self._worker.run(payload)

    def _iter_ray(self):
        pending = list(self._refs)
        while pending:
            ready, pending = self._ray.wait(pending, num_returns=1)
            try:
                key, result, node = self._ray.get(ready[0])
            except Exception as exc:  # noqa: BLE001 - a Ray error wraps the worker's exception
                raise ResetkitError(_one_line(exc)) from exc
            self.nodes[key] = node
            yield key, result

    def collect(self) -> dict:
        """Every job's result, ``{key: result}`` in job order."""
        if self._ray is None:
            return dict(self)  # the local engine runs them in job order
        got = dict(self)
        return {k: got[k] for k, _ in self.jobs}

    def close(self) -> None:
        if self._worker is not None and hasattr(self._worker, "close"):
            self._worker.close()
        self._worker = None
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors, self._refs = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def run_shards(jobs: Iterable[tuple], worker_factory: Callable, engine: str = "local", *,
               address: str | None = None, workers: int | None = None, num_cpus: float = 1.0,
               num_gpus: float = 0.0) -> ShardRun:
    """Run keyed jobs ``(key, payload)`` on workers made by ``worker_factory`` (see the
    module docstring).  With ``engine="ray"`` the actors start and the jobs are submitted
    before this returns."""
    return ShardRun(jobs, worker_factory, engine, address, workers, num_cpus, num_gpus)

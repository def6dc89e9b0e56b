"""The Ray engine of the candidate pool (``resetkit pool --engine ray``; DESIGN.md §8).

    generate_on_ray(jobs, cfg, workdir, done, bar, total) -> requests generated

``builders.pool.run_pool`` plans everything on the driver exactly as for the local engine
(grid, candidate ids, which candidates are still missing, shard boundaries) and hands the
missing shards here.  A ``ray.util.ActorPool`` of ``PoolWorker`` actors, each holding one
loaded backend (a transformers model on its CPUs or GPU, or a vLLM engine per GPU),
takes whole shards: an actor generates a shard's requests and writes the shard itself
with ``builders.pool.write_shard`` (``write_parquet_atomic`` under
``store.workdir(name, version)``), the same file the local engine would write.  So:

- resume works the same way for both engines (and across them): a rerun reads the
  finished shards and plans only what is missing;
- an actor killed mid-shard (node lost, OOM, a test hook) is restarted by Ray
  (``max_restarts``) and the shard retried (``max_task_retries``); its file is either
  complete or absent, and keyed by its candidate ids, so nothing is lost or duplicated;
- results are identical to the local engine: a shard's requests, and therefore the
  backend's deterministic batches and per-candidate seeds, do not depend on the engine.

Why actors and not Ray Data ``map_batches``: the unit of resume is the keyed shard, which
an actor call maps onto one-to-one, and an ActorPool starts in ~1-3 s here against ~20 s
for a Ray Data pipeline (bench/results/ray.md).  Workers need the model folder and the
store at the same paths as the driver (shared storage; docs/ray.md).
"""

from __future__ import annotations

from resetkit.errors import ResetkitError


class PoolWorker:
    """Actor body: one backend, loaded once, generating and writing whole shards."""

    def __init__(self, backend: str, model: str, options: dict):
        from .backends import load_backend

        self.backend = load_backend(backend, model, **options)
        self.backend.check()

    def run_shard(self, job, workdir: str) -> tuple[int, int, list[str]]:
        """Generate ``job`` (a builders.pool.ShardJob) and write its shard; returns
        (job.start, requests generated, ids of the candidates generated without error)."""
        from resetkit.ray_engine import crash_hook

        from .pool import write_shard

        crash_hook("pool")
        results = self.backend.generate(job.requests)
        return job.start, len(job.requests), write_shard(workdir, job, results)

    def close(self) -> None:
        self.backend.close()


def _gpus_per_worker(cfg, ray) -> float:
    if cfg.worker_gpus is not None:
        return float(cfg.worker_gpus)
    has_gpu = ray.cluster_resources().get("GPU", 0) >= 1
    if cfg.backend == "vllm":
        return 1.0 if has_gpu else 0.0
    from .pool import backend_options

    device = backend_options(cfg).get("device", "auto")
    return 1.0 if has_gpu and (device == "auto" or device.startswith("cuda")) else 0.0


def generate_on_ray(jobs: list, cfg, model: str, workdir, done: set, bar, total: int) -> int:
    """Run ``jobs`` (ShardJobs) on a pool of actors holding ``model`` (the driver's resolved
    model id or absolute folder); updates ``done`` (ids generated without error) and ``bar``
    as shards finish.  Returns the number of requests generated."""
    if not jobs:
        return 0
    from resetkit.ray_engine import connect, remote_options, worker_count

    from .pool import backend_options

    ray = connect(cfg.ray_address)
    from ray.util import ActorPool

    gpus = _gpus_per_worker(cfg, ray)
    n = worker_count(ray, num_cpus=cfg.worker_cpus, num_gpus=gpus, wanted=cfg.workers, work_items=len(jobs))
    options = backend_options(cfg)
    if gpus == 0 and options.get("device") == "auto":
        options["device"] = "cpu"
    actor_cls = ray.remote(PoolWorker).options(**remote_options(num_cpus=cfg.worker_cpus, num_gpus=gpus))
    actors = [actor_cls.remote(cfg.backend, model, options) for _ in range(n)]
    pool = ActorPool(actors)
    generated = 0
    try:
        rows_of = {j.start: len(j.rows) for j in jobs}
        for start, n_req, ok_ids in pool.map_unordered(lambda a, job: a.run_shard.remote(job, str(workdir)),
                                                       jobs):
            generated += n_req
            done.update(ok_ids)
            bar.update(rows_of[start])
    except Exception as exc:  # noqa: BLE001 - a Ray error wraps the worker's exception
        cause = getattr(exc, "cause", None) or exc
        msg = cause.message if isinstance(cause, ResetkitError) else f"{type(cause).__name__}: {cause}"
        raise ResetkitError(f"{msg.splitlines()[0] if msg else 'Ray worker failed'} -- {len(done)} of {total} "
                            f"candidates are saved in {workdir}; run the same command again to "
                            "resume") from exc
    finally:
        for a in actors:
            ray.kill(a)
    return generated

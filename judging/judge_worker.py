"""The judges' worker for ``resetkit judge --engine ray`` (DESIGN.md §8).

    start_remote(judge, items, cfg, address=None, workers=None) -> ShardRun
    collect_remote(judge, run) -> list     what ``judge.score(items)`` would return

``judging.judge.run_judges`` does everything else exactly as for the local engine (reads
the pool, carries over still-valid rows, groups identical texts, writes one ``scores``
version).  Only the scoring of the judges that hold a model (``runs_on_ray``: SummaC-ZS)
moves to Ray: their distinct items are cut into chunks of at most ``CHUNK_ITEMS`` (in pool
order, so an example's candidates stay together), run by ``resetkit.engine.run_shards`` on
actors each holding a ``JudgeWorker`` (the NLI model loaded once per actor).
``run_judges`` starts this work before it runs the driver's judges, so SummaC on the
cluster overlaps with the LLM judge's HTTP calls here.  Results are reassembled in item
order, so the scores table (and its version id) equals the local engine's.

What stays in the driver: the LLM judge (I/O-bound; its one concurrency limit, reply
cache and ``max_usd`` budget stay exact only in one process) and the text metrics (a
few milliseconds per thousand texts: shipping them costs more).  A chunk's result is
returned, never written by the worker, so a retried chunk cannot duplicate rows.
"""

from __future__ import annotations

import functools

CHUNK_ITEMS = 256


class JudgeWorker:
    """``run(items) -> (judge.score(items), usage)`` with one judge, built once.  It gets no
    store: workers return their results and write nothing."""

    def __init__(self, judge_cls, cfg):
        self.judge = judge_cls(cfg, None)

    def run(self, items: list[dict]) -> tuple[list[dict], dict]:
        self.judge.usage = {}
        return self.judge.score(items), dict(self.judge.usage)


def start_remote(judge, items: list[dict], cfg, *, address: str | None = None,
                 workers: int | None = None, worker_cpus: float = 1.0, chunk_items: int | None = None):
    """Submit ``items`` in chunks to Ray actors scoring with ``type(judge)``; returns at once.

    Chunks hold ``CHUNK_ITEMS`` items, fewer when that leaves an actor idle (a small job is
    spread over every actor the cluster holds), and always whole groups of the judge's
    ``group_items`` (SummaC scores items in such groups): an item is scored in the same group,
    so the same NLI batches, on every engine and cluster size."""
    from resetkit.engine import connect, run_shards, worker_count

    gpus, size = 0.0, max(1, chunk_items or CHUNK_ITEMS)
    if items:
        ray = connect(address)
        if ray.cluster_resources().get("GPU", 0) >= 1 and getattr(judge.options, "device", "auto").startswith(("auto", "cuda")):
            gpus = 1.0  # the NLI model on a GPU of its own, unless --set judge.summac.device=cpu
        n = worker_count(ray, num_cpus=worker_cpus, num_gpus=gpus, wanted=workers)
        size = max(1, min(size, -(-len(items) // n)))
    group = max(1, getattr(judge.options, "group_items", 1))
    size = -(-size // group) * group
    chunks = [(i, items[i:i + size]) for i in range(0, len(items), size)]
    factory = functools.partial(JudgeWorker, type(judge), cfg)
    return run_shards(chunks, factory, "ray", address=address, workers=workers, num_cpus=worker_cpus,
                      num_gpus=gpus)


def collect_remote(judge, run) -> list[dict]:
    """The results of ``start_remote``, in item order; sets ``judge.usage`` (summed, plus the
    actors, chunks and nodes used)."""
    from resetkit.errors import ResetkitError

    try:
        parts = run.collect()
    except ResetkitError as exc:
        raise ResetkitError(f"judge {judge.name} on Ray: {exc.message} (nothing was written; rows carried "
                            "over stay valid)") from exc
    if not parts:
        return []
    usage: dict = {}
    out: list[dict] = []
    for results, part in parts.values():
        out.extend(results)
        for k, v in part.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                usage[k] = round(usage.get(k, 0) + v, 6)
            else:
                usage.setdefault(k, v)
    judge.usage = {**usage, "ray_workers": run.workers, "ray_chunks": len(parts),
                   "ray_nodes": len(set(run.nodes.values()))}
    return out

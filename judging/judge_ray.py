"""The Ray engine of the judges (``resetkit judge --engine ray``; DESIGN.md §8).

    RayJudgePool(cfg, store, address=None, workers=None)   (a context manager)
        .runs(judge) -> bool            does this judge run on Ray?
        .submit(judge, items) -> refs   start scoring on the actors, return at once
        .collect(judge, refs) -> list   the list ``judge.score(items)`` would return
        .score(judge, items) -> list    both in one call

``judging.judge.run_judges`` does everything else exactly as for the local engine: it
reads the pool and examples, carries over the still-valid rows of the previous scores
version (which is how judging resumes, for both engines), groups identical texts, and
writes the one ``scores`` version.  Only the scoring of the model-holding judges moves
here: their distinct items are cut into chunks of ``chunk_items`` (in pool order, so the
7 candidates of an example stay together) and dealt round robin to ``JudgeWorker`` actors,
each keeping its judges (SummaC's NLI model loaded once per actor) for the whole run.
``run_judges`` submits this work before it runs the driver's judges, so SummaC on the
cluster overlaps with the LLM judge's HTTP calls here.  Results come back in item order,
so the scores table (and the version id, a hash of it) is the same as the local engine's.

What runs on Ray: the judges that hold a model (``Judge.runs_on_ray``: SummaC-ZS and its NLI
model).  What stays in the driver:
- the LLM judge.  It is I/O-bound (async HTTP), and its cost controls are global by
  nature: one concurrency limit against the endpoint's rate limits, one sqlite reply
  cache, one ``max_usd`` budget.  Splitting it across workers would need a shared limiter,
  cache and budget; running it as it is in the driver keeps all three exact;
- the text metrics (span, ngram, em, rouge): a few milliseconds per thousand texts here
  (bench/results/ray.md), far less than shipping the texts to a worker costs.

Worker failures: actors are restarted (``max_restarts``) and the chunk they held retried
(``max_task_retries``); a chunk's result is returned, never written by the worker, so a
retry cannot duplicate rows.
"""

from __future__ import annotations

from resetkit.errors import ResetkitError

CHUNK_ITEMS = 256


class JudgeWorker:
    """Actor body: judges instantiated on first use and kept (the NLI model stays loaded)."""

    def __init__(self, cfg, store_root: str | None):
        self.cfg, self.store_root = cfg, store_root
        self.judges: dict = {}

    def score(self, name: str, items: list[dict]) -> tuple[list[dict], dict]:
        """``judge.score(items)`` and the judge's usage counters for this chunk."""
        from resetkit.ray_engine import crash_hook

        from .judge import JUDGES

        crash_hook(f"judge-{name}")
        judge = self.judges.get(name)
        if judge is None:
            from resetkit.store import Store

            store = Store(self.store_root) if self.store_root else None
            judge = self.judges[name] = JUDGES.get(name)(self.cfg, store)
        judge.usage = {}
        return judge.score(items), dict(judge.usage)


def _add_usage(total: dict, part: dict) -> None:
    for k, v in part.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            total[k] = round(total.get(k, 0) + v, 6)
        else:
            total.setdefault(k, v)


class RayJudgePool:
    """Model-holding judge actors for one ``run_judges`` call (started lazily, killed on exit)."""

    def __init__(self, cfg, store=None, *, address: str | None = None, workers: int | None = None,
                 worker_cpus: float = 1.0, chunk_items: int | None = None):
        self.cfg, self.store, self.address = cfg, store, address
        self.workers, self.worker_cpus = workers, worker_cpus
        self.chunk_items = max(1, chunk_items or CHUNK_ITEMS)
        self.ray = None
        self.actors: list = []

    def runs(self, judge) -> bool:
        return judge.runs_on_ray

    def _start(self, n_chunks: int):
        from resetkit.ray_engine import connect, remote_options, worker_count

        self.ray = ray = connect(self.address)
        gpus = 0.0
        if ray.cluster_resources().get("GPU", 0) >= 1 and self.cfg.options("summac").device in ("auto", "cuda"):
            gpus = 1.0
        want = worker_count(ray, num_cpus=self.worker_cpus, num_gpus=gpus, wanted=self.workers,
                            work_items=n_chunks)
        if len(self.actors) >= want:
            return
        cls = ray.remote(JudgeWorker).options(**remote_options(num_cpus=self.worker_cpus, num_gpus=gpus))
        root = str(self.store.root) if self.store is not None else None
        self.actors += [cls.remote(self.cfg, root) for _ in range(want - len(self.actors))]

    def submit(self, judge, items: list[dict]) -> list:
        """Send ``items`` to the actors in chunks (round robin; each actor works through its
        queue in order) and return at once: the driver can run other judges meanwhile."""
        if not items:
            return []
        chunks = [items[i:i + self.chunk_items] for i in range(0, len(items), self.chunk_items)]
        self._start(len(chunks))
        n = len(self.actors)
        return [self.actors[i % n].score.remote(judge.name, c) for i, c in enumerate(chunks)]

    def collect(self, judge, refs: list) -> list[dict]:
        """The results of ``submit``, in item order; sets ``judge.usage`` (summed)."""
        if not refs:
            return []
        try:
            parts = self.ray.get(refs)
        except Exception as exc:  # noqa: BLE001 - a Ray error wraps the worker's exception
            cause = getattr(exc, "cause", None) or exc
            msg = cause.message if isinstance(cause, ResetkitError) else f"{type(cause).__name__}: {cause}"
            raise ResetkitError(f"judge {judge.name} on Ray: {msg.splitlines()[0] if msg else 'worker failed'}"
                                " (nothing was written; rows carried over stay valid)") from exc
        usage: dict = {}
        out: list[dict] = []
        for results, part in parts:
            out.extend(results)
            _add_usage(usage, part)
        judge.usage = {**usage, "ray_workers": len(self.actors), "ray_chunks": len(refs)}
        return out

    def score(self, judge, items: list[dict]) -> list[dict]:
        """``judge.score(items)``, computed on the actors."""
        return self.collect(judge, self.submit(judge, items))

    def close(self) -> None:
        if self.ray is not None:
            for a in self.actors:
                self.ray.kill(a)
        self.actors = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

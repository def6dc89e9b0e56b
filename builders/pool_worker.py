"""The pool's worker: one backend generating the requests of one shard at a time.

``builders.pool.run_pool`` plans on the driver (grid, candidate ids, what is missing,
shard boundaries) and hands each missing shard's requests to ``resetkit.engine.run_shards``
with a ``PoolWorker`` factory: with ``--engine local`` one worker around the driver's own
backend; with ``--engine ray`` one per actor, each loading the model once
(``PoolWorker.load``).  The worker returns the shard's results; the driver writes the
shard (``resetkit.shards``), so both engines write the very same files.
"""

from __future__ import annotations


class PoolWorker:
    """``run(requests) -> results`` with one backend (GenRequest / GenResult lists)."""

    def __init__(self, backend, on_done=None, owns_backend: bool = False):
        self.backend, self.on_done, self.owns_backend = backend, on_done, owns_backend

    @classmethod
    def load(cls, backend: str, model: str, options: dict) -> "PoolWorker":
        """A worker with its own backend, loaded and checked here (a Ray actor's)."""
        from .backends import load_backend

        loaded = load_backend(backend, model, **options)
        loaded.check()
        return cls(loaded, owns_backend=True)

    def run(self, requests: list) -> list:
        return self.backend.generate(requests, on_done=self.on_done)

    def close(self) -> None:
        if self.owns_backend:
            self.backend.close()

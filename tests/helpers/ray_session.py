"""Ray for the Ray-engine tests: a local instance shared by one pytest session, faults.

``ray_local`` (session-scoped) starts ``ray.init(num_cpus=2)`` with a 200 MB object store,
no dashboard and usage stats off, and shuts it down at the end of the session.  Test
modules import the fixture; whichever one starts Ray also stops it.  Tests are skipped
when ray is not installed (it is an optional extra).

``crashing(worker_cls, marker)`` is the fault injection: a subclass of a stage's worker
class whose first ``run`` (in any process) kills its own process, leaving ``marker`` so
it happens once.  It is defined inside a function, so cloudpickle ships it to the Ray
actors by value, marker path included; production code has no test hook.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_local():
    ray = pytest.importorskip("ray")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    started = False
    if not ray.is_initialized():
        from resetkit.engine import runtime_env

        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024,
                 runtime_env=runtime_env(), logging_level="WARNING", log_to_driver=False)
        started = True
    yield ray
    if started:
        ray.shutdown()


def crash_once(marker: str) -> None:
    """Kill this process (os._exit: no cleanup, as an OOM kill or a lost node) the first
    time any process gets here for ``marker``; later calls return."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(1)


def crashing(worker_cls: type, marker) -> type:
    """``worker_cls`` whose first ``run`` kills its process (see ``crash_once``)."""
    marker = str(marker)

    class Crashing(worker_cls):
        def run(self, payload):
            crash_once(marker)
            return super().run(payload)

    Crashing.__name__ = f"Crashing{worker_cls.__name__}"
    return Crashing

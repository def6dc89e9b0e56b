"""A small local Ray instance shared by the Ray-engine tests of one pytest session.

``ray_local`` (session-scoped) starts ``ray.init(num_cpus=2)`` with a 200 MB object store,
no dashboard and usage stats off, and shuts it down at the end of the session.  Test
modules import the fixture; whichever one starts Ray also stops it.  Tests are skipped
when ray is not installed (it is an optional extra).
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
        from resetkit.ray_engine import runtime_env

        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024,
                 runtime_env=runtime_env(), logging_level="WARNING", log_to_driver=False)
        started = True
    yield ray
    if started:
        ray.shutdown()

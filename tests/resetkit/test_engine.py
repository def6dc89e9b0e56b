"""resetkit.engine.run_shards with toy workers: the local and the Ray engine give the same
keyed results; a worker killed mid-job is restarted and its job retried; a worker that
keeps dying, or raises, ends the run with a one-line error; shard files are written
atomically and read back by key."""

from __future__ import annotations

import functools
import os

import pyarrow as pa
import pytest

from resetkit import shards
from resetkit.engine import MAX_RESTARTS, run_shards
from resetkit.errors import ResetkitError
from tests.helpers.ray_session import crashing, ray_local  # noqa: F401 - fixture


class Square:
    """A worker: ``run(x) -> (x * x, pid)``; counts how often it was built (per process)."""

    built = 0

    def __init__(self, offset: int = 0):
        type(self).built += 1
        self.offset = offset
        self.closed = False

    def run(self, x):
        if x == "boom":
            raise ValueError("cannot square 'boom'\nsecond line")
        return x * x + self.offset, os.getpid()

    def close(self):
        self.closed = True


class AlwaysDies(Square):
    def run(self, x):
        os._exit(1)


class CannotStart(Square):
    def __init__(self):
        raise ResetkitError("model folder /nowhere/model not found on this node")


JOBS = [(f"k{i}", i) for i in range(7)]


def _values(results: dict) -> dict:
    return {k: v for k, (v, _) in results.items()}


def test_local_runs_jobs_in_order_lazily_with_one_worker():
    made = []

    def factory():
        made.append(Square(1))
        return made[-1]

    consumed = []

    def jobs():
        for k, x in JOBS:
            consumed.append(k)
            yield k, x

    run = run_shards(jobs(), factory)
    assert made == [] and consumed == []  # nothing built or planned before iteration
    it = iter(run)
    assert next(it)[0] == "k0" and consumed == ["k0"] and len(made) == 1
    rest = dict(it)
    assert list(rest) == [f"k{i}" for i in range(1, 7)]
    assert len(made) == 1 and made[0].closed  # one worker, closed at the end
    assert run.workers == 1 and run.nodes == {}
    assert _values(run_shards(JOBS, functools.partial(Square, 1)).collect()) == {k: x * x + 1 for k, x in JOBS}


def test_no_jobs_builds_no_worker():
    assert run_shards([], lambda: pytest.fail("built a worker")).collect() == {}
    assert run_shards([], lambda: pytest.fail("built a worker"), "ray").collect() == {}  # no Ray started


def test_ray_equals_local_keyed(ray_local):
    local = run_shards(JOBS, functools.partial(Square, 1)).collect()
    run = run_shards(JOBS, functools.partial(Square, 1), "ray", workers=2)
    remote = run.collect()
    assert list(remote) == [k for k, _ in JOBS]  # collect() is in job order
    assert _values(remote) == _values(local)
    assert run.workers == 2
    assert len({pid for _, pid in remote.values()}) == 2  # two actors, each ran jobs
    assert set(run.nodes) == {k for k, _ in JOBS} and len(set(run.nodes.values())) == 1
    assert os.getpid() not in {pid for _, pid in remote.values()}


def test_duplicate_keys_are_refused(ray_local):
    with pytest.raises(ResetkitError, match="unique"):
        run_shards([("a", 1), ("a", 2)], Square, "ray")


def test_killed_worker_is_restarted_and_its_job_retried(tmp_path, ray_local):
    """The only actor kills its process on its first job: Ray builds a new one (the factory
    runs again) and retries the job; every result arrives exactly once."""
    marker = tmp_path / "crashed"
    run = run_shards(JOBS, functools.partial(crashing(Square, marker), 1), "ray", workers=1)
    got = list(run)
    assert marker.exists()
    assert sorted(k for k, _ in got) == sorted(k for k, _ in JOBS)
    assert {k: v for k, (v, _) in got} == {k: x * x + 1 for k, x in JOBS}


def test_worker_dying_every_time_gives_up_with_one_line(ray_local):
    with pytest.raises(ResetkitError) as err:
        run_shards(JOBS[:1], AlwaysDies, "ray", workers=1).collect()
    msg = err.value.message
    assert msg.startswith(f"a worker died and was restarted {MAX_RESTARTS} times") and "\n" not in msg, msg


def test_worker_that_cannot_start_names_why(ray_local):
    with pytest.raises(ResetkitError) as err:
        run_shards(JOBS[:2], CannotStart, "ray", workers=1).collect()
    assert err.value.message == "a worker could not start: model folder /nowhere/model not found on this node"


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_worker_error_is_one_line(engine, request):
    if engine == "ray":
        request.getfixturevalue("ray_local")
    with pytest.raises((ResetkitError, ValueError)) as err:
        run_shards([("a", 2), ("b", "boom")], Square, engine).collect()
    if engine == "ray":  # the worker's exception, named, first line only
        assert err.value.message == "ValueError: cannot square 'boom'"
    else:  # locally the worker's own exception propagates as it is
        assert isinstance(err.value, ValueError)


def test_shards_atomic_write_read_and_done_keys(tmp_path):
    schema = pa.schema([("id", pa.string()), ("ok", pa.bool_())])
    work = tmp_path / "work"
    assert shards.read_shards(work, schema) is None and shards.done_keys(work, "id", schema) == set()
    shards.write_shard(work, shards.shard_name(3, "b"), pa.table({"id": ["c"], "ok": [True]}, schema=schema))
    shards.write_shard(work, shards.shard_name(0, "a"), pa.table({"id": ["a", "b"], "ok": [True, False]},
                                                                 schema=schema))
    (work / ".shard-00000009-x.parquet.1234.tmp").write_bytes(b"half a file")  # a crash's leftover
    assert sorted(p.name for p in work.iterdir() if not p.name.startswith(".")) == [
        "shard-00000000-a.parquet", "shard-00000003-b.parquet"]
    assert shards.read_shards(work, schema)["id"].to_pylist() == ["a", "b", "c"]  # in name order
    assert shards.done_keys(work, "id", schema) == {"a", "b", "c"}
    assert shards.done_keys(work, "id", schema, lambda t: t["ok"]) == {"a", "c"}
    with pytest.raises(ValueError, match="not a shard"):
        shards.write_shard(work, "other.parquet", pa.table({"id": ["x"], "ok": [True]}, schema=schema))

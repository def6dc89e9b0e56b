"""Two identical runs of a stage on one store, as two real processes (issue 14 item 8).

Before: the second `resetkit pool` crashed (FileNotFoundError on a .work shard, or "candidate ...
was planned but not generated") and the two together sent ~5x the requests of one run; two
identical `resetkit judge` runs each paid for every reply.  Now the second waits for the first
(saying for whom), then finds its work done: both succeed, with the same version, and the server
sees exactly the requests of one run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from resetkit.store import Store
from tests.helpers.openai_server import OpenAIServer
from tests.helpers.pool_examples import make_examples

pytestmark = pytest.mark.reliability

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
       "OPENAI_API_KEY": "sk-test-concurrent-0000"}


def _pool_cmd(store, url):
    return [sys.executable, "-m", "resetkit.cli", "pool", "reset-seed", "--backend", "openai", "--model", "tiny",
            "--base-url", url, "--store", str(store.root), "--max-new-tokens", "16", "--concurrency", "2",
            "--shard-examples", "1", "--no-progress"]


def _completions(srv):
    return [e for e in srv.log if e["path"].endswith("/completions")]


def _wait_for(pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _one_run_requests(tmp_path, n):
    store = Store(tmp_path / "reference")
    make_examples(store, n)
    with OpenAIServer() as srv:
        out = subprocess.run(_pool_cmd(store, srv.base_url), env=ENV, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return len(_completions(srv)), store.resolve("pool")


def test_two_identical_pool_runs_take_turns_and_pay_once(tmp_path):
    expected, reference = _one_run_requests(tmp_path, 6)
    store = Store(tmp_path / "store")
    make_examples(store, 6)
    with OpenAIServer(latency=0.25) as srv:
        first = subprocess.Popen(_pool_cmd(store, srv.base_url), env=ENV, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        assert _wait_for(lambda: _completions(srv)), "the first run sent nothing"
        second = subprocess.Popen(_pool_cmd(store, srv.base_url), env=ENV, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        out1, err1 = first.communicate(timeout=180)
        out2, err2 = second.communicate(timeout=180)
        sent = len(_completions(srv))
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert f"waiting for pid {first.pid}" in err2 and "running pool on pool" in err2
    assert "Traceback" not in err1 + err2
    assert sent == expected                              # nothing paid twice
    pool = store.resolve("pool")
    assert [v.version for v in store.versions("pool")] == [pool.version] == [reference.version]
    assert pool.read("train").equals(reference.read("train"))
    assert pool.version in out1 and pool.version in out2


def test_killed_lock_holder_never_blocks_the_waiting_run(tmp_path):
    """kill -9 of the run holding the lock: the waiting run takes over and resumes its shards."""
    expected, reference = _one_run_requests(tmp_path, 6)
    store = Store(tmp_path / "store")
    make_examples(store, 6)
    with OpenAIServer(latency=0.25) as srv:
        first = subprocess.Popen(_pool_cmd(store, srv.base_url), env=ENV, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        assert _wait_for(lambda: len(_completions(srv)) >= 4)
        second = subprocess.Popen(_pool_cmd(store, srv.base_url), env=ENV, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        lock_dir = store.root / ".locks"
        assert _wait_for(lambda: second.poll() is not None or (
            lock_dir.is_dir() and _stderr_has(second, "waiting for")), timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait()
        _, err2 = second.communicate(timeout=180)
        sent = len(_completions(srv))
    assert second.returncode == 0, err2
    pool = store.resolve("pool")
    assert pool.version == reference.version and pool.read("train").equals(reference.read("train"))
    # the killed run's finished shards were reused: at most the requests in flight at the kill
    # (concurrency 2) and those of its unfinished shard are sent again
    assert expected <= sent <= expected + 2 + 7


def _stderr_has(proc, text):
    """Read what the process wrote to stderr so far (non-blocking) and look for ``text``."""
    import fcntl

    fd = proc.stderr.fileno()
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    try:
        chunk = proc.stderr.read() or ""
    except (BlockingIOError, TypeError):
        chunk = ""
    proc._seen = getattr(proc, "_seen", "") + chunk
    return text in proc._seen


def test_two_identical_judge_runs_take_turns_and_pay_once(tmp_path):
    from tests.judging.fake_openai import FakeOpenAI
    from tests.judging.pools import candidate, example, make_pool

    store = Store(tmp_path / "store")
    exs = [example(f"e{i}", "open_ended", instruction=f"Write about topic {i}.") for i in range(8)]
    make_pool(store, exs, [candidate(f"e{i}", f"c{i}", f"A fine answer number {i}.") for i in range(8)])
    with FakeOpenAI(latency=0.4) as srv:
        cmd = [sys.executable, "-m", "resetkit.cli", "judge", "pool", "--judges", "llm", "--judge-base-url",
               srv.base_url, "--judge-concurrency", "2", "--store", str(store.root), "--quiet"]
        first = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert _wait_for(lambda: srv.calls > 0), "the first run sent nothing"
        second = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, err1 = first.communicate(timeout=180)
        _, err2 = second.communicate(timeout=180)
        calls = srv.calls
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "waiting for pid" in err2 and "running judge on scores" in err2
    assert calls == 8                                    # each distinct text judged (and paid) once
    versions = store.versions("scores")
    assert len(versions) == 1
    assert sorted(r["value"] for r in versions[0].read().to_pylist()) == [0.8] * 8


def test_concurrent_identical_builds_both_succeed(tmp_path):
    """Builds cost nothing and need no lock: both commit (the second swaps in an identical copy)."""
    from builders.corpora import sample_sources

    store = Store(tmp_path / "store")
    args = [a for k, v in sample_sources("if-train").items() for a in ("--source", f"{k}={v}")]
    cmd = [sys.executable, "-m", "resetkit.cli", "build", "if-train", *args, "--store", str(store.root),
           "--no-progress"]
    procs = [subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [r[1] for r in results]
    assert len(store.versions("if-train")) == 1
    leftovers = [p.name for p in (store.root / "if-train").iterdir() if p.name.startswith((".tmp", ".trash"))]
    assert leftovers == []

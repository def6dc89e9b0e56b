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
import threading
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


class _Gate:
    """Holds the server's replies (after the first ``let_through``) until ``open()``: the first run
    stays busy, however slowly the machine starts the second one."""

    def __init__(self, let_through=0):
        self.event, self.let_through, self.arrived = threading.Event(), let_through, 0
        self._lock = threading.Lock()

    def wait(self):
        with self._lock:
            self.arrived += 1
            if self.arrived <= self.let_through:
                return
        self.event.wait(120)

    def open(self):
        self.event.set()


def _spawn(cmd, log):
    """A run with its stderr in the file ``log`` (read while it runs)."""
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)


def _said(log, text):
    return log.exists() and text in log.read_text()


def test_two_identical_pool_runs_take_turns_and_pay_once(tmp_path):
    expected, reference = _one_run_requests(tmp_path, 6)
    store = Store(tmp_path / "store")
    make_examples(store, 6)
    gate = _Gate()
    log1, log2 = tmp_path / "first.err", tmp_path / "second.err"
    with OpenAIServer() as srv:
        srv.fault = lambda body, path: gate.wait()
        first = _spawn(_pool_cmd(store, srv.base_url), log1)
        assert _wait_for(lambda: _completions(srv) or first.poll() is not None), "the first run sent nothing"
        second = _spawn(_pool_cmd(store, srv.base_url), log2)
        waited = _wait_for(lambda: _said(log2, "waiting for") or second.poll() is not None, timeout=120)
        gate.open()
        out1, _ = first.communicate(timeout=180)
        out2, _ = second.communicate(timeout=180)
        sent = len(_completions(srv))
    err1, err2 = log1.read_text(), log2.read_text()
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert waited and f"waiting for pid {first.pid}" in err2 and "running pool on pool" in err2, err2
    assert "Traceback" not in err1 + err2
    assert sent == expected                              # nothing paid twice
    pool = store.resolve("pool")
    assert [v.version for v in store.versions("pool")] == [pool.version] == [reference.version]
    assert pool.read("train").equals(reference.read("train"))
    assert pool.version in out1 and pool.version in out2


@pytest.mark.slow_reliability
def test_killed_lock_holder_never_blocks_the_waiting_run(tmp_path):
    """kill -9 of the run holding the lock: the waiting run takes over and resumes its shards."""
    expected, reference = _one_run_requests(tmp_path, 6)
    store = Store(tmp_path / "store")
    make_examples(store, 6)
    gate = _Gate(let_through=8)  # the first run finishes a few shards, then hangs on its requests
    log2 = tmp_path / "second.err"
    with OpenAIServer() as srv:
        srv.fault = lambda body, path: gate.wait()
        first = _spawn(_pool_cmd(store, srv.base_url), tmp_path / "first.err")
        assert _wait_for(lambda: len(list(store.root.glob("pool/.work/*/shard-*.parquet"))) >= 2, timeout=120)
        second = _spawn(_pool_cmd(store, srv.base_url), log2)
        assert _wait_for(lambda: _said(log2, "waiting for"), timeout=120), log2.read_text()
        first.send_signal(signal.SIGKILL)
        first.wait()
        gate.open()
        second.communicate(timeout=180)
        sent = len(_completions(srv))
    assert second.returncode == 0, log2.read_text()
    pool = store.resolve("pool")
    assert pool.version == reference.version and pool.read("train").equals(reference.read("train"))
    assert 2 <= pool.manifest["counts"]["generated_this_run"] < pool.manifest["counts"]["candidates"]
    # the killed run's finished shards were reused: only requests it had in flight or in its
    # unfinished shards went out again
    assert expected < sent < 2 * expected


def test_two_identical_judge_runs_take_turns_and_pay_once(tmp_path):
    from tests.judging.fake_openai import FakeOpenAI
    from tests.judging.pools import candidate, example, make_pool

    class GatedJudgeServer(FakeOpenAI):
        def _script(self, body, path):
            gate.wait()  # every reply held (until open()): the first run stays busy
            return super()._script(body, path)

    gate = _Gate()
    store = Store(tmp_path / "store")
    exs = [example(f"e{i}", "open_ended", instruction=f"Write about topic {i}.") for i in range(8)]
    make_pool(store, exs, [candidate(f"e{i}", f"c{i}", f"A fine answer number {i}.") for i in range(8)])
    log1, log2 = tmp_path / "first.err", tmp_path / "second.err"
    with GatedJudgeServer() as srv:
        cmd = [sys.executable, "-m", "resetkit.cli", "judge", "pool", "--judges", "llm", "--judge-base-url",
               srv.base_url, "--judge-concurrency", "2", "--store", str(store.root), "--quiet"]
        first = _spawn(cmd, log1)
        assert _wait_for(lambda: gate.arrived > 0 or first.poll() is not None), "the first run sent nothing"
        second = _spawn(cmd, log2)
        waited = _wait_for(lambda: _said(log2, "waiting for") or second.poll() is not None, timeout=120)
        gate.open()
        first.communicate(timeout=180)
        second.communicate(timeout=180)
        calls = srv.calls
    err1, err2 = log1.read_text(), log2.read_text()
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert waited and f"waiting for pid {first.pid}" in err2 and "running judge on scores" in err2, err2
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

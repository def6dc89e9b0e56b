"""The Ray engine on a cluster started the way users start one: ``ray start --head`` plus a
second ``ray start --address`` process as a second node (1 CPU each), the store and the
models on a path both see, and ``resetkit pool`` / ``resetkit judge`` run as commands with
``--engine ray --ray-address HOST:PORT``.  Both nodes run shards (the manifests record the
nodes the actors ran on) and the outputs equal the local engine's.

The two ``ray start --block`` processes are this test's own children (own process group,
own --temp-dir, free ports), stopped at the end without touching any other Ray instance on
the machine (no ``ray stop``)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from builders.pool import PoolConfig, run_pool
from judging.judge import JudgeConfig, run_judges
from resetkit.store import Store
from tests.helpers.pool_examples import make_examples

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
# slow: two node starts, and torch imported and models loaded on both nodes (~2 min on the
# shared 2-core machine); run by make test-slow
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not RAY.exists(), reason="the ray command is not installed (resetkit[ray])")]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# token authentication (Ray's default once a token exists): this cluster's own token, given to
# the nodes and to the resetkit commands as a user exports it on every machine
TOKEN = secrets.token_hex(16)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=TOKEN,
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    return env


class Cluster:
    """A head node and a worker node on this machine, each a ``ray start --block`` child."""

    def __init__(self):
        self.temp = tempfile.mkdtemp(prefix="rk-ray-")  # short: Ray's socket paths have a length limit
        self.port, *self.node_ports = _free_ports(9)
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []

    def start(self):
        node_ports = self.node_ports
        common = ["--num-cpus", "1", "--object-store-memory", str(80 * 1024 * 1024), "--block",
                  "--disable-usage-stats", "--temp-dir", self.temp, "--node-ip-address", "127.0.0.1"]
        self._start(["--head", "--port", str(self.port), "--include-dashboard", "false", *common, *self._node_ports(node_ports[:4])], "head")
        self._start(["--address", self.address, *common, *self._node_ports(node_ports[4:])], "worker")

    @staticmethod
    def _node_ports(p):
        return ["--dashboard-agent-listen-port", str(p[0]), "--dashboard-agent-grpc-port", str(p[1]),
                "--metrics-export-port", str(p[2]), "--runtime-env-agent-port", str(p[3])]

    def _start(self, args, name, timeout=120):
        log = open(Path(self.temp) / f"{name}.log", "w+")
        proc = subprocess.Popen([str(RAY), "start", *args], stdout=log, stderr=subprocess.STDOUT, env=_env(),
                                start_new_session=True)
        self.procs.append(proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log.seek(0)
            text = log.read()
            if "Ray runtime started" in text:
                return
            if proc.poll() is not None:
                raise RuntimeError(f"ray start ({name}) exited {proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.5)
        raise RuntimeError(f"ray start ({name}) did not start in {timeout} s:\n{text[-3000:]}")

    def stop(self):
        """SIGTERM to each child's process group (ray start --block stops its node's
        processes), then SIGKILL to whatever of that group is left; then any process that
        still names this cluster's temp dir (a worker in a group of its own)."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        import psutil

        for p in psutil.process_iter(["pid", "cmdline"]):
            if any(self.temp in part for part in (p.info["cmdline"] or ())):
                p.kill()
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture
def cluster():
    pytest.importorskip("ray")
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _cli(*args) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "resetkit.cli", *args], env=_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_pool_and_judge_on_a_two_node_cluster(tmp_path, cluster, tiny_llama, tiny_nli):
    shared = tmp_path / "shared"  # "shared storage": the same path on both nodes
    models = shared / "models"
    shutil.copytree(tiny_llama, models / "llama")
    shutil.copytree(tiny_nli, models / "nli")
    store = Store(shared / "store")
    make_examples(store, 8)
    _cli("pool", "reset-seed", "--model", str(models / "llama"), "--store", str(store.root), "--max-new-tokens",
         "8", "--shard-examples", "2", "--no-progress", "--engine", "ray", "--ray-address", cluster.address)
    _cli("judge", "pool", "--judges", "summac,rouge", "--nli-model", str(models / "nli"), "--store",
         str(store.root), "--quiet", "--set", "judge.summac.threads=1", "--set", "judge.summac.group_items=2",
         "--engine", "ray", "--ray-address", cluster.address)

    local = Store(tmp_path / "local")
    make_examples(local, 8)
    pool_local = run_pool(local, "reset-seed", PoolConfig(model=str(models / "llama"), max_new_tokens=8,
                                                          shard_examples=2, threads=1), progress=False)
    nli = JudgeConfig(judge={"summac": {"model": str(models / "nli"), "threads": 1, "group_items": 2}})
    scores_local = run_judges(local, "pool", ["summac", "rouge"], nli, progress=False)

    pool, scores = store.resolve("pool"), store.resolve("scores")
    assert pool.version == pool_local.version and pool.read().equals(pool_local.read())
    assert scores.version == scores_local.version and scores.read().equals(scores_local.read())
    # 2 actors (one CPU each, one per node), 4 shards: both nodes generated shards
    assert pool.manifest["run"]["ray"] == {"workers": 2, "nodes": 2, "shards": 4}
    summac = scores.manifest["judge_stats"]["summac"]
    assert summac["ray_workers"] == 2 and summac["ray_nodes"] == 2 and summac["ray_chunks"] == 2
    assert "ray_workers" not in scores.manifest["judge_stats"]["rouge"]  # text metrics: in the driver

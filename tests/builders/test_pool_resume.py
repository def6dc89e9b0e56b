"""Kill-and-resume: ``resetkit pool`` in a subprocess, SIGKILLed midway, run again; the final
pool must equal an uninterrupted run's (same version, same rows, same texts)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq

from resetkit.store import Store
from tests.helpers.pool_examples import make_examples


def _cmd(store_root, model):
    return [sys.executable, "-m", "resetkit.cli", "pool", "reset-seed", "--model", str(model), "--store",
            str(store_root), "--max-new-tokens", "16", "--shard-examples", "1", "--batch-size", "8",
            "--no-progress"]


def test_sigkill_midway_then_resume_equals_uninterrupted(tmp_path, tiny_llama):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    killed_store = Store(tmp_path / "killed")
    make_examples(killed_store, 16)
    proc = subprocess.Popen(_cmd(killed_store.root, tiny_llama), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    work = killed_store.root / "pool" / ".work"
    deadline = time.monotonic() + 120
    shards = []
    while time.monotonic() < deadline and proc.poll() is None:
        shards = list(work.glob("*/shard-*.parquet")) if work.exists() else []
        if len(shards) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stdout.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    shards = list(work.glob("*/shard-*.parquet"))
    assert 3 <= len(shards) < 16
    assert not (killed_store.root / "pool" / "LATEST").exists()  # nothing half-written is visible
    # every visible shard is complete (written to a temp name, then renamed); a kill during a write
    # may leave a ".shard-*.tmp" file, which the resume never reads (it globs "shard-*.parquet")
    for shard in shards:
        assert pq.read_table(shard).num_rows > 0

    done = subprocess.run(_cmd(killed_store.root, tiny_llama), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    resumed = killed_store.resolve("pool")
    assert resumed.manifest["counts"]["generated_this_run"] < resumed.manifest["counts"]["candidates"]

    clean_store = Store(tmp_path / "clean")
    make_examples(clean_store, 16)
    done = subprocess.run(_cmd(clean_store.root, tiny_llama), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    clean = clean_store.resolve("pool")
    assert resumed.version == clean.version
    a, b = resumed.read("train"), clean.read("train")
    assert a.num_rows == 16 * 7 and a.equals(b)
    assert a["text"].to_pylist() == b["text"].to_pylist()

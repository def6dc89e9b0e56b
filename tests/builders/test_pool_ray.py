"""``resetkit pool --engine ray``: same pool as the local engine (version id and table),
a worker killed mid-shard is retried without losing or duplicating candidates, and a run
resumes from shards another engine left behind."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from click.testing import CliRunner

from builders.pool import PoolConfig, run_pool
from resetkit.errors import ResetkitError
from resetkit.store import Store
from tests.helpers.pool_examples import make_examples
from tests.helpers.ray_session import crashing, ray_local  # noqa: F401 - fixture

N_EXAMPLES = 9


def _cfg(model, **kw):
    # 1 torch thread, as each 1-CPU actor has: identical numerics on both sides (docs/ray.md)
    return PoolConfig(model=str(model), max_new_tokens=8, shard_examples=3, threads=1,
                      options={"transformers": {"batch_size": 16}}, **kw)


@pytest.fixture(scope="module")
def local_pool(tmp_path_factory, tiny_llama):
    """The reference: the local engine's pool of 9 examples (paper grid, 3 shards)."""
    store = Store(tmp_path_factory.mktemp("local-store"))
    make_examples(store, N_EXAMPLES)
    return run_pool(store, "reset-seed", _cfg(tiny_llama), progress=False)


def _same(a, b):
    assert a.version == b.version
    ta, tb = a.read("train"), b.read("train")
    assert ta.equals(tb)
    return tb


def test_ray_engine_equals_local(tmp_path, tiny_llama, local_pool, ray_local):
    """`resetkit pool --engine ray` (2 actors) writes the local engine's version and rows."""
    from resetkit.cli import main

    store = Store(tmp_path / "store")
    make_examples(store, N_EXAMPLES)
    res = CliRunner().invoke(main, ["pool", "reset-seed", "--model", str(tiny_llama), "--store", str(store.root),
                                    "--max-new-tokens", "8", "--shard-examples", "3", "--batch-size", "16",
                                    "--engine", "ray", "--workers", "2", "--no-progress", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert f"pool@{local_pool.version}" in res.output
    pool = store.resolve("pool")
    table = _same(local_pool, pool)
    assert table.num_rows == N_EXAMPLES * 7
    assert pool.manifest["run"]["engine"] == "ray" and pool.manifest["run"]["workers"] == 2
    assert pool.manifest["counts"]["generated_this_run"] > 0
    assert not (store.root / "pool" / ".work" / pool.version).exists()


def test_killed_worker_is_retried(tmp_path, tiny_llama, local_pool, ray_local, monkeypatch):
    """The only actor kills its own process on its first shard: Ray restarts it (the model
    loads again), the shard is retried, and the pool equals the local engine's."""
    import builders.pool as pool_mod

    marker = tmp_path / "crashed"
    monkeypatch.setattr(pool_mod, "PoolWorker", crashing(pool_mod.PoolWorker, marker))
    store = Store(tmp_path / "store")
    make_examples(store, N_EXAMPLES)
    pool = run_pool(store, "reset-seed", _cfg(tiny_llama, engine="ray", workers=1), progress=False)
    assert marker.exists()  # a worker did die mid-shard
    table = _same(local_pool, pool)
    ids = table["candidate_id"].to_pylist()
    assert len(ids) == len(set(ids)) == N_EXAMPLES * 7
    assert pool.manifest["run"]["ray"] == {"workers": 1, "nodes": 1, "shards": 3}


def test_ray_resumes_shards_of_a_local_run(tmp_path, tiny_llama, local_pool, ray_local, monkeypatch):
    """Shards written by the local engine are picked up by the Ray engine: only the missing
    shard is generated, and the pool equals an uninterrupted run."""
    store = Store(tmp_path / "store")
    make_examples(store, N_EXAMPLES)
    import builders.pool as pool_mod

    monkeypatch.setattr(pool_mod.shutil, "rmtree", lambda *a, **k: None)  # keep the workdir
    first = run_pool(store, "reset-seed", _cfg(tiny_llama), progress=False)
    monkeypatch.undo()
    work = store.root / "pool" / ".work" / first.version
    shards = sorted(work.glob("shard-*.parquet"))
    assert len(shards) == 3
    shards[1].unlink()  # as if the run had been killed before this shard was written
    shutil.rmtree(first.path)
    pool = run_pool(store, "reset-seed", _cfg(tiny_llama, engine="ray"), progress=False)
    _same(local_pool, pool)
    greedy_copies = 0  # identical greedy requests of an example are generated once
    rows = [r for r in pool.read("train").to_pylist() if r["example_id"] in {"ex-0003", "ex-0004", "ex-0005"}]
    for ex in {r["example_id"] for r in rows}:
        g = sum(r["greedy"] for r in rows if r["example_id"] == ex)
        greedy_copies += max(0, g - 1)
    assert pool.manifest["counts"]["generated_this_run"] == len(rows) - greedy_copies


def test_engine_errors_need_no_ray(tmp_path, tiny_llama):
    store = Store(tmp_path / "store")
    make_examples(store, 2)
    with pytest.raises(ResetkitError, match="only for --engine ray"):
        run_pool(store, "reset-seed", _cfg(tiny_llama, ray_address="auto"), progress=False)
    with pytest.raises(ResetkitError, match="openai backend"):
        run_pool(store, "reset-seed", dataclasses.replace(_cfg(tiny_llama, engine="ray"), backend="openai",
                                                          options={"openai": {"base_url": "http://127.0.0.1:9/v1"}}), progress=False)


def test_ray_stays_optional():
    """Nothing imports ray unless --engine ray runs (the engine modules included)."""
    import subprocess
    import sys

    code = ("import sys, builders.pool, builders.pool_cli, builders.pool_worker, judging.judge, judging.cli, "
            "judging.judge_worker, pipeline.evaluate, resetkit.engine, resetkit.shards, resetkit.cli; "
            "resetkit.engine.check_engine('ray', 'auto'); "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_ray_is_a_one_line_error(tmp_path, tiny_llama):
    """Without ray installed, --engine ray stops with what to install (simulated: the import
    of ray fails in a fresh interpreter)."""
    import subprocess
    import sys

    store = Store(tmp_path / "store")
    make_examples(store, 2)
    code = ("import sys; sys.modules['ray'] = None\n"
            "from resetkit.cli import main\n"
            f"main(['pool', 'reset-seed', '--model', {str(tiny_llama)!r}, '--store', {str(store.root)!r}, "
            "'--engine', 'ray', '--no-progress'])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == ("Error: ray is needed for the Ray engine: "
                                                   "pip install 'resetkit[ray]' (or pip install ray)")
    assert not store.exists("pool")

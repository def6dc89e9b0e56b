"""The pool stage end to end with the transformers backend: schema, lineage, duplicates,
skipped prompts, DuckDB and datasets reading the Parquet, the CLI, dry runs and bad input."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from builders.pool import dry_run, pool_config, run_pool
from resetkit.errors import ResetkitError
from resetkit.schemas import CANDIDATES
from tests.helpers.pool_examples import make_examples


@pytest.fixture
def cfg(tiny_llama):
    return pool_config(model=str(tiny_llama), max_new_tokens=6, shard_examples=3, batch_size=32)


@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_llama):
    """One pool built once for the read-only tests of this module: (store, pool)."""
    from resetkit.store import Store

    store = Store(tmp_path_factory.mktemp("pool-store"))
    make_examples(store, 10, empty=2)
    cfg = pool_config(model=str(tiny_llama), max_new_tokens=6, shard_examples=3, batch_size=32)
    return store, run_pool(store, "reset-seed", cfg, progress=False)


@pytest.fixture
def pool(shared):
    return shared[1]


def test_pool_rows_schema_and_lineage(shared, tiny_llama):
    store, pool = shared
    table = pool.read("train")
    assert table.schema.equals(CANDIDATES)
    assert table.num_rows == 8 * 7
    ex = store.resolve("reset-seed")
    m = pool.manifest
    assert m["examples"] == ex.ref and m["parents"] == [{"name": "reset-seed", "version": ex.version}]
    assert m["model"]["model"] == str(tiny_llama.resolve()) and m["model"]["revision"].startswith("local-")
    # the version's model input is its content (never its path) and the dtype it ran
    assert m["inputs"]["model"] == {"model": m["model"]["revision"], "revision": m["model"]["revision"],
                                    "dtype": "float32"}
    assert m["config"]["model"] == m["model"]["revision"] and m["model"]["dtype"] == "float32"
    assert {f["path"] for f in m["model"]["files"]} >= {"config.json", "model.safetensors"}
    assert m["dropped"] == {"dolly": {"empty prompt": 1}, "nq": {"empty prompt": 1}}
    assert m["counts"]["candidates"] == 56 and m["counts"]["errors"] == 0
    rows = table.to_pylist()
    assert len({r["candidate_id"] for r in rows}) == 56
    assert {r["example_id"] for r in rows} == {f"ex-{i:04d}" for i in range(2, 10)}
    ex_prompts = dict(zip(ex.read("train")["id"].to_pylist(), ex.read("train")["prompt"].to_pylist()))
    for r in rows:
        assert r["prompt"] == ex_prompts[r["example_id"]] and r["template"] == "alpaca"
        assert r["backend"] == "transformers" and r["finish_reason"] in ("stop", "length")
        assert r["greedy"] == (r["temperature"] == 0.0)
        assert r["model_revision"] == m["model"]["revision"]
    assert "Decoding grid" in (pool.path / "README.md").read_text()


def test_duplicates_point_at_the_first_identical_text(pool):
    rows = pool.read("train").to_pylist()
    by_example = {}
    for r in rows:
        by_example.setdefault(r["example_id"], []).append(r)
    seen_greedy_arm = False
    for cands in by_example.values():
        assert [c["sample_index"] for c in cands] == list(range(7))
        first = {}
        for c in cands:
            assert c["duplicate_of"] == first.get(c["text"])
            first.setdefault(c["text"], c["candidate_id"])
        if cands[0]["arm"] == "top_k":  # seven greedy decodes: one text, six duplicates
            seen_greedy_arm = True
            assert len({c["text"] for c in cands}) == 1
            assert [c["duplicate_of"] is None for c in cands] == [True] + [False] * 6
    assert seen_greedy_arm


def test_duckdb_and_datasets_read_the_pool(pool):
    import datasets
    import duckdb

    files = pool.duckdb_files("train")
    got = duckdb.sql(f"SELECT count(*), count(DISTINCT example_id), sum(CAST(greedy AS INT)) "
                     f"FROM read_parquet({files})").fetchall()[0]
    table = pool.read("train")
    assert got == (56, 8, sum(table["greedy"].to_pylist()))
    ds = datasets.load_dataset(str(pool.path), split="train")
    assert ds.num_rows == 56 and ds.features["top_k"].dtype == "int32"


def test_rerun_returns_the_same_version_without_work(shared, cfg, monkeypatch):
    store, pool = shared
    import builders.backends.transformers_backend as tb

    monkeypatch.setattr(tb.TransformersBackend, "generate", lambda *a, **k: pytest.fail("regenerated"))
    again = run_pool(store, "reset-seed", cfg, progress=False)
    assert again.ref == pool.ref
    assert not (store.root / "pool" / ".work" / pool.version).exists()  # shards removed after commit


def test_seed_change_gives_another_version(shared, cfg):
    store, pool = shared
    other = run_pool(store, "reset-seed", dataclasses.replace(cfg, seed=1, limit=2), name="pool-seed1",
                     progress=False)
    assert other.version != pool.version
    ids = set(pool.read()["candidate_id"].to_pylist())
    assert not ids & set(other.read()["candidate_id"].to_pylist())


def test_grids_topk_temperature_and_template(store, cfg):
    make_examples(store, 6)
    greedy = run_pool(store, "reset-seed", dataclasses.replace(cfg, grid="greedy"), name="g", progress=False)
    rows = greedy.read().to_pylist()
    assert len(rows) == 6 and {r["arm"] for r in rows} == {"greedy"} and all(r["greedy"] for r in rows)
    s = run_pool(store, "reset-seed", dataclasses.replace(cfg, grid="paper-s", limit=2), name="s",
                 progress=False)
    assert s.read().num_rows == 28
    hot = run_pool(store, "reset-seed", dataclasses.replace(cfg, topk_temperature=0.8, seed=3), name="h",
                   progress=False).read().to_pylist()
    topk = [r for r in hot if r["arm"] == "top_k"]
    assert topk and all(r["temperature"] == 0.8 and not r["greedy"] for r in topk)
    v = run_pool(store, "reset-seed", dataclasses.replace(cfg, template="vicuna", limit=2, grid="greedy"),
                 name="v", progress=False).read().to_pylist()
    assert all(r["template"] == "vicuna" and r["prompt"].endswith("ASSISTANT:") for r in v)
    assert "USER: Write a short poem" in v[0]["prompt"]


def test_split_filter(store, cfg):
    make_examples(store, 3, splits=("train", "validation"))
    both = run_pool(store, "reset-seed", dataclasses.replace(cfg, grid="greedy"), progress=False)
    assert both.num_rows() == {"train": 3, "validation": 3}
    val = run_pool(store, "reset-seed", dataclasses.replace(cfg, grid="greedy"), split="validation",
                   progress=False)
    assert list(val.num_rows()) == ["validation"]


def test_dry_run_counts_and_writes_nothing(store, cfg, capsys):
    make_examples(store, 8, empty=1)
    summary = dry_run(store, "reset-seed", cfg)
    out = capsys.readouterr().out
    assert summary["examples"] == 7 and summary["candidates"] == 49 and summary["skipped"] == 1
    greedy_examples = summary["candidates"] - summary["requests"]
    assert greedy_examples % 6 == 0 and summary["prompt_tokens"] > 0
    assert "prompt tokens sent" in out and "requests" in out
    assert not (store.root / "pool").exists()


def test_cli_pool_and_bad_model(store, tiny_llama, tmp_path):
    from resetkit.cli import main

    make_examples(store, 4)
    runner = CliRunner()
    res = runner.invoke(main, ["pool", "reset-seed", "--model", str(tiny_llama), "--grid", "greedy",
                               "--max-new-tokens", "4", "--store", str(store.root), "--no-progress",
                               "--threads", "1", "--stop", "\\n\\n", "--stop", "###"])
    assert res.exit_code == 0, res.output
    assert "wrote pool@" in res.output and "4 candidates for 4 examples" in res.output
    m = store.resolve("pool").manifest
    assert m["run"]["threads"] == 1 and m["prompts"]["stop"] == {"alpaca": ["\n\n", "###"]}
    # quiet (issue 13 item 6): the run's own lines on the console, library output in the log it names
    logs = list((store.root / ".logs").glob("pool-pool-*.log"))
    assert len(logs) == 1 and f"log: {logs[0]}" in res.output
    assert "Warning" not in res.output and "warn(" not in res.output
    res = runner.invoke(main, ["pool", "reset-seed", "--model", str(tiny_llama), "--store", str(store.root),
                               "--stop", "x", "--no-stop"])
    assert res.exit_code == 2 and "--stop and --no-stop exclude each other" in res.output
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "m.Q4_0.gguf").write_bytes(b"GGUF" + bytes(60))
    res = runner.invoke(main, ["pool", "reset-seed", "--model", str(tmp_path / "dl"), "--store", str(store.root)])
    assert res.exit_code == 2 and "pass the file itself" in res.output and "m.Q4_0.gguf" in res.output
    res = runner.invoke(main, ["pool", "reset-seed", "--model", str(tmp_path / "missing"), "--store",
                               str(store.root), "--name", "other"])
    assert res.exit_code == 2 and "model path not found" in res.output
    assert not (store.root / "other").exists()
    res = runner.invoke(main, ["pool", "reset-seed", "--model", str(tiny_llama), "--grid", "papr",
                               "--store", str(store.root)])
    assert res.exit_code == 2 and "Did you mean 'paper'" in res.output
    res = runner.invoke(main, ["pool", "reset-seed", "--model", str(tiny_llama), "--dry-run", "--limit", "2",
                               "--store", str(store.root), "--name", "dry"])
    assert res.exit_code == 0 and "candidates: 14" in res.output and not (store.root / "dry").exists()
    res = runner.invoke(main, ["pool", "--help"])
    assert "Examples:" in res.output


def test_unknown_examples_and_missing_columns(store, cfg):
    with pytest.raises(ResetkitError, match="no dataset 'reset-sed'"):
        run_pool(store, "reset-sed", cfg, progress=False)
    import pyarrow as pa

    with store.create("bad", builder="t", config={}) as w:
        w.write("train", pa.table({"id": ["a"], "text": ["x"]}))
    with pytest.raises(ResetkitError, match="missing column.*prompt"):
        run_pool(store, "bad", cfg, progress=False)

"""`resetkit sql`: views per dataset and version, read-only enforcement, output formats, catalog."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from resetkit.cli import main
from resetkit.schemas import EXAMPLES


def _examples(store, name, n, split_of=lambda i: "train"):
    rows = [{"id": f"{name}-{i}", "source": "dolly" if i % 2 else "oasst1", "objective": "instruction",
             "task": "open_ended", "split": split_of(i), "instruction": f"do {i}", "question": None,
             "context": None, "passages": [], "response": f"answer {i}", "refs": [f"answer {i}"],
             "prompt": f"P{i}", "template": "alpaca", "meta": "{}"} for i in range(n)]
    with store.create(name, builder="test", config={"n": n}) as w:
        for split in sorted({r["split"] for r in rows}):
            w.write(split, pa.Table.from_pylist([r for r in rows if r["split"] == split], schema=EXAMPLES))
    return w.result


@pytest.fixture
def filled(store):
    old = _examples(store, "if-train", 3)
    new = _examples(store, "if-train", 5, split_of=lambda i: "validation" if i == 4 else "train")
    _examples(store, "cd-eval", 2)
    return store, old, new


def snapshot(root):
    """Every path under the store with its bytes: 'untouched' means equal snapshots."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def sql(store, *args):
    return CliRunner().invoke(main, ["sql", *args, "--store", str(store.root)])


def test_views_newest_split_and_pinned(filled):
    store, old, new = filled
    res = sql(store, "SELECT count(*) AS n FROM if_train", "--format", "csv")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == ['"n"', "5"]
    res = sql(store, f"SELECT count(*) FROM if_train__v{old.version}", "--format", "csv")
    assert res.output.splitlines()[1] == "3"
    res = sql(store, "SELECT id FROM if_train__validation", "--format", "json")
    assert [json.loads(line) for line in res.output.splitlines()] == [{"id": "if-train-4"}]
    res = sql(store, "SELECT count(*) FROM cd_eval", "--format", "csv")
    assert res.output.splitlines()[1] == "2"
    res = sql(store, "--views")
    assert res.exit_code == 0
    for view in ("if_train", f"if_train__v{old.version}", f"if_train__v{new.version}", "if_train__validation",
                 "cd_eval"):
        assert view in res.output
    res = sql(store, "SELECT dataset, version FROM resetkit_datasets WHERE view = 'if_train'", "--format", "json")
    assert json.loads(res.output) == {"dataset": "if-train", "version": new.version}


def test_params_and_output_files(filled, tmp_path):
    store, _, _ = filled
    out = tmp_path / "o.parquet"
    res = sql(store, "SELECT id, source FROM if_train WHERE source = $src ORDER BY id LIMIT $n",
              "-p", "src", "dolly", "-p", "n", "1", "--format", "parquet", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).to_pylist() == [{"id": "if-train-1", "source": "dolly"}]
    res = sql(store, "SELECT $x AS x", "--format", "csv")
    assert res.exit_code == 2 and "-p x VALUE" in res.output
    res = sql(store, "SELECT 1", "-p", "y", "2")
    assert res.exit_code == 2 and "no such parameter" in res.output
    res = sql(store, "SELECT 1", "--format", "parquet")
    assert res.exit_code == 2 and "needs -o" in res.output
    before = snapshot(store.root)
    res = sql(store, "SELECT 1", "--format", "csv", "-o", str(store.root / "x.csv"))
    assert res.exit_code == 2 and "inside the store" in res.output
    assert snapshot(store.root) == before


def test_table_output_and_query_errors(filled):
    store, _, _ = filled
    res = sql(store, "SELECT id, source FROM if_train ORDER BY id", "--limit", "2")
    assert res.exit_code == 0
    assert "if-train-0" in res.output and "if-train-2" not in res.output and "first 2 rows" in res.output
    res = sql(store, "SELECT no_such_column FROM if_train")
    assert res.exit_code == 2
    assert "Binder Error" in res.output and "no_such_column" in res.output and "Traceback" not in res.output
    res = sql(store, "SELEC 1")
    assert res.exit_code == 2 and "Parser Error" in res.output
    res = sql(store, "SELECT * FROM read_csv('/etc/passwd')")
    assert res.exit_code == 2 and "disabled by configuration" in res.output


REFUSED = [
    "INSERT INTO if_train SELECT * FROM if_train",
    "UPDATE if_train SET id = 'x'",
    "DELETE FROM if_train",
    "DROP VIEW if_train",
    "CREATE TABLE t AS SELECT 1",
    "CREATE VIEW v AS SELECT 1",
    "COPY (SELECT 1) TO '{store}/x.csv'",
    "COPY if_train TO '{store}/if-train/copy.parquet' (FORMAT parquet)",
    "COPY (SELECT 1) TO '{store}/if-train/{version}/data/train-00000-of-00001.parquet' (FORMAT parquet, USE_TMP_FILE false)",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{store}/y.csv'",
    "ATTACH '{store}/x.db' AS x",
    "ATTACH '{store}/x.db' AS x (READ_WRITE)",
    "EXPORT DATABASE '{store}/export'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 1",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "PRAGMA enable_profiling = 'json'",
    "CALL checkpoint()",
    "CHECKPOINT",
    "UPDATE EXTENSIONS",
    "SELECT 1; DROP VIEW if_train",
    "SELECT 1; COPY (SELECT 1) TO '{store}/z.csv'",
]


@pytest.mark.parametrize("statement", REFUSED)
def test_writes_are_refused_and_store_untouched(filled, statement):
    store, _, new = filled
    before = snapshot(store.root)
    res = sql(store, statement.format(store=store.root, version=new.version))
    assert res.exit_code == 2, res.output
    assert ("refused" in res.output or "one statement at a time" in res.output), res.output
    assert "Traceback" not in res.output
    assert snapshot(store.root) == before


def test_second_layer_blocks_writes_even_past_the_check(filled):
    """Were a write statement to slip past the statement check, the locked connection refuses it."""
    import duckdb

    from resetkit.sql import connect

    store, _, new = filled
    before = snapshot(store.root)
    target = store.root / "if-train" / new.version / "data" / "train-00000-of-00001.parquet"
    with connect(store) as con:
        assert con.execute("SELECT count(*) FROM if_train").fetchone()[0] == 5
        for statement in (f"COPY (SELECT 1) TO '{store.root}/x.csv'",
                          f"COPY (SELECT 1) TO '{target}' (FORMAT parquet)",
                          f"ATTACH '{store.root}/x.db' AS x", "SET enable_external_access = true"):
            with pytest.raises(duckdb.Error):
                con.execute(statement)
    assert snapshot(store.root) == before


def test_catalog_file_opens_in_duckdb(filled):
    import duckdb

    from resetkit.sql import refresh_catalog

    store, old, new = filled
    res = sql(store, "--catalog")
    assert res.exit_code == 0 and "duckdb -readonly" in res.output
    path = store.root / "catalog.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM if_train").fetchone()[0] == 5
        assert con.execute(f"SELECT count(*) FROM if_train__v{old.version}").fetchone()[0] == 3
    _examples(store, "if-train", 7)      # a new version: the catalog follows
    refresh_catalog(store)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM if_train").fetchone()[0] == 7
    assert not [p for p in store.root.iterdir() if p.name.endswith(".tmp")]
    assert "catalog" not in {n for n in store.names()}


def test_catalog_tampered_by_another_client_is_rewritten(filled):
    """A client that opened catalog.duckdb read-write and redirected a view: --catalog puts it right."""
    import duckdb

    store, _, _ = filled
    assert sql(store, "--catalog").exit_code == 0
    path = store.root / "catalog.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE OR REPLACE VIEW if_train AS SELECT * FROM read_csv('/etc/passwd')")
        con.execute("CREATE TABLE planted AS SELECT 1 AS x")
    res = sql(store, "--catalog")
    assert res.exit_code == 0, res.output
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM if_train").fetchone()[0] == 5
        text = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'if_train'").fetchone()[0]
        assert "passwd" not in text and "read_parquet" in text
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == 0


def test_empty_store(store):
    res = sql(store, "--views")
    assert res.exit_code == 0
    res = sql(store, "SELECT 42 AS answer", "--format", "csv")
    assert res.output.splitlines() == ['"answer"', "42"]


@pytest.mark.parametrize("statement", ["EXPLAIN SELECT * FROM if_train", "EXPLAIN ANALYZE SELECT count(*) FROM if_train",
                                       "DESCRIBE if_train", "SUMMARIZE cd_eval", "SHOW TABLES", "FROM if_train LIMIT 1",
                                       "WITH t AS (SELECT 1 AS a) SELECT a FROM t;"])
def test_reading_statements_run(filled, statement):
    store, _, _ = filled
    before = snapshot(store.root)
    res = sql(store, statement, "--format", "csv")
    assert res.exit_code == 0, res.output
    assert len(res.output.splitlines()) >= 2
    assert snapshot(store.root) == before


@pytest.mark.parametrize("query", ["SELECT FROM WHERE", "SELECT * FROM if_trian",
                                   "SELECT nonexistent_column FROM if_train"])
def test_duckdb_errors_are_one_line(filled, query):
    # DuckDB's own messages carry a LINE excerpt, a caret and "Did you mean" on further lines
    store, _, _ = filled
    res = sql(store, query)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), res.output


# -- keeping STORE/catalog.duckdb current: the SQL layer's job (the store does not import resetkit.sql) --

def _catalog_count(store, view):
    import duckdb

    with duckdb.connect(str(store.root / "catalog.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]


def test_a_version_committed_by_a_command_is_in_sql_and_in_the_catalog(store):
    """A user's session: `resetkit sql --catalog`, then `resetkit build` (its own process) makes a new
    version; the catalog.duckdb the DuckDB CLI opens shows it at once, and so does `resetkit sql`."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.training.helpers import cli_env

    repo = Path(__file__).resolve().parents[2]
    dolly = repo / "builders" / "samples" / "dolly.jsonl"

    def build(limit):
        proc = subprocess.run([sys.executable, "-m", "resetkit.cli", "build", "if-train", "--source",
                               f"dolly={dolly}", "--only", "dolly", "--limit", str(limit), "--no-progress",
                               "--store", str(store.root)],
                              env=cli_env(), cwd=repo, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "warning" not in proc.stderr

    build(2)
    assert sql(store, "--catalog").exit_code == 0
    before = _catalog_count(store, "if_train")
    build(3)
    newest = store.resolve("if-train")
    assert _catalog_count(store, "if_train") == sum(newest.num_rows().values()) > before
    assert _catalog_count(store, f"if_train__v{newest.version}") == sum(newest.num_rows().values())
    res = sql(store, "SELECT version FROM resetkit_datasets WHERE view = 'if_train'", "--format", "csv")
    assert res.output.splitlines() == ['"version"', f'"{newest.version}"']


def test_a_stale_catalog_is_rewritten_when_resetkit_sql_opens_the_store(filled, monkeypatch):
    """A version committed where no commit hook ran (the Python API): `resetkit sql` finds the
    catalog stale and rewrites it before the query; a current catalog is left as it is."""
    from resetkit import store as store_module
    from resetkit.sql import refresh_stale_catalog

    store, _, _ = filled
    assert sql(store, "--catalog").exit_code == 0
    monkeypatch.setattr(store_module, "COMMIT_HOOKS", {})  # no hook installed in this process
    _examples(store, "if-train", 7)
    assert _catalog_count(store, "if_train") == 5          # the commit alone did not touch it
    res = sql(store, "SELECT count(*) AS n FROM if_train", "--format", "csv")
    assert res.exit_code == 0 and res.output.splitlines() == ['"n"', "7"]
    assert _catalog_count(store, "if_train") == 7
    mtime = (store.root / "catalog.duckdb").stat().st_mtime_ns
    assert refresh_stale_catalog(store) is False
    assert (store.root / "catalog.duckdb").stat().st_mtime_ns == mtime


def test_no_catalog_is_made_unless_asked(filled, monkeypatch):
    from resetkit import store as store_module
    from resetkit.sql import install_commit_hook

    store, _, _ = filled
    monkeypatch.setattr(store_module, "COMMIT_HOOKS", {})
    install_commit_hook()
    assert list(store_module.COMMIT_HOOKS) == ["sql.catalog"]
    _examples(store, "if-train", 7)
    assert sql(store, "SELECT 1").exit_code == 0
    assert not (store.root / "catalog.duckdb").exists()


def test_a_catalog_that_cannot_be_rewritten_is_a_warning_not_a_lost_commit(filled, monkeypatch, capsys):
    from resetkit import store as store_module
    from resetkit.sql import keep_catalog_current

    store, _, _ = filled
    assert sql(store, "--catalog").exit_code == 0
    monkeypatch.setattr(store_module, "COMMIT_HOOKS", {"sql.catalog": keep_catalog_current})
    (store.root / "catalog.duckdb").unlink()
    (store.root / "catalog.duckdb").mkdir()                # cannot be replaced by a file
    version = _examples(store, "if-train", 7)
    assert store.resolve("if-train").version == version.version
    err = capsys.readouterr().err
    assert f"warning: if-train@{version.version} is committed, but" in err and "resetkit sql --catalog" in err

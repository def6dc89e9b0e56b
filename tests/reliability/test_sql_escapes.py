"""`resetkit sql` against the escape list: every way out of "read-only over the store's data files".

Each statement must be refused (or fail) with one line and no traceback, print nothing it read
outside the store's data files, and leave the store byte-identical.  Issue 14 item 10: before,
`UPDATE EXTENSIONS` gave a ValueError traceback and a tampered catalog.duckdb survived --catalog.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from resetkit.cli import main

pytestmark = pytest.mark.reliability

SECRET = "resetkit-outside-secret-7f3a"

ESCAPES = {
    # writes
    "insert": "INSERT INTO if_train SELECT * FROM if_train",
    "update": "UPDATE if_train SET id = 'x'",
    "delete": "DELETE FROM if_train",
    "create_table": "CREATE TABLE t AS SELECT 1",
    "create_macro": "CREATE MACRO m() AS 1",
    "create_secret": "CREATE SECRET s (TYPE s3)",
    "drop": "DROP VIEW if_train",
    "alter": "COMMENT ON VIEW if_train IS 'x'",
    "vacuum": "VACUUM",
    "checkpoint": "CHECKPOINT",
    "transaction": "BEGIN",
    "prepare": "PREPARE p AS SELECT 1",
    "pivot": "PIVOT if_train ON id",
    "copy_to": "COPY (SELECT 1) TO '{store}/x.csv'",
    "copy_over_data": "COPY (SELECT 1) TO '{data}' (FORMAT parquet)",
    "copy_from": "COPY if_train FROM '{outside_csv}'",
    "export": "EXPORT DATABASE '{store}/export'",
    "explain_write": "EXPLAIN ANALYZE COPY (SELECT 1) TO '{store}/y.csv'",
    # other databases and extensions
    "attach": "ATTACH '{store}/x.db' AS x",
    "attach_memory": "ATTACH ':memory:' AS m",
    "detach": "DETACH memory",
    "use": "USE memory",
    "install": "INSTALL httpfs",
    "force_install": "FORCE INSTALL httpfs",
    "load": "LOAD httpfs",
    "load_path": "LOAD '{store}/x.duckdb_extension'",
    "update_extensions": "UPDATE EXTENSIONS",
    "update_extensions_one": "UPDATE EXTENSIONS (httpfs)",
    "explain_update_extensions": "EXPLAIN UPDATE EXTENSIONS",
    # settings
    "pragma": "PRAGMA enable_profiling = 'json'",
    "pragma_plain": "PRAGMA version",
    "set": "SET enable_external_access = true",
    "set_variable": "SET VARIABLE x = 1",
    "reset": "RESET lock_configuration",
    "call": "CALL checkpoint()",
    # file functions and paths outside the store's data files
    "read_csv": "SELECT * FROM read_csv('{outside_csv}')",
    "read_csv_list": "SELECT * FROM read_csv(['{outside_csv}'])",
    "read_text": "SELECT * FROM read_text('{outside_csv}')",
    "read_blob": "SELECT * FROM read_blob('{outside_csv}')",
    "read_json": "SELECT * FROM read_json_auto('{outside_csv}')",
    "sniff_csv": "SELECT * FROM sniff_csv('{outside_csv}')",
    "glob_outside": "SELECT * FROM glob('{outside}/*')",
    "glob_store": "SELECT * FROM glob('{store}/*')",
    "replacement_scan": "SELECT * FROM '{outside_csv}'",
    "outside_parquet": "SELECT * FROM read_parquet('{outside_parquet}')",
    "parquet_metadata": "SELECT * FROM parquet_metadata('{outside_parquet}')",
    "store_manifest": "SELECT * FROM read_text('{version}/manifest.json')",
    "store_glob_parquet": "SELECT * FROM read_parquet('{store}/*/*/data/*.parquet')",
    "url": "SELECT * FROM 'https://example.com/x.parquet'",
    "summarize_outside": "SUMMARIZE SELECT * FROM read_csv('{outside_csv}')",
    "describe_outside": "DESCRIBE SELECT * FROM read_text('{outside_csv}')",
    "query_write": "SELECT * FROM query('COPY (SELECT 1) TO ''{store}/q.csv''')",
    # stacked statements and comments hiding keywords
    "stacked": "SELECT 1; DROP VIEW if_train",
    "stacked_copy": "SELECT 1; COPY (SELECT 1) TO '{store}/z.csv'",
    "comment_line": "SELECT 1 -- ;\n; DROP VIEW if_train",
    "comment_block_first": "/* SELECT */ DROP VIEW if_train",
    "comment_block_inside": "SELECT /* ; */ 1; /* SELECT */ ATTACH '{store}/w.db'",
    "leading_line_comment": "-- SELECT\nCOPY (SELECT 1) TO '{store}/c.csv'",
}


@pytest.fixture
def setup(tmp_path):
    from resetkit.store import Store

    store = Store(tmp_path / "store")
    with store.create("if-train", builder="test", config={}) as w:
        w.write("train", pa.table({"id": ["a", "b", "c"]}))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"name\n{SECRET}\n")
    pq.write_table(pa.table({"x": [SECRET]}), outside / "secret.parquet")
    paths = {"store": store.root, "outside": outside, "outside_csv": outside / "secret.csv",
             "outside_parquet": outside / "secret.parquet", "version": w.result.path,
             "data": w.result.files()[0]}
    return store, paths


def snapshot(root):
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("key", sorted(ESCAPES))
def test_escape_is_refused(setup, key):
    store, paths = setup
    statement = ESCAPES[key].format(**paths)
    before = snapshot(store.root)
    outside_before = snapshot(paths["outside"])
    # `--` so that a statement starting with a comment is not taken for an option
    res = CliRunner().invoke(main, ["sql", "--store", str(store.root), "--format", "csv", "--", statement])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output and SECRET not in res.output
    assert snapshot(store.root) == before
    assert snapshot(paths["outside"]) == outside_before


def test_a_plain_select_still_runs(setup):
    store, _ = setup
    res = CliRunner().invoke(main, ["sql", "--store", str(store.root), "--format", "csv",
                                    "SELECT count(*) AS n FROM if_train"])
    assert res.exit_code == 0 and res.output.splitlines() == ['"n"', "3"]


def test_tampered_catalog_is_rewritten_and_commits_repair_it(setup):
    store, paths = setup
    assert CliRunner().invoke(main, ["sql", "--store", str(store.root), "--catalog"]).exit_code == 0
    catalog = store.root / "catalog.duckdb"

    def tamper():
        with duckdb.connect(str(catalog)) as con:
            con.execute(f"CREATE OR REPLACE VIEW if_train AS SELECT * FROM read_csv('{paths['outside_csv']}')")

    def view_reads_outside():
        with duckdb.connect(str(catalog), read_only=True) as con:
            return SECRET in str(con.execute("SELECT * FROM if_train").fetchall())

    tamper()
    assert view_reads_outside()
    assert CliRunner().invoke(main, ["sql", "--store", str(store.root), "--catalog"]).exit_code == 0
    assert not view_reads_outside()
    # a rebuild of the same version (nothing changed in the store's listing) also rewrites it
    tamper()
    with store.create("if-train", builder="test", config={}) as w:
        w.write("train", pa.table({"id": ["a", "b", "c"]}))
    assert not view_reads_outside()

"""No column of any dataset the store writes is a reserved SQL keyword (issue 12 item 10).

`references` used to be a column of every corpus: DuckDB reserves it, so every query had to
quote it. The check uses DuckDB's own keyword list, on every Arrow schema the packages define
and on the Parquet files of real builds.
"""

from __future__ import annotations

import importlib
import pkgutil

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

PACKAGES = ("resetkit", "builders", "judging", "training", "pipeline")


def _reserved() -> set[str]:
    rows = duckdb.sql("SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'")
    return {r[0].lower() for r in rows.fetchall()}


def _names(schema: pa.Schema, prefix: str = ""):
    """Every column name, nested struct fields included."""
    def walk(field: pa.Field, path: str):
        yield path + field.name, field.name
        t = field.type
        while pa.types.is_list(t) or pa.types.is_large_list(t):
            t = t.value_type
        if pa.types.is_struct(t):
            for i in range(t.num_fields):
                yield from walk(t.field(i), f"{path}{field.name}.")
    for f in schema:
        yield from walk(f, prefix)


def _package_schemas() -> dict[str, pa.Schema]:
    found = {}
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in pkgutil.walk_packages(pkg.__path__, pkg_name + "."):
            if mod.name.endswith("__main__") or ".samples." in mod.name:
                continue
            module = importlib.import_module(mod.name)
            for attr, value in vars(module).items():
                if isinstance(value, pa.Schema) and getattr(module, "__name__", "") == mod.name:
                    found.setdefault(attr, value)
    return found


def test_duckdb_still_reserves_references():
    # guards the test itself: if the keyword list came back empty, every check would pass
    assert "references" in _reserved() and "select" in _reserved()


def test_no_schema_column_is_a_reserved_keyword():
    reserved = _reserved()
    schemas = _package_schemas()
    # the datasets of every stage: corpora, pools, scores, selections, evaluations
    assert {"EXAMPLES", "CANDIDATES", "SCORES", "SELECTION", "EVAL"} <= set(schemas)
    bad = [f"{name}.{path}" for name, schema in schemas.items()
           for path, col in _names(schema) if col.lower() in reserved]
    assert not bad, f"reserved SQL keywords as column names: {bad}"


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    from builders.corpora import build_all_samples

    root = tmp_path_factory.mktemp("kw") / "store"
    build_all_samples(root)
    return root


def test_built_corpora_have_no_reserved_column_and_query_unquoted(sample_store):
    reserved = _reserved()
    files = sorted(sample_store.rglob("*.parquet"))
    assert files
    for f in files:
        schema = pq.read_schema(f)
        bad = [path for path, col in _names(schema) if col.lower() in reserved]
        assert not bad, f"{f}: reserved SQL keywords as column names: {bad}"
    # the gold answers are selectable without quoting
    cd = next(f for f in files if "cd-train" in str(f) or "cd_train" in str(f))
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{cd}') WHERE len(refs) > 0").fetchall()[0][0]
    assert n > 0

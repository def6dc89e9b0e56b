"""``resetkit sql``: read-only DuckDB SQL over the store.

Views (one per dataset version, over its Parquet files, nothing copied):

- ``<name>``               newest version of a dataset, all splits (hyphens -> underscores:
                           ``if-train`` -> ``if_train``);
- ``<name>__<split>``      one split of the newest version (datasets with several splits);
- ``<name>__v<version>``   a pinned version (the full id, as ``resetkit ls`` shows it);
- ``resetkit_datasets``    one row per view: view, dataset, version, newest, split, rows, path.

Read-only, two layers:
1. only SELECT (and EXPLAIN of a SELECT) statements are run; anything else (INSERT, UPDATE,
   DELETE, CREATE, DROP, COPY, ATTACH, EXPORT, INSTALL/LOAD, SET, PRAGMA, CALL, ...), including
   statement types this DuckDB cannot even name to Python (``UPDATE EXTENSIONS``), is refused
   with a clear message before anything executes;
2. the connection is in-memory, and after the views are made, external access is switched
   off except for reading exactly the store's data files, and the configuration is locked:
   even a statement that got past layer 1 could neither write a file nor change a setting.
DuckDB spills, if it must, into a temporary directory outside the store.

``resetkit sql --catalog`` also writes ``STORE/catalog.duckdb``, a database holding only
those views, so the DuckDB CLI or any DuckDB client can open the store:
``duckdb -readonly store/catalog.duckdb`` or ``ATTACH 'store/catalog.duckdb' AS store (READ_ONLY)``.
Keeping it current is this layer's job: the ``resetkit`` command line installs a store commit hook
(``install_commit_hook``) that rewrites an existing catalog after every commit, and ``resetkit sql``
rewrites a stale one (a version committed through the Python API) before it runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import click

from .cli_options import store_option
from .errors import ResetkitError
from .store import Store

CATALOG_FILE = "catalog.duckdb"
ALLOWED = {"SELECT"}  # EXPLAIN is allowed when what it explains is a SELECT


@dataclass(frozen=True)
class View:
    view: str
    dataset: str
    version: str
    newest: bool
    split: str | None
    rows: int
    path: str
    files: tuple[str, ...]


def view_name(name: str) -> str:
    """Dataset name -> SQL identifier: ``if-train`` -> ``if_train``."""
    out = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return out if not out[:1].isdigit() else f"_{out}"


def store_views(store: Store) -> list[View]:
    """Every view the store gets, newest versions first, in a stable order."""
    views: list[View] = []
    for name in store.names():
        latest = store.latest(name)
        base = view_name(name)
        for v in store.versions(name):
            files = tuple(str(p) for p in v.files())
            if not files:
                continue
            rows = sum(v.num_rows().values())
            newest = latest is not None and v.version == latest.version
            if newest:
                views.append(View(base, name, v.version, True, None, rows, str(v.path), files))
                splits = v.splits
                if len(splits) > 1:
                    for split, paths in splits.items():
                        views.append(View(f"{base}__{view_name(split)}", name, v.version, True, split,
                                          v.num_rows().get(split, 0), str(v.path),
                                          tuple(str(p) for p in paths)))
            views.append(View(f"{base}__v{v.version}", name, v.version, newest, None, rows, str(v.path), files))
    return views


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _create_views(con, views: list[View]) -> None:
    # DDL over file paths the store itself lists; user values never reach this text.
    for v in views:
        files = "[" + ", ".join(_quote(f) for f in v.files) + "]"
        con.execute(f"CREATE VIEW {_ident(v.view)} AS SELECT * FROM read_parquet({files}, union_by_name = true)")
    rows = ", ".join(
        f"({_quote(v.view)}, {_quote(v.dataset)}, {_quote(v.version)}, {str(v.newest).upper()}, "
        f"{_quote(v.split) if v.split else 'NULL::VARCHAR'}, {int(v.rows)}::BIGINT, {_quote(v.path)})" for v in views)
    body = (f"SELECT * FROM (VALUES {rows}) AS t(view, dataset, version, newest, split, rows, path)" if views
            else "SELECT NULL::VARCHAR AS view, NULL::VARCHAR AS dataset, NULL::VARCHAR AS version, "
                 "NULL::BOOLEAN AS newest, NULL::VARCHAR AS split, NULL::BIGINT AS rows, NULL::VARCHAR AS path "
                 "WHERE false")
    con.execute(f"CREATE VIEW resetkit_datasets AS {body}")


@contextlib.contextmanager
def connect(store: Store, *, threads: int | None = None, memory_limit: str | None = None):
    """A locked-down in-memory DuckDB connection with the store's views (see module docstring)."""
    import duckdb

    views = store_views(store)
    with tempfile.TemporaryDirectory(prefix="resetkit-sql-") as tmp:
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET autoinstall_known_extensions = false")
            con.execute("SET autoload_known_extensions = false")
            con.execute("SET temp_directory = ?", [tmp])
            if threads:
                con.execute(f"SET threads = {int(threads)}")
            if memory_limit:
                con.execute("SET memory_limit = ?", [memory_limit])
            _create_views(con, views)
            con.execute("SET allowed_paths = ?", [sorted({f for v in views for f in v.files})])
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            yield con
        finally:
            con.close()


def check_read_only(con, query: str):
    """Parse ``query``; return its single statement if it only reads, else raise ResetkitError."""
    import duckdb

    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise ResetkitError(_one_line(exc)) from None
    if not statements:
        raise ResetkitError("empty query")
    if len(statements) > 1:
        raise ResetkitError(f"one statement at a time, got {len(statements)}")
    st = statements[0]
    try:
        kind = st.type.name
    except (ValueError, AttributeError):  # a statement type this duckdb's Python API cannot name
        kind = "unrecognised"
    if kind == "EXPLAIN":
        inner = re.sub(r"^\s*explain\s+(analy[sz]e\s+)?", "", st.query, flags=re.I)
        with contextlib.suppress(ResetkitError):
            if check_read_only(con, inner).type.name in ALLOWED:
                return st
        raise ResetkitError("refused: resetkit sql is read-only, and EXPLAIN is only allowed for a SELECT")
    if kind not in ALLOWED:
        words = " ".join(st.query.split()[:3])
        raise ResetkitError(
            f"refused: resetkit sql is read-only; {kind} statements ({words} ...) are not run. "
            "Only SELECT (with WITH, FROM-first, DESCRIBE, SHOW, SUMMARIZE) and EXPLAIN SELECT are "
            "allowed; to save a result, use --format csv|json|parquet -o FILE.")
    return st


def parse_param(value: str):
    """``-p`` values: integers and floats become numbers, anything else stays text."""
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def run_query(con, query: str, params: dict | None = None):
    """Check and run one read-only query; returns a DuckDB relation. DuckDB errors -> ResetkitError."""
    import duckdb

    st = check_read_only(con, query)
    params = dict(params or {})
    missing = sorted(set(st.named_parameters) - set(params))
    if missing:
        raise ResetkitError(f"the query uses {', '.join('$' + m for m in missing)}: pass "
                            + " ".join(f"-p {m} VALUE" for m in missing))
    unused = sorted(set(params) - set(st.named_parameters))
    if unused:
        raise ResetkitError(f"-p {', '.join(unused)}: the query has no such parameter")
    try:
        return con.sql(query, params=params or None)
    except duckdb.Error as exc:
        raise ResetkitError(_one_line(exc)) from None


# -- the catalog file ---------------------------------------------------------------------
def catalog_fingerprint(views: list[View]) -> str:
    from .store import short_hash

    return short_hash([[v.view, v.version, list(v.files)] for v in views], n=16)


def refresh_catalog(store: Store) -> Path:
    """Write ``STORE/catalog.duckdb`` (views only), every time.

    Always rewritten from the store, never trusted: another client may have opened the file
    read-write and redirected a view (to ``read_csv('/etc/passwd')``, say), and a check of a
    fingerprint stored inside the file would not see that.  Written into a temp file in the store
    and renamed into place: readers never see half a catalog.  Returns its path.  Called by
    ``resetkit sql --catalog``, after every commit once the catalog exists (``keep_catalog_current``)
    and when ``resetkit sql`` finds it stale (``refresh_stale_catalog``).
    """
    import duckdb

    views = store_views(store)
    fp = catalog_fingerprint(views)
    path = store.root / CATALOG_FILE
    store.root.mkdir(parents=True, exist_ok=True)
    tmp = store.root / f".{CATALOG_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with contextlib.closing(duckdb.connect(str(tmp))) as con:
            _create_views(con, views)
            con.execute("CREATE VIEW resetkit_catalog AS SELECT " + _quote(fp) + " AS fingerprint, "
                        + _quote(str(store.root)) + " AS store")
        os.replace(tmp, path)
    except (OSError, duckdb.Error) as exc:
        raise ResetkitError(f"cannot write {path}: {str(exc).strip()}") from None
    finally:
        for p in (tmp, tmp.with_name(tmp.name + ".wal")):
            if p.exists():
                p.unlink()
    return path


def keep_catalog_current(store: Store, version=None) -> None:
    """The commit hook: rewrite ``STORE/catalog.duckdb`` when the user made one (it exists)."""
    path = store.root / CATALOG_FILE
    if path.exists():
        try:
            refresh_catalog(store)
        except ResetkitError as exc:
            raise ResetkitError(f"{path} could not be rewritten ({exc}); run `resetkit sql --catalog` once "
                                "there is room") from None


def install_commit_hook() -> None:
    """Keep the catalog current after every commit in this process (the ``resetkit`` command line
    installs it; the store itself does not know about SQL)."""
    from . import store

    store.COMMIT_HOOKS["sql.catalog"] = keep_catalog_current


def refresh_stale_catalog(store: Store) -> bool:
    """Rewrite ``STORE/catalog.duckdb`` if it exists and lists other versions than the store now
    holds (a version committed by a process without the commit hook, e.g. the Python API).
    Returns whether it was rewritten; a catalog that cannot be rewritten is a warning.  Staleness
    only: the fingerprint inside says which versions it lists, not that nobody redirected a view
    (the next commit or ``--catalog`` rewrites it whole)."""
    import duckdb

    path = store.root / CATALOG_FILE
    if not path.exists():
        return False
    try:
        with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
            current = con.execute("SELECT fingerprint FROM resetkit_catalog").fetchone()[0]
    except duckdb.Error:
        current = None  # not readable as a catalog: write it again
    if current == catalog_fingerprint(store_views(store)):
        return False
    try:
        keep_catalog_current(store)
    except (OSError, ResetkitError) as exc:
        print(f"warning: {exc}", file=sys.stderr)
        return False
    return True


# -- output ---------------------------------------------------------------------------------
def _print_table(rel, limit: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = rel.limit(limit + 1).to_arrow_table()
    shown = table.slice(0, limit)
    out = Table(show_lines=False)
    for name, typ in zip(rel.columns, rel.types):
        out.add_column(f"{name}\n{typ}")
    for row in shown.to_pylist():
        out.add_row(*["NULL" if v is None else str(v) for v in row.values()])
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(out)
    if table.num_rows > limit:
        click.echo(f"(showing the first {limit} rows; --limit N or --format csv for more)")


def _flatten_nested(table):
    """CSV has no lists or structs: such columns become their JSON text."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            values = [None if v is None else json.dumps(v, ensure_ascii=False, default=str)
                      for v in table.column(i).to_pylist()]
            table = table.set_column(i, field.name, pa.array(values, pa.string()))
    return table


def _write(rel, fmt: str, output: str | None) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = rel.to_arrow_table()
    if fmt == "parquet":
        pq.write_table(table, output)
    elif fmt == "csv":
        table = _flatten_nested(table)
        if output:
            pcsv.write_csv(table, output)
        else:
            import io

            buf = io.BytesIO()
            pcsv.write_csv(table, buf)
            click.echo(buf.getvalue().decode("utf-8"), nl=False)
    elif fmt == "json":
        lines = (json.dumps(row, ensure_ascii=False, default=str) for row in table.to_pylist())
        if output:
            with open(output, "w", encoding="utf-8") as fh:
                for line in lines:
                    fh.write(line + "\n")
        else:
            for line in lines:
                click.echo(line)


@click.command("sql")
@click.argument("query", required=False)
@store_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="Output format (json: one object per line).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the result to FILE (outside the store) instead of stdout.")
@click.option("-p", "--param", "params", nargs=2, multiple=True, metavar="NAME VALUE",
              help="Bind $NAME in the query (numbers are numbers, the rest text).")
@click.option("--views", "list_views", is_flag=True, help="List the views: datasets and pinned versions.")
@click.option("--catalog", "write_catalog", is_flag=True,
              help="Write STORE/catalog.duckdb (views only) for the DuckDB CLI and other tools.")
@click.option("--limit", default=50, show_default=True, help="Rows shown with --format table.")
def sql_command(query, store_dir, fmt, output, params, list_views, write_catalog, limit):
    """Run a read-only SQL query (DuckDB) over the store's datasets.

    Each dataset is a view over its Parquet files: NAME is the newest version (if-train ->
    if_train), NAME__SPLIT one split of it, NAME__v<VERSION> a pinned version.  Only SELECT
    runs: statements that write (INSERT, CREATE, COPY ... TO, ATTACH, ...) are refused.

    \b
    Examples:
      resetkit sql --views
      resetkit sql "SELECT source, count(*) FROM if_train GROUP BY ALL"
      resetkit sql "SELECT arm, avg(num_tokens) FROM pool GROUP BY arm" --format csv
      resetkit sql "SELECT * FROM selection WHERE score >= \\$min" -p min 2.5 --format json -o top.jsonl
      resetkit sql "SELECT * FROM pool__v3fa2c1d4e5f6 LIMIT 5"
      resetkit sql --catalog      # then: duckdb -readonly store/catalog.duckdb
    """
    store = Store(store_dir)
    if write_catalog:
        path = refresh_catalog(store)
        click.echo(f"wrote {path}\nopen it with: duckdb -readonly {path}\n"
                   f"or in DuckDB: ATTACH '{path}' AS store (READ_ONLY); USE store;")
        if not query and not list_views:
            return
    else:
        refresh_stale_catalog(store)
    if output:
        out = Path(output).resolve()
        if out == store.root or store.root in out.parents:
            raise ResetkitError(f"-o {output}: refusing to write inside the store {store.root} (it is read-only here)")
    if fmt == "parquet" and not output:
        raise ResetkitError("--format parquet needs -o FILE")
    if list_views:
        query = query or "SELECT view, dataset, version, newest, split, rows FROM resetkit_datasets"
    if not query:
        raise click.UsageError("give a QUERY, or --views")
    with connect(store) as con:
        rel = run_query(con, query, {name: parse_param(value) for name, value in params})
        if rel is None:
            return
        try:
            if fmt == "table" and not output:
                _print_table(rel, limit)
            else:
                _write(rel, "csv" if fmt == "table" else fmt, output)
        except Exception as exc:  # DuckDB errors raised while fetching (e.g. a bad cast)
            import duckdb

            if isinstance(exc, duckdb.Error):
                raise ResetkitError(str(exc).strip()) from None
            raise
    if output:
        click.echo(f"wrote {output}", err=True)


def _one_line(exc: Exception) -> str:
    """DuckDB's message on one line: its LINE/caret excerpt and hints joined with '; '."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and set(ln.strip()) != {"^"}]
    return "; ".join(lines) or type(exc).__name__

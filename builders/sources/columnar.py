"""Columnar fast path: read a whole split as one Arrow table and check it in bulk.

Why: the instruction-following sources are many small rows (~276k for if-train at paper
scale); turning each into a Python dict, checking it and converting it costs ~25 us a row,
which is most of the build.  Here a split is read with Arrow's C++ readers (JSONL via
``pyarrow.json``, Parquet) or, for a JSON array (which pyarrow cannot read), with
``json.loads`` on ~1 MB groups of elements gathered into columns, and its column checks
(required, not null, type) run on whole columns.  Sources then apply their rules with
``pyarrow.compute`` kernels (``Source.convert_table``).

Compressed JSON and JSONL (``.gz``, ``.bz2``, ``.xz``, ``.zst``) are read here too, as a
stream (``reader.open_data``): JSONL through ``pyarrow.json.open_json`` block by block, a
JSON array element by element.  CSV and column-oriented JSON objects take the row path.

This path only *accepts* input; it never reports it.  ``read_split`` returns None whenever
it cannot vouch that every row is well formed (a parse error, a wrong type, a null in a
required column, text that is not valid UTF-8 -- Arrow's JSON and Parquet readers do not
check that, so every table is validated --, an empty or unreadable file, a kind it does not
handle); the caller then reads the split with the row-by-row reader (``reader.iter_file``),
which raises the error naming file, line or row and column (or skips and counts the row).
Good input therefore gives the same rows on both paths, and bad input the same error or
the same drop counts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from resetkit.errors import BadInputError

from . import reader
from .reader import Column

# Python's str.isspace() set (also what Python's regex \s matches in str patterns).  RE2's
# \s is ASCII-only, so regexes that must agree with the row path spell the class out.
PY_SPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
PY_SPACE_CLASS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in PY_SPACE) + "]"


class _Unsupported(Exception):
    """The fast path cannot vouch for this input: use the row path."""


def read_split(files: list[Path], columns: list[Column], limit: int | None) -> pa.Table | None:
    """The declared columns of a split's files (in order, at most ``limit`` rows) as one table
    with string columns as ``pa.string()``, or None when the row path must be used."""
    tables = []
    try:
        for path in files:
            tables.append(_read_file(path, columns))
    except _Unsupported:
        return None
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return table.slice(0, limit) if limit is not None else table


def _read_file(path: Path, columns: list[Column]) -> pa.Table:
    fmt, comp = reader.file_kind(path)
    try:
        if path.stat().st_size == 0:
            raise _Unsupported  # the row path reports the empty file
    except OSError:
        raise _Unsupported from None
    if fmt == ".parquet":
        table = _read_parquet(path, columns)
    elif fmt in (".json", ".jsonl"):
        if any(c.kind != "str" for c in columns):
            raise _Unsupported  # nested JSON (e.g. OASST-1's raw labels) stays on the row path
        first = reader._first_char(path)
        if first == "[":
            table = _read_json_array(path, columns) if comp is None else _read_json_array_stream(path, columns)
        elif first == "{" and not (fmt == ".json" and reader._is_column_object(path)):
            table = _read_jsonl(path, columns)
        else:
            raise _Unsupported
    else:  # CSV cells need the row path's per-cell conversions
        raise _Unsupported
    if table.num_rows == 0:
        raise _Unsupported  # the row path reports the file without rows
    try:  # Arrow's JSON and Parquet readers take any bytes as text: check the UTF-8
        table.validate(full=True)
    except pa.ArrowInvalid:
        raise _Unsupported from None
    _check(table, columns)
    for i, col in enumerate(columns):  # large_string / string_view from Parquet -> string
        if col.kind == "str" and not pa.types.is_null(table.column(i).type):
            table = table.set_column(i, col.name, table.column(i).cast(pa.string()))
    return table


def _read_parquet(path: Path, columns: list[Column]) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path, pre_buffer=False)
        present = [c.name for c in columns if c.name in pf.schema_arrow.names]
        table = pf.read(columns=present)
    except (pa.ArrowException, OSError) as exc:  # truncated, corrupt, unreadable: the row path says so
        raise _Unsupported from exc
    for col in columns:  # a missing optional column reads as null, as on the row path
        if col.name not in present:
            table = table.append_column(col.name, pa.nulls(table.num_rows, pa.string()))
    return table.select([c.name for c in columns])


_TWO_OBJECTS = re.compile(rb"\}[ \t\r]*\{")


class _LineGuard:
    """A file object over a (decompressed) JSONL stream for ``pyarrow.json.open_json`` that
    watches for two objects on one line (``} {``), which Arrow accepts and the row path does
    not.  Such text inside a string also trips it: the row path then decides, at its speed."""

    def __init__(self, fh):
        self.fh, self.tail, self.closed = fh, b"", False

    def read(self, n=-1):
        data = self.fh.read(n if n is not None and n >= 0 else -1)
        if _TWO_OBJECTS.search(self.tail + data[:4096]) or _TWO_OBJECTS.search(data):
            raise _Unsupported
        self.tail = (self.tail + data[-4096:])[-4096:]
        return data

    def readable(self):
        return True

    def close(self):
        self.closed = True


def _read_jsonl(path: Path, columns: list[Column]) -> pa.Table:
    """JSON Lines through Arrow's streaming JSON reader, block by block from the
    (decompressed) stream: the file is never held whole, compressed or not."""
    import pyarrow.json as pj

    schema = pa.schema([(c.name, pa.string()) for c in columns])
    try:
        with reader.open_data(path) as fh:
            stream = pj.open_json(pa.PythonFile(_LineGuard(fh), mode="r"),
                                  read_options=pj.ReadOptions(block_size=4 << 20),
                                  parse_options=pj.ParseOptions(explicit_schema=schema,
                                                                unexpected_field_behavior="ignore"))
            table = pa.Table.from_batches(list(stream), schema=stream.schema)
    except (pa.ArrowException, UnicodeDecodeError, BadInputError, OSError) as exc:  # bad JSON, wrong type...
        raise _Unsupported from exc
    return table.select([c.name for c in columns])


class _PassThrough:
    """Stands in for ``RowChecker`` in the JSON-array parser: collects objects unchecked,
    raises on any structural error or bad text (the row path then reports it)."""

    columns: list[Column] = []
    records = 0

    def check(self, obj, path, *, line=None, row=None):
        return obj

    def bad(self, *args, **kwargs):
        raise _Unsupported

    def text_ok(self, *args, **kwargs):
        raise _Unsupported


GROUP_CHARS = 1 << 20
_ELEMENT_END = re.compile(r"\}\s*,")


def _read_json_array(path: Path, columns: list[Column]) -> pa.Table:
    """A top-level JSON array: parsed ~1 MB of elements at a time by ``json.loads`` (C
    speed, as fast as loading the whole file), or element by element when that fails."""
    table = _read_json_array_groups(path, columns)
    return table if table is not None else _read_json_array_stream(path, columns)


def _read_json_array_groups(path: Path, columns: list[Column]) -> pa.Table | None:
    """Cut the array's text after a ``}`` followed by ``,`` about every ``GROUP_CHARS``
    characters and parse ``"[" + group + "]"``.  A cut inside an element (a nested object, or
    a string) cannot parse: the parser is in the same state there as when reading the whole
    array, inside an unfinished value.  So a group that parses holds whole elements, and a
    group that does not is extended to the next cut (a few times, then None)."""
    try:
        text = path.read_bytes().decode("utf-8").strip(" \t\r\n")  # JSON whitespace only
    except UnicodeDecodeError:
        raise _Unsupported from None
    if len(text) < 2 or not (text.startswith("[") and text.endswith("]")):
        raise _Unsupported
    start, stop, batches = 1, len(text) - 1, []  # the elements lie in text[1:-1]
    while start < stop or not batches:
        end, tries = start + GROUP_CHARS, 0
        while True:
            m = _ELEMENT_END.search(text, end, stop) if end < stop else None
            cut = m.start() + 1 if m else stop
            try:
                objs = json.loads("[" + text[start:cut] + "]")
                if objs or not text[start:stop].strip():  # an empty group is a stray comma, unless "[]"
                    break
            except json.JSONDecodeError:
                pass
            tries += 1
            if cut == stop or tries > 3:  # a real error, or cuts that keep missing
                return None
            end = cut
        batches.append(_to_batch(objs, columns))
        start = m.end() if m else stop
    return pa.Table.from_batches(batches)


def _to_batch(objs: list, columns: list[Column]) -> pa.RecordBatch:
    """Declared columns of parsed JSON objects; pa.array rejects non-strings (numbers,
    lists...) for a string column, and ``.get`` anything that is not an object."""
    names = [c.name for c in columns]
    try:
        return pa.record_batch([pa.array([o.get(n) for o in objs], pa.string()) for n in names], names=names)
    except (pa.ArrowInvalid, pa.ArrowTypeError, AttributeError, UnicodeEncodeError) as exc:  # lone surrogates
        raise _Unsupported from exc


def _read_json_array_stream(path: Path, columns: list[Column]) -> pa.Table:
    """Elements of a top-level JSON array (pyarrow cannot read one) gathered into columns,
    ``reader.CHUNK_ROWS`` elements at a time (only those exist as Python objects)."""
    batches, objs = [], []
    try:
        for obj, _, _ in reader._iter_json_array(path, _PassThrough()):
            objs.append(obj)
            if len(objs) >= reader.CHUNK_ROWS:
                batches.append(_to_batch(objs, columns))
                objs = []
    except BadInputError as exc:
        raise _Unsupported from exc
    if objs or not batches:
        batches.append(_to_batch(objs, columns))
    return pa.Table.from_batches(batches)


_KIND_OK = {
    "str": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t),
    "int": pa.types.is_integer,
    "number": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t),
    "list": lambda t: pa.types.is_list(t) or pa.types.is_large_list(t),
    "dict": pa.types.is_struct,
    "any": lambda t: True,
}


def _check(table: pa.Table, columns: list[Column]) -> None:
    """Required columns have no nulls and every column has an Arrow type of its kind
    (``bool`` columns, and anything else unusual, go the row path)."""
    for col in columns:
        arr = table.column(col.name)
        if pa.types.is_null(arr.type):
            if col.required and table.num_rows:
                raise _Unsupported
            continue
        ok = _KIND_OK.get(col.kind)
        if ok is None or not ok(arr.type):
            raise _Unsupported
        if col.required and arr.null_count:
            raise _Unsupported


# -- string helpers shared by the sources' convert_table ---------------------------------
def clean(arr) -> pa.ChunkedArray:
    """``base.clean`` on a column: strip (Python's whitespace set) and None -> ""."""
    arr = pc.cast(arr, pa.string()) if not pa.types.is_null(arr.type) else pa.nulls(len(arr), pa.string())
    return pc.fill_null(pc.utf8_trim_whitespace(arr), "")


def empty(arr) -> pa.ChunkedArray:
    """Boolean: the (already cleaned) string is empty."""
    return pc.equal(pc.utf8_length(arr), 0)


def nonempty(arr) -> pa.ChunkedArray:
    return pc.invert(empty(arr))


def row_bytes(arr) -> list[bytes]:
    """Each row's UTF-8 bytes, for hashing without encoding Python strs (a cast to binary
    is free, and its ``to_pylist`` is the fastest way out of Arrow).  Null rows give None."""
    return pc.cast(arr, pa.binary()).to_pylist()


def json_string_field(key: str, values: list) -> list[str]:
    """``json.dumps({key: v}, ensure_ascii=False)`` for a list of str/None, without the
    per-row dict and encoder set-up (the C string encoder does the escaping)."""
    enc = json.encoder.encode_basestring  # C version when available; == ensure_ascii=False
    head = "{" + enc(key) + ": "
    return [head + ("null" if v is None else enc(v)) + "}" for v in values]


class Drops:
    """Applies rules in order, like ``convert``'s chain of early returns: each row is
    counted under the first rule it fails, and ``keep`` is what passes them all."""

    def __init__(self, ctx, n: int):
        self.ctx = ctx
        self.keep = pa.array([True] * n) if n else pa.array([], pa.bool_())

    def rule(self, reason: str, failed) -> None:
        failed = pc.and_(self.keep, pc.fill_null(failed, False))
        n = pc.sum(failed).as_py() or 0
        if n:
            self.ctx.drop(reason, n)
            self.keep = pc.and_(self.keep, pc.invert(failed))


def context_free_pairs(table: pa.Table, ctx, instruction: str, response: str, context: str, *,
                       min_words: int = 0) -> tuple:
    """``base.context_free_pair`` on whole columns (same rules, same order, same drop counts):
    the kept (instruction, response) columns, cleaned, and the keep mask."""
    ins, resp = clean(table[instruction]), clean(table[response])
    rules = Drops(ctx, table.num_rows)
    rules.rule("has_context", nonempty(clean(table[context])))
    rules.rule("empty_instruction", empty(ins))
    if min_words:
        # Arrow splits on the same whitespace as str.split(); a stripped "" still gives one
        # (empty) part, which is <= min_words either way
        parts = pc.list_value_length(pc.utf8_split_whitespace(resp, max_splits=min_words))
        rules.rule(f"response_{min_words}_words_or_fewer", pc.less_equal(parts, min_words))
    else:
        rules.rule("empty_response", empty(resp))
    return ins.filter(rules.keep), resp.filter(rules.keep), rules.keep

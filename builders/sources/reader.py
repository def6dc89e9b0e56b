"""Read upstream rows from local files (JSON, JSONL, Parquet, CSV, or a folder) or a Hub id.

Inputs: a path or Hub id, and the columns a source needs (name -> kind).
Outputs: ``Chunk`` objects per split -- a list of plain dict rows plus, per row, where it
came from (file and line or row number) so rule code and validation can name it.

Why not load everything at once: the paper-scale sources are large (MS MARCO v2.1 train is
809k rows with ~10 passages each), so rows are produced in chunks of ``chunk_rows``;
Parquet is read one record batch at a time, JSON lists (ShareGPT is one big JSON array)
are parsed element by element with ``json.JSONDecoder.raw_decode`` over a sliding buffer,
and JSONL line by line.  Only the current chunk exists as Python objects.

Validation: a row whose required column is missing, null, or of the wrong type, a line
that is not JSON, or bytes that are not UTF-8 raise ``BadInputError`` naming the file, the
line (JSON/JSONL) or row (Parquet and CSV records, counted from 1 after any header) and the column -- unless the caller
passes ``on_bad_rows="skip"``, in which case the row is dropped and counted under a reason
(``bad_json``, ``invalid_utf8``, ``missing:<col>``, ``null:<col>``, ``type:<col>``).
"""

from __future__ import annotations

import codecs
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from resetkit.errors import BadInputError, ResetkitError

CHUNK_ROWS = 8192
READ_BYTES = 1 << 20
SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
SPLIT_PREFIXES = {"train": "train", "validation": "validation", "dev": "validation", "val": "validation",
                  "valid": "validation", "test": "test"}

# column kinds a source can declare
KINDS: dict[str, Callable[[object], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool) or v in (0, 1),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
    "any": lambda v: True,
}


@dataclass(frozen=True)
class Column:
    """A column a source reads: ``kind`` is checked on every row; ``required`` columns may
    not be missing or null; optional ones default to None."""

    name: str
    kind: str = "str"
    required: bool = True


@dataclass
class Chunk:
    rows: list[dict]
    where: list[tuple[str, str, int]]  # (file, "line"|"row", number) per row


@dataclass
class ReadStats:
    """Rows dropped while reading (skip mode), per reason."""

    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n


def split_of(path: Path) -> str | None:
    """Split named by a file name in a folder (Hub naming: train*, validation*/dev*, test*)."""
    stem = path.name.lower()
    for prefix, split in SPLIT_PREFIXES.items():
        if re.match(rf"{prefix}(\b|[-_.0-9])", stem):
            return split
    return None


def local_splits(path: str | os.PathLike) -> dict[str, list[Path]]:
    """Map a local file (the train split) or folder (Hub split naming) to files per split."""
    path = Path(path)
    if path.is_file():
        return {"train": [path]}
    if not path.is_dir():
        raise ResetkitError(f"input not found: {path}")
    out: dict[str, list[Path]] = {}
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES:
            split = split_of(p)
            if split is not None:
                out.setdefault(split, []).append(p)
    if not out:
        raise ResetkitError(f"{path}: no train*/validation*/dev*/test* files "
                            f"({', '.join(SUFFIXES)}) in this folder")
    return out


class RowChecker:
    """Checks rows against the declared columns; raises or counts per ``on_bad_rows``."""

    def __init__(self, columns: list[Column], on_bad_rows: str, stats: ReadStats):
        self.columns, self.skip, self.stats = columns, on_bad_rows == "skip", stats
        # (name, required, exact type for the fast path or None, full check) per column
        fast = {"str": str, "list": list, "dict": dict}
        self._plan = [(c.name, c.required, fast.get(c.kind), KINDS[c.kind]) for c in columns]

    def bad(self, reason: str, path, msg: str, *, line=None, row=None, column=None) -> None:
        if self.skip:
            self.stats.drop(reason)
            return
        raise BadInputError(path, msg, line=line, row=row, column=column)

    def check(self, obj, path, *, line=None, row=None) -> dict | None:
        if type(obj) is not dict:
            self.bad("type:row", path, f"expected a JSON object, got {type(obj).__name__}", line=line, row=row)
            return None
        out = {}
        get = obj.get
        for name, required, exact, ok in self._plan:
            value = get(name)
            if value is None:
                if required:
                    what = "missing" if name not in obj else "null"
                    self.bad(f"{what}:{name}", path, f"required column is {what}", line=line, row=row, column=name)
                    return None
            elif type(value) is not exact and not ok(value):
                kind = next(c.kind for c in self.columns if c.name == name)
                self.bad(f"type:{name}", path, f"expected {kind}, got {type(value).__name__} "
                         f"({str(value)[:40]!r})", line=line, row=row, column=name)
                return None
            out[name] = value
        return out


def _decode_lines(path: Path, checker: RowChecker) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) of a UTF-8 file; a line with bad bytes is an error (or skipped)."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                checker.bad("invalid_utf8", path, f"invalid UTF-8 at byte {exc.start} of the line", line=n)


def _iter_jsonl(path: Path, checker: RowChecker) -> Iterator[tuple[dict, str, int]]:
    for n, text in _decode_lines(path, checker):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            checker.bad("bad_json", path, f"not valid JSON ({exc.msg} at column {exc.colno})", line=n)
            continue
        row = checker.check(obj, path, line=n)
        if row is not None:
            yield row, "line", n


def _first_char(path: Path) -> str:
    with open(path, "rb") as fh:
        while True:
            b = fh.read(1)
            if not b or not b.isspace():
                return b.decode("latin-1")


def _iter_json_array(path: Path, checker: RowChecker) -> Iterator[tuple[dict, str, int]]:
    """Stream the elements of one top-level JSON array without loading the whole file."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")("strict")
    # ``line`` is the line number at buf[counted]; newlines are counted forward only (linear time)
    buf, pos, line, counted, eof = "", 0, 1, 0, False

    def line_at(p: int) -> int:
        nonlocal line, counted
        line += buf.count("\n", counted, p)
        counted = p
        return line

    with open(path, "rb") as fh:
        def more() -> bool:
            """Drop the consumed part of the buffer and append the next block; False at EOF."""
            nonlocal buf, pos, eof, counted
            if eof:
                return False
            data = fh.read(READ_BYTES)
            eof = not data
            try:
                text = utf8.decode(data, final=eof)
            except UnicodeDecodeError as exc:
                # cannot resynchronise inside a JSON array: always an error
                at = line_at(len(buf)) + data[:exc.start].count(b"\n")
                raise BadInputError(path, "invalid UTF-8 bytes", line=at) from exc
            line_at(pos)
            buf, pos, counted = buf[pos:] + text, 0, 0
            return bool(text) or not eof

        def skip_ws():
            nonlocal pos
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n":
                    pos += 1
                if pos < len(buf) or not more():
                    return

        skip_ws()
        if pos >= len(buf) or buf[pos] != "[":
            raise BadInputError(path, "expected a JSON array ('[') or JSON Lines", line=line_at(min(pos, len(buf))))
        pos += 1
        skip_ws()
        if pos < len(buf) and buf[pos] == "]":
            return
        while True:
            skip_ws()
            while True:
                try:
                    obj, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError:
                    pass
                if more():  # maybe the element runs past the buffer: read on (positions re-based)
                    continue
                try:  # the whole rest of the file is in the buffer: a real error
                    obj, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as exc:
                    line_at(pos)
                    raise BadInputError(path, f"not valid JSON ({exc.msg})", line=line_at(exc.pos)) from None
            start_line = line_at(pos)
            pos = end
            row = checker.check(obj, path, line=start_line)
            if row is not None:
                yield row, "line", start_line
            skip_ws()
            if pos < len(buf) and buf[pos] == ",":
                pos += 1
                if pos > READ_BYTES:  # keep the buffer from growing: drop what is consumed
                    line_at(pos)
                    buf, pos, counted = buf[pos:], 0, 0
                continue
            if pos < len(buf) and buf[pos] == "]":
                return
            raise BadInputError(path, "expected ',' or ']' between array elements", line=line_at(pos))


def _iter_arrow(path: Path, checker: RowChecker, prefilter=None) -> Iterator[tuple[dict, str, int]]:
    """Parquet / CSV: batches, optionally pre-filtered (vectorised) before becoming Python rows."""
    import pyarrow as pa

    names = [c.name for c in checker.columns]
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering caches the whole file
        present = [n for n in names if n in pf.schema_arrow.names]
        batches = pf.iter_batches(batch_size=CHUNK_ROWS, columns=present)
        line_offset, unit = 0, "row"
    else:
        import pyarrow.csv as pcsv

        try:
            reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=8 << 20),
                                   convert_options=pcsv.ConvertOptions(
                                       strings_can_be_null=False,  # an empty cell is "", as upstream
                                       column_types={c.name: pa.string() for c in checker.columns
                                                     if c.kind == "str"}))
        except pa.ArrowInvalid as exc:
            raise BadInputError(path, f"unreadable CSV ({exc})") from None
        # records, not physical lines: a quoted cell may span lines
        batches, line_offset, unit = reader, 0, "row"
    n = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            reason = "invalid_utf8" if "utf" in str(exc).lower() else "bad_row"
            raise BadInputError(path, f"unreadable ({reason}): {exc}", **{unit: n + line_offset + 1}) from None
        for col in checker.columns:
            if col.required and col.name not in batch.schema.names:
                raise BadInputError(path, "required column is missing from the file", column=col.name)
        positions = range(n + 1 + line_offset, n + 1 + line_offset + batch.num_rows)
        n += batch.num_rows
        if prefilter is not None:
            batch, keep = prefilter(batch)
            positions = [positions[i] for i in keep]
        for row, pos in zip(batch.to_pylist(), positions):
            if path.suffix.lower() == ".csv":  # CSV gives "" for empty cells and numbers as numbers
                row = _csv_row(row, checker.columns)
            row = checker.check(row, path, **{unit: pos})
            if row is not None:
                yield row, unit, pos


def _csv_row(row: dict, columns: list[Column]) -> dict:
    """CSV cells are text: parse JSON for list/dict columns, stringify numbers for str ones."""
    out = dict(row)
    for col in columns:
        v = out.get(col.name)
        if col.kind in ("list", "dict") and isinstance(v, str) and v.strip()[:1] in ("[", "{"):
            try:
                out[col.name] = json.loads(v)
            except json.JSONDecodeError:
                pass
        elif col.kind == "str" and isinstance(v, (int, float)) and not isinstance(v, bool):
            out[col.name] = str(v)
    return out


def iter_file(path: Path, columns: list[Column], on_bad_rows: str, stats: ReadStats,
              prefilter=None) -> Iterator[tuple[dict, str, int]]:
    """Rows of one local file as (row dict, "line"|"row", number)."""
    checker = RowChecker(columns, on_bad_rows, stats)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".csv"):
        yield from _iter_arrow(path, checker, prefilter)
    elif suffix in (".json", ".jsonl"):
        if _first_char(path) == "[":
            yield from _iter_json_array(path, checker)
        else:
            yield from _iter_jsonl(path, checker)
    else:
        raise ResetkitError(f"{path}: unsupported file type {suffix!r} (use {', '.join(SUFFIXES)})")


def chunks(rows: Iterator[tuple[dict, str, int]], path: Path, size: int = CHUNK_ROWS) -> Iterator[Chunk]:
    cur = Chunk([], [])
    for row, unit, n in rows:
        cur.rows.append(row)
        cur.where.append((str(path), unit, n))
        if len(cur.rows) >= size:
            yield cur
            cur = Chunk([], [])
    if cur.rows:
        yield cur


def parse_hub_id(spec: str) -> tuple[str, str | None, str | None]:
    """``repo[:config][@revision]`` -> (repo, config, revision)."""
    spec = spec.removeprefix("hub:")
    spec, _, revision = spec.partition("@")
    repo, _, config = spec.partition(":")
    return repo, config or None, revision or None


def looks_local(spec: str) -> bool:
    return os.path.exists(spec) or spec.startswith((".", "/", "~")) or Path(spec).suffix.lower() in SUFFIXES


def load_hub(repo: str, config: str | None, revision: str | None, source_name: str):
    """``datasets.load_dataset`` of a Hub id; returns (DatasetDict, fingerprint).

    Offline or unreachable Hub -> one clear ResetkitError that says how to pass local files.
    """
    hint = (f"download it and pass --source {source_name}=PATH (a file or a folder of "
            f"train*/validation*/test* files)")
    try:
        import datasets

        ds = datasets.load_dataset(repo, config, revision=revision)
    except Exception as exc:  # noqa: BLE001 - the Hub client raises many kinds; all mean "not here"
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        offline = " (HF_HUB_OFFLINE=1 is set)" if os.environ.get("HF_HUB_OFFLINE") == "1" else ""
        raise ResetkitError(f"cannot load {source_name} from the Hub id {repo!r}{offline}: {msg}. "
                            f"To work offline, {hint}.") from None
    rev = revision
    try:  # the exact commit, when the Hub answers
        from huggingface_hub import HfApi

        rev = HfApi().dataset_info(repo, revision=revision).sha
    except Exception:  # noqa: BLE001
        pass
    return ds, {"repo": repo, "config": config, "revision": rev or "main"}


def iter_hub_split(ds, split: str, columns: list[Column], on_bad_rows: str, stats: ReadStats,
                   label: str, prefilter=None) -> Iterator[tuple[dict, str, int]]:
    """Rows of one split of a loaded Hub dataset, checked like local rows."""
    checker = RowChecker(columns, on_bad_rows, stats)
    table = ds[split].data.table if hasattr(ds[split].data, "table") else ds[split].data
    n = 0
    for batch in table.to_batches(max_chunksize=CHUNK_ROWS):
        positions = list(range(n + 1, n + 1 + batch.num_rows))
        n += batch.num_rows
        keep_cols = [c.name for c in columns if c.name in batch.schema.names]
        batch = batch.select(keep_cols)
        if prefilter is not None:
            batch, keep = prefilter(batch)
            positions = [positions[i] for i in keep]
        for row, pos in zip(batch.to_pylist(), positions):
            row = checker.check(row, f"{label}[{split}]", row=pos)
            if row is not None:
                yield row, "row", pos

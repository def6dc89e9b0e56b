"""Read upstream rows from local files (JSON, JSONL, Parquet, CSV, or a folder) or a Hub id.

Inputs: a path or Hub id, and the columns a source needs (name -> kind).
Outputs: ``Chunk`` objects per split -- a list of plain dict rows plus, per row, where it
came from (file and line or row number) so rule code and validation can name it.

Why not load everything at once: the paper-scale sources are large (MS MARCO v2.1 train is
809k rows with ~10 passages each), so rows are produced in chunks of ``chunk_rows``;
Parquet is read one record batch at a time, JSON lists (ShareGPT is one big JSON array)
are parsed element by element with ``json.JSONDecoder.raw_decode`` over a sliding buffer,
JSONL line by line, CSV record by record (Python's ``csv``: quoted cells may span lines),
and a column-oriented JSON object (MS MARCO's ``train_v2.1.json.gz``) with ``ijson``'s C
parser, spilling each column to a temporary file so that rows can be put back together.
Only the current chunk exists as Python objects.  JSON, JSONL and CSV files may be
compressed (``.gz``, ``.bz2``, ``.xz``, ``.zst``): they are decompressed as a stream.

Validation: a row whose required column is missing, null, or of the wrong type, a line
that is not JSON, a CSV record with the wrong number of cells, or text that is not valid
UTF-8 (bad bytes, or a lone surrogate escape such as ``\\ud800`` in JSON) raise
``BadInputError`` naming the file, the line (JSON/JSONL) or row (Parquet and CSV records,
counted from 1 after any header; CSV also gives the line the record starts on) and the
column -- unless the caller passes ``on_bad_rows="skip"``, in which case the row is dropped
and counted under a reason (``bad_json``, ``invalid_utf8``, ``column_count``,
``missing:<col>``, ``null:<col>``, ``type:<col>``).  Reasons come from the check that
failed or the exception type, never from an error message's text.  A file that cannot be
read at all (missing permission, truncated Parquet or compressed data, an empty file) is
one ``BadInputError`` naming it.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import csv
import gzip
import io
import json
import lzma
import marshal
import os
import re
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterator

from resetkit.errors import BadInputError, ResetkitError

CHUNK_ROWS = 8192
READ_BYTES = 1 << 20
FORMATS = (".jsonl", ".json", ".parquet", ".csv")
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")      # for JSON, JSONL and CSV (not Parquet)
SUFFIXES = FORMATS  # kept for callers that list the accepted formats
SPLIT_PREFIXES = {"train": "train", "validation": "validation", "dev": "validation", "val": "validation",
                  "valid": "validation", "test": "test"}
# text a UTF-8 file cannot hold: raw surrogates (undecodable bytes read with surrogateescape)
# and JSON escapes of surrogates (valid pairs are fine; a lone one is found by encoding)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_OR_ESCAPE = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")

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


# -- file names, compression ---------------------------------------------------------------
def file_kind(path) -> tuple[str | None, str | None]:
    """(format, compression) from a file name: ``train.jsonl.gz`` -> (".jsonl", ".gz");
    format None when it is not a data file this reader accepts."""
    name = PurePosixPath(str(path)).name.lower()
    comp = next((c for c in COMPRESSIONS if name.endswith(c)), None)
    if comp:
        name = name[: -len(comp)]
    fmt = PurePosixPath(name).suffix
    if fmt not in FORMATS or (comp and fmt == ".parquet"):
        return None, comp
    return fmt, comp


def _unsupported(path) -> ResetkitError:
    return ResetkitError(f"{path}: unsupported file type (use {', '.join(FORMATS)}; JSON, JSONL and CSV "
                         f"may be compressed: {', '.join(COMPRESSIONS)})")


# what a corrupt or truncated compressed stream raises, per library
_DECOMPRESS_ERRORS: tuple = (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, OSError)


class _Decompressed(io.RawIOBase):
    """A decompressing stream whose errors name the file: only errors raised while
    decompressing are turned into a BadInputError (not, say, a full disk while the caller
    writes something else)."""

    def __init__(self, fh, path: Path, comp: str, errors: tuple):
        self.fh, self.path, self.comp, self.errors = fh, path, comp, errors

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self.fh.readinto(buffer)
        except self.errors as exc:
            raise BadInputError(self.path, f"corrupt or truncated {self.comp[1:]} data ({type(exc).__name__}: "
                                f"{exc})") from None


@contextlib.contextmanager
def open_data(path: Path) -> Iterator[BinaryIO]:
    """The bytes of a data file, decompressed as a stream when its name says so.  A file that
    cannot be opened, and corrupt or truncated compressed data, are one ``BadInputError``
    naming the file."""
    _, comp = file_kind(path)
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise BadInputError(path, f"cannot read the file ({exc.strerror or type(exc).__name__})") from None
    try:
        if comp is None:
            yield raw
            return
        errors = _DECOMPRESS_ERRORS
        if comp == ".gz":
            fh = gzip.GzipFile(fileobj=raw, mode="rb")
        elif comp == ".bz2":
            fh = bz2.BZ2File(raw, mode="rb")
        elif comp == ".xz":
            fh = lzma.LZMAFile(raw, mode="rb")
        else:
            import zstandard

            errors = errors + (zstandard.ZstdError,)
            fh = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        yield io.BufferedReader(_Decompressed(fh, path, comp, errors), READ_BYTES)
    finally:
        raw.close()


_SPLIT_WORD = re.compile(r"(?:^|[-._ 0-9])(train|validation|valid|val|dev|test)(?=$|[-._ 0-9])")


def split_of(path) -> str | None:
    """Split named by a file name, as the Hub names them (train*, validation*/dev*, test*,
    or the word between separators: ``ms_marco-test.parquet``), else by a folder above it
    (``data/train/0000.parquet``)."""
    for name in reversed(PurePosixPath(str(path)).parts):
        m = _SPLIT_WORD.search(name.lower())
        if m:
            return SPLIT_PREFIXES[m.group(1)]
    return None


def _glob_regex(pattern: str) -> re.Pattern:
    """A Hub ``data_files`` glob (``v2.1/train-*``, ``data/**``) as a regex over repo paths:
    ``*`` and ``?`` stay inside one folder, ``**`` crosses folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def read_card_configs(readme: Path) -> list[dict]:
    """The ``configs:`` list of a dataset card's YAML header (README.md), or []."""
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    m = re.match(r"---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|$)", text, re.S)
    if not m:
        return []
    import yaml

    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError:
        return []
    configs = meta.get("configs") if isinstance(meta, dict) else None
    return [c for c in configs if isinstance(c, dict)] if isinstance(configs, list) else []


def _config_layout(data: list[str], configs: list[dict], config: str | None, where: str) -> dict[str, list[str]]:
    """``layout`` for a card with ``configs``: the wanted (or default) config's ``data_files``."""
    by_name = {str(c.get("config_name", "default")): c for c in configs}
    if config is None:
        defaults = [n for n, c in by_name.items() if c.get("default")]
        config = defaults[0] if defaults else ("default" if "default" in by_name else
                                               next(iter(by_name)) if len(by_name) == 1 else None)
        if config is None:
            raise ResetkitError(f"{where}: several configs ({', '.join(by_name)}); name one "
                                f"(repo:CONFIG for a Hub id)")
    if config not in by_name:
        raise ResetkitError(f"{where}: no config {config!r} (its configs: {', '.join(by_name)})")
    files = by_name[config].get("data_files")
    if isinstance(files, (str, dict)):
        files = [files]
    specs: dict[str, list[str]] = {}
    for entry in files or []:
        if isinstance(entry, str):
            specs.setdefault("train", []).append(entry)
        elif isinstance(entry, dict) and "split" in entry:
            paths = entry.get("path")
            specs.setdefault(str(entry["split"]), []).extend([paths] if isinstance(paths, str) else paths or [])
    out = {}
    for split, patterns in specs.items():
        regexes = [_glob_regex(p) for p in patterns]
        matched = [n for n in data if any(r.match(n) for r in regexes)]
        if matched:
            name = SPLIT_PREFIXES.get(split.lower(), split)
            out.setdefault(name, []).extend(matched)
    if not out:
        raise ResetkitError(f"{where}: config {config!r} names no data file that is here")
    return out


def layout(names: list[str], configs: list[dict], config: str | None, where: str) -> dict[str, list[str]]:
    """Data files per split of a dataset folder or Hub repo, given its file paths (relative,
    with ``/``), the ``configs`` of its card and the wanted config (None: the default).

    As the Hub does it: with ``configs`` in the card, the config's ``data_files`` globs;
    without, the data files under a folder named like the config (MS MARCO's ``v1.1/`` and
    ``v2.1/``) when there is one, split by name (train*, validation*/dev*, test*) -- or, when
    no file names a split, every data file is the train split.
    """
    data = sorted(n for n in names if file_kind(n)[0] is not None)
    if configs:
        return _config_layout(data, configs, config, where)
    if config and any(n.startswith(f"{config}/") for n in data):
        data = [n for n in data if n.startswith(f"{config}/")]
    out: dict[str, list[str]] = {}
    for n in data:
        split = split_of(n)
        if split is not None:
            out.setdefault(split, []).append(n)
    if not out and data:
        out["train"] = data
    return out


def _check_readable(path: Path) -> None:
    """Open a file once, so that a permission problem is one clear line (not a traceback
    from fingerprinting)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise BadInputError(path, f"cannot read the file ({exc.strerror or type(exc).__name__})") from None


def local_splits(path: str | os.PathLike, config: str | None = None) -> dict[str, list[Path]]:
    """Map a local file (the train split) or folder (a Hub-layout folder: README.md configs,
    config subfolders, split naming) to files per split.  ``config`` picks one of a
    downloaded Hub snapshot's configs (e.g. ``v2.1`` of MS MARCO)."""
    path = Path(path)
    try:
        if path.is_file():
            _check_readable(path)
            if file_kind(path)[0] is None:
                raise _unsupported(path)
            return {"train": [path]}
        if not path.is_dir():
            raise ResetkitError(f"input not found: {path}")
        names = []
        for p in sorted(path.rglob("*")):
            rel = p.relative_to(path)
            if p.is_file() and not any(part.startswith(".") for part in rel.parts):
                _check_readable(p)  # every file the input fingerprint reads
                names.append(rel.as_posix())
    except PermissionError as exc:  # a folder that cannot be listed
        raise BadInputError(exc.filename or path, "cannot read the folder (permission denied)") from None
    configs = read_card_configs(path / "README.md") if "README.md" in names else []
    out = {split: [path / n for n in files] for split, files in layout(names, configs, config, str(path)).items()}
    if not out:
        raise ResetkitError(f"{path}: no data files ({', '.join(FORMATS)}, optionally "
                            f"{', '.join(COMPRESSIONS)}) in this folder")
    return out


class RowChecker:
    """Checks rows against the declared columns; raises or counts per ``on_bad_rows``.
    ``records`` counts what the file held (good or bad), so an empty file can be told."""

    def __init__(self, columns: list[Column], on_bad_rows: str, stats: ReadStats):
        self.columns, self.skip, self.stats = columns, on_bad_rows == "skip", stats
        self.records = 0
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

    def text_ok(self, obj, path, *, line=None, row=None) -> bool:
        """A parsed JSON value whose source text matched ``_SURROGATE_OR_ESCAPE``: False (after
        ``bad``) when it holds a surrogate, which UTF-8 cannot encode (undecodable bytes read
        with surrogateescape, or a lone ``\ud800``-style escape; escaped pairs are fine)."""
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
            return True
        except UnicodeEncodeError as exc:
            self.bad("invalid_utf8", path, f"not valid UTF-8 text (a lone surrogate {exc.object[exc.start]!r}: "
                     f"undecodable bytes or a \\u{ord(exc.object[exc.start]):04x} escape)", line=line, row=row)
            return False


def _iter_jsonl(path: Path, checker: RowChecker) -> Iterator[tuple[dict, str, int]]:
    with open_data(path) as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                checker.records += 1
                checker.bad("invalid_utf8", path, f"invalid UTF-8 at byte {exc.start} of the line", line=n)
                continue
            if not text.strip():
                continue
            checker.records += 1
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                checker.bad("bad_json", path, f"not valid JSON ({exc.msg} at column {exc.colno})", line=n)
                continue
            if "\\" in text and _SURROGATE_OR_ESCAPE.search(text) and not checker.text_ok(obj, path, line=n):
                continue
            row = checker.check(obj, path, line=n)
            if row is not None:
                yield row, "line", n


def _first_char(path: Path) -> str:
    """The first character that is not whitespace (after decompression), or ""."""
    with open_data(path) as fh:
        while True:
            b = fh.read(1)
            if not b or not b.isspace():
                return b.decode("latin-1")


class _JsonText:
    """One file's text read block by block (``buf``, the read position ``pos``), with line
    numbers counted forward only (linear time).  Bytes that are not UTF-8 are read as
    surrogates (surrogateescape)."""

    def __init__(self, fh):
        self.fh = fh
        self.utf8 = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        # ``line`` is the line number at buf[counted]
        self.buf, self.pos, self.line, self.counted, self.eof = "", 0, 1, 0, False

    def line_at(self, p: int) -> int:
        self.line += self.buf.count("\n", self.counted, p)
        self.counted = p
        return self.line

    def more(self) -> bool:
        """Drop the consumed part of the buffer and append the next block; False at EOF."""
        if self.eof:
            return False
        data = self.fh.read(READ_BYTES)
        self.eof = not data
        text = self.utf8.decode(data, final=self.eof)
        self.line_at(self.pos)
        self.buf, self.pos, self.counted = self.buf[self.pos:] + text, 0, 0
        return bool(text) or not self.eof

    def skip_ws(self) -> str:
        """Skip whitespace (reading on as needed); the next character, or "" at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def compact(self) -> None:
        """Keep the buffer from growing: drop what is consumed."""
        if self.pos > READ_BYTES:
            self.line_at(self.pos)
            self.buf, self.pos, self.counted = self.buf[self.pos:], 0, 0

    def value(self, decoder: json.JSONDecoder, path: Path):
        """The JSON value at ``pos`` and where it ends, reading on while it runs past the buffer."""
        while True:
            try:
                return decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                pass
            if not self.more():  # (positions re-based) the whole rest of the file is in the buffer
                break
        try:
            return decoder.raw_decode(self.buf, self.pos)
        except json.JSONDecodeError as exc:  # a real error
            self.line_at(self.pos)
            raise BadInputError(path, f"not valid JSON ({exc.msg})", line=self.line_at(exc.pos)) from None


def _iter_json_array(path: Path, checker: RowChecker) -> Iterator[tuple[dict, str, int]]:
    """Stream the elements of one top-level JSON array without loading the whole file.
    Bytes that are not UTF-8 are read as surrogates (surrogateescape), so the element that
    holds them is reported (or skipped) and the parse goes on."""
    decoder = json.JSONDecoder()
    with open_data(path) as fh:
        text = _JsonText(fh)
        if text.skip_ws() != "[":
            raise BadInputError(path, "expected a JSON array ('[') or JSON Lines",
                                line=text.line_at(min(text.pos, len(text.buf))))
        text.pos += 1
        if text.skip_ws() == "]":
            return
        while True:
            text.skip_ws()
            obj, end = text.value(decoder, path)
            start_line = text.line_at(text.pos)
            checker.records += 1
            bad_text = (_SURROGATE_OR_ESCAPE.search(text.buf, text.pos, end)
                        and not checker.text_ok(obj, path, line=start_line))
            text.pos = end
            row = None if bad_text else checker.check(obj, path, line=start_line)
            if row is not None:
                yield row, "line", start_line
            after = text.skip_ws()
            if after == "]":
                return
            if after != ",":
                raise BadInputError(path, "expected ',' or ']' between array elements", line=text.line_at(text.pos))
            text.pos += 1
            text.compact()


def _is_column_object(path: Path) -> bool:
    """Is this .json file one column-oriented object, ``{"col": {"0": v, "1": v, ...}, ...}``
    (pandas' ``to_json()``, how MS MARCO is published)?  Decided on its first tokens: the
    first value of the top-level object is itself an object whose first key is "0" (or empty)."""
    import ijson

    with open_data(path) as fh:
        head = fh.read(1 << 16)
    events = ijson.parse(io.BytesIO(head))
    want = [("", "start_map"), ("", "map_key"), (None, "start_map")]
    try:
        for (want_prefix, want_event), (prefix, event, _value) in zip(want, events):  # want first: zip
            # then stops before taking a fourth event
            if event != want_event or (want_prefix is not None and prefix != want_prefix):
                return False
        prefix, event, value = next(events)
        return (event == "map_key" and value == "0") or event == "end_map"
    except (ijson.JSONError, StopIteration):
        return False


class _ColumnSink:
    """Stands in for the dict of one column while ijson builds it, keeping only the row
    values not yet handed on.  ijson's builder puts a container into its parent when the
    container opens and fills it afterwards, so a row value is complete once the next key
    arrives (or the column ends: ``close``)."""

    __slots__ = ("keys", "values", "key", "value", "open")

    def __init__(self):
        self.keys, self.values, self.key, self.value, self.open = [], [], None, None, False

    def __setitem__(self, key, value):
        if self.open:
            self.keys.append(self.key)
            self.values.append(self.value)
        self.key, self.value, self.open = key, value, True

    def close(self):
        self.__setitem__(None, None)
        self.open = False

    def take(self, n: int) -> tuple[list, list]:
        keys, values = self.keys[:n], self.values[:n]
        del self.keys[:n], self.values[:n]
        return keys, values


class NotColumnOriented(ValueError):
    """A top-level value of a column-oriented object that is not an object of rows."""


def iter_column_pieces(fh: BinaryIO) -> Iterator[tuple]:
    """One streaming pass of ijson's C parser over a column-oriented JSON object,
    ``{"col": {"0": v, "1": v, ...}, ...}``.  Yields ``("rows", i, keys, values)`` pieces of
    column number ``i`` (``CHUNK_ROWS`` rows each, the last one shorter) and ``("end", i,
    name)`` once column ``i`` is complete.  Only the rows not yet yielded exist as Python
    objects: the parser builds each row value in C, and this code only sees whole rows."""
    import ijson

    sinks: list[_ColumnSink] = []
    ended: list[tuple[int, str]] = []
    state = {"next_is_column": True}

    def map_type():
        if state["next_is_column"]:  # the first object after a top-level key is the column itself
            state["next_is_column"] = False
            sinks.append(_ColumnSink())
            return sinks[-1]
        return {}

    class Target:  # called by the parser once a top-level value is complete
        def send(self, item):
            name, value = item
            if not isinstance(value, _ColumnSink) or value is not sinks[-1]:
                raise NotColumnOriented(f"the value of {name!r} is not an object of rows")
            value.close()
            ended.append((len(sinks) - 1, name))
            state["next_is_column"] = True

    coro = ijson.kvitems_coro(Target(), "", map_type=map_type, use_float=True)

    def drain():
        done = dict(ended)
        ended.clear()
        for i, sink in enumerate(sinks):
            while len(sink.values) >= CHUNK_ROWS:
                yield ("rows", i, *sink.take(CHUNK_ROWS))
            if i in done:
                if sink.values:
                    yield ("rows", i, *sink.take(len(sink.values)))
                yield ("end", i, done[i])

    while True:
        data = fh.read(READ_BYTES)
        if not data:
            break
        coro.send(data)
        yield from drain()
    coro.close()
    yield from drain()


def _iter_json_columns(path: Path, checker: RowChecker) -> Iterator[tuple[dict, str, int]]:
    """Rows of a column-oriented JSON object (MS MARCO's ``train_v2.1.json``): one pass of
    ijson spills each column, in pieces, to a temporary folder (marshal), then the pieces of
    all columns are read back side by side and zipped into rows.  Peak memory is a few
    pieces; the temporary files hold the parsed columns (about the uncompressed size)."""
    import ijson

    with tempfile.TemporaryDirectory(prefix="resetkit-columns-") as tmp:
        spills: dict[int, BinaryIO] = {}
        names: dict[int, str] = {}
        counts: dict[int, int] = {}
        try:
            with open_data(path) as fh:
                for kind, i, *rest in iter_column_pieces(fh):
                    if i not in spills:
                        spills[i] = open(Path(tmp) / f"{i}.marshal", "wb")
                        counts[i] = 0
                    if kind == "rows":  # length-prefixed: marshal.load on a file reads value by value
                        data = marshal.dumps(tuple(rest))
                        spills[i].write(len(data).to_bytes(8, "little"))
                        spills[i].write(data)
                        counts[i] += len(rest[1])
                    else:
                        names[i] = rest[0]
                        spills[i].close()
        except (ijson.JSONError, NotColumnOriented) as exc:  # IncompleteJSONError is a JSONError
            why = exc.args[0] if exc.args else type(exc).__name__
            why = (why.decode("utf-8", "replace") if isinstance(why, bytes) else str(why)).splitlines()[0]
            raise BadInputError(path, f"not a valid column-oriented JSON object ({why})") from None
        except OSError as exc:
            raise ResetkitError(f"{path}: cannot write its columns to the temporary folder {tmp} "
                                f"({exc.strerror or exc}); set TMPDIR to a folder with room") from None
        finally:
            for f in spills.values():
                f.close()
        order = sorted(names)
        if not order:
            return
        sizes = {names[i]: counts[i] for i in order}
        if len(set(sizes.values())) > 1:
            raise BadInputError(path, "columns have different numbers of rows (" +
                                ", ".join(f"{k}: {v:,}" for k, v in sizes.items()) + ")")
        yield from _zip_columns([Path(tmp) / f"{i}.marshal" for i in order], [names[i] for i in order], path,
                                checker)


def _zip_columns(files: list[Path], cols: list[str], path: Path, checker: RowChecker):
    """Read the spilled pieces of every column side by side and yield them as rows."""
    readers = [open(f, "rb") for f in files]
    try:
        n = 0
        while True:
            lengths = [int.from_bytes(f.read(8), "little") for f in readers]
            if not lengths[0]:
                return
            pieces = [marshal.loads(f.read(size)) for f, size in zip(readers, lengths)]
            keys = pieces[0][0]
            for col, (other, _) in zip(cols[1:], pieces[1:]):
                if other != keys:
                    at = next(j for j, (a, b) in enumerate(zip(keys, other)) if a != b)
                    raise BadInputError(path, f"columns {cols[0]!r} and {col!r} list rows in a different "
                                        f"order (key {keys[at]!r} vs {other[at]!r})", row=n + at + 1)
            for values in zip(*(p[1] for p in pieces)):
                n += 1
                checker.records += 1
                row = checker.check(dict(zip(cols, values)), path, row=n)
                if row is not None:
                    yield row, "row", n
    finally:
        for f in readers:
            f.close()


_CSV_TRUE, _CSV_FALSE = ("true", "1"), ("false", "0")
_CSV_INT = re.compile(r"[-+]?[0-9]+\Z")


def _csv_cell(value: str, kind: str):
    """A CSV cell (always text) as the declared kind: numbers for int/number (and integer
    cells of ``any`` columns, as Arrow's CSV reader inferred), JSON for list/dict columns,
    booleans for bool; an empty cell is None except for text columns, where it is ""."""
    if kind == "str":
        return value
    if value == "":
        return None if kind != "any" else value
    try:
        if kind == "int" or (kind in ("any", "number") and _CSV_INT.match(value)):
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value  # the kind check reports it
    if kind == "bool" and value.lower() in _CSV_TRUE + _CSV_FALSE:
        return value.lower() in _CSV_TRUE
    if kind in ("list", "dict") and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    return value


def _iter_csv(path: Path, checker: RowChecker) -> Iterator[tuple[dict, str, int]]:
    """CSV records (RFC 4180: a quoted cell may hold commas, quotes and newlines, at any
    size) with a header row.  A record is numbered from 1 after the header; errors name it
    and the line it starts on.  Bytes that are not UTF-8 are read as surrogates and the
    record holding them is reported (or skipped) as invalid_utf8."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # CNN/DM articles exceed the 128 KiB default
    with open_data(path) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
        records = csv.reader(text)
        try:
            header = next(records, None)
            if header is None:
                return
            header = [h.removeprefix("\ufeff") if i == 0 else h for i, h in enumerate(header)]
            for col in checker.columns:
                if col.required and col.name not in header:
                    raise BadInputError(path, "required column is missing from the header", column=col.name)
            kinds = [(i, col.name, col.kind) for col in checker.columns
                     for i, h in enumerate(header) if h == col.name]
            width, n, line = len(header), 0, records.line_num
            for cells in records:
                start, line = line + 1, records.line_num
                if not cells:  # a blank line
                    continue
                n += 1
                checker.records += 1
                if len(cells) != width:
                    checker.bad("column_count", path, f"{len(cells)} cells, but the header has {width}",
                                line=start, row=n)
                    continue
                if any(_SURROGATE.search(c) for c in cells):
                    checker.bad("invalid_utf8", path, "invalid UTF-8 bytes in the record", line=start, row=n)
                    continue
                row = checker.check({name: _csv_cell(cells[i], kind) for i, name, kind in kinds}, path, row=n)
                if row is not None:
                    yield row, "row", n
        except csv.Error as exc:
            raise BadInputError(path, f"malformed CSV ({exc})", line=records.line_num, row=n + 1) from None


def _iter_parquet(path: Path, checker: RowChecker, prefilter=None) -> Iterator[tuple[dict, str, int]]:
    """Parquet record batches, optionally pre-filtered (vectorised) before becoming Python
    rows.  A batch with text that is not UTF-8 is re-read row by row, so only the bad rows
    are reported (or skipped)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [c.name for c in checker.columns]
    try:
        pf = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering caches the whole file
    except (pa.ArrowException, OSError) as exc:
        raise BadInputError(path, f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    present = [n for n in names if n in pf.schema_arrow.names]
    for col in checker.columns:
        if col.required and col.name not in present:
            raise BadInputError(path, "required column is missing from the file", column=col.name)
    batches = pf.iter_batches(batch_size=CHUNK_ROWS, columns=present)
    n = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:  # a truncated or corrupt file
            raise BadInputError(path, f"unreadable Parquet data after row {n} ({type(exc).__name__}: {exc})") from None
        positions = range(n + 1, n + 1 + batch.num_rows)
        n += batch.num_rows
        checker.records += batch.num_rows
        try:
            part, keep = prefilter(batch) if prefilter is not None else (batch, None)
            rows = part.to_pylist()
            if keep is not None:
                positions = [positions[i] for i in keep]
        except (UnicodeDecodeError, pa.ArrowInvalid):  # text that is not UTF-8 (kernels or to_pylist)
            rows, positions = _utf8_rows(batch, positions, path, checker)
        for row, pos in zip(rows, positions):
            row = checker.check(row, path, row=pos)
            if row is not None:
                yield row, "row", pos


def _utf8_rows(batch, positions, path, checker) -> tuple[list, list]:
    """The rows of a batch one by one; a row whose text cannot be decoded is invalid_utf8."""
    rows, kept = [], []
    for i, pos in enumerate(positions):
        try:
            rows.append(batch.slice(i, 1).to_pylist()[0])
            kept.append(pos)
        except UnicodeDecodeError:
            bad = next((name for name in batch.schema.names if _undecodable(batch.column(name).slice(i, 1))), None)
            checker.bad("invalid_utf8", path, "invalid UTF-8 in a text value", row=pos, column=bad)
    return rows, kept


def _undecodable(arr) -> bool:
    try:
        arr.to_pylist()
        return False
    except UnicodeDecodeError:
        return True


def iter_file(path: Path, columns: list[Column], on_bad_rows: str, stats: ReadStats,
              prefilter=None) -> Iterator[tuple[dict, str, int]]:
    """Rows of one local file as (row dict, "line"|"row", number).  An empty file (0 bytes, or
    no rows at all) is an error: a source silently built from nothing is worse."""
    checker = RowChecker(columns, on_bad_rows, stats)
    fmt, _ = file_kind(path)
    if fmt is None:
        raise _unsupported(path)
    try:
        if os.stat(path).st_size == 0:
            raise BadInputError(path, "the file has no rows (it is empty: 0 bytes)")
    except OSError as exc:
        raise BadInputError(path, f"cannot read the file ({exc.strerror or type(exc).__name__})") from None
    if fmt == ".parquet":
        rows = _iter_parquet(path, checker, prefilter)
    elif fmt == ".csv":
        rows = _iter_csv(path, checker)
    else:
        first = _first_char(path)
        if first == "[":
            rows = _iter_json_array(path, checker)
        elif first == "{" and fmt == ".json" and _is_column_object(path):
            rows = _iter_json_columns(path, checker)
        else:
            rows = _iter_jsonl(path, checker)
    yield from rows
    if not checker.records:
        raise BadInputError(path, "the file has no rows")


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
    return os.path.exists(spec) or spec.startswith((".", "/", "~")) or file_kind(spec)[0] is not None


PARQUET_EXPORT = "refs/convert/parquet"   # the Hub's Parquet conversion of script-based datasets


def hub_files(repo: str, config: str | None, revision: str | None,
              source_name: str) -> tuple[dict[str, list[Path]], dict]:
    """The data files of one config of a Hub dataset, per split, as local paths in the Hub
    cache (downloaded with ``huggingface_hub``; HF_ENDPOINT, HF_HOME and HF_TOKEN apply), and
    the input fingerprint (repo, config, the exact commit).

    The files are chosen as the Hub chooses them (``layout``: the card's ``configs``, config
    folders, split names); a repo whose main branch holds no data files (only a loading
    script, as ``yizhongw/self_instruct``) is read from the Hub's Parquet conversion
    (``refs/convert/parquet``, one folder per config).  Then they are read like local files,
    so Hub input takes the same streaming and columnar paths.  Offline (HF_HUB_OFFLINE=1) or
    unreachable, the files a build downloaded before are used from the cache; without them,
    one clear ResetkitError says what to do.
    """
    from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download

    where = f"Hub dataset {repo!r}" + (f" at {revision!r}" if revision else "")

    def online(rev: str | None):
        info = HfApi().dataset_info(repo, revision=rev)
        names = [s.rfilename for s in info.siblings or []]
        configs = []
        if "README.md" in names:
            configs = read_card_configs(Path(hf_hub_download(repo, "README.md", repo_type="dataset", revision=rev)))
        selected = layout(names, configs, config, where)
        if not selected:
            return None, {}
        wanted = sorted(f for files in selected.values() for f in files)
        return Path(snapshot_download(repo, repo_type="dataset", revision=rev, allow_patterns=wanted)), selected

    def cached(rev: str | None):
        folder = Path(snapshot_download(repo, repo_type="dataset", revision=rev, local_files_only=True,
                                        allow_patterns=["README.md"]))
        names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
        return folder, layout(names, read_card_configs(folder / "README.md"), config, where)

    revisions = [revision] if revision else [None, PARQUET_EXPORT]
    folder, selected, error = None, {}, None
    for rev in revisions:
        try:
            if constants.HF_HUB_OFFLINE:
                raise ConnectionError("offline")
            folder, selected = online(rev)
        except ResetkitError:
            raise
        except Exception as exc:  # noqa: BLE001 - the Hub client raises many kinds; all mean "not here"
            error = error or exc
            try:
                folder, selected = cached(rev)
            except ResetkitError:
                raise
            except Exception:  # noqa: BLE001
                continue
        if selected:
            break
    if not selected:
        if error is not None and folder is None:
            raise _hub_error(repo, source_name, error)
        raise ResetkitError(f"{where}: no data files ({', '.join(FORMATS)}) for config {config or 'default'!r}")
    files = {split: [folder / f for f in fs] for split, fs in selected.items()}
    return files, {"repo": repo, "config": config, "revision": folder.name}


def _hub_error(repo: str, source_name: str, exc: Exception) -> ResetkitError:
    from huggingface_hub import errors

    msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline:
        why = "HF_HUB_OFFLINE=1 is set and it is not in the Hub cache"
    elif isinstance(exc, errors.RepositoryNotFoundError):
        why = "repository not found, or private or gated: log in or set HF_TOKEN"
    elif isinstance(exc, errors.RevisionNotFoundError):
        why = "revision not found"
    else:
        why = msg
    return ResetkitError(
        f"cannot load {source_name} from the Hub id {repo!r} ({why}). To build without the Hub, pass "
        f"--source {source_name}=PATH (a downloaded file, or a folder such as a Hub snapshot), or build "
        f"from the sources you have, without this one, with --only NAME[,NAME...].")

"""A source's input: its files per split (local, or downloaded from the Hub), read as rows
(the reader) or as Arrow tables (the columnar fast path)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from resetkit.errors import ResetkitError
from resetkit.store import fingerprint_path

from ..sources import columnar, reader
from ..sources.base import Context, Source
from .config import BuildConfig
from .writer import FLUSH_ROWS

# columnar path: rows converted at a time (any size gives the same output).  Small enough that
# each kernel's buffers are reused by the allocator: with 16k rows, mimalloc returned and
# re-faulted them every slice (2 s of system time at paper scale instead of 0.8 s)
SLICE_ROWS = FLUSH_ROWS


class OpenSource:
    """One source's input: files per split (local, or downloaded from the Hub).

    ``others`` only shapes the error when a source cannot be loaded from its default Hub id:
    the ``--only`` it suggests (the sources given with ``--source``, else all the others)."""

    def __init__(self, src, spec: str | None, others: list[str] = ()):
        self.src, self.spec = src, spec
        if spec is None or not reader.looks_local(spec):
            hub_spec = spec or src.hub_id
            leave_out = (f", or build without it: --only {','.join(others)}" if spec is None and others else "")
            if not hub_spec:
                raise ResetkitError(f"source {src.name!r} has no Hub id: get it from {src.where} and pass "
                                    f"--source {src.name}=PATH{leave_out}")
            repo, config, revision = reader.parse_hub_id(hub_spec)
            try:
                self.files, self.fingerprint = reader.hub_files(repo, config, revision, src.name)
            except ResetkitError as exc:
                if not leave_out:
                    raise
                raise ResetkitError(f"{exc.message.rstrip('.')}{leave_out}.") from None
            self.splits = dict(self.files)
            self.label = repo
        else:
            path = Path(spec).expanduser()
            self.files = reader.local_splits(path, config=reader.parse_hub_id(src.hub_id or "")[1])
            self.splits = {s: f for s, f in self.files.items()}
            self.fingerprint = fingerprint_path(path)
            self.label = path.name

    def example_tables(self, split: str, out_split: str, ctx: Context, cfg: BuildConfig) -> Iterator | None:
        """The columnar fast path for one upstream split: its finished examples as EXAMPLES
        tables, or None when the row path must be used (a source without
        ``convert_table``, or input the columnar reader cannot vouch for -- the row path then
        reports the bad row, or skips and counts it).

        The split is read and checked whole (as Arrow, not Python objects), then converted
        ``SLICE_ROWS`` rows at a time: every intermediate column is small and its memory is
        reused, where whole-split copies cost more in page faults than the kernels themselves.
        Sources whose rows depend on each other (OASST-1 pairs replies with prompters) are
        converted whole.
        """
        if type(self.src).convert_table is Source.convert_table:
            return None
        tables = []
        for f in self.files[split]:  # file by file, so that an empty file is reported
            t = columnar.read_split([f], self.src.columns, None)
            if t is None or t.num_rows == 0:
                return None  # the row path reads it again (and reports an empty file)
            tables.append(t)
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        if cfg.limit is not None:
            table = table.slice(0, cfg.limit)
        if not self.src.columnar_ok(table):
            return None
        step = SLICE_ROWS if self.src.rows_independent else max(table.num_rows, 1)
        # contiguous slices: derived columns are then one chunk each, so the 4,096-row pieces
        # written by SplitBuffers rarely straddle chunks (and need no copy)
        piece = lambda start: table.slice(start, step).combine_chunks()  # noqa: E731
        before = dict(ctx.drops)
        first = self.src.convert_table(piece(0), ctx)
        if first is None:  # decided on the schema, so before anything is counted or written
            ctx.drops = before
            return None

        def finished():
            yield self.src.finish_table(first, out_split, ctx)
            for start in range(step, table.num_rows, step):
                part = self.src.convert_table(piece(start), ctx)
                yield self.src.finish_table(part, out_split, ctx)
        return finished()

    def rows(self, split: str, ctx: Context, cfg: BuildConfig, stats: reader.ReadStats):
        prefilter = (lambda b: self.src.prefilter(b, ctx)) if self.src.has_prefilter else None
        cols = self.src.columns
        # an input file with no rows at all is an error there (reader.iter_file), not a silent source
        it = itertools.chain.from_iterable(
            reader.iter_file(f, cols, cfg.on_bad_rows, stats, prefilter) for f in self.files[split])
        path = self.files[split][0]
        if cfg.limit is not None:
            it = itertools.islice(it, cfg.limit)
        return reader.chunks(it, path)

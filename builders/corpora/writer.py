"""Writing a corpus: ``SplitBuffers`` cuts rows and tables into Parquet row groups of exactly
``FLUSH_ROWS`` rows, written by one background thread."""

from __future__ import annotations

import collections

import pyarrow as pa

from resetkit.schemas import EXAMPLES

FLUSH_ROWS = 4096
MAX_INFLIGHT = 2             # FLUSH_ROWS tables queued for the background Parquet writer


class SplitBuffers:
    """Row buffers per output split, written to the writer in tables of exactly
    ``FLUSH_ROWS`` rows (the last one per split shorter).

    Why exact sizes: each ``writer.write`` becomes a Parquet row group, so the row-by-row
    path (``add``) and the columnar path (``add_table``) must cut the same slices for the
    same rows to give byte-identical files.  Python rows are dicts in EXAMPLES column order
    (``Source.finish``); they are kept as tuples and transposed with ``zip``, the cheapest
    way from Python rows to Arrow columns.
    """

    def __init__(self, writer):
        from concurrent.futures import ThreadPoolExecutor

        self.writer, self.rows, self.tables = writer, {}, {}
        # Parquet encoding and compression run in C++ without the GIL: one background thread
        # writes while the main thread converts the next rows.  One thread keeps the order
        # of writes, hence the files, exactly as if written inline.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="parquet-write")
        self._inflight = collections.deque()

    def _emit(self, split: str, table: pa.Table) -> None:
        self._inflight.append(self._pool.submit(self.writer.write, split, table))
        while len(self._inflight) > MAX_INFLIGHT:  # bounded memory; re-raises a write error
            self._inflight.popleft().result()

    def __enter__(self) -> "SplitBuffers":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Wait for every queued write before the version commits, re-raising a write error.
        After an error in the build itself, queued writes are cancelled (the version is
        discarded anyway) and that error is the one that propagates."""
        try:
            while self._inflight and exc_type is None:
                self._inflight.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def add(self, split: str, row: dict) -> None:
        buf = self.rows.setdefault(split, [])
        buf.append(tuple(row.values()))
        if len(buf) + self._pending(split) >= FLUSH_ROWS:
            self._write(split, final=False)

    def add_table(self, split: str, table: pa.Table) -> None:
        self._rows_to_table(split)
        self.tables.setdefault(split, []).append(table)
        self._write(split, final=False)

    def flush(self, split: str | None = None) -> None:
        for s in ([split] if split else list({**self.rows, **self.tables})):
            self._write(s, final=True)

    def _pending(self, split: str) -> int:
        return sum(t.num_rows for t in self.tables.get(split, ()))

    def _rows_to_table(self, split: str) -> None:
        rows = self.rows.get(split)
        if rows:
            cols = list(zip(*rows))
            table = pa.table([pa.array(c, f.type) for c, f in zip(cols, EXAMPLES)], schema=EXAMPLES)
            self.tables.setdefault(split, []).append(table)
            self.rows[split] = []

    def _write(self, split: str, final: bool) -> None:
        """Write every full FLUSH_ROWS slice (and, when ``final``, the rest)."""
        self._rows_to_table(split)
        tables = self.tables.get(split)
        if not tables:
            return
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        total, start = table.num_rows, 0
        while total - start >= FLUSH_ROWS or (final and start < total):
            take = min(FLUSH_ROWS, total - start)
            piece = table.slice(start, take)
            # one contiguous chunk per column, as the row path writes: Parquet pages follow
            # Arrow chunks.  Only pieces that straddle chunks are copied.
            if any(c.num_chunks > 1 for c in piece.columns):
                piece = piece.combine_chunks()
            self._emit(split, piece)
            start += take
        self.tables[split] = [table.slice(start)] if start < total else []

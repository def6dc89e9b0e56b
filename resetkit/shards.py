"""Shard files of a long stage's work folder (``store.workdir(name, version)``).

    write_shard(workdir, name, table) -> Path     one shard, atomically (temp file + rename)
    read_shards(workdir, schema) -> Table | None  every finished shard, in name order
    done_keys(workdir, column, schema, where=None) -> set   keys of the finished rows

A stage that shards (the candidate pool) writes each finished shard here as it arrives,
with either engine; a rerun reads the folder and plans only what is missing, and the
stage assembles the dataset version from the shards when all are done.  A shard file is
either complete or absent (a crash leaves at most a hidden ``.shard-*.tmp`` file, never
read), and its name is derived from the keys it holds, so writing it again after a retry
replaces it with the same content.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .store import write_parquet_atomic

PATTERN = "shard-*.parquet"


def shard_name(start: int, digest: str) -> str:
    """``shard-<start, 8 digits>-<digest>.parquet``: sorted names follow the plan order."""
    return f"shard-{start:08d}-{digest}.parquet"


def write_shard(workdir, name: str, table: pa.Table) -> Path:
    """Write ``table`` as the shard ``name`` of ``workdir``, atomically."""
    if not (name.startswith("shard-") and name.endswith(".parquet")):
        raise ValueError(f"not a shard file name: {name!r}")
    return write_parquet_atomic(table, Path(workdir) / name)


def read_shards(workdir, schema: pa.Schema) -> pa.Table | None:
    """All finished shards of ``workdir`` cast to ``schema`` (None when there is none)."""
    files = sorted(Path(workdir).glob(PATTERN))
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f).cast(schema) for f in files])


def done_keys(workdir, column: str, schema: pa.Schema, where=None) -> set:
    """Values of ``column`` in the finished shards, restricted to rows where ``where(table)``
    (a boolean Arrow array) holds, e.g. the rows generated without error."""
    table = read_shards(workdir, schema)
    if table is None:
        return set()
    if where is not None:
        table = table.filter(where(table))
    return set(table.column(column).to_pylist())

"""The versioned Parquet store (DESIGN.md §3).

``STORE/<name>/<version>/`` is laid out like a Hub dataset repository::

    README.md                                  data card, YAML header with ``configs:``
    data/<split>-NNNNN-of-MMMMM.parquet        the rows
    manifest.json                              config, inputs, lineage, counts, schema

The version id is a hash of the builder, its code version, the resolved config, the
input fingerprints and the parent versions, so building the same thing twice gives the
same id and (since no timestamps go into data files) byte-identical Parquet.  A version
is written into a temporary directory inside the store and renamed into place only when
complete: a crash never leaves a partial version visible.  Rebuilding an existing version swaps
the two directories in one atomic step (``renameat2(RENAME_EXCHANGE)``; elsewhere the old one
is moved aside first and put back by the next reader if a kill came in between).  Each writer
holds a lock on ``.tmp-….lock`` beside its temp dir: the next write removes the temp dirs of
writers whose lock is free (they died), whatever their age.  ``NAME`` resolves to the
newest version (``STORE/<name>/LATEST``), ``NAME@VERSION`` pins one (a unique prefix is
enough).  Long stages keep finished shards under ``STORE/<name>/.work/<version>/``.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import errno
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .errors import ResetkitError
from .registry import suggest
from .secrets import redact_table

DEFAULT_SHARD_ROWS = 250_000
PARQUET_OPTIONS = dict(compression="zstd", compression_level=3, write_statistics=True)


def store_root(path: str | os.PathLike | None = None) -> Path:
    """``--store DIR``, else ``$RESETKIT_STORE``, else ``./store``."""
    return Path(path or os.environ.get("RESETKIT_STORE") or "store").resolve()


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def short_hash(obj, n: int = 12) -> str:
    data = obj if isinstance(obj, (bytes, str)) else canonical_json(obj)
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:n]


def fingerprint_file(path: str | os.PathLike) -> dict:
    """size + sha256 of a file (streamed)."""
    path = Path(path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"path": path.name, "size": path.stat().st_size, "sha256": h.hexdigest()}


def fingerprint_path(path: str | os.PathLike) -> dict:
    """Fingerprint a local file or folder (every file under it, sorted by relative path)."""
    path = Path(path)
    if path.is_file():
        return {"kind": "file", **fingerprint_file(path)}
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        return {"kind": "dir", "path": path.name,
                "files": [{**fingerprint_file(p), "path": str(p.relative_to(path))} for p in files]}
    raise ResetkitError(f"input not found: {path}")


# errors of the file system itself (not of one file): a disk or quota full, a read-only mount
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
WRITE_ERRNOS = DISK_ERRNOS + (errno.EACCES, errno.EPERM)


def store_write_error(root: Path, exc: OSError, what: str) -> ResetkitError:
    """One line for an OSError met while writing into the store at ``root``."""
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ResetkitError(f"disk full while writing {what} into the store {root}{where}: {reason}. "
                             "Nothing was committed and the partial output was removed; free some space "
                             "and run the same command again")
    return ResetkitError(f"cannot write {what} into the store {root}{where}: {reason}. Pass a writable "
                         "--store DIR (or set $RESETKIT_STORE)")


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE).

    False where the system or the file system cannot (then nothing happened)."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _lock_free(path: Path) -> bool:
    """True if nobody holds a lock on ``path`` (a writer that held it has died)."""
    try:
        with open(path, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(fh, fcntl.LOCK_UN)
            return True
    except OSError:
        return False


def _pid_dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _name_the_file(exc: OSError, path: Path) -> None:
    """Arrow's write errors name no file: give a full disk's error the path being written."""
    if exc.errno in DISK_ERRNOS and not exc.filename:
        raise OSError(exc.errno, os.strerror(exc.errno), str(path)) from exc


def write_parquet_atomic(table: pa.Table, path: str | os.PathLike, **options) -> Path:
    """Write one Parquet file atomically (temp file + rename in the same folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, **{**PARQUET_OPTIONS, **options})
        os.replace(tmp, path)
    except OSError as exc:
        _name_the_file(exc, path)
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        _name_the_file(exc, path)
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


class DatasetVersion:
    """One version directory of a dataset."""

    def __init__(self, name: str, version: str, path: Path):
        self.name, self.version, self.path = name, version, Path(path)
        self._manifest = None

    def __repr__(self) -> str:
        return f"DatasetVersion({self.ref})"

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            try:
                self._manifest = json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ResetkitError(f"{self.path}: unreadable manifest.json ({exc})") from exc
        return self._manifest

    @property
    def splits(self) -> dict[str, list[Path]]:
        out: dict[str, list[Path]] = defaultdict(list)
        for p in sorted((self.path / "data").glob("*.parquet")):
            split = p.name.rsplit("-", 3)[0]
            out[split].append(p)
        return dict(out)

    def files(self, split: str | None = None) -> list[Path]:
        splits = self.splits
        if split is None:
            return [p for s in splits for p in splits[s]]
        if split not in splits:
            raise ResetkitError(f"{self.ref} has no split {split!r}.{suggest(split, splits)} "
                                f"Splits: {', '.join(splits) or 'none'}")
        return splits[split]

    def num_rows(self) -> dict[str, int]:
        return {s: info["rows"] for s, info in self.manifest.get("splits", {}).items()}

    @property
    def schema(self) -> pa.Schema:
        files = self.files()
        if not files:
            raise ResetkitError(f"{self.ref} has no data files")
        return pq.read_schema(files[0])

    def read(self, split: str | None = None, columns: list[str] | None = None) -> pa.Table:
        files = self.files(split)
        if not files:
            return self.schema.empty_table() if columns is None else self.schema.empty_table().select(columns)
        return pa.concat_tables([pq.read_table(f, columns=columns, pre_buffer=False) for f in files])

    def iter_batches(self, split: str | None = None, columns=None, batch_size: int = 65536):
        for f in self.files(split):
            # pre_buffer=False: the default caches the whole file while iterating (GiBs on big shards)
            yield from pq.ParquetFile(f, pre_buffer=False).iter_batches(batch_size=batch_size, columns=columns)

    def duckdb_files(self, split: str | None = None) -> str:
        """A DuckDB list literal of this version's Parquet files, for read_parquet()."""
        return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in self.files(split)) + "]"


class Store:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = store_root(root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- reading -----------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and self.versions(p.name))

    def versions(self, name: str) -> list[DatasetVersion]:
        """Versions of ``name``, oldest first (by manifest created_at)."""
        base = self.root / name
        if not base.is_dir():
            return []
        self._recover(name)
        out = [DatasetVersion(name, p.name, p) for p in base.iterdir()
               if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").is_file()]
        return sorted(out, key=lambda v: (v.manifest.get("created_at", ""), v.version))

    def _recover(self, name: str) -> None:
        """Put back a version that a killed writer had moved aside (``.trash-<version>-…``) on a
        system without an atomic exchange; remove it where its version is in place again."""
        base = self.root / name
        if not any(base.glob(".trash-*")):
            return
        try:
            with self.lock(name):  # a live writer holds it during its two renames
                for trash in base.glob(".trash-*"):
                    target = base / trash.name.split("-")[1]
                    if not target.exists() and (trash / "manifest.json").is_file():
                        os.rename(trash, target)
                    else:
                        shutil.rmtree(trash, ignore_errors=True)
        except OSError:  # a read-only store: nothing can be repaired from here
            pass

    def latest(self, name: str) -> DatasetVersion | None:
        self._recover(name)
        latest_file = self.root / name / "LATEST"
        if latest_file.is_file():
            version = latest_file.read_text(encoding="utf-8").strip()
            path = self.root / name / version
            if (path / "manifest.json").is_file():
                return DatasetVersion(name, version, path)
        versions = self.versions(name)
        return versions[-1] if versions else None

    def resolve(self, ref: str | DatasetVersion) -> DatasetVersion:
        """``NAME`` (newest) or ``NAME@VERSION`` (a unique prefix of the id is enough)."""
        if isinstance(ref, DatasetVersion):
            return ref
        name, _, version = str(ref).partition("@")
        if not (self.root / name).is_dir() or not self.versions(name):
            raise ResetkitError(f"no dataset {name!r} in store {self.root}.{suggest(name, self.names())}"
                                + (f" Datasets: {', '.join(self.names())}" if self.names() else ""))
        if not version:
            return self.latest(name)
        matches = [v for v in self.versions(name) if v.version.startswith(version)]
        if len(matches) != 1:
            known = ", ".join(v.version for v in self.versions(name))
            what = "no" if not matches else "more than one"
            raise ResetkitError(f"{what} version of {name!r} matches {version!r}. Versions: {known}")
        return matches[0]

    def exists(self, ref: str) -> bool:
        try:
            self.resolve(ref)
            return True
        except ResetkitError:
            return False

    # -- writing -----------------------------------------------------------------
    def workdir(self, name: str, version: str) -> Path:
        """Where a long stage keeps finished shards of ``name@version`` until it commits."""
        path = self.root / name / ".work" / version
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in WRITE_ERRNOS:
                raise store_write_error(self.root, exc, f"{name}@{version}") from None
            raise
        return path

    def create(self, name: str, *, builder: str, config: dict, inputs: dict | None = None,
               parents: Iterable[DatasetVersion | str] = (), builder_version: str = "1",
               shard_rows: int = DEFAULT_SHARD_ROWS) -> "VersionWriter":
        parents = [self.resolve(p) for p in parents]
        self.sweep_stale(name)
        return VersionWriter(self, name, builder=builder, config=config, inputs=inputs or {},
                             parents=parents, builder_version=builder_version, shard_rows=shard_rows)

    def sweep_stale(self, name: str, min_age_s: float = 3600.0) -> list[Path]:
        """Remove what killed writers left behind: ``.tmp-<version>-<pid>-<rand>`` temp dirs (and
        their ``.lock`` files), at any age, as soon as their writer's lock is free.

        A temp dir without a lock file (written before writers held one) goes when its process
        no longer exists on this machine and it is ``min_age_s`` old.  Returns what was removed.
        """
        import time

        removed = []
        base = self.root / name
        if not base.is_dir():
            return removed
        for path in sorted(base.glob(".tmp-*")):
            if path.name.endswith(".lock"):
                if not path.with_name(path.name[:-5]).exists() and _lock_free(path):
                    path.unlink(missing_ok=True)  # its dir is gone: a writer that died at the very end
                continue
            lock = path.with_name(path.name + ".lock")
            if lock.exists():
                if not _lock_free(lock):
                    continue  # its writer is alive
            else:
                try:
                    pid = int(path.name.split("-")[2])
                    if time.time() - path.stat().st_mtime < min_age_s or not _pid_dead(pid):
                        continue
                except (ValueError, IndexError, OSError):
                    continue
            shutil.rmtree(path, ignore_errors=True)
            lock.unlink(missing_ok=True)
            removed.append(path)
        return removed

    @contextlib.contextmanager
    def stage_lock(self, name: str, key: str, stage: str, *, log=None):
        """Let one run at a time make output ``name`` from ``key`` (a pool's version id, the pool
        a judge scores...): a second identical run waits here, saying for whom, then finds the
        first one's work done instead of paying for it again.

        An flock on ``STORE/.locks/<name>-<stage>-<hash of key>.lock``: the kernel frees it when its
        holder dies, so a killed run never blocks the next.  The holder writes its pid, host and
        start time into the file for the waiting message.
        """
        import socket

        from .runlog import progress_file  # the console, also inside a run whose output goes to its log

        locks = self.root / ".locks"
        path = locks / f"{name}-{stage}-{short_hash(key, 16)}.lock"
        try:
            locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno in WRITE_ERRNOS:
                raise store_write_error(self.root, exc, f"the {stage} lock of {name}") from None
            raise
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
                except ValueError:
                    holder = {}
                who = (f"pid {holder['pid']} on {holder.get('host', '?')} (since {holder.get('since', '?')})"
                       if "pid" in holder else "another resetkit run")
                print(f"waiting for {who} running {stage} on {name} ({key}) to finish: identical runs take "
                      f"turns and share the work; Ctrl-C to stop waiting (lock: {path})",
                      file=log or progress_file(), flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
            info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "stage": stage, "output": name,
                               "key": key, "since": _dt.datetime.now().isoformat(timespec="seconds")})
            with contextlib.suppress(OSError):  # who holds it: for the waiting message only
                os.ftruncate(fd, 0)
                os.pwrite(fd, info.encode("utf-8"), 0)
            try:
                yield
            finally:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing releases the lock

    @contextlib.contextmanager
    def lock(self, name: str):
        """The short lock of ``name``'s commits (the renames and LATEST)."""
        (self.root / name).mkdir(parents=True, exist_ok=True)
        with open(self.root / name / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


# Work another layer does after every commit: name -> fn(store, version).  The store imports
# none of them; e.g. the SQL layer's ``keep_catalog_current`` (rewrites STORE/catalog.duckdb if the
# user made one) is installed by the ``resetkit`` command line (resetkit.sql.install_commit_hook).
# A hook that fails (OSError, ResetkitError) is a warning: the version stays committed.
# A registry of callbacks, like COMMANDS or JUDGES, not a cache of data.
COMMIT_HOOKS: dict[str, Callable[[Store, DatasetVersion], None]] = {}


def version_id(name: str, builder: str, builder_version: str, config: dict, inputs: dict,
               parents: list[DatasetVersion]) -> str:
    return short_hash({"name": name, "builder": builder, "builder_version": builder_version,
                       "config": config, "inputs": inputs,
                       "parents": [p.ref for p in parents]})


class VersionWriter:
    """Writes one dataset version into a temp dir and renames it into place on commit.

    Use as a context manager; leaving the block with an exception removes the temp dir,
    so nothing partial is ever visible and earlier versions stay untouched.
    """

    def __init__(self, store: Store, name: str, *, builder: str, config: dict, inputs: dict,
                 parents: list[DatasetVersion], builder_version: str, shard_rows: int):
        self.store, self.name, self.builder = store, name, builder
        self.config, self.inputs, self.parents = config, inputs, parents
        self.builder_version = builder_version
        self.shard_rows = shard_rows
        self.version = version_id(name, builder, builder_version, config, inputs, parents)
        self.tmp = store.root / name / f".tmp-{self.version}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._lock_fh = None                # held while this writer lives: sweep_stale leaves its dir
        self.dropped: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.extra: dict = {}               # extra manifest fields
        self.card_meta: dict = {}           # extra YAML header fields for the card
        self.card_sections: dict[str, str] = {}  # extra card body sections (title -> markdown)
        self.card_text: str | None = None   # a complete card, overriding the rendered one
        self._splits: dict[str, dict] = {}
        self._schema: pa.Schema | None = None
        self.result: DatasetVersion | None = None

    @property
    def _lock_path(self) -> Path:
        return self.tmp.with_name(self.tmp.name + ".lock")

    def __enter__(self) -> "VersionWriter":
        try:
            self.tmp.parent.mkdir(parents=True, exist_ok=True)
            # the lock first, then the dir: a sweeper never sees this dir without a held lock
            self._lock_fh = open(self._lock_path, "w")
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX)
            (self.tmp / "data").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._cleanup(failed=True)
            if exc.errno in WRITE_ERRNOS:
                raise store_write_error(self.store.root, exc, self.ref) from None
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        failed = exc_type is not None
        try:
            if not failed:
                self.commit()
        except BaseException as err:
            failed, exc = True, err
            if not (isinstance(err, OSError) and err.errno in DISK_ERRNOS):
                raise
        finally:  # a failed block or a failed commit leaves nothing behind
            self._cleanup(failed)
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            # a full disk or a read-only store, met by this writer's block or its commit
            raise store_write_error(self.store.root, exc, self.ref) from exc
        return False

    def _cleanup(self, failed: bool) -> None:
        for state in self._splits.values():
            if state["writer"] is not None:
                with contextlib.suppress(Exception):  # closing writes a footer: it fails on a full disk
                    state["writer"].close()
                state["writer"] = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self._lock_fh is not None:
            self._lock_path.unlink(missing_ok=True)
            self._lock_fh.close()
            self._lock_fh = None
        if failed:  # a failed first build leaves no empty dataset folder behind
            parent = self.tmp.parent
            with contextlib.suppress(OSError):  # not empty: earlier versions or another writer
                if {p.name for p in parent.iterdir()} == {".lock"} and _lock_free(parent / ".lock"):
                    (parent / ".lock").unlink()
                parent.rmdir()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def add_drop(self, source: str, reason: str, n: int = 1) -> None:
        self.dropped[source][reason] += n

    def write(self, split: str, data: pa.Table | pa.RecordBatch | Iterable, schema: pa.Schema | None = None) -> int:
        """Append rows to ``split``: a table, a record batch, or an iterable of them.

        Shards roll over every ``shard_rows`` rows; shard names get their final
        ``-NNNNN-of-MMMMM`` numbering at commit.  Returns the rows written.
        """
        if isinstance(data, (pa.Table, pa.RecordBatch)):
            data = [data]
        state = self._splits.setdefault(split, {"rows": 0, "shards": [], "writer": None, "in_shard": 0})
        written = 0
        for chunk in data:
            if isinstance(chunk, pa.RecordBatch):
                chunk = pa.Table.from_batches([chunk])
            if schema is not None:
                chunk = chunk.select(schema.names).cast(schema)
            chunk = redact_table(chunk)  # no known secret in any cell (resetkit/secrets.py)
            if self._schema is None:
                self._schema = chunk.schema
            elif not chunk.schema.equals(self._schema):
                chunk = chunk.select(self._schema.names).cast(self._schema)
            offset = 0
            while offset < chunk.num_rows:
                if state["writer"] is None:
                    path = self.tmp / "data" / f".{split}-{len(state['shards']):05d}.parquet"
                    state["shards"].append(path)
                    state["writer"] = pq.ParquetWriter(path, self._schema, **PARQUET_OPTIONS)
                    state["in_shard"] = 0
                take = min(chunk.num_rows - offset, self.shard_rows - state["in_shard"])
                state["writer"].write_table(chunk.slice(offset, take))
                offset += take
                state["in_shard"] += take
                if state["in_shard"] >= self.shard_rows:
                    state["writer"].close()
                    state["writer"] = None
            state["rows"] += chunk.num_rows
            written += chunk.num_rows
        return written

    def _finish_splits(self, schema: pa.Schema | None) -> dict:
        out = {}
        # A split with no rows is left out when others have rows: `datasets` cannot load an empty
        # Parquet split.  If every split is empty, they are kept (one empty file each).
        if any(state["rows"] for state in self._splits.values()):
            for split in [s for s, state in self._splits.items() if not state["rows"]]:
                state = self._splits.pop(split)
                if state["writer"] is not None:
                    state["writer"].close()
                for path in state["shards"]:
                    path.unlink(missing_ok=True)
        for split, state in self._splits.items():
            if state["writer"] is not None:
                state["writer"].close()
                state["writer"] = None
            if not state["shards"]:  # declared but empty split: one empty file
                path = self.tmp / "data" / f".{split}-00000.parquet"
                pq.write_table((schema or pa.schema([])).empty_table(), path, **PARQUET_OPTIONS)
                state["shards"].append(path)
            n = len(state["shards"])
            files = []
            for i, path in enumerate(state["shards"]):
                final = path.with_name(f"{split}-{i:05d}-of-{n:05d}.parquet")
                os.replace(path, final)
                files.append(f"data/{final.name}")
            out[split] = {"rows": state["rows"], "files": files}
        return out

    def _move_in(self, target: Path) -> None:
        if not target.exists():
            os.rename(self.tmp, target)
        elif _exchange(self.tmp, target):
            # same inputs and config: the fresh (identical-data) build is in, in one step; the
            # temp dir now holds the previous build (removed below, or swept if killed first)
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:  # no atomic exchange here: move aside, move in; Store._recover repairs a kill between
            trash = target.with_name(f".trash-{self.version}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
            os.rename(target, trash)
            try:
                os.rename(self.tmp, target)
            except OSError:
                os.rename(trash, target)  # put the previous build back: never lose a version
                raise
            shutil.rmtree(trash, ignore_errors=True)

    def commit(self) -> DatasetVersion:
        splits = self._finish_splits(self._schema)
        if not splits:
            raise ResetkitError(f"{self.name}: nothing was written")
        schema = self._schema or pa.schema([])
        from .secrets import redact_config, redact_text

        manifest = {
            "name": self.name,
            "version": self.version,
            "builder": self.builder,
            "builder_version": self.builder_version,
            "resetkit_version": __version__,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"),
            "config": self.config,
            "inputs": self.inputs,
            "parents": [{"name": p.name, "version": p.version} for p in self.parents],
            "splits": splits,
            "dropped": {s: dict(r) for s, r in sorted(self.dropped.items())},
            "schema": [{"name": f.name, "type": str(f.type)} for f in schema],
            # what the card was rendered from, so `resetkit card` can render it again
            "card": {"meta": self.card_meta, "sections": self.card_sections},
            **self.extra,
        }
        # whatever a stage put into its config or extras, no secret reaches the manifest or card
        manifest = redact_config(manifest)
        (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False,
                                                           default=str) + "\n", encoding="utf-8")
        if self.card_text is None:
            from datacards.render import render_card

            self.card_text = render_card(manifest, meta=self.card_meta, sections=self.card_sections)
        self.card_text = redact_text(self.card_text)
        (self.tmp / "README.md").write_text(self.card_text, encoding="utf-8")

        target = self.store.root / self.name / self.version
        with self.store.lock(self.name):
            # LATEST first: until the rename it names a version that is not there, and readers take the
            # newest one that is (the previous); a kill at any point leaves no stale LATEST behind
            latest = self.store.root / self.name / "LATEST"
            previous = latest.read_text(encoding="utf-8") if latest.is_file() else None
            try:
                write_text_atomic(latest, self.version + "\n")
            except OSError:
                # no room for 13 bytes: without LATEST the newest version is the newest built, this one
                latest.unlink(missing_ok=True)
            try:
                self._move_in(target)
            except BaseException:
                with contextlib.suppress(OSError):  # not committed: LATEST as it was
                    if previous is None:
                        latest.unlink(missing_ok=True)
                    else:
                        write_text_atomic(latest, previous)
                raise
        self.result = DatasetVersion(self.name, self.version, target)
        for hook in COMMIT_HOOKS.values():  # e.g. the SQL layer's catalog.duckdb; the version is in already
            try:
                hook(self.store, self.result)
            except (OSError, ResetkitError) as exc:
                import sys

                print(f"warning: {self.ref} is committed, but {exc}", file=sys.stderr)
        return self.result

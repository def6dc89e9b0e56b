"""Build the paper's corpora from upstream sources into the store.

``build_corpus(store, corpus, sources, **options) -> DatasetVersion`` is the one entry point
(the CLI and the demo call it).  Corpora:

- ``if-train``: Dolly, OASST-1, ShareGPT, Self-Instruct (train + validation); unique
  examples across sources (first one wins, in that order); a seeded share of train examples
  (``dev_fraction``) is held out as validation, with OASST-1's own validation split.
- ``if-eval``: Alpaca, Vicuna-80, Koala-180 (split ``test``); only instructions unseen in
  ``if-train`` (the newest one in the store, or ``--from if-train@VERSION``).
- ``cd-train``: NQ, MS MARCO, CNN/DailyMail (train / validation / test).
- ``cd-eval``: BioASQ, SearchQA, WikiSum (split ``test``); when a ``cd-train`` is in the
  store, questions / articles seen in it are dropped.
- ``mtl`` and ``reset-seed`` are mixtures of built corpora: see ``builders.mixture``.

Rows are streamed source by source, split by split, in upstream order (files of a folder
sorted by name), so the output order is a pure function of the inputs and the config: the
same inputs give the same version id and byte-identical Parquet.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import itertools
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from resetkit.config import field
from resetkit.errors import ResetkitError
from resetkit.registry import Registry
from resetkit.schemas import EXAMPLES
from resetkit.store import DatasetVersion, Store, fingerprint_path

from . import sources as source_registry
from . import templates
from .sources import reader
from .sources import columnar
from .sources.base import Context, Source, norm_key

BUILDER = "builders.corpora"
BUILDER_VERSION = "1"
FLUSH_ROWS = 4096
MAX_INFLIGHT = 2             # FLUSH_ROWS tables queued for the background Parquet writer
# columnar path: rows converted at a time (any size gives the same output).  Small enough that
# each kernel's buffers are reused by the allocator: with 16k rows, mimalloc returned and
# re-faulted them every slice (2 s of system time at paper scale instead of 0.8 s)
SLICE_ROWS = FLUSH_ROWS

SOURCE_SETS = {
    "if-train": ["dolly", "oasst1", "sharegpt", "self_instruct"],
    "if-eval": ["alpaca", "vicuna", "koala"],
    "cd-train": ["nq", "ms_marco", "cnn_dailymail"],
    "cd-eval": ["bioasq", "searchqa", "wikisum"],
}
CORPORA = Registry("corpus", {
    **{name: "builders.corpora:build_source_corpus" for name in SOURCE_SETS},
    "mtl": "builders.mixture:build_mtl",
    "reset-seed": "builders.mixture:build_reset_seed",
})
PRETTY = {"if-train": "RESET instruction-following training set",
          "if-eval": "RESET instruction-following evaluation set",
          "cd-train": "RESET context-dependent training set",
          "cd-eval": "RESET context-dependent evaluation set",
          "mtl": "RESET multi-task mixture", "reset-seed": "RESET seed subset"}
TRAIN_OF = {"if-eval": "if-train", "cd-eval": "cd-train"}


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    template: str = field("alpaca", help="prompt template: alpaca | vicuna | vicuna-paper")
    seed: int = field(0, help="seed for the validation hold-out and the mixtures")
    limit: int | None = field(None, help="keep at most N input rows per source and split (quick builds)")
    on_bad_rows: str = field("error", help="malformed rows: error (stop, naming file/line/column) | skip (count)")
    max_passages: int = field(5, help="QA: at most this many passages in the context (paper: 5)")
    gold_passage: str = field("swap", help="QA: gold passage only beyond max_passages: swap it in | drop")
    passage_title: bool = field(True, help="QA (DPR format): prefix each passage with its title")
    dev_fraction: float = field(0.01, help="if-train: seeded share of train examples held out as validation")
    per_source: int = field(2000, help="reset-seed: examples per training set (paper: 2,000)")

    def check(self) -> None:
        templates.TEMPLATES.check(self.template)
        if self.on_bad_rows not in ("error", "skip"):
            raise ResetkitError(f"--on-bad-rows must be error or skip, not {self.on_bad_rows!r}")
        if self.gold_passage not in ("swap", "drop"):
            raise ResetkitError(f"gold_passage must be swap or drop, not {self.gold_passage!r}")
        if self.limit is not None and self.limit < 1:
            raise ResetkitError("--limit must be at least 1")


# config keys that change each corpus's rows (only these go into the version id)
CONFIG_KEYS = {
    "if-train": ("template", "seed", "limit", "on_bad_rows", "dev_fraction"),
    "if-eval": ("template", "limit", "on_bad_rows"),
    "cd-train": ("template", "limit", "on_bad_rows", "max_passages", "gold_passage", "passage_title"),
    "cd-eval": ("template", "limit", "on_bad_rows", "max_passages", "gold_passage", "passage_title"),
    "mtl": ("seed",),
    "reset-seed": ("seed", "per_source"),
}


def build_corpus(store: Store | str, corpus: str, sources: dict[str, str] | None = None, *,
                 name: str | None = None, from_refs: list[str] | tuple = (), progress: bool = False,
                 only: list[str] | tuple | None = None, **options) -> DatasetVersion:
    """Build ``corpus`` into ``store``; ``sources`` maps source name -> local path or Hub id
    (missing sources load from their default Hub id).  ``only`` builds the corpus from those
    of its sources alone (the manifest, card and version id then name only them).  Options
    are ``BuildConfig`` fields.
    """
    from resetkit.config import build as build_config

    store = store if isinstance(store, Store) else Store(store)
    CORPORA.check(corpus)
    cfg = build_config(BuildConfig, {k: v for k, v in options.items() if v is not None})
    cfg.check()
    fn = CORPORA.get(corpus)
    if only is not None:
        if corpus not in SOURCE_SETS:
            raise ResetkitError(f"--only picks the sources of if-train, if-eval, cd-train or cd-eval; {corpus} is "
                                f"built from other corpora (use --from)")
        return fn(store, corpus, dict(sources or {}), cfg, name=name or corpus, from_refs=list(from_refs),
                  progress=progress, only=list(only))
    return fn(store, corpus, dict(sources or {}), cfg, name=name or corpus, from_refs=list(from_refs),
              progress=progress)


def corpus_config(corpus: str, cfg: BuildConfig) -> dict:
    full = dataclasses.asdict(cfg)
    return {k: full[k] for k in CONFIG_KEYS[corpus]}


# -- reading one source -------------------------------------------------------------------
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


def output_splits(role: str, available: list[str]) -> dict[str, str]:
    """upstream split -> output split for a source feeding a corpus of ``role``."""
    if role == "if-train":
        return {s: s for s in ("train", "validation") if s in available}
    if role == "cd-train":
        return {s: s for s in ("train", "validation", "test") if s in available}
    # evaluation sources: their test split, or the only split there is
    if "test" in available:
        return {"test": "test"}
    if len(available) == 1:
        return {available[0]: "test"}
    raise ResetkitError(f"cannot tell which split to evaluate on among {', '.join(available)}: "
                        f"pass a single file or a folder with test* files")


def _digest(text: str) -> bytes:
    """A short key for de-duplication sets (never stored).  sha256 because it is the fastest
    hashlib digest where the CPU has SHA extensions, as x86-64 and ARM64 servers do."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:10]


def _unseen_key(row: dict) -> str:
    """What makes an example 'seen': its instruction (IF), question (QA) or article (summaries)."""
    if row["objective"] == "instruction":
        return norm_key(row["instruction"])
    return norm_key(row["question"] if row["question"] is not None else row["context"])


def _train_keys(store: Store, train_ref: DatasetVersion) -> set[bytes]:
    keys: set[bytes] = set()
    cols = ["objective", "instruction", "question", "context"]
    for batch in train_ref.iter_batches(columns=cols, batch_size=8192):
        for row in batch.to_pylist():
            keys.add(_digest(_unseen_key(row)))
    return keys


def _resolve_train(store: Store, corpus: str, from_refs: list[str]) -> DatasetVersion | None:
    want = TRAIN_OF[corpus]
    for ref in from_refs:
        if ref.partition("@")[0] == want:
            return store.resolve(ref)
    if from_refs:
        raise ResetkitError(f"--from for {corpus} must name {want} (got {', '.join(from_refs)})")
    if store.exists(want):
        return store.resolve(want)
    if corpus == "if-eval":  # the paper's rule needs it
        raise ResetkitError(f"if-eval keeps only examples unseen in if-train, and the store {store.root} "
                            f"has no if-train: run `resetkit build if-train` first (or pass --from)")
    return None


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


def _add_if_train_tables(tables, out: SplitBuffers, ctx: Context, cfg: BuildConfig, dedup: set,
                         seen_ids: set, per_split: dict) -> None:
    """The columnar twin of the row loop in ``build_source_corpus`` for if-train."""
    for table in tables:
        table = _if_train_filter(table, ctx, cfg, dedup, seen_ids)
        for split in dict.fromkeys(table.column("split").to_pylist()):
            part = table.filter(pc.equal(table.column("split"), split))
            out.add_table(split, part)
            per_split[split] = per_split.get(split, 0) + part.num_rows


def _if_train_filter(table: pa.Table, ctx: Context, cfg: BuildConfig, dedup: set, seen_ids: set) -> pa.Table:
    """The corpus rules of the row loop below for if-train, on a table of one output split:
    drop repeated ids and repeated (instruction, response) pairs (first one wins), hold out a
    seeded share of train rows as validation.  Same keys, hashes and order as the row loop;
    only the set look-ups stay a Python loop."""
    ids = table.column("id").to_pylist()
    keep = []
    n_dup_id = n_dup = 0
    for i, (example_id, key) in enumerate(zip(ids, _dedup_keys(table))):
        if example_id in seen_ids:
            n_dup_id += 1
            continue
        if key in dedup:
            n_dup += 1
            continue
        dedup.add(key)
        seen_ids.add(example_id)
        keep.append(i)
    for reason, n in (("duplicate_id", n_dup_id), ("duplicate", n_dup)):
        if n:
            ctx.drop(reason, n)
    if len(keep) < table.num_rows:
        table = table.take(pa.array(keep, pa.int64()))
    splits = table.column("split").unique().to_pylist()
    if splits == ["train"] and cfg.dev_fraction > 0:
        held = _held_out_all([ids[i] for i in keep], cfg)
        table = table.set_column(table.schema.get_field_index("split"), "split",
                                 pc.if_else(pa.array(held, pa.bool_()), "validation", "train"))
    return table


def _dedup_keys(table: pa.Table) -> list[bytes]:
    """``_digest(norm_key(instruction) + NUL + response)`` per row, the response hashed as
    bytes straight from Arrow (``norm_key`` stays Python's: Arrow's lower-casing differs on
    a few characters)."""
    sha256 = hashlib.sha256
    keys = []
    for instruction, response in zip(table.column("instruction").to_pylist(),
                                     columnar.row_bytes(table.column("response"))):
        h = sha256((" ".join(instruction.split()).lower() + "\x00").encode("utf-8"))  # norm_key, inlined
        h.update(response)
        keys.append(h.digest()[:10])
    return keys


def _held_out_all(example_ids: list[str], cfg: BuildConfig) -> list[bool]:
    """``_held_out`` for many ids: the first 12 hex digits of the digest are its first 6 bytes."""
    prefix, limit = f"{cfg.seed}:".encode("utf-8"), cfg.dev_fraction * 16 ** 12
    sha256, from_bytes = hashlib.sha256, int.from_bytes
    return [from_bytes(sha256(prefix + i.encode("utf-8")).digest()[:6], "big") < limit for i in example_ids]


def _check_sources(corpus: str, names, what: str) -> None:
    wanted = SOURCE_SETS[corpus]
    for src_name in names:
        source_registry.SOURCES.check(src_name)
        if src_name not in wanted:
            raise ResetkitError(f"{what} {src_name!r} is not part of {corpus} (its sources: {', '.join(wanted)})")


def build_source_corpus(store: Store, corpus: str, specs: dict[str, str], cfg: BuildConfig, *,
                        name: str, from_refs: list[str], progress: bool,
                        only: list[str] | None = None) -> DatasetVersion:
    """if-train / if-eval / cd-train / cd-eval from their upstream sources (all of them, or
    the ``only`` ones, in the corpus's order)."""
    _check_sources(corpus, specs, "source")
    wanted = SOURCE_SETS[corpus]
    if only is not None:
        _check_sources(corpus, only, "--only source")
        if not only:
            raise ResetkitError("--only needs at least one source name")
        extra = [n for n in specs if n not in only]
        if extra:
            raise ResetkitError(f"--source {extra[0]} is given but {extra[0]!r} is not in --only "
                                f"({','.join(only)}): add it to --only or drop the --source")
        wanted = [n for n in wanted if n in only]
    train_ref = _resolve_train(store, corpus, from_refs) if corpus in TRAIN_OF else None
    given = [m for m in wanted if m in specs]  # what --only should keep when a Hub default fails
    opened = {n: OpenSource(source_registry.get(n), specs.get(n), given or [m for m in wanted if m != n])
              for n in wanted}
    inputs = {n: o.fingerprint for n, o in opened.items()}
    config = {"corpus": corpus, **corpus_config(corpus, cfg)}
    if wanted != SOURCE_SETS[corpus]:  # a subset is another dataset: its own version id
        config["sources"] = wanted
    writer = store.create(name, builder=BUILDER, builder_version=BUILDER_VERSION, config=config,
                          inputs=inputs, parents=[train_ref] if train_ref else [])
    seen_train = _train_keys(store, train_ref) if train_ref else set()
    counts: dict[str, dict[str, int]] = {}
    notes: dict[str, dict[str, int]] = {}
    with writer as w:
        # only splits with rows are written: `datasets` cannot load a Parquet file without rows
        with SplitBuffers(w) as out:  # every queued Parquet write finishes before the commit
            dedup: set[bytes] = set()   # if-train: (instruction, response); evals: unseen key
            seen_ids: set[str] = set()
            for src_name, opened_src in opened.items():
                src = opened_src.src
                ctx = Context(template=cfg.template, max_passages=cfg.max_passages,
                              gold_passage=cfg.gold_passage, passage_title=cfg.passage_title,
                              on_bad_rows=cfg.on_bad_rows)
                stats = reader.ReadStats()
                split_map = output_splits(src.role, list(opened_src.splits))
                per_split = counts.setdefault(src_name, {})
                for up_split, split in split_map.items():
                    tables = opened_src.example_tables(up_split, split, ctx, cfg) if corpus == "if-train" else None
                    if tables is not None:
                        _add_if_train_tables(tables, out, ctx, cfg, dedup, seen_ids, per_split)
                        continue
                    chunks = opened_src.rows(up_split, ctx, cfg, stats)
                    rows = src.examples(_progress(chunks, f"{src_name}/{up_split}", progress), split, ctx)
                    for row in rows:
                        if row["id"] in seen_ids:
                            ctx.drop("duplicate_id")
                            continue
                        if corpus == "if-train":
                            key = _digest(norm_key(row["instruction"]) + "\x00" + row["response"])
                            if key in dedup:
                                ctx.drop("duplicate")
                                continue
                            dedup.add(key)
                            if row["split"] == "train" and _held_out(row["id"], cfg):
                                row["split"] = "validation"
                        elif corpus in TRAIN_OF:
                            key = _digest(_unseen_key(row))
                            if key in seen_train:
                                ctx.drop("seen_in_training")
                                continue
                            if corpus == "if-eval":
                                if key in dedup:
                                    ctx.drop("duplicate")
                                    continue
                                dedup.add(key)
                        seen_ids.add(row["id"])
                        out.add(row["split"], row)
                        per_split[row["split"]] = per_split.get(row["split"], 0) + 1
                source_drops = {**ctx.drops, **{f"bad_row:{k}": v for k, v in stats.dropped.items()}}
                for reason, n in sorted(source_drops.items()):
                    w.add_drop(src_name, reason, n)
                _check_some_rows_left(src_name, per_split, source_drops)
                if ctx.notes:
                    notes[src_name] = dict(sorted(ctx.notes.items()))
            out.flush()
        if not any(per.values() for per in counts.values()):
            drops = "; ".join(f"{n}: " + ", ".join(f"{r}={c}" for r, c in sorted(d.items()))
                              for n, d in sorted(w.dropped.items()))
            raise ResetkitError(f"{corpus}: no example survived the rules ({drops or 'the inputs are empty'})")
        _describe(w, corpus, cfg, opened, counts, train_ref, notes)
    return w.result


def _check_some_rows_left(src_name: str, per_split: dict, drops: dict) -> None:
    """A source whose every row was skipped as malformed (``--on-bad-rows skip``) is an
    error, not a build that 'succeeds' without it: most likely the file is in a form this
    source does not read.  (Rows the paper's rules drop are the rules working: a source
    may legitimately keep nothing, and the card says so.)"""
    if any(per_split.values()):
        return
    bad = {r: n for r, n in drops.items() if r.startswith("bad_row:")}
    if bad:
        counts = ", ".join(f"{r}={n:,}" for r, n in sorted(drops.items()))
        raise ResetkitError(f"{src_name}: no row survived, {sum(bad.values()):,} were skipped as malformed "
                            f"({counts}): is the file in a form {src_name} reads? (docs/corpora.md lists them)")


def _declared_splits(corpus: str) -> list[str]:
    return {"if-train": ["train", "validation"], "cd-train": ["train", "validation", "test"]}.get(corpus, ["test"])


def _held_out(example_id: str, cfg: BuildConfig) -> bool:
    """Seeded, order-free hold-out: an example's fate depends only on its id and the seed."""
    if cfg.dev_fraction <= 0:
        return False
    digest = hashlib.sha256(f"{cfg.seed}:{example_id}".encode("utf-8")).hexdigest()[:12]
    return int(digest, 16) < cfg.dev_fraction * 16 ** 12


def _progress(chunks: Iterator, label: str, enabled: bool) -> Iterator:
    if not enabled:
        yield from chunks
        return
    from tqdm import tqdm

    with tqdm(desc=label, unit=" rows", leave=False, delay=2.0) as bar:  # only on long reads
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk.rows))


def _describe(w, corpus: str, cfg: BuildConfig, opened: dict, counts: dict, train_ref, notes: dict) -> None:
    """Card header fields and body sections (drops and lineage come from the manifest)."""
    licenses = sorted({o.src.license for o in opened.values()})
    w.card_meta.update({
        "pretty_name": PRETTY[corpus],
        "license": licenses[0] if len(licenses) == 1 else licenses,
        "task_categories": (["text-generation"] if corpus.startswith("if")
                            else ["question-answering", "summarization", "text-generation"]),
        "source_datasets": sorted({(o.fingerprint.get("repo") if "repo" in o.fingerprint
                                    else (o.src.hub_id or o.src.name)).split(":")[0] for o in opened.values()}),
    })
    splits = [s for s in _declared_splits(corpus) if any(s in c for c in counts.values())]
    lines = ["| source | input | license | rules | " + " | ".join(splits) + " |",
             "|---|---|---|---|" + "---|" * len(splits)]
    for n, o in opened.items():
        fp = o.fingerprint
        where = f"Hub `{fp['repo']}`" if "repo" in fp else f"local `{fp.get('path')}`"
        lines.append(f"| {o.src.pretty} (`{n}`) | {where} | {o.src.license} | {o.src.rules} | "
                     + " | ".join(f"{counts.get(n, {}).get(s, 0):,}" for s in splits) + " |")
    w.card_sections["Sources"] = "\n".join(lines)
    w.card_sections["Template"] = (f"Prompts use the **{cfg.template}** template "
                                   f"({templates.DESCRIPTIONS[cfg.template]}):\n\n```\n"
                                   f"{templates.skeleton(cfg.template)}\n```")
    how = {
        "if-train": (f"Unique examples across sources (case- and space-normalised instruction + exact "
                     f"response; the first source in the order {', '.join(SOURCE_SETS['if-train'])} wins). A seeded "
                     f"{cfg.dev_fraction:.2%} of train examples (seed {cfg.seed}) is held out as "
                     f"validation, together with OASST-1's own validation split."),
        "if-eval": f"Only instructions unseen in `{train_ref.ref if train_ref else '?'}`; duplicates dropped.",
        "cd-train": (f"QA contexts: at most {cfg.max_passages} passages joined with a newline, at least "
                     f"one mentioning a gold answer (gold beyond them: {cfg.gold_passage})."),
        "cd-eval": ("QA contexts as in cd-train. "
                    + (f"Questions and articles seen in `{train_ref.ref}` are dropped." if train_ref
                       else "No cd-train was in the store: no overlap check was made.")),
    }
    built = how[corpus]
    per_source = [(o.src.pretty, n, o.src.card_notes(notes.get(n, {}))) for n, o in opened.items()]
    built += "".join(f"\n\n- {pretty} (`{n}`): {text}." for pretty, n, text in per_source if text)
    w.card_sections["How it was built"] = built
    w.extra.update({"corpus": corpus, "template": cfg.template,
                    "source_rows": counts, "source_inputs": {n: o.label for n, o in opened.items()}})
    if notes:
        w.extra["source_notes"] = notes


def sample_sources(corpus: str) -> dict[str, str]:
    """``--source`` specs pointing at builders/samples/ for one source corpus."""
    from .samples.make_samples import HERE, SAMPLE_PATHS

    return {n: str(HERE / SAMPLE_PATHS[n]) for n in SOURCE_SETS[corpus]}


def build_all_samples(store: Store | str, template: str = "alpaca", **options) -> dict[str, DatasetVersion]:
    """Build every corpus from the committed sample files (offline); returns corpus -> version.

    Order matters: if-eval checks against if-train, cd-eval against cd-train, and the
    mixtures read both training corpora.
    """
    store = store if isinstance(store, Store) else Store(store)
    out: dict[str, DatasetVersion] = {}
    for corpus in ("if-train", "cd-train", "if-eval", "cd-eval"):
        out[corpus] = build_corpus(store, corpus, sample_sources(corpus), template=template, **options)
    refs = [out["if-train"].ref, out["cd-train"].ref]
    for corpus in ("mtl", "reset-seed"):
        out[corpus] = build_corpus(store, corpus, {}, from_refs=refs, **options)
    return out

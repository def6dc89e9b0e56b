"""Build a source corpus (if-train, if-eval, cd-train, cd-eval) from its upstream sources.

Rows are streamed source by source, split by split, in upstream order (files of a folder
sorted by name), so the output order is a pure function of the inputs and the config: the
same inputs give the same version id and byte-identical Parquet.  The rules are in
``rules.py``, the reading in ``inputs.py``, the writing in ``writer.py``, the card in
``card.py``.
"""

from __future__ import annotations

from typing import Iterator

import pyarrow.compute as pc

from resetkit.errors import ResetkitError
from resetkit.store import DatasetVersion, Store

from .. import sources as source_registry
from ..sources import reader
from ..sources.base import Context
from .card import describe
from .config import BUILDER, BUILDER_VERSION, TRAIN_OF, BuildConfig, corpus_config, output_splits, source_set
from .inputs import OpenSource
from .rules import Rules, resolve_train, train_keys
from .writer import SplitBuffers


def _check_sources(corpus: str, names, what: str) -> None:
    wanted = source_set(corpus)
    for src_name in names:
        source_registry.SOURCES.check(src_name)
        if src_name not in wanted:
            raise ResetkitError(f"{what} {src_name!r} is not part of {corpus} (its sources: {', '.join(wanted)})")


def _wanted(corpus: str, specs: dict[str, str], only: list[str] | None) -> list[str]:
    """The sources to build from: all of the corpus's, or the ``only`` ones, in its order."""
    _check_sources(corpus, specs, "source")
    wanted = source_set(corpus)
    if only is None:
        return wanted
    _check_sources(corpus, only, "--only source")
    if not only:
        raise ResetkitError("--only needs at least one source name")
    extra = [n for n in specs if n not in only]
    if extra:
        raise ResetkitError(f"--source {extra[0]} is given but {extra[0]!r} is not in --only "
                            f"({','.join(only)}): add it to --only or drop the --source")
    return [n for n in wanted if n in only]


def build_source_corpus(store: Store, corpus: str, specs: dict[str, str], cfg: BuildConfig, *,
                        name: str, from_refs: list[str], progress: bool,
                        only: list[str] | None = None) -> DatasetVersion:
    """if-train / if-eval / cd-train / cd-eval from their upstream sources (all of them, or
    the ``only`` ones, in the corpus's order)."""
    wanted = _wanted(corpus, specs, only)
    train_ref = resolve_train(store, corpus, from_refs) if corpus in TRAIN_OF else None
    given = [m for m in wanted if m in specs]  # what --only should keep when a Hub default fails
    opened = {n: OpenSource(source_registry.get(n), specs.get(n), given or [m for m in wanted if m != n])
              for n in wanted}
    config = {"corpus": corpus, **corpus_config(corpus, cfg)}
    if wanted != source_set(corpus):  # a subset is another dataset: its own version id
        config["sources"] = wanted
    writer = store.create(name, builder=BUILDER, builder_version=BUILDER_VERSION, config=config,
                          inputs={n: o.fingerprint for n, o in opened.items()},
                          parents=[train_ref] if train_ref else [])
    rules = Rules(corpus, cfg.seed, cfg.dev_fraction, train_keys(train_ref) if train_ref else set())
    counts: dict[str, dict[str, int]] = {}
    notes: dict[str, dict[str, int]] = {}
    with writer as w:
        # only splits with rows are written: `datasets` cannot load a Parquet file without rows
        with SplitBuffers(w) as out:  # every queued Parquet write finishes before the commit
            for src_name, opened_src in opened.items():
                ctx = Context(template=cfg.template, max_passages=cfg.max_passages,
                              gold_passage=cfg.gold_passage, passage_title=cfg.passage_title,
                              on_bad_rows=cfg.on_bad_rows)
                stats = reader.ReadStats()
                counts[src_name] = _add_source(opened_src, corpus, cfg, ctx, stats, rules, out, progress)
                source_drops = {**ctx.drops, **{f"bad_row:{k}": v for k, v in stats.dropped.items()}}
                for reason, n in sorted(source_drops.items()):
                    w.add_drop(src_name, reason, n)
                _check_some_rows_left(src_name, counts[src_name], source_drops)
                if ctx.notes:
                    notes[src_name] = dict(sorted(ctx.notes.items()))
            out.flush()
        if not any(per.values() for per in counts.values()):
            drops = "; ".join(f"{n}: " + ", ".join(f"{r}={c}" for r, c in sorted(d.items()))
                              for n, d in sorted(w.dropped.items()))
            raise ResetkitError(f"{corpus}: no example survived the rules ({drops or 'the inputs are empty'})")
        describe(w, corpus, cfg, opened, counts, train_ref, notes)
    return w.result


def _add_source(opened: OpenSource, corpus: str, cfg: BuildConfig, ctx: Context, stats: reader.ReadStats,
                rules: Rules, out: SplitBuffers, progress: bool) -> dict[str, int]:
    """Convert one source split by split, apply the rules, buffer the rows; rows per split."""
    per_split: dict[str, int] = {}
    for up_split, split in output_splits(opened.src.role, list(opened.splits)).items():
        tables = opened.example_tables(up_split, split, ctx, cfg) if corpus == "if-train" else None
        if tables is not None:  # the columnar fast path
            for table in tables:
                table = rules.admit_table(table, ctx)
                for s in dict.fromkeys(table.column("split").to_pylist()):
                    part = table.filter(pc.equal(table.column("split"), s))
                    out.add_table(s, part)
                    per_split[s] = per_split.get(s, 0) + part.num_rows
            continue
        chunks = _progress(opened.rows(up_split, ctx, cfg, stats), f"{opened.src.name}/{up_split}", progress)
        for row in opened.src.examples(chunks, split, ctx):
            if rules.admit_row(row, ctx):
                out.add(row["split"], row)
                per_split[row["split"]] = per_split.get(row["split"], 0) + 1
    return per_split


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


def _progress(chunks: Iterator, label: str, enabled: bool) -> Iterator:
    if not enabled:
        yield from chunks
        return
    from tqdm import tqdm

    with tqdm(desc=label, unit=" rows", leave=False, delay=2.0) as bar:  # only on long reads
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk.rows))

"""Mixtures of built corpora: ``mtl`` and ``reset-seed`` (paper A.3 and section 5).

Both read their inputs from the store -- the newest ``if-train`` and ``cd-train``, or the
versions named by ``from_refs`` (``["if-train@v1", "cd-train@v2"]``) -- and record them as
parents.  The four training sets are IF (all of if-train) and the three cd-train sources
(NQ, MS MARCO, CNN/DailyMail).

- ``mtl``: split ``train`` = every training set up-sampled to the size of the largest: whole
  copies plus a seeded sample without replacement for the remainder; split ``validation`` =
  both validation splits as they are.  Rows stay grouped by set (trainers shuffle), so the
  build streams and never holds a corpus in memory.
- ``reset-seed``: split ``train`` = ``min(per_source, available)`` seeded examples from each
  training set (paper: 2,000 each, 8,000 in all).

Sampling draws row positions with ``numpy.random.default_rng([seed, set index])``, then
streams the parent's Parquet and keeps those positions, in their original order.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from resetkit.errors import ResetkitError
from resetkit.schemas import EXAMPLES
from resetkit.store import DatasetVersion, Store

SETS = [("if", "if-train", None), ("nq", "cd-train", "nq"), ("ms_marco", "cd-train", "ms_marco"),
        ("cnn_dailymail", "cd-train", "cnn_dailymail")]


def resolve_parents(store: Store, from_refs: list[str]) -> dict[str, DatasetVersion]:
    out = {}
    for ref in from_refs:
        name = ref.partition("@")[0]
        if name not in ("if-train", "cd-train"):
            raise ResetkitError(f"--from takes if-train@VERSION and cd-train@VERSION, not {ref!r}")
        out[name] = store.resolve(ref)
    for name in ("if-train", "cd-train"):
        if name not in out:
            if not store.exists(name):
                raise ResetkitError(f"the store {store.root} has no {name}: build it first "
                                    f"(`resetkit build {name} ...`) or pass --from {name}@VERSION")
            out[name] = store.resolve(name)
    templates = {v.manifest.get("template") for v in out.values()}
    if len(templates) > 1:
        raise ResetkitError(f"if-train and cd-train use different templates ({', '.join(map(str, templates))}): "
                            f"rebuild one with --template")
    return out


def _positions(version: DatasetVersion, split: str, source: str | None) -> np.ndarray:
    """Row positions (within the split) of one training set."""
    col = pa.concat_arrays([b.column(0) for b in version.iter_batches(split, columns=["source"])]
                           or [pa.array([], pa.string())])
    if source is None:
        return np.arange(len(col))
    return np.flatnonzero(pc.equal(col, source).to_numpy(zero_copy_only=False))


def _stream_take(version: DatasetVersion, split: str, positions: np.ndarray):
    """Yield tables of the rows at ``positions`` (sorted; repeats allowed) in one pass."""
    positions = np.sort(positions)
    offset = 0
    for batch in version.iter_batches(split):
        n = batch.num_rows
        lo, hi = np.searchsorted(positions, [offset, offset + n])
        if hi > lo:
            yield pa.Table.from_batches([batch]).take(pa.array(positions[lo:hi] - offset))
        offset += n


def _sets(parents):
    for i, (label, parent, source) in enumerate(SETS):
        version = parents[parent]
        yield i, label, version, _positions(version, "train", source)


def _meta(w, parents, counts: dict, title: str, text: str) -> None:
    w.extra.update({"template": parents["if-train"].manifest.get("template"), "set_rows": counts})
    licenses: set[str] = set()
    for v in parents.values():
        lic = v.manifest.get("card", {}).get("meta", {}).get("license", "other")
        licenses.update([lic] if isinstance(lic, str) else lic)
    w.card_meta.update({"license": sorted(licenses),
                        "source_datasets": sorted({s for v in parents.values() for s in
                                                   v.manifest.get("card", {}).get("meta", {}).get("source_datasets", [])}),
                        "pretty_name": title, "task_categories": ["text-generation", "question-answering",
                                                                  "summarization"]})
    table = ["| training set | rows available | rows written |", "|---|---|---|"]
    table += [f"| {k} | {v['available']:,} | {v['written']:,} |" for k, v in counts.items()]
    w.card_sections["Training sets"] = "\n".join(table)
    w.card_sections["How it was built"] = text
    w.card_sections["Template"] = f"Inherited from the parents: **{w.extra['template']}**."


def build_mtl(store: Store, corpus: str, specs: dict, cfg, *, name: str, from_refs: list[str],
              progress: bool) -> DatasetVersion:
    if specs:
        raise ResetkitError("mtl takes its inputs from the store (--from), not --source")
    parents = resolve_parents(store, from_refs)
    sets = list(_sets(parents))
    target = max(len(p) for *_, p in sets)
    if target == 0:
        raise ResetkitError("mtl: every training set is empty")
    counts = {}
    with store.create(name, builder="builders.mixture.mtl", config={"corpus": corpus, "seed": cfg.seed},
                      parents=[parents["if-train"], parents["cd-train"]]) as w:
        for i, label, version, pos in sets:
            if len(pos) == 0:
                counts[label] = {"available": 0, "written": 0}
                continue
            copies, rest = divmod(target, len(pos))
            rng = np.random.default_rng([cfg.seed, i])
            extra = np.sort(rng.choice(pos, size=rest, replace=False)) if rest else pos[:0]
            # whole copies and the sampled remainder in one pass: each position repeated
            take = np.concatenate([np.repeat(pos, copies), extra])
            for table in _stream_take(version, "train", take):
                w.write("train", table.cast(EXAMPLES))
            counts[label] = {"available": int(len(pos)), "written": int(len(take))}
        for parent in ("if-train", "cd-train"):  # `datasets` cannot load an empty split: skip them
            if parents[parent].num_rows().get("validation"):
                w.write("validation", parents[parent].iter_batches("validation"), schema=EXAMPLES)
        _meta(w, parents, counts, "RESET multi-task mixture (MTL)",
              f"Every training set up-sampled to the largest ({target:,} rows): whole copies plus a "
              f"seeded sample (seed {cfg.seed}) for the remainder. Validation splits are kept as they are. "
              f"Rows are grouped by training set; trainers shuffle.")
    return w.result


def build_reset_seed(store: Store, corpus: str, specs: dict, cfg, *, name: str, from_refs: list[str],
                     progress: bool) -> DatasetVersion:
    if specs:
        raise ResetkitError("reset-seed takes its inputs from the store (--from), not --source")
    if cfg.per_source < 1:
        raise ResetkitError("--per-source must be at least 1")
    parents = resolve_parents(store, from_refs)
    counts = {}
    with store.create(name, builder="builders.mixture.reset_seed",
                      config={"corpus": corpus, "seed": cfg.seed, "per_source": cfg.per_source},
                      parents=[parents["if-train"], parents["cd-train"]]) as w:
        for i, label, version, pos in _sets(parents):
            n = min(cfg.per_source, len(pos))
            rng = np.random.default_rng([cfg.seed, i])
            take = np.sort(rng.choice(pos, size=n, replace=False)) if n else pos[:0]
            for table in _stream_take(version, "train", take):
                w.write("train", table.cast(EXAMPLES))
            counts[label] = {"available": int(len(pos)), "written": int(n)}
        short = [k for k, v in counts.items() if v["written"] < cfg.per_source]
        _meta(w, parents, counts, "RESET seed subset",
              f"{cfg.per_source:,} seeded examples (seed {cfg.seed}) from each training set"
              + (f"; fewer were available for {', '.join(short)}, so all of them were taken." if short else "."))
    return w.result

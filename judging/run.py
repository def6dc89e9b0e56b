"""Apply the external judges to a candidate pool and write the long ``scores`` table.

    run_judges(store, pool_ref, judges, cfg, *, name="scores", progress=True) -> DatasetVersion
    plan_judges(store, pool_ref, judges, cfg, *, name="scores") -> dict   (what a run would do)
    judge_items(store, pool_ref, judges) -> Items  (the distinct items a fresh run hands judges[0])

Each judge (registry: judging.api.JUDGES) scores the candidates whose example task it
covers (DESIGN.md §5) and emits rows of resetkit.schemas.SCORES.  Example fields (task,
objective, instruction, question, context, refs) come from the examples dataset named in
the pool manifest's ``extra["examples"]``.

Incremental: the newest earlier ``scores`` version of the same pool is read; its rows are
kept where (candidate, judge, judge_version) still holds, and only the rest is computed
(rows of judges not asked for this time are carried over unchanged).  Identical texts of
one example are judged once and the result copied to every duplicate.  The new version
lists the pool and examples as parents; ``extra["carried_from"]`` names the version rows
were reused from.

Everything around the judges is columnar (Arrow and numpy, no Python loop over the pool's
rows): the pool's texts are read dictionary-encoded from Parquet, identical (example, text)
pairs are found as integer codes, the judges get an ``Items`` (judging/items.py: columns, and
a memo the judges of the run share), and the scores table is assembled with ``take`` in its
final (candidate_id, judge, metric) order.
"""

from __future__ import annotations

import hashlib
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from resetkit.config import split_run_fields
from resetkit.errors import ResetkitError
from resetkit.schemas import SCORES, check_columns
from resetkit.store import DatasetVersion, Store

from .items import ExampleColumns, Items, ScoreColumns
from .api import DEFAULT_JUDGES, JUDGES, RETRYABLE, Judge, JudgeConfig


class _Pool:
    """The pool of one run as columns: per candidate row its example (a row of the examples
    table), its group of identical (example, text) pairs (numbered in order of first
    occurrence), and the distinct texts."""

    def __init__(self, store: Store, pool_ref, judges: list[Judge]):
        self.pool = pool = store.resolve(pool_ref)
        check_columns(pool.schema, ["example_id", "candidate_id", "text"], "candidate pool", pool.ref)
        ex_ref = (pool.manifest or {}).get("examples")
        if not ex_ref:
            raise ResetkitError(f"{pool.ref}: manifest has no 'examples' entry naming the examples dataset")
        self.examples = examples = store.resolve(ex_ref)
        needs = sorted({"id", "task"} | {c for j in judges for c in j.needs})
        check_columns(examples.schema, needs, f"examples dataset {examples.ref} (needed by judges "
                                              f"{', '.join(j.name for j in judges)})", str(examples.path))
        ptab = _read(pool, ["example_id", "candidate_id", "text"], dictionary=["text"])
        self.etab = etab = _read(examples, needs)
        self.n = ptab.num_rows
        self.example_id = ptab.column("example_id")
        self.candidate_id = ptab.column("candidate_id").combine_chunks()
        # each candidate's example: the last examples row of its id, as a dict of the rows would give
        ids = etab.column("id")
        last = pc.index_in(self.example_id, value_set=ids[::-1]).combine_chunks()
        if last.null_count:
            missing = sorted(set(pc.filter(self.example_id, pc.is_null(last)).to_pylist()))
            raise ResetkitError(f"{pool.ref}: {len(missing)} example_id(s) not in {examples.ref}, "
                                f"e.g. {missing[:3]}")
        self.ex_row = len(ids) - 1 - last.to_numpy().astype(np.int64)
        self.texts, text_code = _text_codes(ptab.column("text"))
        # groups: identical (example, text) pairs, numbered in order of first occurrence
        key = pa.array(self.ex_row * max(1, len(self.texts)) + text_code)
        self.group = pc.dictionary_encode(key).indices.to_numpy().astype(np.int64)
        self.text_code = text_code
        self.examples_py = ExampleColumns(etab)
        self._tasks = None

    def task_rows(self, tasks) -> np.ndarray:
        """Which candidate rows belong to an example of one of ``tasks``."""
        if self._tasks is None:
            self._tasks = pc.dictionary_encode(self.etab.column("task")).combine_chunks()
        names = self._tasks.dictionary.to_pylist()
        ok = np.array([t in tasks for t in names] + [False], bool)
        codes = pc.fill_null(self._tasks.indices, len(names)).to_numpy()
        return ok[codes][self.ex_row]


def _read(version: DatasetVersion, columns: list[str], dictionary=()) -> pa.Table:
    """``version.read(columns=...)``, ``dictionary`` columns read as Parquet stores them
    (dictionary-encoded: the pool's duplicate texts are decoded once, not once per candidate)."""
    files = version.files()
    if not files:
        return version.read(columns=columns)
    return pa.concat_tables([pq.read_table(f, columns=columns, read_dictionary=list(dictionary), pre_buffer=False)
                             for f in files])


def _text_codes(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(distinct texts, each row's index into them) of a dictionary-encoded text column; a null
    text is the empty text, as the judges see it."""
    chunks = column.unify_dictionaries().chunks if column.num_chunks else []
    values = chunks[0].dictionary if chunks else pa.array([], pa.string())
    values = pa.concat_arrays([values.cast(pa.string()), pa.array([""], pa.string())])
    # one code per distinct string (a Parquet dictionary holds each value once; this makes sure)
    dedup = pc.dictionary_encode(values)
    remap = dedup.indices.to_numpy().astype(np.int64)
    null_code = len(values) - 1
    codes = np.concatenate([c.indices.fill_null(null_code).to_numpy() for c in chunks]) if chunks \
        else np.zeros(0, np.int64)
    return dedup.dictionary, remap[codes.astype(np.int64)]


class _Work:
    """The items one judge still has to score: ``items`` (one per distinct (example, text)
    pair with a candidate to score, in order of first occurrence), ``rows`` (the candidate
    rows that get an item's result, grouped by item, in pool order) and ``item_of_row``."""

    def __init__(self, p: _Pool, todo: np.ndarray):
        rows = np.flatnonzero(todo)
        self.rows = rows[np.argsort(p.group[rows], kind="stable")]
        groups = p.group[self.rows]
        new = np.r_[True, groups[1:] != groups[:-1]] if len(groups) else np.zeros(0, bool)
        self.item_of_row = np.cumsum(new) - 1
        first = self.rows[new]  # each item's first candidate row
        self.items = Items(len(first), {
            "example_id": lambda: p.example_id.take(first).to_pylist(),
            "text": lambda: p.texts.take(p.text_code[first]).to_pylist(),
            "candidate_id": lambda: p.candidate_id.take(first).to_pylist(),
        }, p.examples_py, p.ex_row[first].tolist())

    def candidates(self) -> int:
        return len(self.rows)


class _Carried:
    """The rows of the previous version still valid (``table``), and per judge the candidate
    rows of the pool they cover."""

    def __init__(self, prev: DatasetVersion | None, versions: dict, p: _Pool):
        self.table = _carry(prev, versions, p.candidate_id)
        judges = self.table.column("judge")
        self.versions: dict[str, str] = {}
        self.done: dict[str, np.ndarray] = {}
        self.count: dict[str, int] = {}
        for jn in pc.unique(judges).to_pylist():
            mask = pc.equal(judges, jn)
            ids = pc.filter(self.table.column("candidate_id"), mask)
            self.versions[jn] = self.table.column("judge_version")[pc.index(judges, jn).as_py()].as_py()
            self.count[jn] = pc.count_distinct(ids).as_py()
            self.done[jn] = pc.is_in(p.candidate_id, value_set=ids.combine_chunks()).to_numpy(zero_copy_only=False)


def _work(p: _Pool, judges: list[Judge], carried: _Carried) -> dict[str, _Work]:
    """Each judge's outstanding work.  Judges of the same tasks with nothing carried over share
    one ``_Work`` (one ``Items``: the metric judges reuse each other's normalised texts)."""
    out, shared = {}, {}
    for j in judges:
        done = carried.done.get(j.name)
        if done is None:
            key = tuple(j.tasks)
            if key not in shared:
                shared[key] = _Work(p, p.task_rows(j.tasks))
            out[j.name] = shared[key]
        else:
            out[j.name] = _Work(p, p.task_rows(j.tasks) & ~done)
    return out


def _previous(store: Store, name: str, pool: DatasetVersion) -> DatasetVersion | None:
    for v in reversed(store.versions(name)):
        if v.manifest.get("pool") == pool.ref:
            return v
    return None


def instantiate(judges, cfg: JudgeConfig, store: Store | None = None) -> list[Judge]:
    """The judges named (default: DEFAULT_JUDGES), each once, built with their options from ``cfg``."""
    names = [j.strip() for j in (judges or DEFAULT_JUDGES) if j.strip()]
    if not names:
        raise ResetkitError("no judge given")
    return [JUDGES.get(JUDGES.check(n))(cfg, store) for n in dict.fromkeys(names)]


def judge_items(store: Store, pool_ref, judges: list[Judge]) -> Items:
    """The distinct items a run of ``judges`` with nothing to carry over hands the first of them
    (with the example fields every one of them needs)."""
    p = _Pool(store, pool_ref, judges)
    return _Work(p, p.task_rows(judges[0].tasks)).items


def plan_judges(store: Store, pool_ref, judges, cfg: JudgeConfig, *, name: str = "scores") -> dict:
    """What a run would compute, per judge (the LLM judge adds calls, tokens and USD)."""
    js = instantiate(judges, cfg, store)
    p = _Pool(store, pool_ref, js)
    prev = _previous(store, name, p.pool)
    carried = _Carried(prev, {j.name: j.version for j in js}, p)
    work = _work(p, js, carried)
    out = {"pool": p.pool.ref, "examples": p.examples.ref, "previous": prev.ref if prev else None, "judges": {}}
    for j in js:
        w = work[j.name]
        out["judges"][j.name] = {"version": j.version, "candidates": w.candidates(), **j.plan(w.items)}
    return out


def run_judges(store: Store, pool_ref, judges, cfg: JudgeConfig, *, name: str = "scores", **kw) -> DatasetVersion:
    """Score ``pool_ref`` (see _run_judges); identical runs take turns (the second carries the
    first one's scores over), so nothing is judged or paid for twice."""
    with store.stage_lock(name, store.resolve(pool_ref).ref, "judge"):
        return _run_judges(store, pool_ref, judges, cfg, name=name, **kw)


def _run_judges(store: Store, pool_ref, judges, cfg: JudgeConfig, *, name: str = "scores",
                progress: bool = True, engine: str = "local", ray_address: str | None = None,
                workers: int | None = None) -> DatasetVersion:
    """Score ``pool_ref`` with ``judges`` (names) and write a new ``name`` version.

    ``engine="ray"`` scores the model-holding judges on Ray actors (judging.judge_worker; the LLM
    judge stays here); the result, and so the version, is the same as the local engine's.
    """
    from resetkit.engine import check_engine

    engine = check_engine(engine, ray_address)
    js = instantiate(judges, cfg, store)
    p = _Pool(store, pool_ref, js)
    pool, examples = p.pool, p.examples
    versions = {j.name: j.version for j in js}
    prev = _previous(store, name, pool)
    carried = _Carried(prev, versions, p)
    judge_versions = dict(carried.versions)
    work = _work(p, js, carried)
    for j in js:  # label indices, API key...: fail before any work
        if len(work[j.name].items):
            j.check(work[j.name].items)

    parts: list[tuple] = []  # (judge, metric, version, candidate rows, item of each row, item columns)
    stats: dict = {}
    pending = {}  # Ray judges start first and run while the driver scores the others
    try:
        if engine == "ray":
            from .judge_worker import start_remote

            for j in js:
                if j.runs_on_ray:
                    pending[j.name] = start_remote(j, work[j.name].items, cfg, address=ray_address,
                                                   workers=workers)
        for j in js:
            _score_one(j, work[j.name], pending, judge_versions, carried, parts, stats, progress)
    finally:
        for run in pending.values():
            run.close()

    table = _assemble(p, carried.table, parts)
    content = _content_hash(table)
    # the options of the judges run (defaults filled in) as the version's config, minus the
    # run fields (server URL, concurrency, budget, device...), which the manifest keeps under "run"
    options = {j.name: split_run_fields(j.options) for j in js}
    config = {"judges": [j.name for j in js], "judge": {n: o[0] for n, o in options.items()}}
    writer = store.create(name, builder="judging.judge", builder_version="1", config=config,
                          inputs={"scores_content": content}, parents=[pool, examples])
    if prev is not None and writer.version == prev.version:  # nothing changed: keep it as it is
        prev.run_stats = stats
        return prev
    with writer as w:
        w.write("train", table, schema=SCORES)
        w.extra["pool"] = pool.ref
        w.extra["examples"] = examples.ref
        w.extra["judge_versions"] = dict(sorted(judge_versions.items()))
        w.extra["carried_from"] = prev.ref if prev is not None else None
        w.extra["judge_stats"] = stats
        w.extra["run"] = {n: o[1] for n, o in options.items() if o[1]}
        w.card_meta.update({"pretty_name": f"Judge scores of {pool.ref}", "license": "other"})
        w.card_sections["Judges"] = _card_section(stats, pool, examples, prev)
    w.result.run_stats = stats  # this run's numbers (the manifest keeps those of the build)
    return w.result


def _score_one(j: Judge, work: _Work, pending, judge_versions, carried: _Carried, parts, stats, progress):
    """Score one judge's outstanding items (here, or collect them from Ray: ``pending``
    holds the submitted work) and add its score columns to ``parts``."""
    judge_versions[j.name] = j.version
    items = work.items
    t0 = time.perf_counter()
    if j.name in pending:
        from .judge_worker import collect_remote

        results = collect_remote(j, pending[j.name])
    else:
        results = j.score(items, progress=progress) if len(items) else []
    scored = _results(j, work, results, parts)
    stats[j.name] = {"version": j.version, "distinct_texts": len(items),
                     "candidates_scored": scored, "candidates_carried": carried.count.get(j.name, 0),
                     "seconds": round(time.perf_counter() - t0, 3), **j.usage}
    if progress:
        print(f"judge {j.name} (v{j.version}): {len(items)} distinct texts -> {scored} candidates "
              f"scored, {stats[j.name]['candidates_carried']} carried over", file=sys.stderr)


def _results(j: Judge, work: _Work, results, parts) -> int:
    """Add one judge's results to ``parts``: per metric, the candidate rows that get a value,
    the item each gets it from, and the items' (value, raw, error) columns.  An item whose result
    is empty (a judge stopped early: budget) writes nothing and is scored again next run.
    Returns the candidates scored."""
    k_of_row = work.item_of_row
    if isinstance(results, ScoreColumns):
        metrics = {m: None for m in results.values}  # every item has every metric
        nonempty = None if results.values else np.zeros(len(results), bool)
    else:
        metrics = {}
        for k, res in enumerate(results):
            for metric in res or ():
                metrics.setdefault(metric, []).append(k)
        nonempty = np.fromiter((bool(r) for r in results), bool, len(results))
    for metric, ks in metrics.items():
        if ks is None:
            value = pa.array(results.values[metric], pa.float64())
            raw = pa.nulls(len(value), pa.string())
            error = pa.nulls(len(value), pa.string()) if not value.null_count else pc.if_else(
                pc.is_null(value), pa.scalar(results.missing, pa.string()), pa.scalar(None, pa.string()))
            rows, take = work.rows, k_of_row
        else:
            triples = [results[k][metric] for k in ks]
            value = pa.array([t[0] for t in triples], pa.float64())
            raw = pa.array([t[1] for t in triples], pa.string())
            error = pa.array([t[2] for t in triples], pa.string())
            pos = np.full(len(results), -1, np.int64)
            pos[np.asarray(ks, np.int64)] = np.arange(len(ks))
            take = pos[k_of_row]
            keep = take >= 0
            rows, take = work.rows[keep], take[keep]
        parts.append((j.name, metric, j.version, rows, take, (value, raw, error)))
    if nonempty is None:
        return len(work.rows)
    return int(nonempty[k_of_row].sum())


def _assemble(p: _Pool, carried: pa.Table, parts) -> pa.Table:
    """The scores table: the carried rows and each (judge, metric)'s new rows, sorted by
    (candidate_id, judge, metric) -- the order a stable sort of their concatenation gives.
    Each column is one ``take`` from its sources (the carried column, the pool's candidate ids,
    the items' values) by the sorted row indices."""
    carried = carried.select(SCORES.names).cast(SCORES).combine_chunks()
    nc = carried.num_rows
    src = {name: [carried.column(name).chunk(0)] if nc else [] for name in SCORES.names}
    index = {name: [np.arange(nc, dtype=np.int64)] if nc else [] for name in ("candidate_id", "const", "value")}
    size = {"candidate_id": nc, "const": nc, "value": nc}
    src["candidate_id"].append(p.candidate_id)
    for judge, metric, version, rows, take, cols in parts:
        index["candidate_id"].append(rows + size["candidate_id"])
        index["const"].append(np.full(len(rows), size["const"], np.int64))
        index["value"].append(take + size["value"])
        for name, v in zip(("judge", "metric", "judge_version"), (judge, metric, version)):
            src[name].append(pa.array([v], pa.string()))
        for name, col in zip(("value", "raw", "error"), cols):
            src[name].append(col)
        size["const"] += 1
        size["value"] += len(cols[0])
    if not nc and not parts:
        return SCORES.empty_table()
    order = _order(p, carried, parts)
    taken = {k: np.concatenate(v)[order] for k, v in index.items()}
    which = {"candidate_id": "candidate_id", "judge": "const", "metric": "const", "judge_version": "const",
             "value": "value", "raw": "value", "error": "value"}
    return pa.table({name: pa.concat_arrays([a.cast(SCORES.field(name).type) for a in src[name]])
                     .take(pa.array(taken[which[name]])) for name in SCORES.names}, schema=SCORES)


def _order(p: _Pool, carried: pa.Table, parts) -> np.ndarray:
    """Row order of ``table.sort_by([candidate_id, judge, metric])`` over the concatenation of
    the carried rows and ``parts``, from integer keys: each candidate's rank among the pool's
    ids, each (judge, metric)'s rank among the pairs; ties (a candidate id twice in the pool)
    keep the concatenation's order, as Arrow's stable sort does."""
    keys, pairs = [], {(j, m) for j, m, *_ in parts}
    if carried.num_rows:
        judge = pc.dictionary_encode(carried.column("judge")).combine_chunks()
        metric = pc.dictionary_encode(carried.column("metric")).combine_chunks()
        jn, mn = judge.dictionary.to_pylist(), metric.dictionary.to_pylist()
        jcode, mcode = judge.indices.to_numpy().astype(np.int64), metric.indices.to_numpy().astype(np.int64)
        present = np.unique(jcode * len(mn) + mcode)
        pairs |= {(jn[c // len(mn)], mn[c % len(mn)]) for c in present.tolist()}
    rank_of = {pair: i for i, pair in enumerate(sorted(pairs))}
    n_pairs = max(1, len(rank_of))
    cand_rank = pc.rank(p.candidate_id, tiebreaker="dense").to_numpy().astype(np.int64) if p.n else None
    if carried.num_rows:
        table = np.array([[rank_of.get((j, m), 0) for m in mn] for j in jn], np.int64)
        pos = pc.index_in(carried.column("candidate_id"), value_set=p.candidate_id).to_numpy()
        keys.append(cand_rank[pos.astype(np.int64)] * n_pairs + table[jcode, mcode])
    for judge_name, metric_name, _, rows, *_ in parts:
        keys.append(cand_rank[rows] * n_pairs + rank_of[(judge_name, metric_name)])
    key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    span = (int(key.max()) + 1) if len(key) else 0
    if span <= 4 * len(key) + 1024 and (len(key) == 0 or np.bincount(key, minlength=span).max() <= 1):
        slot = np.full(span, -1, np.int64)  # distinct keys (each candidate id once): a counting sort
        slot[key] = np.arange(len(key))
        return slot[slot >= 0]
    return np.argsort(key, kind="stable")


def _carry(prev: DatasetVersion | None, versions: dict, pool_ids: pa.Array) -> pa.Table:
    """Rows of ``prev`` still valid: candidate still in the pool, not a failed request, and
    the judge either not run now or run at the same version."""
    if prev is None:
        return SCORES.empty_table()
    tab = prev.read().select(SCORES.names).cast(SCORES)
    keep = pc.is_in(tab.column("candidate_id"), value_set=pool_ids)
    failed = pc.fill_null(pc.starts_with(tab.column("error"), RETRYABLE), False)
    keep = pc.and_(keep, pc.invert(failed))
    for judge, want in versions.items():
        stale = pc.and_(pc.equal(tab.column("judge"), judge),
                        pc.not_equal(tab.column("judge_version"), want))
        keep = pc.and_(keep, pc.invert(stale))
    return tab.filter(keep)


class _HashSink:
    """A write-only file that hashes what is written to it (the IPC stream is never held)."""

    def __init__(self):
        self.sha = hashlib.sha256()
        self.closed = False

    def write(self, data) -> int:
        self.sha.update(data)
        return len(data)

    def flush(self):
        pass

    def close(self):
        self.closed = True


def _content_hash(table: pa.Table) -> str:
    """Hash of the rows (Arrow IPC bytes): the same scores give the same version id."""
    sink = _HashSink()
    with pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return sink.sha.hexdigest()[:16]


def _card_section(stats, pool, examples, prev) -> str:
    lines = [f"Long table of judge scores for the candidates of `{pool.ref}` (examples `{examples.ref}`).",
             "One row per (candidate, judge, metric); `value` is null when the judge could not score "
             "(see `error`).", ""]
    if prev is not None:
        lines.append(f"Rows still valid were carried over from `{prev.ref}`.\n")
    lines.append("| judge | version | distinct texts judged | candidates scored | carried over |")
    lines.append("|---|---|---|---|---|")
    for n, s in stats.items():
        lines.append(f"| {n} | {s['version']} | {s['distinct_texts']} | {s['candidates_scored']} | "
                     f"{s['candidates_carried']} |")
    return "\n".join(lines)


def scores_wide(version: DatasetVersion):  # pragma: no cover - convenience for notebooks
    """candidate_id x metric table (pandas) of a scores version."""
    df = version.read().to_pandas()
    return df.pivot_table(index="candidate_id", columns="metric", values="value", aggfunc="first")

"""Apply the external judges to a candidate pool and write the long ``scores`` table.

    run_judges(store, pool_ref, judges, cfg, *, name="scores", progress=True) -> DatasetVersion
    plan_judges(store, pool_ref, judges, cfg, *, name="scores") -> dict   (what a run would do)

Each judge (registry below: name -> "module:Class") scores the candidates whose example
task it covers (DESIGN.md §5) and emits rows of resetkit.schemas.SCORES.  Example fields
(task, objective, instruction, question, context, refs) come from the examples
dataset named in the pool manifest's ``extra["examples"]``.

Incremental: the newest earlier ``scores`` version of the same pool is read; its rows are
kept where (candidate, judge, judge_version) still holds, and only the rest is computed
(rows of judges not asked for this time are carried over unchanged).  Identical texts of
one example are judged once and the result copied to every duplicate.  The new version
lists the pool and examples as parents; ``extra["carried_from"]`` names the version rows
were reused from.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

import pyarrow as pa

from resetkit.config import field, to_dict
from resetkit.errors import ResetkitError
from resetkit.registry import Registry
from resetkit.schemas import SCORES, check_columns
from resetkit.store import DatasetVersion, Store, short_hash

JUDGES = Registry("judge", {
    "span": "judging.coverage:SpanJudge",
    "ngram": "judging.coverage:NgramJudge",
    "em": "judging.exact_match:ExactMatchJudge",
    "rouge": "judging.rouge:RougeJudge",
    "summac": "judging.summac:SummacJudge",
    "llm": "judging.llm_judge:LLMJudge",
})
DEFAULT_JUDGES = ("span", "ngram", "em", "rouge", "summac", "llm")
RETRYABLE = "request failed"  # error prefix of rows whose judge call failed (retried next run)


@dataclass(frozen=True)
class JudgeConfig:
    # text metrics
    rouge_stemming: bool = field(False, help="Porter-stem tokens for ROUGE-L (rouge_score use_stemmer).")
    # SummaC-ZS
    nli_model: str = field("tals/albert-xlarge-vitaminc-mnli",
                           help="NLI checkpoint for SummaC-ZS: a Hub id or a local directory.")
    nli_entailment_idx: int | None = field(None, help="Entailment label index (default: from id2label).")
    nli_contradiction_idx: int | None = field(None, help="Contradiction label index "
                                                         "(default: from id2label).")
    summac_contradiction: bool = field(False, help="Contradiction-aware SummaC-ZS: mean(max ent - max con), "
                                                   "range [-1, 1]; default entailment only (DESIGN.md §7).")
    nli_device: str = field("auto", help="Device for the NLI model: auto, cpu, cuda, cuda:N.")
    nli_dtype: str = field("auto", help="auto (bf16/fp16 on GPU, fp32 on CPU), float32, bfloat16, float16.")
    nli_batch_tokens: int | None = field(None, help="Padded tokens per NLI batch "
                                                    "(default 2048 CPU, 65536 GPU).")
    nli_max_length: int = field(500, help="Max tokens of a (premise, hypothesis) pair, as in summac.")
    nli_threads: int | None = field(None, help="torch CPU threads for the NLI model (default: torch's).")
    summac_max_doc_sents: int = field(100, help="Premise sentences kept per example, as in summac.")
    # LLM judge
    judge_model: str = field("gpt-4-0613", help="LLM judge model name at the endpoint.")
    judge_base_url: str | None = field(None, help="OpenAI-compatible base URL (default: the OpenAI API; "
                                                  "$OPENAI_BASE_URL is honoured by the client).")
    judge_prompt: str = field("paper", help="Judge prompt: 'paper' (Table 5) or 'single-v1' (FastChat).")
    judge_temperature: float = field(0.0, help="Judge sampling temperature (paper: 0).")
    judge_max_tokens: int = field(512, help="Judge max completion tokens (paper: 512).")
    judge_concurrency: int = field(32, help="Requests in flight at most (halved on a burst of timeouts, "
                                           "raised back slowly).")
    judge_max_retries: int = field(6, help="Retries per request on 429/5xx/timeouts (exponential backoff, "
                                           "Retry-After honoured).")
    judge_timeout: float = field(120.0, help="Seconds per request before it is retried.")
    judge_prices: str | None = field(None, help="YAML/JSON file of USD per 1M tokens: "
                                                "{model: {input: X, output: Y}} (default: built-in table).")
    max_usd: float | None = field(None, help="Hard cap on the LLM judge's spend in USD (a guaranteed bound is "
                                             "reserved per request in flight).")
    batch: bool = field(False, help="Use the OpenAI Batch API (half price; resumable while pending).")
    batch_poll_seconds: float = field(30.0, help="Seconds between Batch API status polls.")
    batch_wait: bool = field(True, help="Wait for a submitted batch to finish (else exit; rerun resumes).")


class Judge:
    """One judge: declared metrics, tasks and example fields, and a batch ``score`` method.

    Subclasses set ``name``, ``metrics``, ``tasks``, ``needs`` (example columns) and
    ``code_version``, and implement ``score(items) -> [{metric: (value, raw, error)}]``
    with one dict per item (an item is a dict of the candidate's text and the example's
    fields).  A dict may leave a metric out only when the judge stopped early (budget):
    such items are not written and get scored on the next run.
    """

    name = ""
    metrics: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    code_version = "1"

    def __init__(self, cfg: JudgeConfig, store: Store | None = None):
        self.cfg = cfg
        self.store = store
        self.usage: dict = {}

    def settings(self) -> dict:
        """The config values that change this judge's numbers (part of judge_version)."""
        return {}

    @property
    def version(self) -> str:
        if getattr(self, "_version", None) is None:
            s = self.settings()
            self._version = self.code_version + ("+" + short_hash(s, 8) if s else "")
        return self._version

    def check(self, items: list[dict]) -> None:
        """Fail fast (before any work) when the judge cannot run: model labels, API key..."""

    def plan(self, items: list[dict]) -> dict:
        return {"items": len(items)}

    def score(self, items: list[dict], progress: bool = False) -> list[dict]:
        raise NotImplementedError


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def close(self):
        pass


def _bar(total: int, desc: str, progress: bool):
    """A tqdm bar on the console (stderr, or the console of a run whose other output goes to
    its log), or a no-op (importing tqdm.auto alone costs ~0.5 s)."""
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    from resetkit.runlog import progress_file

    return tqdm(total=total, desc=desc, unit="text", file=progress_file())


def _load_inputs(store: Store, pool_ref, judges: list[Judge]):
    pool = store.resolve(pool_ref)
    check_columns(pool.schema, ["example_id", "candidate_id", "text"], "candidate pool", pool.ref)
    ex_ref = (pool.manifest or {}).get("examples")
    if not ex_ref:
        raise ResetkitError(f"{pool.ref}: manifest has no 'examples' entry naming the examples dataset")
    examples = store.resolve(ex_ref)
    needs = sorted({"id", "task"} | {c for j in judges for c in j.needs})
    check_columns(examples.schema, needs, f"examples dataset {examples.ref} (needed by judges "
                                          f"{', '.join(j.name for j in judges)})", str(examples.path))
    ptab = pool.read(columns=["example_id", "candidate_id", "text"])
    etab = examples.read(columns=needs)
    ex = {}
    for row in etab.to_pylist():
        ex[row["id"]] = row
    # the pool as column lists (a dict per candidate costs more than the metrics themselves)
    cands = {name: ptab.column(name).to_pylist() for name in ("example_id", "candidate_id", "text")}
    missing = sorted(set(cands["example_id"]) - set(ex))
    if missing:
        raise ResetkitError(f"{pool.ref}: {len(missing)} example_id(s) not in {examples.ref}, "
                            f"e.g. {missing[:3]}")
    return pool, examples, cands, ex


def _previous(store: Store, name: str, pool: DatasetVersion) -> DatasetVersion | None:
    for v in reversed(store.versions(name)):
        if v.manifest.get("pool") == pool.ref:
            return v
    return None


def _group(cands: dict[str, list]) -> dict[tuple, list[str]]:
    """(example_id, text) -> candidate ids, in pool order: identical texts of an example."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for eid, cid, text in zip(cands["example_id"], cands["candidate_id"], cands["text"]):
        groups[(eid, text or "")].append(cid)
    return groups


def _work(judge: Judge, groups: dict, ex: dict, done: set, shared: dict | None = None):
    """Distinct (example, text) items this judge still has to score, and who gets each result.

    Judges of the same tasks with nothing carried over get the very same items (``shared``,
    keyed by tasks): built once, and the metric judges' caches see identical inputs."""
    if shared is not None:  # (only passed for judges with nothing carried over)
        key = tuple(judge.tasks)
        if key not in shared:
            shared[key] = _work(judge, groups, ex, set())
        return shared[key]
    items, owners = [], []
    for (eid, text), cids in groups.items():
        e = ex[eid]
        if e["task"] not in judge.tasks:
            continue
        if done:
            cids = [c for c in cids if (c, judge.name) not in done]
            if not cids:
                continue
        items.append({**e, "example_id": eid, "text": text, "candidate_id": cids[0]})
        owners.append(cids)
    return items, owners


def _instantiate(judges, cfg, store) -> list[Judge]:
    names = [j.strip() for j in (judges or DEFAULT_JUDGES) if j.strip()]
    if not names:
        raise ResetkitError("no judge given")
    out = []
    for n in dict.fromkeys(names):
        out.append(JUDGES.get(JUDGES.check(n))(cfg, store))
    return out


def plan_judges(store: Store, pool_ref, judges, cfg: JudgeConfig, *, name: str = "scores") -> dict:
    """What a run would compute, per judge (the LLM judge adds calls, tokens and USD)."""
    js = _instantiate(judges, cfg, store)
    pool, examples, cands, ex = _load_inputs(store, pool_ref, js)
    prev = _previous(store, name, pool)
    done = _carried_keys(prev, {j.name: j.version for j in js}) if prev else set()
    groups = _group(cands)
    out = {"pool": pool.ref, "examples": examples.ref, "previous": prev.ref if prev else None, "judges": {}}
    for j in js:
        items, owners = _work(j, groups, ex, done)
        out["judges"][j.name] = {"version": j.version, "candidates": sum(map(len, owners)), **j.plan(items)}
    return out


def _carried_keys(prev: DatasetVersion, versions: dict) -> set:
    """(candidate, judge) pairs a run would carry over from ``prev`` (same rule as run_judges)."""
    tab = prev.read(columns=["candidate_id", "judge", "judge_version", "error"])
    return {(c, j) for c, j, v, e in zip(*(tab.column(n).to_pylist() for n in tab.column_names))
            if versions.get(j) == v and not (e or "").startswith(RETRYABLE)}


def run_judges(store: Store, pool_ref, judges, cfg: JudgeConfig, *, name: str = "scores", **kw) -> DatasetVersion:
    """Score ``pool_ref`` (see _run_judges); identical runs take turns (the second carries the
    first one's scores over), so nothing is judged or paid for twice."""
    with store.stage_lock(name, store.resolve(pool_ref).ref, "judge"):
        return _run_judges(store, pool_ref, judges, cfg, name=name, **kw)


def _run_judges(store: Store, pool_ref, judges, cfg: JudgeConfig, *, name: str = "scores",
                progress: bool = True, engine: str = "local", ray_address: str | None = None,
                workers: int | None = None) -> DatasetVersion:
    """Score ``pool_ref`` with ``judges`` (names) and write a new ``name`` version.

    ``engine="ray"`` scores the model-holding judges on Ray actors (judging.judge_worker; the
    LLM judge stays here); the result, and so the version, is the same as the local engine's.
    """
    from resetkit.engine import check_engine

    engine = check_engine(engine, ray_address)
    js = _instantiate(judges, cfg, store)
    pool, examples, cands, ex = _load_inputs(store, pool_ref, js)
    versions = {j.name: j.version for j in js}
    prev = _previous(store, name, pool)
    carried = _carry(prev, versions, pa.array(cands["candidate_id"], pa.string()))
    judge_versions: dict[str, str] = {}
    for jn, jv in zip(carried.column("judge").to_pylist(), carried.column("judge_version").to_pylist()):
        judge_versions.setdefault(jn, jv)
    carried_ids = carried.column("candidate_id").to_pylist()
    carried_judges = carried.column("judge").to_pylist()
    done = set(zip(carried_ids, carried_judges))
    carried_per_judge = defaultdict(set)
    for cid, jn in done:
        carried_per_judge[jn].add(cid)

    groups = _group(cands)
    shared: dict = {}
    done_judges = {jn for _, jn in done}
    work = {j.name: _work(j, groups, ex, done, None if j.name in done_judges else shared) for j in js}
    for j in js:  # label indices, API key...: fail before any work
        if work[j.name][0]:
            j.check(work[j.name][0])

    cols: list[pa.Table] = []  # one table per (judge, metric), rows for every owning candidate
    stats: dict = {}
    pending = {}  # Ray judges start first and run while the driver scores the others
    try:
        if engine == "ray":
            from .judge_worker import runs_on_ray, start_remote

            for j in js:
                if runs_on_ray(j):
                    pending[j.name] = start_remote(j, work[j.name][0], cfg, address=ray_address,
                                                   workers=workers)
        for j in js:
            _score_one(j, work[j.name], pending, versions, judge_versions, carried_per_judge, cols, stats,
                       progress)
    finally:
        for run in pending.values():
            run.close()
        from .text import clear_caches

        clear_caches()  # the metric judges' last inputs and results: not held past the run

    new = pa.concat_tables(cols) if cols else SCORES.empty_table()
    table = pa.concat_tables([carried.select(SCORES.names).cast(SCORES), new])
    table = table.sort_by([("candidate_id", "ascending"), ("judge", "ascending"), ("metric", "ascending")])
    content = _content_hash(table)
    config = to_dict(cfg)
    config["judges"] = [j.name for j in js]
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
        w.card_meta.update({"pretty_name": f"Judge scores of {pool.ref}", "license": "other"})
        w.card_sections["Judges"] = _card_section(stats, pool, examples, prev)
    w.result.run_stats = stats  # this run's numbers (the manifest keeps those of the build)
    return w.result


def _score_one(j: Judge, work, pending, versions, judge_versions, carried_per_judge, cols, stats,
               progress):
    """Score one judge's outstanding items (here, or collect them from Ray: ``pending``
    holds the submitted work) and append its rows to ``cols``."""
    judge_versions[j.name] = j.version
    items, owners = work
    t0 = time.perf_counter()
    if j.name in pending:
        from .judge_worker import collect_remote

        results = collect_remote(j, pending[j.name])
    else:
        results = j.score(items, progress=progress) if items else []
    cols.extend(_rows(j.name, versions[j.name], owners, results))
    written = sum(len(ids) for ids, res in zip(owners, results) if res)
    stats[j.name] = {"version": j.version, "distinct_texts": len(items),
                     "candidates_scored": written, "candidates_carried": len(carried_per_judge[j.name]),
                     "seconds": round(time.perf_counter() - t0, 3), **j.usage}
    if progress:
        print(f"judge {j.name} (v{j.version}): {len(items)} distinct texts -> {written} candidates "
              f"scored, {stats[j.name]['candidates_carried']} carried over", file=sys.stderr)


def _rows(judge: str, version: str, owners: list[list[str]], results: list[dict]) -> list[pa.Table]:
    """The scores rows of one judge's results: per metric, each item's (value, raw, error)
    repeated for every candidate that owns the item (its duplicates).  An empty result writes
    nothing (the item is scored again next run)."""
    import numpy as np

    metrics: dict[str, list[int]] = {}
    for k, res in enumerate(results):
        for metric in res or ():
            metrics.setdefault(metric, []).append(k)
    tables = []
    for metric, ks in metrics.items():
        counts = np.fromiter((len(owners[k]) for k in ks), np.int64, len(ks))
        take = pa.array(np.repeat(np.arange(len(ks)), counts))
        triples = [results[k][metric] for k in ks]
        n = int(counts.sum())
        tables.append(pa.table({
            "candidate_id": pa.array([c for k in ks for c in owners[k]], pa.string()),
            "judge": pa.array([judge] * n, pa.string()),
            "metric": pa.array([metric] * n, pa.string()),
            "value": pa.array([t[0] for t in triples], pa.float64()).take(take),
            "raw": pa.array([t[1] for t in triples], pa.string()).take(take),
            "error": pa.array([t[2] for t in triples], pa.string()).take(take),
            "judge_version": pa.array([version] * n, pa.string()),
        }, schema=SCORES))
    return tables


def _carry(prev: DatasetVersion | None, versions: dict, pool_ids: pa.Array) -> pa.Table:
    """Rows of ``prev`` still valid: candidate still in the pool, not a failed request, and
    the judge either not run now or run at the same version."""
    import pyarrow.compute as pc

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


def _content_hash(table: pa.Table) -> str:
    """Hash of the rows (Arrow IPC bytes): the same scores give the same version id."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(memoryview(sink.getvalue())).hexdigest()[:16]  # no copy of the stream


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


__all__ = ["JudgeConfig", "Judge", "JUDGES", "run_judges", "plan_judges", "DEFAULT_JUDGES"]

"""Top-1 selection: the RESET fine-tuning set from a judged candidate pool (paper §5.1).

``run_select(store, "pool", cfg=SelectConfig())`` reads the pool, its scores and its
examples straight from the store's Parquet with DuckDB and runs the SQL in
``judging/sql/``:

1. ``signals.sql``  per candidate the scores standing for task / instr / faith (by task);
2. ``top1.sql``     weighted score, eligibility, and the winner per example (arg_min over
                    ``(-score, temperature, candidate_id)``: ties go to the lowest temperature,
                    then the smallest id; one hash aggregate), and how many texts tied;
3. ``selection.sql`` the winners with prompt, response, metrics and provenance;
4. ``card_*.sql``   the numbers of the data card.

Weights, the metric of each signal per task and the judge versions are SQL parameters,
never spliced into the SQL text.  Output: dataset ``selection`` (split ``train``), one row
per example with an eligible candidate, sorted by example_id, so selecting twice gives the
same version and byte-identical Parquet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path

import pyarrow as pa

from resetkit.config import field
from resetkit.errors import ResetkitError
from resetkit.registry import suggest
from resetkit.schemas import SELECTION, TASKS, check_columns
from resetkit.store import DatasetVersion, Store

from .api import SIGNALS, default_metrics

SQL_DIR = Path(__file__).parent / "sql"
BUILDER_VERSION = "1"

# DESIGN.md §5 and §7: which metric stands for each signal, per task, is declared by the judges
# (their ``signals``; judging.api.default_metrics merges them): exact_match / span_coverage on
# extractive QA, rougeL_f1 / summac_zs on abstractive QA and summarisation, rating on open-ended.
# open_ended has no task metric (its s_task is 0); a task without an instr/faith metric never
# needs one unless its examples carry that objective.  A key mapped to None
# (``--metric faith.TASK=none``) means: no such term for that task (it adds 0 and is never required).

# Pool columns the selection reads (the rest of CANDIDATES is not needed).
POOL_COLUMNS = ("example_id", "candidate_id", "duplicate_of", "finish_reason", "prompt", "text",
                "template", "temperature", "top_k", "top_p", "seed", "arm", "sample_index", "greedy",
                "model", "model_revision", "backend", "num_tokens")
SCORE_COLUMNS = ("candidate_id", "judge", "metric", "value", "judge_version")
EXAMPLE_COLUMNS = ("id", "source", "objective", "task", "split", "instruction", "question", "context",
                   "refs")

WRITE_ROWS = 50_000  # fixed-size chunks -> the same row groups on every run


@dataclasses.dataclass(frozen=True)
class SelectConfig:
    w_task: float = field(1.0, help="Weight of the task score s_task (paper: 1).")
    w_instr: float = field(2.0, help="Weight of the instruction-following score for objective "
                                     "'instruction' (paper: 2).")
    w_faith: float = field(2.0, help="Weight of the faithfulness score for objective "
                                     "'faithfulness' (paper: 2).")
    metrics: dict = field(default_factory=default_metrics,
                          help="signal.task -> metric that stands for that signal on that task.")
    sql: str | None = field(None, help="A .sql file replacing judging/sql/top1.sql (same relation "
                                       "and parameters).")
    memory_limit: str = field("400MB", help="DuckDB memory_limit (spills to a temp dir beyond it).")
    threads: int = field(0, help="DuckDB threads (0: min(4, CPUs)).")
    min_score: float | None = field(None, help=(
        "Select an example only if its winner's weighted score is above this (None: always). "
        "Examples left out are counted in the manifest and card (e.g. every candidate scored 0)."))


def parse_weights(items) -> dict:
    """``["task=1", "faith=2"]`` -> ``{"w_task": 1.0, "w_faith": 2.0}``."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in SIGNALS:
            raise ResetkitError(f"--weight expects SIGNAL=NUMBER with SIGNAL one of {', '.join(SIGNALS)}; "
                                f"got {item!r}.{suggest(key, SIGNALS)}")
        try:
            out[f"w_{key}"] = float(value)
        except ValueError:
            raise ResetkitError(f"--weight {item!r}: {value!r} is not a number") from None
    return out


def parse_metrics(items, base: dict | None = None) -> dict:
    """``["faith.extractive_qa=span_coverage", "task.summarization=none"]`` applied over ``base``.

    ``=none`` maps the key to None: that signal has no term for that task (it adds nothing to
    the score and no score is required for it), e.g. ``faith.abstractive_qa=none`` without an NLI model.
    """
    defaults = default_metrics()
    out = dict(defaults if base is None else base)
    for item in items or ():
        key, sep, value = item.partition("=")
        signal, dot, task = key.strip().partition(".")
        if not sep or not dot or signal not in SIGNALS or task not in TASKS:
            raise ResetkitError(
                f"--metric expects SIGNAL.TASK=METRIC (SIGNAL: {', '.join(SIGNALS)}; TASK: "
                f"{', '.join(TASKS)}); got {item!r}.{suggest(key.strip(), defaults)}")
        value = value.strip()
        if value.lower() in ("", "none", "null"):
            out[f"{signal}.{task}"] = None
        else:
            out[f"{signal}.{task}"] = value
    return dict(sorted(out.items()))


def sql_text(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def _connect(cfg: SelectConfig, temp_dir: str):
    import duckdb

    con = duckdb.connect(":memory:")
    threads = cfg.threads or min(4, os.cpu_count() or 1)
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET memory_limit = ?", [cfg.memory_limit])
    con.execute("SET temp_directory = ?", [temp_dir])
    con.execute("SET preserve_insertion_order = true")
    return con


def _files(version: DatasetVersion) -> list[str]:
    files = [str(p) for p in version.files()]
    if not files:
        raise ResetkitError(f"{version.ref} has no data files")
    return files


def find_scores(store: Store, pool: DatasetVersion, scores_ref: str | None) -> DatasetVersion:
    """The scores dataset named, else the newest ``scores`` version judged on this pool."""
    if scores_ref:
        return store.resolve(scores_ref)
    for version in reversed(store.versions("scores")):
        ref = str(version.manifest.get("pool", ""))
        name, _, ver = ref.partition("@")
        if name == pool.name and ver and pool.version.startswith(ver):
            return version
    raise ResetkitError(f"no scores dataset judged on {pool.ref} in {store.root}: run "
                        f"`resetkit judge {pool.ref}` or pass --scores NAME[@VERSION]")


def judge_versions(con, scores: DatasetVersion) -> list[dict]:
    """The judge version to use per judge: the scores manifest's ``judge_versions`` (the newest,
    as the judge stage recorded it); without it, the only version present per judge."""
    recorded = scores.manifest.get("judge_versions")
    if isinstance(recorded, dict) and recorded:
        return [{"judge": str(j), "version": str(v)} for j, v in sorted(recorded.items())]
    rows = con.execute("SELECT judge, list(DISTINCT judge_version ORDER BY judge_version) "
                       "FROM read_parquet($f) GROUP BY judge ORDER BY judge", {"f": _files(scores)}).fetchall()
    several = {j: v for j, v in rows if len(v) > 1}
    if several:
        raise ResetkitError(f"{scores.ref} holds several versions of judge(s) "
                            + "; ".join(f"{j}: {', '.join(map(str, v))}" for j, v in several.items())
                            + " and its manifest has no judge_versions saying which is current")
    return [{"judge": j, "version": v[0]} for j, v in rows if v and v[0] is not None]


def metric_map(metrics: dict) -> list[dict]:
    out = []
    for key, metric in sorted(metrics.items()):
        signal, _, task = key.partition(".")
        if signal not in SIGNALS or task not in TASKS:
            raise ResetkitError(f"metrics key {key!r} is not SIGNAL.TASK (SIGNAL: {', '.join(SIGNALS)}; "
                                f"TASK: {', '.join(TASKS)})")
        if metric is not None:          # None: no term for this signal on this task
            out.append({"task": task, "signal": signal, "metric": str(metric)})
    return out


def _check_mapping(con, params: dict, metrics: dict) -> None:
    """Before any work: every (task, objective) in the pool has the metrics it needs, and each
    of those metrics occurs in the scores (a typo would otherwise rule out every candidate)."""
    combos = con.execute(
        "SELECT DISTINCT e.task, e.objective FROM read_parquet($example_files) AS e "
        "SEMI JOIN read_parquet($candidate_files) AS c ON c.example_id = e.id ORDER BY ALL",
        {k: params[k] for k in ("example_files", "candidate_files")}).fetchall()
    present = {m for (m,) in con.execute("SELECT DISTINCT metric FROM read_parquet($score_files)",
                                         {"score_files": params["score_files"]}).fetchall()}
    for task, objective in combos:
        needed = [s for s, flag in (("instr", objective == "instruction"),
                                    ("faith", objective == "faithfulness")) if flag]
        if metrics.get(f"task.{task}") is not None:
            needed.append("task")
        for signal in needed:
            key = f"{signal}.{task}"
            if key not in metrics:
                raise ResetkitError(f"examples with task={task!r} and objective={objective!r} need a "
                                    f"metric for {signal}: pass --metric {key}=METRIC (or {key}=none "
                                    "for no such term)")
            if metrics[key] is None:
                continue
            if metrics[key] not in present:
                raise ResetkitError(
                    f"no scores for metric {metrics[key]!r} ({key}) in the scores dataset."
                    f"{suggest(metrics[key], present)} Metrics there: {', '.join(sorted(present)) or 'none'}")


def _fixed_chunks(reader, rows: int = WRITE_ROWS):
    """Re-chunk a record batch stream into tables of exactly ``rows`` rows (the last shorter),
    so the Parquet row groups do not depend on DuckDB's batch boundaries."""
    pending: list[pa.RecordBatch] = []
    n = 0
    for batch in reader:
        pending.append(batch)
        n += batch.num_rows
        while n >= rows:
            table = pa.Table.from_batches(pending).combine_chunks()
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, n = rest.to_batches(), rest.num_rows
    if n:
        yield pa.Table.from_batches(pending).combine_chunks()


def _md_table(columns, rows, floats: str = "{:.3f}") -> str:
    def fmt(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return floats.format(v)
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _card(con, params: dict, cfg: SelectConfig, summary: dict) -> dict[str, str]:
    """Card sections: totals, per-source distributions, decoding settings that won."""
    by_source = con.execute(sql_text("card_by_source.sql"), {"example_files": params["example_files"]})
    src_cols = [d[0] for d in by_source.description]
    src_rows = by_source.fetchall()
    by_setting = con.execute(sql_text("card_by_setting.sql"),
                             {"candidate_files": params["candidate_files"]})
    set_cols = [d[0] for d in by_setting.description]
    set_rows = by_setting.fetchall()
    s = summary
    def share(k):
        return f"{s[k] / s['selected']:.1%}" if s["selected"] else "n/a"

    totals = _md_table(["", "count"], [
        ("examples in the pool", s["examples_in"]),
        ("examples with an eligible candidate", s["examples_eligible"]),
        ("examples selected (rows)", s["selected"]),
        ("examples without an eligible candidate", s["examples_without_eligible"]),
        ("examples not selected: best score not above --min-score"
         + (f" {cfg.min_score:g}" if cfg.min_score is not None else " (not set)"), s["examples_below_min_score"]),
        ("winners decided by the tie-break (several texts at the top score)", s["tied_winners"]),
        ("... of which every tied text scored 0", s["tied_winners_at_zero"]),
        ("candidates", s["candidates"]),
        ("eligible candidates", s["candidates_eligible"]),
        ("ruled out: request failed (finish_reason = error)", s["candidates_error"]),
        ("ruled out: example not in the examples dataset", s["candidates_unknown_example"]),
        ("ruled out: task score missing", s["candidates_missing_task_score"]),
        ("ruled out: instruction-following score missing", s["candidates_missing_instr_score"]),
        ("ruled out: faithfulness score missing", s["candidates_missing_faith_score"]),
    ])
    weights = (f"score = {cfg.w_task:g} * s_task + {cfg.w_instr:g} * I_instr * s_instr + "
               f"{cfg.w_faith:g} * I_faith * s_faith")
    metrics = _md_table(["signal.task", "metric"], [(k, v if v is not None else "none (no term)")
                                                    for k, v in sorted(cfg.metrics.items())])
    return {
        "Selection": (
            "One row per example: the candidate with the highest weighted score among the "
            "eligible ones (paper §5.1). Ties go to the candidate sampled at the lowest temperature "
            "(greedy first), then to the smallest `candidate_id`: deterministic. "
            + (f"Examples whose best score is not above {cfg.min_score:g} (`--min-score`) are left out. "
               if cfg.min_score is not None else "")
            + "\n\n"
            f"`{weights}` (I_instr / I_faith: the example's objective). s_task of a task without "
            "a task metric (open_ended) is 0. A candidate is eligible unless its request failed "
            "or a score its example needs is missing.\n\n" + totals
            + f"\n\nTied winners: {s['tied_winners']:,} ({share('tied_winners')}) were picked by the "
            f"tie-break among several texts with the same top score ({s['tied_winners_at_zero']:,} of them at "
            "score 0, where the judges told the candidates apart not at all)."
            + f"\n\nGreedy winners: {s['greedy_winners']:,} ({share('greedy_winners')}); "
            f"duplicate winners (text identical to another candidate of the example): "
            f"{s['duplicate_winners']:,} ({share('duplicate_winners')}).\n\n"
            "Metric standing for each signal, per task:\n\n" + metrics
            + "\n\nJudge versions used: "
            + ", ".join(f"`{j['judge']}={j['version']}`" for j in params["judge_versions"])),
        "Scores per source": _md_table(src_cols, src_rows),
        "Winning decoding settings": (
            "How often each decoding setting (arm, temperature, top_k) was sampled and how often "
            "it won.\n\n" + _md_table(set_cols, set_rows)),
    }


def run_select(store: Store, pool_ref: str, scores_ref: str | None = None,
               cfg: SelectConfig = SelectConfig(), *, name: str = "selection") -> DatasetVersion:
    """Select the top-rated candidate per example and write the ``selection`` dataset.

    Inputs: the pool (``pool_ref``), its scores (``scores_ref`` or the newest scores dataset
    judged on that pool) and the examples named in the pool manifest.  Returns the new version.
    Raises ResetkitError (nothing written) on a missing input, column or metric.
    """
    pool = store.resolve(pool_ref)
    examples_ref = pool.manifest.get("examples")
    if not examples_ref:
        raise ResetkitError(f"{pool.ref}: manifest names no examples dataset (key 'examples')")
    examples = store.resolve(examples_ref)
    scores = find_scores(store, pool, scores_ref)
    check_columns(pool.schema, POOL_COLUMNS, f"pool {pool.ref}", str(pool.path))
    check_columns(scores.schema, SCORE_COLUMNS, f"scores {scores.ref}", str(scores.path))
    check_columns(examples.schema, EXAMPLE_COLUMNS, f"examples {examples.ref}", str(examples.path))
    metrics = parse_metrics([], cfg.metrics)
    if cfg.min_score is not None and not isinstance(cfg.min_score, (int, float)):
        raise ResetkitError(f"min_score must be a number, got {cfg.min_score!r}")
    mm = metric_map(metrics)
    if cfg.sql and not Path(cfg.sql).is_file():
        raise ResetkitError(f"SQL file not found: {cfg.sql}")
    top1_sql = Path(cfg.sql).read_text(encoding="utf-8") if cfg.sql else sql_text("top1.sql")

    with tempfile.TemporaryDirectory(prefix="resetkit-select-") as tmp:
        con = _connect(cfg, tmp)
        try:
            params = {"candidate_files": _files(pool), "score_files": _files(scores),
                      "example_files": _files(examples)}
            params["judge_versions"] = judge_versions(con, scores)
            _check_mapping(con, params, metrics)
            texts = {n: sql_text(n) for n in ("signals.sql", "selection.sql", "card_summary.sql",
                                              "card_by_source.sql", "card_by_setting.sql")}
            texts["top1.sql"] = top1_sql
            config = {
                "weights": {"task": cfg.w_task, "instr": cfg.w_instr, "faith": cfg.w_faith},
                "metrics": metrics,
                "judge_versions": {j["judge"]: j["version"] for j in params["judge_versions"]},
                "sql": {n: hashlib.sha256(t.encode()).hexdigest()[:16] for n, t in sorted(texts.items())},
                "custom_top1_sql": bool(cfg.sql),
            }
            if cfg.min_score is not None:          # absent when unset: earlier versions keep their id
                config["min_score"] = float(cfg.min_score)
            _execute(con, "CREATE TEMP TABLE candidate_signals AS " + texts["signals.sql"],
                     {"metric_map": mm, **{k: params[k] for k in ("candidate_files", "score_files",
                                                                 "example_files", "judge_versions")}})
            _execute(con, "CREATE TEMP TABLE winners AS " + texts["top1.sql"],
                     {"w_task": cfg.w_task, "w_instr": cfg.w_instr, "w_faith": cfg.w_faith},
                     what=cfg.sql or "top1.sql")
            cols = {d[0] for d in con.execute("SELECT * FROM winners LIMIT 0").description}
            if "tied" not in cols:             # a custom top1.sql that does not mark ties
                con.execute("ALTER TABLE winners ADD COLUMN tied BOOLEAN")
            min_score = None if cfg.min_score is None else float(cfg.min_score)
            _execute(con, "CREATE TEMP TABLE selection AS " + texts["selection.sql"],
                     {**{k: params[k] for k in ("candidate_files", "score_files", "example_files",
                                                "judge_versions")}, "min_score": min_score})
            cur = con.execute(texts["card_summary.sql"], {"min_score": min_score})
            summary = dict(zip([d[0] for d in cur.description], cur.fetchone()))
            dropped = con.execute(
                "SELECT coalesce(e.source, '(unknown)'), count(*) FROM winners AS w "
                "LEFT JOIN read_parquet($example_files) AS e ON e.id = w.example_id "
                "WHERE w.n_eligible = 0 GROUP BY ALL ORDER BY ALL",
                {"example_files": params["example_files"]}).fetchall()
            below = con.execute(
                "SELECT coalesce(e.source, '(unknown)'), count(*) FROM winners AS w "
                "LEFT JOIN read_parquet($example_files) AS e ON e.id = w.example_id "
                "WHERE w.n_eligible > 0 AND $min_score IS NOT NULL AND w.score <= $min_score "
                "GROUP BY ALL ORDER BY ALL",
                {"example_files": params["example_files"], "min_score": min_score}).fetchall()

            with store.create(name, builder="select", config=config, builder_version=BUILDER_VERSION,
                              parents=[pool, scores, examples]) as w:
                reader = con.sql("SELECT * FROM selection ORDER BY example_id").to_arrow_reader(WRITE_ROWS)
                n = w.write("train", (t.select(SELECTION.names).cast(SELECTION) for t in _fixed_chunks(reader)),
                            schema=SELECTION)
                if n == 0:
                    w.write("train", SELECTION.empty_table())
                for source, count in dropped:
                    w.add_drop(source, "no eligible candidate", count)
                for source, count in below:
                    w.add_drop(source, f"best score not above --min-score {min_score:g}", count)
                w.extra.update(pool=pool.ref, scores=scores.ref, examples=examples.ref,
                               judge_versions=config["judge_versions"], selection=summary,
                               top1_sql_file=str(cfg.sql) if cfg.sql else None)
                w.card_meta.update(pretty_name=f"RESET selection ({name})",
                                   task_categories=["text-generation"],
                                   description=(f"The RESET fine-tuning set: for each example of "
                                                f"`{examples.ref}`, the top-rated candidate of the pool "
                                                f"`{pool.ref}` judged in `{scores.ref}`."))
                w.card_sections.update(_card(con, params, cfg, summary))
        finally:
            con.close()
    return w.result


def _execute(con, sql: str, params: dict, what: str = "") -> None:
    import duckdb

    try:
        con.execute(sql, params)
    except duckdb.Error as exc:
        raise ResetkitError(f"selection SQL{f' ({what})' if what else ''} failed: {exc}") from exc

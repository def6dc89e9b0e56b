"""Benchmark: top-1 selection with the shipped SQL (DuckDB) vs pandas vs polars.

    .venv/bin/python bench/bench_select.py            # 1M examples x 10 candidates = 10M rows
    .venv/bin/python bench/bench_select.py --quick    # 100k x 10

Data (generated once under bench/data/select/, git-ignored): one Parquet file of 10M
candidates with the columns ``judging/sql/signals.sql`` produces (example_id, candidate_id,
task, objective, finish_reason, s_task, s_instr, s_faith, has_task_metric), with realistic
values: EM and span coverage in {0, 1}, ROUGE-L and SummaC in [0, 1], ratings r/10 (many
ties), ~1% missing scores, ~0.5% failed requests.  Candidates of an example are adjacent, as
a pool writes them.

Each implementation runs in its own process (peak RSS = that process's VmHWM) and computes
the same thing as ``judging/sql/top1.sql``: weighted score, eligibility, counts per example
(candidates, eligible, ruled out per reason) and the winner (highest score, ties to the
smallest candidate_id).  The parent checks that all winners agree, then prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "select"
TASKS = ["open_ended", "extractive_qa", "abstractive_qa", "summarization"]


def generate(n_examples: int, k: int, path: Path, seed: int = 0) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    writer = None
    chunk = 100_000
    for start in range(0, n_examples, chunk):
        n = min(chunk, n_examples - start)
        ex_idx = np.repeat(np.arange(start, start + n), k)
        rows = n * k
        task_i = (ex_idx * 2654435761 % 4).astype(np.int64)  # stable task per example
        task = np.array(TASKS, dtype=object)[task_i]
        objective = np.where(task_i == 0, "instruction", "faithfulness").astype(object)
        ex_id = np.char.mod("%016x", ex_idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)).astype(object)
        cand_id = np.char.mod("%016x", rng.integers(0, 1 << 62, rows, dtype=np.int64)).astype(object)
        s_task = np.where(task_i == 1, rng.integers(0, 2, rows).astype(float), np.round(rng.random(rows), 4))
        s_task[task_i == 0] = np.nan
        s_faith = np.where(task_i == 1, rng.integers(0, 2, rows).astype(float), np.round(rng.beta(2, 2, rows), 4))
        s_faith[task_i == 0] = np.nan
        s_instr = np.where(task_i == 0, rng.integers(1, 11, rows) / 10.0, np.nan)
        for arr in (s_task, s_faith, s_instr):
            arr[rng.random(rows) < 0.01] = np.nan  # missing scores
        finish = np.where(rng.random(rows) < 0.005, "error", "stop").astype(object)
        table = pa.table({
            "example_id": pa.array(ex_id, pa.string()), "candidate_id": pa.array(cand_id, pa.string()),
            "task": pa.array(task, pa.string()), "objective": pa.array(objective, pa.string()),
            "finish_reason": pa.array(finish, pa.string()),
            "s_task": pa.array(s_task, pa.float64(), from_pandas=True),
            "s_instr": pa.array(s_instr, pa.float64(), from_pandas=True),
            "s_faith": pa.array(s_faith, pa.float64(), from_pandas=True),
            "has_task_metric": pa.array(task_i != 0),
        })
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=1 << 20)
    writer.close()
    os.replace(tmp, path)


# -- the three implementations (each run in a child process) ------------------------------
def run_duckdb(path: str, variant: str = "shipped"):
    import tempfile

    from judging.select import SelectConfig, _connect, sql_text

    cfg = SelectConfig()
    with tempfile.TemporaryDirectory() as tmp:
        con = _connect(cfg, tmp)
        # columns signals.sql adds beyond the synthetic file: no duplicates, no temperature (ties -> id)
        con.execute("CREATE VIEW candidate_signals AS SELECT *, candidate_id AS score_key, "
                    "NULL::DOUBLE AS temperature, true AS has_instr_metric, true AS has_faith_metric "
                    f"FROM read_parquet('{path}')")
        sql = sql_text("top1.sql")
        if variant == "qualify":  # the slower window form, for reference
            sql = QUALIFY_SQL
        params = {"w_task": cfg.w_task, "w_instr": cfg.w_instr, "w_faith": cfg.w_faith}
        t0 = time.perf_counter()
        table = con.sql(sql, params=params).to_arrow_table()
        seconds, rss = time.perf_counter() - t0, _peak_rss_mib()
    return seconds, rss, table.num_rows, _winners_arrow(table)


QUALIFY_SQL = """
WITH scored AS (
    SELECT example_id, candidate_id,
           CASE WHEN has_task_metric THEN s_task ELSE 0.0 END AS s_task, s_instr, s_faith,
           finish_reason IS DISTINCT FROM 'error' AND task IS NOT NULL
             AND (NOT has_task_metric OR s_task IS NOT NULL)
             AND (objective <> 'instruction' OR s_instr IS NOT NULL)
             AND (objective <> 'faithfulness' OR s_faith IS NOT NULL) AS eligible,
           $w_task * (CASE WHEN has_task_metric THEN s_task ELSE 0.0 END)
             + (CASE WHEN objective = 'instruction' THEN $w_instr * s_instr ELSE 0.0 END)
             + (CASE WHEN objective = 'faithfulness' THEN $w_faith * s_faith ELSE 0.0 END) AS score
    FROM candidate_signals
)
SELECT example_id, candidate_id, score, s_task, s_instr, s_faith FROM scored WHERE eligible
QUALIFY row_number() OVER (PARTITION BY example_id ORDER BY score DESC, candidate_id) = 1
"""


def _winners_arrow(table):
    import pyarrow.compute as pc

    t = table.filter(pc.is_valid(table["candidate_id"])).select(["example_id", "candidate_id"])
    return _digest(t["example_id"].to_pylist(), t["candidate_id"].to_pylist())


def _digest(examples, candidates) -> str:
    import hashlib

    h = hashlib.sha256()
    for e, c in sorted(zip(examples, candidates)):
        h.update(f"{e}\t{c}\n".encode())
    return h.hexdigest()[:16]


def run_pandas(path: str):
    import numpy as np
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_parquet(path)
    s_task = df["s_task"].where(df["has_task_metric"], 0.0)
    instr = (df["objective"] == "instruction").to_numpy()
    faith = (df["objective"] == "faithfulness").to_numpy()
    error = (df["finish_reason"] == "error").to_numpy()
    miss_task = (df["has_task_metric"].to_numpy() & s_task.isna().to_numpy()) & ~error
    miss_instr = instr & df["s_instr"].isna().to_numpy() & ~error & ~miss_task
    miss_faith = faith & df["s_faith"].isna().to_numpy() & ~error & ~miss_task
    eligible = ~(error | miss_task | miss_instr | miss_faith)
    df["s_task"] = s_task
    df["score"] = (s_task.fillna(0).to_numpy() + np.where(instr, 2.0 * df["s_instr"].fillna(0).to_numpy(), 0.0)
                   + np.where(faith, 2.0 * df["s_faith"].fillna(0).to_numpy(), 0.0))
    counts = pd.DataFrame({"example_id": df["example_id"], "n_candidates": 1, "n_eligible": eligible,
                           "n_error": error, "n_missing_task_score": miss_task,
                           "n_missing_instr_score": miss_instr, "n_missing_faith_score": miss_faith})
    counts = counts.groupby("example_id", sort=False).sum()
    el = df[eligible].sort_values("candidate_id")  # idxmax keeps the first maximum: smallest id
    idx = el.groupby("example_id", sort=False)["score"].idxmax()
    winners = el.loc[idx, ["example_id", "candidate_id", "score", "s_task", "s_instr", "s_faith"]]
    out = counts.join(winners.set_index("example_id"), how="left").reset_index()
    seconds, rss = time.perf_counter() - t0, _peak_rss_mib()
    w = out.dropna(subset=["candidate_id"])
    return seconds, rss, len(out), _digest(w["example_id"].tolist(), w["candidate_id"].tolist())


def run_polars(path: str):
    import polars as pl

    t0 = time.perf_counter()
    lf = pl.scan_parquet(path)
    s_task = pl.when(pl.col("has_task_metric")).then(pl.col("s_task")).otherwise(0.0)
    error = pl.col("finish_reason") == "error"
    miss_task = ~error & pl.col("has_task_metric") & pl.col("s_task").is_null()
    miss_instr = ~error & ~miss_task & (pl.col("objective") == "instruction") & pl.col("s_instr").is_null()
    miss_faith = ~error & ~miss_task & (pl.col("objective") == "faithfulness") & pl.col("s_faith").is_null()
    score = (s_task.fill_null(0.0)
             + pl.when(pl.col("objective") == "instruction").then(2.0 * pl.col("s_instr")).otherwise(0.0)
             + pl.when(pl.col("objective") == "faithfulness").then(2.0 * pl.col("s_faith")).otherwise(0.0))
    lf = lf.with_columns(s_task=s_task, score=score, error=error, miss_task=miss_task, miss_instr=miss_instr,
                         miss_faith=miss_faith)
    lf = lf.with_columns(eligible=~(pl.col("error") | pl.col("miss_task") | pl.col("miss_instr")
                                    | pl.col("miss_faith")))
    # winner key as in the SQL: min over (-score, candidate_id) among eligible candidates
    key = pl.struct(neg=-pl.col("score"), cid=pl.col("candidate_id"))
    out = lf.group_by("example_id").agg(
        n_candidates=pl.len(), n_eligible=pl.col("eligible").sum(), n_error=pl.col("error").sum(),
        n_missing_task_score=pl.col("miss_task").sum(), n_missing_instr_score=pl.col("miss_instr").sum(),
        n_missing_faith_score=pl.col("miss_faith").sum(),
        w=pl.struct("candidate_id", "score", "s_task", "s_instr", "s_faith").filter(pl.col("eligible"))
          .sort_by(key.filter(pl.col("eligible"))).first(),
    ).unnest("w").collect(engine="streaming")
    seconds, rss = time.perf_counter() - t0, _peak_rss_mib()
    w = out.filter(pl.col("candidate_id").is_not_null())
    return seconds, rss, out.height, _digest(w["example_id"].to_list(), w["candidate_id"].to_list())


# -- end to end: run_select over a store (long scores table, texts, joins, card) -------------
def generate_store(n_examples: int, k: int, root: Path, seed: int = 0) -> None:
    """examples / pool / scores datasets in the stage schemas, ~200-character texts."""
    import numpy as np
    import pyarrow as pa

    from resetkit.schemas import CANDIDATES, EXAMPLES, SCORES
    from resetkit.store import Store

    rng = np.random.default_rng(seed)
    store = Store(root)
    filler = " lorem ipsum dolor sit amet" * 7
    ex_i = np.arange(n_examples)
    task_i = ex_i * 2654435761 % 4
    ex_ids = pa.array(np.char.mod("e%015x", ex_i.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    tasks = pa.array(np.array(TASKS, dtype=object)[task_i], pa.string())
    examples = pa.table({
        "id": ex_ids, "source": pa.array(np.array(["dolly", "nq", "msmarco", "cnn"], dtype=object)[task_i]),
        "objective": pa.array(np.where(task_i == 0, "instruction", "faithfulness").astype(object)),
        "task": tasks, "split": pa.array(["train"] * n_examples),
        "instruction": pa.array(np.char.add("instruction ", ex_ids.to_numpy(zero_copy_only=False).astype(str))),
        "question": pa.nulls(n_examples, pa.string()), "context": pa.array([filler] * n_examples),
        "passages": pa.array([[]] * n_examples, pa.list_(pa.string())),
        "response": pa.array(["gold"] * n_examples), "refs": pa.array([["gold"]] * n_examples),
        "prompt": pa.array(np.char.add("### Instruction: ", ex_ids.to_numpy(zero_copy_only=False).astype(str))),
        "template": pa.array(["alpaca"] * n_examples), "meta": pa.array(["{}"] * n_examples)})
    with store.create("examples", builder="bench", config={"n": n_examples}) as w:
        w.write("train", examples, schema=EXAMPLES)
    ex = w.result
    rows = n_examples * k
    c_ex = np.repeat(ex_i, k)
    c_task = task_i[c_ex]
    cids = np.char.mod("c%015x", rng.integers(0, 1 << 62, rows, dtype=np.int64))
    temps = np.tile(np.round(np.arange(1, k + 1) / 10, 1), n_examples)
    texts = np.char.add(cids, filler)
    pool = pa.table({
        "example_id": pa.array(ex_ids.to_numpy(zero_copy_only=False)[c_ex]), "candidate_id": pa.array(cids),
        "model": pa.array(["m"] * rows), "model_revision": pa.array(["r"] * rows),
        "template": pa.array(["alpaca"] * rows),
        "prompt": pa.array(np.char.add("### Instruction: ", ex_ids.to_numpy(zero_copy_only=False).astype(str)[c_ex])),
        "temperature": pa.array(temps), "top_k": pa.nulls(rows, pa.int32()), "top_p": pa.array([1.0] * rows),
        "seed": pa.array(np.zeros(rows, np.int64)), "arm": pa.array(["temperature"] * rows),
        "sample_index": pa.array(np.zeros(rows, np.int32)), "text": pa.array(texts),
        "num_tokens": pa.array(np.full(rows, 40, np.int32)),
        "finish_reason": pa.array(np.where(rng.random(rows) < 0.005, "error", "stop").astype(object)),
        "greedy": pa.array(np.zeros(rows, bool)), "duplicate_of": pa.nulls(rows, pa.string()),
        "backend": pa.array(["bench"] * rows), "error": pa.nulls(rows, pa.string())})
    with store.create("pool", builder="bench", config={"n": n_examples, "k": k}, parents=[ex]) as w:
        w.write("train", pool, schema=CANDIDATES)
        w.extra["examples"] = ex.ref
    pool_v = w.result
    metrics = {0: [("llm", "rating")], 1: [("em", "exact_match"), ("span", "span_coverage")],
               2: [("rouge", "rougeL_f1"), ("summac", "summac_zs")], 3: [("rouge", "rougeL_f1"), ("summac", "summac_zs")]}
    parts = []
    for t, pairs in metrics.items():
        sel = np.nonzero(c_task == t)[0]
        for judge, metric in pairs:
            vals = np.round(rng.random(sel.size), 3)
            vals[rng.random(sel.size) < 0.01] = np.nan
            parts.append(pa.table({"candidate_id": pa.array(cids[sel]), "judge": pa.array([judge] * sel.size),
                                   "metric": pa.array([metric] * sel.size),
                                   "value": pa.array(vals, from_pandas=True), "raw": pa.nulls(sel.size, pa.string()),
                                   "error": pa.nulls(sel.size, pa.string()),
                                   "judge_version": pa.array(["1"] * sel.size)}))
    with store.create("scores", builder="bench", config={"n": n_examples}, parents=[pool_v]) as w:
        w.write("train", pa.concat_tables(parts), schema=SCORES)
        w.extra["pool"] = pool_v.ref
        w.extra["judge_versions"] = {j: "1" for pairs in metrics.values() for j, _ in pairs}


def run_e2e(root: str):
    from judging.select import run_select
    from resetkit.store import Store

    t0 = time.perf_counter()
    version = run_select(Store(root), "pool")
    return time.perf_counter() - t0, _peak_rss_mib(), version.num_rows()["train"]


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(impl: str, path: str) -> None:
    sys.path.insert(0, str(ROOT))
    if impl == "e2e":
        seconds, rss, rows = run_e2e(path)
        print(json.dumps({"impl": impl, "seconds": seconds, "rows": rows, "digest": "", "peak_rss_mib": rss}))
        return
    if impl.startswith("duckdb"):
        seconds, rss, rows, digest = run_duckdb(path, "qualify" if impl == "duckdb-qualify" else "shipped")
    elif impl == "pandas":
        seconds, rss, rows, digest = run_pandas(path)
    else:
        seconds, rss, rows, digest = run_polars(path)
    # peak RSS as the selection left it (before the digest used to compare the results)
    print(json.dumps({"impl": impl, "seconds": seconds, "rows": rows, "digest": digest, "peak_rss_mib": rss}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100k examples instead of 1M")
    ap.add_argument("--examples", type=int, default=None)
    ap.add_argument("--candidates", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2, help="runs per implementation (best time reported)")
    ap.add_argument("--impl", default="duckdb,duckdb-qualify,polars,pandas")
    ap.add_argument("--e2e", type=int, default=0, metavar="N",
                    help="instead: time run_select end to end on a generated store of N examples")
    ap.add_argument("--child", nargs=2, metavar=("IMPL", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.e2e:
        root = DATA / f"store-{args.e2e}x{args.candidates}"
        if not (root / "scores").exists():
            t0 = time.perf_counter()
            generate_store(args.e2e, args.candidates, root)
            print(f"generated {root} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        runs = []
        for _ in range(args.repeat):
            proc = subprocess.run([sys.executable, __file__, "--child", "e2e", str(root)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        best = min(r["seconds"] for r in runs)
        print(f"| run_select end to end | {args.e2e:,} examples x {args.candidates} | {best:.2f} s (best of "
              f"{args.repeat}) | peak RSS {max(r['peak_rss_mib'] for r in runs):.0f} MiB | "
              f"{runs[0]['rows']:,} rows selected |")
        return
    n = args.examples or (100_000 if args.quick else 1_000_000)
    path = DATA / f"signals-{n}x{args.candidates}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        generate(n, args.candidates, path)
        print(f"generated {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
    results = {}
    for impl in args.impl.split(","):
        runs = []
        for _ in range(args.repeat):
            proc = subprocess.run([sys.executable, __file__, "--child", impl, str(path)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(f"{impl} failed")
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        best = min(runs, key=lambda r: r["seconds"])
        best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
        results[impl] = best
        print(f"{impl}: {best['seconds']:.2f} s, peak RSS {best['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    digests = {r["digest"] for r in results.values()}
    ref = results.get("duckdb", next(iter(results.values())))
    print(f"\n{n:,} examples x {args.candidates} candidates = {n * args.candidates:,} rows; "
          f"{os.cpu_count()} CPUs; winners identical across implementations: {len(digests) == 1}\n")
    print("| implementation | time (s, best of %d) | vs shipped SQL | peak RSS (MiB) |" % args.repeat)
    print("|---|---:|---:|---:|")
    for impl, r in results.items():
        print(f"| {impl} | {r['seconds']:.2f} | {r['seconds'] / ref['seconds']:.2f}x | {r['peak_rss_mib']:.0f} |")
    if len(digests) != 1:
        raise SystemExit("winners differ between implementations: " + json.dumps(
            {k: v["digest"] for k, v in results.items()}))


if __name__ == "__main__":
    main()

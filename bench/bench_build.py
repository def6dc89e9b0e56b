"""Benchmark: build if-train and cd-train from paper-scale upstream files.

    .venv/bin/python bench/bench_build.py               # full paper scale
    .venv/bin/python bench/bench_build.py --quick       # 10x smaller
    .venv/bin/python bench/bench_build.py --repeat 3    # each measurement 3 times (noisy machines)
    .venv/bin/python bench/bench_build.py --only hub    # if-train and cd-train from a (local) Hub
    .venv/bin/python bench/bench_build.py --only marco-json   # MS MARCO's single JSON object

Generates upstream-format files under bench/data/build[-quick]/ (once; reused after):
Dolly 15,011 rows (JSONL), OASST-1 88,838 messages (Hub Parquet, struct labels), ShareGPT
90,000 rows (one JSON list), Self-Instruct 82,612 rows (JSONL), MS MARCO v2.1 train
808,731 rows with 10 passages each (Hub Parquet), CNN/DailyMail train 287,113 articles (Hub
Parquet) and, so that cd-train has its three sources, NQ with 8,757 DPR rows (JSONL; not in
the issue's list, kept small).  Text is random letters and spaces at realistic lengths, so
neither Parquet nor zstd gets it for free.

Measures, each in a fresh process: ``resetkit build if-train`` and ``resetkit build
cd-train`` (wall time and peak RSS via wait4), and the floor: a bare pyarrow read of the
same input files (json.load for the JSON list, which pyarrow cannot read) plus a Parquet
write of the same output tables.  Writes bench/results/build.md.

``--only hub``: the same inputs served by the local fake Hub (tests/helpers/fake_hub.py, a
real HTTP server on 127.0.0.1) in the real repos' layouts -- Dolly's JSONL, OASST-1's
``data/*.parquet``, ShareGPT's JSON array, Self-Instruct's Parquet conversion
(``refs/convert/parquet``), MS MARCO ``v2.1/`` and CNN/DailyMail ``3.0.0/`` Parquet with
``configs`` in their cards -- and built with no ``--source`` but NQ's (it has no Hub id).
The first build downloads into a fresh HF_HOME (reported, not compared); the second, from
the Hub cache, is compared with its floor: a bare pyarrow read of the same cached files plus
the Parquet write of the same output.

``--only marco-json``: MS MARCO v2.1 train as the publisher ships it, one column-oriented
JSON object (``train_v2.1.json.gz``, 808,731 rows, passages as lists of {is_selected, url,
passage_text}, ``wellFormedAnswers`` "[]" when none; generated once), built with ``--only
ms_marco``; floor: one streaming pass of the same parser (``reader.iter_column_pieces``,
ijson's C backend) over the same file plus the Parquet write of the same output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SCALE = {"dolly": 15_011, "oasst1": 88_838, "sharegpt": 90_000, "self_instruct": 82_612,
         "ms_marco": 808_731, "cnn_dailymail": 287_113, "nq": 8_757}
CHUNK = 20_000
_ALPHABET = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz     ", dtype=np.uint8)  # ~1 space in 6


def texts(rng, n: int, mean_chars: int) -> pa.Array:
    """``n`` random strings of about ``mean_chars`` characters, built without Python loops."""
    lengths = np.maximum(8, rng.normal(mean_chars, mean_chars / 4, n).astype(np.int64))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = _ALPHABET[rng.integers(0, len(_ALPHABET), int(offsets[-1]))]
    data[offsets[1:] - 1] = ord(".")
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())).cast(pa.string())


def lists(values: pa.Array, n: int, per: int) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * per + 1, per, dtype=np.int32)), values)


def write_parquet_chunks(path: Path, total: int, make_chunk) -> None:
    writer = None
    for start in range(0, total, CHUNK):
        table = make_chunk(start, min(CHUNK, total - start))
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table)
    writer.close()


def write_jsonl_chunks(path: Path, total: int, make_chunk, as_list: bool = False) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("[\n" if as_list else "")
        for start in range(0, total, CHUNK):
            rows = make_chunk(start, min(CHUNK, total - start)).to_pylist()
            sep = ",\n" if as_list else "\n"
            body = sep.join(json.dumps(r, ensure_ascii=False) for r in rows)
            if as_list and start:
                fh.write(",\n")
            fh.write(body + ("" if as_list else "\n"))
        fh.write("\n]\n" if as_list else "")


def generate(out: Path, scale: float, seed: int = 0) -> dict[str, Path]:
    """Write every upstream file (skipped when already there); returns source -> path."""
    rng = np.random.default_rng(seed)
    n = {k: max(10, int(v * scale)) for k, v in SCALE.items()}
    out.mkdir(parents=True, exist_ok=True)
    paths = {"dolly": out / "dolly.jsonl", "oasst1": out / "oasst1", "sharegpt": out / "sharegpt.json",
             "self_instruct": out / "self_instruct.jsonl", "ms_marco": out / "ms_marco",
             "cnn_dailymail": out / "cnn_dailymail", "nq": out / "nq"}
    done = out / ".complete"
    if done.exists():
        return paths

    cats = pa.array(["open_qa", "closed_qa", "brainstorming", "summarization", "creative_writing"])

    def dolly(start, k):
        has_ctx = rng.random(k) < 0.3
        ctx = texts(rng, k, 600).to_numpy(zero_copy_only=False)
        ctx[~has_ctx] = ""
        return pa.table({"instruction": texts(rng, k, 80), "context": pa.array(ctx, pa.string()),
                         "response": texts(rng, k, 350), "category": cats.take(rng.integers(0, 5, k))})
    write_jsonl_chunks(paths["dolly"], n["dolly"], dolly)

    (paths["oasst1"]).mkdir(exist_ok=True)
    label_type = pa.struct([("name", pa.list_(pa.string())), ("value", pa.list_(pa.float64())),
                            ("count", pa.list_(pa.int32()))])

    def oasst(start, k):
        ids = np.arange(start, start + k)
        prompter = ids % 3 == 0   # one prompter, then two replies
        parent = np.where(prompter, -1, ids - (ids % 3))
        labels = [None if p else {"name": ["spam", "quality"], "value": [0.0, float(q)], "count": [int(c)] * 2}
                  for p, q, c in zip(prompter, rng.random(k), rng.integers(1, 4, k))]
        return pa.table({
            "message_id": pa.array([f"m{i}" for i in ids]),
            "parent_id": pa.array([None if p < 0 else f"m{p}" for p in parent], pa.string()),
            "text": texts(rng, k, 500), "role": pa.array(np.where(prompter, "prompter", "assistant")),
            "lang": pa.array(["en"] * k), "deleted": pa.array(np.zeros(k, bool)),
            "review_result": pa.array(np.ones(k, bool)), "rank": pa.array(ids % 3, pa.int32()),
            "message_tree_id": pa.array([f"t{p}" for p in np.where(prompter, ids, parent)]),
            "labels": pa.array(labels, label_type)})
    write_parquet_chunks(paths["oasst1"] / "train-00000-of-00001.parquet", n["oasst1"], oasst)

    def sharegpt(start, k):
        return pa.table({"instruction": texts(rng, k, 150), "input": pa.array([""] * k),
                         "output": texts(rng, k, 1200)})
    write_jsonl_chunks(paths["sharegpt"], n["sharegpt"], sharegpt, as_list=True)

    def self_instruct(start, k):
        instr = texts(rng, k, 100).to_numpy(zero_copy_only=False)
        inp = texts(rng, k, 80).to_numpy(zero_copy_only=False)
        with_input = rng.random(k) < 0.4
        prompt = [f"{i}\n\nInput: {x}\n\nOutput:" if w else f"{i}\n\nOutput:"
                  for i, x, w in zip(instr, inp, with_input)]
        comp = [f" {c}<|endoftext|>" for c in texts(rng, k, 200).to_numpy(zero_copy_only=False)]
        return pa.table({"prompt": prompt, "completion": comp})
    write_jsonl_chunks(paths["self_instruct"], n["self_instruct"], self_instruct)

    paths["ms_marco"].mkdir(exist_ok=True)
    passage_type = pa.struct([("is_selected", pa.list_(pa.int32())), ("passage_text", pa.list_(pa.string())),
                              ("url", pa.list_(pa.string()))])

    def ms_marco(start, k):
        per = 10
        sel = np.zeros(k * per, np.int32)
        sel[np.arange(k) * per + rng.integers(0, per, k)] = 1
        urls = pa.array(np.char.add("http://example.com/", np.arange(k * per).astype(str)))
        passages = pa.StructArray.from_arrays(
            [lists(pa.array(sel), k, per), lists(texts(rng, k * per, 350), k, per), lists(urls, k, per)],
            fields=list(passage_type))
        # ~19% of rows have a well-formed answer (153,725 / 808,731); the rest hold [] or ["[]"]
        wf = texts(rng, k, 120).to_numpy(zero_copy_only=False)
        has = rng.random(k) < 0.19
        wfa = pa.array([[w] if h else ([] if i % 2 else ["[]"]) for i, (w, h) in enumerate(zip(wf, has))],
                       pa.list_(pa.string()))
        return pa.table({"answers": lists(texts(rng, k, 60), k, 1), "passages": passages,
                         "query": texts(rng, k, 40), "query_id": pa.array(np.arange(start, start + k), pa.int32()),
                         "query_type": pa.array(["DESCRIPTION"] * k), "wellFormedAnswers": wfa})
    write_parquet_chunks(paths["ms_marco"] / "train-00000-of-00001.parquet", n["ms_marco"], ms_marco)

    paths["cnn_dailymail"].mkdir(exist_ok=True)

    def cnn(start, k):
        return pa.table({"article": texts(rng, k, 4000), "highlights": texts(rng, k, 300),
                         "id": pa.array([f"{i:040x}" for i in range(start, start + k)])})
    write_parquet_chunks(paths["cnn_dailymail"] / "train-00000-of-00001.parquet", n["cnn_dailymail"], cnn)

    paths["nq"].mkdir(exist_ok=True)

    def nq(start, k):
        q = texts(rng, k, 50).to_numpy(zero_copy_only=False)
        a = texts(rng, k, 15).to_numpy(zero_copy_only=False)
        t = texts(rng, k * 10, 600).to_numpy(zero_copy_only=False)
        rows = [{"question": q[i], "answers": [a[i]],
                 "ctxs": [{"id": str(j), "title": "T", "text": t[i * 10 + j], "score": 1.0,
                           "has_answer": j == 0} for j in range(10)]} for i in range(k)]
        return pa.Table.from_pylist(rows)
    write_jsonl_chunks(paths["nq"] / "train.jsonl", n["nq"], nq)
    done.write_text("ok\n")
    return paths


# a small process that runs the command and reports its usage: started from this (large)
# process, a child's peak RSS would include ours, as subprocess starts children with vfork
MEASURE_CODE = """
import json, os, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
json.dump({"wall": time.perf_counter() - t, "cpu": usage.ru_utime + usage.ru_stime,
           "rss": usage.ru_maxrss / 2**20, "code": os.waitstatus_to_exitcode(status)}, open(sys.argv[1], "w"))
"""


def measure(cmd: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS GiB) of one command in a fresh process."""
    report = ROOT / "bench" / "out" / f".measure-{os.getpid()}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", MEASURE_CODE, str(report), *cmd], cwd=ROOT, env=env, check=True)
    r = json.loads(report.read_text())
    report.unlink()
    if r["code"] != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return r["wall"], r["cpu"], r["rss"]


FLOOR_CODE = """
import json, sys, time, pyarrow.json as pj, pyarrow.parquet as pq, pathlib
inputs, outputs, scratch = json.loads(sys.argv[1]), json.loads(sys.argv[2]), pathlib.Path(sys.argv[3])
t, c = time.perf_counter(), time.process_time()
for p in inputs:
    p = pathlib.Path(p)
    if p.suffix == ".parquet":
        for b in pq.ParquetFile(p).iter_batches(batch_size=8192):
            pass
    elif p.suffix == ".json":
        json.load(open(p, encoding="utf-8"))
    else:
        pj.read_json(p)
read, read_cpu = time.perf_counter() - t, time.process_time() - c
write = write_cpu = 0.0
for i, p in enumerate(outputs):
    pf = pq.ParquetFile(p)
    w = None
    for b in pf.iter_batches(batch_size=8192):
        t, c = time.perf_counter(), time.process_time()
        w = w or pq.ParquetWriter(scratch / f"{i}.parquet", pf.schema_arrow, compression="zstd", compression_level=3)
        w.write_batch(b)
        write += time.perf_counter() - t
        write_cpu += time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    if w is None:
        pq.write_table(pf.schema_arrow.empty_table(), scratch / f"{i}.parquet")
    else:
        w.close()
    write += time.perf_counter() - t
    write_cpu += time.process_time() - c
print(json.dumps({"read": read, "write": write, "cpu": read_cpu + write_cpu}))
"""


def floor(inputs: list[Path], outputs: list[Path], scratch: Path, code: str = FLOOR_CODE) -> dict:
    files = []
    for p in inputs:
        files += sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    scratch.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([sys.executable, "-c", code, json.dumps([str(f) for f in files]),
                          json.dumps([str(o) for o in outputs]), str(scratch)],
                         capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    shutil.rmtree(scratch)
    return json.loads(out.stdout)


# the floor of the single JSON object: one pass of the reader's own ijson parse, values dropped
MARCO_FLOOR_CODE = FLOOR_CODE.replace(
    """for p in inputs:
    p = pathlib.Path(p)
    if p.suffix == ".parquet":""", """from builders.sources import reader
for p in inputs:
    p = pathlib.Path(p)
    if p.name.endswith(".json.gz"):
        with reader.open_data(p) as fh:
            for _ in reader.iter_column_pieces(fh):
                pass
    elif p.suffix == ".parquet":""")


def generate_marco_json(path: Path, n: int, seed: int = 1) -> Path:
    """MS MARCO v2.1 train in the publisher's form: one column-oriented JSON object
    ({"answers": {"0": [...], ...}, "passages": {"0": [{"is_selected", "url", "passage_text"},
    ...]}, ...}, as pandas writes it), gzip-compressed, written column by column and chunk by
    chunk (the file is never in memory).  ~19% of rows have a well-formed answer."""
    import gzip

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    columns = ["answers", "passages", "query", "query_id", "query_type", "wellFormedAnswers"]

    def values(column: str, start: int, k: int, rng) -> list:
        if column == "answers":
            return [[a] for a in texts(rng, k, 60).to_pylist()]
        if column == "passages":
            per = 10
            body = texts(rng, k * per, 350).to_pylist()
            chosen = rng.integers(0, per, k)
            return [[{"is_selected": int(j == chosen[i]), "url": f"http://example.com/{start + i}/{j}",
                      "passage_text": body[i * per + j]} for j in range(per)] for i in range(k)]
        if column == "query":
            return texts(rng, k, 40).to_pylist()
        if column == "query_id":
            return list(range(start, start + k))
        if column == "query_type":
            return ["DESCRIPTION"] * k
        has = rng.random(k) < 0.19
        return [[w] if h else "[]" for w, h in zip(texts(rng, k, 120).to_pylist(), has)]

    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as fh:
        fh.write("{")
        for c, column in enumerate(columns):
            fh.write(("," if c else "") + json.dumps(column) + ":{")
            rng = np.random.default_rng([seed, c])
            for start in range(0, n, CHUNK):
                k = min(CHUNK, n - start)
                body = json.dumps({str(start + i): v for i, v in enumerate(values(column, start, k, rng))},
                                  ensure_ascii=False)
                fh.write(("," if start else "") + body[1:-1])
            fh.write("}")
        fh.write("}")
    tmp.rename(path)
    return path


def hub_repos(paths: dict[str, Path], data: Path) -> dict[str, dict]:
    """The benchmark inputs as Hub repos, laid out as the real ones are:
    repo -> {"files": {path in repo: local file or bytes}, "export": {...} (refs/convert/parquet)}."""
    def card(configs: dict[str, dict[str, str]]) -> bytes:
        yaml = "configs:\n" + "".join(
            f"- config_name: {name}\n  data_files:\n" + "".join(
                f"  - split: {s}\n    path: {p}\n" for s, p in splits.items()) for name, splits in configs.items())
        return f"---\n{yaml}---\n".encode()

    si_parquet = data / "self_instruct-train.parquet"   # what the Hub's Parquet conversion holds
    if not si_parquet.exists():
        import pyarrow.json as pj

        pq.write_table(pj.read_json(paths["self_instruct"]), si_parquet, compression="zstd")
    return {
        "databricks/databricks-dolly-15k": {"files": {"README.md": b"---\nlicense: cc-by-sa-3.0\n---\n",
                                                      "databricks-dolly-15k.jsonl": paths["dolly"]}},
        "OpenAssistant/oasst1": {"files": {
            "README.md": card({"default": {"train": "data/train-*"}}),
            "data/train-00000-of-00001-b42a775f407cee45.parquet": paths["oasst1"] / "train-00000-of-00001.parquet"}},
        "LLMs/Alpaca-ShareGPT": {"files": {"README.md": b"---\nlicense: apache-2.0\n---\n",
                                           "alpaca_sharedgpt_data.json": paths["sharegpt"]}},
        "yizhongw/self_instruct": {"files": {"README.md": b"---\nlicense: apache-2.0\n---\n",
                                             "self_instruct.py": b"# loading script\n"},
                                   "export": {"self_instruct/train/0000.parquet": si_parquet}},
        "microsoft/ms_marco": {"files": {
            "README.md": card({"v2.1": {"train": "v2.1/train-*"}}),
            "v2.1/train-00000-of-00001.parquet": paths["ms_marco"] / "train-00000-of-00001.parquet"}},
        "abisee/cnn_dailymail": {"files": {
            "README.md": card({"3.0.0": {"train": "3.0.0/train-*"}}),
            "3.0.0/train-00000-of-00001.parquet": paths["cnn_dailymail"] / "train-00000-of-00001.parquet"}},
    }


def run_hub(paths: dict[str, Path], data: Path, store: Path, corpora: list, run: int) -> list[dict]:
    """Both corpora from the local fake Hub: a cold build (downloads) and a warm one (cache)."""
    sys.path.insert(0, str(ROOT))
    from tests.helpers.fake_hub import FakeHub

    rows = []
    home = store.parent / "hf-home"
    shutil.rmtree(home, ignore_errors=True)
    with FakeHub(token="hf_benchmark") as hub:
        for repo, spec in hub_repos(paths, data).items():
            hub.add_dataset(repo, spec["files"])
            if "export" in spec:
                r = hub.repos[f"datasets/{repo}"]
                r.branches["refs/convert/parquet"] = r.new_commit(r.branches["main"], spec["export"], "parquet")
        env = {**{k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_DATASETS_OFFLINE")},
               "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(home), "HF_HUB_OFFLINE": "0",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
        for corpus, _names in corpora:
            local = ["nq"] if corpus == "cd-train" else []
            for phase in ("download + build", "build from the Hub cache"):
                shutil.rmtree(store / corpus, ignore_errors=True)
                cmd = [sys.executable, "-m", "resetkit.cli", "build", corpus, "--store", str(store), "--no-progress"]
                for name in local:
                    cmd += ["--source", f"{name}={paths[name]}"]
                wall, cpu, rss = measure(cmd, env)
                version = sorted((store / corpus).glob("[0-9a-f]*"))[0]
                outputs = sorted((version / "data").glob("*.parquet"))
                cached = [p for p in (home / "hub").rglob("*") if "snapshots" in p.parts and p.is_file()
                          and p.suffix != ".md"]
                inputs = sorted({p for p in cached if any(n in str(p) for n in _HUB_REPO_KEYS[corpus])} |
                                {paths[n] for n in local})
                f = floor(inputs, outputs, store.parent / "floor")
                rows.append(_row(f"{corpus} (Hub: {phase})", run, wall, cpu, rss, f, version, inputs, outputs))
                _print(rows[-1])
    return rows


_HUB_REPO_KEYS = {"if-train": ["databricks-dolly", "oasst1", "Alpaca-ShareGPT", "self_instruct"],
                  "cd-train": ["ms_marco", "cnn_dailymail"]}


def run_marco_json(data: Path, store: Path, n: int, run: int) -> list[dict]:
    t0 = time.perf_counter()
    path = generate_marco_json(data / "ms_marco_json" / "train_v2.1.json.gz", n)
    print(f"single-object file ready in {time.perf_counter() - t0:.0f}s: {path}", flush=True)
    shutil.rmtree(store / "cd-train", ignore_errors=True)
    cmd = [sys.executable, "-m", "resetkit.cli", "build", "cd-train", "--only", "ms_marco", "--source",
           f"ms_marco={path}", "--store", str(store), "--no-progress"]
    wall, cpu, rss = measure(cmd)
    version = sorted((store / "cd-train").glob("[0-9a-f]*"))[0]
    outputs = sorted((version / "data").glob("*.parquet"))
    f = floor([path], outputs, store.parent / "floor", MARCO_FLOOR_CODE)
    row = _row("cd-train (MS MARCO, one JSON object, .json.gz)", run, wall, cpu, rss, f, version, [path], outputs)
    _print(row)
    return [row]


def _row(corpus, run, wall, cpu, rss, f, version, inputs, outputs) -> dict:
    manifest = json.loads((version / "manifest.json").read_text())
    return {"corpus": corpus, "run": run, "wall": wall, "cpu": cpu, "floor_cpu": f["cpu"], "rss": rss,
            "floor": f["read"] + f["write"], "floor_read": f["read"], "floor_write": f["write"],
            "rows": sum(s["rows"] for s in manifest["splits"].values()),
            "in_gb": sum(Path(p).stat().st_size for p in inputs) / 2**30,
            "out_gb": sum(o.stat().st_size for o in outputs) / 2**30}


def _print(r: dict) -> None:
    print(f"{r['corpus']} (run {r['run']}): build {r['wall']:.1f}s, floor {r['floor']:.1f}s (read "
          f"{r['floor_read']:.1f} + write {r['floor_write']:.1f}), ratio {r['wall'] / r['floor']:.2f}; CPU "
          f"{r['cpu']:.1f}s vs {r['floor_cpu']:.1f}s; peak RSS {r['rss']:.2f} GiB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description="Benchmark corpus builds at paper scale.")
    ap.add_argument("--quick", action="store_true", help="10x smaller inputs")
    ap.add_argument("--repeat", type=int, default=1, help="measure each build and its floor N times")
    ap.add_argument("--only", choices=["if-train", "cd-train", "hub", "marco-json"],
                    help="one measurement: a corpus from local files, both from the (local) Hub, "
                         "or MS MARCO's single JSON object")
    args = ap.parse_args()
    scale = 0.1 if args.quick else 1.0
    data = ROOT / "bench" / "data" / ("build-quick" if args.quick else "build")
    t0 = time.perf_counter()
    paths = generate(data, scale)
    print(f"inputs ready in {time.perf_counter() - t0:.0f}s under {data}", flush=True)
    store = ROOT / "bench" / "out" / ("build-quick" if args.quick else "build") / "store"
    shutil.rmtree(store, ignore_errors=True)
    rows = []
    all_corpora = [("if-train", ["dolly", "oasst1", "sharegpt", "self_instruct"]),
                   ("cd-train", ["nq", "ms_marco", "cnn_dailymail"])]
    corpora = [(c, n) for c, n in all_corpora if args.only in (None, c)]
    for run in range(1, args.repeat + 1):
        if args.only in (None, "hub"):
            rows += run_hub(paths, data, store, all_corpora, run)
        if args.only in (None, "marco-json"):
            rows += run_marco_json(data, store, max(10, int(SCALE["ms_marco"] * scale)), run)
    for run, (corpus, names) in ((r, c) for r in range(1, args.repeat + 1) for c in corpora):
        shutil.rmtree(store / corpus, ignore_errors=True)
        cmd = [sys.executable, "-m", "resetkit.cli", "build", corpus, "--store", str(store), "--no-progress"]
        for name in names:
            cmd += ["--source", f"{name}={paths[name]}"]
        wall, cpu, rss = measure(cmd)
        version = sorted((store / corpus).glob("[0-9a-f]*"))[0]
        outputs = sorted((version / "data").glob("*.parquet"))
        f = floor([paths[n] for n in names], outputs, store.parent / "floor")
        manifest = json.loads((version / "manifest.json").read_text())
        in_bytes = sum(x.stat().st_size for n in names for x in
                       ([paths[n]] if paths[n].is_file() else paths[n].rglob("*")) if x.is_file())
        rows.append({"corpus": corpus, "run": run, "wall": wall, "cpu": cpu, "floor_cpu": f["cpu"], "rss": rss, "floor": f["read"] + f["write"],
                     "floor_read": f["read"], "floor_write": f["write"],
                     "rows": sum(s["rows"] for s in manifest["splits"].values()), "in_gb": in_bytes / 2**30,
                     "out_gb": sum(o.stat().st_size for o in outputs) / 2**30})
        r = rows[-1]
        print(f"{corpus} (run {run}): build {wall:.1f}s, floor {r['floor']:.1f}s (read {f['read']:.1f} + write "
              f"{f['write']:.1f}), ratio {wall / r['floor']:.2f}; CPU {cpu:.1f}s vs {f['cpu']:.1f}s; "
              f"peak RSS {rss:.2f} GiB", flush=True)
    write_results(rows, args)


EXTRA_NOTES = {
    "hub": [
        "- Hub rows: the inputs are served by the local fake Hub (a real HTTP server on 127.0.0.1; "
        "tests/helpers/fake_hub.py) in the real repos' layouts, and `resetkit build` runs with no "
        "`--source` (NQ excepted: it has no Hub id), through huggingface_hub (HF_ENDPOINT, a fresh HF_HOME). "
        "The first build of each corpus downloads into the Hub cache (wall time includes the transfer); the "
        "second reads the cache, and its floor is a bare pyarrow read of the same cached files (json.load "
        "for the JSON list) + the Parquet write of the same output.",
        "- Hub input is resolved to the config's data files and read like local files: if-train takes the "
        "columnar path, MS MARCO's Parquet the vectorised pre-filter; nothing goes row by row through "
        "`datasets`.",
        "- Peak RSS is the build process's own (measured by a small wrapper process: started straight from "
        "the benchmark, which holds the fake Hub, a child's peak RSS would include the benchmark's memory).",
    ],
    "marco-json": [
        "- MS MARCO v2.1 train as the publisher ships it: one column-oriented JSON object, gzip (level 1), "
        "808,731 rows, 10 passages each as {is_selected, url, passage_text}, ~19% with a well-formed answer. "
        "Built with `resetkit build cd-train --only ms_marco --source ms_marco=train_v2.1.json.gz`.",
        "- The reader streams it with ijson's C parser (yajl2_c): each row value is built in C; the "
        "column objects are never built (a stand-in mapping hands each row value on), and each column is "
        "spilled in 8,192-row pieces (marshal) to a temporary folder, then the columns are zipped back into "
        "rows. Floor = one pass of the same parse (`reader.iter_column_pieces`) over the same file, values "
        "dropped, + the Parquet write of the same output.",
        "- The temporary folder (TMPDIR) holds the parsed columns, about the uncompressed size of the file; "
        "memory holds a few pieces at a time.",
        "- Peak RSS is the build process's own (measured from a small wrapper process).",
    ],
}


def write_results(rows: list[dict], args) -> None:
    quick = args.quick
    cmd = ".venv/bin/python bench/bench_build.py" + (" --quick" if quick else "") + \
        (f" --repeat {args.repeat}" if args.repeat > 1 else "") + (f" --only {args.only}" if args.only else "")
    lines = [f"# Corpus build benchmark{' (quick, 10x smaller)' if quick else ''}", "",
             f"Command: `{'nice ' if os.nice(0) > 0 else ''}{cmd}` (machine: {os.cpu_count()} CPUs shared "
             f"with other jobs{', run under nice' if os.nice(0) > 0 else ''}; "
             f"{time.strftime('%Y-%m-%d')}).", "",
             "Inputs are generated at " + ("one tenth of " if quick else "") + "the paper's scale "
             "(see the script's docstring). Build = `resetkit build` in a fresh process; floor = bare "
             "pyarrow read of the same input files (json.load for the one JSON-list file) + Parquet write "
             "(zstd 3) of the same output, timed in the same run. Targets: ratio <= 2, peak RSS < 2 GiB. "
             "CPU seconds (user + system) are given too: the machine is shared, so wall times are noisy.", "",
             "| corpus | run | output rows | input GiB | output GiB | build s | floor s (read + write) | ratio "
             "| build CPU s | floor CPU s | CPU ratio | peak RSS GiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['corpus']} | {r['run']} | {r['rows']:,} | {r['in_gb']:.2f} | {r['out_gb']:.2f} | {r['wall']:.1f} | "
                     f"{r['floor']:.1f} ({r['floor_read']:.1f} + {r['floor_write']:.1f}) | "
                     f"{r['wall'] / r['floor']:.2f} | {r['cpu']:.1f} | {r['floor_cpu']:.1f} | "
                     f"{r['cpu'] / r['floor_cpu']:.2f} | {r['rss']:.2f} |")
    if args.only in ("hub", "marco-json"):
        lines += ["", "Notes:", "", *EXTRA_NOTES[args.only]]
    else:
        lines += ["", "Notes:", "",
                  "- cd-train is dominated by bytes (MS MARCO passages, CNN/DM articles): the well-formed-answer "
                  "rule runs vectorised on Arrow batches, so ~80% of MS MARCO rows never become Python objects, "
                  "and the build stays within about 2x of the floor.",
                  "- if-train is dominated by rows, not bytes (~276k small upstream rows, 0.2 GiB). It takes the "
                  "columnar fast path (builders/sources/columnar.py, Source.convert_table): JSONL read with "
                  "pyarrow.json, the ShareGPT JSON array parsed ~1 MB of elements per json.loads call, column "
                  "checks, rules and prompt templates as Arrow kernels, 4,096 rows at a time; ids, the held-out "
                  "split and the de-duplication keys are hashed from Arrow-owned bytes in one tight loop each. "
                  "Output bytes are identical to the row-by-row path, which still reports bad rows.",
                  "- Where the if-train CPU goes now (per phase, writes inline, loaded machine, ~5.7 s in-process "
                  "+ ~0.45 s start-up): Parquet write 2.0 s (= the floor's write: 4,096-row row groups, fixed by "
                  "the byte-identical output), reading 1.2 s (JSON-array parse with json.loads 0.25 s, UTF-8 "
                  "decode and Arrow columns 0.3 s, OASST-1 Parquet 0.25 s, JSONL 0.15 s), id/de-dup/held-out "
                  "hashing and set look-ups 0.9 s (sha256 over ~280 MB twice plus ~2 us of Python per row), "
                  "prompts/ids in finish_table 0.4 s, source rules 0.6 s, input fingerprints 0.15 s, routing, "
                  "manifest and card 0.5 s; start-up imports pandas (pa.array from lists), jinja2, click.",
                  "- Before the columnar path (row by row, same machine, same day): if-train 8.5 s vs a 2.6 s "
                  "floor, ratio 3.30 (CPU 3.23) at full scale; 2.6 s vs 0.5 s (5.39) with --quick.",
                  "- Parquet is written by one background thread (its encoding and zstd run without the GIL) "
                  "while the main thread converts the next rows, so wall time can be below CPU time on an "
                  "idle machine; on a loaded one the CPU ratio is the steadier figure.",
                  "- Peak RSS stays well under 2 GiB: Parquet is read with pre_buffer=False (pyarrow's "
                  "pre-buffering caches every column chunk of the file it has read, 2.3 GiB on MS MARCO)."]
    name = "build" + ("-quick" if quick else "") + (f"-{args.only}" if args.only else "")
    out = ROOT / "bench" / "results" / f"{name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Bad input to `resetkit build` (issue 14 item 1, issue 12 items 3 and 8): every kind is one
line naming the file (and line/row/column where there is one), never a traceback, never bad
bytes written into the Parquet output, and nothing already in the store is lost.  Invalid
UTF-8 is skippable with --on-bad-rows skip and counted as bad_row:invalid_utf8, on the row
path (small files, JSON arrays, CSV) and the columnar path (large JSONL, Parquet) alike."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from builders.corpora import sample_sources
from resetkit.cli import main
from resetkit.store import Store

pytestmark = pytest.mark.reliability
ROOT = Path(__file__).resolve().parents[2]


def build(store: Store, corpus: str, *, skip: bool = False, **sources):
    """`resetkit build CORPUS` with the samples, ``sources`` (name -> path) replacing some."""
    args = ["build", corpus, "--store", str(store.root), "--no-progress"]
    for name, path in {**sample_sources(corpus), **{k: str(v) for k, v in sources.items()}}.items():
        args += ["--source", f"{name}={path}"]
    if skip:
        args += ["--on-bad-rows", "skip"]
    return CliRunner().invoke(main, args)


def one_error_line(res) -> str:
    """The run failed with a user error: exit 2 and exactly one line, "Error: ..."."""
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    return lines[0]


def readable_by_duckdb(version) -> int:
    """DuckDB reads every Parquet file of the version (it refuses invalid UTF-8)."""
    files = sorted(str(p) for p in (version.path / "data").glob("*.parquet"))
    return duckdb.sql(f"select count(*) from read_parquet({files!r})").fetchall()[0][0]


def dolly_rows(n: int) -> list[dict]:
    return [{"instruction": f"Question number {i}?", "context": "", "response": f"Answer number {i}.",
             "category": "open_qa"} for i in range(n)]


def write_jsonl_with_bad_bytes(path: Path, rows: list[dict], bad_line: int) -> None:
    lines = [json.dumps(r).encode() for r in rows]
    lines[bad_line - 1] = lines[bad_line - 1].replace(b"Answer", b"Ans\xffwer")
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.parametrize("n, bad_line", [(5, 2), (30_000, 20_001)])   # small (row path) / large (columnar)
def test_invalid_utf8_in_jsonl_is_reported_or_skipped_never_written(store, tmp_path, n, bad_line):
    path = tmp_path / "dolly.jsonl"
    write_jsonl_with_bad_bytes(path, dolly_rows(n), bad_line)
    line = one_error_line(build(store, "if-train", dolly=path))
    assert f"dolly.jsonl, line {bad_line}: invalid UTF-8" in line
    assert not store.exists("if-train")
    res = build(store, "if-train", skip=True, dolly=path)
    assert res.exit_code == 0, res.output
    v = store.resolve("if-train")
    assert v.manifest["dropped"]["dolly"]["bad_row:invalid_utf8"] == 1
    assert readable_by_duckdb(v) == sum(s["rows"] for s in v.manifest["splits"].values())


def test_invalid_utf8_in_a_row_path_source(store, tmp_path):
    """BioASQ (cd-eval) always reads row by row: the bad line is named, or skipped and counted."""
    src = Path(sample_sources("cd-eval")["bioasq"])
    lines = src.read_bytes().splitlines()
    lines[1] = lines[1].replace(b"Passage", b"Pas\xc3sage", 1)
    path = tmp_path / "bioasq.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert "bioasq.jsonl, line 2: invalid UTF-8" in one_error_line(build(store, "cd-eval", bioasq=path))
    res = build(store, "cd-eval", skip=True, bioasq=path)
    assert res.exit_code == 0, res.output
    v = store.resolve("cd-eval")
    assert v.manifest["dropped"]["bioasq"]["bad_row:invalid_utf8"] == 1
    assert readable_by_duckdb(v) > 0


def _parquet_with_bad_text(path: Path, n: int, bad_row: int) -> None:
    """A Parquet file whose string column holds bytes that are not UTF-8 in one row (written
    from raw buffers: Arrow does not check text when it writes)."""
    rows = dolly_rows(n)
    data = b"".join(r["response"].encode() for r in rows)
    offsets, pos = [0], 0
    for r in rows:
        pos += len(r["response"].encode())
        offsets.append(pos)
    at = offsets[bad_row - 1]
    data = data[:at] + b"\xfe" + data[at + 1:]
    response = pa.StringArray.from_buffers(n, pa.py_buffer(pa.array(offsets, pa.int32()).buffers()[1]),
                                           pa.py_buffer(data))
    table = pa.table({"instruction": [r["instruction"] for r in rows], "context": [""] * n,
                      "response": response, "category": ["open_qa"] * n})
    pq.write_table(table, path)


@pytest.mark.parametrize("n", [10, 20_000])
def test_invalid_utf8_in_parquet(store, tmp_path, n):
    path = tmp_path / "dolly.parquet"
    _parquet_with_bad_text(path, n, bad_row=n // 2)
    line = one_error_line(build(store, "if-train", dolly=path))
    assert f"dolly.parquet, row {n // 2}, column 'response': invalid UTF-8" in line
    res = build(store, "if-train", skip=True, dolly=path)
    assert res.exit_code == 0, res.output
    v = store.resolve("if-train")
    assert v.manifest["dropped"]["dolly"]["bad_row:invalid_utf8"] == 1 and readable_by_duckdb(v) > 0


@pytest.mark.parametrize("kind", ["empty", "truncated", "not parquet"])
def test_broken_parquet_is_one_line(store, tmp_path, kind):
    path = tmp_path / "train.parquet"
    good = tmp_path / "good.parquet"
    _parquet_with_bad_text(good, 5000, 1)
    data = good.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "not parquet": b"hello\n" * 100}[kind])
    for corpus, source in (("if-train", "dolly"), ("cd-train", "ms_marco")):   # columnar / row path
        line = one_error_line(build(store, corpus, **{source: path}))
        assert str(path) in line
        assert ("the file has no rows (it is empty: 0 bytes)" if kind == "empty" else "not a readable Parquet file") in line


def test_empty_inputs_are_reported(store, tmp_path):
    for name, text in (("dolly.jsonl", ""), ("sharegpt.json", "[]"), ("dolly.csv", "instruction,context,response\n")):
        path = tmp_path / name
        path.write_text(text)
        source = name.split(".")[0]
        line = one_error_line(build(store, "if-train", skip=True, **{source: path}))
        assert str(path) in line and "the file has no rows" in line


def test_csv_row_with_an_extra_column(store, tmp_path):
    src = Path(sample_sources("cd-train")["cnn_dailymail"]) / "train.csv"
    text = src.read_text(encoding="utf-8").rstrip("\n") + '\n"An extra article.","A summary.",train-x,EXTRA\n'
    folder = tmp_path / "cnn"
    folder.mkdir()
    (folder / "train.csv").write_text(text, encoding="utf-8")
    line = one_error_line(build(store, "cd-train", cnn_dailymail=folder))
    assert "train.csv, line" in line and ": 4 cells, but the header has 3" in line and ", row " in line
    res = build(store, "cd-train", skip=True, cnn_dailymail=folder)
    assert res.exit_code == 0, res.output
    assert store.resolve("cd-train").manifest["dropped"]["cnn_dailymail"]["bad_row:column_count"] == 1


def test_corrupt_compressed_input(store, tmp_path):
    path = tmp_path / "dolly.jsonl.gz"
    data = gzip.compress(("\n".join(json.dumps(r) for r in dolly_rows(3000)) + "\n").encode())
    path.write_bytes(data[:-100])
    line = one_error_line(build(store, "if-train", skip=True, dolly=path))
    assert str(path) in line and "corrupt or truncated gz data" in line


def test_a_failed_build_leaves_the_store_as_it_was(store, tmp_path):
    assert build(store, "if-train").exit_code == 0
    before = store.resolve("if-train")
    files = {p: p.read_bytes() for p in sorted(before.path.rglob("*")) if p.is_file()}
    path = tmp_path / "dolly.jsonl"
    write_jsonl_with_bad_bytes(path, dolly_rows(5), 3)
    one_error_line(build(store, "if-train", dolly=path))
    assert store.resolve("if-train").version == before.version
    assert {p: p.read_bytes() for p in sorted(before.path.rglob("*")) if p.is_file()} == files
    assert [d.name for d in (store.root / "if-train").iterdir() if not d.name.startswith(".")] != []
    assert not [d for d in (store.root / "if-train").iterdir() if d.name.startswith(".tmp")]


def test_unreadable_input_file(tmp_path):
    """A file the build may not read.  We run as root here, which reads any file, so the build
    runs in a child process whose bounding set lacks CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    (util-linux ``setpriv``): root is then held to the file's mode 000 like anyone else.  As a
    non-root user, chmod 000 alone does it."""
    path = tmp_path / "dolly.jsonl"
    shutil.copy(sample_sources("if-train")["dolly"], path)
    path.chmod(0)
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: root can read a mode-000 file")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    args = [*prefix, sys.executable, "-m", "resetkit.cli", "build", "if-train", "--store", str(tmp_path / "s")]
    for name, spec in {**sample_sources("if-train"), "dolly": str(path)}.items():
        args += ["--source", f"{name}={spec}"]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [f"Error: {path}: cannot read the file (Permission denied)"]
    finally:
        path.chmod(0o644)

"""The shared reader: formats, streaming JSON arrays, split naming, bad rows, Hub ids offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builders.corpora import build_corpus
from builders.sources import reader
from builders.sources.reader import Column, ReadStats
from resetkit.errors import BadInputError, ResetkitError

COLS = [Column("instruction"), Column("context", required=False), Column("response"),
        Column("n", "int", required=False)]


def read_all(path, on_bad_rows="error", cols=COLS):
    stats = ReadStats()
    rows = list(reader.iter_file(path, cols, on_bad_rows, stats))
    return rows, stats


def test_json_array_streams_across_buffer_boundaries(tmp_path, monkeypatch):
    data = [{"instruction": f"q{i} " + "é" * (i % 7), "response": "r\n" * (i % 3) + "ok", "n": i}
            for i in range(300)]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(reader, "READ_BYTES", 97)   # elements and UTF-8 sequences split across reads
    rows, _ = read_all(path)
    assert [r for r, _, _ in rows] == [{**d, "context": None} for d in data]
    # reported line numbers point at each element's first line
    lines = path.read_text(encoding="utf-8").splitlines()
    for (_row, unit, n) in rows[:20]:
        assert unit == "line" and lines[n - 1].strip() == "{"


def test_empty_json_array(tmp_path):
    path = tmp_path / "e.json"
    path.write_text(" [ ] ")
    assert read_all(path)[0] == []


def test_jsonl_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"instruction": "a", "response": "b"}\n{"instruction": "a", "resp\n')
    with pytest.raises(BadInputError) as exc:
        read_all(path)
    assert exc.value.line == 2 and "d.jsonl" in str(exc.value) and "line 2" in str(exc.value)


def test_json_array_bad_json_names_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n{"instruction": "a", "response": "b"},\n{"instruction": "a" "response": "b"}\n]')
    with pytest.raises(BadInputError, match="line 3"):
        read_all(path)


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_bytes(b'{"instruction": "a", "response": "b"}\n{"instruction": "\xff\xfe", "response": "b"}\n')
    with pytest.raises(BadInputError, match=r"u.jsonl, line 2: invalid UTF-8"):
        read_all(path)
    rows, stats = read_all(path, "skip")
    assert len(rows) == 1 and stats.dropped == {"invalid_utf8": 1}


def test_wrong_type_and_missing_column_name_the_column(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"instruction": "a", "response": "b"}\n{"instruction": ["x"], "response": "b"}\n')
    with pytest.raises(BadInputError) as exc:
        read_all(path)
    assert (exc.value.line, exc.value.column) == (2, "instruction") and "expected str" in str(exc.value)
    path.write_text('{"instruction": "a"}\n')
    with pytest.raises(BadInputError, match=r"line 1, column 'response': required column is missing"):
        read_all(path)
    path.write_text('{"instruction": "a", "response": null}\n')
    with pytest.raises(BadInputError, match="required column is null"):
        read_all(path)


def test_skip_mode_counts_per_reason(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join([
        '{"instruction": "a", "response": "b"}', "not json", '{"instruction": 3, "response": "b"}',
        '{"response": "b"}', '[1, 2]', '{"instruction": "a", "response": "b", "n": "seven"}']) + "\n")
    rows, stats = read_all(path, "skip")
    assert len(rows) == 1
    assert stats.dropped == {"bad_json": 1, "type:instruction": 1, "missing:instruction": 1,
                             "type:row": 1, "type:n": 1}


def test_parquet_rows_and_errors(tmp_path):
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.table({"instruction": ["a", None, "c"], "response": ["x", "y", "z"]}), path)
    with pytest.raises(BadInputError, match=r"row 2, column 'instruction': required column is null"):
        read_all(path)
    rows, stats = read_all(path, "skip")
    assert [(r["instruction"], unit, n) for r, unit, n in rows] == [("a", "row", 1), ("c", "row", 3)]
    pq.write_table(pa.table({"instruction": ["a"]}), path)
    with pytest.raises(BadInputError, match="column 'response': required column is missing from the file"):
        read_all(path)


def test_csv_rows(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('instruction,response,n\n"multi\nline",b,3\nx,y,4\n')
    rows, _ = read_all(path)
    assert rows[0][0]["instruction"] == "multi\nline" and rows[0][0]["n"] == 3
    assert rows[1][1:] == ("row", 2)  # records counted from 1 after the header (cells may span lines)
    path.write_text('instruction,response\na,b\nc,\n')
    rows, _ = read_all(path)   # an empty cell is an empty string, which the source rules judge
    assert rows[1][0]["response"] == ""


def test_folder_split_naming(tmp_path):
    for name in ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet", "dev.jsonl",
                 "validation_extra.json", "test.csv", "README.md", "trainer_notes.txt"]:
        (tmp_path / name).write_text("")
    splits = reader.local_splits(tmp_path)
    assert {s: [p.name for p in ps] for s, ps in splits.items()} == {
        "train": ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"],
        "validation": ["dev.jsonl", "validation_extra.json"], "test": ["test.csv"]}
    f = tmp_path / "test.csv"
    assert reader.local_splits(f) == {"train": [f]}
    with pytest.raises(ResetkitError, match="input not found"):
        reader.local_splits(tmp_path / "nope")


def test_parse_hub_id():
    assert reader.parse_hub_id("microsoft/ms_marco:v2.1@abc") == ("microsoft/ms_marco", "v2.1", "abc")
    assert reader.parse_hub_id("tatsu-lab/alpaca") == ("tatsu-lab/alpaca", None, None)


def test_hub_id_offline_is_clear_and_fast(tmp_path):
    """With no --source, a source loads from its Hub id; offline that fails fast with a hint."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "resetkit.cli", "build", "if-train", "--store", str(tmp_path / "s")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert time.time() - t0 < 60
    assert p.returncode == 2
    assert "cannot load dolly from the Hub id 'databricks/databricks-dolly-15k'" in p.stderr
    assert "--source dolly=PATH" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "s" / "if-train").exists() or not any(
        d for d in (tmp_path / "s" / "if-train").iterdir() if not d.name.startswith("."))


def test_source_without_hub_id_says_where_to_get_it(store):
    with pytest.raises(ResetkitError, match=r"source 'nq' has no Hub id.*--source nq=PATH"):
        build_corpus(store, "cd-train", {})


def test_hub_path_reads_a_real_datasetdict(store, tmp_path, monkeypatch):
    """Everything after the download: a DatasetDict from `datasets` feeds the same rules.

    Only the network step is replaced (the Hub is unreachable here): `load_hub` returns what
    `datasets.load_dataset` gives for the sample Parquet files, with a Hub-style fingerprint.
    """
    import datasets

    from builders.corpora import sample_sources
    from builders.samples.make_samples import HERE

    def fake_load_hub(repo, config, revision, source_name):
        assert (repo, config) == ("microsoft/ms_marco", "v2.1")
        ds = datasets.load_dataset("parquet", data_files={"train": str(HERE / "ms_marco" / "train.parquet")},
                                   cache_dir=str(tmp_path / "cache"))
        return ds, {"repo": repo, "config": config, "revision": revision or "main"}

    monkeypatch.setattr(reader, "load_hub", fake_load_hub)
    specs = {k: v for k, v in sample_sources("cd-train").items() if k != "ms_marco"}
    v = build_corpus(store, "cd-train", specs)
    rows = [r for r in v.read("train").to_pylist() if r["source"] == "ms_marco"]
    local = build_corpus(store, "cd-train", sample_sources("cd-train"), name="local")
    assert rows == [r for r in local.read("train").to_pylist() if r["source"] == "ms_marco"]
    assert v.manifest["inputs"]["ms_marco"] == {"repo": "microsoft/ms_marco", "config": "v2.1", "revision": "main"}
    assert v.manifest["dropped"]["ms_marco"]["no_well_formed_answer"] == 3
    header = (v.path / "README.md").read_text()
    assert "Hub `microsoft/ms_marco`" in header

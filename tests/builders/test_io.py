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


@pytest.mark.parametrize("text", [" [ ] ", "", "\n\n", "instruction,response\n"])
def test_an_empty_file_is_reported_not_read_as_zero_rows(tmp_path, text):
    path = tmp_path / ("e.csv" if "," in text else "e.json")
    path.write_text(text)
    with pytest.raises(BadInputError, match=r"e\.(json|csv): the file has no rows"):
        read_all(path, "skip")


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
    assert "--source dolly=PATH" in p.stderr and "--only NAME" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "s" / "if-train").exists() or not any(
        d for d in (tmp_path / "s" / "if-train").iterdir() if not d.name.startswith("."))


def test_source_without_hub_id_says_where_to_get_it(store):
    with pytest.raises(ResetkitError, match=r"source 'nq' has no Hub id.*--source nq=PATH"):
        build_corpus(store, "cd-train", {})


# -- compressed files ----------------------------------------------------------------------
def _compress(data: bytes, suffix: str) -> bytes:
    import bz2
    import gzip
    import lzma

    import zstandard

    return {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
            ".zst": zstandard.ZstdCompressor().compress}[suffix](data)


ROWS = [{"instruction": f"q{i} é", "response": "line\none" if i % 3 else "r", "n": i} for i in range(50)]


def _plain_files(tmp_path):
    """The same rows as JSONL, a JSON array and CSV (uncompressed)."""
    import csv
    import io

    out = io.StringIO()
    w = csv.DictWriter(out, ["instruction", "response", "n"])
    w.writeheader()
    w.writerows(ROWS)
    return {".jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS).encode(),
            ".json": json.dumps(ROWS, indent=1, ensure_ascii=False).encode(),
            ".csv": out.getvalue().encode()}


@pytest.mark.parametrize("comp", [".gz", ".bz2", ".xz", ".zst"])
def test_compressed_json_jsonl_csv_read_like_plain_ones(tmp_path, comp, monkeypatch):
    monkeypatch.setattr(reader, "READ_BYTES", 64)   # many reads: the stream is decompressed piece by piece
    for fmt, data in _plain_files(tmp_path).items():
        plain, packed = tmp_path / f"train{fmt}", tmp_path / f"train{fmt}{comp}"
        plain.write_bytes(data)
        packed.write_bytes(_compress(data, comp))
        assert read_all(packed) == read_all(plain)
        assert [r["n"] for r, _, _ in read_all(packed)[0]] == list(range(50))
    assert reader.file_kind("x/train.jsonl.zst") == (".jsonl", ".zst")
    assert reader.file_kind("train.parquet.gz") == (None, ".gz")   # Parquet compresses itself
    assert reader.looks_local("dpr/retriever-results.json.gz")


def test_truncated_compressed_file_is_one_clear_error(tmp_path):
    data = _compress(_plain_files(tmp_path)[".jsonl"] * 50, ".gz")
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match=r"train\.jsonl\.gz: corrupt or truncated gz data \(EOFError"):
        read_all(path, "skip")
    path.write_bytes(b"this is not gzip at all\n")
    with pytest.raises(BadInputError, match=r"corrupt or truncated gz data \(BadGzipFile"):
        read_all(path)


def test_folder_with_compressed_files(tmp_path):
    (tmp_path / "train.jsonl.gz").write_bytes(_compress(_plain_files(tmp_path)[".jsonl"], ".gz"))
    (tmp_path / "dev.csv.xz").write_bytes(_compress(_plain_files(tmp_path)[".csv"], ".xz"))
    splits = reader.local_splits(tmp_path)
    assert {s: [p.name for p in ps] for s, ps in splits.items()} == {
        "train": ["train.jsonl.gz"], "validation": ["dev.csv.xz"]}


# -- CSV -----------------------------------------------------------------------------------
def test_csv_multiline_cells_beyond_arrow_block_size(tmp_path):
    """CNN/DM-like rows (newline-joined highlights, quotes, commas) in a CSV well over
    pyarrow's 8 MiB block: read whole, record numbers exact (the old reader failed with
    "CSV parser got out of sync with chunker", mislabelled invalid_utf8 because an article
    said "outfit")."""
    import csv

    path = tmp_path / "train.csv"
    n = 6000
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["article", "highlights", "id"])
        for i in range(n):
            article = f'Article {i}: a "new" outfit, and more.\n\nSecond paragraph. ' + "word " * 300
            w.writerow([article, f"Line one of {i}.\nLine two, with a comma.\nThird \"quoted\".", f"{i:040x}"])
    assert path.stat().st_size > 9 << 20
    cols = [Column("article"), Column("highlights"), Column("id", "any")]
    rows, stats = read_all(path, cols=cols)
    assert len(rows) == n and stats.dropped == {}
    assert rows[4321][0]["highlights"] == 'Line one of 4321.\nLine two, with a comma.\nThird "quoted".'
    assert rows[4321][1:] == ("row", 4322) and rows[-1][0]["id"] == f"{n - 1:040x}"


def test_csv_extra_column_names_row_and_line_and_is_skippable(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('instruction,response,n\n"a\nb",x,1\nc,y,2,EXTRA\nd,"outfit\nutf",3\n', encoding="utf-8")
    with pytest.raises(BadInputError, match=r"c\.csv, line 4, row 2: 4 cells, but the header has 3") as exc:
        read_all(path)
    assert exc.value.row == 2
    rows, stats = read_all(path, "skip")
    assert [r["n"] for r, _, _ in rows] == [1, 3] and stats.dropped == {"column_count": 1}


def test_csv_invalid_utf8_is_its_own_reason_and_outfit_is_not(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b'instruction,response\n"an outfit",ok\n"bad \xff byte",x\nutf-8 fine,\xc3\xa9\n')
    with pytest.raises(BadInputError, match=r"line 3, row 2: invalid UTF-8"):
        read_all(path, cols=COLS[:3])
    rows, stats = read_all(path, "skip", cols=COLS[:3])
    assert [r["instruction"] for r, _, _ in rows] == ["an outfit", "utf-8 fine"]
    assert stats.dropped == {"invalid_utf8": 1}


def test_csv_missing_required_column_in_header(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("instruction,output\na,b\n")
    with pytest.raises(BadInputError, match=r"c\.csv, column 'response': required column is missing from the header"):
        read_all(path)


# -- JSON text that UTF-8 cannot hold --------------------------------------------------------
def test_lone_surrogate_escapes_are_invalid_utf8(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"instruction": "ok \\ud83d\\ude00", "response": "b"}\n'
                    '{"instruction": "lone \\ud800", "response": "b"}\n')
    with pytest.raises(BadInputError, match=r"s\.jsonl, line 2: not valid UTF-8 text"):
        read_all(path)
    rows, stats = read_all(path, "skip")
    assert rows[0][0]["instruction"] == "ok 😀" and stats.dropped == {"invalid_utf8": 1}


def test_json_array_with_bad_bytes_skips_just_that_element(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b'[\n{"instruction": "a", "response": "b"},\n{"instruction": "\xff", "response": "b"},\n'
                     b'{"instruction": "c", "response": "\\udc00"},\n{"instruction": "d", "response": "e"}\n]')
    with pytest.raises(BadInputError, match=r"a\.json, line 3: not valid UTF-8"):
        read_all(path)
    rows, stats = read_all(path, "skip")
    assert [r["instruction"] for r, _, _ in rows] == ["a", "d"] and stats.dropped == {"invalid_utf8": 2}


# -- MS MARCO's column-oriented JSON object ----------------------------------------------------
MARCO_COLS = [Column("query"), Column("query_id", "any"), Column("query_type", required=False),
              Column("answers", "list", required=False), Column("passages", "any"),
              Column("wellFormedAnswers", "any", required=False)]


def marco_rows(n: int) -> list[dict]:
    """Rows in the publisher's per-row shape: passages a list of {is_selected, url,
    passage_text}, wellFormedAnswers the string "[]" when there is none."""
    return [{"answers": [f"answer {i}"],
             "passages": [{"is_selected": int(j == i % 3), "url": f"http://example.com/{i}/{j}",
                           "passage_text": f"passage {j} of {i}: \"quoted\" é, {{braces}}\n"} for j in range(3)],
             "query": f"query {i}", "query_id": 1000 + i, "query_type": "DESCRIPTION",
             "wellFormedAnswers": [f"Well formed {i}."] if i % 4 == 0 else "[]"} for i in range(n)]


def write_column_object(path, rows, *, indent=None, compress=None, order=None) -> None:
    """pandas ``DataFrame.to_json()`` layout (orient="columns"): {col: {"0": v, ...}, ...}."""
    cols = order or list(rows[0])
    obj = {c: {str(i): r[c] for i, r in enumerate(rows)} for c in cols}
    data = json.dumps(obj, indent=indent, ensure_ascii=False).encode("utf-8")
    path.write_bytes(_compress(data, compress) if compress else data)


@pytest.mark.parametrize("indent, compress", [(None, ".gz"), (2, None), (None, ".zst")])
def test_column_oriented_object_streams_into_rows(tmp_path, monkeypatch, indent, compress):
    monkeypatch.setattr(reader, "CHUNK_ROWS", 7)     # rows cross pieces; columns cross reads
    monkeypatch.setattr(reader, "READ_BYTES", 100)
    rows = marco_rows(40)
    path = tmp_path / ("train_v2.1.json" + (compress or ""))
    write_column_object(path, rows, indent=indent, compress=compress)
    got, stats = read_all(path, cols=MARCO_COLS)
    assert [r for r, _, _ in got] == [{c.name: r[c.name] for c in MARCO_COLS} for r in rows]
    assert [(unit, n) for _, unit, n in got] == [("row", i) for i in range(1, 41)]
    assert got[1][0]["wellFormedAnswers"] == "[]" and got[0][0]["passages"][0]["is_selected"] == 1


def test_column_object_pieces_never_exceed_chunk_rows(tmp_path, monkeypatch):
    """Only CHUNK_ROWS rows of one column are handed on at a time, in file order, with each
    column's end marked (what keeps the memory bounded on the 809k-row file)."""
    monkeypatch.setattr(reader, "CHUNK_ROWS", 5)
    path = tmp_path / "m.json"
    write_column_object(path, marco_rows(12))
    pieces = list(reader.iter_column_pieces(open(path, "rb")))
    sizes = [len(p[3]) for p in pieces if p[0] == "rows"]
    assert sizes == [5, 5, 2] * 6
    assert [p[2] for p in pieces if p[0] == "end"] == list(marco_rows(1)[0])


def test_column_object_errors_name_the_file(tmp_path):
    rows = marco_rows(5)
    path = tmp_path / "m.json"
    obj = {c: {str(i): r[c] for i, r in enumerate(rows)} for c in rows[0]}
    del obj["query"]["4"]
    path.write_text(json.dumps(obj))
    with pytest.raises(BadInputError, match=r"m\.json: columns have different numbers of rows \(answers: 5.*query: 4"):
        read_all(path, cols=MARCO_COLS)
    obj = {c: {str(i): r[c] for i, r in enumerate(rows)} for c in rows[0]}
    obj["query"] = {str(i): obj["query"][str(i)] for i in (1, 0, 2, 3, 4)}
    path.write_text(json.dumps(obj))
    with pytest.raises(BadInputError, match=r"m\.json, row 1: columns 'answers' and 'query' list rows in a different order"):
        read_all(path, cols=MARCO_COLS)
    path.write_text(json.dumps({"query": {"0": "a", "1": "b"}, "answers": [1, 2]}))
    with pytest.raises(BadInputError, match=r"not a valid column-oriented JSON object .*'answers' is not an object"):
        read_all(path, cols=MARCO_COLS)
    path.write_text(json.dumps(obj)[:-200])   # truncated
    with pytest.raises(BadInputError, match=r"m\.json: not a valid column-oriented JSON object"):
        read_all(path, cols=MARCO_COLS)
    obj = {c: {str(i): r[c] for i, r in enumerate(rows)} for c in rows[0]}
    del obj["query"]
    path.write_text(json.dumps(obj))
    with pytest.raises(BadInputError, match=r"m\.json, row 1, column 'query': required column is missing"):
        read_all(path, cols=MARCO_COLS)


def test_jsonl_starting_like_a_column_object_stays_jsonl(tmp_path):
    """Only .json files are tried as one object; a .jsonl file is always one row per line."""
    path = tmp_path / "m.jsonl"
    path.write_text('{"query": {"0": "x"}}\n{"query": {"0": "y"}}\n')
    got, _ = read_all(path, cols=[Column("query", "dict")])
    assert [r["query"] for r, _, _ in got] == [{"0": "x"}, {"0": "y"}]


# -- Hub-layout folders (a downloaded snapshot) -----------------------------------------------
MARCO_CARD = """---
dataset_info:
- config_name: v1.1
- config_name: v2.1
configs:
- config_name: v1.1
  data_files:
  - split: validation
    path: v1.1/validation-*
  - split: train
    path: v1.1/train-*
  - split: test
    path: v1.1/test-*
- config_name: v2.1
  data_files:
  - split: validation
    path: v2.1/validation-*
  - split: train
    path: v2.1/train-*
  - split: test
    path: v2.1/test-*
---
# Dataset Card for "ms_marco"
"""


def _marco_snapshot(root, card=True):
    from builders.samples.make_samples import HERE

    sample = pq.read_table(HERE / "ms_marco" / "train.parquet")
    for config, shards in (("v1.1", 1), ("v2.1", 2)):
        (root / config).mkdir(parents=True)
        table = sample if config == "v2.1" else sample.set_column(
            sample.schema.get_field_index("query"), "query", pa.array([f"v1.1 query {i}" for i in range(sample.num_rows)]))
        for k in range(shards):
            part = table.slice(k * table.num_rows // shards, table.num_rows // shards + (table.num_rows % shards if k else 0))
            pq.write_table(part, root / config / f"train-{k:05d}-of-{shards:05d}.parquet")
        pq.write_table(table.slice(0, 2), root / config / "validation-00000-of-00001.parquet")
    if card:
        (root / "README.md").write_text(MARCO_CARD)
    (root / ".gitattributes").write_text("*.parquet filter=lfs\n")
    return root


@pytest.mark.parametrize("card", [True, False])
def test_snapshot_folder_reads_only_the_configured_config(tmp_path, card):
    root = _marco_snapshot(tmp_path / "ms_marco", card)
    splits = reader.local_splits(root, config="v2.1")
    assert {s: [p.relative_to(root).as_posix() for p in ps] for s, ps in splits.items()} == {
        "train": ["v2.1/train-00000-of-00002.parquet", "v2.1/train-00001-of-00002.parquet"],
        "validation": ["v2.1/validation-00000-of-00001.parquet"]}
    if card:
        with pytest.raises(ResetkitError, match=r"several configs \(v1\.1, v2\.1\)"):
            reader.local_splits(root)
        with pytest.raises(ResetkitError, match=r"no config 'v3' \(its configs: v1\.1, v2\.1\)"):
            reader.local_splits(root, config="v3")


def test_build_from_a_snapshot_folder_uses_v2_1_only(store, tmp_path):
    from builders.corpora import sample_sources

    root = _marco_snapshot(tmp_path / "ms_marco")
    specs = sample_sources("cd-train")
    v = build_corpus(store, "cd-train", {**specs, "ms_marco": str(root)})
    ours = [r for r in v.read("train").to_pylist() if r["source"] == "ms_marco"]
    single = tmp_path / "single"
    single.mkdir()
    (single / "train.parquet").write_bytes((root / "v2.1" / "train-00000-of-00002.parquet").read_bytes())
    ref = build_corpus(store, "cd-train", {**specs, "ms_marco": str(specs["ms_marco"])}, name="ref")
    expected = [r for r in ref.read("train").to_pylist() if r["source"] == "ms_marco"]
    assert ours == expected and ours and not any("v1.1" in r["question"] for r in ours)


def test_hub_layout_rules():
    names = ["README.md", "data/train-00000-of-00002-abc.parquet", "data/train-00001-of-00002-abc.parquet",
             "data/validation-00000-of-00001-def.parquet", "2023-04-12_oasst_all.messages.jsonl.gz"]
    assert reader.layout(names, [], None, "x") == {
        "train": names[1:3], "validation": [names[3]]}
    assert reader.layout(["databricks-dolly-15k.jsonl", "README.md"], [], None, "x") == {
        "train": ["databricks-dolly-15k.jsonl"]}    # no split named: every data file is train
    assert reader.layout(["v1.1/ms_marco-test.parquet", "v1.1/ms_marco-train.parquet"], [], "v1.1", "x") == {
        "test": ["v1.1/ms_marco-test.parquet"], "train": ["v1.1/ms_marco-train.parquet"]}
    configs = [{"config_name": "self_instruct", "data_files": "self_instruct/train-*"},
               {"config_name": "human_eval", "data_files": [{"split": "train", "path": ["human_eval/*.parquet"]}]}]
    files = ["self_instruct/train-00000-of-00001.parquet", "human_eval/train-00000-of-00001.parquet",
             "self_instruct/deep/train-x.parquet"]
    assert reader.layout(files, configs, "self_instruct", "x") == {"train": [files[0]]}   # * stays in its folder
    assert reader.layout(files, configs, "human_eval", "x") == {"train": [files[1]]}


def test_column_object_with_bad_bytes_is_one_line(tmp_path):
    path = tmp_path / "m.json"
    path.write_bytes(b'{"query": {"0": "a", "1": "b\xff"}, "query_id": {"0": 1, "1": 2}}')
    with pytest.raises(BadInputError) as exc:
        read_all(path, cols=MARCO_COLS[:2])
    assert "invalid bytes in UTF8 string" in str(exc.value) and "\n" not in str(exc.value)


def test_build_cd_train_from_the_publishers_single_object(store, tmp_path):
    """End to end: the reader's rows in the publisher's shape, through the MS MARCO adapter."""
    from builders.corpora import sample_sources

    rows = marco_rows(40)
    path = tmp_path / "train_v2.1.json.gz"
    write_column_object(path, rows, compress=".gz")
    v = build_corpus(store, "cd-train", {**sample_sources("cd-train"), "ms_marco": str(path)})
    got = [r for r in v.read("train").to_pylist() if r["source"] == "ms_marco"]
    assert [r["response"] for r in got] == [f"Well formed {i}." for i in range(0, 40, 4)]
    assert v.manifest["dropped"]["ms_marco"]["no_well_formed_answer"] == 30

"""The columnar fast path (builders.sources.columnar, Source.convert_table) must give exactly
what the row-by-row path gives: the same version, the same Parquet bytes, the same drop
counts -- on the committed samples and on inputs made to hit the places where Arrow and
Python could differ (Unicode whitespace, case, JSON escapes, array element boundaries,
OASST-1 label shapes).  Bad input must still be reported by the row path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builders.corpora import build_corpus, sample_sources
from builders.sources import columnar
from builders.sources.reader import Column
from resetkit.errors import BadInputError
from resetkit.store import Store


def _build(root: Path, specs: dict, monkeypatch, fast: bool, **options):
    """Build if-train into a fresh store with or without the fast path; returns
    (version, {file: sha256}, drops, number of splits the fast path read)."""
    calls = []
    real = columnar.read_split

    def spy(*args):
        table = real(*args) if fast else None
        calls.append(table is not None)
        return table
    monkeypatch.setattr(columnar, "read_split", spy)
    v = build_corpus(Store(root), "if-train", specs, **options)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((v.path / "data").glob("*"))}
    return v.version, files, v.manifest["dropped"], sum(calls)


def _same_both_ways(tmp_path, specs, monkeypatch, **options):
    fast = _build(tmp_path / "fast", specs, monkeypatch, True, **options)
    slow = _build(tmp_path / "slow", specs, monkeypatch, False, **options)
    assert fast[:3] == slow[:3]
    return fast


@pytest.mark.parametrize("options", [{}, {"template": "vicuna", "seed": 3, "dev_fraction": 0.3},
                                     {"template": "vicuna-paper", "limit": 4}])
def test_samples_give_identical_output_on_both_paths(tmp_path, monkeypatch, options):
    *_, fast_splits = _same_both_ways(tmp_path, sample_sources("if-train"), monkeypatch, **options)
    assert fast_splits == 4  # dolly, oasst1 train, sharegpt, self_instruct (oasst1 JSONL labels: row path)


WS = ["\u3000", "\xa0", "\x1c", "\x85", "\u2003", "\t", "\x0b"]


def _edge_files(tmp_path: Path) -> dict[str, str]:
    d = tmp_path / "in"
    d.mkdir()
    words11 = "one two three four five six seven eight nine ten eleven"
    dolly = [
        {"instruction": "Say  Hello\u3000World", "context": None, "response": "hi", "category": 'q"uo\\te\n\x01'},
        {"instruction": "\u2003 say hello world \x1c", "context": " \xa0 ", "response": "hi"},  # duplicate of row 1
        {"instruction": "İstanbul ß {braces} %s", "context": "", "response": "resp ✓", "category": "🙂"},
        {"instruction": "has context", "context": "x", "response": "r"},
        {"instruction": " \x85 ", "context": "", "response": "r"},
        {"instruction": "empty response", "response": "\t\u3000"},
    ] + [{"instruction": f"q{i}{w}x", "context": "", "response": f"r{i}", "category": None} for i, w in enumerate(WS)]
    (d / "dolly.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=i % 2 == 0) for i, r in enumerate(dolly))
                                   + "\n\n", encoding="utf-8")
    share = [
        {"instruction": "SAY hello world", "input": "", "output": "hi"},  # 1 word: dropped
        {"instruction": "ten words", "input": "", "output": words11.rsplit(" ", 1)[0]},
        {"instruction": "eleven words", "input": None, "output": words11.replace(" ", "\u2003", 3)},
        {"instruction": "tricky }, text", "input": "", "extra": {"nested": {"a": [1, {"b": "},"}]}},
         "output": "a },\n b }, c " + words11},
        {"instruction": "has input", "input": "ctx", "output": words11},
        {"instruction": "\u3000", "input": "", "output": words11},
        {"instruction": "say hello world", "input": "", "output": "hi " + words11},
        {"instruction": "Eleven\u3000 WORDS", "input": "", "output": words11.replace(" ", "\u2003", 3)},  # duplicate
    ]
    (d / "sharegpt.json").write_text(json.dumps(share, indent=2, ensure_ascii=False), encoding="utf-8")
    si = [
        {"prompt": "Write a poem.\n\nInput: about cats\n\nOutput:", "completion": " Meow.<|endoftext|>"},
        {"prompt": "Do X\u2003\nInput\u3000:\tY\nInput: Z\n Output :  \u3000", "completion": "done"},
        {"prompt": "Output:", "completion": "x"},
        {"prompt": "Only instruction\nOutput:", "completion": "<|endoftext|>"},
        {"prompt": "Keep\nOutput: inside\nOutput:", "completion": "y<|endoftext|>z"},
        {"prompt": "\nInput: starts with input\nOutput:", "completion": "w"},
    ]
    (d / "self_instruct.jsonl").write_text("\n".join(json.dumps(r) for r in si) + "\n", encoding="utf-8")
    labels = pa.struct([("name", pa.list_(pa.string())), ("value", pa.list_(pa.float64())),
                        ("count", pa.list_(pa.int32()))])
    msgs = [  # (id, parent, role, text, labels)
        ("r0", "p1", "assistant", "reply before its parent", {"name": ["quality"], "value": [0.9], "count": [2]}),
        ("p1", None, "prompter", "  Parent one ", None),
        ("r1", "p1", "assistant", "good", {"name": ["spam", "quality"], "value": [0.0, 0.75], "count": [3, 2]}),
        ("r2", "p1", "assistant", "exactly half", {"name": ["quality"], "value": [0.5], "count": [5]}),
        ("r3", "p1", "assistant", "one annotator", {"name": ["quality"], "value": [0.9], "count": [1]}),
        ("r4", "p1", "assistant", "no labels", None),
        ("r5", "p1", "assistant", "short values", {"name": ["spam", "quality"], "value": [0.1], "count": [2, 2]}),
        ("r6", "p1", "assistant", "null count", {"name": ["quality"], "value": [0.9], "count": [None]}),
        ("r7", "p1", "assistant", "nan", {"name": ["quality"], "value": [float("nan")], "count": [2]}),
        ("r8", "px", "assistant", "orphan", {"name": ["quality"], "value": [0.9], "count": [2]}),
        ("r9", "", "assistant", "empty parent id", {"name": ["quality"], "value": [0.9], "count": [2]}),
        ("p2", None, "prompter", "\u3000", None),
        ("r10", "p2", "assistant", "empty instruction", {"name": ["quality"], "value": [0.9], "count": [2]}),
        ("r11", "p1", "assistant", " \x85", {"name": ["quality", "quality"], "value": [0.9, 0.1], "count": [2, 1]}),
        ("r12", "p1", "moderator", "unknown role", None),
        ("p1", None, "prompter", "Parent one, again", None),
        ("r13", "p1", "assistant", "names null", {"name": None, "value": [0.9], "count": [2]}),
    ]
    (d / "oasst1").mkdir()
    pq.write_table(pa.table({
        "message_id": [m[0] for m in msgs], "parent_id": pa.array([m[1] for m in msgs], pa.string()),
        "text": [m[3] for m in msgs], "role": [m[2] for m in msgs],
        "lang": ["en"] * len(msgs), "rank": pa.array(list(range(len(msgs))), pa.int32()),
        "labels": pa.array([m[4] for m in msgs], labels)}), d / "oasst1" / "train.parquet")
    return {"dolly": str(d / "dolly.jsonl"), "sharegpt": str(d / "sharegpt.json"),
            "self_instruct": str(d / "self_instruct.jsonl"), "oasst1": str(d / "oasst1")}


def test_edge_cases_give_identical_output_on_both_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(columnar, "GROUP_CHARS", 8)  # many JSON-array groups, some cut mid-element
    *_, fast_splits = _same_both_ways(tmp_path, _edge_files(tmp_path), monkeypatch, dev_fraction=0.4)
    assert fast_splits == 4
    (tmp_path / "again-in").mkdir()
    _, _, drops, _ = _build(tmp_path / "again", _edge_files(tmp_path / "again-in"), monkeypatch, True)
    assert drops["dolly"]["duplicate"] == 1 and drops["sharegpt"]["duplicate"] == 1
    assert drops["oasst1"]["quality_not_above_0.5"] == 2  # exactly 0.5, and NaN
    assert drops["self_instruct"] == {"empty_instruction": 2, "empty_response": 1}


def test_json_array_groups_cut_only_between_elements(tmp_path, monkeypatch):
    rows = [{"instruction": f"i{k} }},\n{{", "input": "", "output": "o", "x": {"y": {"z": "},"}}} for k in range(30)]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    cols = [Column("instruction"), Column("input", required=False), Column("output")]
    stream = columnar._read_json_array_stream(path, cols)
    for size in (1, 7, 100, 1 << 20):
        monkeypatch.setattr(columnar, "GROUP_CHARS", size)
        table = columnar._read_json_array_groups(path, cols)
        if table is not None:  # None only when cuts kept missing (then the stream reader runs)
            assert table.equals(stream)
    monkeypatch.setattr(columnar, "GROUP_CHARS", 1 << 20)
    assert columnar._read_json_array_groups(path, cols).num_rows == 30
    path.write_text("[]", encoding="utf-8")
    assert columnar._read_json_array_groups(path, cols).num_rows == 0


@pytest.mark.parametrize("text, where", [
    ('[{"instruction": "a", "output": "b"},\n{"instruction": 3, "output": "b"}]', "line 2, column 'instruction'"),
    ('[{"instruction": "a", "output": "b"},\n{"instruction": "a", "output": "b"},]', "line 2"),
    ('[{"instruction": "a", "output": "b"},\n{"output": "b"}]', "line 2, column 'instruction'"),
])
def test_bad_json_array_is_reported_by_the_row_path(tmp_path, text, where):
    path = tmp_path / "sharegpt.json"
    path.write_text(text, encoding="utf-8")
    specs = {**sample_sources("if-train"), "sharegpt": str(path)}
    with pytest.raises(BadInputError, match=where.replace("(", r"\(")):
        build_corpus(Store(tmp_path / "s"), "if-train", specs)


def test_bad_jsonl_falls_back_and_skip_mode_counts_the_same(tmp_path, monkeypatch):
    path = tmp_path / "dolly.jsonl"
    path.write_text('{"instruction": "a", "response": "b"} {"instruction": "c", "response": "d"}\n'
                    '{"instruction": "e", "response": "f"}\n{"instruction": "g", "response": "h", "instruction": "i"}\n'
                    '{"instruction": "j", "response": "k", "category": 5}\n', encoding="utf-8")
    specs = {**sample_sources("if-train"), "dolly": str(path)}
    with pytest.raises(BadInputError, match="dolly.jsonl, line 1: not valid JSON"):
        build_corpus(Store(tmp_path / "s"), "if-train", specs)
    version, files, drops, fast_splits = _same_both_ways(tmp_path, specs, monkeypatch, on_bad_rows="skip")
    assert drops["dolly"]["bad_row:bad_json"] == 1 and drops["dolly"]["bad_row:type:category"] == 1
    assert fast_splits == 3  # dolly went the row path


def test_python_whitespace_class_matches_str_isspace():
    """RE2 with PY_SPACE_CLASS matches exactly the characters Python's \\s and str.split() use."""
    import pyarrow.compute as pc

    chars = [chr(c) for c in range(0x3100)]
    matched = pc.match_substring_regex(pa.array(chars), "^" + columnar.PY_SPACE_CLASS + "$").to_pylist()
    assert [c for c, m in zip(chars, matched) if m] == [c for c in chars if c.isspace()]
    assert "\x1c" in columnar.PY_SPACE and "\u3000" in columnar.PY_SPACE and "\u200b" not in columnar.PY_SPACE


def test_background_writes_match_and_errors_propagate(tmp_path, monkeypatch):
    """A tiny FLUSH_ROWS queues many background writes: the files still match the row path
    (at the same FLUSH_ROWS, since row groups follow it), a write error surfaces, and a build
    error is not masked by the queued writes."""
    import builders.corpora.writer as writer
    from resetkit.store import VersionWriter

    monkeypatch.setattr(writer, "FLUSH_ROWS", 2)
    monkeypatch.setattr(writer, "MAX_INFLIGHT", 1)
    _same_both_ways(tmp_path, sample_sources("if-train"), monkeypatch)

    real_write, calls = VersionWriter.write, []

    def failing_write(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_write(self, *args, **kwargs)
    monkeypatch.setattr(VersionWriter, "write", failing_write)
    store = Store(tmp_path / "err")
    with pytest.raises(OSError, match="disk full"):
        build_corpus(store, "if-train", sample_sources("if-train"))
    assert not store.exists("if-train")

    monkeypatch.setattr(VersionWriter, "write", real_write)
    bad = tmp_path / "self_instruct.jsonl"  # the last source: earlier sources' writes are queued
    bad.write_text('{"prompt": "ok\\nOutput:", "completion": "x"}\n{"prompt": 5, "completion": "x"}\n')
    with pytest.raises(BadInputError, match="line 2, column 'prompt'"):
        build_corpus(store, "if-train", {**sample_sources("if-train"), "self_instruct": str(bad)})
    assert not store.exists("if-train")


def test_parquet_large_strings_give_identical_output(tmp_path, monkeypatch):
    files = _edge_files(tmp_path)
    rows = [json.loads(line) for line in Path(files["dolly"]).read_text(encoding="utf-8").split("\n") if line]
    path = tmp_path / "dolly.parquet"
    pq.write_table(pa.table({k: pa.array([r.get(k) for r in rows], pa.large_string())
                             for k in ("instruction", "context", "response", "category")}), path)
    *_, fast_splits = _same_both_ways(tmp_path, {**files, "dolly": str(path)}, monkeypatch)
    assert fast_splits == 4


@pytest.mark.parametrize("comp", [".gz", ".zst", ".xz", ".bz2"])
def test_compressed_inputs_take_the_columnar_path_with_identical_output(tmp_path, monkeypatch, comp):
    """JSONL and a JSON array, compressed, give the same version as the plain files, and the
    JSONL still takes the fast path (read block by block from the decompressing stream)."""
    import bz2
    import gzip
    import lzma

    import zstandard

    pack = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
            ".zst": zstandard.ZstdCompressor().compress}[comp]
    plain = sample_sources("if-train")
    packed = dict(plain)
    for name in ("dolly", "sharegpt", "self_instruct"):
        src = Path(plain[name])
        dst = tmp_path / (src.name + comp)
        dst.write_bytes(pack(src.read_bytes()))
        packed[name] = str(dst)
    a = _build(tmp_path / "plain", plain, monkeypatch, True)
    b = _same_both_ways(tmp_path / "packed", packed, monkeypatch)
    assert a[1:3] == b[1:3] and b[3] == 4


def test_invalid_utf8_is_never_vouched_for(tmp_path):
    """Arrow's JSON and Parquet readers take any bytes as text: the fast path checks the
    UTF-8 of every table and hands bad input to the row path (which names or skips the row)."""
    cols = [Column("instruction"), Column("response")]
    good = b'{"instruction": "a", "response": "b"}\n'
    path = tmp_path / "d.jsonl"
    path.write_bytes(good * 3)
    assert columnar.read_split([path], cols, None).num_rows == 3
    path.write_bytes(good + b'{"instruction": "a\xff", "response": "b"}\n' + good)
    assert columnar.read_split([path], cols, None) is None
    path.write_bytes(good + b'{"instruction": "lone \\ud800", "response": "b"}\n')
    assert columnar.read_split([path], cols, None) is None
    arr = pa.StringArray.from_buffers(2, pa.py_buffer(pa.array([0, 1, 3], pa.int32()).buffers()[1]),
                                      pa.py_buffer(b"a\xc3("))
    pq.write_table(pa.table({"instruction": arr, "response": ["x", "y"]}), tmp_path / "d.parquet")
    assert columnar.read_split([tmp_path / "d.parquet"], cols, None) is None
    for text in (b"", b'{"instruction": "a", "response": "b"} {"instruction": "c", "response": "d"}\n'):
        path.write_bytes(text)   # empty, and two objects on one line: the row path decides
        assert columnar.read_split([path], cols, None) is None

"""Corpus builds end to end: Hub-loadable layout, determinism, bad rows, kills, names, cards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from builders.corpora import build_all_samples, build_corpus, sample_sources, source_set
from resetkit.errors import BadInputError, ResetkitError
from resetkit.store import Store


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_all_samples(Store(tmp_path_factory.mktemp("store")))


def test_load_dataset_loads_every_corpus_with_its_splits(built):
    import datasets

    expected = {"if-train": {"train", "validation"}, "if-eval": {"test"},
                "cd-train": {"train", "validation", "test"}, "cd-eval": {"test"},
                "mtl": {"train", "validation"}, "reset-seed": {"train"}}
    for corpus, version in built.items():
        ds = datasets.load_dataset(str(version.path))
        assert set(ds) == expected[corpus], corpus
        for split, n in version.num_rows().items():
            assert len(ds[split]) == n > 0, (corpus, split)
        assert ds[next(iter(ds))].column_names[:3] == ["id", "source", "objective"]


def test_rebuild_is_identical_in_another_store(built, tmp_path):
    again = build_all_samples(Store(tmp_path / "other"))
    for corpus, v in built.items():
        w = again[corpus]
        assert w.version == v.version, corpus
        assert [p.name for p in w.files()] == [p.name for p in v.files()]
        for a, b in zip(v.files(), w.files()):
            assert a.read_bytes() == b.read_bytes(), (corpus, a.name)


def test_config_and_inputs_change_the_version(built, store, tmp_path):
    specs = sample_sources("if-train")
    assert build_corpus(store, "if-train", specs, seed=1).version != built["if-train"].version
    dolly = tmp_path / "dolly.jsonl"
    dolly.write_text(open(specs["dolly"]).read() + json.dumps(
        {"instruction": "One more.", "context": "", "response": "Yes.", "category": "open_qa"}) + "\n")
    assert build_corpus(store, "if-train", {**specs, "dolly": str(dolly)}).version != built["if-train"].version


def test_card_header_and_manifest(built):
    v = built["if-train"]
    text = (v.path / "README.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["license"] == ["apache-2.0", "cc-by-sa-3.0", "unknown"]
    assert header["task_categories"] == ["text-generation"]
    assert "databricks/databricks-dolly-15k" in header["source_datasets"]
    assert header["pretty_name"] == "RESET instruction-following training set"
    assert "| Dolly-15K (`dolly`) |" in text and "quality_not_above_0.5" in text
    m = v.manifest
    assert m["inputs"]["dolly"]["sha256"] and m["inputs"]["oasst1"]["kind"] == "dir"
    assert m["source_rows"]["oasst1"] == {"train": 4, "validation": 2}
    cd = yaml.safe_load((built["cd-train"].path / "README.md").read_text().split("---")[1])
    assert "cc-by-sa-3.0" in cd["license"] and "question-answering" in cd["task_categories"]


def _bad_dolly(tmp_path):
    path = tmp_path / "dolly.jsonl"
    path.write_text("\n".join([
        json.dumps({"instruction": "Fine row.", "context": "", "response": "Fine.", "category": "open_qa"}),
        '{"instruction": "broken", ',
        json.dumps({"instruction": "Typed wrong.", "context": "", "response": 42}),
        json.dumps({"context": "", "response": "No instruction column."}),
    ]) + "\n")
    return path


def test_bad_rows_stop_the_build_naming_file_line_column(store, tmp_path):
    specs = {**sample_sources("if-train"), "dolly": str(_bad_dolly(tmp_path))}
    with pytest.raises(BadInputError) as exc:
        build_corpus(store, "if-train", specs)
    assert "dolly.jsonl, line 2: not valid JSON" in str(exc.value)
    assert not store.exists("if-train")
    p = tmp_path / "d2.jsonl"
    p.write_text(json.dumps({"instruction": "Typed wrong.", "context": "", "response": 42}) + "\n")
    with pytest.raises(BadInputError, match=r"d2.jsonl, line 1, column 'response': expected str"):
        build_corpus(store, "if-train", {**specs, "dolly": str(p)})


def test_skip_mode_counts_bad_rows_in_manifest_and_card(store, tmp_path):
    specs = {**sample_sources("if-train"), "dolly": str(_bad_dolly(tmp_path))}
    v = build_corpus(store, "if-train", specs, on_bad_rows="skip")
    d = v.manifest["dropped"]["dolly"]
    assert d == {"bad_row:bad_json": 1, "bad_row:type:response": 1, "bad_row:missing:instruction": 1}
    assert "bad_row:bad_json" in (v.path / "README.md").read_text()
    assert v.manifest["config"]["on_bad_rows"] == "skip"


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from resetkit.store import Store, VersionWriter
    from builders.corpora import build_corpus, sample_sources
    orig = VersionWriter.write
    def slow_write(self, *a, **k):
        n = orig(self, *a, **k)
        if n:
            open(sys.argv[2], "w").write("writing")
            time.sleep(60)
        return n
    VersionWriter.write = slow_write
    build_corpus(Store(sys.argv[1]), "cd-train", sample_sources("cd-train"), template="vicuna")
""")


def test_killed_build_leaves_no_version_and_keeps_earlier_ones(tmp_path):
    store = Store(tmp_path / "store")
    earlier = build_corpus(store, "cd-train", sample_sources("cd-train"))
    before = {p: p.read_bytes() for p in earlier.path.rglob("*") if p.is_file()}
    flag = tmp_path / "flag"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(store.root), str(flag)])
    try:
        deadline = time.time() + 60
        while not flag.exists():
            assert time.time() < deadline and proc.poll() is None, "the build never started writing"
            time.sleep(0.05)
        assert any(p.name.startswith(".tmp-") for p in (store.root / "cd-train").iterdir())  # mid-write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    fresh = Store(store.root)
    assert [v.version for v in fresh.versions("cd-train")] == [earlier.version]
    assert fresh.resolve("cd-train").version == earlier.version
    assert {p: p.read_bytes() for p in earlier.path.rglob("*") if p.is_file()} == before


def test_unknown_names_suggest_the_closest(store):
    with pytest.raises(ResetkitError, match="Did you mean 'cd-train'"):
        build_corpus(store, "cd-trian", {})
    with pytest.raises(ResetkitError, match="Did you mean 'sharegpt'"):
        build_corpus(store, "if-train", {"sharegtp": "x.json"})
    with pytest.raises(ResetkitError, match="not part of if-train"):
        build_corpus(store, "if-train", {"nq": "x.json"})
    with pytest.raises(ResetkitError, match="unknown config key"):
        build_corpus(store, "if-train", sample_sources("if-train"), templat="alpaca")


def test_if_eval_needs_if_train(store):
    with pytest.raises(ResetkitError, match="has no if-train"):
        build_corpus(store, "if-eval", sample_sources("if-eval"))


def test_cd_eval_without_cd_train_says_so(store):
    v = build_corpus(store, "cd-eval", sample_sources("cd-eval"))
    assert v.manifest["parents"] == [] and "no overlap check" in (v.path / "README.md").read_text()
    assert "seen_in_training" not in v.manifest["dropped"].get("searchqa", {})


def test_limit_reads_at_most_n_rows_per_source_and_split(store):
    v = build_corpus(store, "cd-train", sample_sources("cd-train"), limit=2)
    rows = v.read().to_pylist()
    for src in source_set("cd-train"):
        for split in ("train", "validation", "test"):
            assert sum(r["source"] == src and r["split"] == split for r in rows) <= 2
    assert v.manifest["config"]["limit"] == 2


def test_name_override(store):
    v = build_corpus(store, "cd-train", sample_sources("cd-train"), name="cd-train-small", limit=1)
    assert v.name == "cd-train-small" and store.exists("cd-train-small") and not store.exists("cd-train")


def test_single_files_give_only_the_train_split_and_load(store):
    import datasets

    from builders.samples.make_samples import HERE

    specs = {"nq": str(HERE / "nq" / "dev.jsonl"), "ms_marco": str(HERE / "ms_marco" / "train.parquet"),
             "cnn_dailymail": str(HERE / "cnn_dailymail" / "test.csv")}
    v = build_corpus(store, "cd-train", specs)
    assert list(v.num_rows()) == ["train"]       # no empty validation/test files
    ds = datasets.load_dataset(str(v.path))
    assert list(ds) == ["train"] and len(ds["train"]) == v.num_rows()["train"]


def test_no_surviving_example_is_a_clear_error(store, tmp_path):
    empty = tmp_path / "ms.jsonl"
    empty.write_text(json.dumps({"query": "q", "query_id": 1, "passages": {"passage_text": ["p"], "is_selected": [1]},
                                 "wellFormedAnswers": ["[]"]}) + "\n")
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"question": "q", "answers": [], "ctxs": []}) + "\n")
    cnn = tmp_path / "cnn.csv"
    cnn.write_text("article,highlights,id\nsome text,,1\n")
    with pytest.raises(ResetkitError, match=r"no example survived the rules \(cnn_dailymail: empty_summary=1; "
                                            r"ms_marco: no_well_formed_answer=1; nq: no_answer=1\)"):
        build_corpus(store, "cd-train", {"nq": str(one), "ms_marco": str(empty), "cnn_dailymail": str(cnn)})
    assert not store.exists("cd-train")


# -- issue 12, item 1: --only ------------------------------------------------------------
def test_only_builds_from_the_named_sources_alone(store):
    """Without --only every other source would load from the Hub (offline: an error)."""
    specs = sample_sources("if-train")
    v = build_corpus(store, "if-train", {"dolly": specs["dolly"], "self_instruct": specs["self_instruct"]},
                     only=["self_instruct", "dolly"])
    m = v.manifest
    assert list(m["inputs"]) == ["dolly", "self_instruct"]           # the corpus's order, not --only's
    assert set(m["source_rows"]) == {"dolly", "self_instruct"}
    assert set(m["dropped"]) <= {"dolly", "self_instruct"}
    assert m["config"]["sources"] == ["dolly", "self_instruct"]
    assert set(v.read().column("source").to_pylist()) == {"dolly", "self_instruct"}
    header = yaml.safe_load((v.path / "README.md").read_text().split("---")[1])
    assert header["source_datasets"] == ["databricks/databricks-dolly-15k", "yizhongw/self_instruct"]
    card = (v.path / "README.md").read_text()
    assert "(`dolly`)" in card and "(`oasst1`)" not in card and "(`sharegpt`)" not in card
    # a subset is its own dataset version; the same subset again is the same version
    one = build_corpus(store, "if-train", {"dolly": specs["dolly"]}, only=["dolly"])
    assert one.version != v.version and one.manifest["config"]["sources"] == ["dolly"]
    assert build_corpus(store, "if-train", {"dolly": specs["dolly"]}, only=["dolly"]).version == one.version
    full = build_corpus(store, "if-train", specs)
    assert "sources" not in full.manifest["config"]
    assert build_corpus(store, "if-train", specs, only=list(specs)).version == full.version   # all = no --only


def test_only_names_are_checked(store):
    specs = sample_sources("if-train")
    with pytest.raises(ResetkitError, match="Did you mean 'self_instruct'"):
        build_corpus(store, "if-train", {}, only=["self_instrct"])
    with pytest.raises(ResetkitError, match="'nq' is not part of if-train"):
        build_corpus(store, "if-train", {}, only=["dolly", "nq"])
    with pytest.raises(ResetkitError, match="--source oasst1 is given but 'oasst1' is not in --only"):
        build_corpus(store, "if-train", {"dolly": specs["dolly"], "oasst1": specs["oasst1"]}, only=["dolly"])
    with pytest.raises(ResetkitError, match="built from other corpora"):
        build_corpus(store, "mtl", {}, only=["dolly"])


def test_offline_hub_default_suggests_only_and_source(store):
    specs = sample_sources("cd-train")
    with pytest.raises(ResetkitError) as exc:
        build_corpus(store, "cd-train", {"ms_marco": specs["ms_marco"], "nq": specs["nq"]})
    msg = str(exc.value)
    assert "--source cnn_dailymail=PATH" in msg and "--only nq,ms_marco" in msg
    with pytest.raises(ResetkitError, match=r"source 'nq' has no Hub id.*--only ms_marco"):
        build_corpus(store, "cd-train", {"ms_marco": specs["ms_marco"]})


# -- issue 12, item 8: nothing left of a source is never a silent success -----------------
def test_a_source_whose_every_row_is_skipped_fails_the_build(store, tmp_path):
    build_corpus(store, "if-train", sample_sources("if-train"))
    bad = tmp_path / "question.jsonl"  # neither 'turns' nor 'text': no Vicuna form
    bad.write_text("".join(json.dumps({"question_id": i, "prompt": f"q{i}", "category": "generic"}) + "\n"
                           for i in range(3)))
    specs = {**sample_sources("if-eval"), "vicuna": str(bad)}
    with pytest.raises(ResetkitError, match=r"vicuna: no row survived, 3 were skipped as malformed "
                                            r"\(bad_row:missing:turns=3\)"):
        build_corpus(store, "if-eval", specs, on_bad_rows="skip")
    with pytest.raises(BadInputError, match=r"question.jsonl, line 1, column 'turns': required column is missing"):
        build_corpus(store, "if-eval", specs)
    assert not store.exists("if-eval")


def test_an_empty_input_file_is_reported(store, tmp_path):
    empty = tmp_path / "dolly.jsonl"
    empty.write_text("")
    with pytest.raises(ResetkitError, match=r"dolly.jsonl: the file has no rows"):
        build_corpus(store, "if-train", {**sample_sources("if-train"), "dolly": str(empty)})
    folder = tmp_path / "wikisum"  # one empty split file in a folder of good ones
    folder.mkdir()
    for f in Path(sample_sources("cd-eval")["wikisum"]).iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "test.jsonl").write_text("\n\n")
    with pytest.raises(ResetkitError, match=r"test.jsonl: the file has no rows"):
        build_corpus(store, "cd-eval", {**sample_sources("cd-eval"), "wikisum": str(folder)})

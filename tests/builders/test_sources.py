"""Every paper rule of every source, on the sample edge cases (builders/samples/)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from builders.corpora import build_corpus, sample_sources
from builders.samples import make_samples
from builders.sources import SOURCES, get
from builders.sources.base import Context, mentions, pick_passages
from builders.sources.oasst1 import quality
from builders.sources.self_instruct import strip_scaffolding


def rows_of(version, split=None):
    return version.read(split).to_pylist()


def by_source(rows, source):
    return [r for r in rows if r["source"] == source]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from builders.corpora import build_all_samples
    from resetkit.store import Store

    return build_all_samples(Store(tmp_path_factory.mktemp("store")))


def test_samples_equal_generator_output(tmp_path):
    """The committed sample files are exactly what make_samples.py writes."""
    written = make_samples.make(tmp_path)
    for path in written:
        rel = path.relative_to(tmp_path)
        committed = make_samples.HERE / rel
        assert committed.is_file(), f"{rel} is not committed: run builders/samples/make_samples.py"
        if path.suffix == ".parquet":  # compare content (bytes can vary with the pyarrow build)
            assert pq.read_table(path).equals(pq.read_table(committed)), rel
        else:
            assert path.read_bytes() == committed.read_bytes(), rel
        assert committed.stat().st_size < 50_000


def test_registry_has_every_source_with_a_did_you_mean():
    assert set(SOURCES.names()) == {"dolly", "oasst1", "sharegpt", "self_instruct", "alpaca", "vicuna", "koala",
                                    "nq", "ms_marco", "cnn_dailymail", "bioasq", "searchqa", "wikisum"}
    with pytest.raises(Exception, match="Did you mean 'ms_marco'"):
        SOURCES.get("msmarco")


# -- Dolly ---------------------------------------------------------------------------------
def test_dolly_drops_context_and_empty(built):
    rows = by_source(rows_of(built["if-train"]), "dolly")
    instructions = {r["instruction"] for r in rows}
    assert "When was the bridge finished?" not in instructions       # closed_qa with [12] citations
    assert "Summarize this paragraph." not in instructions           # summarization category
    assert "Name a primary colour." in instructions                  # whitespace-only context = none
    assert all(r["context"] is None and r["passages"] == [] for r in rows)
    drops = built["if-train"].manifest["dropped"]["dolly"]
    assert drops == {"has_context": 3, "empty_instruction": 1, "empty_response": 1}
    assert json.loads(next(r for r in rows if r["instruction"] == "Name a primary colour.")["meta"]) == {
        "category": "open_qa"}


# -- OASST-1 -------------------------------------------------------------------------------
def test_oasst_quality_both_encodings():
    hub = {"name": ["spam", "quality"], "value": [0.1, 0.75], "count": [3, 2]}
    raw = {"spam": {"value": 0.1, "count": 3}, "quality": {"value": 0.75, "count": 2}}
    assert quality(hub) == quality(raw) == (0.75, 2)
    assert quality(None) == (None, 0)
    assert quality({"name": ["spam"], "value": [0.0], "count": [1]}) == (None, 0)


def test_oasst_rules(built):
    rows = by_source(rows_of(built["if-train"]), "oasst1")
    kept = {json.loads(r["meta"])["message_id"] for r in rows}
    # train (Hub parquet encoding): 0.75/3 in, exactly 0.5 out, one annotator out, 0.51 with two in,
    # reply before its parent in, follow-up turn in; validation (raw export encoding) likewise
    assert kept == {"a1", "a4", "a9", "a10", "va1", "va4"}
    d = built["if-train"].manifest["dropped"]["oasst1"]
    assert d["quality_not_above_0.5"] == 2          # a2 (train) and va2 (validation), both exactly 0.5
    assert d["quality_fewer_than_2_annotators"] == 2  # a3 and va3
    assert d["no_quality_label"] == 2               # a5 (labels null), a6 (no quality name)
    assert d["no_prompter_parent"] == 1 and d["empty_response"] == 1
    assert d["duplicate"] == 1                      # a11 repeats Dolly's example
    follow_up = next(r for r in rows if json.loads(r["meta"])["message_id"] == "a10")
    assert follow_up["instruction"] == "And what river runs through it?"
    va4 = next(r for r in rows if json.loads(r["meta"])["message_id"] == "va4")
    assert va4["split"] == "validation"


# -- ShareGPT ------------------------------------------------------------------------------
def test_sharegpt_word_threshold(built):
    rows = by_source(rows_of(built["if-train"]), "sharegpt")
    instr = {r["instruction"] for r in rows}
    assert "Describe a sunrise in eleven words." in instr          # 11 words: kept
    assert "Describe a sunset in ten words." not in instr           # exactly 10: dropped
    assert all(len(r["response"].split()) > 10 for r in rows)
    d = built["if-train"].manifest["dropped"]["sharegpt"]
    assert d["response_10_words_or_fewer"] == 1 and d["has_context"] == 1


def test_sharegpt_counting_is_whitespace_split():
    src = get("sharegpt")
    ctx = Context()
    assert src.convert({"instruction": "x", "output": "a\tb\nc d e f g h i j"}, ctx) == "response_10_words_or_fewer"
    assert isinstance(src.convert({"instruction": "x", "output": "a\tb\nc d e f g h i j k"}, ctx), dict)


# -- Self-Instruct -------------------------------------------------------------------------
@pytest.mark.parametrize("prompt,completion,expected", [
    ("Make a list.\n\nOutput:", " a, b<|endoftext|>", ("Make a list.", "", "a, b")),
    ("Classify it.\n\nInput: I love it.\n\nOutput:", " Positive<|endoftext|>", ("Classify it.", "I love it.", "Positive")),
    ("Convert.\nInput: 100 C\nOutput:", "212 F<|endoftext|>", ("Convert.", "100 C", "212 F")),
    ("Antonym of happy.\nOutput:", "sad", ("Antonym of happy.", "", "sad")),
    ("Tweet.\n\nOutput:", " <|endoftext|>", ("Tweet.", "", "")),
])
def test_self_instruct_scaffolding(prompt, completion, expected):
    assert strip_scaffolding(prompt, completion) == expected


def test_self_instruct_rows(built):
    rows = by_source(rows_of(built["if-train"]), "self_instruct")
    assert all("Output:" not in r["instruction"] and "<|endoftext|>" not in r["response"] for r in rows)
    assert any(r["instruction"] == "Classify the sentiment of the sentence.\nI love this phone." for r in rows)
    d = built["if-train"].manifest["dropped"]["self_instruct"]
    assert d == {"empty_response": 1, "empty_instruction": 1, "duplicate": 1}


# -- de-duplication across sources ---------------------------------------------------------
def test_if_train_unique_across_sources(built):
    rows = rows_of(built["if-train"])
    dup = [r for r in rows if r["instruction"].lower().strip() == make_samples.DUP_INSTRUCTION.lower()]
    assert len(dup) == 1 and dup[0]["source"] == "dolly"    # first source wins
    keys = [(" ".join(r["instruction"].lower().split()), " ".join(r["response"].lower().split())) for r in rows]
    assert len(keys) == len(set(keys))
    assert len({r["id"] for r in rows}) == len(rows)
    assert built["if-train"].manifest["dropped"]["sharegpt"]["duplicate"] == 2
    assert built["if-train"].manifest["dropped"]["sharegpt"]["duplicate_id"] == 1


def test_if_train_has_validation(built):
    n = built["if-train"].num_rows()
    assert n["validation"] >= 2 and n["train"] > 10


# -- evaluation sets: unseen only ----------------------------------------------------------
def test_if_eval_unseen_and_unique(built):
    rows = rows_of(built["if-eval"], "test")
    instr = [r["instruction"] for r in rows]
    assert make_samples.SEEN_INSTRUCTION not in instr and make_samples.DUP_INSTRUCTION not in instr
    assert len(instr) == len(set(instr))
    d = built["if-eval"].manifest["dropped"]
    assert d["alpaca"] == {"has_context": 1, "seen_in_training": 1, "duplicate": 1, "empty_response": 1}
    assert d["vicuna"] == {"seen_in_training": 1, "empty_instruction": 1}
    assert d["koala"] == {"empty_instruction": 1, "duplicate": 1}
    vic = by_source(rows, "vicuna")
    assert vic[0]["response"] is None and vic[0]["references"] == []
    assert built["if-eval"].manifest["parents"][0]["name"] == "if-train"


# -- DPR-format QA (NQ, BioASQ, SearchQA) --------------------------------------------------
def test_dpr_passage_rules(built):
    rows = by_source(rows_of(built["cd-train"], "train"), "nq")
    assert all(1 <= len(r["passages"]) <= 5 for r in rows)
    assert all(r["context"] == "\n".join(r["passages"]) for r in rows)
    assert all(any(mentions(p, r["references"]) for p in r["passages"]) for r in rows)
    sixth = next(r for r in rows if r["question"] == "when did the first moon landing happen")
    assert len(sixth["passages"]) == 5 and "Only here: 1969" in sixth["passages"][-1]   # swapped in
    computed = next(r for r in rows if r["question"] == "who painted the mona lisa")
    assert "Leonardo da Vinci" in computed["passages"][-1]                              # no has_answer flags
    short = next(r for r in rows if r["question"] == "how many legs does a spider have")
    assert len(short["passages"]) == 2
    d = built["cd-train"].manifest["dropped"]["nq"]
    assert d == {"no_gold_passage": 1, "no_answer": 1}
    r = rows[0]
    assert r["task"] == "extractive_qa" and r["objective"] == "faithfulness"
    assert r["prompt"].index("Question: ") < r["prompt"].index("Passage: ")


def test_gold_only_in_sixth_passage_drop_policy(store):
    v = build_corpus(store, "cd-train", sample_sources("cd-train"), gold_passage="drop")
    qs = {r["question"] for r in v.read("train").to_pylist()}
    assert "when did the first moon landing happen" not in qs
    assert v.manifest["dropped"]["nq"]["gold_beyond_max_passages"] == 1
    assert v.manifest["dropped"]["ms_marco"]["gold_beyond_max_passages"] == 1


def test_pick_passages_unit():
    ctx = Context()
    texts = [f"p{i}" for i in range(8)]
    assert pick_passages(texts, [True] + [False] * 7, ctx) == texts[:5]
    assert pick_passages(texts, [False] * 5 + [True, True, False], ctx) == texts[:4] + ["p5"]
    assert pick_passages(texts, [False] * 8, ctx) == "no_gold_passage"
    assert pick_passages(texts, [False] * 5 + [True] + [False] * 2, Context(gold_passage="drop")) == \
        "gold_beyond_max_passages"
    assert pick_passages(texts[:2], [False, True], ctx) == texts[:2]


def test_mentions_is_normalised_and_whole_word():
    assert mentions("It was LEONARDO da Vinci, as records show.", ["Leonardo da Vinci"])
    assert not mentions("Limassol is a city.", ["Lima"])


# -- MS MARCO ------------------------------------------------------------------------------
def test_ms_marco_well_formed_answers(built):
    rows = by_source(rows_of(built["cd-train"], "train"), "ms_marco")
    qids = {json.loads(r["meta"])["query_id"] for r in rows}
    assert qids == {19001, 19005, 19006, 19008}   # [], [""], ["[]"] out; no selected passage out
    marathon = next(r for r in rows if json.loads(r["meta"])["query_id"] == 19005)
    assert marathon["references"] == ["A marathon is 42.195 kilometres long."]
    assert marathon["response"] == marathon["references"][0]
    sixth = next(r for r in rows if json.loads(r["meta"])["query_id"] == 19006)
    assert len(sixth["passages"]) == 5 and sixth["passages"][-1].startswith("Passage 5")
    assert all(len(r["passages"]) <= 5 for r in rows) and rows[0]["task"] == "abstractive_qa"
    d = built["cd-train"].manifest["dropped"]["ms_marco"]
    assert d == {"no_well_formed_answer": 5, "no_gold_passage": 1}   # 3 train + 1 validation + 1 test


def test_ms_marco_vectorised_prefilter_matches_python_path(store, tmp_path):
    """Parquet input takes the vectorised well-formed filter, JSONL the per-row one: same result."""
    src = make_samples.HERE / "ms_marco"
    as_jsonl = tmp_path / "ms_marco"
    as_jsonl.mkdir()
    for f in src.iterdir():
        rows = pq.read_table(f).to_pylist() if f.suffix == ".parquet" else \
            [json.loads(x) for x in f.read_text().splitlines()]
        (as_jsonl / (f.stem + ".jsonl")).write_text("".join(json.dumps(r) + "\n" for r in rows))
    specs = sample_sources("cd-train")
    a = build_corpus(store, "cd-train", specs, name="a")
    b = build_corpus(store, "cd-train", {**specs, "ms_marco": str(as_jsonl)}, name="b")
    assert a.manifest["dropped"]["ms_marco"] == b.manifest["dropped"]["ms_marco"]
    assert a.read().drop(["meta"]).equals(b.read().drop(["meta"]))


# -- summarisation ------------------------------------------------------------------------
def test_cnn_dailymail_and_wikisum(built):
    rows = by_source(rows_of(built["cd-train"]), "cnn_dailymail")
    assert {r["split"] for r in rows} == {"train", "validation", "test"}
    r = rows[0]
    assert r["context"] == r["passages"][0] and r["question"] is None and r["task"] == "summarization"
    assert "\n" in r["response"]                          # highlights stay newline-joined
    assert r["prompt"].startswith("Below is an instruction") and r["context"] in r["prompt"]
    assert built["cd-train"].manifest["dropped"]["cnn_dailymail"] == {"empty_summary": 1}
    wiki = by_source(rows_of(built["cd-eval"], "test"), "wikisum")
    assert make_samples.SHARED_ARTICLE not in {w["context"] for w in wiki}    # seen in cd-train
    assert built["cd-eval"].manifest["dropped"]["wikisum"] == {"seen_in_training": 1, "empty_summary": 1}


def test_cd_eval_unseen(built):
    rows = rows_of(built["cd-eval"], "test")
    assert make_samples.NQ_SHARED_QUESTION not in {r["question"] for r in rows}
    assert built["cd-eval"].manifest["dropped"]["searchqa"]["seen_in_training"] == 1
    assert {r["source"] for r in rows} == {"bioasq", "searchqa", "wikisum"}


def test_ids_are_stable_hashes(built, store):
    again = build_corpus(store, "cd-train", sample_sources("cd-train"))
    assert again.read().column("id").to_pylist() == built["cd-train"].read().column("id").to_pylist()
    ids = built["cd-train"].read().column("id").to_pylist()
    assert len(ids) == len(set(ids)) and all(len(i) == 16 for i in ids)


@pytest.mark.parametrize("name", ["dolly", "nq", "ms_marco", "cnn_dailymail", "wikisum"])
def test_every_source_declares_itself(name):
    src = get(name)
    assert src.rules and src.license and src.columns and (src.hub_id or src.where)
    assert Path(make_samples.HERE / make_samples.SAMPLE_PATHS[name]).exists()

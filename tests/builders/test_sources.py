"""Every paper rule of every source, on the sample edge cases (builders/samples/)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from builders.corpora import CORPORA, SOURCE_CORPORA, build_corpus, sample_sources, source_set
from builders.corpora.config import CONFIG_KEYS
from builders.samples import make_samples
from builders.sources import SOURCES, get
from builders.sources.base import Context, clean, mentions, pick_passages
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


def test_registry_gives_a_did_you_mean():
    with pytest.raises(Exception, match="Did you mean 'ms_marco'"):
        SOURCES.get("msmarco")


@pytest.mark.parametrize("name", SOURCES.names())
def test_every_source_feeds_its_corpus_with_rows_from_its_sample(built, name):
    """Every registered source (one module + one line in builders.sources.NAMES) is part of the
    corpus its ``role`` names, in registry order, and its sample gives that corpus rows."""
    src = get(name)
    assert src.name == name and src.role in SOURCE_CORPORA and name in source_set(src.role)
    assert by_source(rows_of(built[src.role]), name), f"no {name} rows in {src.role}"


@pytest.mark.parametrize("corpus", CORPORA.names())
def test_every_corpus_is_built_and_described(built, corpus):
    v = built[corpus]
    assert v.name == corpus and sum(v.num_rows().values()) > 0
    assert set(v.manifest["config"]) >= set(CONFIG_KEYS[corpus])
    assert (v.path / "README.md").read_text().startswith("---")


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
    assert vic[0]["response"] is None and vic[0]["refs"] == []
    assert built["if-eval"].manifest["parents"][0]["name"] == "if-train"


# -- DPR-format QA (NQ, BioASQ, SearchQA) --------------------------------------------------
def test_dpr_passage_rules(built):
    rows = by_source(rows_of(built["cd-train"], "train"), "nq")
    assert all(1 <= len(r["passages"]) <= 5 for r in rows)
    assert all(r["context"] == "\n".join(r["passages"]) for r in rows)
    assert all(any(mentions(p, r["refs"]) for p in r["passages"]) for r in rows)
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
    assert marathon["refs"] == ["A marathon is 42.195 kilometres long."]
    assert marathon["response"] == marathon["refs"][0]
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


@pytest.mark.parametrize("name", SOURCES.names())
def test_every_source_declares_itself(name):
    src = get(name)
    assert src.rules and src.license and src.columns and (src.hub_id or src.where)
    assert Path(make_samples.HERE / make_samples.SAMPLE_PATHS[name]).exists()


# == issue 12: the publishers' own forms =================================================
def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def if_train(store):
    """if-eval needs an if-train in the store."""
    return build_corpus(store, "if-train", sample_sources("if-train"))


# -- item 4: MS MARCO's documented row shape -----------------------------------------------
def _marco_publisher_rows():
    def passages(n, selected):
        return [{"is_selected": int(i == selected), "url": f"http://example.org/{i}",
                 "passage_text": f"Passage {i}: a corporation is a legal entity." if i == selected else
                 f"Passage {i} says something else."} for i in range(n)]
    return [
        {"answers": ["A legal entity."], "passages": passages(10, 1), "query": "what is a corporation",
         "query_id": 1, "query_type": "DESCRIPTION", "wellFormedAnswers": ["A corporation is a legal entity."]},
        {"answers": ["No Answer Present."], "passages": passages(3, -1), "query": "none here", "query_id": 2,
         "query_type": "DESCRIPTION", "wellFormedAnswers": "[]"},                        # the string "[]"
        {"answers": ["x"], "passages": passages(8, 6), "query": "gold in the seventh", "query_id": 3,
         "query_type": "ENTITY", "wellFormedAnswers": ["The gold is in the seventh passage."]},
        {"answers": ["y"], "passages": passages(4, 0), "query": "two answers", "query_id": 4,
         "query_type": "NUMERIC", "wellFormedAnswers": ["First answer.", " ", "Second answer."]},
    ]


def test_ms_marco_publisher_row_shape_row_path(store, tmp_path):
    path = _jsonl(tmp_path / "train_v2.1.jsonl", _marco_publisher_rows())
    v = build_corpus(store, "cd-train", {"ms_marco": path}, only=["ms_marco"])
    rows = {json.loads(r["meta"])["query_id"]: r for r in v.read().to_pylist()}
    assert set(rows) == {1, 3, 4}
    assert rows[1]["refs"] == ["A corporation is a legal entity."]
    assert len(rows[1]["passages"]) == 5 and rows[1]["passages"][1].startswith("Passage 1: a corporation")
    assert rows[3]["passages"][-1].startswith("Passage 6: a corporation")                # swapped in
    assert rows[4]["refs"] == ["First answer.", "Second answer."]
    assert json.loads(rows[1]["meta"])["query_type"] == "DESCRIPTION"
    assert v.manifest["dropped"]["ms_marco"] == {"no_well_formed_answer": 1}


def test_ms_marco_both_shapes_give_the_same_examples_on_both_paths(store, tmp_path):
    """Publisher rows as JSONL (row path) and as Parquet (list of structs + string "[]":
    the vectorised pre-filter) and the Hub's struct of lists as Parquet: same examples."""
    import pyarrow as pa

    rows = _marco_publisher_rows()
    jsonl = _jsonl(tmp_path / "a.jsonl", rows)
    # Parquet cannot mix a string and a list in one column: the publisher's string form throughout
    as_str = [{**r, "wellFormedAnswers": json.dumps(r["wellFormedAnswers"]) if isinstance(
        r["wellFormedAnswers"], list) else r["wellFormedAnswers"]} for r in rows]
    pq.write_table(pa.Table.from_pylist(as_str), tmp_path / "b.parquet")
    hub = [{**r, "wellFormedAnswers": [] if r["wellFormedAnswers"] == "[]" else r["wellFormedAnswers"],
            "passages": {k: [p[k] for p in r["passages"]] for k in ("is_selected", "passage_text", "url")}}
           for r in rows]
    pq.write_table(pa.Table.from_pylist(hub), tmp_path / "c.parquet")
    built = [build_corpus(store, "cd-train", {"ms_marco": str(p)}, only=["ms_marco"], name=f"m{i}")
             for i, p in enumerate([jsonl, tmp_path / "b.parquet", tmp_path / "c.parquet"])]
    first = built[0].read().drop(["meta"])
    for v in built[1:]:
        assert v.read().drop(["meta"]).equals(first)
        assert v.manifest["dropped"]["ms_marco"] == {"no_well_formed_answer": 1}


def test_ms_marco_prefilter_on_a_string_column():
    import pyarrow as pa

    batch = pa.record_batch({"wellFormedAnswers": pa.array(["[]", ' ["A."]', None, " [] ", '[""]'])})
    ctx = Context()
    _, keep = get("ms_marco").prefilter(batch, ctx)
    assert list(keep) == [1, 4] and ctx.drops == {"no_well_formed_answer": 3}   # '[""]' is judged per row


def test_ms_marco_bad_shapes_name_the_row(store, tmp_path):
    from resetkit.errors import BadInputError

    rows = _marco_publisher_rows()
    rows[2]["passages"] = "just text"
    rows[3]["wellFormedAnswers"] = "A sentence, not a list."
    path = _jsonl(tmp_path / "ms.jsonl", rows)
    with pytest.raises(BadInputError, match=r"ms.jsonl, line 3, column 'passages': expected a list of"):
        build_corpus(store, "cd-train", {"ms_marco": path}, only=["ms_marco"])
    v = build_corpus(store, "cd-train", {"ms_marco": path}, only=["ms_marco"], on_bad_rows="skip")
    assert v.manifest["dropped"]["ms_marco"] == {"no_well_formed_answer": 1, "bad_row:type:passages": 1,
                                                 "bad_row:type:wellFormedAnswers": 1}


# -- item 5: Self-Instruct's 13 upstream templates ------------------------------------------
def test_self_instruct_has_upstreams_13_templates():
    from builders.sources.self_instruct import TEMPLATES

    names = [n for n, _ in TEMPLATES]
    assert len(names) == len(set(names)) == 13
    assert sum("{input}" in n for n in names) == 7
    assert sum(n.startswith("Task: ") for n in names) == 3


CASES = [  # (instruction, input): single-line instructions, inputs of one or several lines
    ("Classify the sentiment of the sentence.", "I love this phone."),
    ("Summarize the following paragraphs.", "First paragraph here.\n\nSecond paragraph, longer.\nWith a line."),
    ("Fix the bug in this code.", "def f(x):\n    return x +\n\nprint(f(1))"),
    ("Answer the question: what is 2 + 2?", ""),
    ("Write a haiku about the sea.", ""),
]


@pytest.mark.parametrize("case", CASES)
def test_self_instruct_every_template_round_trips(case):
    """Render with upstream's own format strings (as prepare_for_finetuning.py does) and parse back."""
    from builders.sources.self_instruct import TEMPLATES, parse_prompt

    instruction, task_input = case
    for name, _ in TEMPLATES:
        if ("{input}" in name) != bool(task_input):
            continue  # upstream renders with-input templates only for rows with an input
        prompt = name.format(instruction=instruction, input=task_input)
        assert parse_prompt(prompt) == (instruction, task_input, name), name


def test_self_instruct_task_prefix_and_unlabelled_inputs_on_the_old_failures():
    from builders.sources.self_instruct import parse_prompt

    # what the old parser got wrong: "Task: " kept in the instruction, unlabelled inputs merged into it
    assert parse_prompt("Task: Sort the numbers.\n\n3, 1, 2\n\n") == (
        "Sort the numbers.", "3, 1, 2", "Task: {instruction}\n\n{input}\n\n")
    assert parse_prompt("Sort the numbers.\n3, 1, 2\n\n") == ("Sort the numbers.", "3, 1, 2",
                                                              "{instruction}\n{input}\n\n")
    assert parse_prompt("Task: Name a colour.\n\n") == ("Name a colour.", "", "Task: {instruction}\n\n")
    assert parse_prompt("Name a colour. Output:") == ("Name a colour.", "", "{instruction} Output:")
    assert parse_prompt("Odd prompt\n  Input :\tx\n Output : ") == ("Odd prompt", "x", None)   # lenient


def test_self_instruct_rows_keep_the_input_in_meta_and_count_it(store, tmp_path):
    rows = [
        {"prompt": "Task: Sort the numbers.\n\n3, 1, 2\n\n", "completion": "1, 2, 3<|endoftext|>"},
        {"prompt": "Name a colour.\n", "completion": "Blue.<|endoftext|>"},
        {"prompt": "x", "completion": "y", "instruction": "Translate to French.", "input": "cat",
         "output": "chat"},                                                          # the three columns win
        {"instruction": "Say hi.", "input": "", "output": "Hi!"},                   # the three-column form alone
        {"prompt": "Reverse the word.\n\ndrawer\n\nOutput:", "completion": " reward<|endoftext|>"},
    ]
    path = _jsonl(tmp_path / "si.jsonl", rows)
    v = build_corpus(store, "if-train", {"self_instruct": path}, only=["self_instruct"], dev_fraction=0)
    got = {r["instruction"]: (r["response"], json.loads(r["meta"])) for r in v.read().to_pylist()}
    assert got["Sort the numbers.\n3, 1, 2"] == ("1, 2, 3", {"input": "3, 1, 2",
                                                           "upstream_template": "Task: {instruction}\n\n{input}\n\n"})
    assert got["Name a colour."] == ("Blue.", {"input": None, "upstream_template": "{instruction}\n"})
    assert got["Translate to French.\ncat"] == ("chat", {"input": "cat", "upstream_template": "instruction/input/output"})
    assert got["Say hi."][1] == {"input": None, "upstream_template": "instruction/input/output"}
    assert got["Reverse the word.\ndrawer"][0] == "reward"
    assert v.manifest["source_notes"]["self_instruct"] == {"with_input": 3, "without_input": 2}
    assert "3 of 5 converted rows carry a task input" in (v.path / "README.md").read_text()


def test_self_instruct_row_and_columnar_paths_agree(store, tmp_path, monkeypatch):
    from builders import corpora
    from builders.sources.self_instruct import TEMPLATES

    rows = []
    for k, (instruction, task_input) in enumerate(CASES):
        for name, _ in TEMPLATES:
            if ("{input}" in name) == bool(task_input):
                rows.append({"prompt": name.format(instruction=f"{instruction} ({k} {len(rows)})", input=task_input),
                             "completion": f" out {len(rows)}<|endoftext|>"})
    rows += [{"prompt": "Odd prompt\n  Input :\tx\n Output : ", "completion": "z"},
             {"prompt": "Task: \n\n", "completion": "empty instruction"},
             {"instruction": "Fields.", "input": None, "output": "o"}]
    path = _jsonl(tmp_path / "si.jsonl", rows)
    fast = build_corpus(store, "if-train", {"self_instruct": path}, only=["self_instruct"], name="fast")
    monkeypatch.setattr(corpora.OpenSource, "example_tables", lambda *a, **k: None)
    slow = build_corpus(store, "if-train", {"self_instruct": path}, only=["self_instruct"], name="slow")
    assert fast.read().equals(slow.read()) and fast.num_rows()["train"] + fast.num_rows().get("validation", 0) \
        == len(rows) - 1
    assert fast.manifest["dropped"] == slow.manifest["dropped"] == {"self_instruct": {"empty_instruction": 1}}
    assert fast.manifest["source_notes"] == slow.manifest["source_notes"]


def test_self_instruct_row_with_neither_form_is_named(store, tmp_path):
    from resetkit.errors import BadInputError

    path = _jsonl(tmp_path / "si.jsonl", [{"prompt": "A\n", "completion": "b"}, {"text": "no known column"}])
    with pytest.raises(BadInputError, match=r"si.jsonl, line 2, column 'prompt': required column is missing"):
        build_corpus(store, "if-train", {"self_instruct": path}, only=["self_instruct"])


# -- item 6: OASST-1's full export ----------------------------------------------------------
def _oasst_all_rows():
    q = {"quality": {"value": 0.9, "count": 3}}

    def m(mid, parent, role, text, **kw):
        return {"message_id": mid, "parent_id": parent, "text": text, "role": role, "lang": "en",
                "review_count": 3, "review_result": True, "deleted": False, "synthetic": False,
                "tree_state": "ready_for_export", "message_tree_id": "t1", "rank": 0 if role == "assistant" else None,
                "labels": q if role == "assistant" else None, **kw}
    return [
        m("p1", None, "prompter", "What is a bridge?"),
        m("a1", "p1", "assistant", "A structure that spans an obstacle."),
        m("a2", "p1", "assistant", "Deleted reply.", deleted=True),
        m("a3", "p1", "assistant", "Spam reply.", review_result=False),
        m("a4", "p1", "assistant", "Not reviewed enough yet.", review_result=None),    # null is not a failure
        m("p2", None, "prompter", "A prompt of a growing tree.", tree_state="growing", message_tree_id="t2"),
        m("a5", "p2", "assistant", "Reply in a growing tree.", tree_state="growing", message_tree_id="t2"),
        m("p3", None, "prompter", "A deleted prompt.", deleted=True, message_tree_id="t3"),
        m("a6", "p3", "assistant", "Reply to a deleted prompt.", message_tree_id="t3"),
        m("p4", None, "prompter", "A prompt aborted early.", tree_state="aborted_low_grade", message_tree_id="t4"),
    ]


def test_oasst_full_export_drops_what_the_ready_export_leaves_out(store, tmp_path):
    path = _jsonl(tmp_path / "2023-04-12_oasst_all.messages.jsonl", _oasst_all_rows())
    v = build_corpus(store, "if-train", {"oasst1": path}, only=["oasst1"], dev_fraction=0)
    kept = {json.loads(r["meta"])["message_id"] for r in v.read().to_pylist()}
    assert kept == {"a1", "a4"}
    assert v.manifest["dropped"]["oasst1"] == {
        "deleted": 2, "review_failed": 1, "tree_not_ready_for_export": 3,   # a2, p3 / a3 / p2, a5, p4
        "prompter_message": 1, "no_prompter_parent": 1}                     # p1 / a6 (its prompt was deleted)


def test_oasst_full_export_as_parquet_takes_the_columnar_path(store, tmp_path, monkeypatch):
    """Hub-style Parquet (labels as a struct of lists) with the export's flags: the columnar
    path drops the same messages as the row path."""
    import pyarrow as pa

    from builders import corpora

    rows = []
    for r in _oasst_all_rows():
        labels = r.pop("labels")
        r["labels"] = None if labels is None else {"name": ["quality"], "value": [labels["quality"]["value"]],
                                                   "count": [labels["quality"]["count"]]}
        rows.append(r)
    folder = tmp_path / "oasst"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), folder / "train.parquet")
    calls = []
    real = corpora.OpenSource.example_tables

    def spy(self, *a, **k):
        out = real(self, *a, **k)
        calls.append(out is not None)
        return out
    monkeypatch.setattr(corpora.OpenSource, "example_tables", spy)
    fast = build_corpus(store, "if-train", {"oasst1": str(folder)}, only=["oasst1"], dev_fraction=0, name="f")
    assert calls == [True]
    monkeypatch.setattr(corpora.OpenSource, "example_tables", lambda *a, **k: None)
    slow = build_corpus(store, "if-train", {"oasst1": str(folder)}, only=["oasst1"], dev_fraction=0, name="s")
    assert fast.read().equals(slow.read())
    assert fast.manifest["dropped"] == slow.manifest["dropped"]
    assert fast.manifest["dropped"]["oasst1"]["tree_not_ready_for_export"] == 3


def test_oasst_flag_of_the_wrong_type_is_named(store, tmp_path):
    from resetkit.errors import BadInputError

    rows = _oasst_all_rows()
    rows[1]["deleted"] = "no"
    path = _jsonl(tmp_path / "all.jsonl", rows)
    with pytest.raises(BadInputError, match=r"all.jsonl, line 2, column 'deleted': expected bool"):
        build_corpus(store, "if-train", {"oasst1": path}, only=["oasst1"])


# -- item 7: Alpaca's <nooutput> -------------------------------------------------------------
def test_alpaca_nooutput_rows_are_dropped_with_their_own_reason(store, if_train, tmp_path):
    rows = [{"instruction": "Render a 3D model of a house", "input": "",
             "output": "<nooutput> This type of instruction cannot be fulfilled by a GPT model."},
            {"instruction": "Draw a picture of a cat.", "input": "", "output": "<nooutput>"},
            {"instruction": "Describe the picture.", "input": "a photo", "output": "<nooutput>"},   # input first
            {"instruction": "What does DNA stand for?", "input": "", "output": "DNA stands for deoxyribonucleic acid."}]
    path = tmp_path / "alpaca_data.json"
    path.write_text(json.dumps(rows, indent=4))
    v = build_corpus(store, "if-eval", {"alpaca": str(path)}, only=["alpaca"])
    assert [r["instruction"] for r in v.read().to_pylist()] == ["What does DNA stand for?"]
    assert v.manifest["dropped"]["alpaca"] == {"no_output_marker": 2, "has_context": 1}


# -- item 8: both Vicuna-80 files --------------------------------------------------------------
def test_vicuna_older_question_file(store, if_train, tmp_path):
    old = _jsonl(tmp_path / "question.jsonl", [
        {"question_id": 1, "text": "How can I improve my time management skills?", "category": "generic"},
        {"question_id": 2, "text": "  ", "category": "generic"}])
    new = _jsonl(tmp_path / "question_new.jsonl", [
        {"question_id": 1, "category": "generic", "turns": ["How can I improve my time management skills?"]},
        {"question_id": 2, "category": "generic", "turns": [""]}])
    a = build_corpus(store, "if-eval", {"vicuna": old}, only=["vicuna"], name="old")
    b = build_corpus(store, "if-eval", {"vicuna": new}, only=["vicuna"], name="new")
    assert a.read().equals(b.read()) and a.num_rows() == {"test": 1}
    assert a.manifest["dropped"]["vicuna"] == {"empty_instruction": 1}


# -- item 9: DPR's has_answer / other releases' hasanswer ------------------------------------
def test_dpr_uses_the_files_flags_and_says_which(store, tmp_path):
    def ctx(i, text, **flag):
        return {"id": str(i), "title": f"T{i}", "text": text, "score": str(80 - i), **flag}
    rows = [
        # the flag says no although the text matches: the flag wins (the row has no gold passage)
        {"question": "q one", "answers": ["Paris"], "ctxs": [ctx(0, "Paris is here.", has_answer=False)]},
        # the flag says yes although the normalised match would miss it: the flag wins
        {"question": "q two", "answers": ["U.S."], "ctxs": [ctx(0, "Noise."), ctx(1, "the US", has_answer=True)]},
        # FiD-style hasanswer (and isgold beside it), as strings
        {"question": "q three", "answers": ["Lyon"], "ctxs": [ctx(0, "Lyon? no.", hasanswer="False", isgold=False),
                                                                ctx(1, "Elsewhere", hasanswer="True")]},
    ]
    path = _jsonl(tmp_path / "nq-dev.jsonl", rows)
    v = build_corpus(store, "cd-train", {"nq": path}, only=["nq"])
    got = {r["question"]: r["passages"] for r in v.read().to_pylist()}
    assert set(got) == {"q two", "q three"} and v.manifest["dropped"]["nq"] == {"no_gold_passage": 1}
    assert v.manifest["source_notes"]["nq"] == {"gold_from:answer_match": 1, "gold_from:has_answer": 2,
                                                "gold_from:hasanswer": 2}
    card = (v.path / "README.md").read_text()
    assert "the file's `has_answer` flag (DPR): 2 passages" in card and "`hasanswer` flag: 2 passages" in card


def test_self_instruct_column_parser_agrees_with_the_row_parser_on_random_prompts():
    """parse_columns (RE2 matches + literal cuts) == parse_prompt (Python regexes with groups)
    on prompts glued from the templates' pieces, where the templates overlap in every way."""
    import random

    import pyarrow as pa

    from builders.sources.self_instruct import parse_columns, parse_prompt

    pieces = ["Task: ", "Task:", "\n", "\n\n", "Input: ", "\nInput: ", "\n\nInput: ", "Input:", "Output:", " Output:",
              "\nOutput:", "\n\nOutput:", "a", "b c", " ", "\u2003", "é"]
    rng = random.Random(12)
    prompts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 7))) for _ in range(6000)] + [None]
    i, x, t = (a.to_pylist() for a in parse_columns(pa.array(prompts, pa.string())))
    assert len(set(t)) == 14  # every template was hit, and some prompts none
    for k, p in enumerate(prompts):
        if p is None:
            assert (i[k], x[k], t[k]) == (None, None, None)
            continue
        assert (clean(i[k]), clean(x[k]), t[k]) == parse_prompt(p), repr(p)

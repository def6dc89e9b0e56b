"""Every adapter on small slices of the publishers' own files (tests/data/real/, each folder
with a PROVENANCE file), next to the hand-made edge cases of builders/samples/.  Where a
publisher's file is only on the Hub, its documented schema is tested instead (at the end)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builders.corpora import build_corpus, sample_sources
from builders.sources import get
from builders.sources.base import Context
from builders.sources.reader import ReadStats, chunks, iter_file
from resetkit.errors import ResetkitError

REAL = Path(__file__).resolve().parents[1] / "data" / "real"


def read_examples(source: str, path: Path) -> tuple[list[dict], dict]:
    """(finished examples, drop counts) of one file through the adapter's row path."""
    src, ctx, stats = get(source), Context(), ReadStats()
    rows = list(src.examples(chunks(iter_file(path, src.columns, "error", stats), path), "train", ctx))
    return rows, ctx.drops


@pytest.fixture
def if_train(store):
    return build_corpus(store, "if-train", sample_sources("if-train"))


def test_every_real_folder_has_provenance_and_stays_small():
    folders = [p for p in REAL.iterdir() if p.is_dir()]
    assert {p.name for p in folders} == {"vicuna", "koala", "alpaca", "self_instruct", "oasst1", "ms_marco"}
    total = 0
    for folder in folders:
        prov = (folder / "PROVENANCE").read_text()
        assert "repo:" in prov and "commit:" in prov and "license:" in prov, folder
        for f in folder.iterdir():
            assert f.stat().st_size < 200_000, f
            total += f.stat().st_size
    assert total < 1_000_000


def test_the_top_level_provenance_names_repo_commit_path_and_license_of_every_file():
    import re

    blocks = [dict(re.findall(r"^(file|repo|commit|path|license):\s+(.+)$", b, re.M))
              for b in (REAL / "PROVENANCE").read_text().split("\n\n")]
    listed = {b["file"]: b for b in blocks if "file" in b}
    data = {str(f.relative_to(REAL)) for f in REAL.rglob("*")
            if f.is_file() and f.name not in ("PROVENANCE", "README.md", "cut_slices.py")
            and "__pycache__" not in f.parts}
    assert data and set(listed) == data, set(listed) ^ data
    for name, b in listed.items():
        assert {"repo", "commit", "path", "license"} <= set(b), name
        assert re.fullmatch(r"[0-9a-f]{40}", b["commit"]), name
        assert b["commit"] in (REAL / name).parent.joinpath("PROVENANCE").read_text(), name  # same as the folder's


# -- Vicuna-80: both FastChat files ------------------------------------------------------------
def test_vicuna_both_fastchat_files_give_the_same_80_questions(store, if_train):
    new = build_corpus(store, "if-eval", {"vicuna": str(REAL / "vicuna" / "question.jsonl")}, only=["vicuna"],
                       name="vicuna-new")
    old = build_corpus(store, "if-eval", {"vicuna": str(REAL / "vicuna" / "question_older.jsonl")},
                       only=["vicuna"], name="vicuna-old")
    assert new.num_rows() == old.num_rows() == {"test": 80}
    a, b = new.read().to_pylist(), old.read().to_pylist()
    assert [r["instruction"] for r in a] == [r["instruction"] for r in b]
    assert a[0]["instruction"] == "How can I improve my time management skills?"
    assert [json.loads(r["meta"]) for r in a] == [json.loads(r["meta"]) for r in b]
    assert {json.loads(r["meta"])["category"] for r in a} >= {"generic", "knowledge", "roleplay", "math"}


# -- Koala-180 -----------------------------------------------------------------------------------
def test_koala_test_set(store, if_train):
    v = build_corpus(store, "if-eval", {"koala": str(REAL / "koala" / "koala_test_set.jsonl")}, only=["koala"])
    rows = v.read().to_pylist()
    assert len(rows) == 30 and v.manifest["dropped"] == {}
    assert [json.loads(r["meta"])["koala_id"] for r in rows] == [f"koala_{i}" for i in range(30)]
    assert rows[2]["instruction"] == "List the layers of the TCP/IP model and for each layer identify one protocol."
    assert all(r["refs"] == [] and r["response"] is None for r in rows)


# -- Alpaca ----------------------------------------------------------------------------------------
def test_alpaca_data_json(store, if_train):
    v = build_corpus(store, "if-eval", {"alpaca": str(REAL / "alpaca" / "alpaca_data.json")}, only=["alpaca"])
    rows = v.read().to_pylist()
    instructions = [r["instruction"] for r in rows]
    assert "Render a 3D model of a house" not in instructions                  # <nooutput>
    assert "Identify the odd one out." not in instructions                     # has an input
    assert "Give three tips for staying healthy." not in instructions          # in the sample if-train
    assert "What is the capital of France?" not in instructions                # an OASST-1 sample prompt
    assert "What are the three primary colors?" in instructions
    assert v.manifest["dropped"]["alpaca"] == {"has_context": 5, "no_output_marker": 1, "seen_in_training": 2}
    assert len(rows) == 12 and not any("<nooutput>" in ref for r in rows for ref in r["refs"])


# -- Self-Instruct: both release forms of the same rows -----------------------------------------------
def test_self_instruct_templates_recover_the_three_columns(store, monkeypatch):
    """The prompt/completion file (13 templates) and the instruction/input/output file hold the
    same 26 instances: they must become the same examples, on the columnar and the row path."""
    from builders import corpora

    folder = REAL / "self_instruct"
    built = {}
    for form, fname in (("prompts", "gpt3_finetuning_data.jsonl"), ("fields", "all_generated_instances.jsonl")):
        built[form] = build_corpus(store, "if-train", {"self_instruct": str(folder / fname)},
                                   only=["self_instruct"], dev_fraction=0, name=f"si-{form}")
    a, b = built["prompts"].read(), built["fields"].read()
    assert a.num_rows == 26 and a.drop(["meta"]).equals(b.drop(["meta"]))
    metas = [json.loads(m) for m in a.column("meta").to_pylist()]
    assert len({m["upstream_template"] for m in metas}) == 13 and None not in {m["upstream_template"] for m in metas}
    assert built["prompts"].manifest["source_notes"]["self_instruct"] == {"with_input": 16, "without_input": 10}
    instances = [json.loads(x) for x in (folder / "all_generated_instances.jsonl").read_text().splitlines()]
    assert [m["input"] or "" for m in metas] == [i["input"] for i in instances]
    monkeypatch.setattr(corpora.OpenSource, "example_tables", lambda *a, **k: None)   # the row path
    slow = build_corpus(store, "if-train", {"self_instruct": str(folder / "gpt3_finetuning_data.jsonl")},
                        only=["self_instruct"], dev_fraction=0, name="si-rows")
    assert slow.read().equals(a)


# -- OASST-1: exported messages ------------------------------------------------------------------------
def test_oasst_exported_messages(store):
    rows, drops = read_examples("oasst1", REAL / "oasst1" / "messages.jsonl")
    # 2 trees: prompter turns are not examples; these exported replies carry no labels at all
    assert rows == [] and drops == {"prompter_message": 7, "no_quality_label": 14}
    rows, drops = read_examples("oasst1", REAL / "oasst1" / "readme_examples.jsonl")
    assert rows == [] and drops == {"prompter_message": 1, "quality_not_above_0.5": 1}   # quality 0.416
    with pytest.raises(ResetkitError, match=r"no example survived the rules \(oasst1: no_quality_label=14, "
                                            r"prompter_message=7\)"):
        build_corpus(store, "if-train", {"oasst1": str(REAL / "oasst1" / "messages.jsonl")}, only=["oasst1"])


def test_oasst_exported_messages_with_a_quality_label(store, tmp_path):
    """The same real messages, with the README's label dict on each reply: pairs come out."""
    label = json.loads((REAL / "oasst1" / "readme_examples.jsonl").read_text().splitlines()[1])["labels"]
    label = {**label, "quality": {"value": 0.75, "count": 3}}
    msgs = [json.loads(x) for x in (REAL / "oasst1" / "messages.jsonl").read_text().splitlines()]
    for m in msgs:
        if m["role"] == "assistant":
            m["labels"] = label
    path = tmp_path / "messages.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in msgs))
    rows, drops = read_examples("oasst1", path)
    assert len(rows) == 14 and drops == {"prompter_message": 7}
    first = msgs[0]
    assert rows[0]["instruction"] == first["text"] and json.loads(rows[0]["meta"])["parent_id"] == first["message_id"]


# -- MS MARCO: the documented row ------------------------------------------------------------------------
def test_ms_marco_documented_row(tmp_path):
    path = REAL / "ms_marco" / "readme_example.jsonl"
    rows, drops = read_examples("ms_marco", path)
    assert rows == [] and drops == {"no_well_formed_answer": 1}            # "[]": no well-formed answer
    row = json.loads(path.read_text())
    row["wellFormedAnswers"] = ["A corporation is a legal entity recognized as such in law."]   # an array
    row["passages"][0]["is_selected"] = 1
    other = tmp_path / "row.jsonl"
    other.write_text(json.dumps(row) + "\n")
    rows, drops = read_examples("ms_marco", other)
    assert drops == {} and rows[0]["passages"] == [row["passages"][0]["passage_text"]]
    assert rows[0]["refs"] == row["wellFormedAnswers"] and rows[0]["question"] == ". what is a corporation?"
    assert json.loads(rows[0]["meta"])["query_type"] == "DESCRIPTION"


# == documented schemas of the Hub-only / download-only files ==============================================
def test_dpr_retriever_results_as_documented(store, tmp_path):
    """DPR README, "Retriever validation": a JSON list of {question, answers, ctxs[{id, title,
    text, score, has_answer}]}, results sorted by score, the score written as a string."""
    results = [{"question": "who got the first nobel prize in physics", "answers": ["Wilhelm Conrad Röntgen"],
                "ctxs": [{"id": "628725", "title": "Nobel Prize in Physics", "text": "The first Nobel Prize in "
                          "Physics was awarded in 1901 to Wilhelm Conrad Röntgen.", "score": "80.07", "has_answer": True},
                         {"id": "284495", "title": "Physics", "text": "Physics is a natural science.", "score": "75.1",
                          "has_answer": False}]}]
    path = tmp_path / "nq-test.json"
    path.write_text(json.dumps(results, indent=4, ensure_ascii=False))
    v = build_corpus(store, "cd-train", {"nq": str(path)}, only=["nq"])
    row = v.read().to_pylist()[0]
    assert row["passages"][0].startswith("Nobel Prize in Physics The first") and row["response"] == "Wilhelm Conrad Röntgen"
    assert v.manifest["source_notes"]["nq"] == {"gold_from:has_answer": 2}


def test_dolly_cnn_dm_wikisum_sharegpt_as_documented(store, tmp_path):
    """Dolly's four columns, CNN/DM's CSV (id, article, highlights; newline-joined highlights in a
    quoted cell), WikiSum's five columns, ShareGPT in Alpaca form: each read by its adapter."""
    dolly = tmp_path / "databricks-dolly-15k.jsonl"
    dolly.write_text(json.dumps({"instruction": "Which is a species of fish? Tope or Rope", "context": "",
                                 "response": "Tope", "category": "classification"}) + "\n")
    rows, drops = read_examples("dolly", dolly)
    assert rows[0]["response"] == "Tope" and json.loads(rows[0]["meta"]) == {"category": "classification"}
    cnn = tmp_path / "test.csv"
    cnn.write_text('id,article,highlights\n0001,"An article, with a comma.\nAnd a second line.","First.\nSecond."\n')
    rows, drops = read_examples("cnn_dailymail", cnn)
    assert rows[0]["response"] == "First.\nSecond." and rows[0]["context"].endswith("And a second line.")
    wiki = tmp_path / "wikisum.jsonl"
    wiki.write_text(json.dumps({"url": "https://www.wikihow.com/Sample", "title": "How to Sample",
                                "summary": "Do it.", "article": "Long text.", "step_headers": "Step one."}) + "\n")
    rows, drops = read_examples("wikisum", wiki)
    assert rows[0]["response"] == "Do it." and rows[0]["context"] == "Long text."
    share = tmp_path / "sharegpt.json"
    share.write_text(json.dumps([{"instruction": "Tell me a story.", "input": "",
                                  "output": "Once upon a time there was a small town by a wide river."}]))
    rows, drops = read_examples("sharegpt", share)
    assert len(rows) == 1 and drops == {}

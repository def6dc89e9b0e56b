"""`resetkit eval` end to end on a tiny random Llama (transformers backend), the offline judges
(span, em, rouge, SummaC-ZS on a tiny NLI model) and the LLM judge against a local
OpenAI-compatible server on a real 127.0.0.1 socket, then `resetkit report` on the result."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipeline.evaluate import EvalConfig, sample_examples
from resetkit.cli import main
from resetkit.errors import ResetkitError
from tests.helpers.eval_corpora import CD_EVAL, CD_TRAIN, IF_EVAL, write_corpora


def test_sample_is_seeded_nested_and_per_source(store):
    write_corpora(store, n=5)
    small, seen, missing = sample_examples(store, EvalConfig(model="m", per_set=2, per_if_set=1, seed=3),
                                           name="e1")
    big, _, _ = sample_examples(store, EvalConfig(model="m", per_set=4, per_if_set=1, seed=3), name="e2")
    again, _, _ = sample_examples(store, EvalConfig(model="m", per_set=2, per_if_set=1, seed=3), name="e3")
    ids = lambda v: set(v.read(columns=["id"])["id"].to_pylist())  # noqa: E731
    assert ids(small) == ids(again) and ids(small) <= ids(big)
    counts = {}
    for s in small.read(columns=["source"])["source"].to_pylist():
        counts[s] = counts.get(s, 0) + 1
    assert counts == {**{s: 2 for s in {**CD_TRAIN, **CD_EVAL}}, **{s: 1 for s in IF_EVAL}}
    assert seen == {"cnn_dailymail": True, "ms_marco": True, "nq": True, "wikisum": False,
                    "searchqa": False, "bioasq": False, "alpaca": False, "vicuna": False, "koala": False}
    assert missing == []
    # only cd-train's test split is used (its train rows are never sampled)
    assert all(r.endswith(("-0", "-1", "-2", "-3", "-4")) for r in ids(big))
    parents = {p["name"] for p in small.manifest["parents"]}
    assert parents == {"cd-train", "cd-eval", "if-eval"}


def test_missing_corpus_and_unknown_suite_are_clear_errors(store):
    with pytest.raises(ResetkitError, match="no dataset 'cd-train'"):
        sample_examples(store, EvalConfig(model="m"), name="e")
    write_corpora(store)
    with pytest.raises(ResetkitError, match="unknown suite 'papr'.*paper"):
        sample_examples(store, EvalConfig(model="m", suite="papr"), name="e")


def test_eval_then_report_on_a_tiny_model(store, tiny_llama, tiny_nli, tmp_path, monkeypatch):
    from tests.helpers.openai_server import OpenAIServer

    write_corpora(store, n=3)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-real")
    with OpenAIServer(reply=lambda body, path: "The answer is helpful. Rating: [[7]]") as srv:
        res = CliRunner().invoke(main, [
            "eval", "--model", str(tiny_llama), "--backend", "transformers", "--per-set", "2",
            "--per-if-set", "1", "--seed", "1", "--judges", "span,em,rouge,summac,llm", "--label", "tiny",
            "--set", "max_new_tokens=12", "--judge-set", f"summac.model={tiny_nli}",
            "--judge-set", f"llm.base_url={srv.base_url}", "--judge-set", "llm.model=tiny",
            "--store", str(store.root)])
        assert res.exit_code == 0, res.output + repr(res.exception)
        judge_calls = [r for r in srv.log if r["path"].endswith("/chat/completions")]
    # quiet: the run's own lines on the console, library output in the log it names
    logs = list((store.root / ".logs").glob("eval-eval-*.log"))
    assert len(logs) == 1 and f"[resetkit] log: {logs[0]}" in res.output
    assert "[resetkit] eval-examples@" in res.output and "judging with span, em, rouge, summac, llm" in res.output
    for noise in ("Warning", "warn(", "[WARNING]", "it/s]"):
        assert noise not in res.output, noise
    assert "resetkit eval --name eval" in logs[0].read_text()
    assert len(judge_calls) == 3                    # one per instruction-following example
    ev = store.resolve("eval")
    rows = ev.read("test").to_pylist()
    assert len(rows) == 6 * 2 + 3 * 1
    by_source = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r)
    for r in rows:
        assert r["label"] == "tiny" and r["seed"] == 1 and r["suite"] == "paper"
        assert r["seen"] == (r["source"] in CD_TRAIN)
        if r["task"] == "open_ended":
            assert r["instruction"] == pytest.approx(0.7)
            assert r["faithfulness"] is None and r["task_score"] is None
        else:
            assert r["instruction"] is None
            assert 0.0 <= r["faithfulness"] <= 1.0 and 0.0 <= r["task_score"] <= 1.0
            metrics = json.loads(r["metrics"])
            key = "span_coverage" if r["task"] == "extractive_qa" else "summac_zs"
            assert metrics[key] == r["faithfulness"]
    # lengths: the model's tokenizer for both texts, no special tokens
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_llama))
    r = by_source["cnn_dailymail"][0]
    assert r["length_unit"] == f"tokenizer:{tiny_llama}"
    assert r["gen_tokens"] == len(tok(r["generation"], add_special_tokens=False)["input_ids"])
    assert r["gold_tokens"] == len(tok(r["gold"], add_special_tokens=False)["input_ids"]) > 0
    # lineage: eval <- eval-examples/pool/scores <- corpora; the judge versions are the scores'
    m = ev.manifest
    assert {p["name"] for p in m["parents"]} == {"eval-examples", "eval-pool", "eval-scores"}
    scores = store.resolve(m["scores"])
    assert json.loads(rows[0]["judge_versions"]) == scores.manifest["judge_versions"]
    assert set(scores.manifest["judge_versions"]) == {"span", "em", "rouge", "summac", "llm"}
    assert store.resolve(m["pool"]).manifest["config"]["max_new_tokens"] == 12
    assert "test-key-not-real" not in (ev.path / "manifest.json").read_text()
    assert not store.exists("pool") and not store.exists("scores")  # a RESET run's datasets stay untouched

    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["report", "eval", "-o", str(out), "--store", str(store.root)])
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| tiny |"))
    assert row.rstrip().endswith("| 0.70 |")          # instruction following: 7/10 everywhere
    assert (out / "report.html").stat().st_size > 10_000


def test_eval_and_report_help_and_bad_options(store):
    runner = CliRunner()
    for cmd in ("eval", "report"):
        res = runner.invoke(main, [cmd, "--help"])
        assert res.exit_code == 0 and "Examples:" in res.output, res.output
    res = runner.invoke(main, ["eval", "--model", "m", "--set", "per_sett=3", "--store", str(store.root)])
    assert res.exit_code == 2 and "unknown config key 'per_sett'" in res.output and "per_set" in res.output
    res = runner.invoke(main, ["eval", "--store", str(store.root)])
    assert res.exit_code == 2 and "no model given" in res.output


def test_eval_with_the_openai_backend_counts_words(store):
    """A served model (real HTTP on 127.0.0.1): lengths fall back to whitespace words for both texts."""
    from pipeline.evaluate import run_eval
    from tests.helpers.openai_server import OpenAIServer

    write_corpora(store, n=2)
    with OpenAIServer(reply=lambda body, path: "Paris is the answer here") as srv:
        cfg = EvalConfig(model="tiny", backend="openai", per_set=1, per_if_set=1, max_new_tokens=8,
                         judges=("span", "em", "rouge"), pool={"base_url": srv.base_url})
        ev = run_eval(store, None, cfg, name="eval-api", progress=False)
        prompts = [r["body"]["prompt"] for r in srv.log if r["path"].endswith("/completions")]
    rows = ev.read("test").to_pylist()
    assert len(rows) == 9 and len(prompts) == 9
    assert all(r["body"]["temperature"] == 0 for r in srv.log if r["path"].endswith("/completions"))
    for r in rows:
        assert r["generation"] == "Paris is the answer here" and r["gen_tokens"] == 5
        assert r["length_unit"] == "whitespace" and r["gold_tokens"] == len(r["gold"].split())
        if r["task"] == "extractive_qa":   # "paris is the answer here" is not a span of the context
            assert r["faithfulness"] == 0.0 and r["task_score"] == 0.0
        if r["task"] == "open_ended":      # no llm judge asked: no instruction score
            assert r["instruction"] is None
    assert ev.manifest["config"]["pool"] == {}            # the server URL is how it ran, not what it is
    assert ev.manifest["run"]["pool"] == {"base_url": srv.base_url}

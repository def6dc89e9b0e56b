"""`resetkit build` and `resetkit sources` through the real click commands."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from builders.corpora import SOURCE_CORPORA, sample_sources
from builders.sources import SOURCES
from resetkit.cli import main
from resetkit.store import Store


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def source_args(corpus):
    out = []
    for name, path in sample_sources(corpus).items():
        out += ["--source", f"{name}={path}"]
    return out


def test_build_every_corpus_from_the_cli(tmp_path):
    store = str(tmp_path / "store")
    for corpus in sorted(SOURCE_CORPORA, key=lambda c: c.endswith("-eval")):   # evals check the trains
        r = run("build", corpus, *source_args(corpus), "--store", store, "--template", "vicuna", "--no-progress")
        assert r.exit_code == 0, r.output
        assert f"built {corpus}@" in r.output and "upstream rows dropped" in r.output
    r = run("build", "reset-seed", "--store", store, "--per-source", "2", "--seed", "3")
    assert r.exit_code == 0, r.output
    v = Store(store).resolve("reset-seed")
    assert v.num_rows() == {"train": 8} and v.manifest["config"]["seed"] == 3
    r = run("build", "mtl", "--store", store, "--from", Store(store).resolve("if-train").ref,
            "--from", Store(store).resolve("cd-train").ref)
    assert r.exit_code == 0, r.output
    assert Store(store).resolve("cd-eval").read().column("template").unique().to_pylist() == ["vicuna"]


def test_build_options_reach_the_config(tmp_path):
    store = str(tmp_path / "store")
    r = run("build", "cd-train", *source_args("cd-train"), "--store", store, "--limit", "3", "--max-passages", "2",
            "--gold-passage", "drop", "--on-bad-rows", "skip", "--name", "cd-small")
    assert r.exit_code == 0, r.output
    v = Store(store).resolve("cd-small")
    assert {k: v.manifest["config"][k] for k in ("limit", "max_passages", "gold_passage", "on_bad_rows")} == {
        "limit": 3, "max_passages": 2, "gold_passage": "drop", "on_bad_rows": "skip"}
    assert max(len(p) for p in v.read().column("passages").to_pylist()) <= 2


@pytest.mark.parametrize("args,message", [
    (["build", "if-trian"], "Did you mean 'if-train'?"),
    (["build", "if-train", "--source", "dolly"], "--source takes NAME=PATH_OR_HUB_ID"),
    (["build", "if-train", "--source", "doly=x.jsonl"], "Did you mean 'dolly'?"),
    (["build", "if-train", "--source", "dolly=/nonexistent/dolly.jsonl"], "input not found"),
    (["build", "if-eval", "--source", "alpaca=x.csv"], "has no if-train"),
])
def test_build_errors_are_one_clean_line(tmp_path, args, message):
    r = CliRunner().invoke(main, args + ["--store", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_bad_row_error_from_the_cli(tmp_path):
    bad = tmp_path / "dolly.jsonl"
    bad.write_text('{"instruction": "a", "context": "", "response": "b"}\n{"instruction": 5, "response": "b"}\n')
    args = source_args("if-train")
    args[args.index(f"dolly={sample_sources('if-train')['dolly']}")] = f"dolly={bad}"
    r = CliRunner().invoke(main, ["build", "if-train", *args, "--store", str(tmp_path / "s")])
    assert r.exit_code == 2
    assert "dolly.jsonl, line 2, column 'instruction': expected str" in r.output


def test_sources_lists_every_source():
    r = run("sources")
    assert r.exit_code == 0
    for name in SOURCES.names():
        assert name in r.output
    assert "databricks/databricks-dolly-15k" in r.output and "well-formed" in r.output
    r = run("sources", "--corpus", "cd-eval")
    assert "wikisum" in r.output and "dolly" not in r.output
    r = CliRunner().invoke(main, ["sources", "--corpus", "cd-evl"])
    assert r.exit_code == 2 and "Did you mean 'cd-eval'" in r.output


def test_help_has_examples():
    for cmd in ("build", "sources"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Examples:" in r.output


def test_only_from_the_cli(tmp_path):
    store = str(tmp_path / "store")
    dolly = sample_sources("if-train")["dolly"]
    r = CliRunner().invoke(main, ["build", "if-train", "--source", f"dolly={dolly}", "--store", store])
    assert r.exit_code == 2 and "--only dolly" in r.output and "--source oasst1=PATH" in r.output
    r = run("build", "if-train", "--only", "dolly", "--source", f"dolly={dolly}", "--store", store, "--no-progress")
    assert r.exit_code == 0, r.output
    v = Store(store).resolve("if-train")
    assert list(v.manifest["inputs"]) == ["dolly"] and set(v.read().column("source").to_pylist()) == {"dolly"}
    r = CliRunner().invoke(main, ["build", "if-train", "--only", "doly", "--store", store])
    assert r.exit_code == 2 and "Did you mean 'dolly'?" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["build", "if-train", "--only", " , ", "--store", store])
    assert r.exit_code == 2 and "--only takes NAME[,NAME...]" in r.output

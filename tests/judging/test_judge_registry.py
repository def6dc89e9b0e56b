"""Every registered judge honours the interface of judging/api.py, and a new judge is one module
plus one registry line (tests/judging/toy_judge.py), run through `resetkit judge` and `resetkit
select` without touching any other file."""

import dataclasses
import re

import pytest
from click.testing import CliRunner

from judging.api import JUDGES, SIGNALS, Judge, JudgeConfig, Score, default_metrics
from resetkit.cli import main
from resetkit.errors import ResetkitError
from resetkit.registry import Registry
from resetkit.schemas import TASKS
from tests.judging.pools import candidate, example, make_pool

TOY = "tests.judging.toy_judge:ToyJudge"


@pytest.fixture
def toy():
    JUDGES.register("toy", TOY)
    try:
        yield JUDGES.get("toy")
    finally:
        JUDGES.unregister("toy")


@pytest.mark.parametrize("name", JUDGES.names())
def test_every_judge_declares_its_interface(name):
    cls = JUDGES.get(name)
    assert issubclass(cls, Judge) and cls.name == name
    assert cls.metrics and set(cls.tasks) <= set(TASKS) and cls.tasks
    opts = cls.Options
    assert dataclasses.is_dataclass(opts) and opts.__dataclass_params__.frozen
    for f in dataclasses.fields(opts):
        assert f.metadata.get("help", "").strip(), f"{name}.{f.name} has no help"
    for key, metric in cls.signals.items():   # SIGNAL.TASK -> one of its metrics, on a task it scores
        signal, _, task = key.partition(".")
        assert signal in SIGNALS and task in cls.tasks and metric in cls.metrics, (name, key, metric)
        assert default_metrics()[key] == metric
    judge = cls(JudgeConfig())
    assert judge.options == opts() and judge.version.startswith(cls.code_version)


def test_default_options_keep_the_judge_versions_written_before_they_moved():
    """The judge versions (and so the scores rows and what is carried over) did not change when
    the options moved from JudgeConfig into each judge's Options: values of the pre-move code."""
    versions = {n: JUDGES.get(n)(JudgeConfig()).version for n in JUDGES.names()}
    assert versions == {"span": "1", "ngram": "1", "em": "1", "rouge": "1", "summac": "1+6893dc11",
                        "llm": "1+ebd2ce10"}
    cfg = JudgeConfig(judge={"rouge": {"stemming": True},
                             "summac": {"model": "./nli", "entailment_idx": 0, "contradiction": True},
                             "llm": {"model": "m", "prompt": "single-v1", "temperature": 0.5, "max_tokens": 64}})
    assert {n: JUDGES.get(n)(cfg).version for n in ("rouge", "summac", "llm")} == {
        "rouge": "1+1fbefac7", "summac": "1+ff08d17b", "llm": "1+a7649a4c"}


def test_the_selection_and_eval_signal_maps_come_from_the_judges():
    from judging.select import SelectConfig
    from pipeline.evaluate import SIGNAL_COLUMNS, signals

    # the paper's map (DESIGN.md §5), now declared by span, em, rouge, summac and llm
    assert default_metrics() == {
        "faith.abstractive_qa": "summac_zs", "faith.extractive_qa": "span_coverage",
        "faith.summarization": "summac_zs", "instr.open_ended": "rating", "task.abstractive_qa": "rougeL_f1",
        "task.extractive_qa": "exact_match", "task.summarization": "rougeL_f1"}
    assert SelectConfig().metrics == default_metrics()
    flat = {f"{s}.{task}": m for task, cols in signals().items() for col, m in cols.items()
            for s, c in SIGNAL_COLUMNS.items() if c == col}
    assert flat == default_metrics()


def test_judge_config_errors_name_the_judge_and_field():
    with pytest.raises(ResetkitError, match=r"unknown judge 'sumac'.*'summac'"):
        JudgeConfig(judge={"sumac": {"model": "x"}})
    with pytest.raises(ResetkitError, match=r"judge 'summac': unknown config key 'modle'.*'model'"):
        JudgeConfig(judge={"summac": {"modle": "x"}})
    with pytest.raises(ResetkitError, match="cannot read 'many' as int"):
        JudgeConfig(judge={"llm": {"concurrency": "many"}}).options("llm")
    # an optional number is read as a number too (a string would only fail once money is counted)
    assert JudgeConfig(judge={"llm": {"max_usd": "2.5"}}).options("llm").max_usd == 2.5
    with pytest.raises(ResetkitError, match="max_usd': cannot read 'lots' as float"):
        JudgeConfig(judge={"llm": {"max_usd": "lots"}}).options("llm")


def test_registry_register_and_unregister():
    reg = Registry("thing", {"a": "resetkit.errors:ResetkitError"})
    reg.register("b", "resetkit.registry:Registry")
    assert reg.names() == ["a", "b"] and reg.get("b") is Registry
    with pytest.raises(ResetkitError, match="already registered"):
        reg.register("b", "x:y")
    with pytest.raises(ResetkitError, match="expected 'module:attr'"):
        reg.register("c", "no_colon")
    reg.unregister("b")
    assert "b" not in reg
    with pytest.raises(ResetkitError, match="unknown thing 'b'"):
        reg.get("b")


def test_help_lists_every_judge_and_option(toy):
    res = CliRunner().invoke(main, ["judge", "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    for name in JUDGES.names():
        for f in dataclasses.fields(JUDGES.get(name).Options):
            line = next((ln for ln in res.output.splitlines() if f"judge.{name}.{f.name} " in ln), "")
            assert f.metadata["help"][:30] in line, (name, f.name)
    assert "judge.toy.target_words" in res.output and "--set judge.summac.model=VALUE" in res.output


def _open_ended_pool(store):
    exs = [example("o1", "open_ended", instruction="Say something."),
           example("o2", "open_ended", instruction="Describe a cat.")]
    texts = {"o1": ["One two.", "One two three four five six.", "Hi"],
             "o2": ["A small cat.", "Cats purr.", "A cat is a small furry animal."]}
    cands = [candidate(e, f"{e}-{i}", t, i=i) for e, ts in texts.items() for i, t in enumerate(ts)]
    make_pool(store, exs, cands)


def test_a_toy_judge_runs_through_judge_and_select(store, toy, tmp_path):
    """One module + one registry line: `resetkit judge` runs it with its own option set on the
    command line (then from a YAML config), and `resetkit select` uses the signal it declares."""
    assert default_metrics()["task.open_ended"] == "length_fit"
    _open_ended_pool(store)
    run = CliRunner()
    res = run.invoke(main, ["judge", "pool", "--judges", "toy", "--set", "judge.toy.target_words=2",
                            "--store", str(store.root), "--quiet"])
    assert res.exit_code == 0, res.output
    v = store.resolve("scores")
    got = {r["candidate_id"]: r["value"] for r in v.read().to_pylist()}
    assert got == {"o1-0": 1.0, "o1-1": 0.2, "o1-2": 0.5, "o2-0": 0.5, "o2-1": 1.0, "o2-2": 1 / 6}
    assert v.manifest["config"]["judge"] == {"toy": {"target_words": 2}}
    assert v.manifest["judge_versions"]["toy"] == toy(JudgeConfig(judge={"toy": {"target_words": 2}})).version
    # the selection: the toy's metric is open_ended's task score (no LLM rating here: instr=none)
    res = run.invoke(main, ["select", "pool", "--metric", "instr.open_ended=none", "--store", str(store.root)])
    assert res.exit_code == 0, res.output
    sel = {r["example_id"]: r for r in store.resolve("selection").read().to_pylist()}
    assert {e: (r["candidate_id"], r["s_task"]) for e, r in sel.items()} == {"o1": ("o1-0", 1.0),
                                                                            "o2": ("o2-1", 1.0)}
    # the same option from a YAML config; a --set of the same field wins over the file
    cfg = tmp_path / "judges.yaml"
    cfg.write_text("judge:\n  toy:\n    target_words: 6\n")
    res = run.invoke(main, ["judge", "pool", "--judges", "toy", "--config", str(cfg), "--store", str(store.root),
                            "--quiet", "--name", "scores6"])
    assert res.exit_code == 0, res.output
    six = {r["candidate_id"]: r["value"] for r in store.resolve("scores6").read().to_pylist()}
    assert six["o1-1"] == 1.0 and six["o1-0"] == 0.2   # 6 words now score 1.0
    res = run.invoke(main, ["judge", "pool", "--judges", "toy", "--config", str(cfg), "--set",
                            "judge.toy.target_words=3", "--store", str(store.root), "--quiet", "--name", "scores3"])
    assert res.exit_code == 0, res.output
    assert store.resolve("scores3").manifest["config"]["judge"] == {"toy": {"target_words": 3}}


def test_bad_judge_options_on_the_command_line(store, tmp_path):
    _open_ended_pool(store)
    run = CliRunner()
    for args, words in ((["--set", "judge.toy.target_words=2"], "unknown judge 'toy'"),
                        (["--set", "judge.llm.modle=x"], "unknown config key 'modle'.*'model'"),
                        (["--set", "llm.model=x"], "expected KIND.NAME.FIELD=VALUE"),
                        (["--judges", "sapn"], "unknown judge 'sapn'.*'span'"),
                        (["--judges", "llm", "--max-usd", "abc"], "max_usd': cannot read 'abc' as float")):
        res = run.invoke(main, ["judge", "pool", *args, "--store", str(store.root), "--quiet"])
        assert res.exit_code != 0 and re.search(words, res.output + str(res.exception)), (args, res.output)
    bad = tmp_path / "bad.yaml"
    bad.write_text("judge:\n  summac: ./nli\n")
    res = run.invoke(main, ["judge", "pool", "--config", str(bad), "--store", str(store.root)])
    assert res.exit_code != 0 and "must map judge names" in (str(res.exception) + res.output)
    assert store.versions("scores") == []


def test_score_is_the_triple_the_scores_table_reads():
    s = Score(0.5, "raw text")
    assert s == (0.5, "raw text", None) and s.value == 0.5 and s.error is None

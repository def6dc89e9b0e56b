"""The judges' interface: what a judge module imports, and what the orchestrators (run_judges,
the selection, the eval) use to find judges and what they give.

    Judge          base class: declared metrics, tasks, example fields, selection signals,
                   a nested frozen ``Options`` dataclass, and a batch ``score`` method
    Score          the named result of one metric of one item: (value, raw, error)
    JudgeConfig    the judging stage's config: each judge's options, {judge: {field: value}}
    JUDGES         the registry, name -> "module:Class" (adding a judge: its module and one line here)
    default_metrics()   "SIGNAL.TASK" -> metric, from the judges' declared signals
    progress_bar() a tqdm bar on the console, or a no-op

This module imports no judge: the registry entries are resolved on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from resetkit.config import check_plugin_sets, field, plugin_options
from resetkit.errors import ResetkitError
from resetkit.registry import Registry
from resetkit.schemas import TASKS

JUDGES = Registry("judge", {
    "span": "judging.coverage:SpanJudge",
    "ngram": "judging.coverage:NgramJudge",
    "em": "judging.exact_match:ExactMatchJudge",
    "rouge": "judging.rouge:RougeJudge",
    "summac": "judging.summac:SummacJudge",
    "llm": "judging.llm_judge:LLMJudge",
})
# the paper's judges, run when --judges is not given (a newly registered judge runs when named)
DEFAULT_JUDGES = ("span", "ngram", "em", "rouge", "summac", "llm")
RETRYABLE = "request failed"  # error prefix of rows whose judge call failed (retried next run)
# the selection's signals (paper §5.1): task score, instruction following, faithfulness
SIGNALS = ("task", "instr", "faith")


class Score(NamedTuple):
    """One metric of one item: ``value`` (None when it cannot be scored), ``raw`` (the judge's
    own output worth keeping, e.g. the LLM's reply) and ``error`` (why there is no value)."""

    value: float | None
    raw: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class JudgeConfig:
    """The judging stage's config: the options of each judge (its own ``Options`` dataclass)."""

    judge: dict = field(default_factory=dict, help=(
        "Options per judge, {NAME: {FIELD: VALUE}}; on the command line --set judge.NAME.FIELD=VALUE "
        "(every judge's fields: resetkit judge --help)."))

    def __post_init__(self):
        check_plugin_sets(JUDGES, self.judge)  # unknown judge or field: one line, did-you-mean

    def options(self, name: str):
        """Judge ``name``'s ``Options``: its defaults overridden by this config's values."""
        return plugin_options(JUDGES, name, self.judge.get(name))


class Judge:
    """One judge: declared metrics, tasks, example fields and signals, and a batch ``score``.

    Subclasses set ``name`` (its registry name), ``metrics``, ``tasks``, ``needs`` (example
    columns), ``signals`` ("SIGNAL.TASK" -> metric: which selection signal a metric stands for
    on a task, e.g. ``{"faith.extractive_qa": "span_coverage"}``), ``runs_on_ray`` and
    ``code_version``; declare
    their settings in a nested frozen ``Options`` dataclass (fields made with
    ``resetkit.config.field(..., help=...)``), read as ``self.options``; and implement
    ``score(items) -> [{metric: Score(value, raw, error)}]`` with one dict per item (an item is
    a dict of the candidate's text and the example's fields).  A dict may leave a metric out
    only when the judge stopped early (budget): such items are not written and get scored on
    the next run.
    """

    name = ""
    metrics: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    signals: dict[str, str] = {}
    runs_on_ray = False  # --engine ray: scored on Ray actors (a judge holding a model, as SummaC)
    code_version = "1"

    @dataclass(frozen=True)
    class Options:
        pass

    def __init__(self, cfg: JudgeConfig | None = None, store=None):
        self.cfg = cfg if cfg is not None else JudgeConfig()
        self.options = self.cfg.options(self.name)
        self.store = store
        self.usage: dict = {}

    def settings(self) -> dict:
        """The option values that change this judge's numbers (part of judge_version)."""
        return {}

    @property
    def version(self) -> str:
        if getattr(self, "_version", None) is None:
            from resetkit.store import short_hash

            s = self.settings()
            self._version = self.code_version + ("+" + short_hash(s, 8) if s else "")
        return self._version

    def check(self, items: list[dict]) -> None:
        """Fail fast (before any work) when the judge cannot run: model labels, API key..."""

    def plan(self, items: list[dict]) -> dict:
        return {"items": len(items)}

    def score(self, items: list[dict], progress: bool = False) -> list[dict]:
        raise NotImplementedError


def default_metrics() -> dict[str, str]:
    """"SIGNAL.TASK" -> metric, merged from every registered judge's ``signals`` (sorted by key).

    The selection's default metric map and the eval's signal columns are made from it; two
    judges claiming the same signal of a task with different metrics is an error."""
    out: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name in JUDGES.names():
        judge = JUDGES.get(name)
        for key, metric in judge.signals.items():
            signal, _, task = key.partition(".")
            if signal not in SIGNALS or task not in TASKS or metric not in judge.metrics:
                raise ResetkitError(f"judge {name!r} declares signal {key!r} -> {metric!r}: expected "
                                    f"SIGNAL.TASK (SIGNAL: {', '.join(SIGNALS)}; TASK: {', '.join(TASKS)}) "
                                    f"-> one of its metrics {judge.metrics}")
            if out.get(key, metric) != metric:
                raise ResetkitError(f"judges {owner[key]!r} and {name!r} both give signal {key!r} "
                                    f"({out[key]!r}, {metric!r})")
            out[key], owner[key] = metric, name
    return dict(sorted(out.items()))


class NoBar:
    """What :func:`progress_bar` gives when progress is off: the tqdm calls, doing nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def close(self):
        pass


def progress_bar(total: int, desc: str, progress: bool):
    """A tqdm bar on the console (stderr, or the console of a run whose other output goes to
    its log), or a no-op (importing tqdm.auto alone costs ~0.5 s)."""
    if not progress:
        return NoBar()
    from tqdm import tqdm

    from resetkit.runlog import progress_file

    return tqdm(total=total, desc=desc, unit="text", file=progress_file())

"""Apply the external judges to a candidate pool and write the long ``scores`` table.

    run_judges(store, pool_ref, judges, cfg, *, name="scores", progress=True) -> DatasetVersion
    plan_judges(store, pool_ref, judges, cfg, *, name="scores") -> dict   (what a run would do)

(both in judging/run.py, the read/group/write path; importable from here)

Each judge (registry below: name -> "module:Class") scores the candidates whose example
task it covers (DESIGN.md §5) and emits rows of resetkit.schemas.SCORES.  Example fields
(task, objective, instruction, question, context, refs) come from the examples
dataset named in the pool manifest's ``extra["examples"]``.

Incremental: the newest earlier ``scores`` version of the same pool is read; its rows are
kept where (candidate, judge, judge_version) still holds, and only the rest is computed
(rows of judges not asked for this time are carried over unchanged).  Identical texts of
one example are judged once and the result copied to every duplicate.  The new version
lists the pool and examples as parents; ``extra["carried_from"]`` names the version rows
were reused from.
"""

from __future__ import annotations

from dataclasses import dataclass


from resetkit.config import field
from resetkit.errors import ResetkitError
from resetkit.registry import Registry
from resetkit.store import Store, short_hash

JUDGES = Registry("judge", {
    "span": "judging.coverage:SpanJudge",
    "ngram": "judging.coverage:NgramJudge",
    "em": "judging.exact_match:ExactMatchJudge",
    "rouge": "judging.rouge:RougeJudge",
    "summac": "judging.summac:SummacJudge",
    "llm": "judging.llm_judge:LLMJudge",
})
DEFAULT_JUDGES = ("span", "ngram", "em", "rouge", "summac", "llm")
RETRYABLE = "request failed"  # error prefix of rows whose judge call failed (retried next run)


@dataclass(frozen=True)
class JudgeConfig:
    # text metrics
    rouge_stemming: bool = field(False, help="Porter-stem tokens for ROUGE-L (rouge_score use_stemmer).")
    # SummaC-ZS
    nli_model: str = field("tals/albert-xlarge-vitaminc-mnli",
                           help="NLI checkpoint for SummaC-ZS: a Hub id or a local directory.")
    nli_entailment_idx: int | None = field(None, help="Entailment label index (default: from id2label).")
    nli_contradiction_idx: int | None = field(None, help="Contradiction label index "
                                                         "(default: from id2label).")
    summac_contradiction: bool = field(False, help="Contradiction-aware SummaC-ZS: mean(max ent - max con), "
                                                   "range [-1, 1]; default entailment only (DESIGN.md §7).")
    nli_device: str = field("auto", help="Device for the NLI model: auto, cpu, cuda, cuda:N.")
    nli_dtype: str = field("auto", help="auto (bf16/fp16 on GPU, fp32 on CPU), float32, bfloat16, float16.")
    nli_batch_tokens: int | None = field(None, help="Padded tokens per NLI batch "
                                                    "(default 2048 CPU, 65536 GPU).")
    nli_max_length: int = field(500, help="Max tokens of a (premise, hypothesis) pair, as in summac.")
    nli_threads: int | None = field(None, help="torch CPU threads for the NLI model (default: torch's).")
    summac_max_doc_sents: int = field(100, help="Premise sentences kept per example, as in summac.")
    # LLM judge
    judge_model: str = field("gpt-4-0613", help="LLM judge model name at the endpoint.")
    judge_base_url: str | None = field(None, help="OpenAI-compatible base URL (default: the OpenAI API; "
                                                  "$OPENAI_BASE_URL is honoured by the client).")
    judge_prompt: str = field("paper", help="Judge prompt: 'paper' (Table 5) or 'single-v1' (FastChat).")
    judge_temperature: float = field(0.0, help="Judge sampling temperature (paper: 0).")
    judge_max_tokens: int = field(512, help="Judge max completion tokens (paper: 512).")
    judge_concurrency: int = field(32, help="Requests in flight at most (halved on a burst of timeouts, "
                                           "raised back slowly).")
    judge_max_retries: int = field(6, help="Retries per request on 429/5xx/timeouts (exponential backoff, "
                                           "Retry-After honoured).")
    judge_timeout: float = field(120.0, help="Seconds per request before it is retried.")
    judge_prices: str | None = field(None, help="YAML/JSON file of USD per 1M tokens: "
                                                "{model: {input: X, output: Y}} (default: built-in table).")
    max_usd: float | None = field(None, help="Hard cap on the LLM judge's spend in USD (a guaranteed bound is "
                                             "reserved per request in flight).")
    batch: bool = field(False, help="Use the OpenAI Batch API (half price; resumable while pending).")
    batch_poll_seconds: float = field(30.0, help="Seconds between Batch API status polls.")
    batch_wait: bool = field(True, help="Wait for a submitted batch to finish (else exit; rerun resumes).")


class Judge:
    """One judge: declared metrics, tasks and example fields, and a batch ``score`` method.

    Subclasses set ``name``, ``metrics``, ``tasks``, ``needs`` (example columns) and
    ``code_version``, and implement ``score(items) -> [{metric: (value, raw, error)}]``
    with one dict per item (an item is a dict of the candidate's text and the example's
    fields).  A dict may leave a metric out only when the judge stopped early (budget):
    such items are not written and get scored on the next run.
    """

    name = ""
    metrics: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    code_version = "1"

    def __init__(self, cfg: JudgeConfig, store: Store | None = None):
        self.cfg = cfg
        self.store = store
        self.usage: dict = {}

    def settings(self) -> dict:
        """The config values that change this judge's numbers (part of judge_version)."""
        return {}

    @property
    def version(self) -> str:
        if getattr(self, "_version", None) is None:
            s = self.settings()
            self._version = self.code_version + ("+" + short_hash(s, 8) if s else "")
        return self._version

    def check(self, items: list[dict]) -> None:
        """Fail fast (before any work) when the judge cannot run: model labels, API key..."""

    def plan(self, items: list[dict]) -> dict:
        return {"items": len(items)}

    def score(self, items: list[dict], progress: bool = False) -> list[dict]:
        raise NotImplementedError


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def close(self):
        pass


def _bar(total: int, desc: str, progress: bool):
    """A tqdm bar on the console (stderr, or the console of a run whose other output goes to
    its log), or a no-op (importing tqdm.auto alone costs ~0.5 s)."""
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    from resetkit.runlog import progress_file

    return tqdm(total=total, desc=desc, unit="text", file=progress_file())


def _instantiate(judges, cfg, store) -> list[Judge]:
    names = [j.strip() for j in (judges or DEFAULT_JUDGES) if j.strip()]
    if not names:
        raise ResetkitError("no judge given")
    out = []
    for n in dict.fromkeys(names):
        out.append(JUDGES.get(JUDGES.check(n))(cfg, store))
    return out


def __getattr__(name: str):
    """run_judges, plan_judges (and the rest of the run path) live in judging.run."""
    if name in ("run_judges", "plan_judges", "scores_wide"):
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["JudgeConfig", "Judge", "JUDGES", "DEFAULT_JUDGES"]

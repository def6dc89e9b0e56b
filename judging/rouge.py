"""Task score for abstractive QA and summarisation: ROUGE-L F1, max over references.

The numbers are those of Google's ``rouge_score`` (``rougeL``, its tokeniser, optional
Porter stemming).  Backends, all asserted to give identical floats to ``rouge_score`` on
thousands of generated pairs by tests/judging/test_rouge_parity.py:

    "c"   the C kernel of judging/_native.c (no stemming): rouge_score's tokeniser, the
          LCS length by a bit-parallel algorithm, its float operations in its order
    "rs"  ``rouge-score-rs`` (the same algorithm in Rust, scoring a batch on all cores),
          used when stemming is on
    "py"  ``rouge_score`` itself, where neither is available

    rouge_l_f1(answer, references, stem=False) -> float | None
    rouge_l_f1_batch([(answer, references), ...], stem=False) -> [float | None, ...]

None means "no reference to compare with"; an empty answer scores 0.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from resetkit.config import field

from .api import Judge, progress_bar


@lru_cache(maxsize=4)  # a scorer per (stem, backend): configuration, it keeps no text between calls
def _scorer(stem: bool, backend: str):
    if backend == "rs":
        from rouge_score_rs import rouge_scorer
    else:
        from resetkit.errors import require

        rouge_scorer = require("rouge_score.rouge_scorer", "judges", "ROUGE-L", package="rouge-score")
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)


def backend_name(prefer: str = "auto", stem: bool = False) -> str:
    """"c", "rs" (rouge-score-rs) or "py" (rouge_score); "auto" picks the C kernel when it was
    built and stemming is off, else rs when importable."""
    from .kernels import native

    if prefer in ("c", "auto") and not stem and native() is not None:
        return "c"
    if prefer == "c":
        raise ImportError("the C ROUGE-L kernel needs judging._native (built by setup.py) and no stemming")
    if prefer in ("rs", "auto"):
        try:
            import rouge_score_rs  # noqa: F401

            return "rs"
        except ImportError:
            if prefer == "rs":
                raise
    return "py"


def rouge_l_f1_batch(items, *, stem: bool = False, backend: str = "auto") -> list[float | None]:
    """ROUGE-L F1 of each (answer, references) item, max over its references."""
    items = list(items)
    return rouge_l_f1_many([a for a, _ in items], [r for _, r in items], stem=stem, backend=backend)


def rouge_l_f1_many(answers, references, *, stem: bool = False, backend: str = "auto") -> list[float | None]:
    """``rouge_l_f1_batch(zip(answers, references))`` without building the pairs."""
    backend = backend_name(backend, stem)
    if backend == "c":  # max over references in C
        from .kernels import native, native_threads

        return native().rouge_l_max(answers, references, native_threads())
    items = zip(answers, references)
    scorer = _scorer(stem, backend)
    pairs: dict[tuple[str, str], int] = {}  # each distinct (reference, answer) scored once
    owners: list[tuple[int, int]] = []
    out: list[float | None] = []
    for i, (answer, refs) in enumerate(items):
        if not refs or None in refs:
            refs = [r for r in (refs or []) if r is not None]
            if not refs:
                out.append(None)
                continue
        out.append(0.0)
        if not answer:
            continue
        for r in refs:
            owners.append((i, pairs.setdefault((r, answer), len(pairs))))
    if backend == "rs":
        f1 = [s["rougeL"].fmeasure for s in scorer.score_batch([t for t, _ in pairs], [p for _, p in pairs])]
    else:
        f1 = [scorer.score(t, p)["rougeL"].fmeasure for t, p in pairs]
    for i, k in owners:
        if f1[k] > out[i]:
            out[i] = f1[k]
    return out


def rouge_l_f1(answer: str | None, references, *, stem: bool = False, backend: str = "auto") -> float | None:
    return rouge_l_f1_batch([(answer, references)], stem=stem, backend=backend)[0]


class RougeJudge(Judge):
    """rouge -> rougeL_f1 (task score of abstractive QA and summarisation)."""

    name = "rouge"
    metrics = ("rougeL_f1",)
    tasks = ("abstractive_qa", "summarization")
    needs = ("refs",)
    signals = {"task.abstractive_qa": "rougeL_f1", "task.summarization": "rougeL_f1"}

    @dataclass(frozen=True)
    class Options:
        stemming: bool = field(False, help="Porter-stem tokens for ROUGE-L (rouge_score use_stemmer).")

    def settings(self):
        return {"stem": self.options.stemming} if self.options.stemming else {}

    def score(self, items, progress=False):
        from .items import ScoreColumns, column
        from .kernels import gc_paused

        texts, refs = column(items, "text"), column(items, "refs")
        values = []
        step = 50000  # progress granularity; rouge-score-rs scores each chunk on all cores
        with progress_bar(len(items), "rouge", progress) as bar, gc_paused():
            for lo in range(0, len(items), step):
                values += rouge_l_f1_many(texts[lo:lo + step], refs[lo:lo + step], stem=self.options.stemming)
                bar.update(min(step, len(items) - lo))
        return ScoreColumns({"rougeL_f1": values}, missing="example has no reference")

"""Faithfulness for extractive QA (paper §2.2, appendix A.2).

    span_coverage(answer, context) -> 1.0 when the normalised answer is a contiguous run
        of whole tokens of the normalised context, else 0.0 ("cat" is not in "category").
    ngram_coverage(answer, context, n) -> share of the answer's n-grams (counted with
        repetition) that occur anywhere in the context.  An answer shorter than n tokens
        is scored on its whole token run (so a one-word answer's bigram coverage equals
        its unigram coverage) rather than left undefined.
    coverage_many(answers, contexts) -> (span, unigram, bigram) lists for a whole pool

An empty (or all-punctuation) answer scores 0.0 everywhere: nothing was extracted.

The scalar functions are the definition; coverage_many runs the C kernel of judging/_native.c
(the same rules, pinned to these functions by tests/judging/test_coverage.py and
test_native.py) or, without it, these rules on each distinct context normalised once.
"""

from __future__ import annotations

from .api import Judge, progress_bar
from .items import ScoreColumns, example_column, shared
from .kernels import gc_paused, native, native_threads, normalize_many, normalized_texts
from .text import normalize


class _Context:
    """A normalised context: its space-padded text and its n-gram sets (built on first use)."""

    def __init__(self, norm: str):
        self.padded = f" {norm} " if norm else ""
        self.tokens = norm.split(" ") if norm else []
        self._grams: dict[int, set] = {}

    def grams(self, n: int) -> set:
        if n not in self._grams:
            self._grams[n] = set(_ngrams(self.tokens, n))
        return self._grams[n]


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def _span(ans: str, ctx: _Context) -> float:
    # normalised strings hold single spaces only, so padding with spaces makes the
    # substring test a test on token boundaries
    return 1.0 if ans and ctx.padded and f" {ans} " in ctx.padded else 0.0


def _ngram(ans: str, ctx: _Context, n: int) -> float:
    if not ans:
        return 0.0
    tokens = ans.split(" ")
    if len(tokens) < n:  # shorter than n: scored on its whole run
        return _span(ans, ctx)
    grams, have = _ngrams(tokens, n), ctx.grams(n)
    return sum(g in have for g in grams) / len(grams)


def span_coverage(answer: str | None, context: str | None) -> float:
    return _span(normalize(answer), _Context(normalize(context)))


def ngram_coverage(answer: str | None, context: str | None, n: int) -> float:
    return _ngram(normalize(answer), _Context(normalize(context)), n)


def coverage_many(answers, contexts) -> tuple[list[float], list[float], list[float]]:
    """``(span_coverage, ngram_coverage n=1, ngram_coverage n=2)`` of every (answer, context)
    pair; each distinct context is normalised once (it is shared by its example's candidates)."""
    index: dict[str, int] = {}
    keys = [index.setdefault(c or "", len(index)) for c in contexts]
    return _coverage(normalize_many(answers), keys, normalize_many(list(index)))


def _coverage(answers: list[str], keys: list[int], contexts: list[str]):
    """Coverage of normalised ``answers`` against the normalised ``contexts[keys[i]]``."""
    nat = native()
    if nat is not None:
        return nat.coverage(answers, keys, contexts, native_threads())
    ctxs = [_Context(c) for c in contexts]
    span = [_span(a, ctxs[k]) for a, k in zip(answers, keys)]
    uni = [_ngram(a, ctxs[k], 1) for a, k in zip(answers, keys)]
    bi = [_ngram(a, ctxs[k], 2) for a, k in zip(answers, keys)]
    return span, uni, bi


def items_coverage(items):
    """(span, unigram, bigram) of the items against their contexts, once per run (the span and
    ngram judges share it)."""
    def make():
        contexts, keys = example_column(items, "context")
        return _coverage(normalized_texts(items), keys, normalize_many(contexts))

    return shared(items, "coverage", make)


class SpanJudge(Judge):
    """span -> span_coverage (faithfulness of extractive QA)."""

    name = "span"
    metrics = ("span_coverage",)
    tasks = ("extractive_qa",)
    needs = ("context",)
    signals = {"faith.extractive_qa": "span_coverage"}

    def score(self, items, progress=False):
        with progress_bar(len(items), "span", progress) as bar, gc_paused():
            span, _, _ = items_coverage(items)
            bar.update(len(items))
            return ScoreColumns({"span_coverage": span})


class NgramJudge(Judge):
    """ngram -> unigram_coverage, bigram_coverage (extra faithfulness signals, extractive QA)."""

    name = "ngram"
    metrics = ("unigram_coverage", "bigram_coverage")
    tasks = ("extractive_qa",)
    needs = ("context",)

    def score(self, items, progress=False):
        with progress_bar(len(items), "ngram", progress) as bar, gc_paused():
            _, uni, bi = items_coverage(items)
            bar.update(len(items))
            return ScoreColumns({"unigram_coverage": uni, "bigram_coverage": bi})

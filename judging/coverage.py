"""Faithfulness for extractive QA (paper §2.2, appendix A.2).

    span_coverage(answer, context) -> 1.0 when the normalised answer is a contiguous run
        of whole tokens of the normalised context, else 0.0 ("cat" is not in "category").
    ngram_coverage(answer, context, n) -> share of the answer's n-grams (counted with
        repetition) that occur anywhere in the context.  An answer shorter than n tokens
        is scored on its whole token run (so a one-word answer's bigram coverage equals
        its unigram coverage) rather than left undefined.

An empty (or all-punctuation) answer scores 0.0 everywhere: nothing was extracted.
"""

from __future__ import annotations

from .text import normalize


def span_coverage(answer: str | None, context: str | None) -> float:
    ans, ctx = normalize(answer), normalize(context)
    if not ans or not ctx:
        return 0.0
    # normalised strings hold single spaces only, so padding with spaces makes the
    # substring test a test on token boundaries
    return 1.0 if f" {ans} " in f" {ctx} " else 0.0


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def ngram_coverage(answer: str | None, context: str | None, n: int, *,
                   context_ngrams: set | None = None) -> float:
    """``context_ngrams`` lets a caller reuse the context's n-gram set across candidates."""
    ans = normalize(answer)
    if not ans:
        return 0.0
    a_tok = ans.split(" ")
    if context_ngrams is None:
        ctx = normalize(context)
        context_ngrams = set(_ngrams(ctx.split(" "), n)) if ctx else set()
    if len(a_tok) < n:
        ctx = normalize(context) if context is not None else ""
        return span_coverage(answer, context) if ctx else 0.0
    grams = _ngrams(a_tok, n)
    return sum(g in context_ngrams for g in grams) / len(grams)


def context_ngram_set(context: str | None, n: int) -> set:
    ctx = normalize(context)
    return set(_ngrams(ctx.split(" "), n)) if ctx else set()


def _judge_base():
    from .judge import Judge

    return Judge


class SpanJudge(_judge_base()):
    """span -> span_coverage (faithfulness of extractive QA)."""

    name = "span"
    metrics = ("span_coverage",)
    tasks = ("extractive_qa",)
    needs = ("context",)

    def score(self, items, progress=False):
        from .judge import _bar

        out = []
        with _bar(len(items), "span", progress) as bar:
            for it in items:
                out.append({"span_coverage": (span_coverage(it["text"], it["context"]), None, None)})
                bar.update()
        return out


class NgramJudge(_judge_base()):
    """ngram -> unigram_coverage, bigram_coverage (extra faithfulness signals, extractive QA)."""

    name = "ngram"
    metrics = ("unigram_coverage", "bigram_coverage")
    tasks = ("extractive_qa",)
    needs = ("context",)

    def score(self, items, progress=False):
        from .judge import _bar

        out = []
        sets: dict = {}
        with _bar(len(items), "ngram", progress) as bar:
            for it in items:
                ctx = it["context"] or ""
                if ctx not in sets:  # candidates of one example come together: a small cache
                    if len(sets) >= 64:
                        sets.clear()
                    sets[ctx] = (context_ngram_set(ctx, 1), context_ngram_set(ctx, 2))
                uni, bi = sets[ctx]
                out.append({"unigram_coverage": (ngram_coverage(it["text"], ctx, 1, context_ngrams=uni), None, None),
                            "bigram_coverage": (ngram_coverage(it["text"], ctx, 2, context_ngrams=bi), None, None)})
                bar.update()
        return out

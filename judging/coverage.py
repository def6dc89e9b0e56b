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
        from .text import normalize_many_memo as normalize_many

        answers = normalize_many([it["text"] for it in items])
        contexts = _unique_normalized(items)
        out = []
        with _bar(len(items), "span", progress) as bar:
            for it, ans in zip(items, answers):
                ctx = contexts[it["context"] or ""]
                out.append({"span_coverage": (1.0 if ans and ctx and f" {ans} " in f" {ctx} " else 0.0,
                                              None, None)})
            bar.update(len(items))
        return out


def _unique_normalized(items) -> dict[str, str]:
    from .text import normalize_many_memo as normalize_many

    keys = list(dict.fromkeys(it["context"] or "" for it in items))
    return dict(zip(keys, normalize_many(keys)))


class NgramJudge(_judge_base()):
    """ngram -> unigram_coverage, bigram_coverage (extra faithfulness signals, extractive QA)."""

    name = "ngram"
    metrics = ("unigram_coverage", "bigram_coverage")
    tasks = ("extractive_qa",)
    needs = ("context",)

    def score(self, items, progress=False):
        from .judge import _bar
        from .text import normalize_many_memo as normalize_many

        answers = normalize_many([it["text"] for it in items])
        sets = {}
        for raw, norm in _unique_normalized(items).items():
            toks = norm.split() if norm else []
            sets[raw] = (set(toks), set(zip(toks, toks[1:])))
        out = []
        with _bar(len(items), "ngram", progress) as bar:
            for it, ans in zip(items, answers):
                uni, bi = sets[it["context"] or ""]
                toks = ans.split()
                if not toks:
                    u = b = 0.0
                else:
                    u = sum(map(uni.__contains__, toks)) / len(toks)
                    # an answer of one token is scored on its whole run (= its unigram coverage)
                    b = (sum(map(bi.__contains__, zip(toks, toks[1:]))) / (len(toks) - 1)
                         if len(toks) > 1 else u)
                out.append({"unigram_coverage": (u, None, None), "bigram_coverage": (b, None, None)})
            bar.update(len(items))
        return out

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

from .api import Judge, progress_bar
from .text import gc_paused, normalize


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


def _padded_contexts(contexts) -> tuple[list[str], dict[str, str]]:
    """(per-item key, {key: " normalised context "}): each distinct context normalised once."""
    from .text import normalize_many_memo

    keys = [c or "" for c in contexts]
    distinct = list(dict.fromkeys(keys))
    return keys, {k: f" {n} " if n else "" for k, n in zip(distinct, normalize_many_memo(distinct))}


_LAST_COVERAGE: list = [None]  # (answers, contexts, result) of the last call


def _coverage_native(nat, answers, contexts):
    """(span, unigram, bigram) lists from the C kernel: answers and each distinct context
    normalised once, then one pass per context over its answers.  The span and ngram judges
    score the same items one after the other, so the last result is kept for one reuse."""
    from .text import native_threads, normalize_many

    answers, contexts = tuple(answers), tuple(contexts)
    last = _LAST_COVERAGE[0]
    if last is not None and last[0] == answers and last[1] == contexts:
        _LAST_COVERAGE[0] = None
        return last[2]
    index: dict[str, int] = {}
    keys = [index.setdefault(c or "", len(index)) for c in contexts]
    out = nat.coverage(normalize_many(answers), keys, normalize_many(list(index)), native_threads())
    _LAST_COVERAGE[0] = (answers, contexts, out)
    return out


def span_coverage_many(answers, contexts) -> list[float]:
    """``[span_coverage(a, c) for a, c in zip(answers, contexts)]`` for a whole pool: all
    texts normalised in one bulk pass, each distinct context once (a context is shared by
    every candidate of its example)."""
    from .text import native, normalize_many_memo

    nat = native()
    if nat is not None:
        return _coverage_native(nat, answers, contexts)[0]
    norm = normalize_many_memo(answers)
    keys, padded = _padded_contexts(contexts)
    return [1.0 if a and padded[k] and f" {a} " in padded[k] else 0.0 for a, k in zip(norm, keys)]


def ngram_coverage_many(answers, contexts) -> tuple[list[float], list[float]]:
    """(unigram, bigram) coverage of each (answer, context) pair, equal to
    ``ngram_coverage(a, c, 1)`` and ``ngram_coverage(a, c, 2)``.

    An answer that is a span of its context (the usual case in extractive QA) scores 1.0
    on both after one substring search.  For the others, the token set of each distinct
    context is built once, when first needed.  No bigram set is built: a
    bigram "x y" of the answer occurs in the context exactly when " x y " is a substring
    of the space-padded normalised context (single spaces only), and it can only when
    both x and y are context tokens.  So each maximal stretch of the answer's context
    tokens is searched as a whole first: when the stretch is a token run of the context
    (a copied phrase, the usual case) all its bigrams are covered by that one search;
    otherwise its bigrams are searched one by one.  This is cheaper than building every
    context's bigram set and creates no tuples for the cyclic GC (paused meanwhile anyway).
    """
    from itertools import groupby

    from .text import native, normalize_many_memo

    nat = native()
    if nat is not None:  # the same rules in C (judging/_native.c), pinned by tests
        _, uni, bi = _coverage_native(nat, answers, contexts)
        return uni, bi
    norm = normalize_many_memo(answers)
    keys, padded = _padded_contexts(contexts)
    uni_out, bi_out = [], []
    sets: dict[str, set] = {}
    with gc_paused():
        for ans, k in zip(norm, keys):
            if not ans:
                uni_out.append(0.0)
                bi_out.append(0.0)
                continue
            pc = padded[k]
            if pc and f" {ans} " in pc:  # the answer is a span of the context: all covered
                uni_out.append(1.0)
                bi_out.append(1.0)
                continue
            ctx_tokens = sets.get(k)
            if ctx_tokens is None:  # built on first need, once per distinct context
                ctx_tokens = sets[k] = set(pc[1:-1].split(" ")) if pc else set()
            toks = ans.split(" ")
            n = len(toks)
            hit = list(map(ctx_tokens.__contains__, toks))
            u = sum(hit) / n
            uni_out.append(u)
            if n == 1:  # an answer of one token is scored on its whole run (= its unigram coverage)
                bi_out.append(u)
                continue
            b = 0
            i = 0
            for is_hit, group in groupby(hit):  # stretches of context tokens
                m = len(list(group))
                if is_hit and m > 1:
                    # a stretch that is a token run of the context covers all its m-1 bigrams
                    # with one search (the usual case: a copied phrase); else bigram by bigram
                    if " " + " ".join(toks[i:i + m]) + " " in pc:
                        b += m - 1
                    else:
                        for j in range(i, i + m - 1):
                            if f" {toks[j]} {toks[j + 1]} " in pc:
                                b += 1
                i += m
            bi_out.append(b / (n - 1))
    return uni_out, bi_out


class SpanJudge(Judge):
    """span -> span_coverage (faithfulness of extractive QA)."""

    name = "span"
    metrics = ("span_coverage",)
    tasks = ("extractive_qa",)
    needs = ("context",)
    signals = {"faith.extractive_qa": "span_coverage"}

    def score(self, items, progress=False):
        from .text import native, normalize_many_memo

        with progress_bar(len(items), "span", progress) as bar, gc_paused():
            if native() is None:  # answers and contexts in one bulk pass (ngram and em reuse the memo)
                normalize_many_memo([it["text"] for it in items] + [it["context"] for it in items])
            vals = span_coverage_many([it["text"] for it in items], [it["context"] for it in items])
            bar.update(len(items))
            return [{"span_coverage": (v, None, None)} for v in vals]


class NgramJudge(Judge):
    """ngram -> unigram_coverage, bigram_coverage (extra faithfulness signals, extractive QA)."""

    name = "ngram"
    metrics = ("unigram_coverage", "bigram_coverage")
    tasks = ("extractive_qa",)
    needs = ("context",)

    def score(self, items, progress=False):
        with progress_bar(len(items), "ngram", progress) as bar, gc_paused():
            uni, bi = ngram_coverage_many([it["text"] for it in items], [it["context"] for it in items])
            bar.update(len(items))
            return [{"unigram_coverage": (u, None, None), "bigram_coverage": (b, None, None)}
                    for u, b in zip(uni, bi)]

"""Task score for extractive QA: exact match after A.2 normalisation, max over references.

    exact_match(answer, references) -> 1.0 / 0.0, or None when there is no reference
    (an example without gold answers cannot be scored; the caller records why).
An empty answer is 0.0 even against an empty reference.
"""

from __future__ import annotations

from .text import gc_paused, normalize


def exact_match(answer: str | None, references) -> float | None:
    refs = [r for r in (references or []) if r is not None]
    if not refs:
        return None
    ans = normalize(answer)
    if not ans:
        return 0.0
    return 1.0 if any(ans == normalize(r) for r in refs) else 0.0


def _judge_base():
    from .judge import Judge

    return Judge


def exact_match_many(answers, references) -> list[float | None]:
    """``[exact_match(a, refs) for a, refs in zip(answers, references)]`` for a whole pool:
    answers and references normalised in one bulk pass, each distinct reference list once."""
    from .text import normalize_many_memo

    answers = list(answers)
    keys = [tuple(refs) if refs else () for refs in references]
    keys = [k if None not in k else tuple(r for r in k if r is not None) for k in keys]
    distinct = list(dict.fromkeys(keys))
    flat = normalize_many_memo([r for k in distinct for r in k] + answers)
    refsets: dict[tuple, frozenset] = {}
    pos = 0
    for k in distinct:
        refsets[k] = frozenset(flat[pos:pos + len(k)])
        pos += len(k)
    out: list[float | None] = []
    for ans, k in zip(flat[pos:], keys):
        if not k:
            out.append(None)
        else:
            out.append(1.0 if ans and ans in refsets[k] else 0.0)
    return out


class ExactMatchJudge(_judge_base()):
    """em -> exact_match (task score of extractive QA); null with a reason when no reference."""

    name = "em"
    metrics = ("exact_match",)
    tasks = ("extractive_qa",)
    needs = ("references",)

    def score(self, items, progress=False):
        from .judge import _bar

        with _bar(len(items), "em", progress) as bar, gc_paused():
            vals = exact_match_many([it["text"] for it in items], [it["references"] for it in items])
            bar.update(len(items))
            return [{"exact_match": (v, None, None)} if v is not None
                    else {"exact_match": (None, None, "example has no reference")} for v in vals]

"""Task score for extractive QA: exact match after A.2 normalisation, max over references.

    exact_match(answer, references) -> 1.0 / 0.0, or None when there is no reference
    (an example without gold answers cannot be scored; the caller records why).
An empty answer is 0.0 even against an empty reference.
"""

from __future__ import annotations

from .api import Judge, progress_bar
from .text import gc_paused, normalize


def exact_match(answer: str | None, references) -> float | None:
    refs = [r for r in (references or []) if r is not None]
    if not refs:
        return None
    ans = normalize(answer)
    if not ans:
        return 0.0
    return 1.0 if any(ans == normalize(r) for r in refs) else 0.0


def exact_match_many(answers, references) -> list[float | None]:
    """``[exact_match(a, refs) for a, refs in zip(answers, references)]`` for a whole pool:
    answers and references normalised in bulk, each reference list once (the items of one
    example share their example's list object)."""
    from .text import native, normalize_many_memo

    nat = native()
    if nat is not None:  # C: each run of items sharing a reference list normalises it once
        return nat.exact_match(normalize_many_memo(answers), references, normalize)
    keep, keys, by_id = [], [], {}
    for refs in references:
        k = by_id.get(id(refs))
        if k is None:  # a new list (kept alive below, so its id stays its own)
            k = by_id[id(refs)] = len(keep)
            keep.append(refs)
        keys.append(k)
    distinct = [[r for r in refs if r is not None] if refs is not None else [] for refs in keep]
    flat = normalize_many_memo([r for rs in distinct for r in rs])
    refsets: list[frozenset | None] = []
    pos = 0
    for rs in distinct:
        refsets.append(frozenset(flat[pos:pos + len(rs)]) if rs else None)
        pos += len(rs)
    sets = [refsets[k] for k in keys]
    return [None if s is None else 1.0 if a and a in s else 0.0
            for a, s in zip(normalize_many_memo(answers), sets)]


class ExactMatchJudge(Judge):
    """em -> exact_match (task score of extractive QA); null with a reason when no reference."""

    name = "em"
    metrics = ("exact_match",)
    tasks = ("extractive_qa",)
    needs = ("refs",)
    signals = {"task.extractive_qa": "exact_match"}

    def score(self, items, progress=False):
        with progress_bar(len(items), "em", progress) as bar, gc_paused():
            vals = exact_match_many([it["text"] for it in items], [it["refs"] for it in items])
            bar.update(len(items))
            return [{"exact_match": (v, None, None)} if v is not None
                    else {"exact_match": (None, None, "example has no reference")} for v in vals]

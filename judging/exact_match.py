"""Task score for extractive QA: exact match after A.2 normalisation, max over references.

    exact_match(answer, references) -> 1.0 / 0.0, or None when there is no reference
    (an example without gold answers cannot be scored; the caller records why).
    exact_match_many(answers, references) -> the same for a whole pool
An empty answer is 0.0 even against an empty reference.
"""

from __future__ import annotations

from .api import Judge, progress_bar
from .items import ScoreColumns, column
from .kernels import gc_paused, native, normalize_many, normalized_texts
from .text import normalize


def _em(answer: str, refs) -> float | None:
    """A normalised answer against its normalised references (None: there is none)."""
    if not refs:
        return None
    return 1.0 if answer and answer in refs else 0.0


def exact_match(answer: str | None, references) -> float | None:
    return _em(normalize(answer), [normalize(r) for r in (references or []) if r is not None])


def exact_match_many(answers, references) -> list[float | None]:
    """``[exact_match(a, refs) for a, refs in zip(answers, references)]`` for a whole pool."""
    return _exact_match(normalize_many(answers), references)


def _exact_match(answers: list[str], references) -> list[float | None]:
    """Normalised ``answers`` against their reference lists, each list normalised once (the items
    of one example share their example's list object)."""
    nat = native()
    if nat is not None:  # C: each run of items sharing a reference list normalises it once
        return nat.exact_match(answers, references, normalize)
    keep, sets = [], {}
    out = []
    for answer, refs in zip(answers, references):
        normed = sets.get(id(refs))
        if normed is None:
            keep.append(refs)  # kept alive, so its id stays its own
            normed = sets[id(refs)] = frozenset(normalize_many([r for r in refs or [] if r is not None]))
        out.append(_em(answer, normed))
    return out


class ExactMatchJudge(Judge):
    """em -> exact_match (task score of extractive QA); null with a reason when no reference."""

    name = "em"
    metrics = ("exact_match",)
    tasks = ("extractive_qa",)
    needs = ("refs",)
    signals = {"task.extractive_qa": "exact_match"}

    def score(self, items, progress=False):
        with progress_bar(len(items), "em", progress) as bar, gc_paused():
            vals = _exact_match(normalized_texts(items), column(items, "refs"))
            bar.update(len(items))
            return ScoreColumns({"exact_match": vals}, missing="example has no reference")

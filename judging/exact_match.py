"""Task score for extractive QA: exact match after A.2 normalisation, max over references.

    exact_match(answer, references) -> 1.0 / 0.0, or None when there is no reference
    (an example without gold answers cannot be scored; the caller records why).
An empty answer is 0.0 even against an empty reference.
"""

from __future__ import annotations

from .text import normalize


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


class ExactMatchJudge(_judge_base()):
    """em -> exact_match (task score of extractive QA); null with a reason when no reference."""

    name = "em"
    metrics = ("exact_match",)
    tasks = ("extractive_qa",)
    needs = ("references",)

    def score(self, items, progress=False):
        from .judge import _bar
        from .text import normalize_many_memo as normalize_many

        answers = normalize_many([it["text"] for it in items])
        keys = list(dict.fromkeys(tuple(r for r in (it["references"] or []) if r is not None)
                                  for it in items))
        flat = normalize_many([r for k in keys for r in k])
        refsets: dict[tuple, frozenset] = {}
        pos = 0
        for k in keys:
            refsets[k] = frozenset(flat[pos:pos + len(k)])
            pos += len(k)
        out = []
        with _bar(len(items), "em", progress) as bar:
            for it, ans in zip(items, answers):
                refs = refsets[tuple(r for r in (it["references"] or []) if r is not None)]
                if not refs:
                    out.append({"exact_match": (None, None, "example has no reference")})
                else:
                    out.append({"exact_match": (1.0 if ans and ans in refs else 0.0, None, None)})
            bar.update(len(items))
        return out

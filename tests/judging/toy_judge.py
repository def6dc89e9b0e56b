"""A toy judge added the way docs/judges.md "Add a judge" says: this module, plus one registry
line, ``JUDGES.register("toy", "tests.judging.toy_judge:ToyJudge")`` (a shipped judge's line
goes into judging/api.py's JUDGES instead).  Used by tests/judging/test_judge_registry.py."""

from __future__ import annotations

from dataclasses import dataclass

from judging.api import Judge, Score
from resetkit.config import field


class ToyJudge(Judge):
    """toy -> length_fit: 1 / (1 + |words - target_words|), the task score of open-ended answers."""

    name = "toy"
    metrics = ("length_fit",)
    tasks = ("open_ended",)
    needs = ("instruction",)
    signals = {"task.open_ended": "length_fit"}

    @dataclass(frozen=True)
    class Options:
        target_words: int = field(4, help="Answer length in words that scores 1.0.")

    def settings(self):
        return {"target_words": self.options.target_words}

    def score(self, items, progress=False):
        out = []
        for it in items:
            if not it["instruction"]:
                out.append({"length_fit": Score(None, error="no instruction")})
                continue
            words = len(it["text"].split())
            out.append({"length_fit": Score(1.0 / (1 + abs(words - self.options.target_words)))})
        return out

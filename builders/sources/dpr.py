"""DPR retriever-results format, shared by NQ, BioASQ and SearchQA (extractive QA).

Rows: ``{question, answers[], ctxs[{id, title, text, score, has_answer}]}`` (a JSON list or
JSONL).  Rules (paper 2.1.2): at most 5 retrieved passages as the context, at least one of
which mentions a gold answer; passages are joined with "\\n"; the question comes first in
the input.

Which passages hold the answer: the retriever's own per-passage flag when the file has one --
``has_answer`` in DPR's results, ``hasanswer`` in other releases of retrieved NQ (FiD's, with
``isgold`` beside it) -- because it was computed against the full answer list with the
retriever's tokenizer; only passages without a flag are checked with a normalised whole-word
match.  How many passages were judged each way is counted (``gold_from:*``) and named in
the card.
"""

from __future__ import annotations

from .base import Context, Source, clean, mentions, pick_passages
from .reader import Column


class DPRSource(Source):
    objective = "faithfulness"
    task = "extractive_qa"
    columns = [Column("question"), Column("answers", "list"), Column("ctxs", "list")]
    rules = ("at most 5 passages (retrieval order), at least one mentions a gold answer "
             "(else the best-ranked gold passage replaces the 5th); drop rows with no gold passage")

    def convert(self, row: dict, ctx: Context) -> dict | str:
        from .. import templates

        question = clean(row["question"])
        answers = [clean(a) for a in row["answers"] if isinstance(a, str) and clean(a)]
        if not question:
            return "empty_question"
        if not answers:
            return "no_answer"
        texts, gold = [], []
        for c in row["ctxs"]:
            if not isinstance(c, dict):
                continue
            text, title = clean(c.get("text")), clean(c.get("title"))
            if not text:
                continue
            texts.append(f"{title} {text}" if title and ctx.passage_title else text)
            flag = "has_answer" if c.get("has_answer") is not None else \
                "hasanswer" if c.get("hasanswer") is not None else None
            if flag is None:
                gold.append(mentions(text, answers))
                ctx.note("gold_from:answer_match")
            else:
                gold.append(_truthy(c[flag]))
                ctx.note(f"gold_from:{flag}")
        passages = pick_passages(texts, gold, ctx)
        if isinstance(passages, str):
            return passages
        return {"uid": f"{question}\x00{answers}", "instruction": templates.TASK_INSTRUCTIONS[self.task],
                "question": question, "passages": passages, "response": answers[0], "refs": answers,
                "meta": {"n_ctxs": len(row["ctxs"])}}

    def card_notes(self, notes: dict[str, int]) -> str | None:
        ways = {"gold_from:has_answer": "the file's `has_answer` flag (DPR)",
                "gold_from:hasanswer": "the file's `hasanswer` flag",
                "gold_from:answer_match": "a normalised whole-word match of a gold answer (no flag in the file)"}
        used = [f"{desc}: {notes[k]:,} passages" for k, desc in ways.items() if notes.get(k)]
        return "gold passages judged by " + "; ".join(used) if used else None


def _truthy(flag) -> bool:
    """A passage flag as DPR and others write it: true/false, 1/0, or "True"/"False"."""
    if isinstance(flag, str):
        return flag.strip().lower() in ("true", "1", "yes")
    return bool(flag)

"""DPR retriever-results format, shared by NQ, BioASQ and SearchQA (extractive QA).

Rows: ``{question, answers[], ctxs[{id, title, text, score, has_answer}]}`` (a JSON list or
JSONL).  Rules (paper 2.1.2): at most 5 retrieved passages as the context, at least one of
which mentions a gold answer (``has_answer`` when present, else a normalised whole-word
match); passages are joined with "\\n"; the question comes first in the input.
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
            has = c.get("has_answer")
            gold.append(bool(has) if has is not None else mentions(text, answers))
        passages = pick_passages(texts, gold, ctx)
        if isinstance(passages, str):
            return passages
        return {"uid": f"{question}\x00{answers}", "instruction": templates.TASK_INSTRUCTIONS[self.task],
                "question": question, "passages": passages, "response": answers[0], "references": answers,
                "meta": {"n_ctxs": len(row["ctxs"])}}

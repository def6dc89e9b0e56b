"""Vicuna-80 (FastChat ``llm_judge/data/vicuna_bench/question.jsonl``): if-eval, no gold answer.

Columns ``question_id, category, turns[1]``; the first turn is the instruction.
"""

from __future__ import annotations

from .base import Context, Source, clean
from .reader import Column


class Vicuna(Source):
    name = "vicuna"
    pretty = "Vicuna-80"
    where = ("https://github.com/lm-sys/FastChat/blob/main/fastchat/llm_judge/data/vicuna_bench/"
             "question.jsonl")
    license = "apache-2.0"
    role = "if-eval"
    columns = [Column("question_id", "any"), Column("category", required=False), Column("turns", "list")]
    rules = "first turn is the instruction; drop empty; keep only instructions unseen in if-train"
    paper_rows = "80"

    def convert(self, row: dict, ctx: Context) -> dict | str:
        turns = row["turns"]
        instruction = clean(turns[0]) if turns and isinstance(turns[0], str) else ""
        if not instruction:
            return "empty_instruction"
        return {"uid": str(row["question_id"]), "instruction": instruction, "response": None,
                "references": [], "meta": {"category": row.get("category"),
                                           "question_id": row["question_id"]}}


SOURCE = Vicuna()

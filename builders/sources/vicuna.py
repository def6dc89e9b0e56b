"""Vicuna-80 (FastChat's Vicuna benchmark questions): if-eval, no gold answer.

Two forms of the same 80 questions are read:

- ``fastchat/llm_judge/data/vicuna_bench/question.jsonl`` (current):
  ``question_id, category, turns[1]``; the first turn is the instruction;
- ``fastchat/eval/table/question.jsonl`` (FastChat's earlier evaluation):
  ``question_id, text, category``; ``text`` is the instruction.
"""

from __future__ import annotations

from .base import BadRow, Context, Source, clean
from .reader import Column


class Vicuna(Source):
    name = "vicuna"
    pretty = "Vicuna-80"
    where = ("https://github.com/lm-sys/FastChat/blob/main/fastchat/llm_judge/data/vicuna_bench/"
             "question.jsonl (or the older fastchat/eval/table/question.jsonl)")
    license = "apache-2.0"
    role = "if-eval"
    # one of `turns` (current form) and `text` (older form) is required: checked in convert
    columns = [Column("question_id", "any"), Column("category", required=False),
               Column("turns", "list", required=False), Column("text", required=False)]
    rules = "first turn (or 'text') is the instruction; drop empty; keep only instructions unseen in if-train"
    paper_rows = "80"

    def convert(self, row: dict, ctx: Context) -> dict | str:
        turns = row.get("turns")
        if turns is not None:
            instruction = clean(turns[0]) if turns and isinstance(turns[0], str) else ""
        elif row.get("text") is not None:
            instruction = clean(row["text"])
        else:
            raise BadRow("missing:turns", "turns",
                         "required column is missing (a question needs 'turns', or 'text' in the older form)")
        if not instruction:
            return "empty_instruction"
        return {"uid": str(row["question_id"]), "instruction": instruction, "response": None,
                "refs": [], "meta": {"category": row.get("category"),
                                           "question_id": row["question_id"]}}


SOURCE = Vicuna()

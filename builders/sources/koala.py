"""Koala-180 (``HuggingFaceH4/Koala-test-set`` or ``koala_test_set.jsonl``): if-eval, no gold."""

from __future__ import annotations

from .base import Context, Source, clean
from .reader import Column


class Koala(Source):
    name = "koala"
    pretty = "Koala-180"
    hub_id = "HuggingFaceH4/Koala-test-set"
    license = "unknown"
    role = "if-eval"
    columns = [Column("id", "any"), Column("prompt")]
    rules = "drop empty prompts; keep only instructions unseen in if-train"
    paper_rows = "180"

    def convert(self, row: dict, ctx: Context) -> dict | str:
        instruction = clean(row["prompt"])
        if not instruction:
            return "empty_instruction"
        return {"uid": str(row["id"]), "instruction": instruction, "response": None, "refs": [],
                "meta": {"koala_id": row["id"]}}


SOURCE = Koala()

"""Alpaca (``tatsu-lab/alpaca``): instruction-following evaluation (if-eval).

Rules: like the training sources, drop rows that come with an input (context) and empty
instructions/responses; the corpus keeps only instructions unseen in if-train.
"""

from __future__ import annotations

from .base import Context, Source, context_free_pair
from .reader import Column


class Alpaca(Source):
    name = "alpaca"
    pretty = "Alpaca"
    hub_id = "tatsu-lab/alpaca"
    license = "cc-by-nc-4.0"
    role = "if-eval"
    columns = [Column("instruction"), Column("input", required=False), Column("output")]
    rules = "drop rows with input; drop empty; keep only instructions unseen in if-train"
    paper_rows = "train 52,002 upstream (paper samples 100)"

    def convert(self, row: dict, ctx: Context) -> dict | str:
        return context_free_pair(row["instruction"], row["output"], row.get("input"))


SOURCE = Alpaca()

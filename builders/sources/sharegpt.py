"""ShareGPT in Alpaca format (``LLMs/Alpaca-ShareGPT``, one JSON file).

Rules (paper 2.1.1): keep responses longer than 10 whitespace-separated words; drop rows
with a non-empty ``input`` (context) and empty instructions.
"""

from __future__ import annotations

from . import columnar as col
from .base import Context, Source, context_free_pair
from .reader import Column

MIN_WORDS = 10


class ShareGPT(Source):
    name = "sharegpt"
    pretty = "ShareGPT (Alpaca-ShareGPT)"
    hub_id = "LLMs/Alpaca-ShareGPT"
    license = "unknown"
    columns = [Column("instruction"), Column("input", required=False), Column("output")]
    rules = f"keep responses longer than {MIN_WORDS} whitespace-separated words; drop rows with input; drop empty"
    paper_rows = "one JSON file (~90k)"

    def convert(self, row: dict, ctx: Context) -> dict | str:
        return context_free_pair(row["instruction"], row["output"], row.get("input"), min_words=MIN_WORDS)

    def convert_table(self, table, ctx: Context):
        """``convert`` on whole columns (same rules, in the same order)."""
        import pyarrow as pa

        instruction, response, _ = col.context_free_pairs(table, ctx, "instruction", "output", "input",
                                                           min_words=MIN_WORDS)
        return pa.table({"instruction": instruction,
                         "response": response, "meta": pa.array(["{}"] * len(response), pa.string())})


SOURCE = ShareGPT()

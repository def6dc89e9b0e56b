"""ShareGPT in Alpaca format (``LLMs/Alpaca-ShareGPT``, one JSON file).

Rules (paper 2.1.1): keep responses longer than 10 whitespace-separated words; drop rows
with a non-empty ``input`` (context) and empty instructions.
"""

from __future__ import annotations

from . import columnar as col
from .base import Context, Source, clean
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
        instruction, response = clean(row["instruction"]), clean(row["output"])
        if clean(row.get("input")):
            return "has_context"
        if not instruction:
            return "empty_instruction"
        if len(response.split(None, MIN_WORDS)) <= MIN_WORDS:  # > MIN_WORDS words leave MIN_WORDS+1 parts
            return f"response_{MIN_WORDS}_words_or_fewer"
        return {"uid": f"{instruction}\x00{response}", "instruction": instruction, "response": response}

    def convert_table(self, table, ctx: Context):
        """``convert`` on whole columns (same rules, in the same order)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        instruction, response = col.clean(table["instruction"]), col.clean(table["output"])
        rules = col.Drops(ctx, table.num_rows)
        rules.rule("has_context", col.nonempty(col.clean(table["input"])))
        rules.rule("empty_instruction", col.empty(instruction))
        # Arrow splits on the same whitespace as str.split(); a stripped "" still gives one
        # (empty) part, which is <= MIN_WORDS either way
        parts = pc.list_value_length(pc.utf8_split_whitespace(response, max_splits=MIN_WORDS))
        rules.rule(f"response_{MIN_WORDS}_words_or_fewer", pc.less_equal(parts, MIN_WORDS))
        instruction, response = instruction.filter(rules.keep), response.filter(rules.keep)
        return pa.table({"instruction": instruction,
                         "response": response, "meta": pa.array(["{}"] * len(response), pa.string())})


SOURCE = ShareGPT()

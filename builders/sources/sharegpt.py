"""ShareGPT in Alpaca format (``LLMs/Alpaca-ShareGPT``, one JSON file).

Rules (paper 2.1.1): keep responses longer than 10 whitespace-separated words; drop rows
with a non-empty ``input`` (context) and empty instructions.
"""

from __future__ import annotations

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


SOURCE = ShareGPT()

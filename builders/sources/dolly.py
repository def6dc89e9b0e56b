"""Dolly-15K (``databricks/databricks-dolly-15k``): instruction-following, train only.

Rules (paper 2.1.1): drop examples that come with context (closed_qa, information_extraction,
summarization...), drop empty instructions or responses.
"""

from __future__ import annotations

from . import columnar as col
from .base import Context, Source, clean
from .reader import Column


class Dolly(Source):
    name = "dolly"
    pretty = "Dolly-15K"
    hub_id = "databricks/databricks-dolly-15k"
    license = "cc-by-sa-3.0"
    columns = [Column("instruction"), Column("context", required=False), Column("response"),
               Column("category", required=False)]
    rules = "drop rows with a non-empty context; drop empty instruction/response"
    paper_rows = "train 15,011 upstream"

    def convert(self, row: dict, ctx: Context) -> dict | str:
        instruction, response = clean(row["instruction"]), clean(row["response"])
        if clean(row.get("context")):
            return "has_context"
        if not instruction:
            return "empty_instruction"
        if not response:
            return "empty_response"
        return {"uid": f"{instruction}\x00{response}", "instruction": instruction, "response": response,
                "meta": {"category": row.get("category")}}

    def convert_table(self, table, ctx: Context):
        """``convert`` on whole columns (same rules, in the same order)."""
        import pyarrow as pa

        instruction, response = col.clean(table["instruction"]), col.clean(table["response"])
        rules = col.Drops(ctx, table.num_rows)
        rules.rule("has_context", col.nonempty(col.clean(table["context"])))
        rules.rule("empty_instruction", col.empty(instruction))
        rules.rule("empty_response", col.empty(response))
        instruction, response = instruction.filter(rules.keep), response.filter(rules.keep)
        category = table["category"].filter(rules.keep).to_pylist()
        return pa.table({"instruction": instruction,
                         "response": response, "meta": col.json_string_field("category", category)})


SOURCE = Dolly()

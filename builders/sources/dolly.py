"""Dolly-15K (``databricks/databricks-dolly-15k``): instruction-following, train only.

Rules (paper 2.1.1): drop examples that come with context (closed_qa, information_extraction,
summarization...), drop empty instructions or responses.
"""

from __future__ import annotations

from . import columnar as col
from .base import Context, Source, context_free_pair
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
        out = context_free_pair(row["instruction"], row["response"], row.get("context"))
        if isinstance(out, dict):
            out["meta"] = {"category": row.get("category")}
        return out

    def convert_table(self, table, ctx: Context):
        """``convert`` on whole columns (same rules, in the same order)."""
        import pyarrow as pa

        instruction, response, keep = col.context_free_pairs(table, ctx, "instruction", "response", "context")
        category = table["category"].filter(keep).to_pylist()
        return pa.table({"instruction": instruction,
                         "response": response, "meta": col.json_string_field("category", category)})


SOURCE = Dolly()

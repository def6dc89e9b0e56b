"""WikiSum (``d0rj/wikisum``): summarization, evaluation only (cd-eval, test split)."""

from __future__ import annotations

from .base import Context, Source, clean
from .reader import Column


class WikiSum(Source):
    name = "wikisum"
    pretty = "WikiSum"
    hub_id = "d0rj/wikisum"
    license = "unknown"
    objective = "faithfulness"
    task = "summarization"
    role = "cd-eval"
    columns = [Column("url", required=False), Column("title", required=False), Column("summary"),
               Column("article"), Column("step_headers", "any", required=False)]
    rules = "article is the context, summary the reference; drop empty"
    paper_rows = "test 2,000"

    def convert(self, row: dict, ctx: Context) -> dict | str:
        from .. import templates

        article, summary = clean(row["article"]), clean(row["summary"])
        if not article:
            return "empty_article"
        if not summary:
            return "empty_summary"
        return {"uid": row.get("url") or f"{article}\x00{summary}",
                "instruction": templates.TASK_INSTRUCTIONS[self.task], "passages": [article],
                "context": article, "response": summary,
                "meta": {"url": row.get("url"), "title": row.get("title")}}


SOURCE = WikiSum()

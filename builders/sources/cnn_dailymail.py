"""CNN/DailyMail 3.0.0 (``abisee/cnn_dailymail``): summarization; the article is the context."""

from __future__ import annotations

from .base import Context, Source, clean
from .reader import Column


class CNNDailyMail(Source):
    name = "cnn_dailymail"
    pretty = "CNN/DailyMail 3.0.0"
    hub_id = "abisee/cnn_dailymail:3.0.0"
    license = "apache-2.0"
    objective = "faithfulness"
    task = "summarization"
    role = "cd-train"
    columns = [Column("article"), Column("highlights"), Column("id", "any")]
    rules = "article is the context, highlights (newline-joined) the reference; drop empty"
    paper_rows = "287,113 / 13,368 / 11,490 (paper Table 1)"

    def convert(self, row: dict, ctx: Context) -> dict | str:
        from .. import templates

        article, summary = clean(row["article"]), clean(row["highlights"])
        if not article:
            return "empty_article"
        if not summary:
            return "empty_summary"
        return {"uid": str(row["id"]), "instruction": templates.TASK_INSTRUCTIONS[self.task],
                "passages": [article], "context": article, "response": summary,
                "meta": {"upstream_id": str(row["id"])}}


SOURCE = CNNDailyMail()

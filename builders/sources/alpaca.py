"""Alpaca (``tatsu-lab/alpaca``, or the publisher's ``alpaca_data.json``): if-eval.

Rules: like the training sources, drop rows that come with an input (context) and empty
instructions/responses; the corpus keeps only instructions unseen in if-train.  Some
outputs of ``alpaca_data.json`` are the marker ``<nooutput>`` (alone, or followed by an
explanation such as "This type of instruction cannot be fulfilled by a GPT model."): the
generator's way of saying it has no answer.  They are not references, so those rows are
dropped with their own reason, ``no_output_marker``.
"""

from __future__ import annotations

from .base import Context, Source, clean, context_free_pair
from .reader import Column

NO_OUTPUT = "<nooutput>"


class Alpaca(Source):
    name = "alpaca"
    pretty = "Alpaca"
    hub_id = "tatsu-lab/alpaca"
    license = "cc-by-nc-4.0"
    role = "if-eval"
    columns = [Column("instruction"), Column("input", required=False), Column("output")]
    rules = ("drop rows with input; drop '<nooutput>' outputs; drop empty; "
             "keep only instructions unseen in if-train")
    paper_rows = "train 52,002 upstream (paper samples 100)"

    def convert(self, row: dict, ctx: Context) -> dict | str:
        out = context_free_pair(row["instruction"], row["output"], row.get("input"))
        if isinstance(out, dict) and clean(row["output"]).lower().startswith(NO_OUTPUT):
            return "no_output_marker"
        return out


SOURCE = Alpaca()

"""OASST-1 (``OpenAssistant/oasst1``): message rows joined into (prompter, assistant) pairs.

Rules (paper 2.1.1): pair each assistant reply with its prompter parent (``parent_id``);
keep replies whose ``quality`` label averages strictly above 0.5 and was given by at least
two annotators.  ``labels`` comes in two encodings, both read: the Hub Parquet struct of
parallel lists ``{name[], value[], count[]}`` and the raw JSON export's
``{name: {value, count}}``.

Why this source is not streamed row by row: a reply may come before its parent, so the
split's prompter texts (id -> text) and the replies that pass the quality rule are held
while reading; for OASST-1 (~88k messages) that is a few tens of MB.
"""

from __future__ import annotations

from typing import Iterator

from .base import Context, Source, clean
from .reader import Chunk, Column

MIN_QUALITY = 0.5
MIN_ANNOTATORS = 2


def quality(labels) -> tuple[float | None, int]:
    """(average value, annotator count) of the ``quality`` label in either encoding."""
    if not isinstance(labels, dict):
        return None, 0
    if isinstance(labels.get("name"), list):  # Hub parquet: parallel lists
        names = labels.get("name") or []
        if "quality" not in names:
            return None, 0
        i = names.index("quality")
        values, counts = labels.get("value") or [], labels.get("count") or []
        value = values[i] if i < len(values) else None
        count = counts[i] if i < len(counts) else 0
        return value, int(count or 0)
    q = labels.get("quality")  # raw export: name -> {value, count}
    if not isinstance(q, dict):
        return None, 0
    return q.get("value"), int(q.get("count") or 0)


class OASST1(Source):
    name = "oasst1"
    pretty = "OASST-1"
    hub_id = "OpenAssistant/oasst1"
    license = "apache-2.0"
    columns = [Column("message_id"), Column("parent_id", required=False), Column("text"), Column("role"),
               Column("lang", required=False), Column("rank", "number", required=False),
               Column("message_tree_id", required=False), Column("labels", "dict", required=False)]
    rules = (f"pair assistant replies with their prompter parent; keep quality > {MIN_QUALITY} "
             f"rated by >= {MIN_ANNOTATORS} annotators; drop empty")
    paper_rows = "train 84,437 / validation 4,401 messages upstream"

    def examples(self, chunks: Iterator[Chunk], split: str, ctx: Context) -> Iterator[dict]:
        prompters: dict[str, str] = {}
        replies: list[dict] = []
        for chunk in chunks:
            for row in chunk.rows:
                if row["role"] == "prompter":
                    prompters[row["message_id"]] = clean(row["text"])
                    ctx.drop("prompter_message")  # not an example by itself
                    continue
                if row["role"] != "assistant":
                    ctx.drop("unknown_role")
                    continue
                value, count = quality(row.get("labels"))
                if value is None:
                    ctx.drop("no_quality_label")
                elif count < MIN_ANNOTATORS:
                    ctx.drop("quality_fewer_than_2_annotators")
                elif not value > MIN_QUALITY:
                    ctx.drop("quality_not_above_0.5")
                else:
                    replies.append({"message_id": row["message_id"], "parent_id": row.get("parent_id"),
                                    "text": clean(row["text"]), "quality": value, "count": count,
                                    "lang": row.get("lang"), "rank": row.get("rank"),
                                    "tree": row.get("message_tree_id")})
        for r in replies:
            instruction = prompters.get(r["parent_id"]) if r["parent_id"] else None
            if instruction is None:
                ctx.drop("no_prompter_parent")
            elif not instruction:
                ctx.drop("empty_instruction")
            elif not r["text"]:
                ctx.drop("empty_response")
            else:
                yield self.finish({
                    "uid": r["message_id"], "instruction": instruction, "response": r["text"],
                    "meta": {"message_id": r["message_id"], "parent_id": r["parent_id"],
                             "quality": r["quality"], "annotators": r["count"], "lang": r["lang"],
                             "rank": r["rank"], "message_tree_id": r["tree"]},
                }, split, ctx)


SOURCE = OASST1()

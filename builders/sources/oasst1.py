"""OASST-1 (``OpenAssistant/oasst1``): message rows joined into (prompter, assistant) pairs.

Rules (paper 2.1.1): pair each assistant reply with its prompter parent (``parent_id``);
keep replies whose ``quality`` label averages strictly above 0.5 and was given by at least
two annotators.  ``labels`` comes in two encodings, both read: the Hub Parquet struct of
parallel lists ``{name[], value[], count[]}`` and the raw JSON export's
``{name: {value, count}}``.

Which messages count at all: the Hub split and the ``*_oasst_ready`` export hold only
messages of trees in state ``ready_for_export`` that are neither deleted nor spam.  The full
export ``*_oasst_all.messages.jsonl(.gz)`` also holds deleted messages (``deleted: true``),
messages that failed review (``review_result: false``; upstream's name for spam) and trees
in other states (``tree_state`` other than ``ready_for_export``).  Those are dropped first,
prompters and replies alike (a reply to a dropped prompter then has no parent), each
counted under its own reason: ``deleted``, ``review_failed``, ``tree_not_ready_for_export``.
A ``review_result`` of null (not yet reviewed enough) is not a failure.

Why this source is not streamed row by row: a reply may come before its parent, so the
split's prompter texts (id -> text) and the replies that pass the quality rule are held
while reading; for OASST-1 (~88k messages) that is a few tens of MB.
"""

from __future__ import annotations

from typing import Iterator

from . import columnar as col
from .base import BadRow, Context, Source, clean
from .reader import Chunk, Column

MIN_QUALITY = 0.5
MIN_ANNOTATORS = 2
READY = "ready_for_export"


def export_state(row: dict) -> str | None:
    """The drop reason of a message the ready export leaves out, or None (BadRow on a flag
    that is not a boolean)."""
    for name in ("deleted", "review_result"):
        v = row.get(name)
        if v is not None and not isinstance(v, bool):
            raise BadRow(f"type:{name}", name, f"expected bool, got {type(v).__name__} ({str(v)[:40]!r})")
    if row.get("deleted"):
        return "deleted"
    if row.get("review_result") is False:
        return "review_failed"
    state = row.get("tree_state")
    if state is not None and state != READY:
        return "tree_not_ready_for_export"
    return None


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
               Column("message_tree_id", required=False), Column("labels", "dict", required=False),
               # the full export's flags ("any": bool, checked in export_state, so Parquet's
               # bool columns keep the columnar path)
               Column("deleted", "any", required=False), Column("review_result", "any", required=False),
               Column("tree_state", required=False)]
    rules = (f"drop deleted, failed-review and not-ready-for-export messages; pair assistant replies with "
             f"their prompter parent; keep quality > {MIN_QUALITY} rated by >= {MIN_ANNOTATORS} annotators; "
             f"drop empty")
    paper_rows = "train 84,437 / validation 4,401 messages upstream"
    rows_independent = False         # replies are paired with prompters anywhere in the split

    def examples(self, chunks: Iterator[Chunk], split: str, ctx: Context) -> Iterator[dict]:
        prompters: dict[str, str] = {}
        replies: list[dict] = []
        for chunk in chunks:
            for i, row in enumerate(chunk.rows):
                try:
                    left_out = export_state(row)
                except BadRow as exc:
                    ctx.bad_row(exc, chunk.where[i] if i < len(chunk.where) else None)
                    continue
                if left_out:
                    ctx.drop(left_out)
                    continue
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

    def convert_table(self, table, ctx: Context):
        """``examples`` on whole columns: the quality label is looked up with list kernels,
        the prompter join runs over the kept replies only.  Hub (parallel-list) labels
        only; other encodings go the row path (returns None)."""
        import json

        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        label = _quality_columns(table["labels"])
        if label is None:
            return None
        value, count = label
        left_out = _export_state_columns(table)
        if left_out is None:
            return None
        # messages the ready export leaves out go first, as in the row path
        keep = np.ones(table.num_rows, bool)
        for reason, failed in left_out:
            failed = failed & keep
            if failed.any():
                ctx.drop(reason, int(failed.sum()))
            keep &= ~failed
        role = pc.fill_null(table["role"], "")
        is_prompter = pc.equal(role, "prompter").to_numpy(zero_copy_only=False) & keep
        prompt_ids = table["message_id"].filter(is_prompter).to_pylist()
        prompters = dict(zip(prompt_ids, col.clean(table["text"].filter(is_prompter)).to_pylist()))
        has_value = pc.is_valid(value).to_numpy(zero_copy_only=False)
        v = pc.fill_null(value, 0.0).to_numpy(zero_copy_only=False)
        is_assistant = pc.equal(role, "assistant").to_numpy(zero_copy_only=False)
        # the row path's chain of checks, in order; each row counted under its first failure
        reasons = [("prompter_message", is_prompter),
                   ("unknown_role", ~is_assistant),
                   ("no_quality_label", ~has_value),
                   ("quality_fewer_than_2_annotators", count < MIN_ANNOTATORS),
                   ("quality_not_above_0.5", ~(v > MIN_QUALITY))]
        for reason, failed in reasons:
            failed = failed & keep
            if failed.any():
                ctx.drop(reason, int(failed.sum()))
            keep &= ~failed
        replies = table.filter(pa.array(keep))
        quality_kept = value.filter(pa.array(keep)).to_pylist()
        count_kept = count[keep].tolist()
        texts = col.clean(replies["text"]).to_pylist()
        out = {"uid": [], "instruction": [], "response": [], "meta": []}
        for q, c, mid, parent, text, lang, rank, tree in zip(
                quality_kept, count_kept, *(replies[n].to_pylist() for n in ("message_id", "parent_id")),
                texts, *(replies[n].to_pylist() for n in ("lang", "rank", "message_tree_id"))):
            instruction = prompters.get(parent) if parent else None
            if instruction is None:
                ctx.drop("no_prompter_parent")
            elif not instruction:
                ctx.drop("empty_instruction")
            elif not text:
                ctx.drop("empty_response")
            else:
                out["uid"].append(mid)
                out["instruction"].append(instruction)
                out["response"].append(text)
                out["meta"].append(json.dumps(
                    {"message_id": mid, "parent_id": parent, "quality": q, "annotators": c, "lang": lang,
                     "rank": rank, "message_tree_id": tree}, sort_keys=True, ensure_ascii=False))
        return pa.table({k: pa.array(v, pa.string()) for k, v in out.items()})


def _export_state_columns(table):
    """``export_state`` on whole columns: [(reason, numpy mask)] in the row path's order, or
    None when a flag column is not boolean (the row path then reports the row)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    flags = {}
    for name in ("deleted", "review_result"):
        arr = table[name]
        if arr.null_count == n:  # absent (read as nulls of some type): no message flagged
            flags[name] = (np.zeros(n, bool), np.zeros(n, bool))  # (is true, is false)
        elif pa.types.is_boolean(arr.type):
            flags[name] = (pc.fill_null(arr, False).to_numpy(zero_copy_only=False),
                           pc.fill_null(pc.invert(arr), False).to_numpy(zero_copy_only=False))
        else:
            return None
    state = table["tree_state"]
    if pa.types.is_null(state.type):
        not_ready = np.zeros(n, bool)
    else:
        not_ready = pc.fill_null(pc.not_equal(state, READY), False).to_numpy(zero_copy_only=False)
    return [("deleted", flags["deleted"][0]), ("review_failed", flags["review_result"][1]),
            ("tree_not_ready_for_export", not_ready)]


def _quality_columns(labels):
    """(value, count) of the ``quality`` label per row, like ``quality()`` on each row:
    value an Arrow array (null: no label), count an int numpy array.  Hub encoding only
    (struct of parallel lists ``name``, ``value``, ``count``); None for anything else."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(labels)
    if pa.types.is_null(labels.type):  # no labels at all: no row has a quality label
        return pa.nulls(n, pa.float64()), np.zeros(n, np.int64)
    t = labels.type
    if not pa.types.is_struct(t) or {t.field(i).name for i in range(t.num_fields)} != {"name", "value", "count"}:
        return None
    labels = labels.combine_chunks()
    names, values, counts = (pc.struct_field(labels, f) for f in ("name", "value", "count"))
    if not all(pa.types.is_list(a.type) for a in (names, values, counts)) \
            or not pa.types.is_string(names.type.value_type) \
            or not (pa.types.is_floating(values.type.value_type) or pa.types.is_integer(values.type.value_type)) \
            or not pa.types.is_integer(counts.type.value_type):
        return None

    def flat(lists):
        """(flattened values, where each row starts in them, each row's length; null -> 0)."""
        lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return pc.list_flatten(lists), starts, lengths

    name_flat, name_start, _ = flat(names)
    hits = np.flatnonzero(pc.fill_null(pc.equal(name_flat, "quality"), False).to_numpy(zero_copy_only=False))
    rows_hit = pc.list_parent_indices(names).to_numpy(zero_copy_only=False)[hits] if len(hits) else hits
    rows, first = np.unique(rows_hit, return_index=True)      # names.index("quality"): the first hit
    pos = hits[first] - name_start[rows]                       # its place within the row's list
    value_flat, value_start, value_len = flat(values)
    count_flat, count_start, count_len = flat(counts)
    has_v = pos < value_len[rows]
    value_idx = np.full(n, -1, np.int64)
    value_idx[rows[has_v]] = value_start[rows[has_v]] + pos[has_v]
    value = value_flat.take(pa.array(np.where(value_idx >= 0, value_idx, 0))) if len(value_flat) else \
        pa.nulls(n, values.type.value_type)
    value = pc.if_else(pa.array(value_idx >= 0), value, pa.scalar(None, value.type))
    has_c = pos < count_len[rows]
    count = np.zeros(n, np.int64)
    cvals = pc.fill_null(count_flat, 0).to_numpy(zero_copy_only=False)
    count[rows[has_c]] = cvals[count_start[rows[has_c]] + pos[has_c]]
    return value, count


SOURCE = OASST1()

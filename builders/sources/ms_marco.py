"""MS MARCO v2.1 (``microsoft/ms_marco``, config ``v2.1``): abstractive QA.

Rules (paper 2.1.2): only queries with at least one well-formed answer -- ``[]``, ``[""]``
and ``["[]"]`` (the Hub's encoding of "none") count as none; the well-formed answers are
the references.  Context: at most 5 passages in the given order, at least one of them the
passage the annotator selected (``is_selected``), the same swap rule as NQ.

On Arrow input (Parquet, CSV, Hub) the well-formed-answer rule runs vectorised before rows
become Python objects: ~80% of the 809k training rows have none.
"""

from __future__ import annotations

from .base import Context, Source, clean, pick_passages
from .reader import Column

NONE_MARKERS = ("", "[]")


def well_formed(answers) -> list[str]:
    return [a.strip() for a in (answers or []) if isinstance(a, str) and a.strip() not in NONE_MARKERS]


class MSMarco(Source):
    name = "ms_marco"
    pretty = "MS MARCO v2.1"
    hub_id = "microsoft/ms_marco:v2.1"
    license = "other"
    objective = "faithfulness"
    task = "abstractive_qa"
    role = "cd-train"
    columns = [Column("query"), Column("query_id", "any"), Column("query_type", required=False),
               Column("answers", "list", required=False), Column("passages", "dict"),
               Column("wellFormedAnswers", "list", required=False)]
    rules = ("keep queries with a well-formed answer ([], [''], ['[]'] are none); at most 5 passages, "
             "at least one selected")
    paper_rows = "153,725 / 2,500 / 12,466 (paper Table 1)"
    has_prefilter = True

    def prefilter(self, batch, ctx: Context):
        import pyarrow as pa
        import pyarrow.compute as pc

        if "wellFormedAnswers" not in batch.schema.names:
            return batch, range(batch.num_rows)
        col = batch.column("wellFormedAnswers")
        if not pa.types.is_list(col.type) and not pa.types.is_large_list(col.type):
            return batch, range(batch.num_rows)  # wrong type: the row check reports it
        values = pc.utf8_trim_whitespace(pc.list_flatten(col))
        parents = pc.list_parent_indices(col)
        ok = pc.and_(pc.invert(pc.is_in(values, pa.array(NONE_MARKERS))), pc.is_valid(values))
        keep_idx = pc.unique(pc.filter(parents, pc.fill_null(ok, False))).to_pylist()
        keep_idx.sort()
        dropped = batch.num_rows - len(keep_idx)
        if dropped:
            ctx.drop("no_well_formed_answer", dropped)
        return batch.take(pa.array(keep_idx, pa.int64())), keep_idx

    def convert(self, row: dict, ctx: Context) -> dict | str:
        query = clean(row["query"])
        refs = well_formed(row.get("wellFormedAnswers"))
        if not refs:
            return "no_well_formed_answer"
        if not query:
            return "empty_question"
        p = row["passages"]
        texts_raw = p.get("passage_text") or []
        selected = p.get("is_selected") or [0] * len(texts_raw)
        texts, gold = [], []
        for t, s in zip(texts_raw, selected):
            if isinstance(t, str) and t.strip():
                texts.append(t.strip())
                gold.append(bool(s))
        passages = pick_passages(texts, gold, ctx)
        if isinstance(passages, str):
            return passages
        from .. import templates

        return {"uid": str(row["query_id"]), "instruction": templates.TASK_INSTRUCTIONS[self.task],
                "question": query, "passages": passages, "response": refs[0], "references": refs,
                "meta": {"query_id": row["query_id"], "query_type": row.get("query_type"),
                         "answers": row.get("answers")}}


SOURCE = MSMarco()

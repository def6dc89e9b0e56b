"""MS MARCO v2.1 (``microsoft/ms_marco``, config ``v2.1``): abstractive QA.

Rules (paper 2.1.2): only queries with at least one well-formed answer -- ``[]``, ``[""]``
and ``["[]"]`` (the Hub's encoding of "none") count as none; the well-formed answers are
the references.  Context: at most 5 passages in the given order, at least one of them the
passage the annotator selected (``is_selected``), the same swap rule as NQ.

Two row shapes are read, in every input form:

- the Hub's (Parquet): ``passages`` is a struct of parallel lists
  ``{is_selected[], passage_text[], url[]}`` and ``wellFormedAnswers`` a list of strings;
- the publisher's (its documented JSONL row, and the rows of its column-oriented
  ``*_v2.1.json.gz``): ``passages`` is a list of ``{is_selected, url, passage_text}``
  objects and ``wellFormedAnswers`` is the *string* ``"[]"`` when there is none, else a
  list.  A string that holds a JSON list (a CSV cell) is read as that list.

On Arrow input (Parquet, CSV, Hub) the well-formed-answer rule runs vectorised before rows
become Python objects: ~80% of the 809k training rows have none.
"""

from __future__ import annotations

import json

from .base import BadRow, Context, Source, clean, pick_passages
from .reader import Column

NONE_MARKERS = ("", "[]")


def well_formed(answers) -> list[str]:
    """The real well-formed answers of a row, in either shape (BadRow for anything else)."""
    if answers is None:
        return []
    if isinstance(answers, str):
        text = answers.strip()
        if text in NONE_MARKERS:
            return []
        if not text.startswith("["):
            raise BadRow("type:wellFormedAnswers", "wellFormedAnswers",
                         f"expected a list or the string '[]', got str ({text[:40]!r})")
        try:
            answers = json.loads(text)
        except json.JSONDecodeError:
            raise BadRow("type:wellFormedAnswers", "wellFormedAnswers",
                         f"not a JSON list ({text[:40]!r})") from None
    if not isinstance(answers, list):
        raise BadRow("type:wellFormedAnswers", "wellFormedAnswers",
                     f"expected a list or the string '[]', got {type(answers).__name__}")
    return [a.strip() for a in answers if isinstance(a, str) and a.strip() not in NONE_MARKERS]


def passage_list(passages) -> tuple[list, list]:
    """(passage texts, is_selected flags) from either shape (BadRow for anything else)."""
    if isinstance(passages, str) and passages.strip()[:1] in ("[", "{"):  # a CSV cell
        try:
            passages = json.loads(passages)
        except json.JSONDecodeError:
            pass
    if isinstance(passages, dict):  # Hub: struct of parallel lists
        texts = passages.get("passage_text") or []
        return texts, passages.get("is_selected") or [0] * len(texts)
    if isinstance(passages, list) and all(isinstance(p, dict) for p in passages):  # publisher's rows
        return [p.get("passage_text") for p in passages], [p.get("is_selected") for p in passages]
    raise BadRow("type:passages", "passages", "expected a list of {is_selected, url, passage_text} objects "
                 f"or a struct of lists, got {type(passages).__name__}")


class MSMarco(Source):
    name = "ms_marco"
    pretty = "MS MARCO v2.1"
    hub_id = "microsoft/ms_marco:v2.1"
    license = "other"
    objective = "faithfulness"
    task = "abstractive_qa"
    role = "cd-train"
    # passages and wellFormedAnswers take two shapes each: checked in convert (BadRow)
    columns = [Column("query"), Column("query_id", "any"), Column("query_type", required=False),
               Column("answers", "list", required=False), Column("passages", "any"),
               Column("wellFormedAnswers", "any", required=False)]
    rules = ("keep queries with a well-formed answer ([], [''], ['[]'], '[]' are none); at most 5 passages, "
             "at least one selected")
    paper_rows = "153,725 / 2,500 / 12,466 (paper Table 1)"
    has_prefilter = True

    def prefilter(self, batch, ctx: Context):
        """The well-formed-answer rule on an Arrow batch: a list column (Hub), or a string
        column holding "[]" for none (the publisher's shape, as a CSV/Parquet cell).  Rows the
        rule cannot judge here (other types) pass on to ``convert``."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if "wellFormedAnswers" not in batch.schema.names:
            return batch, range(batch.num_rows)
        col = batch.column("wellFormedAnswers")
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            if not (pa.types.is_string(col.type.value_type) or pa.types.is_large_string(col.type.value_type)):
                return batch, range(batch.num_rows)  # e.g. a list of nulls: convert decides
            values = pc.utf8_trim_whitespace(pc.list_flatten(col))
            parents = pc.list_parent_indices(col)
            ok = pc.and_(pc.invert(pc.is_in(values, pa.array(NONE_MARKERS))), pc.is_valid(values))
            keep_idx = pc.unique(pc.filter(parents, pc.fill_null(ok, False))).to_pylist()
            keep_idx.sort()
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            none = pc.or_(pc.is_null(col), pc.is_in(pc.utf8_trim_whitespace(col), pa.array(NONE_MARKERS)))
            keep_idx = pc.indices_nonzero(pc.invert(none)).to_pylist()
        else:
            return batch, range(batch.num_rows)  # wrong type: the row check reports it
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
        texts_raw, selected = passage_list(row["passages"])
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
                "question": query, "passages": passages, "response": refs[0], "refs": refs,
                "meta": {"query_id": row["query_id"], "query_type": row.get("query_type"),
                         "answers": row.get("answers")}}


SOURCE = MSMarco()

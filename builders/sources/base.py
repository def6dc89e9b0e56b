"""The one small interface every upstream source implements, and the shared rule helpers.

A source subclass declares what it is (name, Hub id, license, objective, task, columns,
the paper's rules in words) and writes one method, ``convert(row, ctx)``, that maps an
upstream row to a partial example dict -- or returns a drop reason (a short string).  The
base class does the bookkeeping: reading splits (``reader``), counting drops per reason,
stable ids, prompts.  Sources that need the whole split at once (OASST-1 joins replies to
their parents) override ``examples`` instead.

A partial example holds ``uid`` (upstream id or content, hashed with the source name into
the stable ``id``), ``instruction``, and optionally ``question``, ``passages``, ``context``,
``response``, ``refs``, ``meta``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Iterator

from resetkit.errors import BadInputError

from .. import templates
from .reader import Chunk, Column


class BadRow(Exception):
    """Raised by ``convert`` for a malformed row the column declarations cannot describe
    (a column that may take one of several shapes, or one of two alternative columns).
    ``examples`` turns it into the reader's error, naming the file, line/row and column, or,
    with ``--on-bad-rows skip``, into the drop reason ``bad_row:<reason>``."""

    def __init__(self, reason: str, column: str, message: str):
        super().__init__(message)
        self.reason, self.column, self.message = reason, column, message


@dataclass
class Context:
    """What a source needs to know about the build (and where its drops go)."""

    template: str = "alpaca"
    max_passages: int = 5
    gold_passage: str = "swap"       # swap | drop: gold only beyond the first max_passages
    passage_title: bool = True
    on_bad_rows: str = "error"       # error | skip: what a BadRow from convert does
    drops: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # counts the card reports (not drops)

    def drop(self, reason: str, n: int = 1) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + n

    def note(self, what: str, n: int = 1) -> None:
        self.notes[what] = self.notes.get(what, 0) + n

    def bad_row(self, exc: BadRow, where: tuple[str, str, int] | None) -> None:
        """Report a BadRow: raise naming the file, line/row and column, or count it (skip)."""
        if self.on_bad_rows == "skip":
            self.drop(f"bad_row:{exc.reason}")
            return
        path, unit, number = where if where else ("<input>", None, None)
        raise BadInputError(path, exc.message, line=number if unit == "line" else None,
                            row=number if unit == "row" else None, column=exc.column) from None


class Source:
    name: str = ""
    pretty: str = ""
    hub_id: str | None = None        # "repo" or "repo:config"
    where: str = ""                  # where to get it when there is no Hub id
    license: str = "other"
    objective: str = "instruction"
    task: str = "open_ended"
    role: str = "if-train"           # the corpus it feeds
    columns: list[Column] = []
    rules: str = ""
    paper_rows: str = ""

    has_prefilter = False
    rows_independent = True          # convert_table may be given a split in slices

    def prefilter(self, batch, ctx: Context):
        """Optional vectorised pre-filter of Arrow input (Parquet, CSV, Hub) that applies the
        same rule, with the same drop reason, as ``convert`` -- only faster, because most rows
        of a big source never become Python objects.  Returns (batch, kept row indices).
        """
        return batch, range(batch.num_rows)

    def convert(self, row: dict, ctx: Context) -> dict | str:  # pragma: no cover - abstract
        raise NotImplementedError

    def columnar_ok(self, table) -> bool:
        """Can ``convert_table`` take this whole split (already read and type-checked)?  For
        checks the column declarations cannot express (one of two alternative columns, a
        column of several shapes); False sends the split down the row path, which reports
        the bad row or counts it."""
        return True

    def card_notes(self, notes: dict[str, int]) -> str | None:
        """One sentence for the card about this source's ``ctx.note`` counts (None: nothing)."""
        return None

    def convert_table(self, table, ctx: Context):
        """Optional columnar twin of ``convert`` (or ``examples``) for a whole split.

        ``table`` holds the declared columns, already checked (``columnar.read_split``).
        Returns a table of partial examples -- ``instruction, response, meta`` (meta already
        JSON text) and ``uid`` when it is not ``instruction NUL response`` -- with the same rows, drop reasons and counts as the row path,
        or None when this source has no columnar version (the row path is used).
        Only sources without question/passages/context (the instruction-following ones)
        implement it, so ``finish_table`` need not handle those fields.
        """
        return None

    def examples(self, chunks: Iterator[Chunk], split: str, ctx: Context) -> Iterator[dict]:
        """Finished example rows (schema EXAMPLES) of one split, in upstream order."""
        for chunk in chunks:
            for i, row in enumerate(chunk.rows):
                try:
                    out = self.convert(row, ctx)
                except BadRow as exc:
                    ctx.bad_row(exc, chunk.where[i] if i < len(chunk.where) else None)
                    continue
                if isinstance(out, str):
                    ctx.drop(out)
                else:
                    yield self.finish(out, split, ctx)

    # -- helpers -------------------------------------------------------------------
    def finish(self, ex: dict, split: str, ctx: Context) -> dict:
        """Fill in id, objective, task, split, prompt, template, and the JSON meta."""
        question, passages = ex.get("question"), ex.get("passages") or []
        context = ex.get("context")
        if context is None and passages:
            context = "\n".join(passages)
        if question is not None:
            model_input = templates.qa_input(question, passages)
        else:
            model_input = context
        response = ex.get("response")
        refs = ex.get("refs")
        if refs is None:
            refs = [response] if response is not None else []
        return {
            # == short_hash(source + NUL + uid, 16), inlined: this runs once per row
            "id": hashlib.sha256(f"{self.name}\x00{ex['uid']}".encode("utf-8")).hexdigest()[:16],
            "source": self.name,
            "objective": self.objective,
            "task": self.task,
            "split": split,
            "instruction": ex["instruction"],
            "question": question,
            "context": context,
            "passages": passages,
            "response": response,
            "refs": refs,
            "prompt": templates.render(ctx.template, ex["instruction"], model_input),
            "template": ctx.template,
            "meta": json.dumps(ex["meta"], sort_keys=True, ensure_ascii=False) if ex.get("meta") else "{}",
        }


    def finish_table(self, part, split: str, ctx: Context):
        """``finish`` on a table from ``convert_table``: an EXAMPLES table (no question,
        context or passages; the response is the one reference)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from resetkit.schemas import EXAMPLES

        n = part.num_rows
        response = part.column("response")  # one Array for the refs' ListArray
        response = response.chunk(0) if response.num_chunks == 1 else response.combine_chunks()
        instruction = part.column("instruction")
        ids = _ids(self.name, part)
        prefix, suffix = templates.affixes(ctx.template)
        const = lambda v: pa.array([v] * n, pa.string())  # noqa: E731 - a column of one value
        columns = {
            "id": pa.array(ids, pa.string()), "source": const(self.name), "objective": const(self.objective),
            "task": const(self.task), "split": const(split), "instruction": instruction,
            "question": pa.nulls(n, pa.string()), "context": pa.nulls(n, pa.string()),
            "passages": pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string())),
            "response": response,
            "refs": pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), response),
            "prompt": pc.binary_join_element_wise(prefix, instruction, suffix, ""),
            "template": const(ctx.template), "meta": part.column("meta"),
        }
        return pa.table([columns[f.name] for f in EXAMPLES], schema=EXAMPLES)


def _ids(source: str, part) -> list[str]:
    """``finish``'s ids for a table: sha256 of ``source NUL uid``, where uid is the ``uid``
    column or, without one, ``instruction NUL response`` (hashed from the Arrow buffers, so
    the joined text is never built)."""
    from . import columnar

    base = hashlib.sha256(f"{source}\x00".encode("utf-8"))
    if "uid" in part.column_names:
        parts = [columnar.row_bytes(part.column("uid"))]
    else:
        parts = [columnar.row_bytes(part.column("instruction")), [b"\x00"] * part.num_rows,
                 columnar.row_bytes(part.column("response"))]
    ids = []
    for pieces in zip(*parts):
        h = base.copy()
        for piece in pieces:
            h.update(piece)
        ids.append(h.hexdigest()[:16])
    return ids


_WS = re.compile(r"\s+")


def clean(text) -> str:
    """Strip a text field; None -> ""."""
    return text.strip() if isinstance(text, str) else ""


def context_free_pair(instruction, response, context, *, min_words: int = 0) -> dict | str:
    """The instruction-following rule of Alpaca, Dolly and ShareGPT (paper §3): rows that come
    with a context/input are dropped, and so are empty instructions and empty responses -- or,
    with ``min_words``, responses of ``min_words`` whitespace-separated words or fewer.
    Returns the partial example (uid, instruction, response) or the drop reason."""
    instruction, response = clean(instruction), clean(response)
    if clean(context):
        return "has_context"
    if not instruction:
        return "empty_instruction"
    if min_words:
        if len(response.split(None, min_words)) <= min_words:  # > min_words words leave min_words+1 parts
            return f"response_{min_words}_words_or_fewer"
    elif not response:
        return "empty_response"
    return {"uid": f"{instruction}\x00{response}", "instruction": instruction, "response": response}


def norm_key(text: str | None) -> str:
    """Whitespace- and case-insensitive form used for de-duplication and 'unseen' checks."""
    return " ".join((text or "").split()).lower()


_ANS_PUNCT = re.compile(r"[^\w\s]")


def _norm_answer(text: str) -> str:
    return _WS.sub(" ", _ANS_PUNCT.sub(" ", text.lower())).strip()


def mentions(passage: str, answers: list[str]) -> bool:
    """Does a passage mention one of the gold answers (normalised, whole-word substring)?"""
    p = f" {_norm_answer(passage)} "
    return any(a and f" {a} " in p for a in (_norm_answer(x) for x in answers))


def pick_passages(passages: list[str], gold: list[bool], ctx: Context) -> list[str] | str:
    """The paper's context rule: at most ``max_passages`` passages, at least one with the gold.

    Keeps retrieval order.  When no gold passage is among the first ``max_passages``:
    ``gold_passage="swap"`` (default) replaces the last kept passage with the best-ranked
    gold passage; ``"drop"`` drops the example.  No gold passage at all -> drop.
    Returns the passages or a drop reason.
    """
    if not passages:
        return "no_passages"
    if not any(gold):
        return "no_gold_passage"
    k = ctx.max_passages
    head = passages[:k]
    if any(gold[:k]):
        return head
    if ctx.gold_passage == "drop":
        return "gold_beyond_max_passages"
    first_gold = next(i for i, g in enumerate(gold) if g)
    return head[:-1] + [passages[first_gold]]

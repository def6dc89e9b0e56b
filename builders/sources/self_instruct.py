"""Self-Instruct (``yizhongw/self_instruct``, config ``self_instruct``): instruction-following.

Two release forms are read:

- ``prompt, completion`` (the Hub's rows, and upstream's ``gpt3_finetuning_data*.jsonl``):
  upstream ``prepare_for_finetuning.py`` rendered each instance with one of 13 templates, 7
  with an input and 6 without (``TEMPLATES``, their text as upstream wrote them); completions
  are ``" {output}<|endoftext|>"`` or ``"{output}<|endoftext|>"``;
- ``instruction, input, output`` (the repository's instance files, which
  ``prepare_for_finetuning.py`` also writes beside prompt/completion): used as they are
  whenever a row has them.

Rules: recover instruction, input and output from the template (``parse_prompt``), strip
``<|endoftext|>``, drop empty instructions/responses.

How rows with an input are treated (the paper drops examples that "originally come with
context" to keep instruction data apart from its context-dependent tasks): a Self-Instruct
input is part of the task the instruction poses ("Classify the sentiment of the sentence."
+ "I love this phone."), short and written by the same generator, not a retrieved document
or an article, and the instruction is meaningless without it.  So these rows are kept: the
input is appended to the instruction on its own line and also kept in ``meta.input``.  The
card counts them.

Where the templates are ambiguous -- a prompt ``"A\\nB\\n\\n"`` is ``"{instruction}\\n{input}\\n\\n"``
or ``"{instruction}\\n\\n"`` with a two-line instruction -- the templates without an
``Output:`` label are read with a one-line instruction and the rest as the input (upstream's
instructions are single lines; inputs are often several paragraphs).  A prompt no
template produces (hand-edited, or stripped of its trailing newlines) is read leniently:
an ``Output:`` label at the end is removed and a line starting with ``Input:`` starts the
input (any whitespace around the labels), else the whole prompt is the instruction;
``meta.upstream_template`` is then null and the card counts such rows.
"""

from __future__ import annotations

import json
import re

from . import columnar as col
from .base import BadRow, Context, Source, clean
from .reader import Column

EOS = "<|endoftext|>"
FIELDS = "instruction/input/output"      # meta.upstream_template of the three-column form

# upstream's templates, in the order they are tried: each (name, regex) where the regex
# (Python ``re.fullmatch`` and RE2 ``^(?:...)$``, both with DOTALL) recovers the instruction
# ``i`` and the input ``x``.  Templates that could also match a later one come first:
# "Task: " prefixes before plain ones, blank-line separators before single newlines.
TEMPLATES: list[tuple[str, str]] = [
    ("Task: {instruction}\nInput: {input}\nOutput:", r"Task: (?P<i>.*?)\nInput: (?P<x>.*)\nOutput:"),
    ("{instruction}\n\nInput: {input}\n\nOutput:", r"(?P<i>.*?)\n\nInput: (?P<x>.*)\n\nOutput:"),
    ("{instruction}\nInput: {input}\nOutput:", r"(?P<i>.*?)\nInput: (?P<x>.*)\nOutput:"),
    ("{instruction}\n\n{input}\n\nOutput:", r"(?P<i>.*?)\n\n(?P<x>.+)\n\nOutput:"),
    ("{instruction}\n\nOutput:", r"(?P<i>.*)\n\nOutput:"),
    ("{instruction}\nOutput:", r"(?P<i>.*)\nOutput:"),
    ("{instruction} Output:", r"(?P<i>.*) Output:"),
    ("Task: {instruction}\n\n{input}\n\n", r"Task: (?P<i>.*?)\n\n(?P<x>.+)\n\n"),
    ("Task: {instruction}\n\n", r"Task: (?P<i>.*)\n\n"),
    ("{instruction}\n\n{input}\n\n", r"(?P<i>[^\n]*)\n\n(?P<x>.+)\n\n"),
    ("{instruction}\n{input}\n\n", r"(?P<i>[^\n]*)\n(?P<x>.+)\n\n"),
    ("{instruction}\n\n", r"(?P<i>.*)\n\n"),
    ("{instruction}\n", r"(?P<i>.*)\n"),
]
_COMPILED = [(name, re.compile(body, re.DOTALL)) for name, body in TEMPLATES]
# the lenient reading of a prompt no template produces (Python's \s; RE2 spells it out)
_OUTPUT = re.compile(r"\s*Output\s*:\s*$")
_INPUT = re.compile(r"\n\s*Input\s*:[ \t]*")


def parse_prompt(prompt: str) -> tuple[str, str, str | None]:
    """-> (instruction, input, template name or None) of a rendered prompt (not stripped)."""
    for name, rx in _COMPILED:
        m = rx.fullmatch(prompt)
        if m:
            return clean(m.group("i")), clean(m.groupdict().get("x")), name
    parts = _INPUT.split(_OUTPUT.sub("", prompt), maxsplit=1)
    return clean(parts[0]), clean(parts[1]) if len(parts) > 1 else "", None


def strip_scaffolding(prompt: str, completion: str) -> tuple[str, str, str]:
    """-> (instruction, input, output) with the template markers and end token removed."""
    instruction, task_input, _ = parse_prompt(prompt or "")
    return instruction, task_input, clean((completion or "").replace(EOS, ""))


class SelfInstruct(Source):
    name = "self_instruct"
    pretty = "Self-Instruct"
    hub_id = "yizhongw/self_instruct:self_instruct"
    license = "apache-2.0"
    # either prompt + completion or instruction (+ input) + output: checked per row
    columns = [Column("prompt", required=False), Column("completion", required=False),
               Column("instruction", required=False), Column("input", required=False),
               Column("output", required=False)]
    rules = ("recover instruction/input/output from upstream's 13 prompt templates (or its "
             "instruction/input/output columns); strip <|endoftext|>; keep task inputs (appended to the "
             "instruction); drop empty instruction/response")
    paper_rows = "train 82,612 upstream"

    def convert(self, row: dict, ctx: Context) -> dict | str:
        if row.get("instruction") is not None and row.get("output") is not None:
            instruction, task_input = clean(row["instruction"]), clean(row.get("input"))
            output, template = clean(row["output"].replace(EOS, "")), FIELDS
        elif row.get("prompt") is not None and row.get("completion") is not None:
            instruction, task_input, template = parse_prompt(row["prompt"])
            output = clean(row["completion"].replace(EOS, ""))
        else:
            missing = "prompt" if row.get("prompt") is None else "completion"
            raise BadRow(f"missing:{missing}", missing, "required column is missing (a row needs prompt and "
                         "completion, or instruction and output)")
        if not instruction:
            return "empty_instruction"
        if not output:
            return "empty_response"
        ctx.note("with_input" if task_input else "without_input")
        if template is None:
            ctx.note("unrecognised_template")
        full = f"{instruction}\n{task_input}" if task_input else instruction
        return {"uid": f"{full}\x00{output}", "instruction": full, "response": output,
                "meta": {"input": task_input or None, "upstream_template": template}}

    def columnar_ok(self, table) -> bool:
        """Every row has one of the two forms complete (else the row path names the row)."""
        import pyarrow.compute as pc

        fields = pc.and_(pc.is_valid(table["instruction"]), pc.is_valid(table["output"]))
        prompts = pc.and_(pc.is_valid(table["prompt"]), pc.is_valid(table["completion"]))
        return bool(pc.all(pc.or_(fields, prompts)).as_py() if table.num_rows else True)

    def convert_table(self, table, ctx: Context):
        """``convert`` on whole columns: each template is one RE2 match over the prompts
        (RE2 and Python agree on these patterns: no character classes but ``[^\\n]``, and
        fullmatch == ``^...$`` without multi-line mode); same rules in the same order."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = table.num_rows
        str_col = lambda name: col.clean(table[name]) if n else pa.array([], pa.string())  # noqa: E731
        use_fields = pc.and_(pc.is_valid(table["instruction"]), pc.is_valid(table["output"]))
        prompt = pc.cast(table["prompt"], pa.string()) if not pa.types.is_null(table["prompt"].type) else \
            pa.nulls(n, pa.string())
        parsed_i, parsed_x = pa.nulls(n, pa.string()), pa.nulls(n, pa.string())
        template = pa.nulls(n, pa.string())
        for name, body in TEMPLATES:
            todo = pc.and_(pc.is_null(template), pc.is_valid(prompt))
            if not pc.any(todo).as_py():
                break
            m = pc.extract_regex(prompt, pattern=f"(?s)^(?:{body})$")
            hit = pc.and_(todo, pc.is_valid(m))
            parsed_i = pc.if_else(hit, pc.struct_field(m, "i"), parsed_i)
            parsed_x = pc.if_else(hit, pc.struct_field(m, "x") if "(?P<x>" in body else "", parsed_x)
            template = pc.if_else(hit, pa.scalar(name), template)
        unmatched = pc.is_null(template)
        if pc.any(pc.and_(unmatched, pc.is_valid(prompt))).as_py():  # parse_prompt's lenient reading
            S = col.PY_SPACE_CLASS
            body = pc.replace_substring_regex(prompt, pattern=f"{S}*Output{S}*:{S}*$", replacement="")
            parts = pc.split_pattern_regex(body, pattern=f"\n{S}*Input{S}*:[ \t]*", max_splits=1)
            # first part / second part or "": joining a 0- or 1-element slice avoids out-of-range errors
            parsed_i = pc.if_else(unmatched, pc.binary_join(pc.list_slice(parts, 0, 1), ""), parsed_i)
            parsed_x = pc.if_else(unmatched, pc.binary_join(pc.list_slice(parts, 1, 2), ""), parsed_x)
        instruction = pc.if_else(use_fields, str_col("instruction"), col.clean(parsed_i))
        task_input = pc.if_else(use_fields, str_col("input"), col.clean(parsed_x))
        completion = pc.if_else(use_fields, table["output"], table["completion"])
        output = col.clean(pc.replace_substring(completion, pattern=EOS, replacement=""))
        template = pc.if_else(use_fields, pa.scalar(FIELDS), template)
        rules = col.Drops(ctx, n)
        rules.rule("empty_instruction", col.empty(instruction))
        rules.rule("empty_response", col.empty(output))
        instruction, task_input, output, template = (a.filter(rules.keep)
                                                     for a in (instruction, task_input, output, template))
        has_input = col.nonempty(task_input)
        for what, count in (("with_input", pc.sum(has_input).as_py() or 0),
                            ("without_input", len(has_input) - (pc.sum(has_input).as_py() or 0)),
                            ("unrecognised_template", template.null_count)):
            if count:
                ctx.note(what, count)
        full = pc.if_else(has_input, pc.binary_join_element_wise(instruction, task_input, "\n"), instruction)
        inputs = pc.if_else(has_input, task_input, pa.scalar(None, pa.string())).to_pylist()
        enc = json.encoder.encode_basestring
        meta = ['{"input": ' + ("null" if x is None else enc(x)) + ', "upstream_template": '
                + ("null" if t is None else enc(t)) + "}" for x, t in zip(inputs, template.to_pylist())]
        return pa.table({"instruction": full, "response": output, "meta": pa.array(meta, pa.string())})

    def card_notes(self, notes: dict[str, int]) -> str | None:
        with_input = notes.get("with_input", 0)
        total = with_input + notes.get("without_input", 0)
        if not total:
            return None
        text = (f"{with_input:,} of {total:,} converted rows carry a task input, kept: appended to the "
                f"instruction on its own line and in meta.input")
        if notes.get("unrecognised_template"):
            text += (f"; {notes['unrecognised_template']:,} prompts matched none of upstream's 13 templates "
                     f"and were taken whole as the instruction")
        return text


SOURCE = SelfInstruct()

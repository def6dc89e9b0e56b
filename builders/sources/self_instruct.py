"""Self-Instruct (``yizhongw/self_instruct``, config ``self_instruct``): ``prompt, completion``.

The prompts were rendered as ``"{instruction}\\n\\nInput: {input}\\n\\nOutput:"`` (or without
the Input block, with single or double newlines) and completions end with
``<|endoftext|>``.  Rules: strip that scaffolding, drop empty instructions/responses.
A task input (e.g. "Input: a creative tech startup") is part of the task, not a retrieved
context, so it stays: it is appended to the instruction on its own line and kept in meta.
"""

from __future__ import annotations

import re

from . import columnar as col
from .base import Context, Source
from .reader import Column

_OUTPUT = re.compile(r"\s*Output\s*:\s*$")
_INPUT = re.compile(r"\n\s*Input\s*:[ \t]*")
EOS = "<|endoftext|>"


def strip_scaffolding(prompt: str, completion: str) -> tuple[str, str, str]:
    """-> (instruction, input, output) with the template markers and end token removed."""
    body = _OUTPUT.sub("", prompt or "")
    parts = _INPUT.split(body, maxsplit=1)
    instruction = parts[0].strip()
    task_input = parts[1].strip() if len(parts) > 1 else ""
    output = (completion or "").replace(EOS, "").strip()
    return instruction, task_input, output


class SelfInstruct(Source):
    name = "self_instruct"
    pretty = "Self-Instruct"
    hub_id = "yizhongw/self_instruct:self_instruct"
    license = "apache-2.0"
    columns = [Column("prompt"), Column("completion")]
    rules = "strip 'Input:'/'Output:' scaffolding and <|endoftext|>; drop empty instruction/response"
    paper_rows = "train 82,612 upstream"

    def convert(self, row: dict, ctx: Context) -> dict | str:
        instruction, task_input, output = strip_scaffolding(row["prompt"], row["completion"])
        if not instruction:
            return "empty_instruction"
        if not output:
            return "empty_response"
        full = f"{instruction}\n{task_input}" if task_input else instruction
        return {"uid": f"{full}\x00{output}", "instruction": full, "response": output,
                "meta": {"input": task_input or None}}

    def convert_table(self, table, ctx: Context):
        """``convert`` on whole columns: the scaffolding regexes run in RE2 (spelled with
        Python's whitespace class, since RE2's \\s is ASCII-only), same rules in the same order."""
        import pyarrow as pa
        import pyarrow.compute as pc

        S = col.PY_SPACE_CLASS
        body = pc.replace_substring_regex(table["prompt"], pattern=f"{S}*Output{S}*:{S}*$", replacement="")
        parts = pc.split_pattern_regex(body, pattern=f"\n{S}*Input{S}*:[ \t]*", max_splits=1)
        # first part / second part or "": joining a 0- or 1-element slice avoids out-of-range errors
        instruction = col.clean(pc.binary_join(pc.list_slice(parts, 0, 1), ""))
        task_input = col.clean(pc.binary_join(pc.list_slice(parts, 1, 2), ""))
        output = col.clean(pc.replace_substring(table["completion"], pattern=EOS, replacement=""))
        rules = col.Drops(ctx, table.num_rows)
        rules.rule("empty_instruction", col.empty(instruction))
        rules.rule("empty_response", col.empty(output))
        instruction, task_input, output = (a.filter(rules.keep) for a in (instruction, task_input, output))
        has_input = col.nonempty(task_input)
        full = pc.if_else(has_input, pc.binary_join_element_wise(instruction, task_input, "\n"), instruction)
        inputs = pc.if_else(has_input, task_input, pa.scalar(None, pa.string())).to_pylist()
        return pa.table({"instruction": full, "response": output,
                         "meta": col.json_string_field("input", inputs)})


SOURCE = SelfInstruct()

"""Training examples in the model's own chat template: the loss sees only the assistant turn.

A ``chat`` prompt is either a user message (a corpus built with ``--template chat``) or the
prompt the pool fed the model (already rendered with the chat template: a pool's or a
selection's ``prompt`` column).  Both become exactly the text generation saw (the template
with its generation prompt, e.g. ``<|im_start|>assistant\\n``), followed by the response and
the template's end of turn (``<|im_end|>``).  Labels are -100 everywhere but the response and
that end-of-turn token, so the model learns the answer and where its turn stops, never the
system prompt, the user message or the role markers.

The rendering follows ``builders.templates.model_prompt`` (the pool's) exactly; a test
compares the two token for token.  It lives here because stage packages do not import each
other (DESIGN.md §2).  Only the tokenizer is needed: no torch.
"""

from __future__ import annotations

from resetkit.errors import ResetkitError

IGNORE_INDEX = -100
TEMPLATES = ("auto", "chat", "plain")


def _render(tokenizer, messages: list[dict], *, add_generation_prompt: bool) -> str:
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or "this model"
        raise ResetkitError(f"the tokenizer of {name} has no chat template: train with --set template=plain "
                            "(prompts as stored) or use a model with a chat template")
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    except Exception as exc:  # noqa: BLE001 - a model's own Jinja template can refuse anything
        raise ResetkitError(f"the chat template of {getattr(tokenizer, 'name_or_path', 'the model')} refused "
                            f"the messages: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos) and _adds_bos(tokenizer):
        text = text[len(bos):]        # tokenizer(text) adds it: one BOS, as at generation time
    return text


def _adds_bos(tokenizer) -> bool:
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return tokenizer.bos_token_id is not None and bool(ids) and ids[0] == tokenizer.bos_token_id


def _messages(message: str, system: str | None = None, response: str | None = None) -> list[dict]:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": message})
    if response is not None:
        msgs.append({"role": "assistant", "content": response})
    return msgs


class ChatFormat:
    """The chat template of one tokenizer, with its generation prompt and end of turn read once."""

    def __init__(self, tokenizer, system: str | None = None):
        self.tokenizer, self.system = tokenizer, system or None
        mark = "\x00message\x00"
        self.generation_suffix = _render(tokenizer, _messages(mark), add_generation_prompt=True).partition(mark)[2]
        reply = "\x00response\x00"
        after = _render(tokenizer, _messages("u", None, reply), add_generation_prompt=False).partition(reply)[2]
        eos = getattr(tokenizer, "eos_token", None)
        # what follows the assistant's content up to and including the end-of-turn token
        self.turn_end = after[:after.index(eos) + len(eos)] if eos and eos in after else (after or eos or "")

    def is_rendered(self, prompt: str) -> bool:
        return bool(self.generation_suffix.strip()) and prompt.endswith(self.generation_suffix)

    def prompt(self, prompt: str) -> str:
        """The text the model is fed for ``prompt`` (a user message, or a rendered chat prompt as it is)."""
        if self.is_rendered(prompt):
            return prompt
        return _render(self.tokenizer, _messages(prompt, self.system), add_generation_prompt=True)

    def example(self, prompt: str, response: str, max_length: int) -> dict | None:
        """Token ids and labels (only the assistant turn trained); None when nothing is left to learn."""
        prompt_ids = list(self.tokenizer(self.prompt(prompt), add_special_tokens=True)["input_ids"])
        turn_ids = list(self.tokenizer(response + self.turn_end, add_special_tokens=False)["input_ids"])
        full = len(prompt_ids) + len(turn_ids)
        ids = (prompt_ids + turn_ids)[:max_length]
        labels = ([IGNORE_INDEX] * len(prompt_ids) + turn_ids)[:max_length]
        if all(t == IGNORE_INDEX for t in labels):
            return None
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels, "length": len(ids),
                "truncated": full > max_length}


def uses_chat(template: str, row_template: str | None) -> bool:
    """Whether a row is trained in the chat format: ``chat`` always, ``plain`` never, ``auto``
    when the row's own ``template`` column says ``chat`` (its prompt came from the chat template)."""
    if template not in TEMPLATES:
        raise ResetkitError(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    return template == "chat" or (template == "auto" and row_template == "chat")

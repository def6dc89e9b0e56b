"""A model's own chat template: the one rendering the pool, training and eval share.

A ``chat`` prompt is either a user message (a corpus built with ``--template chat``) or the
prompt the pool fed the model (already rendered: a pool's or a selection's ``prompt`` column).
:class:`ChatFormat` turns either into exactly the text generation sees (the template with its
generation prompt, e.g. ``<|im_start|>assistant\\n``), and builds training examples whose labels
are -100 everywhere but the assistant turn (the response and the template's end of turn, e.g.
``<|im_end|>``): the model learns the answer and where its turn stops, never the system prompt,
the user message or the role markers.

It lives in the core because both the pool (builders) and training use it, and stage packages
never import each other.  Only the tokenizer is needed: no torch.
"""

from __future__ import annotations

from functools import cached_property

from .errors import ResetkitError

IGNORE_INDEX = -100


def chat_messages(message: str, system: str | None = None, response: str | None = None) -> list[dict]:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": message})
    if response is not None:
        msgs.append({"role": "assistant", "content": response})
    return msgs


def render_messages(tokenizer, messages: list[dict], *, add_generation_prompt: bool) -> str:
    """``apply_chat_template`` as text, without a leading BOS the tokenizer adds by itself (so
    that ``tokenizer(text)`` gives exactly the template's tokens, with one BOS)."""
    name = getattr(tokenizer, "name_or_path", "") or "this model"
    if not getattr(tokenizer, "chat_template", None):
        raise ResetkitError(f"the tokenizer of {name} has no chat template: use a paper template (--template "
                            "alpaca or vicuna; in training --set template=plain) or a model with a chat template")
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    except Exception as exc:  # noqa: BLE001 - a model's own Jinja template can refuse anything (no system role...)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ResetkitError(f"the chat template of {name} refused the messages: {first}") from exc
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos) and _adds_bos(tokenizer):
        text = text[len(bos):]
    return text


def _adds_bos(tokenizer) -> bool:
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return tokenizer.bos_token_id is not None and bool(ids) and ids[0] == tokenizer.bos_token_id


class ChatFormat:
    """The chat template of one tokenizer (and system prompt); its generation prompt and end of
    turn are read once, on first use."""

    def __init__(self, tokenizer, system: str | None = None):
        self.tokenizer, self.system = tokenizer, system or None

    @cached_property
    def generation_suffix(self) -> str:
        mark = "\x00message\x00"
        return self.render(mark).partition(mark)[2]

    @cached_property
    def turn_end(self) -> str:
        """What follows the assistant's content, up to and including the end-of-turn token."""
        reply = "\x00response\x00"
        text = render_messages(self.tokenizer, chat_messages("u", None, reply), add_generation_prompt=False)
        after = text.partition(reply)[2]
        eos = getattr(self.tokenizer, "eos_token", None)
        return after[:after.index(eos) + len(eos)] if eos and eos in after else (after or eos or "")

    def render(self, message: str) -> str:
        """The text a chat model sees for one user ``message`` (generation prompt added)."""
        return render_messages(self.tokenizer, chat_messages(message, self.system), add_generation_prompt=True)

    def is_rendered(self, prompt: str) -> bool:
        """True for a prompt that already ends with the generation prompt (a plain message never does)."""
        return bool(self.generation_suffix.strip()) and prompt.endswith(self.generation_suffix)

    def prompt(self, prompt: str) -> str:
        """The text the model is fed for ``prompt``: a user message rendered, a rendered prompt as it is."""
        return prompt if self.is_rendered(prompt) else self.render(prompt)

    def example(self, prompt: str, response: str, max_length: int | None = None) -> dict | None:
        """Token ids and labels for (``prompt``, ``response``), only the assistant turn trained; cut
        on the right to ``max_length``; None when no labelled token is left.  Returns
        ``{"input_ids", "attention_mask", "labels", "length", "truncated"}`` like
        ``training.sft.tokenize_example``."""
        prompt_ids = list(self.tokenizer(self.prompt(prompt), add_special_tokens=True)["input_ids"])
        turn_ids = list(self.tokenizer(response + self.turn_end, add_special_tokens=False)["input_ids"])
        ids, labels = prompt_ids + turn_ids, [IGNORE_INDEX] * len(prompt_ids) + turn_ids
        full = len(ids)
        if max_length is not None:
            ids, labels = ids[:max_length], labels[:max_length]
        if all(t == IGNORE_INDEX for t in labels):
            return None
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels, "length": len(ids),
                "truncated": max_length is not None and full > max_length}

"""Prompt templates (paper Tables 2, 6 and 15) and the context-dependent task inputs (Table 3).

``render(template, instruction, input)`` -> the prompt string a model sees; the gold
response follows it.  Templates:

- ``alpaca``: the Alpaca template with / without an input block (paper Table 2);
- ``vicuna``: FastChat's vicuna_v1.1 conversation, ``"{system} USER: {message} ASSISTANT:"``,
  which is the format Vicuna-7B was tuned on (default for Vicuna);
- ``vicuna-paper``: the markers exactly as the paper's Table 6 prints them
  (``"### USER:"`` / ``"###ASSISTANT:"``).

- ``chat``: the model's own chat template (today's instruct models).  Datasets built with it
  store the plain user message (instruction, then the input on the next line), because the
  markup belongs to a model, not to the data; ``chat_prompt(tokenizer, message, system)``
  wraps it with the tokenizer's ``apply_chat_template`` (generation prompt added) where a model
  is at hand: in the pool, training and eval.

For Vicuna the user message is the instruction, then the input on the next line (Table 6).

``stop_strings(template)``: the turn markers generation stops at (the pool's default ``stop``).
"""

from __future__ import annotations

from resetkit.registry import Registry

ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:"
)
VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant "
                 "gives helpful, detailed, and polite answers to the user's questions.")

# paper Table 3: objective-aligned task instructions for context-dependent data
TASK_INSTRUCTIONS = {
    "extractive_qa": ("Answer to the question by extracting a specific text span from the given passages. "
                      "Do not include new information beyond the given passages."),
    "abstractive_qa": ("Answer the question with well-formed sentences. Paraphrase the context in the "
                       "passages if necessary. Do not include new information beyond the given passages."),
    "summarization": ("Summarize the text in a few sentences. Using original phrases or paraphrasing them "
                      "if necessary. Do not include new information beyond the given passages."),
}


def _message(instruction: str, input: str | None) -> str:
    return f"{instruction}\n{input}" if input else instruction


def alpaca(instruction: str, input: str | None = None) -> str:
    if input:
        return ALPACA_WITH_INPUT.format(instruction=instruction, input=input)
    return ALPACA_NO_INPUT.format(instruction=instruction)


def vicuna(instruction: str, input: str | None = None) -> str:
    return f"{VICUNA_SYSTEM} USER: {_message(instruction, input)} ASSISTANT:"


def vicuna_paper(instruction: str, input: str | None = None) -> str:
    return f"{VICUNA_SYSTEM}\n\n### USER: {_message(instruction, input)}\n###ASSISTANT:"


def chat(instruction: str, input: str | None = None) -> str:
    """The user message; the model's chat template wraps it later (``chat_prompt``)."""
    return _message(instruction, input)


TEMPLATES = Registry("template", {
    "alpaca": "builders.templates:alpaca",
    "vicuna": "builders.templates:vicuna",
    "vicuna-paper": "builders.templates:vicuna_paper",
    "chat": "builders.templates:chat",
})

DESCRIPTIONS = {
    "alpaca": "Alpaca (paper Table 2): '### Instruction:' / '### Input:' / '### Response:'",
    "vicuna": "Vicuna, FastChat vicuna_v1.1: '{system} USER: {message} ASSISTANT:'",
    "vicuna-paper": "Vicuna as printed in the paper's Table 6: '### USER:' / '###ASSISTANT:'",
    "chat": ("the model's own chat template (tokenizer.apply_chat_template, generation prompt added); "
             "the dataset stores the user message '{instruction}\\n{input}'"),
}

# Where a decode stops by default: the markers that begin a new turn or section of the template
# (a model that runs on past its answer writes "### Instruction:" / "### Explanation:" or
# "USER:").  Chat models end their turn with their EOS / end-of-turn token, which every backend
# stops at already.
STOP_STRINGS = {
    "alpaca": ("\n### ", "### Instruction:", "### Input:", "### Response:"),
    "vicuna": ("USER:", "</s>"),
    "vicuna-paper": ("### USER:", "###ASSISTANT:", "\n### "),
    "chat": (),
}


def stop_strings(template: str | None) -> tuple[str, ...]:
    """The default stop strings of ``template`` (none for prompts without a known template)."""
    if template is None:
        return ()
    TEMPLATES.check(template)
    return STOP_STRINGS.get(template, ())


def render(template: str, instruction: str, input: str | None = None) -> str:
    """Render one prompt; unknown template names get a did-you-mean error."""
    return TEMPLATES.get(template)(instruction, input)


def affixes(template: str) -> tuple[str, str]:
    """(prefix, suffix) with ``render(template, x) == prefix + x + suffix`` for any instruction
    ``x`` and no input: lets a whole column of prompts be rendered by string concatenation.
    Derived from ``render`` itself, so the two cannot drift apart."""
    mark = "\x00instruction\x00"
    prefix, found, suffix = render(template, mark).partition(mark)
    if not found or render(template, "x") != f"{prefix}x{suffix}":
        raise ValueError(f"template {template!r} is not a plain wrapper around the instruction")
    return prefix, suffix


def qa_input(question: str, passages: list[str]) -> str:
    """The context-dependent QA input: the question first, then one "Passage:" line each."""
    return "\n".join([f"Question: {question}"] + [f"Passage: {p}" for p in passages])


def skeleton(template: str) -> str:
    """The template with placeholders, for the data card."""
    return render(template, "{instruction}", "{input}")


# -- the model's own chat template (resetkit.chat: the rendering training shares) ----------


def chat_prompt(tokenizer, message: str, system: str | None = None) -> str:
    """The text a chat model sees for one user ``message``: its chat template with the
    generation prompt (``<|im_start|>assistant\\n`` and the like); ``tokenizer(text)`` gives
    the template's tokens exactly."""
    from resetkit.chat import ChatFormat

    return ChatFormat(tokenizer, system).render(message)


def model_prompt(tokenizer, prompt: str, template: str | None, system: str | None = None) -> str:
    """What the model is fed for a stored ``prompt``: a ``chat`` user message wrapped with the
    tokenizer's chat template (idempotent: a rendered chat prompt is returned as it is); every
    other template's prompts are complete already."""
    from resetkit.chat import ChatFormat

    return ChatFormat(tokenizer, system).prompt(prompt) if template == "chat" else prompt

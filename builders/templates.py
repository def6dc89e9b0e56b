"""Prompt templates (paper Tables 2, 6 and 15) and the context-dependent task inputs (Table 3).

``render(template, instruction, input)`` -> the prompt string a model sees; the gold
response follows it.  Templates:

- ``alpaca``: the Alpaca template with / without an input block (paper Table 2);
- ``vicuna``: FastChat's vicuna_v1.1 conversation, ``"{system} USER: {message} ASSISTANT:"``,
  which is the format Vicuna-7B was tuned on (default for Vicuna);
- ``vicuna-paper``: the markers exactly as the paper's Table 6 prints them
  (``"### USER:"`` / ``"###ASSISTANT:"``).

For Vicuna the user message is the instruction, then the input on the next line (Table 6).
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


TEMPLATES = Registry("template", {
    "alpaca": "builders.templates:alpaca",
    "vicuna": "builders.templates:vicuna",
    "vicuna-paper": "builders.templates:vicuna_paper",
})

DESCRIPTIONS = {
    "alpaca": "Alpaca (paper Table 2): '### Instruction:' / '### Input:' / '### Response:'",
    "vicuna": "Vicuna, FastChat vicuna_v1.1: '{system} USER: {message} ASSISTANT:'",
    "vicuna-paper": "Vicuna as printed in the paper's Table 6: '### USER:' / '###ASSISTANT:'",
}


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

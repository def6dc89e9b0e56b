"""Which rows are trained in the chat format (``--template auto|chat|plain``).

The rendering itself (the model's chat template, labels only on the assistant turn) is
:class:`resetkit.chat.ChatFormat`, the one the pool renders prompts with, so training sees the
prompt exactly as generation did.
"""

from __future__ import annotations

from resetkit.errors import ResetkitError

TEMPLATES = ("auto", "chat", "plain")


def uses_chat(template: str, row_template: str | None) -> bool:
    """Whether a row is trained in the chat format: ``chat`` always, ``plain`` never, ``auto``
    when the row's own ``template`` column says ``chat`` (its prompt came from the chat template)."""
    if template not in TEMPLATES:
        raise ResetkitError(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    return template == "chat" or (template == "auto" and row_template == "chat")

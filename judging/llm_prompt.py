"""The LLM judge's prompt and its parsing, and what a request costs.

    load_prompt(name) -> {"system": ..., "user": ...}   judging/prompts/NAME.yaml or a .yaml path
    build_messages(prompt, question, answer) -> chat messages;  question_of(example) -> str
    parse_rating(reply) -> (r/10, None) or (None, reason)   FastChat's ``[[r]]``, else ``[r]``
    request_key(model, messages, params) -> sha256 hex   (the reply cache's key)
    Prices(path).cost(model, prompt_tokens, completion_tokens, batch=False) -> USD or None
    estimate_tokens(messages)   a rough prompt size (--dry-run);  prompt_bound(messages)  a
                                guaranteed upper bound (the budget's reservation)
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from resetkit.errors import ResetkitError
from resetkit.store import canonical_json

PROMPTS_DIR = Path(__file__).parent / "prompts"
RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
EST_REPLY_TOKENS = 150


def parse_rating(text: str | None) -> tuple[float | None, str | None]:
    """(r/10, None) or (None, reason), with FastChat's two patterns."""
    if not text:
        return None, "empty judge reply"
    m = RATING.search(text) or RATING_BACKUP.search(text)
    if not m:
        return None, "no rating found in judge reply"
    r = float(m.group(1))
    if not 0 <= r <= 10:
        return None, f"rating {m.group(1)} outside 1-10"
    return r / 10.0, None


# a pure config lookup (a prompt file's text, read once per process), not a cache of data
@lru_cache(maxsize=8)
def load_prompt(name: str) -> dict:
    """A prompt of judging/prompts/ (``paper``, ``single-v1``) or a YAML file path."""
    import yaml

    path = Path(name) if name.endswith((".yaml", ".yml")) else PROMPTS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml") if p.stem != "prices")
        raise ResetkitError(f"unknown judge prompt {name!r}. Known: {', '.join(known)} (or a .yaml path)")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "{answer}" not in data.get("user", ""):
        raise ResetkitError(f"{path}: a judge prompt needs a 'user' template with {{question}} "
                            f"and {{answer}}")
    return data


def build_messages(prompt: dict, question: str, answer: str) -> list[dict]:
    """Fill the template in one pass (a question containing "{answer}" stays as it is)."""
    values = {"question": question, "answer": answer}
    user = re.sub(r"\{(question|answer)\}", lambda m: values[m.group(1)], prompt["user"])
    msgs = [{"role": "system", "content": prompt["system"]}] if prompt.get("system") else []
    return msgs + [{"role": "user", "content": user}]


def question_of(example: dict) -> str:
    """The user turn shown to the judge: the instruction, plus its input/context if any."""
    q = example.get("instruction") or example.get("question") or example.get("prompt") or ""
    ctx = example.get("context")
    return f"{q}\n\n{ctx}" if ctx else q


def request_key(model: str, messages: list[dict], params: dict) -> str:
    data = canonical_json({"model": model, "messages": messages, **params})
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


class Prices:
    """USD per 1M tokens by model (prompts/prices.yaml, or a user YAML/JSON file)."""

    def __init__(self, path: str | None = None):
        import yaml

        self.table = yaml.safe_load((PROMPTS_DIR / "prices.yaml").read_text(encoding="utf-8"))
        if path:
            p = Path(path)
            if not p.is_file():
                raise ResetkitError(f"price table not found: {p}")
            self.table = {**self.table, **(yaml.safe_load(p.read_text(encoding="utf-8")) or {})}

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int,
             batch: bool = False) -> float | None:
        p = self.table.get(model)
        if p is None:
            return None
        usd = (prompt_tokens * float(p["input"]) + completion_tokens * float(p["output"])) / 1e6
        return usd / 2 if batch else usd


def estimate_tokens(messages: list[dict]) -> int:
    """Rough prompt size without a tokenizer: ~4 characters per token plus 4 per message."""
    return sum(len(m["content"]) // 4 + 4 for m in messages) + 3


MESSAGE_OVERHEAD = 8   # tokens a chat format adds per message (role, separators), bounded
REPLY_PRIMING = 8      # and once per request (the assistant turn's header)


def prompt_bound(messages: list[dict]) -> int:
    """A guaranteed upper bound of the prompt tokens: a byte-level BPE token (GPT-4, GPT-4o,
    Llama 3, Qwen...) covers at least one UTF-8 byte, so a message is at most its bytes, plus
    the chat format's tokens per message and for the reply's header."""
    return sum(len(m["content"].encode("utf-8")) + len(m["role"]) + MESSAGE_OVERHEAD
               for m in messages) + REPLY_PRIMING

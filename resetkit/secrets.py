"""Keep secrets out of everything resetkit writes: manifests, cards, error rows, messages.

Keys and tokens come only from the environment (OPENAI_API_KEY, HF_TOKEN, ...).  A server's
error text may echo them back (a 401 body repeating the Authorization header), a URL may carry
``user:pass@`` or ``?api-key=``, and an engine argument may be named ``hf_token``: every text
that leaves the process goes through :func:`redact_text`, and every manifest through
:func:`redact_config` (the store applies it at commit, whatever the stage put there).
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_ENV = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN",
              "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY")
# names whose values are secrets: api_key, api-key, hf_token, access_token, password, secret...
SECRET_NAME = re.compile(r"(^|[_-])(api[_-]?key|key|token|secret|password|passwd|authorization|auth)$", re.I)
# shapes of well-known keys, masked even when they are not in this process's environment
SECRET_SHAPE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{20,})\b|(Bearer\s+)\S+")
MASK = "***"


def _env_secrets() -> list[str]:
    return [v for k in SECRET_ENV if len(v := os.environ.get(k, "")) >= 6]


def redact_text(text, extra=()):
    """``text`` with every known secret value and key-shaped token replaced by ***."""
    if not isinstance(text, str) or not text:
        return text
    for value in sorted({*_env_secrets(), *(e for e in extra if e and len(e) >= 6)}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return SECRET_SHAPE.sub(lambda m: (m.group(2) + MASK) if m.group(2) else MASK, text)


def redact_url(url: str) -> str:
    """Drop ``user:pass@`` and secret-looking query parameters from a URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if not parts.scheme or not parts.netloc:
        return redact_text(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode([(k, MASK if SECRET_NAME.search(k) else v) for k, v in parse_qsl(parts.query,
                                                                                        keep_blank_values=True)])
    return redact_text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_config(obj):
    """A copy of ``obj`` (dicts, lists, strings) with secret-named values masked and texts redacted."""
    if isinstance(obj, dict):
        return {k: (MASK if isinstance(k, str) and SECRET_NAME.search(k) and v not in (None, "", False)
                    else redact_config(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_config(v) for v in obj)
    if isinstance(obj, str):
        return redact_url(obj) if "://" in obj else redact_text(obj)
    return obj

"""Keep secrets out of everything resetkit writes: manifests, cards, error rows, messages, cells.

Keys and tokens come only from the environment (OPENAI_API_KEY, HF_TOKEN, ...) or from a URL
the user configured (``?api-key=...``, ``?sig=...``, ``user:pass@``).  A server's error text may
echo them back (a 401 body repeating the Authorization header), a successful reply may repeat
them, and an engine argument may be named ``hf_token``.  So:

- :func:`register_url` (called by every component given a URL) remembers the credential values
  of that URL, which are then masked like the environment's keys;
- every message and error row goes through :func:`redact_text` (known values, key-shaped
  tokens, URLs with credentials, ``?token=...`` fragments);
- every reply text written (judge replies, pool candidates) goes through
  :func:`redact_content`, which only masks the known values and credentials inside URLs
  (a generated ``key=value`` in code stays as it is);
- every manifest goes through :func:`redact_config`, every table the store writes through
  :func:`redact_table` (the store applies both, whatever the stage put there), and every
  ResetkitError message through :func:`redact_text`.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

SECRET_ENV = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN",
              "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY")
# names whose values are secrets: api_key, api-key, hf_token, access_token, password, secret...
SECRET_NAME = re.compile(r"(^|[_-])(api[_-]?key|key|token|secret|password|passwd|authorization|auth)$", re.I)
# URL query parameters that carry credentials: the names above plus signatures (SAS ``sig``,
# ``X-Amz-Signature``) and credentials (``X-Amz-Credential``)
SECRET_PARAM = re.compile(r"(^|[_-])(api[_-]?key|key|token|secret|password|passwd|pwd|authorization|auth|"
                          r"sig|signature|credential)$", re.I)
# shapes of well-known keys, masked even when they are not in this process's environment
SECRET_SHAPE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{20,})\b|(Bearer\s+)\S+")
URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
# a credential parameter outside a full URL (``/v1/chat?api-key=...`` in a client's message)
PARAM_IN_TEXT = re.compile(r"([?&;])([A-Za-z0-9_.\-]+)=([^&\s'\"<>#;]+)")
MASK = "***"
MIN_LEN = 6  # shorter values are not masked as free text (they would hit ordinary words)

_REGISTERED: set[str] = set()


def _env_secrets() -> list[str]:
    return [v for k in SECRET_ENV if len(v := os.environ.get(k, "")) >= MIN_LEN]


def known_secrets() -> list[str]:
    """The values masked everywhere: the environment's keys and the registered credentials,
    longest first (a key that contains another is masked whole)."""
    return sorted({*_env_secrets(), *_REGISTERED}, key=len, reverse=True)


def register_secret(value: str | None) -> None:
    """Mask ``value`` (a key given some other way than the environment) from now on."""
    if value and len(value) >= MIN_LEN:
        _REGISTERED.add(value)


def url_credentials(url: str | None) -> list[str]:
    """The credential values of ``url``: userinfo and credential-named query parameters."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    out = [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if SECRET_PARAM.search(k) and v]
    if parts.password:
        out.append(parts.password)
    return out


def register_url(url: str | None) -> None:
    """Register every credential of ``url`` (see :func:`url_credentials`)."""
    for value in url_credentials(url):
        register_secret(value)


def split_query(url: str | None) -> tuple[str | None, dict]:
    """``(url without its query, {param: value})``: an OpenAI client needs the query of a base
    URL (``?api-key=...``) as ``default_query`` (a query in ``base_url`` breaks every path)."""
    if not url:
        return url, {}
    parts = urlsplit(url)
    if not parts.query:
        return url, {}
    return (urlunsplit((parts.scheme, parts.netloc, parts.path, "", parts.fragment)),
            dict(parse_qsl(parts.query, keep_blank_values=True)))


def _mask_values(text: str, extra=()) -> str:
    for value in sorted({*known_secrets(), *(e for e in extra if e and len(e) >= MIN_LEN)}, key=len,
                        reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


def _mask_param(m: re.Match) -> str:
    return f"{m.group(1)}{m.group(2)}={MASK}" if SECRET_PARAM.search(m.group(2)) else m.group(0)


def redact_text(text, extra=()):
    """``text`` with every known secret value, key-shaped token and URL credential replaced by ***."""
    if not isinstance(text, str) or not text:
        return text
    text = _mask_values(text, extra)
    if "://" in text:
        text = URL_IN_TEXT.sub(lambda m: _redact_url(m.group(0)), text)
    if "=" in text:
        text = PARAM_IN_TEXT.sub(_mask_param, text)
    return SECRET_SHAPE.sub(lambda m: (m.group(2) + MASK) if m.group(2) else MASK, text)


def redact_content(text):
    """A reply or generated text with the known secrets and URL credentials masked, nothing else
    (``key=value`` in generated code, or a word that looks like a token, stays)."""
    if not isinstance(text, str) or not text:
        return text
    text = _mask_values(text)
    if "://" in text:
        text = URL_IN_TEXT.sub(lambda m: _redact_url(m.group(0)) if _has_credentials(m.group(0))
                               else m.group(0), text)
    return text


def _has_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return bool(parts.username or parts.password) or any(
            SECRET_PARAM.search(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    except ValueError:
        return False


def _redact_url(url: str) -> str:
    """``url`` without ``user:pass@`` and with its credential parameters masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return PARAM_IN_TEXT.sub(_mask_param, url)
    if parts.scheme and "@" in parts.netloc:
        url = urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, parts.query,
                          parts.fragment))
    return PARAM_IN_TEXT.sub(_mask_param, url)


def redact_url(url: str) -> str:
    """Drop ``user:pass@`` and mask credential query parameters of a URL (and any known secret)."""
    if not isinstance(url, str):
        return url
    return redact_text(url)


def redact_config(obj):
    """A copy of ``obj`` (dicts, lists, strings) with secret-named values masked and texts redacted."""
    if isinstance(obj, dict):
        return {k: (MASK if isinstance(k, str) and SECRET_NAME.search(k) and v not in (None, "", False)
                    else redact_config(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_config(v) for v in obj)
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


def redact_table(table):
    """A pyarrow table with every known secret value masked in its string columns (vectorised;
    the table itself when no cell holds one, which is the cost of one substring scan per column)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    secrets = known_secrets()
    if not secrets:
        return table
    for i, field in enumerate(table.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        col = table.column(i)
        changed = False
        for value in secrets:
            if pc.any(pc.match_substring(col, value)).as_py():
                col = pc.replace_substring(col, value, MASK)
                changed = True
        if changed:
            table = table.set_column(i, field, col)
    return table

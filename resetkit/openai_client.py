"""What every paid request of resetkit shares (the LLM judge and the openai pool backend).

- :func:`make_client`: an ``openai`` client for a base URL.  A query in the URL
  (``?api-key=...``) goes in ``default_query`` (in ``base_url`` it would break every path) and
  its credentials are registered with :mod:`resetkit.secrets`, so they are masked in
  everything written or printed.  The key is ``$OPENAI_API_KEY``; local servers get a
  placeholder when it is unset.
- :func:`needs_key`: only OpenAI's own API (or Azure's) needs ``$OPENAI_API_KEY`` up front.
- :func:`check_endpoint`: one cheap ``GET /models`` before any work: a dead port or a refused
  key is one clear line, not a run of error rows.
- :func:`parse_reply`: the text, finish reason and token usage of a 200 reply, or
  :class:`MalformedReply` (a body that is not JSON, ``"choices": []``, ``"message": null``,
  ``"content": null``): the ``openai`` client returns such bodies without complaint.
- :func:`auth_failure`: the one-line message of a 401/403, which stops a run at once.
- :func:`retry_after`: the seconds a 429/503 asks to wait (``Retry-After``/``retry-after-ms``).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from .errors import ResetkitError, require
from .secrets import redact_text, register_url, split_query

PLACEHOLDER_KEY = "EMPTY"  # local servers accept any key; the client insists on one


class MalformedReply(Exception):
    """A 200 reply without a usable text."""


def effective_url(base_url: str | None) -> str | None:
    return base_url or os.environ.get("OPENAI_BASE_URL") or None


def shown(base_url: str | None) -> str:
    """The base URL as it may appear in a message (credentials masked)."""
    return redact_text(effective_url(base_url) or "https://api.openai.com/v1")


def needs_key(base_url: str | None) -> bool:
    """True when requests go to OpenAI's (or Azure OpenAI's) API, which needs a key; a local or
    other OpenAI-compatible server decides for itself (a 401/403 then stops the run)."""
    url = effective_url(base_url)
    if not url:
        return True
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(("openai.com", "openai.azure.com"))


def make_client(base_url: str | None, *, async_: bool = True, max_retries: int = 0, timeout: float = 120.0,
                purpose: str = "paid requests"):
    openai = require("openai", "openai", purpose)
    url = effective_url(base_url)
    register_url(url)
    url, query = split_query(url)
    cls = openai.AsyncOpenAI if async_ else openai.OpenAI
    return cls(api_key=os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_KEY, base_url=url,
               default_query=query or None, max_retries=max_retries, timeout=timeout)


def auth_failure(exc, base_url: str | None) -> str | None:
    """The stop message for a 401/403 reply, None for any other error."""
    import openai

    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        what = "refused the API key" if exc.status_code == 401 else "denied access"
        return (f"{shown(base_url)} {what} (HTTP {exc.status_code}): set a valid $OPENAI_API_KEY "
                f"(or the key in the URL); no further request was sent")
    return None


def check_endpoint(base_url: str | None, model: str, timeout: float, purpose: str) -> list[str]:
    """``GET /models`` once: ResetkitError for an unreachable server or a refused key; a warning
    when the model is not listed.  Returns the listed models (empty when there is no route)."""
    import sys

    openai = require("openai", "openai", purpose)
    client = make_client(base_url, async_=False, max_retries=1, timeout=min(10.0, timeout), purpose=purpose)
    try:
        models = [m.id for m in client.models.list()]
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise ResetkitError(f"cannot reach the OpenAI-compatible server at {shown(base_url)} "
                            f"({redact_text(str(exc))})") from exc
    except openai.APIStatusError as exc:
        msg = auth_failure(exc, base_url)
        if msg:
            raise ResetkitError(msg.replace("; no further request was sent", "")) from exc
        models = []  # some servers have no /models route; the first request will tell
    except (ValueError, TypeError, AttributeError):
        models = []  # a /models reply of another shape: not our concern here
    finally:
        client.close()
    if models and model not in models:
        print(redact_text(f"warning: {shown(base_url)} does not list model {model!r} (it lists: "
                          f"{', '.join(map(str, models[:10]))})"), file=sys.stderr)
    return models


def parse_reply(resp, chat: bool) -> tuple[str, str | None, tuple[int, int] | None]:
    """``(text, finish_reason, (prompt_tokens, completion_tokens) or None)`` of a 200 reply."""
    if isinstance(resp, (str, bytes)):
        text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else resp
        raise MalformedReply(f"malformed reply (not JSON): {redact_text(text[:80])!r}")
    choices = getattr(resp, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedReply("malformed reply: no choices")
    choice = choices[0]
    if chat:
        message = getattr(choice, "message", None)
        if message is None:
            raise MalformedReply("malformed reply: message is null")
        text = getattr(message, "content", None)
    else:
        text = getattr(choice, "text", None)
    if not isinstance(text, str):
        raise MalformedReply(f"malformed reply: {'content' if chat else 'text'} is null")
    return text, getattr(choice, "finish_reason", None), reply_tokens(resp)


def reply_tokens(resp) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` a reply reports, None when it reports none."""
    usage = getattr(resp, "usage", None)
    pt, ct = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
    if isinstance(pt, int) and isinstance(ct, int) and pt >= 0 and ct >= 0:
        return pt, ct
    return None


def retry_after(exc, default: float) -> float:
    """Seconds to wait before retrying ``exc``: the server's Retry-After (capped at 60 s) or
    ``default``."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return min(60.0, max(0.0, float(value) * scale))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                import time

                return min(60.0, max(0.0, parsedate_to_datetime(value).timestamp() - time.time()))
            except (TypeError, ValueError):
                pass
    return default

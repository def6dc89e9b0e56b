"""What the test HTTP servers (openai_server, judging/fake_openai, fake_hub) share: writing
one response from a ``BaseHTTPRequestHandler``."""

from __future__ import annotations

import json


def send(handler, status: int, payload, headers: dict | None = None, *, raw: bool = False,
         content_type: str | None = None) -> bool:
    """Answer ``status`` with ``payload`` as JSON (or as bytes when ``raw``) plus ``headers``
    (``content_type`` overrides the Content-Type: a broken body labelled JSON).
    False when the client had already gone (a test that drops or times out connections)."""
    data = payload if raw else json.dumps(payload).encode("utf-8")
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type or
                            ("application/octet-stream" if raw else "application/json"))
        handler.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False

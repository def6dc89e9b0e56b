"""An offline stand-in for the GPT-4 instruction-following judge, used only by ``make demo``.

It is a small OpenAI-compatible HTTP server (``/v1/chat/completions``) on 127.0.0.1, so the demo
drives the real ``openai`` client path of the LLM judge end to end without a network or a key.
Its rating is a transparent heuristic — more distinct words of the question echoed and a
reasonable length rate higher — and it says so in its reply.  It is not a quality judge: point
``--judge-base-url`` at a real endpoint for real ratings.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_WORD = re.compile(r"[a-z0-9]+")


def heuristic_rating(question: str, answer: str) -> int:
    q = set(_WORD.findall(question.lower()))
    a = _WORD.findall(answer.lower())
    if not a:
        return 1
    overlap = len(q & set(a)) / max(1, len(q))
    length = min(len(a), 120) / 120
    distinct = len(set(a)) / len(a)
    return max(1, min(10, round(1 + 4 * overlap + 3 * length + 2 * distinct)))


def _split_judge_prompt(text: str) -> tuple[str, str]:
    q = re.search(r"\[Question\]\s*(.*?)\s*\[The Start of Assistant's Answer\]", text, re.S)
    a = re.search(r"\[The Start of Assistant's Answer\]\s*(.*?)\s*\[The End of Assistant's Answer\]", text, re.S)
    return (q.group(1) if q else text), (a.group(1) if a else "")


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the demo output clean
        pass

    def do_POST(self):  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        question, answer = _split_judge_prompt(text)
        rating = heuristic_rating(question, answer)
        reply = f"Offline stand-in judge (heuristic, not GPT-4). Rating: [[{rating}]]"
        payload = {
            "id": "demo", "object": "chat.completion", "created": 0, "model": body.get("model", "demo"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": reply}}],
            "usage": {"prompt_tokens": len(text.split()), "completion_tokens": len(reply.split()),
                      "total_tokens": len(text.split()) + len(reply.split())},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class DemoJudgeServer:
    """``with DemoJudgeServer() as url:`` serves on a free 127.0.0.1 port until the block ends."""

    def __enter__(self) -> str:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        return False

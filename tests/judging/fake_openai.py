"""The LLM judge's scripted server: tests/helpers/openai_server.OpenAIServer (the one
OpenAI-compatible test server: real sockets on 127.0.0.1, chat and text completions, the Batch
API) with the reply chosen by a directive in the last message, ``<<name>>``:

    (none)       "Clear and helpful. Rating: [[8]]"
    <<seven>>    "[7]"                     (only the backup pattern matches)
    <<norating>> "I cannot rate this."     (no rating at all)
    <<ratelimit>> 429 with Retry-After: 0 for the first ``storm`` attempts of that request
    <<servererror>> 500 for the first 2 attempts
    <<timeout>>  the first attempt sleeps ``hang`` seconds (longer than the client timeout)
    <<slow>>     sleeps 0.3 s, then replies normally
    <<always500>> 500 forever
    <<rN>>       "Rating: [[N]]" (N = 1..10)

``latency`` adds a fixed delay to every reply; ``calls`` counts chat requests that reached the
server (batch ones included), ``statuses`` the answers by status, ``max_inflight`` the most
handled at once.  A batch completes after ``batch_polls`` status reads.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter

from tests.helpers.openai_server import Fault, OpenAIServer, ServerProcess

DIRECTIVE = re.compile(r"<<(\w+)>>")


def _directive(body: dict) -> str:
    m = DIRECTIVE.search(body["messages"][-1]["content"])
    return m.group(1) if m else ""


def judge_reply(body: dict, path: str) -> dict:
    content = body["messages"][-1]["content"]
    d = _directive(body)
    text = {"seven": "[7]", "norating": "I cannot rate this."}.get(d)
    if text is None:
        n = re.fullmatch(r"r(\d+)", d)
        text = f"Rating: [[{n.group(1)}]]" if n else "Clear and helpful. Rating: [[8]]"
    return {"text": text, "prompt_tokens": len(content) // 4 + 10, "completion_tokens": len(text) // 4 + 1}


class FakeOpenAI(OpenAIServer):
    def __init__(self, *, latency: float = 0.0, storm: int = 3, hang: float = 3.0, batch_polls: int = 2):
        super().__init__(latency=latency, reply=judge_reply, batch_polls=batch_polls)
        self.storm, self.hang = storm, hang
        self.attempts: Counter = Counter()
        self._attempts_lock = threading.Lock()
        self.fault = self._script

    def _script(self, body: dict, path: str) -> Fault | None:
        d = _directive(body)
        with self._attempts_lock:
            key = json.dumps(body["messages"], sort_keys=True)
            self.attempts[key] += 1
            attempt = self.attempts[key]
        if d == "ratelimit" and attempt <= self.storm:
            return Fault(status=429, retry_after=0, message="rate limited")
        if d == "servererror" and attempt <= 2 or d == "always500":
            return Fault(status=500, message="server error")
        if d == "timeout" and attempt == 1:
            return Fault(seconds=self.hang)
        if d == "slow":
            return Fault(seconds=0.3)
        return None


class FakeOpenAIProcess(ServerProcess):
    """The same server in a child process (for benchmarks: no GIL shared with the client);
    ``stats()`` reads its counters over HTTP."""

    server_class = FakeOpenAI

    def __enter__(self):
        super().__enter__()
        return self

"""A small OpenAI-compatible server on 127.0.0.1 with scripted replies (real sockets).

Endpoints: POST /v1/chat/completions, POST /v1/files (multipart), GET /v1/files/{id}/content,
POST /v1/batches, GET /v1/batches/{id}.  The reply to a chat request is chosen by a
directive in its last message, ``<<name>>``:

    (none)       "Clear and helpful. Rating: [[8]]"
    <<seven>>    "[7]"                     (only the backup pattern matches)
    <<norating>> "I cannot rate this."     (no rating at all)
    <<ratelimit>> 429 with Retry-After: 0 for the first ``storm`` attempts of that request
    <<servererror>> 500 for the first 2 attempts
    <<timeout>>  the first attempt sleeps ``hang`` seconds (longer than the client timeout)
    <<slow>>     sleeps 0.3 s, then replies normally
    <<always500>> 500 forever
    <<rN>>       "Rating: [[N]]" (N = 1..10)

``latency`` adds a fixed delay to every chat reply.  ``calls`` counts chat requests that
reached the server, ``max_inflight`` the most handled at once.  A batch completes after
``batch_polls`` status reads.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers.http import send

DIRECTIVE = re.compile(r"<<(\w+)>>")


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 resets connections at concurrency 32
    daemon_threads = True


class FakeOpenAI:
    def __init__(self, *, latency: float = 0.0, storm: int = 3, hang: float = 3.0, batch_polls: int = 2):
        self.latency, self.storm, self.hang, self.batch_polls = latency, storm, hang, batch_polls
        self.calls = 0
        self.attempts: Counter = Counter()
        self.statuses: Counter = Counter()
        self.inflight = 0
        self.max_inflight = 0
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # -- scripted chat ----------------------------------------------------------
    def chat(self, body: dict) -> tuple[int, dict, dict]:
        """(status, json body, extra headers) for one chat request."""
        content = body["messages"][-1]["content"]
        m = DIRECTIVE.search(content)
        d = m.group(1) if m else ""
        key = json.dumps(body["messages"], sort_keys=True)
        with self.lock:
            self.calls += 1
            self.attempts[key] += 1
            attempt = self.attempts[key]
        if d == "ratelimit" and attempt <= self.storm:
            return 429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"Retry-After": "0"}
        if d == "servererror" and attempt <= 2 or d == "always500":
            return 500, {"error": {"message": "server error", "type": "server_error"}}, {}
        if d == "timeout" and attempt == 1:
            time.sleep(self.hang)
        if d == "slow":
            time.sleep(0.3)
        if self.latency:
            time.sleep(self.latency)
        text = {"seven": "[7]", "norating": "I cannot rate this."}.get(d)
        if text is None:
            n = re.fullmatch(r"r(\d+)", d)
            text = f"Rating: [[{n.group(1)}]]" if n else "Clear and helpful. Rating: [[8]]"
        usage = {"prompt_tokens": len(content) // 4 + 10, "completion_tokens": len(text) // 4 + 1}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return 200, {"id": "chatcmpl-" + uuid.uuid4().hex[:12], "object": "chat.completion",
                     "created": int(time.time()), "model": body.get("model", "m"),
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": text}}],
                     "usage": usage}, {}

    # -- batch ------------------------------------------------------------------
    def _run_batch(self, batch: dict) -> None:
        out = []
        for line in self.files[batch["input_file_id"]].decode("utf-8").splitlines():
            if not line.strip():
                continue
            req = json.loads(line)
            status, body, _ = self.chat(req["body"])
            out.append(json.dumps({"id": "req-" + uuid.uuid4().hex[:8], "custom_id": req["custom_id"],
                                   "response": {"status_code": status, "body": body}, "error": None}))
        fid = "file-" + uuid.uuid4().hex[:12]
        self.files[fid] = ("\n".join(out) + "\n").encode("utf-8")
        batch.update(status="completed", output_file_id=fid, completed_at=int(time.time()),
                     request_counts={"total": len(out), "completed": len(out), "failed": 0})

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # small header/body writes on a kept-alive socket otherwise meet Nagle + delayed ACK
            # (~40 ms a reply): real servers (uvicorn, vLLM) set TCP_NODELAY too
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _send(self, status, payload, headers=None, raw=False):
                send(self, status, payload, headers, raw=raw)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self):
                body = self._body()
                if self.path.endswith("/chat/completions"):
                    with fake.lock:
                        fake.inflight += 1
                        fake.max_inflight = max(fake.max_inflight, fake.inflight)
                    try:
                        status, payload, headers = fake.chat(json.loads(body))
                    finally:
                        with fake.lock:
                            fake.inflight -= 1
                    fake.statuses[status] += 1
                    return self._send(status, payload, headers)
                if self.path.endswith("/files"):
                    msg = BytesParser().parsebytes(
                        b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
                    content, filename = b"", "upload"
                    for part in msg.get_payload():
                        if part.get_param("name", header="content-disposition") == "file":
                            content = part.get_payload(decode=True)
                            filename = part.get_filename() or filename
                    fid = "file-" + uuid.uuid4().hex[:12]
                    fake.files[fid] = content
                    return self._send(200, {"id": fid, "object": "file", "bytes": len(content),
                                            "created_at": int(time.time()), "filename": filename,
                                            "purpose": "batch", "status": "processed"})
                if self.path.endswith("/batches"):
                    req = json.loads(body)
                    bid = "batch_" + uuid.uuid4().hex[:12]
                    fake.batches[bid] = {"id": bid, "object": "batch", "endpoint": req["endpoint"],
                                         "input_file_id": req["input_file_id"],
                                         "completion_window": req["completion_window"],
                                         "status": "validating",
                                         "created_at": int(time.time()), "output_file_id": None,
                                         "error_file_id": None, "polls": 0}
                    return self._send(200, {k: v for k, v in fake.batches[bid].items() if k != "polls"})
                self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_GET(self):
                if self.path.endswith("/_stats"):
                    return self._send(200, {"calls": fake.calls, "max_inflight": fake.max_inflight,
                                            "statuses": {str(k): v for k, v in fake.statuses.items()}})
                m = re.search(r"/files/([\w-]+)/content$", self.path)
                if m and m.group(1) in fake.files:
                    return self._send(200, fake.files[m.group(1)], raw=True)
                m = re.search(r"/batches/([\w-]+)$", self.path)
                if m and m.group(1) in fake.batches:
                    b = fake.batches[m.group(1)]
                    b["polls"] += 1
                    if b["status"] != "completed":
                        if b["polls"] >= fake.batch_polls:
                            fake._run_batch(b)
                        else:
                            b["status"] = "in_progress"
                    return self._send(200, {k: v for k, v in b.items() if k != "polls"})
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        return Handler


def _serve(conn, kwargs):
    with FakeOpenAI(**kwargs) as srv:
        conn.send(srv.base_url)
        conn.recv()  # until the parent says stop


class FakeOpenAIProcess:
    """The same server in a child process (for benchmarks: no GIL shared with the client).
    ``stats()`` reads its counters over HTTP."""

    def __init__(self, **kwargs):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, kwargs), daemon=True)

    def __enter__(self):
        self.proc.start()
        self.base_url = self.conn.recv()
        return self

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(self.base_url + "/_stats") as r:
            return json.loads(r.read())

    def __exit__(self, *exc):
        self.conn.send("stop")
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()

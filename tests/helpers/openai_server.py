"""A small OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks (real sockets).

Serves ``GET /v1/models``, ``POST /v1/completions`` and ``POST /v1/chat/completions`` from a
thread pool (``ThreadingHTTPServer``, HTTP/1.1 keep-alive, like real servers), and can be
scripted to misbehave::

    with OpenAIServer(latency=0.1) as srv:             # every reply takes 100 ms
        srv.fail_next(2, status=429, retry_after=0.2)  # the next two requests get 429 + Retry-After
        srv.fail_next(1, status=500)
        srv.hang_next(1, seconds=3)                    # longer than the client's timeout
        srv.die_after(10)                              # serve 10 replies, then stop answering
        srv.reply_next(1, body=b"not json")            # a 200 whose body is not JSON (hostile)
        srv.reply_next(1, body={"choices": []})        # a 200 with any JSON body
        client = OpenAI(base_url=srv.base_url, api_key="x")
        ...
        srv.log                                        # every request: path, body, status, time

``reply`` (constructor argument or attribute) decides the answer: ``reply(body, path)``
returns the text, or a dict with ``text`` and optionally ``finish_reason`` and
``completion_tokens``, ``prompt_tokens`` (or a whole ``usage`` dict: over-reporting servers).
The default answer is a deterministic function of the prompt and the sampling parameters
(greedy requests ignore the seed, as real greedy decoding would).  A ``fault(body, path)``
hook may return a ``Fault`` for fully custom scripting.  ``capacity`` makes a slow server:
at most that many requests are worked on at once (``latency`` each), the others queue, and a
request the client gave up on still holds its worker until done (as on a real server).
The query string of a request (``?api-key=...``) is kept in ``log`` as ``query``, the
Authorization header as ``auth``; ``calls`` counts completion requests, ``statuses`` their
answers by status.

The Batch API is served too (``POST /v1/files`` multipart, ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}``): a batch completes after ``batch_polls``
status reads, each of its requests answered as a live request would be (``fault`` statuses
and ``reply``, logged with ``batch=True``).  ``GET /_stats`` returns the counters (for a
server in another process: ``ServerProcess``).  The LLM judge's scripted replies
(``<<directive>>`` in the answer) are in tests/judging/fake_openai.py, built on this server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from tests.helpers.http import send


@dataclasses.dataclass
class Fault:
    """What to do instead of a normal reply: an HTTP error status (with optional Retry-After
    seconds), a hang of ``seconds`` before replying normally, ``drop`` (close the connection
    without any reply), or ``body``: a reply of ``status`` (default 200) with this body (bytes
    as they are, anything else as JSON; ``content_type`` to label it): malformed or hostile replies."""

    status: int | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    drop: bool = False
    message: str = "scripted failure"
    body: object = None
    content_type: str | None = None


def default_reply(body: dict, path: str) -> dict:
    prompt = body.get("prompt")
    if prompt is None:
        prompt = json.dumps(body.get("messages"), sort_keys=True)
    temperature = float(body.get("temperature", 1.0) or 0.0)
    seed = body.get("seed") if temperature > 0 else None
    key = json.dumps([prompt, temperature, body.get("top_k"), body.get("top_p"), seed], sort_keys=True)
    words = hashlib.sha256(key.encode()).hexdigest()
    max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
    n = min(max_tokens, 4)
    return {"text": " ".join(words[i * 4:(i + 1) * 4] for i in range(n)), "completion_tokens": n,
            "finish_reason": "length" if n == max_tokens else "stop"}


class OpenAIServer:
    def __init__(self, *, latency: float = 0.0, reply: Callable | None = None, models=("tiny",),
                 port: int = 0, capacity: int | None = None, batch_polls: int = 2):
        self.latency = latency
        self.batch_polls = batch_polls
        self.statuses: Counter = Counter()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self._workers = threading.Semaphore(capacity) if capacity else None
        self.reply = reply or default_reply
        self.fault: Callable | None = None
        self.models = list(models)
        self.log: list[dict] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._served = 0
        self._die_after: int | None = None
        self.dead = False
        self.in_flight = 0          # requests being answered now
        self.max_in_flight = 0      # the most seen at once
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ---------------------------------------------------------------------------
    def fail_next(self, n: int = 1, *, status: int = 500, retry_after: float | None = None,
                  message: str = "scripted failure") -> None:
        with self._lock:
            self._faults += [Fault(status=status, retry_after=retry_after, message=message) for _ in range(n)]

    def hang_next(self, n: int = 1, *, seconds: float = 5.0) -> None:
        with self._lock:
            self._faults += [Fault(seconds=seconds) for _ in range(n)]

    def reply_next(self, n: int = 1, *, body, status: int = 200) -> None:
        self.fault_next(*[Fault(status=status, body=body) for _ in range(n)])

    def fault_next(self, *faults: Fault) -> None:
        """Answer the next requests with these faults, in order."""
        with self._lock:
            self._faults += list(faults)

    def drop_next(self, n: int = 1) -> None:
        with self._lock:
            self._faults += [Fault(drop=True) for _ in range(n)]

    def die_after(self, n: int) -> None:
        """Serve ``n`` more successful replies, then stop: the listening socket closes and every
        open connection is dropped without a reply."""
        with self._lock:
            self._die_after = self._served + n

    @property
    def calls(self) -> int:
        """Completion requests that reached the server (batch ones included)."""
        return len(self.log)

    @property
    def max_inflight(self) -> int:
        return self.max_in_flight

    def completion(self, body: dict, path: str) -> dict:
        """The JSON payload of a normal reply to ``body`` (from ``reply``)."""
        out = self.reply(body, path)
        out = {"text": out} if isinstance(out, str) else dict(out)
        text = out["text"]
        n = out.get("completion_tokens", len(text.split()))
        pt = out.get("prompt_tokens", 1)
        usage = out.get("usage", {"prompt_tokens": pt, "completion_tokens": n, "total_tokens": n + pt})
        finish = out.get("finish_reason", "stop")
        if path.rstrip("/").endswith("/chat/completions"):
            return {"id": "chatcmpl-" + uuid.uuid4().hex[:12], "object": "chat.completion", "created": 0,
                    "model": body.get("model"), "usage": usage, "choices": [{
                        "index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": text}}]}
        return {"id": "cmpl-" + uuid.uuid4().hex[:12], "object": "text_completion", "created": 0,
                "model": body.get("model"), "usage": usage, "choices": [{
                    "index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}

    def _count(self, status) -> None:
        with self._lock:
            self.statuses[status] += 1

    # -- Batch API -----------------------------------------------------------------------------
    def _upload(self, content_type: str, raw: bytes) -> dict:
        from email.parser import BytesParser

        msg = BytesParser().parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        content, filename = b"", "upload"
        for part in msg.get_payload():
            if part.get_param("name", header="content-disposition") == "file":
                content = part.get_payload(decode=True)
                filename = part.get_filename() or filename
        fid = "file-" + uuid.uuid4().hex[:12]
        self.files[fid] = content
        return {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                "filename": filename, "purpose": "batch", "status": "processed"}

    def _new_batch(self, req: dict) -> dict:
        bid = "batch_" + uuid.uuid4().hex[:12]
        self.batches[bid] = {"id": bid, "object": "batch", "endpoint": req["endpoint"],
                             "input_file_id": req["input_file_id"], "completion_window": req["completion_window"],
                             "status": "validating", "created_at": int(time.time()), "output_file_id": None,
                             "error_file_id": None, "polls": 0}
        return {k: v for k, v in self.batches[bid].items() if k != "polls"}

    def _poll_batch(self, bid: str) -> dict:
        b = self.batches[bid]
        b["polls"] += 1
        if b["status"] != "completed":
            if b["polls"] >= self.batch_polls:
                self._run_batch(b)
            else:
                b["status"] = "in_progress"
        return {k: v for k, v in b.items() if k != "polls"}

    def _run_batch(self, batch: dict) -> None:
        out = []
        for line in self.files[batch["input_file_id"]].decode("utf-8").splitlines():
            if not line.strip():
                continue
            req = json.loads(line)
            body, path = req["body"], req["url"]
            with self._lock:
                self.log.append({"path": path, "body": body, "time": time.monotonic(), "status": None,
                                 "batch": True})
            fault = self.fault(body, path) if self.fault else None
            if fault is not None and fault.status:
                status, payload = fault.status, {"error": {"message": fault.message, "type": "scripted"}}
            else:
                status, payload = 200, self.completion(body, path)
            self.log[-1]["status"] = status
            self._count(status)
            out.append(json.dumps({"id": "req-" + uuid.uuid4().hex[:8], "custom_id": req["custom_id"],
                                   "response": {"status_code": status, "body": payload}, "error": None}))
        fid = "file-" + uuid.uuid4().hex[:12]
        self.files[fid] = ("\n".join(out) + "\n").encode("utf-8")
        batch.update(status="completed", output_file_id=fid, completed_at=int(time.time()),
                     request_counts={"total": len(out), "completed": len(out), "failed": 0})

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "OpenAIServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        self._httpd.api = self  # what _Handler serves
        self._httpd.daemon_threads = True
        self._httpd.request_queue_size = 256
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def _kill(self) -> None:
        """Stop answering at once (called with the lock held)."""
        self.dead = True
        httpd = self._httpd
        threading.Thread(target=lambda: (httpd.shutdown(), httpd.server_close()), daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self.dead = True
            if self._thread and self._thread.is_alive():
                self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> "OpenAIServer":
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class _Handler(BaseHTTPRequestHandler):
    """One request to an :class:`OpenAIServer` (``self.api``): models, batches and files on GET;
    scripted faults, then a completion, on POST."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed-ACK stalls)

    @property
    def api(self) -> OpenAIServer:
        return self.server.api

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        api, path = self.api, self.path.split("?")[0].rstrip("/")
        if path == "/v1/models":
            return self._send(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in api.models]})
        if path.endswith("/_stats"):
            return self._send(200, {"calls": api.calls, "max_inflight": api.max_in_flight,
                                    "statuses": {str(k): v for k, v in api.statuses.items()}})
        m = re.search(r"/files/([\w-]+)/content$", path)
        if m and m.group(1) in api.files:
            return send(self, 200, api.files[m.group(1)], raw=True)
        m = re.search(r"/batches/([\w-]+)$", path)
        if m and m.group(1) in api.batches:
            return self._send(200, api._poll_batch(m.group(1)))
        return self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self):
        api = self.api
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if api.dead:
            return self._drop()
        path, _, query = self.path.partition("?")
        if path.endswith("/files"):
            return self._send(200, api._upload(self.headers["Content-Type"], raw))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._send(400, {"error": {"message": "invalid JSON"}})
        if path.endswith("/batches"):
            return self._send(200, api._new_batch(body))
        entry = {"path": path, "body": body, "time": time.monotonic(), "status": None,
                 "query": query, "auth": self.headers.get("Authorization")}
        with api._lock:
            api.log.append(entry)
        fault = api.fault(body, path) if api.fault else None
        if fault is None:
            with api._lock:
                fault = api._faults.pop(0) if api._faults else None
        if fault is not None and self._scripted(fault, entry):
            return
        self._wait(fault.seconds if fault else 0.0)
        self._complete(path, body, entry)

    def _scripted(self, fault: Fault, entry: dict) -> bool:
        """Answer with ``fault`` where it says what to answer (a drop, a body, a status)."""
        api = self.api
        if fault.drop:
            entry["status"] = "dropped"
            self._drop()
            return True
        if fault.body is not None:
            entry["status"] = fault.status or 200
            api._count(entry["status"])
            if not send(self, fault.status or 200, fault.body, raw=isinstance(fault.body, bytes),
                        content_type=fault.content_type):
                self.close_connection = True
            return True
        if fault.status:
            entry["status"] = fault.status
            api._count(fault.status)
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            self._send(fault.status, {"error": {"message": fault.message, "type": "scripted"}}, headers)
            return True
        return False

    def _wait(self, extra: float) -> None:
        """The server's latency (plus a fault's delay), counted as in flight."""
        api = self.api
        with api._lock:
            api.in_flight += 1
            api.max_in_flight = max(api.max_in_flight, api.in_flight)
        try:
            if api._workers is not None:
                with api._workers:
                    time.sleep(api.latency + extra)
            else:
                time.sleep(api.latency + extra)
        finally:
            with api._lock:
                api.in_flight -= 1

    def _complete(self, path: str, body: dict, entry: dict) -> None:
        api = self.api
        if path.rstrip("/") not in ("/v1/completions", "/v1/chat/completions"):
            entry["status"] = 404
            return self._send(404, {"error": {"message": f"no route {path}"}})
        if api.dead:
            return self._drop()
        payload = api.completion(body, path)
        entry["status"] = 200
        api._count(200)
        entry["sent"] = send(self, 200, payload)  # False: the client had gone
        if not entry["sent"]:
            self.close_connection = True
        with api._lock:
            api._served += 1
            if api._die_after is not None and api._served >= api._die_after:
                api._kill()

    def _send(self, status, payload, headers=None):
        if not send(self, status, payload, headers):
            self.close_connection = True

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass


def _serve_forever(conn, cls, kwargs):  # child process entry point
    srv = cls(**kwargs).start()
    conn.send(srv.base_url)
    conn.recv()  # any message (or the parent's exit) stops it
    srv.stop()


class ServerProcess:
    """An OpenAIServer (or a subclass: ``server_class``) in a child process (its own GIL, like a
    real server): for benchmarks.

    ``with ServerProcess(latency=0.1) as base_url: ...`` (no scripting across processes;
    ``stats()`` reads the counters over HTTP)."""

    server_class = None

    def __init__(self, server_class=None, **kwargs):
        self.cls = server_class or self.server_class or OpenAIServer
        self.kwargs = kwargs

    def __enter__(self) -> str:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_forever, args=(child, self.cls, self.kwargs), daemon=True)
        self._proc.start()
        self.base_url = self._conn.recv()
        return self.base_url

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(self.base_url + "/_stats") as r:
            return json.loads(r.read())

    def __exit__(self, *exc):
        try:
            self._conn.send("stop")
        except OSError:
            pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
        return False

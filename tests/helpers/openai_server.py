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
Authorization header as ``auth``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from tests.helpers.http import send


@dataclasses.dataclass
class Fault:
    """What to do instead of a normal reply: an HTTP error status (with optional Retry-After
    seconds), a hang of ``seconds`` before replying normally, ``drop`` (close the connection
    without any reply), or ``body``: a reply of ``status`` (default 200) with this body (bytes
    as they are, anything else as JSON): malformed or hostile replies."""

    status: int | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    drop: bool = False
    message: str = "scripted failure"
    body: object = None


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
                 port: int = 0, capacity: int | None = None):
        self.latency = latency
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
        with self._lock:
            self._faults += [Fault(status=status, body=body) for _ in range(n)]

    def drop_next(self, n: int = 1) -> None:
        with self._lock:
            self._faults += [Fault(drop=True) for _ in range(n)]

    def die_after(self, n: int) -> None:
        """Serve ``n`` more successful replies, then stop: the listening socket closes and every
        open connection is dropped without a reply."""
        with self._lock:
            self._die_after = self._served + n

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "OpenAIServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed-ACK stalls)

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if self.path.split("?")[0].rstrip("/") == "/v1/models":
                    return self._send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "test"}
                        for m in server.models]})
                return self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if server.dead:
                    return self._drop()
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return self._send(400, {"error": {"message": "invalid JSON"}})
                path, _, query = self.path.partition("?")
                entry = {"path": path, "body": body, "time": time.monotonic(), "status": None,
                         "query": query, "auth": self.headers.get("Authorization")}
                with server._lock:
                    server.log.append(entry)
                fault = server.fault(body, path) if server.fault else None
                if fault is None:
                    with server._lock:
                        fault = server._faults.pop(0) if server._faults else None
                if fault is not None and fault.drop:
                    entry["status"] = "dropped"
                    return self._drop()
                if fault is not None and fault.body is not None:
                    entry["status"] = fault.status or 200
                    if not send(self, fault.status or 200, fault.body, raw=isinstance(fault.body, bytes)):
                        self.close_connection = True
                    return
                if fault is not None and fault.status:
                    entry["status"] = fault.status
                    headers = ({"Retry-After": f"{fault.retry_after:g}"}
                               if fault.retry_after is not None else {})
                    return self._send(fault.status, {"error": {"message": fault.message, "type": "scripted"}},
                                      headers)
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if server._workers is not None:
                        with server._workers:
                            time.sleep(server.latency + (fault.seconds if fault else 0.0))
                    else:
                        time.sleep(server.latency + (fault.seconds if fault else 0.0))
                finally:
                    with server._lock:
                        server.in_flight -= 1
                if path.rstrip("/") not in ("/v1/completions", "/v1/chat/completions"):
                    entry["status"] = 404
                    return self._send(404, {"error": {"message": f"no route {path}"}})
                if server.dead:
                    return self._drop()
                out = server.reply(body, self.path)
                out = {"text": out} if isinstance(out, str) else dict(out)
                text = out["text"]
                n = out.get("completion_tokens", len(text.split()))
                pt = out.get("prompt_tokens", 1)
                usage = out.get("usage", {"prompt_tokens": pt, "completion_tokens": n, "total_tokens": n + pt})
                finish = out.get("finish_reason", "stop")
                if path.rstrip("/") == "/v1/chat/completions":
                    payload = {"id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                               "model": body.get("model"), "usage": usage, "choices": [{
                                   "index": 0, "finish_reason": finish,
                                   "message": {"role": "assistant", "content": text}}]}
                else:
                    payload = {"id": "cmpl-test", "object": "text_completion", "created": 0,
                               "model": body.get("model"), "usage": usage, "choices": [{
                                   "index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}
                entry["status"] = 200
                entry["sent"] = send(self, 200, payload)  # False: the client had gone
                if not entry["sent"]:
                    self.close_connection = True
                with server._lock:
                    server._served += 1
                    if server._die_after is not None and server._served >= server._die_after:
                        server._kill()

            def _send(self, status, payload, headers=None):
                if not send(self, status, payload, headers):
                    self.close_connection = True

            def _drop(self):
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
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


def _serve_forever(conn, kwargs):  # child process entry point
    srv = OpenAIServer(**kwargs).start()
    conn.send(srv.base_url)
    conn.recv()  # any message (or the parent's exit) stops it
    srv.stop()


class ServerProcess:
    """An OpenAIServer in a child process (its own GIL, like a real server): for benchmarks.

    ``with ServerProcess(latency=0.1) as base_url: ...`` (no scripting across processes)."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def __enter__(self) -> str:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_forever, args=(child, self.kwargs), daemon=True)
        self._proc.start()
        return self._conn.recv()

    def __exit__(self, *exc):
        try:
            self._conn.send("stop")
        except OSError:
            pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
        return False

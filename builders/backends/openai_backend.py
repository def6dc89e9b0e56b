"""OpenAI-compatible HTTP backend (``vllm serve``, TGI, llama.cpp's server, OpenAI itself).

Uses the official ``openai`` client (``AsyncOpenAI``): its own retries with exponential
backoff on connection errors, timeouts, 408/409/429 and 5xx, honouring ``Retry-After``
(``max_retries``); an ``asyncio.Semaphore`` keeps ``concurrency`` requests in flight.
``top_k`` goes in ``extra_body`` (servers such as vLLM accept it; OpenAI does not: use
``send_top_k=False``), and only for sampled requests (greedy ignores it anyway).

The first request of a run goes alone, the rest at ``concurrency``: a refused key (401/403)
stops the run at that first reply with one clear line, before more requests go out (and at
any later 401/403 too: the requests in flight are abandoned).  A request that still fails
after its retries, or whose 200 reply is malformed (not JSON, ``"choices": []``,
``"message": null``, a null text), becomes an error result (finish_reason "error", the
message kept), which a re-run of an unfinished pool generates again.  When ``abort_after``
requests in a row fail (the server died or rejects everything) the run stops with one clear
error; the pool keeps the finished shards and a re-run resumes.  The API key comes from
``$OPENAI_API_KEY`` (or the base URL's query, ``?api-key=...``) and is masked in every text
written or printed, the generated texts included (a server may echo it).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Sequence

from resetkit.config import field, run_field
from resetkit.errors import ResetkitError
from resetkit.openai_client import (MalformedReply, auth_failure, check_endpoint, make_client, parse_reply,
                                    shown)
from resetkit.secrets import redact_content, redact_text, register_url

from .base import Backend, GenRequest, GenResult


class _Refused(Exception):
    """A 401/403: the run stops."""


class OpenAIBackend(Backend):
    name = "openai"
    holds_model = False

    @dataclasses.dataclass(frozen=True)
    class Options:
        base_url: str | None = run_field(None, help="server URL, e.g. http://127.0.0.1:8000/v1 (default "
                                                    "$OPENAI_BASE_URL)")
        chat: bool = field(False, help="use /v1/chat/completions (the prompt as the user message, the server "
                                       "applies the model's chat template) instead of /v1/completions")
        send_top_k: bool = field(True, help="send top_k (extra_body); off for servers that reject it")
        concurrency: int = run_field(32, help="requests in flight at once")
        max_retries: int = run_field(5, help="retries per request (429/5xx/timeouts, honouring Retry-After)")
        timeout: float = run_field(120.0, help="seconds per request attempt")
        abort_after: int | None = run_field(None, help="stop the run after this many failed requests in a row "
                                                       "(default: max(8, 2 x concurrency))")

    def __init__(self, model: str, **kw):
        super().__init__(model, **kw)
        o = self.options
        self.base_url = o.base_url or os.environ.get("OPENAI_BASE_URL")
        register_url(self.base_url)
        self.concurrency = max(1, int(o.concurrency))
        self.max_retries, self.timeout = int(o.max_retries), float(o.timeout)
        self.chat, self.send_top_k = o.chat, o.send_top_k
        self.abort_after = o.abort_after or max(8, 2 * self.concurrency)
        self._runner = None
        self._client = None
        self._probed = False  # the first request of the run went alone

    def check(self) -> None:
        if not self.base_url:
            raise ResetkitError("the openai backend needs a base URL (--base-url or $OPENAI_BASE_URL)")
        check_endpoint(self.base_url, self.model, self.timeout, "the openai backend")

    def model_info(self) -> dict:
        return {"model": self.model, "revision": self.revision or "unknown"}

    def server_chat(self) -> bool:
        return self.chat

    # -- generation ----------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest],
                 on_done: Callable[[int], None] | None = None) -> list[GenResult]:
        import asyncio

        if not self.send_top_k:
            bad = next((r for r in requests if r.top_k > 0 and not r.greedy), None)
            if bad is not None:
                raise ResetkitError(f"the grid samples with top_k={bad.top_k} but top_k is not sent to this "
                                    "server (--no-send-top-k); use a grid without top-k sampling")
        if not requests:
            return []
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self._run_all(list(requests), on_done))

    def _params(self, r: GenRequest) -> dict:
        params = {"model": self.model, "max_tokens": r.max_new_tokens, "temperature": r.temperature,
                  "top_p": r.top_p, "seed": r.seed}
        if self.send_top_k and r.top_k > 0 and not r.greedy:
            params["extra_body"] = {"top_k": r.top_k}
        if r.stop:  # the server stops there (no run-on tokens paid for); the pool still cuts the
            # text at the first stop string, so a server honouring fewer gives the same candidate
            params["stop"] = list(r.stop)[:4]  # OpenAI's API accepts at most 4
        return params

    async def _one(self, r: GenRequest) -> GenResult:
        import openai

        try:
            if self.chat:
                system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
                resp = await self._client.chat.completions.create(
                    messages=[*system, {"role": "user", "content": r.prompt}], **self._params(r))
            else:
                resp = await self._client.completions.create(prompt=r.prompt, **self._params(r))
            text, finish, tokens = parse_reply(resp, chat=self.chat)
        except openai.APIStatusError as exc:
            refused = auth_failure(exc, self.base_url)
            if refused:
                raise _Refused(refused) from exc
            # a server may echo the key in its error body: never store it in the pool
            return GenResult(r.key, None, None, "error", redact_text(f"{type(exc).__name__}: {exc}"))
        except openai.OpenAIError as exc:
            return GenResult(r.key, None, None, "error", redact_text(f"{type(exc).__name__}: {exc}"))
        except MalformedReply as exc:
            return GenResult(r.key, None, None, "error", str(exc))
        except ValueError as exc:  # a body labelled JSON that is not JSON
            return GenResult(r.key, None, None, "error", f"malformed reply (invalid JSON): {exc}")
        return GenResult(r.key, redact_content(text), tokens[1] if tokens else None, finish or "stop")

    async def _run_all(self, requests: list[GenRequest], on_done) -> list[GenResult]:
        import asyncio

        if self._client is None:
            self._client = make_client(self.base_url, max_retries=self.max_retries, timeout=self.timeout,
                                       purpose="the openai backend")
        sem = asyncio.Semaphore(self.concurrency)
        failed_in_a_row = 0
        last_error = None
        abort = asyncio.Event()
        refused: list[str] = []

        async def guarded(r):
            nonlocal failed_in_a_row, last_error
            async with sem:
                if abort.is_set():
                    return None
                try:
                    res = await self._one(r)
                except _Refused as exc:
                    refused.append(str(exc))
                    abort.set()
                    return None
            if res.finish_reason == "error":
                failed_in_a_row += 1
                last_error = res.error
                if failed_in_a_row >= self.abort_after:
                    abort.set()
            else:
                failed_in_a_row = 0
            if on_done:
                on_done(1)
            return res

        tasks = []
        if not self._probed:  # the first request alone: a refused key costs one request
            self._probed = True
            tasks.append(asyncio.ensure_future(guarded(requests[0])))
            await asyncio.wait([tasks[0]])
            requests = requests[1:]
        if not abort.is_set():
            tasks += [asyncio.ensure_future(guarded(r)) for r in requests]
        waiter = asyncio.ensure_future(abort.wait())
        pending = {t for t in tasks if not t.done()}
        while pending and not abort.is_set():
            _, pending = await asyncio.wait(pending | {waiter}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(waiter)
        waiter.cancel()
        if abort.is_set():
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if refused:
                raise ResetkitError(refused[0])
            raise ResetkitError(f"{shown(self.base_url)}: {self.abort_after} requests in a row failed after "
                                f"{self.max_retries} retries each; last error: {last_error}")
        return [t.result() for t in tasks]

    def close(self) -> None:
        if self._runner is not None:
            if self._client is not None:
                self._runner.run(self._client.close())
            self._runner.close()
        self._runner = self._client = None

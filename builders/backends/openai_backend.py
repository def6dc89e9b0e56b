"""OpenAI-compatible HTTP backend (``vllm serve``, TGI, llama.cpp's server, OpenAI itself).

Uses the official ``openai`` client (``AsyncOpenAI``): its own retries with exponential
backoff on connection errors, timeouts, 408/409/429 and 5xx, honouring ``Retry-After``
(``max_retries``); an ``asyncio.Semaphore`` keeps ``concurrency`` requests in flight.
``top_k`` goes in ``extra_body`` (servers such as vLLM accept it; OpenAI does not: use
``send_top_k=False``), and only for sampled requests (greedy ignores it anyway).

A request that still fails after its retries becomes an error result (finish_reason
"error", the message kept).  When ``abort_after`` requests in a row fail (the server died or
rejects everything) the run stops with one clear error; the pool keeps the finished shards
and a re-run resumes.  The API key comes from ``$OPENAI_API_KEY`` only and is never logged.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from resetkit.errors import ResetkitError, require

from .base import Backend, GenRequest, GenResult


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, concurrency: int = 32,
                 max_retries: int = 5, timeout: float = 120.0, chat: bool = False, send_top_k: bool = True,
                 revision: str | None = None, abort_after: int | None = None, **_):
        super().__init__(model, revision=revision)
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        self.concurrency = max(1, int(concurrency))
        self.max_retries, self.timeout = int(max_retries), float(timeout)
        self.chat, self.send_top_k, self.revision = chat, send_top_k, revision
        self.abort_after = abort_after or max(8, 2 * self.concurrency)
        self._runner = None
        self._client = None

    def _api_key(self) -> str:
        # local servers accept any key; the client insists on one
        return os.environ.get("OPENAI_API_KEY") or "EMPTY"

    def check(self) -> None:
        openai = require("openai", "openai", "the openai backend")
        if not self.base_url:
            raise ResetkitError("the openai backend needs a base URL (--base-url or $OPENAI_BASE_URL)")
        client = openai.OpenAI(base_url=self.base_url, api_key=self._api_key(), max_retries=1,
                               timeout=min(10.0, self.timeout))
        try:
            models = [m.id for m in client.models.list()]
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise ResetkitError(f"cannot reach the OpenAI-compatible server at {self.base_url} "
                                f"({exc})") from exc
        except openai.AuthenticationError as exc:
            raise ResetkitError(f"{self.base_url} refused the API key (set $OPENAI_API_KEY)") from exc
        except openai.APIStatusError:
            models = []  # some servers have no /models route; the first request will tell
        finally:
            client.close()
        if models and self.model not in models:
            print(f"warning: {self.base_url} does not list model {self.model!r} (it lists: "
                  f"{', '.join(models[:10])})", file=sys.stderr)

    def model_info(self) -> dict:
        return {"model": self.model, "revision": self.revision or "unknown"}

    # -- generation ----------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest],
                 on_done: Callable[[int], None] | None = None) -> list[GenResult]:
        import asyncio

        if not self.send_top_k:
            bad = next((r for r in requests if r.top_k > 0 and not r.greedy), None)
            if bad is not None:
                raise ResetkitError(f"the grid samples with top_k={bad.top_k} but top_k is not sent to this "
                                    "server (--no-top-k); use a grid without top-k sampling")
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
        return params

    async def _one(self, r: GenRequest) -> GenResult:
        import openai

        try:
            if self.chat:
                resp = await self._client.chat.completions.create(
                    messages=[{"role": "user", "content": r.prompt}], **self._params(r))
                choice = resp.choices[0]
                text = choice.message.content or ""
            else:
                resp = await self._client.completions.create(prompt=r.prompt, **self._params(r))
                choice = resp.choices[0]
                text = choice.text or ""
        except openai.OpenAIError as exc:
            from resetkit.secrets import redact_text

            # a server may echo the key in its error body: never store it in the pool
            return GenResult(r.key, None, None, "error", redact_text(f"{type(exc).__name__}: {exc}"))
        tokens = resp.usage.completion_tokens if resp.usage is not None else None
        return GenResult(r.key, text, tokens, choice.finish_reason or "stop")

    async def _run_all(self, requests: list[GenRequest], on_done) -> list[GenResult]:
        import asyncio

        import openai

        if self._client is None:
            self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self._api_key(),
                                              max_retries=self.max_retries, timeout=self.timeout)
        sem = asyncio.Semaphore(self.concurrency)
        failed_in_a_row = 0
        last_error = None
        abort = asyncio.Event()

        async def guarded(r):
            nonlocal failed_in_a_row, last_error
            async with sem:
                if abort.is_set():
                    return None
                res = await self._one(r)
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

        tasks = [asyncio.ensure_future(guarded(r)) for r in requests]
        waiter = asyncio.ensure_future(abort.wait())
        pending = set(tasks)
        while pending and not abort.is_set():
            _, pending = await asyncio.wait(pending | {waiter}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(waiter)
        waiter.cancel()
        if abort.is_set():
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise ResetkitError(f"{self.base_url}: {self.abort_after} requests in a row failed after "
                                f"{self.max_retries} retries each; last error: {last_error}")
        return [t.result() for t in tasks]

    def close(self) -> None:
        if self._runner is not None:
            if self._client is not None:
                self._runner.run(self._client.close())
            self._runner.close()
        self._runner = self._client = None

"""The instruction-following judge: an LLM rates each answer 1-10 (paper §2.2, Table 5).

Any OpenAI-compatible endpoint and model (``LLMJudge.Options``: ``model``, default
``gpt-4-0613``, and ``base_url``; ``--set judge.llm.FIELD=VALUE``).  The key is
``$OPENAI_API_KEY`` (needed up front only for OpenAI's own API; a local server gets a
placeholder) or a credential in the base URL's query; neither is ever written or printed
(resetkit/secrets.py).  Temperature 0, at most 512 tokens.  The
rating is parsed as FastChat does (``[[r]]``, else ``[r]``) and normalised r/10; a reply
without a rating (or with one outside 0-10) gives a null value with the raw text kept and
the reason in ``error``.  An empty answer is null ("empty answer") and costs no call.

What a paid run promises (docs/judges.md, "What a paid run promises"):
- every good reply is committed to a content-addressed cache (sqlite WAL,
  ``STORE/.cache/llm_judge/``; key = sha256 of model + full messages + decoding parameters)
  before its request counts as done: a kill -9 loses no reply that was received, and a
  rerun asks for nothing that is cached.  A cache that cannot be written (disk full) stops
  the run at once with one line; no further request is sent;
- the endpoint is checked before any work (a dead port is one line); the first request
  goes alone, then ``concurrency`` at once; retries (``max_retries``; 429/5xx/
  connection errors, exponential backoff honouring Retry-After) are done here, and a
  timeout halves the concurrency (once per burst) and is retried, so a slow server is
  not flooded; a 401/403 stops the run at that reply;
- a malformed 200 (not JSON, no choices, null message/content, empty text) is an error
  row, never cached, retried by the next run, like a request that failed after its retries;
  a run in which every request failed exits non-zero (judging/cli.py);
- ``max_usd`` is a hard cap: each request reserves a guaranteed bound (prompt UTF-8 bytes
  plus the chat format's tokens, plus ``max_tokens``), no request starts whose reservation
  would cross the cap, a reply without usage is charged its bound, and a reply reporting
  more than its bound stops the run at once (the bound holds for byte-level BPE models);
- ``plan`` (``--dry-run``) estimates calls, tokens (chars/4 for the prompt, a typical
  150-token reply) and USD; ``batch`` sends the uncached requests through the Batch API
  at half price, keeping the batch id under the cache folder so a rerun resumes it.

Modules: judging/llm_prompt.py (prompt, parsing, prices), judging/llm_cache.py (the reply
cache), judging/llm_batch.py (the Batch API path); the direct requests are here.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from dataclasses import dataclass
from pathlib import Path

from resetkit.config import field, run_field
from resetkit.errors import ResetkitError
from resetkit.openai_client import (MalformedReply, auth_failure, check_endpoint, effective_url, make_client,
                                    needs_key, parse_reply, reply_tokens, retry_after, shown)
from resetkit.secrets import redact_content, redact_text, register_url
from resetkit.store import canonical_json

from .api import RETRYABLE, Judge, Score, progress_bar
from .llm_batch import run_batch
from .llm_cache import CacheWriteError, ResponseCache
from .llm_prompt import (EST_REPLY_TOKENS, Prices, build_messages, estimate_tokens, load_prompt, parse_rating,
                         prompt_bound, question_of, request_key)

MAX_FREE_TIMEOUT_RETRIES = 8  # timeouts of an overloaded server, retried at a lower concurrency


class _Limiter:
    """At most ``limit`` requests in flight: halved on a burst of timeouts (once per burst: only
    a timeout of a request started after the last cut cuts again), raised by one after
    ``limit`` replies in a row without a timeout, up to the configured concurrency."""

    def __init__(self, n: int):
        self.max = self.limit = self.lowest = n
        self.active = self.epoch = self.ok = 0
        self._waiters: collections.deque = collections.deque()

    async def acquire(self) -> int:
        while self.active >= self.limit:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            await fut
        self.active += 1
        return self.epoch

    def release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        """Wake as many waiters as there are free slots (one each, in order: waking every
        waiter on every reply would cost O(waiters) a reply)."""
        free = self.limit - self.active
        while free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1

    def timed_out(self, epoch: int) -> bool:
        """A request started at ``epoch`` timed out: True when it is retried without counting as a
        retry (a victim of an overload that the cut answers)."""
        if epoch < self.epoch:
            return True
        if self.limit > 1:
            self.limit = max(1, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self.epoch += 1
            self.ok = 0
            return True
        return False

    def succeeded(self) -> None:
        self.ok += 1
        if self.limit < self.max and self.ok >= self.limit:
            self.limit += 1
            self.ok = 0
            self._wake()


class _Budget:
    """``--max-usd`` as a hard cap: a request starts only when what is spent, plus the worst
    case of every request in flight, plus its own worst case stays within the cap; it waits
    while requests in flight may still free room, and gives up when nothing is in flight."""

    def __init__(self, cap: float):
        self.cap, self.spent, self.reserved = cap, 0.0, 0.0
        self._waiters: list = []

    async def reserve(self, amount: float) -> bool:
        while self.spent + self.reserved + amount > self.cap + 1e-12:
            if self.reserved <= 1e-15:
                return False
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            await fut
        self.reserved += amount
        return True

    def settle(self, reserved: float, spent: float) -> None:
        self.reserved = max(0.0, self.reserved - reserved)
        self.spent += spent
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)


class LLMJudge(Judge):
    """llm -> rating (instruction following of open-ended examples)."""

    name = "llm"
    metrics = ("rating",)
    tasks = ("open_ended",)
    needs = ("instruction", "context", "question", "prompt")
    signals = {"instr.open_ended": "rating"}

    @dataclass(frozen=True)
    class Options:
        model: str = field("gpt-4-0613", help="LLM judge model name at the endpoint.")
        base_url: str | None = run_field(None, help=(
            "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (default: the OpenAI API; "
            "$OPENAI_BASE_URL is honoured). A key in its query (?api-key=...) is sent and never shown; "
            "the key is $OPENAI_API_KEY, needed up front only for OpenAI's own API."))
        prompt: str = field("paper", help="Judge prompt: paper (Table 5), single-v1 (FastChat), "
                                          "or a prompt .yaml file.")
        temperature: float = field(0.0, help="Judge sampling temperature (paper: 0).")
        max_tokens: int = field(512, help="Judge max completion tokens (paper: 512).")
        concurrency: int = run_field(32, help="Requests in flight at most (halved on a burst of timeouts, "
                                          "raised back slowly).")
        max_retries: int = run_field(6, help="Retries per request on 429/5xx/timeouts (exponential backoff, "
                                         "Retry-After honoured).")
        timeout: float = run_field(120.0, help="Seconds per request before it is retried.")
        prices: str | None = run_field(None, help="YAML/JSON file of USD per 1M tokens: "
                                              "{model: {input: X, output: Y}} (default: built-in table).")
        max_usd: float | None = run_field(None, help="Hard cap on the LLM judge's spend in USD: no request "
                                                 "starts whose worst case could cross it.")
        batch: bool = field(False, help="Use the OpenAI Batch API (half price; resumable while pending).")
        batch_poll_seconds: float = run_field(30.0, help="Seconds between Batch API status polls.")
        batch_wait: bool = run_field(True, help="Wait for a submitted batch to finish (else exit; rerun "
                                            "collects it).")

    def __init__(self, cfg=None, store=None):
        super().__init__(cfg, store)
        o = self.options
        self.prompt = load_prompt(o.prompt)
        self.params = {"temperature": o.temperature, "max_tokens": o.max_tokens}
        self.prices = Prices(o.prices)
        root = Path(store.root) if store is not None else Path(".cache")
        self.cache_dir = root / ".cache" / "llm_judge"
        register_url(effective_url(o.base_url))

    def settings(self):
        return {"model": self.options.model, "prompt": canonical_json(self.prompt), **self.params}

    # -- requests ---------------------------------------------------------------
    def _requests(self, items):
        reqs = []
        for it in items:
            if not (it.get("text") or "").strip():
                reqs.append(None)
                continue
            msgs = build_messages(self.prompt, question_of(it), it["text"])
            reqs.append((request_key(self.options.model, msgs, self.params), msgs))
        return reqs

    def _cache(self) -> ResponseCache:
        return ResponseCache(self.cache_dir / "responses.sqlite")

    def check(self, items):
        """Before any call: the cache opens, a key exists where one is needed, --max-usd has a
        price, and the endpoint answers (when some request is not cached)."""
        reqs = [r for r in self._requests(items) if r]
        if not reqs:
            return
        cache = self._cache()
        try:
            hit = cache.get_many({k for k, _ in reqs})
        finally:
            cache.close()
        todo = len({k for k, _ in reqs} - set(hit))
        if not todo:
            return
        o = self.options
        if needs_key(o.base_url) and not os.environ.get("OPENAI_API_KEY"):
            raise ResetkitError(f"LLM judge: {todo} request(s) are not cached and OPENAI_API_KEY is not set "
                                f"(needed by {shown(o.base_url)}; a local server given with "
                                "--judge-base-url needs none)")
        self._check_price()
        check_endpoint(o.base_url, o.model, o.timeout, "the LLM judge")

    def _check_price(self):
        if self.options.max_usd is not None and self.prices.cost(self.options.model, 0, 0) is None:
            raise ResetkitError(f"--max-usd needs a price for {self.options.model!r}: "
                                "give --judge-prices FILE ({model: {input: X, output: Y}} "
                                "USD per 1M tokens)")

    def plan(self, items):
        reqs = self._requests(items)
        cache = self._cache()
        try:
            hit = cache.get_many({r[0] for r in reqs if r})
        finally:
            cache.close()
        todo = {r[0]: r[1] for r in reqs if r and r[0] not in hit}
        tin = sum(estimate_tokens(m) for m in todo.values())
        tout = EST_REPLY_TOKENS * len(todo)
        usd = self.prices.cost(self.options.model, tin, tout, batch=self.options.batch)
        worst = self.prices.cost(self.options.model, sum(prompt_bound(m) for m in todo.values()),
                                 self.options.max_tokens * len(todo), batch=self.options.batch)
        return {"items": len(items), "empty_answers": sum(r is None for r in reqs), "cached": len(hit),
                "calls": len(todo), "est_prompt_tokens": tin, "est_completion_tokens": tout,
                "est_usd": None if usd is None else round(usd, 4),
                "max_usd_if_every_reply_is_max_tokens": None if worst is None else round(worst, 4),
                "model": self.options.model, "batch_api": self.options.batch}

    # -- scoring ----------------------------------------------------------------
    def score(self, items, progress=False):
        reqs = self._requests(items)
        cache = self._cache()
        try:
            replies = cache.get_many({r[0] for r in reqs if r})
            hits = len(replies)
            todo = {}
            for r in reqs:
                if r and r[0] not in replies:
                    todo.setdefault(r[0], r[1])
            if todo:
                self._check_price()
            self.usage = {"cache_hits": hits, "calls": 0, "failed": 0, "malformed": 0, "timeouts": 0,
                          "prompt_tokens": 0, "completion_tokens": 0, "usd": 0.0, "stopped_at_budget": False}
            failures: dict[str, str] = {}
            self.fatal = None
            if todo:
                if self.options.batch:
                    run_batch(self, todo, cache, replies, failures, progress)
                else:
                    asyncio.run(_Calls(self, cache, replies, failures, len(todo), progress).run(todo))
        finally:
            cache.close()
        self.usage["usd"] = round(self.usage["usd"], 6)
        where = shown(self.options.base_url)
        if self.fatal:
            raise ResetkitError(f"LLM judge stopped: {self.fatal} ({self.usage['calls']} paid replies of "
                                f"this run are in the reply cache, USD {self.usage['usd']:.4f}; nothing else "
                                "was written; a rerun resumes from the cache)")
        if todo and self.usage["calls"] == 0 and self.usage["failed"] > 0:
            # every request of this run failed: the rows are written (retried next run) and the
            # command exits non-zero with this line (judging/cli.py)
            last = failures[next(reversed(failures))]
            self.usage["all_failed"] = (f"LLM judge: every request to {where} failed "
                                        f"({self.usage['failed']}); last error: {last}")
        out = []
        for r in reqs:
            if r is None:
                out.append({"rating": Score(None, error="empty answer")})
            elif r[0] in replies:
                text = redact_content(replies[r[0]]["text"])
                value, err = parse_rating(text)
                out.append({"rating": Score(value, text, err)})
            elif r[0] in failures:
                out.append({"rating": Score(None, error=f"{RETRYABLE}: {failures[r[0]]}")})
            else:
                out.append({})  # not attempted (budget reached / batch pending): next run
        return out

    def record(self, cache, replies, key, text, pt, ct, batch=False):
        """Keep one good reply: in the cache (committed) first, then counted."""
        usd = self.prices.cost(self.options.model, pt, ct, batch=batch)
        text = redact_content(text)
        cache.put(key, self.options.model, text, pt, ct, usd, via="batch" if batch else "api")
        replies[key] = {"text": text, "prompt_tokens": pt, "completion_tokens": ct, "usd": usd}
        self.usage["calls"] += 1
        self.charge(pt, ct, usd)

    def charge(self, pt, ct, usd):
        self.usage["prompt_tokens"] += pt
        self.usage["completion_tokens"] += ct
        self.usage["usd"] += usd or 0.0

    def client(self, async_: bool = True):
        o = self.options
        return make_client(o.base_url, async_=async_, max_retries=0 if async_ else o.max_retries,
                           timeout=o.timeout, purpose="the LLM judge")


class _Calls:
    """One run of direct requests: every request of ``todo`` once, the first alone (a refused key
    or a broken server costs one request), then up to ``concurrency`` at once.  Retries (429/5xx/
    connection errors, with backoff and Retry-After) are done here, so that a timeout lowers the
    concurrency instead of piling more requests onto a slow server.  Good replies go to the
    cache (committed) and ``replies``; requests that failed for good go to ``failures``."""

    def __init__(self, judge: LLMJudge, cache, replies: dict, failures: dict, total: int, progress: bool):
        self.judge, self.o, self.usage = judge, judge.options, judge.usage
        self.cache, self.replies, self.failures = cache, replies, failures
        self.client = judge.client()
        self.limiter = _Limiter(max(1, self.o.concurrency))
        self.budget = _Budget(self.o.max_usd) if self.o.max_usd is not None else None
        self.bar = progress_bar(total, "llm judge", progress)
        self.tasks: list[asyncio.Task] = []

    async def run(self, todo: dict) -> None:
        t0 = time.perf_counter()
        try:
            items = list(todo.items())
            self.tasks.append(asyncio.ensure_future(self.one(*items[0])))
            await asyncio.gather(self.tasks[0], return_exceptions=True)
            if not self.judge.fatal:
                self.tasks.extend(asyncio.ensure_future(self.one(k, m)) for k, m in items[1:])
                await asyncio.gather(*self.tasks[1:], return_exceptions=True)
            for t in self.tasks:
                if not t.cancelled() and t.exception() is not None:
                    raise t.exception()
        finally:
            self.usage["seconds_calls"] = round(time.perf_counter() - t0, 3)
            self.usage["lowest_concurrency"] = self.limiter.lowest
            self.bar.close()
            await self.client.close()

    def stop(self, message: str) -> None:
        """Stop the run: requests in flight are abandoned, nothing more is sent."""
        if self.judge.fatal is None:
            self.judge.fatal = message
        me = asyncio.current_task()
        for t in self.tasks:
            if t is not me:
                t.cancel()

    def fail(self, key, error) -> None:
        self.failures[key] = redact_text(error)
        self.usage["failed"] += 1
        self.bar.update()

    def settle(self, reserve: float, spent: float) -> None:
        if self.budget is not None:
            self.budget.settle(reserve, spent)

    async def one(self, key, msgs) -> None:
        """One request until it is settled: kept, failed for good, or left for the next run
        (budget reached, run stopped)."""
        bound = prompt_bound(msgs)
        reserve = self.judge.prices.cost(self.o.model, bound, self.o.max_tokens) if self.budget else 0.0
        retries = free = 0
        while True:
            if self.judge.fatal or self.usage["stopped_at_budget"]:
                return
            if self.budget is not None and not await self.budget.reserve(reserve):
                self.usage["stopped_at_budget"] = True
                return
            epoch = await self.limiter.acquire()
            outcome = await self.attempt(key, msgs, bound, reserve, epoch, retries,
                                         free < MAX_FREE_TIMEOUT_RETRIES)
            if outcome == "again":  # a timeout answered by a lower concurrency: not counted as a retry
                free += 1
                continue
            if outcome is None:
                return
            error, wait = outcome
            if wait is None or retries >= self.o.max_retries:
                return self.fail(key, error)
            retries += 1
            await asyncio.sleep(wait)

    async def attempt(self, key, msgs, bound, reserve, epoch, retries, free_retry: bool):
        """Send the request once.  None: settled (reply handled, or the run stopped); "again": a
        timeout retried for free at the lowered concurrency; else (error, seconds to wait before
        a retry, None when not retryable).  The limiter slot is released last, after the
        concurrency has been lowered."""
        import openai

        o = self.o
        try:
            resp = await self.client.chat.completions.create(model=o.model, messages=msgs, **self.judge.params)
        except openai.APITimeoutError:
            # the server may still answer (and bill) it: the bound counts against the cap
            if self.budget is not None:
                self.budget.settle(reserve, reserve)
                self.usage["usd_unconfirmed"] = self.usage.get("usd_unconfirmed", 0.0) + reserve
            self.usage["timeouts"] += 1
            if self.limiter.timed_out(epoch) and free_retry:
                return "again"
            return f"request timed out after {o.timeout:g} s", 0.0
        except openai.APIStatusError as exc:
            self.settle(reserve, 0.0)
            refused = auth_failure(exc, o.base_url)
            if refused:
                return self.stop(refused)
            retryable = exc.status_code in (408, 409, 429) or exc.status_code >= 500
            wait = retry_after(exc, _backoff(retries)) if retryable else None
            return f"{type(exc).__name__}: {str(exc)[:300]}", wait
        except openai.APIConnectionError as exc:
            self.settle(reserve, 0.0)
            return f"{type(exc).__name__}: {str(exc)[:300]}", _backoff(retries)
        except ValueError as exc:  # a body labelled JSON that is not JSON: a malformed 200
            return self.reply(key, f"<invalid JSON: {exc}>", bound, reserve)
        except openai.APIError as exc:  # any other client error: a failed request
            self.settle(reserve, reserve)
            return f"{type(exc).__name__}: {str(exc)[:300]}", None
        else:
            return self.reply(key, resp, bound, reserve)
        finally:
            self.limiter.release()

    def reply(self, key, resp, bound, reserve) -> None:
        """One 200 reply: charged at its reported usage (the bound when it reports none), kept
        when it holds a text, an error row (not cached, retried next run) when malformed."""
        o, judge = self.o, self.judge
        try:
            text, _, tokens = parse_reply(resp, chat=True)
            if not text.strip():
                raise MalformedReply("empty judge reply")
        except MalformedReply as exc:
            text, tokens, malformed = None, reply_tokens(resp), str(exc)
        pt, ct = tokens or (bound, o.max_tokens)
        usd = judge.prices.cost(o.model, pt, ct)
        self.settle(reserve, usd or 0.0)
        self.limiter.succeeded()
        if text is None:
            judge.charge(pt, ct, usd)
            self.usage["malformed"] += 1
            self.fail(key, malformed)
        else:
            try:
                judge.record(self.cache, self.replies, key, text, pt, ct)
            except CacheWriteError as exc:
                judge.charge(pt, ct, usd)
                return self.stop(f"{exc.message}; no further request was sent")
            self.bar.update()
        if self.budget is not None and (usd or 0.0) > reserve * (1 + 1e-9) + 1e-12:
            self.stop(f"{shown(o.base_url)} reported {pt} prompt + {ct} completion tokens for a request "
                      f"bounded by {bound} + {o.max_tokens} (USD {usd:.6f} > {reserve:.6f} reserved); "
                      f"stopped at once so that --max-usd {o.max_usd:g} holds")


def _backoff(retries: int) -> float:
    """Exponential backoff with jitter: ~0.5, 1, 2, 4, 8, 8... seconds."""
    import random

    return min(8.0, 0.5 * 2 ** retries) * (0.75 + 0.5 * random.random())

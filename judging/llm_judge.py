"""The instruction-following judge: an LLM rates each answer 1-10 (paper §2.2, Table 5).

Any OpenAI-compatible endpoint and model (``judge_model``, default ``gpt-4-0613``;
``judge_base_url``); the key is read from ``$OPENAI_API_KEY`` only and never written
anywhere.  Temperature 0, at most 512 tokens.  The rating is parsed as FastChat does
(``[[r]]``, else ``[r]``) and normalised r/10; a reply without a rating (or with one
outside 0-10) gives a null value with the raw text kept and the reason in ``error``.
An empty answer is null ("empty answer") and costs no call.

Cost control:
- every reply is kept in a content-addressed cache (sqlite, ``STORE/.cache/llm_judge/``;
  key = sha256 of model + full messages + decoding parameters), so a rerun makes zero
  calls and a crash loses nothing that was paid for; tokens and USD are recorded per call;
- requests run concurrently (``judge_concurrency``) through ``openai.AsyncOpenAI``, whose
  own retries (``judge_max_retries``, exponential backoff honouring Retry-After) cover
  429, 5xx and timeouts; a request that still fails is a null row with the error, which
  the next run retries;
- ``max_usd``: before each call its worst-case cost (prompt estimate + max_tokens) is
  reserved; no call starts that could cross the budget, so the run stops cleanly under
  it and keeps everything so far (unjudged candidates are picked up by the next run);
- ``plan`` (``--dry-run``) estimates calls, tokens (chars/4 for the prompt, a typical
  150-token reply) and USD; ``batch`` sends the uncached requests through the Batch API
  at half price, keeping the batch id under the cache folder so a rerun resumes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sqlite3
import sys
import time
from functools import lru_cache
from pathlib import Path

from resetkit.errors import ResetkitError
from resetkit.openai_client import (MalformedReply, auth_failure, check_endpoint, effective_url, make_client,
                                    needs_key, parse_reply, reply_tokens, retry_after, shown)
from resetkit.secrets import redact_content, redact_text, register_url
from resetkit.store import canonical_json

from .judge import RETRYABLE, Judge

PROMPTS_DIR = Path(__file__).parent / "prompts"
RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
EST_REPLY_TOKENS = 150


def parse_rating(text: str | None) -> tuple[float | None, str | None]:
    """(r/10, None) or (None, reason), with FastChat's two patterns."""
    if not text:
        return None, "empty judge reply"
    m = RATING.search(text) or RATING_BACKUP.search(text)
    if not m:
        return None, "no rating found in judge reply"
    r = float(m.group(1))
    if not 0 <= r <= 10:
        return None, f"rating {m.group(1)} outside 1-10"
    return r / 10.0, None


@lru_cache(maxsize=8)
def load_prompt(name: str) -> dict:
    """A prompt of judging/prompts/ (``paper``, ``single-v1``) or a YAML file path."""
    import yaml

    path = Path(name) if name.endswith((".yaml", ".yml")) else PROMPTS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml") if p.stem != "prices")
        raise ResetkitError(f"unknown judge prompt {name!r}. Known: {', '.join(known)} (or a .yaml path)")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "{answer}" not in data.get("user", ""):
        raise ResetkitError(f"{path}: a judge prompt needs a 'user' template with {{question}} "
                            f"and {{answer}}")
    return data


def build_messages(prompt: dict, question: str, answer: str) -> list[dict]:
    """Fill the template in one pass (a question containing "{answer}" stays as it is)."""
    values = {"question": question, "answer": answer}
    user = re.sub(r"\{(question|answer)\}", lambda m: values[m.group(1)], prompt["user"])
    msgs = [{"role": "system", "content": prompt["system"]}] if prompt.get("system") else []
    return msgs + [{"role": "user", "content": user}]


def question_of(example: dict) -> str:
    """The user turn shown to the judge: the instruction, plus its input/context if any."""
    q = example.get("instruction") or example.get("question") or example.get("prompt") or ""
    ctx = example.get("context")
    return f"{q}\n\n{ctx}" if ctx else q


def request_key(model: str, messages: list[dict], params: dict) -> str:
    data = canonical_json({"model": model, "messages": messages, **params})
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


class CacheWriteError(ResetkitError):
    """The reply cache cannot be written (disk full, read-only): the run stops, no further request."""


class ResponseCache:
    """sqlite: request key -> reply text, token counts, USD, when and how it was obtained.

    WAL journal, one commit per reply: a reply is in the database file before the request is
    counted as done, so a kill -9 loses no paid reply that was received (a power cut could
    drop the last few, ``synchronous=NORMAL``).  A write that fails (disk full) is a
    :class:`CacheWriteError`, and the transaction is rolled back (nothing half-written)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), timeout=60)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, "
                            "text TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, usd REAL, "
                            "via TEXT, created REAL)")
            self.db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise CacheWriteError(f"cannot open the LLM judge reply cache {path}: {exc}") from exc

    def get_many(self, keys) -> dict[str, dict]:
        out, keys = {}, list(keys)
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT key, text, prompt_tokens, completion_tokens, usd FROM responses WHERE key IN " \
                f"({','.join('?' * len(chunk))})"
            for k, text, pt, ct, usd in self.db.execute(q, chunk):
                out[k] = {"text": text, "prompt_tokens": pt, "completion_tokens": ct, "usd": usd}
        return out

    def put(self, key, model, text, prompt_tokens, completion_tokens, usd, via="api"):
        """Store one reply and commit it (durable before the caller counts the request done)."""
        try:
            with self.db:  # commit, or roll back on error
                self.db.execute("INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?,?)",
                                (key, model, text, prompt_tokens, completion_tokens, usd, via, time.time()))
        except sqlite3.Error as exc:
            raise CacheWriteError(f"cannot write the LLM judge reply cache {self.path}: {exc}") from exc

    def close(self):
        try:
            self.db.close()
        except sqlite3.Error:
            pass


class Prices:
    """USD per 1M tokens by model (prompts/prices.yaml, or a user YAML/JSON file)."""

    def __init__(self, path: str | None = None):
        import yaml

        self.table = yaml.safe_load((PROMPTS_DIR / "prices.yaml").read_text(encoding="utf-8"))
        if path:
            p = Path(path)
            if not p.is_file():
                raise ResetkitError(f"price table not found: {p}")
            self.table = {**self.table, **(yaml.safe_load(p.read_text(encoding="utf-8")) or {})}

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int,
             batch: bool = False) -> float | None:
        p = self.table.get(model)
        if p is None:
            return None
        usd = (prompt_tokens * float(p["input"]) + completion_tokens * float(p["output"])) / 1e6
        return usd / 2 if batch else usd


def estimate_tokens(messages: list[dict]) -> int:
    """Rough prompt size without a tokenizer: ~4 characters per token plus 4 per message."""
    return sum(len(m["content"]) // 4 + 4 for m in messages) + 3


MESSAGE_OVERHEAD = 8   # tokens a chat format adds per message (role, separators), bounded
REPLY_PRIMING = 8      # and once per request (the assistant turn's header)


def prompt_bound(messages: list[dict]) -> int:
    """A guaranteed upper bound of the prompt tokens: a byte-level BPE token (GPT-4, GPT-4o,
    Llama 3, Qwen...) covers at least one UTF-8 byte, so a message is at most its bytes, plus
    the chat format's tokens per message and for the reply's header."""
    return sum(len(m["content"].encode("utf-8")) + len(m["role"]) + MESSAGE_OVERHEAD
               for m in messages) + REPLY_PRIMING


MAX_FREE_TIMEOUT_RETRIES = 8  # timeouts of an overloaded server, retried at a lower concurrency


class _Limiter:
    """At most ``limit`` requests in flight: halved on a burst of timeouts (once per burst: only
    a timeout of a request started after the last cut cuts again), raised by one after
    ``limit`` replies in a row without a timeout, up to the configured concurrency."""

    def __init__(self, n: int):
        self.max = self.limit = self.lowest = n
        self.active = self.epoch = self.ok = 0
        self._waiters: list = []

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
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

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

    def __init__(self, cfg, store=None):
        super().__init__(cfg, store)
        self.prompt = load_prompt(cfg.judge_prompt)
        self.params = {"temperature": cfg.judge_temperature, "max_tokens": cfg.judge_max_tokens}
        self.prices = Prices(cfg.judge_prices)
        root = Path(store.root) if store is not None else Path(".cache")
        self.cache_dir = root / ".cache" / "llm_judge"
        register_url(effective_url(cfg.judge_base_url))

    def settings(self):
        return {"model": self.cfg.judge_model, "prompt": canonical_json(self.prompt), **self.params}

    # -- requests ---------------------------------------------------------------
    def _requests(self, items):
        reqs = []
        for it in items:
            if not (it.get("text") or "").strip():
                reqs.append(None)
                continue
            msgs = build_messages(self.prompt, question_of(it), it["text"])
            reqs.append((request_key(self.cfg.judge_model, msgs, self.params), msgs))
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
        cfg = self.cfg
        if needs_key(cfg.judge_base_url) and not os.environ.get("OPENAI_API_KEY"):
            raise ResetkitError(f"LLM judge: {todo} request(s) are not cached and OPENAI_API_KEY is not set "
                                f"(needed by {shown(cfg.judge_base_url)}; a local server given with "
                                "--judge-base-url needs none)")
        self._check_price()
        check_endpoint(cfg.judge_base_url, cfg.judge_model, cfg.judge_timeout, "the LLM judge")

    def _check_price(self):
        if self.cfg.max_usd is not None and self.prices.cost(self.cfg.judge_model, 0, 0) is None:
            raise ResetkitError(f"--max-usd needs a price for {self.cfg.judge_model!r}: "
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
        usd = self.prices.cost(self.cfg.judge_model, tin, tout, batch=self.cfg.batch)
        worst = self.prices.cost(self.cfg.judge_model, sum(prompt_bound(m) for m in todo.values()),
                                 self.cfg.judge_max_tokens * len(todo), batch=self.cfg.batch)
        return {"items": len(items), "empty_answers": sum(r is None for r in reqs), "cached": len(hit),
                "calls": len(todo), "est_prompt_tokens": tin, "est_completion_tokens": tout,
                "est_usd": None if usd is None else round(usd, 4),
                "max_usd_if_every_reply_is_max_tokens": None if worst is None else round(worst, 4),
                "model": self.cfg.judge_model, "batch_api": self.cfg.batch}

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
            self._fatal = None
            if todo:
                if self.cfg.batch:
                    run_batch(self, todo, cache, replies, failures, progress)
                else:
                    asyncio.run(self._run_async(todo, cache, replies, failures, progress))
        finally:
            cache.close()
        self.usage["usd"] = round(self.usage["usd"], 6)
        where = shown(self.cfg.judge_base_url)
        if self._fatal:
            raise ResetkitError(f"LLM judge stopped: {self._fatal} ({self.usage['calls']} paid replies of "
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
                out.append({"rating": (None, None, "empty answer")})
            elif r[0] in replies:
                text = redact_content(replies[r[0]]["text"])
                value, err = parse_rating(text)
                out.append({"rating": (value, text, err)})
            elif r[0] in failures:
                out.append({"rating": (None, None, f"{RETRYABLE}: {failures[r[0]]}")})
            else:
                out.append({})  # not attempted (budget reached / batch pending): next run
        return out

    def _record(self, cache, replies, key, text, pt, ct, batch=False):
        """Keep one good reply: in the cache (committed) first, then counted."""
        usd = self.prices.cost(self.cfg.judge_model, pt, ct, batch=batch)
        text = redact_content(text)
        cache.put(key, self.cfg.judge_model, text, pt, ct, usd, via="batch" if batch else "api")
        replies[key] = {"text": text, "prompt_tokens": pt, "completion_tokens": ct, "usd": usd}
        self.usage["calls"] += 1
        self._charge(pt, ct, usd)

    def _charge(self, pt, ct, usd):
        self.usage["prompt_tokens"] += pt
        self.usage["completion_tokens"] += ct
        self.usage["usd"] += usd or 0.0

    def client(self, async_: bool = True):
        return make_client(self.cfg.judge_base_url, async_=async_, max_retries=0 if async_ else
                           self.cfg.judge_max_retries, timeout=self.cfg.judge_timeout, purpose="the LLM judge")

    async def _run_async(self, todo: dict, cache, replies, failures, progress):
        """Every request of ``todo`` once: the first alone (a refused key or a broken server
        costs one request), then up to ``judge_concurrency`` at once.  Retries (429/5xx/
        connection errors, with backoff and Retry-After) are done here, so that a timeout
        lowers the concurrency instead of piling more requests onto a slow server."""
        import openai

        from .judge import _bar

        cfg = self.cfg
        client = self.client()
        limiter = _Limiter(max(1, cfg.judge_concurrency))
        budget = _Budget(cfg.max_usd) if cfg.max_usd is not None else None
        bar = _bar(len(todo), "llm judge", progress)
        tasks: list[asyncio.Task] = []

        def stop(message: str):
            if self._fatal is None:
                self._fatal = message
            me = asyncio.current_task()
            for t in tasks:
                if t is not me:
                    t.cancel()  # requests in flight are abandoned: nothing more is sent

        def fail(key, error):
            failures[key] = redact_text(error)
            self.usage["failed"] += 1
            bar.update()

        async def one(key, msgs):
            bound = prompt_bound(msgs)
            reserve = self.prices.cost(cfg.judge_model, bound, cfg.judge_max_tokens) if budget else 0.0
            retries = free = 0
            while True:
                if self._fatal or self.usage["stopped_at_budget"]:
                    return
                if budget is not None and not await budget.reserve(reserve):
                    self.usage["stopped_at_budget"] = True
                    return
                epoch = await limiter.acquire()
                error = wait = None
                try:
                    resp = await client.chat.completions.create(model=cfg.judge_model, messages=msgs,
                                                                **self.params)
                except openai.APITimeoutError:
                    # the server may still answer (and bill) it: the bound counts against the cap
                    if budget is not None:
                        budget.settle(reserve, reserve)
                    self.usage["timeouts"] += 1
                    if limiter.timed_out(epoch) and free < MAX_FREE_TIMEOUT_RETRIES:
                        free += 1
                        continue
                    error, wait = f"request timed out after {cfg.judge_timeout:g} s", 0.0
                except openai.APIStatusError as exc:
                    if budget is not None:
                        budget.settle(reserve, 0.0)
                    refused = auth_failure(exc, cfg.judge_base_url)
                    if refused:
                        return stop(refused)
                    error = f"{type(exc).__name__}: {str(exc)[:300]}"
                    if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
                        wait = retry_after(exc, _backoff(retries))
                except openai.APIConnectionError as exc:
                    if budget is not None:
                        budget.settle(reserve, 0.0)
                    error, wait = f"{type(exc).__name__}: {str(exc)[:300]}", _backoff(retries)
                else:
                    return self._reply(key, msgs, resp, bound, reserve, budget, cache, replies, fail,
                                       stop, limiter, bar)
                finally:
                    limiter.release()
                if wait is None or retries >= cfg.judge_max_retries:
                    return fail(key, error)
                retries += 1
                await asyncio.sleep(wait)

        t0 = time.perf_counter()
        try:
            items = list(todo.items())
            tasks.append(asyncio.ensure_future(one(*items[0])))
            await asyncio.gather(tasks[0], return_exceptions=True)
            if not self._fatal:
                tasks.extend(asyncio.ensure_future(one(k, m)) for k, m in items[1:])
                await asyncio.gather(*tasks[1:], return_exceptions=True)
            for t in tasks:
                if not t.cancelled() and t.exception() is not None:
                    raise t.exception()
        finally:
            self.usage["seconds_calls"] = round(time.perf_counter() - t0, 3)
            self.usage["lowest_concurrency"] = limiter.lowest
            bar.close()
            await client.close()

    def _reply(self, key, msgs, resp, bound, reserve, budget, cache, replies, fail, stop, limiter, bar):
        """One 200 reply: charged at its reported usage (the bound when it reports none), kept
        when it holds a text, an error row (not cached, retried next run) when malformed."""
        cfg = self.cfg
        try:
            text, _, tokens = parse_reply(resp, chat=True)
            if not text.strip():
                raise MalformedReply("empty judge reply")
        except MalformedReply as exc:
            text, tokens, malformed = None, reply_tokens(resp), str(exc)
        pt, ct = tokens or (bound, cfg.judge_max_tokens)
        usd = self.prices.cost(cfg.judge_model, pt, ct)
        if budget is not None:
            budget.settle(reserve, usd or 0.0)
        limiter.succeeded()
        if text is None:
            self._charge(pt, ct, usd)
            self.usage["malformed"] += 1
            fail(key, malformed)
        else:
            try:
                self._record(cache, replies, key, text, pt, ct)
            except CacheWriteError as exc:
                self._charge(pt, ct, usd)
                return stop(f"{exc.message}; no further request was sent")
            bar.update()
        if budget is not None and (usd or 0.0) > reserve * (1 + 1e-9) + 1e-12:
            stop(f"{shown(cfg.judge_base_url)} reported {pt} prompt + {ct} completion tokens for a request "
                 f"bounded by {bound} + {cfg.judge_max_tokens} (USD {usd:.6f} > {reserve:.6f} reserved); "
                 f"stopped at once so that --max-usd {cfg.max_usd:g} holds")


def _backoff(retries: int) -> float:
    """Exponential backoff with jitter: ~0.5, 1, 2, 4, 8, 8... seconds."""
    import random

    return min(8.0, 0.5 * 2 ** retries) * (0.75 + 0.5 * random.random())


# -- the Batch API path (half price, asynchronous on the provider's side) ------------------
def run_batch(judge: LLMJudge, todo: dict, cache: ResponseCache, replies: dict, failures: dict,
              progress: bool = False) -> None:
    """Send ``todo`` (key -> messages) as one Batch API job and collect it into the cache.

    The batch id is kept in ``<cache>/batches/<hash of the request keys>.json`` until the
    results are in the cache: a rerun while the batch is pending resumes it instead of
    paying twice.  With ``batch_wait`` off, a pending batch leaves its items unjudged.
    """
    from resetkit.store import short_hash

    cfg = judge.cfg
    keys = list(todo)
    if cfg.max_usd is not None:  # worst case per request, half price; keep the prefix that fits
        spent, kept = judge.usage["usd"], []
        for k in keys:
            c = judge.prices.cost(cfg.judge_model, prompt_bound(todo[k]), cfg.judge_max_tokens, batch=True)
            if spent + c > cfg.max_usd:
                judge.usage["stopped_at_budget"] = True
                break
            spent += c
            kept.append(k)
        keys = kept
        if not keys:
            return
    state_dir = judge.cache_dir / "batches"
    state_dir.mkdir(parents=True, exist_ok=True)
    state_path = state_dir / f"{short_hash(sorted(keys), 20)}.json"
    import openai

    client = judge.client(async_=False)
    log = (lambda msg: print(msg, file=sys.stderr)) if progress else (lambda msg: None)
    try:
        _collect_batch(judge, todo, keys, cache, replies, failures, client, state_path, log)
    except openai.APIStatusError as exc:
        refused = auth_failure(exc, cfg.judge_base_url)
        if refused:
            raise ResetkitError(f"LLM judge stopped: {refused}") from exc
        raise ResetkitError(f"LLM judge batch: {redact_text(str(exc))[:300]}") from exc
    except openai.APIConnectionError as exc:
        raise ResetkitError(f"LLM judge batch: cannot reach {shown(cfg.judge_base_url)} "
                            f"({redact_text(str(exc))})") from exc
    finally:
        client.close()


def _collect_batch(judge, todo, keys, cache, replies, failures, client, state_path, log):
    from resetkit.store import write_text_atomic

    cfg = judge.cfg
    if state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        log(f"llm judge: resuming batch {state['batch_id']} ({len(keys)} requests)")
    else:
        lines = [json.dumps({"custom_id": k, "method": "POST", "url": "/v1/chat/completions",
                             "body": {"model": cfg.judge_model, "messages": todo[k], **judge.params}},
                            ensure_ascii=False) for k in keys]
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        upload = client.files.create(file=("resetkit-judge.jsonl", payload), purpose="batch")
        batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        state = {"batch_id": batch.id, "input_file_id": upload.id, "requests": len(keys),
                 "model": cfg.judge_model, "created": time.time()}
        write_text_atomic(state_path, json.dumps(state, indent=2))
        log(f"llm judge: submitted batch {batch.id} ({len(keys)} requests)")
    while True:
        batch = client.batches.retrieve(state["batch_id"])
        if batch.status == "completed":
            break
        if batch.status in ("failed", "expired", "cancelled"):
            state_path.unlink(missing_ok=True)
            for k in keys:
                failures[k] = f"batch {batch.id} {batch.status}"
            judge.usage["failed"] += len(keys)
            return
        if not cfg.batch_wait:
            log(f"llm judge: batch {batch.id} is {batch.status}; run again later to collect it")
            judge.usage["batch_pending"] = batch.id
            return
        time.sleep(cfg.batch_poll_seconds)
    wanted = set(keys)
    for file_id in (batch.output_file_id, getattr(batch, "error_file_id", None)):
        if not file_id:
            continue
        for line in client.files.content(file_id).text.splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            key = rec.get("custom_id")
            if key not in wanted:
                continue
            resp = rec.get("response") or {}
            body = resp.get("body") if isinstance(resp.get("body"), dict) else {}
            if resp.get("status_code") == 200:
                text, usage = _batch_reply(body)
                pt = int(usage.get("prompt_tokens") or 0) if isinstance(usage, dict) else 0
                ct = int(usage.get("completion_tokens") or 0) if isinstance(usage, dict) else 0
                if text is None:  # malformed or empty: charged, not kept, retried next run
                    judge._charge(pt, ct, judge.prices.cost(cfg.judge_model, pt, ct, batch=True))
                    judge.usage["malformed"] += 1
                    failures[key] = "malformed reply in the batch output (no text)"
                    judge.usage["failed"] += 1
                else:
                    judge._record(cache, replies, key, text, pt, ct, batch=True)
            else:
                err = rec.get("error") or body.get("error") or {"status": resp.get("status_code")}
                failures[key] = redact_text(f"batch request: {str(err)[:300]}")
                judge.usage["failed"] += 1
    for k in wanted - set(replies) - set(failures):
        failures[k] = f"batch {batch.id}: no result returned"
    state_path.unlink(missing_ok=True)


def _batch_reply(body: dict):
    """(text or None when malformed/empty, usage) of one batch output body."""
    choices = body.get("choices")
    usage = body.get("usage") or {}
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None, usage
    message = choices[0].get("message")
    text = message.get("content") if isinstance(message, dict) else None
    return (text if isinstance(text, str) and text.strip() else None), usage

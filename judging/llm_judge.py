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
from resetkit.secrets import redact_text
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


class ResponseCache:
    """sqlite: request key -> reply text, token counts, USD, when and how it was obtained."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        # no fsync per reply (a crash of the process still loses nothing committed; only a
        # power cut could drop the last replies, which would then be asked for again)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, "
                        "text TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, usd REAL, "
                        "via TEXT, created REAL)")
        self.db.commit()

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
        """Store one reply; committed in groups (64 replies or 1 s) and on close."""
        self.db.execute("INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?,?)",
                        (key, model, text, prompt_tokens, completion_tokens, usd, via, time.time()))
        self._pending = getattr(self, "_pending", 0) + 1
        now = time.monotonic()
        if self._pending >= 64 or now - getattr(self, "_last_commit", 0.0) > 1.0:
            self.db.commit()
            self._pending, self._last_commit = 0, now

    def close(self):
        self.db.commit()
        self.db.close()


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
        """Before any call: a key must exist when some request is not cached."""
        reqs = [r for r in self._requests(items) if r]
        if not reqs or os.environ.get("OPENAI_API_KEY"):
            return
        cache = self._cache()
        try:
            hit = cache.get_many({k for k, _ in reqs})
        finally:
            cache.close()
        todo = len({k for k, _ in reqs} - set(hit))
        if todo:
            raise ResetkitError(f"LLM judge: {todo} request(s) are not cached and OPENAI_API_KEY is not set")

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
        worst = self.prices.cost(self.cfg.judge_model, tin, self.cfg.judge_max_tokens * len(todo),
                                 batch=self.cfg.batch)
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
            if todo and self.cfg.max_usd is not None and \
                    self.prices.cost(self.cfg.judge_model, 0, 0) is None:
                raise ResetkitError(f"--max-usd needs a price for {self.cfg.judge_model!r}: "
                                    "give --judge-prices FILE ({model: {input: X, output: Y}} "
                                    "USD per 1M tokens)")
            self.usage = {"cache_hits": hits, "calls": 0, "failed": 0, "prompt_tokens": 0,
                          "completion_tokens": 0, "usd": 0.0, "stopped_at_budget": False}
            failures: dict[str, str] = {}
            if todo:
                if self.cfg.batch:
                    run_batch(self, todo, cache, replies, failures, progress)
                else:
                    asyncio.run(self._run_async(todo, cache, replies, failures, progress))
        finally:
            cache.close()
        out = []
        for r in reqs:
            if r is None:
                out.append({"rating": (None, None, "empty answer")})
            elif r[0] in replies:
                text = replies[r[0]]["text"]
                value, err = parse_rating(text)
                out.append({"rating": (value, text, err)})
            elif r[0] in failures:
                out.append({"rating": (None, None, f"{RETRYABLE}: {failures[r[0]]}")})
            else:
                out.append({})  # not attempted (budget reached / batch pending): next run
        self.usage["usd"] = round(self.usage["usd"], 6)
        return out

    def _record(self, cache, replies, key, text, pt, ct, batch=False):
        usd = self.prices.cost(self.cfg.judge_model, pt, ct, batch=batch)
        cache.put(key, self.cfg.judge_model, text, pt, ct, usd, via="batch" if batch else "api")
        replies[key] = {"text": text, "prompt_tokens": pt, "completion_tokens": ct, "usd": usd}
        self.usage["calls"] += 1
        self.usage["prompt_tokens"] += pt
        self.usage["completion_tokens"] += ct
        self.usage["usd"] += usd or 0.0

    def client(self, async_: bool = True):
        from resetkit.errors import require

        openai = require("openai", "openai", "the LLM judge")
        cls = openai.AsyncOpenAI if async_ else openai.OpenAI
        return cls(api_key=os.environ.get("OPENAI_API_KEY"), base_url=self.cfg.judge_base_url,
                   max_retries=self.cfg.judge_max_retries, timeout=self.cfg.judge_timeout)

    async def _run_async(self, todo: dict, cache, replies, failures, progress):
        import openai

        from .judge import _bar

        cfg = self.cfg
        client = self.client()
        sem = asyncio.Semaphore(max(1, cfg.judge_concurrency))
        state = {"reserved": 0.0, "stop": False}
        bar = _bar(len(todo), "llm judge", progress)

        async def one(key, msgs):
            async with sem:
                if state["stop"]:
                    return
                reserve = 0.0
                if cfg.max_usd is not None:
                    reserve = self.prices.cost(cfg.judge_model, estimate_tokens(msgs) * 2,
                                               cfg.judge_max_tokens)
                    if self.usage["usd"] + state["reserved"] + reserve > cfg.max_usd:
                        state["stop"] = True
                        self.usage["stopped_at_budget"] = True
                        return
                    state["reserved"] += reserve
                try:
                    resp = await client.chat.completions.create(model=cfg.judge_model, messages=msgs,
                                                                **self.params)
                except openai.APIError as exc:
                    failures[key] = redact_text(f"{type(exc).__name__}: {str(exc)[:300]}")
                    self.usage["failed"] += 1
                    return
                finally:
                    state["reserved"] -= reserve
                    bar.update()
                text = (resp.choices[0].message.content or "") if resp.choices else ""
                u = resp.usage
                pt = getattr(u, "prompt_tokens", None) or estimate_tokens(msgs)
                ct = getattr(u, "completion_tokens", None) or 0
                self._record(cache, replies, key, text, pt, ct)

        t0 = time.perf_counter()
        try:
            await asyncio.gather(*(one(k, m) for k, m in todo.items()))
        finally:
            self.usage["seconds_calls"] = round(time.perf_counter() - t0, 3)
            bar.close()
            await client.close()


# -- the Batch API path (half price, asynchronous on the provider's side) ------------------
def run_batch(judge: LLMJudge, todo: dict, cache: ResponseCache, replies: dict, failures: dict,
              progress: bool = False) -> None:
    """Send ``todo`` (key -> messages) as one Batch API job and collect it into the cache.

    The batch id is kept in ``<cache>/batches/<hash of the request keys>.json`` until the
    results are in the cache: a rerun while the batch is pending resumes it instead of
    paying twice.  With ``batch_wait`` off, a pending batch leaves its items unjudged.
    """
    from resetkit.store import short_hash, write_text_atomic

    cfg = judge.cfg
    keys = list(todo)
    if cfg.max_usd is not None:  # worst case per request, half price; keep the prefix that fits
        spent, kept = judge.usage["usd"], []
        for k in keys:
            c = judge.prices.cost(cfg.judge_model, estimate_tokens(todo[k]) * 2, cfg.judge_max_tokens,
                                  batch=True)
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
    client = judge.client(async_=False)
    log = (lambda msg: print(msg, file=sys.stderr)) if progress else (lambda msg: None)
    try:
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
                body = resp.get("body") or {}
                if resp.get("status_code") == 200 and body.get("choices"):
                    text = body["choices"][0].get("message", {}).get("content") or ""
                    usage = body.get("usage") or {}
                    judge._record(cache, replies, key, text, int(usage.get("prompt_tokens") or 0),
                                  int(usage.get("completion_tokens") or 0), batch=True)
                else:
                    err = rec.get("error") or body.get("error") or {"status": resp.get("status_code")}
                    failures[key] = redact_text(f"batch request: {str(err)[:300]}")
                    judge.usage["failed"] += 1
        for k in wanted - set(replies) - set(failures):
            failures[k] = f"batch {batch.id}: no result returned"
        state_path.unlink(missing_ok=True)
    finally:
        client.close()

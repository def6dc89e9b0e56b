"""The LLM judge through the OpenAI Batch API (half price, asynchronous on the provider's side).

    run_batch(judge, todo, cache, replies, failures, progress=False)

``todo`` (request key -> messages) goes out as one batch; its results land in the reply cache
(``cache``) and in ``replies`` / ``failures`` (key -> reply, key -> error), exactly as the
direct path's do.  The batch id is kept in ``<cache dir>/batches/<hash of the request keys>.json``
until its results are in the cache: a rerun while the batch is pending resumes it instead of
paying twice.  With ``batch_wait`` off, a pending batch leaves its items unjudged.
"""

from __future__ import annotations

import json
import sys
import time

from resetkit.errors import ResetkitError
from resetkit.openai_client import auth_failure, shown
from resetkit.secrets import redact_text

from .llm_prompt import prompt_bound


def run_batch(judge, todo: dict, cache, replies: dict, failures: dict, progress: bool = False) -> None:
    """Send ``todo`` (key -> messages) as one Batch API job and collect it into the cache."""
    import openai

    from resetkit.store import short_hash

    keys = _within_budget(judge, todo)
    if not keys:
        return
    state_dir = judge.cache_dir / "batches"
    state_dir.mkdir(parents=True, exist_ok=True)
    state_path = state_dir / f"{short_hash(sorted(keys), 20)}.json"
    client = judge.client(async_=False)
    log = (lambda msg: print(msg, file=sys.stderr)) if progress else (lambda msg: None)
    base_url = judge.options.base_url
    try:
        state = _submit_or_resume(judge, todo, keys, client, state_path, log)
        batch = _wait(judge, client, state, keys, failures, state_path, log)
        if batch is not None:
            _collect(judge, client, batch, keys, cache, replies, failures)
            state_path.unlink(missing_ok=True)
    except openai.APIStatusError as exc:
        refused = auth_failure(exc, base_url)
        if refused:
            raise ResetkitError(f"LLM judge stopped: {refused}") from exc
        raise ResetkitError(f"LLM judge batch: {redact_text(str(exc))[:300]}") from exc
    except openai.APIConnectionError as exc:
        raise ResetkitError(f"LLM judge batch: cannot reach {shown(base_url)} "
                            f"({redact_text(str(exc))})") from exc
    finally:
        client.close()


def _within_budget(judge, todo: dict) -> list[str]:
    """The keys to send: all of them, or with ``max_usd`` the prefix whose worst case (every
    reply at max_tokens, half price) fits what is left of the budget."""
    o = judge.options
    keys = list(todo)
    if o.max_usd is None:
        return keys
    spent, kept = judge.usage["usd"], []
    for k in keys:
        c = judge.prices.cost(o.model, prompt_bound(todo[k]), o.max_tokens, batch=True)
        if spent + c > o.max_usd:
            judge.usage["stopped_at_budget"] = True
            break
        spent += c
        kept.append(k)
    return kept


def _submit_or_resume(judge, todo, keys, client, state_path, log) -> dict:
    """The batch's state: read back when a batch of these keys is pending, else submitted now
    (and written before anything else happens, so a kill cannot lose its id)."""
    from resetkit.store import write_text_atomic

    if state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        log(f"llm judge: resuming batch {state['batch_id']} ({len(keys)} requests)")
        return state
    model = judge.options.model
    lines = [json.dumps({"custom_id": k, "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": model, "messages": todo[k], **judge.params}},
                        ensure_ascii=False) for k in keys]
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    upload = client.files.create(file=("resetkit-judge.jsonl", payload), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    state = {"batch_id": batch.id, "input_file_id": upload.id, "requests": len(keys),
             "model": model, "created": time.time()}
    write_text_atomic(state_path, json.dumps(state, indent=2))
    log(f"llm judge: submitted batch {batch.id} ({len(keys)} requests)")
    return state


def _wait(judge, client, state, keys, failures, state_path, log):
    """The completed batch, or None: failed/expired/cancelled (its requests are failures and
    its state is dropped), or still pending with ``batch_wait`` off (kept for the next run)."""
    o = judge.options
    while True:
        batch = client.batches.retrieve(state["batch_id"])
        if batch.status == "completed":
            return batch
        if batch.status in ("failed", "expired", "cancelled"):
            state_path.unlink(missing_ok=True)
            for k in keys:
                failures[k] = f"batch {batch.id} {batch.status}"
            judge.usage["failed"] += len(keys)
            return None
        if not o.batch_wait:
            log(f"llm judge: batch {batch.id} is {batch.status}; run again later to collect it")
            judge.usage["batch_pending"] = batch.id
            return None
        time.sleep(o.batch_poll_seconds)


def _collect(judge, client, batch, keys, cache, replies, failures) -> None:
    """Every output line of ``keys`` into the cache (good replies) or ``failures``; a request
    the batch returned nothing for is a failure too (retried next run)."""
    wanted = set(keys)
    for file_id in (batch.output_file_id, getattr(batch, "error_file_id", None)):
        if not file_id:
            continue
        for line in client.files.content(file_id).text.splitlines():
            rec = _record_of(line)
            if rec is not None and rec.get("custom_id") in wanted:
                _take(judge, rec, cache, replies, failures)
    for k in wanted - set(replies) - set(failures):
        failures[k] = f"batch {batch.id}: no result returned"


def _record_of(line: str) -> dict | None:
    """One output line as a dict, or None (blank or malformed: its request gets "no result")."""
    if not line.strip():
        return None
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _take(judge, rec: dict, cache, replies, failures) -> None:
    """One batch result: a good reply is recorded (cache first); a malformed 200 is charged
    and kept out (retried next run); an error is a failure."""
    key = rec["custom_id"]
    resp = rec.get("response") or {}
    body = resp.get("body") if isinstance(resp.get("body"), dict) else {}
    if resp.get("status_code") != 200:
        err = rec.get("error") or body.get("error") or {"status": resp.get("status_code")}
        failures[key] = redact_text(f"batch request: {str(err)[:300]}")
        judge.usage["failed"] += 1
        return
    text, usage = _batch_reply(body)
    pt = int(usage.get("prompt_tokens") or 0) if isinstance(usage, dict) else 0
    ct = int(usage.get("completion_tokens") or 0) if isinstance(usage, dict) else 0
    if text is None:  # malformed or empty: charged, not kept, retried next run
        judge.charge(pt, ct, judge.prices.cost(judge.options.model, pt, ct, batch=True))
        judge.usage["malformed"] += 1
        failures[key] = "malformed reply in the batch output (no text)"
        judge.usage["failed"] += 1
    else:
        judge.record(cache, replies, key, text, pt, ct, batch=True)


def _batch_reply(body: dict):
    """(text or None when malformed/empty, usage) of one batch output body."""
    choices = body.get("choices")
    usage = body.get("usage") or {}
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None, usage
    message = choices[0].get("message")
    text = message.get("content") if isinstance(message, dict) else None
    return (text if isinstance(text, str) and text.strip() else None), usage

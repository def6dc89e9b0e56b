"""Hostile OpenAI-compatible servers against the LLM judge and the openai pool backend (issue 14
items 5, 6, 7, 11): malformed 200 replies, null fields, over-reported usage, echoed keys, 429
storms with Retry-After, hangs, 401/403.  Real sockets on 127.0.0.1 (tests/helpers/openai_server)
and the real ``openai`` client."""

from __future__ import annotations

import re
import sqlite3

import pytest

from builders.backends.base import GenRequest
from builders.backends.openai_backend import OpenAIBackend
from builders.pool import pool_config, run_pool
from judging.judge import JudgeConfig, run_judges
from resetkit.errors import ResetkitError
from tests.helpers.openai_server import Fault, OpenAIServer
from tests.helpers.pool_examples import make_examples
from tests.judging.pools import candidate, example, make_pool

pytestmark = pytest.mark.reliability

KEY = "sk-hostile-0123456789abcdef"
URL_KEY = "urlkey-0123456789"
MARK = re.compile(r"<<(\w+)>>")


def chat(content, usage=None):
    out = {"id": "c", "object": "chat.completion", "created": 0, "model": "m",
           "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]}
    if usage is not None:
        out["usage"] = usage
    return out


MALFORMED = {
    "nonjson": b"<html>502 Bad Gateway</html>",
    "badjson": Fault(body=b'{"choices": [{"message": ', content_type="application/json"),
    "jsonnull": Fault(body=b"null", content_type="application/json"),
    "msgnull": {**chat("x"), "choices": [{"index": 0, "finish_reason": "stop", "message": None}]},
    "nochoices": {**chat("x"), "choices": []},
    "contentnull": chat(None, {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}),
    "empty": chat("", {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}),
}


def as_fault(reply):
    return reply if isinstance(reply, Fault) else Fault(body=reply)


def rated(body, path):
    return {"text": "Fine. Rating: [[7]]", "prompt_tokens": 5}


def judge_pool(store, texts):
    exs = [example(f"e{i}", "open_ended", instruction=f"Write about topic {i}.") for i in range(len(texts))]
    return make_pool(store, exs, [candidate(f"e{i}", f"c{i}", t) for i, t in enumerate(texts)])


def mark_of(body):
    m = MARK.search(body.get("messages", [{}])[-1].get("content", "") if "messages" in body else body["prompt"])
    return m.group(1) if m else None


def cached_keys(store):
    db = sqlite3.connect(str(store.root / ".cache" / "llm_judge" / "responses.sqlite"))
    try:
        return {k for (k,) in db.execute("SELECT key FROM responses")}
    finally:
        db.close()


# -- malformed 200 replies ----------------------------------------------------------------------

def test_judge_malformed_replies_are_retryable_error_rows_never_cached(store):
    judge_pool(store, ["A fine answer."] + [f"<<{m}>>" for m in MALFORMED])
    with OpenAIServer(reply=rated) as srv:
        srv.fault = lambda body, path: (as_fault(MALFORMED[mark_of(body)]) if mark_of(body) else None)
        cfg = JudgeConfig(judge={"llm": {"base_url": srv.base_url, "max_retries": 0, "concurrency": 4}})
        v = run_judges(store, "pool", ["llm"], cfg, progress=False)
        rows = {r["candidate_id"]: r for r in v.read().to_pylist()}
        assert rows["c0"]["value"] == pytest.approx(0.7)
        for i, kind in enumerate(MALFORMED, start=1):
            assert rows[f"c{i}"]["value"] is None and rows[f"c{i}"]["raw"] is None, kind
            assert rows[f"c{i}"]["error"].startswith("request failed"), kind
            assert re.search("malformed|empty", rows[f"c{i}"]["error"]), rows[f"c{i}"]["error"]
        stats = v.manifest["judge_stats"]["llm"]
        assert stats["calls"] == 1 and stats["malformed"] == len(MALFORMED)
        assert len(cached_keys(store)) == 1          # only the good reply is kept
        # the next run sends exactly the malformed ones again (the server behaves now)
        srv.fault = None
        sent = len(srv.log)
        v2 = run_judges(store, "pool", ["llm"], cfg, progress=False)
        assert len(srv.log) - sent == len(MALFORMED)
        assert all(r["value"] == pytest.approx(0.7) for r in v2.read().to_pylist())


@pytest.mark.parametrize("chat_mode", [False, True])
def test_pool_backend_malformed_replies_are_error_rows(chat_mode):
    with OpenAIServer() as srv:
        b = OpenAIBackend("tiny", base_url=srv.base_url, concurrency=1, max_retries=0, chat=chat_mode)
        kinds = ["nonjson", "badjson", "jsonnull", "msgnull" if chat_mode else "contentnull", "nochoices"]
        for kind in kinds:
            fault = as_fault(MALFORMED[kind])
            if not chat_mode and kind == "contentnull":  # completions: "text": null
                fault = Fault(body={"id": "c", "object": "text_completion", "created": 0, "model": "m",
                                    "choices": [{"index": 0, "text": None, "finish_reason": "stop"}]})
            srv.fault_next(fault)
        reqs = [GenRequest(f"k{i}", f"prompt {i}", 0.5, 0, 1.0, i, 8) for i in range(len(kinds) + 1)]
        res = b.generate(reqs)
        b.close()
    for r in res[:-1]:
        assert r.finish_reason == "error" and r.text is None and "malformed reply" in r.error, r
    assert res[-1].finish_reason == "stop" and res[-1].text


# -- 401 / 403 --------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [401, 403])
def test_judge_refused_key_stops_after_one_request(store, status):
    judge_pool(store, [f"Answer {i}." for i in range(40)])
    with OpenAIServer(reply=rated) as srv:
        srv.fault = lambda body, path: Fault(status=status, message="invalid api key")
        cfg = JudgeConfig(judge={"llm": {"base_url": srv.base_url}})   # default concurrency 32
        with pytest.raises(ResetkitError, match=f"HTTP {status}") as err:
            run_judges(store, "pool", ["llm"], cfg, progress=False)
        assert len(srv.log) == 1
    assert "\n" not in err.value.message
    assert store.versions("scores") == []


@pytest.mark.parametrize("status", [401, 403])
def test_pool_refused_key_stops_after_one_request_and_writes_no_version(store, status):
    make_examples(store, 8)
    with OpenAIServer() as srv:
        srv.fault = lambda body, path: Fault(status=status, message="invalid api key")
        cfg = pool_config(model="tiny", backend="openai", base_url=srv.base_url, max_retries=2)
        with pytest.raises(ResetkitError, match=f"HTTP {status}"):
            run_pool(store, "reset-seed", cfg, progress=False)
        assert len(srv.log) == 1
        with pytest.raises(ResetkitError, match=f"HTTP {status}"):   # a rerun: the same single request
            run_pool(store, "reset-seed", cfg, progress=False)
        assert len(srv.log) == 2
    assert store.versions("pool") == []


# -- over-reported usage: --max-usd is a hard cap ----------------------------------------------

def test_over_reported_usage_stops_at_once_at_default_concurrency(store, tmp_path):
    """The 10th reply on reports a million prompt tokens: no request starts after the first such
    reply (old code: every request went out, $828 against a $1 cap)."""
    import itertools
    import threading

    judge_pool(store, [f"Answer number {i}." for i in range(300)])
    prices = tmp_path / "prices.yaml"
    prices.write_text("judge-x: {input: 1.0, output: 1.0}\n")  # USD per 1M tokens
    count = itertools.count(1)
    lock = threading.Lock()
    first_bad = {}

    def reply(body, path):
        with lock:
            n = next(count)
        if n >= 10:
            first_bad.setdefault("t", __import__("time").monotonic())
            return {"text": "Rating: [[5]]", "prompt_tokens": 1_000_000}
        return {"text": "Rating: [[5]]", "prompt_tokens": 10}

    with OpenAIServer(reply=reply, latency=0.05) as srv:
        cfg = JudgeConfig(judge={"llm": {"base_url": srv.base_url, "model": "judge-x", "prices": str(prices),
                                         "max_usd": 1.0}})
        with pytest.raises(ResetkitError, match="stopped at once so that --max-usd 1 holds"):
            run_judges(store, "pool", ["llm"], cfg, progress=False)
        sent = len(srv.log)
    assert sent <= 10 + 32           # at most the requests in flight when the first bad reply came
    assert store.versions("scores") == []
    # what was received before the stop is kept (a rerun does not pay for it again); replies still
    # on their way when it stopped are abandoned
    assert 1 <= len(cached_keys(store)) <= sent


def test_missing_usage_is_charged_at_the_bound(store, tmp_path):
    """A server that reports no usage: each reply is charged its guaranteed bound, so the cap
    still holds (old code charged the prompt estimate and 0 completion tokens)."""
    judge_pool(store, [f"Answer {i}." for i in range(50)])
    prices = tmp_path / "prices.yaml"
    prices.write_text("judge-x: {input: 1000.0, output: 1000.0}\n")
    with OpenAIServer() as srv:
        srv.fault = lambda body, path: Fault(body={k: v for k, v in chat("Rating: [[6]]").items()})
        cfg = JudgeConfig(judge={"llm": {"base_url": srv.base_url, "model": "judge-x", "prices": str(prices),
                                         "max_tokens": 64, "max_usd": 5.0}})
        v = run_judges(store, "pool", ["llm"], cfg, progress=False)
        st = v.manifest["judge_stats"]["llm"]
        assert st["stopped_at_budget"] and 0 < st["usd"] <= 5.0 and st["calls"] == len(srv.log) < 50
        assert st["completion_tokens"] == 64 * st["calls"]


# -- echoed keys and credentials in URLs -------------------------------------------------------

def test_echoed_keys_never_reach_the_store_or_the_output(store, monkeypatch):
    from click.testing import CliRunner

    from resetkit.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    judge_pool(store, ["A fine answer.", "<<fail>>"])
    echo = f"Your key {KEY} and {URL_KEY} work; see https://blob.example/c?sv=1&sig=SIGSECRET123. [[9]]"
    with OpenAIServer(reply=lambda body, path: echo) as srv:
        srv.fault = lambda body, path: (Fault(status=400, message=f"bad request for key {URL_KEY} {KEY}")
                                        if mark_of(body) else None)
        url = f"{srv.base_url}?api-key={URL_KEY}"
        res = CliRunner().invoke(main, ["judge", "pool", "--judges", "llm", "--judge-base-url", url,
                                        "--store", str(store.root), "--quiet"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert all(e["query"] == f"api-key={URL_KEY}" for e in srv.log)   # the query reaches the server
        rows = {r["candidate_id"]: r for r in store.resolve("scores").read().to_pylist()}
        assert rows["c0"]["value"] == 0.9 and "***" in rows["c0"]["raw"]
        assert "sig=***" in rows["c0"]["raw"] and rows["c1"]["error"].startswith("request failed")
        # the pool backend: echoed in a generated text, in an error row, and the URL in the manifest
        make_examples(store, 4)
        srv.reply = lambda body, path: echo
        srv.fault = lambda body, path: (Fault(status=400, message=f"no {KEY} {URL_KEY}")
                                        if body.get("temperature") == 0.3 else None)
        res2 = CliRunner().invoke(main, ["pool", "reset-seed", "--model", "tiny", "--backend", "openai",
                                         "--base-url", f"{srv.base_url}?api-key={URL_KEY}&sig=SIGSECRET123",
                                         "--max-retries", "0", "--store", str(store.root), "--no-progress"],
                                  catch_exceptions=False)
        assert res2.exit_code == 0, res2.output
        pool = store.resolve("pool").read().to_pylist()
        assert any(r["text"] and "***" in r["text"] for r in pool)
        assert any(r["error"] for r in pool)
    for out in (res.output, res2.output):
        assert KEY not in out and URL_KEY not in out and "SIGSECRET123" not in out
    for path in store.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in (KEY, URL_KEY, "SIGSECRET123"):
                assert secret.encode() not in data, (secret, path)


def test_credentials_in_an_unreachable_url_are_not_printed(store):
    from click.testing import CliRunner

    from resetkit.cli import main

    judge_pool(store, ["A fine answer."])
    with OpenAIServer() as srv:
        dead = srv.base_url
    for args in (["judge", "pool", "--judges", "llm", "--judge-base-url", f"{dead}?api-key={URL_KEY}"],
                 ["pool", "ex", "--model", "tiny", "--backend", "openai", "--base-url",
                  f"http://user:{URL_KEY}@{dead.split('//')[1]}?token=TOKSECRET9"]):
        res = CliRunner().invoke(main, [*args, "--store", str(store.root)])
        assert res.exit_code != 0 and "cannot reach" in res.output, res.output
        assert URL_KEY not in res.output and "TOKSECRET9" not in res.output, res.output


# -- 429 storms with Retry-After, hangs ------------------------------------------------------

def test_judge_honours_retry_after_through_a_429_storm(store):
    judge_pool(store, ["A fine answer."])
    with OpenAIServer(reply=rated) as srv:
        srv.fail_next(3, status=429, retry_after=0.4, message="slow down")
        cfg = JudgeConfig(judge={"llm": {"base_url": srv.base_url, "max_retries": 4, "concurrency": 1}})
        v = run_judges(store, "pool", ["llm"], cfg, progress=False)
        times = [e["time"] for e in srv.log]
    assert [e["status"] for e in srv.log] == [429, 429, 429, 200]
    assert all(b - a >= 0.38 for a, b in zip(times, times[1:]))
    assert v.read().to_pylist()[0]["value"] == pytest.approx(0.7)


def test_judge_hang_is_retried_after_the_timeout(store):
    judge_pool(store, ["A fine answer.", "Another answer."])
    with OpenAIServer(reply=rated) as srv:
        srv.hang_next(1, seconds=3.0)
        cfg = JudgeConfig(judge={"llm": {"base_url": srv.base_url, "timeout": 0.7, "max_retries": 1}})
        v = run_judges(store, "pool", ["llm"], cfg, progress=False)
    assert [r["value"] for r in v.read().to_pylist()] == [pytest.approx(0.7)] * 2
    assert v.manifest["judge_stats"]["llm"]["timeouts"] == 1

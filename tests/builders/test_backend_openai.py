"""openai backend against a real OpenAI-compatible HTTP server on 127.0.0.1 (tests/helpers):
parameters on the wire, retries on 429 (Retry-After) / 500 / timeouts, error rows, a server
that dies mid-run, an unreachable server, the concurrency limit, and no key on disk."""

from __future__ import annotations

import dataclasses
import time

import pytest

from builders.backends.base import GenRequest
from builders.backends.openai_backend import OpenAIBackend
from builders.pool import pool_config, run_pool
from resetkit.errors import ResetkitError
from tests.helpers.openai_server import OpenAIServer
from tests.helpers.pool_examples import make_examples


def _req(i, t=0.5, k=0, seed=None):
    return GenRequest(f"k{i}", f"prompt {i}", t, k, 1.0, i if seed is None else seed, 8)


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv


def _backend(srv, **kw):
    kw = {"max_retries": 2, "timeout": 5.0, "concurrency": 4, **kw}
    return OpenAIBackend("tiny", base_url=srv.base_url, **kw)


def test_completions_and_chat_send_the_sampling_parameters(server):
    b = _backend(server)
    res = b.generate([_req(0, 0.7, 20), _req(1, 0.0, 50)])
    assert [r.finish_reason for r in res] == ["stop", "stop"] and all(r.text for r in res)
    sampled, greedy = sorted(server.log, key=lambda e: e["body"]["prompt"])
    assert sampled["path"] == "/v1/completions"
    keys = ("model", "temperature", "top_k", "seed", "max_tokens", "top_p")
    assert {k: sampled["body"][k] for k in keys} == {
        "model": "tiny", "temperature": 0.7, "top_k": 20, "seed": 0, "max_tokens": 8, "top_p": 1.0}
    assert greedy["body"]["temperature"] == 0.0 and "top_k" not in greedy["body"]  # greedy: top-k moot
    assert "stop" not in sampled["body"]  # no stop strings asked for, none sent
    # stop strings go to the server (at most 4, OpenAI's limit): it stops there, no run-on tokens paid
    stops = ("\n### ", "### Instruction:", "### Response:", "### Input:", "USER:")
    b.generate([dataclasses.replace(_req(3), stop=stops)])
    assert server.log[-1]["body"]["stop"] == list(stops[:4])
    b.close()
    chat = _backend(server, chat=True)
    res = chat.generate([_req(2)])
    assert server.log[-1]["path"] == "/v1/chat/completions"
    assert server.log[-1]["body"]["messages"] == [{"role": "user", "content": "prompt 2"}]
    assert res[0].num_tokens == 4 and res[0].text
    chat.close()
    # --system-prompt: the system message goes first; the server applies the model's chat template
    chat = _backend(server, chat=True, system_prompt="You are terse.")
    chat.generate([_req(3)])
    assert server.log[-1]["body"]["messages"] == [{"role": "system", "content": "You are terse."},
                                                  {"role": "user", "content": "prompt 3"}]
    chat.close()


def test_pool_with_the_chat_template_sends_the_system_prompt(store, server):
    import pyarrow as pa

    from resetkit.schemas import EXAMPLES
    from tests.helpers.pool_examples import example_rows

    with store.create("chat-seed", builder="test-examples", config={"chat": 1}) as w:
        rows = [{**r, "template": "chat", "prompt": f"Say hello {i}."} for i, r in enumerate(example_rows(2))]
        w.write("train", pa.Table.from_pylist(rows, schema=EXAMPLES), schema=EXAMPLES)
    cfg = pool_config(model="tiny", backend="openai", base_url=server.base_url, chat=True, template="chat",
                     system_prompt="Answer in French.", grid="greedy", max_new_tokens=4)
    pool = run_pool(store, "chat-seed", cfg, progress=False)
    chats = [e["body"]["messages"] for e in server.log if e["path"] == "/v1/chat/completions"]
    assert chats and all(m[0] == {"role": "system", "content": "Answer in French."} for m in chats)
    assert pool.manifest["config"]["system_prompt"] == "Answer in French."
    other = run_pool(store, "chat-seed", dataclasses.replace(cfg, system_prompt="Answer in German."),
                     progress=False)
    assert other.version != pool.version  # the system prompt is part of what was asked


def test_retries_429_with_retry_after_500_and_timeout(server):
    b = _backend(server, concurrency=1, timeout=1.0, max_retries=3)
    server.fail_next(1, status=429, retry_after=0.6)
    server.fail_next(1, status=500)
    server.hang_next(1, seconds=2.5)  # longer than the 1 s timeout
    res = b.generate([_req(0)])
    b.close()
    assert res[0].finish_reason == "stop" and res[0].error is None
    statuses = [e["status"] for e in server.log]
    assert statuses[:2] == [429, 500] and statuses[-1] == 200 and len(statuses) == 4
    assert server.log[1]["time"] - server.log[0]["time"] >= 0.55  # waited for Retry-After


def test_failure_after_retries_is_an_error_row(server):
    b = _backend(server, max_retries=1, concurrency=1)
    server.fail_next(2, status=500, message="model overloaded")
    res = b.generate([_req(0), _req(1)])
    b.close()
    assert res[0].finish_reason == "error" and res[0].text is None and "model overloaded" in res[0].error
    assert "500" in res[0].error and res[1].finish_reason == "stop"


def test_concurrency_limit(server):
    server.latency = 0.05
    b = _backend(server, concurrency=3)
    b.generate([_req(i) for i in range(24)])
    b.close()
    assert server.max_in_flight == 3


def test_unreachable_server_fails_before_any_work(store):
    with OpenAIServer() as srv:
        url = srv.base_url
    make_examples(store, 3)
    cfg = pool_config(model="tiny", backend="openai", base_url=url, max_retries=0)
    t = time.monotonic()
    with pytest.raises(ResetkitError, match="cannot reach the OpenAI-compatible server"):
        run_pool(store, "reset-seed", cfg, progress=False)
    assert time.monotonic() - t < 10
    assert not (store.root / "pool").exists()


def test_pool_over_http_with_error_rows_and_no_key_on_disk(store, server, monkeypatch):
    from tests.helpers.openai_server import Fault

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-4242")
    make_examples(store, 6)
    # every attempt of every T=0.3 request fails: those candidates become error rows; the error
    # body echoes the key back (some proxies do): it must still never reach the store
    server.fault = lambda body, path: (Fault(status=503, message="busy; key sk-test-secret-4242 rejected")
                                       if body["temperature"] == 0.3 else None)
    cfg = pool_config(model="tiny", backend="openai", base_url=server.base_url, max_retries=1, concurrency=2)
    pool = run_pool(store, "reset-seed", cfg, progress=False)
    rows = pool.read("train").to_pylist()
    assert len(rows) == 42
    sampled_examples = {r["example_id"] for r in rows if r["arm"] == "temperature"}
    errors = [r for r in rows if r["finish_reason"] == "error"]
    assert sampled_examples and len(errors) == len(sampled_examples)
    assert all(r["temperature"] == 0.3 and r["text"] is None and "503" in r["error"] and "busy" in r["error"]
               for r in errors)
    assert pool.manifest["counts"]["errors"] == len(errors)
    assert pool.manifest["model"]["revision"] == "unknown"
    # identical greedy requests went out once per example: 7 requests per sampled example, 1 per greedy one
    ok = [e for e in server.log if e["status"] == 200]
    assert len(ok) == 6 * len(sampled_examples) + (6 - len(sampled_examples))
    assert all(e["body"]["seed"] == r["seed"] for e in ok for r in rows
               if r["prompt"] == e["body"]["prompt"] and r["temperature"] == e["body"]["temperature"]
               and not r["greedy"])
    for path in store.root.rglob("*"):
        if path.is_file():
            assert b"sk-test-secret-4242" not in path.read_bytes(), path


def test_server_dying_mid_run_then_resume_equals_uninterrupted(store, tmp_path):
    from resetkit.store import Store

    make_examples(store, 12)
    cfg = dict(model="tiny", backend="openai", max_retries=1, timeout=2.0, concurrency=2, shard_examples=2)
    with OpenAIServer() as srv:
        srv.die_after(30)
        resume_hint = "requests in a row failed.*run the same command again to resume"
        with pytest.raises(ResetkitError, match=resume_hint):
            run_pool(store, "reset-seed", pool_config(cfg, base_url=srv.base_url), progress=False)
    work = next((store.root / "pool" / ".work").iterdir())
    shards = list(work.glob("shard-*.parquet"))
    assert shards and not (store.root / "pool" / "LATEST").exists()
    with OpenAIServer() as srv:
        resumed = run_pool(store, "reset-seed", pool_config(cfg, base_url=srv.base_url),
                           progress=False)
        sent = len(srv.log)
    clean_store = Store(tmp_path / "clean")
    make_examples(clean_store, 12)
    with OpenAIServer() as srv:
        clean = run_pool(clean_store, "reset-seed", pool_config(cfg, base_url=srv.base_url),
                         progress=False)
        sent_clean = len(srv.log)
    assert resumed.version == clean.version
    assert resumed.read().equals(clean.read())
    assert sent < sent_clean  # the resumed run did not redo the saved shards


def test_no_top_k_refuses_top_k_sampling_but_allows_greedy(server):
    b = _backend(server, send_top_k=False)
    with pytest.raises(ResetkitError, match="top_k=20 but top_k is not sent"):
        b.generate([_req(0, 0.7, 20)])
    assert not server.log  # refused before any request
    res = b.generate([_req(1, 0.0, 20), _req(2, 0.7, 0)])
    b.close()
    assert all(r.finish_reason == "stop" for r in res) and all("top_k" not in e["body"] for e in server.log)

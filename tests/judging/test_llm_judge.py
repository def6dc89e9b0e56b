"""The LLM judge against a scripted OpenAI-compatible server on 127.0.0.1 (real sockets)."""

import pytest

from judging.judge import JudgeConfig, plan_judges, run_judges
from judging.llm_prompt import build_messages, load_prompt, parse_rating
from resetkit.errors import ResetkitError
from tests.judging.fake_openai import FakeOpenAI
from tests.judging.pools import candidate, example, make_pool

KEY = "sk-test-secret-0123456789"


@pytest.mark.parametrize("text, value", [
    ("Good. Rating: [[8]]", 0.8),
    ("[[10]]", 1.0),
    ("Rating: [[7.5]] and [[3]]", 0.75),   # the first [[r]] wins
    ("[7]", 0.7),                          # backup pattern
    ("[[x]] then [6]", 0.6),
    ("no rating", None),
    ("", None),
    ("Rating: [[11]]", None),              # outside the scale: null, not clipped
])
def test_parse_rating_like_fastchat(text, value):
    got, err = parse_rating(text)
    assert got == (pytest.approx(value) if value is not None else None)
    assert (err is None) == (value is not None)


def test_prompts_fill_in_one_pass():
    paper = load_prompt("paper")
    msgs = build_messages(paper, "What is {answer}?", "an {question} answer")
    assert len(msgs) == 1 and msgs[0]["content"].startswith("[System]\nPlease act as an impartial judge")
    assert "[Question]\nWhat is {answer}?\n\n[The Start of Assistant's Answer]\nan {question} answer\n" \
           "[The End of Assistant's Answer]" in msgs[0]["content"]
    assert "strictly 1-2 short sentences" in msgs[0]["content"]
    v1 = build_messages(load_prompt("single-v1"), "q", "a")
    assert v1[0] == {"role": "system", "content": "You are a helpful assistant."}
    with pytest.raises(ResetkitError, match="paper"):
        load_prompt("nope")


TEXTS = {"c0": "A fine answer.", "c1": "<<seven>>", "c2": "<<norating>>", "c3": "<<ratelimit>>",
         "c4": "<<servererror>>", "c5": "<<timeout>>", "c6": "<<slow>>", "c7": "", "c8": "<<always500>>",
         "c9": "A fine answer."}


@pytest.fixture
def llm_pool(store):
    exs = [example(f"e{i}", "open_ended", instruction=f"Write about topic {i}.") for i in range(9)]
    cands = [candidate(f"e{int(c[1])}" if c != "c9" else "e0", c, t) for c, t in TEXTS.items()]
    return make_pool(store, exs, cands)


def test_scripted_replies_retries_nulls_and_cache(store, llm_pool, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI(hang=2.0, storm=2) as srv:
        cfg = JudgeConfig(judge={"llm": {"base_url": srv.base_url, "timeout": 0.8, "max_retries": 2}})
        v = run_judges(store, "pool", ["llm"], cfg, progress=False)
        rows = {r["candidate_id"]: r for r in v.read().to_pylist()}
        assert rows["c0"]["value"] == 0.8 and rows["c0"]["raw"].endswith("[[8]]")
        assert rows["c9"]["value"] == 0.8           # duplicate text of e0: judged once, copied
        assert rows["c1"]["value"] == pytest.approx(0.7)
        assert rows["c2"]["value"] is None and rows["c2"]["raw"] == "I cannot rate this."
        assert rows["c2"]["error"] == "no rating found in judge reply"
        assert rows["c3"]["value"] == 0.8           # 429 storm (Retry-After: 0) retried through
        assert rows["c4"]["value"] == 0.8           # two 500s retried through
        assert rows["c5"]["value"] == 0.8           # first attempt timed out, retried
        assert rows["c6"]["value"] == 0.8           # slow but in time
        assert rows["c7"]["value"] is None and rows["c7"]["error"] == "empty answer"
        assert rows["c8"]["value"] is None and rows["c8"]["error"].startswith("request failed")
        assert srv.statuses[429] == 2 and srv.statuses[500] == 2 + 3
        stats = v.manifest["judge_stats"]["llm"]
        assert stats["calls"] == 7 and stats["failed"] == 1 and stats["usd"] > 0
        calls = srv.calls

        # rerun: every reply comes from the cache; only the failed request is tried again
        v2 = run_judges(store, "pool", ["llm"], cfg, progress=False)
        assert srv.calls - calls == 3               # c8: 1 try + 2 retries, nothing else
        assert v2.run_stats["llm"]["candidates_carried"] == 9
        assert v2.version == v.version  # same rows (the same failure again): the same version
        assert {r["candidate_id"]: r["value"] for r in v2.read().to_pylist()} == \
               {c: r["value"] for c, r in rows.items()}

    # the key is never written anywhere in the store (data, manifests, cards, cache)
    for path in store.root.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_cache_survives_a_new_scores_dataset(store, llm_pool, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI(storm=1, hang=0.1) as srv:
        cfg = JudgeConfig(judge={"llm": {"base_url": srv.base_url, "max_retries": 2}})
        run_judges(store, "pool", ["llm"], cfg, name="a", progress=False)
        calls = srv.calls
        v = run_judges(store, "pool", ["llm"], cfg, name="b", progress=False)  # nothing to carry from
        assert srv.calls - calls == 3               # only always500 again (1 + 2 retries)
        assert v.manifest["judge_stats"]["llm"]["cache_hits"] == 7


def test_budget_stop_keeps_everything_so_far(store, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    exs = [example(f"e{i}", "open_ended", instruction=f"Task {i}.") for i in range(30)]
    make_pool(store, exs, [candidate(f"e{i}", f"c{i:02d}", f"Answer {i}.") for i in range(30)])
    prices = tmp_path / "prices.yaml"
    prices.write_text("judge-x: {input: 1000.0, output: 1000.0}\n")  # USD per 1M tokens
    with FakeOpenAI() as srv:
        llm = {"base_url": srv.base_url, "model": "judge-x", "prices": str(prices), "max_tokens": 16,
               "concurrency": 4, "max_usd": 1.0}
        cfg = JudgeConfig(judge={"llm": llm})
        plan = plan_judges(store, "pool", ["llm"], cfg)["judges"]["llm"]
        assert plan["calls"] == 30 and plan["est_usd"] > 1.0
        v = run_judges(store, "pool", ["llm"], cfg, progress=False)
        st = v.manifest["judge_stats"]["llm"]
        assert st["stopped_at_budget"] and 0 < st["usd"] <= 1.0
        assert 0 < st["calls"] < 30 and srv.calls == st["calls"]
        assert v.num_rows()["train"] == st["calls"]   # unjudged candidates have no row yet
        # a higher budget finishes the rest, paying only for the new calls
        first = st["calls"]
        v2 = run_judges(store, "pool", ["llm"], JudgeConfig(judge={"llm": {**llm, "max_usd": 100.0}}),
                        progress=False)
        assert v2.num_rows()["train"] == 30 and srv.calls == 30
        assert v2.manifest["judge_stats"]["llm"]["candidates_carried"] == first


def test_max_usd_needs_a_price(store, llm_pool, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI() as srv:
        cfg = JudgeConfig(judge={"llm": {"base_url": srv.base_url, "model": "unknown-model", "max_usd": 1.0}})
        with pytest.raises(ResetkitError, match="price"):
            run_judges(store, "pool", ["llm"], cfg, progress=False)
        assert srv.calls == 0


def test_no_key_fails_before_any_call_for_openai_itself(store, llm_pool, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ResetkitError, match="OPENAI_API_KEY is not set"):  # api.openai.com: never reached
        run_judges(store, "pool", ["span", "llm"], JudgeConfig(), progress=False)
    assert store.versions("scores") == []


def test_a_local_server_needs_no_key(store, llm_pool, monkeypatch):
    """Issue 13 item 12: the pool backend never demanded OPENAI_API_KEY for a local server; the
    judge did (and failed before any call)."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAI(storm=0, hang=0.1) as srv:
        cfg = JudgeConfig(judge={"llm": {"base_url": srv.base_url, "max_retries": 0}})
        v = run_judges(store, "pool", ["llm"], cfg, progress=False)
        rows = {r["candidate_id"]: r for r in v.read().to_pylist()}
        assert rows["c0"]["value"] == 0.8 and srv.calls >= 8


def test_batch_api_resumable(store, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    texts = ["A fine answer.", "<<seven>>", "<<norating>>", "<<always500>>", ""]
    make_pool(store, [example(f"e{i}", "open_ended", instruction=f"Task {i}.") for i in range(5)],
              [candidate(f"e{i}", f"c{i}", t) for i, t in enumerate(texts)])
    with FakeOpenAI(batch_polls=3) as srv:
        base = {"base_url": srv.base_url, "batch": True, "batch_poll_seconds": 0.01}
        # submit and leave: the batch is pending, nothing judged yet, the batch id is kept
        v = run_judges(store, "pool", ["llm"], JudgeConfig(judge={"llm": {**base, "batch_wait": False}}),
                       progress=False)
        assert v.manifest["judge_stats"]["llm"]["batch_pending"].startswith("batch_")
        assert {r["candidate_id"] for r in v.read().to_pylist()} == {"c4"}   # only the empty answer
        assert len(srv.batches) == 1 and srv.calls == 0
        # resume: the same batch is collected (no second submission), at half price
        v2 = run_judges(store, "pool", ["llm"], JudgeConfig(judge={"llm": base}), progress=False)
        assert len(srv.batches) == 1 and srv.calls == 4
        rows = {r["candidate_id"]: r for r in v2.read().to_pylist()}
        assert rows["c0"]["value"] == 0.8 and rows["c1"]["value"] == pytest.approx(0.7)
        assert rows["c2"]["value"] is None and rows["c3"]["error"].startswith("request failed")
        st = v2.manifest["judge_stats"]["llm"]
        assert st["calls"] == 3 and st["failed"] == 1
        from judging.llm_prompt import Prices
        full = Prices().cost("gpt-4-0613", st["prompt_tokens"], st["completion_tokens"])
        assert st["usd"] == pytest.approx(full / 2, rel=1e-3)
        assert not list((store.root / ".cache" / "llm_judge" / "batches").glob("*.json"))
        # rerun: cached, zero calls, no new batch (the failed request goes into a new batch)
        run_judges(store, "pool", ["llm"], JudgeConfig(judge={"llm": base}), progress=False)
        assert len(srv.batches) == 2 and srv.calls == 5


def test_where_and_how_fast_the_judge_runs_is_not_part_of_the_scores_version(store, monkeypatch):
    """The endpoint URL, concurrency, retries and budget are run fields: a rerun against another
    server (another port) with other limits is the same scores version, its manifest records them."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    make_pool(store, [example(f"e{i}", "open_ended", instruction=f"Write about topic {i}.") for i in range(3)],
              [candidate(f"e{i}", f"c{i}", f"A fine answer {i}.") for i in range(3)])
    with FakeOpenAI() as srv:
        first = run_judges(store, "pool", ["llm"], JudgeConfig(judge={"llm": {"base_url": srv.base_url}}),
                           progress=False)
        assert first.manifest["run"]["llm"]["base_url"] == srv.base_url
        assert "base_url" not in first.manifest["config"]["judge"]["llm"]
    with FakeOpenAI() as other:  # another port
        again = run_judges(store, "pool", ["llm"], JudgeConfig(judge={"llm": {
            "base_url": other.base_url, "concurrency": 3, "max_retries": 1, "max_usd": 50.0}}), progress=False)
        assert again.version == first.version and other.calls == 0  # every row carried over
        changed = run_judges(store, "pool", ["llm"], JudgeConfig(judge={"llm": {
            "base_url": other.base_url, "temperature": 0.5}}), progress=False)
        assert changed.version != first.version  # a setting that changes the ratings is part of it

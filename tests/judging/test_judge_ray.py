"""``resetkit judge --engine ray``: the same scores (version id and table) as the local
engine, the LLM judge staying in the driver (one cache, one concurrency limit), and a
judge worker killed mid-chunk retried without losing or duplicating scores."""

from __future__ import annotations

from click.testing import CliRunner

import judging.judge_worker as judge_worker
from judging.judge import JudgeConfig, run_judges
from resetkit.store import Store
from tests.helpers.ray_session import crashing, ray_local  # noqa: F401 - fixture
from tests.judging.fake_openai import FakeOpenAI
from tests.judging.pools import candidate, example, make_pool

KEY = "sk-test-secret-0123456789"
JUDGES = ["span", "ngram", "em", "rouge", "summac", "llm"]
TASKS = ("extractive_qa", "abstractive_qa", "summarization", "open_ended")


def _examples_and_candidates(n_examples=16, per=4):
    exs, cands = [], []
    for i in range(n_examples):
        task = TASKS[i % 4]
        ctx = (f"Topic {i} is about the river. The river runs for {i * 10} miles through the valley. "
               f"Fishermen like the river number {i} very much. It floods every spring season.")
        q = f"How long is river {i}?" if task.endswith("qa") else None
        exs.append(example(f"e{i}", task, context=None if task == "open_ended" else ctx, question=q,
                           references=[f"{i * 10} miles", f"about {i * 10} miles long"],
                           instruction="Write a poem." if task == "open_ended" else None))
        for k in range(per):
            text = [f"{i * 10} miles", f"The river runs for {i * 10} miles through the valley.",
                    f"It is a long river of {k} parts. Fishermen like it a lot indeed.",
                    f"{i * 10} miles"][k]  # the last one duplicates the first: judged once
            cands.append(candidate(f"e{i}", f"c{i:02d}-{k}", text, i=k))
    return exs, cands


def _store(root):
    store = Store(root)
    make_pool(store, *_examples_and_candidates())
    return store


def _cfg(srv, tiny_nli):
    # groups of 2 items: the chunks (5 -> 6 items) are whole groups, as the engine makes them
    return JudgeConfig(judge={"summac": {"model": str(tiny_nli), "threads": 1, "group_items": 2},
                              "llm": {"base_url": srv.base_url, "concurrency": 4}})


def test_ray_scores_equal_local_and_llm_stays_in_driver(tmp_path, tiny_nli, ray_local, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setattr(judge_worker, "CHUNK_ITEMS", 5)  # several chunks per judge
    with FakeOpenAI() as srv:
        local = run_judges(_store(tmp_path / "a"), "pool", JUDGES, _cfg(srv, tiny_nli), progress=False)
        calls_local = srv.calls
        remote = run_judges(_store(tmp_path / "b"), "pool", JUDGES, _cfg(srv, tiny_nli), progress=False,
                            engine="ray", workers=2)
        calls_ray = srv.calls - calls_local
    assert remote.version == local.version
    assert remote.read().equals(local.read())
    stats = remote.manifest["judge_stats"]
    assert stats["summac"]["ray_workers"] == 2 and stats["summac"]["ray_chunks"] > 1
    assert "ray_workers" not in stats["llm"]          # the LLM judge ran in the driver
    assert "ray_workers" not in stats["rouge"]        # so did the text metrics
    # 4 open-ended examples x 3 distinct texts, one of which (k=2) is the same request for all 4:
    # the driver's one reply cache sends it once per store
    assert calls_local == calls_ray == stats["llm"]["calls"] == 9
    values = {(r["judge"], r["metric"]) for r in remote.read().to_pylist() if r["value"] is not None}
    assert ("summac", "summac_zs") in values and ("rouge", "rougeL_f1") in values


def test_killed_judge_worker_is_retried(tmp_path, tiny_nli, ray_local, monkeypatch):
    """`resetkit judge --engine ray --workers 1`, its only worker dying on its first chunk:
    the chunk is retried on the restarted actor; the scores equal the local engine's."""
    from resetkit.cli import main

    marker = tmp_path / "crashed"
    monkeypatch.setattr(judge_worker, "JudgeWorker", crashing(judge_worker.JudgeWorker, marker))
    monkeypatch.setattr(judge_worker, "CHUNK_ITEMS", 3)
    cfg = JudgeConfig(judge={"summac": {"model": str(tiny_nli), "threads": 1, "group_items": 2}})
    local = run_judges(_store(tmp_path / "a"), "pool", ["summac", "rouge"], cfg, progress=False)
    store = _store(tmp_path / "b")
    res = CliRunner().invoke(main, ["judge", "pool", "--judges", "summac,rouge", "--nli-model", str(tiny_nli),
                                    "--store", str(store.root), "--quiet", "--engine", "ray", "--workers", "1",
                                    "--set", "judge.summac.threads=1", "--set", "judge.summac.group_items=2"])
    assert res.exit_code == 0, res.output
    assert "summac: 32 scored" in res.output
    assert marker.exists()  # the worker did die mid-chunk
    remote = store.resolve("scores")
    assert remote.version == local.version and remote.read().equals(local.read())
    keys = [(r["candidate_id"], r["judge"], r["metric"]) for r in remote.read().to_pylist()]
    assert len(keys) == len(set(keys)) == 8 * 4 * 2   # 8 abstractive/summarization examples x 4 x 2 judges
    assert remote.manifest["judge_stats"]["summac"]["ray_workers"] == remote.manifest["judge_stats"]["summac"]["ray_nodes"] == 1


def test_ray_address_needs_engine_ray(tmp_path):
    from resetkit.cli import main

    store = _store(tmp_path / "s")
    res = CliRunner().invoke(main, ["judge", "pool", "--judges", "span", "--store", str(store.root),
                                    "--ray-address", "auto"])
    assert res.exit_code != 0 and "only for --engine ray" in res.output
    assert not store.exists("scores")

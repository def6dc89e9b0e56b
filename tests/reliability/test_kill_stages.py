"""kill -9 at random moments of each stage, then the same command again (issue 14, "a suite that
keeps them fixed").

Each stage runs as a real `resetkit` process on its own store and is SIGKILLed after a random
delay within the time a whole run takes, one or more times; then it runs to the end.  The result
must be the version an uninterrupted run gives, with byte-identical Parquet files, and nothing
the killed runs left may remain (no temp dirs, no work shards, nothing half-written).

The moments come from RESETKIT_RELIABILITY_SEED (default 14; the failing seed is in the
message).  `make test` kills each stage once; `make test-reliability` five times.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from resetkit.store import Store
from tests.helpers.openai_server import OpenAIServer
from tests.helpers.pool_examples import make_examples

pytestmark = pytest.mark.reliability

SEED = int(os.environ.get("RESETKIT_RELIABILITY_SEED", "14"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def _cli(*args):
    return [sys.executable, "-m", "resetkit.cli", *map(str, args)]


def _judge_pool(store, tasks=("extractive_qa", "abstractive_qa")):
    from tests.judging.pools import candidate, example, make_pool

    exs = [example(f"e{i}", tasks[i % len(tasks)], context=f"Paris is in France, {i}.",
                   question="Where is Paris?", references=["in France"]) for i in range(12)]
    cands = [candidate(f"e{i}", f"c{i}-{k}", t, i=k) for i in range(12)
             for k, t in enumerate(["in France", "Paris is in France", "Lyon"])]
    make_pool(store, exs, cands)


STAGES = {
    # stage: (prepare the store, the command, the dataset it writes)
    "build": (lambda store, url: None,
              lambda root, url: _cli("build", "if-train", *_sources(), "--store", root, "--no-progress"),
              "if-train"),
    "pool": (lambda store, url: make_examples(store, 8),
             lambda root, url: _cli("pool", "reset-seed", "--backend", "openai", "--model", "tiny", "--base-url", url,
                                    "--store", root, "--max-new-tokens", "16", "--concurrency", "2",
                                    "--shard-examples", "1", "--no-progress"),
             "pool"),
    "judge": (lambda store, url: _judge_pool(store),
              lambda root, url: _cli("judge", "pool", "--judges", "span,ngram,em,rouge", "--store", root, "--quiet"),
              "scores"),
    "select": (lambda store, url: (_judge_pool(store, ("extractive_qa",)), _run(_cli("judge", "pool", "--judges", "span,ngram,em,rouge",
                                                                  "--store", store.root, "--quiet"))),
               lambda root, url: _cli("select", "pool", "--store", root),
               "selection"),
}


def _sources():
    from builders.corpora import sample_sources

    return [a for k, v in sample_sources("if-train").items() for a in ("--source", f"{k}={v}")]


def _run(cmd):
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def _data(version):
    return {p.name: p.read_bytes() for p in version.files()}


def _leftovers(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.name.startswith((".tmp-", ".trash-")) or p.name.endswith(".tmp")
                  or (p.parent.name == ".work" and any(p.iterdir())))


def _kill_and_finish(stage, tmp_path, kills):
    prepare, command, name = STAGES[stage]
    rng = random.Random(f"{SEED}-{stage}")
    with OpenAIServer(latency=0.02) as srv:
        reference = Store(tmp_path / "reference")
        prepare(reference, srv.base_url)
        started = time.monotonic()
        _run(command(reference.root, srv.base_url))
        duration = time.monotonic() - started
        store = Store(tmp_path / "killed")
        prepare(store, srv.base_url)
        moments = []
        for _ in range(kills):
            proc = subprocess.Popen(command(store.root, srv.base_url), env=ENV, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            moment = rng.uniform(0.0, duration)
            try:
                proc.wait(timeout=moment)
                assert proc.returncode == 0, proc.stderr.read()  # finished before the kill: fine
                moments.append(f"{moment:.2f}s (finished first)")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                moments.append(f"{moment:.2f}s")
            proc.stderr.close()
        _run(command(store.root, srv.base_url))
    why = f"{stage} killed at {', '.join(moments)} of a {duration:.2f}s run (RESETKIT_RELIABILITY_SEED={SEED})"
    want, got = reference.resolve(name), store.resolve(name)
    assert got.version == want.version, why
    assert [v.version for v in store.versions(name)] == [want.version], why
    assert _data(got) == _data(want), why
    assert _leftovers(store.root) == [], why


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_one_kill_then_rerun_is_byte_identical(stage, tmp_path):
    _kill_and_finish(stage, tmp_path, kills=1)


@pytest.mark.slow_reliability
@pytest.mark.parametrize("stage", sorted(STAGES))
def test_five_kills_then_rerun_is_byte_identical(stage, tmp_path):
    _kill_and_finish(stage, tmp_path, kills=5)

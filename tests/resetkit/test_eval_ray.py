"""``resetkit eval --engine ray``: generation and the model judges on Ray give the same
pool, scores and eval versions (and rows) as the local engine."""

from __future__ import annotations

from click.testing import CliRunner

from resetkit.cli import main
from resetkit.store import Store
from tests.helpers.ray_session import ray_local  # noqa: F401 - fixture
from tests.helpers.eval_corpora import write_corpora


def _eval(root, tiny_llama, tiny_nli, *extra):
    store = Store(root)
    write_corpora(store, n=2)
    res = CliRunner().invoke(main, ["eval", "--model", str(tiny_llama), "--store", str(store.root),
                                    "--per-set", "1", "--per-if-set", "1", "--judges", "span,em,rouge,summac",
                                    "--set", "max_new_tokens=8", "--judge-set", f"summac.model={tiny_nli}",
                                    "--threads", "1", *extra])  # 1 thread here, as each 1-CPU actor has
    assert res.exit_code == 0, res.output
    return store


def test_eval_engine_ray_equals_local(tmp_path, tiny_llama, tiny_nli, ray_local):
    local = _eval(tmp_path / "a", tiny_llama, tiny_nli)
    remote = _eval(tmp_path / "b", tiny_llama, tiny_nli, "--engine", "ray")
    for name in ("eval-pool", "eval-scores", "eval"):
        a, b = local.resolve(name), remote.resolve(name)
        assert a.version == b.version, name
        assert a.read().equals(b.read()), name
    assert remote.resolve("eval-pool").manifest["run"]["engine"] == "ray"
    assert "ray_workers" in remote.resolve("eval-scores").manifest["judge_stats"]["summac"]

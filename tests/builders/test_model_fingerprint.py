"""A local model's revision follows its weights, not the bookkeeping of a training run beside them."""

from builders.backends.base import local_model_fingerprint


def test_revision_ignores_checkpoints_and_cards_but_not_weights(tmp_path):
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "model.safetensors").write_bytes(b"weights-1")
    rev = local_model_fingerprint(tmp_path)["revision"]
    (tmp_path / "checkpoint-100").mkdir()
    (tmp_path / "checkpoint-100" / "model.safetensors").write_bytes(b"other")
    (tmp_path / "README.md").write_text("card")
    (tmp_path / "trainer_state.json").write_text("{}")
    # resetkit's own run record (wall time, data versions) differs between two identical trainings
    (tmp_path / "training_results.json").write_text('{"train_runtime_s": 33.1}')
    assert local_model_fingerprint(tmp_path)["revision"] == rev
    (tmp_path / "model.safetensors").write_bytes(b"weights-2")
    assert local_model_fingerprint(tmp_path)["revision"] != rev


def test_relative_and_absolute_model_paths_give_one_pool_version(tmp_path, tiny_llama, monkeypatch):
    """Issue 14 item 13: `--model ./m` and `--model /abs/m` (and a copy of m elsewhere) are the same
    model, so the same pool version with the same candidate ids."""
    import os
    import shutil

    from builders.pool import PoolConfig, run_pool
    from resetkit.store import Store
    from tests.helpers.pool_examples import make_examples

    copy = tmp_path / "models" / "m"
    shutil.copytree(tiny_llama, copy, copy_function=os.link)
    monkeypatch.chdir(tmp_path)
    versions, ids = set(), set()
    for i, spelling in enumerate(["./models/m", str(copy), "models/../models/m", str(tiny_llama)]):
        store = Store(tmp_path / f"store-{i}")
        make_examples(store, 2)
        pool = run_pool(store, "reset-seed", PoolConfig(model=spelling, max_new_tokens=4), progress=False)
        versions.add(pool.version)
        ids.add(tuple(pool.read("train")["candidate_id"].to_pylist()))
    assert len(versions) == 1 and len(ids) == 1

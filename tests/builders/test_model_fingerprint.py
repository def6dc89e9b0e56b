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
    assert local_model_fingerprint(tmp_path)["revision"] == rev
    (tmp_path / "model.safetensors").write_bytes(b"weights-2")
    assert local_model_fingerprint(tmp_path)["revision"] != rev

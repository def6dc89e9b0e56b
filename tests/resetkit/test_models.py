"""--model as people have it: a folder, a Hub id or a .gguf file (resetkit.models), and --threads."""

from __future__ import annotations

import os
import shutil

import pytest

from resetkit.errors import ResetkitError
from resetkit.models import (ModelRef, file_sha256, is_gguf, local_model_fingerprint, model_fingerprint,
                             model_key, resolve_model)


def _folder(path, weights=b"weights-1"):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "model.safetensors").write_bytes(weights)
    return path


def test_relative_and_absolute_paths_are_one_model(tmp_path, monkeypatch):
    # issue 14 item 13: the identity follows the files, never the spelling or place of the path
    a = _folder(tmp_path / "models" / "m")
    monkeypatch.chdir(tmp_path)
    rel, absolute = resolve_model("./models/m"), resolve_model(str(a))
    assert rel.path == absolute.path == str(a.resolve())
    copy = tmp_path / "elsewhere" / "m2"
    shutil.copytree(a, copy)
    keys = {model_key(r, model_fingerprint(r)) for r in (rel, absolute, resolve_model(str(copy)))}
    assert len(keys) == 1 and next(iter(keys)).startswith("local-")
    (copy / "model.safetensors").write_bytes(b"weights-2")
    assert model_key(resolve_model(str(copy)), model_fingerprint(resolve_model(str(copy)))) not in keys


def test_hub_ids_pass_through_and_missing_paths_are_clear(tmp_path):
    ref = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct", revision="abc")
    assert ref == ModelRef("HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct",
                           revision="abc")
    assert model_fingerprint(ref, commit="c0ffee") == {"revision": "c0ffee"}
    with pytest.raises(ResetkitError, match="model path not found: ./nope"):
        resolve_model("./nope")
    with pytest.raises(ResetkitError, match="model path not found"):
        resolve_model(str(tmp_path / "missing.gguf"))


def test_gguf_where_a_folder_is_expected_gets_a_hint(tmp_path):
    # issue 13 item 7: a .gguf never gets a bare "no config.json in it"
    d = tmp_path / "dl"
    d.mkdir()
    (d / "tiny.Q4_0.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ResetkitError) as err:
        resolve_model(str(d))
    assert "tiny.Q4_0.gguf" in err.value.message and "pass the file itself" in err.value.message
    other = tmp_path / "weights.bin"
    other.write_bytes(b"not a model")
    with pytest.raises(ResetkitError, match="is a file, not a model folder"):
        resolve_model(str(other))
    fake = tmp_path / "fake.gguf"  # a failed download: the name says GGUF, the bytes do not
    fake.write_bytes(b"<html>404</html>")
    with pytest.raises(ResetkitError, match="is not a valid GGUF file"):
        resolve_model(str(fake))
    # a broken .gguf (right magic, garbage inside) is one clear error, and no cache folder is left
    cache = tmp_path / "cache"
    with pytest.raises(ResetkitError, match="cannot convert GGUF file"):
        resolve_model(str(d / "tiny.Q4_0.gguf"), cache_dir=cache, progress=False)
    assert not [p for p in cache.iterdir() if p.is_dir() and p.name.startswith(("gguf-", ".tmp-"))]


def test_file_sha256_is_remembered_per_stat(tmp_path):
    f = tmp_path / "x.gguf"
    f.write_bytes(b"GGUF" + b"a" * 100)
    assert is_gguf(f)
    import hashlib

    want = hashlib.sha256(f.read_bytes()).hexdigest()
    assert file_sha256(f, tmp_path / "c") == want
    assert len(list((tmp_path / "c" / "sha256").iterdir())) == 1
    f.write_bytes(b"GGUF" + b"b" * 101)  # new content, new size: hashed again
    assert file_sha256(f, tmp_path / "c") == hashlib.sha256(f.read_bytes()).hexdigest()


def test_real_gguf_converts_to_a_folder_with_the_same_weights(real_model, real_model_gguf):
    # issue 13 item 7: transformers refuses save_pretrained on a GGUF-loaded model; the converted
    # folder holds the dequantised weights exactly (checked against the gguf package's own reader)
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors import safe_open

    ref = resolve_model(str(real_model_gguf))
    assert ref.local == real_model and ref.gguf == real_model_gguf.resolve()
    fp = model_fingerprint(ref)
    assert fp["gguf"]["sha256"] == file_sha256(real_model_gguf)
    assert fp["revision"] == local_model_fingerprint(real_model)["revision"]
    reader = GGUFReader(str(real_model_gguf))
    t = next(t for t in reader.tensors if t.name == "blk.0.ffn_down.weight")
    want = dequantize(t.data, t.tensor_type).reshape([int(x) for x in reversed(t.shape)])
    with safe_open(str(real_model / "model.safetensors"), "np") as f:
        got = f.get_tensor("model.layers.0.mlp.down_proj.weight")
    assert got.dtype == np.float32 and np.array_equal(got, want.astype(np.float32))
    from transformers import AutoConfig, AutoTokenizer

    assert AutoConfig.from_pretrained(real_model).model_type == "llama"
    tok = AutoTokenizer.from_pretrained(real_model)
    assert tok.chat_template and tok.eos_token == "<|im_end|>"


@pytest.mark.slow
def test_real_gguf_conversion_from_scratch_loads_and_generates(tmp_path, real_model_gguf, real_model):
    """The whole conversion in an empty cache (about a minute), compared with the shared one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref = resolve_model(str(real_model_gguf), cache_dir=tmp_path, progress=False)
    assert ref.local.parent == tmp_path and ref.local.name == real_model.name
    assert model_fingerprint(ref)["revision"] == local_model_fingerprint(real_model)["revision"]
    tok = AutoTokenizer.from_pretrained(ref.path)
    model = AutoModelForCausalLM.from_pretrained(ref.path)
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1]:])


# -- threads --------------------------------------------------------------------------------

def test_threads_explicit_env_and_default(monkeypatch):
    from resetkit.threads import apply_threads, default_threads, resolve_threads

    monkeypatch.delenv("RESETKIT_THREADS", raising=False)
    assert resolve_threads(3) == 3
    monkeypatch.setenv("RESETKIT_THREADS", "2")
    assert resolve_threads(None) == 2 and resolve_threads(1) == 1
    monkeypatch.setenv("RESETKIT_THREADS", "two")
    with pytest.raises(ResetkitError, match="RESETKIT_THREADS"):
        resolve_threads(None)
    with pytest.raises(ResetkitError, match="at least 1"):
        resolve_threads(0)
    # idle 8-CPU machine: all of them; shared by 2 processes: half; busy: what the load leaves
    assert default_threads(load=0.0, cpus=8) == 8
    assert default_threads(2, load=0.0, cpus=8) == 4
    assert default_threads(load=6.5, cpus=8) == 1
    assert default_threads(load=3.0, cpus=8) == 5
    assert default_threads(load=9.0, cpus=2) == 1
    import torch

    before = torch.get_num_threads()
    monkeypatch.delenv("RESETKIT_THREADS")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY", "RESETKIT_THREADS"):
        monkeypatch.delenv(var, raising=False)
    try:
        assert apply_threads(1) == 1
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    finally:
        torch.set_num_threads(before)

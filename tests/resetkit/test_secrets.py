"""Secrets never reach what resetkit writes."""

from __future__ import annotations

import pyarrow as pa

from resetkit.secrets import redact_config, redact_text, redact_url


def test_env_values_and_key_shapes_are_masked(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "my-very-secret-value")
    text = "401: invalid key my-very-secret-value; Authorization: Bearer abc.def; sk-abcdefghijklmnopqrstuv"
    out = redact_text(text)
    assert "my-very-secret-value" not in out and "abc.def" not in out and "sk-abcdef" not in out
    assert out.startswith("401: invalid key ***")


def test_urls_and_config_keys():
    assert redact_url("https://user:pw@host:8000/v1?api-key=zzz&x=1") == "https://host:8000/v1?api-key=***&x=1"
    cfg = {"engine_args": {"hf_token": "hf_secret_value", "max_model_len": 64},
           "max_tokens": 512, "judge_base_url": "http://u:p@127.0.0.1/v1", "api_key": None}
    red = redact_config(cfg)
    assert red["engine_args"] == {"hf_token": "***", "max_model_len": 64}
    assert red["max_tokens"] == 512 and red["api_key"] is None
    assert red["judge_base_url"] == "http://127.0.0.1/v1"


def test_store_manifest_and_card_are_redacted(store, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnopqrstuvwxyz")
    with store.create("toy", builder="toy", config={"base_url": "http://me:pw@h/v1",
                                                    "engine_args": {"hf_token": "hf_abcdefghijklmnopqrstuvwxyz"}}) as w:
        w.write("train", pa.table({"x": [1]}))
        w.extra["run"] = {"note": "token hf_abcdefghijklmnopqrstuvwxyz"}
    for path in w.result.path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"hf_abcdefghijklmnopqrstuvwxyz" not in data and b"me:pw" not in data, path

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


def test_credentials_in_urls_inside_texts_and_bare_query_fragments():
    text = ("Error for url 'https://u:pw123456@h.example/v1/chat?api-key=AAA111&x=1&sig=S%2Fig&token=T0K' "
            "and /v1/models?access_token=ZZZ999&page=2")
    out = redact_text(text)
    for secret in ("AAA111", "S%2Fig", "T0K", "ZZZ999", "pw123456"):
        assert secret not in out, out
    assert "x=1" in out and "page=2" in out and "h.example/v1/chat?api-key=***" in out


def test_reply_texts_keep_code_but_lose_known_secrets_and_url_credentials(monkeypatch):
    from resetkit import secrets
    from resetkit.secrets import redact_content, register_url

    monkeypatch.setattr(secrets, "_REGISTERED", set())  # registered values last for the process
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-value-42")
    register_url("http://proxy.local/v1?api-key=url-key-value-7")
    text = ("def f(key=value, token=None): return sorted(d, key=len)  # env-key-value-42 "
            "url-key-value-7 https://store.example/c.bin?sv=2&sig=abcdef https://docs.example/a?b=1")
    out = redact_content(text)
    assert "def f(key=value, token=None): return sorted(d, key=len)" in out
    assert "env-key-value-42" not in out and "url-key-value-7" not in out and "sig=abcdef" not in out
    assert "https://store.example/c.bin?sv=2&sig=***" in out and "https://docs.example/a?b=1" in out


def test_url_credentials_and_split_query():
    from resetkit.secrets import split_query, url_credentials

    url = "https://me:secretpw@h/v1?api-key=K1&key=K2&x=1&sig=K3&api_key=K4&password=K5&token=K6"
    assert sorted(url_credentials(url)) == ["K1", "K2", "K3", "K4", "K5", "K6", "secretpw"]
    assert split_query("http://h:1/v1?api-key=abc&x=1") == ("http://h:1/v1", {"api-key": "abc", "x": "1"})
    assert split_query("http://h:1/v1") == ("http://h:1/v1", {})


def test_store_masks_known_secrets_in_parquet_cells(store, monkeypatch):
    from resetkit import secrets
    from resetkit.secrets import register_secret

    monkeypatch.setattr(secrets, "_REGISTERED", set())
    monkeypatch.setenv("OPENAI_API_KEY", "cell-secret-0123")
    register_secret("registered-secret-77")
    with store.create("toy", builder="toy", config={}) as w:
        w.write("train", pa.table({"text": ["ok", "echo cell-secret-0123!", "registered-secret-77"],
                                   "n": [1, 2, 3]}))
    assert w.result.read().column("text").to_pylist() == ["ok", "echo ***!", "***"]


def test_resetkit_errors_are_redacted(monkeypatch):
    from resetkit.errors import ResetkitError

    monkeypatch.setenv("OPENAI_API_KEY", "error-secret-9876")
    err = ResetkitError("server said: bad key error-secret-9876 at http://h/v1?api-key=qqqqqq")
    assert "error-secret-9876" not in err.message and "qqqqqq" not in err.message

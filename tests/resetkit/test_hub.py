"""`resetkit publish` up to the network boundary: dry run, card validation, offline, no token,
and a local HTTP server on 127.0.0.1 standing in for the Hub (401 and 403 answers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pytest
from click.testing import CliRunner

from resetkit.cli import main
from resetkit.schemas import EXAMPLES

TOKEN = "hf_resetkitTestSecretToken0123456789"


@pytest.fixture
def version(store):
    rows = [{"id": f"x{i}", "source": "dolly", "objective": "instruction", "task": "open_ended",
             "split": "train", "instruction": "do", "question": None, "context": None, "passages": [],
             "response": "ok", "references": ["ok"], "prompt": "P", "template": "alpaca", "meta": "{}"}
            for i in range(3)]
    with store.create("if-train", builder="test", config={}) as w:
        w.write("train", pa.Table.from_pylist(rows, schema=EXAMPLES))
        w.card_meta["license"] = "cc-by-sa-3.0"
    return w.result


def snapshot(root):
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def publish(store, *args, env=None):
    return CliRunner().invoke(main, ["publish", *args, "--store", str(store.root)], env=env)


def test_dry_run_lists_files_offline_without_token(store, version):
    before = snapshot(store.root)
    res = publish(store, "if-train", "--repo", "me/if-train", "--dry-run", env={"HF_TOKEN": None})
    assert res.exit_code == 0, res.output
    assert "README.md" in res.output and "manifest.json" in res.output
    assert "data/train-00000-of-00001.parquet" in res.output
    assert f"tagged 'if-train-{version.version}'" in res.output and "3 files" in res.output
    assert snapshot(store.root) == before


def test_offline_and_no_token_fail_fast(store, version, monkeypatch):
    before = snapshot(store.root)
    res = publish(store, "if-train", "--repo", "me/if-train")      # tests run with HF_HUB_OFFLINE=1
    assert res.exit_code == 2 and "offline" in res.output and "Traceback" not in res.output
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(store.root.parent / "hf-home"))   # no login file here
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(c, "HF_TOKEN_PATH", str(store.root.parent / "hf-home" / "token"))
    monkeypatch.setattr(c, "HF_STORED_TOKENS_PATH", str(store.root.parent / "hf-home" / "stored_tokens"))
    res = publish(store, "if-train", "--repo", "me/if-train")
    assert res.exit_code == 2 and "no Hugging Face token" in res.output
    res = publish(store, "if-train", "--repo", "not-a-repo-id", "--dry-run")
    assert res.exit_code == 2 and "ORG/NAME" in res.output
    assert snapshot(store.root) == before


@pytest.mark.parametrize("header, message", [
    ("---\nlicense: [unclosed\n---\n# x\n", "invalid card metadata"),
    ("# no header\n", "no YAML header"),
    ("---\npretty_name: x\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*.parquet\n---\n", "no 'license'"),
    ("---\nlicense: mit\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/nope-*.parquet\n---\n", "matches no file"),
])
def test_card_validation_failure(store, version, header, message):
    (version.path / "README.md").write_text(header, encoding="utf-8")
    before = snapshot(store.root)
    res = publish(store, "if-train", "--repo", "me/if-train", "--dry-run")
    assert res.exit_code == 2 and message in res.output and "README.md" in res.output, res.output
    assert snapshot(store.root) == before


class _FakeHub(BaseHTTPRequestHandler):
    mode = "401"
    seen: list = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append((self.command, self.path, self.headers.get("Authorization")))
        if self.mode == "401":
            status, body = 401, {"error": "Invalid credentials in Authorization header"}
        elif self.path.startswith("/api/whoami"):
            status, body = 200, {"type": "user", "name": "tester", "orgs": [],
                                 "auth": {"accessToken": {"role": "read"}}}
        else:
            status, body = 403, {"error": "You don't have the rights to create a dataset under the namespace \"me\""}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("mode, message", [("401", "token was rejected (401"),
                                           ("403", "no rights to write to dataset repository 'me/if-train' (403")])
def test_hub_refusals_over_a_real_socket(store, version, tmp_path, mode, message):
    _FakeHub.mode, _FakeHub.seen = mode, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}", HF_TOKEN=TOKEN,
                   HF_HOME=str(tmp_path / "hf-home"), HF_HUB_ETAG_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="2")
        before = snapshot(store.root)
        proc = subprocess.run([sys.executable, "-m", "resetkit.cli", "publish", "if-train", "--repo", "me/if-train",
                               "--store", str(store.root)], env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert message in out and "Traceback" not in out
    assert TOKEN not in out
    # the token reached the server only as the Authorization header of the Hub calls
    assert any(path.startswith("/api/whoami") and auth == f"Bearer {TOKEN}" for _, path, auth in _FakeHub.seen)
    assert all(auth in (None, f"Bearer {TOKEN}") for _, _, auth in _FakeHub.seen)
    if mode == "403":
        assert any("/api/repos/create" in path for _, path, _ in _FakeHub.seen)
    assert snapshot(store.root) == before
    for path in store.root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path

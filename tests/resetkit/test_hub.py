"""`resetkit publish` up to the network boundary: dry run, card validation, offline, no token,
an unreachable Hub, and a small in-memory fake Hub on 127.0.0.1 (tests/helpers/fake_hub.py)
answering 401 and 403; then the success path against the same fake: one commit of the version
directory, byte for byte, the tag, a republish, a new version replacing the data files, a
branch, and a tag that fails after the commit landed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pytest
from click.testing import CliRunner

from resetkit.cli import main
from resetkit.schemas import EXAMPLES
from tests.helpers.fake_hub import GITATTRIBUTES, FakeHub

TOKEN = "hf_resetkitTestSecretToken0123456789"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def make_version(store, splits=("train",), response="ok"):
    """A small if-train version with 3 rows in each split (``response`` varies the content; the
    config, which names the version, records both)."""
    with store.create("if-train", builder="test", config={"splits": list(splits), "response": response}) as w:
        for split in splits:
            rows = [{"id": f"x{i}", "source": "dolly", "objective": "instruction", "task": "open_ended",
                     "split": split, "instruction": "do", "question": None, "context": None, "passages": [],
                     "response": response, "refs": [response], "prompt": "P", "template": "alpaca",
                     "meta": "{}"} for i in range(3)]
            w.write(split, pa.Table.from_pylist(rows, schema=EXAMPLES))
        w.card_meta["license"] = "cc-by-sa-3.0"
    return w.result


@pytest.fixture
def version(store):
    return make_version(store)


def snapshot(root):
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def publish(store, *args, env=None):
    return CliRunner().invoke(main, ["publish", *args, "--store", str(store.root)], env=env)


def publish_subprocess(store, endpoint, tmp_path, *args, env=None):
    """Run `resetkit publish ARGS` in a fresh process against the Hub at ``endpoint``: online (the
    offline variables the tests run with are removed), HF_TOKEN set, a private HF_HOME, and
    ``env`` on top.  Returns (exit code, stdout + stderr)."""
    env = {**{k: v for k, v in os.environ.items() if k not in OFFLINE_VARS},
           "HF_ENDPOINT": endpoint, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2",
           "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", **(env or {})}   # never via a proxy
    proc = subprocess.run([sys.executable, "-m", "resetkit.cli", "publish", *args, "--store", str(store.root)],
                          env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


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


# -- refusals and an unreachable Hub ----------------------------------------------------------------

@pytest.mark.parametrize("mode, message", [("401", "token was rejected (401"),
                                           ("403", "no rights to write to dataset repository 'me/if-train' (403")])
def test_hub_refusals_over_a_real_socket(store, version, tmp_path, mode, message):
    # 401: the Hub knows another token; 403: it accepts the token but not the namespace
    with FakeHub(token=TOKEN if mode == "403" else "hf_someoneElse") as hub:
        hub.fail["create"] = (403, "You don't have the rights to create a dataset under the namespace \"me\"")
        before = snapshot(store.root)
        code, out = publish_subprocess(store, hub.endpoint, tmp_path, "if-train", "--repo", "me/if-train")
    assert code == 2, out
    assert message in out and "Traceback" not in out
    # the token reached the server only as the Authorization header of the Hub calls
    assert ("GET", "/api/whoami-v2", 401 if mode == "401" else 200) in calls(hub)
    if mode == "403":
        assert ("POST", "/api/repos/create", 403) in calls(hub)
    assert hub.commits == [] and snapshot(store.root) == before
    assert_token_kept_secret(hub, out, tmp_path)


def test_an_unreachable_hub_is_reported_as_such(store, version, tmp_path):
    import socket

    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    before = snapshot(store.root)
    code, out = publish_subprocess(store, f"http://127.0.0.1:{port}", tmp_path, "if-train", "--repo", "me/if-train")
    assert code == 2, out
    assert f"cannot reach the Hub at http://127.0.0.1:{port}" in out and "Traceback" not in out, out
    assert TOKEN not in out and snapshot(store.root) == before


# -- the success path, against a fake Hub ----------------------------------------------------------

REPO_KEY = "datasets/me/if-train"       # how the fake Hub names the dataset repo me/if-train


@pytest.fixture
def hub():
    with FakeHub(token=TOKEN) as fake:
        yield fake


def version_files(version):
    """{path in repo: bytes} of what a publish must upload: every file of the version directory
    (publish skips dotfiles; a version directory has none)."""
    return {p.relative_to(version.path).as_posix(): p.read_bytes() for p in sorted(version.path.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(version.path).parts)}


def assert_token_kept_secret(hub, out, tmp_path):
    """The token went to the Hub only as `Authorization: Bearer <TOKEN>`, on every call that needs
    one, and nowhere else: not in the CLI output, a URL, another header, a request body, or any
    file written under tmp_path (the store and HF_HOME)."""
    assert TOKEN not in out
    for req in hub.requests:
        if (req.method, req.path) == ("GET", "/api/agent-harnesses"):   # huggingface_hub's public registry
            assert req.authorization is None
        else:
            assert req.authorization == f"Bearer {TOKEN}", (req.method, req.path)
        assert TOKEN not in req.path + json.dumps(req.query)
        assert not any(TOKEN in value for name, value in req.headers.items() if name != "authorization")
        assert TOKEN.encode() not in req.body, (req.method, req.path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def calls(hub, start=0):
    """(method, path, status) of the requests the fake Hub received, from the ``start``-th on."""
    return [(r.method, r.path, r.status) for r in hub.requests[start:]]


def test_publish_uploads_the_version_in_one_commit_and_tags_it(store, version, hub, tmp_path):
    before = snapshot(store.root)
    code, out = publish_subprocess(store, hub.endpoint, tmp_path, "if-train", "--repo", "me/if-train")
    assert code == 0, out
    assert "Traceback" not in out

    # one commit to main of the new dataset repo: exactly the files of the version directory,
    # byte for byte (the fake decodes the base64 lines), nothing deleted
    created = [json.loads(r.body) for r in hub.requests if r.path == "/api/repos/create"]
    assert [(c["organization"], c["name"], c["type"]) for c in created] == [("me", "if-train", "dataset")]
    assert len(hub.commits) == 1
    commit = hub.commits[0]
    assert (commit["repo"], commit["revision"]) == (REPO_KEY, "main")
    assert commit["files"] == version_files(version)
    assert sorted(commit["files"]) == ["README.md", "data/train-00000-of-00001.parquet", "manifest.json"]
    assert commit["deleted"] == []
    assert commit["header"]["summary"] == f"resetkit publish {version.ref}"
    repo = hub.repos[REPO_KEY]
    assert repo.commits[repo.branches["main"]] == {".gitattributes": GITATTRIBUTES, **version_files(version)}

    # the tag NAME-VERSION is on the commit the Hub returned, and the CLI prints that commit's url
    tag = f"if-train-{version.version}"
    assert repo.tags == {tag: commit["oid"]}
    url = f"{hub.endpoint}/datasets/me/if-train/commit/{commit['oid']}"
    assert url in out and f"tag {tag}" in out and "as tester" in out, out

    # the calls, in order: list the repo's files (old data/ shards to delete), ask the upload mode
    # of each file, commit once, read the tags, tag.  (Left out: huggingface_hub's card check,
    # validate-yaml, and its agent-harnesses registry fetch.)
    side_calls = ("/api/validate-yaml", "/api/agent-harnesses")
    assert [call for call in calls(hub) if call[1] not in side_calls] == [
        ("GET", "/api/whoami-v2", 200),
        ("POST", "/api/repos/create", 200),
        ("GET", "/api/datasets/me/if-train/tree/main", 200),
        ("POST", "/api/datasets/me/if-train/preupload/main", 200),
        ("POST", "/api/datasets/me/if-train/commit/main", 200),
        ("GET", "/api/datasets/me/if-train/refs", 200),
        ("POST", f"/api/datasets/me/if-train/tag/{commit['oid']}", 200)]
    # the repo url printed is the endpoint's, not a hard-coded huggingface.co
    assert f"to {hub.endpoint}/datasets/me/if-train as tester" in out

    # publishing the same version again succeeds: the repo exists (409, accepted), the files are
    # unchanged so huggingface_hub makes no (empty) commit, the tag is already there (no tag call),
    # and the CLI reports the commit that holds them
    first = len(hub.requests)
    code, out2 = publish_subprocess(store, hub.endpoint, tmp_path, "if-train", "--repo", "me/if-train")
    assert code == 0, out2
    assert url in out2 and "Traceback" not in out2 and "note:" not in out2
    assert len(hub.commits) == 1 and repo.tags == {tag: commit["oid"]}
    assert ("POST", "/api/repos/create", 409) in calls(hub, first)
    assert not [c for c in calls(hub, first) if "/tag/" in c[1]]

    # publishing changes nothing locally, and the token stayed where it belongs
    assert snapshot(store.root) == before
    assert_token_kept_secret(hub, out + out2, tmp_path)


def test_publishing_a_new_version_replaces_the_data_files(store, hub, tmp_path):
    old = make_version(store, splits=("train", "test"))
    new = make_version(store, splits=("train",), response="better")
    assert old.version != new.version and "data/test-00000-of-00001.parquet" in version_files(old)
    before = snapshot(store.root)
    code, out = publish_subprocess(store, hub.endpoint, tmp_path, old.ref, "--repo", "me/if-train")
    assert code == 0, out
    code, out2 = publish_subprocess(store, hub.endpoint, tmp_path, new.ref, "--repo", "me/if-train")
    assert code == 0, out2

    # the second commit deletes the data file the new version no longer has (the repo's other
    # data/ files) and rewrites the others; the repo then holds exactly the new version
    assert len(hub.commits) == 2
    commit = hub.commits[1]
    assert commit["deleted"] == ["data/test-00000-of-00001.parquet"]
    assert commit["files"] == version_files(new)
    repo = hub.repos[REPO_KEY]
    assert repo.commits[repo.branches["main"]] == {".gitattributes": GITATTRIBUTES, **version_files(new)}
    # each version keeps its own tag, on its own commit
    assert repo.tags == {f"if-train-{old.version}": hub.commits[0]["oid"],
                         f"if-train-{new.version}": commit["oid"]}
    assert snapshot(store.root) == before
    assert_token_kept_secret(hub, out + out2, tmp_path)


def test_publish_to_a_branch(store, version, hub, tmp_path):
    code, out = publish_subprocess(store, hub.endpoint, tmp_path, "if-train", "--repo", "me/if-train",
                                   "--revision", "experiments")
    assert code == 0, out
    repo = hub.repos[REPO_KEY]
    # the branch is created from main, the commit goes there, main keeps only .gitattributes
    assert ("POST", "/api/datasets/me/if-train/branch/experiments", 200) in calls(hub)
    assert [c["revision"] for c in hub.commits] == ["experiments"]
    assert hub.commits[0]["files"] == version_files(version)
    assert repo.commits[repo.branches["main"]] == {".gitattributes": GITATTRIBUTES}
    assert repo.tags == {f"if-train-{version.version}": repo.branches["experiments"]}
    assert "revision experiments" in out
    assert_token_kept_secret(hub, out, tmp_path)


def test_tag_failure_after_the_commit_says_so_and_a_rerun_adds_the_tag(store, version, hub, tmp_path):
    hub.fail["tag"] = (500, "tags are down")
    before = snapshot(store.root)
    code, out = publish_subprocess(store, hub.endpoint, tmp_path, "if-train", "--repo", "me/if-train")
    assert code == 2, out
    assert "Traceback" not in out
    # the commit landed, the tag did not, and the message says both (with the commit oid)
    assert len(hub.commits) == 1
    oid = hub.commits[0]["oid"]
    assert hub.repos[REPO_KEY].tags == {}
    assert f"uploaded {version.ref} as commit {oid}, but the tag failed" in out
    assert f"tagging if-train-{version.version}: the Hub answered 500" in out
    assert "Rerun to add the tag" in out

    # as the message says, a rerun adds the tag to that commit without a new upload
    del hub.fail["tag"]
    code, out2 = publish_subprocess(store, hub.endpoint, tmp_path, "if-train", "--repo", "me/if-train")
    assert code == 0, out2
    assert len(hub.commits) == 1
    assert hub.repos[REPO_KEY].tags == {f"if-train-{version.version}": oid}
    assert snapshot(store.root) == before
    assert_token_kept_secret(hub, out + out2, tmp_path)


def test_a_tag_left_on_an_earlier_commit_is_reported_not_moved(store, version, hub, tmp_path):
    code, out = publish_subprocess(store, hub.endpoint, tmp_path, "if-train", "--repo", "me/if-train")
    assert code == 0, out
    first_oid = hub.commits[0]["oid"]
    # someone else changes a file of the version on the Hub: the next publish must commit again
    repo = hub.repos[REPO_KEY]
    head = repo.branches["main"]
    files = dict(repo.commits[head])
    files["manifest.json"] = b"{}"
    repo.branches["main"] = repo.new_commit(head, files, "edit on the Hub")
    code, out2 = publish_subprocess(store, hub.endpoint, tmp_path, "if-train", "--repo", "me/if-train")
    assert code == 0, out2
    assert len(hub.commits) == 2 and hub.commits[1]["files"] == {"manifest.json": version_files(version)["manifest.json"]}
    tag = f"if-train-{version.version}"
    assert repo.tags == {tag: first_oid}      # tags are never moved
    assert f"note: tag {tag} already marks commit {first_oid}" in out2


def test_a_hub_rejection_is_not_reported_as_unreachable(store, version, hub, tmp_path):
    hub.fail["validate-yaml"] = (400, '"license" must be one of [apache-2.0, mit, ...]')
    before = snapshot(store.root)
    code, out = publish_subprocess(store, hub.endpoint, tmp_path, "if-train", "--repo", "me/if-train")
    assert code == 2, out
    assert "Traceback" not in out and "cannot reach" not in out
    assert "the Hub refused it" in out and "must be one of" in out, out
    assert hub.commits == [] and snapshot(store.root) == before
    assert_token_kept_secret(hub, out, tmp_path)

"""Backends as plugins: every registered backend declares its options in its own ``Options``
dataclass, ``resetkit pool`` generates its flags from them, and a backend added the documented
way (one module + one registry line) runs through the CLI with ``--set backend.NAME.FIELD=...``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from builders.backends.base import BACKENDS
from resetkit.config import execution_fields
from builders.pool import PoolConfig, pool_config, pool_identity, version_config
from resetkit.config import options_class
from resetkit.errors import ResetkitError
from resetkit.registry import Registry
from resetkit.store import Store
from tests.helpers.pool_examples import make_examples

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", BACKENDS.names())
def test_every_backend_declares_frozen_options_with_help(name):
    cls = options_class(BACKENDS, name)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    pool_fields = {f.name for f in dataclasses.fields(PoolConfig)}
    for f in dataclasses.fields(cls):
        assert f.metadata.get("help"), f"{name}.{f.name} has no help"
        assert f.name not in pool_fields, f"{name}.{f.name} shadows a PoolConfig field"
    backend = BACKENDS.get(name)("m")   # the defaults build; options are cheap to hold
    assert backend.options == cls() and backend.name == name


@pytest.mark.parametrize("name", BACKENDS.names())
def test_pool_help_lists_every_backend_and_each_option_flag(name):
    from resetkit.cli import main

    out = CliRunner().invoke(main, ["pool", "--help"], terminal_width=200).output
    assert name in out.split("--backend [", 1)[1].split("]", 1)[0].split("|")
    for f in dataclasses.fields(options_class(BACKENDS, name)):
        assert f"--{f.name.replace('_', '-')}" in out
        assert f.metadata["help"].split()[0] in out


def test_run_fields_stay_out_of_the_version_and_identity_options_go_in():
    tr = version_config(pool_config(model="m", batch_size=8, device="cpu", shard_examples=2))
    assert tr == version_config(pool_config(model="m"))       # batch size, device, shards: how it runs
    assert tr["options"] == {} and "batch_size" not in tr and "shard_examples" not in tr
    oa = version_config(pool_config(model="m", backend="openai", base_url="http://x/v1", chat=True))
    assert oa["options"] == {"chat": True, "send_top_k": True}
    assert "base_url" not in json.dumps(oa)
    assert set(execution_fields(options_class(BACKENDS, "openai"))) >= {"base_url", "concurrency", "timeout"}
    # resetkit eval's --pool-set: its identity leaves out the stage's and the backend's run fields
    assert pool_identity({"base_url": "u", "template": "chat", "shard_examples": 2}, "openai") == {"template": "chat"}


def test_unknown_backend_options_are_one_clear_error():
    with pytest.raises(ResetkitError, match="unknown config key 'concurrenc'.*'concurrency'"):
        version_config(pool_config(model="m", backend="openai", options={"openai": {"concurrenc": 2}}))
    with pytest.raises(ResetkitError, match="unknown backend 'opena'.*'openai'"):
        version_config(pool_config(model="m", options={"opena": {"chat": True}}))
    with pytest.raises(ResetkitError, match="backend 'transformers'.*unknown config key 'chat'"):
        BACKENDS.get("transformers")("m", chat=True)


def test_registry_register_adds_a_lazy_entry_and_refuses_a_duplicate():
    reg = Registry("backend", {"a": "json:dumps"})
    reg.register("b", "json:loads")
    assert reg.names() == ["a", "b"] and reg.get("b")("[1]") == [1]
    with pytest.raises(ResetkitError, match="backend 'a' is already registered"):
        reg.register("a", "json:loads")


def _pool_cli(store_root, *args):
    """``resetkit pool`` in a fresh process whose BACKENDS has the toy's one registry line."""
    code = ("import sys; from builders.backends import BACKENDS; "
            "BACKENDS.register('toy', 'tests.builders.toy_backend:ToyBackend'); "
            "from resetkit.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, "pool", "reset-seed", "--store", str(store_root),
                           "--backend", "toy", "--model", "toy-model", "--grid", "greedy", "--max-new-tokens",
                           "4", "--no-progress", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)


def test_a_toy_backend_added_with_one_module_and_one_line_runs_through_the_cli(tmp_path):
    store = Store(tmp_path / "store")
    make_examples(store, 4)
    plain = _pool_cli(store.root, "--name", "plain")
    assert plain.returncode == 0, plain.stderr
    run = _pool_cli(store.root, "--name", "set", "--set", "backend.toy.prefix=HELLO",
                    "--set", "backend.toy.chunk=2")
    assert run.returncode == 0, run.stderr
    a, b = store.resolve("plain"), store.resolve("set")
    texts = b.read("train")["text"].to_pylist()
    assert len(texts) == 4 and all(t.startswith("HELLO ") for t in texts)
    assert all(t.startswith("toy: ") for t in a.read("train")["text"].to_pylist())
    assert b.read("train")["backend"].to_pylist() == ["toy"] * 4
    # the prefix changes what is written: its own version, recorded; chunk only how it ran
    assert a.version != b.version
    assert b.manifest["config"]["options"] == {"prefix": "HELLO", "words": 3}
    assert b.manifest["run"]["chunk"] == 2
    same = _pool_cli(store.root, "--name", "set", "--set", "backend.toy.prefix=HELLO")
    assert same.returncode == 0 and store.resolve("set").version == b.version   # chunk is not identity
    bad = _pool_cli(store.root, "--set", "backend.toy.prefx=x")
    assert bad.returncode != 0 and "Did you mean 'prefix'" in bad.stderr
    wrong = _pool_cli(store.root, "--concurrency", "4")
    assert wrong.returncode != 0 and "--concurrency is an option of the openai backend, not of --backend toy" \
        in wrong.stderr


def test_option_flags_reach_their_backend_and_are_refused_for_another(tmp_path, tiny_llama):
    from resetkit.cli import main

    store = Store(tmp_path / "store")
    make_examples(store, 2)
    args = ["pool", "reset-seed", "--store", str(store.root), "--model", str(tiny_llama), "--grid", "greedy",
            "--max-new-tokens", "2", "--no-progress"]
    res = CliRunner().invoke(main, [*args, "--batch-size", "3", "--set", "backend.transformers.device=cpu"])
    assert res.exit_code == 0, res.output
    run = store.resolve("pool").manifest["run"]
    assert (run["batch_size"], run["device"]) == (3, "cpu")
    res = CliRunner().invoke(main, [*args, "--base-url", "http://127.0.0.1:9/v1"])
    assert res.exit_code != 0 and "--base-url is an option of the openai backend" in res.output

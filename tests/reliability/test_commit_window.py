"""kill -9 at every step of a commit (issue 14 item 3): the commit-swap window.

Before: a rebuild of an existing version renamed the old directory to `.trash-…` and then the new
one into place; a kill between the two left LATEST pointing at nothing and the dataset gone.  Now
the swap is one atomic step (renameat2 RENAME_EXCHANGE), and on a system without it the next reader
puts a moved-aside version back.  A writer process is killed right before and right after each
file-system step of its commit, one step further each time; after every kill the store must read
as before or as after (never neither), and the next write must leave no debris.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

from resetkit.store import Store

pytestmark = [pytest.mark.reliability, pytest.mark.slow_reliability]

SCRIPT = textwrap.dedent("""
    import os, shutil, signal, sys
    import pyarrow as pa
    import resetkit.store as st

    root, config, kill_at, exchange = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    if not exchange or not hasattr(st, "_exchange"):
        st._exchange = lambda a, b: False  # (resetkit before issue 14 had no exchange)
    steps = [0]

    def step():
        steps[0] += 1
        if steps[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def hooked(fn):
        def run(*args, **kwargs):
            step()
            out = fn(*args, **kwargs)
            step()
            return out
        return run

    store = st.Store(root)
    rows = {"a": 5, "b": 3, "c": 4}[config]
    with store.create("toy", builder="toy", config={"c": config}) as w:
        w.write("train", pa.table({"id": [f"{config}{i}" for i in range(rows)]}))
        # from here on (the commit), every file-system step can be the last
        os.rename, os.replace, shutil.rmtree = hooked(os.rename), hooked(os.replace), hooked(shutil.rmtree)
        st._exchange = hooked(st._exchange)
    print("COMMITTED", steps[0])
""")


def _write(root, config, kill_at=0, exchange=True):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(root), config, str(kill_at), "1" if exchange else "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, -9), proc.stderr
    return proc.returncode == 0


def _write_here(root, config):
    rows = {"a": 5, "b": 3, "c": 4}[config]
    with Store(root).create("toy", builder="toy", config={"c": config}) as w:
        w.write("train", pa.table({"id": [f"{config}{i}" for i in range(rows)]}))


def _debris(root):
    return sorted(p.name for p in (root / "toy").iterdir() if p.name.startswith((".tmp-", ".trash-")))


@pytest.mark.parametrize("exchange", [True, False], ids=["atomic-exchange", "two-renames"])
@pytest.mark.parametrize("target", ["rebuild", "new-version"])
def test_kill_at_every_step_of_a_commit(tmp_path, exchange, target):
    import shutil

    template = tmp_path / "template"
    _write_here(template, "b")                               # versions b, then a (LATEST)
    _write_here(template, "a")
    kill_at = 1
    while True:
        root = tmp_path / f"kill{kill_at}"
        shutil.copytree(template, root)
        store = Store(root)
        before = {v.version: v.read().num_rows for v in store.versions("toy")}
        latest_before = store.resolve("toy").version
        config = "a" if target == "rebuild" else "c"
        finished = _write(root, config, kill_at, exchange)
        store = Store(root)                                  # the next open
        after = {v.version: v.read().num_rows for v in store.versions("toy")}
        for version, rows in before.items():                 # no version ever disappears
            assert after.get(version) == rows, (kill_at, version, after)
        assert set(after) - set(before) <= ({store.versions("toy")[-1].version} if target == "new-version" else set())
        newest = store.resolve("toy")                        # LATEST names a version that is there
        assert newest.read().num_rows == after[newest.version]
        if target == "rebuild":
            assert newest.version == latest_before
        else:  # the new version is the newest as soon as it is there, never a stale LATEST
            new = set(after) - set(before)
            assert newest.version == (new.pop() if new else latest_before), kill_at
        assert store.names() == ["toy"]
        with store.create("toy", builder="toy", config={"next": 1}) as w:  # the next write sweeps
            w.write("train", pa.table({"id": ["n"]}))
        assert _debris(root) == []
        if finished:
            break
        kill_at += 1
    assert kill_at > 3  # the commit had several steps, and each one was a kill point

"""The versioned store: layout, deterministic versions, atomic writes, resolution."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

from resetkit.errors import ResetkitError
from resetkit.store import Store, fingerprint_path


def _table(n, offset=0):
    return pa.table({"id": [f"x{i}" for i in range(offset, offset + n)],
                     "value": [float(i) for i in range(offset, offset + n)]})


def _build(store, config=None, rows=5, shard_rows=1000, name="toy"):
    with store.create(name, builder="toy", config=config or {"a": 1}, inputs={"f": {"sha256": "x"}},
                      shard_rows=shard_rows) as w:
        w.write("train", _table(rows))
        w.write("validation", _table(2, offset=100))
        w.add_drop("src", "too_short", 3)
    return w.result


def test_layout_is_a_hub_repository(store):
    v = _build(store)
    assert (v.path / "README.md").is_file()
    assert (v.path / "manifest.json").is_file()
    names = sorted(p.name for p in (v.path / "data").iterdir())
    assert names == ["train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]
    m = v.manifest
    assert m["splits"]["train"]["rows"] == 5 and m["splits"]["validation"]["rows"] == 2
    assert m["dropped"] == {"src": {"too_short": 3}}
    assert [f["name"] for f in m["schema"]] == ["id", "value"]
    # no temp or work dirs are left visible
    assert [p.name for p in (store.root / "toy").iterdir() if p.name.startswith(".tmp")] == []


def test_load_dataset_reads_version_dir_with_splits(store):
    import datasets

    v = _build(store)
    ds = datasets.load_dataset(str(v.path))
    assert set(ds) == {"train", "validation"}
    assert ds["train"].num_rows == 5 and ds["train"][0]["id"] == "x0"


def test_card_header_is_accepted_by_huggingface_hub(store):
    from huggingface_hub import DatasetCard

    v = _build(store)
    card = DatasetCard.load(v.path / "README.md")
    data = card.data.to_dict()
    assert data["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*.parquet"}
    assert data["size_categories"] == ["n<1K"]
    assert "too_short" in card.text  # drops rendered in the body


def test_same_inputs_same_version_and_bytes(tmp_path):
    a = _build(Store(tmp_path / "a"))
    b = _build(Store(tmp_path / "b"))
    assert a.version == b.version
    for fa, fb in zip(a.files(), b.files()):
        assert fa.name == fb.name and fa.read_bytes() == fb.read_bytes()
    c = _build(Store(tmp_path / "c"), config={"a": 2})
    assert c.version != a.version


def test_rebuild_in_place_keeps_version(store):
    a = _build(store)
    b = _build(store)
    assert a.version == b.version and len(store.versions("toy")) == 1


def test_sharding_rolls_over(store):
    v = _build(store, rows=25, shard_rows=10)
    assert [p.name for p in v.files("train")] == [
        "train-00000-of-00003.parquet", "train-00001-of-00003.parquet", "train-00002-of-00003.parquet"]
    assert v.read("train").num_rows == 25
    assert v.read("train").column("id").to_pylist() == [f"x{i}" for i in range(25)]


def test_resolve_newest_pinned_and_prefix(store):
    a = _build(store, config={"a": 1})
    b = _build(store, config={"a": 2})
    assert store.resolve("toy").version == b.version
    assert store.resolve(f"toy@{a.version}").version == a.version
    assert store.resolve(f"toy@{a.version[:6]}").version == a.version
    with pytest.raises(ResetkitError, match="no version"):
        store.resolve("toy@zzzz")
    with pytest.raises(ResetkitError, match="Did you mean 'toy'"):
        store.resolve("tou")


def test_failure_inside_writer_leaves_nothing(store):
    good = _build(store)
    with pytest.raises(RuntimeError):
        with store.create("toy", builder="toy", config={"a": 9}) as w:
            w.write("train", _table(3))
            raise RuntimeError("boom")
    assert [v.version for v in store.versions("toy")] == [good.version]
    assert store.resolve("toy").version == good.version
    leftovers = [p.name for p in (store.root / "toy").iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []


def test_failed_first_build_leaves_no_empty_dataset_folder(store):
    with pytest.raises(RuntimeError):
        with store.create("fresh", builder="toy", config={}) as w:
            w.write("train", _table(3))
            raise RuntimeError("bad row")
    assert not (store.root / "fresh").exists()
    assert store.versions("fresh") == []
    good = _build(store)  # the folder of a dataset with versions stays, of course
    with pytest.raises(RuntimeError):
        with store.create("toy", builder="toy", config={"a": 2}) as w:
            raise RuntimeError("boom")
    assert store.resolve("toy").version == good.version


def test_sigkill_midway_leaves_no_version(tmp_path):
    root = tmp_path / "store"
    script = textwrap.dedent(f"""
        import os, signal, pyarrow as pa
        from resetkit.store import Store
        s = Store({str(root)!r})
        with s.create("toy", builder="toy", config={{}}) as w:
            w.write("train", pa.table({{"x": [1, 2, 3]}}))
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    store = Store(root)
    assert store.versions("toy") == []
    assert store.names() == []
    # the killed writer's temp dir goes at the next write, however young: its lock is free
    leftovers = [p for p in (root / "toy").glob(".tmp-*") if p.is_dir()]
    assert leftovers and (root / "toy" / (leftovers[0].name + ".lock")).is_file()
    with store.create("toy", builder="toy", config={"b": 1}) as w:
        w.write("train", pa.table({"x": [1]}))
    assert list((root / "toy").glob(".tmp-*")) == []


def test_sweep_leaves_a_live_writer_alone(store):
    good = _build(store)
    with store.create("toy", builder="toy", config={"live": 1}) as live:
        live.write("train", _table(2))
        assert live.tmp.is_dir()
        assert store.sweep_stale("toy", min_age_s=0) == []  # its lock is held: alive, however old
        other = _build(store, config={"other": 1})          # another write meanwhile sweeps nothing of it
        assert live.tmp.is_dir()
    assert {v.version for v in store.versions("toy")} == {good.version, other.version, live.version}
    assert list((store.root / "toy").glob(".tmp-*")) == []


def test_sweep_of_a_legacy_temp_dir_without_lock_file(store):
    """Temp dirs of writers that held no lock (older resetkit): their process must be gone."""
    _build(store)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    legacy = store.root / "toy" / f".tmp-aaaaaaaaaaaa-{dead}-abcdef"
    (legacy / "data").mkdir(parents=True)
    mine = store.root / "toy" / f".tmp-aaaaaaaaaaaa-{os.getpid()}-abcdef"
    mine.mkdir()
    assert store.sweep_stale("toy") == []                     # young: maybe a live writer on another host
    assert store.sweep_stale("toy", min_age_s=0) == [legacy]  # its process is gone; this one is alive
    assert mine.is_dir()


def test_fingerprint_changes_with_content(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text('{"x": 1}\n')
    fp1 = fingerprint_path(f)
    f.write_text('{"x": 2}\n')
    assert fingerprint_path(f)["sha256"] != fp1["sha256"]
    with pytest.raises(ResetkitError, match="not found"):
        fingerprint_path(tmp_path / "missing.json")


def test_lineage_recorded(store):
    parent = _build(store, name="parent")
    with store.create("child", builder="toy", config={}, parents=["parent"]) as w:
        w.write("train", _table(1))
    assert w.result.manifest["parents"] == [{"name": "parent", "version": parent.version}]
    assert f"parent@{parent.version}" in (w.result.path / "README.md").read_text()


def test_empty_split_left_out_when_others_have_rows(store):
    import datasets

    with store.create("toy", builder="toy", config={"e": 1}) as w:
        w.write("train", _table(3))
        w.write("validation", _table(0))
    assert set(w.result.splits) == {"train"}
    assert set(w.result.manifest["splits"]) == {"train"}
    assert datasets.load_dataset(str(w.result.path))["train"].num_rows == 3


def test_failed_commit_leaves_no_temp_dir_and_keeps_old_version(store, monkeypatch):
    good = _build(store)
    import resetkit.store as st

    real_rename = st.os.rename

    def failing_rename(src, dst):
        if ".tmp-" in str(src):
            raise OSError("disk full")
        return real_rename(src, dst)

    monkeypatch.setattr(st.os, "rename", failing_rename)
    monkeypatch.setattr(st, "_exchange", lambda a, b: False)  # a system without an atomic exchange
    with pytest.raises(OSError, match="disk full"):
        _build(store)  # same version id: the old one is moved aside, then must come back
    monkeypatch.setattr(st.os, "rename", real_rename)
    assert store.resolve("toy").version == good.version
    assert store.resolve("toy").read("train").num_rows == 5
    assert [p.name for p in (store.root / "toy").iterdir() if p.name.startswith((".tmp", ".trash"))] == []


def test_rebuild_swaps_in_one_step(store, monkeypatch):
    """A rebuild of an existing version never renames the old one away first (issue 14 item 3)."""
    import resetkit.store as st

    good = _build(store)
    renames = []
    real_rename = st.os.rename
    monkeypatch.setattr(st.os, "rename", lambda a, b: (renames.append((a, b)), real_rename(a, b)))
    again = _build(store)
    assert again.version == good.version and renames == []
    assert store.resolve("toy").read("train").num_rows == 5
    assert [p.name for p in (store.root / "toy").iterdir() if p.name.startswith((".tmp", ".trash"))] == []


def test_kill_between_the_two_renames_is_repaired_on_the_next_open(tmp_path):
    """Where no atomic exchange exists: a kill after the old version was moved aside and before the
    new one was moved in.  The next reader puts the old one back."""
    root = tmp_path / "store"
    first = _build(Store(root))
    script = textwrap.dedent(f"""
        import os, signal, pyarrow as pa
        import resetkit.store as st
        st._exchange = lambda a, b: False
        real = os.rename
        def rename(a, b):
            real(a, b)
            if ".trash-" in str(b):
                os.kill(os.getpid(), signal.SIGKILL)
        st.os.rename = rename
        s = st.Store({str(root)!r})
        with s.create("toy", builder="toy", config={{"a": 1}}, inputs={{"f": {{"sha256": "x"}}}}) as w:
            w.write("train", pa.table({{"id": ["x0"], "value": [0.0]}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9, proc.stderr
    assert list((root / "toy").glob(".trash-*"))      # the window was hit
    store = Store(root)
    assert store.resolve("toy").version == first.version
    assert store.resolve("toy").read("train").num_rows == 5
    assert store.names() == ["toy"]
    assert list((root / "toy").glob(".trash-*")) == []

"""A full disk and a read-only store (issue 14 items 1 and 2), on a tmpfs of our own.

Before: `resetkit build` on a full disk gave an `OSError: [Errno 28]` traceback and, when the disk
filled while a Parquet file was being closed, left the killed temp dir behind; on a read-only store
an `OSError: [Errno 30]` traceback.  Now: one line naming the store, nothing half-written, the
versions already there untouched, and the same command succeeds once there is room, with the
same bytes as a build on a roomy disk.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from resetkit.cli import main
from resetkit.store import Store

pytestmark = pytest.mark.reliability


def _if_train_args():
    from builders.corpora import sample_sources

    return [a for k, v in sample_sources("if-train").items() for a in ("--source", f"{k}={v}")]


def _build(store_root, *extra):
    return CliRunner().invoke(main, ["build", "if-train", *_if_train_args(), "--store", str(store_root),
                                     "--no-progress", *extra])


def _one_clean_line(res, *must):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    for text in must:
        assert text in lines[0], lines[0]


def _debris(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.name.startswith((".tmp-", ".trash-")) or p.name.endswith(".tmp"))


def _files(version):
    return {p.name: p.read_bytes() for p in version.files()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    res = _build(tmp_path_factory.mktemp("roomy") / "store")
    assert res.exit_code == 0, res.output
    store = Store(tmp_path_factory.getbasetemp() / "roomy0" / "store")
    return store.resolve("if-train")


@pytest.mark.parametrize("leave_kb", [0, 4, 12, 20, 28])
def test_build_on_a_full_disk_is_one_line_and_leaves_nothing(small_disk, reference, leave_kb):
    store = Store(small_disk.path / "store")
    small_disk.fill(leave_kb * 1024)
    res = _build(store.root)
    _one_clean_line(res, "disk full", str(store.root))
    assert store.names() == [] and _debris(small_disk.path) == []
    small_disk.free()
    res = _build(store.root)  # the same command, once there is room
    assert res.exit_code == 0, res.output
    built = store.resolve("if-train")
    assert built.version == reference.version and _files(built) == _files(reference)
    assert _debris(small_disk.path) == []


def test_rebuild_on_a_full_disk_keeps_the_version_there(small_disk, reference):
    store = Store(small_disk.path / "store")
    assert _build(store.root).exit_code == 0
    small_disk.fill(8 * 1024)
    res = _build(store.root)  # the same version again: no room for the fresh copy
    _one_clean_line(res, "disk full")
    assert [v.version for v in store.versions("if-train")] == [reference.version]
    assert _files(store.resolve("if-train")) == _files(reference)
    assert _debris(small_disk.path) == []


def test_select_and_judge_on_a_full_disk(small_disk):
    from tests.judging.pools import candidate, example, make_pool

    store = Store(small_disk.path / "store")
    exs = [example(f"e{i}", "extractive_qa", context=f"Paris is the capital of France {i}.",
                   question="What is the capital?", references=["Paris"]) for i in range(6)]
    make_pool(store, exs, [candidate(f"e{i}", f"c{i}-{k}", t, i=k) for i in range(6)
                           for k, t in enumerate(["Paris", "Lyon"])])
    judge = ["judge", "pool", "--judges", "em,span", "--store", str(store.root), "--quiet"]
    select = ["select", "pool", "--store", str(store.root)]
    small_disk.fill(0)
    _one_clean_line(CliRunner().invoke(main, judge), "disk full")
    assert store.names() == ["ex", "pool"] and _debris(small_disk.path) == []
    small_disk.free()
    assert CliRunner().invoke(main, judge).exit_code == 0
    small_disk.fill(0)
    _one_clean_line(CliRunner().invoke(main, select), "disk full")
    assert store.names() == ["ex", "pool", "scores"] and _debris(small_disk.path) == []
    small_disk.free()
    res = CliRunner().invoke(main, select)
    assert res.exit_code == 0, res.output
    assert {r["response"] for r in store.resolve("selection").read().to_pylist()} == {"Paris"}


def test_read_only_store_is_one_line_naming_it(small_disk, reference):
    store = Store(small_disk.path / "store")
    assert _build(store.root).exit_code == 0
    small_disk.read_only()
    try:
        _one_clean_line(_build(store.root, "--seed", "7"), "cannot write", str(store.root), "Read-only file system")
        _one_clean_line(_build(small_disk.path / "new-store"), "cannot write", "Read-only file system")
        _one_clean_line(CliRunner().invoke(main, ["sql", "--catalog", "--store", str(store.root)]),
                        "catalog.duckdb", "Read-only file system")
        _one_clean_line(CliRunner().invoke(main, ["select", "if-train", "--store", str(store.root)]))
        # reading works as ever
        res = CliRunner().invoke(main, ["ls", "--store", str(store.root)])
        assert res.exit_code == 0 and reference.version in res.output
        res = CliRunner().invoke(main, ["sql", "SELECT count(*) AS n FROM if_train", "--format", "csv",
                                        "--store", str(store.root)])
        assert res.exit_code == 0 and res.output.splitlines()[1] == "28", res.output
    finally:
        small_disk.read_only(False)

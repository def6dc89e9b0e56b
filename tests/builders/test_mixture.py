"""mtl (up-sampled mixture) and reset-seed (N per training set), read from the store."""

from __future__ import annotations

from collections import Counter

import pytest

from builders.corpora import build_corpus, sample_sources
from resetkit.errors import ResetkitError
from resetkit.store import Store


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("store"))
    ift = build_corpus(store, "if-train", sample_sources("if-train"))
    cdt = build_corpus(store, "cd-train", sample_sources("cd-train"))
    return store, ift, cdt


def set_of(row):
    return "if" if row["objective"] == "instruction" else row["source"]


def test_mtl_upsamples_every_set_to_the_largest(trained):
    store, ift, cdt = trained
    v = build_corpus(store, "mtl", {})
    rows = v.read("train").to_pylist()
    sizes = Counter(set_of(r) for r in rows)
    largest = ift.num_rows()["train"]       # IF is the largest set in the samples
    assert set(sizes) == {"if", "nq", "ms_marco", "cnn_dailymail"}
    assert set(sizes.values()) == {largest}
    # whole copies first: every example of a small set appears floor(largest/n) or +1 times
    nq = [r["id"] for r in rows if r["source"] == "nq"]
    n = len(set(nq))
    assert n == sum(1 for r in cdt.read("train").to_pylist() if r["source"] == "nq")
    assert set(Counter(nq).values()) <= {largest // n, largest // n + 1}
    assert v.num_rows()["validation"] == ift.num_rows()["validation"] + cdt.num_rows()["validation"]
    assert [p["name"] for p in v.manifest["parents"]] == ["if-train", "cd-train"]
    assert v.manifest["template"] == "alpaca"


def test_mtl_is_seeded(trained):
    store, *_ = trained
    a = build_corpus(store, "mtl", {}, seed=0, name="m0")
    b = build_corpus(store, "mtl", {}, seed=0, name="m0b")
    c = build_corpus(store, "mtl", {}, seed=7, name="m7")
    ids = lambda v: v.read("train").column("id").to_pylist()  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c) and len(ids(a)) == len(ids(c))


def test_reset_seed_takes_min_n_available(trained):
    store, ift, cdt = trained
    v = build_corpus(store, "reset-seed", {}, per_source=3, seed=1)
    rows = v.read("train").to_pylist()
    sizes = Counter(set_of(r) for r in rows)
    assert sizes == {"if": 3, "nq": 3, "ms_marco": 3, "cnn_dailymail": 3}
    assert len({r["id"] for r in rows}) == 12    # without replacement
    big = build_corpus(store, "reset-seed", {}, name="rs-big")   # default 2,000 > available
    counts = big.manifest["set_rows"]
    assert counts["if"] == {"available": ift.num_rows()["train"], "written": ift.num_rows()["train"]}
    assert "fewer were available" in (big.path / "README.md").read_text()
    other = build_corpus(store, "reset-seed", {}, per_source=3, seed=2, name="rs2")
    assert other.read("train").column("id").to_pylist() != v.read("train").column("id").to_pylist()


def test_from_pins_versions(trained, tmp_path):
    store, ift, cdt = trained
    newer = build_corpus(store, "if-train", sample_sources("if-train"), seed=5)
    assert store.resolve("if-train").version == newer.version
    v = build_corpus(store, "reset-seed", {}, from_refs=[ift.ref, cdt.ref], per_source=2, name="pinned")
    assert {(p["name"], p["version"]) for p in v.manifest["parents"]} == {("if-train", ift.version),
                                                                         ("cd-train", cdt.version)}


def test_mixture_errors(trained, tmp_path):
    store, ift, cdt = trained
    empty = Store(tmp_path / "s")
    build_corpus(empty, "if-train", sample_sources("if-train"))
    with pytest.raises(ResetkitError, match="has no cd-train"):
        build_corpus(empty, "mtl", {})
    with pytest.raises(ResetkitError, match="--from takes"):
        build_corpus(store, "mtl", {}, from_refs=["if-eval"])
    with pytest.raises(ResetkitError, match="not --source"):
        build_corpus(store, "reset-seed", {"nq": "x"})


def test_mixture_refuses_mixed_templates(tmp_path):
    store = Store(tmp_path / "s")
    build_corpus(store, "if-train", sample_sources("if-train"))
    build_corpus(store, "cd-train", sample_sources("cd-train"), template="vicuna")
    with pytest.raises(ResetkitError, match="different templates"):
        build_corpus(store, "reset-seed", {})

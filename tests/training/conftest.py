"""Fixtures for the training tests (helpers in helpers.py)."""

from __future__ import annotations

import pytest

from .helpers import add_dataset, rows


@pytest.fixture(scope="module")
def train_store(tmp_path_factory):
    """Store with the datasets every shipped recipe names (tiny) plus `sel` and `no-response`."""
    from resetkit.store import Store

    store = Store(tmp_path_factory.mktemp("train-store"))
    for name in ("cd-train", "if-train", "mtl"):
        add_dataset(store, name, {"train": rows(2), "validation": rows(1)})
    for name in ("selection", "selection-s", "sel"):
        add_dataset(store, name, {"train": rows(16)})
    add_dataset(store, "no-response", {"train": [{"prompt": "p", "answer": "a"}] * 4})
    return store

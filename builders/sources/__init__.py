"""Upstream source adapters, one module each; ``SOURCES`` is the lazy registry.

Adding a source: write ``builders/sources/<name>.py`` with a ``Source`` subclass and a
module-level ``SOURCE`` instance, then add one line here.
"""

from __future__ import annotations

from resetkit.registry import Registry

NAMES = ["dolly", "oasst1", "sharegpt", "self_instruct", "alpaca", "vicuna", "koala",
         "nq", "ms_marco", "cnn_dailymail", "bioasq", "searchqa", "wikisum"]

SOURCES = Registry("source", {name: f"builders.sources.{name}:SOURCE" for name in NAMES})


def get(name: str):
    """The source adapter named ``name`` (did-you-mean on a typo)."""
    return SOURCES.get(name)

"""Lazy registries: ``"name": "module:attr"`` resolved on first use, with a did-you-mean error.

Adding a source, backend or judge touches its own module and one line of a registry.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from .errors import ResetkitError


def suggest(name: str, choices) -> str:
    """' Did you mean X?' for the closest choice, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


class UnknownNameError(ResetkitError):
    pass


class Registry:
    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind = kind
        self._entries = dict(entries)
        self._loaded: dict[str, Any] = {}

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def check(self, name: str) -> str:
        if name not in self._entries:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{suggest(name, self._entries)} "
                f"Known: {', '.join(sorted(self._entries))}"
            )
        return name

    def get(self, name: str) -> Any:
        self.check(name)
        if name not in self._loaded:
            module, _, attr = self._entries[name].partition(":")
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._loaded[name] = obj
        return self._loaded[name]

    def register(self, name: str, target: str) -> None:
        """Add ``name`` -> ``"module:attr"`` (resolved on first use, like the entries given at
        creation); a name already registered is an error (:meth:`unregister` it first)."""
        module, sep, attr = target.partition(":")
        if not (name and module and sep and attr):
            raise ResetkitError(f"{self.kind} {name!r}: expected 'module:attr', got {target!r}")
        if name in self._entries:
            raise ResetkitError(f"{self.kind} {name!r} is already registered ({self._entries[name]})")
        self._entries[name] = target

    def unregister(self, name: str) -> None:
        self.check(name)
        del self._entries[name]
        self._loaded.pop(name, None)

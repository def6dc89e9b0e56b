"""The LLM judge's reply cache: every paid reply, committed before its request counts as done.

    ResponseCache(path).get_many(keys) -> {key: reply};  .put(key, model, text, ...)
    CacheWriteError   the cache cannot be written: the run stops, no further request is sent
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from resetkit.errors import ResetkitError


class CacheWriteError(ResetkitError):
    """The reply cache cannot be written (disk full, read-only): the run stops, no further request."""


class ResponseCache:
    """sqlite: request key -> reply text, token counts, USD, when and how it was obtained.

    WAL journal, one commit per reply: a reply is in the database file before the request is
    counted as done, so a kill -9 loses no paid reply that was received (a power cut could
    drop the last few, ``synchronous=NORMAL``).  A write that fails (disk full) is a
    :class:`CacheWriteError`, and the transaction is rolled back (nothing half-written)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), timeout=60)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, "
                            "text TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, usd REAL, "
                            "via TEXT, created REAL)")
            self.db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise CacheWriteError(f"cannot open the LLM judge reply cache {path}: {exc}") from exc

    def get_many(self, keys) -> dict[str, dict]:
        out, keys = {}, list(keys)
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT key, text, prompt_tokens, completion_tokens, usd FROM responses WHERE key IN " \
                f"({','.join('?' * len(chunk))})"
            for k, text, pt, ct, usd in self.db.execute(q, chunk):
                out[k] = {"text": text, "prompt_tokens": pt, "completion_tokens": ct, "usd": usd}
        return out

    def put(self, key, model, text, prompt_tokens, completion_tokens, usd, via="api"):
        """Store one reply and commit it (durable before the caller counts the request done)."""
        try:
            with self.db:  # commit, or roll back on error
                self.db.execute("INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?,?)",
                                (key, model, text, prompt_tokens, completion_tokens, usd, via, time.time()))
        except sqlite3.Error as exc:
            raise CacheWriteError(f"cannot write the LLM judge reply cache {self.path}: {exc}") from exc

    def close(self):
        try:
            self.db.close()
        except sqlite3.Error:
            pass

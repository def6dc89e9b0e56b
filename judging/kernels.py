"""The batched kernels of the metric judges: whole pools at once.

    native()                        the C kernels of judging/_native.c, or None
    native_threads() -> int         threads for them (RESETKIT_NATIVE_THREADS, else the CPUs, at most 8)
    normalize_many(texts) -> list   ``[normalize(t) for t in texts]`` (judging.text.normalize)
    normalized_texts(items) -> list the items' texts normalised, once per run
    gc_paused()                     the cyclic GC paused around bulk scoring

The C extension (built by setup.py) normalises ASCII texts, computes coverage, EM and ROUGE-L;
every text it does not take (non-ASCII texts: their lowercase and classes of characters are
Unicode's) goes through the scalar reference in judging/text.py, as does everything where the
extension was not built or ``RESETKIT_NATIVE=0`` asks for the Python paths.  Nothing here
keeps state between calls: what the judges of one run share lives on the run's items
(judging.items.Items.shared).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from .items import column, shared
from .text import normalize

try:
    from . import _native as _NATIVE
except ImportError:  # built without a C compiler: the Python paths do the work
    _NATIVE = None


def native():
    """The C kernels (``judging._native``), or None where they were not built or where
    ``RESETKIT_NATIVE=0`` asks for the pure-Python paths."""
    if os.environ.get("RESETKIT_NATIVE", "1") == "0":
        return None
    return _NATIVE


def native_threads() -> int:
    """Threads for the C kernels: ``RESETKIT_NATIVE_THREADS``, else the CPUs this process
    may use (at most 8).  Small inputs run on one thread whatever this says."""
    env = os.environ.get("RESETKIT_NATIVE_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"RESETKIT_NATIVE_THREADS must be a positive integer, not {env!r}") from None
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(8, cpus)


def normalize_many(texts) -> list[str]:
    """``[normalize(t) for t in texts]`` for a whole pool: ASCII texts in the C kernel, the
    others (and all of them without it) through the scalar function, each distinct text once."""
    texts = texts if isinstance(texts, (list, tuple)) else list(texts)
    nat = native()
    if nat is not None:
        out = nat.normalize_ascii(texts, native_threads())  # None marks a non-ASCII text
        if None not in out:
            return out
        todo = [i for i, v in enumerate(out) if v is None]
    else:
        out, todo = [None] * len(texts), range(len(texts))
    seen: dict[str, str] = {}
    for i in todo:
        t = texts[i] or ""
        norm = seen.get(t)
        if norm is None:
            norm = seen[t] = normalize(t)
        out[i] = norm
    return out


def normalized_texts(items) -> list[str]:
    """The items' normalised texts, computed once per run (the span, ngram and em judges share them)."""
    return shared(items, "normalized_text", lambda: normalize_many(column(items, "text")))


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector around bulk scoring.

    Scoring a pool allocates millions of small containers (result dicts and tuples); in
    a process that already holds a large pool, each of the collector's full passes walks
    every live object, and those passes cost more than the scoring itself.  The scoring
    code creates no reference cycles, so nothing is left for the collector to find.
    """
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

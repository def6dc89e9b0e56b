"""Answer/context normalisation of the paper's appendix A.2 (DESIGN.md §7).

Order (the paper leaves it open; this one matters): detokenise first, so tokenised
sources ("state - of - the - art", "Alice 's") match untokenised answers, then
lowercase, strip punctuation, drop the articles a/an/the, and collapse whitespace.

    normalize(text) -> str          the normalised string ("" for None/empty)
    normalized_tokens(text) -> list the whitespace tokens of normalize(text)
    normalize_many(texts) -> list   the same for a whole pool at once (numpy kernel for
                                    ASCII texts; equal to normalize, pinned by tests)
    normalize_many_memo(texts)      normalize_many with a process-wide memo (the span,
                                    ngram and em judges share one normalisation)
    native()                        the C kernels of judging/_native.c, or None

The metric stage runs on C kernels (judging/_native.c, built by setup.py) where they were
built; the pure-Python/numpy paths here are their reference and the fallback
(``RESETKIT_NATIVE=0`` forces them).  Tests pin both to the scalar functions.

Punctuation is every character that is neither a word character nor whitespace,
plus "_": on ASCII that is ``string.punctuation`` (the SQuAD rule) and the control
characters (NUL, BEL, DEL...: removed whether or not the text has a non-ASCII character);
beyond ASCII it also removes curly quotes, dashes, symbols and lone surrogates, which
SQuAD would keep.  Every path (this scalar function, the numpy kernels, the C kernel)
gives the same string for every str, lone surrogates included.
"""

from __future__ import annotations

import os
import re
import string
from contextlib import contextmanager
from functools import lru_cache

# Plain str methods instead of regular expressions: this runs on every candidate and
# context of a pool, and Python's regex engine was 10x slower here.
# ASCII control characters are neither word characters nor whitespace (\x1c-\x1f are whitespace
# for str.split and re's \s): punctuation too, as _PUNCT removes them from non-ASCII texts
_ASCII_CONTROL = "".join(map(chr, [*range(0, 9), *range(14, 28), 127]))
_ASCII_PUNCT = str.maketrans("", "", string.punctuation + _ASCII_CONTROL)
_PUNCT = re.compile(r"[^\w\s]|_")  # beyond ASCII: every non-word, non-space character
_ARTICLES = frozenset(("a", "an", "the"))
_POSSESSIVE = re.compile(r" +('[sS])\b")
_SENTINEL_WORD = "qzxsentinelqzx"
_SENTINEL = f"\n{_SENTINEL_WORD}\n"  # survives every step of normalize_many unchanged


@lru_cache(maxsize=1)
def _load_native():
    try:
        from . import _native
    except ImportError:  # built without a C compiler: the Python paths do the work
        return None
    return _native


def native():
    """The C kernels (``judging._native``), or None where they were not built or where
    ``RESETKIT_NATIVE=0`` asks for the pure-Python paths."""
    if os.environ.get("RESETKIT_NATIVE", "1") == "0":
        return None
    return _load_native()


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


def detokenize(text: str) -> str:
    """Undo tokeniser spacing: " - " -> "-", " / " -> "/", " 's" -> "'s".

    Spaces and tabs around a hyphen/slash are removed (tabs become spaces first); a line
    break is kept, so a bullet "- item" at the start of a line stays its own word.
    """
    if "\t" in text:
        text = text.replace("\t", " ")
    for joiner in ("-", "/"):
        if joiner in text:
            while f" {joiner}" in text:
                text = text.replace(f" {joiner}", joiner)
            while f"{joiner} " in text:
                text = text.replace(f"{joiner} ", joiner)
    if " '" in text:
        # the common cases with str.replace, the regex only for what is left
        for follow in (" ", "\n", ".", ","):
            for s in ("s", "S"):
                while f" '{s}{follow}" in text:
                    text = text.replace(f" '{s}{follow}", f"'{s}{follow}")
        if " '" in text:
            text = _POSSESSIVE.sub(r"\1", text)
    return text


def _normalize(text: str) -> str:
    text = detokenize(text).lower()
    text = text.translate(_ASCII_PUNCT) if text.isascii() else _PUNCT.sub("", text)
    # after punctuation removal, \b boundaries are whitespace boundaries: dropping the
    # articles token-wise and re-joining also collapses the whitespace
    return " ".join(t for t in text.split() if t not in _ARTICLES)


@lru_cache(maxsize=65536)
def _normalize_cached(text: str) -> str:
    return _normalize(text)


def normalize(text: str | None) -> str:
    """A.2-normalised ``text``; contexts repeat across candidates, so results are cached."""
    if not text:
        return ""
    if len(text) > 20000:  # long contexts: don't pin them in the cache
        return _normalize(text)
    return _normalize_cached(text)


def normalized_tokens(text: str | None) -> list[str]:
    norm = normalize(text)
    return norm.split(" ") if norm else []


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


_MEMO: dict[str, str] = {}
_MEMO_CHARS = [0]
_MEMO_MAX_CHARS = 400_000_000  # ~0.4-1.6 GB of text: cleared past that


def normalize_many_memo(texts) -> list[str]:
    """normalize_many with a process-wide memo, so the span, ngram and em judges of one
    run normalise each answer and context once (cleared past 400M characters)."""
    if native() is not None:  # the C kernel normalises faster than the memo looks texts up
        return normalize_many(texts)
    texts = [t or "" for t in texts]
    memo = _MEMO
    todo = [t for t in dict.fromkeys(texts) if t not in memo]
    if todo:
        size = sum(map(len, todo))
        if _MEMO_CHARS[0] + size > _MEMO_MAX_CHARS:
            memo.clear()
            _MEMO_CHARS[0] = 0
        if size > _MEMO_MAX_CHARS:  # more than the memo may hold: no memo for this call
            return normalize_many(texts)
        memo.update(zip(todo, normalize_many(todo)))
        _MEMO_CHARS[0] += size
    return list(map(memo.__getitem__, texts))


def normalize_many(texts) -> list[str]:
    """``[normalize(t) for t in texts]`` for a whole pool at once.

    ASCII texts (almost all of an English pool) go through the C kernel
    (``native().normalize_ascii``) where it was built, else ``_normalize_ascii``, a
    vectorised byte kernel (numpy + ``bytes.translate``) that is ~6x cheaper than the
    str-method path ``_normalize_joined``; the others through ``_normalize_unicode``, the
    same kernel over UTF-32 code points.  All are pinned to ``_normalize`` by
    tests/judging/test_text.py on thousands of generated edge cases.
    """
    nat = native()
    if nat is not None:  # the C kernel for ASCII texts; None marks the others
        texts = tuple(texts)
        for seen, out in _RECENT:  # the judges of one run pass the same answers and contexts
            if seen == texts:
                return list(out)
        out = nat.normalize_ascii(texts, native_threads())
        if None in out:
            other = [i for i, v in enumerate(out) if v is None]
            for i, norm in zip(other, _normalize_many_py([texts[i] for i in other])):
                out[i] = norm
        _RECENT.insert(0, (texts, out))
        del _RECENT[2:]
        return list(out)
    return _normalize_many_py(texts)


_RECENT: list = []  # (texts, normalised) of the last two native calls (answers, contexts)


def clear_caches() -> None:
    """Drop what the metric judges keep between calls of one run (the memo, the last
    normalisation and the last coverage), so a finished run holds no pool texts."""
    from . import coverage

    _MEMO.clear()
    _MEMO_CHARS[0] = 0
    _RECENT.clear()
    coverage._LAST_COVERAGE[0] = None


def _normalize_many_py(texts) -> list[str]:
    """normalize_many on the numpy kernels (the reference and fallback of the C kernel)."""
    texts = [t or "" for t in texts]
    if not texts:
        return []
    out = [""] * len(texts)
    ascii_idx = [i for i, t in enumerate(texts) if t.isascii()]
    other_idx = [i for i, t in enumerate(texts) if not t.isascii()] if len(ascii_idx) < len(texts) else []
    for idx, fn in ((ascii_idx, _normalize_ascii), (other_idx, _normalize_unicode)):
        lo = 0
        while lo < len(idx):  # chunks of ~2M characters bound the kernel's memory
            hi, size = lo, 0
            while hi < len(idx) and (size < _CHUNK_CHARS or hi == lo):
                size += len(texts[idx[hi]]) + 3
                hi += 1
            part = idx[lo:hi]
            for i, norm in zip(part, fn([texts[i] for i in part])):
                out[i] = norm
            lo = hi
    return out


_CHUNK_CHARS = 2_000_000


def _normalize_joined(texts: list[str]) -> list[str]:
    """Every step runs once over all texts joined by a sentinel line, with str methods
    (the detokeniser never crosses a line break, punctuation and case are per character,
    whitespace collapse and article removal are token-wise).  Falls back to per-text
    work if a text holds the sentinel."""
    if not texts:
        return []
    joined = detokenize(_SENTINEL.join(texts)).lower()
    joined = joined.translate(_ASCII_PUNCT) if joined.isascii() else _PUNCT.sub("", joined)
    arts = _ARTICLES
    joined = " ".join([t for t in joined.split() if t not in arts])
    pieces = joined.split(_SENTINEL_WORD)
    if len(pieces) != len(texts):
        return [_normalize(t) for t in texts]
    return [p.strip() for p in pieces]


# -- the ASCII kernel ------------------------------------------------------------------------
# Texts are joined by "\n\xff\n" and encoded as Latin-1, so the separator byte 0xFF can
# occur in no ASCII text; the line breaks around it keep the detokeniser (spaces and tabs
# only) and the possessive rule ("'s" then a non-word character or the end) from seeing
# across texts, and make the separator a token of its own.
_ASCII_WS = b"\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f "  # what str.split() splits on, within ASCII
_LOWER_WS = bytes(32 if i in _ASCII_WS else (i + 32 if 65 <= i <= 90 else i) for i in range(256))
_ASCII_PUNCT_BYTES = (string.punctuation + _ASCII_CONTROL).encode()


def _ascii_tables():
    import numpy as np

    word = np.array([i < 128 and (chr(i).isalnum() or i == 95) for i in range(256)])  # re's \w
    return np, word


def _space_runs(a, pos, step: int) -> list:
    """Positions of the run of spaces/tabs next to each position in ``pos`` (walking by
    ``step``: -1 = the run before, +1 = the run after)."""
    runs = []
    cur = pos + step
    n = a.size
    while cur.size:
        cur = cur[(cur >= 0) & (cur < n)]
        c = a[cur]
        cur = cur[(c == 32) | (c == 9)]
        if cur.size:
            runs.append(cur)
        cur = cur + step
    return runs


def _detok_positions(a, nonword_after):
    """Positions of the space/tab runs the detokeniser removes, in code array ``a`` (uint8 or
    uint32): runs next to "-" and "/", and runs before "'s" when ``nonword_after(codes)`` says the
    character after the "s" is not a word character.  Shared by the ASCII and Unicode kernels."""
    import numpy as np

    n = a.size
    drop = []
    joiners = np.flatnonzero((a == 45) | (a == 47))
    if joiners.size:
        drop += _space_runs(a, joiners, -1) + _space_runs(a, joiners, 1)
    q = np.flatnonzero(a == 39)
    q = q[(q > 0) & (q + 1 < n)]
    if q.size:
        q = q[((a[q + 1] == 115) | (a[q + 1] == 83)) & ((a[q - 1] == 32) | (a[q - 1] == 9))]
        if q.size:
            nxt = np.where(q + 2 < n, a[np.minimum(q + 2, n - 1)], 10)
            drop += _space_runs(a, q[nonword_after(nxt)], -1)
    return np.concatenate(drop) if drop else None


def _join_words(c, sep_code: int, decode: str, sep: str) -> list[str]:
    """Step 3 of both kernels: ``c`` holds the lowercased codes with whitespace as 32 and
    punctuation removed, texts separated by ``sep_code``; drop the articles a/an/the and join the
    remaining tokens of each text by single spaces (a mask over the codes, then one compress)."""
    import numpy as np

    m = c.size
    w = np.zeros(m + 2, np.int8)
    np.not_equal(c, 32, out=w[1:-1], casting="unsafe")
    dw = np.diff(w)
    ts = np.flatnonzero(dw == 1)
    te = np.flatnonzero(dw == -1)
    inside = w[1:-1].view(bool).copy()  # the characters of tokens (separators included)
    length = te - ts
    short = np.flatnonzero(length <= 3)
    s3, l3 = ts[short], length[short]
    cp = np.concatenate([c, np.full(3, 32, c.dtype)])
    c0, c1, c2 = cp[s3], cp[s3 + 1], cp[s3 + 2]
    art = (((c0 == 97) & ((l3 == 1) | ((l3 == 2) & (c1 == 110))))
           | ((l3 == 3) & (c0 == 116) & (c1 == 104) & (c2 == 101)))
    if art.any():
        at, al = s3[art], l3[art]
        for k in range(3):
            inside[at[al > k] + k] = False
        keep = np.ones(ts.size, bool)
        keep[short[art]] = False
        ts, te = ts[keep], te[keep]
    # one space after each word that is followed by a word of the same text
    word_tok = c[ts] != sep_code
    joined = np.flatnonzero(word_tok[:-1] & word_tok[1:])
    inside[te[joined]] = True
    return c[inside].tobytes().decode(decode).split(sep)


def _normalize_ascii(texts: list[str]) -> list[str]:
    """A.2 normalisation of ASCII-only texts, as numpy byte operations over all of them:

    1. detokenise: the space/tab runs next to "-" and "/", and those before "'s" + a
       non-word character, are marked "!" (then deleted with the punctuation);
    2. ``bytes.translate``: lowercase, every str.split() whitespace -> " ", punctuation out;
    3. tokens = runs of non-spaces; the articles a/an/the are dropped and the rest joined
       by single spaces (a mask over the bytes, then one compress).
    """
    np, word = _ascii_tables()
    buf = bytearray("\n\xff\n".join(texts).encode("latin-1"))
    a = np.frombuffer(buf, np.uint8)
    drop = _detok_positions(a, lambda codes: ~word[codes])
    if drop is not None:
        a[drop] = 33  # "!" goes with the punctuation
    b = np.frombuffer(buf.translate(_LOWER_WS, _ASCII_PUNCT_BYTES), np.uint8)
    out = _join_words(b, 255, "latin-1", "\xff")
    if len(out) != len(texts):  # cannot happen (0xFF is not ASCII); never return misaligned
        return _normalize_joined(texts)
    return out


_UNICODE_SEP = "\uffff"  # a Unicode noncharacter; texts holding it take the str path


def _normalize_unicode(texts: list[str]) -> list[str]:
    """``_normalize_ascii`` over UTF-32 code points, for texts with non-ASCII characters.

    The detokeniser's characters are all ASCII, so its positions are found as in the
    ASCII kernel (a non-ASCII character after "'s" is looked up with str.isalnum, as re's
    \\w does).  Lowercasing may change lengths ("İ" -> "i̇"), so it runs as ``str.lower``
    on the detokenised text.  Punctuation (not alnum and not space, or "_") and
    whitespace (str.isspace) are classified once per distinct non-ASCII code point.
    """
    import numpy as np

    kelvin = [i for i, t in enumerate(texts) if "\u212a" in t]
    if kelvin:  # the Kelvin sign lowercases to ASCII "k", so the scalar function takes its ASCII
        # path on such a text: those texts one by one, through it
        rest = [i for i, t in enumerate(texts) if "\u212a" not in t]
        out = [""] * len(texts)
        for i, norm in zip(rest, _normalize_unicode([texts[i] for i in rest])):
            out[i] = norm
        for i in kelvin:
            out[i] = _normalize(texts[i])
        return out
    sep = _UNICODE_SEP
    joined = f"\n{sep}\n".join(texts)
    if joined.count(sep) != len(texts) - 1:
        return _normalize_joined(texts)
    # lone surrogates pass through UTF-32 as their code points (then go as punctuation)
    a = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
    drop = _detok_positions(a, lambda codes: np.array(
        [not (chr(c).isalnum() or c == 95) for c in codes.tolist()], bool))
    if drop is not None:
        keep = np.ones(a.size, bool)
        keep[drop] = False
        a = a[keep]
    low = a.tobytes().decode("utf-32-le", "surrogatepass").lower()
    b = np.frombuffer(low.encode("utf-32-le", "surrogatepass"), np.uint32)
    # classes: 0 word, 1 whitespace, 2 punctuation (deleted)
    table = np.array([1 if chr(i).isspace() else 0 if chr(i).isalnum() else 2 for i in range(128)], np.int8)
    cls = table[np.minimum(b, 127)]
    hi = np.flatnonzero(b >= 128)
    if hi.size:
        codes, inv = np.unique(b[hi], return_inverse=True)
        per = np.array([0 if c == 0xFFFF else 1 if chr(c).isspace() else 0 if chr(c).isalnum() else 2
                        for c in codes.tolist()], np.int8)
        cls[hi] = per[inv]
    c = np.where(cls == 1, np.uint32(32), b)[cls != 2]
    out = _join_words(c, 0xFFFF, "utf-32-le", sep)
    if len(out) != len(texts):
        return _normalize_joined(texts)
    return out

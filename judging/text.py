"""Answer/context normalisation of the paper's appendix A.2 (DESIGN.md §7).

Order (the paper leaves it open; this one matters): detokenise first, so tokenised
sources ("state - of - the - art", "Alice 's") match untokenised answers, then
lowercase, strip punctuation, drop the articles a/an/the, and collapse whitespace.

    normalize(text) -> str          the normalised string ("" for None/empty)
    normalized_tokens(text) -> list the whitespace tokens of normalize(text)

Punctuation is every character that is neither a word character nor whitespace,
plus "_": on ASCII that is exactly ``string.punctuation`` (the SQuAD rule); beyond
ASCII it also removes curly quotes, dashes and symbols, which SQuAD would keep.
"""

from __future__ import annotations

import re
from functools import lru_cache

# spaces and tabs only: a hyphen that starts a line (a bullet) keeps its line break
_SPACED_JOINERS = re.compile(r"[ \t]*([-/])[ \t]*")
_SPACED_POSSESSIVE = re.compile(r"[ \t]+('s)\b", re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s]|_")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_SPACES = re.compile(r"\s+")


def detokenize(text: str) -> str:
    """Undo tokeniser spacing: " - " -> "-", " / " -> "/", " 's" -> "'s"."""
    text = _SPACED_JOINERS.sub(r"\1", text)
    return _SPACED_POSSESSIVE.sub(r"\1", text)


def _normalize(text: str) -> str:
    text = detokenize(text).lower()
    text = _PUNCT.sub("", text)
    text = _ARTICLES.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


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

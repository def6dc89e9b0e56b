"""Answer/context normalisation of the paper's appendix A.2 (DESIGN.md §7): the scalar reference.

Order (the paper leaves it open; this one matters): detokenise first, so tokenised
sources ("state - of - the - art", "Alice 's") match untokenised answers, then
lowercase, strip punctuation, drop the articles a/an/the, and collapse whitespace.

    normalize(text) -> str          the normalised string ("" for None/empty): the definition
    normalized_tokens(text) -> list the whitespace tokens of normalize(text)
    detokenize(text) -> str         the first step alone

This module is the rule, one readable function per step.  The metric judges normalise whole
pools through judging.kernels.normalize_many (the C kernel of judging/_native.c for ASCII
texts, this function for the others); tests/judging/test_text.py and test_native.py keep the
two equal on random and edge-case texts.

Punctuation is every character that is neither a word character nor whitespace,
plus "_": on ASCII that is ``string.punctuation`` (the SQuAD rule) and the control
characters (NUL, BEL, DEL...: removed whether or not the text has a non-ASCII character);
beyond ASCII it also removes curly quotes, dashes, symbols and lone surrogates, which
SQuAD would keep.
"""

from __future__ import annotations

import re
import string

# Plain str methods instead of regular expressions where they do the same: Python's regex
# engine was 10x slower here.
# ASCII control characters are neither word characters nor whitespace (\x1c-\x1f are whitespace
# for str.split and re's \s): punctuation too, as _PUNCT removes them from non-ASCII texts
_ASCII_CONTROL = "".join(map(chr, [*range(0, 9), *range(14, 28), 127]))
_ASCII_PUNCT = str.maketrans("", "", string.punctuation + _ASCII_CONTROL)
_PUNCT = re.compile(r"[^\w\s]|_")  # beyond ASCII: every non-word, non-space character
_ARTICLES = frozenset(("a", "an", "the"))
_POSSESSIVE = re.compile(r" +('[sS])\b")


def detokenize(text: str) -> str:
    """Undo tokeniser spacing: " - " -> "-", " / " -> "/", " 's" -> "'s".

    Spaces and tabs around a hyphen/slash are removed (tabs become spaces first); a line
    break is kept, so a bullet "- item" at the start of a line stays its own word.
    """
    text = text.replace("\t", " ")
    for joiner in ("-", "/"):
        while f" {joiner}" in text:
            text = text.replace(f" {joiner}", joiner)
        while f"{joiner} " in text:
            text = text.replace(f"{joiner} ", joiner)
    if " '" in text:  # " 's" then a non-word character (or the end)
        text = _POSSESSIVE.sub(r"\1", text)
    return text


def normalize(text: str | None) -> str:
    """A.2-normalised ``text``: detokenise, lowercase, drop punctuation, drop the articles
    a/an/the, collapse whitespace into single spaces."""
    if not text:
        return ""
    text = detokenize(text).lower()
    text = text.translate(_ASCII_PUNCT) if text.isascii() else _PUNCT.sub("", text)
    # after punctuation removal, \b boundaries are whitespace boundaries: dropping the
    # articles token-wise and re-joining also collapses the whitespace
    return " ".join(t for t in text.split() if t not in _ARTICLES)


def normalized_tokens(text: str | None) -> list[str]:
    norm = normalize(text)
    return norm.split(" ") if norm else []

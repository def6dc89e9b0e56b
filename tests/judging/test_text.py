import pytest

from judging.text import detokenize, normalize, normalized_tokens
from tests.helpers.texts import random_texts as _random_texts


@pytest.mark.parametrize("raw, expected", [
    ("The Cat sat.", "cat sat"),
    ("state - of - the - art", "stateoftheart"),      # detokenised first: same as "state-of-the-art"
    ("state-of-the-art", "stateoftheart"),
    ("Alice 's book", "alices book"),                 # " 's" -> "'s" before punctuation goes
    ("Alice's book", "alices book"),
    ("and / or", "andor"),
    ("An apple, a pear and THE plum!", "apple pear and plum"),
    ("theatre another anthem", "theatre another anthem"),  # articles only as whole words
    ("  many\t\nspaces  ", "many spaces"),
    ("“curly” — dash…", "curly dash"),
    ("foo\n- bar", "foo bar"),                       # a bullet keeps its line break
    ("", ""),
    ("?!.", ""),
])
def test_normalize_cases(raw, expected):
    assert normalize(raw) == expected


def test_detokenize_only_joins_spaces_and_tabs():
    assert detokenize("New York - based , 1990 / 91 ,  Bob 's") == "New York-based , 1990/91 ,  Bob's"


def test_without_detokenising_the_match_would_be_lost():
    # the reason for the order: punctuation stripping alone turns " - " into a word gap
    tokenised = "a state - of - the - art model"
    assert normalize(tokenised) == normalize("a state-of-the-art model") == "stateoftheart model"


def test_none_and_tokens():
    assert normalize(None) == ""
    assert normalized_tokens(None) == []
    assert normalized_tokens("The big, red dog") == ["big", "red", "dog"]


# -- the batched kernel (judging.kernels.normalize_many: C for ASCII texts) against the scalar reference --
_EVERY_PATH = ("scalar", "kernel", "python")


def _on_path(path, texts, monkeypatch=None):
    from judging.kernels import normalize_many

    if path == "scalar":
        return [normalize(t) for t in texts]
    if path == "python":  # no C kernel: the scalar function on each distinct text
        monkeypatch.setenv("RESETKIT_NATIVE", "0")
    try:
        return normalize_many(texts)
    finally:
        monkeypatch and monkeypatch.delenv("RESETKIT_NATIVE", raising=False)


@pytest.mark.parametrize("path", ["kernel", "python"])
@pytest.mark.parametrize("ascii_only", [True, False])
def test_bulk_normalize_equals_scalar_on_edge_cases(path, ascii_only, monkeypatch):
    texts = _random_texts(4000, seed=11 + ascii_only, ascii_only=ascii_only)
    texts += ["", None, "the", " 's", "'s", "x 's", "x 's-", "a -'s", "- x", "x -", "\t-\t", "x 's\n'S",
              "x  's", "x \t's.", "a 's's", "b 'sé", "c 's\u00e9x", "K\x7f é", "\u212a\x7f", "İ the", "ΟΔΟΣ x"]
    expected = [normalize(t) for t in texts]
    assert _on_path(path, texts, monkeypatch) == expected
    assert len(set(expected)) > 1000  # the texts did differ


def test_possessive_and_joiners():
    """The detokeniser's rules, one by one (the C kernel implements the same: test_native.py)."""
    assert normalize("Bob  's car") == normalize("Bob's car") == "bobs car"
    assert normalize("Bob 'sy") == "bob sy"        # not a possessive: "'s" followed by a word character
    assert normalize("Bob 'sé") == "bob sé"        # ... a non-ASCII one too
    assert normalize("x \t/\t y") == "xy"
    assert normalize("x\n- y") == "x y"           # a line break stays


@pytest.mark.parametrize("path", _EVERY_PATH)
def test_control_characters_go_whether_or_not_the_text_is_ascii(path, monkeypatch):
    """NUL, BEL, ESC, DEL... are punctuation on every path: the same tokens with or without a
    non-ASCII character elsewhere in the text (they stayed in all-ASCII texts before)."""
    cases = ["ab\x07c d\x00e \x7f", "\x01the\x1bcat", "x\x08 - y", "a\x0eb\x1ac", "\x7f"]
    accented = [c + " é" for c in cases]
    for plain, got, with_accent in zip(cases, _on_path(path, cases, monkeypatch),
                                       _on_path(path, accented, monkeypatch)):
        assert with_accent == (got + " é").strip(), plain
    assert _on_path(path, cases, monkeypatch) == ["abc de", "thecat", "xy", "abc", ""]
    # \x1c-\x1f are whitespace (str.split, re's \s): they separate, they are not removed
    assert _on_path(path, ["x\x1cb", "x\x1fb é"], monkeypatch) == ["x b", "x b é"]


@pytest.mark.parametrize("path", _EVERY_PATH)
def test_lone_surrogates_are_punctuation_on_every_path(path, monkeypatch):
    cases = ["a\ud800b the Cat", "x\udfff", "\ud800 \udbff\udc00 é", "\udc80", "The \ud83d cat"]
    assert _on_path(path, cases, monkeypatch) == ["ab cat", "x", "é", "", "cat"]

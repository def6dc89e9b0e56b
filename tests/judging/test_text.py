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


def test_normalize_many_equals_normalize_on_random_text():
    import random

    from judging.text import _normalize, normalize_many

    rng = random.Random(1)
    pieces = ["the", "An", "a", "cat", "-", "/", "'s", "'S", " 's", " - ", "a-b", "/x", "x/", "“x”", "ÄÖ",
              "_", "qzx", "1,000", "e.g.", "(the)", "A.", "-the", "the-"]
    seps = [" ", "", "  ", "\t", "\n", " \n "]
    texts = ["".join(rng.choice(pieces) + rng.choice(seps) for _ in range(rng.randint(0, 30)))
             for _ in range(5000)]
    ascii_only = [t for t in texts if t.isascii()]
    for batch in (texts, ascii_only, ["", "", "the"], ["qzxsentinelqzx a b"]):
        assert normalize_many(batch) == [_normalize(t) for t in batch]


# -- the bulk path (numpy kernel for ASCII texts, joined str path for the others) -----------
@pytest.mark.parametrize("ascii_only", [True, False])
def test_bulk_normalize_equals_scalar_on_edge_cases(ascii_only):
    from judging.text import _normalize, normalize_many

    texts = _random_texts(4000, seed=11 + ascii_only, ascii_only=ascii_only)
    texts += ["", None, "the", " 's", "'s", "x 's", "x 's-", "a -'s", "- x", "x -", "\t-\t", "x 's\n'S"]
    assert normalize_many(texts) == [_normalize(t or "") for t in texts]


def test_ascii_kernel_alone_and_across_chunks(monkeypatch):
    import judging.text as text

    texts = _random_texts(3000, seed=5, ascii_only=True)
    expected = [text._normalize(t) for t in texts]
    assert text._normalize_ascii(texts) == expected
    monkeypatch.setattr(text, "_CHUNK_CHARS", 500)  # many chunks, one text per chunk at worst
    assert text.normalize_many(texts) == expected


def test_memo_gives_the_same_as_normalize():
    from judging.text import normalize, normalize_many_memo

    texts = _random_texts(500, seed=9) + [None, ""]
    assert normalize_many_memo(texts) == [normalize(t) for t in texts]
    assert normalize_many_memo(texts[::-1]) == [normalize(t) for t in texts[::-1]]  # memo hits


def test_unicode_kernel_edge_cases():
    from judging.text import _normalize, _normalize_unicode, normalize_many

    cases = ["K\x7f é", "\u212a\x7f", "é\x7f", "ΟΔΟΣ", "ΟΔΟΣ x", "x\uffffy é", "", "é", "İ the",
             "a é the", "é 's", "x 'sé", "x 's é", "\x85the\u2028a\xa0an é", "ß-/ 'S\u00a0", "e\u0301 'S"]
    expected = [_normalize(c) for c in cases]
    assert normalize_many(cases) == expected
    assert _normalize_unicode([c for c in cases if c.isascii() or "\uffff" not in c]) == \
        [e for c, e in zip(cases, expected) if c.isascii() or "\uffff" not in c]


# -- issue 14 item 12: one result on every path ----------------------------------------------
_EVERY_PATH = ("scalar", "normalize_many", "numpy")


def _on_path(path, texts):
    import judging.text as text

    if path == "scalar":
        return [text._normalize(t) for t in texts]
    if path == "normalize_many":  # the C kernel where it was built
        return text.normalize_many(texts)
    return text._normalize_many_py(texts)  # the numpy kernels (ASCII and UTF-32)


@pytest.mark.parametrize("path", _EVERY_PATH)
def test_control_characters_go_whether_or_not_the_text_is_ascii(path):
    """NUL, BEL, ESC, DEL... are punctuation on every path: the same tokens with or without a
    non-ASCII character elsewhere in the text (they stayed in all-ASCII texts before)."""
    cases = ["ab\x07c d\x00e \x7f", "\x01the\x1bcat", "x\x08 - y", "a\x0eb\x1ac", "\x7f"]
    for plain, got, with_accent in zip(cases, _on_path(path, cases), _on_path(path, [c + " é" for c in cases])):
        assert with_accent == (got + " é").strip(), plain
    assert _on_path(path, cases) == ["abc de", "thecat", "xy", "abc", ""]
    # \x1c-\x1f are whitespace (str.split, re's \s): they separate, they are not removed
    assert _on_path(path, ["x\x1cb", "x\x1fb é"]) == ["x b", "x b é"]


@pytest.mark.parametrize("path", _EVERY_PATH)
def test_lone_surrogates_are_punctuation_on_every_path(path):
    cases = ["a\ud800b the Cat", "x\udfff", "\ud800 \udbff\udc00 é", "\udc80", "The \ud83d cat"]
    assert _on_path(path, cases) == ["ab cat", "x", "é", "", "cat"]

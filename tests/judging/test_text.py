import pytest

from judging.text import detokenize, normalize, normalized_tokens


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

import pytest

from judging.coverage import ngram_coverage, span_coverage
from tests.helpers.texts import coverage_pairs as _pairs

CTX = "The category of the cat: a small, domesticated carnivorous mammal (Felis catus)."


@pytest.mark.parametrize("answer, expected", [
    ("cat", 1.0),
    ("the cat", 1.0),                      # article dropped on both sides
    ("Small, domesticated", 1.0),
    ("categ", 0.0),                        # token boundary: not a prefix of "category"
    ("at", 0.0),                           # not inside "cat"
    ("cat small", 1.0),                    # ": a" is dropped, so these two become adjacent
    ("cat mammal", 0.0),                   # both tokens present, not contiguous
    ("felis catus", 1.0),
    ("mammal felis", 1.0),                 # "(" stripped: contiguous after normalisation
    ("dog", 0.0),
    ("", 0.0),
    ("  ...  ", 0.0),
])
def test_span_coverage(answer, expected):
    assert span_coverage(answer, CTX) == expected


def test_span_coverage_detokenised_context():
    assert span_coverage("state-of-the-art", "a state - of - the - art model") == 1.0
    assert span_coverage("Bob's car", "this is Bob 's car") == 1.0


def test_unigram_and_bigram_coverage():
    ctx = "the quick brown fox jumps over the lazy dog"
    assert ngram_coverage("quick brown cat", ctx, 1) == pytest.approx(2 / 3)
    assert ngram_coverage("quick brown cat", ctx, 2) == pytest.approx(1 / 2)
    assert ngram_coverage("brown brown", ctx, 1) == 1.0          # repeats count each time
    assert ngram_coverage("fox", ctx, 2) == 1.0                  # shorter than n: whole run
    assert ngram_coverage("cat", ctx, 2) == 0.0
    assert ngram_coverage("", ctx, 1) == 0.0
    assert ngram_coverage("fox", "", 1) == 0.0


def test_bulk_coverage_equals_scalar():
    from judging.coverage import coverage_many

    pairs = _pairs(3000, seed=3)
    answers, contexts = [a for a, _ in pairs], [c for _, c in pairs]
    span, uni, bi = coverage_many(answers, contexts)
    assert span == [span_coverage(a, c) for a, c in pairs]
    assert uni == [ngram_coverage(a, c, 1) for a, c in pairs]
    assert bi == [ngram_coverage(a, c, 2) for a, c in pairs]
    assert 0 < sum(bi) < len(bi) and len(set(bi)) > 10  # partial overlaps were exercised


def test_bigram_coverage_counts_repeats_and_boundaries():
    from judging.coverage import coverage_many

    ctx = "x y z . category cat"
    answers = ["x y x y", "y x", "cat category", "category cat", "x", "q", "ca tegory"]
    _, _, bi = coverage_many(answers, [ctx] * len(answers))
    assert bi == [ngram_coverage(a, ctx, 2) for a in answers] == [2 / 3, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]

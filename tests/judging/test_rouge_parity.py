"""ROUGE-L F1: identical floats to Google's rouge_score (the reference) on generated pairs."""

import random

import pytest

from judging.rouge import rouge_l_f1, rouge_l_f1_batch

WORDS = ("the a cat cats dog running runs ran quickly quick brown fox jumps jumped over lazy "
         "Paris France capital city 1990 2,000 U.S. e-mail don't it's ünïcode naïve café , . ! ? - "
         "(parenthesis) [bracket] $5 50% well-known").split()


def _pairs(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ref = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.5:  # a noisy copy of the reference: realistic overlaps
            cand = " ".join(w for w in ref.split() if rng.random() > 0.3) + " " + rng.choice(WORDS)
        else:
            cand = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30)))
        out.append((cand, ref))
    return out


@pytest.mark.parametrize("stem", [False, True])
def test_identical_floats_to_rouge_score(stem):
    from rouge_score import rouge_scorer

    ref_scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)
    pairs = _pairs(3000, seed=int(stem))
    ours = rouge_l_f1_batch([(c, [r]) for c, r in pairs], stem=stem)
    expected = [ref_scorer.score(r, c)["rougeL"].fmeasure if c else 0.0 for c, r in pairs]
    mismatches = [(p, a, b) for p, a, b in zip(pairs, ours, expected) if a != b]
    assert not mismatches, mismatches[:3]
    assert len({round(x, 6) for x in ours}) > 100  # the test exercises many distinct values


def test_python_fallback_gives_the_same_numbers():
    pairs = _pairs(300, seed=7)
    items = [(c, [r]) for c, r in pairs]
    assert rouge_l_f1_batch(items, backend="py") == rouge_l_f1_batch(items, backend="rs")


def test_max_over_references_and_edge_cases():
    from rouge_score import rouge_scorer

    sc = rouge_scorer.RougeScorer(["rougeL"])
    refs = ["the cat sat on the mat", "a dog ran in the park", "cats sit"]
    cand = "the dog ran in a park"
    assert rouge_l_f1(cand, refs) == max(sc.score(r, cand)["rougeL"].fmeasure for r in refs)
    assert rouge_l_f1("", refs) == 0.0
    assert rouge_l_f1("anything", []) is None
    assert rouge_l_f1("the cat", ["the cat"]) == 1.0
    assert rouge_l_f1("Running", ["runs"], stem=True) == 1.0
    assert rouge_l_f1("Running", ["runs"], stem=False) == 0.0


def test_batch_with_repeated_pairs_and_several_references():
    from rouge_score import rouge_scorer

    sc = rouge_scorer.RougeScorer(["rougeL"])
    pairs = _pairs(400, seed=3)
    rng = random.Random(5)
    refs = [r for _, r in pairs]
    items = []
    for cand, _ in pairs:  # each text several times (a pool's duplicates), 0-3 references
        group = rng.sample(refs, rng.randint(0, 3)) + [None] * rng.randint(0, 1)
        items += [(cand, group)] * rng.randint(1, 3)
    expected = []
    for cand, group in items:
        real = [r for r in group if r is not None]
        expected.append(None if not real else
                        0.0 if not cand else max(sc.score(r, cand)["rougeL"].fmeasure for r in real))
    assert rouge_l_f1_batch(items) == expected
    assert rouge_l_f1_batch(items, backend="py") == expected


@pytest.mark.parametrize("backend", ["auto", "c", "rs", "py"])
def test_lone_surrogates_and_control_characters_score_the_same_on_every_backend(backend):
    """The C kernel raised UnicodeEncodeError on lone surrogates (issue 14 item 12); rouge_score
    tokenises them, like every non-alphanumeric character, as separators."""
    from rouge_score import rouge_scorer

    from judging.rouge import backend_name

    try:
        backend_name(backend)
    except ImportError:
        pytest.skip(f"the {backend} backend is not available here")
    sc = rouge_scorer.RougeScorer(["rougeL"])
    items = [("the cat\ud800sat", ["the cat sat"]), ("\udfff", ["x"]), ("a\x07b é\ud83d", ["a b", "\ud800b"]),
             ("x\udbff\udc00y", ["x y z"])]
    expected = [max(sc.score(r, a)["rougeL"].fmeasure for r in refs) for a, refs in items]
    assert rouge_l_f1_batch(items, backend=backend) == expected
    assert expected[0] == 1.0

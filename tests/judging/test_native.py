"""The C kernels of judging/_native.c against their Python references.

The bulk-vs-scalar tests (test_text, test_coverage, test_em, test_rouge_parity) run on the
C kernels by default; here the same inputs also go through the pure-Python paths
(RESETKIT_NATIVE=0), through several threads, through inputs large enough to be split
between threads, through texts long enough for multi-word LCS bit vectors, and through
bad input.
"""

import random
import shutil

import pytest

import judging.kernels as kernels
from judging.text import normalize
from tests.helpers.texts import random_texts as _random_texts


@pytest.fixture
def nat():
    mod = kernels._NATIVE
    if mod is None:
        if shutil.which("cc") or shutil.which("gcc"):
            pytest.fail("judging._native was not built although a C compiler is present: "
                        "reinstall with `pip install -e .` and read the compiler output")
        pytest.skip("no C compiler on this machine: the judges run on their Python paths")
    return mod


def _python_path(monkeypatch, fn, *args):
    monkeypatch.setenv("RESETKIT_NATIVE", "0")
    try:
        return fn(*args)
    finally:
        monkeypatch.delenv("RESETKIT_NATIVE")


def _big_texts(n, seed):
    """Texts long enough (and enough of them: > 1 MB) for the kernels to use threads."""
    rng = random.Random(seed)
    pieces = _random_texts(400, seed)
    return [" ".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))) for _ in range(n)]


@pytest.mark.parametrize("threads", [1, 3])
def test_normalize_equals_the_scalar_function_on_every_thread_count(nat, threads):
    texts = _big_texts(6000, seed=1) + _random_texts(2000, seed=2, ascii_only=True) + ["", None, "The"]
    assert sum(len(t or "") for t in texts) > 1 << 20  # the threaded path is taken
    got = nat.normalize_ascii(texts, threads)
    for t, g in zip(texts, got):
        t = t or ""
        if t.isascii():
            assert g == normalize(t), t
        else:
            assert g is None  # routed to the scalar function by normalize_many
    assert kernels.normalize_many(texts) == [normalize(t) for t in texts]


def test_python_and_native_paths_agree(nat, monkeypatch):
    from judging.coverage import coverage_many
    from judging.exact_match import exact_match_many
    from judging.rouge import rouge_l_f1_many
    from tests.helpers.texts import coverage_pairs as _pairs

    pairs = _pairs(3000, seed=21)
    answers, contexts = [a for a, _ in pairs], [c for _, c in pairs]
    refs = [[c, a] if i % 3 else [c] for i, (a, c) in enumerate(pairs)]
    for fn, args in ((kernels.normalize_many, (answers,)), (coverage_many, (answers, contexts)),
                     (exact_match_many, (answers, refs)), (rouge_l_f1_many, (answers, refs))):
        native_out = fn(*args)
        assert native_out == _python_path(monkeypatch, fn, *args), fn.__name__


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_coverage_with_threads_equals_scalar(nat, threads):
    from judging.coverage import ngram_coverage, span_coverage

    rng = random.Random(threads)
    contexts = _big_texts(800, seed=3)
    answers, keys = [], []
    for _ in range(6000):
        k = rng.randrange(len(contexts))
        words = contexts[k].split()
        if words and rng.random() < 0.7:
            i = rng.randrange(len(words))
            ans = words[i:i + rng.randint(1, 12)]
            if rng.random() < 0.3:
                rng.shuffle(ans)
            answers.append(" ".join(ans))
        else:
            answers.append(rng.choice(contexts))
        keys.append(k)
    norm_c = kernels.normalize_many(contexts)
    span, uni, bi = nat.coverage(kernels.normalize_many(answers), keys, norm_c, threads)
    assert span == [span_coverage(a, contexts[k]) for a, k in zip(answers, keys)]
    assert uni == [ngram_coverage(a, contexts[k], 1) for a, k in zip(answers, keys)]
    assert bi == [ngram_coverage(a, contexts[k], 2) for a, k in zip(answers, keys)]
    assert 0 < sum(span) < len(span) and len(set(bi)) > 20


def _words(rng, n):
    vocab = "the a cat dog Cat DOG runs ran 1990 U.S. e-mail naïve café \u212a İstanbul x y z".split()
    return " ".join(rng.choice(vocab) for _ in range(n))


@pytest.mark.parametrize("threads", [1, 4])
def test_rouge_on_long_texts_equals_rouge_score(nat, threads):
    """Targets of 60-300 tokens: LCS bit vectors of one to five 64-bit words (carries between
    words), repeated tokens, non-ASCII text whose lowercase is ASCII (Kelvin sign)."""
    from rouge_score import rouge_scorer

    sc = rouge_scorer.RougeScorer(["rougeL"])
    rng = random.Random(7)
    answers, refs = [], []
    for _ in range(400):
        ref = _words(rng, rng.choice([1, 63, 64, 65, 127, 128, 129, rng.randint(60, 300)]))
        words = ref.split()
        cand = " ".join(w for w in words if rng.random() > 0.2) + " " + _words(rng, rng.randint(0, 40))
        answers.append(cand)
        refs.append([ref, _words(rng, rng.randint(0, 70)), None])
    got = nat.rouge_l_max(answers, refs, threads)
    expected = [max(sc.score(r, a)["rougeL"].fmeasure for r in rs if r is not None) for a, rs in zip(answers, refs)]
    assert got == expected
    assert len(set(got)) > 100


def test_exact_match_shares_reference_lists_and_normalises_non_ascii(nat):
    shared = ["The Café", "state - of - the - art"]
    answers = kernels.normalize_many(["cafe", "café", "state-of-the-art", "", "x", "x"])
    refs = [shared, shared, shared, shared, [None], None]
    assert nat.exact_match(answers, refs, normalize) == [0.0, 1.0, 1.0, 0.0, None, None]


def test_bad_input_names_the_item(nat):
    with pytest.raises(TypeError, match="item 1 is int"):
        nat.normalize_ascii(["ok", 3], 1)
    with pytest.raises(TypeError, match="answer 0 is bytes"):
        nat.coverage([b"x"], [0], ["x"], 1)
    with pytest.raises(IndexError, match="key 5 of item 0"):
        nat.coverage(["x"], [5], ["x"], 1)
    with pytest.raises(ValueError, match="differ in length"):
        nat.coverage(["x", "y"], [0], ["x"], 1)
    with pytest.raises(TypeError, match="reference 1 of item 0 is int"):
        nat.rouge_l_max(["x"], [["a", 7]], 1)
    with pytest.raises(TypeError, match="reference 0 of item 1 is float"):
        nat.exact_match(["x", "y"], [["x"], [1.5]], normalize)


def test_threads_setting(monkeypatch):
    monkeypatch.setenv("RESETKIT_NATIVE_THREADS", "3")
    assert kernels.native_threads() == 3
    monkeypatch.setenv("RESETKIT_NATIVE_THREADS", "many")
    with pytest.raises(ValueError, match="RESETKIT_NATIVE_THREADS"):
        kernels.native_threads()
    monkeypatch.delenv("RESETKIT_NATIVE_THREADS")
    assert 1 <= kernels.native_threads() <= 8

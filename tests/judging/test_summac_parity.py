"""SummaC-ZS parity with the reference ``summac.model_summac.SummaCZS`` (within 1e-5)."""

import random

import pytest

from resetkit.testing import SENTENCES


def _texts(seed, n=24):
    rng = random.Random(seed)
    prem, hyp = [], []
    for i in range(n):
        context = " ".join(rng.sample(SENTENCES, rng.randint(1, 6)))
        prem.append(context)
        k = rng.randint(0, 3)
        hyp.append(" ".join(rng.sample(SENTENCES, k)) if i % 5 else context.split(". ")[0] + ".")
    # duplicates across the pool, as 7 low-temperature candidates of one example produce
    prem += prem[:6]
    hyp += hyp[:6]
    hyp[-1] = ""          # empty answer
    hyp[-2] = "Too short."  # no sentence over 10 characters
    return prem, hyp


@pytest.mark.parametrize("use_con", [False, True])
def test_matches_summac_reference(sharp_nli, use_con):
    from judging.summac import ZeroShotScorer
    from tests.judging.summac_ref import reference_zs

    prem, hyp = _texts(0)
    ref = reference_zs(str(sharp_nli), 0, 2, use_con=use_con).score(prem, hyp)["scores"]
    scorer = ZeroShotScorer(str(sharp_nli), use_contradiction=use_con, batch_tokens=256)
    ours = scorer.score(prem, hyp)
    assert len(ours) == len(ref)
    assert max(abs(a - float(b)) for a, b in zip(ours, ref)) < 1e-5
    assert max(ref) - min(ref) > 0.3  # a spread: the comparison can fail
    assert scorer.stats["distinct_pairs"] < scorer.stats["logical_pairs"]
    assert scorer.stats["batches"] > 1


def test_long_pairs_are_truncated_like_summac(sharp_nli):
    """A premise sentence longer than the 500-token limit goes through the tokenizer's own
    longest-first truncation (as summac's batch_encode_plus did)."""
    from judging.summac import ZeroShotScorer
    from tests.judging.summac_ref import reference_zs

    long = " ".join(["the cat sat on the mat and the dog ran in the park"] * 60) + "."
    prem = [long + " Paris is a city in Europe with many museums."]
    hyp = ["The cat sat on the mat. Paris has many museums in Europe."]
    ref = reference_zs(str(sharp_nli), 0, 2, use_con=False).score(prem, hyp)["scores"]
    scorer = ZeroShotScorer(str(sharp_nli))
    ours = scorer.score(prem, hyp)
    assert scorer.stats["pairs_tokenized_as_pairs"] >= 1
    assert abs(ours[0] - float(ref[0])) < 1e-5

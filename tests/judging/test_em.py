from judging.exact_match import exact_match


def test_exact_match_max_over_references():
    assert exact_match("The Eiffel Tower", ["eiffel tower!", "Paris"]) == 1.0
    assert exact_match("Paris, France", ["eiffel tower", "Paris"]) == 0.0
    assert exact_match("paris", ["London", "PARIS."]) == 1.0


def test_exact_match_normalises_tokenised_references():
    assert exact_match("state-of-the-art", ["state - of - the - art"]) == 1.0


def test_exact_match_empty_and_missing():
    assert exact_match("", ["x"]) == 0.0
    assert exact_match("", [""]) == 0.0          # empty text is 0, even against an empty gold
    assert exact_match(None, ["x"]) == 0.0
    assert exact_match("x", []) is None          # nothing to compare with: null, not 0
    assert exact_match("x", None) is None
    assert exact_match("x", [None, "X"]) == 1.0


def test_bulk_exact_match_equals_scalar():
    import random

    from judging.exact_match import exact_match_many
    from tests.helpers.texts import random_texts as _random_texts

    rng = random.Random(4)
    golds = _random_texts(300, seed=8) + ["", "The Cat", "state - of - the - art"]
    items = []
    for _ in range(3000):
        refs = rng.choice([None, [], [None], rng.sample(golds, rng.randint(1, 3))])
        if refs and rng.random() < 0.5:  # a variant of a gold: equal after normalisation or not
            gold = rng.choice([r for r in refs if r is not None] or [""])
            answer = gold.upper() + rng.choice(["", ".", " the", "s"])
        else:
            answer = rng.choice(golds + [None])
        items.append((answer, refs))
    got = exact_match_many([a for a, _ in items], [r for _, r in items])
    assert got == [exact_match(a, r) for a, r in items]
    assert got.count(1.0) > 100 and got.count(0.0) > 100 and got.count(None) > 100

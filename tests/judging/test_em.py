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

"""Random texts for the A.2 normalisation and metric kernels' equivalence tests (tests/judging):
every piece the kernels treat specially (articles, possessives, dashes, slashes, non-ASCII case
folding, control and surrogate characters) joined by every separator they split on."""

from __future__ import annotations

PIECES = ["the", "The", "THE", "a", "A", "an", "An", "cat", "Cat's", "'s", "'S", "'", "'sa", "'s_", "'s1",
          "-", "/", "--", "-/-", "a-b", "/x", "x/", "state", "of", "art", "1,000", "e.g.", "(the)", "A.",
          "-the", "the-", "_", "__a", "qzx", "qzxsentinelqzx", "x", "an-", "théâtre", "ÄÖ", "“x”", "—",
          "naïve", "İstanbul", "ΣΟΦΟΣ", "ſ", "K", "e\u0301", "½", "²", "٣", "\xff", "\xa0",
          "\u2028", "\x85", "\x1c", "\x1f", "\x00", "\x7f", "\r", "\x0b", "\x0c", "!?", "…", "😀",
          "\u212a", "\uffff", "ΟΔΟΣ", "ǅ", "ﬁ", "\ud800", "x\udfffy", "\udbff\udc00", "\x07", "\x1b", "a\x08b"]
SEPS = [" ", "", "  ", "\t", "\n", " \n ", "\t \t", " - ", " / ", " 's ", " 's", "\r\n", "\x1c"]


def random_texts(n, seed, ascii_only=False):
    """``n`` seeded random texts (ASCII pieces only with ``ascii_only``)."""
    import random

    rng = random.Random(seed)
    pieces = [p for p in PIECES if p.isascii()] if ascii_only else PIECES
    return ["".join(rng.choice(pieces) + rng.choice(SEPS) for _ in range(rng.randint(0, 25)))
            for _ in range(n)]


def coverage_pairs(n, seed):
    """``n`` seeded (answer, context) pairs: mostly (edited) runs of the context, some unrelated."""
    import random

    rng = random.Random(seed)
    contexts = random_texts(200, seed) + ["", None, "the a an", "x"]
    out = []
    for _ in range(n):
        ctx = rng.choice(contexts)
        words = (ctx or "").split()
        if words and rng.random() < 0.6:  # a (possibly edited) run of the context
            i = rng.randrange(len(words))
            ans = words[i:i + rng.randint(1, 8)]
            if rng.random() < 0.4:
                ans.insert(rng.randrange(len(ans) + 1), rng.choice(["cat", "the", "x", "-", "'s", "é"]))
            answer = rng.choice([" ", "  ", " - "]).join(ans)
        else:
            answer = rng.choice(random_texts(50, rng.randrange(10**6)) + [None, ""])
        out.append((answer, ctx))
    return out

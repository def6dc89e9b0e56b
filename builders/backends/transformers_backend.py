"""transformers ``generate`` backend (CPU or GPU): batched, left-padded, seeded per candidate.

How a batch is generated:
- requests are grouped by prompt; each distinct prompt is tokenized once, and its prefill
  (all prompt tokens but the last) is computed once and copied to every candidate row of
  that prompt (``Cache.reorder_cache``), so the 7 candidates of an example share it;
- ``generate`` runs with ``do_sample=False`` and a ``RowSampler`` logits processor that does
  the sampling itself, row by row: each row has its own temperature, top-k, top-p and its own
  ``torch.Generator`` seeded with the candidate's seed.  Rows with temperature 0 stay greedy.
  A candidate's tokens therefore depend on its own seed only, not on which other requests
  share its batch (HF's ``do_sample=True`` draws from one global RNG for the whole batch);
- batches are formed deterministically from the request list (prompts ordered by length,
  then first appearance), so a resumed run computes exactly what an uninterrupted one does;
- stop strings (``GenRequest.stop``): a ``StopOnStrings`` criterion decodes the tail of each
  row after every step and ends the row once a stop string appears; the text is cut before it
  (vLLM's semantics: finish_reason "stop", the tokens up to the one completing it counted).

dtype "auto" is the dtype the model's config declares (float32 for a converted .gguf).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from resetkit.config import run_field
from resetkit.errors import require

from .base import Backend, GenRequest, GenResult, check_model_config, config_dtype, cut_at_stop, local_model_info


class RowSampler:
    """A logits processor that samples each row with its own parameters and generator.

    Inputs: per-row tensors/lists of temperature, top_k (0 = off), top_p and seed (None for
    greedy rows).  Output scores are -inf except at the sampled token, so the surrounding
    greedy ``generate`` picks exactly that token.

    Each sampled row draws one uniform number per step from its own generator and takes the
    token where it falls in the cumulative distribution.  Rows are grouped so that no step
    sorts the whole vocabulary unless it must: top-k rows take ``topk`` (sorted, k entries),
    rows without top-k and top-p use the vocabulary order as it is, and only top-p rows without
    top-k sort everything (on a 49k vocabulary the full sort was a quarter of all CPU time).
    """

    def __init__(self, temperatures, top_ks, top_ps, seeds, device):
        import torch

        self.torch = torch
        idx = [i for i, s in enumerate(seeds) if s is not None]
        self.idx = torch.tensor(idx, dtype=torch.long, device=device)
        self.temp = torch.tensor([temperatures[i] for i in idx], dtype=torch.float64, device=device)
        self.top_k = torch.tensor([top_ks[i] for i in idx], dtype=torch.long, device=device)
        self.top_p = torch.tensor([top_ps[i] for i in idx], dtype=torch.float64, device=device)
        # positions (within idx) of each group
        kinds = ["topk" if top_ks[i] > 0 else ("nucleus" if top_ps[i] < 1.0 else "plain") for i in idx]
        self.groups = {k: torch.tensor([j for j, x in enumerate(kinds) if x == k], dtype=torch.long, device=device)
                       for k in ("topk", "nucleus", "plain") if k in kinds}
        self.gens = []
        for i in idx:
            g = torch.Generator(device="cpu")
            g.manual_seed(int(seeds[i]))
            self.gens.append(g)

    def _pick(self, probs, u):
        """Index into ``probs`` (rows of unnormalised probabilities) where ``u`` (in [0, 1)) falls."""
        cdf = probs.cumsum(-1)
        pick = self.torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1), right=True)
        return pick.clamp(max=cdf.shape[-1] - 1).squeeze(-1)

    def _top_p(self, probs, top_p):
        # keep the smallest prefix (in descending order) whose mass reaches top_p; the first stays
        cut = (probs.cumsum(-1) - probs) >= top_p[:, None] * probs.sum(-1, keepdim=True)
        return probs.masked_fill(cut, 0.0)

    def __call__(self, input_ids, scores):
        torch = self.torch
        if not self.gens:
            return scores
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.gens]).to(scores.device)
        tokens = torch.empty(len(self.gens), dtype=torch.long, device=scores.device)
        for kind, rows in self.groups.items():
            if kind == "plain":  # the whole vocabulary: exp in float32, the cumulative sum in float64
                logits = scores[self.idx[rows]].float() / self.temp[rows, None].float()
                probs = (logits - logits.max(-1, keepdim=True).values).exp().to(torch.float64)
                tokens[rows] = self._pick(probs, u[rows])
                continue
            logits = scores[self.idx[rows]].to(torch.float64) / self.temp[rows, None]
            if kind == "topk":
                ks = self.top_k[rows]
                vals, ids = logits.topk(int(min(ks.max(), logits.shape[-1])), dim=-1)
                vals = vals.masked_fill(torch.arange(vals.shape[-1], device=vals.device)[None, :] >= ks[:, None],
                                        float("-inf"))
            else:
                vals, ids = logits.sort(dim=-1, descending=True)
            probs = (vals - vals[:, :1]).exp()
            probs = self._top_p(probs, self.top_p[rows])
            tokens[rows] = ids.gather(1, self._pick(probs, u[rows]).unsqueeze(-1)).squeeze(-1)
        out = scores.clone()
        out[self.idx] = float("-inf")
        out[self.idx, tokens] = 0.0
        return out


class StopOnStrings:
    """A stopping criterion: row ``i`` is done once the text of its generated tokens contains
    one of ``stops[i]``.  Only a tail of each row is decoded per step (enough tokens to hold the
    longest stop string), so the cost stays small."""

    def __init__(self, tokenizer, stops: list[tuple], prompt_width: int):
        self.tok, self.stops, self.width = tokenizer, stops, prompt_width
        longest = max((len(s) for ss in stops for s in ss), default=0)
        self.tail = longest + 8      # every token is at least one character, most far more
        self.done = [not ss for ss in stops]

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        out = []
        rows = input_ids[:, self.width:]
        for i, ss in enumerate(self.stops):
            if ss and not self.done[i]:
                text = self.tok.decode(rows[i, -self.tail:].tolist(), skip_special_tokens=True)
                self.done[i] = any(s in text for s in ss)
            out.append(bool(ss) and self.done[i])
        return torch.tensor(out, dtype=torch.bool, device=input_ids.device)


class TransformersBackend(Backend):
    """Uses the pool's revision and dtype ("auto" | "float32" | "bfloat16" | "float16")."""

    name = "transformers"

    @dataclasses.dataclass(frozen=True)
    class Options:
        batch_size: int = run_field(64, help="rows per generate() call")
        device: str = run_field("auto", help="auto, cpu, cuda, cuda:1, ...")
        share_prefill: bool = run_field(True, help="prefill each distinct prompt once and copy its cache to "
                                                   "its candidates (off: one prefill per row; same texts)")

    def __init__(self, model: str, **kw):
        super().__init__(model, **kw)
        self.device = self.options.device
        self.batch_size, self.share_prefill = max(1, int(self.options.batch_size)), self.options.share_prefill
        self._ref = self._config = None
        self._tok = self._model = None
        self._commit = None

    # -- set-up ------------------------------------------------------------------
    def check(self) -> None:
        require("transformers", "models", "the transformers backend")
        self._ref, self._commit, self._config = check_model_config(self.model, self.revision)

    @property
    def _where(self) -> str:
        if self._ref is None:
            self.check()
        return self._ref.path

    def _revision(self):
        return None if self._ref is not None and self._ref.is_local else self.revision

    def resolved_dtype(self) -> str:
        """The weights dtype used: --dtype, or for "auto" the one the model's config declares."""
        if self._ref is None:
            self.check()
        return config_dtype(self._config) if self.dtype == "auto" else self.dtype

    def model_info(self) -> dict:
        if self._ref is None:
            self.check()
        return {**local_model_info(self._ref, self._commit), "dtype": self.resolved_dtype()}

    def _load(self):
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the pool shows its own progress bar
        where = self._where
        self._tok = AutoTokenizer.from_pretrained(where, revision=self._revision(), padding_side="left")
        if self._tok.pad_token_id is None:
            self._tok.pad_token = self._tok.eos_token
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = "auto" if self.dtype == "auto" else getattr(torch, self.dtype)
        self._model = AutoModelForCausalLM.from_pretrained(where, revision=self._revision(), dtype=dtype)
        self._model.to(device).eval()
        self._device = torch.device(device)

    def tokenizer(self):
        if self._tok is None:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self._where, revision=self._revision(),
                                                      padding_side="left")
        return self._tok

    def count_tokens(self, prompts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer()(list(prompts))["input_ids"]]

    def close(self) -> None:
        self._model = None

    # -- generation ----------------------------------------------------------------
    def plan_batches(self, requests: Sequence[GenRequest], lengths: dict[str, int]) -> list[list[int]]:
        """Deterministic batches (lists of request indices): prompts sorted by token length
        (then first appearance), a prompt's requests kept together, at most batch_size rows."""
        by_prompt: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            by_prompt.setdefault((r.max_new_tokens, r.prompt), []).append(i)
        # (a prompt's requests share a batch whatever their stop strings: the criterion is per row)
        order = sorted(by_prompt, key=lambda k: (k[0], lengths[k[1]]))  # stable sort
        batches, cur, cur_key = [], [], None
        for key in order:
            rows = by_prompt[key]
            for start in range(0, len(rows), self.batch_size):
                part = rows[start:start + self.batch_size]
                if cur and (len(cur) + len(part) > self.batch_size or key[0] != cur_key):
                    batches.append(cur)
                    cur = []
                cur.extend(part)
                cur_key = key[0]
        if cur:
            batches.append(cur)
        return batches

    def generate(self, requests: Sequence[GenRequest],
                 on_done: Callable[[int], None] | None = None) -> list[GenResult]:
        self._load()
        tok = self._tok
        prompts = list(dict.fromkeys(r.prompt for r in requests))
        ids = dict(zip(prompts, tok(prompts, add_special_tokens=True)["input_ids"])) if prompts else {}
        results: list[GenResult | None] = [None] * len(requests)
        limit = getattr(self._model.config, "max_position_embeddings", None)
        todo = []
        for i, r in enumerate(requests):
            if limit is not None and len(ids[r.prompt]) >= limit:
                results[i] = GenResult(r.key, None, None, "error", f"prompt of {len(ids[r.prompt])} tokens does "
                                       f"not fit max_position_embeddings {limit}")
            else:
                todo.append(i)
        if on_done and len(todo) < len(requests):
            on_done(len(requests) - len(todo))
        sub = [requests[i] for i in todo]
        for batch in self.plan_batches(sub, {p: len(v) for p, v in ids.items()}):
            for j, res in zip(batch, self._generate_batch([sub[j] for j in batch], ids)):
                results[todo[j]] = res
            if on_done:
                on_done(len(batch))
        return results

    def _generate_batch(self, reqs: list[GenRequest], ids: dict[str, list[int]]) -> list[GenResult]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        tok, model, dev = self._tok, self._model, self._device
        uniq = list(dict.fromkeys(r.prompt for r in reqs))
        width = max(len(ids[p]) for p in uniq)
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids[p])) + ids[p] for p in uniq], device=dev)
        mask = torch.tensor([[0] * (width - len(ids[p])) + [1] * len(ids[p]) for p in uniq], device=dev)
        row_of = torch.tensor([uniq.index(r.prompt) for r in reqs], device=dev)
        sampler = RowSampler([r.temperature for r in reqs], [r.top_k for r in reqs], [r.top_p for r in reqs],
                             [None if r.greedy else r.seed for r in reqs], dev)
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        gen_cfg = GenerationConfig(do_sample=False, max_new_tokens=reqs[0].max_new_tokens, num_beams=1,
                                   pad_token_id=pad, eos_token_id=sorted(eos_ids) or None)
        kwargs = {}
        stops = [tuple(r.stop) for r in reqs]
        if any(stops):
            from transformers import StoppingCriteriaList

            kwargs["stopping_criteria"] = StoppingCriteriaList([StopOnStrings(tok, stops, width)])
        with torch.inference_mode():
            if self.share_prefill and width > 1 and len(uniq) < len(reqs):
                # prefill every distinct prompt once (all but its last token), then copy the
                # cache to each candidate row; generate() then feeds only the last token.
                pos = (mask[:, :-1].cumsum(-1) - 1).clamp(min=0)
                out = model(input_ids=input_ids[:, :-1], attention_mask=mask[:, :-1], position_ids=pos,
                            use_cache=True, logits_to_keep=1)  # only the cache is used
                # transformers >= 5.2x calls it `cache`; older releases `past_key_values`
                name = "cache" if getattr(out, "cache", None) is not None else "past_key_values"
                cache = getattr(out, name)
                cache.reorder_cache(row_of)
                kwargs[name] = cache
            seqs = model.generate(input_ids=input_ids[row_of], attention_mask=mask[row_of],
                                  generation_config=gen_cfg, logits_processor=LogitsProcessorList([sampler]),
                                  **kwargs)
        out_rows = seqs[:, width:].tolist()
        results = []
        for r, row in zip(reqs, out_rows):
            n, finish = len(row), "length"
            for j, t in enumerate(row):
                if t in eos_ids:
                    n, finish = j + 1, "stop"
                    break
            body = row[:n - 1] if finish == "stop" else row[:n]
            text = tok.decode(body, skip_special_tokens=True)
            text, hit = cut_at_stop(text, r.stop)
            if hit:
                n, finish = _tokens_through_stop(tok, body, r.stop), "stop"
            else:
                # a text cut inside a multi-byte character ends in U+FFFD; drop it, as vLLM's
                # incremental detokenizer does, so both backends give the same text
                text = text.rstrip("\ufffd")
            results.append(GenResult(r.key, text, n, finish))
        return results


def _tokens_through_stop(tok, body: list[int], stops) -> int:
    """The number of tokens up to and including the one whose text completes the first stop
    string (what vLLM reports as the output's token count); found by bisection."""
    lo, hi = 1, len(body)
    while lo < hi:
        mid = (lo + hi) // 2
        if cut_at_stop(tok.decode(body[:mid], skip_special_tokens=True), stops)[1]:
            hi = mid
        else:
            lo = mid + 1
    return lo

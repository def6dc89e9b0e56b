"""SummaC-ZS (Laban et al., 2022) on transformers, for a whole pool at once.

Faithfulness of abstractive QA and summarisation answers (paper §2.2, DESIGN.md §5/§7):
premise = context (the question prefixed for QA), both premise and answer split into
sentences (Punkt, offline; sentences of 10 characters or fewer dropped and at most 100
premise sentences, as in the ``summac`` package), every (premise sentence, answer
sentence) pair run through an NLI model; score = mean over answer sentences of the max
over premise sentences of P(entailment).  ``use_contradiction=True`` gives summac's
contradiction-aware ZS, mean(max P(ent) - max P(contra)), in [-1, 1].  An answer with no
sentence left scores 0.0, as in ``summac``.

Why it is fast (bench/bench_judges.py): every distinct (premise sentence, answer
sentence) pair of the whole pool goes through the model once (7 candidates of one
example share the context and, at low temperature, most sentences); each distinct
sentence is tokenised once and pairs are assembled from token ids in NumPy (the
tokenizer's pair template is read from a probe and checked against real pair encodings);
pairs are sorted by length and batched under a token budget, which removes nearly all
padding; bf16/fp16 on GPU.  Scores equal ``summac.model_summac.SummaCZS`` within 1e-5
(tests/judging/test_summac_parity.py).

    ZeroShotScorer(model, ...).score(premises, hypotheses) -> list[float]
    label_indices(config, entailment_idx=None, contradiction_idx=None) -> (ent, con)
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from resetkit.config import field, run_field
from resetkit.errors import ResetkitError

from .api import Judge, Score, progress_bar
from .sentences import split_sentences

ENTAILMENT_NAMES = ("entailment", "entails", "entailed", "supports", "support", "supported")
CONTRADICTION_NAMES = ("contradiction", "contradicts", "contradicted", "refutes", "refute", "refuted")


def label_indices(config, entailment_idx: int | None = None,
                  contradiction_idx: int | None = None, where: str = "") -> tuple[int, int]:
    """(entailment index, contradiction index) from ``config.id2label``, unless given."""
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    found = {}
    for idx, label in id2label.items():
        low = label.strip().lower().replace("_", " ")
        if low in ENTAILMENT_NAMES:
            found.setdefault("ent", idx)
        elif low in CONTRADICTION_NAMES:
            found.setdefault("con", idx)
    ent = entailment_idx if entailment_idx is not None else found.get("ent")
    con = contradiction_idx if contradiction_idx is not None else found.get("con")
    if ent is None or con is None:
        missing = [n for n, v in (("entailment", ent), ("contradiction", con)) if v is None]
        raise ResetkitError(
            f"NLI model {where}: cannot tell the {' and '.join(missing)} label from its id2label "
            f"{id2label}; name the indices with --set judge.summac.entailment_idx=N and "
            f"--set judge.summac.contradiction_idx=N")
    n = len(id2label) or getattr(config, "num_labels", 0)
    for what, idx in (("entailment", ent), ("contradiction", con)):
        if n and not 0 <= idx < n:
            raise ResetkitError(f"NLI model {where}: {what} index {idx} is outside its {n} labels {id2label}")
    return int(ent), int(con)


def _not_nli(where: str, detail: str) -> ResetkitError:
    return ResetkitError(
        f"NLI model {where} {detail}: SummaC would score with random weights. Use a checkpoint fine-tuned "
        "for NLI (a *ForSequenceClassification model with entailment/contradiction labels, e.g. "
        "tals/albert-xlarge-vitaminc-mnli, the paper's), not a base encoder or an embedding model")


def check_trained_head(loading_info: dict, where: str = "") -> None:
    """Refuse a model whose weights transformers had to initialise (``output_loading_info``).

    A checkpoint without a classification head (an embedding model such as all-MiniLM-L6-v2, a
    base BERT) loads as ``*ForSequenceClassification`` with a freshly drawn ``classifier``: its
    "entailment probabilities" are noise.  Missing keys and shape-mismatched (re-drawn) keys are
    both refused; they are named in the message.
    """
    missing = list(loading_info.get("missing_keys") or [])
    mismatched = [k[0] if isinstance(k, tuple) else k for k in loading_info.get("mismatched_keys") or []]
    drawn = sorted(set(missing) | set(mismatched))
    if drawn:
        shown = ", ".join(drawn[:6]) + (f" (+{len(drawn) - 6} more)" if len(drawn) > 6 else "")
        raise _not_nli(where, f"has no trained weights for {shown} (newly initialised when loaded)")


def check_nli_architecture(config, where: str = "") -> None:
    """Cheap pre-check from config.json: a checkpoint saved as a base model has no NLI head."""
    archs = [a for a in (getattr(config, "architectures", None) or []) if isinstance(a, str)]
    if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        raise _not_nli(where, f"is a {', '.join(archs)} checkpoint without a sequence-classification head")


def chunk_sentences(text: str | None, *, min_chars: int = 10, max_sents: int | None = None) -> list[str]:
    """summac's sentence granularity: Punkt sentences longer than ``min_chars`` characters."""
    if not text:
        return []
    sents = [s for s in split_sentences(text) if len(s) > min_chars]
    return sents[:max_sents] if max_sents is not None else sents


class _PairTemplate:
    """How the tokenizer lays out a pair: prefix + A + middle + B + suffix, with type ids.

    Read from one probe pair; ``check`` compares assembled pairs with real encodings.
    """

    def __init__(self, tokenizer):
        a = tokenizer("alpha beta", add_special_tokens=False)["input_ids"]
        b = tokenizer("gamma delta", add_special_tokens=False)["input_ids"]
        enc = tokenizer("alpha beta", "gamma delta")
        ids = list(enc["input_ids"])
        tt = list(enc.get("token_type_ids") or [0] * len(ids))
        self.ok = False
        for i in range(len(ids) - len(a) + 1):
            if ids[i:i + len(a)] != a:
                continue
            for j in range(i + len(a), len(ids) - len(b) + 1):
                if ids[j:j + len(b)] == b:
                    self.prefix, self.middle, self.suffix = ids[:i], ids[i + len(a):j], ids[j + len(b):]
                    seg = lambda lo, hi: set(tt[lo:hi]) or {0}  # noqa: E731
                    parts = [seg(0, i), seg(i, i + len(a)), seg(i + len(a), j), seg(j, j + len(b)),
                             seg(j + len(b), len(ids))]
                    if all(len(p) == 1 for p in parts):
                        self.types = [p.pop() for p in parts]
                        self.ok = True
                    return

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    def assemble(self, a: list[int], b: list[int]) -> tuple[list[int], list[int]]:
        ids = self.prefix + a + self.middle + b + self.suffix
        t = self.types
        types = ([t[0]] * len(self.prefix) + [t[1]] * len(a) + [t[2]] * len(self.middle)
                 + [t[3]] * len(b) + [t[4]] * len(self.suffix))
        return ids, types


class ZeroShotScorer:
    """SummaC-ZS with one NLI model, scoring many (premise, hypothesis) texts at once.

    model: a Hub id or a local directory of an ``AutoModelForSequenceClassification``.
    device: "auto" (cuda if present), "cpu", "cuda", "cuda:1"...; dtype: "auto" (bf16 on
    GPUs that support it, else fp16 on GPU, fp32 on CPU), "float32", "bfloat16", "float16".
    batch_tokens: padded tokens per batch (length-sorted batches); max_length: pair
    truncation (longest-first, as summac ran under transformers 4).
    """

    def __init__(self, model: str, *, entailment_idx: int | None = None,
                 contradiction_idx: int | None = None, use_contradiction: bool = False,
                 device: str = "auto", dtype: str = "auto", batch_tokens: int | None = None,
                 max_batch_size: int = 512, max_length: int = 500, max_doc_sents: int = 100,
                 min_sentence_chars: int = 10, torch_threads: int | None = None):
        from resetkit.errors import require

        torch = require("torch", "models", "SummaC-ZS")
        transformers = require("transformers", "models", "SummaC-ZS")
        self.torch = torch
        if torch_threads:
            torch.set_num_threads(int(torch_threads))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if dtype == "auto":
            if self.device.type == "cuda":
                dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
            else:
                dtype = "float32"
        self.dtype = getattr(torch, dtype)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(model)
            self.model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
                model, dtype=self.dtype, output_loading_info=True)
        except (OSError, ValueError) as exc:
            raise ResetkitError(f"cannot load NLI model {model!r}: {exc}") from exc
        check_trained_head(info, repr(model))
        self.model.to(self.device).eval()
        self.ent_idx, self.con_idx = label_indices(self.model.config, entailment_idx, contradiction_idx,
                                                   where=repr(model))
        self.use_contradiction = use_contradiction
        self.max_length, self.max_doc_sents = max_length, max_doc_sents
        self.min_chars = min_sentence_chars
        # CPU: small length-sorted batches (~2k tokens) cut padding to a few percent and
        # beat big ones (measured in bench/bench_judges.py); GPU: big batches
        self.batch_tokens = batch_tokens or (65536 if self.device.type == "cuda" else 2048)
        self.max_batch_size = max_batch_size
        self.template = _PairTemplate(self.tokenizer)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.use_types = "token_type_ids" in getattr(self.tokenizer, "model_input_names", [])
        self.stats: dict = {}

    # -- pairs -> probabilities ------------------------------------------------
    def _encode_pairs(self, sents: list[str], pairs: list[tuple[int, int]]):
        """Token ids and type ids per pair, from per-sentence encodings where that is exact."""
        enc = self.tokenizer(sents, add_special_tokens=False)["input_ids"] if sents else []
        ids, types = [None] * len(pairs), [None] * len(pairs)
        slow = []
        limit = self.max_length - (self.template.n_special if self.template.ok else 0)
        for k, (p, h) in enumerate(pairs):
            if self.template.ok and len(enc[p]) + len(enc[h]) <= limit:
                ids[k], types[k] = self.template.assemble(enc[p], enc[h])
            else:
                slow.append(k)
        if self.template.ok and pairs:
            # prove the shortcut on a sample: assembled ids must equal the tokenizer's pair encoding
            sample = [k for k in range(0, len(pairs), max(1, len(pairs) // 16)) if ids[k] is not None][:16]
            ref = self.tokenizer([sents[pairs[k][0]] for k in sample], [sents[pairs[k][1]] for k in sample],
                                 truncation=True, max_length=self.max_length)
            for n, k in enumerate(sample):
                if list(ref["input_ids"][n]) != ids[k]:
                    self.template.ok = False
                    return self._encode_pairs(sents, pairs)
        if slow:
            ref = self.tokenizer([sents[pairs[k][0]] for k in slow], [sents[pairs[k][1]] for k in slow],
                                 truncation=True, max_length=self.max_length)
            for n, k in enumerate(slow):
                ids[k] = list(ref["input_ids"][n])
                tt = ref.get("token_type_ids")
                types[k] = list(tt[n]) if tt is not None else [0] * len(ids[k])
        self.stats["pairs_tokenized_as_pairs"] = len(slow)
        return ids, types

    def _run(self, ids: list[list[int]], types: list[list[int]], progress: bool = False) -> np.ndarray:
        """(n_pairs, 2) float32: P(entailment), P(contradiction) per pair."""
        torch = self.torch
        out = np.zeros((len(ids), 2), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda k: len(ids[k]))
        # ascending lengths: the last pair added sets the padded width of its batch
        batches, current = [], []
        for k in order:
            if current and (len(current) >= self.max_batch_size
                            or (len(current) + 1) * len(ids[k]) > self.batch_tokens):
                batches.append(current)
                current = []
            current.append(k)
        if current:
            batches.append(current)
        self._batches = batches
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(ids), desc="summac pairs", unit="pair", leave=False)
        cols = [self.ent_idx, self.con_idx]
        with torch.inference_mode():
            for batch in batches:
                width = max(len(ids[k]) for k in batch)
                inp = np.full((len(batch), width), self.pad_id, dtype=np.int64)
                att = np.zeros((len(batch), width), dtype=np.int64)
                typ = np.zeros((len(batch), width), dtype=np.int64)
                for r, k in enumerate(batch):
                    n = len(ids[k])
                    inp[r, :n] = ids[k]
                    att[r, :n] = 1
                    typ[r, :n] = types[k]
                feed = {"input_ids": torch.from_numpy(inp).to(self.device),
                        "attention_mask": torch.from_numpy(att).to(self.device)}
                if self.use_types:
                    feed["token_type_ids"] = torch.from_numpy(typ).to(self.device)
                logits = self.model(**feed).logits.float()
                probs = torch.softmax(logits, dim=-1)[:, cols].cpu().numpy()
                out[batch] = probs
                if bar is not None:
                    bar.update(len(batch))
        if bar is not None:
            bar.close()
        self.stats["batches"] = len(batches)
        return out

    # -- texts -> scores --------------------------------------------------------
    def score(self, premises: Sequence[str], hypotheses: Sequence[str],
              progress: bool = False) -> list[float]:
        """SummaC-ZS of each hypothesis against its premise (same length lists)."""
        if len(premises) != len(hypotheses):
            raise ValueError("premises and hypotheses differ in length")
        sent_id: dict[str, int] = {}
        split_cache: dict[tuple[str, bool], list[int]] = {}

        def sentence_ids(text, is_premise):
            key = (text or "", is_premise)
            if key not in split_cache:
                chunks = chunk_sentences(text, min_chars=self.min_chars,
                                         max_sents=self.max_doc_sents if is_premise else None)
                split_cache[key] = [sent_id.setdefault(s, len(sent_id)) for s in chunks]
            return split_cache[key]

        t0 = time.perf_counter()
        pair_id: dict[tuple[int, int], int] = {}
        grids = []
        logical = 0
        for prem, hyp in zip(premises, hypotheses):
            p_ids, h_ids = sentence_ids(prem, True), sentence_ids(hyp, False)
            if not p_ids or not h_ids:
                grids.append(None)
                continue
            grid = np.empty((len(p_ids), len(h_ids)), dtype=np.int64)
            for i, p in enumerate(p_ids):
                for j, h in enumerate(h_ids):
                    grid[i, j] = pair_id.setdefault((p, h), len(pair_id))
            logical += grid.size
            grids.append(grid)
        sents = [None] * len(sent_id)
        for s, i in sent_id.items():
            sents[i] = s
        pairs = list(pair_id)
        t1 = time.perf_counter()
        ids, types = self._encode_pairs(sents, pairs)
        t2 = time.perf_counter()
        probs = self._run(ids, types, progress=progress).astype(np.float64)
        t3 = time.perf_counter()
        self.stats.update(logical_pairs=logical, distinct_pairs=len(pairs), distinct_sentences=len(sents),
                          padded_tokens=sum(len(b) * max(len(ids[k]) for k in b) for b in self._batches),
                          real_tokens=sum(map(len, ids)), seconds_split=round(t1 - t0, 3),
                          seconds_tokenize=round(t2 - t1, 3), seconds_model=round(t3 - t2, 3))
        scores = []
        for grid in grids:
            if grid is None:
                scores.append(0.0)
                continue
            ent = probs[grid, 0].max(axis=0)
            if self.use_contradiction:
                ent = ent - probs[grid, 1].max(axis=0)
            value = float(np.mean(ent))
            scores.append(value if math.isfinite(value) else float("nan"))
        return scores


def premise_for(example: dict) -> str:
    """NLI premise: the context, with the question prefixed for QA (paper §2.2)."""
    context = example.get("context") or ""
    question = example.get("question") or ""
    if example.get("task") == "abstractive_qa" and question:
        return f"{question}\n{context}"
    return context


class SummacJudge(Judge):
    """summac -> summac_zs (faithfulness of abstractive QA and summarisation)."""

    name = "summac"
    metrics = ("summac_zs",)
    tasks = ("abstractive_qa", "summarization")
    needs = ("context", "question")
    runs_on_ray = True  # --engine ray: scored on actors holding the NLI model (judging/judge_worker.py)
    signals = {"faith.abstractive_qa": "summac_zs", "faith.summarization": "summac_zs"}

    @dataclass(frozen=True)
    class Options:
        model: str = field("tals/albert-xlarge-vitaminc-mnli",
                           help="NLI checkpoint for SummaC-ZS: a Hub id or a local directory.")
        entailment_idx: int | None = field(None, help="Entailment label index (default: from id2label).")
        contradiction_idx: int | None = field(None, help="Contradiction label index (default: from id2label).")
        contradiction: bool = field(False, help="Contradiction-aware SummaC-ZS: mean(max ent - max con), "
                                                "range [-1, 1]; default entailment only (DESIGN.md §7).")
        device: str = run_field("auto", help="Device for the NLI model: auto, cpu, cuda, cuda:N.")
        dtype: str = field("auto", help="auto (bf16/fp16 on GPU, fp32 on CPU), float32, bfloat16, float16.")
        batch_tokens: int | None = field(None, help="Padded tokens per NLI batch (default 2048 CPU, 65536 GPU).")
        max_length: int = field(500, help="Max tokens of a (premise, hypothesis) pair, as in summac.")
        threads: int | None = run_field(None, help="torch CPU threads for the NLI model (default: torch's).")
        max_doc_sents: int = field(100, help="Premise sentences kept per example, as in summac.")
        group_items: int = field(64, help="Items scored together: their (sentence, sentence) pairs are "
                                          "de-duplicated and batched within the group. The Ray engine's chunks "
                                          "are whole groups, so both engines batch alike (bitwise equal scores).")

    def settings(self):
        o = self.options  # the keys of the judge versions written before options moved here
        return {"model": o.model, "ent": o.entailment_idx, "con": o.contradiction_idx,
                "contradiction": o.contradiction, "max_length": o.max_length,
                "max_doc_sents": o.max_doc_sents, "dtype": o.dtype}

    def check(self, items):
        from resetkit.errors import require

        o = self.options
        transformers = require("transformers", "models", "SummaC-ZS")
        try:
            config = transformers.AutoConfig.from_pretrained(o.model)
        except (OSError, ValueError) as exc:
            raise ResetkitError(f"cannot load NLI model {o.model!r}: {exc}") from exc
        check_nli_architecture(config, where=repr(o.model))
        label_indices(config, o.entailment_idx, o.contradiction_idx, where=repr(o.model))

    def scorer(self) -> ZeroShotScorer:
        """The NLI scorer, loaded on first use and kept (a Ray worker scores many chunks)."""
        if getattr(self, "_scorer", None) is None:
            o = self.options
            self._scorer = ZeroShotScorer(o.model, entailment_idx=o.entailment_idx,
                                          contradiction_idx=o.contradiction_idx,
                                          use_contradiction=o.contradiction, device=o.device,
                                          dtype=o.dtype, batch_tokens=o.batch_tokens,
                                          max_length=o.max_length, max_doc_sents=o.max_doc_sents,
                                          torch_threads=o.threads)
        return self._scorer

    def score(self, items, progress=False):
        """Items in groups of ``group_items`` (in order): a pair's NLI numbers depend on the batch it
        is padded and multiplied in, so every engine forms the same batches from the same groups."""
        scorer = self.scorer()
        group = max(1, self.options.group_items)
        values, usage = [], collections.Counter()
        with progress_bar(len(items), "summac", progress) as bar:
            for lo in range(0, len(items), group):
                part = items[lo:lo + group]
                values += scorer.score([premise_for(it) for it in part], [it["text"] for it in part])
                usage.update({k: v for k, v in scorer.stats.items() if k != "batches"})
                bar.update(len(part))
        self.usage = {k: round(v, 3) if isinstance(v, float) else v for k, v in usage.items()}
        out = []
        for it, v in zip(items, values):
            err = None
            if not chunk_sentences(it["text"], min_chars=scorer.min_chars):
                err = "no answer sentence longer than 10 characters: scored 0, as summac does"
            out.append({"summac_zs": Score(v, err)})
        return out

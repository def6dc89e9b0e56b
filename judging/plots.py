"""The report's figures as PNG files (matplotlib's Agg canvas; no display, no pyplot state).

Inputs: a :class:`judging.report.Report`.  Outputs: PNG paths.

- ``tradeoff``: instruction-following score vs faithfulness per model (paper Figure 1); the
  faithfulness of a model is the mean of its abstractive and extractive Overall scores.
- ``length_faithfulness``: faithfulness on each abstractive dataset for generations strictly
  shorter than the gold vs more than 100 tokens longer (paper Figure 5), bars labelled n.
- ``gen_length``: average generation length per dataset and model, the gold length marked.
"""

from __future__ import annotations

import math
from pathlib import Path

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _figure(width: float, height: float):
    from resetkit.errors import require

    require("matplotlib", "report", "the report's plots")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path: Path) -> Path:
    """Write the PNG next to its final name, then rename: never a half-written image."""
    import os
    import uuid

    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp.png")
    fig.savefig(tmp, format="png", metadata={"Software": None})
    os.replace(tmp, path)
    return path


def _val(report, section: str, label: str, dataset: str) -> tuple[float, float]:
    r = report.value(section, label, dataset)
    if r is None:
        return math.nan, math.nan
    return r["mean"], r["std"]


def tradeoff(report, path: str | Path) -> Path:
    """Figure 1: x = instruction following (Overall), y = faithfulness, one point per model."""
    fig = _figure(5.5, 4.2)
    ax = fig.add_subplot()
    placed = 0
    for i, label in enumerate(report.labels):
        x, xerr = _val(report, "instruction", label, "overall")
        ys = [_val(report, s, label, "overall")[0] for s in ("faithfulness_abstractive", "faithfulness_extractive")]
        ys = [y for y in ys if not math.isnan(y)]
        if math.isnan(x) or not ys:
            continue
        y = sum(ys) / len(ys)
        ax.errorbar([x], [y], xerr=None if math.isnan(xerr) else [xerr], fmt="o", ms=8,
                    color=COLORS[i % len(COLORS)], label=label, capsize=3)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
        placed += 1
    ax.set_xlabel("instruction following (LLM judge / 10)")
    ax.set_ylabel("faithfulness (mean of abstractive and extractive Overall)")
    ax.set_title("Instruction following vs faithfulness")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if placed:
        ax.legend(fontsize=8, loc="lower left")
    else:
        ax.text(0.5, 0.5, "no model has both an instruction-following\nand a faithfulness score",
                ha="center", va="center", transform=ax.transAxes, fontsize=9, color="#555")
    return _save(fig, Path(path))


def length_faithfulness(report, path: str | Path) -> Path:
    """Figure 5: per abstractive dataset, bars per model for shorter / >100 tokens longer."""
    datasets = [c for c in report.columns.get("faithfulness_abstractive", []) if c.dataset != "overall"]
    n = max(1, len(datasets))
    fig = _figure(max(4.0, 3.2 * n), 3.8)
    axes = fig.subplots(1, n, squeeze=False)[0]
    width = 0.8 / max(1, len(report.labels))
    for ax, col in zip(axes, datasets or [None]):
        if col is None:
            ax.text(0.5, 0.5, "no abstractive dataset", ha="center", va="center", transform=ax.transAxes)
            continue
        for i, label in enumerate(report.labels):
            for j, section in enumerate(("faithfulness_shorter", "faithfulness_longer")):
                r = report.value(section, label, col.dataset)
                mean = r["mean"] if r and not math.isnan(r["mean"]) else 0.0
                x = j + (i - (len(report.labels) - 1) / 2) * width
                ax.bar([x], [mean], width=width * 0.95, color=COLORS[i % len(COLORS)],
                       label=label if j == 0 else None, hatch=None if r and r["n_examples"] else "//")
                ax.text(x, mean + 0.01, f"n={r['n_examples'] if r else 0}", ha="center", va="bottom",
                        fontsize=6, rotation=90)
        ax.set_xticks([0, 1], ["shorter than gold", "> 100 tokens longer"], fontsize=8)
        ax.set_ylim(0, 1.15)
        ax.set_title(col.display + ("" if col.seen else " (unseen)"), fontsize=9,
                     style="normal" if col.seen else "italic")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("faithfulness (SummaC-ZS)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Faithfulness by generation length relative to the gold", fontsize=10)
    return _save(fig, Path(path))


def gen_length(report, path: str | Path) -> Path:
    """Average generation length per dataset and model; black ticks mark the gold length."""
    datasets = list(dict.fromkeys(r["dataset"] for r in report.records if r["section"] == "gen_tokens"))
    display = {r["dataset"]: r["display"] for r in report.records if r["section"] == "gen_tokens"}
    fig = _figure(max(5.0, 1.1 * len(datasets) + 2), 3.8)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(report.labels))
    for i, label in enumerate(report.labels):
        xs, ys = [], []
        for k, ds in enumerate(datasets):
            r = report.value("gen_tokens", label, ds)
            xs.append(k + (i - (len(report.labels) - 1) / 2) * width)
            ys.append(r["mean"] if r and not math.isnan(r["mean"]) else 0.0)
        ax.bar(xs, ys, width=width * 0.95, color=COLORS[i % len(COLORS)], label=label)
    gold = [report.value("gold_tokens", report.labels[0], ds) for ds in datasets]
    ax.scatter(range(len(datasets)), [g["mean"] if g else math.nan for g in gold], marker="_", s=600,
               color="black", label="gold", zorder=3)
    ax.set_xticks(range(len(datasets)), [display[d] for d in datasets], rotation=30, fontsize=8)
    ax.set_ylabel("average length")
    ax.set_title("Average generation length", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, Path(path))


def if_length_matched(report, path: str | Path) -> Path:
    """Paper Figure 7: instruction following on all IF examples (left) and on examples whose generation
    length changed by at most 10 tokens against the first model given (right)."""
    fig = _figure(9.0, 3.6)
    left, right = fig.subplots(1, 2)
    alls = [report.value("if_all", label, "all") for label in report.labels]
    left.bar(range(len(report.labels)), [a["mean"] if a else math.nan for a in alls],
             color=[COLORS[i % len(COLORS)] for i in range(len(report.labels))])
    for i, a in enumerate(alls):
        left.annotate(f"n={a['n_examples'] if a else 0}", (i, 0.02), ha="center", fontsize=7)
    left.set_xticks(range(len(report.labels)), report.labels, rotation=20, fontsize=8)
    left.set_title("all instruction-following examples", fontsize=9)
    left.set_ylabel("instruction following (LLM judge / 10)")
    base = report.labels[0]
    others = report.labels[1:]
    if others:
        width = 0.38
        for k, other in enumerate(others):
            for j, who in enumerate((base, other)):
                r = report.value("if_matched", who, other)
                x = k + (j - 0.5) * width
                right.bar(x, r["mean"] if r and not math.isnan(r["mean"]) else 0.0, width * 0.95,
                          color=COLORS[report.labels.index(who) % len(COLORS)],
                          label=who if k == 0 or j == 1 else None)
            n = report.value("if_matched", base, other)
            right.annotate(f"n={n['n_examples'] if n else 0}", (k, 0.02), ha="center", fontsize=7)
        right.set_xticks(range(len(others)), [f"{o}\nvs {base}" for o in others], fontsize=8)
        right.legend(fontsize=7)
    else:
        right.text(0.5, 0.5, "needs a second model\n(the first one given is the baseline)",
                   ha="center", va="center", fontsize=8, transform=right.transAxes)
        right.set_xticks([])
    right.set_title(f"length change <= 10 tokens vs {base}", fontsize=9)
    for ax in (left, right):
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Instruction following at matched generation length", fontsize=10)
    return _save(fig, Path(path))


FIGURES = {"tradeoff": tradeoff, "length_faithfulness": length_faithfulness, "gen_length": gen_length,
           "if_length_matched": if_length_matched}


def write_all(report, out_dir: str | Path) -> dict[str, Path]:
    """Write every figure as ``<out_dir>/<name>.png``; returns name -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {name: fn(report, out_dir / f"{name}.png") for name, fn in FIGURES.items()}

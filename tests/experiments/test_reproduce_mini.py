"""``make reproduce-mini`` (experiments/reproduce_mini.py, docs/reproduction.md): the committed data
is the upstream file with its provenance, the split is seeded and disjoint, and the whole script
runs end to end on a tiny subset (a few questions, one seed, one training step) so it cannot rot."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "experiments" / "data"
SCRIPT = REPO / "experiments" / "reproduce_mini.py"


def load_script():
    spec = importlib.util.spec_from_file_location("reproduce_mini", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_data_file_has_a_provenance_block_with_the_upstream_bytes():
    blocks = [dict(re.findall(r"^(file|repo|commit|path|license|sha256):\s+(.+)$", b, re.M))
              for b in (DATA / "PROVENANCE").read_text().split("\n\n")]
    listed = {b["file"]: b for b in blocks if "file" in b}
    files = {str(f.relative_to(DATA)) for f in DATA.rglob("*") if f.is_file() and f.name != "PROVENANCE"}
    assert files and set(listed) == files, set(listed) ^ files
    for name, b in listed.items():
        assert {"repo", "commit", "path", "license"} <= set(b), name
        assert re.fullmatch(r"[0-9a-f]{40}", b["commit"]), name
        own = (DATA / name).parent.joinpath("PROVENANCE").read_text()
        assert b["commit"] in own and b["path"] in own, name
        sha = re.search(r"^sha256:\s+([0-9a-f]{64})$", own, re.M).group(1)
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == sha, name


def test_the_nq_open_oracle_file_is_whole_and_in_the_form_the_nq_adapter_reads():
    from builders.sources import get
    from builders.sources.base import Context

    with gzip.open(DATA / "nq_open" / "nq-open-oracle.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    assert len(rows) == 2655 and len({r["question"] for r in rows}) == 2655
    assert rows[0]["question"] == "who got the first nobel prize in physics"
    ex = get("nq").convert(rows[0], Context())
    assert ex["response"] == "Wilhelm Conrad Röntgen" and len(ex["passages"]) == 1
    assert "Wilhelm Conrad Röntgen" in ex["passages"][0]


def test_the_split_is_seeded_disjoint_and_sized(tmp_path):
    mod = load_script()
    a = mod.split_data(tmp_path / "a", 0, 300, 64)
    b = mod.split_data(tmp_path / "b", 0, 300, 64)
    c = mod.split_data(tmp_path / "c", 1, 300, 64)
    assert (a["test"], a["pool"], a["total"]) == (300, 64, 2655)

    def questions(split, name):
        return [json.loads(line)["question"] for line in (split["dir"] / f"{name}.jsonl").open()]
    assert questions(a, "test") == questions(b, "test") != questions(c, "test")
    assert not set(questions(a, "test")) & set(questions(a, "train"))
    with pytest.raises(SystemExit, match="2655 questions"):
        mod.split_data(tmp_path / "d", 0, 2600, 64)


def test_the_selection_statistics_count_wins_ties_and_spread():
    mod = load_script()

    cands = [
        # q1: temperature arm, T=0.2 alone best (span and EM)
        ("q1", "a", False, 0.1, 0, 0, False), ("q1", "b", False, 0.2, 1, 1, True),
        # q2: greedy only, every candidate the same text and score 0
        ("q2", "c", True, 0.0, 0, 0, True), ("q2", "d", True, 0.0, 0, 0, False),
        # q3: greedy and T=0.5 tie at the top; the tie-break picked greedy
        ("q3", "e", True, 0.0, 0, 1, True), ("q3", "f", False, 0.5, 0, 1, False),
    ]
    rows = [{"example_id": q, "candidate_id": c, "greedy": g, "temperature": t, "distinct_text": True,
             "em": em, "span": sp, "won": w} for q, c, g, t, em, sp, w in cands]
    st = mod.selection_stats(rows)
    assert st["examples"] == 3 and st["candidates"] == 6
    assert st["settings"]["greedy"] == {"offered": 2, "wins": 2, "contested": 1, "contested_wins": 1,
                                        "sole_best": 1, "contested_sole_best": 0}     # q2 alone; q3 a tie
    assert st["settings"]["T=0.2"] == {"offered": 1, "wins": 1, "contested": 1, "contested_wins": 1,
                                       "sole_best": 1, "contested_sole_best": 1}
    assert st["settings"]["T=0.5"]["wins"] == 0 and st["settings"]["T=0.5"]["sole_best"] == 0
    assert st["greedy_share"] == pytest.approx(2 / 3)
    assert st["share_all_tied"] == pytest.approx(2 / 3)        # q2, q3
    assert st["share_all_zero"] == pytest.approx(1 / 3)        # q2
    assert st["share_tie_broken"] == pytest.approx(1 / 3)      # q3
    assert st["mean_spread"] == pytest.approx(3 / 3)           # q1: 3 - 0; q2, q3: 0
    assert st["mean_selected_score"] == pytest.approx((3 + 0 + 2) / 3)


@pytest.mark.slow
@pytest.mark.realmodel
@pytest.mark.timeout(2400)      # ~5 min on an idle 2-core machine (4 fine-tunes of one step); more when loaded
def test_the_script_runs_end_to_end_on_a_tiny_subset(real_model_gguf, tmp_path):
    from resetkit.store import Store

    from tests.training.helpers import cli_env

    out, doc = tmp_path / "out", tmp_path / "reproduction.md"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--doc", str(doc), "--seeds", "0",
                           "--test-size", "2", "--pool-size", "4", "--max-new-tokens", "4", "--max-steps", "1"],
                          cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=2300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = doc.read_text()
    for label in ("base (zero-shot)", "SFT (gold answers)", "RESET (grid paper)", "RESET-S (grid paper-s)"):
        assert re.search(rf"^\| {re.escape(label)} \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| 1 \|$", text, re.M), label
    assert "**Status: complete** (seeds 0)." in text and "2 held-out test questions" in text
    assert "## Wall time per stage" in text and "| train SFT | 1 |" in text
    assert "### RESET-S (grid paper-s)" in text and "| greedy |" in text
    # the doc's numbers are the store's: recompute base faithfulness and the RESET selection size
    store = Store(out / "store")
    base = store.resolve("eval-base").read().to_pylist()
    assert len(base) == 2
    span = sum(r["faithfulness"] for r in base) / 2
    assert f"| base (zero-shot) | {span:.3f} |" in text
    results = json.loads((out / "results.json").read_text())
    assert results["selections"]["reset"]["0"]["examples"] == store.resolve("selection-reset-s0").num_rows()["train"]
    assert (out / "report" / "report.md").is_file() and "| NQ |" in (out / "report" / "report.md").read_text()
    for arm in ("sft-s0", "reset-s0", "reset-s-s0"):
        assert (out / "models" / arm / "model.safetensors").is_file()
        assert not list((out / "models" / arm).glob("checkpoint-*"))
    # --out is replaced on each run, but only a folder the script made: any other is refused, untouched
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("x")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(stranger), "--doc", str(doc)], cwd=REPO,
                          env=cli_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "not made by this script" in proc.stderr
    assert (stranger / "keep.txt").read_text() == "x"

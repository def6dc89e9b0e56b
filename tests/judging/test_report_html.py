"""The HTML report page: self-contained, opened for real in headless Chromium.

Chromium is Debian's ``chromium`` package (``apt-get install -y chromium``; .ci/run installs
it).  The browser tests skip, saying so, only where no such browser is on the PATH.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pyarrow as pa
import pytest
from click.testing import CliRunner

from judging.report_html import selection_view
from resetkit.cli import main
from resetkit.schemas import CANDIDATES, EXAMPLES, SCORES

from tests.helpers.eval_rows import with_nq, write_eval

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH "
                                   "(install Debian's: apt-get update && apt-get install -y chromium)")


def write_selection(store) -> str:
    """Examples -> pool (3 candidates per example) -> scores (hand-made) -> the real `select`."""
    ex_rows = [
        {"id": "ex-nq", "source": "nq", "objective": "faithfulness", "task": "extractive_qa", "split": "train",
         "instruction": "Answer", "question": "Who?", "context": "Paris is big.", "passages": ["Paris is big."],
         "response": "Paris", "refs": ["Paris"], "prompt": "Question: Who? <script>x</script>",
         "template": "alpaca", "meta": "{}"},
        {"id": "ex-if", "source": "alpaca", "objective": "instruction", "task": "open_ended", "split": "train",
         "instruction": "Write a poem", "question": None, "context": None, "passages": [], "response": "A poem",
         "refs": ["A poem"], "prompt": "Write a poem", "template": "alpaca", "meta": "{}"},
    ]
    with store.create("reset-seed", builder="test", config={}) as w:
        w.write("train", pa.Table.from_pylist(ex_rows, schema=EXAMPLES))
    examples = w.result
    cands, scores = [], []
    prompts = {r["id"]: r["prompt"] for r in ex_rows}
    spec = {"ex-nq": [("Paris", 1.0, 1.0), ("Lyon", 0.0, 0.0), ("Paris is big", 1.0, 0.0)],
            "ex-if": [("roses are red", 0.3, None), ("the sea at night", 0.9, None), ("no", 0.1, None)]}
    for eid, items in spec.items():
        for i, (text, main_score, task) in enumerate(items):
            cid = f"{eid}-c{i}"
            cands.append({"example_id": eid, "candidate_id": cid, "model": "m", "model_revision": None,
                          "template": "alpaca", "prompt": prompts[eid], "temperature": 0.1 * (i + 1), "top_k": 0,
                          "top_p": 1.0, "seed": i, "arm": "temperature", "sample_index": i, "text": text,
                          "num_tokens": 3, "finish_reason": "stop", "greedy": False, "duplicate_of": None,
                          "backend": "transformers", "error": None})
            if eid == "ex-nq":
                scores += [{"candidate_id": cid, "judge": "span", "metric": "span_coverage", "value": main_score},
                           {"candidate_id": cid, "judge": "em", "metric": "exact_match", "value": task}]
            else:
                scores.append({"candidate_id": cid, "judge": "llm", "metric": "rating", "value": main_score})
    with store.create("pool", builder="test", config={}, parents=[examples]) as w:
        w.write("train", pa.Table.from_pylist(cands, schema=CANDIDATES))
        w.extra["examples"] = examples.ref
    pool = w.result
    score_rows = [{**s, "raw": None, "error": None, "judge_version": "1"} for s in scores]
    with store.create("scores", builder="test", config={}, parents=[pool]) as w:
        w.write("train", pa.Table.from_pylist(score_rows, schema=SCORES))
        w.extra.update({"pool": pool.ref, "examples": examples.ref,
                        "judge_versions": {"em": "1", "llm": "1", "span": "1"}})
    from judging.select import run_select

    return run_select(store, pool.ref, w.result.ref).ref


def test_selection_view_finds_candidates_and_weighted_scores(store):
    view = selection_view(store, write_selection(store), n=10)
    assert view["pool"].startswith("pool@") and view["scores"].startswith("scores@")
    by_id = {e["example_id"]: e for e in view["entries"]}
    nq = by_id["ex-nq"]["candidates"]
    assert [c["winner"] for c in nq] == [True, False, False]
    # 1*EM + 2*span: 3.0, 0.0, 2.0
    assert [c["score"] for c in nq] == ["3.000", "0.000", "2.000"]
    poem = by_id["ex-if"]["candidates"]
    assert [c["winner"] for c in poem] == [False, True, False] and poem[1]["score"] == "1.800"


def _page(store, tmp_path, with_selection=True):
    refs = [write_eval(store, "eval-reset", "RESET", 1), write_eval(store, "eval-mtl-1", "MTL", 1,
                                                                     with_nq([1, 0, 0, 0]))]
    args = ["report", *refs, "-o", str(tmp_path / "out"), "--store", str(store.root)]
    if with_selection:
        args += ["--selection", write_selection(store)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    return tmp_path / "out" / "report.html"


def test_page_is_self_contained_and_escaped(store, tmp_path):
    html = _page(store, tmp_path).read_text()
    assert html.count('src="data:image/png;base64,') == 4
    # nothing fetched from anywhere: no http(s) URL in any src/href, no external stylesheet or script
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<b>not bold</b>" not in html


def _chromium(*args, tmp_path):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@needs_browser
def test_page_renders_in_headless_chromium(store, tmp_path):
    page = _page(store, tmp_path)
    dom = _chromium("--dump-dom", page.as_uri(), tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    table = re.search(r'<table class="results" id="table-table4">(.*?)</table>', html, re.S)
    assert table, "Table 4 missing from the DOM"
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", table.group(1), re.S)
    assert "WikiSum" in cells and "Faithfulness: abstractive" in cells and "RESET" in cells
    assert "0.68" in cells and "0.75" in cells          # RESET abstractive and extractive Overall
    assert 'class="unseen">WikiSum<' in table.group(1)
    winner = re.findall(r'<tr class="winner">(.*?)</tr>', html, re.S)
    assert len(winner) == 2 and "the sea at night" in "".join(winner) and "Lyon" not in "".join(winner)

    shot = tmp_path / "shot.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri(), tmp_path=tmp_path)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    from matplotlib.image import imread

    img = imread(shot)[..., :3]
    assert img.shape[:2] == (1600, 1280)
    assert img.std() > 0.05                      # not a blank page
    dark = (img.mean(axis=2) < 0.5).mean()
    assert 0.005 < dark < 0.5                    # text and figures drawn, not a black screen
    # the header row of Table 4 is drawn in its blue-grey (#dde6f3) somewhere on screen
    target = [0xdd / 255, 0xe6 / 255, 0xf3 / 255]
    assert (abs(img - target).max(axis=2) < 0.02).sum() > 500


def test_page_without_selection_has_no_candidates(store, tmp_path):
    html = _page(store, tmp_path, with_selection=False).read_text()
    assert 'id="selection"' not in html and 'class="winner"' not in html
    assert json.dumps("RESET")[1:-1] in html

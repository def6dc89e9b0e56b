"""``make demo`` with the real model, scaled down (1 example per source, 16 new tokens, 2 steps):
every step succeeds, the candidates are English, the report and the SQL look are printed."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.training.helpers import REPO, cli_env

pytestmark = [pytest.mark.realmodel, pytest.mark.slow]


def test_demo_runs_the_real_model(real_model_gguf, tmp_path):
    out = tmp_path / "demo-out"
    env = {**cli_env(), "RESETKIT_PROGRESS": "0"}
    env.pop("OMP_NUM_THREADS", None)
    proc = subprocess.run([sys.executable, "-m", "pipeline.demo", "--out", str(out), "--per-source", "1",
                           "--max-new-tokens", "16", "--steps", "2"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    text = proc.stdout
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in text and "Traceback" not in text + proc.stderr
    assert "--template chat" in text and "faith.abstractive_qa=none" in text
    # the SQL look: candidates with scores and whether they won
    table = text[text.index("== 8."):]
    assert "won" in table and "rougeL" in table
    rows = [line for line in table.splitlines() if line.startswith("│")]
    candidates = [line.split("│")[-2].strip() for line in rows if line.count("│") >= 9]
    assert len(candidates) >= 3 and sum(bool(re.search(r"\b(the|is|a|of|and|to)\b", c.lower()))
                                        for c in candidates) >= len(candidates) // 2, candidates
    md = (out / "report" / "report.md").read_text()
    assert "| after RESET |" in md and "| SmolLM2-135M-Instruct |" in md
    assert (out / "report" / "report.html").is_file()
    assert (out / "models" / "reset" / "model.safetensors").is_file()
    assert not list((out / "models" / "reset").glob("checkpoint-*"))      # the 2 GB checkpoint is removed

"""resetkit.runlog: the console keeps the run's own lines and actionable warnings; everything
else (prints, C-level writes, subprocess output, library logging, noise warnings) is in the log."""

from __future__ import annotations

import subprocess
import sys

from tests.training.helpers import REPO, cli_env

SCRIPT = r"""
import logging, os, subprocess, sys, warnings
from resetkit import runlog

print("before the block")
with runlog.capture(sys.argv[1], header="probe") as con:
    con.echo("the line that matters")
    print("a library print")
    os.write(2, b"OMP: Info #276: omp_set_nested routine deprecated\n")
    subprocess.run([sys.executable, "-c", "print('ninja: build output')"])
    logging.getLogger("deepspeed.probe").warning("Setting accelerator to CPU")
    warnings.warn("`foo` is deprecated and will be removed in v6", FutureWarning)
    warnings.warn("OMP_NUM_THREADS/MKL_NUM_THREADS unset, we set it at 2", UserWarning)
    warnings.warn("your tokenizer has no chat template", UserWarning)
    warnings.warn("your tokenizer has no chat template", UserWarning)
    bar = con.progress(total=3, desc="work", unit="x")
    bar.update(3)
    bar.close()
print("after the block")
try:
    with runlog.capture(sys.argv[1]):
        raise RuntimeError("boom inside")
except RuntimeError as exc:
    print("notes:", getattr(exc, "__notes__", None))
"""


def _probe(tmp_path, **env):
    log = tmp_path / "run.log"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(log)], cwd=REPO, capture_output=True, text=True,
                          env={**cli_env(), "RESETKIT_PROGRESS": "1", "PYTHONWARNINGS": "default", **env},
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc, log


def test_console_has_the_run_lines_and_the_log_has_the_rest(tmp_path):
    proc, log = _probe(tmp_path)
    console = proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[:2] == ["before the block", "the line that matters"]
    assert "after the block" in proc.stdout
    assert f"notes: ['full log: {log}']" in proc.stdout
    # one actionable warning, shown once; the noise is not on the console
    assert console.count("warning: UserWarning: your tokenizer has no chat template") == 1
    for noise in ("a library print", "OMP: Info", "ninja: build output", "Setting accelerator",
                  "deprecated", "OMP_NUM_THREADS"):
        assert noise not in console, noise
    assert "work: 100%" in proc.stderr          # the run's one bar
    text = log.read_text()
    for line in ("the line that matters", "a library print", "OMP: Info #276", "ninja: build output",
                 "WARNING deepspeed.probe] Setting accelerator to CPU", "FutureWarning: `foo` is deprecated",
                 "OMP_NUM_THREADS/MKL_NUM_THREADS unset", "RuntimeError: boom inside"):
        assert line in text, line
    assert "before the block" not in text and "after the block" not in text
    assert text.count("===== ") == 2          # each run appends its own header


def test_verbose_turns_the_capture_off(tmp_path):
    proc, log = _probe(tmp_path, RESETKIT_VERBOSE="1")
    assert "a library print" in proc.stdout and "OMP: Info" in proc.stderr
    assert not log.exists()


def test_progress_can_be_hidden(tmp_path):
    proc, _ = _probe(tmp_path, RESETKIT_PROGRESS="0")
    assert "work:" not in proc.stderr

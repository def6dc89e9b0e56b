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


SECRET_SCRIPT = r"""
import logging, sys, warnings
from resetkit import runlog

url = "http://127.0.0.1:9/v1/chat/completions?api-key=SECRETKEY123456"
with runlog.capture(sys.argv[1], header="probe"):
    logging.getLogger("httpx").info("HTTP Request: POST %s", url)   # what httpx logs per request
    warnings.warn(f"retrying {url}", UserWarning)
try:
    with runlog.capture(sys.argv[1]):
        raise RuntimeError(f"failed: {url}")
except RuntimeError:
    pass
"""


def test_secrets_in_library_logs_warnings_and_tracebacks_never_reach_the_log_file(tmp_path):
    log = tmp_path / "run.log"
    proc = subprocess.run([sys.executable, "-c", SECRET_SCRIPT, str(log)], cwd=REPO, capture_output=True,
                          text=True, env={**cli_env(), "PYTHONWARNINGS": "default"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    assert "HTTP Request: POST" in text and "retrying" in text and "failed:" in text  # the lines are there
    assert "SECRETKEY123456" not in text and "SECRETKEY123456" not in proc.stdout + proc.stderr


def test_a_log_that_cannot_be_written_leaves_the_run_on_the_terminal(tmp_path):
    from resetkit import runlog

    blocker = tmp_path / "store"
    blocker.write_text("a file where the store's .logs folder would go")
    with runlog.capture(blocker / ".logs" / "pool.log") as con:  # mkdir fails (not a directory)
        assert con.log_path is None and runlog.current() is con
    assert runlog.current() is not con and blocker.is_file()

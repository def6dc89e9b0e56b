"""How many CPU threads torch (and the OpenMP / MKL pools under it) may use: ``--threads``.

Why resetkit sets it: torch's default is one thread per core, and OpenMP threads spin while
they wait for each other.  On a machine whose cores are busy with other work (a shared box, a
CI runner, several resetkit processes at once) every parallel region then waits for a thread
that is not scheduled: on a loaded 2-core machine generation ran 10-15x slower with 2 threads
than with 1 (bench/results/pool-real.md).  So:

- ``--threads N`` (or ``$RESETKIT_THREADS``) sets it explicitly;
- the default is the CPUs this process may use (affinity and cgroup quota), divided by the
  processes that share them (``processes``), and lowered to the CPUs left idle by the load
  average when the machine is busy; at least 1;
- ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep instead of spinning) unless the user set it.

Thread count changes speed only: the results are the same (tested: greedy outputs are equal
with 1 and 2 threads).
"""

from __future__ import annotations

import os
import sys

ENV = "RESETKIT_THREADS"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def default_threads(processes: int = 1, *, load: float | None = None, cpus: int | None = None) -> int:
    """The default thread count for one of ``processes`` processes sharing this machine.

    ``load`` (the 1-minute load average) and ``cpus`` are read from the system when not given."""
    cpus = usable_cpus() if cpus is None else cpus
    share = max(1, cpus // max(1, processes))
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    idle = int(cpus - load)
    return max(1, min(share, idle // max(1, processes)))


def resolve_threads(threads: int | None = None, processes: int = 1) -> int:
    """Explicit ``threads``, else ``$RESETKIT_THREADS``, else ``default_threads(processes)``."""
    from resetkit.errors import ResetkitError

    if threads is None and os.environ.get(ENV, "").strip():
        raw = os.environ[ENV].strip()
        try:
            threads = int(raw)
        except ValueError:
            raise ResetkitError(f"${ENV} must be a whole number of threads, not {raw!r}") from None
    if threads is None:
        return default_threads(processes)
    if threads < 1:
        raise ResetkitError(f"--threads must be at least 1 (got {threads})")
    return int(threads)


def apply_threads(threads: int | None = None, processes: int = 1) -> int:
    """Set the thread count for this process and the processes it starts; returns it.

    Also sets ``$RESETKIT_THREADS``, so a later call without a count (the pool run by
    ``resetkit eval``) keeps it.

    Sets ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` (read by
    libraries loaded later and by child processes: vLLM engines, Ray workers, DeepSpeed
    launchers), ``OMP_WAIT_POLICY=PASSIVE`` unless set, and torch's intra-op threads when
    torch is imported already (an import later reads ``OMP_NUM_THREADS``)."""
    n = resolve_threads(threads, processes)
    os.environ[ENV] = str(n)  # later calls in this process (a pool inside eval) keep the choice
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch = sys.modules.get("torch")
    if torch is not None:  # otherwise torch reads OMP_NUM_THREADS when it is imported
        torch.set_num_threads(n)
    return n


"""Run every benchmark (`make bench`): each bench/bench_*.py in turn, results under bench/results/.

Pass --quick for the smaller runs.  Each script prints its own table and writes
bench/results/<topic>.md; BENCHMARKS.md collects those files with their commands.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        rc = subprocess.call([sys.executable, str(script), *argv], cwd=HERE.parent)
        if rc:
            failed.append(script.name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Benchmark: rehearse the dev stack in a fresh process, wall time with start-up and imports.

Runs `python -m checks --rehearse` REPEATS times, prints each run's wall time and the split the
rehearsal itself reports (evaluate, deploy into the emulator, check). Target: under 15 s.

    python3 dev.py bench
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3
TARGET_SECONDS = 15.0


def main() -> int:
    print(f"rehearsal of Pulumi.dev.yaml, fresh process each run, {os.cpu_count()} cores")
    walls = []
    for run in range(1, REPEATS + 1):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "checks", "--rehearse", "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
        walls.append(wall)
        split = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"
        print(f"run {run}: exit {done.returncode}, wall {wall:.2f} s; {split}")
        if done.returncode != 0:
            return 1
    worst = max(walls)
    verdict = "OK" if worst < TARGET_SECONDS else "MISSED"
    print(f"slowest {worst:.2f} s (target < {TARGET_SECONDS:.0f} s): {verdict}")
    return 0 if worst < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the rehearsal at scale, in fresh processes, with peak memory.

- 50 services with 32-character names, the full pairwise object-level proof;
- the largest supported stack (300 services), with --sample 8: every service role probes 8
  other buckets in rotation, the host role all 300;
- the same 300 services with the full proof (~360,000 probes) and a 60 s deadline: it cannot
  finish, and must say how far it got and exit 1, never pass.
Targets: 50 services in at most 30 s; the sampled 300 within the default 300 s deadline; the
cut-short run ends within its deadline plus 15 s, with exit 1.

    python3 dev.py bench
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (services, options, wall-time target, the exit code it must end with)
RUNS = (
    (50, (), 30.0, 0),
    (300, ("--sample", "8"), 300.0, 0),
    (300, ("--deadline", "60"), 75.0, 1),
)


def stack(count: int, directory: Path) -> Path:
    names = "".join(f"    - name: s{i:03d}-{'x' * 27}\n" for i in range(count))
    path = directory / f"Pulumi.scale{count}.yaml"
    path.write_text(f"config:\n  aws:region: us-east-1\n  ec2-assume-role:services:\n{names}")
    return path


def main() -> int:
    print(f"rehearsal at scale, fresh process each, {os.cpu_count()} cores")
    print(
        f"{'services':>8} {'options':<14} {'wall s':>7} {'peak MiB':>9} {'exit':>4} "
        f"{'probes run':>17}  split"
    )
    ok = True
    with tempfile.TemporaryDirectory() as directory:
        for count, options, target, wanted in RUNS:
            config = stack(count, Path(directory))
            command = [sys.executable, "-m", "checks", "--rehearse", "--json"]
            started = time.perf_counter()
            done = subprocess.run(
                [*command, "--config-file", str(config), *options],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - started
            # The largest child so far; the runs grow, so it is this run's own peak.
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            lines = done.stderr.strip().splitlines()
            split = next((line for line in reversed(lines) if "rehearsal of" in line), "")
            split = split.split(": ", 2)[-1]
            label = " ".join(options) or "full"
            code = done.returncode
            try:
                proof = json.loads(done.stdout).get("proof", {})
                probes = f"{proof['done']:,}/{proof['planned']:,}"
            except (ValueError, KeyError):
                probes = "?"
            print(
                f"{count:>8} {label:<14} {wall:>7.1f} {peak:>9.0f} {code:>4} {probes:>17}  {split}"
            )
            ok &= code == wanted and wall <= target
    verdict = "OK" if ok else "MISSED"
    print(
        "targets (50 services <= 30 s; 300 sampled <= 300 s; 300 full, cut at 60 s, exit 1 "
        f"by 75 s): {verdict}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

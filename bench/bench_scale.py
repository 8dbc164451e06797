"""Benchmark: the rehearsal at scale, in fresh processes, with peak memory.

Every run includes the reach proof (the documents prove every pair), so by default the probes
are a rotation (`--sample 1` equivalent): each service role probes one other bucket, the host
role all of them.
- 50 services with 32-character names, the default probes;
- the largest supported stack (300 services), the default probes;
- the same 300 services with --full-probes (every pair, ~360,000 probes) and a 60 s deadline:
  it cannot finish, and must say how far it got and exit 1, never pass.
Targets: 50 services in at most 30 s; the default 300 in at most 60 s, exit 0, reach proof
included; the cut-short run ends within its deadline plus 15 s, with exit 1.

    python3 dev.py bench
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (services, options, wall-time target, the exit code it must end with)
RUNS = (
    (50, (), 30.0, 0),
    (300, (), 60.0, 0),
    (300, ("--full-probes", "--deadline", "60"), 75.0, 1),
)


def stack(count: int, directory: Path) -> Path:
    names = "".join(f"    - name: s{i:03d}-{'x' * 27}\n" for i in range(count))
    path = directory / f"Pulumi.scale{count}.yaml"
    path.write_text(f"config:\n  aws:region: us-east-1\n  ec2-assume-role:services:\n{names}")
    return path


def run(command: list[str], directory: Path) -> tuple[int, str, str, float]:
    """Run one rehearsal: its exit code, stdout, stderr and its own peak RSS in MiB.

    The child is reaped with os.wait4, so the peak is this run's alone (RUSAGE_CHILDREN would
    give the largest of all runs so far, and the cut-short run need not be the largest).
    """
    out_path, err_path = directory / "stdout", directory / "stderr"
    with out_path.open("w") as out, err_path.open("w") as err:
        child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, out_path.read_text(), err_path.read_text(), usage.ru_maxrss / 1024


def main() -> int:
    print(f"rehearsal at scale, fresh process each, {os.cpu_count()} cores")
    print(
        f"{'services':>8} {'options':<27} {'wall s':>7} {'peak MiB':>9} {'exit':>4} "
        f"{'probes run':>17} {'reach':>5}  split"
    )
    ok = True
    with tempfile.TemporaryDirectory() as directory:
        for count, options, target, wanted in RUNS:
            config = stack(count, Path(directory))
            command = [sys.executable, "-m", "checks", "--rehearse", "--json"]
            started = time.perf_counter()
            code, stdout, stderr, peak = run(
                [*command, "--config-file", str(config), *options], Path(directory)
            )
            wall = time.perf_counter() - started
            lines = stderr.strip().splitlines()
            split = next((line for line in reversed(lines) if "rehearsal of" in line), "")
            split = split.split(": ", 2)[-1]
            label = " ".join(options) or "default"
            try:
                report = json.loads(stdout)
            except ValueError:
                report = {}
            proof, reach = report.get("proof", {}), report.get("reach", {})
            try:
                probes = f"{proof['done']:,}/{proof['planned']:,}"
            except KeyError:
                probes = "?"
            proven = {True: "ok", False: "FAIL", None: "-"}.get(reach.get("ok"), "?")
            print(
                f"{count:>8} {label:<27} {wall:>7.1f} {peak:>9.0f} {code:>4} {probes:>17} "
                f"{proven:>5}  {split}"
            )
            if code != wanted or wall > target:
                ok = False
                print(f"  MISSED (wanted exit {wanted} within {target:.0f} s); stderr ends:")
                for line in lines[-5:]:
                    print(f"    {line}")
    verdict = "OK" if ok else "MISSED"
    print(
        "targets (50 services <= 30 s; 300 default <= 60 s, exit 0; 300 --full-probes, cut at "
        f"60 s, exit 1 by 75 s): {verdict}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

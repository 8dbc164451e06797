"""Benchmark: evaluate `__main__.py` under the tests' recording mocks at 10 and 100 services.

Each size runs in fresh processes so that peak memory (max RSS) belongs to that size alone, and
REPEATS times, reporting the fastest run (the one least disturbed by the rest of the machine).
Prints wall time for the evaluation (importing pulumi_aws included, as in `pulumi up`) and the
process's peak RSS. Targets: 100 services in at most 5 s, and at most 3x the 10-service time.

    python3 dev.py bench
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10, 100)
TARGET_SECONDS = 5.0
TARGET_RATIO = 3.0
REPEATS = 3


def measure(count: int) -> dict[str, float]:
    """Evaluate the program once with `count` shared-topology services, in this process."""
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from conftest import RecordingMocks, stack_config

    from infra.mock_program import evaluate

    config = stack_config([f"service-{i:03d}" for i in range(count)])
    mocks = RecordingMocks()
    start = time.perf_counter()
    outputs = evaluate(mocks, config)
    seconds = time.perf_counter() - start
    if len(outputs["services"]) != count:
        raise SystemExit(f"expected {count} services in the outputs")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "services": count,
        "resources": len(mocks.resources),
        "seconds": seconds,
        "peak_mib": peak_kib / 1024,
    }


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(int(sys.argv[2]))))
        return 0
    results = []
    for count in SIZES:
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, __file__, "--one", str(count)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            for _ in range(REPEATS)
        ]
        results.append(min(runs, key=lambda r: r["seconds"]))
    print(f"best of {REPEATS} runs per size, {os.cpu_count()} cores")
    print(f"{'services':>8} {'resources':>9} {'evaluate s':>10} {'peak MiB':>9}")
    for r in results:
        print(f"{r['services']:>8} {r['resources']:>9} {r['seconds']:>10.2f} {r['peak_mib']:>9.1f}")
    small, large = results[0]["seconds"], results[-1]["seconds"]
    ratio = large / small
    ok = large <= TARGET_SECONDS and ratio <= TARGET_RATIO
    print(
        f"100 vs 10 services: {ratio:.2f}x (target <= {TARGET_RATIO}x); "
        f"100 services {large:.2f} s (target <= {TARGET_SECONDS} s): {'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

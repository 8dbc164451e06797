"""Benchmark: how many instances each kind of change replaces, from the program under mocks.

For each change, the program is evaluated before and after (3 services, shared topology), and
the dev host's replace-forcing inputs are compared (tests/replacements.py: the inputs for
which pulumi-aws replaces an aws.ec2.Instance). Target: zero replacements for service changes.

    python3 dev.py bench
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
BASE = ["service-a", "service-b", "service-c"]
CHANGES: list[tuple[str, list[str], dict[str, Any]]] = [
    ("add a service", [*BASE, "service-d"], {}),
    ("remove a service", BASE[:2], {}),
    ("rename a service", ["service-a", "service-b", "service-z"], {}),
    ("change the instance type", BASE, {"instanceType": "t3.small"}),
    ("pin a new AMI (for contrast)", BASE, {"amiId": "ami-0fedcba9876543210"}),
]


def main() -> int:
    from conftest import RecordingMocks, Run, stack_config
    from replacements import replacement_causes

    from infra.mock_program import evaluate

    def run(services: list[str], **keys: Any) -> Run:
        mocks = RecordingMocks()
        return Run(outputs=evaluate(mocks, stack_config(services, **keys)), mocks=mocks)

    base = run(BASE, amiId="ami-0123456789abcdef0")
    print("instance replacements per change (shared topology, 3 services, program under mocks)")
    print(f"{'change':<30} {'replaced':>8}  cause")
    missed = False
    for label, services, keys in CHANGES:
        causes = replacement_causes(
            base, run(services, **{"amiId": "ami-0123456789abcdef0", **keys})
        )
        replaced = 1 if causes else 0
        print(f"{label:<30} {replaced:>8}  {', '.join(causes) or '-'}")
        missed |= bool(replaced) and "AMI" not in label
    print(f"service changes replace nothing: {'MISSED' if missed else 'OK'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

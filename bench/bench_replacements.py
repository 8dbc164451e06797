"""Benchmark: how many instances each kind of change replaces, from the program under mocks.

For each change, the program is evaluated before and after (3 services, shared topology), and
the dev host's replace-forcing inputs and its logical name are compared
(tests/support/replacements.py:
the inputs for which pulumi-aws replaces an aws.ec2.Instance, and a new URN). Target: zero
replacements for service changes and for an instance type of the same architecture; exactly
one, deliberately, for a change of architecture (the host must move to an image for it) and
for a pinned AMI that changes.

    python3 dev.py bench
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
BASE = ["service-a", "service-b", "service-c"]
PINNED = {"amiId": "ami-0123456789abcdef0"}
# (change, services after, config before, config after, replacements expected)
CHANGES: list[tuple[str, list[str], dict[str, Any], dict[str, Any], int]] = [
    ("add a service", [*BASE, "service-d"], PINNED, PINNED, 0),
    ("remove a service", BASE[:2], PINNED, PINNED, 0),
    ("rename a service", ["service-a", "service-b", "service-z"], PINNED, PINNED, 0),
    ("change the instance type", BASE, PINNED, {**PINNED, "instanceType": "t3.small"}, 0),
    # Unpinned, as a change of architecture is made: each side gets the latest AL2023 for it.
    ("change the instance type across architectures", BASE, {}, {"instanceType": "t4g.small"}, 1),
    ("pin a new AMI (for contrast)", BASE, PINNED, {"amiId": "ami-0fedcba9876543210"}, 1),
]


def main() -> int:
    from conftest import RecordingMocks, Run, stack_config
    from support.replacements import replacement_causes

    from infra.mock_program import evaluate

    def run(services: list[str], **keys: Any) -> Run:
        mocks = RecordingMocks()
        return Run(outputs=evaluate(mocks, stack_config(services, **keys)), mocks=mocks)

    width = max(len(label) for label, *_ in CHANGES)
    print("instance replacements per change (shared topology, 3 services, program under mocks)")
    print(f"{'change':<{width}} {'replaced':>8} {'expected':>8}  cause")
    missed = False
    for label, services, before, after, expected in CHANGES:
        causes = replacement_causes(run(BASE, **before), run(services, **after))
        replaced = 1 if causes else 0
        print(f"{label:<{width}} {replaced:>8} {expected:>8}  {', '.join(causes) or '-'}")
        missed |= replaced != expected
    print(f"each change replaces exactly what it should: {'MISSED' if missed else 'OK'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

"""parliament, the IAM linter, as a test helper."""

from __future__ import annotations

import json
from typing import Any

import parliament

# Trust policies carry no Resource by design; this is the one finding they may have.
TRUST_POLICY_EXCUSE = "Statement contains neither Resource nor NotResource"


def findings(document: dict[str, Any] | str, *, trust: bool = False) -> list[str]:
    """parliament's findings for a policy, as readable strings; trust policies get one excuse."""
    text = document if isinstance(document, str) else json.dumps(document)
    policy = parliament.analyze_policy_string(text)
    found = [f"{f.issue}: {f.detail}" for f in policy.findings]
    if trust:
        found = [f for f in found if not f.endswith(TRUST_POLICY_EXCUSE)]
    return found

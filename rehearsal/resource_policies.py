"""Resource policies (bucket and key policies) evaluated for one request, as AWS does.

Shared by the emulator's S3 rules (rehearsal/moto_rules.py) and its KMS rules
(rehearsal/moto_kms_rules.py); only the condition operators the program's documents use are
supported, and any other is refused loudly rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from checks.trust import Effect, as_list, load_document, principal_matches, wildcard

# What every request from an AWS SDK carries in this emulation (they all use TLS endpoints).
REQUEST_CONTEXT = {"aws:securetransport": "true"}


def condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            actual = context.get(key.lower())
            values = [str(v).lower() for v in as_list(wanted)]
            if operator in ("Bool", "StringEquals", "StringEqualsIgnoreCase"):
                if actual is None or actual.lower() not in values:
                    return False
            elif operator in ("StringNotEquals", "StringNotEqualsIgnoreCase"):
                if actual is not None and actual.lower() in values:
                    return False
            elif operator == "StringLike":
                if actual is None or not any(wildcard(v, actual) for v in values):
                    return False
            elif operator == "Null":  # "true": the key is absent; "false": it is present
                if (actual is None) != (values == ["true"]):
                    return False
            else:
                # Loud rather than wrong: a new condition in the program needs support here.
                raise ValueError(f"the emulator cannot evaluate condition operator {operator}")
    return True


def applies(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    """Whether the statement's Action/NotAction and Resource/NotResource cover the request."""
    if "NotAction" in statement:
        acts = not any(wildcard(a, action) for a in as_list(statement["NotAction"]))
    else:
        acts = any(wildcard(a, action) for a in as_list(statement.get("Action")))
    if "NotResource" in statement:
        covers = not any(wildcard(r, resource) for r in as_list(statement["NotResource"]))
    else:
        covers = any(wildcard(r, resource) for r in as_list(statement.get("Resource")))
    return acts and covers


def is_account(principal: str) -> bool:
    """An account principal (`123456789012` or `arn:...:iam::123456789012:root`)."""
    return principal.isdigit() or principal.endswith(":root")


def naming(statement: Mapping[str, Any], caller_arn: str | None) -> tuple[bool, bool]:
    """(does the statement name the caller, would its Allow grant the caller by itself).

    Without a caller (moto's own, anonymous evaluation) only statements for everyone count.
    A caller named only through its account is named (a Deny applies) but not granted: the
    account delegates to its identity policies.
    """
    if "NotPrincipal" in statement:
        # AWS matches NotPrincipal against the session, the role and the account separately;
        # loud rather than wrong until the program needs it.
        raise ValueError("the emulator cannot evaluate a bucket policy with NotPrincipal")
    principal = statement.get("Principal")
    entries = ["*"] if principal == "*" else []
    if isinstance(principal, Mapping):
        entries = [str(p) for p in as_list(principal.get("AWS"))]
    if caller_arn is None:
        return ("*" in entries, "*" in entries)
    matching = [p for p in entries if principal_matches(p, caller_arn)]
    return (bool(matching), any(not is_account(p) for p in matching))


def bucket_policy_effect(
    document: str | Mapping[str, Any],
    action: str,
    resource: str,
    caller_arn: str | None = None,
    context: Mapping[str, str] = REQUEST_CONTEXT,
) -> Effect | None:
    """A bucket policy's effect on a request, or None (neutral).

    Without `caller_arn`, as moto asks it (it does not say who is calling), only statements
    for every principal (`"*"`) are evaluated. With it, statements naming that caller are too:
    ALLOW means the policy grants the caller by itself (it names the role, the session or
    `*`, not just the account); DENY means some applicable Deny names the caller.
    """
    effects = set()
    for statement in as_list(load_document(document).get("Statement")):
        if not applies(statement, action, resource):
            continue
        named, grants = naming(statement, caller_arn)
        if not named or not condition_holds(statement.get("Condition", {}), context):
            continue
        effect = Effect(statement.get("Effect", "Allow"))
        if effect is Effect.DENY or grants:
            effects.add(effect)
    if Effect.DENY in effects:
        return Effect.DENY
    return Effect.ALLOW if Effect.ALLOW in effects else None

"""Trust: who may assume a role (guarantee 1 of the pack).

A role may be assumed only by the host role, EC2, or a principal the operator named. So every
Allow of a trust policy names service principals, specific role or user ARNs, or a federated
provider with its subject and audience pinned; `*`, an account root, a bare account id and
NotPrincipal are refused. A condition does not rescue `*` or a root: it is one typo, or one
missing key, away from trusting every identity of every account (or of the whole account).

Whether a principal is `*`, an account or not one role or user ARN is the check's guarantee
(`guarantees.wide_principal`), so the pack and the check agree on it; services, federation and
NotPrincipal, which a trust policy of this stack may hold, are the pack's own rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

try:
    from policy import rules_base as base
    from policy import shared
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]
    import shared  # type: ignore[import-not-found, no-redef]

# Operators that compare the whole value; StringLike too when the value holds no wildcard.
# `...IfExists` and the ForAnyValue/ForAllValues forms pass when the key is absent: not pinned.
PINNING_OPERATORS = frozenset({"stringequals", "stringequalsignorecase", "stringlike"})
OIDC_PROVIDER = re.compile(rf"^arn:{base.PARTITION}:iam::\d{{12}}:oidc-provider/(.+)$")
SAML_PROVIDER = re.compile(rf"^arn:{base.PARTITION}:iam::\d{{12}}:saml-provider/.+$")
WHOLE_ACCOUNT_FIX = (
    "any identity there allowed sts:AssumeRole could assume the role; "
    "name the role or user ARN instead (e.g. arn:aws:iam::123456789012:role/operator)"
)


def _condition_prefix(federated: str) -> str:
    """The prefix of the provider's condition keys: `token.actions.githubusercontent.com`."""
    oidc = OIDC_PROVIDER.match(federated)
    if oidc:
        return oidc.group(1)
    return "SAML" if SAML_PROVIDER.match(federated) else federated


def _pinned(condition: Any, key: str) -> bool:
    """Whether `key` must equal one of a list of exact values for the statement to apply."""
    if not isinstance(condition, Mapping):
        return False
    for operator, tests in condition.items():
        if str(operator).lower() not in PINNING_OPERATORS or not isinstance(tests, Mapping):
            continue
        for name, value in tests.items():
            values = base.as_list(value)
            exact = all(isinstance(v, str) and v and not base.has_wildcard(v) for v in values)
            if str(name).lower() == key.lower() and values and exact:
                return True  # Conditions are ANDed: one exact test pins the key.
    return False


def _problem(kind: str, value: str, statement: base.Props) -> str | None:
    """Why trusting this principal is refused, or None."""
    if kind == "Service":
        return None if not base.has_wildcard(value) else f'trusts service "{value}"'
    if kind == "AWS":
        wide = shared.wide_principal(kind, value)
        return None if wide is None else f"trusts {wide}: {WHOLE_ACCOUNT_FIX}"
    if kind == "Federated":
        prefix = _condition_prefix(value)
        keys = [f"{prefix}:sub", f"{prefix}:aud"]
        missing = [k for k in keys if not _pinned(statement.get("Condition"), k)]
        if not missing:
            return None
        return (
            f'trusts "{value}" without pinning {" and ".join(missing)}: any token of that '
            "provider could assume the role; add a StringEquals condition on each "
            '(e.g. "repo:OWNER/REPO:environment:dev" and "sts.amazonaws.com" for GitHub)'
        )
    return f'trusts a "{kind}" principal: trust only services, named roles or users, or OIDC'


def trust_named_principals(resource_type: str, props: base.Props) -> list[str]:
    """A role trusts only named principals: anything wider lets strangers assume it."""
    if resource_type != base.ROLE or props.get("assumeRolePolicy") is None:
        return []
    doc = base.document(props["assumeRolePolicy"])
    if doc is None:
        return [base.not_a_document("assumeRolePolicy")]
    found: list[str] = []
    for label, statement in base.statements(doc):
        if not base.grants(statement):
            continue
        where = f"assumeRolePolicy {label}"
        if "NotPrincipal" in statement:
            found.append(
                f"{where} trusts everyone but its NotPrincipal: "
                "name the trusted principals under Principal instead"
            )
        principals = base.principals(statement.get("Principal"))
        if any(shared.names_anyone(kind, value) for kind, value in principals):
            found.append(
                f"{where} lets {shared.ANYONE} assume the role, whatever its conditions: "
                "name the trusted role, user or service principal instead"
            )
            continue
        for kind, value in principals:
            problem = _problem(kind, value, statement)
            if problem:
                found.append(f"{where} {problem}")
    return found

"""Bucket policies: no Allow to strangers (guarantee 4 of the pack, second half).

A service's bucket is reached through its service role's identity policy; its bucket policy
only takes access away. So any Allow in a bucket policy must name specific roles or users of
this stack's own account: never `*`, an account, a service, another account, or NotPrincipal.

Whether an AWS principal is `*`, an account or not one role or user ARN is the check's guarantee
(`guarantees.wide_principal`), shared with the check's own reading of bucket policies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

try:
    from policy import rules_base as base
    from policy import rules_stack as stack
    from policy import shared
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]
    import rules_stack as stack  # type: ignore[import-not-found, no-redef]
    import shared  # type: ignore[import-not-found, no-redef]

NAME_THE_ROLE = (
    "grant the service role in its identity policy instead, or name one role or user ARN "
    "of this account"
)


def bucket_documents(resource_type: str, props: base.Props) -> list[tuple[str, Any]]:
    """(where, document) of the bucket policies a resource writes: BucketPolicy or inline."""
    if resource_type == base.BUCKET_POLICY or resource_type in base.BUCKET_TYPES:
        value = props.get("policy")
        return [("policy", value)] if value else []
    return []


def _allow_problems(where: str, statement: base.Props) -> list[str]:
    if "NotPrincipal" in statement:
        return [f"{where} allows everyone but its NotPrincipal: {NAME_THE_ROLE}"]
    principals = base.principals(statement.get("Principal"))
    if any(shared.names_anyone(kind, value) for kind, value in principals):
        return [f'{where} allows anyone ("*"), whatever its conditions: {NAME_THE_ROLE}']
    problems: list[str] = []
    for kind, value in principals:
        if kind != "AWS":  # A service, a federation: never one role or user of this account.
            problems.append(f'{where} allows the {kind} principal "{value}": {NAME_THE_ROLE}')
        elif wide := shared.wide_principal(kind, value):
            problems.append(f"{where} allows {wide}: {NAME_THE_ROLE}")
        # Otherwise one role or user: its account is checked against the stack's by
        # s3-bucket-policy-own-account.
    return problems


def bucket_policy_no_public_allow(resource_type: str, props: base.Props) -> list[str]:
    """An Allow in a bucket policy opens the bucket to whoever it names, past every role."""
    found: list[str] = []
    for where, value in bucket_documents(resource_type, props):
        doc = base.document(value)
        if doc is None:
            found.append(base.not_a_document(where))
            continue
        for label, statement in base.statements(doc):
            if base.grants(statement):
                found += _allow_problems(f"{where} {label}", statement)
    return found


def stack_accounts(resources: Sequence[stack.StackResource]) -> tuple[set[str], stack.Pending]:
    """The accounts of the stack's roles, where its principals live; and why some are not known
    (a role's ARN in a preview)."""
    accounts, pending = set(), None
    for role in stack.of_type(resources, base.ROLE):
        arn, why = stack.peek(role.props, "arn")
        match = base.NAMED_PRINCIPAL.match(str(arn))
        if match:
            accounts.add(match.group(1) or match.group(2))
        pending = pending or why
    return accounts, pending


def _named_accounts(doc: base.Props) -> Iterator[tuple[str, str, str]]:
    """(label, principal, account) of each role or user an Allow of the document names."""
    for label, statement in base.statements(doc):
        if not base.grants(statement):
            continue
        for _, value in base.principals(statement.get("Principal")):
            match = base.NAMED_PRINCIPAL.match(value)
            if match:
                yield label, value, match.group(1) or match.group(2)


def bucket_policies_own_account(resources: Sequence[stack.StackResource]) -> stack.Findings:
    """A bucket policy may allow only principals of the account its stack deploys to."""
    findings = stack.Findings()
    accounts, pending = stack_accounts(resources)
    known = ", ".join(sorted(accounts)) or "none: no role of the stack has an ARN"
    for resource in stack.of_type(resources, base.BUCKET_POLICY, *base.BUCKET_TYPES):
        with findings.deciding(resource.name):
            for where, value in bucket_documents(resource.resource_type, resource.props):
                doc = base.document(value)
                for label, principal, account in _named_accounts(doc) if doc is not None else ():
                    if account in accounts:
                        continue
                    if pending is not None:
                        raise pending  # A role whose ARN is not known yet may be of that account.
                    findings.add(
                        resource,
                        f"{resource.name}'s {where} {label} allows {principal}, of account "
                        f"{account}, not of this stack's account ({known}): {NAME_THE_ROLE}",
                    )
    return findings

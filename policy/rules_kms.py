"""KMS key policies: usage for no one but the stack's own account (guarantee 4, for keys).

A stack-created key's policy names the account alone, which hands the key to the account's IAM
policies: usage still needs an identity grant, and the service role's is the only one (the
identity rules refuse `kms:*` and any KMS action on `*`). So a key policy Allow may name the
stack's account, or one role or user of it; never `*`, a service, NotPrincipal or another
account, each of which would let someone use the key past every role.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

try:
    from policy import rules_base as base
    from policy import rules_bucket_policy as buckets
    from policy import rules_stack as stack
    from policy import shared
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]
    import rules_bucket_policy as buckets  # type: ignore[import-not-found, no-redef]
    import rules_stack as stack  # type: ignore[import-not-found, no-redef]
    import shared  # type: ignore[import-not-found, no-redef]

KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
KEY_TYPES = (KEY, KEY_POLICY)
FIX = "name the stack's account (its root, for administration) or one role of it"
_ACCOUNT = re.compile(r"(?:^|:)(\d{12})(?::|$)")


def _documents(resource_type: str, props: base.Props) -> list[tuple[str, base.Props | None]]:
    """(where, document) of the key policy a resource writes; None when it is not JSON."""
    if resource_type not in KEY_TYPES or not props.get("policy"):
        return []
    return [("policy", base.document(props.get("policy")))]


def key_policy_no_public_use(resource_type: str, props: base.Props) -> list[str]:
    """A key policy's Allow names the account or one of its roles or users, nothing wider."""
    found: list[str] = []
    for where, doc in _documents(resource_type, props):
        if doc is None:
            found.append(base.not_a_document(where))
            continue
        for label, statement in base.statements(doc):
            if not base.grants(statement):
                continue
            at = f"{where} {label}"
            if "NotPrincipal" in statement:
                found.append(f"{at} lets everyone but its NotPrincipal use the key: {FIX}")
                continue
            for kind, value in base.principals(statement.get("Principal")):
                if shared.names_anyone(kind, value):
                    found.append(
                        f'{at} lets anyone ("*") use the key, whatever its conditions: {FIX}'
                    )
                elif kind != "AWS":
                    found.append(f'{at} lets the {kind} principal "{value}" use the key: {FIX}')
                elif not (base.ACCOUNT_ROOT.match(value) or base.NAMED_PRINCIPAL.match(value)):
                    found.append(
                        f'{at} names "{value}", which is not an account or one role: {FIX}'
                    )
    return found


def key_policies_own_account(resources: Sequence[stack.StackResource]) -> stack.Findings:
    """A key policy may name only the account its stack deploys to, and that account's roles."""
    findings = stack.Findings()
    accounts, pending = buckets.stack_accounts(resources)
    known = ", ".join(sorted(accounts)) or "none: no role of the stack has an ARN"
    for resource in stack.of_type(resources, *KEY_TYPES):
        with findings.deciding(resource.name):
            for where, doc in _documents(resource.resource_type, resource.props):
                for label, statement in base.statements(doc) if doc is not None else ():
                    if not base.grants(statement):
                        continue
                    for kind, value in base.principals(statement.get("Principal")):
                        match = _ACCOUNT.search(value) if kind == "AWS" else None
                        if match is None or match.group(1) in accounts:
                            continue
                        if pending is not None:
                            raise pending  # a role whose ARN is not known yet may say which
                        findings.add(
                            resource,
                            f"{resource.name}'s {where} {label} names {value}, of account "
                            f"{match.group(1)}, not this stack's ({known}): {FIX}",
                        )
    return findings

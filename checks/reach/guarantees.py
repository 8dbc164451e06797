"""The guarantees, as pure functions over IAM and bucket policy documents.

Written once, used wherever a guarantee is checked: by the reach proof on the documents the
account holds, and by the CrossGuard policy pack on the documents a preview declares. Nothing
here imports boto3, pulumi or pulumi-policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from checks.reach import catalogue
from checks.reach.documents import Statement

# The only grants a service role holds on its own bucket: (action, scope).
OWN_GRANTS = frozenset(
    {
        ("s3:ListBucket", "bucket"),
        ("s3:GetObject", "objects"),
        ("s3:PutObject", "objects"),
        ("s3:DeleteObject", "objects"),
    }
)
OWN_OPTIONAL = frozenset({("s3:DeleteObjectVersion", "check objects")})
"""Versioned buckets: the check removes the versions it wrote, under its own prefix only."""

ACCOUNT_ROOT = re.compile(r"^(?:\d{12}|arn:[\w-]+:iam::\d{12}:root)$")
_NAME = r"[\w+=,.@-]+"
NAMED_PRINCIPAL = re.compile(
    rf"^arn:aws[\w-]*:(?:iam::\d{{12}}:(?:role|user)/(?:{_NAME}/)*{_NAME}"
    rf"|sts::\d{{12}}:assumed-role/{_NAME}/{_NAME})$"
)
"""One role, user or role session: no wildcard, the right service for each kind."""
# Replication copies every object to a bucket the configuration names: the catalogue files it
# under Write, yet it hands the data to whoever owns that bucket.
REPLICATION = "s3:PutReplicationConfiguration"
# Running code where another identity's credentials are: an instance's role (commands, a
# session, an SSH key, new user data) or a function's role (new code or settings). Outside the
# catalogue's judged services, so named here; each is an edge in PMapper's sense, kept as a
# finding rather than followed, since no identity the stack reaches may hold one.
RUNS_CODE_ELSEWHERE = (
    "ssm:SendCommand",
    "ssm:StartSession",
    "ssm:StartAutomationExecution",
    "ssm:CreateAssociation",
    "ssm:UpdateAssociation",
    "ec2-instance-connect:SendSSHPublicKey",
    "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
    "ec2:ModifyInstanceAttribute",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
)


def wide_principal(kind: str, value: str) -> str | None:
    """Why an AWS principal entry names more than one identity, or None for a named one."""
    if kind == "*" or value == "*":
        return 'any principal ("*")'
    if kind != "AWS":
        return None
    if ACCOUNT_ROOT.match(value):
        return f'the whole account "{value}"'
    if not NAMED_PRINCIPAL.match(value):
        return f'"{value}", which is not one role or user ARN'
    return None


def stack_trust_problems(
    trust: Iterable[Statement], allowed: set[str] | None, ec2_principals: frozenset[str]
) -> list[tuple[str, str]]:
    """(where, problem) for each way a stack role's trust lets in more than the design says.

    `allowed` is the set of role or user ARNs it may name (for a service role, the host role
    in the shared topology and nothing in the dedicated one); None lets it name any one role
    or user (the host role's trusted operators), never more than one at a time.
    """
    found: list[tuple[str, str]] = []
    for statement in trust:
        if not statement.allow:
            continue
        if statement.not_principal:
            found.append((statement.where, "trusts everyone but its NotPrincipal"))
            continue
        for kind, value in statement.principals:
            wide = wide_principal(kind, value)
            if wide:
                found.append(
                    (
                        statement.where,
                        f"trusts {wide}: name the one role or user ARN instead, or remove it",
                    )
                )
            elif kind == "Service" and value not in ec2_principals:
                found.append((statement.where, f'trusts the service "{value}": only EC2 may'))
            elif kind == "Federated":
                found.append((statement.where, f'trusts the identity provider "{value}"'))
            elif kind == "AWS" and allowed is not None and value not in allowed:
                who = "only the host role may" if allowed else "no IAM principal may"
                found.append((statement.where, f'trusts "{value}": {who}'))
    return found


def bucket_policy_strangers(
    policy: Iterable[Statement], own_role: str
) -> Iterator[tuple[Statement, str]]:
    """(statement, principal) for each Allow of a bucket policy to anyone but its own role."""
    for statement in policy:
        if not statement.allow:
            continue
        if statement.not_principal:
            yield statement, "anyone but its NotPrincipal"
            continue
        for kind, value in statement.principals:
            if not (kind == "AWS" and value == own_role):
                yield statement, value if kind in ("AWS", "*") else f"{kind} {value}"


def identity_escalations(statement: Statement) -> list[str]:
    """The actions an Allow names that widen who can do what, whatever the resource: every
    IAM change (policies, trust, attachments, credentials, PassRole), account-wide S3 access
    settings, and running code where another identity's credentials are."""
    from checks.reach.evaluate import judged_actions, names_action

    if not statement.allow:
        return []
    found = {a.name for a in judged_actions(statement) if _widens(a, bucket_level=False)}
    found |= {a for a in RUNS_CODE_ELSEWHERE if names_action(statement, a)}
    return sorted(found)


def escalations(statement: Statement) -> list[str]:
    """All the actions an Allow names that rewrite access: `identity_escalations`, and a
    bucket's own access settings (policy, ACLs, ownership, public access block, replication).
    The check judges the bucket ones per stack bucket, with the bucket's other grants."""
    from checks.reach.evaluate import judged_actions

    if not statement.allow:
        return []
    buckets = {a.name for a in judged_actions(statement) if _widens(a, bucket_level=True)}
    return sorted(set(identity_escalations(statement)) | buckets)


def rewrites_access(action: catalogue.Action) -> bool:
    """Whether a catalogue action rewrites access (an IAM change, an S3 access setting)."""
    return _widens(action, bucket_level=False) or _widens(action, bucket_level=True)


def _widens(action: catalogue.Action, bucket_level: bool) -> bool:
    service = action.name.split(":", 1)[0]
    if service == "iam":
        return not bucket_level and action.level in catalogue.CHANGES
    if service != "s3":
        return False
    setting = action.level == catalogue.PERMISSIONS or action.name == REPLICATION
    # Account-wide settings (no resource type) apply to every bucket at once.
    return setting and (bool(action.resources) == bucket_level)

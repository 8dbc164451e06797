"""Identity policies: what a role (or user, or group) may do (guarantee 2 of the pack).

Each service role reaches its own bucket and nothing else, and the host role may only assume
the service roles. So no Allow may reach data or privilege through a wildcard (here), and none
may let a principal widen its own access (rules_escalation), since that would undo every other
guarantee at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

try:
    from policy import rules_base as base
    from policy import shared
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]
    import shared  # type: ignore[import-not-found, no-redef]

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
# Identity policies whose whole document is the `policy` property.
POLICY_DOCUMENT_TYPES = frozenset({ROLE_POLICY, MANAGED_POLICY, USER_POLICY, GROUP_POLICY})

# Actions an Allow may grant on Resource "*", lowercase (IAM action names ignore case). Keep it
# to actions that can take no other resource and disclose nothing beyond the caller itself:
READ_ONLY_DISCOVERY_ACTIONS = frozenset(
    {
        # Accepts only "*", returns the caller's own account and ARN, and AWS answers it even
        # when no policy allows it: a check or a script may state it without granting anything.
        "sts:getcalleridentity",
    }
)

# The one wildcard an Allow may hold outside the object keys of one named bucket: sts:AssumeRole
# on every role under one literal IAM path, in one literal account and partition. The program
# puts its service roles under `/ec2-assume-role/<stack>/`, so the host role's grant stays one
# statement however many services there are. That is still least privilege: AssumeRole also
# needs the target role's trust policy to name the caller, and only the stack's service roles
# name the host role; no role of the stack may create roles or rewrite trust (the escalation
# rule), and the path keeps every other role of the account out of reach. The pack cannot know
# the stack's name, so any literal path passes; a `*` anywhere else, or no path, does not.
STACK_ROLE_PATH = re.compile(rf"^arn:{base.PARTITION}:iam::\d{{12}}:role/(?:[\w+=,.@-]+/)+\*$")
OBJECT_KEYS = re.compile(rf"^arn:{base.PARTITION}:s3:::[a-z0-9][a-z0-9.-]*/.*$")
# The catalogue's resource types whose wildcard reaches identities or their permissions: a role
# to pass or assume, a policy to create or attach.
ROLE_OR_POLICY = frozenset({"role", "policy"})


def _every_action(action: str) -> bool:
    """`*` and `service:*`, however many stars or question marks spell them."""
    return not action.split(":")[-1].strip("*?") and "*" in action


def identity_documents(resource_type: str, props: base.Props) -> list[tuple[str, object]]:
    """(where, document) of each identity policy the resource carries."""
    if resource_type in POLICY_DOCUMENT_TYPES:
        return [("policy", props.get("policy"))]
    if resource_type != base.ROLE:
        return []
    found: list[tuple[str, object]] = []
    for index, inline in enumerate(base.as_list(props.get("inlinePolicies"))):
        if isinstance(inline, Mapping):
            label = inline.get("name") or index
            found.append((f"inlinePolicies[{label}].policy", inline.get("policy")))
    return found


def _excused(action: str, resource: str) -> bool:
    if resource == "*" and action.lower() in READ_ONLY_DISCOVERY_ACTIONS:
        return True
    return action.lower() == "sts:assumerole" and STACK_ROLE_PATH.match(resource) is not None


def _resource_fix(granted: list[str], resource: str) -> str:
    # What the granted actions act on, by the catalogue (`iam:Pass*` acts on roles).
    acted_on = {kind for action in shared.catalogue.expand(granted) for kind in action.resources}
    if acted_on & ROLE_OR_POLICY:
        return "name each role or policy ARN: a wildcard reaches roles it was never meant to"
    if resource.startswith("arn:") and ":s3:::" in resource:
        return "name one bucket: only the object keys of one bucket (bucket/*) may be a wildcard"
    return "name the resource ARNs instead (e.g. the bucket ARN and bucket/*)"


def _wildcard_grants(where: str, value: object) -> list[str]:
    if value is None:  # e.g. an inlinePolicies entry that only clears the role's policies
        return []
    doc = base.document(value)
    if doc is None:
        return [base.not_a_document(where)]
    found: list[str] = []
    for label, statement in base.statements(doc):
        if not base.grants(statement):
            continue  # A Deny, such as the TLS-only bucket policy's s3:*, only takes away.
        granted = base.actions(statement)
        found += [
            f'{where} {label} allows "{a}": list only the actions needed (e.g. "s3:GetObject")'
            for a in granted
            if _every_action(a)
        ]
        if "NotAction" in statement:
            found.append(
                f"{where} {label} allows every action but its NotAction: "
                "list the allowed actions under Action instead"
            )
        if "NotResource" in statement:
            found.append(
                f"{where} {label} allows every resource but its NotResource: "
                "name the resource ARNs under Resource instead"
            )
        for resource in base.as_list(statement.get("Resource")):
            if not isinstance(resource, str) or not base.has_wildcard(resource):
                continue
            if OBJECT_KEYS.match(resource):
                continue  # The object keys of one named bucket: this is how S3 names objects.
            wide = [a for a in granted if not _excused(a, resource)]
            if wide:
                found.append(
                    f'{where} {label} allows {", ".join(wide)} on Resource "{resource}": '
                    + _resource_fix(wide, resource)
                )
    return found


def iam_no_wildcard_allow(resource_type: str, props: base.Props) -> list[str]:
    """Least privilege: an Allow names its actions and resources, with no wildcard reach."""
    found: list[str] = []
    for where, value in identity_documents(resource_type, props):
        found += _wildcard_grants(where, value)
    return found

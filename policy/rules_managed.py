"""Managed policies: which AWS- or customer-managed policies a principal may carry (guarantee 3).

A managed policy is a document this pack cannot read: AWS's change without notice, and a
customer-managed one may come from outside the stack. So attachments are checked against an
explicit allow-list rather than against a list of bad names, however they are made: an
attachment resource, a role's `managedPolicyArns`, or an exclusive attachment set.
"""

from __future__ import annotations

import re

try:
    from policy import rules_base as base
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]

# One policy ARN in `policyArn`.
SINGLE_ATTACHMENT_TYPES = frozenset(
    {
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment",
        "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
        "aws:iam/policyAttachment:PolicyAttachment",
    }
)
# A set of policy ARNs in `policyArns`, which the provider attaches (and keeps exclusive).
EXCLUSIVE_ATTACHMENT_TYPES = frozenset(
    {
        "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
        "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive",
        "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive",
    }
)

# Every managed policy a principal of this stack may carry, in any partition. Instance roles
# need the SSM core policy for Session Manager; the program pairs it with an inline Deny of
# ssm:GetParameter* on "*", since the policy would otherwise read every parameter.
ALLOWED_MANAGED_POLICIES = {
    "AmazonSSMManagedInstanceCore": re.compile(
        rf"^arn:{base.PARTITION}:iam::aws:policy/AmazonSSMManagedInstanceCore$"
    ),
}
# Names that say outright that the policy reaches far beyond one service's bucket.
BROAD_ACCESS = re.compile(
    r"AdministratorAccess|PowerUserAccess|FullAccess|ReadOnlyAccess|ViewOnlyAccess"
)


def _attached(resource_type: str, props: base.Props) -> list[tuple[str, object]]:
    """(where, policy ARN) of each managed policy the resource attaches."""
    if resource_type in SINGLE_ATTACHMENT_TYPES:
        return [("policyArn", props.get("policyArn"))]
    key = {base.ROLE: "managedPolicyArns"}.get(resource_type)
    if key is None and resource_type in EXCLUSIVE_ATTACHMENT_TYPES:
        key = "policyArns"
    if key is None:
        return []
    return [(f"{key}[{i}]", arn) for i, arn in enumerate(base.as_list(props.get(key)))]


def iam_managed_policy_allow_list(resource_type: str, props: base.Props) -> list[str]:
    """Only allow-listed managed policies: others grant what no rule here can see."""
    found: list[str] = []
    allowed = ", ".join(ALLOWED_MANAGED_POLICIES)
    for where, arn in _attached(resource_type, props):
        if isinstance(arn, str) and any(p.match(arn) for p in ALLOWED_MANAGED_POLICIES.values()):
            continue
        name = str(arn).rsplit("/", 1)[-1]
        why = "grants broad access" if BROAD_ACCESS.search(name) else "is not on the allow-list"
        found.append(
            f"{where} attaches {base.shown(arn)}, which {why}: grant only the actions and "
            f"resources needed in an inline policy (managed policies allowed: {allowed})"
        )
    return found

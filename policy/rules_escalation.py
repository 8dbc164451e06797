"""Privilege escalation: no role of this stack can widen its own access (guarantee 2, second half).

A principal that can rewrite IAM, rewrite who may reach a bucket, or put another role on an
instance it controls can grant itself anything, undoing every other guarantee. So no identity
Allow may reach those actions, by name, wildcard (`s3:Put*`, `s3:*Policy`) or around NotAction,
on any resource; and an instance profile may hand out only a role this stack defines.
"""

from __future__ import annotations

from collections.abc import Sequence

try:
    from policy import rules_base as base
    from policy import rules_identity as identity
    from policy import rules_stack as stack
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]
    import rules_identity as identity  # type: ignore[import-not-found, no-redef]
    import rules_stack as stack  # type: ignore[import-not-found, no-redef]

INSTANCE_PROFILE = "aws:iam/instanceProfile:InstanceProfile"

# New or rewritten policies, removed Denies and boundaries, wider or longer trust, new
# federations and credentials, another role in an instance profile.
IAM_ESCALATIONS = (
    *(
        f"iam:{verb}{noun}"
        for verb in ("Put", "Attach", "Delete", "Detach")
        for noun in ("RolePolicy", "UserPolicy", "GroupPolicy")
    ),
    *(
        f"iam:{verb}{noun}PermissionsBoundary"
        for verb in ("Put", "Delete")
        for noun in ("Role", "User")
    ),
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreateRole",
    "iam:UpdateRole",  # a longer MaxSessionDuration: stolen sessions live longer
    "iam:AddRoleToInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",  # reactivates a disabled key
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:CreateServiceSpecificCredential",
    "iam:ResetServiceSpecificCredential",
    "iam:UploadSSHPublicKey",
    "iam:UploadSigningCertificate",
    "iam:DeactivateMFADevice",
    "iam:AddUserToGroup",
    "iam:CreateOpenIDConnectProvider",
    "iam:UpdateOpenIDConnectProviderThumbprint",
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:RemoveClientIDFromOpenIDConnectProvider",
    "iam:CreateSAMLProvider",
    "iam:UpdateSAMLProvider",
)
# Who can reach a bucket: its policy (and the TLS-only Deny in it), its public access block and
# the account's, ACLs (and the ownership setting that re-enables them), and replication, which
# copies every object to a bucket it names. DeletePublicAccessBlock and
# DeleteBucketOwnershipControls are authorized by the Put actions. Left out on purpose: CORS,
# which only lets browsers read responses S3 already authorized, and the object and list
# actions a service role needs (s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket).
S3_ESCALATIONS = (
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutAccountPublicAccessBlock",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketAcl",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
    "s3:PutReplicationConfiguration",
)
# Another instance profile, so another role, on an instance the principal runs code on.
EC2_ESCALATIONS = ("ec2:AssociateIamInstanceProfile", "ec2:ReplaceIamInstanceProfileAssociation")

# (actions, what they let a principal do, the fix), one message per family.
FAMILIES = (
    (
        IAM_ESCALATIONS,
        "raise its own privileges",
        "remove them; this stack's IAM is changed by Pulumi only",
    ),
    (
        S3_ESCALATIONS,
        "rewrite who can reach a bucket (its policy, ACLs, public access block, replication)",
        "remove them; a service role needs only s3:ListBucket on its bucket and "
        "s3:GetObject, s3:PutObject, s3:DeleteObject on bucket/*",
    ),
    (
        EC2_ESCALATIONS,
        "give an instance it runs on another role",
        "remove them; instance profiles are attached by Pulumi only",
    ),
)


def _reached(statement: base.Props, escalations: Sequence[str]) -> list[str]:
    """The escalation actions the statement allows, through Action or around NotAction."""
    if "NotAction" in statement:
        excluded = base.actions(statement, "NotAction")
        return [e for e in escalations if not any(identity.matches(p, e) for p in excluded)]
    granted = base.actions(statement)
    return [e for e in escalations if any(identity.matches(p, e) for p in granted)]


def iam_no_privilege_escalation(resource_type: str, props: base.Props) -> list[str]:
    """A role that can rewrite IAM or bucket access can grant itself anything: no Allow may."""
    found: list[str] = []
    for where, value in identity.identity_documents(resource_type, props):
        doc = base.document(value)
        for label, statement in base.statements(doc) if doc is not None else ():
            if not base.grants(statement):
                continue
            for escalations, why, fix in FAMILIES:
                if reached := _reached(statement, escalations):
                    shown = ", ".join(reached[:3]) + (", ..." if len(reached) > 3 else "")
                    found.append(
                        f"{where} {label} allows {shown}, which let a principal {why}: {fix}"
                    )
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

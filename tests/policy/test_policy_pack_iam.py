"""The pack's IAM rules: trust, identity policies, privilege escalation, managed policies.

Each breakage is a real program (policy_programs) judged under the mocks (policy_harness).
"""

from __future__ import annotations

from typing import Any

import pulumi_aws as aws
import pytest
from conftest import ACCOUNT, physical
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy
from support.policy_harness import judge, run
from support.policy_programs import (
    EC2_TRUST,
    GITHUB_TRUST,
    OTHER_ACCOUNT,
    SSM_CORE,
    Breakage,
    allow,
    assert_caught,
    assert_not_passed_in_preview,
    doc,
    role,
    secure_bucket,
)

from policy import rules_escalation, rules_identity, shared

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/operator"
BUCKET_ARN = "arn:aws:s3:::data-0a1b2c3"
INSTANCE_ARN = f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0123456789abcdef0"
STACK_ROLES = f"arn:aws:iam::{ACCOUNT}:role/ec2-assume-role/dev/*"


def _trust(statement: dict[str, Any]) -> None:
    role("trusting", EC2_TRUST, statement)


def _aws(principal: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole", **extra}


def _widened_service_trust() -> None:
    """The service role's trust names the host role (unknown in a preview) and the root."""
    host = role("host")
    aws.iam.Role(
        "service",
        assume_role_policy=host.arn.apply(
            lambda arn: doc(EC2_TRUST, _aws([arn, f"arn:aws:iam::{ACCOUNT}:root"]))
        ),
    )


def _github(conditions: dict[str, Any]) -> dict[str, Any]:
    return {**GITHUB_TRUST, "Condition": conditions}


def _grant(*statements: dict[str, Any]) -> None:
    """The service role's grant (a RolePolicy), here with the given statements."""
    service = role("service")
    aws.iam.RolePolicy("grant", role=service.name, policy=doc(*statements))


def _own_grant() -> None:
    """A grant computed from the bucket's ARN, unknown in a preview, that also takes s3:*."""
    bucket = secure_bucket("data")
    service = role("service")
    aws.iam.RolePolicy(
        "grant", role=service.name, policy=bucket.arn.apply(lambda arn: doc(allow("s3:*", arn)))
    )


def _attach(arn: str) -> None:
    aws.iam.RolePolicyAttachment("attach", role=role("service").name, policy_arn=arn)


def _attach_own_policy() -> None:
    """A customer-managed policy of the stack: its ARN is unknown in a preview."""
    policy = aws.iam.Policy("broad", policy=doc(allow("s3:GetObject", "arn:aws:s3:::x/*")))
    aws.iam.RolePolicyAttachment("attach", role=role("service").name, policy_arn=policy.arn)


# Bucket-security actions an identity policy may not grant, and IAM's escalation kin (audit).
S3_SECURITY_ACTIONS = (
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutAccountPublicAccessBlock",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketAcl",
    "s3:PutObjectAcl",
    "s3:PutReplicationConfiguration",
)
IAM_KIN = (
    "iam:UpdateOpenIDConnectProviderThumbprint",
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:RemoveClientIDFromOpenIDConnectProvider",
    "iam:CreateOpenIDConnectProvider",
    "iam:UpdateSAMLProvider",
    "iam:CreateSAMLProvider",
    "iam:AddRoleToInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:UpdateRole",
    "iam:CreateServiceSpecificCredential",
    "iam:ResetServiceSpecificCredential",
    "iam:UploadSSHPublicKey",
    "iam:DeactivateMFADevice",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:AddUserToGroup",
    "iam:SetDefaultPolicyVersion",
    "iam:CreatePolicyVersion",
    "iam:DetachRolePolicy",
    "iam:PutUserPermissionsBoundary",
)
# Changes to IAM that the hand-made list the catalogue replaced had missed: tags (which
# attribute-based policies grant on), instance profiles, role and user creation and deletion,
# PassRole on one named role (its wildcard form is iam-no-wildcard-allow's too), and an access
# point policy, which grants access to a bucket's data as the bucket policy does.
CATALOGUE_ONLY = (
    ("iam:TagRole", ROLE_ARN),
    ("iam:UntagUser", f"arn:aws:iam::{ACCOUNT}:user/someone"),
    ("iam:CreateInstanceProfile", f"arn:aws:iam::{ACCOUNT}:instance-profile/other"),
    ("iam:DeleteRole", ROLE_ARN),
    ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/someone"),
    ("iam:PassRole", ROLE_ARN),
    ("s3:PutAccessPointPolicy", f"arn:aws:s3:eu-west-1:{ACCOUNT}:accesspoint/data"),
)


def _bucket_grant(statements: Any) -> None:
    """The service role's grant computed from its bucket's ARN (unknown in a first preview)."""
    bucket = secure_bucket("data")
    service = role("service")
    policy = bucket.arn.apply(lambda arn: doc(*statements(arn)))
    aws.iam.RolePolicy("grant", role=service.name, policy=policy)


def _profile(role_name: str) -> None:
    """An instance profile next to a role of the stack (whose name a first preview lacks)."""
    role("service")
    aws.iam.InstanceProfile("profile", role=role_name)


def _profile_through_a_parameter() -> None:
    """The role's name comes through another resource's output, with no link to a stack role."""
    role("service")
    name = aws.ssm.Parameter("role-name", type="String", value="admin")
    aws.iam.InstanceProfile("profile", role=name.value)


TRUST = "iam-trust-named-principals"
WILDCARD = "iam-no-wildcard-allow"
ESCALATION = "iam-no-privilege-escalation"
MANAGED = "iam-managed-policy-allow-list"
PROFILE = "iam-instance-profile-stack-role"
BOTH = frozenset({ESCALATION})

BREAKAGES = [
    Breakage(
        "trust-account-root-with-condition",
        TRUST,
        "trusting",
        f'trusts the whole account "arn:aws:iam::{ACCOUNT}:root"',
        lambda: _trust(
            _aws(
                f"arn:aws:iam::{ACCOUNT}:root",
                Condition={"ArnEquals": {"aws:PrincipalArn": ROLE_ARN}},
            )
        ),
        in_preview=True,
    ),
    Breakage(
        "trust-bare-account-id",
        TRUST,
        "trusting",
        f'trusts the whole account "{OTHER_ACCOUNT}"',
        lambda: _trust(_aws([ROLE_ARN, OTHER_ACCOUNT])),
        in_preview=True,
    ),
    Breakage(
        "trust-root-in-another-partition",
        TRUST,
        "trusting",
        "arn:aws-us-gov:iam::123456789012:root",
        lambda: _trust(_aws("arn:aws-us-gov:iam::123456789012:root")),
    ),
    Breakage(
        "trust-anyone-in-the-account-by-condition",
        TRUST,
        "trusting",
        'lets any principal ("*") assume the role, whatever its conditions',
        lambda: _trust(_aws("*", Condition={"StringEquals": {"aws:PrincipalAccount": ACCOUNT}})),
    ),
    Breakage(
        "trust-every-role-of-an-account",
        TRUST,
        "trusting",
        f'"arn:aws:iam::{ACCOUNT}:role/*", which is not one role or user ARN',
        lambda: _trust(_aws(f"arn:aws:iam::{ACCOUNT}:role/*")),
    ),
    Breakage(
        "trust-not-principal",
        TRUST,
        "trusting",
        "trusts everyone but its NotPrincipal",
        lambda: _trust({"Effect": "Allow", "NotPrincipal": {"AWS": ROLE_ARN}, "Action": "*"}),
    ),
    Breakage(
        "trust-github-without-subject",
        TRUST,
        "trusting",
        "without pinning token.actions.githubusercontent.com:sub",
        lambda: _trust(
            _github(
                {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}
            )
        ),
    ),
    Breakage(
        "trust-github-subject-wildcard",
        TRUST,
        "trusting",
        "without pinning token.actions.githubusercontent.com:sub",
        lambda: _trust(
            _github(
                {
                    "StringEquals": {
                        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"
                    },
                    "StringLike": {"token.actions.githubusercontent.com:sub": "repo:OWNER/*"},
                }
            )
        ),
    ),
    Breakage(
        "trust-computed-from-the-host-role",
        TRUST,
        "service",
        f'trusts the whole account "arn:aws:iam::{ACCOUNT}:root"',
        _widened_service_trust,
    ),
    Breakage(
        "service-wide-action",
        WILDCARD,
        "grant",
        '"s3:*": list only the actions needed',
        lambda: _grant(allow("s3:*", "arn:aws:s3:::data")),
        also=BOTH,  # s3:* holds s3:PutBucketPolicy
    ),
    Breakage(
        "service-wide-action-on-own-bucket-arn",
        WILDCARD,
        "grant",
        '"s3:*": list only the actions needed',
        _own_grant,
        also=BOTH,
    ),
    Breakage(
        "not-action-inline",
        WILDCARD,
        "service",
        "allows every action but its NotAction",
        lambda: role(
            "service",
            inline_policies=[
                aws.iam.RoleInlinePolicyArgs(
                    name="inline",
                    policy=doc({"Effect": "Allow", "NotAction": "s3:*", "Resource": "x"}),
                )
            ],
        ),
        also=BOTH,
    ),
    Breakage(
        "objects-of-every-bucket",
        WILDCARD,
        "broad",
        'on Resource "arn:aws:s3:::*/*": name one bucket',
        lambda: aws.iam.Policy("broad", policy=doc(allow("s3:GetObject", "arn:aws:s3:::*/*"))),
    ),
    Breakage(
        "every-bucket-listed",
        WILDCARD,
        "grant",
        'on Resource "arn:aws:s3:::*": name one bucket',
        lambda: _grant(allow(["s3:ListBucket"], ["arn:aws:s3:::data", "arn:aws:s3:::*"])),
    ),
    Breakage(
        "pass-any-role",
        WILDCARD,
        "grant",
        f'allows iam:PassRole on Resource "arn:aws:iam::{ACCOUNT}:role/*": name each role',
        lambda: _grant(allow("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/*")),
        also=BOTH,  # iam:PassRole is of Permissions management: an escalation on any role
    ),
    Breakage(
        "assume-any-role",
        WILDCARD,
        "grant",
        'allows sts:AssumeRole on Resource "*"',
        lambda: _grant(allow("sts:AssumeRole", "*")),
    ),
    Breakage(
        "create-any-policy",
        WILDCARD,
        "user-policy",
        "allows iam:CreatePolicy on Resource",
        lambda: aws.iam.UserPolicy(
            "user-policy",
            user="someone",
            policy=doc(allow("iam:CreatePolicy", f"arn:aws:iam::{ACCOUNT}:policy/*")),
        ),
        also=BOTH,  # iam:CreatePolicy is of Permissions management: an escalation anywhere
    ),
    Breakage(
        "put-own-role-policy",
        ESCALATION,
        "grant",
        "allows iam:PutRolePolicy, which let a principal raise its own privileges",
        lambda: _grant(allow("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/service")),
    ),
    Breakage(
        "attach-by-wildcard-action",
        ESCALATION,
        "group-policy",
        "iam:AttachRolePolicy",
        lambda: aws.iam.GroupPolicy(
            "group-policy", group="ops", policy=doc(allow("iam:Attach*", ROLE_ARN))
        ),
    ),
    Breakage(
        "retrust-a-role",
        ESCALATION,
        "grant",
        "iam:UpdateAssumeRolePolicy",
        lambda: _grant(allow(["s3:GetObject", "IAM:updateAssumeRolePolicy"], ROLE_ARN)),
    ),
    Breakage(
        "every-action-but-s3",
        ESCALATION,
        "grant",
        "more, which let a principal raise its own privileges",  # iam:PutRolePolicy among them
        lambda: _grant({"Effect": "Allow", "NotAction": "s3:*", "Resource": ROLE_ARN}),
        also=frozenset({WILDCARD}),
    ),
    Breakage(
        "s3-put-star-on-own-bucket",
        ESCALATION,
        "grant",
        "more, which let a principal rewrite who can reach a bucket",  # see REACHED below
        lambda: _grant(allow("s3:Put*", BUCKET_ARN)),
    ),
    Breakage(
        "s3-put-bucket-star",
        ESCALATION,
        "grant",
        "allows s3:PutBucketAcl, s3:PutBucketOwnershipControls, s3:PutBucketPolicy",
        lambda: _grant(allow(["s3:ListBucket", "s3:PutBucket*"], BUCKET_ARN)),
    ),
    Breakage(
        "s3-star-policy-computed-from-the-bucket",
        ESCALATION,
        "grant",
        "more, which let a principal rewrite who can reach a bucket",  # see REACHED below
        lambda: _bucket_grant(lambda arn: [allow("s3:*Policy", arn)]),
    ),
    Breakage(
        "s3-object-acl-on-object-keys",
        ESCALATION,
        "grant",
        "allows s3:PutObjectAcl, which let a principal rewrite who can reach a bucket",
        lambda: _bucket_grant(
            lambda arn: [allow(["s3:GetObject", "s3:PutObject", "s3:PutObjectAcl"], f"{arn}/*")]
        ),
    ),
    *(
        Breakage(
            f"s3-{action.split(':')[1]}",
            ESCALATION,
            "grant",
            f"allows {action}, which let a principal rewrite who can reach a bucket",
            lambda action=action: _grant(allow(action, BUCKET_ARN)),
        )
        for action in S3_SECURITY_ACTIONS
    ),
    *(
        Breakage(
            f"iam-{action.split(':')[1]}",
            ESCALATION,
            "grant",
            f"allows {action}, which let a principal raise its own privileges",
            lambda action=action: _grant(allow(action, ROLE_ARN)),
        )
        for action in IAM_KIN
    ),
    *(
        Breakage(
            f"catalogue-{action.split(':')[1]}",
            ESCALATION,
            "grant",
            f"allows {action}, which let a principal "
            + ("raise its own privileges" if action.startswith("iam:") else "rewrite who can"),
            lambda action=action, resource=resource: _grant(allow(action, resource)),
        )
        for action, resource in CATALOGUE_ONLY
    ),
    Breakage(
        "iam-put-star-policy",
        ESCALATION,
        "grant",
        "allows iam:PutGroupPolicy, iam:PutRolePolicy, iam:PutUserPolicy, which let",
        lambda: _grant(allow("iam:Put*Policy", ROLE_ARN)),
    ),
    Breakage(
        "iam-delete-star-permissions-boundary",
        ESCALATION,
        "grant",
        "allows iam:DeleteRolePermissionsBoundary, iam:DeleteUserPermissionsBoundary",
        lambda: _grant(allow("iam:Delete*PermissionsBoundary", ROLE_ARN)),
    ),
    *(
        Breakage(
            f"ec2-{action.split(':')[1]}",
            ESCALATION,
            "grant",
            f"allows {action}, which let a principal give an instance it runs on another role",
            lambda action=action: _grant(allow(action, INSTANCE_ARN)),
        )
        for action in (
            "ec2:AssociateIamInstanceProfile",
            "ec2:ReplaceIamInstanceProfileAssociation",
        )
    ),
    Breakage(
        "profile-for-the-organization-role",
        PROFILE,
        "profile",
        'instance profile profile carries role "OrganizationAccountAccessRole", which is not a '
        "role of this stack",
        lambda: _profile("OrganizationAccountAccessRole"),
    ),
    Breakage(
        "profile-role-through-a-parameter",
        PROFILE,
        "profile",
        'carries role "admin", which is not a role of this stack',
        _profile_through_a_parameter,
    ),
    Breakage(
        "profile-role-of-another-stack-no-roles-here",
        PROFILE,
        "profile",
        'carries role "other-stack-host-role"',
        lambda: aws.iam.InstanceProfile("profile", role="other-stack-host-role"),
        in_preview=True,
    ),
    Breakage(
        "administrator-access",
        MANAGED,
        "attach",
        'arn:aws:iam::aws:policy/AdministratorAccess", which grants broad access',
        lambda: _attach("arn:aws:iam::aws:policy/AdministratorAccess"),
        in_preview=True,
    ),
    Breakage(
        "s3-read-only-by-policy-attachment",
        MANAGED,
        "attach",
        'AmazonS3ReadOnlyAccess", which grants broad access',
        lambda: aws.iam.PolicyAttachment(
            "attach",
            roles=[role("service").name],
            policy_arn="arn:aws-cn:iam::aws:policy/AmazonS3ReadOnlyAccess",
        ),
        in_preview=True,
    ),
    Breakage(
        "power-user-in-managed-policy-arns",
        MANAGED,
        "service",
        'managedPolicyArns[1] attaches "arn:aws:iam::aws:policy/PowerUserAccess"',
        lambda: role(
            "service", managed_policy_arns=[SSM_CORE, "arn:aws:iam::aws:policy/PowerUserAccess"]
        ),
        in_preview=True,
    ),
    Breakage(
        "iam-full-access-exclusive",
        MANAGED,
        "exclusive",
        'IAMFullAccess", which grants broad access',
        lambda: aws.iam.RolePolicyAttachmentsExclusive(
            "exclusive",
            role_name=role("service").name,
            policy_arns=["arn:aws:iam::aws:policy/IAMFullAccess"],
        ),
    ),
    Breakage(
        "customer-managed-policy",
        MANAGED,
        "attach",
        "which is not on the allow-list",
        _attach_own_policy,
    ),
]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.id)
def test_a_weakening_is_caught(breakage: Breakage) -> None:
    assert_caught(breakage)


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.id)
def test_a_weakening_never_passes_a_preview(breakage: Breakage) -> None:
    assert_not_passed_in_preview(breakage)


def _acceptable() -> None:
    """What the rules must let through: the stack's own shapes, in every partition."""
    role(
        "trusting",
        EC2_TRUST,
        _aws(
            [
                ROLE_ARN,
                "arn:aws-cn:iam::123456789012:user/ops/alice",
                "arn:aws:sts::123456789012:assumed-role/operator/alice",
            ]
        ),
        GITHUB_TRUST,
        {
            **GITHUB_TRUST,
            "Condition": {"StringEqualsIgnoreCase": GITHUB_TRUST["Condition"]["StringEquals"]},
        },
    )
    host = role("host")
    aws.iam.RolePolicy(
        "assume-stack-roles",
        role=host.name,
        policy=doc(
            allow("sts:AssumeRole", "arn:aws-cn:iam::123456789012:role/ec2-assume-role/dev/*"),
            allow("sts:GetCallerIdentity", "*"),
            allow(["s3:Get*", "s3:PutObject"], "arn:aws:s3:::data-0a1b2c3/prefix/*"),
            # Reads of IAM change nothing: the catalogue files them under Read and List.
            allow(["iam:GetRole", "iam:ListRolePolicies", "iam:Get*Policy"], ROLE_ARN),
            {"Effect": "Deny", "Action": "ssm:GetParameter*", "Resource": "*"},
            {"Effect": "Deny", "Action": "iam:*", "Resource": "*"},
        ),
    )
    service = role("service")
    bucket = secure_bucket("data")
    aws.iam.RolePolicy(  # The program's own grant: list the bucket, read and write its objects.
        "bucket-access",
        role=service.name,
        policy=bucket.arn.apply(
            lambda arn: doc(
                allow("s3:ListBucket", arn),
                allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], f"{arn}/*"),
            )
        ),
    )
    aws.iam.InstanceProfile("host-profile", role=host.name)
    aws.iam.InstanceProfile("empty-profile")
    for partition in ("aws", "aws-cn", "aws-us-gov", "aws-iso-b"):
        aws.iam.RolePolicyAttachment(
            f"ssm-core-{partition}",
            role=host.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
        )


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_the_stacks_own_shapes_pass(preview: bool) -> None:
    """Named principals, pinned OIDC, the path-scoped AssumeRole, SSM core in any partition,
    the bucket grants of a service role, instance profiles of the stack's roles."""
    verdict = judge(run(_acceptable, preview=preview))
    assert verdict.violations == {}
    whys = {why.split(" at ")[1].split(" ")[0] for why in verdict.unknown.values()}
    assert whys <= ({".policy"} if preview else set()), verdict.unknown  # the bucket's ARN


def test_a_profile_naming_a_stack_role_by_its_name_passes() -> None:
    """A literal role name is compared with the stack's roles: equal in `up`; in a first
    preview the role's name is not known yet, so the rule says it cannot tell."""

    def program() -> None:
        role("service")
        aws.iam.InstanceProfile("profile", role=physical("service"))

    assert judge(run(program)).violations == {}
    verdict = judge(run(program, preview=True))
    assert verdict.violations == {}
    assert (PROFILE, "profile") in verdict.unknown, verdict.unknown


@pytest.mark.parametrize(
    ("resource", "accepted"),
    [
        ("arn:aws:iam::123456789012:role/ec2-assume-role/dev/*", True),
        ("arn:aws-us-gov:iam::123456789012:role/ec2-assume-role/*", True),
        ("arn:aws-iso-b:iam::123456789012:role/a/b/c/*", True),
        ("*", False),
        ("arn:aws:iam::*:role/ec2-assume-role/dev/*", False),
        ("arn:aws:iam::123456789012:role/*", False),
        ("arn:aws:iam::123456789012:role/ec2-*", False),
        ("arn:aws:iam::123456789012:role/a*/b/*", False),
        ("arn:aws:iam::123456789012:role/*/x", False),
        ("arn:*:iam::123456789012:role/ec2-assume-role/dev/*", False),
        ("arn:aws:iam::12345678901:role/ec2-assume-role/dev/*", False),
        ("arn:aws:iam::123456789012:role/ec2-assume-role/dev/?", False),
        ("arn:aws:iam::123456789012:user/ec2-assume-role/dev/*", False),
    ],
)
def test_assume_role_accepts_only_one_literal_role_path(resource: str, accepted: bool) -> None:
    """sts:AssumeRole may end in `/*` after a literal path in a literal account, nothing wider."""
    policy = {"policy": doc(allow("sts:AssumeRole", resource))}
    found = rules_identity.iam_no_wildcard_allow(rules_identity.ROLE_POLICY, policy)
    assert (found == []) is accepted, found
    passing = {"policy": doc(allow("iam:PassRole", resource))}
    assert rules_identity.iam_no_wildcard_allow(rules_identity.ROLE_POLICY, passing), resource


def test_an_unreadable_document_is_reported() -> None:
    """A document no rule can read cannot be shown to be safe."""
    garbled = {"policy": "{not json"}
    assert rules_identity.iam_no_wildcard_allow(rules_identity.ROLE_POLICY, garbled) == [
        "policy is not a JSON policy document: render it with json.dumps(...)"
    ]


def test_a_document_given_as_an_object_is_read() -> None:
    """A document may reach the analyzer as an object rather than JSON text; both are read."""
    policy = {"policy": {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}}
    found = rules_identity.iam_no_wildcard_allow(rules_identity.MANAGED_POLICY, policy)
    assert found[0].startswith('policy statement 0 allows "*"'), found


# --- escalation by the catalogue ----------------------------------------------------------------

# The hand-made lists the catalogue replaced: each must still be refused, by the catalogue or,
# for replication and instance profiles on EC2, by the pack's own additions.
HAND_MADE = (
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
    "iam:UpdateAssumeRolePolicy",
    "iam:CreateRole",
    "iam:UploadSigningCertificate",
    *IAM_KIN,
    *S3_SECURITY_ACTIONS,
    "s3:PutObjectVersionAcl",
    "ec2:AssociateIamInstanceProfile",
    "ec2:ReplaceIamInstanceProfileAssociation",
)
# (what a statement allows, escalations it must reach, actions it must not be refused for)
REACHED = [
    pytest.param(
        {"NotAction": "s3:*"},
        {"iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:PassRole", "iam:TagRole"},
        {"s3:PutBucketPolicy", "s3:PutReplicationConfiguration"},
        id="every-action-but-s3",
    ),
    pytest.param(
        {"Action": "s3:Put*"},
        {
            "s3:PutBucketPolicy",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutAccountPublicAccessBlock",
            "s3:PutBucketOwnershipControls",
            "s3:PutBucketAcl",
            "s3:PutObjectAcl",
            "s3:PutObjectVersionAcl",
            "s3:PutReplicationConfiguration",
        },
        # Object writes and CORS (which only lets browsers read what S3 already authorized)
        # change no one's access.
        {"s3:PutObject", "s3:PutBucketCORS", "s3:PutObjectTagging", "iam:PutRolePolicy"},
        id="s3-put-star",
    ),
    pytest.param(
        {"Action": ["s3:ListBucket", "s3:PutBucket*"]},
        {
            "s3:PutBucketPolicy",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutBucketOwnershipControls",
            "s3:PutBucketAcl",
        },
        {"s3:ListBucket", "s3:PutBucketVersioning", "s3:PutBucketCORS"},
        id="s3-put-bucket-star",
    ),
    pytest.param(
        {"Action": "s3:*Policy"},
        {"s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutAccessPointPolicy"},
        {"s3:GetBucketPolicy"},
        id="s3-star-policy",
    ),
    pytest.param(
        {"Action": "S3:putREPLICATIONconfiguration"},
        {"s3:PutReplicationConfiguration"},
        set(),
        id="replication-in-any-case",
    ),
    pytest.param(
        {"Action": "*"},
        set(HAND_MADE),
        {"s3:GetObject", "iam:GetRole", "sts:GetCallerIdentity"},
        id="every-action-covers-the-hand-made-lists",
    ),
    pytest.param(
        {"Action": ["iam:Get*", "iam:List*", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"]},
        set(),
        {"iam:GetRole", "iam:ListRoles", "s3:DeleteObject"},
        id="reads-and-object-writes",
    ),
    pytest.param(
        {"Action": ["s3:DeleteObjectVersion", "sts:AssumeRole", "sts:GetCallerIdentity"]},
        set(),
        {"s3:DeleteObjectVersion", "sts:AssumeRole"},
        id="the-check-and-host-grants",
    ),
]


@pytest.mark.parametrize(("grant", "reached", "not_reached"), REACHED)
def test_escalations_come_from_the_catalogue(
    grant: dict[str, Any], reached: set[str], not_reached: set[str]
) -> None:
    """What an Allow reaches is the catalogue's expansion of its patterns, not a list's."""
    statement = shared.statement("policy statement 0", {"Effect": "Allow", **grant})
    found = set(rules_escalation.escalations(statement))
    assert reached <= found, reached - found
    assert not (not_reached & found), not_reached & found


def test_a_deny_reaches_no_escalation() -> None:
    statement = shared.statement("policy statement 0", {"Effect": "Deny", "Action": "*"})
    assert rules_escalation.escalations(statement) == []


def test_replication_is_an_escalation_though_the_catalogue_files_it_as_write() -> None:
    """Replication hands every object to another bucket's owner: the shared guarantee counts
    it explicitly, for the check and the pack alike, since the catalogue says only Write."""
    replication = shared.catalogue.action(rules_escalation.S3_REPLICATION)
    assert replication.level == shared.catalogue.WRITE
    statement = shared.statement("s", {"Effect": "Allow", "Action": replication.name})
    assert shared.guarantees.escalations(statement) == [replication.name]
    assert rules_escalation.escalations(statement) == [replication.name]


def test_every_iam_change_of_the_catalogue_is_refused() -> None:
    """Each IAM action of level Write, Permissions management or Tagging, one by one."""
    changes = [
        a.name
        for a in shared.catalogue.service_actions("iam")
        if a.level in shared.catalogue.CHANGES
    ]
    assert "iam:TagRole" in changes and "iam:CreateInstanceProfile" in changes
    for action in changes:
        policy = {"policy": doc(allow(action, ROLE_ARN))}
        found = rules_escalation.iam_no_privilege_escalation(rules_identity.ROLE_POLICY, policy)
        assert found == [
            f"policy statement 0 allows {action}, which let a principal raise its own "
            "privileges: remove them; this stack's IAM is changed by Pulumi only"
        ], action


def test_a_long_reach_is_counted() -> None:
    """A NotAction reaches dozens of IAM changes: three are named and the rest counted."""
    policy = {"policy": doc({"Effect": "Allow", "NotAction": "s3:*", "Resource": ROLE_ARN})}
    iam, ec2, elsewhere = rules_escalation.iam_no_privilege_escalation(
        rules_identity.ROLE_POLICY, policy
    )
    statement = shared.statement("s", {"Effect": "Allow", "NotAction": "s3:*"})
    changes = [a for a in rules_escalation.escalations(statement) if a.startswith("iam:")]
    assert iam.startswith(
        f"policy statement 0 allows {', '.join(changes[:3])} and {len(changes) - 3} more, "
    ), iam
    assert "ec2:AssociateIamInstanceProfile, ec2:ReplaceIamInstanceProfileAssociation," in ec2
    # Running code as an instance's or a function's role: SSM, EC2 Instance Connect, Lambda.
    assert "and 7 more, which let a principal run code where another identity's" in elsewhere


def test_commands_on_an_instance_are_an_escalation() -> None:
    """ssm:SendCommand runs as root on the host, which holds the host role's credentials and so
    every service role's: the pack refuses it, as the check's reach proof fails it."""
    policy = {"policy": doc(allow("ssm:SendCommand", "*"))}
    (found,) = rules_escalation.iam_no_privilege_escalation(rules_identity.ROLE_POLICY, policy)
    assert "allows ssm:SendCommand, which let a principal run code where another" in found


def test_an_unknown_resource_leaves_the_escalation_decided() -> None:
    """Preview: escalation is refused on any resource, so an unknown one needs no answer."""
    statement = {"Effect": "Allow", "Action": "iam:TagRole", "Resource": UNKNOWN_STRING_VALUE}
    props = unknown_checking_proxy({"policy": {"Statement": [statement]}})
    found = rules_escalation.iam_no_privilege_escalation(rules_identity.ROLE_POLICY, props)
    assert len(found) == 1 and "allows iam:TagRole" in found[0], found


@pytest.mark.parametrize(
    ("action", "fix"),
    [
        ("iam:Pass*", "name each role or policy ARN"),
        ("sts:Assume*", "name each role or policy ARN"),
        ("iam:Get*Policy", "name each role or policy ARN"),
        ("s3:GetObject", "name the resource ARNs instead"),
    ],
)
def test_the_resource_fix_follows_what_the_catalogue_says_an_action_acts_on(
    action: str, fix: str
) -> None:
    """A wildcard pattern is read by the catalogue: `iam:Pass*` passes roles, `s3:*` does not."""
    policy = {"policy": doc(allow(action, "*"))}
    (found,) = rules_identity.iam_no_wildcard_allow(rules_identity.ROLE_POLICY, policy)
    assert fix in found, found

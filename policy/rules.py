"""The policy pack's rules, one family per module, gathered here in the order the pack serves them.

Each rule follows from a guarantee the README makes, not from the shapes the program happens to
emit: the trust of roles (rules_trust), what identity policies allow (rules_identity), that no
role can widen its own access (rules_escalation), which managed policies may be attached
(rules_managed), private TLS-only buckets (rules_s3, rules_tls, rules_bucket_policy), KMS keys for
the stack alone (rules_kms), IMDSv2 and
encrypted EBS (rules_ec2) and no ingress from the internet (rules_ingress and
rules_ingress_combined, counting addresses with rules_addresses). rules_base holds what they
share, rules_stack what stack rules share: see it for how a preview's unknown values are handled.
Where a rule encodes a guarantee the post-deploy check also proves, both call the same pure
functions of checks/reach, through shared.
"""

from __future__ import annotations

try:
    from policy import (
        rules_base,
        rules_bucket_policy,
        rules_ec2,
        rules_escalation,
        rules_identity,
        rules_ingress,
        rules_ingress_combined,
        rules_kms,
        rules_managed,
        rules_s3,
        rules_stack,
        rules_tls,
        rules_trust,
    )
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base  # type: ignore[import-not-found, no-redef]
    import rules_bucket_policy  # type: ignore[import-not-found, no-redef]
    import rules_ec2  # type: ignore[import-not-found, no-redef]
    import rules_escalation  # type: ignore[import-not-found, no-redef]
    import rules_identity  # type: ignore[import-not-found, no-redef]
    import rules_ingress  # type: ignore[import-not-found, no-redef]
    import rules_ingress_combined  # type: ignore[import-not-found, no-redef]
    import rules_kms  # type: ignore[import-not-found, no-redef]
    import rules_managed  # type: ignore[import-not-found, no-redef]
    import rules_s3  # type: ignore[import-not-found, no-redef]
    import rules_stack  # type: ignore[import-not-found, no-redef]
    import rules_tls  # type: ignore[import-not-found, no-redef]
    import rules_trust  # type: ignore[import-not-found, no-redef]

ResourceRule = rules_base.ResourceRule
StackRule = rules_stack.StackRule

RESOURCE_RULES: tuple[rules_base.ResourceRule, ...] = (
    ResourceRule(
        "iam-trust-named-principals",
        "A role's trust policy may name only services, specific role or user ARNs, or a "
        "federated provider with its subject and audience pinned; never *, an account or "
        "NotPrincipal.",
        rules_trust.trust_named_principals,
    ),
    ResourceRule(
        "iam-no-wildcard-allow",
        'IAM policies must not allow "*", "service:*" or NotAction, nor any action on a '
        "wildcard resource but the object keys of one named bucket.",
        rules_identity.iam_no_wildcard_allow,
    ),
    ResourceRule(
        "iam-no-privilege-escalation",
        "IAM policies must not allow any IAM action that changes something (write, permissions "
        "management or tagging, by the IAM action catalogue), any S3 action that manages who "
        "can reach a bucket, nor one that puts another role on an instance.",
        rules_escalation.iam_no_privilege_escalation,
    ),
    ResourceRule(
        "iam-managed-policy-allow-list",
        "Only allow-listed managed policies (AmazonSSMManagedInstanceCore) may be attached.",
        rules_managed.iam_managed_policy_allow_list,
    ),
    ResourceRule(
        "s3-public-access-block-all-on",
        "A bucket public access block must turn all four settings on.",
        rules_s3.public_access_block_settings,
    ),
    ResourceRule(
        "s3-bucket-policy-no-public-allow",
        "A bucket policy may allow only specific role or user ARNs; never *, an account, a "
        "service or NotPrincipal.",
        rules_bucket_policy.bucket_policy_no_public_allow,
    ),
    ResourceRule(
        "kms-key-policy-no-public-use",
        "A KMS key policy may allow only the stack's account or specific role or user ARNs; "
        "never *, a service, NotPrincipal or anything wider.",
        rules_kms.key_policy_no_public_use,
    ),
    ResourceRule(
        "ec2-require-imdsv2",
        "Instances, launch templates and configurations must require IMDSv2.",
        rules_ec2.ec2_require_imdsv2,
    ),
    ResourceRule(
        "ec2-encrypted-ebs",
        "Every EBS volume must be encrypted: root and extra devices, templates, fleets, volumes.",
        rules_ec2.ebs_encrypted,
    ),
    ResourceRule(
        "ec2-no-internet-ingress",
        "No ingress rule may open a port to the internet: 0.0.0.0/0, or any set of CIDRs whose "
        "public addresses add up to more than a /8 of IPv4 or a /32 of IPv6.",
        rules_ingress.no_internet_ingress,
    ),
)

STACK_RULES: tuple[rules_stack.StackRule, ...] = (
    StackRule(
        "s3-bucket-public-access-blocked",
        "Every S3 bucket must have a public access block with all four settings on.",
        rules_s3.buckets_block_public_access,
    ),
    StackRule(
        "s3-bucket-tls-only",
        "Every S3 bucket must have one bucket policy, keeping an unweakened Deny of requests "
        "without TLS.",
        rules_tls.buckets_tls_only,
    ),
    StackRule(
        "s3-bucket-policy-own-account",
        "A bucket policy may allow only principals of the stack's own account.",
        rules_bucket_policy.bucket_policies_own_account,
    ),
    StackRule(
        "kms-key-policy-own-account",
        "A KMS key policy may name only the stack's own account and its principals.",
        rules_kms.key_policies_own_account,
    ),
    StackRule(
        "ec2-no-internet-ingress-combined",
        "Ingress rules of one security group, with the prefix lists they name, must not open "
        "a port to the internet together; prefix lists must be defined in the stack.",
        rules_ingress_combined.ingress_across_resources,
    ),
    StackRule(
        "iam-instance-profile-stack-role",
        "An instance profile may carry only a role this stack defines.",
        rules_escalation.instance_profiles_carry_stack_roles,
    ),
    StackRule(
        "ec2-attached-volumes-encrypted",
        "A volume attachment may attach only an encrypted aws.ebs.Volume of this stack.",
        rules_ec2.attached_volumes_encrypted,
    ),
)

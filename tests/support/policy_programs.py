"""Compliant building blocks for the policy pack's breakage programs, and the breakage checks.

A breakage is a small Pulumi program (a function creating real pulumi_aws resources) that builds
something compliant, as the stack does, and weakens exactly one guarantee. Under the mocks it
must be caught by the rule that guarantee belongs to, and by no other rule unless the breakage
also weakens that rule's guarantee (`also`). In a preview it must be caught, or the rule must
say it cannot tell yet: it may never pass on an unknown value it needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from conftest import ACCOUNT

from support import policy_harness

VERSION = "2012-10-17"
AMI = "ami-0abcdef1234567890"
OTHER_ACCOUNT = "999999999999"
SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
EC2_TRUST = {
    "Effect": "Allow",
    "Principal": {"Service": "ec2.amazonaws.com"},
    "Action": "sts:AssumeRole",
}
# What docs/ci.md tells operators to write for the CI roles: GitHub OIDC, subject and audience.
GITHUB_PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
GITHUB_TRUST = {
    "Effect": "Allow",
    "Principal": {"Federated": GITHUB_PROVIDER},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:OWNER/REPO:pull_request",
        }
    },
}


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": VERSION, "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def role(name: str, *trust: dict[str, Any], **kwargs: Any) -> aws.iam.Role:
    """A role trusting EC2 (or the given statements), as the stack's roles do."""
    return aws.iam.Role(name, assume_role_policy=doc(*(trust or (EC2_TRUST,))), **kwargs)


def tls_only(arn: str, **changes: Any) -> dict[str, Any]:
    """The program's TLS-only statement (infra.policies.tls_only_bucket_policy), changed."""
    statement = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    return {**statement, **changes}


def public_access_block(name: str, bucket: pulumi.Input[str], **changes: Any) -> None:
    settings = dict.fromkeys(
        (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        ),
        True,
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access", bucket=bucket, **{**settings, **changes}
    )


def secure_bucket(
    name: str,
    kind: type[aws.s3.Bucket] | type[aws.s3.BucketV2] = aws.s3.Bucket,
    *,
    block: bool = True,
    tls: Callable[[str], str] | None = lambda arn: doc(tls_only(arn)),
) -> aws.s3.Bucket | aws.s3.BucketV2:
    """A bucket as SecureBucket makes it: a public access block and the TLS-only policy."""
    bucket = kind(f"{name}-bucket")
    if block:
        public_access_block(name, bucket.id)
    if tls is not None:
        aws.s3.BucketPolicy(f"{name}-tls-only", bucket=bucket.id, policy=bucket.arn.apply(tls))
    return bucket


def instance(name: str, **changes: Any) -> aws.ec2.Instance:
    """An instance as HardenedInstance makes it: IMDSv2 only, an encrypted root volume."""
    settings: dict[str, Any] = {
        "ami": AMI,
        "instance_type": "t3.micro",
        "metadata_options": aws.ec2.InstanceMetadataOptionsArgs(
            http_tokens="required", http_put_response_hop_limit=2
        ),
        "root_block_device": aws.ec2.InstanceRootBlockDeviceArgs(encrypted=True),
    }
    return aws.ec2.Instance(name, **{**settings, **changes})


def closed_group(name: str, **changes: Any) -> aws.ec2.SecurityGroup:
    """A security group as HardenedInstance makes it: HTTPS egress, no ingress."""
    egress = aws.ec2.SecurityGroupEgressArgs(
        protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"]
    )
    return aws.ec2.SecurityGroup(name, **{"egress": [egress], **changes})


@dataclass(frozen=True)
class Breakage:
    """One weakening of one guarantee, as a program, and what the pack must say about it."""

    id: str
    rule: str
    resource: str
    message: str  # a piece of the message: what is wrong, or the fix
    program: Callable[[], None]
    also: frozenset[str] = frozenset()  # other rules the same weakening rightly breaks
    in_preview: bool = False  # caught in a preview too (not merely "cannot tell yet")


def assert_caught(breakage: Breakage) -> None:
    """`pulumi up`: the rule reports the resource with its message, and no other rule fires."""
    verdict = policy_harness.judge(policy_harness.run(breakage.program))
    messages = verdict.violations.get((breakage.rule, breakage.resource), [])
    assert any(breakage.message in m for m in messages), (breakage.id, verdict.violations)
    assert verdict.rules() == {breakage.rule} | breakage.also, (breakage.id, verdict.violations)
    assert verdict.unknown == {}, (breakage.id, verdict.unknown)


def assert_not_passed_in_preview(breakage: Breakage) -> None:
    """`pulumi preview`: caught, or the rule says it cannot tell yet; never a silent pass."""
    verdict = policy_harness.judge(policy_harness.run(breakage.program, preview=True))
    caught = (breakage.rule, breakage.resource) in verdict.violations
    undecided = {
        (breakage.rule, breakage.resource),
        (breakage.rule, policy_harness.STACK_RULES_KEY),
    }
    assert caught or undecided & set(verdict.unknown), (breakage.id, verdict)
    assert caught or not breakage.in_preview, (breakage.id, verdict)

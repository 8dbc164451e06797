"""IAM and bucket policy documents, as pure functions returning plain dicts.

They take concrete strings (ARNs), not Pulumi Outputs, so they can be tested and linted with
parliament as plain functions; components render them with `Output.apply` / `Output.json_dumps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PolicyDocument = dict[str, Any]

VERSION = "2012-10-17"
EC2_SERVICE = "ec2.amazonaws.com"

# What a service needs on its own bucket, and nothing else: list it, and read, write and
# delete its objects. Bucket-level actions go on the bucket ARN, object-level ones on `arn/*`.
BUCKET_ACTIONS = ("s3:ListBucket",)
OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")

# Role chaining (host role -> service role) caps a session at one hour whatever the role's
# MaxSessionDuration says, so nothing in this project may promise a longer session.
MAX_CHAINED_SESSION_SECONDS = 3600


def _document(*statements: dict[str, Any]) -> PolicyDocument:
    return {"Version": VERSION, "Statement": list(statements)}


def trust_policy(aws_principals: Sequence[str] = ()) -> PolicyDocument:
    """Trust for a role that EC2 instances carry, optionally assumable by named IAM principals.

    EC2 is always trusted: in production the role is an instance profile. Each extra principal
    must be a concrete IAM/STS ARN; never `*` and never an account root, which would let any
    identity in the account that holds `sts:AssumeRole` in.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Ec2InstancesAssume",
            "Effect": "Allow",
            "Principal": {"Service": EC2_SERVICE},
            "Action": "sts:AssumeRole",
        }
    ]
    for principal in aws_principals:
        if principal == "*" or principal.endswith(":root"):
            raise ValueError(f"refusing trust principal {principal!r}: name a role or user ARN")
    if aws_principals:
        statements.append(
            {
                "Sid": "NamedPrincipalsAssume",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(aws_principals)},
                "Action": "sts:AssumeRole",
            }
        )
    return _document(*statements)


def bucket_access_policy(bucket_arn: str) -> PolicyDocument:
    """The service role's grant: list its bucket, get/put/delete its objects, nothing more."""
    return _document(
        {
            "Sid": "ListOwnBucket",
            "Effect": "Allow",
            "Action": list(BUCKET_ACTIONS),
            "Resource": bucket_arn,
        },
        {
            "Sid": "ReadWriteOwnObjects",
            "Effect": "Allow",
            "Action": list(OBJECT_ACTIONS),
            "Resource": f"{bucket_arn}/*",
        },
    )


def assume_roles_policy(role_arns: Sequence[str]) -> PolicyDocument:
    """The host role's only grant: `sts:AssumeRole` on exactly the given service roles."""
    if not role_arns:
        raise ValueError("the host role needs at least one service role to assume")
    return _document(
        {
            "Sid": "AssumeServiceRoles",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": sorted(role_arns),
        }
    )


def tls_only_bucket_policy(bucket_arn: str) -> PolicyDocument:
    """Deny every request to the bucket that does not arrive over TLS."""
    return _document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )


# What AmazonSSMManagedInstanceCore allows beyond the SSM agent's needs: reading every SSM
# parameter in the account (including SecureStrings under the default key). The agent does not
# need them for Session Manager or Run Command.
PARAMETER_READS = (
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
)


def deny_parameter_reads() -> PolicyDocument:
    """Take back the SSM core policy's parameter reads: an explicit Deny, so it always wins."""
    return _document(
        {
            "Sid": "NoParameterReads",
            "Effect": "Deny",
            "Action": list(PARAMETER_READS),
            "Resource": "*",
        }
    )

"""IAM and bucket policy documents, as pure functions returning plain dicts.

They take concrete strings (ARNs), not Pulumi Outputs, so they can be tested and linted with
parliament as plain functions; components render them with `Output.apply` / `Output.json_dumps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PolicyDocument = dict[str, Any]

VERSION = "2012-10-17"

# What a service needs on its own bucket, and nothing else: list it, and read, write and
# delete its objects. Bucket-level actions go on the bucket ARN, object-level ones on `arn/*`.
BUCKET_ACTIONS = ("s3:ListBucket",)
OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")

CHECK_PREFIX = "ec2-assume-role-check/"
"""Where the post-deploy check writes (and deletes) its test objects in each bucket (checks/):
the lifecycle safety net and the version grant below name this prefix and nothing else."""

# Role chaining (host role -> service role) caps a session at one hour whatever the role's
# MaxSessionDuration says, so nothing in this project may promise a longer session.
MAX_CHAINED_SESSION_SECONDS = 3600


def _document(*statements: dict[str, Any]) -> PolicyDocument:
    return {"Version": VERSION, "Statement": list(statements)}


def trust_policy(ec2_principal: str, aws_principals: Sequence[str] = ()) -> PolicyDocument:
    """Trust for a role that EC2 instances carry, optionally assumable by named IAM principals.

    EC2 (its service principal in the stack's partition) is always trusted: in production the
    role is an instance profile. Each extra principal
    must be a concrete IAM/STS ARN; never `*` and never an account root, which would let any
    identity in the account that holds `sts:AssumeRole` in.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Ec2InstancesAssume",
            "Effect": "Allow",
            "Principal": {"Service": ec2_principal},
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


def bucket_access_policy(bucket_arn: str, versioned: bool = False) -> PolicyDocument:
    """The service role's grant: list its bucket, get/put/delete its objects, nothing more.

    In a versioned bucket a delete only stacks a marker on the check's test object, which
    stays behind as a noncurrent version. So the role may also delete object versions, but only
    under the check's own prefix: the check then removes each version it created, by version
    id, and leaves nothing behind, while the service's own data keeps every version.
    """
    statements: list[dict[str, Any]] = [
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
    ]
    if versioned:
        statements.append(
            {
                "Sid": "RemoveCheckVersions",
                "Effect": "Allow",
                "Action": "s3:DeleteObjectVersion",
                "Resource": f"{bucket_arn}/{CHECK_PREFIX}*",
            }
        )
    return _document(*statements)


def service_role_path(stack: str) -> str:
    """The IAM path every service role of a stack lives under, and nothing else does."""
    return f"/ec2-assume-role/{stack}/"


def service_roles_arn(partition: str, account: str, stack: str) -> str:
    """Every role under the stack's service role path: what the host role may assume."""
    return f"arn:{partition}:iam::{account}:role{service_role_path(stack)}*"


def assume_roles_policy(service_roles: str) -> PolicyDocument:
    """The host role's only grant: `sts:AssumeRole` on the stack's service roles.

    They are named by their IAM path rather than one ARN each, so the document has the same
    size for 1 service or 300 (a list would pass the 10,240-character inline limit at about
    130). It stays least privilege: only this stack's service roles live under the path, and
    each of them must still name the host role in its trust policy.
    """
    if not service_roles.endswith("/*") or ":role/" not in service_roles:
        raise ValueError(f"expected a role path ARN ending in /*, got {service_roles!r}")
    return _document(
        {
            "Sid": "AssumeServiceRoles",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": service_roles,
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


def ssm_core_policy_arn(partition: str) -> str:
    """The AWS-managed policy the SSM agent needs, in the stack's partition."""
    return f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"


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

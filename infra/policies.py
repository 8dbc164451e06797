"""IAM and bucket policy documents, as pure functions returning plain dicts.

They take concrete strings (ARNs), not Pulumi Outputs, so they can be tested and linted with
parliament as plain functions; components render them with `Output.apply` / `Output.json_dumps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from checks.contract import RESERVED_PREFIX

PolicyDocument = dict[str, Any]

VERSION = "2012-10-17"

# What a service needs on its own bucket, and nothing else: list it, and read, write and
# delete its objects. Bucket-level actions go on the bucket ARN, object-level ones on `arn/*`.
BUCKET_ACTIONS = ("s3:ListBucket",)
OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")

CHECK_PREFIX = RESERVED_PREFIX
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


# What S3 asks of a bucket's KMS key for its owner: a data key to encrypt a put, and the
# decryption of that data key to read. Nothing else (not Encrypt, not ReEncrypt, not grants).
KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


def s3_via_service(region: str, partition: str) -> str:
    """The `kms:ViaService` value of S3's requests to KMS in the region (China's end in .cn)."""
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"s3.{region}.{suffix}"


def key_use_statement(key_arn: str, bucket_arn: str, via_service: str) -> dict[str, Any]:
    """The service role's use of its bucket's key: through S3, for that bucket only.

    With an S3 Bucket Key the encryption context S3 sends is the bucket's ARN, so the grant
    cannot decrypt another bucket's objects, and `kms:ViaService` keeps the role from calling
    KMS directly (it cannot take the key elsewhere).
    """
    return {
        "Sid": "UseOwnKeyThroughS3",
        "Effect": "Allow",
        "Action": list(KEY_ACTIONS),
        "Resource": key_arn,
        "Condition": {
            "StringEquals": {
                "kms:ViaService": via_service,
                "kms:EncryptionContext:aws:s3:arn": bucket_arn,
            }
        },
    }


def key_policy(account_root: str) -> PolicyDocument:
    """A stack-created key's policy: the account administers it, and nothing else is named.

    The statement names the account, not anyone in it: it lets the account's IAM policies
    grant the key, as for any other resource. Usage still needs such a grant (the service
    role's `UseOwnKeyThroughS3`), so no identity gains use from this statement alone; without
    it the key could not be managed at all, by anyone, ever.
    """
    if not account_root.endswith(":root") or ":iam::" not in account_root:
        raise ValueError(f"expected an account root ARN, got {account_root!r}")
    return _document(
        {
            "Sid": "AccountAdministersThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": account_root},
            "Action": "kms:*",
            "Resource": "*",
        }
    )


def sse_kms_denies(bucket_arn: str, key_arn: str) -> list[dict[str, Any]]:
    """Bucket policy statements that refuse a put asking for other encryption or another key.

    A put that asks for nothing gets the bucket's default (this key). `Null: false` limits each
    Deny to requests that carry the header: `StringNotEquals` alone would also deny those that
    rely on the default. The key must be named by its ARN, as S3 compares it as given. Two
    asks pass a header check unseen, so each has its own Deny: SSE-C (the customer-key
    headers, no `x-amz-server-side-encryption`), and `aws:kms` naming no key, which S3 may
    serve with the account's `aws/s3` key instead of this one.
    """
    header = "s3:x-amz-server-side-encryption"
    key_header = "s3:x-amz-server-side-encryption-aws-kms-key-id"
    customer = "s3:x-amz-server-side-encryption-customer-algorithm"
    objects = f"{bucket_arn}/*"
    return [
        {
            "Sid": "DenyOtherEncryption",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"StringNotEquals": {header: "aws:kms"}, "Null": {header: "false"}},
        },
        {
            "Sid": "DenyOtherKeys",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"StringNotEquals": {key_header: key_arn}, "Null": {key_header: "false"}},
        },
        {
            "Sid": "DenyKmsWithoutTheKey",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"StringEquals": {header: "aws:kms"}, "Null": {key_header: "true"}},
        },
        {
            "Sid": "DenyCustomerKeys",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"Null": {customer: "false"}},
        },
    ]


def bucket_access_policy(
    bucket_arn: str,
    versioned: bool = False,
    key_arn: str | None = None,
    via_service: str | None = None,
) -> PolicyDocument:
    """The service role's grant: list its bucket, get/put/delete its objects, nothing more
    (and, for an SSE-KMS bucket, its key through S3: `key_use_statement`).

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
    if key_arn is not None:
        if via_service is None:
            raise ValueError("a key grant needs the S3 endpoint it is used through")
        statements.append(key_use_statement(key_arn, bucket_arn, via_service))
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


def tls_only_bucket_policy(bucket_arn: str, key_arn: str | None = None) -> PolicyDocument:
    """Deny every request to the bucket that does not arrive over TLS (and, SSE-KMS, every put
    that asks for another key: `sse_kms_denies`)."""
    if key_arn is not None:
        document = tls_only_bucket_policy(bucket_arn)
        document["Statement"] += sse_kms_denies(bucket_arn, key_arn)
        return document
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

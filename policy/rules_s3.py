"""Buckets: private, and reachable over TLS only (guarantee 4 of the pack, first half).

Every bucket of either type (`aws.s3.Bucket`, `aws.s3.BucketV2`) needs its own public access
block with all four settings on, and a bucket policy that keeps the TLS-only Deny exactly as the
program writes it. A bucket has one public access block and one policy in S3: when the stack
gives it several, whichever is written last wins, so every one of them must qualify.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

try:
    from policy import rules_base as base
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]

PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
TLS_ONLY_FIX = (
    'a statement that denies "s3:*" to Principal "*" on the bucket and bucket/* when '
    '{"Bool": {"aws:SecureTransport": "false"}}, with no other condition'
)


def _flags_off(props: base.Props) -> list[str]:
    return [flag for flag in PUBLIC_ACCESS_FLAGS if props.get(flag) is not True]


def public_access_block_settings(resource_type: str, props: base.Props) -> list[str]:
    """A public access block with any setting off lets a bucket become public that way."""
    if resource_type != PUBLIC_ACCESS_BLOCK:
        return []
    off = _flags_off(props)
    if not off:
        return []
    return [f"set {', '.join(off)} to true: all four public access block settings must be on"]


def for_bucket(
    bucket: base.StackResource, candidates: list[base.StackResource]
) -> list[base.StackResource]:
    """The candidates whose `bucket` property is this bucket.

    The engine's property dependencies say so even in a preview, when the bucket's name is not
    known yet; a candidate with none (a literal name) is compared by value.
    """
    linked = [c for c in candidates if base.depends_on(c, "bucket", bucket)]
    literal = [c for c in candidates if not c.property_dependencies.get("bucket")]
    if literal:
        names = {bucket.props.get(key) for key in ("id", "bucket")} - {None}
        linked += [c for c in literal if c.props.get("bucket") in names]
    return linked


def buckets_block_public_access(
    resources: Sequence[base.StackResource],
) -> list[tuple[str, str]]:
    """Every bucket needs its own public access block with all four settings on."""
    blocks = base.of_type(resources, PUBLIC_ACCESS_BLOCK)
    found: list[tuple[str, str]] = []
    for bucket in base.of_type(resources, *base.BUCKET_TYPES):
        mine = for_bucket(bucket, blocks)
        if not mine:
            found.append(
                (
                    bucket.urn,
                    f"bucket {bucket.name} has no public access block: add an "
                    "aws.s3.BucketPublicAccessBlock for it with "
                    f"{', '.join(PUBLIC_ACCESS_FLAGS)} set to true",
                )
            )
        found += [
            (
                bucket.urn,
                f"bucket {bucket.name}'s public access block {block.name} leaves "
                f"{', '.join(_flags_off(block.props))} off: set them to true",
            )
            for block in mine
            if _flags_off(block.props)
        ]
    return found


def _only_insecure_transport(condition: Any) -> bool:
    """Exactly {"Bool": {"aws:SecureTransport": "false"}}: any other test narrows the Deny."""
    if not isinstance(condition, Mapping) or len(condition) != 1:
        return False
    ((operator, test),) = condition.items()
    if str(operator).lower() != "bool" or not isinstance(test, Mapping) or len(test) != 1:
        return False
    ((key, value),) = test.items()
    values = base.as_list(value)
    return (
        str(key).lower() == "aws:securetransport"
        and bool(values)
        and all(str(v).lower() == "false" for v in values)
    )


def _covers_bucket(resources: list[Any], bucket: base.StackResource) -> bool:
    """The resources name the bucket and all its objects (or everything), in any partition.

    The bucket's name comes first: in a preview it is known (auto-naming happens at check time)
    while the ARN is not; a state without a name has the ARN, which ends with it.
    """
    if "*" in resources:
        return True
    name = bucket.props.get("bucket")
    if not isinstance(name, str):
        arn = bucket.props.get("arn")
        name = arn.rsplit(":", 1)[-1] if isinstance(arn, str) else None
    if not name:
        return False
    pattern = re.compile(rf"arn:{base.PARTITION}:s3:::{re.escape(name)}(/\*)?")
    forms = {m.group(1) for r in resources if isinstance(r, str) and (m := pattern.fullmatch(r))}
    return forms == {None, "/*"}


def _denies_plain_http(statement: base.Props, bucket: base.StackResource) -> bool:
    """Deny, to everyone, every S3 action on the bucket and its objects, when not over TLS."""
    if statement.get("Effect") != "Deny" or not base.is_anyone(statement.get("Principal")):
        return False
    if any(key in statement for key in ("NotPrincipal", "NotAction", "NotResource")):
        return False
    if not {a.lower() for a in base.actions(statement)} & {"*", "s3:*"}:
        return False
    if not _only_insecure_transport(statement.get("Condition")):
        return False
    return _covers_bucket(base.as_list(statement.get("Resource")), bucket)


def _is_tls_only(document_value: Any, bucket: base.StackResource) -> bool:
    doc = base.document(document_value)
    return doc is not None and any(
        _denies_plain_http(statement, bucket) for _, statement in base.statements(doc)
    )


def buckets_tls_only(resources: Sequence[base.StackResource]) -> list[tuple[str, str]]:
    """Every bucket needs a bucket policy that denies requests not made over TLS."""
    policies = base.of_type(resources, base.BUCKET_POLICY)
    found: list[tuple[str, str]] = []
    for bucket in base.of_type(resources, *base.BUCKET_TYPES):
        documents = [
            (f"policy {p.name}", p.props.get("policy")) for p in for_bucket(bucket, policies)
        ]
        inline = bucket.props.get("policy")  # the deprecated inline bucket policy
        documents += [("inline policy", inline)] if inline else []
        if not documents:
            found.append(
                (
                    bucket.urn,
                    f"bucket {bucket.name} is reachable without TLS: add an aws.s3.BucketPolicy "
                    f"for it with {TLS_ONLY_FIX}",
                )
            )
        found += [
            (
                bucket.urn,
                f"bucket {bucket.name}'s {where} does not keep the TLS-only Deny unweakened "
                f"(S3 keeps whichever bucket policy was written last): give it {TLS_ONLY_FIX}",
            )
            for where, value in documents
            if not _is_tls_only(value, bucket)
        ]
    return found

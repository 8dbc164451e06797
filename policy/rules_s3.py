"""Buckets: private (guarantee 4 of the pack, first part; rules_tls holds the TLS-only policy).

Every bucket of either type (`aws.s3.Bucket`, `aws.s3.BucketV2`) needs its own public access
block with all four settings on. A bucket has one public access block in S3: when the stack
gives it several, whichever is written last wins, so every one of them must qualify. Blocks and
policies are linked to their bucket by value, or by property dependency in a preview (by_bucket).
"""

from __future__ import annotations

from collections.abc import Sequence

try:
    from policy import rules_base as base
    from policy import rules_stack as stack
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]
    import rules_stack as stack  # type: ignore[import-not-found, no-redef]

PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_NAMES = ("id", "bucket")  # what a block's or policy's `bucket` may hold
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
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


def by_bucket(
    findings: stack.Findings,
    buckets: Sequence[stack.StackResource],
    writers: Sequence[stack.StackResource],
) -> tuple[dict[str, list[stack.StackResource]], stack.Pending]:
    """Each bucket's blocks or policies: those whose `bucket` is its id or name.

    By value whenever the value is known (always in `pulumi up`), so a writer that got the name
    through another resource's output still counts; in a preview, by property dependency.
    """
    return stack.link_all(findings, writers, "bucket", buckets, BUCKET_NAMES)


def buckets_block_public_access(resources: Sequence[stack.StackResource]) -> stack.Findings:
    """Every bucket needs its own public access block with all four settings on."""
    findings = stack.Findings()
    buckets = stack.of_type(resources, *base.BUCKET_TYPES)
    mine, pending = by_bucket(findings, buckets, stack.of_type(resources, PUBLIC_ACCESS_BLOCK))
    for bucket in buckets:
        with findings.deciding(bucket.name):
            if not mine[bucket.urn]:
                if pending is not None:
                    raise pending  # A block not linked yet may be this bucket's.
                findings.add(
                    bucket,
                    f"bucket {bucket.name} has no public access block: add an "
                    "aws.s3.BucketPublicAccessBlock for it with "
                    f"{', '.join(PUBLIC_ACCESS_FLAGS)} set to true",
                )
        for block in mine[bucket.urn]:
            with findings.deciding(bucket.name):
                if off := _flags_off(block.props):
                    findings.add(
                        bucket,
                        f"bucket {bucket.name}'s public access block {block.name} leaves "
                        f"{', '.join(off)} off: set them to true",
                    )
    return findings

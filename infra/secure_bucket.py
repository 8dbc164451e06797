"""A private, TLS-only S3 bucket owned by one service."""

# No `from __future__ import annotations` in a component's module: the schema analyser
# (pulumi.provider.experimental) reads the args' and outputs' annotations as live types.
import json
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from . import policies

CHECK_PREFIX = policies.CHECK_PREFIX
"""Where the post-deploy check writes (and deletes) its test objects; see checks/."""


def _rule(rule_id: str, **actions: Any) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=rule_id,
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=CHECK_PREFIX),
        **actions,
    )


def check_cleanup_rules(versioned: bool) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """The safety net for a check killed before it could clean up (SIGKILL, power loss).

    Only the check's reserved prefix: user data keeps every object and version. Anything there
    expires after a day, and so do noncurrent versions and unfinished uploads. In a versioned
    bucket a delete leaves a marker, and the service role rightly lacks s3:DeleteObjectVersion;
    a second rule removes the markers once nothing is behind them (S3 does not allow that
    action in a rule that also expires by days).
    """
    rules = [
        _rule(
            "expire-post-deploy-check-objects",
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=1),
            noncurrent_version_expiration=(
                aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=1
                )
            ),
            abort_incomplete_multipart_upload=(
                aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=1
                )
            ),
        )
    ]
    if versioned:
        rules.append(
            _rule(
                "expire-post-deploy-check-delete-markers",
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    expired_object_delete_marker=True
                ),
            )
        )
    return rules


class SecureBucketArgs(TypedDict):
    """How a service's bucket is configured."""

    versioning: NotRequired[bool]
    """Keep every version of every object (S3 versioning). Default: false."""
    force_destroy: NotRequired[bool]
    """Let `pulumi destroy` delete the bucket while it still holds objects. Default: false."""
    kms_key_arn: NotRequired[pulumi.Input[str]]
    """Encrypt with this KMS key (SSE-KMS, with an S3 Bucket Key) and refuse puts that ask for
    another key or other encryption. Unset: SSE-S3."""


class SecureBucket(pulumi.ComponentResource):
    """An auto-named bucket: no public access, no ACLs, TLS only, optional versioning, SSE-S3
    or SSE-KMS with one key.

    Its post-deploy check prefix expires after a day (the safety net for a killed check).
    """

    bucket_name: pulumi.Output[str]
    """The bucket's name (auto-named: `<name>-bucket-<random>`)."""
    bucket_arn: pulumi.Output[str]
    """The bucket's ARN."""

    def __init__(
        self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Auto-named: the physical name gets a random suffix, so stacks and services never
        # collide in S3's global namespace.
        versioning = args.get("versioning", False)
        bucket = aws.s3.Bucket(
            f"{name}-bucket", force_destroy=args.get("force_destroy", False), opts=child
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        # One bucket setting at a time: S3 answers concurrent changes to one bucket with
        # OperationAborted, so each of these waits for the one before it.
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        key_arn = args.get("kms_key_arn")
        tls_only = aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, key_arn).apply(
                lambda values: json.dumps(policies.tls_only_bucket_policy(values[0], values[1]))
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ownership]),
        )
        last: pulumi.Resource = tls_only
        if versioning:
            last = aws.s3.BucketVersioning(
                f"{name}-versioning",
                bucket=bucket.id,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                    status="Enabled"
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[tls_only]),
            )
        if key_arn is not None:
            # A Bucket Key: S3 asks KMS for a data key per bucket for a while, not per object,
            # which keeps KMS requests (and their cost) down by orders of magnitude.
            last = aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-encryption",
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="aws:kms", kms_master_key_id=key_arn
                        ),
                        bucket_key_enabled=True,
                    )
                ],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[last]),
            )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-check-cleanup",
            bucket=bucket.id,
            rules=check_cleanup_rules(versioning),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[last]),
        )

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})

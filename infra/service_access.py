"""One service's bucket and the role that is the only way into it."""

# No `from __future__ import annotations`: the schema analyser reads these annotations live.
import json
from typing import NamedTuple, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from . import policies
from .context import resolve_context
from .exclusive_policies import declare_role_policies, named_policy_options
from .secure_bucket import SecureBucket, SecureBucketArgs


class _Key(NamedTuple):
    arn: pulumi.Output[str]
    via_service: pulumi.Output[str]


class ServiceAccessArgs(TypedDict):
    """One service: its bucket, and the role that may use it."""

    ec2_principal: pulumi.Input[str]
    """EC2's service principal in the stack's partition (`aws.get_service_principal`), which
    the role always trusts: an instance may carry it."""
    versioning: NotRequired[bool]
    """Keep every version of every object in the bucket (S3 versioning). Default: false."""
    force_destroy: NotRequired[bool]
    """Let `pulumi destroy` delete the bucket while it still holds objects. Default: false."""
    role_path: NotRequired[str]
    """The IAM path of the service roles a host role may assume, e.g. `/team/dev/`. Default:
    `/ec2-assume-role/<stack>/`. A change of path replaces the role (a new ARN)."""
    encryption: NotRequired[str]
    """s3 (the default): SSE-S3. kms: SSE-KMS with `kms_key_arn`, or else a key created here
    (rotated yearly, a 30-day deletion window, administered by the account through IAM)."""
    kms_key_arn: NotRequired[pulumi.Input[str]]
    """encryption kms: the key to use instead of creating one. Its policy is left alone; it
    must let the account's IAM policies grant it (docs/kms.md)."""
    account_id: NotRequired[pulumi.Input[str]]
    """encryption kms: the account, for the key policy. Default: asked of the provider."""
    region: NotRequired[pulumi.Input[str]]
    """encryption kms: the stack's region (`kms:ViaService`). Default: asked of the provider."""
    partition: NotRequired[pulumi.Input[str]]
    """encryption kms: the stack's partition. Default: asked of the provider."""
    assumed_by: NotRequired[pulumi.Input[str]]
    """The ARN of the host role that may assume this role (shared topology); unset, only EC2
    is trusted."""
    declare_policies: NotRequired[bool]
    """Declare here that the role carries exactly its bucket grant (infra/exclusive_policies).
    Default: true. False when the role goes to a HardenedInstance (dedicated topology), which
    adds the instance's policies and declares the complete set, given `bucket_policy_name`: one
    role takes one declaration, since each removes what it does not list."""


class ServiceAccess(pulumi.ComponentResource):
    """A service's bucket, plus its service role with the grant that joins them.

    The grant is written here, where the bucket and the role meet: `s3:ListBucket` on the
    bucket, get/put/delete on its objects (and, in a versioned bucket, deleting the versions
    of the post-deploy check's own objects), and nothing else.
    """

    bucket_name: pulumi.Output[str]
    """The service's bucket."""
    bucket_arn: pulumi.Output[str]
    """The service's bucket's ARN."""
    role_arn: pulumi.Output[str]
    """The service role's ARN: what the service's AWS profile assumes."""
    role_name: pulumi.Output[str]
    """The service role's name (auto-named: `<name>-role-<random>`)."""
    bucket_policy_name: pulumi.Output[str]
    """The grant's name (an inline policy of the role), for a declaration of its complete set."""
    kms_key_arn: pulumi.Output[str] | None
    """SSE-KMS: the bucket's key (created here, or the one brought)."""

    def __init__(
        self, name: str, args: ServiceAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:ServiceAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        versioned = args.get("versioning", False)
        key = _bucket_key(name, args, self) if args.get("encryption", "s3") == "kms" else None
        bucket_args: SecureBucketArgs = {
            "versioning": versioned,
            "force_destroy": args.get("force_destroy", False),
        }
        if key is not None:
            bucket_args["kms_key_arn"] = key.arn
        bucket = SecureBucket(name, bucket_args, opts=child)
        trust = pulumi.Output.all(args["ec2_principal"], args.get("assumed_by")).apply(
            lambda values: json.dumps(
                policies.trust_policy(values[0], [values[1]] if values[1] else [])
            )
        )
        # Auto-named on purpose. AWS stores a trust principal by the role's unique id, so a role
        # replaced under the same name would silently drop out of every trust policy naming it;
        # a fresh name gives a fresh ARN, and Pulumi then rewrites the trust policies.
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=trust,
            # Only the stack's service roles live under this path; the host role may assume
            # exactly what is under it. A change of path replaces the role (a new ARN).
            path=args.get("role_path") or policies.service_role_path(pulumi.get_stack()),
            # Role chaining caps sessions at an hour; promising more would only mislead.
            max_session_duration=policies.MAX_CHAINED_SESSION_SECONDS,
            description=f"Service role for {name}: access to its own bucket only",
            opts=child,
        )
        # Versioning on (SecureBucket turns it on as Enabled, never Suspended) keeps what a
        # delete removes; the grant then lets the check delete its own objects' versions, under
        # its reserved prefix only, so that it leaves nothing behind.
        # Named as its resource is: the declaration below and IAM show the same stable name.
        bucket_policy = aws.iam.RolePolicy(
            f"{name}-bucket-access",
            name=f"{name}-bucket-access",
            role=role.name,
            policy=pulumi.Output.all(
                bucket.bucket_arn,
                key.arn if key else None,
                key.via_service if key else None,
            ).apply(
                lambda values: json.dumps(
                    policies.bucket_access_policy(values[0], versioned, values[1], values[2])
                )
            ),
            opts=named_policy_options(child),
        )
        if args.get("declare_policies", True):
            # A shared service role has this one grant and no managed policy at all.
            declare_role_policies(name, role.name, [bucket_policy.name], [], child)

        self.bucket_name = bucket.bucket_name
        self.bucket_arn = bucket.bucket_arn
        self.role_arn = role.arn
        self.role_name = role.name
        self.bucket_policy_name = bucket_policy.name
        self.kms_key_arn = key.arn if key else None
        self.register_outputs(
            {
                "kms_key_arn": self.kms_key_arn,
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "role_arn": self.role_arn,
                "role_name": self.role_name,
                "bucket_policy_name": self.bucket_policy_name,
            }
        )


def _bucket_key(name: str, args: ServiceAccessArgs, parent: pulumi.Resource) -> _Key:
    """The service's KMS key: the one brought (`kms_key_arn`), or a new one."""
    needed = ("account_id", "region", "partition")
    if all(k in args for k in needed):
        account = pulumi.Output.from_input(args["account_id"])
        region = pulumi.Output.from_input(args["region"])
        partition = pulumi.Output.from_input(args["partition"])
    else:
        context = resolve_context(parent)
        account, region, partition = context.account, context.region, context.partition
    via_service = pulumi.Output.all(region, partition).apply(
        lambda rp: policies.s3_via_service(rp[0], rp[1])
    )
    if "kms_key_arn" in args:
        return _Key(pulumi.Output.from_input(args["kms_key_arn"]), via_service)
    key = aws.kms.Key(
        f"{name}-key",
        description=f"SSE-KMS for {name}'s bucket: used only by its service role, through S3",
        enable_key_rotation=True,
        rotation_period_in_days=365,
        # The longest window AWS allows: a key deleted by mistake takes its data with it.
        deletion_window_in_days=30,
        policy=pulumi.Output.all(partition, account).apply(
            lambda pa: json.dumps(policies.key_policy(f"arn:{pa[0]}:iam::{pa[1]}:root"))
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return _Key(key.arn, via_service)

"""One service's bucket and the role that is the only way into it."""

# No `from __future__ import annotations`: the schema analyser reads these annotations live.
import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from . import policies
from .exclusive_policies import declare_role_policies, named_policy_options
from .secure_bucket import SecureBucket


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

    def __init__(
        self, name: str, args: ServiceAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:ServiceAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        versioned = args.get("versioning", False)
        bucket = SecureBucket(
            name,
            {"versioning": versioned, "force_destroy": args.get("force_destroy", False)},
            opts=child,
        )
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
            policy=bucket.bucket_arn.apply(
                lambda arn: json.dumps(policies.bucket_access_policy(arn, versioned))
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
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "role_arn": self.role_arn,
                "role_name": self.role_name,
                "bucket_policy_name": self.bucket_policy_name,
            }
        )

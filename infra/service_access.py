"""One service's bucket and the role that is the only way into it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.exclusive_policies import declare_role_policies, named_policy_options
from infra.secure_bucket import SecureBucket, SecureBucketArgs


@dataclass(frozen=True)
class ServiceAccessArgs:
    bucket: SecureBucketArgs
    """How the service's bucket is configured."""
    ec2_principal: pulumi.Input[str]
    """EC2's service principal in the stack's partition."""
    role_path: str
    """The IAM path of the stack's service roles, which the host role may assume."""
    assumed_by: pulumi.Input[str] | None = None
    """The host role's ARN (shared topology), which the service role's trust policy names."""
    declare_policies: bool = True
    """Declare here that the role carries exactly its bucket grant (infra/exclusive_policies).
    False when the role goes to a HardenedInstance (dedicated topology), which adds the
    instance's policies and declares the complete set, given `bucket_policy_name`: one role
    takes one declaration, since each removes what it does not list."""


class ServiceAccess(pulumi.ComponentResource):
    """A service's bucket, plus its service role with the grant that joins them.

    The grant is written here, where the bucket and the role meet: `s3:ListBucket` on the
    bucket, get/put/delete on its objects (and, in a versioned bucket, deleting the versions
    of the post-deploy check's own objects), and nothing else.
    """

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]
    bucket_policy_name: pulumi.Output[str]
    """The grant's name (an inline policy of the role), for a declaration of its complete set."""

    def __init__(
        self, name: str, args: ServiceAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:ServiceAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        bucket = SecureBucket(name, args.bucket, opts=child)
        trust = pulumi.Output.all(args.ec2_principal, args.assumed_by).apply(
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
            path=args.role_path,
            # Role chaining caps sessions at an hour; promising more would only mislead.
            max_session_duration=policies.MAX_CHAINED_SESSION_SECONDS,
            description=f"Service role for {name}: access to its own bucket only",
            opts=child,
        )
        # Versioning on (SecureBucket turns it on as Enabled, never Suspended) keeps what a
        # delete removes; the grant then lets the check delete its own objects' versions, under
        # its reserved prefix only, so that it leaves nothing behind.
        versioned = args.bucket.versioning
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
        if args.declare_policies:
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

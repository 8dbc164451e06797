"""What the program asks the provider about the target account, once for the whole stack."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AwsContext:
    region: pulumi.Output[str]
    partition: pulumi.Output[str]
    """aws, aws-cn or aws-us-gov: every ARN the program builds uses it."""
    account: pulumi.Output[str]
    ec2_principal: pulumi.Output[str]
    """EC2's service principal as IAM expects it in this partition."""
    stack: str
    """The stack name: the IAM path of its service roles."""


def resolve_context(parent: pulumi.Resource | None = None) -> AwsContext:
    """Invokes answer in `pulumi preview` too, so nothing here is unknown at plan time.

    With a `parent`, they ask that resource's AWS provider (e.g. one passed to a component in
    `providers`), as its children will.
    """
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    region = aws.get_region_output(opts=invoke).region
    return AwsContext(
        region=region,
        partition=aws.get_partition_output(opts=invoke).partition,
        account=aws.get_caller_identity_output(opts=invoke).account_id,
        ec2_principal=aws.get_service_principal_output(
            service_name="ec2", region=region, opts=invoke
        ).name,
        stack=pulumi.get_stack(),
    )


def configured_region() -> str | None:
    """The region the stack's default AWS provider uses: `aws:region`, else the environment."""
    return (
        pulumi.Config("aws").get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
    )

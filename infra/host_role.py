"""The shared development host's role ("role1" in the scenario)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra import policies


@dataclass(frozen=True)
class HostRoleArgs:
    ec2_principal: pulumi.Input[str]
    """EC2's service principal in the stack's partition."""
    trusted_principals: Sequence[str] = field(default_factory=tuple)
    """IAM ARNs that may assume the host role besides EC2, e.g. an operator running checks."""


class HostRole(pulumi.ComponentResource):
    """The role the shared host's instance profile carries.

    It has no S3 access of its own. Its only grant, written by `SharedHost`, is `sts:AssumeRole`
    on the stack's service roles. It lives outside their IAM path, so it cannot assume itself.
    Its complete set of policies (that grant, and the instance's SSM core policy and Deny) is
    declared exclusively where the last of them is added: HardenedInstance for a host the stack
    creates, SharedHost for an adopted one.
    """

    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: HostRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:HostRole", name, None, opts)
        principals = list(args.trusted_principals)
        # Auto-named: a replacement gets a new ARN, and the service roles' trust policies,
        # which take this ARN as an input, are updated with it. AWS keys a trust principal by
        # the role's unique id, so a same-name replacement would break that trust silently.
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.from_input(args.ec2_principal).apply(
                lambda ec2: json.dumps(policies.trust_policy(ec2, principals))
            ),
            max_session_duration=policies.MAX_CHAINED_SESSION_SECONDS,
            description="Shared dev host: may only assume the service roles",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role_arn = role.arn
        self.role_name = role.name
        self.register_outputs({"role_arn": self.role_arn, "role_name": self.role_name})

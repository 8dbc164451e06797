"""The shared development host's role ("role1" in the scenario)."""

# No `from __future__ import annotations`: the schema analyser reads these annotations live.
import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from . import policies


class HostRoleArgs(TypedDict):
    """Who may assume the shared host's role."""

    ec2_principal: pulumi.Input[str]
    """EC2's service principal in the stack's partition (`aws.get_service_principal`)."""
    trusted_principals: NotRequired[list[str]]
    """IAM role or user ARNs that may assume the host role besides EC2, e.g. an operator
    running the check. Never `*` or an account root."""


class HostRole(pulumi.ComponentResource):
    """The role the shared host's instance profile carries.

    It has no S3 access of its own. Its only grant, written by `SharedHost`, is `sts:AssumeRole`
    on the stack's service roles. It lives outside their IAM path, so it cannot assume itself.
    Its complete set of policies (that grant, and the instance's SSM core policy and Deny) is
    declared exclusively where the last of them is added: HardenedInstance for a host the stack
    creates, SharedHost for an adopted one.
    """

    role_arn: pulumi.Output[str]
    """The host role's ARN, which each service role's trust policy names."""
    role_name: pulumi.Output[str]
    """The host role's name (auto-named: `<name>-role-<random>`)."""

    def __init__(
        self, name: str, args: HostRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:HostRole", name, None, opts)
        principals = list(args.get("trusted_principals", []))
        # Auto-named: a replacement gets a new ARN, and the service roles' trust policies,
        # which take this ARN as an input, are updated with it. AWS keys a trust principal by
        # the role's unique id, so a same-name replacement would break that trust silently.
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.from_input(args["ec2_principal"]).apply(
                lambda ec2: json.dumps(policies.trust_policy(ec2, principals))
            ),
            max_session_duration=policies.MAX_CHAINED_SESSION_SECONDS,
            description="Shared dev host: may only assume the service roles",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role_arn = role.arn
        self.role_name = role.name
        self.register_outputs({"role_arn": self.role_arn, "role_name": self.role_name})

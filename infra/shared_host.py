"""The development topology's single host, whose role assumes every service role."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.aws_config import render_aws_config, render_user_data
from infra.hardened_instance import HardenedInstance, HardenedInstanceArgs
from infra.host_role import HostRole
from infra.placement import Placement


@dataclass(frozen=True)
class SharedHostArgs:
    host_role: HostRole
    """The role the host carries; each service role's trust policy already names it."""
    service_role_arns: Mapping[str, pulumi.Input[str]]
    """Service name to service role ARN: what the host may assume, one profile each."""
    region: pulumi.Input[str]
    """Written into the profiles, so the SDK needs no other setting."""
    placement: Placement
    """AMI, type, subnet and VPC."""


class SharedHost(pulumi.ComponentResource):
    """The identity side of the trust (host may assume each role), and the host itself.

    The resource side, each service role's trust naming the host role, is in ServiceAccess.
    """

    instance_id: pulumi.Output[str]
    instance_profile_name: pulumi.Output[str]
    aws_config: pulumi.Output[str]

    def __init__(
        self, name: str, args: SharedHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:SharedHost", name, None, opts)
        names = sorted(args.service_role_arns)
        role_arns = pulumi.Output.all(*(args.service_role_arns[n] for n in names))

        aws.iam.RolePolicy(
            f"{name}-assume-service-roles",
            role=args.host_role.role_name,
            policy=role_arns.apply(lambda arns: json.dumps(policies.assume_roles_policy(arns))),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws_config = pulumi.Output.all(args.region, role_arns).apply(
            lambda values: render_aws_config(values[0], dict(zip(names, values[1], strict=True)))
        )
        host = HardenedInstance(
            name,
            HardenedInstanceArgs(
                role_name=args.host_role.role_name,
                placement=args.placement,
                user_data=aws_config.apply(render_user_data),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.instance_id = host.instance_id
        self.instance_profile_name = host.instance_profile_name
        self.aws_config = aws_config
        self.register_outputs(
            {
                "instance_id": self.instance_id,
                "instance_profile_name": self.instance_profile_name,
                "aws_config": self.aws_config,
            }
        )

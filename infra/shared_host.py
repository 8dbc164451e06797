"""The development topology's single host, whose role assumes every service role."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.adopted_host import ProfileAssociation
from infra.aws_config import render_aws_config
from infra.context import AwsContext
from infra.exclusive_policies import declare_role_policies, named_policy_options
from infra.hardened_instance import HardenedInstance, HardenedInstanceArgs, instance_role_policies
from infra.host_role import HostRole
from infra.placement import Placement
from infra.profile_delivery import ProfileDelivery, ProfileDeliveryArgs


@dataclass(frozen=True)
class SharedHostArgs:
    host_role: HostRole
    """The role the host carries; each service role's trust policy already names it."""
    service_role_arns: Mapping[str, pulumi.Input[str]]
    """Service name to service role ARN: one profile each."""
    context: AwsContext
    """Region, partition, account and stack: the ARNs of what the host may assume."""
    placement: Placement | None
    """AMI, type, subnet and VPC of the host the stack creates; None with an adopted host."""
    host_instance_id: str | None = None
    """An existing instance to adopt as the host instead of creating one."""
    metadata_hop_limit: int = 2
    """IMDS hop limit of a created host (2: containers reach metadata)."""


class SharedHost(pulumi.ComponentResource):
    """The identity side of the trust (host may assume the service roles), and the host itself.

    The resource side, each service role's trust naming the host role, is in ServiceAccess.
    The host role carries exactly what the stack declares (infra/exclusive_policies): the
    HardenedInstance declares it for a host the stack creates, this component for an adopted
    one.
    """

    instance_id: pulumi.Output[str]
    instance_profile_name: pulumi.Output[str]
    aws_config: pulumi.Output[str]
    profiles_association_id: pulumi.Output[str]
    profiles_sha256: pulumi.Output[str]

    def __init__(
        self, name: str, args: SharedHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:SharedHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ctx = args.context
        service_roles = pulumi.Output.all(ctx.partition, ctx.account).apply(
            lambda pa: policies.service_roles_arn(pa[0], pa[1], ctx.stack)
        )
        assume = aws.iam.RolePolicy(
            f"{name}-assume-service-roles",
            name=f"{name}-assume-service-roles",
            role=args.host_role.role_name,
            policy=service_roles.apply(lambda arn: json.dumps(policies.assume_roles_policy(arn))),
            opts=named_policy_options(child),
        )
        names = sorted(args.service_role_arns)
        role_arns = pulumi.Output.all(*(args.service_role_arns[n] for n in names))
        aws_config = pulumi.Output.all(ctx.region, role_arns).apply(
            lambda values: render_aws_config(values[0], dict(zip(names, values[1], strict=True)))
        )
        if args.host_instance_id is None:
            if args.placement is None:
                raise ValueError("a host the stack creates needs a placement")
            host = HardenedInstance(
                name,
                HardenedInstanceArgs(
                    role_name=args.host_role.role_name,
                    placement=args.placement,
                    ssm_core_policy_arn=ctx.partition.apply(policies.ssm_core_policy_arn),
                    metadata_hop_limit=args.metadata_hop_limit,
                    # The instance adds the last policies, so it declares the complete set.
                    role_policy_names=[assume.name],
                ),
                opts=child,
            )
            instance_id, profile_name = host.instance_id, host.instance_profile_name
            ready: list[pulumi.Resource] = [host]
        else:
            attached = instance_role_policies(
                name,
                args.host_role.role_name,
                ctx.partition.apply(policies.ssm_core_policy_arn),
                child,
            )
            # No HardenedInstance here: this component holds the host role's complete set.
            declare_role_policies(
                name,
                args.host_role.role_name,
                [assume.name, attached.no_parameter_reads.name],
                [attached.ssm_core.policy_arn],
                child,
            )
            profile = aws.iam.InstanceProfile(
                f"{name}-profile", role=args.host_role.role_name, opts=child
            )
            association = ProfileAssociation(
                f"{name}-adopt",
                args.host_instance_id,
                profile.name,
                ctx.region,
                opts=pulumi.ResourceOptions(parent=self, depends_on=attached.resources),
            )
            instance_id = pulumi.Output.from_input(args.host_instance_id)
            profile_name = profile.name
            ready = [association]
        delivery = ProfileDelivery(
            name,
            ProfileDeliveryArgs(instance_id=instance_id, aws_config=aws_config),
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )

        self.instance_id = instance_id
        self.instance_profile_name = profile_name
        self.aws_config = aws_config
        self.profiles_association_id = delivery.association_id
        self.profiles_sha256 = delivery.config_sha256
        self.register_outputs(
            {
                "instance_id": self.instance_id,
                "instance_profile_name": self.instance_profile_name,
                "aws_config": self.aws_config,
                "profiles_association_id": self.profiles_association_id,
                "profiles_sha256": self.profiles_sha256,
            }
        )

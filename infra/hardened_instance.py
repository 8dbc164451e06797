"""An EC2 instance reachable only through Session Manager, carrying one role."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.placement import Placement

SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


@dataclass(frozen=True)
class HardenedInstanceArgs:
    role_name: pulumi.Input[str]
    """The role the instance profile carries: the host role, or a service's own role."""
    placement: Placement
    """AMI, type, subnet and VPC."""
    user_data: pulumi.Input[str] | None = None
    """A first-boot script; a change replaces the instance, since cloud-init runs it only once."""


class HardenedInstance(pulumi.ComponentResource):
    """Instance profile, a security group with no ingress, and an IMDSv2-only instance.

    Operators reach it with SSM Session Manager, so the role gets the SSM core policy (minus its
    parameter reads), there is no key pair and nothing listens to the network.
    """

    instance_id: pulumi.Output[str]
    instance_profile_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: HardenedInstanceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:HardenedInstance", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        ssm_core = aws.iam.RolePolicyAttachment(
            f"{name}-ssm-core", role=args.role_name, policy_arn=SSM_CORE_POLICY, opts=child
        )
        # The managed policy also lets the role read every SSM parameter; the agent does not
        # need that, and the role must reach nothing beyond what it is for.
        no_parameters = aws.iam.RolePolicy(
            f"{name}-no-parameter-reads",
            role=args.role_name,
            policy=json.dumps(policies.deny_parameter_reads()),
            opts=child,
        )
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=args.role_name, opts=child)
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description="No ingress: reached through SSM Session Manager only",
            vpc_id=args.placement.vpc_id,
            # Outbound HTTPS only: the SSM agent, STS and S3 are all HTTPS APIs. DNS and
            # instance metadata are not subject to security groups.
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=["0.0.0.0/0"],
                    description="HTTPS to AWS APIs",
                )
            ],
            opts=child,
        )
        instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=args.placement.ami_id,
            instance_type=args.placement.instance_type,
            subnet_id=args.placement.subnet_id,
            vpc_security_group_ids=[security_group.id],
            iam_instance_profile=profile.name,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
            ),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=True, volume_type="gp3"
            ),
            user_data=args.user_data,
            user_data_replace_on_change=args.user_data is not None,
            tags={"Name": name},
            # The agent registers at boot; with its permissions in place it does so at once.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ssm_core, no_parameters]),
        )

        self.instance_id = instance.id
        self.instance_profile_name = profile.name
        self.register_outputs(
            {"instance_id": self.instance_id, "instance_profile_name": self.instance_profile_name}
        )

"""An EC2 instance reachable only through Session Manager, carrying one role."""

# No `from __future__ import annotations`: the schema analyser reads these annotations live.
import json
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from . import policies
from .exclusive_policies import declare_role_policies, named_policy_options
from .placement import Placement, architecture


@dataclass(frozen=True)
class InstanceRolePolicies:
    """What `instance_role_policies` puts on a role."""

    ssm_core: aws.iam.RolePolicyAttachment
    no_parameter_reads: aws.iam.RolePolicy

    @property
    def resources(self) -> list[pulumi.Resource]:
        """Both, for an instance (or an adoption) to wait for."""
        return [self.ssm_core, self.no_parameter_reads]


def instance_role_policies(
    name: str,
    role_name: pulumi.Input[str],
    ssm_core_policy_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> InstanceRolePolicies:
    """What an instance's role needs for Session Manager, and not one permission more.

    The SSM core managed policy, and an explicit Deny of what it also allows: reading every
    SSM parameter. The agent does not need that, and the role must reach nothing beyond what
    it is for. An instance should wait for both before it boots.
    """
    ssm_core = aws.iam.RolePolicyAttachment(
        f"{name}-ssm-core", role=role_name, policy_arn=ssm_core_policy_arn, opts=opts
    )
    no_parameters = aws.iam.RolePolicy(
        f"{name}-no-parameter-reads",
        name=f"{name}-no-parameter-reads",
        role=role_name,
        policy=json.dumps(policies.deny_parameter_reads()),
        opts=named_policy_options(opts),
    )
    return InstanceRolePolicies(ssm_core, no_parameters)


class HardenedInstanceArgs(TypedDict):
    """An instance carrying one role, reached through SSM Session Manager only."""

    role_name: pulumi.Input[str]
    """The role the instance profile carries: the host role, or a service's own role."""
    placement: Placement
    """AMI, type, subnet and VPC."""
    ssm_core_policy_arn: pulumi.Input[str]
    """AmazonSSMManagedInstanceCore in the stack's partition, e.g.
    `arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore`."""
    metadata_hop_limit: NotRequired[int]
    """IMDS hop limit: 2 (the default) lets containers on the instance reach instance metadata
    (IMDSv2); 1 keeps them out."""
    role_policy_names: NotRequired[list[pulumi.Input[str]]]
    """The inline policies the stack puts on the role elsewhere (a service's bucket grant, the
    host's AssumeRole grant), as their `name` outputs. With the instance's own they are the
    role's complete set, which this component declares (infra/exclusive_policies): anything
    else on the role is removed."""


class HardenedInstance(pulumi.ComponentResource):
    """Instance profile, a security group with no ingress, and an IMDSv2-only instance.

    Operators reach it with SSM Session Manager, so the role gets the SSM core policy (minus its
    parameter reads), there is no key pair and nothing listens to the network. It adds the last
    policies to the role, so it declares the role's complete set.
    """

    instance_id: pulumi.Output[str]
    """The instance's id: `aws ssm start-session --target <id>`."""
    instance_profile_name: pulumi.Output[str]
    """The instance profile that carries the role."""

    def __init__(
        self, name: str, args: HardenedInstanceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:HardenedInstance", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        role_name, placement = args["role_name"], args["placement"]
        attached = instance_role_policies(name, role_name, args["ssm_core_policy_arn"], child)
        declare_role_policies(
            name,
            role_name,
            [*args.get("role_policy_names", []), attached.no_parameter_reads.name],
            [attached.ssm_core.policy_arn],
            child,
        )
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role_name, opts=child)
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description="No ingress: reached through SSM Session Manager only",
            vpc_id=placement["vpc_id"],
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
        # What replaces this instance: a pinned `amiId` that changes, the subnet, the root
        # volume's encryption, and a change of architecture (below). Everything else (the
        # type within an architecture, profile, security groups, metadata options) is changed
        # in place, and it carries no user data: the shared host's profiles arrive by an SSM
        # association, so a change of services never replaces it.
        #
        # The architecture is part of the logical name (`<name>-instance` for x86_64, the
        # default, whose name predates this; `<name>-instance-arm64` for Graviton). An
        # unpinned AMI is not followed (`ignore_changes`), and ignore_changes keeps the AMI of
        # the resource's old state even through a replacement: t3.micro -> t4g.small on one
        # URN would put the arm64 type on the x86_64 image, which AWS refuses. A new URN has
        # no old state, so Pulumi creates the new host from the image looked up for its own
        # architecture, points the association at it, then deletes the old one: the preview
        # shows exactly that, a create and a delete.
        arch = architecture(placement["instance_type"])
        instance = aws.ec2.Instance(
            f"{name}-instance" if arch == "x86_64" else f"{name}-instance-{arch}",
            ami=placement["ami_id"],
            instance_type=placement["instance_type"],
            subnet_id=placement.get("subnet_id"),
            vpc_security_group_ids=[security_group.id],
            iam_instance_profile=profile.name,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                # A container on the host is one network hop further from the metadata
                # service; with the default limit of 1 its IMDSv2 token never reaches it, and
                # an SDK in the container cannot get the host role's credentials.
                http_put_response_hop_limit=args.get("metadata_hop_limit", 2),
            ),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=True, volume_type="gp3"
            ),
            tags={"Name": name},
            # The agent registers at boot; with its permissions in place it does so at once.
            # An unpinned AMI is the latest one AWS publishes: following it would replace the
            # instance every few weeks, so only a pinned amiId moves it to a new image.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=attached.resources,
                ignore_changes=[] if placement.get("ami_pinned", False) else ["ami"],
            ),
        )

        self.instance_id = instance.id
        self.instance_profile_name = profile.name
        self.register_outputs(
            {"instance_id": self.instance_id, "instance_profile_name": self.instance_profile_name}
        )

"""The development topology's single host, whose role assumes every service role."""

# No `from __future__ import annotations`: the schema analyser reads these annotations live.
import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from . import policies
from .adopted_host import ProfileAssociation
from .aws_config import render_aws_config
from .exclusive_policies import declare_role_policies, named_policy_options
from .hardened_instance import HardenedInstance, instance_role_policies
from .placement import Placement
from .profile_delivery import ProfileDelivery, ProfileDeliveryArgs
from .settings import DEFAULT_HOP_LIMIT


class SharedHostArgs(TypedDict):
    """The dev host: its role's grant, the instance (created or adopted) and its profiles."""

    host_role_name: pulumi.Input[str]
    """The name of the role the host carries (HostRole's role_name); each service role's trust
    policy already names its ARN."""
    service_role_arns: dict[str, pulumi.Input[str]]
    """Service name to service role ARN: one `[profile <service>]` each in /etc/aws/config."""
    service_roles_arn: pulumi.Input[str]
    """What the host role may assume: the service roles' IAM path as an ARN pattern, e.g.
    `arn:aws:iam::123456789012:role/ec2-assume-role/dev/*`."""
    region: pulumi.Input[str]
    """The region every profile uses."""
    ssm_core_policy_arn: pulumi.Input[str]
    """AmazonSSMManagedInstanceCore in the stack's partition."""
    placement: NotRequired[Placement]
    """Type, image, VPC and subnet of the host the stack creates; unset with host_instance_id."""
    host_instance_id: NotRequired[str]
    """An existing instance (running the SSM agent) to adopt as the host instead of creating
    one: it gets the host role's instance profile and the profiles, and nothing else changes."""
    metadata_hop_limit: NotRequired[int]
    """IMDS hop limit of a created host: 2 (the default) lets containers reach metadata."""


class SharedHost(pulumi.ComponentResource):
    """The identity side of the trust (host may assume the service roles), and the host itself.

    The resource side, each service role's trust naming the host role, is in ServiceAccess.
    The host role carries exactly what the stack declares (infra/exclusive_policies): the
    HardenedInstance declares it for a host the stack creates, this component for an adopted
    one.
    """

    instance_id: pulumi.Output[str]
    """The host's instance id (created, or the adopted one)."""
    instance_profile_name: pulumi.Output[str]
    """The instance profile carrying the host role."""
    aws_config: pulumi.Output[str]
    """The /etc/aws/config installed on the host: one assuming profile per service."""
    profiles_association_id: pulumi.Output[str]
    """The SSM association that installs (and every 30 minutes repairs) the profiles."""
    profiles_sha256: pulumi.Output[str]
    """The SHA-256 of that file, as the check compares it on the host."""

    def __init__(
        self, name: str, args: SharedHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:SharedHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role_name, adopted = args["host_role_name"], args.get("host_instance_id")
        assume = aws.iam.RolePolicy(
            f"{name}-assume-service-roles",
            name=f"{name}-assume-service-roles",
            role=role_name,
            policy=pulumi.Output.from_input(args["service_roles_arn"]).apply(
                lambda arn: json.dumps(policies.assume_roles_policy(arn))
            ),
            opts=named_policy_options(child),
        )
        # from_input resolves a map of ARNs whether it arrives as a dict of Outputs (Python)
        # or as one Output (a multi-language caller's map with dependencies).
        aws_config = pulumi.Output.all(
            args["region"], pulumi.Output.from_input(args["service_role_arns"])
        ).apply(lambda values: render_aws_config(values[0], dict(values[1])))
        if adopted is None:
            placement = args.get("placement")
            if placement is None:
                raise ValueError(f"SharedHost {name!r}: set placement, or host_instance_id")
            host = HardenedInstance(
                name,
                {
                    "role_name": role_name,
                    "placement": placement,
                    "ssm_core_policy_arn": args["ssm_core_policy_arn"],
                    "metadata_hop_limit": args.get("metadata_hop_limit", DEFAULT_HOP_LIMIT),
                    # The instance adds the last policies, so it declares the complete set.
                    "role_policy_names": [assume.name],
                },
                opts=child,
            )
            instance_id, profile_name = host.instance_id, host.instance_profile_name
            ready: list[pulumi.Resource] = [host]
        else:
            attached = instance_role_policies(name, role_name, args["ssm_core_policy_arn"], child)
            # No HardenedInstance here: this component holds the host role's complete set.
            declare_role_policies(
                name,
                role_name,
                [assume.name, attached.no_parameter_reads.name],
                [attached.ssm_core.policy_arn],
                child,
            )
            profile = aws.iam.InstanceProfile(f"{name}-profile", role=role_name, opts=child)
            association = ProfileAssociation(
                f"{name}-adopt",
                adopted,
                profile.name,
                args["region"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=attached.resources),
            )
            instance_id = pulumi.Output.from_input(adopted)
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

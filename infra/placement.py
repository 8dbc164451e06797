"""Where instances run: the AMI, the subnet and its VPC, resolved once for the whole stack."""

# No `from __future__ import annotations`: Placement is part of the component schema, which
# the analyser reads from live annotations.
import re
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from .settings import StackConfig

# Graviton types carry a `g` among the attribute letters after the generation digit
# (t4g, m7g, c7gn, im4gn), or are the first generation, a1; GPU families that merely start
# with `g` (g4dn, g5) are x86_64.
_GRAVITON = re.compile(r"^(?:[a-z-]+\d+[a-z]*g[a-z]*|a1)\.")
AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"


def architecture(instance_type: str) -> str:
    """The AMI architecture an instance type needs: `arm64` for Graviton, else `x86_64`."""
    return "arm64" if _GRAVITON.match(instance_type) else "x86_64"


class Placement(TypedDict):
    """Where an instance runs: its type, image, VPC and subnet."""

    instance_type: str
    """The EC2 instance type, e.g. t3.micro; Graviton types (t4g, m7g) need an arm64 image."""
    ami_id: pulumi.Input[str]
    """The image to launch."""
    vpc_id: pulumi.Input[str]
    """The VPC of the subnet, where the instance's security group is created."""
    subnet_id: NotRequired[pulumi.Input[str]]
    """The subnet; unset: the default subnet of the default VPC."""
    ami_pinned: NotRequired[bool]
    """True: a change of ami_id replaces the instance. False (the default): the instance keeps
    the image it was created from, so a newer latest image does not replace it."""


def resolve_placement(config: StackConfig, parent: pulumi.Resource | None = None) -> Placement:
    """Look up what the config leaves unset: the AMI and the VPC (with `parent`'s provider)."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    ami_id: pulumi.Input[str] = (
        config.ami_id
        or aws.ssm.get_parameter_output(
            name=AL2023_PARAMETER.format(arch=architecture(config.instance_type)), opts=invoke
        ).value
    )
    vpc_id: pulumi.Input[str] = (
        aws.ec2.get_subnet_output(id=config.subnet_id, opts=invoke).vpc_id
        if config.subnet_id
        else aws.ec2.get_vpc_output(default=True, opts=invoke).id
    )
    placement: Placement = {
        "instance_type": config.instance_type,
        "ami_id": ami_id,
        "vpc_id": vpc_id,
        "ami_pinned": config.ami_id is not None,
    }
    if config.subnet_id:
        placement["subnet_id"] = config.subnet_id
    return placement

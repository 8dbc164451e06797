"""Where instances run: the AMI, the subnet and its VPC, resolved once for the whole stack."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import StackConfig

# Graviton types carry a `g` among the attribute letters after the generation digit
# (t4g, m7g, c7gn, im4gn), or are the first generation, a1; GPU families that merely start
# with `g` (g4dn, g5) are x86_64.
_GRAVITON = re.compile(r"^(?:[a-z-]+\d+[a-z]*g[a-z]*|a1)\.")
AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"


def architecture(instance_type: str) -> str:
    """The AMI architecture an instance type needs: `arm64` for Graviton, else `x86_64`."""
    return "arm64" if _GRAVITON.match(instance_type) else "x86_64"


@dataclass(frozen=True)
class Placement:
    instance_type: str
    """The EC2 instance type of every instance in the stack."""
    ami_id: pulumi.Input[str]
    """The configured AMI, or the latest Amazon Linux 2023 for the type's architecture."""
    vpc_id: pulumi.Input[str]
    """The VPC of the configured subnet, or the default VPC."""
    subnet_id: str | None
    """None launches into the default subnet of the default VPC."""
    ami_pinned: bool = False
    """True when the config names the AMI; otherwise it follows the latest AL2023."""


def resolve_placement(config: StackConfig) -> Placement:
    """Look up what the config leaves unset: the AMI and the VPC."""
    ami_id: pulumi.Input[str] = (
        config.ami_id
        or aws.ssm.get_parameter_output(
            name=AL2023_PARAMETER.format(arch=architecture(config.instance_type))
        ).value
    )
    vpc_id: pulumi.Input[str] = (
        aws.ec2.get_subnet_output(id=config.subnet_id).vpc_id
        if config.subnet_id
        else aws.ec2.get_vpc_output(default=True).id
    )
    return Placement(
        instance_type=config.instance_type,
        ami_id=ami_id,
        vpc_id=vpc_id,
        subnet_id=config.subnet_id,
        ami_pinned=config.ami_id is not None,
    )

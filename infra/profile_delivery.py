"""Deliver the service profiles to the dev host in place, through SSM State Manager."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .aws_config import config_digest, render_install_script

REPAIR_SCHEDULE = "rate(30 minutes)"
"""How often the association runs again on its own: a hand-edited file is put back."""


@dataclass(frozen=True)
class ProfileDeliveryArgs:
    instance_id: pulumi.Input[str]
    """The dev host (created by the stack, or adopted)."""
    aws_config: pulumi.Input[str]
    """The profiles file to install as /etc/aws/config."""


class ProfileDelivery(pulumi.ComponentResource):
    """An SSM association that runs the install script on the host with AWS-RunShellScript.

    A change to the services changes only the association's parameters: State Manager applies
    them to the running host at once, and nothing replaces the instance. It runs through the
    SSM agent, whose own permissions (AmazonSSMManagedInstanceCore) are all it needs: the host
    role gets no new permission for it.
    """

    association_id: pulumi.Output[str]
    config_sha256: pulumi.Output[str]

    def __init__(
        self, name: str, args: ProfileDeliveryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ec2-assume-role:index:ProfileDelivery", name, None, opts)
        config = pulumi.Output.from_input(args.aws_config)
        association = aws.ssm.Association(
            f"{name}-profiles",
            name="AWS-RunShellScript",
            association_name=f"{name}-profiles",
            targets=[
                aws.ssm.AssociationTargetArgs(
                    key="InstanceIds", values=[pulumi.Output.from_input(args.instance_id)]
                )
            ],
            parameters={
                "commands": config.apply(render_install_script),
                "executionTimeout": "120",
            },
            schedule_expression=REPAIR_SCHEDULE,
            compliance_severity="HIGH",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.association_id = association.association_id
        self.config_sha256 = config.apply(config_digest)
        self.register_outputs(
            {"association_id": self.association_id, "config_sha256": self.config_sha256}
        )

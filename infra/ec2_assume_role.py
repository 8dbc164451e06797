"""The whole design in one component: each service's bucket and role, and either one shared dev
host that assumes every service role or one hardened instance per service."""

# No `from __future__ import annotations`: the schema analyser reads these annotations live.
from typing import Any

import pulumi

from . import policies
from .context import resolve_context
from .ec2_assume_role_args import (
    Ec2AssumeRoleArgs,
    ServiceEndpoints,
    endpoints_of,
    instance_args,
    schema_name,
    service_args,
    shared_host_args,
    validate_args,
)
from .hardened_instance import HardenedInstance
from .host_role import HostRole, HostRoleArgs
from .placement import resolve_placement
from .service_access import ServiceAccess
from .settings import Topology
from .shared_host import SharedHost

TYPE = "ec2-assume-role:index:Ec2AssumeRole"


class Ec2AssumeRole(pulumi.ComponentResource):
    """Least-privilege S3 access for several services on EC2, by assuming roles.

    Each service gets a private, TLS-only bucket and a role whose only grant is that bucket.
    Shared topology: one dev host whose role may only assume the service roles, with one AWS
    profile per service delivered by SSM. Dedicated: one hardened instance per service. The
    host's resources are named after the component (`<name>-role`, `<name>-instance`), each
    service's after the service.
    """

    topology: pulumi.Output[str]
    """shared or dedicated."""
    region: pulumi.Output[str]
    """The region the stack deploys to."""
    partition: pulumi.Output[str]
    """aws, aws-cn or aws-us-gov."""
    services: pulumi.Output[dict[str, ServiceEndpoints]]
    """Per service: its bucket and its role."""
    host_role_arn: pulumi.Output[str] | None
    """Shared topology: the host role, whose only grant is assuming the service roles."""
    host_instance_id: pulumi.Output[str] | None
    """Shared topology: the dev host's instance id."""
    host_instance_profile: pulumi.Output[str] | None
    """Shared topology: the host's instance profile."""
    host_adopted: pulumi.Output[bool] | None
    """Shared topology: true when the host is an adopted instance."""
    aws_config: pulumi.Output[str] | None
    """Shared topology: the /etc/aws/config installed on the host."""
    aws_config_sha256: pulumi.Output[str] | None
    """Shared topology: that file's SHA-256, which the check compares on the host."""
    profiles_association_id: pulumi.Output[str] | None
    """Shared topology: the SSM association that installs the profiles."""
    instances: pulumi.Output[dict[str, str]] | None
    """Dedicated topology: each service's instance id."""

    def __init__(
        self, name: str, args: Ec2AssumeRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        config = validate_args(name, args)  # raises before anything, this included, exists
        super().__init__(TYPE, name, None, opts)
        context = resolve_context(self)
        # Until 0.1.0 the program registered these children at the stack's root. The alias is
        # each one's old URN, and their own children inherit it: an existing stack's `pulumi
        # up` matches every resource and replaces none (tests/infra/test_component_graph.py).
        child = pulumi.ResourceOptions(
            parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]
        )
        trust: HostRoleArgs = {
            "ec2_principal": context.ec2_principal,
            "trusted_principals": list(config.trusted_principals),
        }
        host_role = HostRole(name, trust, child) if config.topology is Topology.SHARED else None
        access = {
            s.name: ServiceAccess(s.name, service_args(s, config, context, host_role), opts=child)
            for s in config.services
        }
        endpoints = {n: endpoints_of(a) for n, a in access.items()}
        self.topology = pulumi.Output.from_input(config.topology.value)
        self.region, self.partition = context.region, context.partition
        self.services = pulumi.Output.from_input(endpoints)  # type: ignore[arg-type]
        # Exported as maps of Outputs, as the program always did (a preview shows each value).
        self._nested: dict[str, Any] = {
            "services": {n: {schema_name(k): v for k, v in e.items()} for n, e in endpoints.items()}
        }
        self.host_role_arn = self.host_instance_id = self.host_instance_profile = None
        self.host_adopted = self.aws_config = self.aws_config_sha256 = None
        self.profiles_association_id = self.instances = None
        if host_role is not None:
            placement = None if config.host_instance_id else resolve_placement(config, self)
            host_args = shared_host_args(config, context, host_role, access, placement)
            host = SharedHost(name, host_args, child)
            self.host_role_arn = host_role.role_arn
            self.host_instance_id = host.instance_id
            self.host_instance_profile = host.instance_profile_name
            self.host_adopted = pulumi.Output.from_input(config.host_instance_id is not None)
            self.aws_config, self.aws_config_sha256 = host.aws_config, host.profiles_sha256
            self.profiles_association_id = host.profiles_association_id
        else:
            placement = resolve_placement(config, self)
            ssm_core = context.partition.apply(policies.ssm_core_policy_arn)
            # Each role is its own instance's, which adds the last policies and declares them.
            ids = {
                n: HardenedInstance(
                    n, instance_args(a, placement, ssm_core, config), child
                ).instance_id
                for n, a in access.items()
            }
            self._nested["instances"] = ids
            self.instances = pulumi.Output.from_input(ids)  # type: ignore[arg-type]
        self.register_outputs({key: getattr(self, key) for key in OUTPUTS})

    def stack_outputs(self) -> dict[str, Any]:
        """The outputs under the names the check (`ec2-assume-role-check`) reads from a stack.

        They are the schema's names of this component's outputs; export them all (`for key,
        value in c.stack_outputs().items(): pulumi.export(key, value)`) and the check can prove
        the stack. `services` is {name: {bucketName, bucketArn, roleArn, kmsKeyArn (SSE-KMS only)}}.
        """
        present = {schema_name(key): getattr(self, key) for key in OUTPUTS}
        return {key: value for key, value in present.items() if value is not None} | self._nested


OUTPUTS = tuple(Ec2AssumeRole.__annotations__)
"""The component's outputs, as registered: one per typed attribute."""

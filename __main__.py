"""ec2-assume-role: per-service buckets and roles, on a shared dev host or dedicated instances.

This file only reads the config and wires the components together; see infra/.
"""

import pulumi

from infra import policies
from infra.config import Topology, load_config
from infra.context import resolve_context
from infra.hardened_instance import HardenedInstance, HardenedInstanceArgs
from infra.host_role import HostRole, HostRoleArgs
from infra.placement import resolve_placement
from infra.secure_bucket import SecureBucketArgs
from infra.service_access import ServiceAccess, ServiceAccessArgs
from infra.shared_host import SharedHost, SharedHostArgs

config = load_config()  # Raises before any resource is registered if anything is invalid.
context = resolve_context()
shared = config.topology is Topology.SHARED
adopting = shared and config.host_instance_id is not None

host_role = (
    HostRole("dev-host", HostRoleArgs(context.ec2_principal, config.trusted_principals))
    if shared
    else None
)
services = {
    service.name: ServiceAccess(
        service.name,
        ServiceAccessArgs(
            bucket=SecureBucketArgs(
                versioning=service.versioning, force_destroy=config.force_destroy
            ),
            ec2_principal=context.ec2_principal,
            role_path=policies.service_role_path(context.stack),
            assumed_by=host_role.role_arn if host_role else None,
            # Dedicated: the role is also its instance's, whose HardenedInstance declares it.
            declare_policies=shared,
        ),
    )
    for service in config.services
}

pulumi.export("topology", config.topology.value)
pulumi.export("region", context.region)
pulumi.export("partition", context.partition)
pulumi.export(
    "services",
    {
        name: {
            "bucketName": access.bucket_name,
            "bucketArn": access.bucket_arn,
            "roleArn": access.role_arn,
        }
        for name, access in services.items()
    },
)

if host_role:
    host = SharedHost(
        "dev-host",
        SharedHostArgs(
            host_role=host_role,
            service_role_arns={name: access.role_arn for name, access in services.items()},
            context=context,
            placement=None if adopting else resolve_placement(config),
            host_instance_id=config.host_instance_id,
            metadata_hop_limit=config.metadata_hop_limit,
        ),
    )
    pulumi.export("hostRoleArn", host_role.role_arn)
    pulumi.export("hostInstanceId", host.instance_id)
    pulumi.export("hostInstanceProfile", host.instance_profile_name)
    pulumi.export("hostAdopted", adopting)
    pulumi.export("awsConfig", host.aws_config)
    pulumi.export("awsConfigSha256", host.profiles_sha256)
    pulumi.export("profilesAssociationId", host.profiles_association_id)
else:
    placement = resolve_placement(config)
    ssm_core = context.partition.apply(policies.ssm_core_policy_arn)
    instances = {
        name: HardenedInstance(
            name,
            HardenedInstanceArgs(
                role_name=access.role_name,
                placement=placement,
                ssm_core_policy_arn=ssm_core,
                metadata_hop_limit=config.metadata_hop_limit,
                role_policy_names=[access.bucket_policy_name],
            ),
        )
        for name, access in services.items()
    }
    pulumi.export("instances", {name: vm.instance_id for name, vm in instances.items()})

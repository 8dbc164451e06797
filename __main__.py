"""ec2-assume-role: per-service buckets and roles, on a shared dev host or dedicated instances.

This file only reads the config and wires the components together; see infra/.
"""

import pulumi
import pulumi_aws as aws

from infra.config import Topology, load_config
from infra.hardened_instance import HardenedInstance, HardenedInstanceArgs
from infra.host_role import HostRole, HostRoleArgs
from infra.placement import resolve_placement
from infra.secure_bucket import SecureBucketArgs
from infra.service_access import ServiceAccess, ServiceAccessArgs
from infra.shared_host import SharedHost, SharedHostArgs

config = load_config()  # Raises before any resource is registered if anything is invalid.
region = aws.get_region_output().region
placement = resolve_placement(config)
shared = config.topology is Topology.SHARED

host_role = HostRole("dev-host", HostRoleArgs(config.trusted_principals)) if shared else None
services = {
    service.name: ServiceAccess(
        service.name,
        ServiceAccessArgs(
            bucket=SecureBucketArgs(
                versioning=service.versioning, force_destroy=config.force_destroy
            ),
            assumed_by=host_role.role_arn if host_role else None,
        ),
    )
    for service in config.services
}

pulumi.export("topology", config.topology.value)
pulumi.export("region", region)
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
            region=region,
            placement=placement,
        ),
    )
    pulumi.export("hostRoleArn", host_role.role_arn)
    pulumi.export("hostInstanceId", host.instance_id)
    pulumi.export("hostInstanceProfile", host.instance_profile_name)
    pulumi.export("awsConfig", host.aws_config)
else:
    instances = {
        name: HardenedInstance(
            name, HardenedInstanceArgs(role_name=access.role_name, placement=placement)
        )
        for name, access in services.items()
    }
    pulumi.export("instances", {name: vm.instance_id for name, vm in instances.items()})

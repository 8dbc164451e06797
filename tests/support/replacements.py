"""What would make pulumi-aws replace an instance between two evaluations of the program.

Under mocks there is no diff engine; pulumi-aws (v7, bridging terraform-provider-aws v6)
replaces an aws.ec2.Instance when one of its replace-forcing inputs changes, so comparing
exactly those inputs tells. Pulumi also replaces a resource whose logical name changes (a new
URN: the new one is created, the old deleted), which is how the program replaces a host whose
architecture changes (infra/hardened_instance.py).

Where the lists come from: the `aws_instance` schema of terraform-provider-aws
(internal/service/ec2/ec2_instance.go, the aws-sdk-go-v2 version: `ForceNew: true` and its
CustomizeDiff `ForceNewIf`s), checked against the argument classes of the installed
pulumi-aws (`test_every_name_the_model_uses_is_an_input_of_pulumi_aws_v7_instance`). Inputs
that provider version did not have yet are marked "v6" with the reason they force a new one.
Deliberately left out, because the provider changes them in place: instanceType within one
architecture, ipv6AddressCount (no longer ForceNew), secondaryPrivateIps, getPasswordData
(only reads), hostResourceGroupArn, metadata, monitoring, credit, capacity reservation and
maintenance options, iamInstanceProfile, vpcSecurityGroupIds, sourceDestCheck, tags, user
data without userDataReplaceOnChange, and the root volume's size, type, IOPS and throughput.
Not modelled, for want of a source: secondaryNetworkInterfaces and
cpuOptions.nestedVirtualization (v6 additions); the program sets neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conftest import Run

from infra.placement import architecture

INSTANCE = "aws:ec2/instance:Instance"
REPLACE_FORCING = (
    "ami",
    "associatePublicIpAddress",
    "availabilityZone",
    "ebsOptimized",
    "ephemeralBlockDevices",
    "hibernation",
    "hostId",
    "ipv6Addresses",
    "keyName",
    "placementGroup",
    "placementGroupId",  # v6: the id form of placementGroup, which is ForceNew
    "placementPartitionNumber",
    "privateIp",
    "region",  # v6's per-resource region: a resource cannot move to another region
    "securityGroups",
    "subnetId",
    "tenancy",
)
"""Top-level inputs with `ForceNew: true`."""
NESTED_REPLACE_FORCING: Mapping[str, tuple[str, ...]] = {
    "cpuOptions": ("amdSevSnp", "coreCount", "threadsPerCore"),
    "enclaveOptions": ("enabled",),
    "launchTemplate": ("id", "name"),
    # The root volume's size, type, IOPS and throughput are modified in place; its device
    # name is only computed, and it has no snapshot argument.
    "rootBlockDevice": ("encrypted", "kmsKeyId"),
}
"""Blocks that are changed in place except for these `ForceNew` fields."""
WHOLE_BLOCKS = (
    "ebsBlockDevices",  # every field but tags is ForceNew
    "instanceMarketOptions",  # the block and all its fields are ForceNew
    "networkInterfaces",  # every field is ForceNew (deprecated in v6)
    "primaryNetworkInterface",  # v6: eth0 is fixed at launch, EC2 cannot detach it
)
"""Blocks where a change to anything but tags means a new instance."""


def _block(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _without_tags(value: Any) -> Any:
    if isinstance(value, list):
        return [_without_tags(v) for v in value]
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if k not in ("tags", "tagsAll")}
    return value


def instance_replacement_causes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The replace-forcing differences between two aws.ec2.Instance inputs (wire names)."""
    causes = [key for key in REPLACE_FORCING if old.get(key) != new.get(key)]
    for block, fields in NESTED_REPLACE_FORCING.items():
        old_block, new_block = _block(old.get(block)), _block(new.get(block))
        causes += [f"{block}.{f}" for f in fields if old_block.get(f) != new_block.get(f)]
    causes += [b for b in WHOLE_BLOCKS if _without_tags(old.get(b)) != _without_tags(new.get(b))]
    # A ForceNew block whose fields are not: adding or removing it replaces, editing it not.
    if ("privateDnsNameOptions" in old) != ("privateDnsNameOptions" in new):
        causes.append("privateDnsNameOptions")
    # CustomizeDiff: a new type that shares no architecture with the old one replaces.
    old_type, new_type = old.get("instanceType"), new.get("instanceType")
    if isinstance(old_type, str) and isinstance(new_type, str):
        before, after = architecture(old_type), architecture(new_type)
        if before != after:
            causes.append(f"instanceType ({before} → {after})")
    # A primary IPv6 address cannot be taken back: disabling it means a new instance.
    if old.get("enablePrimaryIpv6") is True and new.get("enablePrimaryIpv6") is not True:
        causes.append("enablePrimaryIpv6 (disabled)")
    if old.get("userDataReplaceOnChange") or new.get("userDataReplaceOnChange"):
        causes += [k for k in ("userData", "userDataBase64") if old.get(k) != new.get(k)]
    return causes


def _instance_of(run: Run, host: str) -> Any:
    """The host's instance: `<host>-instance`, or `<host>-instance-<arch>` off x86_64."""
    found = [
        r
        for r in run.of_type(INSTANCE)
        if r.name == f"{host}-instance" or r.name.startswith(f"{host}-instance-")
    ]
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def replacement_causes(before: Run, after: Run, host: str = "dev-host") -> list[str]:
    """What would make Pulumi replace the host's instance between the two evaluations."""
    old, new = _instance_of(before, host), _instance_of(after, host)
    if old.name != new.name:  # a new URN: created anew, the old one deleted
        arch_before = architecture(old.inputs["instanceType"])
        arch_after = architecture(new.inputs["instanceType"])
        return [f"architecture {arch_before} → {arch_after}: new instance {new.name}"]
    return instance_replacement_causes(old.inputs, new.inputs)

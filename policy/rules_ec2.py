"""Instances and their disks: IMDSv2 only, every EBS volume encrypted (guarantee 5, EC2 part).

The rules read every resource that launches instances (an instance, a spot request, a launch
template or configuration) and every standalone volume, since each can carry the same risk.
"""

from __future__ import annotations

from collections.abc import Mapping

try:
    from policy import rules_base as base
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]

INSTANCE = "aws:ec2/instance:Instance"
SPOT_INSTANCE_REQUEST = "aws:ec2/spotInstanceRequest:SpotInstanceRequest"
LAUNCH_CONFIGURATION = "aws:ec2/launchConfiguration:LaunchConfiguration"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
VOLUME = "aws:ebs/volume:Volume"
# Resources shaped like an instance: rootBlockDevice, ebsBlockDevices[], metadataOptions.
INSTANCE_SHAPED = frozenset({INSTANCE, SPOT_INSTANCE_REQUEST, LAUNCH_CONFIGURATION})
IMDSV2_FIX = 'set metadataOptions.httpTokens to "required" (IMDSv2)'


def ec2_require_imdsv2(resource_type: str, props: base.Props) -> list[str]:
    """IMDSv1 hands the role's credentials to any SSRF that can make a GET to 169.254.169.254.

    The hop limit is left alone: 2 lets a container on the host reach IMDSv2, and a token still
    has to be fetched with a PUT, which a plain SSRF cannot send.
    """
    if resource_type not in INSTANCE_SHAPED | {LAUNCH_TEMPLATE}:
        return []
    tokens = base.nested(props, "metadataOptions", "httpTokens")
    if tokens == "required":
        return []
    return [f"metadataOptions.httpTokens is {base.shown(tokens)}: {IMDSV2_FIX}"]


def _is_true(value: object) -> bool:
    """Launch templates take `encrypted` as the string "true"; the others as a boolean."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _unencrypted(where: str, value: object) -> list[str]:
    if _is_true(value):
        return []
    return [f"{where} is {base.shown(value)}: set {where} to true"]


def ebs_encrypted(resource_type: str, props: base.Props) -> list[str]:
    """An unencrypted EBS volume leaks its data through every snapshot and copy of it."""
    if resource_type == VOLUME:
        return _unencrypted("encrypted", props.get("encrypted"))
    found: list[str] = []
    if resource_type in INSTANCE_SHAPED:
        root = base.nested(props, "rootBlockDevice", "encrypted")
        found += _unencrypted("rootBlockDevice.encrypted", root)
        for index, device in enumerate(base.as_list(props.get("ebsBlockDevices"))):
            value = device.get("encrypted") if isinstance(device, Mapping) else None
            found += _unencrypted(f"ebsBlockDevices[{index}].encrypted", value)
    if resource_type == LAUNCH_TEMPLATE:
        for index, mapping in enumerate(base.as_list(props.get("blockDeviceMappings"))):
            ebs = mapping.get("ebs") if isinstance(mapping, Mapping) else None
            if isinstance(ebs, Mapping):  # Instance-store (virtualName) devices are not EBS.
                where = f"blockDeviceMappings[{index}].ebs.encrypted"
                found += _unencrypted(where, ebs.get("encrypted"))
    return found

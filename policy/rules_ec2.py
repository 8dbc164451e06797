"""Instances and their disks: IMDSv2 only, every EBS volume encrypted (guarantee 5, EC2 part).

The rules read every resource that launches instances (an instance, a spot request or fleet, a
launch template or configuration), every standalone volume and every volume attachment, since
each can carry the same risk. A root volume is encrypted only when the resource says so: left
out, it is a copy of the AMI's snapshot, unencrypted unless that snapshot happens to be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

try:
    from policy import rules_base as base
    from policy import rules_stack as stack
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]
    import rules_stack as stack  # type: ignore[import-not-found, no-redef]

INSTANCE = "aws:ec2/instance:Instance"
SPOT_INSTANCE_REQUEST = "aws:ec2/spotInstanceRequest:SpotInstanceRequest"
LAUNCH_CONFIGURATION = "aws:ec2/launchConfiguration:LaunchConfiguration"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
SPOT_FLEET_REQUEST = "aws:ec2/spotFleetRequest:SpotFleetRequest"
VOLUME = "aws:ebs/volume:Volume"
VOLUME_ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment"
# The pack cannot read an AMI, so a launch template must map its root device by one of the
# names AMIs use for it: /dev/xvda (Amazon Linux) or /dev/sda1 (Ubuntu, RHEL, Windows).
ROOT_DEVICES = ("/dev/xvda", "/dev/sda1")
# Resources shaped like an instance: rootBlockDevice, ebsBlockDevices[], metadataOptions.
INSTANCE_SHAPED = frozenset({INSTANCE, SPOT_INSTANCE_REQUEST, LAUNCH_CONFIGURATION})
IMDSV2_FIX = 'set metadataOptions.httpTokens to "required" (IMDSv2)'


def ec2_require_imdsv2(resource_type: str, props: base.Props) -> list[str]:
    """IMDSv1 hands the role's credentials to any SSRF that can make a GET to 169.254.169.254.

    The hop limit is left alone: 2 lets a container on the host reach IMDSv2, and a token still
    has to be fetched with a PUT, which a plain SSRF cannot send.
    """
    if resource_type == SPOT_FLEET_REQUEST:
        return [
            f"launchSpecifications[{i}] cannot require IMDSv2 (a spot fleet launch "
            "specification has no metadata options): launch from a launch template with "
            'metadataOptions.httpTokens "required" (launchTemplateConfigs) instead'
            for i, _ in enumerate(base.as_list(props.get("launchSpecifications")))
        ]
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


def _devices(where: str, devices: object) -> list[str]:
    found: list[str] = []
    for index, device in enumerate(base.as_list(devices)):
        value = device.get("encrypted") if isinstance(device, Mapping) else None
        found += _unencrypted(f"{where}[{index}].encrypted", value)
    return found


def _template(props: base.Props) -> list[str]:
    """Every EBS mapping encrypted, and one of them for the root device."""
    found: list[str] = []
    roots = []
    for index, mapping in enumerate(base.as_list(props.get("blockDeviceMappings"))):
        ebs = mapping.get("ebs") if isinstance(mapping, Mapping) else None
        if isinstance(ebs, Mapping):  # Instance-store (virtualName) devices are not EBS.
            roots += [index] if mapping.get("deviceName") in ROOT_DEVICES else []
            found += _unencrypted(
                f"blockDeviceMappings[{index}].ebs.encrypted", ebs.get("encrypted")
            )
    if not roots:
        found.append(
            f"blockDeviceMappings maps no root device ({' or '.join(ROOT_DEVICES)}), so the root "
            "volume comes unencrypted from the AMI: add a mapping for the AMI's root device "
            'with ebs.encrypted "true"'
        )
    return found


def _fleet(props: base.Props) -> list[str]:
    found: list[str] = []
    for index, spec in enumerate(base.as_list(props.get("launchSpecifications"))):
        spec = spec if isinstance(spec, Mapping) else {}
        where = f"launchSpecifications[{index}]"
        if not base.as_list(spec.get("rootBlockDevices")):
            found.append(f"{where}.rootBlockDevices is not set: add one with encrypted true")
        found += _devices(f"{where}.rootBlockDevices", spec.get("rootBlockDevices"))
        found += _devices(f"{where}.ebsBlockDevices", spec.get("ebsBlockDevices"))
    return found


def ebs_encrypted(resource_type: str, props: base.Props) -> list[str]:
    """An unencrypted EBS volume leaks its data through every snapshot and copy of it."""
    if resource_type == VOLUME:
        return _unencrypted("encrypted", props.get("encrypted"))
    if resource_type == LAUNCH_TEMPLATE:
        return _template(props)
    if resource_type == SPOT_FLEET_REQUEST:
        return _fleet(props)
    if resource_type not in INSTANCE_SHAPED:
        return []
    root = base.nested(props, "rootBlockDevice", "encrypted")
    return _unencrypted("rootBlockDevice.encrypted", root) + _devices(
        "ebsBlockDevices", props.get("ebsBlockDevices")
    )


def attached_volumes_encrypted(resources: Sequence[stack.StackResource]) -> stack.Findings:
    """A volume attachment may attach only an encrypted aws.ebs.Volume of this stack: any other
    volume's encryption cannot be verified."""
    findings = stack.Findings()
    volumes = stack.of_type(resources, VOLUME)
    for attachment in stack.of_type(resources, VOLUME_ATTACHMENT):
        with findings.deciding(attachment.name):
            value, why = stack.peek(attachment.props, "volumeId")
            targets = stack.linked(attachment, "volumeId", volumes, ("id",), element=(value, why))
            if not targets:
                findings.add(
                    attachment,
                    f"volume attachment {attachment.name} attaches {base.shown(value)}, which is "
                    "not an aws.ebs.Volume of this stack, so its encryption cannot be verified: "
                    "create the volume in this stack with encrypted set to true",
                )
            for volume in targets:
                if not _is_true(volume.props.get("encrypted")):
                    findings.add(
                        attachment,
                        f"volume attachment {attachment.name} attaches volume {volume.name}, "
                        f"which is not encrypted: set encrypted to true on {volume.name}",
                    )
    return findings

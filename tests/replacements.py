"""What would make pulumi-aws replace an instance between two evaluations of the program.

Under mocks there is no diff engine; pulumi-aws replaces an aws.ec2.Instance when one of its
replace-forcing (ForceNew) inputs changes, so comparing exactly those inputs tells.
"""

from __future__ import annotations

from conftest import Run

INSTANCE = "aws:ec2/instance:Instance"
# aws_instance arguments that force a new instance (terraform-provider-aws, ForceNew), in the
# provider's wire names; rootBlockDevice and ebsBlockDevices force it through their
# encryption, KMS key, snapshot and device name.
REPLACE_FORCING = (
    "ami",
    "availabilityZone",
    "subnetId",
    "keyName",
    "privateIp",
    "placementGroup",
    "tenancy",
    "hostId",
    "cpuOptions",
    "launchTemplate",
    "networkInterfaces",
    "ipv6Addresses",
    "associatePublicIpAddress",
    "ebsBlockDevices",
    "ephemeralBlockDevices",
    "hibernation",
    "securityGroups",
)
ROOT_REPLACE_FORCING = ("encrypted", "kmsKeyId", "deviceName", "snapshotId")


def replacement_causes(before: Run, after: Run, name: str = "dev-host-instance") -> list[str]:
    """What would make pulumi-aws replace the dev host between the two evaluations."""
    (old,) = [r.inputs for r in before.of_type(INSTANCE) if r.name == name]
    (new,) = [r.inputs for r in after.of_type(INSTANCE) if r.name == name]
    causes = [key for key in REPLACE_FORCING if old.get(key) != new.get(key)]
    old_root, new_root = old.get("rootBlockDevice", {}), new.get("rootBlockDevice", {})
    causes += [
        f"rootBlockDevice.{k}" for k in ROOT_REPLACE_FORCING if old_root.get(k) != new_root.get(k)
    ]
    if old.get("userDataReplaceOnChange") or new.get("userDataReplaceOnChange"):
        causes += [k for k in ("userData", "userDataBase64") if old.get(k) != new.get(k)]
    return causes

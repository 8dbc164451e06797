"""The dev host lives on: a change of services updates it in place, never replaces it.

pulumi-aws replaces an instance when one of its replace-forcing inputs changes (the provider
schema's ForceNew: the AMI, the subnet, user data with replace-on-change, ...). Under mocks
there is no diff engine, so these tests compare exactly those inputs between two evaluations.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest
from conftest import RecordingMocks, Run, evaluated, stack_config
from support.replacements import (
    NESTED_REPLACE_FORCING,
    REPLACE_FORCING,
    WHOLE_BLOCKS,
    instance_replacement_causes,
    replacement_causes,
)

from infra.mock_program import evaluate

INSTANCE = "aws:ec2/instance:Instance"
ASSOCIATION = "aws:ssm/association:Association"


def _run(services: list[str], **keys: Any) -> Run:
    return evaluated(stack_config(services, **keys))


THREE = ["service-a", "service-b", "service-c"]


def test_adding_a_service_replaces_nothing_and_updates_the_association() -> None:
    """3 services, then 4: no replace-forcing input of the instance differs; the association
    that installs the profiles carries the new file."""
    before, after = _run(THREE), _run([*THREE, "service-d"])
    assert replacement_causes(before, after) == []
    (old,) = before.of_type(ASSOCIATION)
    (new,) = after.of_type(ASSOCIATION)
    assert old.inputs["parameters"]["commands"] != new.inputs["parameters"]["commands"]
    assert after.outputs["awsConfigSha256"] in new.inputs["parameters"]["commands"]
    assert "[profile service-d]" in after.outputs["awsConfig"]
    assert old.name == new.name, "the same association is updated in place"


def test_removing_or_renaming_a_service_replaces_nothing() -> None:
    base = _run(THREE)
    for changed in (["service-a", "service-b"], ["service-a", "service-b", "service-z"]):
        assert replacement_causes(base, _run(changed)) == [], changed


def test_a_pinned_ami_that_changes_does_replace_the_host() -> None:
    """The comparison is not blind: what truly needs a new instance is still seen."""
    one = _run(THREE, amiId="ami-0123456789abcdef0")
    two = _run(THREE, amiId="ami-0fedcba9876543210")
    assert replacement_causes(one, two) == ["ami"]


def _ignored_changes(**keys: Any) -> list[str]:
    """The instance's ignore_changes option, as the program registers it."""
    import pulumi

    seen: list[str] = []

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        if args.type_ == INSTANCE:
            seen.extend(args.opts.ignore_changes or [])

    def before() -> None:
        pulumi.runtime.register_stack_transformation(record)  # type: ignore[arg-type]

    evaluate(RecordingMocks(), stack_config(THREE, **keys), before=before)
    return seen


def test_an_unpinned_ami_is_not_followed_but_a_pinned_one_is() -> None:
    """AWS publishes a new AL2023 every few weeks; following it would replace the dev host
    each time. Only a pinned amiId moves the host to a new image."""
    assert _ignored_changes() == ["ami"]
    assert _ignored_changes(amiId="ami-0123456789abcdef0") == []


# What pulumi-aws v7 replaces an instance for, seen on one input at a time.
REPLACES = [
    ("ami", "ami-0123456789abcdef0", "ami-0fedcba9876543210", "ami"),
    ("availabilityZone", "eu-west-1a", "eu-west-1b", "availabilityZone"),
    ("subnetId", "subnet-0a", "subnet-0b", "subnetId"),
    ("region", "eu-west-1", "eu-central-1", "region"),
    ("keyName", None, "ops", "keyName"),
    ("privateIp", None, "10.0.0.10", "privateIp"),
    ("ipv6Addresses", None, ["2001:db8::10"], "ipv6Addresses"),
    ("associatePublicIpAddress", None, True, "associatePublicIpAddress"),
    ("placementGroup", None, "cluster-1", "placementGroup"),
    ("placementGroupId", None, "pg-0123", "placementGroupId"),
    ("placementPartitionNumber", None, 2, "placementPartitionNumber"),
    ("tenancy", None, "dedicated", "tenancy"),
    ("hostId", None, "h-0123", "hostId"),
    ("ebsOptimized", None, True, "ebsOptimized"),
    ("hibernation", None, True, "hibernation"),
    ("securityGroups", None, ["legacy"], "securityGroups"),
    ("enclaveOptions", None, {"enabled": True}, "enclaveOptions.enabled"),
    ("cpuOptions", None, {"coreCount": 1}, "cpuOptions.coreCount"),
    ("cpuOptions", {"threadsPerCore": 2}, {"threadsPerCore": 1}, "cpuOptions.threadsPerCore"),
    ("cpuOptions", None, {"amdSevSnp": "enabled"}, "cpuOptions.amdSevSnp"),
    ("launchTemplate", None, {"id": "lt-0123"}, "launchTemplate.id"),
    ("instanceMarketOptions", None, {"marketType": "spot"}, "instanceMarketOptions"),
    ("primaryNetworkInterface", None, {"networkInterfaceId": "eni-1"}, "primaryNetworkInterface"),
    (
        "networkInterfaces",
        None,
        [{"deviceIndex": 0, "networkInterfaceId": "eni-1"}],
        "networkInterfaces",
    ),
    (
        "ebsBlockDevices",
        [{"deviceName": "/dev/sdf", "volumeSize": 10}],
        [{"deviceName": "/dev/sdf", "volumeSize": 20}],
        "ebsBlockDevices",
    ),
    (
        "ephemeralBlockDevices",
        None,
        [{"deviceName": "/dev/sdb", "virtualName": "ephemeral0"}],
        "ephemeralBlockDevices",
    ),
    ("rootBlockDevice", {"encrypted": True}, {"encrypted": False}, "rootBlockDevice.encrypted"),
    ("rootBlockDevice", {}, {"kmsKeyId": "arn:aws:kms:k"}, "rootBlockDevice.kmsKeyId"),
    ("privateDnsNameOptions", None, {"hostnameType": "ip-name"}, "privateDnsNameOptions"),
    ("instanceType", "t3.micro", "t4g.small", "instanceType (x86_64 → arm64)"),
    ("enablePrimaryIpv6", True, False, "enablePrimaryIpv6 (disabled)"),
]
# ... and what it changes in place (or only reads): none of these may count.
IN_PLACE = [
    ("instanceType", "t3.micro", "t3.small"),
    ("instanceType", "t4g.small", "m7g.medium"),
    ("ipv6AddressCount", 0, 1),
    ("secondaryPrivateIps", None, ["10.0.0.11"]),
    ("getPasswordData", None, True),
    ("iamInstanceProfile", "a", "b"),
    ("vpcSecurityGroupIds", ["sg-1"], ["sg-2"]),
    ("metadataOptions", {"httpPutResponseHopLimit": 2}, {"httpPutResponseHopLimit": 1}),
    ("rootBlockDevice", {"volumeSize": 8}, {"volumeSize": 20}),
    ("rootBlockDevice", {"volumeType": "gp2"}, {"volumeType": "gp3"}),
    ("ebsBlockDevices", [{"deviceName": "/dev/sdf"}], [{"deviceName": "/dev/sdf", "tags": {}}]),
    ("privateDnsNameOptions", {"hostnameType": "ip-name"}, {"hostnameType": "resource-name"}),
    ("enablePrimaryIpv6", False, True),
    ("userData", "a", "b"),
    ("tags", {"Name": "a"}, {"Name": "b"}),
    ("hostResourceGroupArn", None, "arn:aws:resource-groups:r"),
]


def _with(key: str, value: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"ami": "ami-0abc", "instanceType": "t3.micro"}
    if value is None:
        base.pop(key, None)
    else:
        base[key] = value
    return base


@pytest.mark.parametrize(("key", "old", "new", "cause"), REPLACES)
def test_each_replace_forcing_input_is_seen(key: str, old: Any, new: Any, cause: str) -> None:
    assert instance_replacement_causes(_with(key, old), _with(key, new)) == [cause]


@pytest.mark.parametrize(("key", "old", "new"), IN_PLACE)
def test_what_pulumi_aws_changes_in_place_is_not_counted(key: str, old: Any, new: Any) -> None:
    assert instance_replacement_causes(_with(key, old), _with(key, new)) == []


def test_user_data_replaces_only_when_asked_to() -> None:
    old = {"userData": "a", "userDataReplaceOnChange": True}
    assert instance_replacement_causes(old, {**old, "userData": "b"}) == ["userData"]


def test_every_name_the_model_uses_is_an_input_of_pulumi_aws_v7_instance() -> None:
    """A misspelt wire name would silently never differ: check them against the installed
    SDK's argument classes (snake_case there, camelCase on the wire)."""
    import pulumi_aws as aws

    def wire(cls: type) -> set[str]:
        names = list(inspect.signature(cls.__init__).parameters)[1:]
        return {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), n) for n in names}

    top = wire(aws.ec2.InstanceArgs)
    used = set(REPLACE_FORCING) | set(NESTED_REPLACE_FORCING) | set(WHOLE_BLOCKS)
    used |= {"instanceType", "enablePrimaryIpv6", "privateDnsNameOptions", "userData"}
    assert used <= top, used - top
    nested = {
        "cpuOptions": aws.ec2.InstanceCpuOptionsArgs,
        "enclaveOptions": aws.ec2.InstanceEnclaveOptionsArgs,
        "launchTemplate": aws.ec2.InstanceLaunchTemplateArgs,
        "rootBlockDevice": aws.ec2.InstanceRootBlockDeviceArgs,
    }
    for block, fields in NESTED_REPLACE_FORCING.items():
        assert set(fields) <= wire(nested[block]), block


def test_the_instance_type_within_an_architecture_replaces_nothing() -> None:
    assert replacement_causes(_run(THREE), _run(THREE, instanceType="t3.small")) == []
    arm, bigger_arm = _run(THREE, instanceType="t4g.small"), _run(THREE, instanceType="m7g.large")
    assert replacement_causes(arm, bigger_arm) == []


def test_a_change_of_architecture_replaces_the_host_with_an_image_for_it() -> None:
    """t3.micro to t4g.small with an unpinned AMI: `ignore_changes=["ami"]` would keep the
    x86_64 image in place (AWS refuses an arm64 type on it), so the architecture is part of
    the instance's name: the arm64 host is a new resource, with nothing to ignore changes
    against, launched from the arm64 image; the x86_64 one is deleted after it."""
    x86, arm = _run(THREE), _run(THREE, instanceType="t4g.small")
    assert replacement_causes(x86, arm) == [
        "architecture x86_64 → arm64: new instance dev-host-instance-arm64"
    ]
    assert replacement_causes(arm, x86) == [
        "architecture arm64 → x86_64: new instance dev-host-instance"
    ]
    (new,) = arm.of_type(INSTANCE)
    assert new.name == "dev-host-instance-arm64"
    lookups = [c.args["name"] for c in arm.mocks.calls if c.token.endswith("getParameter")]
    assert lookups == ["/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"]
    (association,) = arm.of_type(ASSOCIATION)
    assert association.inputs["targets"][0]["values"] == [arm.outputs["hostInstanceId"]]
    assert _ignored_changes(instanceType="t4g.small") == ["ami"], (
        "the new host does not follow later images either"
    )


def test_dedicated_instances_carry_their_architecture_too() -> None:
    run = _run(["service-a"], topology="dedicated", instanceType="c7g.large")
    assert [r.name for r in run.of_type(INSTANCE)] == ["service-a-instance-arm64"]


def test_the_benchmark_expects_one_replacement_across_architectures_and_none_within() -> None:
    """bench/bench_replacements.py's two instance-type rows, with their expected counts."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "bench_replacements.py"
    spec = importlib.util.spec_from_file_location("bench_replacements", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = {label: row for label, *row in bench.CHANGES}
    within = rows["change the instance type"]
    across = rows["change the instance type across architectures"]
    assert (within[3], across[3]) == (0, 1)
    for services, before, after, expected in (within, across):
        causes = replacement_causes(_run(THREE, **before), _run(services, **after))
        assert len(causes) == expected, causes

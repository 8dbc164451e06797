"""The pack's EC2 rules: IMDSv2, encrypted EBS, and no ingress from the internet.

Each breakage is a real program (policy_programs) judged under the mocks (policy_harness).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pulumi_aws as aws
import pytest
from conftest import ACCOUNT
from support.policy_harness import judge, run
from support.policy_programs import (
    AMI,
    Breakage,
    assert_caught,
    assert_not_passed_in_preview,
    closed_group,
    instance,
)

from policy import rules_addresses

IMDS = "ec2-require-imdsv2"
EBS = "ec2-encrypted-ebs"
INGRESS = "ec2-no-internet-ingress"
COMBINED = "ec2-no-internet-ingress-combined"
ATTACHED = "ec2-attached-volumes-encrypted"
REQUIRED = aws.ec2.LaunchTemplateMetadataOptionsArgs(http_tokens="required")
ENCRYPTED_ROOT = aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
    device_name="/dev/xvda", ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(encrypted="true")
)
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8")


def _without(cidr: str, *holes: str) -> list[str]:
    """The CIDR blocks of `cidr` minus the holes: how an adversary spells "all but these"."""
    blocks = [ipaddress.ip_network(cidr)]
    for hole in map(ipaddress.ip_network, holes):
        blocks = [
            piece
            for block in blocks
            for piece in (block.address_exclude(hole) if hole.subnet_of(block) else [block])  # type: ignore[arg-type]
        ]
    return [str(b) for b in blocks]


def _template(**changes: Any) -> None:
    settings = {
        "image_id": AMI,
        "metadata_options": REQUIRED,
        "block_device_mappings": [ENCRYPTED_ROOT],
    }
    aws.ec2.LaunchTemplate("template", **{**settings, **changes})


def _ingress(*rules: tuple[str, int, int, list[str]], group: str = "open") -> None:
    """A group whose inline ingress is (protocol, from, to, CIDRs) for each rule."""
    ingress = [
        aws.ec2.SecurityGroupIngressArgs(
            protocol=p,
            from_port=low,
            to_port=high,
            cidr_blocks=[c for c in cidrs if ":" not in c],
            ipv6_cidr_blocks=[c for c in cidrs if ":" in c],
        )
        for p, low, high, cidrs in rules
    ]
    closed_group(group, ingress=ingress)


def _rule(name: str, group: Any, cidrs: list[str], port: int = 22, protocol: str = "tcp") -> None:
    aws.ec2.SecurityGroupRule(
        name,
        type="ingress",
        security_group_id=group,
        protocol=protocol,
        from_port=port,
        to_port=port,
        cidr_blocks=cidrs,
    )


def _vpc_rule(name: str, group: Any, cidr: str, port: int = 22, protocol: str = "tcp") -> None:
    family = {"cidr_ipv6": cidr} if ":" in cidr else {"cidr_ipv4": cidr}
    ports = {} if protocol == "-1" else {"from_port": port, "to_port": port}
    aws.vpc.SecurityGroupIngressRule(
        name, security_group_id=group, ip_protocol=protocol, **family, **ports
    )


def _parts_of_ipv6_on_https() -> None:
    group = closed_group("web")
    # Each no more than a /32, together 2^97 public addresses: more than a /32.
    _vpc_rule("low-half", group.id, "2a00::/32", 443)
    _vpc_rule("third-quarter", group.id, "2a01::/33", 443)
    _vpc_rule("fourth-quarter", group.id, "2a01:0:8000::/33", 443)


def _ninths_across_three_resources() -> None:
    group = closed_group("web")
    _rule("first", group.id, ["8.0.0.0/9", "9.0.0.0/10"], 22)  # 1.5 times a /9
    _vpc_rule("second", group.id, "8.128.0.0/9", 22)
    _vpc_rule("third", group.id, "9.64.0.0/10", 22)


def _inline_plus_rule_plus_all_traffic() -> None:
    group = closed_group(
        "web",
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=22, to_port=22, cidr_blocks=["8.0.0.0/9"]
            )
        ],
    )
    _rule("second", group.id, ["8.128.0.0/9"], 22)
    _vpc_rule("third", group.id, "9.0.0.0/9", protocol="-1")


def _an_existing_group_by_id() -> None:
    existing = "sg-0123456789abcdef0"
    _rule("first", existing, ["8.0.0.0/9"], 3389)
    _vpc_rule("second", existing, "8.128.0.0/9", 3389)
    _vpc_rule("third", existing, "9.0.0.0/9", 3389)


def _prefix_list(name: str, *cidrs: str) -> aws.ec2.ManagedPrefixList:
    entries = [aws.ec2.ManagedPrefixListEntryArgs(cidr=c) for c in cidrs]
    return aws.ec2.ManagedPrefixList(name, address_family="IPv4", max_entries=8, entries=entries)


def _wide_prefix_list_inline() -> None:
    """A prefix list of the stack holding 128.0.0.0/1, named by a group's inline rule."""
    wide = _prefix_list("wide", "128.0.0.0/1")
    ingress = aws.ec2.SecurityGroupIngressArgs(
        protocol="tcp", from_port=22, to_port=22, prefix_list_ids=[wide.id]
    )
    closed_group("web", ingress=[ingress])


def _entries_added_to_a_prefix_list() -> None:
    """An office /24 in the list itself, and two /9s added by ManagedPrefixListEntry resources."""
    office = _prefix_list("office", "203.0.113.0/24")
    for index, cidr in enumerate(("8.0.0.0/9", "8.128.0.0/9", "9.0.0.0/9")):
        aws.ec2.ManagedPrefixListEntry(f"entry-{index}", prefix_list_id=office.id, cidr=cidr)
    group = closed_group("web")
    aws.vpc.SecurityGroupIngressRule(
        "ssh",
        security_group_id=group.id,
        ip_protocol="tcp",
        from_port=22,
        to_port=22,
        prefix_list_id=office.id,
    )


def _foreign_prefix_list(kind: str) -> None:
    """A prefix list the stack does not define (here AWS's own S3 list), next to one it does."""
    _prefix_list("office", "203.0.113.0/24")
    group = closed_group("web")
    if kind == "rule":
        aws.ec2.SecurityGroupRule(
            "ssh",
            type="ingress",
            security_group_id=group.id,
            protocol="tcp",
            from_port=22,
            to_port=22,
            prefix_list_ids=["pl-6ea54007"],
        )
    else:
        aws.vpc.SecurityGroupIngressRule(
            "ssh",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=22,
            to_port=22,
            prefix_list_id="pl-6ea54007",
        )


def _fleet(**changes: Any) -> None:
    spec: dict[str, Any] = {
        "ami": AMI,
        "instance_type": "t3.micro",
        "root_block_devices": [
            aws.ec2.SpotFleetRequestLaunchSpecificationRootBlockDeviceArgs(encrypted=True)
        ],
    }
    aws.ec2.SpotFleetRequest(
        "fleet",
        iam_fleet_role=f"arn:aws:iam::{ACCOUNT}:role/fleet",
        target_capacity=1,
        launch_specifications=[
            aws.ec2.SpotFleetRequestLaunchSpecificationArgs(**{**spec, **changes})
        ],
    )


def _attach(volume_id: Any) -> None:
    vm = instance("vm")
    aws.ec2.VolumeAttachment(
        "attach", device_name="/dev/sdf", instance_id=vm.id, volume_id=volume_id
    )


BREAKAGES = [
    Breakage(
        "imds-optional",
        IMDS,
        "vm",
        'httpTokens is "optional"',
        lambda: instance(
            "vm",
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_tokens="optional", http_put_response_hop_limit=2
            ),
        ),
        in_preview=True,
    ),
    Breakage(
        "template-without-metadata-options",
        IMDS,
        "template",
        "httpTokens is not set",
        lambda: _template(metadata_options=None),
        in_preview=True,
    ),
    Breakage(
        "launch-configuration-optional",
        IMDS,
        "config",
        'set metadataOptions.httpTokens to "required"',
        lambda: aws.ec2.LaunchConfiguration(
            "config",
            image_id=AMI,
            instance_type="t3.micro",
            metadata_options=aws.ec2.LaunchConfigurationMetadataOptionsArgs(http_tokens="optional"),
            root_block_device=aws.ec2.LaunchConfigurationRootBlockDeviceArgs(encrypted=True),
        ),
        in_preview=True,
    ),
    Breakage(
        "extra-device-unencrypted",
        EBS,
        "vm",
        "ebsBlockDevices[0].encrypted is not set: set ebsBlockDevices[0].encrypted to true",
        lambda: instance(
            "vm",
            ebs_block_devices=[
                aws.ec2.InstanceEbsBlockDeviceArgs(device_name="/dev/sdf", volume_size=100)
            ],
        ),
        in_preview=True,
    ),
    Breakage(
        "root-unset",
        EBS,
        "vm",
        "rootBlockDevice.encrypted is not set",
        lambda: instance("vm", root_block_device=None),
        in_preview=True,
    ),
    Breakage(
        "volume-unencrypted",
        EBS,
        "data",
        "encrypted is false: set encrypted to true",
        lambda: aws.ebs.Volume("data", availability_zone="eu-west-1a", size=10, encrypted=False),
        in_preview=True,
    ),
    Breakage(
        "template-device-unencrypted",
        EBS,
        "template",
        'blockDeviceMappings[1].ebs.encrypted is "false"',
        lambda: _template(
            block_device_mappings=[
                ENCRYPTED_ROOT,
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/sdf",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(encrypted="false"),
                ),
            ]
        ),
        in_preview=True,
    ),
    Breakage(
        "two-halves-of-ipv4",
        INGRESS,
        "open",
        "ingress[0], ingress[1] admit tcp port 22 from 0.0.0.0/1, 128.0.0.0/1, together "
        "3,702,258,688 public IPv4 addresses (100% of the public IPv4 internet), more than a /8",
        lambda: _ingress(("tcp", 22, 22, ["0.0.0.0/1"]), ("tcp", 22, 22, ["128.0.0.0/1"])),
        in_preview=True,
    ),
    Breakage(
        "overlapping-port-ranges",
        INGRESS,
        "open",
        "admit tcp ports 20-30 from",
        lambda: _ingress(("tcp", 0, 65535, ["8.0.0.0/8"]), ("tcp", 20, 30, ["9.0.0.0/9"])),
        in_preview=True,
    ),
    Breakage(
        "ipv6-halves-all-traffic",
        INGRESS,
        "open",
        "admit all traffic from 8000::/1, ::/1, together about 2^125 public IPv6 addresses "
        "(100% of the public IPv6 internet)",
        lambda: _ingress(("-1", 0, 0, ["::/1", "8000::/1"])),
        in_preview=True,
    ),
    Breakage(
        "four-quarters-in-one-rule",
        INGRESS,
        "quarters",
        "this rule admit tcp port 443",
        lambda: _rule(
            "quarters",
            "sg-0123456789abcdef0",
            ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"],
            443,
        ),
        in_preview=True,
    ),
    Breakage(
        "everything-but-private-space",
        INGRESS,
        "public",
        "100% of the public IPv4 internet",
        lambda: _rule("public", "sg-0123456789abcdef0", _without("0.0.0.0/0", *PRIVATE)),
        in_preview=True,
    ),
    Breakage(
        "everything-but-one-address",
        INGRESS,
        "nearly",
        "99% of the public IPv4 internet",
        lambda: _rule("nearly", "sg-0123456789abcdef0", _without("0.0.0.0/0", "1.1.1.1/32")),
        in_preview=True,
    ),
    Breakage(
        "the-upper-half-of-ipv4",
        INGRESS,
        "open",
        "from 128.0.0.0/1, together 1,609,300,992 public IPv4 addresses (43% of the public IPv4 "
        "internet), more than a /8",
        lambda: _ingress(("tcp", 22, 22, ["128.0.0.0/1"])),
        in_preview=True,
    ),
    Breakage(
        "a-quarter-of-ipv4",
        INGRESS,
        "open",
        "ingress[0] admit tcp port 22 from 0.0.0.0/2, together 1,040,187,392 public IPv4",
        lambda: _ingress(("tcp", 22, 22, ["0.0.0.0/2"])),
        in_preview=True,
    ),
    Breakage(
        "a-slash-7",
        INGRESS,
        "world",
        "this rule admit tcp port 22 from 8.0.0.0/7, together 33,554,432 public IPv4 addresses "
        "(under 1% of the public IPv4 internet), more than a /8",
        lambda: _vpc_rule("world", "sg-0123456789abcdef0", "8.0.0.0/7"),
        in_preview=True,
    ),
    Breakage(
        "allocated-ipv6-unicast",
        INGRESS,
        "world",
        "this rule admit tcp port 22 from 2000::/4, together about 2^124 public IPv6 addresses",
        lambda: _vpc_rule("world", "sg-0123456789abcdef0", "2000::/4"),
        in_preview=True,
    ),
    Breakage(
        "vpc-rule-literal-world",
        INGRESS,
        "world",
        "this rule admit all traffic from 0.0.0.0/0",
        lambda: _vpc_rule("world", "sg-0123456789abcdef0", "0.0.0.0/0", protocol="-1"),
        in_preview=True,
    ),
    Breakage(
        "default-group",
        INGRESS,
        "default",
        "ingress[0] admit tcp port 22 from 0.0.0.0/0",
        lambda: aws.ec2.DefaultSecurityGroup(
            "default",
            vpc_id="vpc-0default",
            ingress=[
                aws.ec2.DefaultSecurityGroupIngressArgs(
                    protocol="tcp", from_port=22, to_port=22, cidr_blocks=["0.0.0.0/0"]
                )
            ],
        ),
        in_preview=True,
    ),
    Breakage(
        "ipv6-parts-across-rules",
        COMBINED,
        "web",
        "admits tcp port 443 from 2a00::/32, 2a01:0:8000::/33, 2a01::/33 through fourth-quarter, "
        "low-half, third-quarter, together 2^97 public IPv6 addresses",
        _parts_of_ipv6_on_https,
        in_preview=True,
    ),
    Breakage(
        "ninths-across-three-resources",
        COMBINED,
        "web",
        "through first, second, third, together 25,165,824 public IPv4 addresses",
        _ninths_across_three_resources,
        in_preview=True,
    ),
    Breakage(
        "inline-plus-rule-plus-all-traffic",
        COMBINED,
        "web",
        "admits tcp port 22 from 8.0.0.0/9, 8.128.0.0/9, 9.0.0.0/9 through second, third, web",
        _inline_plus_rule_plus_all_traffic,
        in_preview=True,
    ),
    Breakage(
        "an-existing-group-by-id",
        COMBINED,
        "first",
        "security group sg-0123456789abcdef0 admits tcp port 3389",
        _an_existing_group_by_id,
        in_preview=True,
    ),
]


BREAKAGES += [
    Breakage(
        "a-wide-prefix-list-of-the-stack",
        COMBINED,
        "web",
        "security group web admits tcp port 22 from 128.0.0.0/1 through web, prefix list wide, "
        "together 1,609,300,992 public IPv4 addresses",
        _wide_prefix_list_inline,
    ),
    Breakage(
        "prefix-list-entries-add-up",
        COMBINED,
        "web",
        "admits tcp port 22 from 203.0.113.0/24, 8.0.0.0/9, 8.128.0.0/9, 9.0.0.0/9 through "
        "ssh, prefix list office",
        _entries_added_to_a_prefix_list,
    ),
    Breakage(
        "a-prefix-list-outside-the-stack-vpc-rule",
        COMBINED,
        "ssh",
        'ssh admits traffic from prefix list "pl-6ea54007", which is not defined in this stack: '
        "its CIDRs cannot be verified",
        lambda: _foreign_prefix_list("vpc"),
    ),
    Breakage(
        "a-prefix-list-outside-the-stack-group-rule",
        COMBINED,
        "ssh",
        'prefix list "pl-6ea54007", which is not defined in this stack',
        lambda: _foreign_prefix_list("rule"),
    ),
    Breakage(
        "a-prefix-list-outside-a-stack-without-any",
        COMBINED,
        "web",
        'web ingress[0] admits traffic from prefix list "pl-0123456789abcdef0", which is not',
        lambda: closed_group(
            "web",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=22,
                    to_port=22,
                    prefix_list_ids=["pl-0123456789abcdef0"],
                )
            ],
        ),
        in_preview=True,
    ),
    Breakage(
        "template-without-block-device-mappings",
        EBS,
        "template",
        "blockDeviceMappings maps no root device (/dev/xvda or /dev/sda1), so the root volume "
        "comes unencrypted from the AMI",
        lambda: _template(block_device_mappings=None),
        in_preview=True,
    ),
    Breakage(
        "template-with-a-data-device-only",
        EBS,
        "template",
        "blockDeviceMappings maps no root device",
        lambda: _template(
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/sdf",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(encrypted="true"),
                )
            ]
        ),
        in_preview=True,
    ),
    Breakage(
        "fleet-root-unencrypted",
        EBS,
        "fleet",
        "launchSpecifications[0].rootBlockDevices[0].encrypted is false",
        lambda: _fleet(
            root_block_devices=[
                aws.ec2.SpotFleetRequestLaunchSpecificationRootBlockDeviceArgs(encrypted=False)
            ]
        ),
        also=frozenset({IMDS}),
        in_preview=True,
    ),
    Breakage(
        "fleet-without-root-device",
        EBS,
        "fleet",
        "launchSpecifications[0].rootBlockDevices is not set",
        lambda: _fleet(root_block_devices=None),
        also=frozenset({IMDS}),
        in_preview=True,
    ),
    Breakage(
        "fleet-extra-device-unencrypted",
        EBS,
        "fleet",
        "launchSpecifications[0].ebsBlockDevices[0].encrypted is not set",
        lambda: _fleet(
            ebs_block_devices=[
                aws.ec2.SpotFleetRequestLaunchSpecificationEbsBlockDeviceArgs(
                    device_name="/dev/sdf"
                )
            ]
        ),
        also=frozenset({IMDS}),
        in_preview=True,
    ),
    Breakage(
        "fleet-launch-specification-without-imdsv2",
        IMDS,
        "fleet",
        "launchSpecifications[0] cannot require IMDSv2",
        _fleet,
        in_preview=True,
    ),
    Breakage(
        "spot-instance-root-unset",
        EBS,
        "spot",
        "rootBlockDevice.encrypted is not set",
        lambda: aws.ec2.SpotInstanceRequest(
            "spot",
            ami=AMI,
            instance_type="t3.micro",
            metadata_options=aws.ec2.SpotInstanceRequestMetadataOptionsArgs(http_tokens="required"),
        ),
        in_preview=True,
    ),
    Breakage(
        "attach-a-volume-outside-the-stack",
        ATTACHED,
        "attach",
        'attaches "vol-049df61146c4d7901", which is not an aws.ebs.Volume of this stack',
        lambda: _attach("vol-049df61146c4d7901"),
        in_preview=True,
    ),
    Breakage(
        "attach-an-unencrypted-volume",
        ATTACHED,
        "attach",
        "attaches volume data, which is not encrypted: set encrypted to true on data",
        lambda: _attach(
            aws.ebs.Volume("data", availability_zone="eu-west-1a", size=10, encrypted=False).id
        ),
        also=frozenset({EBS}),
        in_preview=True,
    ),
]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.id)
def test_a_weakening_is_caught(breakage: Breakage) -> None:
    assert_caught(breakage)


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.id)
def test_a_weakening_never_passes_a_preview(breakage: Breakage) -> None:
    assert_not_passed_in_preview(breakage)


def _acceptable() -> None:
    """The stack's own shapes, and ingress that is not from the internet."""
    group = closed_group("host-sg")
    vm = instance("vm", vpc_security_group_ids=[group.id])
    _template(
        block_device_mappings=[
            ENCRYPTED_ROOT,
            aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/sdb", virtual_name="ephemeral0"
            ),
        ],
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_tokens="required", http_put_response_hop_limit=2
        ),
    )
    aws.ebs.Volume("data", availability_zone="eu-west-1a", size=10, encrypted=True)
    web = closed_group(
        "web",
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp",
                from_port=22,
                to_port=22,
                cidr_blocks=[*PRIVATE, "203.0.113.0/24"],
                ipv6_cidr_blocks=["2001:db8::/32", "fd00::/8"],
            )
        ],
    )
    # A /16 and an office /24; exactly a /8 of public space, on one port across two resources;
    # a /8 each on different ports; private space in any amount: no port is open.
    _rule("ssh", web.id, ["8.0.0.0/9", "198.51.100.0/24", "10.0.0.0/8", "172.16.0.0/12"], 22)
    _vpc_rule("ssh-other-half", web.id, "8.128.0.0/9", 22)
    _vpc_rule("https", web.id, "9.0.0.0/8", 443)
    _vpc_rule("dns", web.id, "11.0.0.0/8", 53, protocol="udp")
    _vpc_rule("office", web.id, "192.0.2.0/24", 3389)
    _vpc_rule("campus", web.id, "130.1.0.0/16", 3389)
    _vpc_rule("ipv6-site", web.id, "2a00::/32", 443)
    # A prefix list of the stack with an office and a partner, entries added by resources.
    offices = aws.ec2.ManagedPrefixList(
        "offices",
        address_family="IPv4",
        max_entries=4,
        entries=[aws.ec2.ManagedPrefixListEntryArgs(cidr="203.0.113.0/24")],
    )
    aws.ec2.ManagedPrefixListEntry("partner", prefix_list_id=offices.id, cidr="100.64.0.0/10")
    aws.vpc.SecurityGroupIngressRule(
        "from-offices",
        security_group_id=web.id,
        ip_protocol="tcp",
        from_port=22,
        to_port=22,
        prefix_list_id=offices.id,
    )
    closed_group(
        "office-sg",
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=22, to_port=22, prefix_list_ids=[offices.id]
            )
        ],
    )
    # An encrypted volume of the stack, attached to the instance.
    volume = aws.ebs.Volume("attached", availability_zone="eu-west-1a", size=10, encrypted=True)
    aws.ec2.VolumeAttachment(
        "attach", device_name="/dev/sdf", instance_id=vm.id, volume_id=volume.id
    )
    aws.ec2.LaunchConfiguration(
        "config",
        image_id=AMI,
        instance_type="t3.micro",
        metadata_options=aws.ec2.LaunchConfigurationMetadataOptionsArgs(http_tokens="required"),
        root_block_device=aws.ec2.LaunchConfigurationRootBlockDeviceArgs(encrypted=True),
    )
    aws.vpc.SecurityGroupIngressRule(
        "peer", security_group_id=web.id, ip_protocol="-1", referenced_security_group_id=group.id
    )
    aws.ec2.SecurityGroupRule(
        "egress",
        type="egress",
        security_group_id=web.id,
        protocol="-1",
        from_port=0,
        to_port=0,
        cidr_blocks=["0.0.0.0/0"],
    )


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_hardened_instances_and_named_sources_pass(preview: bool) -> None:
    """IMDSv2 with hop limit 2, encrypted EBS, private or named sources, ports apart."""
    verdict = judge(run(_acceptable, preview=preview))
    assert verdict.violations == {}
    assert verdict.unknown == {}


V4 = "public IPv4 addresses"


@pytest.mark.parametrize(
    ("cidrs", "shares"),
    [
        (["0.0.0.0/0"], [f"3,702,258,688 {V4} (100% of the public IPv4 internet), more than a /8"]),
        (["0.0.0.0/1", "128.0.0.0/1"], [f"3,702,258,688 {V4} (100% of the public IPv4 internet)"]),
        (["0.0.0.0/1"], [f"2,092,957,696 {V4} (56% of the public IPv4 internet)"]),
        (["128.0.0.0/1"], [f"1,609,300,992 {V4} (43% of the public IPv4 internet)"]),
        (["0.0.0.0/2"], [f"1,040,187,392 {V4} (28% of the public IPv4 internet)"]),
        (
            ["8.0.0.0/7"],
            [f"33,554,432 {V4} (under 1% of the public IPv4 internet), more than a /8"],
        ),
        (["8.0.0.0/8"], []),  # exactly a /8 of public space: the limit, not past it
        (["8.0.0.0/9", "8.128.0.0/9"], []),
        (["8.0.0.0/8", "9.0.0.0/32"], [f"16,777,217 {V4}"]),
        (["10.0.0.0/8", "8.0.0.0/8"], []),  # private space does not count
        (["0.0.0.0/8", "8.0.0.0/8"], []),  # nor does "this network"
        (["130.1.0.0/16"], []),
        (["203.0.113.0/24", "198.51.100.7/32"], []),
        (
            ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"],
            [f"3,702,258,688 {V4} (100% of the public IPv4 internet)"],
        ),
        (["::/1", "8000::/1"], ["about 2^125 public IPv6 addresses (100% of the public IPv6"]),
        (["2000::/3"], ["about 2^125 public IPv6 addresses (100% of the public IPv6 internet)"]),
        (["2000::/4"], ["about 2^124 public IPv6 addresses (49% of the public IPv6 internet)"]),
        (["2a00::/31"], ["2^97 public IPv6 addresses (under 1% of the public IPv6 internet)"]),
        (["2a00::/32"], []),  # exactly a /32: the limit
        (["2a00::/33", "2a00:0:8000::/33"], []),
        (
            ["::/0", "0.0.0.0/0"],
            [f"3,702,258,688 {V4} (100%", "about 2^125 public IPv6 addresses (100%"],
        ),
        (list(PRIVATE), []),
        (["2001:db8::/32", "fc00::/7", "fe80::/10"], []),
        (["not-a-cidr", "203.0.113.0/24"], []),
    ],
)
def test_how_much_of_the_internet_a_set_of_cidrs_reaches(
    cidrs: list[str], shares: list[str]
) -> None:
    """More than a /8 of public IPv4 space, or a /32 of public IPv6 space, is the internet."""
    found = rules_addresses.internet_shares(cidrs)
    assert len(found) == len(shares), found
    assert all(found[i].startswith(share) for i, share in enumerate(shares)), found

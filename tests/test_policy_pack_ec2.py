"""The pack's EC2 rules: IMDSv2, encrypted EBS, and no ingress from the internet.

Each breakage is a real program (policy_programs) judged under the mocks (policy_harness).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pulumi_aws as aws
import pytest
from policy_harness import judge, run
from policy_programs import (
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
    # 2000::/3 is all of global unicast: a half of it and two quarters, each under half.
    _vpc_rule("low-half", group.id, "2000::/4", 443)
    _vpc_rule("third-quarter", group.id, "3000::/5", 443)
    _vpc_rule("fourth-quarter", group.id, "3800::/5", 443)


def _quarters_across_three_resources() -> None:
    group = closed_group("web")
    _rule("first", group.id, ["0.0.0.0/2", "192.0.0.0/2"], 22)
    _vpc_rule("second", group.id, "64.0.0.0/2", 22)
    _vpc_rule("third", group.id, "128.0.0.0/2", 22)


def _inline_plus_rule_plus_all_traffic() -> None:
    group = closed_group(
        "web",
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=22, to_port=22, cidr_blocks=["0.0.0.0/2"]
            )
        ],
    )
    _rule("second", group.id, ["64.0.0.0/2"], 22)
    _vpc_rule("third", group.id, "128.0.0.0/2", protocol="-1")


def _an_existing_group_by_id() -> None:
    existing = "sg-0123456789abcdef0"
    _rule("first", existing, ["0.0.0.0/2"], 3389)
    _vpc_rule("second", existing, "64.0.0.0/2", 3389)
    _vpc_rule("third", existing, "128.0.0.0/2", 3389)


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
        "ingress[0], ingress[1] admit tcp port 22 from 0.0.0.0/1, 128.0.0.0/1, together 100%",
        lambda: _ingress(("tcp", 22, 22, ["0.0.0.0/1"]), ("tcp", 22, 22, ["128.0.0.0/1"])),
        in_preview=True,
    ),
    Breakage(
        "overlapping-port-ranges",
        INGRESS,
        "open",
        "admit tcp ports 20-30 from",
        lambda: _ingress(("tcp", 0, 65535, ["0.0.0.0/1"]), ("tcp", 20, 30, ["128.0.0.0/1"])),
        in_preview=True,
    ),
    Breakage(
        "ipv6-halves-all-traffic",
        INGRESS,
        "open",
        "admit all traffic from 8000::/1, ::/1, together 100% of the public IPv6 internet",
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
        "admits tcp port 443 from 2000::/4, 3000::/5, 3800::/5 through fourth-quarter, low-half",
        _parts_of_ipv6_on_https,
        in_preview=True,
    ),
    Breakage(
        "quarters-across-three-resources",
        COMBINED,
        "web",
        "through first, second, third, together 100% of the public IPv4 internet",
        _quarters_across_three_resources,
        in_preview=True,
    ),
    Breakage(
        "inline-plus-rule-plus-all-traffic",
        COMBINED,
        "web",
        "admits tcp port 22 from 0.0.0.0/2, 128.0.0.0/2, 64.0.0.0/2 through second, third, web",
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


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.id)
def test_a_weakening_is_caught(breakage: Breakage) -> None:
    assert_caught(breakage)


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.id)
def test_a_weakening_never_passes_a_preview(breakage: Breakage) -> None:
    assert_not_passed_in_preview(breakage)


def _acceptable() -> None:
    """The stack's own shapes, and ingress that is not from the internet."""
    group = closed_group("host-sg")
    instance("vm", vpc_security_group_ids=[group.id])
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
    # Each under half of the internet, on different ports: no port is open to the internet.
    _rule("ssh", web.id, ["0.0.0.0/2"], 22)
    _vpc_rule("https", web.id, "64.0.0.0/2", 443)
    _vpc_rule("dns", web.id, "128.0.0.0/2", 53, protocol="udp")
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


@pytest.mark.parametrize(
    ("cidrs", "shares"),
    [
        (["0.0.0.0/0"], ["100% of the public IPv4 internet"]),
        (["0.0.0.0/1", "128.0.0.0/1"], ["100% of the public IPv4 internet"]),
        (["0.0.0.0/1"], ["56% of the public IPv4 internet"]),
        (["128.0.0.0/1"], []),
        (
            ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"],
            ["100% of the public IPv4 internet"],
        ),
        (["::/1", "8000::/1"], ["100% of the public IPv6 internet"]),
        (["2000::/3"], ["100% of the public IPv6 internet"]),
        (
            ["::/0", "0.0.0.0/0"],
            ["100% of the public IPv4 internet", "100% of the public IPv6 internet"],
        ),
        (list(PRIVATE), []),
        (["2001:db8::/32", "fc00::/7", "fe80::/10"], []),
        (["not-a-cidr", "203.0.113.0/24"], []),
    ],
)
def test_how_much_of_the_internet_a_set_of_cidrs_reaches(
    cidrs: list[str], shares: list[str]
) -> None:
    """More than half of the public space of an IP version is the internet, however spelled."""
    assert rules_addresses.internet_shares(cidrs) == shares

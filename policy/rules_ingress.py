"""Ingress: nothing in this stack listens to the internet (guarantee 5, network part).

Operators reach the hosts through SSM Session Manager, so no port may be open to the internet,
however the opening is spelled: a security group's inline rules, SecurityGroupRule and
vpc.SecurityGroupIngressRule resources, and any set of CIDRs that together amount to it.

"Open to the internet" is decided per protocol and port, over every source CIDR of the group
that reaches it, whichever resource wrote it; rules_addresses says how much is "the internet".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

try:
    from policy import rules_addresses as addresses
    from policy import rules_base as base
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_addresses as addresses  # type: ignore[import-not-found, no-redef]
    import rules_base as base  # type: ignore[import-not-found, no-redef]

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GROUP_TYPES = frozenset({SECURITY_GROUP, DEFAULT_SECURITY_GROUP})

PROTOCOLS = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
INGRESS_FIX = (
    "remove them and reach the host through SSM Session Manager, "
    "or allow only a named source CIDR or security group"
)


@dataclass(frozen=True)
class Ingress:
    where: str
    protocol: str  # "all", "tcp", "udp", "icmp", ... or a protocol number
    ports: tuple[int, int] | None  # None: every port (or type) of the protocol
    cidrs: tuple[str, ...]


def _ingress(where: str, rule: base.Props, protocol_key: str, cidr_keys: Sequence[str]) -> Ingress:
    value = rule.get(protocol_key)
    text = str(int(value)) if isinstance(value, float) else str(value).lower()
    protocol = PROTOCOLS.get(text, text)
    low, high = rule.get("fromPort"), rule.get("toPort")
    ports = None
    if (
        protocol in ("tcp", "udp")
        and isinstance(low, int | float)
        and isinstance(high, int | float)
    ):
        ports = (int(low), int(high))  # The engine sends numbers as floats.
    cidrs = tuple(str(c) for key in cidr_keys for c in base.as_list(rule.get(key)) if c)
    return Ingress(where, protocol, ports, cidrs)


def ingress_of(resource_type: str, props: base.Props) -> list[Ingress]:
    """The ingress rules a resource writes, in one shape whichever resource writes them."""
    v4_v6 = ("cidrBlocks", "ipv6CidrBlocks")
    if resource_type in GROUP_TYPES:
        rules = enumerate(base.as_list(props.get("ingress")))
        return [
            _ingress(f"ingress[{i}]", r, "protocol", v4_v6)
            for i, r in rules
            if isinstance(r, Mapping)
        ]
    if resource_type == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        return [_ingress("this rule", props, "protocol", v4_v6)]
    if resource_type == INGRESS_RULE:
        return [_ingress("this rule", props, "ipProtocol", ("cidrIpv4", "cidrIpv6"))]
    return []


def _reaches(rule: Ingress, protocol: str, port: int) -> bool:
    """Whether the rule admits the port of the protocol (-1: every port of it)."""
    if rule.protocol == "all":
        return True
    if rule.protocol != protocol:
        return False
    return rule.ports is None or rule.ports[0] <= port <= rule.ports[1]


def _what(protocol: str, port: int, reach: list[Ingress]) -> str:
    """The traffic all of these rules admit: "tcp port 22", "tcp ports 20-30", "icmp"."""
    if protocol == "all":
        return "all traffic"
    if port < 0:
        return protocol
    last = min(r.ports[1] for r in reach if r.ports is not None and r.protocol == protocol)
    return f"{protocol} port {port}" if last == port else f"{protocol} ports {port}-{last}"


def open_ports(rules: Sequence[Ingress]) -> list[tuple[str, list[int], list[str]]]:
    """(what, indexes of the rules, shares) for each opening to the internet the rules make.

    The rules that reach a port change only where a rule's range starts, so those starts are
    the only ports to try. Openings whose rules another opening includes are left out.
    """
    found: list[tuple[str, list[int], list[str]]] = []
    points = sorted({(r.protocol, r.ports[0] if r.ports else -1) for r in rules})
    for protocol, port in points:  # -1: the whole protocol
        reach = [i for i, r in enumerate(rules) if _reaches(r, protocol, port)]
        shares = addresses.internet_shares([c for i in reach for c in rules[i].cidrs])
        if shares:
            found.append((_what(protocol, port, [rules[i] for i in reach]), reach, shares))
    return [
        (what, reach, shares)
        for what, reach, shares in found
        if not any(set(reach) < set(other) for _, other, _ in found)
    ]


def _sources(rules: Sequence[Ingress], reach: list[int]) -> str:
    cidrs = sorted({c for i in reach for c in rules[i].cidrs})
    return ", ".join(cidrs[:4]) + (f" and {len(cidrs) - 4} more" if len(cidrs) > 4 else "")


def no_internet_ingress(resource_type: str, props: base.Props) -> list[str]:
    """Nothing in this stack listens to the internet; operators use SSM Session Manager."""
    rules = ingress_of(resource_type, props)
    return [
        f"{', '.join(rules[i].where for i in reach)} admit {what} from {_sources(rules, reach)}, "
        f"together {' and '.join(shares)}: {INGRESS_FIX}"
        for what, reach, shares in open_ports(rules)
    ]


def _group_key(rule: base.StackResource, groups: list[base.StackResource]) -> str:
    """The group's URN by property dependency (known in a preview), else the literal id."""
    for group in groups:
        if base.depends_on(rule, "securityGroupId", group):
            return group.urn
    return str(rule.props.get("securityGroupId"))


def ingress_across_resources(resources: Sequence[base.StackResource]) -> list[tuple[str, str]]:
    """Rules of one group opening a port to the internet together, across resources."""
    groups = base.of_type(resources, *GROUP_TYPES)
    names = {g.urn: g.name for g in groups}
    by_group: dict[str, list[tuple[base.StackResource, Ingress]]] = {
        g.urn: [(g, i) for i in ingress_of(g.resource_type, g.props)] for g in groups
    }
    for rule in base.of_type(resources, SECURITY_GROUP_RULE, INGRESS_RULE):
        items = ingress_of(rule.resource_type, rule.props)
        if items:
            by_group.setdefault(_group_key(rule, groups), []).extend((rule, i) for i in items)
    literal = [key for key in by_group if key not in names]
    if literal and groups:  # Rules naming a group by id: is it one of this stack's?
        ids: dict[Any, str] = {g.props.get("id"): g.urn for g in groups}
        for key in literal:
            if key in ids:
                by_group[ids[key]] += by_group.pop(key)
    found: list[tuple[str, str]] = []
    for key, entries in by_group.items():
        rules = [i for _, i in entries]
        for what, reach, shares in open_ports(rules):
            sources = sorted({entries[i][0].name for i in reach})
            if len(sources) < 2:
                continue  # One resource alone: ec2-no-internet-ingress reports it.
            found.append(
                (
                    key if key in names else min(entries[i][0].urn for i in reach),
                    f"security group {names.get(key, key)} admits {what} from "
                    f"{_sources(rules, reach)} through {', '.join(sources)}, together "
                    f"{' and '.join(shares)}: {INGRESS_FIX}",
                )
            )
    return found

"""Ingress: nothing in this stack listens to the internet (guarantee 5, network part).

Operators reach the hosts through SSM Session Manager, so no port may be open to the internet,
however the opening is spelled: a security group's inline rules, SecurityGroupRule and
vpc.SecurityGroupIngressRule resources, prefix lists, and any set of CIDRs that together amount
to it.

"Open to the internet" is decided per protocol and port, over every source CIDR that reaches it;
rules_addresses says how much is "the internet". This module reads one resource's rules (the
resource rule); rules_ingress_combined adds up a group's rules across resources and the CIDRs
of the prefix lists they name, which only the whole stack shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

try:
    from policy import rules_addresses as addresses
    from policy import rules_base as base
    from policy import rules_stack as stack
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_addresses as addresses  # type: ignore[import-not-found, no-redef]
    import rules_base as base  # type: ignore[import-not-found, no-redef]
    import rules_stack as stack  # type: ignore[import-not-found, no-redef]

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GROUP_TYPES = frozenset({SECURITY_GROUP, DEFAULT_SECURITY_GROUP})

PROTOCOLS = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
Peeked = tuple[Any, stack.Pending]  # a value, or why it is unknown
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


# Where each resource keeps its rules' prefix lists, and the property the engine tracks their
# dependencies under (a group's inline rules share one: `ingress`).
Block = tuple[str, base.Props, str, str, str]  # where, rule, wire format, prefix key, dep key


def _blocks(resource_type: str, props: base.Props) -> list[Block]:
    if resource_type in GROUP_TYPES:
        rules = enumerate(base.as_list(props.get("ingress")))
        return [
            (f"ingress[{i}]", r, "group", "prefixListIds", "ingress")
            for i, r in rules
            if isinstance(r, Mapping)
        ]
    if resource_type == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        return [("this rule", props, "group", "prefixListIds", "prefixListIds")]
    if resource_type == INGRESS_RULE:
        return [("this rule", props, "vpc", "prefixListId", "prefixListId")]
    return []


WIRE = {
    "group": ("protocol", ("cidrBlocks", "ipv6CidrBlocks")),
    "vpc": ("ipProtocol", ("cidrIpv4", "cidrIpv6")),
}


def ingress_of(resource_type: str, props: base.Props) -> list[Ingress]:
    """The ingress rules a resource writes, in one shape whichever resource writes them.

    Prefix lists are left out: only the stack rule can see what they hold (prefix_lists_of).
    """
    return [
        _ingress(where, rule, *WIRE[shape])
        for where, rule, shape, _, _ in _blocks(resource_type, props)
    ]


def prefix_lists_of(resource_type: str, props: base.Props) -> list[tuple[str, list[Peeked]]]:
    """For each rule of ingress_of: its dependency key, and each prefix list id it names, peeked
    (unknown in a preview when computed from a prefix list not created yet)."""
    found: list[tuple[str, list[Peeked]]] = []
    for _, rule, _, key, dep_key in _blocks(resource_type, props):
        value, why = stack.peek(rule, key)
        if why is not None:
            ids: list[Peeked] = [(None, why)]
        elif isinstance(value, Sequence) and not isinstance(value, str):
            ids = [stack.peek(value, i) for i in range(len(value))]  # each element on its own
        else:
            ids = [(value, None)]
        found.append((dep_key, [(v, w) for v, w in ids if v is not None or w is not None]))
    return found


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


def sources(rules: Sequence[Ingress], reach: list[int]) -> str:
    cidrs = sorted({c for i in reach for c in rules[i].cidrs})
    return ", ".join(cidrs[:4]) + (f" and {len(cidrs) - 4} more" if len(cidrs) > 4 else "")


def no_internet_ingress(resource_type: str, props: base.Props) -> list[str]:
    """Nothing in this stack listens to the internet; operators use SSM Session Manager."""
    rules = ingress_of(resource_type, props)
    return [
        f"{', '.join(rules[i].where for i in reach)} admit {what} from {sources(rules, reach)}, "
        f"together {' and '.join(shares)}: {INGRESS_FIX}"
        for what, reach, shares in open_ports(rules)
    ]

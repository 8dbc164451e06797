"""Address arithmetic for the ingress rules: how much of the public internet CIDRs reach.

A port is open to the internet when the CIDRs that reach it cover more than half of the public
address space of IPv4 (0.0.0.0/0 without the private, shared, loopback, link-local,
documentation, benchmarking, multicast and reserved ranges) or of IPv6 (global unicast 2000::/3
without documentation space). 0.0.0.0/0 is the limit case; 0.0.0.0/1 + 128.0.0.0/1, four /2s,
::/1 + 8000::/1, or the whole internet but a few carved-out addresses are the same opening. A
named office or peer network, a few public ranges, or private space stays allowed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Span = tuple[int, int]  # The first and last address of a block, as integers.


def _span(cidr: str) -> Span:
    network = ipaddress.ip_network(cidr, strict=False)
    return int(network.network_address), int(network.broadcast_address)


# The public internet of each IP version: a universe, minus what is never routed on it
# (IANA's special-purpose registries; the ranges are disjoint and inside their universe).
PUBLIC: dict[int, tuple[Span, tuple[Span, ...]]] = {
    4: (
        _span("0.0.0.0/0"),
        tuple(
            _span(n)
            for n in (
                *("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16"),
                *("172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16"),
                *("198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24"),
                "224.0.0.0/3",  # multicast (224/4) and reserved (240/4, broadcast included)
            )
        ),
    ),
    6: (_span("2000::/3"), (_span("2001:db8::/32"),)),
}


def _common(a: Span, b: Span) -> int:
    """How many addresses two blocks share."""
    return max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)


def _merged(spans: list[Span]) -> list[Span]:
    """The union of the blocks, as disjoint spans: no address is counted twice."""
    merged: list[Span] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def internet_shares(cidrs: Sequence[str]) -> list[str]:
    """For each IP version of which the CIDRs cover most of the public internet: how much."""
    spans: dict[int, list[Span]] = {4: [], 6: []}
    for cidr in cidrs:
        try:
            spans[ipaddress.ip_network(cidr, strict=False).version].append(_span(cidr))
        except ValueError:
            continue  # EC2 refuses it; no address is reached through it.
    found = []
    for version, (universe, excluded) in PUBLIC.items():
        total = _common(universe, universe) - sum(_common(e, e) for e in excluded)
        covered = sum(
            _common(s, universe) - sum(_common(s, e) for e in excluded)
            for s in _merged(spans[version])
        )
        if 2 * covered > total:
            found.append(f"{covered * 100 // total}% of the public IPv{version} internet")
    return found

"""Address arithmetic for the ingress rules: how much of the public internet CIDRs reach.

A port is open to the internet when the public addresses that reach it (0.0.0.0/0 without the
private, shared, loopback, link-local, documentation, benchmarking, multicast and reserved
ranges; IPv6 global unicast 2000::/3 without documentation space) add up to more than a /8 of
IPv4 (2^24 addresses) or more than a /32 of IPv6 (2^96 addresses). That is larger than any one
organisation's network, so anything past it is the internet for practical purposes: not only
0.0.0.0/0, but 128.0.0.0/1, 2000::/4, a handful of /9s, or the whole internet but a few
addresses. A named office or peer network (a /24, a /16, even one whole /8), or private space
in any amount, stays allowed.
"""

from __future__ import annotations

import ipaddress
import math
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


# The most public addresses one port may admit, per IP version: a /8 of IPv4, a /32 of IPv6.
LIMIT = {4: (8, 2**24), 6: (32, 2**96)}


def _count(version: int, covered: int) -> str:
    """IPv4 counts in full (16,777,216); IPv6 ones as powers of two (2^97, about 2^124.6)."""
    if version == 4:
        return f"{covered:,}"
    if covered & (covered - 1) == 0:
        return f"2^{covered.bit_length() - 1}"
    exponent = f"{math.log2(covered):.1f}".removesuffix(".0")
    return f"about 2^{exponent}"


def internet_shares(cidrs: Sequence[str]) -> list[str]:
    """For each IP version of which the CIDRs reach more than the limit: how much they reach."""
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
        prefix, limit = LIMIT[version]
        if covered > limit:
            share = covered * 100 // total
            found.append(
                f"{_count(version, covered)} public IPv{version} addresses "
                f"({f'{share}%' if share else 'under 1%'} of the public IPv{version} internet), "
                f"more than a /{prefix}"
            )
    return found

"""Ingress across resources: the rules of one security group, and the prefix lists they name.

A port is open when every source that reaches it, whichever resource wrote it, adds up to the
internet (rules_addresses): a group's inline rules, SecurityGroupRule and
vpc.SecurityGroupIngressRule resources attached to it, and the CIDRs of the prefix lists they
name. A prefix list's CIDRs are known only when the stack defines it (aws.ec2.ManagedPrefixList
and its ManagedPrefixListEntry resources); any other prefix list (another stack's, AWS-managed
ones included) can hold anything and change at any time, so ingress from it is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

try:
    from policy import rules_addresses as addresses
    from policy import rules_base as base
    from policy import rules_ingress as ingress
    from policy import rules_stack as stack
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_addresses as addresses  # type: ignore[import-not-found, no-redef]
    import rules_base as base  # type: ignore[import-not-found, no-redef]
    import rules_ingress as ingress  # type: ignore[import-not-found, no-redef]
    import rules_stack as stack  # type: ignore[import-not-found, no-redef]

PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"
PREFIX_LIST_ENTRY = "aws:ec2/managedPrefixListEntry:ManagedPrefixListEntry"
PREFIX_LIST_FIX = (
    "its CIDRs cannot be verified and can change outside the stack; define the prefix list in "
    "this stack (aws.ec2.ManagedPrefixList) or name the source CIDRs"
)


@dataclass(frozen=True)
class Entry:
    """One ingress rule: who wrote it, its own CIDRs, and with its prefix lists' CIDRs too."""

    resource: stack.StackResource
    own: ingress.Ingress
    counted: ingress.Ingress
    lists: tuple[str, ...]  # names of the stack's prefix lists it reaches through


def _prefix_lists(
    findings: stack.Findings, resources: Sequence[stack.StackResource]
) -> tuple[list[stack.StackResource], dict[str, list[str]]]:
    """The stack's prefix lists, and the CIDRs each holds (inline entries and entry resources)."""
    lists = stack.of_type(resources, PREFIX_LIST)
    cidrs: dict[str, list[str]] = {pl.urn: [] for pl in lists}
    for pl in lists:
        with findings.deciding(pl.name):
            for entry in base.as_list(pl.props.get("entries")):
                if isinstance(entry, Mapping) and entry.get("cidr"):
                    cidrs[pl.urn].append(str(entry.get("cidr")))
    entries = stack.of_type(resources, PREFIX_LIST_ENTRY)
    mine, _ = stack.link_all(findings, entries, "prefixListId", lists, ("id",))
    for pl in lists:
        for entry in mine[pl.urn]:
            with findings.deciding(entry.name):
                cidrs[pl.urn].append(str(entry.props.get("cidr")))
    return lists, cidrs


def _entries(
    findings: stack.Findings,
    resource: stack.StackResource,
    lists: list[stack.StackResource],
    cidrs: dict[str, list[str]],
) -> list[Entry]:
    """The resource's ingress rules, each with the CIDRs of the prefix lists it names.

    A prefix list that is not the stack's is a violation; one not known yet (a preview) leaves
    the resource undecided, and its rule is counted with the CIDRs that are known.
    """
    found: list[Entry] = []
    rules = ingress.ingress_of(resource.resource_type, resource.props)
    refs = ingress.prefix_lists_of(resource.resource_type, resource.props)
    for rule, (dep_key, ids) in zip(rules, refs, strict=True):
        extra: list[str] = []
        named: list[str] = []
        for element in ids:
            with findings.deciding(resource.name):
                targets = stack.linked(resource, dep_key, lists, ("id",), element=element)
                for pl in targets:
                    extra += cidrs[pl.urn]
                    named.append(pl.name)
                if not targets:
                    where = "" if rule.where == "this rule" else f" {rule.where}"
                    findings.add(
                        resource,
                        f"{resource.name}{where} admits traffic from prefix list "
                        f"{base.shown(element[0])}, which is not defined in this stack: "
                        + PREFIX_LIST_FIX,
                    )
        counted = replace(rule, cidrs=rule.cidrs + tuple(extra))
        found.append(Entry(resource, rule, counted, tuple(named)))
    return found


def _group_key(
    findings: stack.Findings, rule: stack.StackResource, groups: list[stack.StackResource]
) -> str:
    """The group's URN by value or property dependency, else the literal id of a group outside
    the stack. Raises UnknownValueError when the group is not known yet and not a dependency."""
    value, why = stack.peek(rule.props, "securityGroupId")
    if why is not None:
        found = [g for g in groups if stack.depends_on(rule, "securityGroupId", g)]
        if len(found) == 1:
            return found[0].urn
        raise why
    pending: stack.Pending = None
    for group in groups:
        group_id, unknown = stack.peek(group.props, "id")
        if unknown is None and group_id == value:
            return group.urn
        pending = pending or unknown
    if pending is not None:  # A group not created yet may be the one named: counted apart.
        findings.undecided.append((rule.name, pending))
    return str(value)


def _report(
    findings: stack.Findings, key: str, name: str, entries: list[Entry], is_group: bool
) -> None:
    rules = [e.counted for e in entries]
    for what, reach, shares in ingress.open_ports(rules):
        writers = sorted({entries[i].resource.name for i in reach})
        lists = sorted({n for i in reach for n in entries[i].lists})
        own = addresses.internet_shares([c for i in reach for c in entries[i].own.cidrs])
        if len(writers) < 2 and own:
            continue  # One resource alone, on its own CIDRs: ec2-no-internet-ingress reports it.
        through = ", ".join([*writers, *(f"prefix list {n}" for n in lists)])
        urn = key if is_group else min(entries[i].resource.urn for i in reach)
        findings.violations.append(
            (
                urn,
                f"security group {name} admits {what} from {ingress.sources(rules, reach)} "
                f"through {through}, together {' and '.join(shares)}: {ingress.INGRESS_FIX}",
            )
        )


def ingress_across_resources(resources: Sequence[stack.StackResource]) -> stack.Findings:
    """Rules of one group, with their prefix lists, opening a port to the internet together."""
    findings = stack.Findings()
    groups = stack.of_type(resources, *ingress.GROUP_TYPES)
    names = {g.urn: g.name for g in groups}
    lists, cidrs = _prefix_lists(findings, resources)
    by_group: dict[str, list[Entry]] = {g.urn: [] for g in groups}
    rules = stack.of_type(resources, ingress.SECURITY_GROUP_RULE, ingress.INGRESS_RULE)
    for resource in [*groups, *rules]:
        with findings.deciding(resource.name):
            is_group = resource.urn in names
            key = resource.urn if is_group else _group_key(findings, resource, groups)
            by_group.setdefault(key, []).extend(_entries(findings, resource, lists, cidrs))
    for key, entries in by_group.items():
        with findings.deciding(names.get(key, key)):
            _report(findings, key, names.get(key, key), entries, key in names)
    return findings

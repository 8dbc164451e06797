"""What stack rules share: the rule's shape, links between resources, and per-resource verdicts.

A stack rule takes every resource of the stack and returns Findings: (urn, message) violations,
and the resources it could not decide. In a first `pulumi preview` some values are unknown, and
pulumi_policy's proxy raises UnknownValueError when a rule reads one; if that escaped the rule,
CrossGuard would turn it into one advisory "can't run" for the whole rule and drop every
violation it had found, so a known breach elsewhere would go unreported. So each rule decides
each resource (or link) on its own under `Findings.deciding`: what is known is reported, and
what is not is collected. adapters.py reports the violations, then raises `Findings.unknown()`
so that CrossGuard still marks the rule as not run in the preview, never as passed.

This is the one module that imports pulumi_policy (its proxy's exception, nothing else).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from pulumi_policy.proxy import UnknownValueError

Props = Mapping[str, Any]
# Why a link could not be made yet (a preview), if it could not: re-raised where it matters.
Pending = UnknownValueError | None


class Dependency(Protocol):
    @property
    def urn(self) -> str: ...


class StackResource(Protocol):
    """What a stack rule reads of a resource; pulumi_policy.PolicyResource has this shape."""

    @property
    def resource_type(self) -> str: ...
    @property
    def urn(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def props(self) -> Props: ...
    @property
    def property_dependencies(self) -> Mapping[str, Sequence[Dependency]]: ...


@dataclass
class Findings:
    """A stack rule's verdict: its violations, and what it could not decide in this preview."""

    violations: list[tuple[str, str]] = field(default_factory=list)
    undecided: list[tuple[str, UnknownValueError]] = field(default_factory=list)

    def add(self, resource: StackResource, message: str) -> None:
        self.violations.append((resource.urn, message))

    @contextmanager
    def deciding(self, name: str) -> Iterator[None]:
        """Judge one resource: an unknown value it needs leaves it, and only it, undecided.

        Violations added before the unknown was read stay: they were decided on known values.
        """
        try:
            yield
        except UnknownValueError as err:
            self.undecided.append((name, err))

    def unknown(self) -> UnknownValueError | None:
        """One error for CrossGuard's "can't run in preview", naming every undecided resource."""
        if not self.undecided:
            return None
        first = self.undecided[0][1]
        error = UnknownValueError(first.unknown_type_sentinel, first.props)
        names = ", ".join(sorted({name for name, _ in self.undecided}))
        error.message = f"{first.message}; undecided in this preview: {names}"
        return error


StackCheck = Callable[[Sequence[StackResource]], Findings]


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: StackCheck


def of_type(resources: Sequence[StackResource], *tokens: str) -> list[StackResource]:
    return [r for r in resources if r.resource_type in tokens]


def depends_on(resource: StackResource, key: str, target: StackResource) -> bool:
    """Whether the engine says `key` of `resource` was computed from `target`: known in preview."""
    return any(d.urn == target.urn for d in resource.property_dependencies.get(key, ()))


def peek(container: Any, key: Any) -> tuple[Any, UnknownValueError | None]:
    """(value, None), or (None, why) when the value is unknown: read it without raising."""
    try:
        if isinstance(container, Mapping):
            return container.get(key), None
        return container[key], None
    except UnknownValueError as err:
        return None, err


def linked(
    resource: StackResource,
    key: str,
    targets: Sequence[StackResource],
    names: Sequence[str],
    element: tuple[Any, UnknownValueError | None] | None = None,
) -> list[StackResource]:
    """The targets that `key` of `resource` names (or `element`, one peeked item of it).

    A known value is compared with each target's `names` (e.g. a bucket's id and name): that is
    the truth in `pulumi up`, even when the value came through another resource's output. An
    unknown value (a preview) is linked by the engine's property dependencies instead. Raises
    UnknownValueError when neither can tell: a link never resolves to "nothing" by default.
    """
    value, unknown = peek(resource.props, key) if element is None else element
    if unknown is not None:
        found = [t for t in targets if depends_on(resource, key, t)]
        if len(found) == 1:
            return found
        raise unknown  # From something else, or from several candidates: which one is unknown.
    pending: UnknownValueError | None = None
    found = []
    for target in targets:
        # The names are aliases (a bucket's id is its name): one known name decides the target.
        peeked = [peek(target.props, name) for name in names]
        if any(why is None and known is not None and known == value for known, why in peeked):
            found.append(target)
        elif all(why is not None for _, why in peeked):
            pending = pending or peeked[0][1]
    if not found and pending is not None:
        raise pending  # A target whose name is not known yet may be the one named.
    return found


def link_all(
    findings: Findings,
    writers: Sequence[StackResource],
    key: str,
    targets: Sequence[StackResource],
    names: Sequence[str],
) -> tuple[dict[str, list[StackResource]], UnknownValueError | None]:
    """Each target's writers (by urn): the resources whose `key` names it (see `linked`).

    A writer that cannot be linked yet is left undecided; the second value says why, since then
    any target without a writer may only seem to have none.
    """
    mine: dict[str, list[StackResource]] = {t.urn: [] for t in targets}
    pending: UnknownValueError | None = None
    for writer in writers:
        try:
            for target in linked(writer, key, targets, names):
                mine[target.urn].append(writer)
        except UnknownValueError as err:
            findings.undecided.append((writer.name, err))
            pending = pending or err
    return mine, pending

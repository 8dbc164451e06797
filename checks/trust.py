"""Does a role's trust policy let a given caller assume it? AWS's rules, as a pure function.

Used to say which side of the trust is missing when AssumeRole is denied, and by the emulator
fixture (`rehearsal.moto_rules`) that makes moto evaluate trust policies the way AWS does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from enum import Enum
from functools import cache
from typing import Any
from urllib.parse import unquote

_CALLER = re.compile(
    r"^arn:(?P<partition>[\w-]+):(?P<service>iam|sts)::(?P<account>\d{12}):"
    r"(?P<kind>assumed-role|role|user|root)(?:/(?P<rest>.+))?$"
)


class Effect(Enum):
    ALLOW = "Allow"
    DENY = "Deny"


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@cache
def _glob(pattern: str, fold: bool) -> re.Pattern[str]:
    body = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"^{body}$", re.IGNORECASE if fold else 0)


def wildcard(pattern: str, value: str, fold: bool = True) -> bool:
    """IAM's `*` and `?` wildcards; actions match case-insensitively (`fold`), ARNs exactly."""
    return _glob(pattern, fold).match(value) is not None


def role_of(caller_arn: str) -> str | None:
    """The IAM role ARN behind an assumed-role session ARN, or None for other callers."""
    match = _CALLER.match(caller_arn)
    if not match or match["kind"] != "assumed-role" or not match["rest"]:
        return None
    role_name = match["rest"].split("/")[0]
    return f"arn:{match['partition']}:iam::{match['account']}:role/{role_name}"


def principal_matches(principal: str, caller_arn: str) -> bool:
    """Whether one `AWS` principal entry names the caller, by AWS's rules.

    - `*` matches everyone;
    - an account id, or `arn:aws:iam::ACCT:root`, matches every principal of that account;
    - a role ARN matches every session of that role (`assumed-role/NAME/SESSION`);
    - a user or session ARN matches only itself.
    """
    caller = _CALLER.match(caller_arn)
    if principal == "*":
        return True
    if caller is None:
        return principal == caller_arn
    if re.fullmatch(r"\d{12}", principal):
        return principal == caller["account"]
    wanted = _CALLER.match(principal)
    if wanted is None or wanted["account"] != caller["account"]:
        return False
    if wanted["kind"] == "root":
        return True
    if wanted["kind"] == "role" and wanted["rest"]:
        wanted_name = wanted["rest"].split("/")[-1]
        if caller["kind"] == "assumed-role" and caller["rest"]:
            return caller["rest"].split("/")[0] == wanted_name
        return caller["kind"] == "role" and (caller["rest"] or "").split("/")[-1] == wanted_name
    if wanted["kind"] == "user" and caller["kind"] == "user":
        return (wanted["rest"] or "").split("/")[-1] == (caller["rest"] or "").split("/")[-1]
    return principal == caller_arn


def _names_caller(principal: Any, caller_arn: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    # Service and Federated principals never name an IAM caller: such a statement is neutral.
    return any(principal_matches(p, caller_arn) for p in as_list(principal.get("AWS")))


def statement_effect(
    statement: Mapping[str, Any],
    action: str,
    caller_arn: str,
    conditions_hold: Callable[[Mapping[str, Any]], bool] = lambda _statement: True,
) -> Effect | None:
    """The statement's effect on (caller, action), or None when it does not apply (neutral)."""
    if "NotAction" in statement:
        applies = not any(wildcard(a, action) for a in as_list(statement["NotAction"]))
    else:
        applies = any(wildcard(a, action) for a in as_list(statement.get("Action")))
    if not applies:
        return None
    if "NotPrincipal" in statement:
        named = not _names_caller(statement["NotPrincipal"], caller_arn)
    else:
        named = _names_caller(statement.get("Principal"), caller_arn)
    if not named or not conditions_hold(statement):
        return None
    return Effect(statement.get("Effect", "Allow"))


def load_document(document: str | Mapping[str, Any]) -> Mapping[str, Any]:
    """IAM returns trust policies URL-encoded in raw APIs; boto3 usually decodes them."""
    if isinstance(document, Mapping):
        return document
    text = document if document.lstrip().startswith("{") else unquote(document)
    parsed: Mapping[str, Any] = json.loads(text)
    return parsed


def trust_allows(
    document: str | Mapping[str, Any],
    caller_arn: str,
    action: str = "sts:AssumeRole",
    conditions_hold: Callable[[Mapping[str, Any]], bool] = lambda _statement: True,
) -> bool:
    """Allowed when some statement allows the caller and none denies it."""
    effects = {
        statement_effect(statement, action, caller_arn, conditions_hold)
        for statement in as_list(load_document(document).get("Statement"))
    }
    return Effect.DENY not in effects and Effect.ALLOW in effects


def stale_principals(document: str | Mapping[str, Any]) -> list[str]:
    """Principals IAM shows as unique ids (AROA..., AIDA...): their role or user was deleted."""
    found: list[str] = []
    for statement in as_list(load_document(document).get("Statement")):
        principal = statement.get("Principal")
        if isinstance(principal, Mapping):
            found += [
                p
                for p in as_list(principal.get("AWS"))
                if re.fullmatch(r"A[A-Z]{3}[A-Z0-9]{12,}", p)
            ]
    return found

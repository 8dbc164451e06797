"""What every rule family shares: the resource rule's shape, and readers for properties and IAM
documents (rules_stack holds what only stack rules need).

A resource rule takes a type token and the resource's properties in the provider's wire format
(camelCase, e.g. `metadataOptions.httpTokens`) and returns its violations, each a message that
names the statement and says what to change (the adapter adds the resource's name). Nothing here
imports pulumi_policy: the tests call these functions directly, and adapters.py wraps them.

In `pulumi preview`, a property computed from a resource that does not exist yet is unknown; the
engine's proxy raises when a rule reads it, and CrossGuard reports that the policy could not run
in preview, never that it passed. `pulumi up` runs every policy again once the values are known.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ROLE = "aws:iam/role:Role"
# pulumi-aws 7 renamed BucketV2 to Bucket and keeps the old token alive; both carry the same
# risk (and both an inline `policy`), so every bucket rule reads both.
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
BUCKET_TYPES = frozenset({BUCKET, BUCKET_V2})
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"

# Every partition: aws, aws-cn, aws-us-gov and the isolated aws-iso* ones.
PARTITION = r"aws(?:-cn|-us-gov|-iso[a-z-]*)?"
ACCOUNT_ROOT = re.compile(rf"^(?:\d{{12}}|arn:{PARTITION}:iam::\d{{12}}:root)$")
# One role or user (any IAM path), or one role session: the only AWS principals a trust or
# bucket policy may name. Group 1 or 2 is the account. IAM names hold no `*` or `?`.
NAMED_PRINCIPAL = re.compile(
    rf"^arn:{PARTITION}:(?:iam::(\d{{12}}):(?:role|user)/[\w+=,.@/-]+"
    rf"|sts::(\d{{12}}):assumed-role/[\w+=,.@-]+/[\w+=,.@-]+)$"
)

Props = Mapping[str, Any]
ResourceCheck = Callable[[str, Props], list[str]]


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    check: ResourceCheck


def as_list(value: Any) -> list[Any]:
    """IAM and the provider accept a scalar or a list in most places; read both as a list."""
    if value is None:
        return []
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def shown(value: Any) -> str:
    return "not set" if value is None else json.dumps(value)


def nested(props: Props, block: str, key: str) -> Any:
    value = props.get(block)
    return value.get(key) if isinstance(value, Mapping) else None


def has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def document(value: Any) -> Props | None:
    """A policy document arrives as JSON text (json.dumps) or as an object; None if neither."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, Mapping) else None


def not_a_document(where: str) -> str:
    return f"{where} is not a JSON policy document: render it with json.dumps(...)"


def statements(doc: Props) -> Iterator[tuple[str, Props]]:
    """Each statement with a label for messages: its Sid, or its position."""
    for index, statement in enumerate(as_list(doc.get("Statement"))):
        if isinstance(statement, Mapping):
            sid = statement.get("Sid")
            yield (f'statement "{sid}"' if sid else f"statement {index}"), statement


def grants(statement: Props) -> bool:
    """Anything but an exact Deny is read as an Allow: IAM rejects other spellings anyway."""
    return statement.get("Effect") != "Deny"


def actions(statement: Props, key: str = "Action") -> list[str]:
    return [a for a in as_list(statement.get(key)) if isinstance(a, str)]


def is_anyone(principal: Any) -> bool:
    """`"*"`, `{"AWS": "*"}` (of any principal type) or a list holding `"*"`."""
    if isinstance(principal, Mapping):
        return any("*" in as_list(value) for value in principal.values())
    return "*" in as_list(principal)


def principals(principal: Any) -> list[tuple[str, str]]:
    """(type, value) of each principal: `{"AWS": [a, b]}` gives ("AWS", a), ("AWS", b)."""
    if isinstance(principal, Mapping):
        return [(str(kind), str(v)) for kind, value in principal.items() for v in as_list(value)]
    return [("AWS", str(v)) for v in as_list(principal)]

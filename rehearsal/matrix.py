"""The access matrix: which principal can list, read, write and delete in which bucket.

Rows are principals (the host role, each service role), columns are the services' buckets.
A healthy stack shows a host that reaches nothing directly, and each service role reaching its
own bucket only; the host reaches the buckets only by assuming the service roles (`hostAssumes`).

Shared topology: the check's own probes already tried every principal on every bucket, so the
matrix is read from them (`from_check`). Dedicated topology: the check runs once per role and
cannot aim at the other buckets' objects, so `probe` tries each cell on a planted object.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from checks.explain import error_code
from checks.isolation import DIRECT
from checks.plan import Verdict, judge
from checks.probes import NO_SUCH_ETAG
from checks.report import Report
from checks.runner import RESERVED_PREFIX, Checker
from checks.stack_outputs import Targets

PROBE_KEY = f"{RESERVED_PREFIX}matrix-probe"
OPERATIONS = ("list", "read", "write", "delete")
_FROM_ACTION = {"list": "list", "get": "read", "put": "write", "delete": "delete"}


def _row(allowed: set[str], denied: set[str] | None = None) -> dict[str, bool | None]:
    """True allowed, False proven denied, None never proven either way (a sampled pair, a
    probe the deadline cut, an answer that proves nothing)."""
    if denied is None:
        return {op: op in allowed for op in OPERATIONS}
    return {op: True if op in allowed else False if op in denied else None for op in OPERATIONS}


def from_check(checker: Checker, report: Report) -> dict[str, Any]:
    """The matrix the check's probes and own-bucket steps show (shared topology)."""
    names = list(report.services)
    rows: dict[str, dict[str, dict[str, bool | None]]] = {"host role": {}}
    seen: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    for task in checker.tasks:
        row = "host role" if task.step[1] == DIRECT else f"{task.step[0]} role"
        allowed, denied = seen.setdefault((row, task.target.name), (set(), set()))
        for p in task.probes:
            if p.verdict is Verdict.ALLOWED:
                allowed.add(_FROM_ACTION[p.action])
            elif p.verdict is Verdict.DENIED:
                denied.add(_FROM_ACTION[p.action])
    for name, result in report.services.items():
        own = {_FROM_ACTION[s.name] for s in result.steps if s.ok and s.name in _FROM_ACTION}
        # A failed own step is not a proven denial (it may be an error): unknown, not `-`.
        seen[(f"{name} role", name)] = (own, set())
    nothing: tuple[set[str], set[str]] = (set(), set())
    for name in names:
        rows["host role"][name] = _row(*seen.get(("host role", name), nothing))
    for owner in names:
        rows[f"{owner} role"] = {
            name: _row(*seen.get((f"{owner} role", name), nothing)) for name in names
        }
    return {"columns": names, "rows": rows}


def _allowed(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except ClientError as err:
        verdict, _ = judge(error_code(err))
        if verdict is Verdict.UNPROVEN:
            raise
        return verdict is Verdict.ALLOWED
    return True


def plant_probes(admin_s3: Any, targets: Targets) -> None:
    """An object per bucket for the read, write and delete probes (written as admin)."""
    for target in targets.services.values():
        admin_s3.put_object(Bucket=target.bucket_name, Key=PROBE_KEY, Body=b"probe")


def remove_probes(admin_s3: Any, targets: Targets) -> None:
    """Delete the probe and anything a write probe managed to create."""
    for target in targets.services.values():
        listed = admin_s3.list_objects_v2(Bucket=target.bucket_name, Prefix=RESERVED_PREFIX)
        for item in listed.get("Contents", []):
            admin_s3.delete_object(Bucket=target.bucket_name, Key=item["Key"])


def probe(sessions: Mapping[str, Any], targets: Targets) -> dict[str, Any]:
    """Try every operation on every bucket as every principal (IAM must be enforced).

    Write and delete are conditional (If-None-Match on the planted key, an If-Match no object
    has), so an allowed probe is answered 412 and changes nothing.
    """
    rows: dict[str, dict[str, dict[str, bool]]] = {}
    for principal, session in sessions.items():
        s3 = session.client("s3", region_name=targets.region)
        rows[principal] = {}
        for name, target in targets.services.items():
            owner = {"Bucket": target.bucket_name, "ExpectedBucketOwner": target.account}
            rows[principal][name] = {
                "list": _allowed(s3.list_objects_v2, MaxKeys=1, **owner),
                "read": _allowed(s3.get_object, Key=PROBE_KEY, **owner),
                "write": _allowed(
                    s3.put_object,
                    Key=f"{RESERVED_PREFIX}{uuid.uuid4().hex}",
                    Body=b"",
                    IfNoneMatch="*",
                    **owner,
                ),
                "delete": _allowed(s3.delete_object, Key=PROBE_KEY, IfMatch=NO_SUCH_ETAG, **owner),
            }
    return {"columns": list(targets.services), "rows": rows}


def cells(matrix: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The matrix as table text: `list read write delete`, a subset, `-` for nothing, and
    `?read` for an operation never proven either way (the deadline), `?` for a pair never
    probed (--sample)."""

    def cell(found: Mapping[str, bool | None]) -> str:
        if all(found[op] is None for op in OPERATIONS):
            return "?"  # never probed (a pair --sample left out)
        shown = [op if found[op] else f"?{op}" for op in OPERATIONS if found[op] is not False]
        return " ".join(shown) or "-"

    return {
        principal: {name: cell(found) for name, found in row.items()}
        for principal, row in matrix["rows"].items()
    }

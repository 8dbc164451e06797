"""The access matrix: which principal can list, read and write which bucket, probed for real.

Rows are principals (the host role, each service role), columns are the services' buckets.
A healthy stack shows a host that reaches nothing directly, and each service role reaching its
own bucket only; the host reaches the buckets only by assuming the service roles (`hostAssumes`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError

from checks.expectations import RESERVED_PREFIX
from checks.explain import DENIED, error_code
from checks.targets import Targets

PROBE_KEY = f"{RESERVED_PREFIX}matrix-probe"
OPERATIONS = ("list", "read", "write")


def _allowed(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except ClientError as err:
        if error_code(err) in DENIED:
            return False
        raise
    return True


def plant_probes(admin_s3: Any, targets: Targets) -> None:
    """An object per bucket for the `read` probes (written with the emulator's admin rights)."""
    for target in targets.services.values():
        admin_s3.put_object(Bucket=target.bucket_name, Key=PROBE_KEY, Body=b"probe")


def remove_probes(admin_s3: Any, targets: Targets) -> None:
    """Delete the probe and every object the `write` probes created."""
    for target in targets.services.values():
        listed = admin_s3.list_objects_v2(Bucket=target.bucket_name, Prefix=RESERVED_PREFIX)
        for item in listed.get("Contents", []):
            admin_s3.delete_object(Bucket=target.bucket_name, Key=item["Key"])


def probe(sessions: Mapping[str, boto3.Session], targets: Targets) -> dict[str, Any]:
    """Try list, read and write on every bucket as every principal (IAM must be enforced)."""
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
            }
    return {"columns": list(targets.services), "rows": rows}


def cells(matrix: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The matrix as table text: `list read write`, a subset, or `-` for nothing."""
    return {
        principal: {
            name: " ".join(op for op in OPERATIONS if allowed[op]) or "-"
            for name, allowed in row.items()
        }
        for principal, row in matrix["rows"].items()
    }

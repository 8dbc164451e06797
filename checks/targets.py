"""What to check: the stack outputs, read from a file or from `pulumi stack output --json`.

Every problem is a UsageError with one line that names the file, key or value at fault.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:.+/)?(?P<name>[\w+=,.@-]+)$"
)
TOPOLOGIES = ("shared", "dedicated")


class UsageError(Exception):
    """Bad input or usage: the check exits 2 with this one-line message."""


class CheckError(Exception):
    """The check could not run (SSM, the emulator): it exits 1 with this one-line message."""


@dataclass(frozen=True)
class ServiceTarget:
    name: str
    bucket_name: str
    bucket_arn: str
    role_arn: str
    role_name: str
    account: str
    """The account that owns the bucket (ExpectedBucketOwner): the service role's account."""


@dataclass(frozen=True)
class Targets:
    topology: str
    region: str
    services: dict[str, ServiceTarget]
    host_role_arn: str | None = None
    host_instance_id: str | None = None
    profiles_sha256: str | None = None
    """SHA-256 of the profiles file the stack's association installs on the shared host."""
    profiles_association_id: str | None = None
    """The SSM association that installs that file: --via-ssm waits for its latest run."""


def _require_str(where: str, mapping: Mapping[str, Any], key: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: '{key}' must be a non-empty string, got {json.dumps(value)}")
    return value


def parse_outputs(document: Any, origin: str) -> Targets:
    """Validate the stack outputs (as `pulumi stack output --json` prints them)."""
    if not isinstance(document, dict):
        raise UsageError(f"{origin}: expected a JSON object of stack outputs")
    if "services" not in document:
        raise UsageError(
            f"{origin}: no 'services' output; is this `pulumi stack output --json` "
            "of an ec2-assume-role stack?"
        )
    raw_services = document["services"]
    if not isinstance(raw_services, dict) or not raw_services:
        raise UsageError(f"{origin}: 'services' must map service names to their outputs")
    topology = _require_str(origin, document, "topology")
    if topology not in TOPOLOGIES:
        raise UsageError(f"{origin}: 'topology' is {topology!r}; expected shared or dedicated")
    services: dict[str, ServiceTarget] = {}
    for name, entry in raw_services.items():
        where = f"{origin}: services.{name}"
        if not isinstance(entry, dict):
            raise UsageError(f"{where} must be an object with bucketName, bucketArn, roleArn")
        role_arn = _require_str(where, entry, "roleArn")
        match = ROLE_ARN.match(role_arn)
        if not match:
            raise UsageError(f"{where}: 'roleArn' {role_arn!r} is not an IAM role ARN")
        services[name] = ServiceTarget(
            name=name,
            bucket_name=_require_str(where, entry, "bucketName"),
            bucket_arn=_require_str(where, entry, "bucketArn"),
            role_arn=role_arn,
            role_name=match["name"],
            account=match["account"],
        )
    host_role_arn = document.get("hostRoleArn")
    if topology == "shared":
        host_role_arn = _require_str(origin, document, "hostRoleArn")
    return Targets(
        topology=topology,
        region=_require_str(origin, document, "region"),
        services=services,
        host_role_arn=host_role_arn,
        host_instance_id=document.get("hostInstanceId"),
        profiles_sha256=_digest(document),
        profiles_association_id=_association(document),
    )


def _association(document: Mapping[str, Any]) -> str | None:
    value = document.get("profilesAssociationId")
    return value if isinstance(value, str) and re.fullmatch(r"[0-9a-f-]{36}", value) else None


def _digest(document: Mapping[str, Any]) -> str | None:
    """The profiles' SHA-256 from the outputs (or computed from awsConfig by older stacks)."""
    digest = document.get("awsConfigSha256")
    if isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest):
        return digest
    config = document.get("awsConfig")
    return hashlib.sha256(config.encode()).hexdigest() if isinstance(config, str) else None


def load_outputs_file(path: Path) -> Targets:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"outputs file {str(path)!r} does not exist") from None
    except OSError as err:
        raise UsageError(f"cannot read outputs file {str(path)!r}: {err.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(
            f"outputs file {str(path)!r} is not valid JSON (line {err.lineno}: {err.msg})"
        ) from None
    return parse_outputs(document, str(path))


def load_stack_outputs(stack: str | None) -> Targets:
    """Run `pulumi stack output --json` for the given stack, or the current one."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise UsageError("the pulumi CLI is not on PATH; pass --outputs FILE instead")
    command = [pulumi, "stack", "output", "--json", *(["--stack", stack] if stack else [])]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise UsageError(f"`pulumi stack output --json` failed: {last}")
    origin = f"stack {stack}" if stack else "the current stack"
    try:
        document = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise UsageError(f"`pulumi stack output --json` for {origin} printed no JSON") from None
    return parse_outputs(document, origin)

"""What to check: the stack outputs, read from a file or from `pulumi stack output --json`.

Every problem is a UsageError with one line that names the file, key or value at fault.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:.+/)?(?P<name>[\w+=,.@-]+)$"
)
TOPOLOGIES = ("shared", "dedicated")
# The program's own region rule (infra.partition.REGION), copied rather than imported: that
# module is pure, but the live check runs on hosts that have only the checks package and never
# imports infra (tests/checks/test_stack_outputs.py asserts both that and that the two
# patterns are equal).
# The area must be one AWS uses, so `mars-north-9` is refused here, not as an endpoint that
# does not resolve, request after request.
REGION = re.compile(
    r"(?P<area>af|ap|ca|cn|eu|il|me|mx|sa|us)(?P<kind>-gov|-iso[a-z]?)?"
    r"-(?:north|south|east|west|central|northeast|northwest|southeast|southwest)-[1-9][0-9]?"
)
MAX_OUTPUTS_BYTES = 16 * 1024 * 1024
"""Far above any stack's outputs (300 services take about 200 KiB); anything larger is not
one, and reading it whole could exhaust memory."""
_SAVE_IT = "save `pulumi stack output --json` to a file, or pass --stack"
_NOT_REGULAR = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UsageError(Exception):
    """Bad input or usage: the check exits 2 with this one-line message."""


class CheckError(Exception):
    """The check could not run (SSM, the emulator): it exits 1 with this one-line message."""


KMS_KEY = re.compile(r"arn:aws(?:-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]{1,64}")


@dataclass(frozen=True)
class ServiceTarget:
    name: str
    bucket_name: str
    bucket_arn: str
    role_arn: str
    role_name: str
    account: str
    """The account that owns the bucket (ExpectedBucketOwner): the service role's account."""
    kms_key_arn: str | None = None
    """SSE-KMS: the key the bucket encrypts with (the `kmsKeyArn` output); None for SSE-S3."""


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
        key = entry.get("kmsKeyArn")
        if key is not None and not (isinstance(key, str) and KMS_KEY.fullmatch(key)):
            raise UsageError(f"{where}: 'kmsKeyArn' {json.dumps(key)} is not a KMS key ARN")
        services[name] = ServiceTarget(
            name=name,
            bucket_name=_require_str(where, entry, "bucketName"),
            bucket_arn=_require_str(where, entry, "bucketArn"),
            role_arn=role_arn,
            role_name=match["name"],
            account=match["account"],
            kms_key_arn=key,
        )
    host_role_arn = document.get("hostRoleArn")
    if topology == "shared":
        host_role_arn = _require_str(origin, document, "hostRoleArn")
    region = _require_str(origin, document, "region")
    if not REGION.fullmatch(region):
        raise UsageError(
            f"{origin}: 'region' {region!r} is not an AWS region "
            "(e.g. us-east-1, eu-west-1, cn-north-1, us-gov-west-1)"
        )
    return Targets(
        topology=topology,
        region=region,
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


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count >= 1024 * 1024 else f"{count // 1024} KiB"


def _kind(mode: int) -> str | None:
    """What a file that is not a regular file is, or None for a regular one."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _NOT_REGULAR if test(mode)), "a special file")


def _read_at_most(fd: int, limit: int) -> bytes:
    """Up to `limit` bytes: a file that grows while it is read cannot keep the reader going."""
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_outputs_file(path: Path) -> bytes:
    name = str(path)
    try:
        # Looked at before it is opened: opening a FIFO for reading blocks until a writer
        # comes, and a device such as /dev/zero never ends.
        before = path.stat()
        if kind := _kind(before.st_mode):
            raise UsageError(f"outputs file {name!r} is {kind}, not a regular file; {_SAVE_IT}")
        if before.st_size > MAX_OUTPUTS_BYTES:
            raise UsageError(f"outputs file {name!r} is larger than {_size(MAX_OUTPUTS_BYTES)}")
        # O_NONBLOCK: were the path swapped for a FIFO since, the open still returns at once
        # (a regular file ignores the flag), and the fstat below refuses it.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UsageError(f"outputs file {name!r} does not exist") from None
    except OSError as err:
        raise UsageError(f"cannot read outputs file {name!r}: {err.strerror}") from None
    try:
        if kind := _kind(os.fstat(fd).st_mode):
            raise UsageError(f"outputs file {name!r} is {kind}, not a regular file; {_SAVE_IT}")
        data = _read_at_most(fd, MAX_OUTPUTS_BYTES + 1)
    except OSError as err:
        raise UsageError(f"cannot read outputs file {name!r}: {err.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_OUTPUTS_BYTES:
        raise UsageError(f"outputs file {name!r} is larger than {_size(MAX_OUTPUTS_BYTES)}")
    return data


def load_outputs_file(path: Path) -> Targets:
    """Read `pulumi stack output --json` saved to a file: UTF-8 JSON in a regular file."""
    name = str(path)
    data = _read_outputs_file(path)
    # A byte-order mark, as some editors write, is still UTF-8.
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = bom + err.start
        raise UsageError(
            f"outputs file {name!r} is not UTF-8 (byte 0x{data[offset]:02x} at offset "
            f"{offset}); save `pulumi stack output --json` as UTF-8"
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(
            f"outputs file {name!r} is not valid JSON (line {err.lineno}: {err.msg})"
        ) from None
    except RecursionError:
        raise UsageError(
            f"outputs file {name!r} nests deeper than the JSON reader can follow; "
            "stack outputs nest a few levels"
        ) from None
    except ValueError as err:  # an integer of more digits than Python converts
        reason = str(err).split(";")[0]  # not the advice to raise Python's own limit
        raise UsageError(f"outputs file {name!r} is not valid JSON ({reason})") from None
    return parse_outputs(document, name)


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

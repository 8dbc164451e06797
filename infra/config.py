"""Stack configuration: read once, validate everything, before any resource is registered.

`parse_config` is a pure function over the raw values (strings or already-decoded YAML), so the
program, the rehearsal and the tests share one set of rules and one set of messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pulumi

NAMESPACE = "ec2-assume-role"

SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
# family[generation][attributes].size, e.g. t3.micro, c7gn.16xlarge, u-6tb1.metal.
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.[a-z0-9]+$")
AMI_ID = re.compile(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
SUBNET_ID = re.compile(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
PRINCIPAL_ARN = re.compile(
    r"^arn:aws(?:-cn|-us-gov|-iso[a-z-]*)?:(?:iam::\d{12}:(?:role|user)/[\w+=,.@/-]+"
    r"|sts::\d{12}:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+)$"
)

# The service name starts its bucket's name, and S3 reserves these prefixes.
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
DEFAULT_INSTANCE_TYPE = "t3.micro"
SERVICE_KEYS = frozenset({"name", "versioning"})


class Topology(StrEnum):
    SHARED = "shared"
    """Development: one host whose role assumes every service role."""
    DEDICATED = "dedicated"
    """Production: one instance per service, carrying that service's role."""


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. A RunError, so `pulumi up` prints the message, no traceback."""


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    """Lowercase letters, digits and hyphens; starts with a letter; at most 32 characters."""
    versioning: bool = False
    """Turn on S3 versioning for this service's bucket."""


@dataclass(frozen=True)
class StackConfig:
    services: tuple[ServiceConfig, ...]
    """The services, each with its own bucket and role, in config order."""
    topology: Topology = Topology.SHARED
    instance_type: str = DEFAULT_INSTANCE_TYPE
    ami_id: str | None = None
    """None: the latest Amazon Linux 2023 AMI from the public SSM parameter."""
    subnet_id: str | None = None
    """None: the default subnet of the default VPC."""
    trusted_principals: tuple[str, ...] = ()
    """IAM ARNs that may assume the host role in addition to EC2 (e.g. an operator)."""
    force_destroy: bool = False
    """Only when true may `pulumi destroy` delete buckets that still hold objects."""


def _fail(key: str, value: Any, fix: str) -> ConfigError:
    shown = json.dumps(value) if not isinstance(value, str) else repr(value)
    return ConfigError(f"invalid config {NAMESPACE}:{key} = {shown}: {fix}")


def _decode(key: str, value: Any) -> Any:
    """Pulumi hands structured config to the program as JSON text; YAML callers pass objects."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise _fail(key, value, f"not valid JSON ({err.msg})") from None
    return value


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _fail(key, value, "use true or false")


def _optional_id(key: str, value: Any, pattern: re.Pattern[str], example: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise _fail(key, value, f"expected an id like {example}, or leave it unset")
    return value


def _services(value: Any) -> tuple[ServiceConfig, ...]:
    fix = "set a list like [{name: service-a}, {name: service-b, versioning: true}]"
    if value is None:
        raise _fail("services", None, f"required; {fix}")
    value = _decode("services", value)
    if not isinstance(value, list) or not value:
        raise _fail("services", value, f"must be a non-empty list; {fix}")
    services: list[ServiceConfig] = []
    seen: set[str] = set()
    for index, entry in enumerate(value):
        key = f"services[{index}]"
        if not isinstance(entry, dict) or "name" not in entry:
            raise _fail(key, entry, "each service needs a name, e.g. {name: service-a}")
        unknown = sorted(set(entry) - SERVICE_KEYS)
        if unknown:
            raise _fail(key, entry, f"unknown field(s) {unknown}; allowed: name, versioning")
        name = entry["name"]
        if not isinstance(name, str) or not SERVICE_NAME.match(name):
            raise _fail(
                f"{key}.name",
                name,
                "use lowercase letters, digits and hyphens, starting with a letter, "
                "at most 32 characters (e.g. service-a)",
            )
        if name.startswith(RESERVED_BUCKET_PREFIXES):
            raise _fail(
                f"{key}.name",
                name,
                "S3 reserves bucket names starting xn--, sthree- or amzn-s3-demo-",
            )
        if name in seen:
            raise _fail(f"{key}.name", name, "service names must be unique")
        seen.add(name)
        versioning = _bool(f"{key}.versioning", entry.get("versioning") or False)
        services.append(ServiceConfig(name=name, versioning=versioning))
    return tuple(services)


def _principals(value: Any) -> tuple[str, ...]:
    value = _decode("trustedPrincipals", value)
    if value is None or value == "":
        return ()
    if not isinstance(value, list):
        raise _fail("trustedPrincipals", value, "must be a list of IAM role or user ARNs")
    for index, principal in enumerate(value):
        key = f"trustedPrincipals[{index}]"
        if principal == "*":
            raise _fail(key, principal, "a wildcard would let anyone assume the host role")
        if isinstance(principal, str) and principal.endswith(":root"):
            raise _fail(key, principal, "an account root trusts every identity in it; name one")
        if not isinstance(principal, str) or not PRINCIPAL_ARN.match(principal):
            raise _fail(
                key, principal, "expected an ARN like arn:aws:iam::123456789012:role/operator"
            )
    return tuple(value)


def parse_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the raw config values (keys without the namespace) into a StackConfig."""
    services = _services(raw.get("services"))
    topology_value = raw.get("topology") or Topology.SHARED.value
    try:
        topology = Topology(topology_value)
    except ValueError:
        raise _fail("topology", topology_value, "use shared or dedicated") from None
    instance_type = raw.get("instanceType") or DEFAULT_INSTANCE_TYPE
    if not isinstance(instance_type, str) or not INSTANCE_TYPE.match(instance_type):
        raise _fail("instanceType", instance_type, "expected an EC2 type like t3.micro")
    principals = _principals(raw.get("trustedPrincipals"))
    if principals and topology is Topology.DEDICATED:
        raise _fail(
            "trustedPrincipals", list(principals), "only the shared topology has a host role"
        )
    return StackConfig(
        services=services,
        topology=topology,
        instance_type=instance_type,
        ami_id=_optional_id("amiId", raw.get("amiId"), AMI_ID, "ami-0123456789abcdef0"),
        subnet_id=_optional_id(
            "subnetId", raw.get("subnetId"), SUBNET_ID, "subnet-0123456789abcdef0"
        ),
        trusted_principals=principals,
        force_destroy=_bool("forceDestroy", raw.get("forceDestroy") or False),
    )


KEYS = (
    "services",
    "topology",
    "instanceType",
    "amiId",
    "subnetId",
    "trustedPrincipals",
    "forceDestroy",
)


def load_config() -> StackConfig:
    """Read this project's keys from the running stack's config and validate them."""
    config = pulumi.Config(NAMESPACE)
    return parse_config({key: config.get(key) for key in KEYS})

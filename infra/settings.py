"""The stack's settings as validated values: what `validation` produces and `quotas` sizes.

Types and defaults only, with no rules: `validation` (the rules and their messages) and
`quotas` (AWS's size limits) both build on them, and neither needs the other's module to
describe a stack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .partition import Partition

NAMESPACE = "ec2-assume-role"

MAX_SERVICES = 300
"""The largest stack supported; README "Supported sizes" gives the reasons."""
DEFAULT_INSTANCE_TYPE = "t3.micro"
DEFAULT_HOP_LIMIT = 2


class Encryption(StrEnum):
    """How a service's bucket encrypts its objects at rest."""

    S3 = "s3"
    """SSE-S3, S3's own keys (the default): no KMS key, no KMS cost."""
    KMS = "kms"
    """SSE-KMS with a customer-managed key: one the stack creates per service, or `kmsKeyArn`."""


class Topology(StrEnum):
    """Where the services run: one shared dev host, or one instance each."""

    SHARED = "shared"
    """Development: one host whose role assumes every service role."""
    DEDICATED = "dedicated"
    """Production: one instance per service, carrying that service's role."""


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    """Lowercase letters, digits and hyphens; starts with a letter; at most 32 characters."""
    versioning: bool = False
    """Turn on S3 versioning for this service's bucket."""
    encryption: Encryption = Encryption.S3
    """SSE-S3 (the default) or SSE-KMS with a customer-managed key."""
    kms_key_arn: str | None = None
    """SSE-KMS: bring this key instead of the one the stack would create."""


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
    host_instance_id: str | None = None
    """Shared topology: adopt this existing instance as the dev host instead of creating one."""
    metadata_hop_limit: int = DEFAULT_HOP_LIMIT
    """IMDS hop limit of the instances the stack creates: 2 lets containers reach metadata."""
    region: str = "us-east-1"
    partition: Partition = Partition.AWS


# Every setting, by its stack config key; Pulumi.yaml declares each but `services`.
KEYS = (
    "services",
    "topology",
    "instanceType",
    "amiId",
    "subnetId",
    "trustedPrincipals",
    "forceDestroy",
    "hostInstanceId",
    "metadataHopLimit",
)


@dataclass(frozen=True)
class Subject:
    """Whose settings are validated, and how each line names one of them."""

    prefix: str
    """Each line's start, before the key: `invalid config ec2-assume-role:`."""
    keys: Mapping[str, str] = field(default_factory=lambda: {key: key for key in KEYS})
    """Each setting as this subject spells it, to its stack config key."""
    text: bool = True
    """The stack config's top-level values arrive as text (JSON, "true", "2"); args are typed."""

    def shown(self, key: str) -> str:
        """A stack config key (with any index or field) as this subject spells it."""
        top = re.split(r"[\[.]", key, maxsplit=1)[0]
        spelled = {config: own for own, config in self.keys.items()}
        return spelled.get(top, top) + key[len(top) :]


CONFIG = Subject(f"invalid config {NAMESPACE}:")
"""The stack config: `invalid config ec2-assume-role:<key> = <value>: <fix>`."""

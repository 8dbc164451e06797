"""AWS's size limits, checked before any resource is registered.

Every document the stack generates is built here from the config, with values of the length
AWS will give them (a 12-digit account, Pulumi's 8-character auto-name suffix, the region's
partition), and measured the way AWS measures it. A stack over a limit fails with one line that
names the key, the count and the limit, instead of failing halfway through `pulumi up`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import policies
from .aws_config import render_aws_config, render_install_script
from .partition import ec2_principal
from .settings import CONFIG, Encryption, StackConfig, Subject, Topology

ACCOUNT = "123456789012"  # every account id has 12 digits
TRUST_POLICY_LIMIT = 2_048
INLINE_POLICIES_LIMIT = 10_240
"""Per role, all inline policies together."""
MANAGED_POLICY_LIMIT = 6_144
BUCKET_POLICY_LIMIT = 20 * 1024
KEY_POLICY_LIMIT = 32 * 1024
USER_DATA_LIMIT = 16_384
SSM_DOCUMENT_LIMIT = 64 * 1024
"""A Run Command document plus the parameters sent with it."""
RUN_SHELL_SCRIPT_DOCUMENT = 4 * 1024
"""Room kept for the AWS-RunShellScript document itself (about 1.5 KB today)."""


def iam_size(document: dict[str, Any]) -> int:
    """IAM's count: characters of the JSON, white space excluded."""
    return len(re.sub(r"\s", "", json.dumps(document)))


def byte_size(text: str) -> int:
    return len(text.encode())


def _suffix(name: str) -> str:
    """A stand-in for Pulumi's random suffix, as incompressible as the real one."""
    return "-" + hashlib.sha256(name.encode()).hexdigest()[:7]


@dataclass(frozen=True)
class Sized:
    """A rendered document, what it is, its size and its limit."""

    key: str
    what: str
    size: int
    limit: int
    unit: str = "characters"


def _documents(config: StackConfig, stack: str) -> list[Sized]:
    partition = config.partition.value
    ec2 = ec2_principal(config.partition)
    host_arn = f"arn:{partition}:iam::{ACCOUNT}:role/dev-host-role{_suffix('dev-host-role')}"
    path = policies.service_role_path(stack)
    role_arns = {
        s.name: f"arn:{partition}:iam::{ACCOUNT}:role{path}{s.name}-role{_suffix(s.name)}"
        for s in config.services
    }
    longest = max(config.services, key=lambda s: len(s.name)).name
    bucket_arn = f"arn:{partition}:s3:::{longest}-bucket{_suffix(longest)}"
    shared = config.topology is Topology.SHARED
    deny = policies.deny_parameter_reads()
    # SSE-KMS adds the key's statements; a created key's id and a brought one have one length.
    # The grant is sized as the largest one a service can get (versioned, with its key).
    kms = any(s.encryption is Encryption.KMS for s in config.services)
    key_id = "01234567-89ab-cdef-0123-456789abcdef"
    key_arn = f"arn:{partition}:kms:{config.region}:{ACCOUNT}:key/{key_id}"
    via = policies.s3_via_service(config.region, partition)
    service_inline = iam_size(
        policies.bucket_access_policy(bucket_arn, True, key_arn if kms else None, via)
    )
    documents = [
        Sized(
            "services",
            "a service role's trust policy",
            iam_size(policies.trust_policy(ec2, [host_arn] if shared else [])),
            TRUST_POLICY_LIMIT,
        ),
        Sized(
            "services",
            "a service role's inline policies",
            service_inline + (0 if shared else iam_size(deny)),
            INLINE_POLICIES_LIMIT,
        ),
        Sized(
            "services",
            "a bucket policy",
            byte_size(
                json.dumps(policies.tls_only_bucket_policy(bucket_arn, key_arn if kms else None))
            ),
            BUCKET_POLICY_LIMIT,
            "bytes",
        ),
    ]
    if kms:
        documents.append(
            Sized(
                "services",
                "a service key's policy",
                byte_size(json.dumps(policies.key_policy(f"arn:{partition}:iam::{ACCOUNT}:root"))),
                KEY_POLICY_LIMIT,
                "bytes",
            )
        )
    if shared:
        assume = policies.assume_roles_policy(policies.service_roles_arn(partition, ACCOUNT, stack))
        script = render_install_script(render_aws_config(config.region, role_arns))
        documents += [
            Sized(
                "trustedPrincipals",
                "the host role's trust policy",
                iam_size(policies.trust_policy(ec2, config.trusted_principals)),
                TRUST_POLICY_LIMIT,
            ),
            Sized(
                "services",
                "the host role's inline policies",
                iam_size(assume) + iam_size(deny),
                INLINE_POLICIES_LIMIT,
            ),
            Sized(
                "services",
                "the profiles script the SSM association sends to the host",
                byte_size(script),
                SSM_DOCUMENT_LIMIT - RUN_SHELL_SCRIPT_DOCUMENT,
                "bytes",
            ),
        ]
    return documents


def _count(config: StackConfig, key: str) -> str:
    counts: dict[str, Callable[[], int]] = {
        "services": lambda: len(config.services),
        "trustedPrincipals": lambda: len(config.trusted_principals),
    }
    number = counts[key]()
    noun = "service" if key == "services" else "principal"
    return f"{number} {noun}{'s' if number != 1 else ''}"


def quota_problems(config: StackConfig, stack: str, subject: Subject = CONFIG) -> list[str]:
    """One line per document over its AWS limit, named as `subject` spells the key; empty when
    the stack fits."""
    if not config.services:
        return []
    return [
        f"{subject.prefix}{subject.shown(d.key)} = {_count(config, d.key)}: {d.what} would be "
        f"{d.size:,} {d.unit}; AWS allows {d.limit:,}. Fix: fewer {subject.shown(d.key)}, or "
        "split the stack"
        for d in _documents(config, stack)
        if d.size > d.limit
    ]


def document_sizes(config: StackConfig, stack: str) -> list[Sized]:
    """Every generated document with its size and limit (for tests and the README)."""
    return _documents(config, stack)

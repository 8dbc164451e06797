"""The `Ec2AssumeRole` component's args and output types, their validation, and the args it
hands its children.

The args are the stack config's keys (snake_case here, camelCase in the schema and in other
languages) and meet the same rules, with the same one-line messages (infra/validation.py).
"""

# No `from __future__ import annotations`: the schema analyser reads these annotations live.
import sys
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from . import policies
from .context import AwsContext, configured_region
from .errors import ConfigError
from .hardened_instance import HardenedInstanceArgs
from .host_role import HostRole
from .placement import Placement
from .service_access import ServiceAccess, ServiceAccessArgs
from .settings import Encryption, ServiceConfig, StackConfig, Subject, Topology
from .shared_host import SharedHostArgs
from .validation import validate


class Service(TypedDict):
    """One service: its own bucket and role, and (shared topology) a profile on the host."""

    name: str
    """Lowercase letters, digits and hyphens, starting with a letter, at most 32 characters.
    It names the service's resources and its profile: unique in the stack; not `default` or
    `host`."""
    versioning: NotRequired[bool]
    """Turn on S3 versioning for this service's bucket. Default: false."""
    encryption: NotRequired[str]
    """s3 (the default): SSE-S3. kms: SSE-KMS with a customer-managed key, the stack's own (one
    per service, rotated yearly) unless `kms_key_arn` names one."""
    kms_key_arn: NotRequired[str]
    """encryption kms: bring your own symmetric key (its ARN, in the stack's region). The stack
    grants the service role on it and leaves the key policy alone (docs/kms.md)."""


class Ec2AssumeRoleArgs(TypedDict):
    """The services and where they run; the stack config's keys, with the same rules."""

    services: list[Service]
    """The services, 1 to 300, each with its own bucket and role."""
    topology: NotRequired[Topology]
    """shared (the default): one dev host assumes every service role; dedicated: one instance
    per service, carrying that service's role."""
    instance_type: NotRequired[str]
    """EC2 instance type of every instance. Default: t3.micro; Graviton types get arm64."""
    ami_id: NotRequired[str]
    """AMI id; unset: the latest Amazon Linux 2023, which does not replace a running host."""
    subnet_id: NotRequired[str]
    """Subnet of the instances; unset: the default subnet of the default VPC."""
    trusted_principals: NotRequired[list[str]]
    """Shared topology: IAM role or user ARNs that may also assume the host role (an operator
    running the check). Never `*` or an account root; same partition as the region."""
    force_destroy: NotRequired[bool]
    """Only when true may `pulumi destroy` delete buckets that still hold objects."""
    host_instance_id: NotRequired[str]
    """Shared topology: adopt this instance (running the SSM agent) as the dev host instead of
    creating one; nothing on it is destroyed."""
    metadata_hop_limit: NotRequired[int]
    """IMDS hop limit, 1 to 64, of the instances created: 2 (the default) lets containers on
    them reach instance metadata; 1 keeps them out."""


class ServiceEndpoints(TypedDict):
    """What a service uses: its bucket and the role that reaches it."""

    bucket_name: str
    """The service's bucket."""
    bucket_arn: str
    """The bucket's ARN."""
    role_arn: str
    """The service role: the host's `[profile <service>]` assumes it."""
    kms_key_arn: NotRequired[str]
    """SSE-KMS: the key the bucket encrypts with (absent for SSE-S3)."""


def schema_name(name: str) -> str:
    """A Python name as the schema (and every other language) spells it: `host_role_arn` is
    `hostRoleArn`, as the analyser names it."""
    first, *rest = name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


def _spelling() -> dict[str, str]:
    """Each arg as the caller spells it, to its stack config key (the names `validate` uses).

    Served to another language (`pulumi package add`), the args were given under their schema
    names, which are the config keys (camelCase); in Python, under the TypedDict's names.
    """
    host = sys.modules.get("pulumi.provider.experimental.host")
    served = bool(getattr(host, "is_hosting", False))
    camel = {name: schema_name(name) for name in Ec2AssumeRoleArgs.__annotations__}
    return {key: key for key in camel.values()} if served else camel


def validate_args(name: str, args: Ec2AssumeRoleArgs) -> StackConfig:
    """The stack config's rules applied to the args: one ConfigError, one line per problem."""
    subject = Subject(f'invalid Ec2AssumeRole "{name}" arg ', _spelling(), text=False)
    raw: dict[str, Any] = dict(args)
    if isinstance(raw.get("services"), list):
        # A service's fields are validated under their config names (`kmsKeyArn`).
        raw["services"] = [
            {schema_name(k): v for k, v in s.items()} if isinstance(s, dict) else s
            for s in raw["services"]
        ]
    # Nothing is registered until every arg is proven valid, so each must be known now.
    unknown = [
        f"{subject.prefix}{key} = an Output: use a plain value; the component validates its "
        "args before it registers anything"
        for key, value in raw.items()
        if _holds_output(value)
    ]
    if unknown:
        raise ConfigError("\n".join(unknown))
    config = validate(raw, subject=subject, region=configured_region(), stack=pulumi.get_stack())
    _keys_exist(config, subject)
    return config


def _keys_exist(config: StackConfig, subject: Subject) -> None:
    """Each brought key is of the stack's account, exists, is enabled and encrypts
    symmetrically, before anything is registered (one invoke per key and one for the account;
    in `pulumi preview` too)."""
    problems = []
    account = None
    for index, service in enumerate(config.services):
        arn = service.kms_key_arn
        if arn is None:
            continue
        key = f"{subject.prefix}services[{index}].kmsKeyArn = {arn!r}"
        account = account or aws.get_caller_identity().account_id
        if arn.split(":")[4] != account:
            # KMS would serve it, but the reach proof could not read its policy or grants.
            problems.append(
                f"{key}: the key is in account {arn.split(':')[4]}, the stack deploys to "
                f"{account}; bring a key of the stack's own account"
            )
            continue
        try:
            found = aws.kms.get_key(key_id=arn)
        except Exception as err:  # noqa: BLE001 - the provider's error, any class: one line
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            problems.append(f"{key}: no such key that this stack can describe ({reason})")
            continue
        if found.key_state != "Enabled":
            problems.append(f"{key}: the key is {found.key_state}; S3 needs an enabled key")
        elif found.key_spec != "SYMMETRIC_DEFAULT" or found.key_usage != "ENCRYPT_DECRYPT":
            problems.append(
                f"{key}: a {found.key_spec} key for {found.key_usage}; S3 encrypts only with a "
                "symmetric ENCRYPT_DECRYPT key"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def _holds_output(value: Any) -> bool:
    if isinstance(value, pulumi.Output):
        return True
    if isinstance(value, dict):
        return any(_holds_output(v) for v in value.values())
    return isinstance(value, list | tuple) and any(_holds_output(v) for v in value)


# The args the component hands its children.


def service_args(
    service: ServiceConfig, config: StackConfig, context: AwsContext, host_role: HostRole | None
) -> ServiceAccessArgs:
    """A service's bucket and role: trusted by the host role (shared) or by EC2 alone."""
    args: ServiceAccessArgs = {
        "versioning": service.versioning,
        "encryption": service.encryption.value,
        "force_destroy": config.force_destroy,
        "ec2_principal": context.ec2_principal,
        "role_path": policies.service_role_path(context.stack),
        # Dedicated: the role is also its instance's, which declares the role's policies.
        "declare_policies": host_role is not None,
    }
    if service.kms_key_arn is not None:
        args["kms_key_arn"] = service.kms_key_arn
    if service.encryption is Encryption.KMS:
        args["account_id"], args["region"] = context.account, context.region
        args["partition"] = context.partition
    if host_role is not None:
        args["assumed_by"] = host_role.role_arn
    return args


def instance_args(
    access: ServiceAccess,
    placement: Placement,
    ssm_core: pulumi.Output[str],
    config: StackConfig,
) -> HardenedInstanceArgs:
    """A dedicated instance carrying its service's role, which it declares in full."""
    return {
        "role_name": access.role_name,
        "placement": placement,
        "ssm_core_policy_arn": ssm_core,
        "metadata_hop_limit": config.metadata_hop_limit,
        "role_policy_names": [access.bucket_policy_name],
    }


def endpoints_of(access: ServiceAccess) -> dict[str, pulumi.Output[str]]:
    """A service's entry in the `services` output, under the ServiceEndpoints names."""
    endpoints = {
        "bucket_name": access.bucket_name,
        "bucket_arn": access.bucket_arn,
        "role_arn": access.role_arn,
    }
    if access.kms_key_arn is not None:
        endpoints["kms_key_arn"] = access.kms_key_arn
    return endpoints


def shared_host_args(
    config: StackConfig,
    context: AwsContext,
    host_role: HostRole,
    access: dict[str, ServiceAccess],
    placement: Placement | None,
) -> SharedHostArgs:
    """The dev host's args: what its role may assume, its profiles, and its instance (created
    with `placement`, or the adopted one the config names)."""
    host: SharedHostArgs = {
        "host_role_name": host_role.role_name,
        "service_role_arns": {n: a.role_arn for n, a in access.items()},
        "service_roles_arn": pulumi.Output.all(context.partition, context.account).apply(
            lambda pa: policies.service_roles_arn(pa[0], pa[1], context.stack)
        ),
        "region": context.region,
        "ssm_core_policy_arn": context.partition.apply(policies.ssm_core_policy_arn),
        "metadata_hop_limit": config.metadata_hop_limit,
    }
    if config.host_instance_id is not None:
        host["host_instance_id"] = config.host_instance_id
    elif placement is not None:
        host["placement"] = placement  # without either, SharedHost says what it needs
    return host

"""Stack configuration: read once, validate everything, before any resource is registered.

The rules and their messages live in `validation`, shared with the `Ec2AssumeRole` component's
args; this module reads the running stack's config (both ways Pulumi hands it to a program),
refuses misspelt namespaces, keeps secret values out of the messages, and turns the validated
config into the component's args (`component_args`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pulumi

from .context import configured_region
from .errors import ConfigError
from .settings import CONFIG, NAMESPACE, Encryption, ServiceConfig, StackConfig
from .validation import validate

if TYPE_CHECKING:
    from .ec2_assume_role_args import Ec2AssumeRoleArgs, Service

__all__ = ["component_args", "configured_region", "load_config", "parse_config"]


def parse_config(
    raw: Mapping[str, Any],
    *,
    region: str | None = "us-east-1",
    stack: str = "dev",
    secret: frozenset[str] = frozenset(),
) -> StackConfig:
    """Validate the raw values (keys without the namespace) into a StackConfig.

    Config values arrive as Pulumi hands them to a program (strings, JSON for lists) or as
    already-decoded YAML. Raises one ConfigError listing every problem, one line each, before
    any resource exists. The values of the `secret` keys are named but never shown.
    """
    return validate(raw, subject=CONFIG, region=region, stack=stack, secret=secret)


def component_args(config: StackConfig) -> Ec2AssumeRoleArgs:
    """The validated stack config as the `Ec2AssumeRole` component's args."""
    args: Ec2AssumeRoleArgs = {
        "services": [_service(s) for s in config.services],
        "topology": config.topology,
        "instance_type": config.instance_type,
        "trusted_principals": list(config.trusted_principals),
        "force_destroy": config.force_destroy,
        "metadata_hop_limit": config.metadata_hop_limit,
    }
    # Unset stays unset: the component then looks the AMI and subnet up itself.
    if config.ami_id is not None:
        args["ami_id"] = config.ami_id
    if config.subnet_id is not None:
        args["subnet_id"] = config.subnet_id
    if config.host_instance_id is not None:
        args["host_instance_id"] = config.host_instance_id
    return args


def _service(service: ServiceConfig) -> Service:
    entry: Service = {"name": service.name, "versioning": service.versioning}
    if service.encryption is not Encryption.S3:
        entry["encryption"] = service.encryption.value
    if service.kms_key_arn is not None:
        entry["kms_key_arn"] = service.kms_key_arn
    return entry


def _stack_keys(
    config: Mapping[str, Any], environment: Mapping[str, Any]
) -> tuple[dict[str, Any], Callable[[str], bool]]:
    """This namespace's keys, whether set through the config context or PULUMI_CONFIG."""
    merged = {**environment, **config}
    prefix = f"{NAMESPACE}:"
    ours = {key[len(prefix) :]: value for key, value in merged.items() if key.startswith(prefix)}

    def near_miss(key: str) -> bool:
        namespace = key.split(":", 1)[0]
        return namespace != NAMESPACE and bool(
            difflib.get_close_matches(namespace, [NAMESPACE], n=1, cutoff=0.8)
        )

    return ours, near_miss


def load_config() -> StackConfig:
    """Read every key of this namespace from the running stack's config and validate them.

    Under `pulumi up` the language host passes the stack's config in PULUMI_CONFIG; under the
    mock runtime (tests, rehearsal) it is set in the config context. Both are read, so an
    unknown or misspelt key is refused in either case.
    """
    from pulumi.runtime import config as runtime_config

    everything = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw, near_miss = _stack_keys(runtime_config.CONFIG.get(), runtime_config.get_config_env())
    misspelt = [key for key in sorted(everything) if near_miss(key)]
    # A value set with --secret arrives decrypted; an error about it must not print it.
    prefix = f"{NAMESPACE}:"
    secret = frozenset(
        key[len(prefix) :]
        for key in everything
        if key.startswith(prefix)
        and (
            runtime_config.is_config_secret(key)
            or key in runtime_config.get_config_secret_keys_env()
        )
    )
    try:
        parsed = parse_config(
            raw, region=configured_region(), stack=pulumi.get_stack(), secret=secret
        )
    except ConfigError as err:
        if not misspelt:
            raise
        raise ConfigError("\n".join([str(err), *_namespace_lines(misspelt)])) from None
    if misspelt:
        raise ConfigError("\n".join(_namespace_lines(misspelt)))
    return parsed


def _namespace_lines(keys: list[str]) -> list[str]:
    return [
        f"invalid config {key}: unknown namespace; did you mean {NAMESPACE}:{key.split(':', 1)[1]}?"
        for key in keys
    ]

"""The rules a stack's settings meet, whether they come from its config or from component args.

`validate` is a pure function over the raw values, so the stack config (infra/config.py), the
`Ec2AssumeRole` component's args (infra/ec2_assume_role.py), the rehearsal and the tests share
one set of rules and one set of messages. Every problem is collected, so a user sees all of
them at once, one line each; then `quotas` proves that the stack fits AWS's size limits. A
`Subject` says how a line names what is wrong: `invalid config ec2-assume-role:services[0].name`
for the stack config, `invalid Ec2AssumeRole "dev" arg services[0].name` for the component.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigProblems
from .partition import Partition, partition_of_region
from .quotas import quota_problems
from .settings import (
    CONFIG,
    DEFAULT_HOP_LIMIT,
    DEFAULT_INSTANCE_TYPE,
    MAX_SERVICES,
    NAMESPACE,
    Encryption,
    ServiceConfig,
    StackConfig,
    Subject,
    Topology,
)

SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
# family[generation][attributes].size, e.g. t3.micro, c7gn.16xlarge, u-6tb1.metal.
INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.[a-z0-9]+")
AMI_ID = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
SUBNET_ID = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})")
INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
# IAM's own rules, in ASCII (Python's \d and \w would admit other scripts' digits and
# letters, which IAM refuses when it creates the trust policy): a name of 1 to 64 characters
# of [A-Za-z0-9+=,.@_-], an optional path of non-empty segments (at most 512 characters with
# its slashes), or an assumed-role session whose name has 2 to 64 characters.
IAM_NAME = r"[A-Za-z0-9+=,.@_-]"
PRINCIPAL_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-cn|-us-gov|-iso[a-z-]*)?):"
    rf"(?:iam::[0-9]{{12}}:(?:role|user)(?P<path>(?:/[!-.0-~]+)*/){IAM_NAME}{{1,64}}"
    rf"|sts::[0-9]{{12}}:assumed-role/{IAM_NAME}{{1,64}}/{IAM_NAME}{{2,64}})"
)
MAX_IAM_PATH = 512

# The service name starts its bucket's name, and S3 reserves these prefixes.
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
# Each service becomes `[profile <name>]` in the host's AWS config file, next to `[default]`,
# which every process without AWS_PROFILE uses: a service named so would take it over.
RESERVED_SERVICE_NAMES = {
    "default": "it would become [profile default], the profile of every process on the host "
    "that sets no AWS_PROFILE, handing them this service's bucket",
    # The check names the host role's own identity `host` (its --via-ssm report, the
    # rehearsal's matrix row): a service of that name would be taken for the host role.
    "host": "the check reports the host role's own identity as `host`; a service of that name "
    "would be taken for it",
}
SERVICE_KEYS = ("name", "versioning", "encryption", "kmsKeyArn")
# A symmetric KMS key by its ARN (a UUID key id, or `mrk-` and 32 hex digits for a multi-Region
# key): S3 default encryption, bucket policies and IAM grants all need the key ARN itself.
KMS_KEY_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-cn|-us-gov)?):kms:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"key/(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):  # args may hold any Python object
        return repr(value)


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return f"the known ones are {', '.join(choices)}"


class _Reader:
    """Collects every problem; each becomes one line of the final ConfigError."""

    def __init__(self, subject: Subject, secret: frozenset[str] = frozenset()) -> None:
        self.subject = subject
        self.problems = ConfigProblems(NAMESPACE)
        self.secret = secret
        """Keys set with `pulumi config set --secret`: their values are never echoed."""

    def fail(self, key: str, value: Any, fix: str) -> None:
        top = re.split(r"[\[.]", key, maxsplit=1)[0]
        shown = "[secret]" if top in self.secret else _shown(value)
        self.problems.add(f"{self.subject.prefix}{self.subject.shown(key)} = {shown}: {fix}")

    def decode(self, key: str, value: Any) -> Any:
        """Pulumi hands structured config to the program as JSON text; YAML passes objects."""
        if self.subject.text and isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                return json.loads(value)
            except json.JSONDecodeError as err:
                self.fail(key, value, f"not valid JSON ({err.msg})")
                return None
        return value

    def boolean(self, key: str, value: Any, default: bool, *, text: bool | None = None) -> bool:
        """true/false only: no 0, "", [] or "yes". Top-level config values arrive as text."""
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if (self.subject.text if text is None else text) and value in ("true", "false"):
            return bool(value == "true")
        self.fail(key, value, "use true or false")
        return default

    def pattern(
        self, key: str, value: Any, pattern: re.Pattern[str], fix: str, *, optional: bool = True
    ) -> str | None:
        if optional and (value is None or value == ""):
            return None
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.fail(key, value, fix)
            return None
        return value


def _service_entry(
    reader: _Reader, index: int, entry: Any, region: str, partition: Partition
) -> ServiceConfig | None:
    key = f"services[{index}]"
    if not isinstance(entry, Mapping) or "name" not in entry:
        reader.fail(key, entry, "each service needs a name, e.g. {name: service-a}")
        return None
    for name_of_field in sorted(set(entry) - set(SERVICE_KEYS)):
        hint = _suggest(name_of_field, SERVICE_KEYS)
        reader.fail(f"{key}.{name_of_field}", entry[name_of_field], f"unknown field; {hint}")
    name = entry["name"]
    if not isinstance(name, str) or not SERVICE_NAME.fullmatch(name):
        reader.fail(
            f"{key}.name",
            name,
            "use lowercase letters, digits and hyphens, starting with a letter, "
            "at most 32 characters (e.g. service-a)",
        )
        return None
    if name.startswith(RESERVED_BUCKET_PREFIXES):
        reader.fail(
            f"{key}.name", name, "S3 reserves bucket names starting xn--, sthree- or amzn-s3-demo-"
        )
    if name in RESERVED_SERVICE_NAMES:
        reader.fail(f"{key}.name", name, f"reserved: {RESERVED_SERVICE_NAMES[name]}")
    # Structured values keep their JSON types: a quoted "true" is text, not a boolean, and an
    # empty `versioning:` (null) says nothing either way, so it is refused rather than guessed.
    versioning_value = entry.get("versioning", False)
    if versioning_value is None:
        reader.fail(f"{key}.versioning", None, "use true or false, or leave the field out")
        versioning_value = False
    versioning = reader.boolean(f"{key}.versioning", versioning_value, False, text=False)
    encryption, key_arn = _encryption(reader, key, entry, region, partition)
    return ServiceConfig(
        name=name, versioning=versioning, encryption=encryption, kms_key_arn=key_arn
    )


def _encryption(
    reader: _Reader, key: str, entry: Mapping[str, Any], region: str, partition: Partition
) -> tuple[Encryption, str | None]:
    """`encryption` (s3 or kms) and `kmsKeyArn`, which only SSE-KMS can use, and only with a
    key of the stack's own region (S3 encrypts with no other), and so partition."""
    value = entry.get("encryption", Encryption.S3.value)
    encryption = Encryption.S3
    if value in tuple(Encryption):
        encryption = Encryption(value)
    else:
        reader.fail(f"{key}.encryption", value, "use s3 (SSE-S3, the default) or kms (SSE-KMS)")
    arn = entry.get("kmsKeyArn")
    if arn is None:
        return encryption, None
    if encryption is not Encryption.KMS:
        reader.fail(f"{key}.kmsKeyArn", arn, "a key is only used with encryption: kms; set both")
        return encryption, None
    fix = "expected a key ARN like arn:aws:kms:us-east-1:123456789012:key/<key id>"
    match = KMS_KEY_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if match is None:
        if isinstance(arn, str) and "alias/" in arn:
            fix = "name the key (key/<key id>), not an alias: grants and bucket policies need it"
        reader.fail(f"{key}.kmsKeyArn", arn, fix)
        return encryption, None
    if match["partition"] != partition.value:
        reader.fail(
            f"{key}.kmsKeyArn",
            arn,
            f"this stack's region is in partition {partition.value}; the key is in "
            f"{match['partition']}",
        )
    elif match["region"] != region:
        reader.fail(
            f"{key}.kmsKeyArn",
            arn,
            f"the key is in {match['region']}; S3 needs a key of {region}, the stack's",
        )
    return encryption, arn


def _services(
    reader: _Reader, value: Any, region: str, partition: Partition
) -> tuple[ServiceConfig, ...]:
    fix = "set a list like [{name: service-a}, {name: service-b, versioning: true}]"
    if value is None:
        reader.fail("services", None, f"required; {fix}")
        return ()
    value = reader.decode("services", value)
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not value:
        reader.fail("services", value, f"must be a non-empty list; {fix}")
        return ()
    if len(value) > MAX_SERVICES:
        reader.fail(
            "services",
            len(value),
            f"{len(value)} services; at most {MAX_SERVICES} are supported (see the README's "
            "supported sizes); split the services over several stacks",
        )
    services: list[ServiceConfig] = []
    seen: set[str] = set()
    for index, entry in enumerate(value):
        service = _service_entry(reader, index, entry, region, partition)
        if service is None:
            continue
        if service.name in seen:
            reader.fail(f"services[{index}].name", service.name, "service names must be unique")
        seen.add(service.name)
        services.append(service)
    return tuple(services)


def _principals(reader: _Reader, value: Any, partition: Partition) -> tuple[str, ...]:
    value = reader.decode("trustedPrincipals", value)
    if value is None or value == "":
        return ()
    if not isinstance(value, list | tuple):
        reader.fail("trustedPrincipals", value, "must be a list of IAM role or user ARNs")
        return ()
    good: list[str] = []
    for index, principal in enumerate(value):
        key = f"trustedPrincipals[{index}]"
        match = PRINCIPAL_ARN.fullmatch(principal) if isinstance(principal, str) else None
        if principal in good:
            reader.fail(key, principal, "listed twice; name each principal once")
        elif principal == "*":
            reader.fail(key, principal, "a wildcard would let anyone assume the host role")
        elif isinstance(principal, str) and principal.endswith(":root"):
            reader.fail(key, principal, "an account root trusts every identity in it; name one")
        elif match is None:
            example = f"arn:{partition.value}:iam::123456789012:role/operator"
            reader.fail(key, principal, f"expected an ARN like {example}")
        elif len(match["path"] or "") > MAX_IAM_PATH:
            reader.fail(key, principal, f"IAM paths have at most {MAX_IAM_PATH} characters")
        elif match["partition"] != partition.value:
            reader.fail(
                key,
                principal,
                f"this stack's region is in partition {partition.value}; IAM cannot trust a "
                f"principal of partition {match['partition']}",
            )
        else:
            good.append(principal)
    return tuple(good)


def _hop_limit(reader: _Reader, value: Any) -> int:
    if value is None:
        return DEFAULT_HOP_LIMIT
    number = value if type(value) is int else None
    if reader.subject.text and isinstance(value, str) and re.fullmatch(r"[1-9][0-9]?", value):
        number = int(value)
    if number is None or not 1 <= number <= 64:
        reader.fail(
            "metadataHopLimit",
            value,
            "use a whole number from 1 to 64: 2 lets containers reach instance metadata, "
            "1 keeps them out",
        )
        return DEFAULT_HOP_LIMIT
    return number


def _known_keys(reader: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The values by stack config key; a key the subject does not know is one line."""
    spelled = tuple(reader.subject.keys)
    for key in sorted(set(raw) - set(spelled)):
        reader.fail(key, raw[key], f"unknown key; {_suggest(key, spelled)}")
    return {reader.subject.keys[key]: value for key, value in raw.items() if key in spelled}


def _region(reader: _Reader, region: str | None) -> tuple[str, Partition]:
    """The region always comes from the stack's `aws:region` (or AWS_REGION), never an arg."""
    if region is None:
        reader.problems.add(
            "invalid config aws:region: not set; set it with `pulumi config set aws:region "
            "us-east-1` (or AWS_REGION)"
        )
        return "us-east-1", Partition.AWS
    found = partition_of_region(region)
    if isinstance(found, Partition):
        return region, found
    reader.problems.add(f"invalid config aws:region = {region!r}: {found}")
    return region, Partition.AWS


def validate(
    raw: Mapping[str, Any],
    *,
    subject: Subject = CONFIG,
    region: str | None = "us-east-1",
    stack: str = "dev",
    secret: frozenset[str] = frozenset(),
) -> StackConfig:
    """Validate the raw values (keys as the subject spells them) into a StackConfig.

    Raises one ConfigError listing every problem, one line each, before any resource exists.
    The values of the `secret` keys are named but never shown.
    """
    reader = _Reader(subject, secret)
    values = _known_keys(reader, raw)
    region, partition = _region(reader, region)
    services = _services(reader, values.get("services"), region, partition)
    topology_value = values.get("topology")
    topology = Topology.SHARED
    if topology_value is not None:
        if topology_value in tuple(Topology):
            topology = Topology(topology_value)
        else:
            reader.fail("topology", topology_value, "use shared or dedicated")
    instance_type = reader.pattern(
        "instanceType",
        values.get("instanceType", DEFAULT_INSTANCE_TYPE),
        INSTANCE_TYPE,
        "expected an EC2 type like t3.micro",
        optional=False,
    )
    principals = _principals(reader, values.get("trustedPrincipals"), partition)
    host_instance_id = reader.pattern(
        "hostInstanceId",
        values.get("hostInstanceId"),
        INSTANCE_ID,
        "expected an instance id like i-0123456789abcdef0, or leave it unset",
    )
    ami_id = reader.pattern(
        "amiId", values.get("amiId"), AMI_ID, "expected an id like ami-0123456789abcdef0, or unset"
    )
    subnet_id = reader.pattern(
        "subnetId",
        values.get("subnetId"),
        SUBNET_ID,
        "expected an id like subnet-0123456789abcdef0, or leave it unset",
    )
    _topology_rules(reader, topology, principals, host_instance_id, ami_id, subnet_id)
    config = StackConfig(
        services=services,
        topology=topology,
        instance_type=instance_type or DEFAULT_INSTANCE_TYPE,
        ami_id=ami_id,
        subnet_id=subnet_id,
        trusted_principals=principals,
        force_destroy=reader.boolean("forceDestroy", values.get("forceDestroy"), False),
        host_instance_id=host_instance_id,
        metadata_hop_limit=_hop_limit(reader, values.get("metadataHopLimit")),
        region=region,
        partition=partition,
    )
    if not reader.problems:
        for line in quota_problems(config, stack, subject):
            reader.problems.add(line)
    reader.problems.raise_if_any()
    return config


def _topology_rules(
    reader: _Reader,
    topology: Topology,
    principals: tuple[str, ...],
    host_instance_id: str | None,
    ami_id: str | None,
    subnet_id: str | None,
) -> None:
    if topology is not Topology.DEDICATED:
        if host_instance_id and (ami_id or subnet_id):
            which = "amiId" if ami_id else "subnetId"
            reader.fail(
                which,
                ami_id or subnet_id,
                f"an adopted host ({reader.subject.shown('hostInstanceId')}) keeps its own AMI "
                "and subnet; unset it",
            )
        return
    if principals:
        reader.fail("trustedPrincipals", list(principals), "only the shared topology has a host")
    if host_instance_id:
        reader.fail("hostInstanceId", host_instance_id, "only the shared topology has a host")

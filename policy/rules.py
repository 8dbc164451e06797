"""The policy pack's rules, as pure functions over what the Pulumi engine hands a policy.

A resource rule takes a type token and the resource's properties in the provider's wire format
(camelCase, e.g. `metadataOptions.httpTokens`) and returns its violations, each a message that
says what to change. A stack rule takes every resource of the stack and returns (urn, message)
pairs. Nothing here imports pulumi_policy: the tests call these functions directly, and
adapters.py wraps them as CrossGuard policies.

In `pulumi preview`, a property computed from a resource that does not exist yet is unknown; the
engine's proxy raises when a rule reads it, and CrossGuard reports that the policy could not run
in preview. `pulumi up` runs every policy again once those values are known.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"

PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
# Identity policies whose whole document is the `policy` property.
POLICY_DOCUMENT_TYPES = frozenset({ROLE_POLICY, MANAGED_POLICY, USER_POLICY, GROUP_POLICY})

# Actions an Allow may grant on Resource "*", lowercase (IAM action names ignore case). Keep it
# to actions that can take no other resource and disclose nothing beyond the caller itself:
READ_ONLY_DISCOVERY_ACTIONS = frozenset(
    {
        # Accepts only "*", returns the caller's own account and ARN, and AWS answers it even
        # when no policy allows it: a check or a script may state it without granting anything.
        "sts:getcalleridentity",
    }
)

Props = Mapping[str, Any]
ResourceCheck = Callable[[str, Props], list[str]]


class Dependency(Protocol):
    @property
    def urn(self) -> str: ...


class StackResource(Protocol):
    """What a stack rule reads of a resource; pulumi_policy.PolicyResource has this shape."""

    @property
    def resource_type(self) -> str: ...
    @property
    def urn(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def props(self) -> Props: ...
    @property
    def property_dependencies(self) -> Mapping[str, Sequence[Dependency]]: ...


StackCheck = Callable[[Sequence[StackResource]], list[tuple[str, str]]]


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    check: ResourceCheck


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: StackCheck


# --- reading properties and policy documents --------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    """IAM and the provider accept a scalar or a list in most places; read both as a list."""
    if value is None:
        return []
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def _shown(value: Any) -> str:
    return "not set" if value is None else json.dumps(value)


def _document(value: Any) -> Props | None:
    """A policy document arrives as JSON text (json.dumps) or as an object; None if neither."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, Mapping) else None


def _statements(document: Props) -> Iterator[tuple[str, Props]]:
    """Each statement with a label for messages: its Sid, or its position."""
    for index, statement in enumerate(_as_list(document.get("Statement"))):
        if isinstance(statement, Mapping):
            sid = statement.get("Sid")
            yield (f'statement "{sid}"' if sid else f"statement {index}"), statement


def _not_a_document(where: str) -> str:
    return f"{where} is not a JSON policy document: render it with json.dumps(...)"


def _is_anyone(principal: Any) -> bool:
    """`"*"`, `{"AWS": "*"}` (of any principal type) or a list holding `"*"`."""
    if isinstance(principal, Mapping):
        return any("*" in _as_list(value) for value in principal.values())
    return "*" in _as_list(principal)


def _actions(statement: Props) -> list[str]:
    return [a for a in _as_list(statement.get("Action")) if isinstance(a, str)]


# --- resource rules ---------------------------------------------------------------------------


def _flags_off(props: Props) -> list[str]:
    return [flag for flag in PUBLIC_ACCESS_FLAGS if props.get(flag) is not True]


def public_access_block_settings(resource_type: str, props: Props) -> list[str]:
    """A public access block with any setting off lets a bucket become public that way."""
    if resource_type != PUBLIC_ACCESS_BLOCK:
        return []
    off = _flags_off(props)
    if not off:
        return []
    return [f"set {', '.join(off)} to true: all four public access block settings must be on"]


def _wildcard_grants(where: str, value: Any) -> list[str]:
    if value is None:  # e.g. an inlinePolicies entry that only clears the role's policies
        return []
    document = _document(value)
    if document is None:
        return [_not_a_document(where)]
    found: list[str] = []
    for label, statement in _statements(document):
        if statement.get("Effect") != "Allow":
            continue  # A Deny, such as the TLS-only bucket policy's s3:*, only takes away.
        actions = _actions(statement)
        found += [
            f'{where} {label} allows "{action}": list only the actions needed (e.g. "s3:GetObject")'
            for action in actions
            if action == "*" or action.endswith(":*")
        ]
        if "NotAction" in statement:
            found.append(
                f"{where} {label} allows every action but its NotAction: "
                "list the allowed actions under Action instead"
            )
        discovery_only = bool(actions) and all(
            a.lower() in READ_ONLY_DISCOVERY_ACTIONS for a in actions
        )
        if "*" in _as_list(statement.get("Resource")) and not discovery_only:
            found.append(
                f'{where} {label} allows {", ".join(actions) or "its actions"} on Resource "*": '
                "name the resource ARNs instead (e.g. the bucket ARN and bucket/*)"
            )
        if "NotResource" in statement:
            found.append(
                f"{where} {label} allows every resource but its NotResource: "
                "name the resource ARNs under Resource instead"
            )
    return found


def iam_no_wildcard_allow(resource_type: str, props: Props) -> list[str]:
    """Least privilege: an Allow names its actions and resources, with no `*` or `service:*`."""
    if resource_type in POLICY_DOCUMENT_TYPES:
        return _wildcard_grants("policy", props.get("policy"))
    if resource_type != ROLE:
        return []
    found: list[str] = []
    for index, inline in enumerate(_as_list(props.get("inlinePolicies"))):
        if isinstance(inline, Mapping):
            label = inline.get("name") or index
            found += _wildcard_grants(f"inlinePolicies[{label}].policy", inline.get("policy"))
    return found


def trust_no_wildcard_principal(resource_type: str, props: Props) -> list[str]:
    """A trust policy that admits `*` lets any AWS account's identities assume the role."""
    if resource_type != ROLE or props.get("assumeRolePolicy") is None:
        return []
    document = _document(props["assumeRolePolicy"])
    if document is None:
        return [_not_a_document("assumeRolePolicy")]
    found: list[str] = []
    for label, statement in _statements(document):
        if statement.get("Effect") != "Allow":
            continue
        if _is_anyone(statement.get("Principal")):
            found.append(
                f'assumeRolePolicy {label} lets any principal ("*") assume the role: '
                "name the trusted role, user or service principal instead"
            )
        if "NotPrincipal" in statement:
            found.append(
                f"assumeRolePolicy {label} trusts everyone but its NotPrincipal: "
                "name the trusted principals under Principal instead"
            )
    return found


def _nested(props: Props, block: str, key: str) -> Any:
    value = props.get(block)
    return value.get(key) if isinstance(value, Mapping) else None


def ec2_require_imdsv2(resource_type: str, props: Props) -> list[str]:
    """IMDSv1 hands the role's credentials to any SSRF that can make a GET to 169.254.169.254."""
    if resource_type != INSTANCE:
        return []
    tokens = _nested(props, "metadataOptions", "httpTokens")
    if tokens == "required":
        return []
    return [
        f"metadataOptions.httpTokens is {_shown(tokens)}: "
        'set metadataOptions.httpTokens to "required" (IMDSv2)'
    ]


def ec2_encrypted_root_volume(resource_type: str, props: Props) -> list[str]:
    """An unencrypted root volume leaks its data through every snapshot and copy of it."""
    if resource_type != INSTANCE:
        return []
    encrypted = _nested(props, "rootBlockDevice", "encrypted")
    if encrypted is True:
        return []
    return [
        f"rootBlockDevice.encrypted is {_shown(encrypted)}: set rootBlockDevice.encrypted to true"
    ]


def _is_world(cidr: Any) -> bool:
    """0.0.0.0/0 and ::/0, however written: any network with a zero-length prefix."""
    if not isinstance(cidr, str):
        return False
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def _open_to_world(where: str, cidrs: list[Any]) -> list[str]:
    return [
        f"{where} admits {cidr}: remove it and reach the host through SSM Session Manager, "
        "or allow only a named source CIDR or security group"
        for cidr in cidrs
        if _is_world(cidr)
    ]


def no_world_ingress(resource_type: str, props: Props) -> list[str]:
    """Nothing in this stack listens to the internet; operators use SSM Session Manager."""
    if resource_type == SECURITY_GROUP:
        found: list[str] = []
        for index, rule in enumerate(_as_list(props.get("ingress"))):
            if isinstance(rule, Mapping):
                cidrs = _as_list(rule.get("cidrBlocks")) + _as_list(rule.get("ipv6CidrBlocks"))
                found += _open_to_world(f"ingress[{index}]", cidrs)
        return found
    if resource_type == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        cidrs = _as_list(props.get("cidrBlocks")) + _as_list(props.get("ipv6CidrBlocks"))
        return _open_to_world("this ingress rule", cidrs)
    if resource_type == INGRESS_RULE:
        cidrs = [props.get("cidrIpv4"), props.get("cidrIpv6")]
        return _open_to_world("this ingress rule", cidrs)
    return []


# --- stack rules ------------------------------------------------------------------------------


def _of_type(resources: Sequence[StackResource], token: str) -> list[StackResource]:
    return [r for r in resources if r.resource_type == token]


def _for_bucket(bucket: StackResource, candidates: list[StackResource]) -> list[StackResource]:
    """The candidates whose `bucket` property is this bucket.

    The engine's property dependencies say so even in a preview, when the bucket's name is not
    known yet; without them (or for a bucket outside this program), compare the values.
    """
    by_dependency = [
        c
        for c in candidates
        if any(d.urn == bucket.urn for d in c.property_dependencies.get("bucket", ()))
    ]
    if by_dependency:
        return by_dependency
    names = {bucket.props.get(key) for key in ("id", "bucket")} - {None}
    return [c for c in candidates if c.props.get("bucket") in names]


def buckets_block_public_access(resources: Sequence[StackResource]) -> list[tuple[str, str]]:
    """Every bucket needs its own public access block with all four settings on."""
    blocks = _of_type(resources, PUBLIC_ACCESS_BLOCK)
    found: list[tuple[str, str]] = []
    for bucket in _of_type(resources, BUCKET):
        mine = _for_bucket(bucket, blocks)
        if not mine:
            found.append(
                (
                    bucket.urn,
                    f"bucket {bucket.name} has no public access block: add an "
                    "aws.s3.BucketPublicAccessBlock for it with "
                    f"{', '.join(PUBLIC_ACCESS_FLAGS)} set to true",
                )
            )
        elif all(_flags_off(block.props) for block in mine):
            off = _flags_off(mine[0].props)
            found.append(
                (
                    bucket.urn,
                    f"bucket {bucket.name}'s public access block {mine[0].name} leaves "
                    f"{', '.join(off)} off: set them to true",
                )
            )
    return found


def _secure_transport_false(condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return False
    test = condition.get("Bool")
    if not isinstance(test, Mapping):
        return False
    values = [v for key, v in test.items() if key.lower() == "aws:securetransport"]
    return any(str(v).lower() == "false" for value in values for v in _as_list(value))


def _denies_plain_http(statement: Props, bucket_arn: Any) -> bool:
    """Deny, to everyone, every S3 action on the bucket and its objects, when not over TLS."""
    if statement.get("Effect") != "Deny" or not _is_anyone(statement.get("Principal")):
        return False
    if not {a.lower() for a in _actions(statement)} & {"*", "s3:*"}:
        return False
    if not _secure_transport_false(statement.get("Condition")):
        return False
    resources = _as_list(statement.get("Resource"))
    if "*" in resources or not isinstance(bucket_arn, str):
        return True
    return {bucket_arn, f"{bucket_arn}/*"} <= set(resources)


def _is_tls_only(document_value: Any, bucket_arn: Any) -> bool:
    document = _document(document_value)
    return document is not None and any(
        _denies_plain_http(statement, bucket_arn) for _, statement in _statements(document)
    )


def buckets_tls_only(resources: Sequence[StackResource]) -> list[tuple[str, str]]:
    """Every bucket needs a bucket policy that denies requests not made over TLS."""
    policies = _of_type(resources, BUCKET_POLICY)
    found: list[tuple[str, str]] = []
    for bucket in _of_type(resources, BUCKET):
        documents = [p.props.get("policy") for p in _for_bucket(bucket, policies)]
        documents.append(bucket.props.get("policy"))  # the deprecated inline bucket policy
        arn = bucket.props.get("arn")
        if not any(_is_tls_only(document, arn) for document in documents if document):
            found.append(
                (
                    bucket.urn,
                    f"bucket {bucket.name} is reachable without TLS: add an aws.s3.BucketPolicy "
                    'for it with a statement that denies "s3:*" to Principal "*" on the bucket '
                    'and bucket/* when {"Bool": {"aws:SecureTransport": "false"}}',
                )
            )
    return found


RESOURCE_RULES: tuple[ResourceRule, ...] = (
    ResourceRule(
        "s3-public-access-block-all-on",
        "A bucket public access block must turn all four settings on.",
        public_access_block_settings,
    ),
    ResourceRule(
        "iam-no-wildcard-allow",
        'IAM policies must not allow "*" or "service:*" actions, nor any action on Resource "*".',
        iam_no_wildcard_allow,
    ),
    ResourceRule(
        "iam-trust-no-wildcard-principal",
        'A role\'s trust policy must not let any principal ("*") assume it.',
        trust_no_wildcard_principal,
    ),
    ResourceRule(
        "ec2-require-imdsv2",
        "EC2 instances must require IMDSv2 (session tokens for instance metadata).",
        ec2_require_imdsv2,
    ),
    ResourceRule(
        "ec2-encrypted-root-volume",
        "EC2 instances must have an encrypted root volume.",
        ec2_encrypted_root_volume,
    ),
    ResourceRule(
        "ec2-no-world-ingress",
        "Security groups must not admit ingress from 0.0.0.0/0 or ::/0.",
        no_world_ingress,
    ),
)

STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "s3-bucket-public-access-blocked",
        "Every S3 bucket must have a public access block with all four settings on.",
        buckets_block_public_access,
    ),
    StackRule(
        "s3-bucket-tls-only",
        "Every S3 bucket must have a bucket policy that denies requests without TLS.",
        buckets_tls_only,
    ),
)

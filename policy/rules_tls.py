"""Buckets reachable over TLS only (guarantee 4 of the pack, second part).

Every bucket needs exactly one bucket policy (a `BucketPolicy`, or the deprecated inline
`policy`), and it keeps the TLS-only Deny exactly as the program writes it. S3 keeps one policy
per bucket, the one written last: a second policy silently replaces the first, so it is refused
whatever it holds, and each one written must hold the Deny.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

try:
    from policy import rules_base as base
    from policy import rules_s3 as s3
    from policy import rules_stack as stack
except ImportError:  # The Pulumi CLI runs the pack with only policy/ on sys.path.
    import rules_base as base  # type: ignore[import-not-found, no-redef]
    import rules_s3 as s3  # type: ignore[import-not-found, no-redef]
    import rules_stack as stack  # type: ignore[import-not-found, no-redef]

TLS_ONLY_FIX = (
    'a statement that denies "s3:*" to Principal "*" on the bucket and bucket/* when '
    '{"Bool": {"aws:SecureTransport": "false"}}, with no other condition'
)


def _only_insecure_transport(condition: Any) -> bool:
    """Exactly {"Bool": {"aws:SecureTransport": "false"}}: any other test narrows the Deny."""
    if not isinstance(condition, Mapping) or len(condition) != 1:
        return False
    ((operator, test),) = condition.items()
    if str(operator).lower() != "bool" or not isinstance(test, Mapping) or len(test) != 1:
        return False
    ((key, value),) = test.items()
    values = base.as_list(value)
    return (
        str(key).lower() == "aws:securetransport"
        and bool(values)
        and all(str(v).lower() == "false" for v in values)
    )


def _covers_bucket(resources: list[Any], bucket: stack.StackResource) -> bool:
    """The resources name the bucket and all its objects (or everything), in any partition.

    The bucket's name comes first: in a preview it is known (auto-naming happens at check time)
    while the ARN is not; a state without a name has the ARN, which ends with it.
    """
    if "*" in resources:
        return True
    name = bucket.props.get("bucket")
    if not isinstance(name, str):
        arn = bucket.props.get("arn")
        name = arn.rsplit(":", 1)[-1] if isinstance(arn, str) else None
    if not name:
        return False
    pattern = re.compile(rf"arn:{base.PARTITION}:s3:::{re.escape(name)}(/\*)?")
    forms = {m.group(1) for r in resources if isinstance(r, str) and (m := pattern.fullmatch(r))}
    return forms == {None, "/*"}


def _denies_plain_http(statement: base.Props, bucket: stack.StackResource) -> bool:
    """Deny, to everyone, every S3 action on the bucket and its objects, when not over TLS."""
    if statement.get("Effect") != "Deny" or not base.is_anyone(statement.get("Principal")):
        return False
    if any(key in statement for key in ("NotPrincipal", "NotAction", "NotResource")):
        return False
    if not {a.lower() for a in base.actions(statement)} & {"*", "s3:*"}:
        return False
    if not _only_insecure_transport(statement.get("Condition")):
        return False
    return _covers_bucket(base.as_list(statement.get("Resource")), bucket)


def _is_tls_only(document_value: Any, bucket: stack.StackResource) -> bool:
    doc = base.document(document_value)
    return doc is not None and any(
        _denies_plain_http(statement, bucket) for _, statement in base.statements(doc)
    )


def _writers(
    findings: stack.Findings,
    bucket: stack.StackResource,
    policies: list[stack.StackResource],
    pending: stack.Pending,
) -> None:
    """A bucket has one policy in S3: none leaves it open to plain HTTP, several replace each
    other (whichever is written last wins, so the TLS-only Deny can vanish silently)."""
    names = sorted(f"policy {p.name}" for p in policies)
    inline, unknown = stack.peek(bucket.props, "policy")  # the deprecated inline bucket policy
    names += ["inline policy"] if inline else []
    if len(names) > 1:  # known even while the inline policy is not
        findings.add(bucket, _several(bucket, names))
    if unknown is not None:
        raise unknown
    if not names:
        if pending is not None:
            raise pending  # A policy not linked yet may be this bucket's.
        findings.add(
            bucket,
            f"bucket {bucket.name} is reachable without TLS: add an aws.s3.BucketPolicy "
            f"for it with {TLS_ONLY_FIX}",
        )


def _several(bucket: stack.StackResource, names: list[str]) -> str:
    return (
        f"bucket {bucket.name} has {len(names)} bucket policies ({', '.join(names)}): S3 keeps "
        "only the one written last and drops the others' statements; merge them into one "
        "aws.s3.BucketPolicy that keeps the TLS-only Deny"
    )


def _weakened(bucket: stack.StackResource, where: str) -> str:
    return (
        f"bucket {bucket.name}'s {where} does not keep the TLS-only Deny unweakened "
        f"(S3 keeps whichever bucket policy was written last): give it {TLS_ONLY_FIX}"
    )


def buckets_tls_only(resources: Sequence[stack.StackResource]) -> stack.Findings:
    """Every bucket needs one bucket policy, and it denies requests not made over TLS."""
    findings = stack.Findings()
    buckets = stack.of_type(resources, *base.BUCKET_TYPES)
    mine, pending = s3.by_bucket(findings, buckets, stack.of_type(resources, base.BUCKET_POLICY))
    for bucket in buckets:
        with findings.deciding(bucket.name):
            _writers(findings, bucket, mine[bucket.urn], pending)
        for policy in mine[bucket.urn]:
            with findings.deciding(bucket.name):
                if not _is_tls_only(policy.props.get("policy"), bucket):
                    findings.add(bucket, _weakened(bucket, f"policy {policy.name}"))
        with findings.deciding(bucket.name):
            inline = bucket.props.get("policy")
            if inline and not _is_tls_only(inline, bucket):
                findings.add(bucket, _weakened(bucket, "inline policy"))
    return findings

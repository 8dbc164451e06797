"""Make moto (5.2.5) evaluate role trust policies the way AWS does.

moto enforces IAM only when `INITIAL_NO_AUTH_ACTION_COUNT` is reached (`enable_iam_authentication`
turns that on), and then evaluates trust policies unlike AWS:
- it compares the caller's session ARN (`arn:aws:sts::ACCT:assumed-role/NAME/SESSION`)
  literally with the role ARN in the trust policy, so a valid role chain is denied;
- a statement whose principal does not match returns DENIED instead of neutral, so a
  statement trusting only `ec2.amazonaws.com` denies everyone;
- a statement without an `AWS` principal raises TypeError.

`aws_iam_rules()` replaces moto's trust check with `checks.trust.trust_allows`, which applies
AWS's rules (a role ARN matches every session of that role, an account root or id matches any
principal of the account, a non-matching statement is neutral), and turns enforcement on.
Identity policies are still evaluated by moto itself. Used by the tests and the rehearsal.

It also replaces moto's bucket-policy check, which evaluates conditions without any request
context and treats a statement whose condition does not hold as a denial: the stack's TLS-only
policy (Deny when `aws:SecureTransport` is false) would then deny every object request.
`bucket_policy_effect` evaluates statements with `Principal: "*"` against the context of an
SDK request to AWS, which always travels over TLS.

And it makes a GET or HEAD of a missing key answer as S3 does: 403 AccessDenied to a caller
without s3:ListBucket on the bucket, where moto answers 404 NoSuchKey to anyone allowed
s3:GetObject. That difference is why a get probe must aim at an object that exists; without
this rule a check aiming at a missing key would pass in the emulator and miss leaks on AWS.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from checks.moto_speed import cached_moto
from checks.trust import Effect, as_list, load_document, trust_allows, wildcard

# What every request from an AWS SDK carries in this emulation (they all use TLS endpoints).
REQUEST_CONTEXT = {"aws:securetransport": "true"}


def _condition_holds(
    condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]
) -> bool:
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            actual = context.get(key.lower())
            values = [str(v).lower() for v in as_list(wanted)]
            if operator in ("Bool", "StringEquals", "StringEqualsIgnoreCase"):
                if actual is None or actual.lower() not in values:
                    return False
            elif operator in ("StringNotEquals", "StringNotEqualsIgnoreCase"):
                if actual is not None and actual.lower() in values:
                    return False
            else:
                # Loud rather than wrong: a new condition in the program needs support here.
                raise ValueError(f"the emulator cannot evaluate condition operator {operator}")
    return True


def bucket_policy_effect(
    document: str | Mapping[str, Any], action: str, resource: str
) -> Effect | None:
    """A bucket policy's effect on an anonymous-principal evaluation, or None (neutral).

    Only statements for every principal (`"*"`) are evaluated: moto does not say who is calling
    here, and grants to named principals are identity-side in this project.
    """
    effects = set()
    for statement in as_list(load_document(document).get("Statement")):
        if statement.get("Principal") not in ("*", {"AWS": "*"}):
            continue
        if not any(wildcard(a, action) for a in as_list(statement.get("Action"))):
            continue
        if not any(wildcard(r, resource) for r in as_list(statement.get("Resource"))):
            continue
        if _condition_holds(statement.get("Condition", {}), REQUEST_CONTEXT):
            effects.add(Effect(statement.get("Effect", "Allow")))
    if Effect.DENY in effects:
        return Effect.DENY
    return Effect.ALLOW if Effect.ALLOW in effects else None


def _bucket_permission(bucket: Any, action: str, resource: str) -> Any:
    """Replacement for moto's `FakeBucket.get_permission`."""
    from moto.iam.access_control import PermissionResult

    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    effect = bucket_policy_effect(bucket.policy.decode(), action, resource)
    if effect is Effect.DENY:
        return PermissionResult.DENIED
    return PermissionResult.PERMITTED if effect is Effect.ALLOW else PermissionResult.NEUTRAL


def _check_trust(request: Any, role_arn: str) -> bool:
    """Replacement for moto's `IAMRequestBase._check_role_trust_relationship`."""
    from moto.iam.access_control import IAMPolicyStatement
    from moto.iam.utils import format_incoming_conditional_values

    role = request.backend.get_role_by_arn(role_arn)
    incoming = format_incoming_conditional_values(request._data)

    def conditions_hold(statement: Mapping[str, Any]) -> bool:
        # Conditions (e.g. sts:ExternalId) keep moto's own evaluation.
        return bool(IAMPolicyStatement(dict(statement))._check_conditions(incoming))

    return trust_allows(
        role.assume_role_policy_document,
        request._access_key.arn,
        request._action,
        conditions_hold,
    )


def _enforcing() -> bool:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return bool(ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT)


def _deny_unless_listable(response: Any) -> None:
    """Raise AccessDenied if the caller may not s3:ListBucket the request's bucket."""
    from moto.iam.access_control import S3IAMRequest
    from moto.utilities.utils import get_partition

    request = S3IAMRequest(
        account_id=response.current_account,
        method="GET",
        path=f"/{response.bucket_name}",
        data=response.data,
        body=response.raw_body,
        headers=response.headers,
        action="ListBucket",
    )
    partition = get_partition(response.region)
    request.check_action_permitted(f"arn:{partition}:s3:::{response.bucket_name}")


def _missing_key_rule(original: Any) -> Any:
    """Wrap S3Response.get_object / head_object: a missing key is 403 without s3:ListBucket."""
    from moto.s3.exceptions import MissingKey

    def wrapped(response: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            answer = original(response, *args, **kwargs)
        except MissingKey:
            if _enforcing():
                _deny_unless_listable(response)
            raise
        if isinstance(answer, tuple) and answer and answer[0] == 404 and _enforcing():
            _deny_unless_listable(response)  # head_object answers 404 instead of raising
        return answer

    return wrapped


@contextmanager
def aws_iam_rules() -> Iterator[None]:
    """IAM enforcement on, with AWS's trust-policy rules, for the duration of the block."""
    with aws_policy_rules():
        from moto.core.authorization import enable_iam_authentication

        with enable_iam_authentication():
            yield


@contextmanager
def aws_policy_rules() -> Iterator[None]:
    """AWS's trust and bucket-policy rules in moto, without turning enforcement on.

    The rehearsal deploys (as an administrator) under these rules too, since moto applies bucket
    policies even when it does not enforce IAM.
    """
    from moto.iam.access_control import IAMRequestBase
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    trust, bucket = IAMRequestBase._check_role_trust_relationship, FakeBucket.get_permission
    get, head = S3Response.get_object, S3Response.head_object
    IAMRequestBase._check_role_trust_relationship = _check_trust  # type: ignore[method-assign,assignment]
    FakeBucket.get_permission = _bucket_permission  # type: ignore[method-assign,assignment]
    S3Response.get_object = _missing_key_rule(get)  # type: ignore[method-assign]
    S3Response.head_object = _missing_key_rule(head)  # type: ignore[method-assign]
    try:
        with cached_moto():
            yield
    finally:
        IAMRequestBase._check_role_trust_relationship = trust  # type: ignore[method-assign]
        FakeBucket.get_permission = bucket  # type: ignore[method-assign]
        S3Response.get_object, S3Response.head_object = get, head  # type: ignore[method-assign]

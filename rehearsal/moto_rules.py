"""Make moto (5.2.5) evaluate trust and bucket policies, and answer IAM, the way AWS does.

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
`bucket_policy_effect` evaluates statements against the context of an SDK request to AWS,
which always travels over TLS. moto asks that check without saying who calls, so there only
statements for everyone (`Principal: "*"`) count, and moto uses their Allow only for unsigned
requests.

So a bucket policy naming a role had no effect in the emulator, where on AWS, in one account,
it is a grant of its own: a leak through the bucket policy would pass the check's isolation
probes here and stay open there. With IAM enforced, the fixture therefore evaluates the bucket
policy for the signed caller as well, after moto's identity check of an S3 request
(`S3IAMRequest.check_action_permitted`), with `checks.trust.principal_matches`:
- an Allow naming the caller's role, its own session ARN, or `*`, grants the request even
  with no identity grant;
- an Allow naming only the account (its root ARN or its id) grants nothing by itself: the
  account delegates to its identity policies, which must allow;
- a Deny naming the caller in any of these ways, or an explicit Deny in its identity
  policies, always wins; statements naming other principals are neutral;
- Action/NotAction and Resource/NotResource are matched with wildcards, conditions against
  the same TLS request context;
- a caller of another account keeps moto's identity-only answer (AWS needs both sides there),
  and `NotPrincipal`, which AWS matches against session, role and account separately, is
  refused loudly rather than guessed.

It makes a GET or HEAD of a missing key answer as S3 does: 403 AccessDenied to a caller
without s3:ListBucket on the bucket, where moto answers 404 NoSuchKey to anyone allowed
s3:GetObject. That difference is why a get probe must aim at an object that exists; without
this rule a check aiming at a missing key would pass in the emulator and miss leaks on AWS.
A bucket policy's grant of s3:ListBucket counts there too.

And it completes GetAccountAuthorizationDetails: IAM names each managed policy of its
`Policies` list (`PolicyName`, `PolicyId`); moto leaves both out (its serializer looks for
`policy_name` / `policy_id` on the policy object, which calls them `name` / `id`), so a reader
of that document could tell policies apart only by ARN. moto ignores `MaxItems` and `Marker`
there: every entry comes in one page, `IsTruncated` false, so no paging is emulated.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from operator import attrgetter
from typing import Any

from checks.trust import Effect, trust_allows
from rehearsal.moto_kms_rules import kms_rules
from rehearsal.moto_requests import enforcing, s3_request
from rehearsal.moto_speed import cached_moto
from rehearsal.resource_policies import REQUEST_CONTEXT, bucket_policy_effect

__all__ = ["aws_iam_rules", "aws_policy_rules", "bucket_policy_effect"]


def _bucket_permission(bucket: Any, action: str, resource: str) -> Any:
    """Replacement for moto's `FakeBucket.get_permission` (anonymous: `*` statements only)."""
    from moto.iam.access_control import PermissionResult

    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    effect = bucket_policy_effect(bucket.policy.decode(), action, resource)
    if effect is Effect.DENY:
        return PermissionResult.DENIED
    return PermissionResult.PERMITTED if effect is Effect.ALLOW else PermissionResult.NEUTRAL


def _caller_bucket_effect(request: Any, resource: str) -> Effect | None:
    """The effect on this signed S3 request of its bucket's policy, for the request's caller."""
    from moto.s3.models import s3_backends

    name = resource.split(":::", 1)[-1].split("/", 1)[0]
    owner = s3_backends.bucket_accounts.get(name)
    if owner is None:
        return None  # no such bucket (or `*`): moto answers that itself
    partition, account = owner
    bucket = s3_backends[account][partition].buckets.get(name)
    if bucket is None or bucket.policy is None:
        return None
    caller = request._access_key.arn
    # The encryption a put asks for is in its headers (the SSE-KMS bucket policy's Denies).
    asked = {
        f"s3:{h}": str(v)
        for h, v in request._headers.items()
        if h.lower().startswith("x-amz-server-side-encryption")
    }
    context = {**REQUEST_CONTEXT, **{k.lower(): v for k, v in asked.items()}}
    effect = bucket_policy_effect(
        bucket.policy.decode(), request._action, resource, caller, context
    )
    if effect is Effect.ALLOW and request._access_key.account_id != account:
        return None  # across accounts both sides must allow: moto's identity check decides
    return effect


def _identity_denies(request: Any, resource: str) -> bool:
    """Whether the caller's identity policies explicitly deny the request (moto's evaluation)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    return any(
        IAMPolicy(policy).is_action_permitted(request._action, resource) == PermissionResult.DENIED
        for policy in request._access_key.collect_policies()
    )


def _s3_check(original: Any) -> Any:
    """Wrap `S3IAMRequest.check_action_permitted` (moto's identity-only check of a signed S3
    request) with the bucket policy: a Deny naming the caller denies, an Allow naming it
    grants unless an identity policy denies, anything else is moto's identity answer."""

    def check(request: Any, resource: str) -> None:
        effect = _caller_bucket_effect(request, resource)
        if effect is Effect.DENY:
            request._raise_access_denied()
        if effect is Effect.ALLOW and not _identity_denies(request, resource):
            return
        original(request, resource)

    return check


# moto's serializer looks these up on a managed policy for GetAccountAuthorizationDetails
# (`PolicyName` -> `policy_name`); the policy object has them as `name` and `id`.
_POLICY_ALIASES = {"policy_name": "name", "policy_id": "id"}


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


def _deny_unless_listable(response: Any) -> None:
    """Raise AccessDenied if the caller may not s3:ListBucket the request's bucket."""
    from moto.utilities.utils import get_partition

    request = s3_request(response, "GET", "ListBucket")
    partition = get_partition(response.region)
    request.check_action_permitted(f"arn:{partition}:s3:::{response.bucket_name}")


def _missing_key_rule(original: Any) -> Any:
    """Wrap S3Response.get_object / head_object: a missing key is 403 without s3:ListBucket."""
    from moto.s3.exceptions import MissingKey

    def wrapped(response: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            answer = original(response, *args, **kwargs)
        except MissingKey:
            if enforcing():
                _deny_unless_listable(response)
            raise
        if isinstance(answer, tuple) and answer and answer[0] == 404 and enforcing():
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
    """AWS's trust and bucket-policy rules (and IAM's answers) in moto, without enforcement.

    The rehearsal deploys (as an administrator) under these rules too, since moto applies bucket
    policies even when it does not enforce IAM.
    """
    from moto.iam.access_control import IAMRequestBase, S3IAMRequest
    from moto.iam.models import Policy
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    trust, bucket = IAMRequestBase._check_role_trust_relationship, FakeBucket.get_permission
    get, head = S3Response.get_object, S3Response.head_object
    # S3IAMRequest inherits check_action_permitted; the wrapper is set on the subclass only
    # (IAM, STS and EC2 requests keep moto's check) and removed again afterwards.
    s3_own = S3IAMRequest.__dict__.get("check_action_permitted")
    aliases = {a: n for a, n in _POLICY_ALIASES.items() if not hasattr(Policy, a)}
    IAMRequestBase._check_role_trust_relationship = _check_trust  # type: ignore[method-assign,assignment]
    FakeBucket.get_permission = _bucket_permission  # type: ignore[method-assign,assignment]
    S3Response.get_object = _missing_key_rule(get)  # type: ignore[method-assign]
    S3Response.head_object = _missing_key_rule(head)  # type: ignore[method-assign]
    S3IAMRequest.check_action_permitted = _s3_check(S3IAMRequest.check_action_permitted)  # type: ignore[method-assign]
    for alias, attribute in aliases.items():
        setattr(Policy, alias, property(attrgetter(attribute)))
    try:
        with cached_moto(), kms_rules():
            yield
    finally:
        IAMRequestBase._check_role_trust_relationship = trust  # type: ignore[method-assign]
        FakeBucket.get_permission = bucket  # type: ignore[method-assign]
        S3Response.get_object, S3Response.head_object = get, head  # type: ignore[method-assign]
        if s3_own is None:
            del S3IAMRequest.check_action_permitted
        else:
            S3IAMRequest.check_action_permitted = s3_own  # type: ignore[method-assign]
        for alias in aliases:
            delattr(Policy, alias)

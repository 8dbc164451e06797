"""Make moto (5.2.5) check KMS on SSE-KMS requests to S3, and evaluate key policies.

moto does not involve KMS in S3 at all: a role with only `s3:PutObject` writes to an SSE-KMS
bucket, even one naming a key that does not exist, and reads the object back without
`kms:Decrypt`. On AWS, S3 asks KMS for a data key with the caller's own credentials, so the
put needs `kms:GenerateDataKey` and the get `kms:Decrypt` on the key, and KMS evaluates its
key policy first. Nor does moto evaluate key policies on KMS's own API, which it authorizes
against resource `*` (so an identity policy naming a key ARN never matches).

`kms_rules()` adds, while IAM is enforced:
- an SSE-KMS put (asked for in its headers, or the bucket's default encryption) needs
  `kms:GenerateDataKey` on the key, and a get of an SSE-KMS object `kms:Decrypt`. The request
  context is S3's: `kms:ViaService` is `s3.<region>.amazonaws.com`, `kms:CallerAccount` the
  caller's account, and the encryption context is the bucket's ARN with a Bucket Key, the
  object's otherwise. A key that does not exist, or is not enabled, is refused as S3 refuses
  it (`KMS.NotFoundException`, `KMS.DisabledException`).
- Not emulated (the check and the rehearsal never use them): copies, multipart uploads, gets
  of an older version by id, DSSE objects, and a put asking for `aws:kms` with no key (AWS may
  use the account's `aws/s3` key; the stack's bucket policy refuses such a put anyway).
- KMS's own requests are authorized against the key's ARN, by the same rule.

The rule (`key_allows`) is AWS's for one account: an unconditional or holding Deny in the key
policy or the identity's policies wins; then the key policy allows on its own when it names
the caller (its role, its session, or `*`); a statement naming the account delegates to the
identity's policies, which must allow; a grant (`kms:CreateGrant`) to the caller's role for
the operation allows. Conditions are evaluated against the request's context, so the
project's `kms:ViaService` grant lets S3 in and keeps a direct call out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from checks.trust import as_list, load_document, principal_matches
from rehearsal.moto_requests import enforcing, s3_request
from rehearsal.resource_policies import (
    REQUEST_CONTEXT,
    applies,
    condition_holds,
    naming,
)


def _statements(document: str | Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return [] if document is None else list(as_list(load_document(document).get("Statement")))


def key_allows(
    *,
    caller_arn: str,
    action: str,
    key_arn: str,
    key_policy: str | Mapping[str, Any] | None,
    identity_policies: Iterable[str | Mapping[str, Any]],
    grants: Iterable[tuple[str, Iterable[str]]] = (),
    context: Mapping[str, str] = REQUEST_CONTEXT,
) -> bool:
    """Whether KMS lets the caller take the action on the key (see the module docstring)."""
    granted = delegated = False
    for statement in _statements(key_policy):
        if not applies(statement, action, key_arn):
            continue
        named, by_itself = naming(statement, caller_arn)
        if not named or not condition_holds(statement.get("Condition", {}), context):
            continue
        if statement.get("Effect", "Allow") == "Deny":
            return False
        granted |= by_itself
        delegated |= not by_itself
    identity = None
    for document in identity_policies:
        for statement in _statements(document):
            if applies(statement, action, key_arn) and condition_holds(
                statement.get("Condition", {}), context
            ):
                if statement.get("Effect", "Allow") == "Deny":
                    return False
                identity = True
    operation = action.split(":", 1)[1]
    by_grant = any(
        principal_matches(grantee, caller_arn) and operation in operations
        for grantee, operations in grants
    )
    return granted or by_grant or (delegated and bool(identity))


def _key_of(account: str, region: str, key_id: str) -> Any | None:
    from moto.kms.models import kms_backends

    backend = kms_backends[account][region]
    try:
        return backend.describe_key(key_id)
    except Exception:  # noqa: BLE001 - moto's NotFound, or an alias it cannot resolve
        return None


def _grants(key: Any) -> list[tuple[str, list[str]]]:
    return [(g.grantee_principal, list(g.operations)) for g in key.grants.values()]


def _policies_of(access_key: Any) -> list[str | Mapping[str, Any]]:
    from moto.iam.access_control import IAMPolicy

    return [IAMPolicy(p)._policy_json for p in access_key.collect_policies()]


def _denied(message: str) -> Exception:
    from moto.s3.exceptions import S3ClientError

    return S3ClientError("AccessDenied", message)


def _s3_kms_check(
    response: Any, action: str, key_id: str, object_arn: str, bucket_key: bool
) -> None:
    """Raise as S3 does when the caller may not use the key for this request."""
    from moto.s3.exceptions import S3ClientError
    from moto.utilities.utils import get_partition

    region = response.region
    key = _key_of(response.current_account, region, key_id)
    if key is None:
        raise S3ClientError("KMS.NotFoundException", f"Invalid keyId '{key_id}'")
    if key.key_state != "Enabled":
        raise S3ClientError("KMS.DisabledException", f"{key.arn} is {key.key_state}.")
    request = s3_request(response, response.method, "PutObject")
    caller = request._access_key.arn
    suffix = "amazonaws.com.cn" if get_partition(region) == "aws-cn" else "amazonaws.com"
    bucket_arn = object_arn.split("/", 1)[0]
    context = {
        **REQUEST_CONTEXT,
        "kms:viaservice": f"s3.{region}.{suffix}",
        "kms:encryptioncontext:aws:s3:arn": bucket_arn if bucket_key else object_arn,
        "kms:calleraccount": str(request._access_key.account_id),
    }
    if not key_allows(
        caller_arn=caller,
        action=action,
        key_arn=key.arn,
        key_policy=key.policy,
        identity_policies=_policies_of(request._access_key),
        grants=_grants(key),
        context=context,
    ):
        raise _denied(
            f"User: {caller} is not authorized to perform: {action} on resource: {key.arn}"
        )


def _object_arn(response: Any, key_name: str) -> str:
    from moto.utilities.utils import get_partition

    return f"arn:{get_partition(response.region)}:s3:::{response.bucket_name}/{key_name}"


def _put_rule(original: Any) -> Any:
    """Wrap S3Response.put_object: the key it encrypts with must let the caller in."""

    def wrapped(response: Any) -> Any:
        if enforcing():
            bucket = response.backend.get_bucket(response.bucket_name)
            default = (bucket.encryption or {}).get("Rule", {})
            by_default = default.get("ApplyServerSideEncryptionByDefault", {})
            asked = response.headers.get("x-amz-server-side-encryption")
            algorithm = asked or by_default.get("SSEAlgorithm")
            if algorithm in ("aws:kms", "aws:kms:dsse"):
                key_id = response.headers.get("x-amz-server-side-encryption-aws-kms-key-id") or (
                    by_default.get("KMSMasterKeyID") if not asked or asked == "aws:kms" else None
                )
                bucket_key = (
                    str(
                        response.headers.get("x-amz-server-side-encryption-bucket-key-enabled")
                        or default.get("BucketKeyEnabled", False)
                    ).lower()
                    == "true"
                )
                if key_id:  # without one AWS uses the account's aws/s3 key: not emulated
                    name = response.parse_key_name()
                    _s3_kms_check(
                        response,
                        "kms:GenerateDataKey",
                        key_id,
                        _object_arn(response, name),
                        bucket_key,
                    )
        return original(response)

    return wrapped


def _get_rule(original: Any) -> Any:
    """Wrap S3Response.get_object: an SSE-KMS object needs kms:Decrypt on its key."""

    def wrapped(response: Any, *args: Any, **kwargs: Any) -> Any:
        answer = original(response, *args, **kwargs)
        if enforcing():
            name = response.parse_key_name()
            stored = response.backend.get_object(response.bucket_name, name)
            if stored is not None and stored.encryption == "aws:kms" and stored.kms_key_id:
                bucket_key = str(stored.bucket_key_enabled).lower() == "true"
                _s3_kms_check(
                    response,
                    "kms:Decrypt",
                    stored.kms_key_id,
                    _object_arn(response, name),
                    bool(bucket_key),
                )
        return answer

    return wrapped


def _kms_resource(response: Any) -> str:
    """The key a KMS request names (its ARN), for moto's authorization; `*` for none."""
    key_id = response._get_param("KeyId")
    if not key_id:
        return "*"
    key = _key_of(response.current_account, response.region, key_id)
    if key is not None:
        return str(key.arn)
    # No such key: authorized against the ARN asked for, as AWS does, which then answers
    # NotFoundException (not AccessDenied) to a caller allowed that ARN.
    return str(key_id) if str(key_id).startswith("arn:") else "*"


def _kms_check(original: Any) -> Any:
    """Wrap IAMRequest.check_action_permitted for KMS requests on a key: the key policy too."""

    def check(request: Any, resource: str) -> None:
        if not request._action.startswith("kms:") or ":key/" not in resource:
            original(request, resource)
            return
        account, region = request.account_id, request._region
        key = _key_of(account, region, resource)
        if key is None:
            original(request, resource)
            return
        if not key_allows(
            caller_arn=request._access_key.arn,
            action=request._action,
            key_arn=key.arn,
            key_policy=key.policy,
            identity_policies=_policies_of(request._access_key),
            grants=_grants(key),
        ):
            request._raise_access_denied()

    return check


@contextmanager
def kms_rules() -> Iterator[None]:
    """KMS in S3 requests, and key policies on KMS's own, for the duration of the block."""
    from moto.iam.access_control import IAMRequest
    from moto.kms.responses import KmsResponse
    from moto.s3.responses import S3Response

    put, get = S3Response.put_object, S3Response.get_object
    own_check = IAMRequest.__dict__.get("check_action_permitted")
    own_resource = KmsResponse.__dict__.get("_determine_resource")  # set when nested
    S3Response.put_object = _put_rule(put)  # type: ignore[method-assign]
    S3Response.get_object = _get_rule(get)  # type: ignore[method-assign]
    KmsResponse._determine_resource = _kms_resource  # type: ignore[attr-defined]
    IAMRequest.check_action_permitted = _kms_check(IAMRequest.check_action_permitted)  # type: ignore[method-assign]
    try:
        yield
    finally:
        S3Response.put_object, S3Response.get_object = put, get  # type: ignore[method-assign]
        if own_resource is None:
            del KmsResponse._determine_resource  # type: ignore[attr-defined]
        else:
            KmsResponse._determine_resource = own_resource  # type: ignore[attr-defined]
        if own_check is None:
            del IAMRequest.check_action_permitted
        else:
            IAMRequest.check_action_permitted = own_check  # type: ignore[method-assign]

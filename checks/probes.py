"""The negative expectations: an identity that must not reach a bucket is denied each action.

Every probe is harmless to data, and proves something on real S3:
- list: ListObjectsV2 on the reserved prefix;
- get: GetObject of the bucket owner's own test object, which exists (a get of a missing key
  is no proof: without s3:ListBucket S3 answers 403 even where s3:GetObject is allowed);
- put: PutObject of that same key with `If-None-Match: *`: an authorized caller gets 412 and
  nothing is written;
- delete: DeleteObject of that key with an `If-Match` no object has: an authorized caller gets
  412 and nothing is deleted.
S3 authorizes a request before it evaluates its preconditions, so a 412 (or NoSuchKey) proves
access as surely as a success, and AccessDenied is the only answer that proves denial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.contract import RESERVED_PREFIX
from checks.explain import describe, error_code
from checks.plan import SUCCEEDED, Verdict, judge
from checks.stack_outputs import ServiceTarget

NO_SUCH_ETAG = '"00000000000000000000000000000000"'
"""No object's ETag (an MD5 of all zero bits): a conditional delete with it deletes nothing."""
NO_TEST_OBJECT = "no test object to aim at (the owner's put failed)"


@dataclass(frozen=True)
class TestObject:
    """The check's own object in a service's bucket, written by that service's role."""

    key: str
    token: str
    """Stored as object metadata: how the check recognises its own object after a retry."""


@dataclass(frozen=True)
class Probe:
    who: str
    """The identity that probed, e.g. `the host role` or `service-a's role`."""
    action: str
    target: ServiceTarget
    """Whose bucket."""
    verdict: Verdict
    detail: str
    """For ALLOWED, what S3 answered; for UNPROVEN, why there is no proof."""


def bucket_args(target: ServiceTarget) -> dict[str, str]:
    """The bucket and its expected owner, for every S3 call on it."""
    return {"Bucket": target.bucket_name, "ExpectedBucketOwner": target.account}


def _request(s3: Any, action: str, target: ServiceTarget, obj: TestObject) -> None:
    owner = bucket_args(target)
    if action == "list":
        s3.list_objects_v2(Prefix=RESERVED_PREFIX, MaxKeys=1, **owner)
    elif action == "get":
        s3.get_object(Key=obj.key, **owner)["Body"].close()
    elif action == "put":
        s3.put_object(Key=obj.key, Body=b"", IfNoneMatch="*", **owner)
    else:
        s3.delete_object(Key=obj.key, IfMatch=NO_SUCH_ETAG, **owner)


def probe(s3: Any, who: str, action: str, target: ServiceTarget, obj: TestObject | None) -> Probe:
    """Try one action as `who`; `checks.plan.judge` reads the answer."""
    if obj is None and action != "list":
        return Probe(who, action, target, Verdict.UNPROVEN, NO_TEST_OBJECT)
    try:
        _request(s3, action, target, obj or TestObject(RESERVED_PREFIX, ""))
    except (ClientError, BotoCoreError) as err:
        return Probe(who, action, target, *judged(err, action))
    return Probe(who, action, target, *judge(SUCCEEDED))


def judged(err: ClientError | BotoCoreError, action: str) -> tuple[Verdict, str]:
    """`judge` on a probe's call that raised, with AWS's own words where they prove a denial."""
    if isinstance(err, ClientError):
        verdict, why = judge(error_code(err), action, err.operation_name)
        return verdict, describe(err) if verdict is Verdict.DENIED else why
    return Verdict.UNPROVEN, f"no answer: {describe(err)}"

"""The positive expectations on a service's own bucket: list, put, get, and delete.

The put never overwrites (`If-None-Match: *`) and is recorded for cleanup before it is sent.
Its object carries a random token as metadata, so a put that botocore retried after the first
attempt was in fact stored (a 500 or a read timeout) is recognised as the check's own object,
not blamed on the user as "an object already exists".

In a versioned bucket the put's version id (or, after such a retry, the one head_object shows
with the token) is recorded, and the delete step then removes that version and its own delete
marker by id (checks.cleanup), so a passing run leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from checks.cleanup import PendingObjects, Written, versions_phrase
from checks.contract import RESERVED_PREFIX
from checks.explain import describe, error_code, s3_failure
from checks.plan import DENIED
from checks.probes import TestObject
from checks.report import Step
from checks.stack_outputs import ServiceTarget

if TYPE_CHECKING:
    from checks.options import CheckOptions

log = logging.getLogger(__name__)

TOKEN_KEY = "ec2-assume-role-check"  # noqa: S105 (a metadata key, not a password)
"""The metadata key holding the test object's token (S3 sends it as x-amz-meta-...)."""
MAX_BACKOFF_SECONDS = 8.0
T = TypeVar("T")


@dataclass
class Prepared:
    """Phase 1 of one service: its steps so far, its S3 client and its live test object."""

    name: str
    steps: list[Step] = field(default_factory=list)
    s3: Any = None
    obj: TestObject | None = None
    target: ServiceTarget | None = None


class Timer:
    """Milliseconds since it was made: a step's latency, retries included."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def ms(self) -> int:
        return round((time.perf_counter() - self.start) * 1000)


def _explain(err: Exception, action: str, target: ServiceTarget) -> str:
    code = error_code(err) if isinstance(err, ClientError) else None
    return s3_failure(code, describe(err), action, target)


def _encrypted_with(
    answer: Mapping[str, Any], target: ServiceTarget, wrote: str, timer: Timer
) -> Step:
    """An SSE-KMS bucket's put passes only when S3 says it encrypted with the stack's key."""
    algorithm, key = answer.get("ServerSideEncryption"), answer.get("SSEKMSKeyId")
    if algorithm == "aws:kms" and key == target.kms_key_arn:
        return Step("put", True, timer.ms, f"{wrote}, encrypted with KMS key {key}")
    return Step(
        "put",
        False,
        timer.ms,
        f"{wrote}, but S3 encrypted it with {algorithm or 'nothing it reported'}"
        f"{f' key {key}' if key else ''}, not KMS key {target.kms_key_arn}. Cause: the bucket's "
        "default encryption was changed. Fix: `pulumi up` restores it.",
    )


class OwnBucket:
    def __init__(self, options: CheckOptions, pending: PendingObjects) -> None:
        self._options = options
        self._pending = pending

    def retry_denied(self, what: str, call: Callable[[], T], deadline: float) -> tuple[T, int]:
        """Call, retrying AccessDenied with backoff until the deadline; (result, retries)."""
        attempt = 0
        while True:
            try:
                return call(), attempt
            except ClientError as err:
                remaining = deadline - self._options.clock()
                if error_code(err) not in DENIED or remaining <= 0:
                    raise
                delay = min(0.5 * 2**attempt, MAX_BACKOFF_SECONDS, remaining)
                log.info("%s denied; retrying in %.1fs (IAM changes propagate)", what, delay)
                self._options.sleep(delay)
                attempt += 1

    def exercise(
        self, prepared: Prepared, target: ServiceTarget, cleanup_client: Callable[[], Any]
    ) -> None:
        """List, put the test object, read it back; the delete comes after the probes."""
        s3 = prepared.s3
        prepared.target = target
        owner = {"Bucket": target.bucket_name, "ExpectedBucketOwner": target.account}
        deadline = self._options.clock() + self._options.wait_seconds
        timer = Timer()
        try:
            self.retry_denied(
                f"ListObjectsV2 on {target.bucket_name}",
                lambda: s3.list_objects_v2(Prefix=RESERVED_PREFIX, MaxKeys=1, **owner),
                deadline,
            )
            prepared.steps.append(Step("list", True, timer.ms, f"listed {target.bucket_name}"))
        except (ClientError, BotoCoreError) as err:
            prepared.steps.append(
                Step("list", False, timer.ms, _explain(err, "s3:ListBucket", target))
            )
        obj = TestObject(f"{RESERVED_PREFIX}{uuid.uuid4().hex}", uuid.uuid4().hex)
        body = os.urandom(32) + f" ec2-assume-role check of {target.name}\n".encode()
        self._pending.add(Written(target.bucket_name, obj.key, target.account, cleanup_client))
        timer = Timer()
        try:
            step, stored = self._put(s3, owner, obj, body, target, timer)
        finally:
            self._pending.settled(target.bucket_name, obj.key)
        prepared.steps.append(step)
        if not stored:
            return
        prepared.obj = obj
        prepared.steps.append(self._read_back(s3, owner, obj.key, body, target))

    def _put(
        self,
        s3: Any,
        owner: dict[str, str],
        obj: TestObject,
        body: bytes,
        target: ServiceTarget,
        timer: Timer,
    ) -> tuple[Step, bool]:
        wrote = f"wrote {len(body)} bytes to {obj.key}"
        bucket = target.bucket_name
        try:
            answer = s3.put_object(
                Key=obj.key, Body=body, IfNoneMatch="*", Metadata={TOKEN_KEY: obj.token}, **owner
            )
            self._pending.created(bucket, obj.key, answer.get("VersionId"))
            if target.kms_key_arn is not None:
                return _encrypted_with(answer, target, wrote, timer), True
            return Step("put", True, timer.ms, wrote), True
        except ClientError as err:
            if error_code(err) == "PreconditionFailed" and self._stored(s3, owner, obj, bucket):
                return Step("put", True, timer.ms, f"{wrote} (stored by a retried attempt)"), True
            if error_code(err) in DENIED:
                self._pending.done(bucket, obj.key)  # nothing was written
            return Step("put", False, timer.ms, _explain(err, "s3:PutObject", target)), False
        except BotoCoreError as err:  # it may have landed before the answer was lost
            if self._stored(s3, owner, obj, bucket):
                return Step("put", True, timer.ms, f"{wrote} (the answer was lost: {err})"), True
            return Step("put", False, timer.ms, describe(err)), False

    def _stored(self, s3: Any, owner: dict[str, str], obj: TestObject, bucket: str) -> bool:
        """Whether the object at the key is the check's own (its token); if so its version,
        which no answer of the put gave, is recorded from the head."""
        try:
            head: Mapping[str, Any] = s3.head_object(Key=obj.key, **owner)
        except (ClientError, BotoCoreError):
            return False
        if head.get("Metadata", {}).get(TOKEN_KEY) != obj.token:
            return False
        self._pending.created(bucket, obj.key, head.get("VersionId"))
        return True

    @staticmethod
    def _read_back(
        s3: Any, owner: dict[str, str], key: str, body: bytes, target: ServiceTarget
    ) -> Step:
        timer = Timer()
        try:
            data = s3.get_object(Key=key, **owner)["Body"].read()
        except (ClientError, BotoCoreError) as err:
            return Step("get", False, timer.ms, _explain(err, "s3:GetObject", target))
        if data != body:
            detail = f"read back {len(data)} bytes that differ from the {len(body)} written"
            return Step("get", False, timer.ms, detail)
        return Step("get", True, timer.ms, f"read back {len(data)} identical bytes")

    def delete(self, prepared: Prepared) -> Step:
        target, obj = prepared.target, prepared.obj
        if target is None or obj is None:
            return Step("delete", False, 0, "no test object to delete")
        timer = Timer()
        try:
            answer = prepared.s3.delete_object(
                Bucket=target.bucket_name, Key=obj.key, ExpectedBucketOwner=target.account
            )
        except (ClientError, BotoCoreError) as err:
            detail = _explain(err, "s3:DeleteObject", target)
            return Step("delete", False, timer.ms, detail + " The final cleanup tries again.")
        # The step proves s3:DeleteObject; in a versioned bucket the versions it leaves go too.
        # Were they refused, the run still passes: the lifecycle rule is their safety net.
        left = self._pending.deleted(target.bucket_name, obj.key, answer, prepared.s3)
        detail = f"deleted {obj.key}"
        if left.kept:
            detail += f"; {left.remain()}"
        elif left.removed:
            detail += f" and {versions_phrase(left.removed)}"
        return Step("delete", True, timer.ms, detail)

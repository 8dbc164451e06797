"""The expectations, per service, run concurrently against the stack's buckets and roles.

Shared topology, from the host role (or whoever the caller is):
  direct access denied -> assume role -> list -> put -> get -> delete -> isolation
Dedicated topology, from a service's own instance role: list -> put -> get -> delete -> isolation.

Nothing here prints or logs a credential: assumed keys live only in the S3 client made from them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from checks.diagnose import explain_assume_denied
from checks.explain import (
    DENIED,
    describe,
    error_code,
    not_denied,
    over_privileged,
    s3_failure,
)
from checks.report import Report, ServiceResult, Step
from checks.targets import ServiceTarget, Targets, UsageError
from checks.trust import role_of

log = logging.getLogger(__name__)

RESERVED_PREFIX = "ec2-assume-role-check/"
"""Test objects live only here, under unique names, so user data is never touched. The stack's
lifecycle rule for versioned buckets (infra.secure_bucket.CHECK_PREFIX) names the same prefix."""
SESSION_SECONDS = 900
"""The check needs minutes at most; role chaining would cap any session at 3600 s anyway."""
CREDENTIAL_ERRORS = frozenset(
    {"InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch"}
)
MAX_BACKOFF_SECONDS = 8.0


@dataclass(frozen=True)
class CheckOptions:
    wait_seconds: float = 60.0
    """How long AccessDenied is retried on steps that must succeed (IAM propagation)."""
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    inspector: Any = None
    """An IAM client to diagnose AssumeRole denials with, instead of the caller's own."""


class _Timer:
    """Milliseconds since it was made: each step's latency, retries included."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def ms(self) -> int:
        return round((time.perf_counter() - self.start) * 1000)


class Checker:
    """Runs every expectation for the selected services; clients are made once per identity."""

    def __init__(self, session: boto3.Session, targets: Targets, options: CheckOptions) -> None:
        self._session = session
        self._targets = targets
        self._options = options
        self._config = Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=10,
            read_timeout=30,
            max_pool_connections=max(10, 2 * len(targets.services)),
        )
        self._client_lock = threading.Lock()  # boto3 sessions are not thread-safe
        self._sts = self._client("sts")
        self._s3 = self._client("s3")
        self._iam = options.inspector or self._client("iam")
        self._source = ""

    def _client(self, service: str, **credentials: str) -> Any:
        with self._client_lock:
            return self._session.client(
                service, region_name=self._targets.region, config=self._config, **credentials
            )

    def identity(self) -> str:
        """The caller's ARN; missing or rejected credentials are a usage error (exit 2)."""
        try:
            return str(self._sts.get_caller_identity()["Arn"])
        except NoCredentialsError:
            raise UsageError(
                "no usable AWS credentials: set AWS_PROFILE or the AWS_* variables, "
                "or run on the host (instance metadata)"
            ) from None
        except ClientError as err:
            if error_code(err) in CREDENTIAL_ERRORS:
                raise UsageError(f"AWS rejected the credentials: {describe(err)}") from None
            raise UsageError(f"sts:GetCallerIdentity failed: {describe(err)}") from None
        except BotoCoreError as err:
            raise UsageError(f"cannot reach AWS STS: {err}") from None

    def run(self, names: Sequence[str]) -> Report:
        """Check the named services (all when empty) and report on each."""
        source = self._source = self.identity()
        if self._targets.topology == "dedicated":
            own = self._own_service(source)
            if names and list(names) != [own]:  # empty: the caller's own service
                raise UsageError(f"these credentials are {own}'s role; --service must be {own}")
            names, check = [own], self._check_dedicated
        else:
            host_role = self._targets.host_role_arn
            if host_role and role_of(source) != host_role and source != host_role:
                log.warning("checking as %s, not the host role %s", source, host_role)
            names, check = list(names) or list(self._targets.services), self._check_shared
        with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
            results = list(pool.map(check, names))
        return Report(source=source, services=dict(zip(names, results, strict=True)))

    def _own_service(self, source: str) -> str:
        role = role_of(source)
        for name, target in self._targets.services.items():
            if role is not None and role.rsplit("/", 1)[-1] == target.role_name:
                return name
        raise UsageError(
            f"dedicated topology: the caller {source} is none of the stack's service roles; "
            "run the check on a service's own instance"
        )

    def _check_shared(self, name: str) -> ServiceResult:
        target = self._targets.services[name]
        steps = [self._expect_denied("direct access denied", self._s3, target, "the caller")]
        step, s3 = self._assume(target)
        steps.append(step)
        if s3 is not None:
            steps += self._exercise(s3, target)
        return ServiceResult(steps)

    def _check_dedicated(self, name: str) -> ServiceResult:
        return ServiceResult(self._exercise(self._s3, self._targets.services[name]))

    def _retry_denied(self, what: str, call: Callable[[], Any], deadline: float) -> tuple[Any, int]:
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

    def _assume(self, target: ServiceTarget) -> tuple[Step, Any]:
        session_name = f"ec2-assume-role-check-{uuid.uuid4().hex[:12]}"
        deadline = self._options.clock() + self._options.wait_seconds
        timer = _Timer()
        try:
            response, retries = self._retry_denied(
                f"AssumeRole on {target.role_arn}",
                lambda: self._sts.assume_role(
                    RoleArn=target.role_arn,
                    RoleSessionName=session_name,
                    DurationSeconds=SESSION_SECONDS,
                ),
                deadline,
            )
        except ClientError as err:
            if error_code(err) not in DENIED:
                return Step("assume role", False, timer.ms, describe(err)), None
            detail = explain_assume_denied(self._iam, self._source, target, describe(err))
            return Step("assume role", False, timer.ms, detail), None
        except BotoCoreError as err:  # a timeout or an unreachable endpoint
            return Step("assume role", False, timer.ms, f"cannot reach STS: {err}"), None
        credentials = response["Credentials"]
        s3 = self._client(
            "s3",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        waited = f" after {retries} retries (IAM propagation)" if retries else ""
        detail = f"session {session_name} of {target.role_arn}{waited}"
        return Step("assume role", True, timer.ms, detail), s3

    def _exercise(self, s3: Any, target: ServiceTarget) -> list[Step]:
        """List, then put a unique object, read it back, and always delete it."""
        owner = {"Bucket": target.bucket_name, "ExpectedBucketOwner": target.account}
        deadline = self._options.clock() + self._options.wait_seconds
        steps: list[Step] = []
        timer = _Timer()
        try:
            self._retry_denied(
                f"ListObjectsV2 on {target.bucket_name}",
                lambda: s3.list_objects_v2(Prefix=RESERVED_PREFIX, MaxKeys=1, **owner),
                deadline,
            )
            steps.append(Step("list", True, timer.ms, f"listed {target.bucket_name}"))
        except (ClientError, BotoCoreError) as err:
            steps.append(Step("list", False, timer.ms, _explain(err, "s3:ListBucket", target)))
        key = f"{RESERVED_PREFIX}{uuid.uuid4().hex}"
        body = os.urandom(32) + f" ec2-assume-role check of {target.name}\n".encode()
        written = False
        try:
            timer = _Timer()
            try:
                s3.put_object(Key=key, Body=body, IfNoneMatch="*", **owner)
                written = True
                steps.append(Step("put", True, timer.ms, f"wrote {len(body)} bytes to {key}"))
            except ClientError as err:
                steps.append(Step("put", False, timer.ms, _explain(err, "s3:PutObject", target)))
            except BotoCoreError as err:
                written = True  # the request may have landed: clean up to be sure
                steps.append(Step("put", False, timer.ms, describe(err)))
            if written and steps[-1].ok:
                steps.append(self._read_back(s3, owner, key, body, target))
        finally:
            if written:
                steps.append(self._delete(s3, owner, key, target))
        if len(self._targets.services) > 1:
            steps.append(self._isolation(s3, target))
        return steps

    def _read_back(
        self, s3: Any, owner: dict[str, str], key: str, body: bytes, target: ServiceTarget
    ) -> Step:
        timer = _Timer()
        try:
            data = s3.get_object(Key=key, **owner)["Body"].read()
        except (ClientError, BotoCoreError) as err:
            return Step("get", False, timer.ms, _explain(err, "s3:GetObject", target))
        if data != body:
            detail = f"read back {len(data)} bytes that differ from the {len(body)} written"
            return Step("get", False, timer.ms, detail)
        return Step("get", True, timer.ms, f"read back {len(data)} identical bytes")

    def _delete(self, s3: Any, owner: dict[str, str], key: str, target: ServiceTarget) -> Step:
        timer = _Timer()
        try:
            s3.delete_object(Key=key, **owner)
        except (ClientError, BotoCoreError) as err:
            left = f" The test object s3://{target.bucket_name}/{key} is left behind."
            return Step("delete", False, timer.ms, _explain(err, "s3:DeleteObject", target) + left)
        return Step("delete", True, timer.ms, f"deleted {key}")

    def _expect_denied(self, step: str, s3: Any, target: ServiceTarget, who: str) -> Step:
        """A first-class negative expectation: listing this bucket must be AccessDenied."""
        timer = _Timer()
        try:
            s3.list_objects_v2(
                Bucket=target.bucket_name, MaxKeys=1, ExpectedBucketOwner=target.account
            )
        except ClientError as err:
            if error_code(err) in DENIED:
                return Step(step, True, timer.ms, f"{who} is denied on {target.bucket_name}")
            return Step(step, False, timer.ms, not_denied(describe(err)))
        except BotoCoreError as err:
            return Step(step, False, timer.ms, not_denied(describe(err)))
        return Step(step, False, timer.ms, over_privileged(who, target))

    def _isolation(self, s3: Any, target: ServiceTarget) -> Step:
        """This service's credentials must be denied on every other service's bucket."""
        others = [t for n, t in self._targets.services.items() if n != target.name]
        who = f"{target.name}'s role"
        timer = _Timer()
        with ThreadPoolExecutor(max_workers=min(8, len(others))) as pool:
            probes = list(pool.map(lambda o: self._expect_denied("isolation", s3, o, who), others))
        failed = [p.detail for p in probes if not p.ok]
        if failed:
            return Step("isolation", False, timer.ms, " ".join(failed))
        names = ", ".join(o.name for o in others)
        return Step("isolation", True, timer.ms, f"denied on the buckets of {names}")


def _explain(err: Exception, action: str, target: ServiceTarget) -> str:
    code = error_code(err) if isinstance(err, ClientError) else None
    return s3_failure(code, describe(err), action, target)

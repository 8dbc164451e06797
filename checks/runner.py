"""The expectations, for every selected service at once, in three phases.

Shared topology, from the host role (or whoever the caller is):
1. per service: assume role -> list -> put (its own test object) -> get (read it back);
2. every identity that must not reach a bucket probes it (checks.probes): the host role on
   every bucket ("direct access denied"), each service role on every other service's bucket
   ("isolation"), each of list, get, put and delete, aimed at the owner's live test object;
3. per service: delete its test object.
Dedicated topology, from a service's own instance role: its own bucket, then isolation.

The whole run has a deadline; what has not finished by then is reported as such, and the run
fails. Nothing here prints or logs a credential: assumed keys live only in the clients.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from checks.cleanup import PendingObjects
from checks.contract import RESERVED_PREFIX
from checks.diagnose import explain_assume_denied
from checks.explain import describe, error_code
from checks.isolation import ProofTask, assemble_probes, plan_probes
from checks.options import CheckOptions
from checks.own_bucket import OwnBucket, Prepared, Timer
from checks.plan import DENIED
from checks.probes import TestObject
from checks.progress import Progress
from checks.report import Report, ServiceResult, Step
from checks.signals import deferred
from checks.stack_outputs import CheckError, ServiceTarget, Targets, UsageError
from checks.trust import role_of
from checks.work import Deadline, WorkPool, client_config, reraise, result_or, wait_until

__all__ = ["RESERVED_PREFIX", "CheckOptions", "Checker"]

log = logging.getLogger(__name__)

SESSION_SECONDS = 900
"""The check needs minutes at most; role chaining would cap any session at 3600 s anyway."""
CREDENTIAL_ERRORS = frozenset(
    {"InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch"}
)


class Checker:
    """Runs every expectation for the selected services; clients are made once per identity."""

    def __init__(self, session: boto3.Session, targets: Targets, options: CheckOptions) -> None:
        self._session = session
        self._targets = targets
        self._options = options
        self._config = client_config(options.deadline_seconds, options.workers)
        self._sts = self._client("sts")
        self._s3 = self._client("s3")
        self._iam = options.inspector or self._client("iam")
        self._source = ""
        self.pending = PendingObjects()
        self._objects: dict[str, TestObject] = {}
        self.tasks: list[ProofTask] = []
        """After `run`: every negative probe, by identity and bucket (the rehearsal's matrix)."""

    def _client(self, service: str, config: Config | None = None, **credentials: str) -> Any:
        return self._session.client(
            service,
            region_name=self._targets.region,
            config=config or self._config,
            **credentials,
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
        except BotoCoreError as err:  # not bad input: the endpoint failed (exit 1)
            raise CheckError(f"cannot reach AWS STS: {err}") from None

    def run(self, names: Sequence[str]) -> Report:
        """Check the named services (all when empty) and report on each."""
        deadline = Deadline(self._options.deadline_seconds, self._options.clock)
        pool = WorkPool(self._options.workers)
        progress = self._options.progress or Progress(quiet=True)
        try:
            report = self._run(list(names), pool, deadline, progress)
        finally:
            # A signal now must not cut the cleanup short: it is raised once the flush is done.
            with deferred():
                progress.close()
                pool.cancel()
                self.pending.flush()
                pool.close()
        self._credit_flushed(report)
        return report

    def _run(
        self, names: list[str], pool: WorkPool, deadline: Deadline, progress: Progress
    ) -> Report:
        asked = pool.submit(self.identity)
        if not wait_until([asked], deadline):
            raise CheckError(
                f"STS did not answer GetCallerIdentity within the deadline "
                f"({deadline.seconds:.0f} s, --deadline)"
            )
        source = self._source = asked.result()
        shared = self._targets.topology != "dedicated"
        names = self._select(source, names, shared)
        prepared = {name: Prepared(name) for name in names}
        progress.start(len(names))
        phase1 = {
            p.name: pool.submit(
                partial(_then, partial(self._prepare, p, shared), progress.service_done)
            )
            for p in prepared.values()
        }
        in_time = wait_until(phase1.values(), deadline)
        reraise(phase1.values())
        # Probes need every owner's test object in place, so they start once phase 1 is over;
        # deletes aim at objects the gets must still find, so they go last.
        tasks = self.tasks = plan_probes(
            self._targets,
            prepared,
            self._s3,
            shared,
            self._options.sample,
            self._options.peer_objects,
            self.pending,
        )
        progress.planned(4 * len(tasks))
        for kinds in (("list", "get", "put"), ("delete",)):
            if in_time:  # planned but never run, they are reported as not proven
                done = partial(progress.probes_done, len(kinds))
                futures = [pool.submit(partial(_then, partial(t.run, kinds), done)) for t in tasks]
                in_time = wait_until(futures, deadline)
                reraise(futures)
        own = self._own
        deletes = {p.name: pool.submit(partial(own.delete, p)) for p in prepared.values() if p.obj}
        wait_until(deletes.values(), deadline)
        reraise(deletes.values())
        probe_steps = assemble_probes(tasks, deadline, self._options.without_peer_get)
        late = f"did not finish before the deadline ({deadline.seconds:.0f} s, --deadline)"
        results: dict[str, ServiceResult] = {}
        for name in names:
            steps = [
                probe_steps.get((name, "direct access denied")),
                *prepared[name].steps,
                probe_steps.get((name, "isolation")),
            ]
            if name in deletes:
                steps.append(result_or(deletes[name], Step("delete", False, 0, late)))
            if not phase1[name].done():
                steps.append(Step("finished", False, 0, late))
            results[name] = ServiceResult([s for s in steps if s is not None])
        self._objects = {p.name: p.obj for p in prepared.values() if p.obj}
        planned = sum(len(t.expected) for t in tasks)
        probed = sum(len(t.probes) for t in tasks)
        proof = {"planned": planned, "done": probed, "sample": self._options.sample}
        return Report(source=source, services=results, extra={"proof": proof})

    def _credit_flushed(self, report: Report) -> None:
        """A delete step the deadline cut short, whose object the final cleanup did delete,
        says so: the object is gone (the run still fails on what was not proven)."""
        for name, obj in self._objects.items():
            target = self._targets.services[name]
            if (target.bucket_name, obj.key) not in self.pending.flushed:
                continue
            result = report.services[name]
            result.steps = [
                Step("delete", True, s.ms, f"deleted {obj.key} (by the final cleanup)")
                if s.name == "delete" and not s.ok
                else s
                for s in result.steps
            ]

    def _select(self, source: str, names: list[str], shared: bool) -> list[str]:
        if not shared:
            own = self._own_service(source)
            if names and names != [own]:  # empty: the caller's own service
                raise UsageError(f"these credentials are {own}'s role; --service must be {own}")
            return [own]
        host_role = self._targets.host_role_arn
        if host_role and role_of(source) != host_role and source != host_role:
            log.warning("checking as %s, not the host role %s", source, host_role)
        return names or list(self._targets.services)

    def _own_service(self, source: str) -> str:
        role = role_of(source)
        for name, target in self._targets.services.items():
            if role is not None and role.rsplit("/", 1)[-1] == target.role_name:
                return name
        raise UsageError(
            f"dedicated topology: the caller {source} is none of the stack's service roles; "
            "run the check on a service's own instance"
        )

    @property
    def _own(self) -> OwnBucket:
        return OwnBucket(self._options, self.pending)

    def _prepare(self, prepared: Prepared, shared: bool) -> None:
        target = self._targets.services[prepared.name]
        if shared:
            step, s3 = self._assume(target)
            prepared.steps.append(step)
            if s3 is None:
                return
        else:
            s3 = self._s3
        prepared.s3 = s3

        # The final cleanup reuses this client: making one per service at flush time costs
        # ~50 ms of CPU each (15 s at 300 services), and the flush is bounded by itself.
        self._own.exercise(prepared, target, lambda: s3)

    def _assume(self, target: ServiceTarget) -> tuple[Step, Any]:
        session_name = f"ec2-assume-role-check-{uuid.uuid4().hex[:12]}"
        deadline = self._options.clock() + self._options.wait_seconds
        timer = Timer()
        try:
            response, retries = self._own.retry_denied(
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
        raw = response["Credentials"]
        credentials = {
            "aws_access_key_id": raw["AccessKeyId"],
            "aws_secret_access_key": raw["SecretAccessKey"],
            "aws_session_token": raw["SessionToken"],
        }
        waited = f" after {retries} retries (IAM propagation)" if retries else ""
        detail = f"session {session_name} of {target.role_arn}{waited}"
        return Step("assume role", True, timer.ms, detail), self._client("s3", **credentials)


def _then(call: Callable[[], Any], after: Callable[[], None]) -> Any:
    result = call()
    after()
    return result

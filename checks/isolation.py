"""Who must not reach which bucket: plan the probes, run them, and turn them into steps.

Shared topology: the host role probes every checked bucket (the bucket owner's step "direct
access denied"), and every service role probes every other checked bucket (its own step
"isolation"), so a leak fails the step of the identity that leaks. Dedicated topology: the
instance's own role probes every other bucket with list, a put and an unconditional delete of
unique keys (an allowed delete of a missing key answers 204, so a denial proves something),
and a get of an object the owner wrote, which one instance alone cannot have: without one
(the rehearsal plants them) the get is not proven, and the step fails unless the user accepts
the gap with --without-peer-get.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.cleanup import PendingObjects, Written
from checks.contract import RESERVED_PREFIX
from checks.explain import host_policies, over_privileged, service_policies
from checks.own_bucket import Prepared
from checks.plan import ACTIONS, HOST, Verdict, shared_pairs
from checks.probes import NO_TEST_OBJECT, Probe, TestObject, bucket_args, judged, probe
from checks.report import Step
from checks.stack_outputs import ServiceTarget, Targets
from checks.work import Deadline

DIRECT, ISOLATION = "direct access denied", "isolation"
NAMES_SHOWN = 5
NO_PEER_OBJECT = (
    "not proven from this instance: a get needs an object in that bucket, which only that "
    "service's own instance can write (the rehearsal proves it; --without-peer-get accepts "
    "the gap)"
)


@dataclass
class ProofTask:
    """One identity against one bucket: its probes, run in two rounds."""

    who: str
    step: tuple[str, str]
    """(service, step name) the outcome belongs to: the identity that would leak."""
    look_at: str
    s3: Any
    target: ServiceTarget
    obj: TestObject | None
    dedicated: bool = False
    sampled: bool = False
    """Part of a sample (--sample): the step says how many buckets it covered."""
    pending: PendingObjects | None = None
    """Dedicated: where a put probe records its key before it is sent (the final cleanup)."""
    probes: list[Probe] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    def run(self, actions: Iterable[str]) -> None:
        self.started = self.started or time.perf_counter()
        for action in actions:
            if self.dedicated and action == "put":
                self.probes.append(self._put_unique())
            elif self.dedicated and action == "delete":
                self.probes.append(self._delete_unique())
            elif self.dedicated and action == "get" and self.obj is None:
                continue  # nothing of the owner's to aim at: step_of says NO_PEER_OBJECT
            else:
                self.probes.append(probe(self.s3, self.who, action, self.target, self.obj))
        self.ended = time.perf_counter()

    @property
    def expected(self) -> tuple[str, ...]:
        """The actions this task must probe: all four, but for a dedicated role with no
        object of the owner's to aim a get at."""
        return ("list", "put", "delete") if self.dedicated and self.obj is None else ACTIONS

    def _put_unique(self) -> Probe:
        """Dedicated: a new key; if it lands, the leak is reported and the object removed."""
        key = f"{RESERVED_PREFIX}{uuid.uuid4().hex}"
        bucket = self.target.bucket_name
        if self.pending is not None:  # before it is sent: a signal now still cleans it up
            self.pending.add(Written(bucket, key, self.target.account, lambda: self.s3))
        try:
            self.s3.put_object(Key=key, Body=b"", IfNoneMatch="*", **bucket_args(self.target))
        except (ClientError, BotoCoreError) as err:
            verdict, why = judged(err, "put")
            if verdict is Verdict.DENIED and self.pending is not None:
                self.pending.done(bucket, key)  # nothing was written
            return Probe(self.who, "put", self.target, verdict, why)
        finally:
            if self.pending is not None:
                self.pending.settled(bucket, key)
        try:
            self.s3.delete_object(Key=key, **bucket_args(self.target))
            note = "it wrote an object, since deleted"
            if self.pending is not None:
                self.pending.done(bucket, key)
        except (ClientError, BotoCoreError):
            note = f"it wrote s3://{bucket}/{key}, which it cannot delete"
        return Probe(self.who, "put", self.target, Verdict.ALLOWED, note)

    def _delete_unique(self) -> Probe:
        """Dedicated: delete a key that never existed. S3 answers an allowed delete of a
        missing key with 204 whatever s3:ListBucket says, so AccessDenied proves denial."""
        key = f"{RESERVED_PREFIX}{uuid.uuid4().hex}"
        try:
            self.s3.delete_object(Key=key, **bucket_args(self.target))
        except (ClientError, BotoCoreError) as err:
            return Probe(self.who, "delete", self.target, *judged(err, "delete"))
        note = (
            f"it may delete any object there (on a versioned bucket it left a delete marker at "
            f"{key}, which the lifecycle rule removes)"
        )
        return Probe(self.who, "delete", self.target, Verdict.ALLOWED, note)


def plan_probes(
    targets: Targets,
    prepared: Mapping[str, Prepared],
    caller_s3: Any,
    shared: bool,
    sample: int | None = None,
    peers: Mapping[str, TestObject] | None = None,
    pending: PendingObjects | None = None,
) -> list[ProofTask]:
    """Shared: the host and every service role on the others' live test objects. Dedicated:
    the caller's role on every other bucket, its get aimed at `peers` (an object per bucket
    that someone else wrote: the rehearsal plants them)."""
    if shared:
        pairs = shared_pairs(list(prepared), sample)
        look = host_policies(targets.host_role_arn)
        tasks = [
            ProofTask(
                "the host role",
                (name, DIRECT),
                look,
                caller_s3,
                targets.services[name],
                prepared[name].obj,
            )
            for name in pairs.pop(HOST)
        ]
        for name, owners in pairs.items():
            mine = prepared[name]
            if mine.s3 is None:
                continue  # the role could not be assumed: that step has failed already
            look = service_policies(targets.services[name])
            tasks += [
                ProofTask(
                    f"{name}'s role",
                    (name, ISOLATION),
                    look,
                    mine.s3,
                    targets.services[o],
                    prepared[o].obj,
                    sampled=len(owners) < len(prepared) - 1,
                )
                for o in owners
            ]
        return tasks
    (name,) = prepared
    look = service_policies(targets.services[name])
    return [
        ProofTask(
            f"{name}'s role",
            (name, ISOLATION),
            look,
            caller_s3,
            t,
            (peers or {}).get(other),
            dedicated=True,
            pending=pending,
        )
        for other, t in targets.services.items()
        if other != name
    ]


def _names(names: list[str]) -> str:
    if len(names) <= NAMES_SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[:NAMES_SHOWN])} and {len(names) - NAMES_SHOWN} more"


def step_of(
    key: tuple[str, str],
    tasks: list[ProofTask],
    missing: str = "not run",
    ms: int | None = None,
    without_peer_get: bool = False,
) -> Step:
    """One step from an identity's probes: pass only when every probe was denied."""
    who = tasks[0].who
    leaks: dict[str, list[str]] = defaultdict(list)
    unproven: list[str] = []
    aimless: list[str] = []  # the owner's put failed; the owner's own steps fail for it
    no_get: list[str] = []  # dedicated, no peer object: get on these buckets is not proven
    traces: list[str] = []  # dedicated: what a leaking put or delete left behind
    for task in tasks:
        expected = task.expected
        if "get" not in expected:
            no_get.append(task.target.name)
            if not without_peer_get:
                unproven.append(f"get on {task.target.bucket_name}: {NO_PEER_OBJECT}")
        done = {p.action for p in task.probes}
        for p in task.probes:
            if p.verdict is Verdict.ALLOWED:
                leaks[task.target.name].append(p.action)
                if task.dedicated and p.action in ("put", "delete"):
                    traces.append(f"Its {p.action} probe on {task.target.bucket_name}: {p.detail}.")
            elif p.verdict is Verdict.UNPROVEN and p.detail == NO_TEST_OBJECT and key[1] != DIRECT:
                aimless.append(task.target.name)
            elif p.verdict is Verdict.UNPROVEN:
                unproven.append(f"{p.action} on {task.target.bucket_name}: {p.detail}")
        if not_done := [a for a in expected if a not in done]:
            unproven.append(f"{', '.join(not_done)} on {task.target.bucket_name}: {missing}")
    started = min((t.started for t in tasks if t.started), default=0.0)
    if ms is None:
        ms = round((max(t.ended for t in tasks) - started) * 1000) if started else 0
    by_name = {t.target.name: t for t in tasks}
    if leaks or unproven:
        parts = [
            over_privileged(who, actions, by_name[owner].target, tasks[0].look_at)
            for owner, actions in sorted(leaks.items())
        ]
        parts += traces
        if unproven:
            shown = "; ".join(unproven[:NAMES_SHOWN])
            more = (
                f" (and {len(unproven) - NAMES_SHOWN} more)" if len(unproven) > NAMES_SHOWN else ""
            )
            parts.append(f"Not proven, so not passed: {shown}{more}.")
        return Step(key[1], False, ms, " ".join(parts))
    denied = "list, get, put and delete" if not no_get else "list, put and delete"
    buckets = [t.target.bucket_name if key[1] == DIRECT else t.target.name for t in tasks]
    where = buckets[0] if key[1] == DIRECT else f"the buckets of {_names(buckets)}"
    extra = ""
    if no_get:  # only with --without-peer-get does a step with this gap get here
        extra = (
            f"; get on the buckets of {_names(no_get)} is not proven from this instance "
            "(accepted: --without-peer-get)"
        )
    if tasks[0].sampled:
        noun = "bucket" if len(tasks) == 1 else "buckets"
        extra += f" (a sample of {len(tasks)} {noun}, in rotation)"
    if aimless:
        names = _names(sorted(set(aimless)))
        extra += f"; only list on the buckets of {names}, which hold no test object (see them)"
    return Step(key[1], True, ms, f"{who} is denied {denied} on {where}{extra}")


def assemble_probes(
    tasks: list[ProofTask], deadline: Deadline, without_peer_get: bool = False
) -> dict[tuple[str, str], Step]:
    """One step per (service, step name) that had probes planned."""
    grouped: dict[tuple[str, str], list[ProofTask]] = defaultdict(list)
    for task in tasks:
        grouped[task.step].append(task)
    missing = "the deadline passed first" if deadline.expired() else "not run"
    return {
        key: step_of(key, group, missing, without_peer_get=without_peer_get)
        for key, group in grouped.items()
    }

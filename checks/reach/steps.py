"""The reach proof as the check reports it: one `reach` step per service, and the JSON part.

Every finding fails the step of each service it reaches, naming the path, the document that
grants it and the fix. A proof that could not read the documents fails every step it owes,
naming the missing permission, unless the user accepted the gap (--without-reach).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from checks.contract import RESERVED_PREFIX
from checks.reach.proof import Expected, Proof, prove
from checks.reach.read import (
    KEY_READ_ACTIONS,
    POLICY_READERS,
    READ_ACTIONS,
    ReadDenied,
    ReadFailed,
    read_account,
    read_bucket_policies,
    read_keys,
)
from checks.report import Report, ServiceResult, Step
from checks.stack_outputs import Targets
from checks.work import Deadline, WorkPool, client_config, wait_until

STEP = "reach"
READ_FIX = (
    f"the reader needs {' and '.join(READ_ACTIONS)}, and {' and '.join(KEY_READ_ACTIONS)} for "
    "SSE-KMS services (the read policy in docs/check.md): run with "
    "credentials that have them, or --audit-profile NAME; --without-reach accepts the gap"
)


@dataclass
class Reach:
    steps: dict[str, Step] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    """The report's `reach` key: edges, findings, who reaches the host, what was not covered."""


def expected_of(targets: Targets, names: Sequence[str]) -> Expected:
    return Expected(
        roles={n: t.role_arn for n, t in targets.services.items()},
        buckets={n: (t.bucket_name, t.bucket_arn) for n, t in targets.services.items()},
        selected=list(names),
        host=targets.host_role_arn if targets.topology == "shared" else None,
        check_prefix=RESERVED_PREFIX,
        keys={n: t.kms_key_arn for n, t in targets.services.items() if t.kms_key_arn},
    )


class PendingReach:
    """The reach proof, running beside the probes on daemon threads, within the deadline."""

    def __init__(
        self, reader: Any, targets: Targets, names: Sequence[str], deadline: Deadline
    ) -> None:
        self.targets, self.deadline = targets, deadline
        self.names = list(names) or list(targets.services)
        self._started = time.perf_counter()
        self._pool = WorkPool(POLICY_READERS + 1)
        self._future = self._pool.submit(lambda: self._run(reader))

    def _run(self, reader: Any) -> Reach:
        targets, names = self.targets, self.names
        config = client_config(self.deadline.seconds, POLICY_READERS)
        try:
            account = read_account(reader.client("iam", region_name=targets.region, config=config))
            buckets = {targets.services[n].bucket_name: targets.services[n].account for n in names}
            s3 = reader.client("s3", region_name=targets.region, config=config)
            policies = read_bucket_policies(s3, buckets, self._pool, self.deadline)
            wanted = [k for n in names if (k := targets.services[n].kms_key_arn)]
            keys = {}
            if wanted:
                kms = reader.client("kms", region_name=targets.region, config=config)
                keys = read_keys(kms, wanted, self._pool, self.deadline)
        except (ReadDenied, ReadFailed) as err:
            fix = f"; {READ_FIX}" if isinstance(err, ReadDenied) else ""
            return self._failed(f"the reach proof could not read the documents: {err}{fix}")
        if self.deadline.expired():
            return self._failed("the reach proof read the documents after the deadline")
        proof = prove(account, policies, expected_of(targets, names), keys)
        ms = _ms(self._started)
        steps = {n: _step(n, targets, proof, len(account.roles), ms) for n in names}
        return Reach(steps=steps, summary=summary(proof, account_roles=len(account.roles)))

    def _failed(self, detail: str) -> Reach:
        ms = _ms(self._started)
        return Reach(
            steps={n: Step(STEP, False, ms, detail) for n in self.names},
            summary={"ok": False, "error": detail},
        )

    def result(self) -> Reach:
        """The proof, or a failed step for each service when the deadline came first."""
        try:
            if not wait_until([self._future], self.deadline):
                return self._failed(
                    "the reach proof did not finish before the deadline "
                    f"({self.deadline.seconds:.0f} s, --deadline)"
                )
            return self._future.result()
        finally:
            self._pool.close()


def run_reach(reader: Any, targets: Targets, names: Sequence[str], seconds: float = 300) -> Reach:
    """Read with `reader` (a boto3 Session), prove, and report on the named services."""
    return PendingReach(reader, targets, names, Deadline(seconds)).result()


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _step(name: str, targets: Targets, proof: Proof, roles: int, ms: int) -> Step:
    findings = proof.of(name)
    if findings:
        return Step(STEP, False, ms, "; ".join(str(f) for f in findings))
    bucket = targets.services[name].bucket_name
    others = sorted({o["identity"] for o in proof.others if o["bucket"] == bucket})
    outside = (
        f"; outside the stack's reach, {len(others)} identities hold grants on it (reported, "
        f"not judged: {', '.join(others[:3])}{', ...' if len(others) > 3 else ''})"
        if others
        else ""
    )
    key = targets.services[name].kms_key_arn
    keyed = (
        f" and its key {key}, with exactly kms:GenerateDataKey and kms:Decrypt (key policy, "
        "IAM and grants read)"
        if key
        else ""
    )
    return Step(
        STEP,
        True,
        ms,
        f"by documents: of the {proof.judged} identities the stack reaches ({roles} roles read), "
        f"only the {name} role reaches {bucket}, with exactly list, get, put and delete,{keyed} "
        f"and it reaches no role{outside}",
    )


def summary(proof: Proof, account_roles: int) -> dict[str, Any]:
    return {
        "ok": not proof.findings,
        "rolesRead": account_roles,
        "judged": proof.judged,
        "edges": [
            {
                "from": e.source,
                "to": e.target,
                "action": e.action,
                "documents": list(e.documents),
                "why": e.why,
            }
            for e in proof.edges
        ],
        "findings": [f.as_json() for f in proof.findings],
        "roleReach": sorted(
            f"{proof.labels[e.source]} → {proof.labels[e.target]}" for e in proof.edges
        ),
        "beyond": proof.beyond,
        "outsideTheStack": proof.others,
        "hostReachedBy": proof.host_reached_by,
        "notCovered": proof.not_covered,
    }


def with_reach(report: Report, pending: PendingReach) -> Report:
    """The report with each service's `reach` step first and the proof's JSON beside.

    Every service the proof covered gets its step, also those the probes did not check (a
    dedicated instance probes its own): a finding on another service fails the run too.
    """
    reach = pending.result()
    for name in pending.names:
        result = report.services.setdefault(name, ServiceResult())
        result.steps.insert(0, reach.steps[name])
    report.extra["reach"] = reach.summary
    return report

"""`--via-ssm`: run the check ON the shared host, from a laptop, through SSM Run Command.

The host runs `remote_check.sh` with the aws CLI and the profiles the stack wrote, so the
result is what the host itself can do. This side sends the script, waits for the instance to
register with SSM and for the command to finish (progress on stderr), then turns the host's
lines into the same report as the local check, adding cause and fix to each failure. Failed
AssumeRole calls are diagnosed with this side's credentials, which usually may read IAM.
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from importlib.resources import files
from typing import IO, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from checks.diagnose import explain_assume_denied
from checks.explain import (
    DENIED,
    code_of,
    describe,
    error_code,
    host_policies,
    s3_failure,
    service_policies,
)
from checks.host_report import OUTPUT_LIMIT, HostError, HostOutput, Proof, parse_host_output
from checks.isolation import DIRECT, ISOLATION, ProofTask, step_of
from checks.probes import ACTIONS, NO_TEST_OBJECT, Probe, Verdict
from checks.report import Report, ServiceResult, Step
from checks.targets import CheckError, ServiceTarget, Targets, UsageError

log = logging.getLogger(__name__)

S3_ACTIONS = {
    "list": "s3:ListBucket",
    "put": "s3:PutObject",
    "get": "s3:GetObject",
    "delete": "s3:DeleteObject",
}
RUNNING = frozenset({"Pending", "InProgress", "Delayed"})
FINISHED = frozenset({"Success", "Failed"})  # Failed: the script exited 1, a step failed
PREPARE_BATCH = 15
"""Services per prepare or cleanup command: 15 full reports fit SSM's 24,000 characters."""
PROBE_BATCH = 10
"""Identities per probe command: each line carries at most 60 findings."""
CLEANUP_MARGIN = 60
"""executionTimeout minus the body's own deadline: time for the script to clean up."""


class RemoteCheckError(CheckError):
    """The check could not run on the host; one line, exit 1."""


def render_script(
    targets: Targets,
    mode: str,
    batch: Sequence[str],
    probed: Sequence[str],
    run: str,
    wait_seconds: float,
    body_seconds: int,
) -> str:
    """The shell script for AWS-RunShellScript: the variables, then remote_check.sh.

    `batch` are service names, or `host` for the host role (probe mode); `probed` the services
    whose buckets each identity of the batch probes.
    """
    names = list(targets.services)
    account = next(iter(targets.services.values())).account

    def array(values: Sequence[str]) -> str:
        return "(" + " ".join(shlex.quote(v) for v in values) + ")"

    def index(name: str) -> str:
        return "h" if name == "host" else str(names.index(name))

    header = [
        "#!/bin/bash",
        f"MODE={shlex.quote(mode)}",
        f"ACCOUNT={shlex.quote(account)}",
        f"RUN={shlex.quote(run)}",
        f"WAIT_SECONDS={int(wait_seconds)}",
        f"BODY_SECONDS={int(body_seconds)}",
        f"PROFILES_SHA256={shlex.quote(targets.profiles_sha256 or '')}",
        f"SERVICES={array(names)}",
        f"BUCKETS={array([targets.services[n].bucket_name for n in names])}",
        f"BATCH={array([index(n) for n in batch])}",
        f"TARGETS={array([index(n) for n in probed])}",
    ]
    body = files("checks").joinpath("remote_check.sh").read_text()
    return "\n".join(header) + "\n" + body


ExplainAssume = Callable[[str, ServiceTarget, str], str]
"""(caller ARN, the service, the AWS message) -> cause and fix of an AssumeRole denial."""


def _explain(step: Step, target: ServiceTarget, source: str, explain_assume: ExplainAssume) -> Step:
    """Add cause and fix to a failed step the host reported with the CLI's own text."""
    if step.ok:
        return step
    detail = step.detail
    if step.name == "assume role" and code_of(detail) in DENIED:
        detail = explain_assume(source, target, detail)
    elif step.name in S3_ACTIONS and not detail.startswith("MISMATCH"):
        detail = s3_failure(code_of(detail), detail, S3_ACTIONS[step.name], target)
    return Step(step.name, False, step.ms, detail)


def _batches(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _message(err: ClientError) -> str:
    """One line, however the error body came back (a proxy or emulator may send raw XML)."""
    return " ".join(describe(err).split())[:400]


class SsmCommand:
    """Sends one shell script to one instance and waits for it, showing progress."""

    def __init__(
        self,
        ssm: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        progress: IO[str] = sys.stderr,
        poll_seconds: float = 3.0,
    ) -> None:
        self._ssm = ssm
        self._sleep = sleep
        self._clock = clock
        self._progress = progress
        self._poll = poll_seconds

    def _say(self, message: str) -> None:
        print(f"checks: {message}", file=self._progress, flush=True)

    def send(self, instance_id: str, script: str, run_seconds: int, register_seconds: float) -> str:
        """SendCommand, retrying while the instance is not yet registered with SSM."""
        start = self._clock()
        while True:
            try:
                response = self._ssm.send_command(
                    InstanceIds=[instance_id],
                    DocumentName="AWS-RunShellScript",
                    Comment="ec2-assume-role post-deploy check",
                    Parameters={"commands": [script], "executionTimeout": [str(run_seconds)]},
                    TimeoutSeconds=max(30, int(register_seconds)),
                )
                return str(response["Command"]["CommandId"])
            except ClientError as err:
                code = error_code(err)
                waited = self._clock() - start
                if code != "InvalidInstanceId":
                    raise RemoteCheckError(f"ssm:SendCommand failed: {_message(err)}") from None
                if waited >= register_seconds:
                    raise RemoteCheckError(
                        f"{instance_id} did not register with SSM in {waited:.0f}s; it needs a "
                        "running SSM agent, AmazonSSMManagedInstanceCore on its role, and a "
                        "route to the SSM endpoints"
                    ) from None
                self._say(f"waiting for {instance_id} to register with SSM ({waited:.0f}s)")
                self._sleep(self._poll)

    def wait(self, command_id: str, instance_id: str, timeout: float) -> dict[str, Any]:
        """Poll GetCommandInvocation until the command finishes."""
        start = self._clock()
        while True:
            try:
                invocation: dict[str, Any] = self._ssm.get_command_invocation(
                    CommandId=command_id, InstanceId=instance_id
                )
                status = str(invocation["Status"])
            except ClientError as err:
                if error_code(err) != "InvocationDoesNotExist":
                    raise RemoteCheckError(
                        f"ssm:GetCommandInvocation failed: {_message(err)}"
                    ) from None
                status = "Pending"  # SSM has not created the invocation yet
            else:
                if status in FINISHED:
                    return invocation
                if status not in RUNNING:
                    details = invocation.get("StatusDetails", status)
                    raise RemoteCheckError(f"SSM command {command_id} ended {status}: {details}")
            waited = self._clock() - start
            if waited >= timeout:
                raise RemoteCheckError(
                    f"SSM command {command_id} still {status} after {waited:.0f}s"
                )
            self._say(f"command {command_id} on {instance_id}: {status} ({waited:.0f}s)")
            self._sleep(self._poll)


def _incomplete(name: str, cut: bool, deadline: str) -> Step:
    if deadline:
        why = f"the script reached its own deadline ({deadline} s, --deadline)"
    elif cut:
        why = f"SSM returns only the first {OUTPUT_LIMIT:,} characters of output"
    else:
        why = "the script stopped before it finished"
    return Step("report complete", False, 0, f"the host's report for {name} is incomplete: {why}")


class _Phases:
    """Sends each phase's commands, one per batch, and gathers their parsed output."""

    def __init__(self, runner: SsmCommand, targets: Targets, options: dict[str, Any]) -> None:
        self.runner = runner
        self.targets = targets
        self.options = options
        self.source = ""

    def run(self, mode: str, batch: list[str], probed: Sequence[str]) -> HostOutput:
        instance = str(self.targets.host_instance_id)
        body = int(self.options["body"])
        script = render_script(
            self.targets, mode, batch, probed, self.options["run"], self.options["wait"], body
        )
        command_id = self.runner.send(
            instance, script, body + CLEANUP_MARGIN, self.options["register"]
        )
        invocation = self.runner.wait(command_id, instance, body + CLEANUP_MARGIN + 60)
        if invocation.get("StandardErrorContent"):
            log.info("host stderr: %s", str(invocation["StandardErrorContent"]).strip()[:2000])
        stdout = str(invocation.get("StandardOutputContent", ""))
        known = set(self.targets.services)
        try:
            output = parse_host_output(stdout, known, known | {"host"}, set(batch))
        except HostError as err:
            raise RemoteCheckError(str(err)) from None
        self.source = self.source or output.source
        return output


def _proof_step(
    step: str,
    who: str,
    proof: Proof | None,
    owners: list[ServiceTarget],
    look_at: str,
    with_object: set[str],
) -> Step:
    """The same step the local check builds, from an identity's PROOF line."""
    if proof is None or proof.pairs != len(owners):
        got = "no PROOF line" if proof is None else f"{proof.pairs} of {len(owners)} buckets"
        why = f"the host's report for {who} is incomplete ({got})"
        return Step(step, False, 0, f"{why}: not proven, so not passed")
    tasks = []
    for target in owners:
        task = ProofTask(who, (target.name, step), look_at, None, target, None)
        found = {f.action: f for f in proof.findings if f.service == target.name}
        for action in ACTIONS:
            finding = found.get(action)
            if target.name not in with_object and action != "list":
                # The owner wrote no test object: a denial aimed at a missing key proves nothing.
                verdict, detail = Verdict.UNPROVEN, NO_TEST_OBJECT
            elif finding is None:
                verdict, detail = Verdict.DENIED, "AccessDenied"
            elif finding.verdict == "allowed":
                verdict, detail = Verdict.ALLOWED, "allowed"
            else:
                verdict, detail = Verdict.UNPROVEN, f"got {finding.code or 'no answer'}"
            task.probes.append(Probe(who, action, target, verdict, detail))
        tasks.append(task)
    result = step_of((owners[0].name, step), tasks, ms=proof.ms)
    if proof.more:
        more = f" The host left {proof.more} more findings off its report."
        return Step(step, False, result.ms, result.detail + more)
    return result


def _assemble(
    targets: Targets,
    checked: list[str],
    outputs: list[HostOutput],
    explain_assume: ExplainAssume,
    source: str,
) -> Report:
    steps: dict[str, list[Step]] = {name: [] for name in checked}
    proofs: dict[str, Proof] = {}
    incomplete: dict[str, Step] = {}
    for output in outputs:
        for name, found in output.checks.items():
            steps[name] += [
                _explain(s, targets.services[name], source, explain_assume) for s in found
            ]
        proofs.update(output.proofs)
        for owner, lines in output.problems.items():
            for name in checked if owner == "*" else [owner] if owner in steps else checked:
                steps[name].append(Step("report", False, 0, "garbled host output: " + lines[0]))
    for output in outputs:
        for name in output.expected - output.ended:
            for service in checked if name == "host" else [name]:
                incomplete[service] = _incomplete(name, output.cut, output.deadline)
    results: dict[str, ServiceResult] = {}
    host_look = host_policies(targets.host_role_arn)
    with_object = {n for n in checked if any(s.name == "put" and s.ok for s in steps[n])}
    for name in checked:
        target = targets.services[name]
        others = [targets.services[o] for o in checked if o != name]
        direct = _proof_step(
            DIRECT,
            "the host role",
            _only(proofs.get("host"), name),
            [target],
            host_look,
            with_object,
        )
        ordered = [direct, *[s for s in steps[name] if s.name != "delete"]]
        if others and any(s.name == "assume role" and s.ok for s in steps[name]):
            ordered.append(
                _proof_step(
                    ISOLATION,
                    f"{name}'s role",
                    proofs.get(name),
                    others,
                    service_policies(target),
                    with_object,
                )
            )
        if name in with_object:  # nothing of the check's own to delete otherwise
            ordered += [s for s in steps[name] if s.name == "delete"]
        if name in incomplete:
            ordered.append(incomplete[name])
        results[name] = ServiceResult(ordered)
    return Report(source=source, services=results)


def _only(proof: Proof | None, name: str) -> Proof | None:
    """The host's proof narrowed to one bucket (its line covers them all)."""
    if proof is None:
        return None
    return Proof(1, proof.ms, [f for f in proof.findings if f.service == name], proof.more)


def run_via_ssm(
    session: boto3.Session,
    targets: Targets,
    names: Sequence[str],
    wait_seconds: float,
    deadline_seconds: float = 600.0,
    command: Callable[[Any], SsmCommand] = SsmCommand,
    register_seconds: float = 600.0,
) -> Report:
    """Prepare, probe and clean up on the host, each phase a command per batch of services."""
    if targets.topology != "shared" or not targets.host_instance_id:
        raise UsageError("--via-ssm needs a shared-topology stack with a hostInstanceId output")
    checked = list(names) or list(targets.services)
    ssm = session.client("ssm", region_name=targets.region)
    iam = session.client("iam", region_name=targets.region)
    options = {
        "run": uuid.uuid4().hex[:12],
        "wait": wait_seconds,
        "body": max(60, int(deadline_seconds) // 3),
        "register": register_seconds,
    }
    phases = _Phases(command(ssm), targets, options)
    outputs: list[HostOutput] = []
    prepared: list[str] = []
    try:
        for batch in _batches(checked, PREPARE_BATCH):
            prepared += batch  # before it is sent: an error midway still cleans it up
            outputs.append(phases.run("prepare", batch, []))
        assumed = [
            n
            for n in checked
            if any(s.name == "assume role" and s.ok for o in outputs for s in o.checks.get(n, []))
        ]
        for batch in _batches(["host", *assumed], PROBE_BATCH):
            outputs.append(phases.run("probe", batch, checked))
    except NoCredentialsError:
        raise UsageError(
            "no usable AWS credentials to send the SSM command: set AWS_PROFILE or AWS_*"
        ) from None
    except BotoCoreError as err:
        raise RemoteCheckError(f"cannot reach SSM: {err}") from None
    finally:
        # Whatever happened, the test objects the prepare phase wrote are deleted.
        # A leaking identity's put probe may have written where the owner's own put failed,
        # so every prepared service is cleaned up; delete-object of a missing key is harmless.
        for batch in _batches(prepared, PREPARE_BATCH):
            try:
                outputs.append(phases.run("cleanup", batch, []))
            except (CheckError, BotoCoreError) as err:
                log.warning(
                    "cleanup on the host failed (%s); the lifecycle rule expires the test "
                    "objects in a day",
                    err,
                )

    def explain_assume(source: str, target: ServiceTarget, message: str) -> str:
        return explain_assume_denied(iam, source, target, message)

    return _assemble(targets, checked, outputs, explain_assume, phases.source)

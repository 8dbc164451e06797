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
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from typing import IO, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from checks.contract import PROBE_ACTIONS, RESERVED_PREFIX
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
from checks.signals import deferred
from checks.stack_outputs import CheckError, ServiceTarget, Targets, UsageError

log = logging.getLogger(__name__)

RUNNING = frozenset({"Pending", "InProgress", "Delayed"})
FINISHED = frozenset({"Success", "Failed"})  # Failed: the script exited 1, a step failed
OUTPUT_BUDGET = OUTPUT_LIMIT - 2_000
"""What one command's lines may take, worst case, leaving room for SOURCE and DEADLINE."""
DETAIL_CHARS = 300
"""The script cuts every detail to this many characters (`clean`)."""
MAX_FINDINGS = 20
"""The script lists at most this many findings per identity, then `more:N` (remote_check.sh)."""
CODE_CHARS = 40
"""The script cuts every error code to this many characters (`code_of`)."""
MAX_JOBS = 8
"""aws CLI processes at once on the host: each is a Python process of ~60 MB, and a t3.micro
has 1 GiB; more would not be faster on its two vCPUs either."""
CLEANUP_MARGIN = 60
"""executionTimeout minus the script's own deadline: time for the script to clean up (25 s)."""
POLL_SLACK = 30
"""How much longer than executionTimeout the sender polls before it gives up on a command."""
CLEANUP_SCRIPT_SECONDS = 60
"""A cleanup command's own deadline: it always runs, even after the run's deadline."""
MIN_SCRIPT_SECONDS = 20
"""Less time than this left before the deadline: the command is not sent at all."""
SCRIPT_LIMIT = 48 * 1024
"""Bytes of script per command, a cap well inside what SendCommand accepts for a document's
parameters (the script is ~37 KB at 300 services with 32-character names)."""


def batch_sizes(names: Sequence[str]) -> dict[str, int]:
    """Items per command for each phase, so that no command's worst-case output (every line
    at its longest) passes SSM's 24,000 characters, whatever the service names."""
    longest = max((len(n) for n in names), default=4)
    line = 6 + longest + 1 + 12 + 1 + 1 + 1 + 9 + 1 + DETAIL_CHARS + 1  # one CHECK line
    end = 4 + longest + 1
    per_item = {
        "prepare": 4 * line + end,  # assume role, list, put, get
        "cleanup": line + end,  # delete
        # PROOF, identity, pairs, ms, findings of `service:action:verdict:code`, more:N
        "probe": 6 + longest + 12 + 10 + MAX_FINDINGS * (longest + 23 + CODE_CHARS) + 14 + end,
    }
    return {mode: max(1, OUTPUT_BUDGET // size) for mode, size in per_item.items()}


class RemoteCheckError(CheckError):
    """The check could not run on the host; one line, exit 1."""


def render_script(
    targets: Targets,
    mode: str,
    batch: Sequence[str],
    probed: Sequence[str] | Mapping[str, Sequence[str]],
    run: str,
    wait_seconds: float,
    script_seconds: int,
) -> str:
    """The shell script for AWS-RunShellScript: the variables, then remote_check.sh.

    `batch` are service names, or `host` for the host role (probe mode); `probed` the services
    whose buckets each identity of the batch probes (one list for all, or one per identity).
    """
    names = list(targets.services)
    account = next(iter(targets.services.values())).account

    def array(values: Sequence[str]) -> str:
        return "(" + " ".join(shlex.quote(v) for v in values) + ")"

    def index(name: str) -> str:
        return "h" if name == "host" else str(names.index(name))

    plan = probed if isinstance(probed, Mapping) else dict.fromkeys(batch, probed)
    probes = " ".join(
        f"[{index(who)}]=" + shlex.quote(" ".join(index(n) for n in plan.get(who, ())))
        for who in batch
    )
    header = [
        "#!/bin/bash",
        f"MODE={shlex.quote(mode)}",
        f"PREFIX={shlex.quote(RESERVED_PREFIX)}",
        f"ACCOUNT={shlex.quote(account)}",
        f"RUN={shlex.quote(run)}",
        f"WAIT_SECONDS={int(wait_seconds)}",
        f"SCRIPT_SECONDS={int(script_seconds)}",
        f"MAX_JOBS={MAX_JOBS}",
        f"PROFILES_SHA256={shlex.quote(targets.profiles_sha256 or '')}",
        f"SERVICES={array(names)}",
        f"BUCKETS={array([targets.services[n].bucket_name for n in names])}",
        f"BATCH={array([index(n) for n in batch])}",
        f"declare -A PROBES=({probes})",
    ]
    body = files("checks").joinpath("remote_check.sh").read_text()
    script = "\n".join(header) + "\n" + body
    if len(script.encode()) > SCRIPT_LIMIT:
        raise RemoteCheckError(
            f"the {mode} script is {len(script.encode()):,} bytes, over the {SCRIPT_LIMIT:,} "
            "that SSM accepts for a command's parameters"
        )
    return script


ExplainAssume = Callable[[str, ServiceTarget, str], str]
"""(caller ARN, the service, the AWS message) -> cause and fix of an AssumeRole denial."""


def _explain(step: Step, target: ServiceTarget, source: str, explain_assume: ExplainAssume) -> Step:
    """Add cause and fix to a failed step the host reported with the CLI's own text."""
    if step.ok:
        return step
    detail = step.detail
    if step.name == "assume role" and code_of(detail) in DENIED:
        detail = explain_assume(source, target, detail)
    elif step.name in PROBE_ACTIONS and not detail.startswith("MISMATCH"):
        detail = s3_failure(code_of(detail), detail, PROBE_ACTIONS[step.name], target)
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

    def send(
        self,
        instance_id: str,
        script: str,
        run_seconds: int,
        register_seconds: float,
        rescript: Callable[[], tuple[str, int]] | None = None,
    ) -> str:
        """SendCommand, retrying while the instance is not yet registered with SSM.

        `rescript` renders the script again before each retry: the time spent waiting for
        the registration comes off the script's own deadline, so it still ends in time.
        """
        start = self._clock()
        while True:
            if rescript is not None and self._clock() > start:
                script, run_seconds = rescript()
            try:
                response = self._ssm.send_command(
                    InstanceIds=[instance_id],
                    DocumentName="AWS-RunShellScript",
                    Comment="ec2-assume-role post-deploy check",
                    Parameters={"commands": [script], "executionTimeout": [str(run_seconds)]},
                    # Delivery: SSM's shortest. The instance is registered (or SendCommand
                    # said InvalidInstanceId), so a command that waits longer is not run late.
                    TimeoutSeconds=30,
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

    def await_association(self, association_id: str, instance_id: str, timeout: float) -> None:
        """Wait until the profiles association's latest version has run on the instance.

        A failed run ends the check with the association's own account of it. Where the
        sender may not read association status (or the endpoint cannot tell), the host-side
        wait for the file's SHA-256 still guards the check, so this only logs and returns.
        """
        start = self._clock()
        while True:
            try:
                described = self._ssm.describe_association(AssociationId=association_id)
                latest = str(described["AssociationDescription"].get("AssociationVersion", ""))
                infos = self._ssm.describe_instance_associations_status(InstanceId=instance_id)[
                    "InstanceAssociationStatusInfos"
                ]
            except (ClientError, BotoCoreError) as err:
                log.info("cannot read the association's status (%s); the host checks the file", err)
                return
            info = next((i for i in infos if i.get("AssociationId") == association_id), None)
            current = info is not None and str(info.get("AssociationVersion", "")) == latest
            status = str(info.get("Status", "")) if info else "not run yet"
            if current and status == "Success":
                return
            if info is not None and current and status == "Failed":
                what = info.get("ExecutionSummary") or info.get("DetailedStatus") or status
                where = (info.get("OutputUrl") or {}).get("S3OutputUrl", {}).get("OutputUrl", "")
                raise RemoteCheckError(
                    f"the profiles association {association_id} failed on {instance_id}: "
                    f"{' '.join(str(what).split())[:300]}"
                    + (f" (output: {where})" if where else "")
                    + "; fix the host, then `pulumi up` or wait for its next run"
                )
            waited = self._clock() - start
            if waited >= timeout:
                log.info("association %s: %s after %.0fs", association_id, status, waited)
                return  # the host waits for the file itself, and says so if it is stale
            self._say(f"waiting for association {association_id} on {instance_id}: {status}")
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
                try:  # it must not run on after the check has given up on it
                    self._ssm.cancel_command(CommandId=command_id, InstanceIds=[instance_id])
                except (ClientError, BotoCoreError) as err:
                    log.info("could not cancel %s: %s", command_id, err)
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
    """Sends each phase's commands, one per batch, within the run's deadline, and gathers
    their parsed output. What the deadline leaves unsent, or a command that fails, is
    recorded per service in `unfinished`."""

    def __init__(
        self,
        runner: SsmCommand,
        targets: Targets,
        checked: Sequence[str],
        options: dict[str, Any],
        clock: Callable[[], float],
    ) -> None:
        self.runner = runner
        self.targets = targets
        self.checked = set(checked)
        self.options = options
        self.clock = clock
        self.end = clock() + float(options["deadline"])
        self.source = ""
        self.outputs: list[HostOutput] = []
        self.unfinished: dict[str, Step] = {}

    def _left(self) -> int:
        """Seconds a script may still run: executionTimeout and polling end by the deadline."""
        return int(self.end - self.clock()) - CLEANUP_MARGIN - POLL_SLACK

    def _owners(self, batch: Sequence[str]) -> list[str]:
        return sorted(self.checked) if "host" in batch else list(batch)

    def run(
        self,
        mode: str,
        batch: list[str],
        probed: Sequence[str] | Mapping[str, Sequence[str]],
        script_seconds: int | None = None,
    ) -> HostOutput | None:
        """One command; None when the deadline left no time to send it.

        `script_seconds` fixes the script's own deadline (cleanup); otherwise it is what the
        run's deadline leaves, reckoned again at each send, so that time spent waiting for
        the instance to register comes off it.
        """
        if script_seconds is None and self._left() < MIN_SCRIPT_SECONDS:
            for name in self._owners(batch):
                self.unfinished.setdefault(
                    name,
                    Step(
                        "report complete",
                        False,
                        0,
                        f"not proven: the deadline ({self.options['deadline']:.0f} s, "
                        f"--deadline) passed before the {mode} command for {name} was sent",
                    ),
                )
            return None
        instance = str(self.targets.host_instance_id)
        own = script_seconds or self._left()

        def render() -> tuple[str, int]:
            nonlocal own
            if script_seconds is None:
                own = max(MIN_SCRIPT_SECONDS, self._left())
            options = self.options
            script = render_script(
                self.targets, mode, batch, probed, options["run"], options["wait"], own
            )
            return script, own + CLEANUP_MARGIN

        script, timeout = render()
        # The registration wait must leave the script its minimum before the deadline.
        register = float(self.options["register"])
        if script_seconds is None:
            register = min(register, max(0.0, self._left() - MIN_SCRIPT_SECONDS))
        command_id = self.runner.send(instance, script, timeout, register, rescript=render)
        invocation = self.runner.wait(command_id, instance, own + CLEANUP_MARGIN + POLL_SLACK)
        if invocation.get("StandardErrorContent"):
            log.info("host stderr: %s", str(invocation["StandardErrorContent"]).strip()[:2000])
        stdout = str(invocation.get("StandardOutputContent", ""))
        try:
            output = parse_host_output(stdout, self.checked, self.checked | {"host"}, set(batch))
        except HostError as err:
            raise RemoteCheckError(str(err)) from None
        self.source = self.source or output.source
        self.outputs.append(output)
        return output

    def cleanup(self, batch: list[str]) -> None:
        """Always sent, deadline or not; a failure fails each service's delete step."""
        try:
            self.run("cleanup", batch, [], CLEANUP_SCRIPT_SECONDS)
        except (CheckError, BotoCoreError) as err:
            for name in batch:
                key = f"{RESERVED_PREFIX}{self.options['run']}/{name}"
                self.unfinished[name] = Step(
                    "delete",
                    False,
                    0,
                    f"the cleanup command failed ({err}); s3://"
                    f"{self.targets.services[name].bucket_name}/{key} may remain until the "
                    "bucket's lifecycle rule expires it, within a day",
                )


def _proof_step(
    step: str,
    who: str,
    proof: Proof | None,
    owners: list[ServiceTarget],
    look_at: str,
    with_object: set[str],
    sampled: bool = False,
) -> Step:
    """The same step the local check builds, from an identity's PROOF line."""
    if proof is None or proof.pairs != len(owners):
        got = "no PROOF line" if proof is None else f"{proof.pairs} of {len(owners)} buckets"
        why = f"the host's report for {who} is incomplete ({got})"
        return Step(step, False, 0, f"{why}: not proven, so not passed")
    tasks = []
    for target in owners:
        task = ProofTask(who, (target.name, step), look_at, None, target, None, sampled=sampled)
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


def _missing_steps(steps: list[Step]) -> list[str]:
    """The steps a service's report must hold, given how far it got, that it lacks: a host
    that stops mid-service, or ENDs early, must not pass on the steps it did report."""
    wanted = ["assume role"]
    if any(s.name == "assume role" and s.ok for s in steps):
        wanted += ["list", "put"]
    if any(s.name == "put" and s.ok for s in steps):
        wanted += ["get", "delete"]
    names = {s.name for s in steps}
    return [name for name in wanted if name not in names]


def _assemble(
    targets: Targets,
    checked: list[str],
    outputs: list[HostOutput],
    explain_assume: ExplainAssume,
    source: str,
    unfinished: dict[str, Step] | None = None,
    plan: Mapping[str, Sequence[str]] | None = None,
) -> Report:
    """The report from every command's parsed output. `unfinished`: a step for each service
    whose commands were never sent or never answered (the deadline, a failed cleanup)."""
    steps: dict[str, list[Step]] = {name: [] for name in checked}
    proofs: dict[str, Proof] = {}
    incomplete: dict[str, Step] = {}
    for output in outputs:
        for name, found in output.checks.items():
            steps.setdefault(name, []).extend(
                _explain(s, targets.services[name], source, explain_assume) for s in found
            )
        for who, proof in output.proofs.items():
            if who in proofs:  # sent in two commands: neither line may hide the other's leak
                steps[checked[0] if who == "host" else who].append(
                    Step("report", False, 0, f"garbled host output: two PROOF lines for {who}")
                )
            proofs[who] = proof
        for owner, lines in output.problems.items():
            for name in checked if owner == "*" else [owner] if owner in steps else checked:
                steps[name].append(Step("report", False, 0, "garbled host output: " + lines[0]))
    for output in outputs:
        for name in output.expected - output.ended:
            for service in checked if name == "host" else [name]:
                incomplete[service] = _incomplete(name, output.cut, output.deadline)
    for name, step in (unfinished or {}).items():
        if step.name == "delete":
            steps[name] = [s for s in steps[name] if s.name != "delete"] + [step]
        else:
            incomplete.setdefault(name, step)
    for name in checked:
        if name not in incomplete and (missing := _missing_steps(steps[name])):
            incomplete[name] = Step(
                "report complete",
                False,
                0,
                f"the host's report for {name} lacks its {', '.join(missing)} step: "
                "not proven, so not passed",
            )
    results: dict[str, ServiceResult] = {}
    host_look = host_policies(targets.host_role_arn)
    with_object = {n for n in checked if any(s.name == "put" and s.ok for s in steps[n])}
    for name in checked:
        target = targets.services[name]
        every = [o for o in checked if o != name]
        probed = list(plan[name]) if plan and name in plan else every
        others = [targets.services[o] for o in probed]
        direct = _proof_step(
            DIRECT,
            "the host role",
            _only(proofs.get("host"), name, len(checked)),
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
                    sampled=len(probed) < len(every),
                )
            )
        if name in with_object:  # nothing of the check's own to delete otherwise
            ordered += [s for s in steps[name] if s.name == "delete"]
        if name in incomplete:
            ordered.append(incomplete[name])
        results[name] = ServiceResult(ordered)
    return Report(source=source, services=results)


def _only(proof: Proof | None, name: str, buckets: int) -> Proof | None:
    """The host's proof narrowed to one bucket. Its line covers every checked bucket, and
    says how many it probed: fewer than all proves nothing for any of them."""
    if proof is None:
        return None
    pairs = 1 if proof.pairs == buckets else 0
    return Proof(pairs, proof.ms, [f for f in proof.findings if f.service == name], proof.more)


def probe_plan(checked: Sequence[str], sample: int | None) -> dict[str, list[str]]:
    """Identity -> the services whose buckets it probes: the host every one, each service
    role every other (or `sample` of them in rotation, as the local check does)."""
    order = list(checked)
    plan = {"host": order}
    for index, name in enumerate(order):
        count = len(order) - 1 if sample is None else min(sample, len(order) - 1)
        plan[name] = [order[(index + step) % len(order)] for step in range(1, count + 1)]
    return plan


def run_via_ssm(
    session: boto3.Session,
    targets: Targets,
    names: Sequence[str],
    wait_seconds: float,
    deadline_seconds: float = 300.0,
    command: Callable[[Any], SsmCommand] = SsmCommand,
    register_seconds: float = 600.0,
    sample: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Report:
    """Prepare, probe and clean up on the host, each phase a command per batch of services.

    Prepare and probe commands are sent only while the deadline allows; cleanup always runs.
    """
    if targets.topology != "shared" or not targets.host_instance_id:
        raise UsageError("--via-ssm needs a shared-topology stack with a hostInstanceId output")
    checked = list(names) or list(targets.services)
    ssm = session.client("ssm", region_name=targets.region)
    iam = session.client("iam", region_name=targets.region)
    options = {
        "run": uuid.uuid4().hex[:12],
        "wait": wait_seconds,
        "deadline": deadline_seconds,
        "register": register_seconds,
    }
    runner = command(ssm)
    phases = _Phases(runner, targets, checked, options, clock)
    sizes = batch_sizes(list(targets.services))
    plan = probe_plan(checked, sample)
    prepared: list[str] = []
    try:
        if targets.profiles_association_id:
            runner.await_association(
                targets.profiles_association_id, str(targets.host_instance_id), wait_seconds
            )
        for batch in _batches(checked, sizes["prepare"]):
            prepared += batch  # before it is sent: an error midway still cleans it up
            phases.run("prepare", batch, [])
        assumed = [
            n
            for n in checked
            if any(
                s.name == "assume role" and s.ok
                for o in phases.outputs
                for s in o.checks.get(n, [])
            )
        ]
        for batch in _batches(["host", *assumed], sizes["probe"]):
            phases.run("probe", batch, {who: plan[who] for who in batch})
    except NoCredentialsError:
        raise UsageError(
            "no usable AWS credentials to send the SSM command: set AWS_PROFILE or AWS_*"
        ) from None
    except BotoCoreError as err:
        raise RemoteCheckError(f"cannot reach SSM: {err}") from None
    finally:
        # Whatever happened, the test objects the prepare phase wrote are deleted. A leaking
        # identity's put probe may have written where the owner's own put failed, so every
        # prepared service is cleaned up; delete-object of a missing key is harmless.
        with deferred():  # a signal now waits until every cleanup batch has been sent
            for batch in _batches(prepared, sizes["cleanup"]):
                phases.cleanup(batch)

    def explain_assume(source: str, target: ServiceTarget, message: str) -> str:
        return explain_assume_denied(iam, source, target, message)

    return _assemble(
        targets,
        checked,
        phases.outputs,
        explain_assume,
        phases.source,
        phases.unfinished,
        {who: plan[who] for who in plan},
    )

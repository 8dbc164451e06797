"""`--via-ssm`: run the check ON the shared host, from a laptop, through SSM Run Command.

The host runs `remote_check.sh` with the aws CLI and the profiles the stack wrote, so the
result is what the host itself can do. The script decides nothing: this side plans every
request (`checks.plan`, the plan the local check runs), renders it into the script, and reads
each answer the host printed with the one function the local check uses (`checks.plan.judge`).
It also retries what IAM propagation denied, by sending the command again. It waits for the
instance to register with SSM and for each command to finish (progress on stderr), adds cause
and fix to each failure, and diagnoses failed AssumeRole calls with this side's credentials,
which usually may read IAM.
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

from checks.contract import PROBE_ACTIONS, RESERVED_PREFIX
from checks.diagnose import explain_assume_denied
from checks.explain import describe, error_code, host_policies, s3_failure, service_policies
from checks.host_report import OUTPUT_LIMIT, HostError, HostOutput, HostStep, parse_host_output
from checks.isolation import DIRECT, ISOLATION, ProofTask, step_of
from checks.plan import DENIED, HOST, Request, Verdict, judge, requests_of, shared_pairs
from checks.probes import NO_TEST_OBJECT, Probe
from checks.report import Report, ServiceResult, Step
from checks.signals import deferred
from checks.stack_outputs import CheckError, ServiceTarget, Targets, UsageError

log = logging.getLogger(__name__)

RUNNING = frozenset({"Pending", "InProgress", "Delayed"})
FINISHED = frozenset({"Success", "Failed"})
"""Failed: the script exited 2 after an ERROR line; it exits 0 whenever it ran, since the
sender, not the host, judges what it printed."""
OUTPUT_BUDGET = OUTPUT_LIMIT - 2_000
"""What one command's lines may take, worst case, leaving room for SOURCE and DEADLINE."""
DETAIL_CHARS = 300
"""The script cuts every detail to this many characters (`clean`)."""
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
parameters (at 300 services with 32-character names, the script without its requests is
~37 KB; `probes_per_command` fills the rest)."""
MAX_BACKOFF_SECONDS = 8.0
"""The longest pause between two tries of a prepare that IAM propagation denied."""
RETRIED_STEPS = ("assume role", "list")
"""The steps whose AccessDenied is retried while --wait lasts: new roles and policies take
seconds to propagate. The host stops a service after either fails, until the last try."""


def batch_sizes(names: Sequence[str], requests: int = 0) -> dict[str, int]:
    """Items per command for each phase, so that no command's worst-case output (every line
    at its longest) passes SSM's 24,000 characters, whatever the service names."""
    longest = max((len(n) for n in names), default=4)
    line = 6 + longest + 1 + 12 + 1 + CODE_CHARS + 1 + 9 + 1 + DETAIL_CHARS + 1  # one CHECK line
    end = 4 + longest + 1
    answer = 7 + len(str(max(requests, 1))) + 1 + CODE_CHARS + 1 + 9 + 1  # one ANSWER line
    per_item = {
        "prepare": 4 * line + end,  # assume role, list, put, get
        "cleanup": line + end,  # delete
        "probe": answer,
    }
    return {mode: max(1, OUTPUT_BUDGET // size) for mode, size in per_item.items()}


def probes_per_command(targets: Targets, requests: int) -> int:
    """Requests per probe command: as many as fit both SSM's output (`batch_sizes`) and the
    script's cap, with every request line at its longest."""
    by_output = batch_sizes(list(targets.services), requests)["probe"]
    widest_options = ("r" * 12, 10**9 - 1, 10**9 - 1)  # run id, --wait and the script's deadline
    empty = len(render_script(targets, "probe", [], *widest_options).encode())
    widest = len(
        f"{max(requests - 1, 0)} {len(targets.services) - 1} {len(targets.services) - 1} delete\n"
    )
    return max(1, min(by_output, (SCRIPT_LIMIT - empty - len("wait\n")) // widest))


class RemoteCheckError(CheckError):
    """The check could not run on the host; one line, exit 1."""


Numbered = Sequence[tuple[int, Request]]
"""A probe command's requests, each with its number in the plan."""


def render_script(
    targets: Targets,
    mode: str,
    batch: Sequence[str],
    run: str,
    wait_seconds: float,
    script_seconds: int,
    requests: Numbered = (),
    stop_at_failure: bool = False,
) -> str:
    """The shell script for AWS-RunShellScript: the variables, then remote_check.sh.

    `batch`: the services of a prepare or cleanup command; `requests`: a probe command's.
    Every list, get and put is answered before any delete is sent (`wait`), as in the plan.
    """
    names = list(targets.services)
    account = next(iter(targets.services.values())).account

    def array(values: Sequence[str]) -> str:
        return "(" + " ".join(shlex.quote(v) for v in values) + ")"

    def index(name: str) -> str:
        return "h" if name == HOST else str(names.index(name))

    lines: list[str] = []
    for number, request in requests:
        if request.action == "delete" and (not lines or "delete" not in lines[-1]):
            lines.append("wait")
        lines.append(f"{number} {index(request.who)} {index(request.owner)} {request.action}")
    header = [
        "#!/bin/bash",
        f"MODE={shlex.quote(mode)}",
        f"STOP_AT_FAILURE={int(stop_at_failure)}",
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
        f"REQUESTS={shlex.quote(chr(10).join(lines))}",
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


def _explain(found: HostStep, target: ServiceTarget, source: str, explain: ExplainAssume) -> Step:
    """The step, with cause and fix added to a failure the host reported in the CLI's words."""
    if found.ok:
        return found.step()
    detail = found.detail
    if found.name == "assume role" and found.code in DENIED:
        detail = explain(source, target, detail)
    elif found.name in PROBE_ACTIONS and found.code != "MISMATCH":
        detail = s3_failure(found.code, detail, PROBE_ACTIONS[found.name], target)
    return Step(found.name, False, found.ms, detail)


def _batches(items: Sequence[Any], size: int) -> list[list[Any]]:
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
    return Step(
        "report complete",
        False,
        0,
        f"the host's report for {name} is incomplete: {_stopped(cut, deadline)}",
    )


def _stopped(cut: bool, deadline: str) -> str:
    if deadline:
        return f"the script reached its own deadline ({deadline} s, --deadline)"
    if cut:
        return f"SSM returns only the first {OUTPUT_LIMIT:,} characters of output"
    return "the script stopped before it finished"


class _Phases:
    """Sends each phase's commands, one per batch, within the run's deadline, and gathers
    their parsed output. What the deadline leaves unsent, or a command that fails, is
    recorded per service in `unfinished`, and per request in `unanswered`."""

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
        self.unanswered: dict[int, str] = {}
        """Request number -> why the host never answered it (its command was not sent...)."""

    def _left(self) -> int:
        """Seconds a script may still run: executionTimeout and polling end by the deadline."""
        return int(self.end - self.clock()) - CLEANUP_MARGIN - POLL_SLACK

    def _unsent(self, mode: str, batch: Sequence[str], requests: Numbered) -> None:
        why = (
            f"not proven: the deadline ({self.options['deadline']:.0f} s, --deadline) passed "
            f"before the {mode} command"
        )
        for number, _request in requests:
            self.unanswered[number] = f"{why} for it was sent"
        for name in batch:
            self.unfinished.setdefault(
                name, Step("report complete", False, 0, f"{why} for {name} was sent")
            )

    def run(
        self,
        mode: str,
        batch: Sequence[str] = (),
        requests: Numbered = (),
        script_seconds: int | None = None,
        stop_at_failure: bool = False,
    ) -> HostOutput | None:
        """One command; None when the deadline left no time to send it.

        `script_seconds` fixes the script's own deadline (cleanup); otherwise it is what the
        run's deadline leaves, reckoned again at each send, so that time spent waiting for
        the instance to register comes off it.
        """
        if script_seconds is None and self._left() < MIN_SCRIPT_SECONDS:
            self._unsent(mode, batch, requests)
            return None
        instance = str(self.targets.host_instance_id)
        own = script_seconds or self._left()

        def render() -> tuple[str, int]:
            nonlocal own
            if script_seconds is None:
                own = max(MIN_SCRIPT_SECONDS, self._left())
            options = self.options
            script = render_script(
                self.targets,
                mode,
                batch,
                options["run"],
                options["wait"],
                own,
                requests,
                stop_at_failure,
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
        numbers = [number for number, _request in requests]
        try:
            output = parse_host_output(stdout, self.checked, set(batch), numbers)
        except HostError as err:
            raise RemoteCheckError(str(err)) from None
        self.source = self.source or output.source
        self.outputs.append(output)
        if requests and (output.cut or output.deadline or len(output.answers) < len(numbers)):
            for number in numbers:
                self.unanswered.setdefault(number, _stopped(output.cut, output.deadline))
        return output

    def prepare(self, names: Sequence[str], size: int, sleep: Callable[[float], None]) -> None:
        """Assume, list, put and get for each service.

        What IAM propagation denied (an assume or a list) is sent again, with backoff, while
        --wait lasts and the deadline leaves room for one more try after it and then a probe
        command; until the last try the host stops a service at a failed assume or list, so a
        retry writes nothing twice. A try's answers stand until the next try's have come
        back. The last try, and a list that failed other than by a denial, go on past a
        failed list, as the local check does.
        """
        wait = float(self.options["wait"])
        started, delay, todo = self.clock(), 1.0, list(names)
        latest: dict[str, HostOutput] = {}
        spent = float(MIN_SCRIPT_SECONDS)
        while todo:
            # This try, the backoff, one more try like it, and the probes' minimum must fit.
            needed = 2 * max(spent, MIN_SCRIPT_SECONDS) + delay + MIN_SCRIPT_SECONDS
            last = self.clock() - started >= wait or self._left() < needed
            before = self.clock()
            self._prepare_round(todo, size, not last, latest)
            spent = self.clock() - before
            if last:
                return
            answered = {n: latest[n].checks.get(n, []) for n in todo if n in latest}
            again = [n for n, steps in answered.items() if _propagating(steps)]
            stopped = [n for n, steps in answered.items() if _stopped_at_list(steps)]
            if stopped:  # not a denial, so no retry: the host goes on past it at once
                self._prepare_round(stopped, size, False, latest)
            if not again:
                return
            log.info("%s denied; trying again in %.0fs (IAM changes propagate)", again, delay)
            sleep(min(delay, max(0.0, wait - (self.clock() - started))))
            delay, todo = min(delay * 2, MAX_BACKOFF_SECONDS), again

    def _prepare_round(
        self, names: list[str], size: int, stop: bool, latest: dict[str, HostOutput]
    ) -> None:
        """One try for `names`; each name's newest answers replace its older ones."""
        for batch in _batches(names, size):
            output = self.run("prepare", batch, stop_at_failure=stop)
            if output is None:
                continue  # the deadline: the older answers (and a diagnosis) stand
            for name in batch:
                if name in latest:
                    latest[name].forget([name])
                latest[name] = output

    def cleanup(self, batch: list[str]) -> None:
        """Always sent, deadline or not; a failure fails each service's delete step."""
        try:
            self.run("cleanup", batch, script_seconds=CLEANUP_SCRIPT_SECONDS)
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


def _propagating(steps: list[HostStep]) -> bool:
    """A prepare that IAM propagation may yet let through: its assume or list was denied."""
    return any(s.name in RETRIED_STEPS and s.code in DENIED for s in steps)


def _stopped_at_list(steps: list[HostStep]) -> bool:
    """A prepare the host stopped at a list that failed other than by a denial."""
    failed = any(s.name == "list" and not s.ok and s.code not in DENIED for s in steps)
    return failed and not any(s.name == "put" for s in steps)


def _missing_steps(steps: Sequence[Step]) -> list[str]:
    """The steps a service's report must hold, given how far it got, that it lacks: a host
    that stops mid-service, or ENDs early, must not pass on the steps it did report."""
    wanted = ["assume role"]
    if any(s.name == "assume role" and s.ok for s in steps):
        wanted += ["list", "put"]
    if any(s.name == "put" and s.ok for s in steps):
        wanted += ["get", "delete"]
    names = {s.name for s in steps}
    return [name for name in wanted if name not in names]


def read_answers(
    numbered: Numbered, outputs: Sequence[HostOutput], unanswered: dict[int, str]
) -> dict[int, tuple[Verdict, str, int]]:
    """Request number -> (verdict, why, ms), by `judge`, for every planned request: one the
    host gave no readable answer is unproven, whatever the reason, never denied."""
    answers: dict[int, tuple[str, int, str]] = {}
    garbled: dict[int, str] = {}
    for output in outputs:
        answers.update(output.answers)
        garbled.update(output.garbled)
    read: dict[int, tuple[Verdict, str, int]] = {}
    for number, request in numbered:
        if number in answers:
            code, ms, operation = answers[number]
            verdict, why = judge(code, request.action, operation)
            read[number] = (verdict, why, ms)
        else:
            why = garbled.get(number) or unanswered.get(number) or "the host printed no answer"
            read[number] = (judge(None)[0], f"no answer: {why}", 0)
    return read


def _probe_steps(
    targets: Targets,
    pairs: dict[str, list[str]],
    numbered: Numbered,
    read: dict[int, tuple[Verdict, str, int]],
) -> dict[tuple[str, str], Step]:
    """The steps the local check builds (`step_of`) from the same probes: the host's on each
    bucket (that bucket's direct step), each role's on the others (its isolation step)."""
    answered: dict[tuple[str, str], list[tuple[str, tuple[Verdict, str, int]]]] = {}
    for number, request in numbered:
        answered.setdefault((request.who, request.owner), []).append((request.action, read[number]))
    everyone = len(pairs.get(HOST, []))
    steps: dict[tuple[str, str], Step] = {}
    for who, owners in pairs.items():
        identity = "the host role" if who == HOST else f"{who}'s role"
        look = (
            host_policies(targets.host_role_arn)
            if who == HOST
            else service_policies(targets.services[who])
        )
        tasks: list[ProofTask] = []
        longest = 0  # the identity's slowest answer: its step's ms
        for owner in owners:
            key = (owner, DIRECT) if who == HOST else (who, ISOLATION)
            target = targets.services[owner]
            sampled = who != HOST and len(owners) < everyone - 1
            task = ProofTask(identity, key, look, None, target, None, sampled=sampled)
            sent = answered.get((who, owner), [])
            for action, (verdict, why, _ms) in sent:
                task.probes.append(Probe(identity, action, target, verdict, why))
            unsent = {"get", "put", "delete"} - {action for action, _read in sent}
            for action in sorted(unsent):  # the plan aims none at a missing test object
                task.probes.append(
                    Probe(identity, action, target, Verdict.UNPROVEN, NO_TEST_OBJECT)
                )
            ms = max((r[2] for _action, r in sent), default=0)
            longest = max(longest, ms)
            if who == HOST:
                steps[key] = step_of(key, [task], ms=ms)
            tasks.append(task)
        if who != HOST and tasks:
            steps[(who, ISOLATION)] = step_of((who, ISOLATION), tasks, ms=longest)
    return steps


def _assemble(
    targets: Targets,
    checked: list[str],
    outputs: list[HostOutput],
    explain_assume: ExplainAssume,
    source: str,
    unfinished: dict[str, Step] | None = None,
    probes: dict[tuple[str, str], Step] | None = None,
) -> Report:
    """The report from every command's parsed output and the probe steps. `unfinished`: a
    step for each service whose commands were never sent or never answered (the deadline, a
    failed cleanup)."""
    found: dict[str, list[HostStep]] = {name: [] for name in checked}
    garbled: dict[str, list[Step]] = {name: [] for name in checked}
    incomplete: dict[str, Step] = {}
    for output in outputs:
        for name, host_steps in output.checks.items():
            found.setdefault(name, []).extend(host_steps)
        for owner, lines in output.problems.items():
            for name in [owner] if owner in found else checked:
                garbled[name].append(Step("report", False, 0, "garbled host output: " + lines[0]))
        for name in output.expected - output.ended:
            incomplete[name] = _incomplete(name, output.cut, output.deadline)
    failed_cleanup: dict[str, Step] = {}
    for name, step in (unfinished or {}).items():
        if step.name == "delete":
            failed_cleanup[name] = step
        else:
            incomplete.setdefault(name, step)
    results: dict[str, ServiceResult] = {}
    for name in checked:
        target = targets.services[name]
        own = [
            _explain(s, target, source, explain_assume)
            for s in found[name]
            if not (name in failed_cleanup and s.name == "delete")
        ]
        if name in failed_cleanup:
            own.append(failed_cleanup[name])
        missing = _missing_steps(own)
        if name not in incomplete and missing:
            incomplete[name] = Step(
                "report complete",
                False,
                0,
                f"the host's report for {name} lacks its {', '.join(missing)} step: "
                "not proven, so not passed",
            )
        with_object = any(s.name == "put" and s.ok for s in own)
        ordered = [probes[(name, DIRECT)]] if probes and (name, DIRECT) in probes else []
        ordered += [s for s in own if s.name != "delete"] + garbled[name]
        if probes and (name, ISOLATION) in probes:
            ordered.append(probes[(name, ISOLATION)])
        if with_object:  # nothing of the check's own to delete otherwise
            ordered += [s for s in own if s.name == "delete"]
        if name in incomplete:
            ordered.append(incomplete[name])
        results[name] = ServiceResult(ordered)
    return Report(source=source, services=results)


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
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Prepare, probe and clean up on the host, each phase a command per batch.

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
    prepared: list[str] = []
    pairs: dict[str, list[str]] = {}
    numbered: list[tuple[int, Request]] = []
    try:
        if targets.profiles_association_id:
            runner.await_association(
                targets.profiles_association_id, str(targets.host_instance_id), wait_seconds
            )
        prepared += checked  # before anything is sent: an error midway still cleans up
        phases.prepare(checked, sizes["prepare"], sleep)
        own = {n: s for o in phases.outputs for n, s in o.checks.items()}
        assumed = {n for n, s in own.items() if any(x.name == "assume role" and x.ok for x in s)}
        with_object = {n for n, s in own.items() if any(x.name == "put" and x.ok for x in s)}
        pairs = {
            who: owners
            for who, owners in shared_pairs(checked, sample).items()
            if owners and (who == HOST or who in assumed)
        }
        numbered = list(enumerate(requests_of(pairs, with_object)))
        for batch in _batches(numbered, probes_per_command(targets, len(numbered))):
            phases.run("probe", requests=batch)
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

    read = read_answers(numbered, phases.outputs, phases.unanswered)
    return _assemble(
        targets,
        checked,
        phases.outputs,
        explain_assume,
        phases.source,
        phases.unfinished,
        _probe_steps(targets, pairs, numbered, read),
    )

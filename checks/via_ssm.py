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
    not_denied,
    over_privileged,
    s3_failure,
)
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
OUTPUT_LIMIT = 24_000
"""GetCommandInvocation returns at most this many characters of a command's output."""
FINISHED = frozenset({"Success", "Failed"})  # Failed: the script exited 1, a step failed


class RemoteCheckError(CheckError):
    """The check could not run on the host; one line, exit 1."""


def render_script(targets: Targets, checked: Sequence[str], wait_seconds: float) -> str:
    """The shell script for AWS-RunShellScript: the variables, then remote_check.sh."""
    names = list(targets.services)
    account = next(iter(targets.services.values())).account

    def array(values: Sequence[str]) -> str:
        return "(" + " ".join(shlex.quote(v) for v in values) + ")"

    header = [
        "#!/bin/bash",
        f"ACCOUNT={shlex.quote(account)}",
        f"WAIT_SECONDS={int(wait_seconds)}",
        f"SERVICES={array(names)}",
        f"BUCKETS={array([targets.services[n].bucket_name for n in names])}",
        f"CHECKED={array([str(names.index(n)) for n in checked])}",
    ]
    body = files("checks").joinpath("remote_check.sh").read_text()
    return "\n".join(header) + "\n" + body


ExplainAssume = Callable[[str, ServiceTarget, str], str]
"""(caller ARN, the service, the AWS message) -> cause and fix of an AssumeRole denial."""


def _explain(
    step: str,
    detail: str,
    target: ServiceTarget,
    targets: Targets,
    source: str,
    explain_assume: ExplainAssume,
) -> str:
    if step == "direct access denied":
        return over_privileged("the caller", target) if detail == "ALLOWED" else not_denied(detail)
    if step == "isolation":
        if detail.startswith("ALLOWED"):
            who = f"{target.name}'s role"
            return " ".join(
                over_privileged(who, targets.services[other]) for other in detail.split()[1:]
            )
        return not_denied(detail)
    if step == "assume role":
        return explain_assume(source, target, detail) if code_of(detail) in DENIED else detail
    if step in S3_ACTIONS and not detail.startswith("MISMATCH"):
        return s3_failure(code_of(detail), detail, S3_ACTIONS[step], target)
    return detail


def parse_output(
    stdout: str, targets: Targets, checked: Sequence[str], explain_assume: ExplainAssume
) -> Report:
    """Turn the host's SOURCE/CHECK/END/ERROR lines into a report.

    A service whose END line is missing did not report every step (SSM cut the output, or the
    script was stopped): it fails, rather than passing on the steps that did arrive.
    """
    source = ""
    results = {name: ServiceResult() for name in checked}
    ended: set[str] = set()
    for line in stdout.splitlines():
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if kind == "ERROR":
            raise RemoteCheckError(f"the check could not run on the host: {rest}")
        if kind == "SOURCE":
            source = rest
        elif kind == "END":
            ended.add(rest)
        elif kind == "CHECK" and len(fields) == 5 and fields[0] in results:
            name, step, ok, ms, detail = fields
            target = targets.services[name]
            if ok != "1":
                detail = _explain(step, detail, target, targets, source, explain_assume)
            results[name].steps.append(Step(step, ok == "1", int(ms), detail))
    if not source:
        shown = stdout.strip()[:200] or "nothing"
        raise RemoteCheckError(f"the host printed no check result (it printed {shown!r})")
    cut = len(stdout) >= OUTPUT_LIMIT
    for name in sorted(set(checked) - ended):
        why = (
            f"SSM returns only the first {OUTPUT_LIMIT:,} characters of output"
            if cut
            else "the script stopped before it finished"
        )
        detail = f"the host's report for {name} is incomplete: {why}. Fix: check fewer services "
        results[name].steps.append(Step("report complete", False, 0, detail + "at once."))
    return Report(source=source, services=results)


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


def run_via_ssm(
    session: boto3.Session,
    targets: Targets,
    names: Sequence[str],
    wait_seconds: float,
    command: Callable[[Any], SsmCommand] = SsmCommand,
    register_seconds: float = 600.0,
) -> Report:
    if targets.topology != "shared" or not targets.host_instance_id:
        raise UsageError("--via-ssm needs a shared-topology stack with a hostInstanceId output")
    checked = list(names) or list(targets.services)
    ssm = session.client("ssm", region_name=targets.region)
    iam = session.client("iam", region_name=targets.region)
    run_seconds = int(wait_seconds) + 300
    runner = command(ssm)
    script = render_script(targets, checked, wait_seconds)
    try:
        command_id = runner.send(targets.host_instance_id, script, run_seconds, register_seconds)
        invocation = runner.wait(command_id, targets.host_instance_id, run_seconds + 60)
    except NoCredentialsError:
        raise UsageError(
            "no usable AWS credentials to send the SSM command: set AWS_PROFILE or AWS_*"
        ) from None
    except BotoCoreError as err:
        raise RemoteCheckError(f"cannot reach SSM: {err}") from None
    if invocation.get("StandardErrorContent"):
        log.info("host stderr: %s", invocation["StandardErrorContent"].strip())

    def explain_assume(source: str, target: ServiceTarget, message: str) -> str:
        return explain_assume_denied(iam, source, target, message)

    stdout = str(invocation.get("StandardOutputContent", ""))
    return parse_output(stdout, targets, checked, explain_assume)

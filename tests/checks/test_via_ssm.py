"""`--via-ssm`: the host-side script run for real (bash + aws CLI against a moto server on
127.0.0.1), sent and polled through moto's SSM, and its output parsed into the report."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from support.aws_cli_fork import AUDIT, ForkedCli
from support.check_world import (
    ACCOUNT,
    INSTANCE_ID,
    REGION,
    SHARED_PROBE_STEPS,
    USER_BODY,
    USER_KEY,
    Wiring,
    bucket_of,
    build,
    objects,
    shared_targets,
)

from checks.host_report import HostError, parse_host_output
from checks.isolation import DIRECT, ISOLATION
from checks.plan import HOST, OPERATIONS, requests_of, shared_pairs
from checks.probes import RESERVED_PREFIX
from checks.stack_outputs import Targets, parse_outputs
from checks.via_ssm import SsmCommand, read_answers, render_script, run_via_ssm
from checks.via_ssm import _probe_steps as probe_steps
from infra import policies
from infra.aws_config import render_aws_config
from rehearsal.moto_rules import aws_iam_rules

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or not (BIN / "aws").exists(),
    reason="needs bash and the aws CLI (awscli from requirements-dev.txt)",
)


def operator_session() -> boto3.Session:
    """A laptop operator who may run SSM commands and read IAM roles, nothing else."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="operator")
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ssm:SendCommand", "ssm:GetCommandInvocation", "iam:GetRole"],
                "Resource": "*",
            }
        ],
    }
    iam.put_user_policy(UserName="operator", PolicyName="ops", PolicyDocument=json.dumps(grant))
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    return boto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name=REGION,
    )


class HostAgent:
    """Stands in for the SSM agent on the host: runs the sent script with bash and the aws CLI.

    The profiles file is the stack's own `render_aws_config`, with `credential_source =
    Environment` instead of `Ec2InstanceMetadata`: the host role's credentials come from the
    environment here, as they would come from instance metadata on EC2. Its `aws` is the
    CLI's own entry point, or (`cli`) the same CLI forked from one process that imported it
    (tests/support/aws_cli_fork.py), for the tests that make dozens of calls.
    """

    def __init__(
        self, url: str, host_env: dict[str, str], config_file: Path, cli: Path = BIN
    ) -> None:
        self.url = url
        self.host_env = host_env
        self.path = f"{cli}{os.pathsep}{os.environ['PATH']}"
        self.config_file = config_file
        self.ran = 0

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": self.path,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_CONFIG_FILE": str(self.config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.config_file) + ".none",
            "AWS_DEFAULT_REGION": REGION,
            **self.host_env,
        }
        self.ran += 1
        return subprocess.run(
            ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120
        )


@pytest.fixture
def aws_cli(forked_cli: ForkedCli) -> Path:
    """The directory of the forked CLI's `aws`."""
    return forked_cli.bin_dir


def test_the_host_agents_calls_take_the_forked_cli(aws_cli: Path, tmp_path: Path) -> None:
    """The host's environment (no locale, time zone or PYTHON* variables) is the one the
    forked CLI serves itself, not through its fallback to the entry point: the tests that
    use it are as fast as they claim."""
    agent = HostAgent("http://127.0.0.1:9", {AUDIT: "forked"}, tmp_path / "config", aws_cli)
    done = agent.run("aws --version")
    assert done.returncode == 3 and "aws (test launcher): forked" in done.stderr, done.stderr


def memory_dir(tmp_path: Path) -> Path:
    """A directory on tmpfs, where the script keeps the CLI's credential cache."""
    shm = Path("/dev/shm")  # noqa: S108 (a private mkdtemp below it, as the script makes)
    if not shm.is_dir():
        pytest.skip("needs /dev/shm (tmpfs)")
    return Path(tempfile.mkdtemp(dir=shm, prefix=f"{tmp_path.name}-"))


def write_profiles(tmp_path: Path, outputs: dict[str, Any]) -> Path:
    arns = {name: out["roleArn"] for name, out in outputs["services"].items()}
    text = render_aws_config(REGION, arns).replace(
        "credential_source = Ec2InstanceMetadata", "credential_source = Environment"
    )
    path = tmp_path / "aws-config"
    path.write_text(text)
    return path


def test_ssm_round_trip_runs_the_script_on_the_host_and_explains_failures(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_cli: Path
) -> None:
    """service-a is healthy; the host may not assume service-b's role.

    The command is sent through moto's SSM while the instance is not yet registered, polled
    while InProgress, run for real by bash + aws CLI, and parsed; the operator's IAM read
    access turns service-b's denial into a precise diagnosis. The buckets are versioned and
    service-a's role is a stack's from before the s3:DeleteObjectVersion grant: the run still
    passes, and the delete step says what stays behind for the lifecycle rule.
    """
    from moto.iam.models import iam_backends
    from moto.ssm import models as ssm_models

    wiring = Wiring(services=("service-a", "service-b"), host_may_assume=("service-a",))
    world = build(replace(wiring, versioned=True))
    older = policies.bucket_access_policy(f"arn:aws:s3:::{bucket_of('service-a')}")
    iam_backends[ACCOUNT]["global"].put_role_policy(
        "service-a-role-0a1b2c3", "bucket-access", json.dumps(older)
    )
    profiles = write_profiles(tmp_path, world.outputs)
    agent = HostAgent(server, world.environment(), profiles, aws_cli)
    operator = operator_session()
    backend = ssm_models.ssm_backends[ACCOUNT][REGION]
    real_send = backend.send_command
    sends: list[int] = []

    def not_registered_once(**kwargs: Any) -> Any:
        sends.append(1)
        if len(sends) == 1:  # what SSM answers before the agent has registered
            from moto.ssm.exceptions import SSMException

            raise SSMException("InvalidInstanceId", "Instances not in a valid state")
        return real_send(**kwargs)

    monkeypatch.setattr(backend, "send_command", not_registered_once)
    real_invocation = ssm_models.Command.invocation_response

    def pending(self: Any, instance_id: str, plugin: str) -> dict[str, Any]:
        return {**real_invocation(self, instance_id, plugin), "Status": "InProgress"}

    monkeypatch.setattr(ssm_models.Command, "invocation_response", pending)

    ran: set[str] = set()

    def agent_sleep(_seconds: float) -> None:
        """While we 'wait', the host picks up each command and runs it."""
        for command in backend._commands:
            invocation = command.invocations[0]
            if command.command_id in ran or invocation["Status"] != "InProgress":
                continue
            ran.add(command.command_id)
            with aws_iam_rules():
                done = agent.run(command.parameters["commands"][0])
            invocation.update(
                Status="Success" if done.returncode == 0 else "Failed",
                StandardOutputContent=done.stdout,
                StandardErrorContent=done.stderr,
            )

    progress = io.StringIO()
    clock = iter(range(10_000))
    targets = parse_outputs(world.outputs, "test")
    with aws_iam_rules():
        report = run_via_ssm(
            operator,
            targets,
            [],
            wait_seconds=0,
            command=lambda ssm: SsmCommand(
                ssm, sleep=agent_sleep, clock=lambda: float(next(clock)), progress=progress
            ),
        )
    assert len(sends) == 4, "one refusal, then prepare, probe (host and service-a), cleanup"
    assert f"waiting for {INSTANCE_ID} to register with SSM" in progress.getvalue()
    assert ": InProgress (" in progress.getvalue()
    assert report.source.endswith(f":assumed-role/dev-host-role-0a1b2c3/{INSTANCE_ID}")
    service_a = report.services["service-a"]
    assert [s.name for s in service_a.steps] == SHARED_PROBE_STEPS
    assert service_a.ok, [s.detail for s in service_a.steps if not s.ok]
    (direct, assume) = report.services["service-b"].steps
    assert not direct.ok and "no test object to aim at" in direct.detail, "b wrote no object"
    assert not assume.ok
    assert "Cause: identity side" in assume.detail, assume.detail
    delete = next(s for s in service_a.steps if s.name == "delete")
    assert "remain for the bucket's lifecycle rule" in delete.detail, delete.detail
    assert "s3:DeleteObjectVersion" in delete.detail
    assert len(_check_versions_left(bucket_of("service-a"))) == 2
    for out in world.outputs["services"].values():
        assert objects(out["bucketName"]) == {USER_KEY: USER_BODY}, out["bucketName"]


class DirectRunner:
    """Stands in for SSM itself: each sent script runs on the HostAgent at once."""

    def __init__(self, agent: HostAgent) -> None:
        self.agent = agent
        self.scripts: list[str] = []
        self.results: list[subprocess.CompletedProcess[str]] = []

    def await_association(self, _association: str, _instance: str, _timeout: float) -> None:
        """SSM's association status is tested with its own fake (test_association_*)."""

    def send(
        self, _instance: str, script: str, run_seconds: int, _register: float, **_kw: Any
    ) -> str:
        self.scripts.append(script)
        own = int(script.split("SCRIPT_SECONDS=", 1)[1].split("\n", 1)[0])
        assert run_seconds >= own + 30, "executionTimeout must leave room to clean up"
        with aws_iam_rules():
            self.results.append(self.agent.run(script))
        return str(len(self.results) - 1)

    def wait(self, command_id: str, _instance: str, _timeout: float) -> dict[str, Any]:
        done = self.results[int(command_id)]
        return {
            "Status": "Success" if done.returncode == 0 else "Failed",
            "StandardOutputContent": done.stdout,
            "StandardErrorContent": done.stderr,
        }


def via_ssm(server: str, world: Any, tmp_path: Path, cli: Path) -> tuple[Any, DirectRunner]:
    agent = HostAgent(server, world.environment(), write_profiles(tmp_path, world.outputs), cli)
    runner = DirectRunner(agent)
    report = run_via_ssm(
        boto3.Session(region_name=REGION),
        parse_outputs(world.outputs, "test"),
        [],
        wait_seconds=0,
        command=lambda _ssm: runner,  # type: ignore[arg-type,return-value]
    )
    return report, runner


HOST_READS_ALL = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*/*"}
A_DELETES_B = {
    "Effect": "Allow",
    "Action": "s3:DeleteObject",
    "Resource": "arn:aws:s3:::service-b-bucket-0a1b2c3/*",
}


def test_the_host_side_proves_object_level_isolation(
    server: str, tmp_path: Path, aws_cli: Path
) -> None:
    """The same object-level proof as the local check, made by the aws CLI on the host, with
    no ListBucket in the leaking grant; user objects untouched, nothing left behind, no key
    in the output. The buckets are versioned: the host's cleanup deletes the put's version
    and the delete marker by id, so nothing is left under the check's prefix."""
    host_reads_b = {**HOST_READS_ALL, "Resource": "arn:aws:s3:::service-b-bucket-0a1b2c3/*"}
    wiring = Wiring(
        services=("service-a", "service-b"),
        host_extra=[host_reads_b],
        service_extra={"service-a": [A_DELETES_B]},
        versioned=True,
    )
    world = build(wiring)
    report, runner = via_ssm(server, world, tmp_path, aws_cli)
    failing = {"service-a": ["isolation"], "service-b": ["direct access denied"]}
    found = {
        name: [s.name for s in result.steps if not s.ok]
        for name, result in report.services.items()
        if not result.ok
    }
    assert found == failing, [s.detail for r in report.services.values() for s in r.steps]
    modes = [s.split("MODE=", 1)[1].split("\n", 1)[0] for s in runner.scripts]
    assert modes == ["prepare", "probe", "cleanup"]
    for name, out in world.outputs["services"].items():
        assert objects(out["bucketName"]) == {USER_KEY: USER_BODY}, out["bucketName"]
        delete = next(s for s in report.services[name].steps if s.name == "delete")
        assert "and its 2 versions (the object's and its delete marker)" in delete.detail
        assert _check_versions_left(bucket_of(name)) == []
    text = "".join(r.stdout + r.stderr for r in runner.results)
    for secret in (world.credentials["SecretAccessKey"], world.credentials["SessionToken"]):
        assert secret not in text


DEADLINES = (8, 16, 32)
"""The script's deadlines to try, shortest first: the first that leaves time for its first aws
CLI calls (assume, list, put) before the get that hangs past it. The body needs more than 5 s
of its own; a machine with both cores busy may need a longer one for the calls before."""


def test_the_script_stops_at_its_own_deadline_and_cleans_up(
    server: str, aws_cli: Path, tmp_path: Path
) -> None:
    """The SSM agent SIGKILLs at executionTimeout, when no trap runs: the script's body has its
    own deadline inside it, and the outer part then deletes what the body wrote and removes the
    CLI's credential cache. Here every get hangs, so the body is stopped mid-prepare, after
    its put. Every try, however it went, ends by its deadline and leaves nothing behind. The
    forked CLI: `timeout` signals its process group, each `aws` there passes the signal to its
    call or, killed outright, takes its call with it (tests/test_aws_cli_fork.py), and its
    0.2 s calls let the first, shortest deadline reach the put even on a busy machine."""
    world = build(Wiring(services=("service-a",)))
    agent = HostAgent(server, world.environment(), write_profiles(tmp_path, world.outputs))
    bin_dir = tmp_path / "slow-bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(
        '#!/bin/bash\ncase " $* " in *" get-object "*) sleep 90 ;; esac\n'
        f'exec {aws_cli / "aws"} "$@"\n'
    )
    (bin_dir / "aws").chmod(0o755)
    agent.path = f"{bin_dir}{os.pathsep}{agent.path}"
    targets = parse_outputs(world.outputs, "test")
    for seconds in DEADLINES:
        shm = memory_dir(tmp_path)
        script = render_script(targets, "prepare", ["service-a"], "run1", 0, seconds).replace(
            'for dir in /dev/shm "/run/user/$(id -u)" /run; do', f"for dir in {shm}; do"
        )
        start = time.monotonic()
        with aws_iam_rules():
            done = agent.run(script)
        elapsed = time.monotonic() - start
        # The deadline counts from the script's start (the agent's executionTimeout does too):
        # `seconds`, then at most 25 s of cleanup, however long the body would have run.
        assert elapsed < seconds + 25, f"the script ran {elapsed:.0f}s past its {seconds} s"
        assert f"DEADLINE\t{seconds}" in done.stdout, done.stdout + done.stderr
        assert list(shm.iterdir()) == [], "the work directory and the CLI cache must be gone"
        assert objects(targets.services["service-a"].bucket_name) == {USER_KEY: USER_BODY}
        output = parse_host_output(done.stdout, {"service-a"}, {"service-a"})
        assert output.deadline == str(seconds) and "service-a" not in output.ended
        if "\tput\tOK\t" in done.stdout:
            break  # the case this test is about: a put stored, then the deadline
    assert "\tput\tOK\t" in done.stdout, f"no put ran before even a {seconds} s deadline"


TARGETS = shared_targets(("a", "b"))
KNOWN = {"a", "b"}
SOURCE = "SOURCE\tarn:aws:sts::123456789012:assumed-role/host/i-1"


def test_script_stops_with_one_line_when_the_profiles_are_missing(tmp_path: Path) -> None:
    """Right after `pulumi up` the association may not have written the profiles yet: say so."""
    agent = HostAgent("http://127.0.0.1:9", {}, tmp_path / "missing-config")
    done = agent.run(render_script(TARGETS, "prepare", ["a"], "r", 0, 60))
    assert done.returncode == 2
    with pytest.raises(HostError, match=r"no profiles file at .*missing-config"):
        parse_host_output(done.stdout, KNOWN, {"a"})


def test_the_script_refuses_an_aws_cli_without_conditional_writes(tmp_path: Path) -> None:
    """The put probe must never overwrite and the delete probe never delete: an aws CLI from
    before late 2024, whose put-object has no --if-none-match, is refused with one line. The
    real CLI answers the skeleton calls here, with IfNoneMatch struck from its answer."""
    bin_dir = tmp_path / "old-bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(
        f'#!/bin/bash\n"{BIN / "aws"}" "$@" | grep -v IfNoneMatch; exit "${{PIPESTATUS[0]}}"\n'
    )
    (bin_dir / "aws").chmod(0o755)
    config = tmp_path / "config"
    config.write_text("[default]\n")
    agent = HostAgent("http://127.0.0.1:9", {}, config)
    agent.path = f"{bin_dir}{os.pathsep}{agent.path}"
    done = agent.run(render_script(TARGETS, "prepare", ["a"], "r", 0, 60))
    assert done.returncode == 2, done.stdout + done.stderr
    with pytest.raises(HostError, match="no put-object --if-none-match or delete-object"):
        parse_host_output(done.stdout, KNOWN, {"a"})


def test_the_script_refuses_to_keep_credentials_anywhere_but_memory(tmp_path: Path) -> None:
    """The CLI caches assumed-role keys under $HOME: with no tmpfs to put it on, the script
    stops before any call rather than write them to a disk."""
    config = tmp_path / "config"
    config.write_text("[default]\n")
    agent = HostAgent("http://127.0.0.1:9", {}, config)
    script = render_script(TARGETS, "prepare", ["a"], "r", 0, 60).replace(
        'for dir in /dev/shm "/run/user/$(id -u)" /run; do', f"for dir in {tmp_path}; do"
    )
    done = agent.run(script)
    assert done.returncode == 2 and list(tmp_path.iterdir()) == [config], done.stdout
    with pytest.raises(HostError, match=r"no writable tmpfs .* for the CLI credential cache"):
        parse_host_output(done.stdout, KNOWN, {"a"})


def test_script_waits_for_the_stacks_current_profiles(tmp_path: Path) -> None:
    """A file from before the last `pulumi up` (another digest) is not what gets checked."""
    stale = tmp_path / "config"
    stale.write_text("[default]\nregion = us-east-1\n")
    agent = HostAgent("http://127.0.0.1:9", {}, stale)
    targets = replace(TARGETS, profiles_sha256="0" * 64)
    done = agent.run(render_script(targets, "prepare", ["a"], "r", 0, 60))
    assert done.returncode == 2
    with pytest.raises(HostError, match="not the stack's current profiles file"):
        parse_host_output(done.stdout, KNOWN, {"a"})


def test_ssm_errors_are_one_clear_line(
    server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A caller who may not send SSM commands gets one line naming the refusal, exit 1."""
    from checks.cli import main

    world = build(Wiring(services=("service-a",)))
    outputs = world.write_outputs(tmp_path)
    for name, value in world.environment().items():  # the host role may not use SSM
        monkeypatch.setenv(name, value)
    with aws_iam_rules():
        code = main(["--outputs", str(outputs), "--via-ssm"])
    err = capsys.readouterr().err
    assert code == 1 and "ssm:SendCommand failed" in err, err
    assert "AccessDenied" in err and "not authorized to perform: ssm:SendCommand" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_script_quotes_every_value() -> None:
    """Names reach bash as data, never as code; deletes wait for every other request."""
    requests = list(enumerate(requests_of({HOST: ["a", "b"], "b": ["a"]}, {"a", "b"})))
    script = render_script(TARGETS, "probe", [], "r1", 12.7, 90, requests)
    assert "SERVICES=(a b)" in script and "BATCH=()" in script
    plan = script.split("REQUESTS='", 1)[1].split("'", 1)[0].splitlines()
    assert plan[:3] == ["0 h 0 list", "1 h 0 get", "2 h 0 put"]
    assert plan[9:] == ["wait", "9 h 0 delete", "10 h 1 delete", "11 1 0 delete"], plan
    assert [r[0] for r in planned(script)] == [str(n) for n in range(12)]
    assert "WAIT_SECONDS=12" in script and f"ACCOUNT={ACCOUNT}" in script
    assert "SCRIPT_SECONDS=90" in script and "MODE=probe" in script
    assert "STOP_AT_FAILURE=0" in script
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr


def healthy_lines(name: str, *, delete: bool = True) -> list[str]:
    """What a healthy prepare and cleanup print for one service."""
    steps = ["assume role", "list", "put", "get", *(["delete"] if delete else [])]
    return [f"CHECK\t{name}\t{step}\tOK\t5\tok" for step in steps]


def planned(script: str) -> list[list[str]]:
    """A rendered probe script's requests: [number, who, owner, action] each."""
    match = re.search(r"\nREQUESTS='([^']*)'\n", script)
    assert match, "no REQUESTS in the script"
    return [line.split() for line in match[1].splitlines() if line != "wait"]


ASays = Callable[[str, float], list[str] | None]
"""(the prepare script, the clock) -> what the host prints for service a instead, or None."""


class ScriptedRunner:
    """SSM with a clock: every command takes `seconds`; cleanup can be made to fail, and a
    prepare can say something else of service a (`a_says`)."""

    def __init__(
        self, seconds: float, fail_cleanup: bool = False, a_says: ASays | None = None
    ) -> None:
        self.now = 0.0
        self.seconds = seconds
        self.fail_cleanup = fail_cleanup
        self.a_says = a_says
        self.sent: list[tuple[str, int]] = []
        self.scripts: list[str] = []

    def clock(self) -> float:
        return self.now

    def await_association(self, _association: str, _instance: str, _timeout: float) -> None:
        return None

    def send(
        self, _instance: str, script: str, run_seconds: int, _register: float, **_kw: Any
    ) -> str:
        mode = script.split("MODE=", 1)[1].split("\n", 1)[0]
        if mode == "cleanup" and self.fail_cleanup:
            from checks.via_ssm import RemoteCheckError

            raise RemoteCheckError("ssm:SendCommand failed: ThrottlingException")
        self.sent.append((mode, run_seconds))
        self.scripts.append(script)
        return str(len(self.scripts) - 1)

    def wait(self, command_id: str, _instance: str, _timeout: float) -> dict[str, Any]:
        self.now += self.seconds
        script = self.scripts[int(command_id)]
        mode = script.split("MODE=", 1)[1].split("\n", 1)[0]
        batch = script.split("BATCH=(", 1)[1].split(")", 1)[0].split()
        names = script.split("SERVICES=(", 1)[1].split(")", 1)[0].split()
        lines = [SOURCE]
        if mode == "probe":
            lines += [
                f"ANSWER\t{n}\tAccessDenied\t9\t{OPERATIONS[action]}"
                for n, _who, _owner, action in planned(script)
            ]
        for item in batch:
            name = names[int(item)]
            if mode == "prepare":
                lines += healthy_lines(name, delete=False)
            else:
                lines.append(f"CHECK\t{name}\tdelete\tOK\t5\tdeleted")
            lines.append(f"END\t{name}")
        said = self.a_says(script, self.now) if self.a_says and mode == "prepare" else None
        if said is not None:
            lines = [line for line in lines if not re.match(r"(CHECK|END)\ta(\t|$)", line)]
            lines += [*said, "END\ta"]
        return {"Status": "Success", "StandardOutputContent": "\n".join(lines)}


def scripted(
    runner: ScriptedRunner, deadline: float, targets: Targets = TARGETS, **kwargs: Any
) -> Any:
    return run_via_ssm(
        boto3.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"),
        targets,
        [],
        wait_seconds=kwargs.pop("wait_seconds", 0),
        deadline_seconds=deadline,
        command=lambda _ssm: runner,  # type: ignore[arg-type,return-value]
        clock=runner.clock,
        **kwargs,
    )


def test_the_deadline_bounds_every_command_and_what_it_leaves_unsent_fails() -> None:
    """--deadline 300: no command may run past it (executionTimeout included); a probe that
    the deadline leaves unsent fails its services as not proven; cleanup still runs."""
    healthy = scripted(ScriptedRunner(seconds=5), deadline=300)
    assert healthy.ok, [s.detail for r in healthy.services.values() for s in r.steps if not s.ok]
    runner = ScriptedRunner(seconds=200)
    report = scripted(runner, deadline=300)
    modes = [mode for mode, _ in runner.sent]
    assert modes == ["prepare", "cleanup"], modes
    prepare_timeout = runner.sent[0][1]
    assert prepare_timeout + 30 <= 300, "executionTimeout plus polling fits the deadline"
    for name in ("a", "b"):
        failed = [s for s in report.services[name].steps if not s.ok]
        assert failed and "the deadline (300 s, --deadline) passed" in failed[-1].detail, failed
    assert not report.ok


def test_a_failed_cleanup_fails_each_service_it_left_behind() -> None:
    """The cleanup command itself failing used to be a log line and exit 0."""
    report = scripted(ScriptedRunner(seconds=5, fail_cleanup=True), deadline=300)
    for name in ("a", "b"):
        delete = next(s for s in report.services[name].steps if s.name == "delete")
        assert not delete.ok and "the cleanup command failed" in delete.detail
        assert "lifecycle rule" in delete.detail
    assert not report.ok


def test_sampled_probes_are_planned_per_identity_and_said_so() -> None:
    """--sample 1 over three services: each role probes one other bucket, the host all; the
    isolation step says it covered a sample."""
    three = replace(
        TARGETS, services={**TARGETS.services, "c": replace(TARGETS.services["a"], name="c")}
    )
    runner = ScriptedRunner(seconds=5)
    report = scripted(runner, deadline=300, targets=three, sample=1)
    (probe,) = [script for script in runner.scripts if "MODE=probe" in script]
    pairs = sorted({(who, owner) for _n, who, owner, _action in planned(probe)})
    assert pairs == [("0", "1"), ("1", "2"), ("2", "0"), ("h", "0"), ("h", "1"), ("h", "2")]
    assert report.ok, report.as_json()
    isolation = next(s for s in report.services["a"].steps if s.name == "isolation")
    assert "(a sample of 1 bucket, in rotation)" in isolation.detail, isolation.detail


def test_a_prepare_that_iam_propagation_denies_is_sent_again_until_wait_is_over() -> None:
    """The host's assume answered AccessDenied (a new role): the sender, not the script,
    retries. It sends the prepare again, asking the host to stop at a failed assume or list,
    until --wait is over; the last try goes on past a failed list, as the local check does."""

    def not_yet(_script: str, now: float) -> list[str] | None:  # IAM catches up at 25 s
        return ["CHECK\ta\tassume role\tAccessDenied\t5\tnot yet"] if now < 25 else None

    runner = ScriptedRunner(seconds=5, a_says=not_yet)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        runner.now += seconds

    report = scripted(runner, deadline=300, wait_seconds=60, sleep=sleep)
    prepares = [s for s in runner.scripts if "MODE=prepare" in s]
    assert len(prepares) == 4 and all("STOP_AT_FAILURE=1" in s for s in prepares), slept
    assert slept == [1.0, 2.0, 4.0], "backoff between the tries"
    assert report.ok, report.as_json()
    stopped = ScriptedRunner(seconds=5, a_says=not_yet)
    stopped.now = -1000.0  # never catches up within --wait 10: the last try is told to go on
    failed = scripted(stopped, deadline=300, wait_seconds=10, sleep=lambda s: None)
    prepares = [s for s in stopped.scripts if "MODE=prepare" in s]
    assert "STOP_AT_FAILURE=0" in prepares[-1] and len(prepares) >= 2
    assume = next(s for s in failed.services["a"].steps if s.name == "assume role")
    assert not assume.ok and "not yet" in assume.detail


def test_batches_keep_the_worst_case_output_within_ssms_limit() -> None:
    """300 services with 32-character names: every phase's worst-case command output (every
    detail and code at its longest) stays under 24,000 characters."""
    from checks.via_ssm import OUTPUT_BUDGET, SCRIPT_LIMIT, batch_sizes, probes_per_command

    names = [f"s{i:03d}-" + "x" * 27 for i in range(300)]
    requests = 4 * 300 * 300
    sizes = batch_sizes(names, requests)
    assert sizes["prepare"] >= 1 and sizes["probe"] >= 100
    assert sizes["cleanup"] >= sizes["prepare"]
    longest = "x" * 32
    check = f"CHECK\t{longest}\tassume role\t{'C' * 40}\t999999999\t{'d' * 300}\n"
    answer = f"ANSWER\t{requests - 1}\t{'C' * 40}\t999999999\n"
    assert sizes["prepare"] * (4 * len(check) + len(longest) + 5) <= OUTPUT_BUDGET
    assert sizes["probe"] * len(answer) <= OUTPUT_BUDGET
    # The scripts, every request line at its longest, stay within the cap on parameters.
    service = TARGETS.services["a"]
    wide = replace(
        TARGETS, services={n: replace(service, name=n, bucket_name=n[:63]) for n in names}
    )
    plan = list(enumerate(requests_of(shared_pairs(names, None), set(names))))
    size = probes_per_command(wide, len(plan))
    assert size >= 300, size
    last = plan[-size:]
    assert len(render_script(wide, "probe", [], "r" * 12, 60, 200, last).encode()) <= SCRIPT_LIMIT
    assert (
        len(render_script(wide, "prepare", names[: sizes["prepare"]], "r", 60, 200)) <= SCRIPT_LIMIT
    )


class AssociationSsm:
    """describe_association / describe_instance_associations_status, as SSM answers them."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses

    def describe_association(self, AssociationId: str) -> dict[str, Any]:
        return {
            "AssociationDescription": {"AssociationId": AssociationId, "AssociationVersion": "3"}
        }

    def describe_instance_associations_status(self, InstanceId: str) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        version, _, state = status.partition(":")
        return {
            "InstanceAssociationStatusInfos": [
                {
                    "AssociationId": "assoc",
                    "AssociationVersion": version,
                    "Status": state,
                    "ExecutionSummary": "failed to run commands: exit status 1",
                }
            ]
        }


def test_the_check_waits_for_the_associations_latest_run() -> None:
    """Version 2's success is not enough after `pulumi up` made version 3: wait for 3."""
    progress = io.StringIO()
    ssm = AssociationSsm(["2:Success", "3:Pending", "3:Success"])
    clock = iter(range(100))
    runner = SsmCommand(
        ssm, sleep=lambda _s: None, clock=lambda: float(next(clock)), progress=progress
    )
    runner.await_association("assoc", INSTANCE_ID, 60)
    assert ssm.statuses == ["3:Success"]
    assert "waiting for association assoc" in progress.getvalue()


def test_a_failed_association_run_ends_the_check_with_its_own_account() -> None:
    from checks.via_ssm import RemoteCheckError

    runner = SsmCommand(AssociationSsm(["3:Failed"]), sleep=lambda _s: None, progress=io.StringIO())
    with pytest.raises(RemoteCheckError, match=r"association assoc failed on .*exit status 1"):
        runner.await_association("assoc", INSTANCE_ID, 60)


def test_waiting_for_the_profiles_counts_against_the_scripts_own_deadline(tmp_path: Path) -> None:
    """The agent's SIGKILL comes executionTimeout after the script STARTS: a long --wait for
    the profiles must not push the body past it. With 6 s of its own, the script gives up
    waiting at once (it needs 10 s to do anything) instead of waiting 60."""
    stale = tmp_path / "config"
    stale.write_text("[default]\nregion = us-east-1\n")
    agent = HostAgent("http://127.0.0.1:9", {}, stale)
    targets = replace(TARGETS, profiles_sha256="0" * 64)
    start = time.monotonic()
    done = agent.run(render_script(targets, "prepare", ["a"], "r", 60, 6))
    assert time.monotonic() - start < 6, "it waited past its own deadline"
    assert done.returncode == 2 and "not the stack's current profiles file" in done.stdout


def denying_host(tmp_path: Path, first: str) -> HostAgent:
    """A host whose `aws` runs the bash lines `first`, then answers the caller's identity, and
    refuses every other call with AccessDenied of its own S3 operation, as the real CLI says."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(
        "#!/bin/bash\n"
        + first
        + 'case "$*" in *get-caller-identity*) echo arn:aws:sts::1:assumed-role/host/i-1; exit 0;;'
        " esac\n"
        'case "$*" in *list-objects-v2*) op=ListObjectsV2;; *get-object*) op=GetObject;;\n'
        "  *put-object*) op=PutObject;; *delete-object*) op=DeleteObject;; esac\n"
        'echo "An error occurred (AccessDenied) when calling the $op operation: no" >&2\n'
        "exit 254\n"
    )
    (bin_dir / "aws").chmod(0o755)
    config = tmp_path / "config"
    config.write_text("[default]\n")
    agent = HostAgent("http://127.0.0.1:9", {}, config)
    agent.path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return agent


def test_a_probe_job_that_dies_before_it_writes_is_unproven_not_denied(tmp_path: Path) -> None:
    """A fork failure or the OOM killer can end a request's job before it writes its answer:
    the host then prints no ANSWER line for it, and the sender reads that as unproven, never
    denied, so the bucket's step fails while the other bucket's, all denied, passes."""
    agent = denying_host(
        tmp_path,
        'if [[ "$*" == *"--bucket b-bucket"* ]]; then\n'
        # the `answer ... &` job is the parent of aws's parent (the $(...) around the call)
        "  kill -9 $(ps -o ppid= -p $PPID | tr -d ' ')\n"
        "  exit 1\nfi\n",
    )
    pairs = {HOST: ["a", "b"]}
    numbered = list(enumerate(requests_of(pairs, {"a", "b"})))
    done = agent.run(render_script(TARGETS, "probe", [], "r", 0, 60, numbered))
    out = parse_host_output(done.stdout, KNOWN, set(), [n for n, _r in numbered])
    on_a = [n for n, r in numbered if r.owner == "a"]
    assert sorted(out.answers) == on_a, done.stdout + done.stderr
    assert {code for code, _ms, _operation in out.answers.values()} == {"AccessDenied"}
    steps = probe_steps(TARGETS, pairs, numbered, read_answers(numbered, [out], {}))
    assert steps[("a", DIRECT)].ok, steps[("a", DIRECT)].detail
    direct_b = steps[("b", DIRECT)]
    assert not direct_b.ok and "the host printed no answer" in direct_b.detail, direct_b.detail


def test_a_role_the_probe_command_cannot_assume_proves_no_denial(tmp_path: Path) -> None:
    """IAM is eventually consistent: the prepare assumed a's and b's roles, but the probe
    command's aws CLI is refused the AssumeRole it makes for each profile. Its error is
    AccessDenied, of AssumeRole: the roles' isolation is not proven, never passed."""
    agent = denying_host(
        tmp_path,
        'case "$*" in *--profile*) echo "An error occurred (AccessDenied) when calling the '
        'AssumeRole operation: not authorized to perform: sts:AssumeRole" >&2; exit 254;; esac\n',
    )
    pairs = shared_pairs(["a", "b"], None)
    numbered = list(enumerate(requests_of(pairs, {"a", "b"})))
    done = agent.run(render_script(TARGETS, "probe", [], "r", 0, 60, numbered))
    out = parse_host_output(done.stdout, KNOWN, set(), [n for n, _r in numbered])
    assert len(out.answers) == len(numbered), done.stdout + done.stderr
    steps = probe_steps(TARGETS, pairs, numbered, read_answers(numbered, [out], {}))
    assert steps[("a", DIRECT)].ok and steps[("b", DIRECT)].ok, "the host's own denials hold"
    for name in ("a", "b"):
        isolation = steps[(name, ISOLATION)]
        assert not isolation.ok and "came from the AssumeRole call" in isolation.detail


def test_a_list_that_fails_other_than_by_a_denial_goes_on_at_once() -> None:
    """With --wait, a first try stops a service at a failed list so that a retry writes
    nothing twice; a list that failed with no denial is no propagation, so the host is told
    to go on past it at once, and the put and get are tried, as the local check does."""

    def flaky(script: str, _now: float) -> list[str] | None:
        if "STOP_AT_FAILURE=1" not in script:
            return None
        return [
            "CHECK\ta\tassume role\tOK\t5\tassumed",
            "CHECK\ta\tlist\t\t5\tCould not connect to the endpoint URL",
        ]

    runner = ScriptedRunner(seconds=5, a_says=flaky)
    report = scripted(runner, deadline=300, wait_seconds=60, sleep=lambda _s: None)
    prepares = [s for s in runner.scripts if "MODE=prepare" in s]
    assert len(prepares) == 2 and "STOP_AT_FAILURE=0" in prepares[1], len(prepares)
    assert "BATCH=(0)" in prepares[1], "only the stopped service is sent again"
    assert report.ok, report.as_json()


def test_the_deadline_makes_a_try_the_last_and_keeps_what_the_one_before_said() -> None:
    """--wait 600 with --deadline 300: the tries stop where the deadline leaves no room for
    another, the last one goes on past a failed list, and a try the deadline left unsent
    does not erase what the one before it said (the denied assume, with its diagnosis)."""

    denied = ["CHECK\ta\tassume role\tAccessDenied\t5\tdenied for good"]
    runner = ScriptedRunner(seconds=20, a_says=lambda _script, _now: denied)

    def sleep(seconds: float) -> None:
        runner.now += seconds

    report = scripted(runner, deadline=300, wait_seconds=600, sleep=sleep)
    prepares = [s for s in runner.scripts if "MODE=prepare" in s]
    assert "STOP_AT_FAILURE=0" in prepares[-1], [p.count("STOP_AT_FAILURE=1") for p in prepares]
    assert any("MODE=probe" in s for s in runner.scripts), "b, healthy, is still probed"
    assume = next(s for s in report.services["a"].steps if s.name == "assume role")
    assert not assume.ok and "denied for good" in assume.detail
    assert report.services["b"].ok, report.as_json()


def test_time_spent_waiting_for_the_registration_comes_off_the_script() -> None:
    """The instance registers with SSM only at t=100 s of a 300 s run: the command then sent
    must still end, executionTimeout and polling included, by the deadline."""
    from botocore.exceptions import ClientError

    from checks.via_ssm import POLL_SLACK, _Phases

    now = [0.0]
    sent: list[dict[str, Any]] = []

    class Ssm:
        def send_command(self, **kw: Any) -> dict[str, Any]:
            if now[0] < 100:
                error = {"Error": {"Code": "InvalidInstanceId", "Message": "not registered"}}
                raise ClientError(error, "SendCommand")  # type: ignore[arg-type]
            sent.append({"at": now[0], **kw})
            return {"Command": {"CommandId": "c1"}}

        def get_command_invocation(self, **_kw: Any) -> dict[str, Any]:
            lines = [SOURCE, *healthy_lines("a", delete=False), "END\ta"]
            return {"Status": "Success", "StandardOutputContent": "\n".join(lines)}

    def advance(seconds: float) -> None:
        now[0] += max(seconds, 10.0)

    runner = SsmCommand(Ssm(), sleep=advance, clock=lambda: now[0], progress=io.StringIO())
    options = {"run": "r", "wait": 0, "deadline": 300.0, "register": 600.0}
    phases = _Phases(runner, TARGETS, ["a"], options, lambda: now[0])
    phases.run("prepare", ["a"])
    (command,) = sent
    timeout = int(command["Parameters"]["executionTimeout"][0])
    own = int(command["Parameters"]["commands"][0].split("SCRIPT_SECONDS=", 1)[1].split("\n")[0])
    assert command["at"] >= 100 and own + 60 == timeout
    assert command["at"] + timeout + POLL_SLACK <= 300, command["at"] + timeout


def test_a_signal_during_the_cleanup_still_sends_every_cleanup_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM while the first cleanup command runs: the second is sent all the same, then
    the run ends as interrupted (it used to leave the later batches' objects unnamed)."""
    import signal as signals_module

    from checks import via_ssm
    from checks.signals import Interrupted, interrupts

    monkeypatch.setattr(
        via_ssm,
        "batch_sizes",
        lambda _names, _requests=0: {"prepare": 1, "probe": 10, "cleanup": 1},
    )

    class SignallingRunner(ScriptedRunner):
        def send(self, *args: Any, **kw: Any) -> str:
            command_id = super().send(*args, **kw)
            if [mode for mode, _ in self.sent].count("cleanup") == 1:
                os.kill(os.getpid(), signals_module.SIGTERM)
                time.sleep(0.05)
            return command_id

    runner = SignallingRunner(seconds=1)
    with pytest.raises(Interrupted), interrupts():
        scripted(runner, deadline=300)
    assert [mode for mode, _ in runner.sent].count("cleanup") == 2, runner.sent


def _check_versions_left(bucket: str) -> list[str]:
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT]["aws"]
    versions, _prefixes, markers, _key, _version = backend.list_object_versions(
        bucket, prefix=RESERVED_PREFIX
    )
    return [v.name for v in [*versions, *markers]]

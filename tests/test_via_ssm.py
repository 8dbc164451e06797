"""`--via-ssm`: the host-side script run for real (bash + aws CLI against a moto server on
127.0.0.1), sent and polled through moto's SSM, and its output parsed into the report."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from check_world import ACCOUNT, INSTANCE_ID, REGION, USER_BODY, USER_KEY, Wiring, build, objects

from checks.aws_rules import aws_iam_rules
from checks.targets import parse_outputs
from checks.via_ssm import RemoteCheckError, SsmCommand, parse_output, render_script, run_via_ssm
from infra.aws_config import render_aws_config

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or not (BIN / "aws").exists(),
    reason="needs bash and the aws CLI (awscli from requirements-dev.txt)",
)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A real moto server on 127.0.0.1, on a free port, for the aws CLI to talk to."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def server(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Fresh emulator state, and every boto3 client of this test pointed at the server."""
    import requests

    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return moto_url


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
    environment here, as they would come from instance metadata on EC2.
    """

    def __init__(self, url: str, host_env: dict[str, str], config_file: Path) -> None:
        self.url = url
        self.host_env = host_env
        self.config_file = config_file
        self.ran = 0

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
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


def write_profiles(tmp_path: Path, outputs: dict[str, Any]) -> Path:
    arns = {name: out["roleArn"] for name, out in outputs["services"].items()}
    text = render_aws_config(REGION, arns).replace(
        "credential_source = Ec2InstanceMetadata", "credential_source = Environment"
    )
    path = tmp_path / "aws-config"
    path.write_text(text)
    return path


def test_ssm_round_trip_runs_the_script_on_the_host_and_explains_failures(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """service-a is healthy; the host may not assume service-b's role.

    The command is sent through moto's SSM while the instance is not yet registered, polled
    while InProgress, run for real by bash + aws CLI, and parsed; the operator's IAM read
    access turns service-b's denial into a precise diagnosis.
    """
    from moto.ssm import models as ssm_models

    world = build(Wiring(services=("service-a", "service-b"), host_may_assume=("service-a",)))
    agent = HostAgent(server, world.environment(), write_profiles(tmp_path, world.outputs))
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

    def agent_sleep(_seconds: float) -> None:
        """While we 'wait', the host picks up the command and runs it."""
        if not backend._commands:
            return  # still waiting for the instance to register
        command = backend._commands[-1]
        invocation = command.invocations[0]
        if invocation["Status"] == "InProgress" and agent.ran == 0:
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
    assert len(sends) == 2, "the first send must find the instance unregistered"
    assert f"waiting for {INSTANCE_ID} to register with SSM" in progress.getvalue()
    assert ": InProgress (" in progress.getvalue()
    assert report.source.endswith(f":assumed-role/dev-host-role-0a1b2c3/{INSTANCE_ID}")
    service_a = report.services["service-a"]
    assert [s.name for s in service_a.steps] == [
        "direct access denied",
        "assume role",
        "list",
        "put",
        "get",
        "delete",
        "isolation",
    ]
    assert service_a.ok, [s.detail for s in service_a.steps if not s.ok]
    (direct, assume) = report.services["service-b"].steps
    assert direct.ok and not assume.ok
    assert "Cause: identity side" in assume.detail, assume.detail
    for out in world.outputs["services"].values():
        assert objects(out["bucketName"]) == {USER_KEY: USER_BODY}, out["bucketName"]


def test_script_flags_direct_access_and_leaks_no_secret(server: str, tmp_path: Path) -> None:
    """Run the script alone: an over-privileged host fails, and no key reaches its output."""
    leak = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::*"}
    world = build(Wiring(services=("service-a",), host_extra=[leak]))
    agent = HostAgent(server, world.environment(), write_profiles(tmp_path, world.outputs))
    targets = parse_outputs(world.outputs, "test")
    with aws_iam_rules():
        done = agent.run(render_script(targets, ["service-a"], 0))
    assert done.returncode == 1, done.stderr
    report = parse_output(done.stdout, targets, ["service-a"], lambda *_: "unused")
    direct = report.services["service-a"].steps[0]
    assert direct.name == "direct access denied" and not direct.ok
    assert "over-privileged" in direct.detail
    for secret in (world.credentials["SecretAccessKey"], world.credentials["SessionToken"]):
        assert secret not in done.stdout + done.stderr
    assert objects(targets.services["service-a"].bucket_name) == {USER_KEY: USER_BODY}


TARGETS = parse_outputs(
    {
        "topology": "shared",
        "region": REGION,
        "hostRoleArn": f"arn:aws:iam::{ACCOUNT}:role/host",
        "hostInstanceId": INSTANCE_ID,
        "services": {
            name: {
                "bucketName": f"{name}-bucket",
                "bucketArn": f"arn:aws:s3:::{name}-bucket",
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{name}-role",
            }
            for name in ("a", "b")
        },
    },
    "test",
)


def test_parse_output_explains_each_kind_of_failure() -> None:
    """Each failed step gets its cause and fix, as in the local check."""
    lines = "\n".join(
        [
            "SOURCE\tarn:aws:sts::123456789012:assumed-role/host/i-1",
            "CHECK\ta\tdirect access denied\t0\t5\tALLOWED",
            "CHECK\ta\tassume role\t0\t7\tAn error occurred (AccessDenied) when calling the "
            "AssumeRole operation: not authorized",
            "CHECK\tb\tlist\t0\t3\tAn error occurred (AccessDenied) when calling ListObjectsV2",
            "CHECK\tb\tget\t0\t3\tMISMATCH read back bytes that differ from those written",
            "CHECK\tb\tisolation\t0\t9\tALLOWED a",
            "noise that is not part of the protocol",
            "END\ta",
            "END\tb",
        ]
    )
    seen: list[str] = []

    def explain(source: str, target: Any, message: str) -> str:
        seen.append(source)
        return f"diagnosed {target.name}"

    report = parse_output(lines, TARGETS, ["a", "b"], explain)
    a, b = report.services["a"].steps, report.services["b"].steps
    assert "over-privileged" in a[0].detail and a[1].detail == "diagnosed a"
    assert seen == ["arn:aws:sts::123456789012:assumed-role/host/i-1"]
    assert "lacks s3:ListBucket" in b[0].detail
    assert b[1].detail.startswith("MISMATCH")
    assert "b's role can list a-bucket" in b[2].detail
    assert [s.ms for s in a] == [5, 7] and not report.ok


@pytest.mark.parametrize("cut", [False, True])
def test_a_service_whose_report_ended_early_fails(cut: bool) -> None:
    """Steps that never arrived must not read as a pass: SSM keeps only 24,000 characters."""
    lines = [
        "SOURCE\tarn:aws:sts::123456789012:assumed-role/host/i-1",
        "CHECK\ta\tdirect access denied\t1\t5\tdenied",
        "CHECK\ta\tassume role\t1\t5\tassumed",
        "END\ta",
        "CHECK\tb\tdirect access denied\t1\t5\tdenied",
    ]
    stdout = "\n".join(lines) + ("\n" + "x" * 24_000 if cut else "")
    report = parse_output(stdout, TARGETS, ["a", "b"], lambda *_: "")
    assert report.services["a"].ok
    last = report.services["b"].steps[-1]
    assert last.name == "report complete" and not last.ok and not report.ok
    assert ("24,000 characters" in last.detail) is cut, last.detail


def test_script_stops_with_one_line_when_the_profiles_are_missing(tmp_path: Path) -> None:
    """Right after boot the user data may not have written the profiles yet: say so."""
    agent = HostAgent("http://127.0.0.1:9", {}, tmp_path / "missing-config")
    done = agent.run(render_script(TARGETS, ["a"], 0))
    assert done.returncode == 2
    with pytest.raises(RemoteCheckError, match=r"no profiles file at .*missing-config"):
        parse_output(done.stdout, TARGETS, ["a"], lambda *_: "")


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


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("ERROR\tthe host has no usable credentials: nope", "no usable credentials"),
        ("", "printed no check result"),
    ],
)
def test_host_side_errors_are_one_clear_message(stdout: str, message: str) -> None:
    """If the script could not run, say why instead of reporting an empty success."""
    with pytest.raises(RemoteCheckError, match=message):
        parse_output(stdout, TARGETS, ["a"], lambda *_: "")


def test_script_quotes_every_value() -> None:
    """Names reach bash as data, never as code."""
    script = render_script(TARGETS, ["b"], 12.7)
    assert "SERVICES=(a b)" in script and "CHECKED=(1)" in script
    assert "WAIT_SECONDS=12" in script and f"ACCOUNT={ACCOUNT}" in script
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr

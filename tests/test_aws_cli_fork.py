"""The forked aws CLI (tests/support/aws_cli_fork.py) answers as the CLI's entry point does:
the same output and exit code, the caller's environment and HOME, signals passed on, and no
call outliving a caller killed outright."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from support.aws_cli_fork import AUDIT, ForkedCli

ENTRY_POINT = Path(sys.executable).parent / "aws"


def both(
    forked_cli: ForkedCli, args: list[str], env: dict[str, str], cwd: Path
) -> list[tuple[int, str, str]]:
    answers = []
    for aws in (ENTRY_POINT, forked_cli.bin_dir / "aws"):
        done = subprocess.run(
            [str(aws), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
        )
        answers.append((done.returncode, done.stdout, done.stderr))
    return answers


def caller_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        **extra,
    }


def signed_by_testing(tmp_path: Path, endpoint: str, **extra: str) -> dict[str, str]:
    """A caller of `endpoint` with the emulator's admin keys."""
    return caller_env(
        tmp_path,
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        **extra,
    )


def test_it_answers_as_the_entry_point_does(
    forked_cli: ForkedCli, server: str, tmp_path: Path
) -> None:
    """A usage error (exit 2), an error AWS answers (exit 255, its words on stderr), and a
    success whose output format the caller's environment chooses; a relative path resolves
    against the caller's working directory."""
    iam = boto3.client("iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    env = caller_env(
        tmp_path,
        AWS_ENDPOINT_URL=server,
        AWS_ACCESS_KEY_ID=key["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
        AWS_DEFAULT_OUTPUT="text",
    )
    (tmp_path / "body").write_text("x")
    boto3.client("s3").create_bucket(Bucket="some-bucket")
    for args, code in [
        (["s3api", "no-such-operation"], 2),
        (["s3api", "get-object", "--bucket", "some-bucket", "--key", "none", "out"], 255),
        (["s3api", "put-object", "--bucket", "some-bucket", "--key", "k", "--body", "body"], 0),
        (["sts", "get-caller-identity", "--query", "Arn"], 0),
    ]:
        entry, fork = both(forked_cli, args, env, tmp_path)
        assert entry[0] == code, entry
        assert fork == entry, args


def test_an_assumed_role_is_cached_under_the_callers_home(
    forked_cli: ForkedCli, server: str, tmp_path: Path
) -> None:
    """The host script keeps the CLI's credential cache in memory by pointing HOME there: the
    forked CLI must cache under the caller's HOME too, never under the server's."""
    iam = boto3.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    arn = iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    (tmp_path / "config").write_text(
        f"[profile r]\nrole_arn = {arn}\ncredential_source = Environment\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = signed_by_testing(tmp_path, server, HOME=str(home))
    done = subprocess.run(
        [str(forked_cli.bin_dir / "aws"), "sts", "get-caller-identity", "--profile", "r"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert ":assumed-role/r/" in done.stdout
    assert len(list((home / ".aws" / "cli" / "cache").iterdir())) == 1
    assert list(forked_cli.server_home.rglob("*")) == [], "nothing lands in the server's HOME"


def hanging_endpoint() -> socket.socket:
    """Takes connections and never answers; accept() waits at most 30 s for one."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(30)
    return listener


def wait_for(condition: Callable[[], object], what: str, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, f"no {what} within {seconds:.0f} s"
        time.sleep(0.05)


def hanging_call(
    tmp_path: Path, listener: socket.socket, *extra: str
) -> tuple[list[str], dict[str, str]]:
    host, port = listener.getsockname()
    env = signed_by_testing(tmp_path, f"http://{host}:{port}", AWS_MAX_ATTEMPTS="1")
    return ["sts", "get-caller-identity", *extra], env


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_caller_reaches_the_call_and_ends_it_as_the_entry_point(
    forked_cli: ForkedCli, tmp_path: Path, signum: int
) -> None:
    """What `timeout` sends (SIGTERM) and Ctrl-C (SIGINT), mid-request: the call itself gets
    the signal (it ends by it, or by the CLI's own handler, not by the server's SIGKILL), and
    the caller ends as the entry point's process does."""
    listener = hanging_endpoint()
    args, env = hanging_call(tmp_path, listener, "--cli-read-timeout", "60")
    ends = []
    for aws in (ENTRY_POINT, forked_cli.bin_dir / "aws"):
        before = forked_cli.running()
        run = subprocess.Popen(
            [str(aws), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        conn, _ = listener.accept()  # the request is on its way: signal it now
        calls = forked_cli.running() - before
        run.send_signal(signum)
        _out, err = run.communicate(timeout=30)
        conn.close()
        ends.append((run.returncode, "Traceback" in err))
        if aws != ENTRY_POINT:
            (call,) = calls
            wait_for(lambda c=call: forked_cli.how_ended(c) is not None, "end of the forked call")
            assert forked_cli.how_ended(call) != f"signal {signal.SIGKILL}", "the signal never came"
    listener.close()
    assert ends[1] == ends[0], ends


def test_a_signal_the_caller_ignores_is_ignored_by_its_call(
    forked_cli: ForkedCli, tmp_path: Path
) -> None:
    """bash starts a background job (`aws ... &`, as the host script runs its calls) with
    SIGINT ignored: the call ignores it too and ends as it would have, by its read timeout."""
    listener = hanging_endpoint()
    args, env = hanging_call(tmp_path, listener, "--cli-read-timeout", "2")
    ends = []
    for aws in (ENTRY_POINT, forked_cli.bin_dir / "aws"):
        run = subprocess.Popen(
            [str(aws), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        conn, _ = listener.accept()
        run.send_signal(signal.SIGINT)
        _out, err = run.communicate(timeout=60)
        conn.close()
        ends.append((run.returncode, "Read timeout" in err))
    listener.close()
    assert ends[0] == (255, True), ends
    assert ends[1] == ends[0], ends


def test_a_caller_killed_outright_takes_its_call_with_it(
    forked_cli: ForkedCli, tmp_path: Path
) -> None:
    """SIGKILL (the SSM agent at executionTimeout, `timeout --kill-after`) runs no handler in
    the caller: the server sees its connection close and kills the call it was running."""
    listener = hanging_endpoint()
    args, env = hanging_call(tmp_path, listener, "--cli-read-timeout", "60")
    before = forked_cli.running()
    run = subprocess.Popen(
        [str(forked_cli.bin_dir / "aws"), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    conn, _ = listener.accept()
    calls = forked_cli.running() - before
    assert calls, "the call runs as the server's child"
    run.kill()
    run.wait(timeout=30)
    wait_for(lambda: not (forked_cli.running() & calls), "end of the forked call")
    conn.close()
    listener.close()


def test_the_aliases_in_the_callers_home_are_the_ones_used(
    forked_cli: ForkedCli, server: str, tmp_path: Path
) -> None:
    """awscli works out its alias file (~/.aws/cli/alias) at import, in a function's default:
    the forked CLI reads the caller's, as the entry point does."""
    home = tmp_path / "home"
    (home / ".aws" / "cli").mkdir(parents=True)
    (home / ".aws" / "cli" / "alias").write_text("[toplevel]\nwhoami = sts get-caller-identity\n")
    env = signed_by_testing(tmp_path, server, HOME=str(home))
    entry, fork = both(forked_cli, ["whoami", "--query", "Account"], env, tmp_path)
    assert entry[0] == 0, entry
    assert fork == entry


def test_no_string_names_the_servers_home_in_a_call(forked_cli: ForkedCli, tmp_path: Path) -> None:
    """The audit: after the rewrite, no string the call can reach still holds the server's
    HOME (a path computed at import that the rewrite missed would)."""
    env = caller_env(tmp_path, **{AUDIT: "1"})
    done = subprocess.run(
        [str(forked_cli.bin_dir / "aws"), "--version"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("aws-cli/") or done.stderr.startswith("aws-cli/")


def test_a_caller_with_other_start_up_variables_gets_the_entry_point(
    forked_cli: ForkedCli, tmp_path: Path
) -> None:
    """What Python and botocore read at start-up (here TZ) is the server's in a forked call:
    a caller whose values differ runs the entry point itself, in the call's process."""

    def call(**extra: str) -> subprocess.CompletedProcess[str]:
        env = caller_env(tmp_path, **{AUDIT: "forked"}, **extra)
        aws = str(forked_cli.bin_dir / "aws")
        return subprocess.run([aws, "--version"], env=env, capture_output=True, text=True)

    as_the_server = call()
    assert as_the_server.returncode == 3 and "forked" in as_the_server.stderr, "the control"
    elsewhere = call(TZ="Pacific/Auckland")
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "aws-cli/" in elsewhere.stdout + elsewhere.stderr

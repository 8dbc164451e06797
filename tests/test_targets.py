"""Reading the stack outputs: from a file, or from `pulumi stack output --json`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from checks.cli import main
from checks.targets import UsageError, load_stack_outputs, parse_outputs

OUTPUTS = {
    "topology": "dedicated",
    "region": "us-east-1",
    "services": {
        "a": {
            "bucketName": "a-bucket",
            "bucketArn": "arn:aws:s3:::a-bucket",
            "roleArn": "arn:aws:iam::123456789012:role/a-role",
        }
    },
    "instances": {"a": "i-0123456789abcdef0"},
}


def fake_pulumi(directory: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in `pulumi` on PATH that records its arguments; tests must not need the real CLI."""
    path = directory / "pulumi"
    path.write_text('#!/usr/bin/env bash\necho "$@" > "$(dirname "$0")/args"\n' + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory / "args"


def test_stack_outputs_come_from_the_pulumi_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--stack dev` runs `pulumi stack output --json --stack dev` and parses what it prints."""
    args = fake_pulumi(tmp_path, f"cat <<'EOF'\n{json.dumps(OUTPUTS)}\nEOF\n", monkeypatch)
    targets = load_stack_outputs("dev")
    assert args.read_text().split() == ["stack", "output", "--json", "--stack", "dev"]
    assert targets.topology == "dedicated"
    assert targets.services["a"].role_name == "a-role"
    assert targets.services["a"].account == "123456789012"
    load_stack_outputs(None)
    assert args.read_text().split() == ["stack", "output", "--json"], "no --stack: current"


def test_a_failing_pulumi_cli_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's own last line of stderr tells the user what went wrong; exit 2."""
    fake_pulumi(tmp_path, "echo 'error: no stack named dev found' >&2\nexit 255\n", monkeypatch)
    assert main(["--stack", "dev"]) == 2
    err = capsys.readouterr().err
    assert "`pulumi stack output --json` failed: error: no stack named dev found" in err
    assert err.count("\n") == 1


def test_missing_pulumi_cli_suggests_an_outputs_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the CLI on PATH, say so and point at --outputs."""
    monkeypatch.setenv("PATH", "")
    with pytest.raises(UsageError, match="pass --outputs FILE"):
        load_stack_outputs("dev")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"topology": "mesh"}, "'topology' is 'mesh'"),
        ({"region": None}, "'region' must be a non-empty string"),
        ({"services": {}}, "'services' must map service names"),
        ({"services": {"a": "x"}}, "services.a must be an object"),
        ({"topology": "shared"}, "'hostRoleArn' must be a non-empty string"),
    ],
)
def test_malformed_outputs_name_the_key(change: dict[str, object], message: str) -> None:
    """Each malformed output names the key at fault."""
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_outputs({**OUTPUTS, **change}, "outputs.json")


def test_the_live_check_needs_only_boto3_and_rich() -> None:
    """On a host, `python -m checks` must not drag in Pulumi, moto or PyYAML: those belong to
    the rehearsal, which imports them only when asked to run."""
    import subprocess
    import sys

    probe = (
        "import sys, checks.cli, checks.expectations, checks.via_ssm; "
        "print(sorted(m for m in ('pulumi', 'pulumi_aws', 'moto', 'yaml', 'infra') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

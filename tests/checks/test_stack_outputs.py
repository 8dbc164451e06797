"""Reading the stack outputs: from a file, or from `pulumi stack output --json`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from checks.cli import main
from checks.stack_outputs import UsageError, load_stack_outputs, parse_outputs

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
        "import sys, checks.cli, checks.runner, checks.via_ssm; "
        "print(sorted(m for m in ('pulumi', 'pulumi_aws', 'moto', 'yaml', 'infra') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """The CLI in-process: its exit code and the lines it wrote to stderr."""
    code = main(argv)
    captured = capsys.readouterr()
    assert captured.out == "", "a refused run prints no report"
    return code, captured.err.splitlines()


def refused(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`--outputs path` must be one `checks: error:` line naming the file, and exit 2."""
    code, lines = run_cli(["--outputs", str(path)], capsys)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("checks: error: "), lines
    assert str(path) in lines[0], lines
    return lines[0]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"region": "eu-west-1\xff"}', "is not UTF-8 (byte 0xff at offset 21)"),
        (b"\xff\xfe{\x00}\x00", "is not UTF-8 (byte 0xff at offset 0)"),
        (b"\xef\xbb\xbf{\xff}", "is not UTF-8 (byte 0xff at offset 4)"),
        (b"[" * 200_000 + b"]" * 200_000, "nests deeper than"),
        (b'{"n": ' + b"1" * 5_000 + b"}", "is not valid JSON"),
    ],
    ids=["latin-1", "utf-16", "bom-then-latin-1", "200000-deep", "a-5000-digit-number"],
)
def test_an_outputs_file_json_cannot_read_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, problem: str
) -> None:
    """What the json module or the decoder cannot take (it raised UnicodeDecodeError,
    RecursionError or a bare ValueError, each a traceback) is one line that says why."""
    path = tmp_path / "outputs.json"
    path.write_bytes(content)
    assert problem in refused(path, capsys)


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    """Windows editors write UTF-8 with a byte-order mark; it is still UTF-8 JSON."""
    from checks.stack_outputs import load_outputs_file

    path = tmp_path / "outputs.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(OUTPUTS).encode())
    assert load_outputs_file(path).region == "us-east-1"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes, which may be never: the check
    must refuse it unopened. A real process, with a timeout, so a regression fails rather
    than hanging the suite."""
    import subprocess
    import sys

    fifo = tmp_path / "outputs.json"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "checks", "--outputs", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("checks: error: ") and str(fifo) in line
    assert "is a FIFO (named pipe), not a regular file" in line, line


@pytest.mark.parametrize(
    ("device", "kind"),
    [("/dev/zero", "a character device"), ("/dev/null", "a character device")],
)
def test_a_device_is_refused(device: str, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    """/dev/zero never ends (read_text would exhaust memory), /dev/null is empty: neither is a
    file of stack outputs, and a terminal's /dev/stdin is a character device too."""
    if not Path(device).exists():
        pytest.skip(f"no {device} here")
    assert f"is {kind}, not a regular file" in refused(Path(device), capsys)


def test_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "is a directory, not a regular file" in refused(tmp_path, capsys)


def test_an_outputs_file_over_the_cap_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A huge file is refused by its size, before a byte is read."""
    from checks import stack_outputs as targets

    path = tmp_path / "outputs.json"
    with path.open("wb") as out:
        out.truncate(targets.MAX_OUTPUTS_BYTES + 1)  # sparse: no disk used

    def no_read(*_args: object) -> bytes:
        raise AssertionError("a file over the cap was read")

    monkeypatch.setattr(targets, "_read_at_most", no_read)
    assert "is larger than 16 MiB" in refused(path, capsys)


def test_a_file_that_grows_while_read_is_read_no_further_than_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log-like file growing as it is read (its size was small when looked at): the reader
    stops one byte past the cap and refuses it, instead of reading on for ever."""
    from checks import stack_outputs as targets

    monkeypatch.setattr(targets, "MAX_OUTPUTS_BYTES", 1024)
    path = tmp_path / "outputs.json"
    path.write_bytes(b"{")
    real = targets._read_at_most
    asked: list[int] = []

    def growing(fd: int, limit: int) -> bytes:
        asked.append(limit)
        with path.open("ab") as more:  # it grows after the size was checked
            more.write(b" " * 4096)
        return real(fd, limit)

    monkeypatch.setattr(targets, "_read_at_most", growing)
    assert "is larger than 1 KiB" in refused(path, capsys)
    assert asked == [1025], "at most the cap and one byte are read"


def test_a_signal_while_the_outputs_are_read_is_the_documented_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT or SIGTERM while the file is read (a slow network mount): `checks: interrupted
    by SIGINT`, exit 130, no traceback. The reader itself sends the signal once it is about to
    block, so the signal always arrives while loading (no sleep to race against)."""
    import signal
    import threading

    from checks import stack_outputs as targets

    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    never = threading.Event()

    def blocking(_fd: int, _limit: int) -> bytes:
        os.kill(os.getpid(), signal.SIGINT)  # ready: from here on the reader blocks
        never.wait(30)  # the handler's Interrupted ends this wait at once
        raise AssertionError("the signal did not interrupt the read")

    monkeypatch.setattr(targets, "_read_at_most", blocking)
    code, lines = run_cli(["--outputs", str(path)], capsys)
    assert (code, lines) == (130, ["checks: interrupted by SIGINT"])


@pytest.mark.parametrize(
    "region",
    ["mars-north-9", "zz-north-1", "us-east-1\n", " us-east-1", "US-EAST-1", "us-east", "useast1"],
)
def test_a_region_output_that_is_no_aws_region_names_it(region: str) -> None:
    """The check would send every request to an endpoint that does not exist (and botocore
    refuses some names with its own traceback): the region's shape and area are checked, as
    the program's config does."""
    with pytest.raises(UsageError, match=r"'region' .* is not an AWS region"):
        parse_outputs({**OUTPUTS, "region": region}, "outputs.json")


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-central-2", "il-central-1", "cn-northwest-1", "us-gov-west-1"]
)
def test_real_regions_are_accepted(region: str) -> None:
    assert parse_outputs({**OUTPUTS, "region": region}, "outputs.json").region == region


def test_the_region_rule_is_the_programs() -> None:
    """The live check must not import infra (a host has only the checks package, see above),
    so it holds its own copy of the region pattern; this keeps the two the same."""
    from checks.stack_outputs import REGION
    from infra.partition import REGION as PROGRAM_REGION

    assert REGION.pattern == PROGRAM_REGION.pattern

"""The reach proof's command line: which options go together, what each run reports, and when.

Runs `checks.cli.main` against moto with IAM enforced (`rehearsal.moto_rules.aws_iam_rules`), as
the host role of a `check_world` world, reading the documents with the world's `auditor`
profile (`--audit-profile auditor`), as tests/checks/test_check.py does. Refusals need no
world: they come before the outputs are read.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from support.check_world import ACCOUNT, AUDITOR, REGION, Wiring, World, bucket_of, build

import checks.reach.read
import checks.reach.steps
from checks.cli import main
from checks.reach.read import ReadFailed
from checks.report import Report, ServiceResult, Step
from rehearsal.moto_rules import aws_iam_rules

READER = ("--audit-profile", AUDITOR)
AUDITOR_ARN = f"arn:aws:iam::{ACCOUNT}:user/{AUDITOR}"
HOST_ROLE = "dev-host-role-0a1b2c3"
THREE = ("service-a", "service-b", "service-c")
TWO = ("service-a", "service-b")


_LOADED: dict[tuple[Any, ...], Any] = {}


@pytest.fixture(autouse=True)
def botocore_data_shared_by_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run makes new boto3 Sessions (the caller's and the reader's), and each loads
    botocore's endpoint rules and service models anew: a second a run on a busy machine.
    botocore already shares what its Loader returns among every client of a session
    (`instance_cache`); sharing it among this file's sessions changes nothing but the time."""
    from botocore import loaders

    def shared(method: Any) -> Any:
        def load(self: Any, *args: Any, **named: Any) -> Any:
            key = (method.__name__, tuple(self.search_paths), args, tuple(sorted(named.items())))
            if key not in _LOADED:
                _LOADED[key] = method(self, *args, **named)
            return _LOADED[key]

        return load

    for name in ("load_service_model", "load_data_with_path", "list_available_services"):
        monkeypatch.setattr(loaders.Loader, name, shared(getattr(loaders.Loader, name)))


def run(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
    reader: tuple[str, ...] = READER,
    as_json: bool = True,
) -> tuple[int, str, str]:
    """`python -m checks` as the world's caller, IAM enforced: (exit code, stdout, stderr)."""
    for name, value in world.environment().items():
        monkeypatch.setenv(name, value)
    outputs = world.write_outputs(tmp_path)
    argv = ["--outputs", str(outputs), "--wait", "0", *reader, *extra]
    if as_json:
        argv.append("--json")
    with aws_iam_rules():
        code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(
    world: World, tmp_path: Path, monkeypatch: Any, capsys: Any, *extra: str, **options: Any
) -> tuple[int, dict[str, Any]]:
    code, out, err = run(world, tmp_path, monkeypatch, capsys, *extra, **options)
    assert out.strip(), f"exit {code}, no report; stderr: {err}"
    return code, json.loads(out)


def step_names(report: dict[str, Any], service: str) -> list[str]:
    return [s["name"] for s in report["services"][service]["steps"]]


def reach_step(report: dict[str, Any], service: str) -> dict[str, Any]:
    (found,) = [s for s in report["services"][service]["steps"] if s["name"] == "reach"]
    return found


def shown(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=1)[:6000]


def reach_paragraph(out: str) -> tuple[str, list[str]]:
    """The table's last paragraph if it is the `reach:` line (rich wraps it), and the lines
    before it."""
    lines = [line.rstrip() for line in out.rstrip().splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("reach:")]
    assert starts, f"no reach: line in\n{out}"
    return " ".join(" ".join(lines[starts[-1] :]).split()), lines[: starts[-1]]


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--reach-only", "--via-ssm"], "--via-ssm"),
        (["--reach-only", "--sample", "2"], "--sample"),
        (["--reach-only", "--full-probes"], "--full-probes"),
        (["--reach-only", "--without-reach"], "--without-reach"),
        (["--reach-only", "--without-peer-get"], "--without-peer-get"),
        (["--full-probes", "--sample", "2"], "--sample"),
    ],
)
def test_conflicting_options_are_refused_before_anything_is_read(
    aws: None, tmp_path: Path, capsys: Any, options: list[str], named: str
) -> None:
    """Options that contradict each other end the run with exit 2 and one line naming the
    option, before the outputs are read (the outputs file here does not even exist) and before
    any request is sent."""
    code = main(["--outputs", str(tmp_path / "missing.json"), *options])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert named in lines[0] and options[0] in lines[0], lines[0]


def test_audit_profile_and_without_reach_are_mutually_exclusive(
    aws: None, tmp_path: Path, capsys: Any
) -> None:
    """--audit-profile names who reads for the reach proof; --without-reach skips it: argparse
    refuses the pair with exit 2 and one line naming both."""
    with pytest.raises(SystemExit) as stopped:
        main(["--outputs", str(tmp_path / "missing.json"), *READER, "--without-reach"])
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "--without-reach" in lines[0] and "--audit-profile" in lines[0], lines[0]


def test_an_unknown_audit_profile_is_bad_input(aws: None, tmp_path: Path, capsys: Any) -> None:
    """A reader profile that does not exist is bad input: exit 2, one line naming it, no
    report."""
    outputs = tmp_path / "outputs.json"
    services = {
        s: {
            "bucketName": bucket_of(s),
            "bucketArn": f"arn:aws:s3:::{bucket_of(s)}",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/ec2-assume-role/dev/{s}-role-0a1b2c3",
        }
        for s in TWO
    }
    outputs.write_text(
        json.dumps(
            {
                "topology": "shared",
                "region": REGION,
                "services": services,
                "hostRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{HOST_ROLE}",
                "hostInstanceId": "i-0123456789abcdef0",
            }
        )
    )
    code = main(["--outputs", str(outputs), "--audit-profile", "nosuch", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "nosuch" in lines[0], captured.err


# -- --reach-only -----------------------------------------------------------------------------


def test_reach_only_on_a_healthy_world_reports_one_reach_step_per_service(
    aws: None, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """--reach-only sends no probe: every service of the stack has exactly one step, `reach`,
    passing; the report has no `proof` (no probe ran) but the proof's `reach` summary; its
    source is the reader whose view of the documents it shows; exit 0."""
    world = build(Wiring(services=THREE))
    code, report = run_json(world, tmp_path, monkeypatch, capsys, "--reach-only")
    assert code == 0, shown(report)
    assert set(report) == {"ok", "source", "services", "reach"}, sorted(report)
    assert report["ok"] is True
    assert report["source"] == AUDITOR_ARN
    assert list(report["services"]) == list(THREE)
    for service in THREE:
        assert step_names(report, service) == ["reach"], report["services"][service]
        assert reach_step(report, service)["ok"], shown(report)
    assert report["reach"]["ok"] is True and report["reach"]["findings"] == []
    assert report["reach"]["notCovered"] == {}


def test_reach_only_fails_exactly_the_services_a_leak_reaches(
    aws: None, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """--reach-only must be able to fail: service-a's role granted s3:GetObject on b's objects
    (after deploy, with admin rights) fails a's and b's `reach` steps, naming the statement;
    c passes; exit 1."""
    world = build(Wiring(services=THREE))
    role = world.outputs["services"]["service-a"]["roleArn"].rsplit("/", 1)[-1]
    boto3.client("iam", region_name=REGION).put_role_policy(
        RoleName=role,
        PolicyName="defect",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Defect",
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{bucket_of('service-b')}/*",
                    }
                ],
            }
        ),
    )
    code, report = run_json(world, tmp_path, monkeypatch, capsys, "--reach-only")
    assert code == 1, shown(report)
    document = f"inline policy defect of role {role} statement Defect"
    for service in ("service-a", "service-b"):
        found = reach_step(report, service)
        assert not found["ok"] and document in found["detail"], found
    assert reach_step(report, "service-c")["ok"], shown(report)


def test_reach_only_table_does_not_claim_probes(
    aws: None, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """A report says only what ran: a --reach-only table ends with the reach line, and since
    it sent no probe, neither a `proof:` line nor a claim that probes checked anything."""
    world = build(Wiring(services=TWO))
    code, out, _ = run(world, tmp_path, monkeypatch, capsys, "--reach-only", as_json=False)
    assert code == 0, out
    line, before = reach_paragraph(out)
    assert not [b for b in before if b.startswith("proof")], out
    assert "the probes check" not in line and line.endswith("no probes ran (--reach-only)"), line


# -- probes beside the proof ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "sample", "with_reach"),
    [
        ((), 1, True),
        (("--full-probes",), None, True),
        (("--without-reach",), None, False),
    ],
    ids=["rotation-with-reach", "full-probes", "without-reach"],
)
def test_probes_are_a_rotation_beside_the_proof_and_every_pair_without_it(
    aws: None,
    tmp_path: Path,
    monkeypatch: Any,
    capsys: Any,
    options: tuple[str, ...],
    sample: int | None,
    with_reach: bool,
) -> None:
    """With the reach proof, the documents cover every pair, so by default each service role
    probes one other bucket in rotation (`sample` 1: 4 probes per bucket for the host and 4 for
    one other role); --full-probes, or --without-reach (nothing else proves the pairs), probe
    every pair (`sample` None: the host and every other role on every bucket). The proof's
    `reach` step comes first for every service unless it is skipped."""
    world = build(Wiring(services=THREE))
    reader = () if "--without-reach" in options else READER
    code, report = run_json(world, tmp_path, monkeypatch, capsys, *options, reader=reader)
    assert code == 0, shown(report)
    n = len(THREE)
    planned = 4 * n + 4 * n * ((n - 1) if sample is None else sample)
    assert report["proof"] == {"planned": planned, "done": planned, "sample": sample}
    for service in THREE:
        names = step_names(report, service)
        if with_reach:
            assert names[0] == "reach" and names.count("reach") == 1, names
            assert reach_step(report, service)["ok"], shown(report)
        else:
            assert "reach" not in names, names
    if with_reach:
        assert report["reach"]["ok"] is True, shown(report)
    else:
        assert report["reach"] == {"ok": None, "skipped": "--without-reach"}


# -- --via-ssm --------------------------------------------------------------------------------


def test_via_ssm_runs_the_proof_locally_with_the_readers_credentials(
    aws: None, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """--via-ssm sends the probes to the host (faked here: `run_via_ssm` returns the host's
    steps) with the caller's own session, and proves reach locally with the --audit-profile
    reader: each service's `reach` step comes first, the report has `reach`, and the probes
    are a rotation. Without --audit-profile the caller (the host role, which may read no IAM)
    reads, and every `reach` step fails naming the permission: so the proof did read with the
    auditor."""
    world = build(Wiring(services=TWO))
    calls: list[dict[str, Any]] = []

    def fake_run_via_ssm(session: Any, targets: Any, names: Any, **options: Any) -> Report:
        caller = session.client("sts", region_name=REGION).get_caller_identity()["Arn"]
        calls.append({"caller": caller, "names": list(names), **options})
        checked = list(names) or list(targets.services)
        steps = {n: ServiceResult([Step("assume role", True, 1, "on the host")]) for n in checked}
        return Report(source=caller, services=steps)

    monkeypatch.setattr("checks.cli.run_via_ssm", fake_run_via_ssm)
    code, report = run_json(world, tmp_path, monkeypatch, capsys, "--via-ssm")
    assert code == 0, shown(report)
    (call,) = calls
    assert f":assumed-role/{HOST_ROLE}/" in call["caller"], call
    assert call["sample"] == 1 and call["deadline_seconds"] <= 300
    for service in TWO:
        assert step_names(report, service) == ["reach", "assume role"], shown(report)
        assert reach_step(report, service)["ok"], shown(report)
    assert report["reach"]["ok"] is True and report["reach"]["findings"] == []

    code, report = run_json(world, tmp_path, monkeypatch, capsys, "--via-ssm", reader=())
    assert code == 1, shown(report)
    assert len(calls) == 2
    for service in TWO:
        found = reach_step(report, service)
        assert step_names(report, service)[0] == "reach"
        assert not found["ok"] and "iam:GetAccountAuthorizationDetails" in found["detail"], found


# -- the table -------------------------------------------------------------------------------


def test_the_table_ends_with_a_reach_line_naming_what_a_subset_left_out(
    aws: None, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """Without --json the report is a table, then the probes' `proof:` line, and last the
    `reach:` line saying what the documents proved. With --service service-a the proof covers
    a's role and bucket only: the reach line names service-b's and service-c's roles and
    buckets as not covered, and service-a's as neither."""
    world = build(Wiring(services=THREE))
    code, out, _ = run(
        world, tmp_path, monkeypatch, capsys, "--service", "service-a", as_json=False
    )
    assert code == 0, out
    line, before = reach_paragraph(out)
    assert any(b.startswith("proof:") for b in before), out
    assert line.startswith("reach: proven by documents"), line
    assert "no identity reaches beyond the design" in line, line
    assert line.endswith(world.outputs["services"]["service-c"]["bucketName"]), line
    assert "not covered (--service)" in line, line
    left_out = line.split("not covered (--service)", 1)[1]
    services = world.outputs["services"]
    for service in ("service-b", "service-c"):
        assert services[service]["roleArn"] in left_out, line
        assert services[service]["bucketName"] in left_out, line
    assert services["service-a"]["roleArn"] not in left_out, line
    assert services["service-a"]["bucketName"] not in left_out, line


# -- the deadline -----------------------------------------------------------------------------


def test_a_proof_iam_never_answers_fails_by_the_deadline(
    aws: None, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """The whole run ends by --deadline: when IAM never answers the proof's read, every
    service's `reach` step fails saying it did not finish before the deadline, the probes'
    steps still pass, the exit is 1, and the run ends within a few seconds of the deadline.
    (The read blocks on an Event the test releases afterwards; no fixed sleep.)"""
    world = build(Wiring(services=TWO))
    released = threading.Event()

    def never_answers(iam: Any) -> Any:
        released.wait(timeout=120)
        raise ReadFailed("released by the test")

    # steps.py binds read_account at import: both names must block.
    monkeypatch.setattr(checks.reach.read, "read_account", never_answers)
    monkeypatch.setattr(checks.reach.steps, "read_account", never_answers)
    deadline = 5.0
    started = time.monotonic()
    try:
        code, report = run_json(world, tmp_path, monkeypatch, capsys, "--deadline", f"{deadline:g}")
        elapsed = time.monotonic() - started
    finally:
        released.set()
    assert code == 1, shown(report)
    assert elapsed < deadline + 3, f"the run took {elapsed:.1f} s for a {deadline:g} s deadline"
    for service in TWO:
        found = reach_step(report, service)
        assert not found["ok"], found
        assert "did not finish before the deadline" in found["detail"], found
        others = [s for s in report["services"][service]["steps"] if s["name"] != "reach"]
        assert others and all(s["ok"] for s in others), shown(report)
    assert report["reach"]["ok"] is False and "deadline" in report["reach"]["error"]

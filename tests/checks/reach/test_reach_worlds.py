"""The reach proof end to end: one world per defect class, each holding only that defect.

Each world is the healthy stack (`check_world.build`) plus one change made after deploy with
admin rights (`reach_worlds`). The check runs as the instance would (the host role's session,
or service-a's in the dedicated topology), IAM enforced, and reads the documents with the
AWS profile `auditor`. Each test proves that the defect fails exactly the services it reaches,
names the document that grants it, and leaves the user's data as it was; and that healthy
accounts, however crowded, pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from support.check_world import ACCOUNT, Wiring, World, build
from support.reach_worlds import (
    AUDITOR,
    Defect,
    add_auditor,
    assert_untouched_and_clean,
    defect_cases,
    operator_on_host,
    unrelated_roles,
)

from checks.cli import main
from rehearsal.moto_rules import aws_iam_rules

READER = ("--audit-profile", AUDITOR)
TOPOLOGIES = ("shared", "dedicated")


def run(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> tuple[int, dict[str, Any]]:
    """`python -m checks --json` as the world's caller, IAM enforced: (exit code, report)."""
    for name, value in world.environment().items():
        monkeypatch.setenv(name, value)
    outputs = world.write_outputs(tmp_path)
    if world.outputs["topology"] == "dedicated":
        extra = ("--without-peer-get", *extra)  # one instance cannot prove peer gets
    argv = ["--outputs", str(outputs), "--wait", "0", "--json", *extra]
    with aws_iam_rules():
        try:
            code = main(argv)
        except SystemExit:  # argparse: the CLI does not know an option (yet)
            pytest.fail(f"the CLI refused {argv[4:]}: {capsys.readouterr().err.strip()}")
    captured = capsys.readouterr()
    try:
        report = json.loads(captured.out)
    except ValueError:
        pytest.fail(f"exit {code}, no JSON report; stderr: {captured.err.strip()}")
    return code, report


def steps(report: dict[str, Any], service: str) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in report["services"][service]["steps"]}


def shown(report: dict[str, Any]) -> str:
    """What a failed assertion prints: the proof's summary and every failed step."""
    failed = {
        name: [s for s in result["steps"] if not s["ok"]]
        for name, result in report.get("services", {}).items()
    }
    return json.dumps({"reach": report.get("reach"), "failed": failed}, indent=1)


@pytest.mark.parametrize(
    ("defect", "topology"), [pytest.param(d, t, id=i) for i, d, t in defect_cases()]
)
def test_a_defect_fails_exactly_the_services_it_reaches(
    aws: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    defect: Defect,
    topology: str,
) -> None:
    """One defect after deploy: the `reach` step of every service it reaches fails, naming the
    document that grants it; the proof's findings charge exactly those services (also the ones
    a dedicated instance does not check); every service it does not reach passes every step;
    exit 1; the user's objects are untouched and the check leaves nothing behind."""
    world = build(Wiring(topology=topology))
    add_auditor()
    expect = defect(world)
    code, report = run(world, tmp_path, monkeypatch, capsys, *READER)
    reported = set(report["services"])
    failing = expect.failing & reported
    assert failing, f"none of {sorted(expect.failing)} is checked here: the world proves nothing"
    assert code == 1, shown(report)
    for service in sorted(failing):
        reach = steps(report, service)["reach"]
        assert not reach["ok"], f"{service}: the proof misses the defect\n{shown(report)}"
        assert expect.document in reach["detail"], f"{service}: {reach['detail']}"
    naming = [f for f in report["reach"]["findings"] if expect.document in f["document"]]
    assert naming, f"no finding names {expect.document}\n{shown(report)}"
    charged = {service for finding in naming for service in finding["services"]}
    assert expect.failing <= charged, f"a service it reaches is not charged\n{shown(report)}"
    anyone = {service for f in report["reach"]["findings"] for service in f["services"]}
    assert anyone <= expect.failing, f"a service it does not reach is charged\n{shown(report)}"
    for service in sorted(reported - failing):
        assert report["services"][service]["ok"], f"{service} is charged wrongly\n{shown(report)}"
    assert_untouched_and_clean(world)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_healthy_world_passes_with_one_reach_step_per_service(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, topology: str
) -> None:
    """The stack as deployed: the documents prove each role reaches only its bucket, so every
    service's single `reach` step passes, the proof has no finding, and the check exits 0."""
    world = build(Wiring(topology=topology))
    add_auditor()
    code, report = run(world, tmp_path, monkeypatch, capsys, *READER)
    assert code == 0, shown(report)
    for service in report["services"]:
        names = [s["name"] for s in report["services"][service]["steps"]]
        assert names.count("reach") == 1, names
        assert steps(report, service)["reach"]["ok"], shown(report)
    assert report["reach"]["findings"] == [], shown(report)
    assert_untouched_and_clean(world)


def test_an_account_crowded_with_unrelated_roles_still_passes(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """50 roles of other teams, trusting each other and holding S3 rights on their own buckets,
    are no finding: nothing of the stack reaches them, so only the stack's identities are
    judged."""
    world = build()
    unrelated_roles(50)
    add_auditor()
    code, report = run(world, tmp_path, monkeypatch, capsys, *READER)
    assert code == 0, shown(report)
    assert all(steps(report, s)["reach"]["ok"] for s in report["services"]), shown(report)
    assert report["reach"]["rolesRead"] >= 54, report["reach"]["rolesRead"]
    assert report["reach"]["judged"] <= 1 + len(world.outputs["services"]), shown(report)
    assert_untouched_and_clean(world)


def test_a_trusted_operator_on_the_host_is_reported_not_failed(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """A role the host's trust names (an operator's way in) reaches every service through the
    host: the design allows it, so it is listed in `hostReachedBy`, and nothing fails."""
    world = build()
    operator = operator_on_host(world)
    add_auditor()
    code, report = run(world, tmp_path, monkeypatch, capsys, *READER)
    assert code == 0, shown(report)
    assert any(operator in entry for entry in report["reach"]["hostReachedBy"]), shown(report)
    assert report["reach"]["findings"] == [], shown(report)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_a_reader_without_the_read_policy_fails_every_reach_step(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, topology: str
) -> None:
    """An unread account is unproven, never passed: each service's `reach` step fails and
    names the permission the reader lacks; exit 1."""
    world = build(Wiring(topology=topology))
    add_auditor(with_read_policy=False)
    code, report = run(world, tmp_path, monkeypatch, capsys, *READER)
    assert code == 1, shown(report)
    for service in report["services"]:
        reach = steps(report, service)["reach"]
        assert not reach["ok"] and "iam:GetAccountAuthorizationDetails" in reach["detail"], reach
    assert_untouched_and_clean(world)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_without_reach_the_healthy_world_passes_with_no_reach_step(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, topology: str
) -> None:
    """`--without-reach` accepts the gap: no reader needed, no `reach` step, the probes alone
    decide, and the healthy world passes."""
    world = build(Wiring(topology=topology))
    code, report = run(world, tmp_path, monkeypatch, capsys, "--without-reach")
    assert code == 0, shown(report)
    for service in report["services"]:
        assert "reach" not in steps(report, service), report["services"][service]
    assert_untouched_and_clean(world)


def test_the_auditor_is_the_reader(aws: None) -> None:
    """The profile `auditor` in the credentials file the fixture names is the IAM user."""
    import boto3

    build()
    add_auditor()
    arn = boto3.Session(profile_name=AUDITOR).client("sts").get_caller_identity()["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:user/{AUDITOR}"


def test_a_deny_of_one_session_leaves_the_role_reaching(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trust that denies one session of service-a's role (`assumed-role/R/S`) still lets
    every other session in, the instance's among them: the chain counts."""
    world = build(Wiring())
    iam = boto3.client("iam", region_name=world.outputs["region"])
    a_role = world.outputs["services"]["service-a"]["roleArn"]
    a_name = a_role.rsplit("/", 1)[1]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": a_role}, "Action": "sts:AssumeRole"},
            {
                "Effect": "Deny",
                "Principal": {"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/{a_name}/other"},
                "Action": "sts:AssumeRole",
            },
        ],
    }
    iam.create_role(RoleName="x", AssumeRolePolicyDocument=json.dumps(trust))
    b_bucket = world.outputs["services"]["service-b"]["bucketName"]
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b_bucket}/*"}
        ],
    }
    iam.put_role_policy(RoleName="x", PolicyName="reads-b", PolicyDocument=json.dumps(grant))
    code, report = run(world, tmp_path, monkeypatch, capsys, *READER)
    assert code == 1, shown(report)
    for service, document in (
        ("service-a", "trust policy of role x"),  # the edge a → x
        ("service-b", "inline policy reads-b of role x"),  # x's grant on b's data
    ):
        step = next(s for s in report["services"][service]["steps"] if s["name"] == "reach")
        assert not step["ok"] and document in step["detail"], step
        assert "service-a role → sts:AssumeRole → role x" in step["detail"], step
    assert report["services"]["service-c"]["ok"], shown(report)


def test_a_service_subset_still_judges_the_other_roles_grants_on_its_bucket(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--service service-a` leaves b's and c's roles out of the proof's starts, but the host
    reaches them all: a grant of b's role on a's data still fails a."""
    world = build(Wiring())
    a_bucket = world.outputs["services"]["service-a"]["bucketName"]
    b_role = world.outputs["services"]["service-b"]["roleArn"].rsplit("/", 1)[1]
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{a_bucket}/*"}
        ],
    }
    boto3.client("iam", region_name=world.outputs["region"]).put_role_policy(
        RoleName=b_role, PolicyName="reads-a", PolicyDocument=json.dumps(grant)
    )
    code, report = run(world, tmp_path, monkeypatch, capsys, *READER, "--service", "service-a")
    assert code == 1, shown(report)
    step = steps(report, "service-a")["reach"]
    assert not step["ok"] and f"inline policy reads-a of role {b_role}" in step["detail"], step


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_a_healthy_versioned_world_is_no_finding(
    aws: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    topology: str,
) -> None:
    """Versioned buckets: the service role's s3:DeleteObjectVersion on the check's own prefix
    is the design, not a finding; the run passes and leaves no version behind."""
    world = build(Wiring(topology=topology, versioned=True))
    code, report = run(world, tmp_path, monkeypatch, capsys, *READER)
    assert code == 0, shown(report)
    assert report["reach"]["findings"] == [] and report["reach"]["beyond"] == []
    assert_untouched_and_clean(world)

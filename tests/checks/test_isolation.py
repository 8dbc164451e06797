"""Object-level isolation: a world that leaks one action to one identity must fail, exactly there.

Each world is the healthy stack plus one grant, built in moto and checked with IAM enforced,
as the host role. The grants leave out s3:ListBucket wherever they can, because that is what
makes a leak hard to see: without it S3 answers 403 for a missing key even where s3:GetObject
is allowed, so only a probe aimed at an object that exists can prove the leak.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.check_world import (
    USER_BODY,
    USER_KEY,
    Wiring,
    World,
    bucket_of,
    build,
    objects,
    statement,
)

from checks.cli import main
from rehearsal.moto_rules import aws_iam_rules

OBJECT_ACTIONS = {"get": "s3:GetObject", "put": "s3:PutObject", "delete": "s3:DeleteObject"}
LEAKS = [("list", "s3:ListBucket", ""), *((a, x, "/*") for a, x in OBJECT_ACTIONS.items())]


def check(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> tuple[int, dict[str, Any]]:
    for name, value in world.environment().items():
        monkeypatch.setenv(name, value)
    # The probes on their own, every pair of them: the reach proof is tested apart.
    outputs = str(world.write_outputs(tmp_path))
    with aws_iam_rules():
        code = main(["--outputs", outputs, "--wait", "0", "--json", "--without-reach"])
    return code, json.loads(capsys.readouterr().out)


def failed_steps(report: dict[str, Any]) -> dict[str, list[str]]:
    return {
        name: [s["name"] for s in result["steps"] if not s["ok"]]
        for name, result in report["services"].items()
        if not result["ok"]
    }


def assert_untouched_and_clean(world: World) -> None:
    """Every user object byte-identical, nothing left under the reserved prefix."""
    for out in world.outputs["services"].values():
        assert objects(out["bucketName"]) == {USER_KEY: USER_BODY}, out["bucketName"]


# (the identity given the grant, whose step must fail, how the report names it, where to look)
IDENTITIES = [
    ("host", "service-b", "direct access denied", "the host role", "the host role's inline"),
    ("service-a", "service-a", "isolation", "service-a's role", "service-a-role-0a1b2c3"),
]


@pytest.mark.parametrize(("action", "iam_action", "suffix"), LEAKS, ids=[x[0] for x in LEAKS])
@pytest.mark.parametrize(
    ("identity", "failing", "step", "named", "look_at"), IDENTITIES, ids=["host", "service"]
)
def test_an_identity_leaking_one_action_fails_exactly_its_step(
    aws: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    action: str,
    iam_action: str,
    suffix: str,
    identity: str,
    failing: str,
    step: str,
    named: str,
    look_at: str,
) -> None:
    """One S3 action on service-b's bucket, given to the host role (service-b's direct-access
    step fails) or to service-a's role (service-a's isolation fails), and nothing else fails.
    The detail names the identity, the action, the bucket, where to look and the fix."""
    grant = statement(iam_action, f"arn:aws:s3:::{bucket_of('service-b')}{suffix}")
    wiring = (
        Wiring(host_extra=[grant])
        if identity == "host"
        else Wiring(service_extra={identity: [grant]})
    )
    world = build(wiring)
    code, report = check(world, tmp_path, monkeypatch, capsys)
    assert code == 1
    assert failed_steps(report) == {failing: [step]}
    detail = next(s["detail"] for s in report["services"][failing]["steps"] if not s["ok"])
    assert detail.startswith(f"{named} can "), detail
    assert iam_action in detail and bucket_of("service-b") in detail
    assert look_at in detail and "Fix: remove that grant" in detail
    assert_untouched_and_clean(world)


def test_the_host_reading_every_object_fails_every_bucket(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The issue's first adversary: s3:GetObject on arn:aws:s3:::*/*, no ListBucket."""
    world = build(Wiring(host_extra=[statement("s3:GetObject", "arn:aws:s3:::*/*")]))
    code, report = check(world, tmp_path, monkeypatch, capsys)
    assert code == 1
    assert failed_steps(report) == {
        name: ["direct access denied"] for name in ("service-a", "service-b", "service-c")
    }
    assert_untouched_and_clean(world)


def test_a_role_with_read_write_delete_on_another_bucket_is_caught(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The issue's second adversary: Put/Get/Delete on another service's bucket/*."""
    grant = statement(
        ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
        f"arn:aws:s3:::{bucket_of('service-c')}/*",
    )
    world = build(Wiring(service_extra={"service-b": [grant]}))
    code, report = check(world, tmp_path, monkeypatch, capsys)
    assert code == 1 and failed_steps(report) == {"service-b": ["isolation"]}
    detail = next(s["detail"] for s in report["services"]["service-b"]["steps"] if not s["ok"])
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert action in detail, detail
    assert_untouched_and_clean(world)


def test_the_healthy_world_proves_every_action_denied(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The same probes on the healthy stack: every negative step says what was denied."""
    world = build()
    code, report = check(world, tmp_path, monkeypatch, capsys)
    assert code == 0, failed_steps(report)
    for name, result in report["services"].items():
        steps = {s["name"]: s["detail"] for s in result["steps"]}
        assert (
            "denied list, get, put and delete on " + bucket_of(name)
            in steps["direct access denied"]
        )
        assert "denied list, get, put and delete on the buckets of" in steps["isolation"]
    assert_untouched_and_clean(world)


def _session_of(world: World, service: str) -> Any:
    import boto3

    sts = world.session().client("sts")
    credentials = sts.assume_role(
        RoleArn=world.outputs["services"][service]["roleArn"], RoleSessionName="probe-test"
    )["Credentials"]
    return boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def test_put_and_delete_probes_change_nothing_even_when_allowed(aws: None) -> None:
    """A leaking identity's put and delete probes are answered 412 and leave the owner's test
    object exactly as it was: the proof costs no data."""
    from checks.contract import RESERVED_PREFIX
    from checks.plan import Verdict
    from checks.probes import TestObject, probe
    from checks.stack_outputs import parse_outputs

    grant = statement(
        ["s3:PutObject", "s3:DeleteObject"], f"arn:aws:s3:::{bucket_of('service-b')}/*"
    )
    world = build(Wiring(service_extra={"service-a": [grant]}))
    key = f"{RESERVED_PREFIX}owned-by-b"
    import boto3

    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=bucket_of("service-b"), Key=key, Body=b"b's test object"
    )
    target = parse_outputs(world.outputs, "t").services["service-b"]
    with aws_iam_rules():
        leaker = _session_of(world, "service-a")
        found = [
            probe(leaker, "a", action, target, TestObject(key, "t")) for action in ("put", "delete")
        ]
    assert [p.verdict for p in found] == [Verdict.ALLOWED, Verdict.ALLOWED], found
    assert all("PreconditionFailed" in p.detail for p in found), found
    assert objects(bucket_of("service-b"))[key] == b"b's test object"


def test_the_emulator_answers_a_missing_key_as_s3_does(aws: None) -> None:
    """moto says NoSuchKey to anyone allowed s3:GetObject; S3 says AccessDenied unless the
    caller may also list the bucket. The fixture restores S3's answer (and keeps it for
    callers who may list)."""
    from botocore.exceptions import ClientError

    get_only = statement("s3:GetObject", f"arn:aws:s3:::{bucket_of('service-b')}/*")
    world = build(Wiring(service_extra={"service-a": [get_only]}))
    with aws_iam_rules():
        reader = _session_of(world, "service-a")
        owner = _session_of(world, "service-b")
        codes = []
        for client, bucket in ((reader, bucket_of("service-b")), (owner, bucket_of("service-b"))):
            for call in (client.get_object, client.head_object):
                try:
                    call(Bucket=bucket, Key="no/such/key")
                except ClientError as err:
                    codes.append(err.response["Error"]["Code"])
        assert (
            reader.get_object(Bucket=bucket_of("service-b"), Key=USER_KEY)["Body"].read()
            == USER_BODY
        )
    assert codes == ["AccessDenied", "AccessDenied", "NoSuchKey", "404"], codes


def test_a_sample_probes_each_role_on_n_buckets_and_says_so(aws: None) -> None:
    """--sample 1 with 4 services: each role probes one other bucket, in rotation, so every
    bucket is still probed by one role (and by the host); each step says it was a sample.
    A leak outside the sample is, honestly, not seen: that is what the flag trades."""
    from checks.runner import Checker, CheckOptions
    from checks.stack_outputs import parse_outputs

    services = ("s-a", "s-b", "s-c", "s-d")
    world = build(Wiring(services=services))
    checker = Checker(world.session(), parse_outputs(world.outputs, "t"), CheckOptions(0, sample=1))
    with aws_iam_rules():
        report = checker.run([])
    assert report.ok
    probed = sorted((t.step[0], t.target.name) for t in checker.tasks if t.step[1] == "isolation")
    assert probed == [("s-a", "s-b"), ("s-b", "s-c"), ("s-c", "s-d"), ("s-d", "s-a")]
    for result in report.services.values():
        isolation = next(s for s in result.steps if s.name == "isolation")
        assert "(a sample of 1 bucket, in rotation)" in isolation.detail


def test_a_full_proof_the_deadline_cuts_short_fails_and_says_how_far_it_got(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every probe costs 50 ms of the run's clock and the proof needs 7.2 s of it: with a 1.5 s
    deadline the run ends, passes no step it did not prove, reports how many probes ran, and
    leaves nothing behind. The clock only moves with the probes, so a busy machine (slow to
    assume six roles) cannot spend the deadline before the first probe."""
    import time

    from checks import probes
    from checks.report import proof_line
    from checks.runner import Checker, CheckOptions
    from checks.stack_outputs import parse_outputs

    slow = probes._request
    now = [0.0]

    def slowly(*args: Any) -> None:
        if now[0] >= 1.5:  # begun past the deadline: real time too, or the waiter (it wakes
            time.sleep(0.2)  # once a second) would see all 144 probes run on a fast machine
        now[0] += 0.05
        slow(*args)

    monkeypatch.setattr(probes, "_request", slowly)
    world = build(Wiring(services=("s-a", "s-b", "s-c", "s-d", "s-e", "s-f")))
    options = CheckOptions(0, deadline_seconds=1.5, workers=1, clock=lambda: now[0])
    checker = Checker(world.session(), parse_outputs(world.outputs, "t"), options)
    with aws_iam_rules():
        report = checker.run([])
    proof = report.extra["proof"]
    # 30 probes fit in the deadline; the 30th ends just past it (0.05 thirty times is
    # 1.5000000000000007), and the waiter may cut the run while it is still in flight.
    assert 29 <= proof["done"] < 60 < proof["planned"] == 4 * (6 + 6 * 5), proof
    assert proof_line(proof).startswith(f"proof INCOMPLETE: {proof['done']:,} of 144 ")
    assert not report.ok
    for name, result in report.services.items():
        isolation = next(s for s in result.steps if s.name == "isolation")
        assert not isolation.ok and "deadline passed first" in isolation.detail, (name, isolation)
    assert_untouched_and_clean(world)

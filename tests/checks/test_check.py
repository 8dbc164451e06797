"""`python -m checks` end to end, as the host role, against moto with IAM enforcement on."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.check_world import (
    ACCOUNT,
    AUDITOR,
    DEDICATED_STEPS,
    INSTANCE_ID,
    SHARED_PROBE_STEPS,
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
from checks.own_bucket import OwnBucket
from checks.runner import RESERVED_PREFIX, Checker, CheckOptions
from checks.stack_outputs import parse_outputs
from rehearsal.moto_rules import aws_iam_rules

SHARED_STEPS = ["reach", *SHARED_PROBE_STEPS]
READER = ("--audit-profile", AUDITOR)
"""The reach proof reads with the world's auditor; the host role may read no IAM."""
HOST_SOURCE = f"arn:aws:sts::{ACCOUNT}:assumed-role/dev-host-role-0a1b2c3/{INSTANCE_ID}"


@pytest.fixture
def enforced(aws: None) -> Iterator[None]:
    """moto with IAM enforced by AWS's trust rules; the world is built before it starts."""
    yield


def run_check(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> tuple[int, str, str]:
    """Run the CLI with the world's caller credentials in the environment; (code, out, err)."""
    for name, value in world.environment().items():
        monkeypatch.setenv(name, value)
    outputs = world.write_outputs(tmp_path)
    with aws_iam_rules():
        code = main(["--outputs", str(outputs), "--wait", "0", *READER, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_json(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, *extra: str
) -> tuple[int, dict[str, Any]]:
    code, out, _ = run_check(world, tmp_path, monkeypatch, capsys, "--json", *extra)
    return code, json.loads(out)


def steps(report: dict[str, Any], service: str) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in report["services"][service]["steps"]}


def assert_untouched_and_clean(world: World) -> None:
    """The user's object is as it was, and no test object survives under the reserved prefix."""
    for out in world.outputs["services"].values():
        assert objects(out["bucketName"]) == {USER_KEY: USER_BODY}, out["bucketName"]


def test_healthy_world_passes_every_expectation(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Both sides in place: every service's role is assumable and reaches only its bucket."""
    world = build()
    code, report = check_json(world, tmp_path, monkeypatch, capsys)
    assert code == 0, json.dumps(report, indent=1)
    assert report["ok"] is True
    assert report["source"] == HOST_SOURCE
    for service in world.outputs["services"]:
        found = report["services"][service]
        assert [s["name"] for s in found["steps"]] == SHARED_STEPS, service
        assert found["ok"] and all(s["ok"] for s in found["steps"]), service
        assert all(isinstance(s["ms"], int) and s["ms"] >= 0 for s in found["steps"])
    assert_untouched_and_clean(world)


def test_json_is_exactly_the_documented_shape(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """CI parses this document; keys beyond the contract would be a silent change."""
    world = build(Wiring(services=("service-a",)))
    code, report = check_json(world, tmp_path, monkeypatch, capsys)
    assert code == 0
    assert set(report) == {"ok", "source", "services", "proof", "reach"}
    assert set(report["reach"]) == {
        "ok",
        "rolesRead",
        "judged",
        "edges",
        "findings",
        "hostReachedBy",
        "notCovered",
        "roleReach",
        "beyond",
        "outsideTheStack",
    }
    assert report["proof"] == {"planned": 4, "done": 4, "sample": 1}, "the host's 4 probes"
    (step, *_) = report["services"]["service-a"]["steps"]
    assert set(step) == {"name", "ok", "ms", "detail"}
    assert "isolation" not in steps(report, "service-a"), "one service has no other bucket"


def test_host_without_assume_permission_names_both_possible_causes(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The host cannot read IAM, so the report names both sides and how to tell them apart."""
    world = build(Wiring(host_may_assume=("service-a", "service-c")))
    code, report = check_json(world, tmp_path, monkeypatch, capsys)
    assert code == 1
    failed = steps(report, "service-b")["assume role"]
    assert not failed["ok"]
    assert "identity side" in failed["detail"] and "resource side" in failed["detail"]
    assert "aws iam simulate-principal-policy" in failed["detail"]
    assert "aws iam get-role --role-name service-b-role-0a1b2c3" in failed["detail"]
    assert report["services"]["service-a"]["ok"] and report["services"]["service-c"]["ok"]
    assert_untouched_and_clean(world)


def test_missing_identity_side_is_named_when_the_caller_may_read_iam(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """With iam:GetRole the check sees the trust names the host: the host policy is at fault."""
    world = build(Wiring(host_may_assume=("service-a", "service-c"), host_reads_iam=True))
    code, report = check_json(world, tmp_path, monkeypatch, capsys)
    detail = steps(report, "service-b")["assume role"]["detail"]
    assert code == 1
    assert "Cause: identity side" in detail and "lacks sts:AssumeRole" in detail, detail
    assert "resource side" not in detail, detail


def test_trust_policy_without_the_host_is_named_as_the_resource_side(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The scenario's first failure: the host may assume, but the role does not trust it."""
    world = build(Wiring(trusting=("service-a", "service-b"), host_reads_iam=True))
    code, report = check_json(world, tmp_path, monkeypatch, capsys)
    detail = steps(report, "service-c")["assume role"]["detail"]
    assert code == 1
    assert "Cause: resource side" in detail and "does not name" in detail, detail
    assert report["services"]["service-a"]["ok"]


def test_trust_policy_without_the_host_fails_without_iam_read(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Without IAM read access the same break still fails, naming both possible sides."""
    world = build(Wiring(trusting=("service-a", "service-b")))
    code, report = check_json(world, tmp_path, monkeypatch, capsys)
    assert code == 1
    assert "One of two sides is missing" in steps(report, "service-c")["assume role"]["detail"]


def test_host_with_direct_s3_access_is_over_privileged(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """If the host can list a bucket itself, isolation between services is gone."""
    direct = statement("s3:ListBucket", f"arn:aws:s3:::{bucket_of('service-b')}")
    world = build(Wiring(host_extra=[direct]))
    code, report = check_json(world, tmp_path, monkeypatch, capsys)
    assert code == 1
    failed = steps(report, "service-b")["direct access denied"]
    assert not failed["ok"] and "over-privileged" in failed["detail"], failed
    assert steps(report, "service-a")["direct access denied"]["ok"]


def test_service_role_reaching_another_bucket_fails_isolation(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """service-a's role must not list service-b's bucket."""
    leak = statement("s3:ListBucket", f"arn:aws:s3:::{bucket_of('service-b')}")
    world = build(Wiring(service_extra={"service-a": [leak]}))
    code, report = check_json(world, tmp_path, monkeypatch, capsys)
    assert code == 1
    isolation = steps(report, "service-a")["isolation"]
    assert not isolation["ok"] and bucket_of("service-b") in isolation["detail"], isolation
    assert steps(report, "service-b")["isolation"]["ok"]


def test_policy_attached_after_the_check_started_succeeds_on_retry(enforced: None) -> None:
    """New IAM policies take seconds to propagate; AccessDenied is retried until --wait."""
    from moto.iam.models import iam_backends

    world = build(Wiring(services=("service-a",), host_may_assume=()))
    role_arn = world.outputs["services"]["service-a"]["roleArn"]
    delays: list[float] = []

    def attach_then_sleep(seconds: float) -> None:
        if not delays:  # IAM "propagates" during the first back-off
            iam_backends[ACCOUNT]["global"].put_role_policy(
                "dev-host-role-0a1b2c3",
                "assume-service-roles",
                json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}
                        ],
                    }
                ),
            )
        delays.append(seconds)

    targets = parse_outputs(world.outputs, "test")
    options = CheckOptions(wait_seconds=30, sleep=attach_then_sleep)
    with aws_iam_rules():
        report = Checker(world.session(), targets, options).run(["service-a"])
    assumed = report.services["service-a"].steps[1]
    assert report.ok, report.as_json()
    assert assumed.name == "assume role" and "after 1 retries" in assumed.detail
    assert delays == [0.5]


def test_retry_gives_up_when_wait_runs_out(enforced: None) -> None:
    """The back-off grows, is capped, and stops at the deadline with a diagnosis."""
    world = build(Wiring(services=("service-a",), host_may_assume=()))
    now = [0.0]
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        now[0] += seconds

    options = CheckOptions(wait_seconds=20, sleep=sleep, clock=lambda: now[0])
    with aws_iam_rules():
        report = Checker(world.session(), parse_outputs(world.outputs, "t"), options).run([])
    assert not report.ok
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 4.5]
    assert "One of two sides is missing" in report.services["service-a"].steps[1].detail


def test_dedicated_credentials_check_their_own_service(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """On a production instance the caller is the service role itself: no assume step."""
    world = build(Wiring(topology="dedicated"))
    code, report = check_json(world, tmp_path, monkeypatch, capsys, "--without-peer-get")
    assert code == 0, report
    # The instance probes its own service; the documents are judged for every service, so a
    # finding on another one fails this run too.
    assert list(report["services"]) == ["service-a", "service-b", "service-c"]
    assert [s["name"] for s in report["services"]["service-a"]["steps"]] == DEDICATED_STEPS
    for other in ("service-b", "service-c"):
        assert [s["name"] for s in report["services"][other]["steps"]] == ["reach"], other
    assert report["source"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/service-a-role")
    code, out, err = run_check(world, tmp_path, monkeypatch, capsys, "--service", "service-b")
    assert code == 2 and out == "" and "--service must be service-a" in err


def test_dedicated_get_on_other_buckets_is_not_passed_unproven(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """One instance cannot aim a get at another bucket's object: without the user accepting
    that gap, the isolation step fails and says why (never a silent pass)."""
    world = build(Wiring(topology="dedicated"))
    code, report = check_json(world, tmp_path, monkeypatch, capsys)
    isolation = steps(report, "service-a")["isolation"]
    assert code == 1 and not isolation["ok"]
    assert "a get needs an object in that bucket" in isolation["detail"]
    assert "--without-peer-get" in isolation["detail"]
    assert [name for name, step in steps(report, "service-a").items() if not step["ok"]] == [
        "isolation"
    ]


@pytest.mark.parametrize("action", ["s3:DeleteObject", "s3:PutObject"])
def test_a_dedicated_role_that_may_delete_or_put_in_another_bucket_fails(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, action: str
) -> None:
    """Without s3:ListBucket: an allowed delete of a key that never existed answers 204, and a
    put of a new key lands (and is removed): either is a leak, seen from one instance."""
    grant = statement(action, f"arn:aws:s3:::{bucket_of('service-b')}/*")
    world = build(Wiring(topology="dedicated", service_extra={"service-a": [grant]}))
    code, report = check_json(world, tmp_path, monkeypatch, capsys, "--without-peer-get")
    isolation = steps(report, "service-a")["isolation"]
    assert code == 1 and not isolation["ok"]
    assert action in isolation["detail"] and bucket_of("service-b") in isolation["detail"]
    if action == "s3:DeleteObject":
        assert_untouched_and_clean(world)
        return
    # It may put but not delete there, and the check holds no other credentials on this
    # instance: what it wrote is named (the lifecycle rule expires it), user data untouched.
    assert "which it cannot delete" in isolation["detail"], isolation["detail"]
    written = set(objects(bucket_of("service-b"))) - {USER_KEY}
    assert len(written) == 1 and next(iter(written)) in isolation["detail"]
    assert objects(bucket_of("service-b"))[USER_KEY] == USER_BODY


def test_failure_midway_still_deletes_the_test_object(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Read-back denied after the write: the delete in `finally` still removes the object."""
    deny_get = statement("s3:GetObject", f"arn:aws:s3:::{bucket_of('service-a')}/*", effect="Deny")
    world = build(Wiring(service_extra={"service-a": [deny_get]}))
    code, report = check_json(world, tmp_path, monkeypatch, capsys)
    found = steps(report, "service-a")
    assert code == 1
    assert not found["get"]["ok"] and "s3:GetObject" in found["get"]["detail"]
    assert found["delete"]["ok"]
    assert_untouched_and_clean(world)


def test_a_crash_midway_still_deletes_the_test_object(
    enforced: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even an unexpected exception after the write cannot leave a test object behind."""
    world = build(Wiring(services=("service-a",)))

    def crash(*_args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(OwnBucket, "_read_back", crash)
    checker = Checker(world.session(), parse_outputs(world.outputs, "t"), CheckOptions(0))
    with aws_iam_rules(), pytest.raises(RuntimeError, match="boom"):
        checker.run(["service-a"])
    assert_untouched_and_clean(world)


def test_no_secret_in_any_output(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Neither the host's keys nor any assumed keys appear on stdout or stderr, in any mode."""
    from moto.sts.models import sts_backends

    world = build(Wiring(host_may_assume=("service-a", "service-b")))
    texts = []
    for extra in (("--json", "-v"), ("-v",)):
        _, out, err = run_check(world, tmp_path, monkeypatch, capsys, *extra)
        texts.append(out + err)
    secrets = [world.credentials["SecretAccessKey"], world.credentials["SessionToken"]]
    for assumed in sts_backends[ACCOUNT]["aws"].assumed_roles:
        secrets += [assumed.secret_access_key, assumed.session_token]
    assert len(secrets) > 2, "the check assumed no role, so this test proves nothing"
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert not re.search(r"FQoGZXIvYXdz", text), "a session token leaked"


def test_table_shows_pass_fail_latency_cause_and_fix(
    enforced: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The human report: a row per service and step, and for failures the cause and the fix."""
    world = build(Wiring(trusting=("service-a",), services=("service-a", "service-b")))
    code, out, _ = run_check(world, tmp_path, monkeypatch, capsys)
    assert code == 1
    assert "PASS" in out and "FAIL" in out
    assert "assume role" in out and "Fix:" in out.replace("\n", " ")
    assert "1/2 services pass" in out
    assert RESERVED_PREFIX in out


BAD_INPUT = [
    ("missing", None, "does not exist"),
    ("malformed", "{not json", "not valid JSON"),
    ("no services", json.dumps({"topology": "shared", "region": "us-east-1"}), "no 'services'"),
    ("wrong type", "[1, 2]", "JSON object"),
    (
        "bad role",
        json.dumps(
            {
                "topology": "shared",
                "region": "us-east-1",
                "hostRoleArn": "arn:aws:iam::123456789012:role/h",
                "services": {
                    "a": {"bucketName": "b", "bucketArn": "arn:aws:s3:::b", "roleArn": "x"}
                },
            }
        ),
        "'roleArn' 'x' is not an IAM role ARN",
    ),
]


@pytest.mark.parametrize(("label", "content", "message"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_outputs_file_exits_2_with_one_line(
    tmp_path: Path, capsys: Any, label: str, content: str | None, message: str
) -> None:
    """Bad input is named in one line on stderr, exit 2, no traceback."""
    path = tmp_path / "outputs.json"
    if content is not None:
        path.write_text(content)
    assert main(["--outputs", str(path)]) == 2, label
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1, err


def test_unknown_service_exits_2(enforced: None, tmp_path: Path, capsys: Any) -> None:
    """A typo in --service must not silently check nothing."""
    path = build(Wiring(services=("service-a",))).write_outputs(tmp_path)
    assert main(["--outputs", str(path), "--service", "service-z"]) == 2
    err = capsys.readouterr().err
    assert "unknown --service 'service-z'; the stack has: service-a" in err


def test_no_usable_credentials_exits_2(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Without credentials there is nothing to check: say so, exit 2."""
    path = build(Wiring(services=("service-a",))).write_outputs(tmp_path)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert main(["--outputs", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no usable AWS credentials" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--wait", "-1"], "between 0 and 3600"),
        (["--wait", "soon"], "not a number"),
        (["--outputs", "a.json", "--stack", "dev"], "not allowed with argument"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, capsys: Any, argv: list[str], message: str) -> None:
    """Usage errors are one line and exit 2, like every other bad input."""
    (tmp_path / "a.json").write_text("{}")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1, err


def test_table_shows_aws_error_text_literally() -> None:
    """AWS and CLI messages contain brackets; they must not be read as rich markup."""
    import io

    from checks.report import Report, ServiceResult, Step, write_table

    detail = "The config profile [profile a] could not be found [/bold]"
    report = Report("arn:[x]", {"a": ServiceResult([Step("list", False, 1, detail)])})
    out = io.StringIO()
    write_table(report, out)
    text = " ".join(out.getvalue().split())
    assert "[profile a]" in text and "[/bold]" in text and "arn:[x]" in text


def test_unreachable_sts_is_a_failed_step_not_a_crash(
    enforced: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timeout on AssumeRole fails that service's step; the run still reports."""
    from botocore.exceptions import EndpointConnectionError

    world = build(Wiring(services=("service-a",)))
    checker = Checker(world.session(), parse_outputs(world.outputs, "t"), CheckOptions(0))

    def unreachable(**_kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sts.amazonaws.com")

    monkeypatch.setattr(checker._sts, "assume_role", unreachable)
    with aws_iam_rules():
        report = checker.run([])
    assume = report.services["service-a"].steps[1]
    assert assume.name == "assume role" and not assume.ok
    assert "cannot reach STS" in assume.detail

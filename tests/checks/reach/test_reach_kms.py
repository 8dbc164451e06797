"""SSE-KMS services under the check: put and get go through the key, and the reach proof
judges who may use each key (key policy, IAM and grants), one defect per world.

Worlds: service-a and service-b are SSE-KMS (a key each, as the stack creates it), service-c
is SSE-S3. IAM is enforced with the emulator's KMS rules, so a missing key grant fails the put
as it would on AWS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from support.check_world import REGION, Wiring, build, statement
from support.reach_worlds import add_auditor, prove, role_arn, role_name

from checks.cli import main
from rehearsal.moto_rules import aws_iam_rules

KMS = ("service-a", "service-b")


def key_of(world: Any, service: str) -> str:
    return str(world.outputs["services"][service]["kmsKeyArn"])


def run_check(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, *extra: str
) -> Any:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(add_auditor()))
    for name, value in world.environment().items():
        monkeypatch.setenv(name, value)
    outputs = world.write_outputs(tmp_path)
    with aws_iam_rules():
        code = main(
            [
                "--outputs",
                str(outputs),
                "--json",
                "--audit-profile",
                "auditor",
                "--wait",
                "0",
                *extra,
            ]
        )
    return code, json.loads(capsys.readouterr().out)


def steps(report: Any, service: str) -> dict[str, Any]:
    return {s["name"]: s for s in report["services"][service]["steps"]}


@pytest.mark.parametrize("topology", ["shared", "dedicated"])
def test_a_healthy_kms_stack_passes_through_its_keys(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, topology: str
) -> None:
    world = build(Wiring(kms=KMS, topology=topology))
    args = ["--without-peer-get"] if topology == "dedicated" else []
    code, report = run_check(world, tmp_path, monkeypatch, capsys, *args)
    assert code == 0, json.dumps(report, indent=1)
    assert report["reach"]["findings"] == []
    put = steps(report, "service-a")["put"]
    assert put["ok"] and f"encrypted with KMS key {key_of(world, 'service-a')}" in put["detail"]
    reach = steps(report, "service-b")["reach"]["detail"]
    assert f"its key {key_of(world, 'service-b')}, with exactly kms:GenerateDataKey" in reach
    assert "its key" not in steps(report, "service-c")["reach"]["detail"]


def test_without_its_key_grant_the_owner_cannot_put_and_both_steps_say_why(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    world = build(Wiring(kms=KMS))
    iam = boto3.client("iam", region_name=REGION)
    name = role_name(world, "service-a")
    granted = iam.get_role_policy(RoleName=name, PolicyName="bucket-access")["PolicyDocument"]
    granted = json.loads(granted) if isinstance(granted, str) else granted
    kept = [s for s in granted["Statement"] if s.get("Sid") != "UseOwnKeyThroughS3"]
    assert len(kept) == len(granted["Statement"]) - 1
    iam.put_role_policy(
        RoleName=name,
        PolicyName="bucket-access",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": kept}),
    )
    code, report = run_check(world, tmp_path, monkeypatch, capsys)
    assert code == 1
    key = key_of(world, "service-a")
    put = steps(report, "service-a")["put"]
    assert not put["ok"] and f"lacks kms:GenerateDataKey on its key {key}" in put["detail"]
    reach = steps(report, "service-a")["reach"]
    assert (
        not reach["ok"]
        and f"kms:GenerateDataKey on key {key} (expected, missing)" in (reach["detail"])
    )
    assert steps(report, "service-b")["reach"]["ok"]


def _defect_host_decrypts(world: Any) -> tuple[set[str], str]:
    boto3.client("iam", region_name=REGION).put_role_policy(
        RoleName="dev-host-role-0a1b2c3",
        PolicyName="defect",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {**statement("kms:Decrypt", key_of(world, "service-b")), "Sid": "Defect"}
                ],
            }
        ),
    )
    return {"service-b"}, "inline policy defect of role dev-host-role-0a1b2c3 statement Defect"


def _defect_other_role_in_key_policy(world: Any) -> tuple[set[str], str]:
    kms = boto3.client("kms", region_name=REGION)
    key = key_of(world, "service-a")
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    policy["Statement"].append(
        {
            "Sid": "Defect",
            "Effect": "Allow",
            "Principal": {"AWS": role_arn(world, "service-b")},
            "Action": ["kms:Decrypt"],
            "Resource": "*",
        }
    )
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    return {"service-a", "service-b"}, f"key policy of {key} statement Defect"


def _defect_kms_everything_reachable(world: Any) -> tuple[set[str], str]:
    name = role_name(world, "service-c")
    boto3.client("iam", region_name=REGION).put_role_policy(
        RoleName=name,
        PolicyName="defect",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{**statement("kms:*", "*"), "Sid": "Defect"}]}
        ),
    )
    return {"service-a", "service-b", "service-c"}, f"inline policy defect of role {name}"


def _defect_grant_to_another_role(world: Any) -> tuple[set[str], str]:
    key = key_of(world, "service-b")
    grant = boto3.client("kms", region_name=REGION).create_grant(
        KeyId=key, GranteePrincipal=role_arn(world, "service-a"), Operations=["Decrypt"]
    )
    return {"service-a", "service-b"}, f"grant {grant['GrantId']} on key {key}"


@pytest.mark.parametrize(
    "defect",
    [
        _defect_host_decrypts,
        _defect_other_role_in_key_policy,
        _defect_kms_everything_reachable,
        _defect_grant_to_another_role,
    ],
)
def test_each_key_defect_fails_the_services_it_reaches_naming_the_document(
    aws: None, defect: Any
) -> None:
    world = build(Wiring(kms=KMS))
    failing, document = defect(world)
    reach = prove(world)
    failed = {name for name, step in reach.steps.items() if not step.ok}
    assert failed == failing, {n: s.detail for n, s in reach.steps.items()}
    for name in failing:
        assert document in reach.steps[name].detail, (name, reach.steps[name].detail)
    assert any(document in f["document"] for f in reach.summary["findings"])
    assert all("on key arn:aws:kms:" in f["path"] for f in reach.summary["findings"])
    assert all("AccountAdministersThroughIam:" not in f["fix"] for f in reach.summary["findings"])
    assert any(
        "remove kms:" in f["fix"] and document in f["fix"] for f in reach.summary["findings"]
    )


def _stranger_role() -> str:
    trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    document = {"Version": "2012-10-17", "Statement": [{**trust, "Action": "sts:AssumeRole"}]}
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="stranger", AssumeRolePolicyDocument=json.dumps(document))
    return str(role["Role"]["Arn"])


def _defect_stranger_in_key_policy(world: Any) -> tuple[set[str], str]:
    """A role the stack cannot reach, named in a key policy: not judged by its path (there is
    none), so the key policy itself is the finding."""
    stranger = _stranger_role()
    kms = boto3.client("kms", region_name=REGION)
    key = key_of(world, "service-b")
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    policy["Statement"].append(
        {"Sid": "Defect", "Effect": "Allow", "Principal": {"AWS": stranger}, "Action": "kms:*"}
        | {"Resource": "*"}
    )
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    return {"service-b"}, f"key policy of {key} statement Defect"


def _defect_grant_to_a_stranger(world: Any) -> tuple[set[str], str]:
    key = key_of(world, "service-a")
    grant = boto3.client("kms", region_name=REGION).create_grant(
        KeyId=key, GranteePrincipal=_stranger_role(), Operations=["Decrypt"]
    )
    return {"service-a"}, f"grant {grant['GrantId']} of key {key}"


@pytest.mark.parametrize("defect", [_defect_stranger_in_key_policy, _defect_grant_to_a_stranger])
def test_a_key_naming_anyone_outside_the_stack_fails_its_service(aws: None, defect: Any) -> None:
    world = build(Wiring(kms=KMS))
    failing, document = defect(world)
    reach = prove(world)
    failed = {name for name, step in reach.steps.items() if not step.ok}
    assert failed == failing, {n: s.detail for n, s in reach.steps.items()}
    (name,) = failing
    assert document in reach.steps[name].detail, reach.steps[name].detail
    assert "arn:aws:iam::123456789012:role/stranger → key" in reach.steps[name].detail


def test_a_key_that_is_gone_fails_its_service(aws: None) -> None:
    world = build(Wiring(kms=KMS))
    key = key_of(world, "service-a")
    from moto.kms.models import kms_backends

    # Gone, as a key deleted after its window is: KMS answers NotFoundException.
    del kms_backends["123456789012"][REGION].keys[key.rsplit("/", 1)[1]]
    reach = prove(world)
    assert not reach.steps["service-a"].ok
    assert "the key is not in the account" in reach.steps["service-a"].detail
    assert reach.steps["service-b"].ok and reach.steps["service-c"].ok


def test_the_same_world_without_the_defect_is_clean(aws: None) -> None:
    """The control: the four defects above each added one thing to this world."""
    reach = prove(build(Wiring(kms=KMS)))
    assert all(step.ok for step in reach.steps.values()), reach.summary["findings"]


def test_a_reader_that_may_not_read_key_policies_fails_the_steps_naming_the_permission(
    aws: None,
) -> None:
    world = build(Wiring(kms=KMS))
    iam = boto3.client("iam", region_name=REGION)
    add_auditor()
    iam.put_user_policy(
        UserName="auditor",
        PolicyName="no-keys",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [statement("kms:GetKeyPolicy", "*", "Deny")]}
        ),
    )
    reach = prove(world)
    for name in ("service-a", "service-b", "service-c"):
        detail = reach.steps[name].detail
        assert not reach.steps[name].ok and "kms:GetKeyPolicy on key" in detail, detail

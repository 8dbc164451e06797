"""The rehearsal: the program's own resources deployed into moto, then checked for behaviour.

Breaking the wiring the way a bad change to the program would (through the emulator's tamper
hook) must make the rehearsal fail with the right diagnosis: it checks behaviour, not shape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
from conftest import RecordingMocks, stack_config
from support.check_world import DEDICATED_STEPS

from checks.cli import main
from infra import policies
from infra.mock_program import evaluate
from rehearsal.emulator import EmulatorMocks, UnknownResourceType
from rehearsal.run import PROJECT_DIR, Rehearsal, load_stack_config, run_rehearsal

TWO = {
    "aws:region": "eu-west-1",
    "ec2-assume-role:services": [{"name": "service-a"}, {"name": "service-b", "versioning": True}],
}
EVERYTHING = {"list": True, "read": True, "write": True, "delete": True}
EC2 = "ec2.amazonaws.com"
NOTHING = {"list": False, "read": False, "write": False, "delete": False}


def steps(rehearsal: Rehearsal, service: str) -> dict[str, Any]:
    return {step.name: step for step in rehearsal.report.services[service].steps}


def matrix_rows(rehearsal: Rehearsal) -> dict[str, dict[str, dict[str, bool]]]:
    rows: dict[str, dict[str, dict[str, bool]]] = rehearsal.report.extra["matrix"]["rows"]
    return rows


def test_dev_stack_rehearses_clean_with_the_expected_access_matrix() -> None:
    """Pulumi.dev.yaml as shipped: every expectation holds, and the matrix shows isolation."""
    rehearsal = run_rehearsal(load_stack_config(PROJECT_DIR / "Pulumi.dev.yaml"))
    report = rehearsal.report
    assert report.ok, json.dumps(report.as_json(), indent=1)
    assert ":assumed-role/dev-host-role-" in report.source
    services = ["service-a", "service-b", "service-c"]
    assert list(report.services) == services
    rows = matrix_rows(rehearsal)
    assert rows["host role"] == dict.fromkeys(services, NOTHING), "the host reaches no bucket"
    for owner in services:
        expected = {name: EVERYTHING if name == owner else NOTHING for name in services}
        assert rows[f"{owner} role"] == expected, f"{owner} role must reach only its bucket"
    assert report.extra["matrix"]["hostAssumes"] == dict.fromkeys(services, True)
    assert set(rehearsal.timings) == {"evaluate", "deploy", "check"}
    assert all(seconds > 0 for seconds in rehearsal.timings.values())


def test_dedicated_topology_rehearses_as_each_services_own_role() -> None:
    """Production: no host; each instance's role passes the bucket steps for its own service."""
    rehearsal = run_rehearsal({**TWO, "ec2-assume-role:topology": "dedicated"})
    report = rehearsal.report
    assert report.ok, json.dumps(report.as_json(), indent=1)
    assert "host role" not in matrix_rows(rehearsal)
    assert set(report.extra["matrix"]) == {"columns", "rows", "roleReach", "beyond"}, (
        "no hostAssumes without a host"
    )
    assert report.extra["matrix"]["roleReach"] == [], "no role reaches another by documents"
    assert report.extra["matrix"]["beyond"] == []
    assert len(report.source.split(", ")) == 2, "the README: one caller per service"
    assert report.source.count(":assumed-role/") == 2
    for service in ("service-a", "service-b"):
        assert list(steps(rehearsal, service)) == DEDICATED_STEPS


def test_dropping_the_hosts_assume_statement_is_diagnosed_as_the_identity_side() -> None:
    """Without the host's sts:AssumeRole grant, no service role can be assumed."""

    def drop(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        return None if name == "dev-host-assume-service-roles" else inputs

    rehearsal = run_rehearsal(TWO, tamper=drop)
    assert not rehearsal.report.ok
    for service in ("service-a", "service-b"):
        assumed = steps(rehearsal, service)["assume role"]
        assert not assumed.ok and "Cause: identity side" in assumed.detail, assumed.detail
    assert rehearsal.report.extra["matrix"]["hostAssumes"] == {
        "service-a": False,
        "service-b": False,
    }


def test_dropping_the_host_from_a_trust_policy_is_diagnosed_as_the_resource_side() -> None:
    """service-b's role no longer trusts the host: only service-b fails, on the resource side."""

    def untrust(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        if name == "service-b-role":
            return {**inputs, "assumeRolePolicy": json.dumps(policies.trust_policy(EC2))}
        return inputs

    rehearsal = run_rehearsal(TWO, tamper=untrust)
    assumed = steps(rehearsal, "service-b")["assume role"]
    assert not assumed.ok and "Cause: resource side" in assumed.detail, assumed.detail
    assert rehearsal.report.services["service-a"].ok


def test_widening_a_service_role_to_everything_breaks_isolation() -> None:
    """`s3:*` on `*` lets service-a into service-b's bucket: isolation and the matrix show it."""
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }

    def widen(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        if name == "service-a-bucket-access":
            return {**inputs, "policy": json.dumps(everything)}
        return inputs

    rehearsal = run_rehearsal(TWO, tamper=widen)
    isolation = steps(rehearsal, "service-a")["isolation"]
    assert not isolation.ok and "service-a's role can list" in isolation.detail
    assert matrix_rows(rehearsal)["service-a role"]["service-b"] == EVERYTHING
    # service-b's own steps hold, but its data is reached: the documents fail its reach step.
    service_b = steps(rehearsal, "service-b")
    assert all(s.ok for name, s in service_b.items() if name != "reach"), service_b
    assert not service_b["reach"].ok
    assert "service-a role → s3:GetObject, s3:PutObject, s3:DeleteObject, " in (
        service_b["reach"].detail
    )
    assert "inline policy service-a-bucket-access of role" in service_b["reach"].detail


def test_giving_the_host_direct_s3_access_is_over_privileged() -> None:
    """A host that can read buckets itself erases the isolation between services."""
    direct = {
        "Effect": "Allow",
        "Action": ["s3:ListBucket", "s3:GetObject"],
        "Resource": ["arn:aws:s3:::*", "arn:aws:s3:::*/*"],
    }

    def grant(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        if name == "dev-host-assume-service-roles":
            document = json.loads(inputs["policy"])
            document["Statement"].append(direct)
            return {**inputs, "policy": json.dumps(document)}
        return inputs

    rehearsal = run_rehearsal(TWO, tamper=grant)
    for service in ("service-a", "service-b"):
        denied = steps(rehearsal, service)["direct access denied"]
        assert not denied.ok and "over-privileged" in denied.detail, denied.detail
    assert matrix_rows(rehearsal)["host role"]["service-a"] == {
        "list": True,
        "read": True,
        "write": False,
        "delete": False,
    }


def test_cli_rehearsal_json_has_the_report_and_the_matrix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m checks --rehearse --json`: the check's document plus `matrix`; exit 0."""
    config = tmp_path / "Pulumi.one.yaml"
    config.write_text(
        "config:\n  aws:region: us-east-1\n  ec2-assume-role:services:\n    - name: solo\n"
    )
    assert main(["--rehearse", "--config-file", str(config), "--json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert set(document) == {"ok", "source", "services", "matrix", "proof", "reach"}
    assert document["proof"] == {"planned": 4, "done": 4, "sample": 1}, "the host on solo"
    assert set(document["matrix"]) == {"columns", "rows", "hostAssumes", "roleReach", "beyond"}
    assert set(document["matrix"]["rows"]["host role"]["solo"]) == {
        "list",
        "read",
        "write",
        "delete",
    }
    assert document["ok"] is True and list(document["services"]) == ["solo"]
    assert document["matrix"]["columns"] == ["solo"]
    assert "evaluate" in captured.err and "deploy into the emulator" in captured.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "config:\n  ec2-assume-role:topology: mesh\n  ec2-assume-role:services: [{name: a}]\n",
            "invalid config ec2-assume-role:topology = 'mesh'",
        ),
        ("config:\n  aws:region: us-east-1\n", "invalid config ec2-assume-role:services"),
        ("config: [unclosed\n", "is not valid YAML"),
        ("just text\n", "has no `config:` mapping"),
        (None, "does not exist"),
    ],
)
def test_bad_stack_config_exits_2_with_the_stacks_own_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    """The rehearsal rejects bad config exactly as `pulumi up` would, before deploying."""
    path = tmp_path / "Pulumi.bad.yaml"
    if content is not None:
        path.write_text(content)
    assert main(["--rehearse", "--config-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err


def test_rehearse_refuses_options_of_the_live_check(capsys: pytest.CaptureFixture[str]) -> None:
    """--rehearse deploys its own stack; pointing it at outputs is a usage error."""
    assert main(["--rehearse", "--outputs", "outputs.json"]) == 2
    assert "--rehearse deploys its own stack" in capsys.readouterr().err


def test_an_unknown_resource_type_fails_loudly_naming_it() -> None:
    """When the program grows a new resource type, the emulator says what to add."""
    mocks = EmulatorMocks(region="us-east-1")
    queue = pulumi.runtime.MockResourceArgs(typ="aws:sqs/queue:Queue", name="jobs", inputs={})
    with pytest.raises(UnknownResourceType, match="aws:sqs/queue:Queue"):
        mocks.new_resource(queue)


@pytest.mark.parametrize("topology", ["shared", "dedicated"])
def test_the_emulator_handles_every_type_the_program_registers(topology: str) -> None:
    """The mapping must grow with the program: no type the program uses may lack a handler."""
    recorded = RecordingMocks()
    config = stack_config(topology=topology)
    config["ec2-assume-role:services"] = [{"name": "a", "versioning": True, "encryption": "kms"}]
    evaluate(recorded, config)
    handled = set(EmulatorMocks(region="us-east-1")._handlers)
    used = {r.typ for r in recorded.resources if not r.typ.startswith("ec2-assume-role:")}
    assert used <= handled, f"no emulator handler for {sorted(used - handled)}"


KMS = {
    "aws:region": "eu-west-1",
    "ec2-assume-role:services": [
        {"name": "service-a", "encryption": "kms"},
        {"name": "service-b", "versioning": True, "encryption": "kms"},
        {"name": "service-c"},
    ],
}


KEY_IN = re.compile(r"arn:aws:kms:eu-west-1:\d{12}:key/[0-9a-f-]{36}")


def test_a_kms_stack_rehearses_clean_through_its_keys() -> None:
    """The program's own keys, key policies, default encryption, bucket policies and grants,
    deployed into the emulator whose KMS rules S3 and KMS now follow: put and get go through
    each key, and the reach proof finds no one else who may use them."""
    rehearsal = run_rehearsal(KMS)
    report = rehearsal.report
    assert report.ok, json.dumps(report.as_json(), indent=1)
    keys = {n: KEY_IN.search(steps(rehearsal, n)["put"].detail) for n in report.services}
    assert keys["service-c"] is None, "SSE-S3: no key"
    found = {n: k[0] for n, k in keys.items() if k is not None}
    assert set(found) == {"service-a", "service-b"} and len(set(found.values())) == 2
    for name, key in found.items():
        assert f"its key {key}, with exactly" in steps(rehearsal, name)["reach"].detail


def test_a_kms_stack_without_the_owners_key_grant_fails_its_put_naming_the_key() -> None:
    def drop_key_use(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        if name != "service-a-bucket-access":
            return inputs
        document = json.loads(inputs["policy"])
        kept = [s for s in document["Statement"] if s.get("Sid") != "UseOwnKeyThroughS3"]
        return {**inputs, "policy": json.dumps({**document, "Statement": kept})}

    rehearsal = run_rehearsal(KMS, tamper=drop_key_use)
    (key,) = set(KEY_IN.findall(steps(rehearsal, "service-a")["reach"].detail))
    put = steps(rehearsal, "service-a")["put"]
    assert not put.ok and f"lacks kms:GenerateDataKey on its key {key}" in put.detail, put.detail
    reach = steps(rehearsal, "service-a")["reach"]
    assert not reach.ok and f"kms:Decrypt on key {key} (expected, missing)" in reach.detail
    assert rehearsal.report.services["service-b"].ok


SAMPLE_DOC = PROJECT_DIR / "docs" / "check.md"
"""Where the rehearsal's sample report lives; the README links to it."""


def documented_sample() -> str:
    """The sample report in docs/check.md: the text block after its sample marker."""
    text = SAMPLE_DOC.read_text()
    return text.split("<!-- sample:rehearsal", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]


def table_steps(text: str, service: str) -> list[str]:
    """The step names of one service in a report table (a real one or the sample), in order."""
    steps: list[str] = []
    current = ""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│").split("│")] if line.startswith("│") else []
        if len(cells) < 3:
            continue
        current = cells[0] or current
        if current == service and cells[1]:
            steps.append(cells[1])
    return steps


def _edges_in_any_order(lines: list[str]) -> list[str]:
    """The role-to-role line lists the proof's edges in the order the account's documents
    came in, which IAM (and moto) do not fix: compare that one line as a set of edges."""
    prefix = "role-to-role reach (documents): "
    return [
        prefix + ", ".join(sorted(line[len(prefix) :].split(", ")))
        if line.startswith(prefix)
        else line
        for line in lines
    ]


def test_the_readme_shows_what_the_rehearsal_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """The sample the README links to (docs/check.md): its steps, summary lines, stderr line
    and JSON keys are those of a real run."""
    assert main(["--rehearse"]) == 0
    captured = capsys.readouterr()
    real_steps = table_steps(captured.out, "service-a")
    assert real_steps[:2] == ["host profile", "reach"], real_steps
    assert table_steps(documented_sample(), "service-a") == real_steps
    assert "3/3 services pass: all expectations hold" in documented_sample()
    assert "3/3 services pass: all expectations hold" in captured.out
    pattern = (
        r"checks: rehearsal of Pulumi\.dev\.yaml: evaluate [\d.]+ s, deploy into the emulator "
        r"[\d.]+ s, check [\d.]+ s; [\d.]+ s since start-up"
    )
    assert re.search(pattern, captured.err), captured.err
    doc = SAMPLE_DOC.read_text()
    assert re.search(pattern, doc), "the stderr line in docs/check.md is not the real one"
    for phrase in ("`columns`", "`rows`", "`hostAssumes`", "{list, read, write, delete}"):
        assert phrase in doc, phrase
    # Everything after the steps holds no random ids: the summary, the proof and reach lines,
    # the whole access matrix and the reach proof's lines must be in the sample as printed.
    real_tail = [line.rstrip() for line in captured.out.split("services pass:", 1)[1].splitlines()]
    sample_tail = [
        line.rstrip() for line in documented_sample().split("services pass:", 1)[1].splitlines()
    ]
    assert _edges_in_any_order(sample_tail) == _edges_in_any_order(real_tail), "\n".join(real_tail)


@pytest.mark.parametrize(
    ("region", "partition", "topology"),
    [("cn-north-1", "aws-cn", "shared"), ("us-gov-west-1", "aws-us-gov", "dedicated")],
)
def test_china_and_govcloud_rehearse_clean_in_their_own_partition(
    region: str, partition: str, topology: str
) -> None:
    """The check builds no ARN of its own partition: every ARN in the report, the caller's
    and the roles', is of the region's partition, and the whole proof holds there."""
    config = {**TWO, "aws:region": region, "ec2-assume-role:topology": topology}
    report = run_rehearsal(config).report
    document = json.dumps(report.as_json())
    assert report.ok, document
    assert "arn:aws:" not in document
    assert f"arn:{partition}:sts::" in report.source
    if topology == "shared":  # the assume step names each service role's ARN
        assert f"arn:{partition}:iam::" in document


def test_the_matrix_never_shows_denied_where_nothing_was_proven() -> None:
    """With --sample 1, each role probes one other bucket: the pairs left out are unknown
    (null, `?`), not denied (false, `-`)."""
    from dataclasses import replace

    from checks.runner import CheckOptions
    from rehearsal.matrix import cells

    config = {**TWO, "ec2-assume-role:services": [{"name": n} for n in ("a", "b", "c")]}
    rehearsal = run_rehearsal(config, options=replace(CheckOptions(), sample=1))
    rows = matrix_rows(rehearsal)
    assert rows["a role"]["b"] == NOTHING, "a probes b: proven denied"
    assert rows["a role"]["c"] == dict.fromkeys(EVERYTHING), "a never probes c"
    text = cells(rehearsal.report.extra["matrix"])
    assert text["a role"] == {"a": "list read write delete", "b": "-", "c": "?"}
    assert text["host role"] == {"a": "-", "b": "-", "c": "-"}, "the host probes every bucket"


def test_the_dedicated_rehearsal_shares_one_deadline_among_its_roles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each role's check gets what the ones before it left, not a deadline of its own."""
    import time

    from checks.runner import Checker, CheckOptions

    given: list[float] = []
    real_run = Checker.run

    def timed(self: Checker, names: Any) -> Any:
        given.append(self._options.deadline_seconds)
        time.sleep(0.5)
        return real_run(self, names)

    monkeypatch.setattr(Checker, "run", timed)
    run_rehearsal(
        {**TWO, "ec2-assume-role:topology": "dedicated"},
        options=CheckOptions(deadline_seconds=120),
    )
    first, second = given
    assert first < 120 and second <= first - 0.5, given

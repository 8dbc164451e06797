"""The CrossGuard policy pack (policy/): the program passes it; the pack serves as the CLI needs.

The breakages of each rule family are in test_policy_pack_iam.py, _s3.py and _ec2.py; programs
run under the mocks with policy_harness, which hands the rules what the engine hands them.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pulumi
import pulumi_aws as aws
import pytest
import test_policy_pack_ec2
import test_policy_pack_iam
import test_policy_pack_kms
import test_policy_pack_s3
from conftest import ACCOUNT, stack_config
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy
from support.policy_harness import judge, policy_options, policy_resources, run
from support.policy_programs import EC2_TRUST, allow, closed_group, doc, instance, secure_bucket

from checks.reach import guarantees
from policy import (
    adapters,
    rules,
    rules_base,
    rules_bucket_policy,
    rules_ec2,
    rules_escalation,
    rules_identity,
    rules_s3,
    rules_stack,
    rules_trust,
)
from policy.rules_ec2 import IMDSV2_FIX

THREE = ("service-a", "service-b", "service-c")
OPERATORS = [
    f"arn:aws:iam::{ACCOUNT}:role/operator",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/operator/alice",
]
ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policy"
ALL_RULES = (*rules.RESOURCE_RULES, *rules.STACK_RULES)
STACKS = {
    "shared-1": stack_config(("service-a",)),
    "shared-3-operators": stack_config(THREE, trustedPrincipals=OPERATORS),
    "dedicated-1": stack_config(("service-a",), topology="dedicated"),
    "dedicated-3": stack_config(THREE, topology="dedicated"),
}


# --- the program itself -----------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_program_breaks_no_rule(stack: str) -> None:
    """What the stack deploys must pass the pack, or every `pulumi up` of it would be blocked."""
    recorded = run(config=STACKS[stack])
    types = {r.typ for r in recorded}
    guarded = {rules_base.BUCKET, rules_s3.PUBLIC_ACCESS_BLOCK, rules_base.BUCKET_POLICY}
    guarded |= {rules_base.ROLE, rules_ec2.INSTANCE, "aws:ec2/securityGroup:SecurityGroup"}
    assert guarded <= types, f"the rules had nothing to check of {guarded - types}"
    verdict = judge(recorded)
    assert verdict.violations == {}
    assert verdict.unknown == {}


@pytest.mark.parametrize("stack", STACKS)
def test_a_preview_of_the_program_breaks_no_rule(stack: str) -> None:
    """In a first preview, only documents computed from ARNs not known yet are left undecided."""
    verdict = judge(run(config=STACKS[stack], preview=True))
    assert verdict.violations == {}
    whys = {why.split(" at ")[1].split(" ")[0] for why in verdict.unknown.values()}
    assert whys <= {".policy", ".assumeRolePolicy"}, verdict.unknown


@pytest.mark.parametrize("stack", ["shared-3-operators", "dedicated-3"])
def test_the_pack_reports_nothing_for_the_program(stack: str) -> None:
    """The same, through the CrossGuard policies exactly as the analyzer calls them."""
    recorded = run(config=STACKS[stack])
    reported: list[tuple[str, str, str | None]] = []
    for policy in adapters.policies(rules.RESOURCE_RULES, rules.STACK_RULES):
        if isinstance(policy, ResourceValidationPolicy):
            for r in recorded:
                props = unknown_checking_proxy(dict(r.inputs))
                args = ResourceValidationArgs(r.typ, props, r.urn, r.name, policy_options(), None)
                policy.validate(args, lambda m, u, p=policy.name: reported.append((p, m, u)))
        else:
            assert isinstance(policy, StackValidationPolicy)
            args = StackValidationArgs(policy_resources(recorded))
            policy.validate(args, lambda m, u, p=policy.name: reported.append((p, m, u)))
    assert reported == [], f"(policy, message, resource urn): {reported}"


def _after_the_planned_changes() -> None:
    """The shapes the program is about to register: partition-aware ARNs, a role path per
    stack, a path-scoped AssumeRole, the SSM core policy with its Deny, IMDSv2 with hop
    limit 2, an SSM document and association, and a dynamic resource. All must pass.
    """
    partition, path = "aws-cn", "/ec2-assume-role/dev/"
    host = aws.iam.Role("dev-host-role", assume_role_policy=doc(EC2_TRUST))
    trust = host.arn.apply(lambda arn: doc(EC2_TRUST, {**EC2_TRUST, "Principal": {"AWS": arn}}))
    service = aws.iam.Role("service-a-role", path=path, assume_role_policy=trust)
    bucket = secure_bucket("service-a")
    aws.iam.RolePolicy(
        "service-a-bucket-access",
        role=service.name,
        policy=bucket.arn.apply(
            lambda arn: doc(
                allow("s3:ListBucket", arn),
                allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], f"{arn}/*"),
            )
        ),
    )
    roles_on_path = f"arn:{partition}:iam::{ACCOUNT}:role{path}*"
    grant = doc(allow("sts:AssumeRole", roles_on_path), allow("sts:GetCallerIdentity", "*"))
    aws.iam.RolePolicy("dev-host-assume-service-roles", role=host.name, policy=grant)
    core = f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
    aws.iam.RolePolicyAttachment("dev-host-ssm-core", role=host.name, policy_arn=core)
    reads = ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"]
    deny = doc({"Effect": "Deny", "Action": reads, "Resource": "*"})
    aws.iam.RolePolicy("dev-host-no-parameter-reads", role=host.name, policy=deny)
    profile = aws.iam.InstanceProfile("dev-host-profile", role=host.name)
    group = closed_group("dev-host-sg")
    vm = instance("dev-host-instance", vpc_security_group_ids=[group.id])
    setup = aws.ssm.Document(
        "dev-host-setup", document_type="Command", content=json.dumps({"schemaVersion": "2.2"})
    )
    aws.ssm.Association(
        "dev-host-setup", name=setup.name, targets=[{"key": "InstanceIds", "values": [vm.id]}]
    )
    props = {"instanceId": vm.id, "profileName": profile.name}
    pulumi.CustomResource("pulumi-python:dynamic:Resource", "dev-host-profile-association", props)


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_the_planned_shapes_pass(preview: bool) -> None:
    verdict = judge(run(_after_the_planned_changes, preview=preview))
    assert verdict.violations == {}
    whys = {why.split(" at ")[1].split(" ")[0] for why in verdict.unknown.values()}
    assert whys <= ({".policy", ".assumeRolePolicy"} if preview else set()), verdict.unknown


def test_every_rule_has_at_least_two_breakages() -> None:
    """The issue's bar: each guarantee is tried at least two distinct ways."""
    breakages = [
        *test_policy_pack_iam.BREAKAGES,
        *test_policy_pack_s3.BREAKAGES,
        *test_policy_pack_ec2.BREAKAGES,
        *test_policy_pack_kms.BREAKAGES,
    ]
    counts = {rule.name: sum(b.rule == rule.name for b in breakages) for rule in ALL_RULES}
    assert min(counts.values()) >= 2, counts
    assert len({b.id for b in breakages}) == len(breakages)


# --- preview: unknown values --------------------------------------------------------------------


def test_an_unknown_value_is_never_taken_as_compliant() -> None:
    """A rule that reads an unknown value must say it cannot tell, not pass the resource."""
    props = unknown_checking_proxy({"metadataOptions": {"httpTokens": UNKNOWN_STRING_VALUE}})
    policy = adapters.resource_policy(_rule("ec2-require-imdsv2"))
    args = ResourceValidationArgs(rules_ec2.INSTANCE, props, "urn", "vm", policy_options(), None)
    with pytest.raises(UnknownValueError):
        policy.validate(args, lambda message, urn: None)


def _rule(name: str) -> Any:
    (rule,) = [r for r in ALL_RULES if r.name == name]
    return rule


# --- the adapters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeRule:
    name: str
    description: str
    check: Callable[..., Any]


def test_every_rule_becomes_one_mandatory_policy() -> None:
    """Each guarantee blocks the deployment; an advisory one would only print a warning."""
    built = adapters.policies(rules.RESOURCE_RULES, rules.STACK_RULES)
    names = [p.name for p in built]
    assert names == [r.name for r in ALL_RULES]
    assert len(set(names)) == len(names), names
    for policy in built:
        assert policy.enforcement_level is EnforcementLevel.MANDATORY, policy.name
    kinds = [isinstance(p, ResourceValidationPolicy) for p in built]
    assert kinds == [True] * len(rules.RESOURCE_RULES) + [False] * len(rules.STACK_RULES)


def test_the_resource_adapter_passes_type_and_props_and_names_the_resource() -> None:
    """The adapter is the only glue: the rule gets the engine's type and props, unchanged."""
    calls: list[tuple[str, Any]] = []

    def check(resource_type: str, props: Any) -> list[str]:
        calls.append((resource_type, props))
        return ["first fix", "second fix"]

    policy = adapters.resource_policy(FakeRule("fake", "a fake rule", check))
    props = unknown_checking_proxy({"key": "value"})
    args = ResourceValidationArgs("aws:x/y:Y", props, "urn:y", "y", policy_options(), None)
    reported: list[tuple[str, str | None]] = []
    policy.validate(args, lambda message, urn: reported.append((message, urn)))
    assert calls == [("aws:x/y:Y", props)]
    assert reported == [("aws:x/y:Y y: first fix", None), ("aws:x/y:Y y: second fix", None)]


def test_the_stack_adapter_reports_each_violation_against_its_resource() -> None:
    """A stack violation names the resource's URN, so the CLI shows it on that resource."""
    resources = policy_resources(run(lambda: aws.s3.Bucket("lonely")))
    seen: list[Sequence[PolicyResource]] = []

    def check(given: Sequence[PolicyResource]) -> rules_stack.Findings:
        seen.append(given)
        return rules_stack.Findings([(r.urn, f"fix {r.name}") for r in given])

    policy = adapters.stack_policy(FakeRule("fake-stack", "a fake stack rule", check))
    reported: list[tuple[str, str | None]] = []
    policy.validate(StackValidationArgs(resources), lambda m, u: reported.append((m, u)))
    assert seen == [resources]
    assert reported == [("fix lonely", resources[0].urn)]


def _bare_next_to_secure() -> None:
    """A secure bucket, whose TLS policy is built from its ARN (unknown in a first preview),
    and a new bare bucket next to it: no public access block, no TLS policy."""
    secure_bucket("secure")
    aws.s3.Bucket("bare")


def test_a_known_violation_is_reported_next_to_an_unknown_value() -> None:
    """Preview: one resource's unknown value must not hide another resource's violation.

    The rule still says it could not decide the secure bucket: not run, never passed.
    """
    verdict = judge(run(_bare_next_to_secure, preview=True))
    (message,) = verdict.violations[("s3-bucket-tls-only", "bare")]
    assert "bucket bare is reachable without TLS" in message
    assert ("s3-bucket-public-access-blocked", "bare") in verdict.violations
    assert ("s3-bucket-tls-only", "<stack>") in verdict.unknown, verdict.unknown
    assert ("s3-bucket-tls-only", "secure-bucket") in verdict.unknown, verdict.unknown


def test_the_stack_adapter_reports_what_it_knows_then_raises_the_unknown() -> None:
    """What pulumi_policy needs: known violations reported, then UnknownValueError raised, so
    that it adds its "can't run during preview" diagnostic and keeps the violations."""
    resources = policy_resources(run(_bare_next_to_secure, preview=True))
    policy = adapters.stack_policy(_rule("s3-bucket-tls-only"))
    reported: list[tuple[str, str | None]] = []
    with pytest.raises(UnknownValueError) as raised:
        policy.validate(StackValidationArgs(resources), lambda m, u: reported.append((m, u)))
    bare = next(r.urn for r in resources if r.name == "bare")
    assert [u for _, u in reported] == [bare], reported
    assert "undecided in this preview: secure-bucket" in raised.value.message


# --- one model of the guarantees, shared with the check -----------------------------------------


def _without_pythonpath() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_the_shared_guarantees_import_no_sdk() -> None:
    """The pack's runtime has no boto3 or rich, and the check must not need pulumi: the pure
    modules of checks/reach, their catalogue loaded and used, import none of them."""
    code = """if True:
        import json, sys
        from checks.reach import catalogue, documents, evaluate, guarantees
        (statement,) = documents.statements("p", {"Statement": [{"Action": "*"}]})
        assert guarantees.escalations(statement) and catalogue.service_actions("s3")
        assert guarantees.wide_principal("AWS", "*")
        print(json.dumps(sorted(sys.modules)))
    """
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_without_pythonpath(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded = set(json.loads(done.stdout))
    assert "checks.reach.catalogue" in loaded
    for sdk in ("boto3", "botocore", "rich", "pulumi", "pulumi_policy", "pulumi_aws"):
        assert sdk not in loaded, sdk


def test_the_rules_import_with_only_policy_on_sys_path() -> None:
    """As the CLI runs the pack: policy/ alone on sys.path. The rules still reach the checkout's
    `checks` package, loading it alone: the root stays off sys.path, so no second copy of the
    rules is imported as the `policy` package."""
    code = """if True:
        import json, sys
        import rules, rules_escalation, rules_identity
        import checks
        found = rules_escalation.iam_no_privilege_escalation(
            rules_identity.ROLE_POLICY,
            {"policy": {"Statement": [{"Action": "iam:TagRole", "Resource": "*"}]}},
        )
        print(json.dumps({
            "checks": checks.__file__,
            "policy": sorted(m for m in sys.modules if m.split(".")[0] == "policy"),
            "path": sys.path,
            "found": found,
            "rules": len(rules.RESOURCE_RULES),
        }))
    """
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=POLICY_DIR,
        env=_without_pythonpath(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    seen = json.loads(done.stdout)
    assert Path(seen["checks"]).resolve() == ROOT / "checks" / "__init__.py"
    assert seen["policy"] == []
    assert str(ROOT) not in seen["path"]
    assert seen["rules"] == len(rules.RESOURCE_RULES)
    (message,) = seen["found"]
    assert "allows iam:TagRole, which let a principal raise its own privileges" in message


def test_the_escalation_rule_calls_the_shared_guarantee(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pack keeps no list of its own: what guarantees.escalations says is what it refuses."""
    monkeypatch.setattr(guarantees, "escalations", lambda statement: ["iam:NotInAnyList"])
    policy = {"policy": doc(allow("s3:GetObject", "arn:aws:s3:::data/*"))}
    found = rules_escalation.iam_no_privilege_escalation(rules_identity.ROLE_POLICY, policy)
    assert len(found) == 1 and "allows iam:NotInAnyList, which let" in found[0], found


def test_trust_and_bucket_rules_call_the_shared_principal_guarantee(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Trust and bucket policies refuse whom guarantees.wide_principal calls wide, as the check."""
    stranger = f"arn:aws:iam::{ACCOUNT}:role/stranger"
    real = guarantees.wide_principal
    monkeypatch.setattr(
        guarantees,
        "wide_principal",
        lambda kind, value: (
            "a principal the check refuses" if value == stranger else real(kind, value)
        ),
    )
    trusting = {"Effect": "Allow", "Principal": {"AWS": stranger}, "Action": "sts:AssumeRole"}
    found = rules_trust.trust_named_principals(rules_base.ROLE, {"assumeRolePolicy": doc(trusting)})
    assert len(found) == 1 and "trusts a principal the check refuses: " in found[0], found
    reading = allow("s3:GetObject", "arn:aws:s3:::data/*", Principal={"AWS": stranger})
    found = rules_bucket_policy.bucket_policy_no_public_allow(
        rules_base.BUCKET_POLICY, {"policy": doc(reading)}
    )
    assert len(found) == 1 and "allows a principal the check refuses: " in found[0], found


# --- the pack, run as the Pulumi CLI runs it ----------------------------------------------------


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    """policy/__main__.py under `python -m pulumi.policy`, from the pack's own directory.

    That is how the CLI starts a Python pack: the directory alone on sys.path, so this also
    proves __main__.py finds its sibling modules there. It prints its gRPC port, then serves.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=POLICY_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        port = process.stdout.readline().strip() if ready else ""
        if not port.isdigit():
            process.kill()
            _, stderr = process.communicate(timeout=10)
            pytest.fail(f"the policy pack did not start: {port!r} {stderr}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield proto.AnalyzerStub(channel)
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(props)
    return struct


def test_the_pack_serves_every_rule_as_mandatory(analyzer: Any) -> None:
    """The CLI learns the pack's policies from GetAnalyzerInfo; each must be mandatory."""
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    served = {p.name: p.enforcementLevel for p in info.policies}
    assert info.name == "ec2-assume-role"
    assert served == dict.fromkeys([r.name for r in ALL_RULES], proto.MANDATORY)


def test_the_pack_blocks_a_breach_end_to_end(analyzer: Any) -> None:
    """An IMDSv1 instance and a bare bucket, sent as the engine sends them, are both blocked."""
    recorded = run(
        lambda: instance(
            "legacy", metadata_options=aws.ec2.InstanceMetadataOptionsArgs(http_tokens="optional")
        )
    )
    (vm,) = recorded
    response = analyzer.Analyze(
        proto.AnalyzeRequest(type=vm.typ, properties=_struct(vm.inputs), urn=vm.urn, name=vm.name),
        timeout=30,
    )
    found = [(d.policyName, d.enforcementLevel) for d in response.diagnostics]
    assert found == [("ec2-require-imdsv2", proto.MANDATORY)], vm.name
    message = response.diagnostics[0].message
    assert f"\n{vm.typ} legacy: " in message and IMDSV2_FIX in message, message

    (bucket,) = run(lambda: aws.s3.Bucket("bare"))
    resource = proto.AnalyzerResource(
        type=bucket.typ, properties=_struct(bucket.state), urn=bucket.urn, name=bucket.name
    )
    response = analyzer.AnalyzeStack(proto.AnalyzeStackRequest(resources=[resource]), timeout=30)
    found = sorted((d.policyName, d.urn) for d in response.diagnostics)
    assert found == [
        ("s3-bucket-public-access-blocked", bucket.urn),
        ("s3-bucket-tls-only", bucket.urn),
    ], bucket.name


def test_the_pack_reports_a_known_breach_in_a_preview_end_to_end(analyzer: Any) -> None:
    """A first preview, as the engine sends it (unknowns, property dependencies): the bare
    bucket's violation is mandatory; the secure bucket's policy is only "can't run"."""
    recorded = run(_bare_next_to_secure, preview=True)
    resources = [
        proto.AnalyzerResource(
            type=r.typ,
            properties=_struct(r.state),
            urn=r.urn,
            name=r.name,
            propertyDependencies={
                k: proto.AnalyzerPropertyDependencies(urns=v) for k, v in r.deps.items()
            },
        )
        for r in recorded
    ]
    response = analyzer.AnalyzeStack(proto.AnalyzeStackRequest(resources=resources), timeout=30)
    tls = [d for d in response.diagnostics if d.policyName == "s3-bucket-tls-only"]
    bare = next(r.urn for r in recorded if r.name == "bare")
    assert [(d.urn, d.enforcementLevel) for d in tls if d.urn] == [(bare, proto.MANDATORY)]
    (cannot,) = [d for d in tls if not d.urn]
    assert "can't run policy 's3-bucket-tls-only'" in cannot.message, cannot.message
    assert "secure-bucket" in cannot.message, cannot.message


def test_the_pack_refuses_an_escalation_by_the_catalogue_end_to_end(analyzer: Any) -> None:
    """Under the CLI, the catalogue is found and used: iam:TagRole was in no hand-made list."""

    def program() -> None:
        host = aws.iam.Role("host", assume_role_policy=doc(EC2_TRUST))
        grant = doc(allow("iam:TagRole", f"arn:aws:iam::{ACCOUNT}:role/operator"))
        aws.iam.RolePolicy("grant", role=host.name, policy=grant)

    found: list[tuple[str, str, int]] = []
    for r in run(program):
        request = proto.AnalyzeRequest(
            type=r.typ, properties=_struct(r.inputs), urn=r.urn, name=r.name
        )
        response = analyzer.Analyze(request, timeout=30)
        found += [(r.name, d.policyName, d.enforcementLevel) for d in response.diagnostics]
    assert found == [("grant", "iam-no-privilege-escalation", proto.MANDATORY)], found

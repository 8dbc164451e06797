"""The CrossGuard policy pack (policy/): the program passes every rule, and each breach is caught.

Resource rules get what the engine hands them: a resource's inputs in the provider's wire format,
here exactly as `__main__.py` registers them under the recording mocks. Stack rules get each
resource's state, here the mocks' answer to the registration. Props are wrapped in pulumi_policy's
own proxy, as the engine does, so the rules see Mappings, not dicts.
"""

from __future__ import annotations

import copy
import json
import os
import select
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from conftest import RecordingMocks, Run, stack_config
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policy import adapters, rules

THREE = ("service-a", "service-b", "service-c")
POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"
IMDSV2_FIX = 'set metadataOptions.httpTokens to "required" (IMDSv2)'

RunProgram = Callable[[dict[str, Any]], Run]


@dataclass
class Entry:
    """One registered resource, with a private copy of its props that a test may break."""

    typ: str
    name: str
    props: dict[str, Any]
    deps: dict[str, list[str]] = field(default_factory=dict)

    @property
    def urn(self) -> str:
        return f"urn:pulumi:dev::ec2-assume-role::{self.typ}::{self.name}"


def _inputs(run: Run) -> list[Entry]:
    return [Entry(r.typ, r.name, copy.deepcopy(dict(r.inputs))) for r in run.mocks.resources]


def _states(run: Run) -> list[Entry]:
    """What a stack policy sees: each resource's state, as the mocks compute it on create."""
    entries = []
    for resource in run.mocks.resources:
        resource_id, state = RecordingMocks().new_resource(resource)
        entries.append(
            Entry(resource.typ, resource.name, {**copy.deepcopy(state), "id": resource_id})
        )
    return entries


def _find(entries: list[Entry], typ: str, name: str) -> Entry:
    (found,) = [e for e in entries if e.typ == typ and e.name == name]
    return found


def _drop(entries: list[Entry], typ: str, name: str) -> list[Entry]:
    kept = [e for e in entries if not (e.typ == typ and e.name == name)]
    assert len(kept) == len(entries) - 1, f"no {typ} named {name} to drop"
    return kept


def _proxied(props: Mapping[str, Any]) -> Any:
    return unknown_checking_proxy(copy.deepcopy(dict(props)))


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _policy_resources(entries: list[Entry]) -> list[PolicyResource]:
    """PolicyResources as the analyzer builds them, property dependencies resolved by URN."""
    built = {
        e.urn: PolicyResource(
            e.typ, _proxied(e.props), e.urn, e.name, _options(), None, None, [], {}
        )
        for e in entries
    }
    for e in entries:
        built[e.urn].property_dependencies = {
            key: [built[urn] for urn in urns] for key, urns in e.deps.items()
        }
    return list(built.values())


def resource_violations(entries: list[Entry]) -> dict[tuple[str, str], list[str]]:
    """(rule, resource name) -> messages, for every resource rule over every resource."""
    found: dict[tuple[str, str], list[str]] = {}
    for rule in rules.RESOURCE_RULES:
        for entry in entries:
            messages = rule.check(entry.typ, _proxied(entry.props))
            if messages:
                found[(rule.name, entry.name)] = messages
    return found


def stack_violations(entries: list[Entry]) -> dict[tuple[str, str], list[str]]:
    """(rule, resource name) -> messages, for every stack rule over the whole stack."""
    names = {e.urn: e.name for e in entries}
    found: dict[tuple[str, str], list[str]] = {}
    for rule in rules.STACK_RULES:
        for urn, message in rule.check(_policy_resources(entries)):
            found.setdefault((rule.name, names[urn]), []).append(message)
    return found


def _rule(name: str) -> Any:
    (rule,) = [r for r in (*rules.RESOURCE_RULES, *rules.STACK_RULES) if r.name == name]
    return rule


@pytest.fixture
def shared(run_program: RunProgram) -> Run:
    return run_program(stack_config(THREE))


def _statements_of(entry: Entry, key: str = "policy") -> list[dict[str, Any]]:
    return list(json.loads(entry.props[key])["Statement"])


def _rewrite(entry: Entry, statements: list[dict[str, Any]], key: str = "policy") -> None:
    entry.props[key] = json.dumps({"Version": "2012-10-17", "Statement": statements})


# --- the program itself -----------------------------------------------------------------------


@pytest.mark.parametrize("topology", ["shared", "dedicated"])
def test_the_program_breaks_no_rule(run_program: RunProgram, topology: str) -> None:
    """What the stack deploys must pass the pack, or every `pulumi up` of it would be blocked."""
    run = run_program(stack_config(THREE, topology=topology))
    inputs, states = _inputs(run), _states(run)
    guarded = {rules.BUCKET, rules.PUBLIC_ACCESS_BLOCK, rules.BUCKET_POLICY, rules.ROLE}
    guarded |= {rules.ROLE_POLICY, rules.INSTANCE, rules.SECURITY_GROUP}
    counts = {typ: sum(e.typ == typ for e in inputs) for typ in guarded}
    assert all(counts.values()), f"the rules had nothing to check of some type: {counts}"
    assert counts[rules.BUCKET] == len(THREE)
    found = resource_violations(inputs)
    assert found == {}, f"(rule, resource) -> messages: {found}"
    found = stack_violations(states)
    assert found == {}, f"(rule, resource) -> messages: {found}"


@pytest.mark.parametrize("topology", ["shared", "dedicated"])
def test_the_pack_reports_nothing_for_the_program(run_program: RunProgram, topology: str) -> None:
    """The same, through the CrossGuard policies exactly as the analyzer calls them."""
    run = run_program(stack_config(THREE, topology=topology))
    reported: list[tuple[str, str, str | None]] = []
    for policy in adapters.policies(rules.RESOURCE_RULES, rules.STACK_RULES):
        if isinstance(policy, ResourceValidationPolicy):
            for entry in _inputs(run):
                args = ResourceValidationArgs(
                    entry.typ, _proxied(entry.props), entry.urn, entry.name, _options(), None
                )
                policy.validate(args, lambda m, u, p=policy.name: reported.append((p, m, u)))
        else:
            assert isinstance(policy, StackValidationPolicy)
            args = StackValidationArgs(_policy_resources(_states(run)))
            policy.validate(args, lambda m, u, p=policy.name: reported.append((p, m, u)))
    assert reported == [], f"(policy, message, resource urn): {reported}"


# --- S3 -----------------------------------------------------------------------------------------


def _switch_off_two_settings(entries: list[Entry]) -> Entry:
    block = _find(entries, rules.PUBLIC_ACCESS_BLOCK, "service-b-public-access")
    block.props["ignorePublicAcls"] = False
    del block.props["restrictPublicBuckets"]
    return block


def test_a_public_access_block_with_a_setting_off_is_reported(shared: Run) -> None:
    """Any of the four settings off lets the bucket turn public through that door."""
    inputs = _inputs(shared)
    block = _switch_off_two_settings(inputs)
    found = resource_violations(inputs)
    assert found == {
        ("s3-public-access-block-all-on", block.name): [
            "set ignorePublicAcls, restrictPublicBuckets to true: "
            "all four public access block settings must be on"
        ]
    }, f"{block.name}: {found}"

    states = _states(shared)
    _switch_off_two_settings(states)
    found = stack_violations(states)
    key = ("s3-bucket-public-access-blocked", "service-b-bucket")
    assert list(found) == [key], f"service-b-bucket: {found}"
    assert "leaves ignorePublicAcls, restrictPublicBuckets off" in found[key][0], found[key]


def test_a_bucket_without_a_public_access_block_is_reported(shared: Run) -> None:
    """Without its own block, a bucket's ACLs and policy may make it public."""
    entries = _drop(_states(shared), rules.PUBLIC_ACCESS_BLOCK, "service-a-public-access")
    found = stack_violations(entries)
    key = ("s3-bucket-public-access-blocked", "service-a-bucket")
    assert list(found) == [key], f"service-a-bucket: {found}"
    assert "add an aws.s3.BucketPublicAccessBlock" in found[key][0], found[key]


def test_a_bucket_without_a_tls_only_policy_is_reported(shared: Run) -> None:
    """Without the TLS-only policy, S3 serves the bucket over plain HTTP."""
    entries = _drop(_states(shared), rules.BUCKET_POLICY, "service-c-tls-only")
    found = stack_violations(entries)
    key = ("s3-bucket-tls-only", "service-c-bucket")
    assert list(found) == [key], f"service-c-bucket: {found}"
    assert "add an aws.s3.BucketPolicy" in found[key][0] and "aws:SecureTransport" in found[key][0]


@pytest.mark.parametrize(
    "breach",
    [
        {"Effect": "Allow"},
        {"Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Condition": {"StringEquals": {"aws:SecureTransport": "false"}}},
        {"Action": "s3:GetObject"},
        {"Principal": {"AWS": "arn:aws:iam::123456789012:role/one"}},
        {"Resource": "arn:aws:s3:::service-a-bucket-0a1b2c3"},
    ],
    ids=["allow", "condition-true", "not-bool", "one-action", "one-principal", "objects-missing"],
)
def test_a_bucket_policy_that_does_not_deny_plain_http_is_reported(
    shared: Run, breach: dict[str, Any]
) -> None:
    """Only a Deny of every S3 action, to everyone, on bucket and objects, stops plain HTTP."""
    entries = _states(shared)
    policy = _find(entries, rules.BUCKET_POLICY, "service-a-tls-only")
    (statement,) = _statements_of(policy)
    _rewrite(policy, [{**statement, **breach}])
    found = stack_violations(entries)
    assert list(found) == [("s3-bucket-tls-only", "service-a-bucket")], f"{policy.name}: {found}"


def test_a_tls_only_policy_given_as_an_object_passes(shared: Run) -> None:
    """A document may arrive as an object rather than JSON text; the rule reads both."""
    entries = _states(shared)
    policy = _find(entries, rules.BUCKET_POLICY, "service-b-tls-only")
    policy.props["policy"] = json.loads(policy.props["policy"])
    assert stack_violations(entries) == {}, policy.name


# --- IAM --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("breach", "expected"),
    [
        ({"Action": "s3:*"}, '"s3:*": list only the actions needed'),
        ({"Action": ["s3:GetObject", "*"]}, '"*": list only the actions needed'),
        ({"Action": "S3:*"}, '"S3:*": list only the actions needed'),
        ({"Resource": "*"}, 'on Resource "*": name the resource ARNs'),
        ({"Resource": ["arn:aws:s3:::x", "*"]}, 'on Resource "*": name the resource ARNs'),
        ({"NotAction": "iam:*"}, "but its NotAction: list the allowed actions"),
        ({"NotResource": "arn:aws:s3:::x"}, "but its NotResource: name the resource ARNs"),
    ],
    ids=["service-star", "star", "upper-case", "any-resource", "star-in-list", "not-action", "nr"],
)
def test_a_wildcard_grant_in_a_role_policy_is_reported(
    shared: Run, breach: dict[str, Any], expected: str
) -> None:
    """Least privilege: a wildcard grant reaches every bucket, not just the service's own."""
    entries = _inputs(shared)
    policy = _find(entries, rules.ROLE_POLICY, "service-a-bucket-access")
    listing, objects = _statements_of(policy)
    _rewrite(policy, [listing, {**objects, **breach}])
    found = resource_violations(entries)
    key = ("iam-no-wildcard-allow", policy.name)
    assert list(found) == [key], f"{policy.name}: {found}"
    assert any(expected in m and 'statement "ReadWriteOwnObjects"' in m for m in found[key]), (
        f"{policy.name}: {found[key]}"
    )


@pytest.mark.parametrize(
    ("typ", "props", "where"),
    [
        (
            rules.MANAGED_POLICY,
            {"policy": {"Statement": {"Effect": "Allow", "Action": "*"}}},
            "policy statement 0",
        ),
        (
            rules.USER_POLICY,
            {
                "policy": json.dumps(
                    {
                        "Statement": [
                            {"Effect": "Allow", "NotAction": "s3:GetObject", "Resource": "*"}
                        ]
                    }
                )
            },
            "policy statement 0",
        ),
        (
            rules.ROLE,
            {
                "assumeRolePolicy": json.dumps({"Statement": []}),
                "inlinePolicies": [
                    {
                        "name": "inline",
                        "policy": json.dumps(
                            {"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "x"}]}
                        ),
                    }
                ],
            },
            "inlinePolicies[inline].policy statement 0",
        ),
    ],
    ids=["managed-policy-object", "user-policy", "role-inline-policy"],
)
def test_wildcards_in_every_kind_of_iam_policy_are_reported(
    typ: str, props: dict[str, Any], where: str
) -> None:
    """The same least privilege holds for managed, user and inline role policies."""
    found = resource_violations([Entry(typ, "breach", props)])
    messages = found.get(("iam-no-wildcard-allow", "breach"), [])
    assert messages, f"breach ({typ}): {found}"
    assert all(m.startswith(where) for m in messages), f"breach ({typ}): {messages}"


def test_denies_and_read_only_discovery_on_any_resource_are_allowed() -> None:
    """A Deny only takes access away; sts:GetCallerIdentity accepts no resource but "*"."""
    policy = {
        "Statement": [
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
        ]
    }
    entry = Entry(rules.ROLE_POLICY, "discovery", {"policy": json.dumps(policy)})
    assert resource_violations([entry]) == {}, entry.name
    policy["Statement"][1]["Action"] = ["sts:GetCallerIdentity", "s3:ListAllMyBuckets"]
    entry.props["policy"] = json.dumps(policy)
    found = resource_violations([entry])
    assert list(found) == [("iam-no-wildcard-allow", entry.name)], f"{entry.name}: {found}"


def test_an_unreadable_policy_document_is_reported() -> None:
    """A document no rule can read cannot be shown to be safe."""
    entry = Entry(rules.ROLE_POLICY, "garbled", {"policy": "{not json"})
    found = resource_violations([entry])
    assert found == {
        ("iam-no-wildcard-allow", "garbled"): [
            "policy is not a JSON policy document: render it with json.dumps(...)"
        ]
    }, entry.name


@pytest.mark.parametrize(
    "principal",
    [{"Principal": "*"}, {"Principal": {"AWS": "*"}}, {"Principal": {"AWS": ["arn", "*"]}}],
    ids=["star", "aws-star", "star-in-list"],
)
def test_a_trust_policy_that_admits_anyone_is_reported(
    shared: Run, principal: dict[str, Any]
) -> None:
    """A trust policy that admits "*" lets every AWS account's identities assume the role."""
    entries = _inputs(shared)
    role = _find(entries, rules.ROLE, "service-a-role")
    ec2, host = _statements_of(role, "assumeRolePolicy")
    _rewrite(role, [ec2, {**host, **principal}], "assumeRolePolicy")
    found = resource_violations(entries)
    key = ("iam-trust-no-wildcard-principal", role.name)
    assert list(found) == [key], f"{role.name}: {found}"
    assert found[key] == [
        'assumeRolePolicy statement "NamedPrincipalsAssume" lets any principal ("*") assume '
        "the role: name the trusted role, user or service principal instead"
    ], role.name


def test_a_trust_policy_with_not_principal_is_reported(shared: Run) -> None:
    """Allow with NotPrincipal trusts everyone but the few it names."""
    entries = _inputs(shared)
    role = _find(entries, rules.ROLE, "dev-host-role")
    (ec2,) = _statements_of(role, "assumeRolePolicy")
    role.props["assumeRolePolicy"] = {"Statement": [{**ec2, "NotPrincipal": {"AWS": "arn"}}]}
    found = resource_violations(entries)
    assert list(found) == [("iam-trust-no-wildcard-principal", role.name)], f"{role.name}: {found}"


# --- EC2 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{"httpTokens": "optional"}, None], ids=["optional", "unset"])
def test_an_instance_without_imdsv2_is_reported(shared: Run, options: Any) -> None:
    """IMDSv1 hands the role's credentials to any SSRF that can GET 169.254.169.254."""
    entries = _inputs(shared)
    instance = _find(entries, rules.INSTANCE, "dev-host-instance")
    if options is None:
        del instance.props["metadataOptions"]
    else:
        instance.props["metadataOptions"] = options
    found = resource_violations(entries)
    key = ("ec2-require-imdsv2", instance.name)
    assert list(found) == [key], f"{instance.name}: {found}"
    assert found[key][0].endswith(IMDSV2_FIX), f"{instance.name}: {found[key]}"


@pytest.mark.parametrize("root", [{"encrypted": False}, None], ids=["false", "unset"])
def test_an_instance_with_an_unencrypted_root_volume_is_reported(
    run_program: RunProgram, root: Any
) -> None:
    """An unencrypted root volume leaks through every snapshot and copy of it."""
    entries = _inputs(run_program(stack_config(THREE, topology="dedicated")))
    instance = _find(entries, rules.INSTANCE, "service-b-instance")
    if root is None:
        del instance.props["rootBlockDevice"]
    else:
        instance.props["rootBlockDevice"] = root
    found = resource_violations(entries)
    key = ("ec2-encrypted-root-volume", instance.name)
    assert list(found) == [key], f"{instance.name}: {found}"
    assert found[key][0].endswith("set rootBlockDevice.encrypted to true"), instance.name


@pytest.mark.parametrize(
    ("typ", "props"),
    [
        (rules.SECURITY_GROUP, {"ingress": [{"protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}]}),
        (rules.SECURITY_GROUP, {"ingress": [{"protocol": "-1", "ipv6CidrBlocks": ["::/0"]}]}),
        (rules.SECURITY_GROUP_RULE, {"type": "ingress", "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"]}),
        (rules.SECURITY_GROUP_RULE, {"type": "ingress", "ipv6CidrBlocks": ["0::0/0"]}),
        (rules.INGRESS_RULE, {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp"}),
        (rules.INGRESS_RULE, {"cidrIpv6": "::/0", "ipProtocol": "-1"}),
    ],
    ids=["inline-v4", "inline-v6", "rule-v4", "rule-v6-long-form", "vpc-rule-v4", "vpc-rule-v6"],
)
def test_ingress_from_anywhere_is_reported(typ: str, props: dict[str, Any]) -> None:
    """Nothing in this stack may listen to the internet; operators use SSM Session Manager."""
    found = resource_violations([Entry(typ, "open", props)])
    messages = found.get(("ec2-no-world-ingress", "open"), [])
    assert len(messages) == 1, f"open ({typ}): {found}"
    assert "remove it and reach the host through SSM Session Manager" in messages[0], messages


def test_ingress_on_the_programs_security_group_is_reported(shared: Run) -> None:
    """The program's own no-ingress group, given an SSH rule from anywhere, is caught."""
    entries = _inputs(shared)
    group = _find(entries, rules.SECURITY_GROUP, "dev-host-sg")
    group.props["ingress"] = [
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}
    ]
    found = resource_violations(entries)
    assert list(found) == [("ec2-no-world-ingress", group.name)], f"{group.name}: {found}"


def test_egress_and_named_sources_are_not_ingress_from_anywhere() -> None:
    """The HTTPS egress to AWS APIs and ingress from a named network or group stay allowed."""
    entries = [
        Entry(rules.SECURITY_GROUP_RULE, "egress", {"type": "egress", "cidrBlocks": ["0.0.0.0/0"]}),
        Entry(
            rules.SECURITY_GROUP_RULE, "office", {"type": "ingress", "cidrBlocks": ["10.0.0.0/8"]}
        ),
        Entry(rules.INGRESS_RULE, "peer", {"referencedSecurityGroupId": "sg-0123456789abcdef0"}),
        Entry(rules.SECURITY_GROUP, "v6", {"ingress": [{"ipv6CidrBlocks": ["2001:db8::/32"]}]}),
    ]
    assert resource_violations(entries) == {}, [e.name for e in entries]


# --- preview: unknown values --------------------------------------------------------------------


def test_in_a_preview_a_bucket_is_matched_by_its_property_dependency() -> None:
    """Before the bucket exists its name is unknown; the engine's dependencies still link them."""
    flags = dict.fromkeys(rules.PUBLIC_ACCESS_FLAGS, True)
    bucket = Entry(rules.BUCKET, "new-bucket", {"bucket": UNKNOWN_STRING_VALUE})
    block = Entry(rules.PUBLIC_ACCESS_BLOCK, "new-block", {"bucket": UNKNOWN_STRING_VALUE, **flags})
    block.deps = {"bucket": [bucket.urn]}
    check = _rule("s3-bucket-public-access-blocked").check
    assert check(_policy_resources([bucket, block])) == [], bucket.name

    block.deps = {}
    with pytest.raises(UnknownValueError):  # CrossGuard: "can't run policy during preview"
        check(_policy_resources([bucket, block]))


def test_an_unknown_value_is_never_taken_as_compliant() -> None:
    """A rule that reads an unknown value must say it cannot tell, not pass the resource."""
    props = {"metadataOptions": {"httpTokens": UNKNOWN_STRING_VALUE}}
    policy = adapters.resource_policy(_rule("ec2-require-imdsv2"))
    args = ResourceValidationArgs(rules.INSTANCE, _proxied(props), "urn", "vm", _options(), None)
    with pytest.raises(UnknownValueError):
        policy.validate(args, lambda message, urn: None)


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
    assert names == [r.name for r in (*rules.RESOURCE_RULES, *rules.STACK_RULES)]
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
    props = _proxied({"key": "value"})
    args = ResourceValidationArgs("aws:x/y:Y", props, "urn:y", "y", _options(), None)
    reported: list[tuple[str, str | None]] = []
    policy.validate(args, lambda message, urn: reported.append((message, urn)))
    assert calls == [("aws:x/y:Y", props)]
    assert reported == [("aws:x/y:Y y: first fix", None), ("aws:x/y:Y y: second fix", None)]


def test_the_stack_adapter_reports_each_violation_against_its_resource() -> None:
    """A stack violation names the resource's URN, so the CLI shows it on that resource."""
    resources = _policy_resources([Entry(rules.BUCKET, "lonely", {})])
    seen: list[Sequence[PolicyResource]] = []

    def check(given: Sequence[PolicyResource]) -> list[tuple[str, str]]:
        seen.append(given)
        return [(r.urn, f"fix {r.name}") for r in given]

    policy = adapters.stack_policy(FakeRule("fake-stack", "a fake stack rule", check))
    reported: list[tuple[str, str | None]] = []
    policy.validate(StackValidationArgs(resources), lambda m, u: reported.append((m, u)))
    assert seen == [resources]
    assert reported == [("fix lonely", resources[0].urn)]


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
    expected = [r.name for r in (*rules.RESOURCE_RULES, *rules.STACK_RULES)]
    assert info.name == "ec2-assume-role"
    assert served == dict.fromkeys(expected, proto.MANDATORY)


def test_the_pack_blocks_a_breach_end_to_end(analyzer: Any) -> None:
    """An IMDSv1 instance and a bare bucket, sent as the engine sends them, are both blocked."""
    instance = Entry(rules.INSTANCE, "legacy", {"metadataOptions": {"httpTokens": "optional"}})
    instance.props["rootBlockDevice"] = {"encrypted": True}
    response = analyzer.Analyze(
        proto.AnalyzeRequest(
            type=instance.typ, properties=_struct(instance.props), urn=instance.urn, name="legacy"
        ),
        timeout=30,
    )
    found = [(d.policyName, d.enforcementLevel) for d in response.diagnostics]
    assert found == [("ec2-require-imdsv2", proto.MANDATORY)], instance.name
    assert IMDSV2_FIX in response.diagnostics[0].message, instance.name

    bucket = Entry(rules.BUCKET, "bare", {"bucket": "bare-bucket", "arn": "arn:aws:s3:::bare"})
    resource = proto.AnalyzerResource(
        type=bucket.typ, properties=_struct(bucket.props), urn=bucket.urn, name=bucket.name
    )
    response = analyzer.AnalyzeStack(proto.AnalyzeStackRequest(resources=[resource]), timeout=30)
    found = sorted((d.policyName, d.urn) for d in response.diagnostics)
    assert found == [
        ("s3-bucket-public-access-blocked", bucket.urn),
        ("s3-bucket-tls-only", bucket.urn),
    ], bucket.name

"""Exclusive management: every role the stack creates carries exactly the policies it declares.

`aws.iam.RolePoliciesExclusive` and `aws.iam.RolePolicyAttachmentsExclusive` name a role's
complete set of inline policies and managed-policy attachments; `pulumi up --refresh` takes off
whatever someone added by hand. Under the mocks the expected sets are derived from the other
recorded resources (every RolePolicy and RolePolicyAttachment on the role), never from a list
written here, so a policy added to the program later and left out of the declaration fails.
The emulator's handlers for the two types do what AWS does, so a rehearsal of a tampered world,
redeployed, is clean.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pulumi
import pytest
from conftest import RecordingMocks, Run, physical, stack_config
from pulumi.runtime.sync_await import _sync_await

from infra.mock_program import evaluate
from rehearsal.emulator import EmulatorMocks
from rehearsal.run import run_rehearsal

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
PROFILE = "aws:iam/instanceProfile:InstanceProfile"
INLINE_EXCLUSIVE = "aws:iam/rolePoliciesExclusive:RolePoliciesExclusive"
MANAGED_EXCLUSIVE = "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive"
COMPONENT = "ec2-assume-role:index:"
EXCLUSIVE = (INLINE_EXCLUSIVE, MANAGED_EXCLUSIVE)
THREE = ("service-a", "service-b", "service-c")
ADOPTED = "i-0123456789abcdef0"
TOPOLOGIES = {
    "shared": stack_config(THREE),
    "dedicated": stack_config(THREE, topology="dedicated"),
    "adopted": stack_config(THREE, hostInstanceId=ADOPTED),
}


@dataclass(frozen=True)
class Registered:
    """A resource as the program registered it: its options and raw inputs (Outputs)."""

    typ: str
    name: str
    parent: pulumi.Resource | None
    props: dict[str, Any]
    opts: pulumi.ResourceOptions


@dataclass
class Evaluation:
    run: Run
    registered: list[Registered]

    def options(self, typ: str) -> list[Registered]:
        return [r for r in self.registered if r.typ == typ]


def _evaluate(config: dict[str, Any]) -> Evaluation:
    """Run the program under recording mocks, recording each resource's options on the way."""
    registered: list[Registered] = []

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        registered.append(
            Registered(args.type_, args.name, args.opts.parent, dict(args.props), args.opts)
        )

    def before() -> None:
        pulumi.runtime.register_stack_transformation(record)  # type: ignore[arg-type]

    mocks = RecordingMocks()
    outputs = evaluate(mocks, config, before=before)
    return Evaluation(Run(outputs=outputs, mocks=mocks), registered)


@pytest.fixture(params=list(TOPOLOGIES), scope="module")
def stack(request: pytest.FixtureRequest) -> Evaluation:
    return _evaluate(TOPOLOGIES[request.param])


@pytest.fixture
def run(stack: Evaluation) -> Run:
    """The same evaluation's resources (the tests only read them)."""
    return stack.run


def _on(run: Run, typ: str, key: str, role_name: str) -> list[Any]:
    return [r for r in run.of_type(typ) if r.inputs[key] == role_name]


def test_every_role_has_exactly_one_declaration_of_each_kind(run: Run) -> None:
    """Two declarations for one role would each remove the other's policies; none leaves the
    role open to hand-made additions."""
    roles = {physical(r.name) for r in run.of_type(ROLE)}
    assert roles
    for typ in EXCLUSIVE:
        declared = [r.inputs["roleName"] for r in run.of_type(typ)]
        assert sorted(declared) == sorted(roles), f"{typ}: one per role, for roles {roles}"


def test_the_inline_declaration_lists_exactly_the_roles_inline_policies(run: Run) -> None:
    """What the stack puts on a role, wherever it does (ServiceAccess, SharedHost, the
    instance's own Deny of parameter reads), and nothing else."""
    for role in run.of_type(ROLE):
        name = physical(role.name)
        (declared,) = _on(run, INLINE_EXCLUSIVE, "roleName", name)
        expected = [p.inputs["name"] for p in _on(run, ROLE_POLICY, "role", name)]
        assert expected, f"{role.name} carries at least its own grant"
        listed = declared.inputs["policyNames"]
        assert sorted(listed) == sorted(expected), f"{declared.name} for {role.name}"
        assert len(set(listed)) == len(listed), f"{declared.name} lists a name twice"


def test_the_managed_declaration_lists_exactly_the_roles_attachments(run: Run) -> None:
    """The SSM core policy on each instance's role; no managed policy on a shared service role,
    which the empty list then keeps that way."""
    instance_roles = {p.inputs["role"] for p in run.of_type(PROFILE)}
    for role in run.of_type(ROLE):
        name = physical(role.name)
        (declared,) = _on(run, MANAGED_EXCLUSIVE, "roleName", name)
        expected = [a.inputs["policyArn"] for a in _on(run, ATTACHMENT, "role", name)]
        assert sorted(declared.inputs["policyArns"]) == sorted(expected), declared.name
        assert bool(expected) == (name in instance_roles), f"{role.name}: {expected}"


def test_the_declarations_are_children_named_after_their_component(stack: Evaluation) -> None:
    """Parented to the component that holds the role's complete set, and named from its name,
    so a second stack or service never collides and `pulumi stack` shows where each belongs."""
    for typ in EXCLUSIVE:
        found = stack.options(typ)
        assert found, typ
        for r in found:
            assert r.parent is not None, f"{r.name} has no parent"
            assert r.parent.pulumi_resource_type.startswith(COMPONENT), r.parent
            assert r.name.startswith(f"{r.parent.pulumi_resource_name}-"), (r.name, r.parent)


def _resources_behind(value: Any) -> set[str]:
    """The logical names of the resources an input value depends on."""
    if isinstance(value, list):
        return set().union(*(_resources_behind(v) for v in value)) if value else set()
    if isinstance(value, pulumi.Output):
        return {r.pulumi_resource_name for r in _sync_await(value.resources())}
    return set()


def test_each_declaration_waits_for_the_policies_it_lists(stack: Evaluation) -> None:
    """The lists are the policies' own outputs: each declaration depends on what it names, so
    it never runs before them (it would remove a policy about to be created, or fail)."""
    policies = {r.name for r in stack.options(ROLE_POLICY)}
    attachments = {r.name for r in stack.options(ATTACHMENT)}
    for typ, key, kind in (
        (INLINE_EXCLUSIVE, "policy_names", policies),
        (MANAGED_EXCLUSIVE, "policy_arns", attachments),
    ):
        for r in stack.options(typ):
            behind = _resources_behind(r.props[key]) & kind
            run_declared = stack.run.named(typ, r.name).inputs
            listed = run_declared["policyNames" if key == "policy_names" else "policyArns"]
            assert len(behind) == len(listed), f"{r.name} lists {listed}, depends on {behind}"


def test_inline_policies_have_stable_names_and_are_never_deleted_first(
    stack: Evaluation,
) -> None:
    """Each inline policy is named as its resource is (`service-a-bucket-access`), so the
    declaration and IAM show the same names. A policy once auto-named is replaced when it gets
    its name; create-before-delete keeps the grant (or the Deny) in place throughout, where a
    delete first would leave the role without it for a moment."""
    for r in stack.options(ROLE_POLICY):
        assert r.props.get("name") == r.name, f"{r.name} is named {r.props.get('name')!r}"
        assert r.opts.delete_before_replace is False, f"{r.name} would be deleted first"


# --- the emulator ---------------------------------------------------------------------------

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}
LIST_ONE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}],
    }
)
SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


def _deploy(mocks: EmulatorMocks, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    _, state = mocks.new_resource(pulumi.runtime.MockResourceArgs(typ, name, inputs, custom=True))
    return state


def _inline(iam: Any, role: str) -> list[str]:
    return sorted(iam.list_role_policies(RoleName=role)["PolicyNames"])


def _attached(iam: Any, role: str) -> list[str]:
    found = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    return sorted(p["PolicyArn"] for p in found)


@pytest.fixture
def emulated(aws: None) -> Iterator[tuple[EmulatorMocks, Any, str]]:
    """A role deployed through the emulator with one inline policy and the SSM core attached,
    then widened by hand: an inline `s3:*` and a customer-managed policy."""
    mocks = EmulatorMocks(region="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    role = _deploy(mocks, ROLE, "service-a-role", {"assumeRolePolicy": json.dumps(TRUST)})["name"]
    _deploy(mocks, ROLE_POLICY, "kept", {"role": role, "name": "kept", "policy": LIST_ONE})
    _deploy(mocks, ATTACHMENT, "ssm-core", {"role": role, "policyArn": SSM_CORE})
    iam.put_role_policy(RoleName=role, PolicyName="by-hand", PolicyDocument=json.dumps(EVERYTHING))
    by_hand = iam.create_policy(PolicyName="by-hand", PolicyDocument=json.dumps(EVERYTHING))
    iam.attach_role_policy(RoleName=role, PolicyArn=by_hand["Policy"]["Arn"])
    assert _inline(iam, role) == ["by-hand", "kept"]
    assert _attached(iam, role) == sorted([SSM_CORE, by_hand["Policy"]["Arn"]])
    yield mocks, iam, role


def test_the_emulator_removes_the_inline_policies_not_listed(
    emulated: tuple[EmulatorMocks, Any, str],
) -> None:
    """As RolePoliciesExclusive does in AWS: what is listed stays, the rest is deleted."""
    mocks, iam, role = emulated
    _deploy(mocks, INLINE_EXCLUSIVE, "inline", {"roleName": role, "policyNames": ["kept"]})
    assert _inline(iam, role) == ["kept"]
    assert len(_attached(iam, role)) == 2, "the inline declaration leaves attachments alone"


def test_the_emulator_detaches_the_managed_policies_not_listed(
    emulated: tuple[EmulatorMocks, Any, str],
) -> None:
    """As RolePolicyAttachmentsExclusive does in AWS: the listed ARNs stay attached."""
    mocks, iam, role = emulated
    _deploy(mocks, MANAGED_EXCLUSIVE, "managed", {"roleName": role, "policyArns": [SSM_CORE]})
    assert _attached(iam, role) == [SSM_CORE]
    assert _inline(iam, role) == ["by-hand", "kept"], "attachments only"


def test_empty_declarations_leave_the_role_with_nothing(
    emulated: tuple[EmulatorMocks, Any, str],
) -> None:
    """A shared service role declares no managed policy at all: an empty list removes them."""
    mocks, iam, role = emulated
    _deploy(mocks, INLINE_EXCLUSIVE, "inline", {"roleName": role, "policyNames": []})
    _deploy(mocks, MANAGED_EXCLUSIVE, "managed", {"roleName": role, "policyArns": []})
    assert _inline(iam, role) == [] and _attached(iam, role) == []


TWO = {
    "aws:region": "eu-west-1",
    "ec2-assume-role:services": [{"name": "service-a"}, {"name": "service-b"}],
}
NOTHING = {"list": False, "read": False, "write": False, "delete": False}


def _widen_by_hand(
    keep_declarations: bool,
) -> Callable[[str, str, dict[str, Any]], dict[str, Any] | None]:
    """Before service-a's declarations are deployed, someone gives its role `s3:*` on `*`,
    inline and as a managed policy (the world a redeploy meets). Without the declarations
    (keep_declarations=False) the hand-made grants stay."""

    def tamper(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        if typ not in EXCLUSIVE or not str(inputs.get("roleName", "")).startswith("service-a-"):
            return inputs
        iam = boto3.client("iam", region_name="eu-west-1")
        role, document = inputs["roleName"], json.dumps(EVERYTHING)
        if typ == INLINE_EXCLUSIVE:
            iam.put_role_policy(RoleName=role, PolicyName="by-hand", PolicyDocument=document)
        else:
            arn = iam.create_policy(PolicyName="by-hand", PolicyDocument=document)["Policy"]["Arn"]
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        return inputs if keep_declarations else None

    return tamper


def test_a_tampered_world_redeployed_is_clean() -> None:
    """The declarations take the hand-made grants off: service-a reaches only its bucket."""
    rehearsal = run_rehearsal(TWO, tamper=_widen_by_hand(keep_declarations=True))
    assert rehearsal.report.ok, json.dumps(rehearsal.report.as_json(), indent=1)
    rows = rehearsal.report.extra["matrix"]["rows"]
    assert rows["service-a role"]["service-b"] == NOTHING


def test_without_the_declarations_the_tampered_world_stays_broken() -> None:
    """The test above can fail: the same hand-made grants, no declarations, and the
    rehearsal sees service-a into service-b's bucket."""
    rehearsal = run_rehearsal(TWO, tamper=_widen_by_hand(keep_declarations=False))
    assert not rehearsal.report.ok
    assert rehearsal.report.extra["matrix"]["rows"]["service-a role"]["service-b"] != NOTHING

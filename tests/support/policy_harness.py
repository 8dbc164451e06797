"""Run a Pulumi program under mocks and judge what it registers with the policy pack's rules.

A program is `__main__.py` itself or a plain function that creates real pulumi_aws resources.
It runs as `pulumi up` or as `pulumi preview` would run it (modelled on infra.mock_program):

- what each resource rule sees is what the engine sends the analyzer: the resource's inputs as
  the SDK serialized them (protobuf, so numbers are floats), and in a preview with every value
  computed from a resource not created yet left as the engine's unknown sentinel;
- what each stack rule sees is each resource's state (the mocks' answer; in a preview the
  inputs, with ids, ARNs and other computed outputs unknown), with its parent and its property
  dependencies exactly as the SDK sent them to the monitor (`MockResourceArgs` has none, so a
  recording monitor keeps them from the RegisterResource request itself).

Rules then run on pulumi_policy's own proxy, which raises on an unknown value as it does in the
analyzer: a `Verdict` keeps what each rule reported and what it could not tell. A stack rule
reports every violation it could decide and names what it could not (as adapters.py hands them
to CrossGuard): both are kept, so a preview that leaves one resource undecided still shows the
known violations of the others.
"""

from __future__ import annotations

import contextvars
import json
import runpy
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from conftest import ACCOUNT, RecordingMocks
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await
from pulumi_policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from infra.mock_program import PROGRAM, without_source_positions
from infra.settings import NAMESPACE
from policy import rules

Program = Callable[[], None] | Path
STACK_RULES_KEY = "<stack>"


@dataclass
class Recorded:
    """One registered resource: the analyzer's view of it in this run."""

    typ: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    deps: dict[str, list[str]] = field(default_factory=dict)


class PolicyMocks(RecordingMocks):
    """conftest's answers (ARNs, names, ids), plus those of the types only breakages create.

    In a preview the answer is the inputs alone, so every computed output stays unknown.
    """

    def __init__(self, preview: bool) -> None:
        super().__init__()
        self.preview = preview

    def answer(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = f"{args.name}-0a1b2c3"
        if args.typ == "aws:s3/bucketV2:BucketV2":
            return name, {**args.inputs, "bucket": name, "arn": f"arn:aws:s3:::{name}"}
        if args.typ == "aws:iam/policy:Policy":
            arn = f"arn:aws:iam::{ACCOUNT}:policy/{name}"
            return name, {**args.inputs, "name": name, "arn": arn}
        if args.typ == "aws:ec2/securityGroup:SecurityGroup":
            return f"sg-{zlib.crc32(name.encode()):017x}", dict(args.inputs)
        return super().new_resource(args)

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        answer = self.answer(args)
        if self.preview:
            return None, dict(args.inputs)
        return answer


def _config_text(value: Any) -> str:
    """As infra.mock_program: config reaches a program as text, JSON for anything not a string."""
    return value if isinstance(value, str) else json.dumps(value)


def _wire(struct: Any) -> dict[str, Any]:
    """A protobuf Struct as the analyzer deserializes it: unknowns stay sentinels."""
    return deserialize_properties(json_format.MessageToDict(struct))


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, keeping each registration's wire inputs, state, parent and deps."""

    def __init__(self, mocks: PolicyMocks) -> None:
        super().__init__(mocks)
        self.policy_mocks = mocks
        self.recorded: list[Recorded] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = _wire(request.object)
        if self.policy_mocks.preview:
            args = pulumi.runtime.MockResourceArgs(request.type, request.name, dict(inputs))
            _, answer = self.policy_mocks.answer(args)
            computed = {key: UNKNOWN_STRING_VALUE for key in answer if key not in inputs}
            state = {**inputs, **computed, "id": UNKNOWN_STRING_VALUE}
        else:
            state = {**_wire(response.object), "id": response.id}
        deps = {key: list(d.urns) for key, d in request.propertyDependencies.items() if d.urns}
        self.recorded.append(
            Recorded(request.type, request.name, response.urn, request.parent, inputs, state, deps)
        )
        return response


def run(
    program: Program = PROGRAM,
    *,
    preview: bool = False,
    config: Mapping[str, Any] | None = None,
) -> list[Recorded]:
    """Evaluate the program (a function, or a program file) in a fresh context; what it made."""
    mocks = PolicyMocks(preview)
    monitor = RecordingMonitor(mocks)

    def evaluate() -> None:
        pulumi.runtime.set_all_config({k: _config_text(v) for k, v in (config or {}).items()}, [])
        pulumi.runtime.set_mocks(
            mocks, project=NAMESPACE, stack="dev", preview=preview, monitor=monitor
        )
        if isinstance(program, Path):
            runpy.run_path(str(program), run_name="__main__")
        else:
            program()
        _sync_await(wait_for_rpcs())

    with without_source_positions():
        contextvars.Context().run(evaluate)
    return monitor.recorded


def policy_options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def policy_resources(recorded: list[Recorded]) -> list[PolicyResource]:
    """The stack as AnalyzeStack hands it to a stack policy: states, parents, dependencies."""
    built = {
        r.urn: PolicyResource(
            r.typ,
            unknown_checking_proxy(dict(r.state)),
            r.urn,
            r.name,
            policy_options(),
            None,
            None,
            [],
            {},
        )
        for r in recorded
    }
    for r in recorded:
        built[r.urn].parent = built.get(r.parent)
        built[r.urn].property_dependencies = {
            key: [built[urn] for urn in urns if urn in built] for key, urns in r.deps.items()
        }
    return list(built.values())


@dataclass
class Verdict:
    """(rule, resource name) -> messages; and (rule, resource) -> why it could not tell."""

    violations: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    unknown: dict[tuple[str, str], str] = field(default_factory=dict)

    def rules(self) -> set[str]:
        return {rule for rule, _ in self.violations}


def judge(recorded: list[Recorded]) -> Verdict:
    """Every rule of the pack over the run, catching the unknowns as the analyzer does."""
    verdict = Verdict()
    for rule in rules.RESOURCE_RULES:
        for r in recorded:
            try:
                messages = rule.check(r.typ, unknown_checking_proxy(dict(r.inputs)))
            except UnknownValueError as err:
                verdict.unknown[(rule.name, r.name)] = err.message
                continue
            if messages:
                verdict.violations[(rule.name, r.name)] = messages
    names = {r.urn: r.name for r in recorded}
    for stack_rule in rules.STACK_RULES:
        try:
            findings = stack_rule.check(policy_resources(recorded))
        except UnknownValueError as err:  # read outside any one resource's decision
            verdict.unknown[(stack_rule.name, STACK_RULES_KEY)] = err.message
            continue
        for urn, message in findings.violations:
            verdict.violations.setdefault((stack_rule.name, names[urn]), []).append(message)
        # What the adapter raises after reporting: CrossGuard's one "can't run" for the rule.
        unknown = findings.unknown()
        if unknown is not None:
            verdict.unknown[(stack_rule.name, STACK_RULES_KEY)] = unknown.message
            for name, err in findings.undecided:
                verdict.unknown.setdefault((stack_rule.name, name), err.message)
    return verdict

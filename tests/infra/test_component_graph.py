"""Becoming the component's first consumer changes no resource of an existing stack.

`tests/data/resource_graph_*.json` were recorded from `__main__.py` before it called the
top-level component (infra/ and __main__.py as of commit 702e1f0): every resource's type, name,
parent, URN and inputs under the recording mocks, and the stack outputs. The program today must
export the same outputs and register the same resources with the same inputs. A resource whose
URN changed (it now sits under the `Ec2AssumeRole` component) must carry an alias that resolves
to its old URN, so that `pulumi up` on an existing stack matches every resource to its state
and replaces none.

The mock monitor builds URNs its own way (only the parent's last type, `pulumi:pulumi:Stack$`
for top-level resources), so URNs and aliases are computed here with the engine's rules
(pkg/resource/urn.go NewURN; step_generator.go generateAliases and inheritedChildAlias): the
type chain is the parent's chain plus the type, the root stack left out; an alias spec fills
what it leaves unset from the resource; a child inherits one alias per alias of its parent.
Only a real `pulumi preview` on a real stack shows the engine agreeing; see docs/component.md.

Regenerate a fixture only for a deliberate change, and say so in CHANGELOG.md:
`.venv/bin/python tests/infra/test_component_graph.py --record`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

# Runnable as a script (to record): pytest puts tests/ and the repo on the path itself.
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2])]
from conftest import REGION, RecordingMocks  # noqa: E402

from infra.mock_program import evaluate  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
PROJECT, STACK = "ec2-assume-role", "dev"
ROOT_STACK = "pulumi:pulumi:Stack"
TOP = "ec2-assume-role:index:Ec2AssumeRole"
OPERATOR = "arn:aws:iam::123456789012:role/operator"
SERVICES = [{"name": "service-a"}, {"name": "service-b", "versioning": True}, {"name": "svc-c"}]


def _config(**keys: Any) -> dict[str, Any]:
    config = {"aws:region": REGION, "ec2-assume-role:services": SERVICES}
    return config | {f"ec2-assume-role:{key}": value for key, value in keys.items()}


GRAPHS = {
    "shared": _config(trustedPrincipals=[OPERATOR], forceDestroy=True),
    "dedicated": _config(topology="dedicated", metadataHopLimit=1),
    "adopted": _config(hostInstanceId="i-0123456789abcdef0"),
}


@dataclass
class Node:
    """One registered resource, with its parent and own aliases as the program gave them."""

    type: str
    name: str
    parent: Node | None
    aliases: list[Any]
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def chain(self) -> str:
        """The URN's qualified type: the parent's chain, then this type."""
        if self.parent is None or self.parent.type == ROOT_STACK:
            return self.type
        return f"{self.parent.chain}${self.type}"

    @property
    def urn(self) -> str:
        return _urn(self.parent.chain if self.parent else "", self.type, self.name)


def _urn(parent_chain: str, typ: str, name: str) -> str:
    chain = f"{parent_chain}${typ}" if parent_chain and parent_chain != ROOT_STACK else typ
    return f"urn:pulumi:{STACK}::{PROJECT}::{chain}::{name}"


def _chain_of(urn: str) -> str:
    return urn.split("::")[2]


def _name_of(urn: str) -> str:
    return urn.split("::", 3)[3]


def _collapse(node: Node, alias: Any, nodes: dict[int, Node]) -> str:
    """An alias (a URN, or a spec whose unset fields default to the resource's) as a URN."""
    value = _sync_await(pulumi.Output.from_input(alias).future())
    if isinstance(value, str):
        return value
    name = node.name if value.name is ... else value.name
    typ = node.type if value.type_ is ... else value.type_
    if value.parent is ...:  # unset: the resource's own parent
        parent_chain = node.parent.chain if node.parent is not None else ""
    elif value.parent is None:  # pulumi.ROOT_STACK_RESOURCE
        parent_chain = ""
    elif isinstance(value.parent, pulumi.Resource):
        parent_chain = nodes[id(value.parent)].chain
    else:
        parent_chain = _chain_of(_sync_await(pulumi.Output.from_input(value.parent).future()))
    return _urn(parent_chain, typ, name)


def _inherited(child_type: str, child_name: str, parent_name: str, parent_alias: str) -> str:
    """The engine's inheritedChildAlias: the child under its parent's old URN."""
    name = child_name
    if child_name.startswith(parent_name):
        name = _name_of(parent_alias) + child_name[len(parent_name) :]
    return _urn(_chain_of(parent_alias), child_type, name)


def _all_aliases(node: Node, nodes: dict[int, Node], memo: dict[int, set[str]]) -> set[str]:
    """The engine's generateAliases: own aliases, and each parent alias applied to them."""
    if id(node) in memo:
        return memo[id(node)]
    own = {_collapse(node, alias, nodes) for alias in node.aliases}
    found = set(own)
    if node.parent is not None and node.parent.type != ROOT_STACK:
        for parent_alias in _all_aliases(node.parent, nodes, memo):
            found.add(_inherited(node.type, node.name, node.parent.name, parent_alias))
            for alias in own:
                found.add(
                    _inherited(
                        alias.split("::")[2].split("$")[-1],
                        _name_of(alias),
                        node.parent.name,
                        parent_alias,
                    )
                )
    memo[id(node)] = found
    return found


@dataclass
class Graph:
    outputs: dict[str, Any]
    nodes: dict[int, Node]

    def by_urn(self) -> dict[str, Node]:
        found: dict[str, Node] = {}
        for node in self.nodes.values():
            assert node.urn not in found, f"two resources have the URN {node.urn}"
            found[node.urn] = node
        return found


def evaluate_graph(config: dict[str, Any]) -> Graph:
    """Run `__main__.py` under recording mocks, keeping every resource's parent and aliases."""
    nodes: dict[int, Node] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        parent = nodes.get(id(args.opts.parent)) if args.opts.parent is not None else None
        nodes[id(args.resource)] = Node(
            args.type_, args.name, parent, list(args.opts.aliases or [])
        )

    def before() -> None:
        pulumi.runtime.register_stack_transformation(record)  # type: ignore[arg-type]

    mocks = RecordingMocks()
    outputs = evaluate(mocks, config, before=before)
    inputs: dict[tuple[str, str], dict[str, Any]] = {}
    for registered in mocks.resources:
        key = (registered.typ, registered.name)
        assert key not in inputs, f"two resources are {key}"
        inputs[key] = dict(registered.inputs)
    for node in nodes.values():
        node.inputs = inputs[(node.type, node.name)]
    return Graph(outputs, nodes)


def record(topology: str) -> dict[str, Any]:
    graph = evaluate_graph(GRAPHS[topology])
    resources = [
        {
            "type": node.type,
            "name": node.name,
            "parent": node.parent.urn if node.parent else None,
            "urn": urn,
            "inputs": node.inputs,
        }
        for urn, node in sorted(graph.by_urn().items())
    ]
    return {"config": GRAPHS[topology], "outputs": graph.outputs, "resources": resources}


def _fixture(topology: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"resource_graph_{topology}.json").read_text())
    return loaded


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    DATA.mkdir(exist_ok=True)
    for name in GRAPHS:
        text = json.dumps(record(name), indent=1, sort_keys=True) + "\n"
        (DATA / f"resource_graph_{name}.json").write_text(text)


@pytest.fixture(params=list(GRAPHS), scope="module")
def topology(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def now(topology: str) -> Graph:
    return evaluate_graph(_fixture(topology)["config"])


def test_the_stack_outputs_are_exactly_the_recorded_ones(topology: str, now: Graph) -> None:
    """The outputs are a contract: the check, CI and users' scripts read them by name."""
    assert now.outputs == _fixture(topology)["outputs"]


def test_every_recorded_resource_is_registered_with_the_same_inputs(
    topology: str, now: Graph
) -> None:
    """Same type, name and inputs: nothing to update, nothing to replace. The one resource
    added is the top-level component itself; its children's parent is the only change."""
    before = {(r["type"], r["name"]): r for r in _fixture(topology)["resources"]}
    after = {(n.type, n.name): n for n in now.nodes.values()}
    assert set(after) - set(before) == {(TOP, "dev-host")}
    assert set(before) - set(after) == set()
    for key, old in before.items():
        assert after[key].inputs == old["inputs"], f"{key} has other inputs"


def test_every_parent_is_the_recorded_one_or_the_component(topology: str, now: Graph) -> None:
    """The graph keeps its shape: what was at the stack's root is now under Ec2AssumeRole,
    everything below keeps its parent."""
    before = {(r["type"], r["name"]): r for r in _fixture(topology)["resources"]}
    recorded_parent = {urn: (r["type"], r["name"]) for r in before.values() for urn in [r["urn"]]}
    for node in now.nodes.values():
        if node.type == TOP:
            assert node.parent is None
            continue
        old = before[(node.type, node.name)]["parent"]
        assert node.parent is not None, node.name
        if old is None:
            assert node.parent.type == TOP, f"{node.name} was at the root"
        else:
            assert (node.parent.type, node.parent.name) == recorded_parent[old], node.name


def test_every_old_urn_is_the_current_one_or_an_alias_of_it(topology: str, now: Graph) -> None:
    """A resource whose URN changed and no alias names the old one would be created anew and
    the old one deleted: a new bucket, new roles, a new host. Each must resolve."""
    memo: dict[int, set[str]] = {}
    current = {(n.type, n.name): n for n in now.nodes.values()}
    missing = []
    for old in _fixture(topology)["resources"]:
        node = current[(old["type"], old["name"])]
        if old["urn"] != node.urn and old["urn"] not in _all_aliases(node, now.nodes, memo):
            missing.append(old["urn"])
    assert not missing, f"{len(missing)} resources would be replaced, e.g. {missing[:3]}"


def test_the_aliases_claim_no_other_resources_urn(now: Graph) -> None:
    """An alias that named another resource's current URN would merge two resources."""
    memo: dict[int, set[str]] = {}
    urns = {node.urn for node in now.nodes.values()}
    for node in now.nodes.values():
        assert not (_all_aliases(node, now.nodes, memo) - {node.urn}) & urns, node.name

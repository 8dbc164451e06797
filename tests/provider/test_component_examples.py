"""The examples in other languages use the component as schema.json describes it.

Offline there is no `pulumi package add` to generate their SDKs, so each example is checked
against the schema those SDKs would be generated from: every component it names exists, every
property it sets is an input of the right type (enums, nested types and lists included), every
required input is set, and every output it reads exists. Then its args go through the plugin's
own `construct` (the schema-to-Python mapping `component_provider_host` uses) under the mocks,
so the component accepts them. The YAML program is parsed as YAML; for TypeScript, a regex finds
each `new ec2assumerole.X("name", {...})` and reads its object literal, which is why index.ts
keeps its args literal (no variables, no spreads).
"""

from __future__ import annotations

import contextvars
import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from conftest import RecordingMocks
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

import infra

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SPEC: dict[str, Any] = json.loads((ROOT / "schema.json").read_text())
PACKAGE = SPEC["name"]


def _token(typ: str) -> str:
    """YAML accepts `pkg:Name` as short for `pkg:index:Name`."""
    parts = typ.split(":")
    return f"{parts[0]}:index:{parts[1]}" if len(parts) == 2 else typ


def _problems(value: Any, prop: dict[str, Any], where: str) -> list[str]:
    """Why `value` does not fit the schema property `prop` (empty when it does)."""
    if "$ref" in prop:
        typ = SPEC["types"][prop["$ref"].removeprefix("#/types/")]
        if "enum" in typ:
            allowed = [member["value"] for member in typ["enum"]]
            return [] if value in allowed else [f"{where} = {value!r}: not one of {allowed}"]
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        unknown = [
            f"{where}.{key}: no such property" for key in set(value) - set(typ["properties"])
        ]
        missing = [
            f"{where}.{key}: required" for key in typ.get("required", []) if key not in value
        ]
        nested = [
            problem
            for key, item in value.items()
            if key in typ["properties"]
            for problem in _problems(item, typ["properties"][key], f"{where}.{key}")
        ]
        return unknown + missing + nested
    kinds: dict[str, Any] = {"string": str, "boolean": bool, "number": (int, float)}
    kind = prop.get("type")
    if kind in kinds:
        return [] if isinstance(value, kinds[kind]) else [f"{where}: expected a {kind}"]
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected an integer"]
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [
            p for i, v in enumerate(value) for p in _problems(v, prop["items"], f"{where}[{i}]")
        ]
    if kind == "object" and isinstance(value, dict):
        extra = prop["additionalProperties"]
        return [p for k, v in value.items() for p in _problems(v, extra, f"{where}.{k}")]
    return [f"{where}: expected a {kind}"]


def _use_problems(token: str, args: dict[str, Any], outputs: set[str]) -> list[str]:
    resource = SPEC["resources"].get(token)
    if resource is None:
        return [f"{token}: not a resource of the schema"]
    inputs = resource["inputProperties"]
    found = [f"{token}.{key}: no such input" for key in set(args) - set(inputs)]
    found += [f"{token}.{key}: required" for key in resource["requiredInputs"] if key not in args]
    found += [p for k, v in args.items() if k in inputs for p in _problems(v, inputs[k], k)]
    found += [f"{token}.{key}: no such output" for key in outputs - set(resource["properties"])]
    return found


def _construct(
    token: str, name: str, args: dict[str, Any]
) -> tuple[dict[str, Any], RecordingMocks]:
    """The plugin's construct path, in process under the mocks: schema names in, state out."""
    mocks = RecordingMocks()

    def run() -> dict[str, Any]:
        pulumi.runtime.set_all_config({"aws:region": mocks.region}, [])
        pulumi.runtime.set_mocks(mocks, project="example", stack="dev", preview=False)
        provider = ComponentProvider(list(infra.COMPONENTS), PACKAGE, None, SPEC["version"])
        result = provider.construct(name, token, args, None)
        _sync_await(wait_for_rpcs())
        return {
            k: _sync_await(pulumi.Output.from_input(v).future()) for k, v in result.state.items()
        }

    return contextvars.Context().run(run), mocks


def _yaml_uses() -> list[tuple[str, str, dict[str, Any], set[str]]]:
    program = yaml.safe_load((EXAMPLES / "yaml/Pulumi.yaml").read_text())
    text = json.dumps(program.get("outputs", {}))
    uses = []
    for name, resource in program["resources"].items():
        if resource["type"].startswith(f"{PACKAGE}:"):
            read = set(re.findall(rf"\$\{{{re.escape(name)}\.(\w+)", text))
            uses.append((_token(resource["type"]), name, resource.get("properties", {}), read))
    return uses


def _ts_literal(text: str) -> Any:
    """An object literal of plain values as JSON: quote the keys, drop trailing commas."""
    pieces = re.split(r'("(?:[^"\\]|\\.)*")', text)  # string literals stay as they are
    for i in range(0, len(pieces), 2):
        pieces[i] = re.sub(r",(\s*[}\]])", r"\1", re.sub(r"(\w+)\s*:", r'"\1":', pieces[i]))
    return json.loads("".join(pieces))


def _typescript_uses() -> list[tuple[str, str, dict[str, Any], set[str]]]:
    source = (EXAMPLES / "typescript/index.ts").read_text()
    calls = re.findall(
        r'const (\w+) = new ec2assumerole\.(\w+)\("([^"]+)", (\{.*?\})\);', source, re.S
    )
    assert calls, "index.ts constructs no ec2assumerole component"
    return [
        (
            f"{PACKAGE}:index:{cls}",
            name,
            _ts_literal(literal),
            set(re.findall(rf"\b{var}\.(\w+)", source)),
        )
        for var, cls, name, literal in calls
    ]


USES = {"yaml": _yaml_uses, "typescript": _typescript_uses}


@pytest.mark.parametrize("language", list(USES))
def test_the_example_uses_only_what_the_schema_declares(language: str) -> None:
    uses = USES[language]()
    assert uses, f"the {language} example uses no component"
    for token, _name, args, outputs in uses:
        assert not _use_problems(token, args, outputs), _use_problems(token, args, outputs)


@pytest.mark.parametrize("language", list(USES))
def test_the_component_accepts_the_example_s_args(language: str) -> None:
    """Through the plugin's own input mapping, under the mocks: valid args, the outputs the
    example reads are in the component's state, and each service got its role."""
    for token, name, args, outputs in USES[language]():
        state, mocks = _construct(token, name, args)
        assert outputs <= {k for k, v in state.items() if v is not None}, (outputs, state)
        roles = {r.name for r in mocks.resources if r.typ == "aws:iam/role:Role"}
        assert {f"{s['name']}-role" for s in args["services"]} <= roles, roles


def test_the_checker_sees_a_wrong_type_a_missing_input_and_an_unknown_output() -> None:
    """The check above would pass vacuously if it could not fail."""
    token = f"{PACKAGE}:index:Ec2AssumeRole"
    found = _use_problems(token, {"topology": "prod", "metadataHopLimit": "2"}, {"hostRole"})
    assert len(found) == 4, found


def test_the_examples_pin_a_released_version() -> None:
    """`pulumi package add <repo>@vX.Y.Z`: the examples name the version of pyproject.toml."""
    for path in (EXAMPLES / "yaml/Pulumi.yaml", EXAMPLES / "typescript/Pulumi.yaml"):
        source = yaml.safe_load(path.read_text())["packages"][PACKAGE]
        assert source.endswith(f"@v{infra.__version__}"), (path, source)


def _readme_block(language: str) -> list[str]:
    """The lines of docs/component.md's `language` block in "Other languages" (the README
    links there)."""
    text = (ROOT / "docs/component.md").read_text()
    section = text.split("## Other languages", 1)[1].split("\n## ", 1)[0]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0].splitlines()


@pytest.mark.parametrize(
    ("language", "example"),
    [("yaml", "examples/yaml/Pulumi.yaml"), ("typescript", "examples/typescript/index.ts")],
)
def test_the_readme_examples_are_excerpts_of_the_tested_ones(language: str, example: str) -> None:
    """The YAML and TypeScript snippets of docs/component.md are taken from the example
    programs that the tests above check against the schema: every line of a snippet stands in
    its example, in the same order, so the docs cannot drift from what is tested."""
    lines = (ROOT / example).read_text().splitlines()
    position = 0
    for line in _readme_block(language):
        if not line.strip():
            continue
        assert line in lines[position:], f"{line!r} is not in {example} (after line {position})"
        position = lines.index(line, position) + 1

"""The component package's schema: what other languages see, kept equal to the code.

schema.json is what the SDK's own analyser (`pulumi.provider.experimental`) infers from the
components' type annotations, the same inference `component_provider_host` runs when
`pulumi package add` starts the plugin. It is committed so a reviewer sees an interface change
in the diff; regenerate it with `.venv/bin/python provider --schema > schema.json`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from conftest import Run, stack_config
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

import infra
from infra.settings import KEYS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schema.json"
ENTRY = ROOT / "provider"
PACKAGE = "ec2-assume-role"

sys.path.insert(0, str(ROOT))
from provider.__main__ import NAME, schema  # noqa: E402


def _committed() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text())
    return loaded


def test_the_committed_schema_is_what_the_analyser_infers_from_the_code() -> None:
    """A changed arg, output, docstring or version without a regenerated schema.json fails."""
    inferred = schema()
    if inferred != _committed():
        changed = sorted(
            key
            for section in ("resources", "types")
            for key in {**inferred[section], **_committed()[section]}  # type: ignore[dict-item]
            if inferred[section].get(key) != _committed()[section].get(key)  # type: ignore[attr-defined]
        )
        pytest.fail(
            f"schema.json is stale ({changed or 'package fields'}): run "
            "`.venv/bin/python provider --schema > schema.json` and review the diff"
        )
    assert SCHEMA.read_text() == json.dumps(inferred, indent=2, sort_keys=True) + "\n"


def test_the_schema_carries_pyproject_s_version_and_name() -> None:
    """One version: pyproject.toml's, which the tag vX.Y.Z names and the SDKs are built at."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == PACKAGE == NAME == _committed()["name"]
    assert _committed()["version"] == project["version"] == infra.__version__


def test_every_component_is_served_under_the_type_it_registers(run_program: Any) -> None:
    """The schema's token (`ec2-assume-role:index:<class>`) must be the type the component
    registers, or the engine could not match a Construct to what it creates. The shared
    topology registers all six."""
    run: Run = run_program(stack_config(("service-a",)))
    registered = {r.typ for r in run.mocks.resources}
    served = set(_committed()["resources"])
    assert served == {f"{PACKAGE}:index:{c.__name__}" for c in infra.COMPONENTS}
    assert served <= registered, served - registered


def _properties(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for token, resource in spec["resources"].items():
        for section in ("inputProperties", "properties"):
            for name, prop in resource.get(section, {}).items():
                yield f"{token} {section}.{name}", prop
    for token, typ in spec["types"].items():
        for name, prop in (typ.get("properties") or {}).items():
            yield f"{token} .{name}", prop


def test_every_arg_and_output_is_documented() -> None:
    """Each TypedDict field and output attribute has a docstring: the analyser makes it the
    description every generated SDK shows."""
    undocumented = [
        where for where, prop in _properties(_committed()) if not prop.get("description")
    ]
    assert not undocumented, undocumented
    for token, resource in _committed()["resources"].items():
        assert resource.get("description"), token


def test_the_top_level_args_are_the_stack_config_keys_and_plain() -> None:
    """The same settings as the stack config, under the same names in other languages, and
    plain (not Outputs): the component validates them before it registers anything."""
    top = _committed()["resources"][f"{PACKAGE}:index:Ec2AssumeRole"]
    assert set(top["inputProperties"]) == set(KEYS)
    assert all(prop.get("plain") for prop in top["inputProperties"].values())
    assert top["requiredInputs"] == ["services"]
    assert set(top["required"]) == {"topology", "region", "partition", "services"}


def test_the_outputs_the_check_reads_are_outputs_of_the_component() -> None:
    """Every stack output the program exports (the check's contract) is a component output
    under the same name, so a program in another language can export them for the check."""
    outputs = _committed()["resources"][f"{PACKAGE}:index:Ec2AssumeRole"]["properties"]
    recorded = json.loads((ROOT / "tests/data/resource_graph_shared.json").read_text())["outputs"]
    dedicated = json.loads((ROOT / "tests/data/resource_graph_dedicated.json").read_text())
    assert set(recorded) | set(dedicated["outputs"]) == set(outputs)
    endpoints = _committed()["types"][f"{PACKAGE}:index:ServiceEndpoints"]
    required = set(endpoints["required"])
    assert required == set(next(iter(recorded["services"].values())))
    # SSE-KMS services add their key; the check reads it when present (checks/stack_outputs.py).
    assert set(endpoints["properties"]) - required == {"kmsKeyArn"}


def test_the_plugin_manifest_points_at_the_entry() -> None:
    """PulumiPlugin.yaml declares Python and the entry; the root `__main__.py` is the program."""
    manifest = yaml.safe_load((ROOT / "PulumiPlugin.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert (ROOT / manifest["main"]).resolve() == ENTRY / "__main__.py"


def test_the_entry_serves_the_committed_schema_over_grpc(tmp_path: Path) -> None:
    """Started the way the CLI starts a plugin (`python <entry> <engine address>`), the entry
    prints its port and answers GetSchema with schema.json and GetPluginInfo with the version.
    Construct needs a real engine: only `pulumi package add` and a deployment show that."""
    plugin = subprocess.Popen(
        [sys.executable, str(ENTRY), "127.0.0.1:9"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert plugin.stdout is not None
        port = plugin.stdout.readline().strip()  # the handshake: the plugin is listening
        assert port.isdigit(), (port, plugin.stderr.read() if plugin.poll() is not None else "")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            served = stub.GetSchema(provider_pb2.GetSchemaRequest(), timeout=30)
            info = stub.GetPluginInfo(empty_pb2.Empty())
        assert json.loads(served.schema) == _committed()
        assert info.version == infra.__version__
    finally:
        plugin.terminate()
        plugin.wait(timeout=30)

"""The code's shape: no import cycles, and a runtime check that needs no dev tooling.

Cycles are found in the static import graph of infra/, checks/, rehearsal/ and policy/, counting
every import: top-level, function-local and under TYPE_CHECKING, since a cycle hidden behind a
local import is still one. The runtime check (checks/: the emulator and its moto fixtures are
the dev-only rehearsal/) is imported, and `python -m checks --help` run, in a venv that holds
only the check's runtime requirements (boto3, rich, policy-sentry and what they require), as
on a host: no pulumi, pulumi_aws, pulumi_policy or moto.
"""

from __future__ import annotations

import ast
import re
import subprocess
import venv
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("infra", "checks", "rehearsal", "policy")
ABSENT = ("pulumi", "pulumi_aws", "pulumi_policy", "moto")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports, anywhere in it (not its own parent packages)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if path.name == "__init__.py" else base[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join([*base, *([node.module] if node.module else [])])
            else:
                prefix = node.module or ""
            subs = {f"{prefix}.{a.name}" for a in node.names} & set(known)
            found |= subs
            if len(subs) < len(node.names) and prefix in known:
                found.add(prefix)
    return {m for m in found if m != name and not name.startswith(m + ".")}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_finder_sees_a_cycle_hidden_behind_a_local_import(tmp_path: Path) -> None:
    """The negative first: a cycle through a function-local import is found."""
    (tmp_path / "a.py").write_text("from b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from a import y\n")
    known = {"a": tmp_path / "a.py", "b": tmp_path / "b.py"}
    graph = {n: imports(n, p, known) for n, p in known.items()}
    assert cycles(graph) == [["a", "b"]]


def test_no_module_imports_itself_through_others() -> None:
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert cycles(graph) == []


RUNTIME = ("boto3", "rich", "policy-sentry")
"""The check's own requirements (pyproject.toml lists them with pulumi's, for the component)."""


def _required(name: str, seen: set[str]) -> None:
    """`name` and every distribution it requires, by the markers of this interpreter."""
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        return
    seen.add(key)
    for requirement in metadata.requires(name) or []:
        spec, _, marker = requirement.partition(";")
        if marker and not Marker(marker).evaluate({"extra": ""}):
            continue
        _required(re.split(r"[ <>=!~\[(]", spec.strip(), maxsplit=1)[0], seen)


@pytest.fixture(scope="module")
def runtime_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv whose site-packages holds only the runtime requirements: each distribution's
    installed files are linked in from this environment (no download, no pip)."""
    where = tmp_path_factory.mktemp("runtime-venv")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    site = next(where.glob("lib/python*/site-packages"))
    wanted: set[str] = set()
    for name in RUNTIME:
        _required(name, wanted)
    for name in sorted(wanted):
        distribution = metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in distribution.files or [] if ".." not in str(f)}
        for top in tops - {"__pycache__"}:
            source = Path(str(distribution.locate_file(top)))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    return where / "bin" / "python"


def _python(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_runtime_venv_has_the_requirements_and_nothing_of_the_dev_tooling(
    runtime_python: Path,
) -> None:
    """The control: the venv really lacks each dev-only distribution, and has boto3."""
    for name in ABSENT:
        result = _python(runtime_python, "-c", f"import {name}")
        assert result.returncode == 1 and f"No module named '{name}'" in result.stderr, name
    assert _python(runtime_python, "-c", "import boto3, rich, policy_sentry").returncode == 0


def test_the_runtime_check_imports_without_pulumi_or_moto(runtime_python: Path) -> None:
    runtime = sorted(n for n in modules() if n.split(".")[0] == "checks")
    assert "checks.reach.proof" in runtime and "checks.via_ssm" in runtime
    code = f"import importlib\nfor m in {runtime!r}: importlib.import_module(m)"
    result = _python(runtime_python, "-c", code)
    assert result.returncode == 0, result.stderr


def test_python_m_checks_help_runs_without_pulumi_or_moto(runtime_python: Path) -> None:
    result = _python(runtime_python, "-m", "checks", "--help")
    assert result.returncode == 0, result.stderr
    assert "--outputs" in result.stdout and "--reach-only" in result.stdout


def test_the_shared_contract_imports_nothing_and_is_the_one_definition() -> None:
    """checks/contract.py holds the values the program, the check and the host script share;
    it imports nothing, and nothing else spells the reserved prefix out."""
    import json

    from checks import contract

    tree = ast.parse((ROOT / "checks/contract.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    spelled = [
        str(path.relative_to(ROOT))
        for package in (*PACKAGES, "provider")
        for path in (ROOT / package).rglob("*")
        if path.suffix in (".py", ".sh")
        and path.name != "contract.py"
        and f'"{contract.RESERVED_PREFIX}"' in path.read_text()
    ]
    assert spelled == []
    schema = json.loads((ROOT / "schema.json").read_text())
    component = schema["resources"]["ec2-assume-role:index:Ec2AssumeRole"]["properties"]
    assert set(component) == set(contract.OUTPUT_KEYS)
    endpoints = schema["types"]["ec2-assume-role:index:ServiceEndpoints"]["properties"]
    assert set(endpoints) == set(contract.SERVICE_KEYS)

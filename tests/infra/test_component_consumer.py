"""A program of someone else's, outside this repository, with the package installed.

The distribution is built and installed offline, the way `pip install "git+<repo>@vX.Y.Z"`
would install it but from a copy of the source (pip builds in the source tree, which must stay
clean): `pip install --no-deps --no-build-isolation --target <tmp>/site`. The consumer then runs
in a temporary directory with only <tmp>/site added to the path, so this repo's `infra/` is not
importable: everything it uses comes from the installed `ec2_assume_role`. It builds a stack
under its own Pulumi mocks (as a user's unit test would) and prints what was registered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_OUTPUTS

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SOURCES = ("pyproject.toml", "README.md", "infra", "checks")
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"

CONSUMER = r'''
import importlib.util
import json
import sys

import pulumi

assert importlib.util.find_spec("infra") is None, "the repository's infra/ is importable"


class Mocks(pulumi.runtime.Mocks):
    """What the AWS provider would answer, enough for ARNs and names to be realistic."""

    def __init__(self):
        self.resources = []

    def new_resource(self, args):
        self.resources.append({"type": args.typ, "name": args.name, "inputs": args.inputs})
        state = dict(args.inputs)
        name = f"{args.name}-0a1b2c3"
        if args.typ == "aws:iam/role:Role":
            path = args.inputs.get("path") or "/"
            state.update(name=name, arn=f"arn:aws:iam::123456789012:role{path}{name}")
        if args.typ == "aws:s3/bucket:Bucket":
            state.update(bucket=name, arn=f"arn:aws:s3:::{name}")
        if args.typ == "aws:iam/instanceProfile:InstanceProfile":
            state.update(name=name)
        return f"{args.name}-id", state

    def call(self, args):
        return {
            "aws:index/getRegion:getRegion": {"region": "eu-west-1", "name": "eu-west-1"},
            "aws:index/getPartition:getPartition": {"partition": "aws", "id": "aws"},
            "aws:index/getCallerIdentity:getCallerIdentity": {"accountId": "123456789012"},
            "aws:index/getServicePrincipal:getServicePrincipal": {"name": "ec2.amazonaws.com"},
            "aws:ssm/getParameter:getParameter": {"value": "ami-0abcdef1234567890"},
            "aws:ec2/getVpc:getVpc": {"id": "vpc-0default"},
        }[args.token]


mocks = Mocks()
pulumi.runtime.set_all_config({"aws:region": "eu-west-1"}, [])
pulumi.runtime.set_mocks(mocks, project="consumer", stack="dev", preview=False)

import ec2_assume_role  # noqa: E402 (after the mocks, as Pulumi's unit-testing guide does)
from pulumi.runtime.stack import wait_for_rpcs  # noqa: E402
from pulumi.runtime.sync_await import _sync_await  # noqa: E402

result = {"version": ec2_assume_role.__version__, "module": ec2_assume_role.__file__}
if sys.argv[1] == "readme":
    exported = []
    pulumi.export = lambda key, value: exported.append(key)  # what the example exports
    with open(sys.argv[2]) as example:
        exec(compile(example.read(), "README example", "exec"), {})  # noqa: S102
    _sync_await(wait_for_rpcs())
    result["outputs"] = sorted(exported)
elif sys.argv[1] == "good":
    stack = ec2_assume_role.Ec2AssumeRole(
        "team", {"services": [{"name": "service-a"}, {"name": "service-b", "versioning": True}]}
    )
    outputs = stack.stack_outputs()
    _sync_await(wait_for_rpcs())
    result["outputs"] = sorted(outputs)
else:
    try:
        ec2_assume_role.Ec2AssumeRole(
            "team",
            {
                "services": [{"name": "default"}, *({"name": f"svc-{i}"} for i in range(300))],
                "trusted_principals": ["arn:aws-cn:iam::123456789012:role/operator"],
            },
        )
    except ec2_assume_role.ConfigError as err:
        result["error"] = str(err)
result["resources"] = mocks.resources
print(json.dumps(result, default=str))
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distribution, built from a copy of the source and installed into <tmp>/site."""
    base = tmp_path_factory.mktemp("dist")
    source = base / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    target = base / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q"]
    done = subprocess.run(
        [*pip, "--disable-pip-version-check", "--no-index", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return target


def _consume(site: Path, tmp_path: Path, mode: str, *args: str) -> dict[str, Any]:
    program = tmp_path / "consumer.py"
    program.write_text(CONSUMER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, str(program), mode, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert Path(result["module"]).is_relative_to(site), result["module"]
    return result


def _of(result: dict[str, Any], typ: str) -> list[dict[str, Any]]:
    return [r for r in result["resources"] if r["type"] == typ]


def test_the_distribution_declares_its_version_dependencies_and_types(site: Path) -> None:
    """What `pip install git+...` gives a user: metadata, py.typed, the check and its script."""
    (info,) = site.glob("ec2_assume_role-*.dist-info")
    metadata = Parser().parsestr((info / "METADATA").read_text())
    assert metadata["Version"] == PROJECT["version"]
    required = {r.replace(" ", "") for r in metadata.get_all("Requires-Dist") or []}
    assert {"pulumi<4,>=3.200", "pulumi-aws<8,>=7.0"} <= required, required
    assert (site / "ec2_assume_role/py.typed").is_file()
    assert (site / "checks/remote_check.sh").is_file()
    assert not (site / "rehearsal").exists(), "the emulator is dev-only"
    assert not (site / "infra").exists()
    entry = (info / "entry_points.txt").read_text()
    assert "ec2-assume-role-check = checks.__main__:main" in entry
    script = site / "bin/ec2-assume-role-check"
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0 and "usage" in done.stdout.lower(), done.stderr


def test_a_consumer_gets_the_design_from_the_installed_package(site: Path, tmp_path: Path) -> None:
    """Two services on a shared host: each service role trusts EC2 and exactly the host role;
    the host role's only grant is sts:AssumeRole on the service roles' path; every bucket has
    its public access block, owner-enforced ownership, a TLS-only policy and encryption."""
    result = _consume(site, tmp_path, "good")
    assert result["version"] == PROJECT["version"]
    roles = {r["name"]: r["inputs"] for r in _of(result, "aws:iam/role:Role")}
    host_arn = "arn:aws:iam::123456789012:role/team-role-0a1b2c3"
    path = "/ec2-assume-role/dev/"
    for service in ("service-a", "service-b"):
        trust = json.loads(roles[f"{service}-role"]["assumeRolePolicy"])
        principals = [s["Principal"] for s in trust["Statement"]]
        assert principals == [{"Service": "ec2.amazonaws.com"}, {"AWS": [host_arn]}], service
        assert roles[f"{service}-role"]["path"] == path
    host_policies = [
        json.loads(p["inputs"]["policy"])
        for p in _of(result, "aws:iam/rolePolicy:RolePolicy")
        if p["inputs"]["role"] == "team-role-0a1b2c3"
    ]
    grants = [s for doc in host_policies for s in doc["Statement"] if s["Effect"] == "Allow"]
    assert grants == [
        {
            "Sid": "AssumeServiceRoles",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": f"arn:aws:iam::123456789012:role{path}*",
        }
    ]
    buckets = [r["name"] for r in _of(result, "aws:s3/bucket:Bucket")]
    assert sorted(buckets) == ["service-a-bucket", "service-b-bucket"]
    for bucket in buckets:
        on = [r for r in result["resources"] if r["inputs"].get("bucket") == f"{bucket}-id"]
        kinds = {r["type"]: r["inputs"] for r in on}
        block = kinds["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"]
        assert all(
            block[k]
            for k in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        ), bucket
        ownership = kinds["aws:s3/bucketOwnershipControls:BucketOwnershipControls"]
        assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced", bucket
        (deny,) = json.loads(kinds["aws:s3/bucketPolicy:BucketPolicy"]["policy"])["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {
            "Bool": {"aws:SecureTransport": "false"}
        }, bucket
        # Encryption at rest: S3 applies SSE-S3 to every new object of every bucket (since
        # 2023), which only a real bucket shows; a configuration the stack declares may only
        # choose the key, never weaken it. In transit: the TLS-only policy above.
        for sse in kinds.get(SSE, {}).get("rules", []):
            algorithm = sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
            assert algorithm in ("AES256", "aws:kms", "aws:kms:dsse"), (bucket, algorithm)
    assert {"hostRoleArn", "awsConfig", "services", "topology"} <= set(result["outputs"])


def test_bad_args_get_one_line_each_and_nothing_is_registered(site: Path, tmp_path: Path) -> None:
    """A reserved name, 301 services and a principal of another partition: three lines, each
    naming the arg as the caller spelt it, before any resource (the component included)."""
    result = _consume(site, tmp_path, "bad")
    lines = result["error"].splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith('invalid Ec2AssumeRole "team" arg ') for line in lines), lines
    for arg, hint in (
        ("services = 301", "at most 300"),
        ("services[0].name = 'default'", "reserved"),
        ("trusted_principals[0] = ", "partition aws-cn"),
    ):
        assert sum(arg in line and hint in line for line in lines) == 1, (arg, lines)
    assert result["resources"] == []


def test_the_distribution_s_ranges_are_those_of_requirements_txt() -> None:
    """One supported range per dependency: what `pulumi up` installs for this project's stack
    is what a consumer's pip resolves against."""
    pinned = {
        line.split("#", 1)[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    }
    assert set(PROJECT["dependencies"]) <= pinned, set(PROJECT["dependencies"]) - pinned
    assert {"pulumi>=3.200,<4", "pulumi-aws>=7.0,<8"} <= set(PROJECT["dependencies"])


def readme_example() -> str:
    """The Python block of the README's "Use it from your own program" section, verbatim."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it from your own program", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_runs_as_written(site: Path, tmp_path: Path) -> None:
    """The README's Python example, run as written against the installed package, exports
    exactly the outputs this project's own stack exports (shared topology), so the check
    works on a consumer's stack as on this one."""
    example = tmp_path / "example.py"
    example.write_text(readme_example())
    result = _consume(site, tmp_path, "readme", str(example))
    assert result["outputs"] == sorted(SHARED_OUTPUTS), result["outputs"]
    roles = [r["name"] for r in _of(result, "aws:iam/role:Role")]
    assert sorted(roles) == ["invoices-role", "orders-role", "team-role"], roles

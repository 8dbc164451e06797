"""Pure helpers behind the instances: the AMI architecture and the profiles file."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import botocore.session
import pytest

from infra.aws_config import (
    ROOT_VARIABLE,
    config_digest,
    render_aws_config,
    render_install_script,
)
from infra.placement import architecture


@pytest.mark.parametrize(
    ("instance_type", "arch"),
    [
        ("t3.micro", "x86_64"),
        ("t4g.small", "arm64"),
        ("a1.large", "arm64"),
        ("c7gn.16xlarge", "arm64"),
        ("im4gn.large", "arm64"),
        ("m7g.medium", "arm64"),
        ("g4dn.xlarge", "x86_64"),
        ("g5.xlarge", "x86_64"),
        ("u-6tb1.metal", "x86_64"),
    ],
)
def test_ami_architecture_follows_the_instance_type(instance_type: str, arch: str) -> None:
    """An x86_64 AMI on a Graviton type (or the reverse) fails to launch."""
    assert architecture(instance_type) == arch


@pytest.mark.parametrize("service", ["a", "service-a", "s" + "x" * 31])
def test_every_profile_is_one_sts_accepts(service: str) -> None:
    """The profile's session name must satisfy AssumeRole's own constraints (from botocore's
    STS model): a one-letter service name alone would be refused by the SDK."""
    model = botocore.session.get_session().get_service_model("sts")
    shape = model.operation_model("AssumeRole").input_shape.members["RoleSessionName"]
    arn = "arn:aws:iam::123456789012:role/x-role-1a2b3c4"
    parser = configparser.ConfigParser()
    parser.read_string(render_aws_config("us-east-1", {service: arn}))
    profile = parser[f"profile {service}"]
    name = profile["role_session_name"]
    assert shape.metadata["min"] <= len(name) <= shape.metadata["max"], name
    assert re.fullmatch(shape.metadata["pattern"], name), name
    assert profile["role_arn"] == arn


def run_install(
    tmp_path: Path, script: str, root: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the association's script as the SSM agent would, with `/` moved to a temporary root
    and systemctl / systemd-run recorded instead of run."""
    root = root or tmp_path / "root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("systemctl", "systemd-run"):
        fake = bin_dir / tool
        fake.write_text(f'#!/bin/sh\necho "{tool} $*" >> {tmp_path}/systemd.log\n')
        fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", ROOT_VARIABLE: str(root)}
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_the_association_script_installs_the_profiles_machine_wide(tmp_path: Path) -> None:
    """Run it for real: the profiles file and the three places that make it the default are
    written; a second run (the association's schedule) changes nothing and restarts nothing."""
    config = render_aws_config("us-east-1", {"svc": "arn:aws:iam::123456789012:role/svc-1"})
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "environment").write_text("LANG=C.UTF-8\n")
    for _ in range(2):
        done = run_install(tmp_path, render_install_script(config))
        assert done.returncode == 0, done.stderr
        assert f"sha256={config_digest(config)}" in done.stdout
    etc = root / "etc"
    assert (etc / "aws" / "config").read_text() == config
    assert oct((etc / "aws" / "config").stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in (etc / "aws").iterdir()] == ["config"], "no temporary file is left"
    assert (etc / "profile.d" / "aws-config.sh").read_text() == (
        "export AWS_CONFIG_FILE=/etc/aws/config\n"
    )
    assert (etc / "environment").read_text().splitlines() == [
        "LANG=C.UTF-8",
        "AWS_CONFIG_FILE=/etc/aws/config",
    ]
    assert (etc / "systemd" / "system.conf.d" / "aws-config.conf").read_text() == (
        "[Manager]\nDefaultEnvironment=AWS_CONFIG_FILE=/etc/aws/config\n"
    )
    calls = (tmp_path / "systemd.log").read_text().splitlines()
    assert calls == [
        "systemctl daemon-reexec",
        "systemd-run --on-active=60 --unit=ec2-assume-role-agent-restart "
        "systemctl try-restart amazon-ssm-agent",
    ], "the agent is restarted once, after this run, never during it"


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_a_new_file_replaces_the_old_one_by_rename(tmp_path: Path) -> None:
    """A reader holding the old file keeps reading the old content: the new file is a new
    inode renamed over it, never the old one rewritten in place."""
    old = render_aws_config("us-east-1", {"a": "arn:aws:iam::123456789012:role/a-1"})
    new = render_aws_config("us-east-1", {"a": "arn:aws:iam::123456789012:role/a-1", "b": "x"})
    assert run_install(tmp_path, render_install_script(old)).returncode == 0
    path = tmp_path / "root" / "etc" / "aws" / "config"
    with path.open() as reader:
        done = run_install(tmp_path, render_install_script(new))
        assert done.returncode == 0, done.stderr
        assert reader.read() == old
    assert path.read_text() == new


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_a_damaged_payload_leaves_the_installed_file_alone(tmp_path: Path) -> None:
    """The decoded file is checked against its SHA-256 before it replaces anything."""
    good = render_aws_config("us-east-1", {"a": "arn:aws:iam::123456789012:role/a-1"})
    assert run_install(tmp_path, render_install_script(good)).returncode == 0
    other = render_aws_config("us-east-1", {"b": "arn:aws:iam::123456789012:role/b-1"})
    damaged = render_install_script(other).replace(config_digest(other), config_digest(good))
    done = run_install(tmp_path, damaged)
    assert done.returncode != 0
    etc = tmp_path / "root" / "etc" / "aws"
    assert (etc / "config").read_text() == good
    assert [p.name for p in etc.iterdir()] == ["config"]

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

from infra.aws_config import render_aws_config, render_user_data
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


def test_user_data_restarts_the_ssm_agent_after_setting_the_environment() -> None:
    """The agent starts before user data; Session Manager shells inherit its environment."""
    script = render_user_data("[default]\nregion = us-east-1\n")
    assert script.index("DefaultEnvironment=") < script.index("try-restart amazon-ssm-agent")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_user_data_installs_the_profiles_machine_wide(tmp_path: Path) -> None:
    """Run the user data for real, with /etc moved into a temporary directory and systemctl
    recorded: the profiles file and the three places that make it the default are written,
    and a second run (a reboot that re-runs it) adds nothing twice."""
    config = render_aws_config("us-east-1", {"svc": "arn:aws:iam::123456789012:role/svc-1"})
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "environment").write_text("LANG=C.UTF-8\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    systemctl = bin_dir / "systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/systemctl.log\n')
    systemctl.chmod(0o755)
    script = render_user_data(config).replace("/etc/", f"{root}/etc/")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for _ in range(2):
        done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    etc = root / "etc"
    assert (etc / "aws" / "config").read_text() == config
    assert oct((etc / "aws" / "config").stat().st_mode & 0o777) == "0o644"
    assert (etc / "profile.d" / "aws-config.sh").read_text() == (
        "export AWS_CONFIG_FILE=/etc/aws/config\n".replace("/etc/", f"{root}/etc/")
    )
    assert (etc / "environment").read_text().splitlines() == [
        "LANG=C.UTF-8",
        f"AWS_CONFIG_FILE={root}/etc/aws/config",
    ]
    assert (
        "DefaultEnvironment=AWS_CONFIG_FILE="
        in (etc / "systemd" / "system.conf.d" / "aws-config.conf").read_text()
    )
    calls = (tmp_path / "systemctl.log").read_text().splitlines()
    assert calls == ["daemon-reexec", "try-restart amazon-ssm-agent"] * 2

"""Pure helpers behind the instances: the AMI architecture and the profiles file."""

from __future__ import annotations

import configparser
import re

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

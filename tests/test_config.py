"""Config validation: every bad value fails with a message naming the key, before any resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RecordingMocks, stack_config

from infra.config import ConfigError, StackConfig, Topology, parse_config
from infra.mock_program import evaluate

ROOT = Path(__file__).resolve().parent.parent
SEVENTY = "a" * 70

BAD = [
    ({"services": None}, "services", "required"),
    ({"services": []}, "services", "non-empty list"),
    ({"services": "service-a"}, "services", "non-empty list"),
    ({"services": '[{"name": '}, "services", "not valid JSON"),
    ({"services": [{"versioning": True}]}, "services[0]", "needs a name"),
    ({"services": ["service-a"]}, "services[0]", "needs a name"),
    ({"services": [{"name": "a"}, {"name": "a"}]}, "services[1].name", "unique"),
    ({"services": [{"name": "Service_A"}]}, "services[0].name", "lowercase"),
    ({"services": [{"name": SEVENTY}]}, "services[0].name", "at most 32"),
    ({"services": [{"name": "9lives"}]}, "services[0].name", "starting with a letter"),
    ({"services": [{"name": "a", "versoning": True}]}, "services[0]", "unknown field"),
    ({"services": [{"name": "xn--svc"}]}, "services[0].name", "S3 reserves"),
    ({"services": [{"name": "sthree-svc"}]}, "services[0].name", "S3 reserves"),
    ({"services": [{"name": "a", "versioning": "yes"}]}, "services[0].versioning", "true or"),
    ({"topology": "mesh"}, "topology", "shared or dedicated"),
    ({"instanceType": "large"}, "instanceType", "t3.micro"),
    ({"amiId": "ubuntu"}, "amiId", "ami-"),
    ({"subnetId": "default"}, "subnetId", "subnet-"),
    ({"trustedPrincipals": ["*"]}, "trustedPrincipals[0]", "wildcard"),
    ({"trustedPrincipals": ["bob"]}, "trustedPrincipals[0]", "arn:aws:iam::"),
    (
        {"trustedPrincipals": ["arn:aws:iam::123456789012:root"]},
        "trustedPrincipals[0]",
        "account root",
    ),
    ({"trustedPrincipals": "arn:aws:iam::123456789012:role/x"}, "trustedPrincipals", "list"),
    (
        {"topology": "dedicated", "trustedPrincipals": ["arn:aws:iam::123456789012:role/op"]},
        "trustedPrincipals",
        "only the shared topology",
    ),
    ({"forceDestroy": "sometimes"}, "forceDestroy", "true or false"),
]


def _raw(overrides: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {"services": [{"name": "service-a"}]}
    raw.update(overrides)
    return raw


@pytest.mark.parametrize(("overrides", "key", "hint"), BAD, ids=[b[1] + "-" + b[2] for b in BAD])
def test_bad_config_names_key_value_and_fix(overrides: dict[str, Any], key: str, hint: str) -> None:
    """A user must see which key is wrong, what it holds, and how to fix it."""
    with pytest.raises(ConfigError) as raised:
        parse_config(_raw(overrides))
    message = str(raised.value)
    assert f"ec2-assume-role:{key} = " in message, message
    assert hint in message, message


@pytest.mark.parametrize(("overrides", "key", "hint"), BAD[:3] + BAD[14:16])
def test_bad_config_registers_no_resource(overrides: dict[str, Any], key: str, hint: str) -> None:
    """The program validates before registering anything: no partial deploy."""
    config = stack_config()
    config.update({f"ec2-assume-role:{k}": v for k, v in overrides.items() if v is not None})
    if overrides.get("services", "") is None:
        del config["ec2-assume-role:services"]
    mocks = RecordingMocks()
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        evaluate(mocks, config)
    assert mocks.resources == []


def test_config_error_is_a_pulumi_run_error() -> None:
    """`pulumi up` prints a RunError's message alone, without a Python traceback."""
    import pulumi

    assert issubclass(ConfigError, pulumi.RunError)


def test_good_config_parses_with_defaults() -> None:
    """Unset keys take the documented defaults."""
    parsed = parse_config(
        {"services": '[{"name": "svc-1"}, {"name": "svc-2", "versioning": true}]'}
    )
    assert parsed.topology is Topology.SHARED
    assert parsed.instance_type == "t3.micro"
    assert parsed.ami_id is None and parsed.subnet_id is None
    assert parsed.trusted_principals == ()
    assert parsed.force_destroy is False
    assert [(s.name, s.versioning) for s in parsed.services] == [
        ("svc-1", False),
        ("svc-2", True),
    ]


def test_strings_from_pulumi_config_are_decoded() -> None:
    """Pulumi passes booleans and lists as text; both spellings must work."""
    parsed = parse_config(
        {
            "services": [{"name": "a"}],
            "forceDestroy": "true",
            "trustedPrincipals": '["arn:aws:iam::123456789012:role/operator"]',
            "instanceType": "c7gn.16xlarge",
            "amiId": "ami-0123456789abcdef0",
            "subnetId": "subnet-0123abcd",
        }
    )
    assert parsed.force_destroy is True
    assert parsed.trusted_principals == ("arn:aws:iam::123456789012:role/operator",)
    assert parsed.subnet_id == "subnet-0123abcd"


def test_pulumi_yaml_declares_every_key_with_the_code_defaults() -> None:
    """Pulumi.yaml documents the keys; its defaults must be the ones the code applies."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    defaults = StackConfig(services=())
    expected = {
        "topology": defaults.topology.value,
        "instanceType": defaults.instance_type,
        "amiId": "",
        "subnetId": "",
        "trustedPrincipals": [],
        "forceDestroy": defaults.force_destroy,
    }
    assert {k: v["default"] for k, v in declared.items()} == expected
    assert all(v.get("description") and v.get("type") for v in declared.values())


def test_dev_stack_config_is_valid_and_shared_with_three_services() -> None:
    """Pulumi.dev.yaml is what the README's commands deploy."""
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in stack.items() if k.startswith("ec2-assume-role:")}
    parsed = parse_config(raw)
    assert stack["aws:region"]
    assert parsed.topology is Topology.SHARED
    assert [s.name for s in parsed.services] == ["service-a", "service-b", "service-c"]

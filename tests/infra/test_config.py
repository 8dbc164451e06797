"""Config validation: every bad value fails with a message naming the key, before any resource."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RecordingMocks, stack_config

from infra.config import parse_config
from infra.errors import ConfigError
from infra.mock_program import evaluate
from infra.settings import MAX_SERVICES, StackConfig, Topology

ROOT = Path(__file__).resolve().parents[2]
SEVENTY = "a" * 70
ROLE = "arn:aws:iam::123456789012:role"

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
    (
        {"services": [{"name": "a", "versoning": True}]},
        "services[0].versoning",
        "unknown field; did you mean versioning?",
    ),
    ({"services": [{"name": "service-a\n"}]}, "services[0].name", "lowercase"),
    ({"services": [{"name": "default"}]}, "services[0].name", "reserved: it would become"),
    ({"services": [{"name": "a", "versioning": 0}]}, "services[0].versioning", "true or"),
    ({"services": [{"name": "a", "versioning": "true"}]}, "services[0].versioning", "true or"),
    ({"services": [{"name": "a", "versioning": []}]}, "services[0].versioning", "true or"),
    ({"topology": 0}, "topology", "shared or dedicated"),
    ({"topology": ""}, "topology", "shared or dedicated"),
    ({"topology": "shared\n"}, "topology", "shared or dedicated"),
    ({"topolgy": "dedicated"}, "topolgy", "unknown key; did you mean topology?"),
    ({"forceDestroy": 0}, "forceDestroy", "true or false"),
    ({"forceDestroy": ""}, "forceDestroy", "true or false"),
    ({"forceDestroy": []}, "forceDestroy", "true or false"),
    ({"forceDestroy": "True"}, "forceDestroy", "true or false"),
    ({"instanceType": "t3.micro\n"}, "instanceType", "t3.micro"),
    ({"amiId": "ami-0123456789abcdef0\n"}, "amiId", "ami-"),
    ({"metadataHopLimit": "0"}, "metadataHopLimit", "from 1 to 64"),
    ({"metadataHopLimit": 65}, "metadataHopLimit", "from 1 to 64"),
    ({"metadataHopLimit": True}, "metadataHopLimit", "from 1 to 64"),
    ({"hostInstanceId": "i-xyz"}, "hostInstanceId", "i-0123456789abcdef0"),
    (
        {"topology": "dedicated", "hostInstanceId": "i-0123456789abcdef0"},
        "hostInstanceId",
        "only the shared topology",
    ),
    (
        {"hostInstanceId": "i-0123456789abcdef0", "amiId": "ami-0123456789abcdef0"},
        "amiId",
        "adopted host",
    ),
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
    (
        {"services": [{"name": f"service-{i}"} for i in range(MAX_SERVICES + 1)]},
        "services",
        f"at most {MAX_SERVICES} are supported",
    ),
    ({"forceDestroy": "sometimes"}, "forceDestroy", "true or false"),
    ({"services": [{"name": "host"}]}, "services[0].name", "reserved: the check reports"),
    ({"services": [{"name": "a", "versioning": None}]}, "services[0].versioning", "true or"),
    ({"metadataHopLimit": "02"}, "metadataHopLimit", "from 1 to 64"),
    # IAM refuses these when it creates the trust policy, halfway through a deploy.
    ({"trustedPrincipals": [f"{ROLE}/ops/"]}, "trustedPrincipals[0]", "expected an ARN"),
    ({"trustedPrincipals": [f"{ROLE}//op"]}, "trustedPrincipals[0]", "expected an ARN"),
    ({"trustedPrincipals": [f"{ROLE}/op\u00e9rateur"]}, "trustedPrincipals[0]", "expected an"),
    ({"trustedPrincipals": [f"{ROLE}/{'o' * 65}"]}, "trustedPrincipals[0]", "expected an ARN"),
    (
        {
            "trustedPrincipals": [
                "arn:aws:iam::\u0661\u0662\u0663\u0664\u0665\u0666"
                "\u0667\u0668\u0669\u0660\u0661\u0662:role/op"
            ]
        },
        "trustedPrincipals[0]",
        "expected an ARN",
    ),
    (
        {"trustedPrincipals": [f"{ROLE}/{'p/' * 300}op"]},
        "trustedPrincipals[0]",
        "at most 512 characters",
    ),
    (
        {"trustedPrincipals": ["arn:aws:sts::123456789012:assumed-role/op/x"]},
        "trustedPrincipals[0]",
        "expected an ARN",
    ),
    (
        {"trustedPrincipals": [f"{ROLE}/op", f"{ROLE}/op"]},
        "trustedPrincipals[1]",
        "listed twice",
    ),
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


@pytest.mark.parametrize(("overrides", "key", "hint"), BAD, ids=[b[1] + "-" + b[2] for b in BAD])
def test_bad_config_registers_no_resource(overrides: dict[str, Any], key: str, hint: str) -> None:
    """The program validates before registering anything: no partial deploy. The values go
    through Pulumi's own config plumbing (text, JSON for objects), as in `pulumi up`."""
    config = stack_config()
    config.update({f"ec2-assume-role:{k}": v for k, v in overrides.items() if v is not None})
    if overrides.get("services", "") is None:
        del config["ec2-assume-role:services"]
    mocks = RecordingMocks()
    with pytest.raises(ConfigError) as raised:
        evaluate(mocks, config)
    assert f"ec2-assume-role:{key}" in str(raised.value) and hint in str(raised.value)
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
    assert parsed.host_instance_id is None and parsed.metadata_hop_limit == 2
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
        "hostInstanceId": "",
        "metadataHopLimit": defaults.metadata_hop_limit,
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


def test_every_problem_is_reported_at_once_one_line_each() -> None:
    """A user fixes all of them in one go instead of one `pulumi up` per mistake."""
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {
                "services": [{"name": "default"}, {"name": "Bad_Name"}],
                "topolgy": "dedicated",
                "forceDestroy": 0,
            },
            region="mars-north-9",
        )
    lines = str(raised.value).splitlines()
    assert len(lines) == 5, lines
    assert all(line.startswith("invalid config ") for line in lines), lines
    for key in ("aws:region", "services[0].name", "services[1].name", "topolgy", "forceDestroy"):
        assert sum(key in line for line in lines) == 1, (key, lines)


@pytest.mark.parametrize(
    ("region", "message"),
    [
        ("mars-north-9", "not an AWS region name"),
        ("zz-north-1", "not an AWS region name"),
        ("us-east-1\n", "not an AWS region name"),
        ("us-iso-east-1", "isolated partitions are not supported"),
        (None, "not set"),
    ],
)
def test_the_region_is_validated(region: str | None, message: str) -> None:
    """A region that is no AWS region would fail at the provider, halfway through."""
    with pytest.raises(ConfigError, match="invalid config aws:region") as raised:
        parse_config({"services": [{"name": "a"}]}, region=region)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("region", "partition"),
    [("us-east-1", "aws"), ("cn-northwest-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
)
def test_the_partition_follows_the_region(region: str, partition: str) -> None:
    assert parse_config({"services": [{"name": "a"}]}, region=region).partition.value == partition


def test_a_trusted_principal_of_another_partition_is_refused() -> None:
    """IAM in China cannot trust a commercial-partition role, and the reverse."""
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {
                "services": [{"name": "a"}],
                "trustedPrincipals": ["arn:aws:iam::123456789012:role/x"],
            },
            region="cn-north-1",
        )
    assert "ec2-assume-role:trustedPrincipals[0]" in str(raised.value)
    assert "partition aws-cn" in str(raised.value)


def test_unknown_keys_are_refused_when_pulumi_passes_config_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under `pulumi up` the language host hands the program PULUMI_CONFIG; a misspelt key
    there, or a misspelt namespace, must stop the program before any resource."""
    monkeypatch.setenv(
        "PULUMI_CONFIG",
        json.dumps({"ec2-assume-role:topolgy": "dedicated", "ec2-assume-rol:forceDestroy": "true"}),
    )
    mocks = RecordingMocks()
    with pytest.raises(ConfigError) as raised:
        evaluate(mocks, stack_config())
    message = str(raised.value)
    assert "ec2-assume-role:topolgy" in message and "did you mean topology?" in message
    assert "ec2-assume-rol:forceDestroy: unknown namespace" in message
    assert "did you mean ec2-assume-role:forceDestroy?" in message
    assert mocks.resources == []


# One case of each class of refusal: the rehearsal must say exactly what `pulumi up` says.
CLASSES = (
    "required",
    "lowercase",
    "reserved: it would become",
    "unknown key; did you mean topology?",
    "shared or dedicated",
    "from 1 to 64",
    "account root",
    "at most 300 are supported",
)
REHEARSED = [next(b for b in BAD if b[2].startswith(hint)) for hint in CLASSES]


@pytest.mark.parametrize(("overrides", "key", "hint"), REHEARSED, ids=[b[1] for b in REHEARSED])
def test_the_rehearsal_refuses_the_same_configs_with_the_same_messages(
    overrides: dict[str, Any], key: str, hint: str
) -> None:
    from checks.stack_outputs import UsageError
    from rehearsal.run import run_rehearsal

    config = stack_config()
    config.update({f"ec2-assume-role:{k}": v for k, v in overrides.items() if v is not None})
    if overrides.get("services", "") is None:
        del config["ec2-assume-role:services"]
    with pytest.raises(ConfigError) as program:
        evaluate(RecordingMocks(), config)
    with pytest.raises(UsageError) as rehearsal:
        run_rehearsal(config)
    assert str(rehearsal.value) == str(program.value)
    assert f"ec2-assume-role:{key}" in str(rehearsal.value) and hint in str(rehearsal.value)


@pytest.mark.parametrize("through", ["context", "environment"])
def test_a_secret_value_is_named_but_never_shown(
    through: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pulumi config set --secret` on a misspelt or bad key: the program gets the value
    decrypted, and its error must name the key without printing the secret."""
    secret = "s3cr3t-value-never-printed"
    config = stack_config()
    config["ec2-assume-role:trustedPrincipls"] = secret
    config["ec2-assume-role:amiId"] = secret
    keys = ["ec2-assume-role:trustedPrincipls", "ec2-assume-role:amiId"]
    if through == "environment":
        monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(keys))
    mocks = RecordingMocks()
    with pytest.raises(ConfigError) as raised:
        evaluate(mocks, config, secret_keys=keys if through == "context" else ())
    message = str(raised.value)
    assert "ec2-assume-role:trustedPrincipls = [secret]: unknown key" in message, message
    assert "ec2-assume-role:amiId = [secret]: expected an id" in message, message
    assert secret not in message
    assert mocks.resources == []

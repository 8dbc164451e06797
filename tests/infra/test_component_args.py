"""The component's args meet the stack config's rules, with the same messages, naming the arg.

The config and the args share infra/validation.py; these cases show that each rule reaches
the args, that a line names the arg as the caller spelt it (snake_case in Python, the schema's
camelCase when served to another language), and that nothing is registered before every arg
is proven valid.
"""

from __future__ import annotations

import contextvars
import sys
import types
from typing import Any

import pulumi
import pytest
from conftest import RecordingMocks
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from infra import ConfigError, Ec2AssumeRole
from infra.ec2_assume_role_args import Ec2AssumeRoleArgs, schema_name
from infra.settings import KEYS, MAX_SERVICES

OPERATOR = "arn:aws:iam::123456789012:role/operator"
ONE = [{"name": "service-a"}]

BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"services": []}, "services", "non-empty list"),
    ({"services": [{"name": "host"}]}, "services[0].name", "reserved"),
    ({"services": [{"name": "xn--a"}]}, "services[0].name", "S3 reserves"),
    ({"services": [{"name": "Service_A"}]}, "services[0].name", "lowercase"),
    ({"services": [{"name": "a"}, {"name": "a"}]}, "services[1].name", "unique"),
    ({"services": [{"name": "a", "versioning": "true"}]}, "services[0].versioning", "true or"),
    ({"services": [{"name": f"s{i}"} for i in range(MAX_SERVICES + 1)]}, "services", "at most"),
    ({"services": [{"name": "a", "encryption": "aes"}]}, "services[0].encryption", "use s3"),
    (
        {"services": [{"name": "a", "encryption": "kms", "kms_key_arn": "alias/a"}]},
        "services[0].kmsKeyArn",
        "not an alias",
    ),
    ({"topology": "prod"}, "topology", "shared or dedicated"),
    ({"force_destroy": "true"}, "force_destroy", "true or false"),
    ({"metadata_hop_limit": "2"}, "metadata_hop_limit", "from 1 to 64"),
    ({"metadata_hop_limit": 0}, "metadata_hop_limit", "from 1 to 64"),
    ({"instance_type": "large"}, "instance_type", "t3.micro"),
    ({"trusted_principals": ["*"]}, "trusted_principals[0]", "wildcard"),
    ({"trusted_principals": ["arn:aws:iam::123456789012:root"]}, "trusted_principals[0]", "root"),
    (
        {"trusted_principals": ["arn:aws-us-gov:iam::123456789012:role/op"]},
        "trusted_principals[0]",
        "partition aws-us-gov",
    ),
    (
        {"topology": "dedicated", "host_instance_id": "i-0123456789abcdef0"},
        "host_instance_id",
        "only the shared topology",
    ),
    (
        {"host_instance_id": "i-0123456789abcdef0", "ami_id": "ami-0123456789abcdef0"},
        "ami_id",
        "an adopted host (host_instance_id)",
    ),
    ({"trusted_principal": [OPERATOR]}, "trusted_principal", "did you mean trusted_principals?"),
]


def _build(args: dict[str, Any], name: str = "team") -> RecordingMocks:
    """Construct the component under the mocks; what it registered."""
    mocks = RecordingMocks()

    def run() -> None:
        pulumi.runtime.set_all_config({"aws:region": mocks.region}, [])
        pulumi.runtime.set_mocks(mocks, project="consumer", stack="dev", preview=False)
        Ec2AssumeRole(name, args)  # type: ignore[arg-type]
        _sync_await(wait_for_rpcs())

    contextvars.Context().run(run)
    return mocks


def _raised(args: dict[str, Any]) -> tuple[list[str], RecordingMocks]:
    mocks = RecordingMocks()

    def run() -> list[str]:
        pulumi.runtime.set_all_config({"aws:region": mocks.region}, [])
        pulumi.runtime.set_mocks(mocks, project="consumer", stack="dev", preview=False)
        with pytest.raises(ConfigError) as raised:
            Ec2AssumeRole("team", args)  # type: ignore[arg-type]  # bad args on purpose
        return str(raised.value).splitlines()

    return contextvars.Context().run(run), mocks


@pytest.mark.parametrize(("override", "key", "hint"), BAD, ids=[f"{b[1]}-{b[2]}" for b in BAD])
def test_a_bad_arg_is_one_line_naming_it_and_nothing_is_registered(
    override: dict[str, Any], key: str, hint: str
) -> None:
    lines, mocks = _raised({"services": ONE, **override})
    assert len(lines) == 1, lines
    assert lines[0].startswith(f'invalid Ec2AssumeRole "team" arg {key} = '), lines
    assert hint in lines[0], lines
    assert mocks.resources == [], "registered before its args were valid"


def test_every_problem_is_reported_at_once() -> None:
    lines, _ = _raised(
        {"services": [{"name": "default"}], "topology": "both", "trusted_principals": "x"}
    )
    assert len(lines) == 3, lines


def test_an_output_is_refused_before_anything_is_registered() -> None:
    """Args decide how many resources there are and what their policies say, so they must be
    known when the program runs; an Output (another resource's ARN) cannot be validated."""
    lines, mocks = _raised(
        {"services": ONE, "trusted_principals": [pulumi.Output.from_input(OPERATOR)]}
    )
    assert lines == [
        'invalid Ec2AssumeRole "team" arg trusted_principals = an Output: use a plain value; '
        "the component validates its args before it registers anything"
    ]
    assert mocks.resources == []


def test_served_to_another_language_a_line_names_the_schema_s_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through `pulumi package add`, the caller wrote `trustedPrincipals`, so the line says so."""
    host = types.ModuleType("pulumi.provider.experimental.host")
    host.is_hosting = True  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pulumi.provider.experimental.host", host)
    lines, _ = _raised({"services": ONE, "trustedPrincipals": ["*"]})
    assert lines[0].startswith('invalid Ec2AssumeRole "team" arg trustedPrincipals[0] = '), lines


def test_the_args_are_the_stack_config_keys() -> None:
    """One setting, one name per language: the TypedDict's names in camelCase are the keys."""
    assert tuple(schema_name(n) for n in Ec2AssumeRoleArgs.__annotations__) == KEYS


def test_good_args_build_a_stack_with_the_component_s_name_on_its_host() -> None:
    """The host's resources take the component's name, so two in one stack do not collide."""
    mocks = _build({"services": ONE, "trusted_principals": [OPERATOR]}, name="team-a")
    names = {r.name for r in mocks.resources if r.typ == "aws:iam/role:Role"}
    assert names == {"team-a-role", "service-a-role"}

"""AWS's size limits: the largest supported stack fits them all, and a stack past one is refused
up front, naming the key, the count and the limit, with no resource registered."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
from conftest import ACCOUNT, REGION, RecordingMocks, Run, stack_config

from infra.aws_config import render_aws_config, render_install_script
from infra.config import parse_config
from infra.errors import ConfigError
from infra.mock_program import evaluate
from infra.quotas import (
    byte_size,
    document_sizes,
    iam_size,
)
from infra.settings import MAX_SERVICES

LONG_NAMES = [f"s{i:03d}-" + "x" * 27 for i in range(MAX_SERVICES)]
ASSOCIATION = "aws:ssm/association:Association"
OPERATORS = [f"arn:aws:iam::{ACCOUNT}:role/operators/operator-{i:02d}" for i in range(8)]


SAMPLE = 3
"""Services evaluated through the program itself. Every document but the profiles script has
one size per service, whatever the count; the script's size at 300 is measured with the same
renderer the program calls (`test_the_program_renders_what_quotas_measures`)."""


@pytest.fixture(scope="module")
def sample() -> Run:
    """A shared stack of 32-character service names and 8 operators, through the program."""
    assert all(len(name) == 32 for name in LONG_NAMES)
    config = stack_config(LONG_NAMES[:SAMPLE], trustedPrincipals=OPERATORS)
    config["ec2-assume-role:services"][0]["encryption"] = "kms"
    mocks = RecordingMocks()
    return Run(outputs=evaluate(mocks, config), mocks=mocks)


def _sizes(run: Run) -> dict[str, list[tuple[str, int]]]:
    """Every generated document, measured the way AWS measures it, by kind."""
    found: dict[str, list[tuple[str, int]]] = defaultdict(list)
    inline: dict[str, int] = defaultdict(int)
    for r in run.mocks.resources:
        if r.typ == "aws:iam/role:Role":
            found["trust"].append((r.name, iam_size(json.loads(r.inputs["assumeRolePolicy"]))))
        elif r.typ == "aws:iam/rolePolicy:RolePolicy":
            inline[r.inputs["role"]] += iam_size(json.loads(r.inputs["policy"]))
        elif r.typ == "aws:s3/bucketPolicy:BucketPolicy":
            found["bucket"].append((r.name, byte_size(r.inputs["policy"])))
        elif r.typ == "aws:kms/key:Key":
            found["key"].append((r.name, byte_size(r.inputs["policy"])))
        elif r.typ == "aws:ssm/association:Association":
            found["association"].append((r.name, byte_size(r.inputs["parameters"]["commands"])))
    found["inline"] = list(inline.items())
    return found


def _largest(encryption: str) -> Any:
    services = [{"name": n, "encryption": encryption} for n in LONG_NAMES]
    return parse_config({"services": services, "trustedPrincipals": OPERATORS}, region=REGION)


@pytest.mark.parametrize("encryption", ["s3", "kms"])
def test_the_largest_supported_stack_fits_every_aws_limit(encryption: str) -> None:
    """300 services, 32-character names, 8 operators, SSE-S3 or SSE-KMS: every document the
    stack generates is within its limit, measured as AWS measures it."""
    sizes = document_sizes(_largest(encryption), "dev")
    over = [(d.what, d.size, d.limit) for d in sizes if d.size > d.limit]
    assert over == []
    kinds = {d.what for d in sizes}
    assert "the profiles script the SSM association sends to the host" in kinds
    assert ("a service key's policy" in kinds) == (encryption == "kms")


def test_the_program_renders_what_quotas_measures(sample: Run) -> None:
    """The sizes above are of the program's own documents: the association sends exactly what
    the renderer builds from the stack's role ARNs, and nothing larger (a managed policy, user
    data) is generated."""
    (association,) = [r for r in sample.mocks.resources if r.typ == ASSOCIATION]
    arns = {n: s["roleArn"] for n, s in sample.outputs["services"].items()}
    script = render_install_script(render_aws_config(REGION, arns))
    assert association.inputs["parameters"]["commands"] == script
    types = {r.typ for r in sample.mocks.resources}
    assert "aws:iam/policy:Policy" not in types, "no managed policy (6,144 limit) is generated"
    assert not any("userData" in r.inputs for r in sample.mocks.resources), "no user data"


def test_the_up_front_sizes_are_never_smaller_than_the_real_ones(sample: Run) -> None:
    """The config check measures stand-ins of the real values; it must not be optimistic."""
    parsed = parse_config(
        {
            "services": [{"name": n} for n in LONG_NAMES[:SAMPLE]],
            "trustedPrincipals": OPERATORS,
        },
        region=REGION,
    )
    keyed = parse_config(
        {"services": [{"name": LONG_NAMES[0], "encryption": "kms"}]}, region=REGION
    )
    predicted = {d.what: d.size for d in document_sizes(parsed, "dev")}
    predicted_kms = {d.what: d.size for d in document_sizes(keyed, "dev")}
    real = _sizes(sample)
    assert len(real["trust"]) == SAMPLE + 1 and len(real["bucket"]) == SAMPLE
    host_trust = dict(real["trust"])["dev-host-role"]
    assert predicted["the host role's trust policy"] >= host_trust
    service_trust = max(size for name, size in real["trust"] if name != "dev-host-role")
    assert predicted["a service role's trust policy"] >= service_trust
    service_inline = max(size for role, size in real["inline"] if "dev-host" not in role)
    assert predicted_kms["a service role's inline policies"] >= service_inline
    assert predicted_kms["a bucket policy"] >= max(size for _, size in real["bucket"])
    assert predicted_kms["a service key's policy"] >= max(size for _, size in real["key"])
    (association,) = real["association"]
    script = predicted["the profiles script the SSM association sends to the host"]
    assert script >= association[1], "the mocks' suffixes compress better than random ones"


def _long_principals(count: int) -> list[str]:
    return [
        f"arn:aws:iam::{ACCOUNT}:role/team/ops/operator-{i:03d}-{'p' * 24}" for i in range(count)
    ]


def test_too_many_trusted_principals_are_refused_naming_count_and_limit() -> None:
    """The host role's trust policy passes 2,048 characters at about 30 long ARNs."""
    mocks = RecordingMocks()
    with pytest.raises(ConfigError) as raised:
        evaluate(mocks, stack_config(trustedPrincipals=_long_principals(40)))
    (line,) = str(raised.value).splitlines()
    assert line.startswith("invalid config ec2-assume-role:trustedPrincipals = 40 principals:")
    assert "the host role's trust policy would be" in line and "AWS allows 2,048" in line
    assert mocks.resources == []


def test_just_under_the_trust_limit_is_accepted() -> None:
    """The limit is exact, not a guess: the last count that fits is accepted."""
    fits = [n for n in range(1, 40) if _fits(n)]
    assert fits and fits == list(range(1, fits[-1] + 1))
    assert not _fits(fits[-1] + 1)


def _fits(count: int) -> bool:
    try:
        parse_config({"services": [{"name": "a"}], "trustedPrincipals": _long_principals(count)})
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]
)
@pytest.mark.parametrize("topology", ["shared", "dedicated"])
def test_china_and_govcloud_get_no_commercial_arn(
    region: str, partition: str, topology: str
) -> None:
    """Every ARN the program builds uses the region's partition; one `arn:aws:` would fail
    halfway through a deploy there."""
    config = stack_config(("service-a", "service-b"), topology=topology)
    config["aws:region"] = region
    if topology == "shared":
        config["ec2-assume-role:trustedPrincipals"] = [f"arn:{partition}:iam::{ACCOUNT}:role/ops"]
    mocks = RecordingMocks(region)
    outputs = evaluate(mocks, config)
    inputs: Any = [dict(r.inputs) for r in mocks.resources]
    text = json.dumps(inputs) + json.dumps(outputs)
    assert "arn:aws:" not in text
    assert f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore" in text
    assert outputs["partition"] == partition

"""SSE-KMS buckets under the mocks: the key, its policy, the bucket's default encryption, the
bucket policy's Denies, the role's conditioned grant, partitions, and the config's rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from infra import policies
from infra.errors import ConfigError
from infra.mock_program import evaluate
from infra.quotas import document_sizes
from infra.validation import validate
from tests.conftest import (
    ACCOUNT,
    BROUGHT_KEY,
    REGION,
    RecordingMocks,
    Run,
    key_arn_of,
    physical,
    stack_config,
)

KEY = "kms:EncryptionContext:aws:s3:arn"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


def kms_config(region: str = REGION, **extra: Any) -> dict[str, Any]:
    config = stack_config(**extra)
    config["aws:region"] = region
    config["ec2-assume-role:services"] = [
        {"name": "made", "encryption": "kms"},
        {"name": "brought", "encryption": "kms", "kmsKeyArn": BROUGHT_KEY},
        {"name": "plain"},
    ]
    return config


def grant_of(run: Run, service: str) -> dict[str, Any]:
    policy = run.named("aws:iam/rolePolicy:RolePolicy", f"{service}-bucket-access")
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


@pytest.mark.parametrize("topology", ["shared", "dedicated"])
def test_a_created_key_rotates_and_names_only_the_account(
    run_program: Callable[[dict[str, Any]], Run], topology: str
) -> None:
    run = run_program(kms_config(topology=topology))
    (key,) = run.of_type("aws:kms/key:Key")
    assert key.name == "made-key"
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["rotationPeriodInDays"] == 365
    assert key.inputs["deletionWindowInDays"] == 30
    (statement,) = json.loads(key.inputs["policy"])["Statement"]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert statement["Action"] == "kms:*" and statement["Effect"] == "Allow"
    services = run.outputs["services"]
    assert services["made"]["kmsKeyArn"] == key_arn_of("made-key")
    assert services["brought"]["kmsKeyArn"] == BROUGHT_KEY
    assert "kmsKeyArn" not in services["plain"]


def test_each_kms_bucket_encrypts_with_its_key_and_a_bucket_key(
    run_program: Callable[[dict[str, Any]], Run],
) -> None:
    run = run_program(kms_config())
    rules = {r.name: r.inputs["rules"] for r in run.of_type(SSE)}
    assert set(rules) == {"made-encryption", "brought-encryption"}, "SSE-S3 needs no resource"
    for name, key in (("made", key_arn_of("made-key")), ("brought", BROUGHT_KEY)):
        (rule,) = rules[f"{name}-encryption"]
        assert rule["bucketKeyEnabled"] is True
        assert rule["applyServerSideEncryptionByDefault"] == {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": key,
        }
        policy = run.named("aws:s3/bucketPolicy:BucketPolicy", f"{name}-tls-only")
        statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
        other_key = statements["DenyOtherKeys"]["Condition"]
        assert other_key["StringNotEquals"] == {
            "s3:x-amz-server-side-encryption-aws-kms-key-id": key
        }
        # Only a put that asks for something else: one relying on the default is let through.
        assert other_key["Null"] == {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"}
        assert statements["DenyOtherEncryption"]["Condition"]["StringNotEquals"] == {
            "s3:x-amz-server-side-encryption": "aws:kms"
        }
    plain = run.named("aws:s3/bucketPolicy:BucketPolicy", "plain-tls-only")
    assert [s["Sid"] for s in json.loads(plain.inputs["policy"])["Statement"]] == [
        "DenyInsecureTransport"
    ]


def test_the_role_uses_its_key_only_through_s3_for_its_own_bucket(
    run_program: Callable[[dict[str, Any]], Run],
) -> None:
    run = run_program(kms_config())
    for name, key in (("made", key_arn_of("made-key")), ("brought", BROUGHT_KEY)):
        use = grant_of(run, name)["UseOwnKeyThroughS3"]
        assert use["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]
        assert use["Resource"] == key
        assert use["Condition"]["StringEquals"] == {
            "kms:ViaService": f"s3.{REGION}.amazonaws.com",
            KEY: f"arn:aws:s3:::{physical(f'{name}-bucket')}",
        }
    assert "UseOwnKeyThroughS3" not in grant_of(run, "plain")
    # A brought key's policy is the user's: the stack creates none for it.
    assert [k.name for k in run.of_type("aws:kms/key:Key")] == ["made-key"]


@pytest.mark.parametrize(
    ("region", "partition", "suffix"),
    [
        ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
    ],
)
def test_kms_arns_and_the_s3_endpoint_follow_the_partition(
    run_program: Callable[[dict[str, Any]], Run], region: str, partition: str, suffix: str
) -> None:
    config = stack_config(("made",))
    config["aws:region"] = region
    config["ec2-assume-role:services"] = [{"name": "made", "encryption": "kms"}]
    run = run_program(config)
    (key,) = run.of_type("aws:kms/key:Key")
    (statement,) = json.loads(key.inputs["policy"])["Statement"]
    assert statement["Principal"]["AWS"] == f"arn:{partition}:iam::{ACCOUNT}:root"
    use = grant_of(run, "made")["UseOwnKeyThroughS3"]
    assert use["Resource"] == key_arn_of("made-key", region, partition)
    assert use["Condition"]["StringEquals"]["kms:ViaService"] == f"s3.{region}.{suffix}"
    assert use["Condition"]["StringEquals"][KEY].startswith(f"arn:{partition}:s3:::")


OTHER_REGION = BROUGHT_KEY.replace(REGION, "us-east-2")


@pytest.mark.parametrize(
    ("service", "where", "says"),
    [
        ({"name": "a", "encryption": "KMS"}, "services[0].encryption = 'KMS'", "use s3"),
        ({"name": "a", "encryption": None}, "services[0].encryption = null", "use s3"),
        ({"name": "a", "kmsKeyArn": BROUGHT_KEY}, "services[0].kmsKeyArn", "encryption: kms"),
        (
            {"name": "a", "encryption": "kms", "kmsKeyArn": OTHER_REGION},
            "services[0].kmsKeyArn",
            f"the key is in us-east-2; S3 needs a key of {REGION}",
        ),
        (
            {
                "name": "a",
                "encryption": "kms",
                "kmsKeyArn": BROUGHT_KEY.replace(":aws:", ":aws-cn:"),
            },
            "services[0].kmsKeyArn",
            "partition aws; the key is in aws-cn",
        ),
        (
            {"name": "a", "encryption": "kms", "kmsKeyArn": BROUGHT_KEY.rsplit("/")[0] + "/x"},
            "services[0].kmsKeyArn",
            "expected a key ARN like",
        ),
        (
            {"name": "a", "encryption": "kms", "kmsKeyArn": f"arn:aws:kms:{REGION}:1:alias/a"},
            "services[0].kmsKeyArn",
            "not an alias",
        ),
        (
            {"name": "a", "encryption": "kms", "kmsKeyArn": 7},
            "services[0].kmsKeyArn = 7",
            "expected a key ARN",
        ),
    ],
)
def test_bad_encryption_settings_are_one_line_each(
    service: dict[str, Any], where: str, says: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        validate({"services": [service]}, region=REGION)
    (line,) = str(raised.value).splitlines()
    assert f"ec2-assume-role:{where}" in line and says in line, line


def test_a_brought_key_that_does_not_exist_stops_the_program_before_any_resource() -> None:
    config = kms_config()
    missing = BROUGHT_KEY.replace("1234abcd", "00000000")
    config["ec2-assume-role:services"][1]["kmsKeyArn"] = missing
    mocks = RecordingMocks()
    with pytest.raises(ConfigError) as raised:
        evaluate(mocks, config)
    (line,) = str(raised.value).splitlines()
    assert f"services[1].kmsKeyArn = {missing!r}: no such key" in line, line
    assert "NotFoundException" in line
    assert [r.typ for r in mocks.resources] == [], "nothing is registered"


def test_a_brought_key_of_another_account_is_refused_before_any_resource() -> None:
    """KMS would serve it across accounts, but the reach proof could not read its policy."""
    foreign = BROUGHT_KEY.replace(ACCOUNT, "999999999999")
    mocks = RecordingMocks()
    mocks.keys[foreign] = {**mocks.keys[BROUGHT_KEY], "arn": foreign}
    config = kms_config()
    config["ec2-assume-role:services"][1]["kmsKeyArn"] = foreign
    with pytest.raises(ConfigError) as raised:
        evaluate(mocks, config)
    (line,) = str(raised.value).splitlines()
    assert f"services[1].kmsKeyArn = {foreign!r}: the key is in account 999999999999" in line
    assert f"the stack deploys to {ACCOUNT}" in line
    assert mocks.resources == []


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ({"keyState": "PendingDeletion"}, "the key is PendingDeletion; S3 needs an enabled key"),
        ({"keySpec": "RSA_2048"}, "a RSA_2048 key for ENCRYPT_DECRYPT; S3 encrypts only"),
        ({"keyUsage": "SIGN_VERIFY"}, "for SIGN_VERIFY; S3 encrypts only with a symmetric"),
    ],
)
def test_a_brought_key_s3_cannot_use_is_refused(state: dict[str, str], says: str) -> None:
    mocks = RecordingMocks()
    mocks.keys[BROUGHT_KEY] = {**mocks.keys[BROUGHT_KEY], **state}
    with pytest.raises(ConfigError) as raised:
        evaluate(mocks, kms_config())
    assert says in str(raised.value), raised.value
    assert mocks.resources == []


def test_the_key_documents_are_sized_against_their_limits() -> None:
    plain = validate({"services": [{"name": "a" * 32}]}, region=REGION)
    kms = validate({"services": [{"name": "a" * 32, "encryption": "kms"}]}, region=REGION)
    before = {d.what: d for d in document_sizes(plain, "dev")}
    sizes = {d.what: d for d in document_sizes(kms, "dev")}
    assert "a service key's policy" not in before
    key = sizes["a service key's policy"]
    assert key.limit == 32 * 1024 and 0 < key.size < key.limit
    use = policies.key_use_statement(BROUGHT_KEY, "arn:aws:s3:::b", "s3.eu-west-1.amazonaws.com")
    for what in ("a service role's inline policies", "a bucket policy"):
        assert sizes[what].size > before[what].size, what
    grown = (
        sizes["a service role's inline policies"].size
        - before[what := "a service role's inline policies"].size
    )
    assert grown >= len(json.dumps(use).replace(" ", "")) - 40, (what, grown)

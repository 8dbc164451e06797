"""The AWS trust rules (`checks.trust`) and the moto fixture that applies them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.exceptions import ClientError

from checks.trust import principal_matches, role_of, stale_principals, trust_allows
from infra import policies
from rehearsal.moto_rules import aws_iam_rules, aws_policy_rules

ACCT = "123456789012"
HOST = f"arn:aws:iam::{ACCT}:role/dev-host-role"
SESSION = f"arn:aws:sts::{ACCT}:assumed-role/dev-host-role/i-0123456789abcdef0"

EC2 = "ec2.amazonaws.com"


@pytest.mark.parametrize(
    ("principal", "caller", "expected"),
    [
        (HOST, SESSION, True),  # a role ARN matches every session of that role
        (f"arn:aws:iam::{ACCT}:role/path/dev-host-role", SESSION, True),
        (f"arn:aws:iam::{ACCT}:role/other-role", SESSION, False),
        (f"arn:aws:iam::{ACCT}:root", SESSION, True),  # root: any principal of the account
        (ACCT, SESSION, True),
        ("999999999999", SESSION, False),
        ("arn:aws:iam::999999999999:root", SESSION, False),
        ("*", SESSION, True),
        (f"arn:aws:iam::{ACCT}:user/ops", f"arn:aws:iam::{ACCT}:user/ops", True),
        (f"arn:aws:iam::{ACCT}:user/ops", f"arn:aws:iam::{ACCT}:user/dev", False),
        (SESSION, SESSION, True),
    ],
)
def test_principal_matching_follows_aws(principal: str, caller: str, expected: bool) -> None:
    """These are AWS's documented rules for the AWS principal element."""
    assert principal_matches(principal, caller) is expected


def test_service_only_statement_is_neutral_not_a_denial() -> None:
    """moto denies (or crashes) on a Service-only statement; AWS treats it as not applying."""
    assert trust_allows(policies.trust_policy(EC2, [HOST]), SESSION)
    assert not trust_allows(policies.trust_policy(EC2), SESSION)


def test_explicit_deny_wins() -> None:
    """A matching Deny beats any Allow, as in AWS."""
    document = policies.trust_policy(EC2, [HOST])
    document["Statement"].append(
        {"Effect": "Deny", "Principal": {"AWS": HOST}, "Action": "sts:AssumeRole"}
    )
    assert not trust_allows(document, SESSION)


def test_url_encoded_documents_and_stale_ids() -> None:
    """Raw IAM APIs return documents URL-encoded; a deleted principal shows as its unique id."""
    document = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "AROAEXAMPLEID12345678"}, "Action": "sts:*"}
        ]
    }
    encoded = quote(json.dumps(document))
    assert stale_principals(encoded) == ["AROAEXAMPLEID12345678"]
    assert not trust_allows(encoded, SESSION)
    assert role_of(SESSION) == HOST
    assert role_of(f"arn:aws:iam::{ACCT}:user/ops") is None


def _chain_world() -> tuple[Any, str, str]:
    """A host role session and a target role whose trust names the host role by ARN."""
    iam = boto3.client("iam", region_name="us-east-1")
    host = iam.create_role(
        RoleName="dev-host-role", AssumeRolePolicyDocument=json.dumps(policies.trust_policy(EC2))
    )["Role"]
    target = iam.create_role(
        RoleName="target",
        Path=policies.service_role_path("dev"),
        AssumeRolePolicyDocument=json.dumps(policies.trust_policy(EC2, [host["Arn"]])),
    )["Role"]
    iam.put_role_policy(
        RoleName="dev-host-role",
        PolicyName="assume",
        PolicyDocument=json.dumps(
            policies.assume_roles_policy(policies.service_roles_arn("aws", ACCT, "dev"))
        ),
    )
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=host["Arn"], RoleSessionName="i-0123456789abcdef0"
    )["Credentials"]
    sts = boto3.client(
        "sts",
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return sts, target["Arn"], target["RoleName"]


def test_fixture_allows_a_valid_role_chain(aws: None) -> None:
    """With the fixture, the host role session assumes a role that trusts the host role."""
    sts, target, _ = _chain_world()
    with aws_iam_rules():
        assumed = sts.assume_role(RoleArn=target, RoleSessionName="check")
    assert assumed["AssumedRoleUser"]["Arn"].endswith(":assumed-role/target/check")


def test_fixture_denies_when_the_trust_does_not_name_the_caller(aws: None) -> None:
    """The fixture is not permissive: the resource side is still enforced."""
    sts, target, name = _chain_world()
    boto3.client("iam", region_name="us-east-1").update_assume_role_policy(
        RoleName=name, PolicyDocument=json.dumps(policies.trust_policy(EC2))
    )
    with aws_iam_rules(), pytest.raises(ClientError, match="AccessDenied"):
        sts.assume_role(RoleArn=target, RoleSessionName="check")


def test_fixture_accepts_the_account_root_principal(aws: None) -> None:
    """`arn:aws:iam::ACCT:root` in a trust delegates to the account's own IAM policies."""
    sts, target, name = _chain_world()
    root = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    boto3.client("iam", region_name="us-east-1").update_assume_role_policy(
        RoleName=name, PolicyDocument=json.dumps(root)
    )
    with aws_iam_rules():
        assert sts.assume_role(RoleArn=target, RoleSessionName="check")["Credentials"]


def test_moto_alone_denies_the_valid_chain(aws: None) -> None:
    """The quirk the fixture exists for. If moto fixes it, this test says the fixture can go."""
    from moto.core.authorization import enable_iam_authentication

    sts, target, _ = _chain_world()
    with enable_iam_authentication(), pytest.raises((ClientError, TypeError)):
        sts.assume_role(RoleArn=target, RoleSessionName="check")


def test_fixture_restores_moto_afterwards(aws: None) -> None:
    """The patch is scoped to the block: nothing leaks into later tests."""
    from moto.iam.access_control import IAMRequestBase

    before = IAMRequestBase._check_role_trust_relationship
    with aws_iam_rules():
        assert IAMRequestBase._check_role_trust_relationship is not before
    assert IAMRequestBase._check_role_trust_relationship is before


def test_bucket_policy_rules_let_tls_requests_through_the_tls_only_policy() -> None:
    """moto would deny every object request under the TLS-only policy; AWS does not, since
    SDK requests use TLS. The fixture evaluates the condition with that request context."""
    from checks.trust import Effect
    from rehearsal.moto_rules import bucket_policy_effect

    bucket = "arn:aws:s3:::b"
    tls_only = policies.tls_only_bucket_policy(bucket)
    assert bucket_policy_effect(tls_only, "s3:GetObject", f"{bucket}/k") is None
    plain_http = {
        **tls_only["Statement"][0],
        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
    }
    denied = {"Version": "2012-10-17", "Statement": [plain_http]}
    assert bucket_policy_effect(denied, "s3:GetObject", f"{bucket}/k") is Effect.DENY
    assert bucket_policy_effect(denied, "s3:GetObject", "arn:aws:s3:::other/k") is None
    exotic = {**plain_http, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    with pytest.raises(ValueError, match="IpAddress"):
        bucket_policy_effect({"Statement": [exotic]}, "s3:GetObject", f"{bucket}/k")


def test_fixture_applies_the_bucket_policy_rules_in_moto(aws: None) -> None:
    """With the fixture, the TLS-only policy no longer blocks an SDK request in moto."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="tls-bucket")
    policy = policies.tls_only_bucket_policy("arn:aws:s3:::tls-bucket")
    s3.put_bucket_policy(Bucket="tls-bucket", Policy=json.dumps(policy))
    with pytest.raises(ClientError):
        s3.put_object(Bucket="tls-bucket", Key="k", Body=b"x")  # moto's own evaluation
    with aws_policy_rules():
        s3.put_object(Bucket="tls-bucket", Key="k", Body=b"x")
        assert s3.get_object(Bucket="tls-bucket", Key="k")["Body"].read() == b"x"

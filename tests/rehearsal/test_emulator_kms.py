"""The emulator's KMS rules (`rehearsal.moto_kms_rules`): each fails without the fixture.

moto 5.2.5 lets a role with only `s3:PutObject` write to an SSE-KMS bucket (even one naming a
key that does not exist) and read it back without `kms:Decrypt`, never evaluates a key
policy, and authorizes KMS's own API against resource `*`. Each world is built as an
administrator, then used under `aws_iam_rules()` by sessions of roles.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra import policies
from rehearsal.moto_kms_rules import key_allows
from rehearsal.moto_rules import aws_iam_rules, aws_policy_rules

ACCT = "123456789012"
REGION = "us-east-1"
BUCKET = "kms-bucket"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
ROOT = f"arn:aws:iam::{ACCT}:root"
VIA_S3 = policies.s3_via_service(REGION, "aws")
OBJECTS = {
    "Effect": "Allow",
    "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
    "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def denial(call: Callable[[], Any]) -> str | None:
    """The error code and message S3 or KMS answered with, or None when it succeeded."""
    try:
        call()
    except ClientError as err:
        return f"{err.response['Error']['Code']}: {err.response['Error'].get('Message', '')}"
    return None


class World:
    """A key, an SSE-KMS bucket defaulting to it (with a Bucket Key), and roles."""

    def __init__(self, key_policy: str | None = None, bucket_key: bool = True) -> None:
        self.iam = boto3.client("iam", region_name=REGION)
        self.kms = boto3.client("kms", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sts = boto3.client("sts", region_name=REGION)
        policy = key_policy or json.dumps(policies.key_policy(ROOT))
        self.key = self.kms.create_key(Policy=policy)["KeyMetadata"]["Arn"]
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_encryption(
            Bucket=BUCKET,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": self.key,
                        },
                        "BucketKeyEnabled": bucket_key,
                    }
                ]
            },
        )
        # Before the bucket policy: moto's own bucket-policy check (outside the rules) would
        # take its TLS-only Deny for a denial of every request.
        self.s3.put_object(Bucket=BUCKET, Key="existing", Body=b"data")
        self.s3.put_bucket_policy(
            Bucket=BUCKET, Policy=json.dumps(policies.tls_only_bucket_policy(BUCKET_ARN, self.key))
        )

    def use(self) -> dict[str, Any]:
        return policies.key_use_statement(self.key, BUCKET_ARN, VIA_S3)

    def role(self, name: str, *statements: dict[str, Any]) -> str:
        trust = document(
            {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}
        )
        arn = str(
            self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        )
        if statements:
            self.iam.put_role_policy(
                RoleName=name, PolicyName="identity", PolicyDocument=document(*statements)
            )
        return arn

    def client(self, service: str, name: str) -> Any:
        credentials = self.sts.assume_role(
            RoleArn=f"arn:aws:iam::{ACCT}:role/{name}", RoleSessionName=f"{name}-session"
        )["Credentials"]
        return boto3.client(
            service,
            region_name=REGION,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )


@pytest.fixture
def world(aws: None) -> Callable[..., World]:
    return World


def test_an_sse_kms_put_and_get_need_the_key_grant(world: Callable[..., World]) -> None:
    built = world()
    built.role("bare", OBJECTS)
    built.role("owner", OBJECTS, built.use())
    bare, owner = built.client("s3", "bare"), built.client("s3", "owner")
    with aws_iam_rules():
        refused = denial(lambda: bare.put_object(Bucket=BUCKET, Key="k", Body=b"x"))
        assert refused is not None and refused.startswith("AccessDenied")
        assert f"kms:GenerateDataKey on resource: {built.key}" in refused
        read = denial(lambda: bare.get_object(Bucket=BUCKET, Key="existing"))
        assert read is not None and f"kms:Decrypt on resource: {built.key}" in read
        assert denial(lambda: owner.put_object(Bucket=BUCKET, Key="k", Body=b"x")) is None
        body = owner.get_object(Bucket=BUCKET, Key="k")
        assert body["Body"].read() == b"x" and body["ServerSideEncryption"] == "aws:kms"
        assert body["SSEKMSKeyId"] == built.key


def test_without_the_fixture_moto_lets_a_role_with_no_key_grant_in(
    world: Callable[..., World],
) -> None:
    """The gap the fixture closes: the same put, with moto's own rules, succeeds."""
    from moto.core.authorization import enable_iam_authentication

    built = world()
    built.role("bare", OBJECTS)
    bare = built.client("s3", "bare")
    # Without the rules moto would take the TLS-only Deny for a denial of everything.
    built.s3.delete_bucket_policy(Bucket=BUCKET)
    with enable_iam_authentication():
        assert denial(lambda: bare.put_object(Bucket=BUCKET, Key="k", Body=b"x")) is None


def test_the_encryption_context_is_the_bucket_with_a_bucket_key_the_object_without(
    world: Callable[..., World],
) -> None:
    built = world(bucket_key=False)
    built.role("owner", OBJECTS, built.use())
    owner = built.client("s3", "owner")
    with aws_iam_rules():
        # The grant names the bucket's ARN: without a Bucket Key S3 sends the object's.
        refused = denial(lambda: owner.put_object(Bucket=BUCKET, Key="k", Body=b"x"))
        assert refused is not None and "kms:GenerateDataKey" in refused


def test_a_put_naming_a_key_that_does_not_exist_is_refused(world: Callable[..., World]) -> None:
    built = world()
    built.role("owner", OBJECTS, built.use())
    owner = built.client("s3", "owner")
    missing = built.key.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    built.s3.delete_bucket_policy(Bucket=BUCKET)  # only the key is in question here
    with aws_iam_rules():
        refused = denial(
            lambda: owner.put_object(
                Bucket=BUCKET,
                Key="k",
                Body=b"x",
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=missing,
            )
        )
    assert refused is not None and refused.startswith("KMS.NotFoundException"), refused


def test_a_key_that_is_not_enabled_refuses_the_put_as_s3_does(world: Callable[..., World]) -> None:
    built = world()
    built.role("owner", OBJECTS, built.use())
    owner = built.client("s3", "owner")
    built.kms.disable_key(KeyId=built.key.rsplit("/", 1)[1])  # moto needs the id here
    with aws_iam_rules():
        refused = denial(lambda: owner.put_object(Bucket=BUCKET, Key="k", Body=b"x"))
    assert refused is not None and refused.startswith("KMS.DisabledException"), refused


def test_a_key_policy_for_the_account_through_s3_lets_the_owner_in(
    world: Callable[..., World],
) -> None:
    """The common key policy `anyone of this account, through S3` is evaluated with S3's
    context (kms:CallerAccount, kms:ViaService), not refused for want of it."""
    policy = document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": ACCT, "kms:ViaService": VIA_S3}},
        }
    )
    built = world(key_policy=policy)
    built.role("owner", OBJECTS)
    owner = built.client("s3", "owner")
    with aws_iam_rules():
        assert denial(lambda: owner.put_object(Bucket=BUCKET, Key="k", Body=b"x")) is None


def test_the_bucket_policy_refuses_another_key_or_other_encryption(
    world: Callable[..., World],
) -> None:
    built = world()
    other = built.kms.create_key(Policy=json.dumps(policies.key_policy(ROOT)))["KeyMetadata"]["Arn"]
    anywhere = {
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "*",
    }
    built.role("owner", OBJECTS, anywhere)
    owner = built.client("s3", "owner")
    with aws_iam_rules():
        assert denial(lambda: owner.put_object(Bucket=BUCKET, Key="a", Body=b"x")) is None
        for asked in (
            {"ServerSideEncryption": "AES256"},
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": other},
            {"ServerSideEncryption": "aws:kms"},  # no key named: S3 may use aws/s3
            {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32},  # SSE-C
        ):
            refused = denial(
                lambda a=asked: owner.put_object(Bucket=BUCKET, Key="b", Body=b"x", **a)
            )
            assert refused is not None and refused.startswith("AccessDenied"), (asked, refused)
        named = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": built.key}
        assert denial(lambda: owner.put_object(Bucket=BUCKET, Key="c", Body=b"x", **named)) is None


def test_a_key_policy_that_does_not_delegate_to_iam_keeps_an_iam_grant_out(
    world: Callable[..., World],
) -> None:
    """The account-root statement is what lets IAM grant the key: without it, only those the
    key policy names may use it."""
    named = f"arn:aws:iam::{ACCT}:role/named"
    policy = document(
        {"Effect": "Allow", "Principal": {"AWS": named}, "Action": "kms:*", "Resource": "*"}
    )
    built = world(key_policy=policy)
    built.role("iam-only", OBJECTS, built.use())
    built.role("named", OBJECTS)
    iam_only, by_key = built.client("s3", "iam-only"), built.client("s3", "named")
    with aws_iam_rules():
        assert denial(lambda: iam_only.put_object(Bucket=BUCKET, Key="k", Body=b"x")) is not None
        assert denial(lambda: by_key.put_object(Bucket=BUCKET, Key="k", Body=b"x")) is None


def test_a_grant_lets_its_grantee_use_the_key(world: Callable[..., World]) -> None:
    built = world()
    grantee = built.role("grantee", OBJECTS)
    built.kms.create_grant(
        KeyId=built.key, GranteePrincipal=grantee, Operations=["GenerateDataKey", "Decrypt"]
    )
    client = built.client("s3", "grantee")
    with aws_iam_rules():
        assert denial(lambda: client.put_object(Bucket=BUCKET, Key="k", Body=b"x")) is None


def test_kms_requests_are_authorized_against_the_key_and_its_policy(
    world: Callable[..., World],
) -> None:
    """Direct calls: an identity grant naming the key ARN counts (moto matched it against
    `*`), the project's `kms:ViaService` condition keeps a direct call out, and a key policy
    Deny wins."""
    built = world()
    built.role(
        "direct", {"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": built.key}
    )
    built.role("through-s3", OBJECTS, built.use())
    direct, through = built.client("kms", "direct"), built.client("kms", "through-s3")
    with aws_iam_rules():
        assert denial(lambda: direct.generate_data_key(KeyId=built.key, KeySpec="AES_256")) is None
        refused = denial(lambda: through.generate_data_key(KeyId=built.key, KeySpec="AES_256"))
        # moto serializes KMS's AccessDenied as XML, which botocore reports under code 403.
        assert refused is not None and "<Code>AccessDenied</Code>" in refused, refused
    deny = {"Effect": "Deny", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}
    assert not key_allows(
        caller_arn=f"arn:aws:sts::{ACCT}:assumed-role/direct/s",
        action="kms:GenerateDataKey",
        key_arn=built.key,
        key_policy=document(*policies.key_policy(ROOT)["Statement"], deny),
        identity_policies=[document({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})],
    )


def test_the_rules_come_off_again(world: Callable[..., World]) -> None:
    from moto.iam.access_control import IAMRequest
    from moto.kms.responses import KmsResponse
    from moto.s3.responses import S3Response

    before = (S3Response.put_object, S3Response.get_object, IAMRequest.check_action_permitted)
    with aws_policy_rules(), aws_policy_rules():
        assert S3Response.put_object is not before[0]
    assert (S3Response.put_object, S3Response.get_object) == before[:2]
    assert IAMRequest.check_action_permitted is before[2]
    assert "_determine_resource" not in KmsResponse.__dict__

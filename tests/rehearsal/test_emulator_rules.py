"""Two rules the emulator fixture (`rehearsal.moto_rules`) adds to moto 5.2.5, beyond trust.

1. A bucket policy that names a principal is a grant (or a denial) of its own. moto honours a
   bucket policy's Allow only for `Principal: "*"` on unsigned requests, so in the emulator a
   role reached a bucket only through its identity policies; on AWS, in one account, a bucket
   policy naming the role is enough. A check that proves isolation must see such a grant.
2. GetAccountAuthorizationDetails names each managed policy (`PolicyName`, `PolicyId`), as
   IAM does; moto leaves both out, so a reader of that document could not say which policy an
   entry is except by parsing its ARN.

Each world is built with enforcement off (as an administrator deploys it), then used with
`aws_iam_rules()` by sessions of roles, obtained as an instance gets one: AssumeRole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from checks.trust import Effect
from infra import policies
from rehearsal.moto_rules import aws_iam_rules, aws_policy_rules, bucket_policy_effect

ACCT = "123456789012"
REGION = "us-east-1"
BUCKET = "emulated-bucket"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
KEY = "data/object.txt"
BODY = b"an object that exists\n"
ROOT = f"arn:aws:iam::{ACCT}:root"
SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCT}:role/{name}"


def session_arn(name: str, session: str) -> str:
    return f"arn:aws:sts::{ACCT}:assumed-role/{name}/{session}"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def grant(
    principal: Any, action: str | list[str], resource: str | list[str], effect: str = "Allow"
) -> dict[str, Any]:
    """One bucket policy statement naming `principal` (a string goes under `AWS`)."""
    named = {"AWS": principal} if isinstance(principal, str | list) else principal
    return {"Effect": effect, "Principal": named, "Action": action, "Resource": resource}


Client = Any
Sessions = Callable[..., dict[str, Client]]


@pytest.fixture
def world(aws: None) -> Sessions:
    """Build a bucket with one object, and roles; return S3 clients of their sessions.

    `world(bucket_policy, roles={name: identity statements}, sessions={label: (role, name)})`
    returns one S3 client per session label (by default one session per role, labelled with
    the role's name). Everything is created before enforcement starts.
    """

    def build(
        bucket_policy: dict[str, Any] | str | None,
        roles: dict[str, Sequence[dict[str, Any]]],
        sessions: dict[str, tuple[str, str]] | None = None,
    ) -> dict[str, Client]:
        iam = boto3.client("iam", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        sts = boto3.client("sts", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
        s3.put_object(Bucket=BUCKET, Key=f"secret/{KEY}", Body=BODY)
        if bucket_policy is not None:
            text = bucket_policy if isinstance(bucket_policy, str) else json.dumps(bucket_policy)
            s3.put_bucket_policy(Bucket=BUCKET, Policy=text)
        trust = document(
            {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}
        )
        for name, statements in roles.items():
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
            if statements:
                iam.put_role_policy(
                    RoleName=name, PolicyName="identity", PolicyDocument=document(*statements)
                )
        wanted = sessions or {name: (name, f"{name}-session") for name in roles}
        clients = {}
        for label, (name, session) in wanted.items():
            credentials = sts.assume_role(RoleArn=role_arn(name), RoleSessionName=session)[
                "Credentials"
            ]
            clients[label] = boto3.client(
                "s3",
                region_name=REGION,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
        return clients

    return build


def bucket_policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def denied(call: Callable[[], Any]) -> bool:
    """Whether S3 answered the call with a 403 (AccessDenied)."""
    try:
        call()
    except ClientError as error:
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == 403, error.response
        return True
    return False


def can_get(s3: Client, key: str = KEY) -> bool:
    return not denied(lambda: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def can_put(s3: Client, key: str = KEY) -> bool:
    return not denied(lambda: s3.put_object(Bucket=BUCKET, Key=key, Body=BODY))


def can_list(s3: Client) -> bool:
    return not denied(lambda: s3.list_objects_v2(Bucket=BUCKET))


IDENTITY_GRANT = [
    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET_ARN},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"{BUCKET_ARN}/*"},
]


# 1. Bucket policies that name a principal


def test_a_bucket_policy_naming_a_role_grants_it_without_an_identity_grant(
    world: Sessions,
) -> None:
    """On AWS, in one account, a bucket policy that names a role lets every session of that
    role in, even with no identity policy at all: the check's isolation probes must see such
    a leak in the emulator too, and another role, not named, must stay out."""
    clients = world(
        bucket_policy(
            grant(role_arn("named"), ["s3:GetObject", "s3:PutObject"], f"{BUCKET_ARN}/*")
        ),
        roles={"named": [], "other": []},
    )
    with aws_iam_rules():
        assert can_get(clients["named"])
        assert can_put(clients["named"], "new/object.txt")
        assert not can_list(clients["named"])  # only what the policy names
        assert not can_get(clients["other"])
        assert not can_put(clients["other"])


def test_the_role_named_under_its_path_and_in_a_list_is_granted(world: Sessions) -> None:
    """A principal list with several entries, one of them the role: the role is named."""
    clients = world(
        bucket_policy(grant([role_arn("someone-else"), role_arn("named")], "s3:*", BUCKET_ARN)),
        roles={"named": [], "other": []},
    )
    with aws_iam_rules():
        assert can_list(clients["named"])
        assert not can_list(clients["other"])


def test_a_bucket_policy_naming_one_session_grants_that_session_only(world: Sessions) -> None:
    """A bucket policy may name one assumed-role session (the instance's, say): that session
    is let in, and another session of the same role is not."""
    clients = world(
        bucket_policy(grant(session_arn("named", "i-0abc"), "s3:GetObject", f"{BUCKET_ARN}/*")),
        roles={"named": []},
        sessions={"instance": ("named", "i-0abc"), "other": ("named", "i-0def")},
    )
    with aws_iam_rules():
        assert can_get(clients["instance"])
        assert not can_get(clients["other"])


@pytest.mark.parametrize("root", [ROOT, ACCT], ids=["root-arn", "account-id"])
def test_the_account_root_in_a_bucket_policy_delegates_to_identity_policies(
    world: Sessions, root: str
) -> None:
    """Naming the account (its root ARN or its id) grants nothing by itself: it delegates to
    the account's identity policies, so only a role they allow gets in. Treating it as a grant
    would hide, in the emulator, that such a role is still denied on AWS."""
    clients = world(
        bucket_policy(grant(root, "s3:GetObject", f"{BUCKET_ARN}/*")),
        roles={"granted": IDENTITY_GRANT, "bare": []},
    )
    with aws_iam_rules():
        assert not can_get(clients["bare"])
        assert can_get(clients["granted"])


def test_a_named_deny_beats_an_identity_allow(world: Sessions) -> None:
    """An explicit Deny naming the role wins over its identity policy's Allow, for the
    actions it names only; a role the Deny does not name keeps its identity grant."""
    clients = world(
        bucket_policy(grant(role_arn("denied"), "s3:PutObject", f"{BUCKET_ARN}/*", "Deny")),
        roles={"denied": IDENTITY_GRANT, "other": IDENTITY_GRANT},
    )
    with aws_iam_rules():
        assert not can_put(clients["denied"])
        assert can_get(clients["denied"])
        assert can_list(clients["denied"])
        assert can_put(clients["other"])


def test_a_named_deny_beats_the_bucket_policys_own_allow(world: Sessions) -> None:
    """Deny wins inside the bucket policy too, whichever statement comes first."""
    clients = world(
        bucket_policy(
            grant(role_arn("named"), "s3:GetObject", f"{BUCKET_ARN}/*", "Deny"),
            grant(role_arn("named"), ["s3:GetObject", "s3:PutObject"], f"{BUCKET_ARN}/*"),
        ),
        roles={"named": []},
    )
    with aws_iam_rules():
        assert not can_get(clients["named"])
        assert can_put(clients["named"])


def test_an_identity_deny_beats_a_bucket_policy_allow(world: Sessions) -> None:
    """The bucket policy's grant does not lift an explicit Deny in the role's own policy."""
    deny_get = {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}
    clients = world(
        bucket_policy(grant(role_arn("named"), "s3:*", f"{BUCKET_ARN}/*")),
        roles={"named": [deny_get]},
    )
    with aws_iam_rules():
        assert not can_get(clients["named"])
        assert can_put(clients["named"])


def test_not_resource_and_not_action_follow_aws(world: Sessions) -> None:
    """NotResource grants everything but the resources it names, and NotAction everything
    but the actions it names: a policy written that way must be read that way."""
    clients = world(
        bucket_policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": role_arn("named")},
                "Action": "s3:GetObject",
                "NotResource": [BUCKET_ARN, f"{BUCKET_ARN}/secret/*"],
            },
            {
                "Effect": "Deny",
                "Principal": {"AWS": role_arn("writer")},
                "NotAction": "s3:GetObject",
                "Resource": f"{BUCKET_ARN}/*",
            },
        ),
        roles={"named": [], "writer": IDENTITY_GRANT},
    )
    with aws_iam_rules():
        assert can_get(clients["named"])
        assert not can_get(clients["named"], f"secret/{KEY}")
        assert not can_put(clients["named"])
        assert can_get(clients["writer"])
        assert not can_put(clients["writer"])
        assert can_list(clients["writer"])  # the Deny names only objects


def test_a_conditional_grant_is_evaluated_against_the_request(world: Sessions) -> None:
    """Conditions of a named statement are evaluated as for `*` statements: an SDK request
    travels over TLS, so a grant that requires plain HTTP does not apply."""
    over_http = {"Bool": {"aws:SecureTransport": "false"}}
    over_tls = {"Bool": {"aws:SecureTransport": "true"}}
    clients = world(
        bucket_policy(
            {**grant(role_arn("http"), "s3:GetObject", f"{BUCKET_ARN}/*"), "Condition": over_http},
            {**grant(role_arn("tls"), "s3:GetObject", f"{BUCKET_ARN}/*"), "Condition": over_tls},
        ),
        roles={"http": [], "tls": []},
    )
    with aws_iam_rules():
        assert not can_get(clients["http"])
        assert can_get(clients["tls"])


def test_the_tls_only_policy_still_lets_an_identity_granted_role_in(world: Sessions) -> None:
    """The stack's own bucket policy (Deny unless TLS, for `*`) keeps its behaviour: a role
    its identity policy grants gets in, a role without a grant does not."""
    clients = world(
        policies.tls_only_bucket_policy(BUCKET_ARN), roles={"granted": IDENTITY_GRANT, "bare": []}
    )
    with aws_iam_rules():
        granted = clients["granted"]
        assert can_list(granted)
        assert can_put(granted, "new/object.txt")
        assert can_get(granted, "new/object.txt")
        assert not can_get(clients["bare"])
        assert not can_list(clients["bare"])


def test_a_bucket_policy_grant_of_list_makes_a_missing_key_a_404(world: Sessions) -> None:
    """The missing-key rule asks whether the caller may s3:ListBucket; a bucket policy grant
    counts there as well, so a missing key answers NoSuchKey, as on AWS."""
    clients = world(
        bucket_policy(
            grant(role_arn("lister"), "s3:ListBucket", BUCKET_ARN),
            grant(role_arn("lister"), "s3:GetObject", f"{BUCKET_ARN}/*"),
            grant(role_arn("reader"), "s3:GetObject", f"{BUCKET_ARN}/*"),
        ),
        roles={"lister": [], "reader": []},
    )
    with aws_iam_rules():
        with pytest.raises(ClientError) as missing:
            clients["lister"].get_object(Bucket=BUCKET, Key="no/such/key")
        assert missing.value.response["Error"]["Code"] == "NoSuchKey"
        assert denied(lambda: clients["reader"].get_object(Bucket=BUCKET, Key="no/such/key"))


def test_bucket_policy_effect_for_a_named_caller() -> None:
    """The pure rule: a named Allow grants, the account root does not, a named Deny denies,
    a statement for someone else is neutral, and without a caller only `*` counts."""
    caller = session_arn("named", "s")
    doc = bucket_policy(
        grant(role_arn("named"), "s3:GetObject", f"{BUCKET_ARN}/*"),
        grant(ROOT, "s3:PutObject", f"{BUCKET_ARN}/*"),
        grant(role_arn("named"), "s3:DeleteObject", f"{BUCKET_ARN}/*", "Deny"),
        grant(role_arn("other"), "s3:ListBucket", BUCKET_ARN),
        grant(ROOT, "s3:GetObjectTagging", f"{BUCKET_ARN}/*", "Deny"),
    )
    obj = f"{BUCKET_ARN}/k"
    assert bucket_policy_effect(doc, "s3:GetObject", obj, caller) is Effect.ALLOW
    assert bucket_policy_effect(doc, "s3:PutObject", obj, caller) is None
    assert bucket_policy_effect(doc, "s3:DeleteObject", obj, caller) is Effect.DENY
    assert bucket_policy_effect(doc, "s3:ListBucket", BUCKET_ARN, caller) is None
    assert bucket_policy_effect(doc, "s3:GetObjectTagging", obj, caller) is Effect.DENY
    assert bucket_policy_effect(doc, "s3:GetObject", obj) is None  # anonymous: `*` only


def test_the_fixture_restores_moto_afterwards(aws: None) -> None:
    """The new patches are scoped to the block, like the others."""
    from moto.iam.access_control import S3IAMRequest
    from moto.iam.models import Policy

    check = S3IAMRequest.check_action_permitted
    with aws_policy_rules():
        assert S3IAMRequest.check_action_permitted is not check
        assert hasattr(Policy, "policy_name")
    assert S3IAMRequest.check_action_permitted is check
    assert not hasattr(Policy, "policy_name")
    assert not hasattr(Policy, "policy_id")


def test_ec2_ids_are_moto_s_uniform_hex_digits_from_its_seed_and_moto_gets_its_own_back(
    aws: None,
) -> None:
    """rehearsal/moto_speed.py draws EC2's ids in one go: still `size` lowercase hex digits,
    every digit at every position, decided by moto's seed; ids of real resources keep their
    shape; moto's own draw is back after the block."""
    from moto.ec2 import utils
    from moto.moto_api._internal import mock_random

    own = utils.random_resource_id
    with aws_policy_rules():
        assert utils.random_resource_id is not own
        ids = [utils.random_resource_id(17) for _ in range(2000)]
        assert all(re.fullmatch("[0-9a-f]{17}", i) for i in ids), ids[:3]
        for position in range(17):
            assert {i[position] for i in ids} == set("0123456789abcdef"), position
        assert utils.random_resource_id(0) == "" and len(utils.random_resource_id()) == 8
        mock_random.seed(7)
        first = utils.random_id("vol")
        mock_random.seed(7)
        assert utils.random_id("vol") == first
        ec2 = boto3.client("ec2", region_name="us-east-1")
        volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)
        assert re.fullmatch(r"vol-[0-9a-f]{17}", volume["VolumeId"]), volume["VolumeId"]
    assert utils.random_resource_id is own


# 2. GetAccountAuthorizationDetails


def _managed_entries(iam: Client, **kwargs: Any) -> dict[str, dict[str, Any]]:
    details = iam.get_account_authorization_details(**kwargs)
    return {entry["Arn"]: entry for entry in details["Policies"]}


def test_authorization_details_name_every_managed_policy(aws: None) -> None:
    """IAM gives each managed policy's PolicyName and PolicyId in the account's authorization
    details; a reader of that document (who may reach what) relies on them. moto leaves both
    out; the fixture completes them, for a customer-managed and an AWS-managed policy."""
    from rehearsal.emulator import _provide_aws_managed_policy

    iam = boto3.client("iam", region_name=REGION)
    created = iam.create_policy(
        PolicyName="reader",
        Path="/ec2-assume-role/",
        PolicyDocument=document({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
    )["Policy"]
    _provide_aws_managed_policy(SSM_CORE)
    aws_managed = iam.get_policy(PolicyArn=SSM_CORE)["Policy"]

    assert "PolicyName" not in _managed_entries(iam)[created["Arn"]]  # moto's own answer

    with aws_policy_rules():
        entries = _managed_entries(iam)
    assert entries[created["Arn"]]["PolicyName"] == "reader"
    assert entries[created["Arn"]]["PolicyId"] == created["PolicyId"]
    assert entries[SSM_CORE]["PolicyName"] == "AmazonSSMManagedInstanceCore"
    assert entries[SSM_CORE]["PolicyId"] == aws_managed["PolicyId"]
    before = iam.get_policy(PolicyArn=created["Arn"])["Policy"], iam.list_policies(Scope="Local")
    with aws_policy_rules():  # the answers that already named policies are unchanged
        after = iam.get_policy(PolicyArn=created["Arn"])["Policy"], iam.list_policies(Scope="Local")
    assert after[0] == before[0]
    assert after[1]["Policies"] == before[1]["Policies"]


def test_authorization_details_ignore_max_items(aws: None) -> None:
    """moto 5.2.5 answers GetAccountAuthorizationDetails in one page whatever MaxItems says
    (IsTruncated false, no Marker), so pagination code is never exercised in the emulator:
    it must be right by construction (botocore's paginator), not by a test here."""
    iam = boto3.client("iam", region_name=REGION)
    for n in range(3):
        iam.create_policy(
            PolicyName=f"p{n}",
            PolicyDocument=document({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
        )
    with aws_policy_rules():
        page = iam.get_account_authorization_details(MaxItems=1)
        pages = list(iam.get_paginator("get_account_authorization_details").paginate())
    assert len(page["Policies"]) == 3
    assert page["IsTruncated"] is False
    assert "Marker" not in page
    assert len(pages) == 1
    assert all("PolicyName" in p for p in pages[0]["Policies"])

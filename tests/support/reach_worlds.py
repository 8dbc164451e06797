"""Worlds for the reach proof: each one the healthy stack plus ONE defect, and what it must cost.

A defect is a function of a built `check_world.World` (three services, either topology) that
changes the account with plain boto3 calls, IAM enforcement off, the way someone with admin
rights would after `pulumi up`. It returns an `Expect`: the services whose `reach` step must
fail, and a substring naming the offending document, which must stand in those steps' detail
and in one of the report's `reach.findings[].document`.

Document names follow `checks.reach.documents`: `inline policy <name> of role <role>
statement <Sid>`, `trust policy of role <role> statement <Sid>`, `managed policy <arn>
statement <n>`, `bucket policy of <bucket> statement <Sid>`. Every statement a defect adds has
a Sid, so the expected document is exact.

In the dedicated topology there is no host role: a defect of the host becomes one of
service-a's role (the caller). The instance's check reports steps for service-a alone, but the
proof judges every service, so `Expect.failing` is checked against the findings in full.

Also here: the auditor (`add_auditor`), whose shared-credentials profile the check reads the
documents with, and `assert_untouched_and_clean`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from checks.runner import RESERVED_PREFIX
from infra import policies
from support.check_world import ACCOUNT, REGION, USER_BODY, USER_KEY, World, bucket_of, objects

AUDITOR = "auditor"
DEFECT_POLICY = "defect"
"""The inline policy a defect adds to a role; its statements all carry the Sid `Defect`."""
DEFECT_SID = "Defect"
PATH = policies.service_role_path("dev")
S3_READ_ONLY = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"


@dataclass(frozen=True)
class Expect:
    failing: frozenset[str]
    """Every service the defect reaches (in the dedicated topology only service-a is checked)."""
    document: str
    """A substring of the offending document's name."""


Defect = Callable[[World], Expect]


# -- the account, enforcement off -------------------------------------------------------


def _iam() -> Any:
    return boto3.client("iam", region_name=REGION)


def _s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def _document(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def shared(world: World) -> bool:
    return bool(world.outputs["topology"] == "shared")


def role_arn(world: World, service: str) -> str:
    return str(world.outputs["services"][service]["roleArn"])


def role_name(world: World, service: str) -> str:
    return role_arn(world, service).rsplit("/", 1)[-1]


def caller(world: World) -> tuple[str, str]:
    """(name, ARN) of the role the instance carries: the host role, or service-a's role."""
    if shared(world):
        arn = str(world.outputs["hostRoleArn"])
        return arn.rsplit("/", 1)[-1], arn
    return role_name(world, "service-a"), role_arn(world, "service-a")


def everyone(world: World) -> frozenset[str]:
    return frozenset(world.outputs["services"])


def _numbered(statements: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Sids `Defect`, `Defect2`, ...: each names its document as `... statement Defect`."""
    return [
        {"Sid": DEFECT_SID + (str(i) if i > 1 else ""), **s}
        for i, s in enumerate(statements, start=1)
    ]


def grant(role: str, *statements: Mapping[str, Any]) -> str:
    """Give a role the inline policy `defect` (Sid `Defect`); its statement's document name."""
    _iam().put_role_policy(
        RoleName=role,
        PolicyName=DEFECT_POLICY,
        PolicyDocument=_document(*_numbered(statements)),
    )
    return f"inline policy {DEFECT_POLICY} of role {role} statement {DEFECT_SID}"


def allow(action: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def trust_also(role: str, sid: str, principal: Any) -> str:
    """Append a statement letting `principal` assume the role; its document name."""
    iam = _iam()
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    trust["Statement"].append(
        {"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    )
    iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(trust))
    return f"trust policy of role {role} statement {sid}"


def foreign_role(name: str, path: str, trusted: str, policy: str, *statements: Any) -> str:
    """A role the stack did not make, trusting one ARN, with one inline policy (Sid `Defect`)."""
    iam = _iam()
    iam.create_role(
        RoleName=name,
        Path=path,
        AssumeRolePolicyDocument=_document(
            {
                "Sid": "LetIn",
                "Effect": "Allow",
                "Principal": {"AWS": trusted},
                "Action": "sts:AssumeRole",
            }
        ),
    )
    iam.put_role_policy(
        RoleName=name,
        PolicyName=policy,
        PolicyDocument=_document(*_numbered(statements)),
    )
    return f"inline policy {policy} of role {name} statement {DEFECT_SID}"


def provide_aws_managed_policy(arn: str) -> None:
    """Make one AWS-managed policy exist in moto, from moto's own copy of its document.

    The smallest way found: moto ships every AWS-managed policy as one JSON text
    (`moto.iam.aws_managed_policies`); parsing it costs ~50 ms, loading all of them into the
    backend (MOTO_IAM_LOAD_MANAGED_POLICIES) over a second, so only the one needed is added,
    as `rehearsal/emulator.py` does (without importing the emulator and pulumi).
    """
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends

    name = arn.rsplit("/", 1)[-1]
    data = json.loads(aws_managed_policies_data)[name]
    policy = AWSManagedPolicy.from_data(name, ACCOUNT, "aws", data)
    iam_backends[ACCOUNT]["global"].managed_policies[policy.arn] = policy


# -- the defects ------------------------------------------------------------------------


def chain(world: World) -> Expect:
    """service-a's role may assume service-b's: b's trust names it and a holds the grant."""
    b = role_name(world, "service-b")
    document = trust_also(b, "LetA", {"AWS": role_arn(world, "service-a")})
    grant(role_name(world, "service-a"), allow("sts:AssumeRole", role_arn(world, "service-b")))
    return Expect(frozenset({"service-a", "service-b"}), document)


def chain_by_trust(world: World) -> Expect:
    """b's trust names a's role, with no grant on a's side: in one account that lets a in."""
    b = role_name(world, "service-b")
    document = trust_also(b, "LetA", {"AWS": role_arn(world, "service-a")})
    return Expect(frozenset({"service-a", "service-b"}), document)


def service_takes_host(world: World) -> Expect:
    """The host's trust names a's role, which may assume it: a reaches every service role."""
    host, host_arn = caller(world)
    document = trust_also(host, "LetA", {"AWS": role_arn(world, "service-a")})
    grant(role_name(world, "service-a"), allow("sts:AssumeRole", host_arn))
    return Expect(everyone(world), document)


def trust_anyone(world: World) -> Expect:
    """service-a's trust names `*`: every other service role (and anyone) now reaches a."""
    document = trust_also(role_name(world, "service-a"), "Widened", {"AWS": "*"})
    return Expect(everyone(world), document)


def trust_account_root(world: World) -> Expect:
    """service-a's trust names the account root: anyone granted sts:AssumeRole gets in."""
    root = f"arn:aws:iam::{ACCOUNT}:root"
    document = trust_also(role_name(world, "service-a"), "Widened", {"AWS": root})
    return Expect(frozenset({"service-a"}), document)


def foreign_under_path(world: World) -> Expect:
    """A role made under the stack's path, trusting the caller (the host's path grant covers
    it), that may read every object: every service's data is reached through it."""
    _, trusted = caller(world)
    document = foreign_role(
        "intruder-role", PATH, trusted, "read-everything", allow("s3:GetObject", "*")
    )
    return Expect(everyone(world), document)


def role_elsewhere(world: World) -> Expect:
    """A role under `/` whose trust names service-a's role and that may read b's objects."""
    document = foreign_role(
        "elsewhere-role",
        "/",
        role_arn(world, "service-a"),
        "read-b",
        allow("s3:GetObject", f"arn:aws:s3:::{bucket_of('service-b')}/*"),
    )
    return Expect(frozenset({"service-a", "service-b"}), document)


def put_own_policy(world: World) -> Expect:
    """service-a may put an inline policy on its own role: it can grant itself anything."""
    a = role_name(world, "service-a")
    return Expect(
        frozenset({"service-a"}), grant(a, allow("iam:PutRolePolicy", role_arn(world, "service-a")))
    )


def attach_own_policy(world: World) -> Expect:
    """service-a may attach a managed policy to its own role."""
    a = role_name(world, "service-a")
    document = grant(a, allow("iam:AttachRolePolicy", role_arn(world, "service-a")))
    return Expect(frozenset({"service-a"}), document)


def update_trust_of_b(world: World) -> Expect:
    """service-a may rewrite service-b's trust policy: it can let itself into b's role."""
    a = role_name(world, "service-a")
    document = grant(a, allow("iam:UpdateAssumeRolePolicy", role_arn(world, "service-b")))
    return Expect(frozenset({"service-a", "service-b"}), document)


def pass_role_run_instances(world: World) -> Expect:
    """The caller may pass any role to an instance it launches: it becomes any role."""
    name, _ = caller(world)
    document = grant(name, allow(["iam:PassRole", "ec2:RunInstances"], "*"))
    return Expect(everyone(world), document)


def versions_everywhere(world: World) -> Expect:
    """The caller may list, read and delete object versions in every bucket."""
    name, _ = caller(world)
    buckets = [bucket_of(s) for s in world.outputs["services"]]
    document = grant(
        name,
        allow("s3:ListBucketVersions", [f"arn:aws:s3:::{b}" for b in buckets]),
        allow(
            ["s3:GetObjectVersion", "s3:DeleteObjectVersion"],
            [f"arn:aws:s3:::{b}/*" for b in buckets],
        ),
    )
    # Its statements are `Defect` and `Defect2`: the name covers either.
    return Expect(everyone(world), document)


def put_bucket_policy(world: World) -> Expect:
    """The caller may rewrite service-a's bucket policy: it can open the bucket to anyone."""
    name, _ = caller(world)
    document = grant(name, allow("s3:PutBucketPolicy", f"arn:aws:s3:::{bucket_of('service-a')}"))
    return Expect(frozenset({"service-a"}), document)


def acl_and_tags_on_b(world: World) -> Expect:
    """service-a may read and write ACLs and write tags on service-b's objects."""
    a = role_name(world, "service-a")
    actions = ["s3:PutObjectAcl", "s3:GetObjectAcl", "s3:PutObjectTagging"]
    document = grant(a, allow(actions, f"arn:aws:s3:::{bucket_of('service-b')}/*"))
    return Expect(frozenset({"service-a", "service-b"}), document)


def get_on_b(world: World) -> Expect:
    """service-a may read service-b's objects (beyond the issue's list: the plainest leak; in
    the dedicated topology, with --without-peer-get, no probe can see it, only the proof)."""
    a = role_name(world, "service-a")
    document = grant(a, allow("s3:GetObject", f"arn:aws:s3:::{bucket_of('service-b')}/*"))
    return Expect(frozenset({"service-a", "service-b"}), document)


def own_versions(world: World) -> Expect:
    """service-a may read old versions in its own bucket: exactly four actions, not five."""
    a = role_name(world, "service-a")
    document = grant(a, allow("s3:GetObjectVersion", f"arn:aws:s3:::{bucket_of('service-a')}/*"))
    return Expect(frozenset({"service-a"}), document)


def bucket_policy_lets_b(world: World) -> Expect:
    """service-a's bucket policy grants service-b's role s3:GetObject; TLS-only Deny kept."""
    bucket = bucket_of("service-a")
    arn = f"arn:aws:s3:::{bucket}"
    document = policies.tls_only_bucket_policy(arn)
    document["Statement"].append(
        {
            "Sid": "LetB",
            "Effect": "Allow",
            "Principal": {"AWS": role_arn(world, "service-b")},
            "Action": "s3:GetObject",
            "Resource": f"{arn}/*",
        }
    )
    _s3().put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    return Expect(
        frozenset({"service-a", "service-b"}), f"bucket policy of {bucket} statement LetB"
    )


def s3_read_only_managed(world: World) -> Expect:
    """The caller gets the AWS-managed AmazonS3ReadOnlyAccess: s3:Get*/List* on everything."""
    name, _ = caller(world)
    provide_aws_managed_policy(S3_READ_ONLY)
    _iam().attach_role_policy(RoleName=name, PolicyArn=S3_READ_ONLY)
    # `statement`, so that a policy whose document went unseen does not count.
    return Expect(
        everyone(world),
        f"managed policy {S3_READ_ONLY} statement",
    )


SHARED_ONLY = "shared"
BOTH = "both"
DEFECTS: list[tuple[str, Defect, str]] = [
    ("chain", chain, BOTH),
    ("chain-by-trust", chain_by_trust, BOTH),
    ("service-takes-host", service_takes_host, SHARED_ONLY),
    ("trust-anyone", trust_anyone, BOTH),
    ("trust-account-root", trust_account_root, BOTH),
    ("foreign-role-under-path", foreign_under_path, BOTH),
    ("role-elsewhere-reads-b", role_elsewhere, BOTH),
    ("put-own-role-policy", put_own_policy, BOTH),
    ("attach-own-role-policy", attach_own_policy, BOTH),
    ("update-trust-of-b", update_trust_of_b, BOTH),
    ("pass-role-run-instances", pass_role_run_instances, BOTH),
    ("object-versions-everywhere", versions_everywhere, BOTH),
    ("put-bucket-policy-of-a", put_bucket_policy, BOTH),
    ("acl-and-tags-on-b", acl_and_tags_on_b, BOTH),
    ("get-on-b", get_on_b, BOTH),
    ("own-object-versions", own_versions, BOTH),
    ("bucket-policy-lets-b", bucket_policy_lets_b, BOTH),
    ("s3-read-only-managed-policy", s3_read_only_managed, BOTH),
]


def defect_cases() -> list[tuple[str, Defect, str]]:
    """(id, defect, topology) for every defect in every topology it applies to."""
    return [
        (f"{label}-{topology}", defect, topology)
        for label, defect, where in DEFECTS
        for topology in (("shared", "dedicated") if where == BOTH else ("shared",))
    ]


# -- healthy variations -----------------------------------------------------------------


def unrelated_roles(count: int = 50) -> None:
    """`count` roles under `/other/`, each trusting the next one and EC2, each with full S3
    rights on its own bucket: nothing of the stack reaches them, nor they the stack."""
    iam, s3 = _iam(), _s3()
    arns = [f"arn:aws:iam::{ACCOUNT}:role/other/unrelated-{i}" for i in range(count)]
    for i in range(count):
        bucket = f"unrelated-bucket-{i}"
        s3.create_bucket(Bucket=bucket)
        iam.create_role(
            RoleName=f"unrelated-{i}",
            Path="/other/",
            AssumeRolePolicyDocument=_document(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": arns[(i + 1) % count]},
                    "Action": "sts:AssumeRole",
                },
            ),
        )
    for i in range(count):
        bucket = f"arn:aws:s3:::unrelated-bucket-{i}"
        iam.put_role_policy(
            RoleName=f"unrelated-{i}",
            PolicyName="own-bucket",
            PolicyDocument=_document(
                allow("s3:*", [bucket, f"{bucket}/*"]),
                allow("sts:AssumeRole", arns[(i + 1) % count]),
            ),
        )


def operator_on_host(world: World) -> str:
    """A trusted operator: a role the host's trust names (break-glass access). Its ARN."""
    arn = _iam().create_role(
        RoleName="operator-role",
        AssumeRolePolicyDocument=_document(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ),
    )["Role"]["Arn"]
    host, _ = caller(world)
    trust_also(host, "Operator", {"AWS": arn})
    return str(arn)


# -- the auditor and the aftermath ------------------------------------------------------


def add_auditor(with_read_policy: bool = True) -> Path:
    """The IAM user `auditor` (enforcement off) holding `read_policy()` (or, without it, no
    policy at all) and one fresh access key, as the profile `[auditor]` of the shared
    credentials file the `aws` fixture names (AWS_SHARED_CREDENTIALS_FILE). Its path.

    Idempotent over a world that already has the user (`check_world.build` may add one):
    its inline policies and keys are replaced, so the test decides what the auditor holds.
    """
    from checks.reach.read import read_policy

    iam = _iam()
    try:
        iam.create_user(UserName=AUDITOR)
    except iam.exceptions.EntityAlreadyExistsException:
        for name in iam.list_user_policies(UserName=AUDITOR)["PolicyNames"]:
            iam.delete_user_policy(UserName=AUDITOR, PolicyName=name)
        for old in iam.list_access_keys(UserName=AUDITOR)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=AUDITOR, AccessKeyId=old["AccessKeyId"])
    if with_read_policy:
        iam.put_user_policy(
            UserName=AUDITOR, PolicyName="reach-read", PolicyDocument=json.dumps(read_policy())
        )
    key = iam.create_access_key(UserName=AUDITOR)["AccessKey"]
    path = Path(os.environ["AWS_SHARED_CREDENTIALS_FILE"])
    path.write_text(
        f"[{AUDITOR}]\n"
        f"aws_access_key_id = {key['AccessKeyId']}\n"
        f"aws_secret_access_key = {key['SecretAccessKey']}\n"
    )
    return path


def auditor_session() -> boto3.Session:
    return boto3.Session(profile_name=AUDITOR, region_name=REGION)


def prove(world: World, names: Iterable[str] | None = None) -> Any:
    """The reach proof run directly (no CLI), as the auditor, IAM enforced: a `Reach`."""
    from checks.reach.steps import run_reach
    from checks.stack_outputs import parse_outputs
    from rehearsal.moto_rules import aws_iam_rules

    targets = parse_outputs(world.outputs, "test")
    chosen = list(world.outputs["services"] if names is None else names)
    with aws_iam_rules():
        return run_reach(auditor_session(), targets, chosen)


def assert_untouched_and_clean(world: World) -> None:
    """The user's object is as it was, and nothing of the check survives: each stack bucket
    holds exactly the user's object, so nothing is left under the reserved prefix."""
    for out in world.outputs["services"].values():
        found = objects(out["bucketName"])
        assert not [k for k in found if k.startswith(RESERVED_PREFIX)], (out, list(found))
        assert found == {USER_KEY: USER_BODY}, out["bucketName"]

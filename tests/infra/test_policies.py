"""The policy builders, tested as plain functions, and linted with parliament."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Run, stack_config
from support.iam_lint import findings

from checks.contract import RESERVED_PREFIX
from infra import policies, secure_bucket

BUCKET = "arn:aws:s3:::service-a-bucket-0a1b2c3"
HOST = "arn:aws:iam::123456789012:role/dev-host-role-0a1b2c3"
EC2 = "ec2.amazonaws.com"
SERVICE_ROLES = policies.service_roles_arn("aws", "123456789012", "dev")


def test_bucket_access_is_list_on_bucket_and_object_rw_on_objects() -> None:
    """Least privilege: bucket-level actions on the bucket ARN, object actions on `arn/*`."""
    statements = policies.bucket_access_policy(BUCKET)["Statement"]
    grants = {(s["Resource"], a) for s in statements for a in s["Action"]}
    assert grants == {
        (BUCKET, "s3:ListBucket"),
        (f"{BUCKET}/*", "s3:GetObject"),
        (f"{BUCKET}/*", "s3:PutObject"),
        (f"{BUCKET}/*", "s3:DeleteObject"),
    }
    assert all(s["Effect"] == "Allow" for s in statements)


def test_a_versioned_bucket_lets_the_role_remove_versions_under_the_check_prefix_only() -> None:
    """The check deletes each version it created, by version id, so a versioned bucket keeps
    nothing of it; the service's own data keeps every version (no grant outside the prefix)."""
    plain = policies.bucket_access_policy(BUCKET)["Statement"]
    versioned = policies.bucket_access_policy(BUCKET, versioned=True)["Statement"]
    assert versioned[:2] == plain, "the versioned grant only adds"
    assert versioned[2:] == [
        {
            "Sid": "RemoveCheckVersions",
            "Effect": "Allow",
            "Action": "s3:DeleteObjectVersion",
            "Resource": f"{BUCKET}/ec2-assume-role-check/*",
        }
    ]
    assert "s3:DeleteObjectVersion" not in json.dumps(plain)


def test_the_infra_prefix_is_the_one_the_check_writes_under() -> None:
    """The version grant and the lifecycle rule name the prefix the check uses; if the two
    drifted apart, the check could not remove its versions and the safety net would miss."""
    assert policies.CHECK_PREFIX == RESERVED_PREFIX
    assert secure_bucket.CHECK_PREFIX == RESERVED_PREFIX
    assert RESERVED_PREFIX.endswith("/") and "*" not in RESERVED_PREFIX


def test_the_program_grants_version_removal_to_versioned_services_only(
    run_program: Callable[[dict[str, Any]], Run],
) -> None:
    """Under the mocks: `versioning: true` gives that service's role the statement; a
    service without versioning gets none (it would have nothing to remove)."""
    config = stack_config()
    config["ec2-assume-role:services"] = [{"name": "keep", "versioning": True}, {"name": "tmp"}]
    run = run_program(config)
    buckets = {name: out["bucketArn"] for name, out in run.outputs["services"].items()}
    for service, versioned in (("keep", True), ("tmp", False)):
        policy = run.named("aws:iam/rolePolicy:RolePolicy", f"{service}-bucket-access")
        statements = json.loads(policy.inputs["policy"])["Statement"]
        extra = [s for s in statements if s["Sid"] == "RemoveCheckVersions"]
        expected = f"{buckets[service]}/{RESERVED_PREFIX}*"
        assert [s["Resource"] for s in extra] == ([expected] if versioned else []), service


def test_assume_roles_policy_names_the_stacks_role_path() -> None:
    """The host's only grant is sts:AssumeRole, on the roles under the stack's own path."""
    (statement,) = policies.assume_roles_policy(SERVICE_ROLES)["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == "arn:aws:iam::123456789012:role/ec2-assume-role/dev/*"
    assert policies.service_role_path("dev") == "/ec2-assume-role/dev/"


@pytest.mark.parametrize(
    "resource",
    ["*", "arn:aws:iam::123456789012:role/*x", "arn:aws:iam::123456789012:user/ops/*"],
)
def test_assume_roles_policy_refuses_anything_but_a_role_path(resource: str) -> None:
    """A wider pattern than one role path would reach roles of other stacks or users."""
    with pytest.raises(ValueError, match="role path ARN"):
        policies.assume_roles_policy(resource)


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_every_arn_follows_the_partition(partition: str) -> None:
    """China and GovCloud refuse ARNs of the commercial partition."""
    assert policies.service_roles_arn(partition, "123456789012", "dev").startswith(
        f"arn:{partition}:iam::"
    )
    assert policies.ssm_core_policy_arn(partition) == (
        f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
    )


def test_trust_policy_without_principals_trusts_only_ec2() -> None:
    """A dedicated service role is only ever assumed by its own instance."""
    (statement,) = policies.trust_policy(EC2)["Statement"]
    assert statement["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


def test_trust_policy_names_the_host_role_in_its_own_statement() -> None:
    """The resource side of the trust: the service role names the host role's ARN."""
    statements = policies.trust_policy(EC2, [HOST])["Statement"]
    assert statements[0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert statements[1]["Principal"] == {"AWS": [HOST]}
    assert statements[1]["Action"] == "sts:AssumeRole"


@pytest.mark.parametrize("principal", ["*", "arn:aws:iam::123456789012:root"])
def test_trust_policy_refuses_wildcard_and_account_root(principal: str) -> None:
    """`*` or a root principal would let any identity holding sts:AssumeRole in."""
    with pytest.raises(ValueError, match="refusing trust principal"):
        policies.trust_policy(EC2, [principal])


def test_tls_only_bucket_policy_denies_plain_http_on_bucket_and_objects() -> None:
    """Every request without TLS is denied, for the bucket and all its objects."""
    (statement,) = policies.tls_only_bucket_policy(BUCKET)["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Resource"] == [BUCKET, f"{BUCKET}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize(
    "document",
    [
        policies.bucket_access_policy(BUCKET),
        policies.bucket_access_policy(BUCKET, versioned=True),
        policies.assume_roles_policy(SERVICE_ROLES),
        policies.tls_only_bucket_policy(BUCKET),
    ],
    ids=["bucket-access", "bucket-access-versioned", "assume-roles", "tls-only"],
)
def test_identity_and_bucket_policies_pass_parliament(document: policies.PolicyDocument) -> None:
    """parliament knows every IAM action and resource format; no finding means no typo."""
    assert findings(document) == []


@pytest.mark.parametrize("principals", [[], [HOST]], ids=["ec2-only", "with-host"])
def test_trust_policies_pass_parliament(principals: list[str]) -> None:
    """Trust policies lint clean, but for the Resource they carry by design."""
    assert findings(policies.trust_policy(EC2, principals), trust=True) == []


def test_parliament_does_catch_a_wildcard_grant() -> None:
    """The lint above can fail: `s3:*` on `*` is reported."""
    bad = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    assert any(f.startswith("RESOURCE_STAR") for f in findings(bad))

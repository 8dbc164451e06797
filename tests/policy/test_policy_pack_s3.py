"""The pack's bucket rules: public access blocks, the TLS-only Deny, Allows in bucket policies.

Each breakage is a real program (policy_programs) judged under the mocks (policy_harness).
"""

from __future__ import annotations

from typing import Any

import pulumi_aws as aws
import pytest
from conftest import ACCOUNT, physical
from support.policy_harness import judge, run
from support.policy_programs import (
    OTHER_ACCOUNT,
    Breakage,
    allow,
    assert_caught,
    assert_not_passed_in_preview,
    doc,
    public_access_block,
    role,
    secure_bucket,
    tls_only,
)

BLOCK = "s3-public-access-block-all-on"
BLOCKED = "s3-bucket-public-access-blocked"
TLS = "s3-bucket-tls-only"
PUBLIC = "s3-bucket-policy-no-public-allow"
ACCOUNT_RULE = "s3-bucket-policy-own-account"
LITERAL_ARN = f"arn:aws:s3:::{physical('literal-bucket')}"  # what the mocks name it


def _with(*statements: dict[str, Any]) -> Any:
    """A bucket policy of the TLS-only statement plus the given ones, from the bucket's ARN."""
    return lambda arn: doc(tls_only(arn), *statements)


def _literal_policy(*statements: dict[str, Any]) -> None:
    """A bucket policy written as literal text, so that it is known in a preview too."""
    bucket = secure_bucket("literal", tls=None)
    policy = doc(tls_only(LITERAL_ARN), *statements)
    aws.s3.BucketPolicy("literal-policy", bucket=bucket.id, policy=policy)


def _second_policy() -> None:
    """A second policy for the same bucket: S3 keeps whichever was written last."""
    bucket = secure_bucket("data")
    deny_delete = {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "*"}
    aws.s3.BucketPolicy("data-other-policy", bucket=bucket.id, policy=doc(deny_delete))


def _second_block() -> None:
    """A second, weaker public access block for the same bucket."""
    bucket = secure_bucket("data")
    public_access_block("data-again", bucket.id, block_public_policy=False)


def _block_on_the_wrong_bucket() -> None:
    first = secure_bucket("first")
    secure_bucket("second", block=False)
    public_access_block("second", first.id)  # meant for "second"


def _inline_policy(*statements: dict[str, Any], tls: bool = False) -> None:
    """A BucketV2 with the deprecated inline policy, alongside (or instead of) a BucketPolicy."""
    role("service")  # the stack's own account
    bucket = aws.s3.BucketV2(
        "legacy-bucket",
        policy=doc(tls_only(f"arn:aws:s3:::{physical('legacy-bucket')}"), *statements),
    )
    public_access_block("legacy", bucket.id)
    if tls:
        aws.s3.BucketPolicy("legacy-tls-only", bucket=bucket.id, policy=bucket.arn.apply(_with()))


def _inline_without_the_deny() -> None:
    deny_delete = {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "*"}
    bucket = aws.s3.BucketV2("legacy-bucket", policy=doc(deny_delete))
    public_access_block("legacy", bucket.id)


def _through_a_parameter(writer: str) -> None:
    """A secure bucket, and a second policy or block that gets the bucket's name through an
    unrelated resource's output (a parameter), so with no property dependency on the bucket."""
    secure_bucket("data")
    name = aws.ssm.Parameter("bucket-name", type="String", value=physical("data-bucket")).value
    if writer == "policy":
        deny_delete = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:DeleteBucket",
            "Resource": "*",
        }
        aws.s3.BucketPolicy("replacement", bucket=name, policy=doc(deny_delete))
    else:
        public_access_block("replacement", name, block_public_policy=False)


def _two_policies_both_tls_only() -> None:
    bucket = secure_bucket("data")
    aws.s3.BucketPolicy("data-again", bucket=bucket.id, policy=bucket.arn.apply(_with()))


def _inline_and_a_bucket_policy() -> None:
    """The deprecated inline policy and a BucketPolicy, both with the TLS-only Deny."""
    role("service")
    bucket = aws.s3.BucketV2(
        "legacy-bucket", policy=doc(tls_only(f"arn:aws:s3:::{physical('legacy-bucket')}"))
    )
    public_access_block("legacy", bucket.id)
    aws.s3.BucketPolicy("legacy-tls-only", bucket=bucket.id, policy=bucket.arn.apply(_with()))


def _not_principal(arn: str) -> str:
    statement = tls_only(arn)
    del statement["Principal"]
    return doc({**statement, "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ops"}})


def _allow_role_of(account: str) -> None:
    role("service")
    principal = {"AWS": f"arn:aws:iam::{account}:role/reader"}
    reader = allow("s3:GetObject", LITERAL_ARN + "/*", Principal=principal)
    _literal_policy(reader)


BREAKAGES = [
    Breakage(
        "a-setting-off",
        BLOCK,
        "data-public-access",
        "set ignorePublicAcls to true",
        lambda: public_access_block(
            "data", secure_bucket("data", block=False).id, ignore_public_acls=False
        ),
        also=frozenset({BLOCKED}),
        in_preview=True,
    ),
    Breakage(
        "a-setting-unset",
        BLOCK,
        "data-public-access",
        "set restrictPublicBuckets to true",
        lambda: public_access_block(
            "data", secure_bucket("data", block=False).id, restrict_public_buckets=None
        ),
        also=frozenset({BLOCKED}),
        in_preview=True,
    ),
    Breakage(
        "bucket-v2-without-a-block",
        BLOCKED,
        "data-bucket",
        "bucket data-bucket has no public access block",
        lambda: secure_bucket("data", aws.s3.BucketV2, block=False),
        in_preview=True,
    ),
    Breakage(
        "block-on-the-wrong-bucket",
        BLOCKED,
        "second-bucket",
        "has no public access block",
        _block_on_the_wrong_bucket,
        in_preview=True,
    ),
    Breakage(
        "a-second-weaker-block",
        BLOCKED,
        "data-bucket",
        "public access block data-again-public-access leaves blockPublicPolicy off",
        _second_block,
        also=frozenset({BLOCK}),
        in_preview=True,
    ),
    Breakage(
        "no-bucket-policy",
        TLS,
        "data-bucket",
        "bucket data-bucket is reachable without TLS",
        lambda: secure_bucket("data", tls=None),
        in_preview=True,
    ),
    Breakage(
        "deny-narrowed-by-a-condition",
        TLS,
        "data-bucket",
        "policy data-tls-only does not keep the TLS-only Deny unweakened",
        lambda: secure_bucket(
            "data",
            tls=lambda arn: doc(
                tls_only(
                    arn,
                    Condition={
                        "Bool": {"aws:SecureTransport": "false"},
                        "NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"},
                    },
                )
            ),
        ),
    ),
    Breakage(
        "deny-on-objects-only",
        TLS,
        "data-bucket",
        "does not keep the TLS-only Deny unweakened",
        lambda: secure_bucket("data", tls=lambda arn: doc(tls_only(arn, Resource=f"{arn}/*"))),
    ),
    Breakage(
        "deny-to-all-but-one-role",
        TLS,
        "data-bucket",
        "does not keep the TLS-only Deny unweakened",
        lambda: secure_bucket("data", tls=_not_principal),
    ),
    Breakage(
        "a-second-policy-without-the-deny",
        TLS,
        "data-bucket",
        "policy data-other-policy does not keep the TLS-only Deny unweakened",
        _second_policy,
    ),
    Breakage(
        "a-second-policy-through-another-output",
        TLS,
        "data-bucket",
        "bucket data-bucket has 2 bucket policies (policy data-tls-only, policy replacement): "
        "S3 keeps only the one written last",
        lambda: _through_a_parameter("policy"),
    ),
    Breakage(
        "a-second-block-through-another-output",
        BLOCKED,
        "data-bucket",
        "public access block replacement-public-access leaves blockPublicPolicy off",
        lambda: _through_a_parameter("block"),
        also=frozenset({BLOCK}),
    ),
    Breakage(
        "two-policies-both-tls-only",
        TLS,
        "data-bucket",
        "bucket data-bucket has 2 bucket policies (policy data-again, policy data-tls-only)",
        _two_policies_both_tls_only,
        in_preview=True,
    ),
    Breakage(
        "an-inline-policy-and-a-bucket-policy",
        TLS,
        "legacy-bucket",
        "has 2 bucket policies (policy legacy-tls-only, inline policy)",
        _inline_and_a_bucket_policy,
        in_preview=True,
    ),
    Breakage(
        "inline-policy-without-the-deny",
        TLS,
        "legacy-bucket",
        "legacy-bucket's inline policy does not keep the TLS-only Deny",
        _inline_without_the_deny,
        in_preview=True,
    ),
    Breakage(
        "allow-anyone-in-a-vpc",
        PUBLIC,
        "literal-policy",
        'statement 1 allows anyone ("*"), whatever its conditions',
        lambda: _literal_policy(
            allow(
                "s3:GetObject",
                LITERAL_ARN + "/*",
                Principal="*",
                Condition={"StringEquals": {"aws:SourceVpce": "vpce-0123"}},
            )
        ),
        in_preview=True,
    ),
    Breakage(
        "allow-all-but-one",
        PUBLIC,
        "literal-policy",
        "allows everyone but its NotPrincipal",
        lambda: _literal_policy(
            {"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "s3:*", "Resource": "*"}
        ),
        in_preview=True,
    ),
    Breakage(
        "allow-another-account",
        PUBLIC,
        "data-tls-only",
        f'allows the whole account "arn:aws:iam::{OTHER_ACCOUNT}:root"',
        lambda: secure_bucket(
            "data",
            tls=_with(
                allow("s3:GetObject", "*", Principal={"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"})
            ),
        ),
    ),
    Breakage(
        "allow-a-bare-account-id",
        PUBLIC,
        "literal-policy",
        f'allows the whole account "{OTHER_ACCOUNT}"',
        lambda: _literal_policy(
            allow("s3:GetObject", LITERAL_ARN + "/*", Principal={"AWS": [OTHER_ACCOUNT]})
        ),
        in_preview=True,
    ),
    Breakage(
        # IAM refuses a wildcard in a principal ARN, but the pack must not pass it either.
        "allow-every-role-of-the-account",
        PUBLIC,
        "literal-policy",
        f'allows "arn:aws:iam::{ACCOUNT}:role/*", which is not one role or user ARN',
        lambda: _literal_policy(
            allow(
                "s3:GetObject",
                LITERAL_ARN + "/*",
                Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"},
            )
        ),
        in_preview=True,
    ),
    Breakage(
        "allow-a-service-unpinned",
        PUBLIC,
        "data-tls-only",
        'allows the Service principal "cloudfront.amazonaws.com"',
        lambda: secure_bucket(
            "data",
            tls=_with(
                allow("s3:GetObject", "*", Principal={"Service": "cloudfront.amazonaws.com"})
            ),
        ),
    ),
    Breakage(
        "inline-allow-anyone",
        PUBLIC,
        "legacy-bucket",
        'allows anyone ("*")',
        lambda: _inline_policy(allow("s3:GetObject", "*", Principal={"AWS": "*"}), tls=True),
        also=frozenset({TLS}),  # an inline policy and a BucketPolicy: two policies
        in_preview=True,
    ),
    Breakage(
        "allow-a-role-of-another-account",
        ACCOUNT_RULE,
        "literal-policy",
        f"of account {OTHER_ACCOUNT}, not of this stack's account ({ACCOUNT})",
        lambda: _allow_role_of(OTHER_ACCOUNT),
    ),
    Breakage(
        "inline-allow-a-user-of-another-account",
        ACCOUNT_RULE,
        "legacy-bucket",
        f"of account {OTHER_ACCOUNT}",
        lambda: _inline_policy(
            allow("s3:GetObject", "*", Principal={"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:user/x"})
        ),
    ),
]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.id)
def test_a_weakening_is_caught(breakage: Breakage) -> None:
    assert_caught(breakage)


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.id)
def test_a_weakening_never_passes_a_preview(breakage: Breakage) -> None:
    assert_not_passed_in_preview(breakage)


def _acceptable() -> None:
    """Both bucket types, secured; a bucket policy may also allow a role of this account."""
    role("service")
    secure_bucket("v1")
    bucket = secure_bucket("v2", aws.s3.BucketV2, tls=None)
    aws.s3.BucketPolicy(
        "v2-tls-only",
        bucket=bucket.id,
        policy=bucket.arn.apply(
            lambda arn: doc(
                tls_only(arn),
                {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": arn},
                allow(
                    "s3:GetObject", f"{arn}/*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/x"}
                ),
            )
        ),
    )
    _inline_policy()


def test_secured_buckets_of_both_types_pass() -> None:
    verdict = judge(run(_acceptable))
    assert verdict.violations == {}
    assert verdict.unknown == {}


def test_in_a_preview_buckets_are_matched_by_property_dependency() -> None:
    """Before a bucket exists its name is unknown; the engine's dependencies still link them."""
    verdict = judge(run(_acceptable, preview=True))
    assert verdict.violations == {}
    assert {rule for rule, _ in verdict.unknown} == {TLS, PUBLIC, ACCOUNT_RULE}, verdict.unknown
    # The documents are computed from the buckets' ARNs; an inline document is known, but the
    # mocks leave the name of a bucket they have not created unknown too.
    whys = {why.split(" at ")[1].split(" ")[0] for why in verdict.unknown.values()}
    assert whys <= {".policy", ".bucket"}, verdict.unknown


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov", "aws-iso-b"])
@pytest.mark.parametrize("state_key", ["bucket", "arn"])
def test_the_tls_only_deny_matches_the_bucket_in_any_partition(
    partition: str, state_key: str
) -> None:
    """The Deny names the bucket's ARN in the stack's partition; by its name, or by its ARN."""
    for name, caught in ((physical("data-bucket"), False), ("another-bucket", True)):
        arn = f"arn:{partition}:s3:::{name}"
        recorded = run(lambda arn=arn: secure_bucket("data", tls=lambda _: doc(tls_only(arn))))
        for resource in recorded:
            if resource.typ == "aws:s3/bucket:Bucket":
                resource.state.pop(state_key, None)
        assert (TLS in judge(recorded).rules()) is caught, arn


def _literal_block() -> None:
    """A public access block and policy naming an existing bucket's name as text."""
    secure_bucket("data", block=False, tls=None)
    name = physical("data-bucket")
    public_access_block("data", name)
    aws.s3.BucketPolicy("data-tls-only", bucket=name, policy=doc(tls_only(f"arn:aws:s3:::{name}")))


def test_a_bucket_named_as_text_is_matched_by_value() -> None:
    """Without a property dependency, the names are compared: equal in `up`, unknown before."""
    assert judge(run(_literal_block)).violations == {}
    verdict = judge(run(_literal_block, preview=True))
    assert verdict.violations == {}
    assert (BLOCKED, "<stack>") in verdict.unknown and (TLS, "<stack>") in verdict.unknown


def _policy_for_a_bucket_not_known_yet() -> None:
    """A second policy whose `bucket` is computed from another new resource: in a first
    preview, nothing tells which bucket it is for."""
    secure_bucket("data")
    source = role("source")
    name = aws.ssm.Parameter("bucket-name", type="String", value=source.arn).value
    public_access_block("other", name)
    aws.s3.BucketPolicy("other-policy", bucket=name, policy=doc())


def test_a_policy_or_block_for_a_bucket_not_known_yet_is_never_skipped() -> None:
    """Preview: the rules say they cannot decide that policy and that block, never that they
    passed; in `up` its value is known and names no bucket of the stack."""
    verdict = judge(run(_policy_for_a_bucket_not_known_yet, preview=True))
    assert verdict.violations == {}
    assert {(TLS, "other-policy"), (BLOCKED, "other-public-access")} <= set(verdict.unknown)
    assert {(TLS, "<stack>"), (BLOCKED, "<stack>")} <= set(verdict.unknown)
    assert judge(run(_policy_for_a_bucket_not_known_yet)).violations == {}


def test_a_bare_bucket_is_reported_in_a_preview_next_to_undecided_ones() -> None:
    """Each bucket is decided on its own: the secure bucket's policy is unknown in a first
    preview, the bare bucket's missing block and policy are not."""

    def program() -> None:
        secure_bucket("data")
        aws.s3.BucketV2("bare")

    verdict = judge(run(program, preview=True))
    assert set(verdict.violations) == {(BLOCKED, "bare"), (TLS, "bare")}, verdict.violations
    assert (TLS, "data-bucket") in verdict.unknown, verdict.unknown

"""The pack's KMS rules: a key policy lets no one but the stack's account use the key, and no
role holds `kms:*` or a KMS action on `*` (the identity rule, which covers KMS too).

Each breakage is a real program judged under the mocks; the program's own KMS stack passes.
"""

from __future__ import annotations

from typing import Any

import pulumi_aws as aws
import pytest
from conftest import ACCOUNT, REGION
from support.policy_harness import judge, run
from support.policy_programs import OTHER_ACCOUNT, Breakage, allow, assert_caught, doc, role

from infra import policies

PUBLIC = "kms-key-policy-no-public-use"
OWN = "kms-key-policy-own-account"
WILDCARD = "iam-no-wildcard-allow"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def _key(*extra: dict[str, Any]) -> Any:
    def program() -> None:
        statements = [*policies.key_policy(ROOT)["Statement"], *extra]
        aws.kms.Key("data-key", policy=doc(*statements), enable_key_rotation=True)
        role("anchor")  # the stack's account, for the own-account rule

    return program


def _grant(action: str, resource: str) -> Any:
    def program() -> None:
        holder = role("holder")
        aws.iam.RolePolicy("holder-grant", role=holder.name, policy=doc(allow(action, resource)))

    return program


def use(principal: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": "kms:Decrypt", "Resource": "*"}


NOT_PRINCIPAL = {"Effect": "Allow", "NotPrincipal": {"AWS": ROOT}, "Action": "kms:Decrypt"}


def breakage(id_: str, program: Any, rule: str, resource: str, message: str) -> Breakage:
    return Breakage(id=f"kms-{id_}", rule=rule, resource=resource, message=message, program=program)


BREAKAGES = [
    breakage("anyone", _key(use("*")), PUBLIC, "data-key", 'lets anyone ("*") use the key'),
    breakage("aws-anyone", _key(use({"AWS": "*"})), PUBLIC, "data-key", 'lets anyone ("*")'),
    breakage(
        "a-service",
        _key(use({"Service": "s3.amazonaws.com"})),
        PUBLIC,
        "data-key",
        'the Service principal "s3.amazonaws.com"',
    ),
    breakage(
        "not-principal",
        _key({**NOT_PRINCIPAL, "Resource": "*"}),
        PUBLIC,
        "data-key",
        "everyone but its NotPrincipal",
    ),
    breakage(
        "other-account",
        _key(use({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"})),
        OWN,
        "data-key",
        f"of account {OTHER_ACCOUNT}, not this stack's",
    ),
    breakage(
        "other-account-role",
        _key(use({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:role/reader"})),
        OWN,
        "data-key",
        f"arn:aws:iam::{OTHER_ACCOUNT}:role/reader, of account {OTHER_ACCOUNT}",
    ),
    breakage("star", _grant("kms:*", "*"), WILDCARD, "holder-grant", 'allows "kms:*"'),
    breakage(
        "decrypt-anywhere",
        _grant("kms:Decrypt", "*"),
        WILDCARD,
        "holder-grant",
        'allows kms:Decrypt on Resource "*"',
    ),
]


@pytest.mark.parametrize("case", BREAKAGES, ids=lambda b: b.id)
def test_each_kms_breakage_is_caught(case: Breakage) -> None:
    assert_caught(case)


def test_the_programs_own_kms_stack_passes_the_pack() -> None:
    config = {
        "aws:region": REGION,
        "ec2-assume-role:services": [
            {"name": "made", "encryption": "kms"},
            {"name": "plain"},
        ],
    }
    verdict = judge(run(config=config))
    assert verdict.violations == {}, verdict.violations
    assert verdict.unknown == {}, verdict.unknown

"""Which side of the trust is missing: the decision table of `explain_assume_denied`.

moto does not implement iam:SimulatePrincipalPolicy, so these tests give a real botocore IAM
client canned answers with botocore's own Stubber; the end-to-end cases are in test_check.py
and test_rehearsal.py.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from checks.diagnose import explain_assume_denied
from checks.stack_outputs import ServiceTarget
from infra import policies

HOST = "arn:aws:iam::123456789012:role/dev-host-role-1"
CALLER = "arn:aws:sts::123456789012:assumed-role/dev-host-role-1/i-0123456789abcdef0"
TARGET = ServiceTarget(
    name="service-a",
    bucket_name="service-a-bucket",
    bucket_arn="arn:aws:s3:::service-a-bucket",
    role_arn="arn:aws:iam::123456789012:role/service-a-role-1",
    role_name="service-a-role-1",
    account="123456789012",
)
EC2 = "ec2.amazonaws.com"
TRUSTING = policies.trust_policy(EC2, [HOST])
NOT_TRUSTING = policies.trust_policy(EC2)


def _role(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "Role": {
            "Path": "/",
            "RoleName": TARGET.role_name,
            "RoleId": "AROAEXAMPLEROLEID0001",
            "Arn": TARGET.role_arn,
            "CreateDate": "2026-01-01T00:00:00Z",
            "AssumeRolePolicyDocument": json.dumps(document),
        }
    }


def explain(trust: dict[str, Any] | None, decision: str | None) -> str:
    """Diagnose with GetRole answering `trust` (None: AccessDenied) and the simulation
    answering `decision` (None: AccessDenied)."""
    iam = boto3.client(
        "iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(iam) as stub:
        if trust is None:
            stub.add_client_error("get_role", "AccessDenied", "not allowed")
        else:
            stub.add_response("get_role", _role(trust))
        if decision is None:
            stub.add_client_error("simulate_principal_policy", "AccessDenied", "not allowed")
        else:
            result = {"EvalActionName": "sts:AssumeRole", "EvalDecision": decision}
            stub.add_response("simulate_principal_policy", {"EvaluationResults": [result]})
        detail = explain_assume_denied(iam, CALLER, TARGET, "AccessDenied: no")
        stub.assert_no_pending_responses()
    return detail


@pytest.mark.parametrize(
    ("trust", "decision", "expected", "absent"),
    [
        (TRUSTING, "implicitDeny", "Cause: identity side", "resource side"),
        (TRUSTING, None, "Cause: identity side", "resource side"),
        (NOT_TRUSTING, "allowed", "Cause: resource side", "identity side"),
        (NOT_TRUSTING, None, "Cause: resource side", "Both sides"),
        (NOT_TRUSTING, "implicitDeny", "Both sides are missing", "One of two"),
        (None, "implicitDeny", "Cause: identity side", "Both sides"),
        (TRUSTING, "allowed", "yet both sides are in place", "Cause: identity"),
        (None, None, "One of two sides is missing", "Cause:"),
    ],
)
def test_the_missing_side_is_named_from_what_the_caller_may_read(
    trust: dict[str, Any] | None, decision: str | None, expected: str, absent: str
) -> None:
    """Each answer IAM can give leads to one diagnosis, and never to a wrong certainty."""
    detail = explain(trust, decision)
    assert expected in detail and absent not in detail, detail


def test_a_deleted_and_recreated_host_role_is_recognised() -> None:
    """IAM shows a deleted principal by its unique id: the trust broke silently."""
    stale = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "AROAOLDHOSTROLEID0001"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    detail = explain(stale, "allowed")
    assert "Cause: resource side" in detail and "AROAOLDHOSTROLEID0001" in detail
    assert "unique id of a deleted role" in detail

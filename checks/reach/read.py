"""Read what the reach proof judges: the account's IAM, once, and each stack bucket's policy.

A few paginated requests, however many services: `iam:GetAccountAuthorizationDetails` returns
every role, user, group and managed policy with its documents, and `s3:GetBucketPolicy` is one
request per bucket. A denied read names the permission that is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.explain import describe, error_code
from checks.plan import DENIED
from checks.reach.documents import Account, Statement, account_from_details, statements
from checks.reach.keys import KeyDocuments, KeyGrant
from checks.work import Deadline, WorkPool, reraise, wait_until

READ_ACTIONS = ("iam:GetAccountAuthorizationDetails", "s3:GetBucketPolicy")
KEY_READ_ACTIONS = ("kms:GetKeyPolicy", "kms:ListGrants")
"""Read too when a service uses SSE-KMS: each key's policy and grants."""
# Bucket policies are read side by side; they are small and S3 answers each at once.
POLICY_READERS = 16


class ReadDenied(Exception):
    """The reader lacks a permission: its message names the action and resource."""


class ReadFailed(Exception):
    """AWS did not answer a read: the proof cannot be made."""


def read_account(iam: Any) -> Account:
    """Every page of GetAccountAuthorizationDetails, as one Account."""
    try:
        pages = list(iam.get_paginator("get_account_authorization_details").paginate())
    except ClientError as err:
        if error_code(err) in DENIED:
            raise ReadDenied(
                "iam:GetAccountAuthorizationDetails (Resource *) is not allowed to the reader: "
                f"{describe(err)}"
            ) from None
        raise ReadFailed(f"iam:GetAccountAuthorizationDetails failed: {describe(err)}") from None
    except BotoCoreError as err:
        raise ReadFailed(f"cannot reach IAM: {err}") from None
    return account_from_details(pages)


def _policy(s3: Any, bucket: str, owner: str) -> tuple[Statement, ...]:
    try:
        answer = s3.get_bucket_policy(Bucket=bucket, ExpectedBucketOwner=owner)
    except ClientError as err:
        code = error_code(err)
        if code == "NoSuchBucketPolicy":
            return ()
        if code in DENIED:
            raise ReadDenied(
                f"s3:GetBucketPolicy on arn of bucket {bucket} is not allowed to the reader: "
                f"{describe(err)}"
            ) from None
        raise ReadFailed(f"s3:GetBucketPolicy on {bucket} failed: {describe(err)}") from None
    except BotoCoreError as err:
        raise ReadFailed(f"cannot reach S3 for {bucket}: {err}") from None
    return statements(f"bucket policy of {bucket}", json.loads(answer["Policy"]))


def read_bucket_policies(
    s3: Any, buckets: Mapping[str, str], pool: WorkPool, deadline: Deadline
) -> dict[str, tuple[Statement, ...]]:
    """Each bucket's policy statements (none when it has no policy), by bucket name.

    `buckets` maps each bucket to the account that must own it (ExpectedBucketOwner). The
    reads run on the pool's daemon threads, so one that never answers cannot outlive the run.
    """
    answers = {b: pool.submit(partial(_policy, s3, b, owner)) for b, owner in buckets.items()}
    if not wait_until(answers.values(), deadline):
        raise ReadFailed("the bucket policies were not all read before the deadline")
    reraise(answers.values())
    return {bucket: future.result() for bucket, future in answers.items()}


def _key(kms: Any, arn: str) -> KeyDocuments:
    action = "kms:GetKeyPolicy"
    try:
        policy = kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]
        action = "kms:ListGrants"
        grants = [
            KeyGrant(
                grant_id=str(g.get("GrantId", "")),
                grantee=str(g.get("GranteePrincipal", "")),
                operations=tuple(str(o) for o in g.get("Operations", ())),
                constrained=bool(g.get("Constraints")),
            )
            for page in kms.get_paginator("list_grants").paginate(KeyId=arn)
            for g in page.get("Grants", ())
        ]
    except ClientError as err:
        code = error_code(err)
        if code == "NotFoundException":
            return KeyDocuments(policy=(), found=False)
        if code in DENIED:
            raise ReadDenied(
                f"{action} on key {arn} is not allowed to the reader: {describe(err)}"
            ) from None
        raise ReadFailed(f"{action} on key {arn} failed: {describe(err)}") from None
    except BotoCoreError as err:
        raise ReadFailed(f"cannot reach KMS for key {arn}: {err}") from None
    return KeyDocuments(statements(f"key policy of {arn}", json.loads(policy)), tuple(grants))


def read_keys(
    kms: Any, keys: Iterable[str], pool: WorkPool, deadline: Deadline
) -> dict[str, KeyDocuments]:
    """Each key's policy and grants, by key ARN, read side by side on the pool."""
    answers = {arn: pool.submit(partial(_key, kms, arn)) for arn in dict.fromkeys(keys)}
    if not wait_until(answers.values(), deadline):
        raise ReadFailed("the key policies were not all read before the deadline")
    reraise(answers.values())
    return {arn: future.result() for arn, future in answers.items()}


def read_policy(partition: str = "aws") -> dict[str, Any]:
    """The least a reader needs for the proof: the README gives this as a ready policy.

    GetAccountAuthorizationDetails has no resource-level permissions, so its Resource is `*`;
    it reads documents, never data. Bucket policies are read on the stack's buckets, and key
    policies and grants on keys (SSE-KMS services only).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadAccountAuthorizationDetails",
                "Effect": "Allow",
                "Action": "iam:GetAccountAuthorizationDetails",
                "Resource": "*",
            },
            {
                "Sid": "ReadBucketPolicies",
                "Effect": "Allow",
                "Action": "s3:GetBucketPolicy",
                "Resource": f"arn:{partition}:s3:::*",
            },
            {
                "Sid": "ReadKeyPoliciesAndGrants",
                "Effect": "Allow",
                "Action": list(KEY_READ_ACTIONS),
                "Resource": f"arn:{partition}:kms:*:*:key/*",
            },
        ],
    }

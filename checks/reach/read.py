"""Read what the reach proof judges: the account's IAM, once, and each stack bucket's policy.

A few paginated requests, however many services: `iam:GetAccountAuthorizationDetails` returns
every role, user, group and managed policy with its documents, and `s3:GetBucketPolicy` is one
request per bucket. A denied read names the permission that is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.explain import DENIED, describe, error_code
from checks.reach.documents import Account, Statement, account_from_details, statements
from checks.work import Deadline, WorkPool, reraise, wait_until

READ_ACTIONS = ("iam:GetAccountAuthorizationDetails", "s3:GetBucketPolicy")
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


def read_policy(partition: str = "aws") -> dict[str, Any]:
    """The least a reader needs for the proof: the README gives this as a ready policy.

    GetAccountAuthorizationDetails has no resource-level permissions, so its Resource is `*`;
    it reads documents, never data. Bucket policies are read on the stack's buckets.
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
        ],
    }

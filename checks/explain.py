"""Cause-and-fix texts for failed steps, shared by the local check and the SSM-run one."""

from __future__ import annotations

import re

from botocore.exceptions import ClientError

from checks.contract import PROBE_ACTIONS
from checks.plan import DENIED
from checks.stack_outputs import ServiceTarget

_CLI_ERROR = re.compile(r"An error occurred \((?P<code>[\w.]+)\)")


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "Unknown"))


def describe(err: Exception) -> str:
    """`Code: message` for an AWS error, `Type: text` for anything else."""
    if isinstance(err, ClientError):
        message = err.response.get("Error", {}).get("Message", "")
        return f"{error_code(err)}: {message}".rstrip(": ")
    return f"{type(err).__name__}: {err}"


def code_of(message: str) -> str | None:
    """The error code in an aws CLI / botocore message: `An error occurred (Code) when ...`."""
    match = _CLI_ERROR.search(message)
    return match["code"] if match else None


VERBS = {"list": "list", "get": "read objects in", "put": "write objects to", "delete": "delete"}


def over_privileged(who: str, actions: list[str], target: ServiceTarget, look_at: str) -> str:
    """A negative expectation that did not hold: an identity other than the owner got in.

    Names the identity, the actions and the bucket, where to look, and the fix.
    """
    granted = ", ".join(PROBE_ACTIONS[a] for a in actions)
    verbs = " and ".join(VERBS[a] for a in actions)
    return (
        f"{who} can {verbs} {target.bucket_name} ({granted}): over-privileged. Cause: a grant "
        f"reaches this bucket without {target.name}'s role. Look at: {look_at}, and the bucket "
        f"policy of {target.bucket_name}. Fix: remove that grant; only {target.name}'s role "
        "may reach the bucket."
    )


def host_policies(role_arn: str | None) -> str:
    name = role_arn.rsplit("/", 1)[-1] if role_arn else "the caller's role"
    return (
        "the host role's inline and attached policies "
        f"(aws iam list-role-policies --role-name {name})"
    )


def service_policies(target: ServiceTarget) -> str:
    return (
        f"the inline and attached policies of {target.name}'s role {target.role_name} "
        f"({target.name}-bucket-access grants its own bucket only)"
    )


def not_denied(got: str) -> str:
    return f"expected AccessDenied, got {got}"


KEY_ACTION_OF = {"s3:PutObject": "kms:GenerateDataKey", "s3:GetObject": "kms:Decrypt"}
"""What S3 asks KMS for, with the caller's credentials, to put or get an SSE-KMS object."""


def s3_failure(code: str | None, message: str, action: str, target: ServiceTarget) -> str:
    """Why an operation that must work on the service's own bucket failed, and what to do."""
    key_action = KEY_ACTION_OF.get(action)
    if code in DENIED and target.kms_key_arn and key_action:
        # S3 asks KMS with the caller's own credentials: either grant may be the missing one.
        which = (
            f"lacks {key_action} on its key {target.kms_key_arn}"
            if key_action in message
            else f"lacks {action} on its bucket or {key_action} on its key {target.kms_key_arn}"
        )
        return (
            f"{message}. Cause: {target.name}'s role {which}; the key's policy must also let "
            f"the account's IAM policies grant it. Fix: `pulumi up` restores the "
            f"{target.name}-bucket-access policy (and a created key's policy); a brought key "
            "needs the statement in docs/kms.md."
        )
    if code in DENIED:
        return (
            f"{message}. Cause: {target.name}'s role lacks {action} on its bucket. "
            f"Fix: `pulumi up` restores the {target.name}-bucket-access policy."
        )
    if code == "NoSuchBucket":
        return (
            f"bucket {target.bucket_name} does not exist. Cause: stale outputs or a destroyed "
            "stack. Fix: `pulumi up`, then read the outputs again."
        )
    if code == "PreconditionFailed":
        return "an object already exists at the test key; nothing was overwritten"
    return message

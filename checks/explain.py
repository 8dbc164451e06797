"""Cause-and-fix texts for failed steps, shared by the local check and the SSM-run one."""

from __future__ import annotations

import re

from botocore.exceptions import ClientError

from checks.targets import ServiceTarget

DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
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


def over_privileged(who: str, target: ServiceTarget) -> str:
    """A negative expectation that did not hold: someone other than the service role got in."""
    return (
        f"{who} can list {target.bucket_name}: over-privileged. Cause: an S3 grant reaches this "
        f"bucket without {target.name}'s role. Fix: remove it; only {target.name}'s role may "
        "reach the bucket."
    )


def not_denied(got: str) -> str:
    return f"expected AccessDenied, got {got}"


def s3_failure(code: str | None, message: str, action: str, target: ServiceTarget) -> str:
    """Why an operation that must work on the service's own bucket failed, and what to do."""
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

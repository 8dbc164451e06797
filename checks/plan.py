"""The negative expectations as data, and the one reading of an answer to them.

Both runners take their probes from here. The boto3 runner (checks.isolation) sends them itself;
`--via-ssm` renders them for the host, whose script only sends each request and prints the
answer's code, in plan order. Whichever runner sent a request, `judge` alone turns its answer
into a verdict, so the two cannot drift apart: only AccessDenied proves a denial, and a
request without an answer (the host printed none, or printed it garbled) is never denied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from checks.contract import PROBE_ACTIONS

HOST = "host"
"""The shared host's own role, as an identity of the plan."""
ACTIONS = tuple(PROBE_ACTIONS)
SUCCEEDED = "OK"
"""The code of an answer that was a success."""
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
"""The only answers that prove a denial."""
PROOF_OF_ACCESS = frozenset({"PreconditionFailed", "NoSuchKey"})
"""S3 evaluates a request's preconditions, and looks for its key, only after authorizing it."""
CODE = re.compile(r"[A-Za-z0-9.]{1,40}")
"""What an answer's code may look like: AWS error codes are short words, dots allowed."""
OPERATIONS = {
    "list": "ListObjectsV2",
    "get": "GetObject",
    "put": "PutObject",
    "delete": "DeleteObject",
}
"""The S3 operation each probe sends: only its own error proves anything about the action."""


class Verdict(Enum):
    DENIED = "denied"
    ALLOWED = "allowed"
    UNPROVEN = "unproven"


@dataclass(frozen=True)
class Request:
    """One probe: `who` (HOST or a service's role) sends `action` to `owner`'s bucket."""

    who: str
    owner: str
    action: str


def judge(
    code: str | None, action: str | None = None, by: str | None = None
) -> tuple[Verdict, str]:
    """The verdict on one answer and why: `code` is SUCCEEDED, an AWS error code, or None for
    no answer at all (a lost connection, a line the host never printed or printed garbled).

    `by` is the operation whose error it is, where the caller knows it; for a probe's `action`
    only its own S3 operation's error counts. The aws CLI assumes a profile's role inside the
    same command, so an AccessDenied there may be the AssumeRole's: it proves nothing of S3.
    """
    if code is None or not CODE.fullmatch(code):
        return Verdict.UNPROVEN, "no answer"
    if code == SUCCEEDED:
        return Verdict.ALLOWED, "the request succeeded"
    if action is not None and by != OPERATIONS[action]:
        came = f"the {by} call before it" if by else "no operation the answer names"
        return Verdict.UNPROVEN, f"{code} came from {came}, not from {OPERATIONS[action]}"
    if code in DENIED:
        return Verdict.DENIED, code
    if code in PROOF_OF_ACCESS:
        return Verdict.ALLOWED, f"S3 answered {code}, which it does only after authorizing it"
    return Verdict.UNPROVEN, f"expected AccessDenied, got {code}"


def others(names: Sequence[str], index: int, sample: int | None) -> list[str]:
    """The buckets service `names[index]` probes: every other one, or `sample` of them in
    rotation, so that every bucket is probed by `sample` identities and every identity
    probes `sample` buckets."""
    count = len(names) - 1 if sample is None else min(sample, len(names) - 1)
    return [names[(index + step) % len(names)] for step in range(1, count + 1)]


def shared_pairs(checked: Sequence[str], sample: int | None) -> dict[str, list[str]]:
    """Shared topology: identity -> the buckets it probes. The host probes every checked
    bucket, each service role the others (or a sample of them)."""
    order = list(checked)
    pairs = {HOST: order}
    for index, name in enumerate(order):
        pairs[name] = others(order, index, sample)
    return pairs


def requests_of(pairs: dict[str, list[str]], with_object: set[str]) -> list[Request]:
    """The requests, in plan order: every list, get and put before any delete, so that no
    get can miss the owner's object because a leaking delete removed it first. A bucket
    whose owner wrote no test object is only listed: a get, put or delete aimed at a
    missing key proves nothing (the step says so)."""
    first = [
        Request(who, owner, action)
        for who, owners in pairs.items()
        for owner in owners
        for action in ACTIONS[:3]
        if action == "list" or owner in with_object
    ]
    deletes = [
        Request(who, owner, "delete")
        for who, owners in pairs.items()
        for owner in owners
        if owner in with_object
    ]
    return first + deletes

"""The one plan and the one reading of an answer (checks.plan), shared by both runners.

The property test renders random plans into what the host prints, damages that output the
ways a host can (cut, lost, repeated, garbled and reordered lines), and holds the `--via-ssm`
reading of it against the boto3 runner's reading of the same answers: they agree verdict for
verdict wherever the host's line arrived intact, and a request without one is never denied.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.check_world import shared_targets

from checks.host_report import parse_host_output
from checks.isolation import DIRECT, ISOLATION, ProofTask, step_of
from checks.plan import (
    HOST,
    OPERATIONS,
    SUCCEEDED,
    Verdict,
    judge,
    requests_of,
    shared_pairs,
)
from checks.probes import TestObject as Planted
from checks.probes import probe
from checks.via_ssm import _probe_steps as probe_steps
from checks.via_ssm import read_answers

NAMES = [f"s{i}" for i in range(6)]
TARGETS = shared_targets(NAMES)
CODES = [
    SUCCEEDED,
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "PreconditionFailed",
    "NoSuchKey",
    "SlowDown",
    "InternalError",
    "NoSuchBucket",
    "",  # the request got no answer at all (a lost connection)
]


class AnsweringS3:
    """An S3 client for the boto3 runner whose every call answers with the given code, as an
    error of the given operation."""

    def __init__(self, code: str, operation: str) -> None:
        self.code = code
        self.operation = operation

    def _answer(self, **_kwargs: Any) -> dict[str, Any]:
        if self.code == SUCCEEDED:
            return {"Body": io.BytesIO(b"")}
        if not self.code:
            raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")
        raise ClientError({"Error": {"Code": self.code, "Message": "m"}}, self.operation)

    list_objects_v2 = get_object = put_object = delete_object = _answer


def boto3_verdict(action: str, owner: str, code: str, operation: str) -> Verdict:
    obj = Planted(f"ec2-assume-role-check/run/{owner}", "token")
    s3 = AnsweringS3(code, operation)
    return probe(s3, "someone", action, TARGETS.services[owner], obj).verdict


def test_judge_says_denied_only_for_a_denial() -> None:
    """The verdict table both runners share; the property test below relies on it."""
    assert judge("AccessDenied")[0] is Verdict.DENIED
    assert judge("UnauthorizedOperation")[0] is Verdict.DENIED
    for code in (SUCCEEDED, "PreconditionFailed", "NoSuchKey"):
        assert judge(code)[0] is Verdict.ALLOWED, code
    for code in (None, "", "SlowDown", "Access Denied", "AccessDenied\tx", "A" * 41):
        assert judge(code)[0] is Verdict.UNPROVEN, code
    # For a probe, only its own S3 operation's error says anything about the action.
    assert judge("AccessDenied", "get", "GetObject")[0] is Verdict.DENIED
    assert judge("NoSuchKey", "get", "GetObject")[0] is Verdict.ALLOWED
    for by in ("AssumeRole", "ListObjectsV2", None):
        assert judge("AccessDenied", "get", by)[0] is Verdict.UNPROVEN, by
    assert judge(SUCCEEDED, "get", None)[0] is Verdict.ALLOWED


def test_the_plan_sends_every_delete_after_every_other_request() -> None:
    """A leaking delete must not remove an object a get is yet to be aimed at."""
    plan = requests_of(shared_pairs(NAMES[:4], None), set(NAMES[:4]))
    first_delete = next(i for i, r in enumerate(plan) if r.action == "delete")
    assert all(r.action == "delete" for r in plan[first_delete:])
    assert len(plan) == 4 * (4 + 4 * 3), "the host on 4 buckets, each role on 3, 4 actions"


def test_a_sample_rotates_so_every_bucket_is_probed_and_every_role_probes() -> None:
    pairs = shared_pairs(["a", "b", "c"], 1)
    assert pairs == {HOST: ["a", "b", "c"], "a": ["b"], "b": ["c"], "c": ["a"]}


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Any, ...]:
    count = draw(st.integers(min_value=1, max_value=len(NAMES)))
    checked = NAMES[:count]
    sample = draw(st.none() | st.integers(min_value=1, max_value=max(1, count - 1)))
    with_object = set(draw(st.lists(st.sampled_from(checked), unique=True)))
    pairs = {w: o for w, o in shared_pairs(checked, sample).items() if o}
    numbered = list(enumerate(requests_of(pairs, with_object)))
    # Each answer: a code, and the operation whose error it is: mostly the request's own,
    # sometimes the AssumeRole the aws CLI made first.
    drawn = st.tuples(st.sampled_from(CODES), st.sampled_from([True, True, True, False]))
    picks = draw(st.lists(drawn, min_size=len(numbered), max_size=len(numbered)))
    codes = [
        (code, "" if code == SUCCEEDED else OPERATIONS[r.action] if own else "AssumeRole")
        for (_n, r), (code, own) in zip(numbered, picks, strict=True)
    ]
    lines = [
        f"ANSWER\t{n}\t{code}\t{n % 97}\t{operation}"
        for (n, _r), (code, operation) in zip(numbered, codes, strict=True)
    ]
    damage = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["drop", "repeat", "garble", "swap", "cut"]),
                st.integers(min_value=0, max_value=max(0, len(lines) - 1)),
            ),
            max_size=4,
        )
    )
    for kind, at in damage:
        if not lines or at >= len(lines):
            continue
        if kind == "drop":
            del lines[at]
        elif kind == "repeat":
            lines.insert(at, lines[at])
        elif kind == "garble":
            lines[at] = lines[at][: draw(st.integers(0, max(0, len(lines[at]) - 1)))] + draw(
                st.sampled_from(["", "\t", " x", "\tAccessDenied", "\x1b[0m"])
            )
        elif kind == "swap" and at + 1 < len(lines):
            lines[at], lines[at + 1] = lines[at + 1], lines[at]
        elif kind == "cut":
            del lines[at:]
    return checked, pairs, with_object, numbered, codes, lines


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_via_ssm_and_boto3_agree_and_no_lost_answer_is_denied(world: tuple[Any, ...]) -> None:
    checked, pairs, with_object, numbered, codes, lines = world
    stdout = "\n".join(["SOURCE\tarn:aws:sts::1:assumed-role/host/i-1", *lines])
    output = parse_host_output(stdout, set(checked), set(), [n for n, _r in numbered])
    read = read_answers(numbered, [output], {})
    # Intact: the host's line for the request was read, with the code it really answered and
    # the operation that answered it.
    intact = {
        n: answer
        for (n, _r), answer in zip(numbered, codes, strict=True)
        if n in output.answers and (output.answers[n][0], output.answers[n][2]) == answer
    }
    boto3_tasks: dict[tuple[str, str], list[ProofTask]] = {}
    for n, request in numbered:
        verdict = read[n][0]
        if n in intact:
            code, operation = intact[n]
            expected = boto3_verdict(request.action, request.owner, code, operation)
            assert verdict is expected, (request, code, operation)
            if operation == "AssumeRole":
                assert verdict is not Verdict.DENIED, "an AssumeRole refusal proves nothing of S3"
        else:
            assert verdict is not Verdict.DENIED, (request, lines)
    # The steps: the --via-ssm ones from what the host printed, the boto3 runner's from the
    # same answers delivered intact; a step may pass only where the boto3 one passes too.
    steps = probe_steps(TARGETS, pairs, numbered, read)
    for who, owners in pairs.items():
        for owner in owners:
            key = (owner, DIRECT) if who == HOST else (who, ISOLATION)
            target = TARGETS.services[owner]
            obj = (
                Planted(f"ec2-assume-role-check/run/{owner}", "t") if owner in with_object else None
            )
            task = ProofTask("x", key, "look", None, target, obj)
            for n, request in numbered:
                if (request.who, request.owner) == (who, owner):
                    s3 = AnsweringS3(*codes[n])
                    task.probes.append(probe(s3, "x", request.action, target, obj))
            if obj is None:
                task.probes += [probe(None, "x", a, target, None) for a in ("get", "put", "delete")]
            boto3_tasks.setdefault(key, []).append(task)
    for key, tasks in boto3_tasks.items():
        expected = step_of(key, tasks).ok
        assert not steps[key].ok or expected, (key, steps[key].detail)
        if all(n in intact for n, r in numbered if key in ((r.owner, DIRECT), (r.who, ISOLATION))):
            assert steps[key].ok is expected, (key, steps[key].detail)


@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException"])
def test_a_lost_or_garbled_answer_is_never_denied_even_when_every_other_is(code: str) -> None:
    """A control for the property test: one request of an all-denied plan loses its line."""
    pairs = shared_pairs(["s0", "s1"], None)
    numbered = list(enumerate(requests_of(pairs, {"s0", "s1"})))
    lines = [f"ANSWER\t{n}\t{code}\t1\t{OPERATIONS[r.action]}" for n, r in numbered]
    del lines[5]
    stdout = "\n".join(["SOURCE\tarn", *lines])
    output = parse_host_output(stdout, {"s0", "s1"}, set(), [n for n, _r in numbered])
    read = read_answers(numbered, [output], {})
    assert read[5][0] is Verdict.UNPROVEN and "no answer" in read[5][1]
    assert all(read[n][0] is Verdict.DENIED for n, _r in numbered if n != 5)
    steps = probe_steps(TARGETS, pairs, numbered, read)
    assert [key for key, step in steps.items() if not step.ok] == [(numbered[5][1].owner, DIRECT)]

"""Reading the host's output (checks.host_report) and assembling the report from it
(checks.via_ssm): what the host printed, garbled or cut, never passes for what it did not."""

from __future__ import annotations

from typing import Any

import pytest
from support.check_world import shared_targets

from checks.host_report import HostError, parse_host_output
from checks.isolation import DIRECT
from checks.plan import HOST, OPERATIONS, requests_of, shared_pairs
from checks.via_ssm import _assemble as assemble
from checks.via_ssm import _probe_steps as probe_steps
from checks.via_ssm import read_answers

TARGETS = shared_targets(("a", "b"))
KNOWN = {"a", "b"}
SOURCE = "SOURCE\tarn:aws:sts::123456789012:assumed-role/host/i-1"
PAIRS = shared_pairs(["a", "b"], None)
NUMBERED = list(enumerate(requests_of(PAIRS, {"a", "b"})))
"""The healthy plan for a and b: 12 requests, host on both buckets, each role on the other."""


def healthy_lines(name: str, *, delete: bool = True) -> list[str]:
    """What a healthy prepare and cleanup print for one service."""
    steps = ["assume role", "list", "put", "get", *(["delete"] if delete else [])]
    return [f"CHECK\t{name}\t{step}\tOK\t5\tok" for step in steps]


def answers(codes: dict[int, str] | None = None) -> list[str]:
    """ANSWER lines for the healthy plan: every request denied, but for `codes`; each error
    names the S3 operation of its request, as the aws CLI does."""
    codes = codes or {}
    lines = []
    for n, request in NUMBERED:
        code = codes.get(n, "AccessDenied")
        operation = "" if code == "OK" else OPERATIONS[request.action]
        lines.append(f"ANSWER\t{n}\t{code}\t9\t{operation}")
    return lines


def report_of(own: list[str], probe: list[str], checked: list[str] | None = None) -> Any:
    """The report of a prepare + cleanup command's lines and a probe command's lines."""
    checked = checked or ["a", "b"]
    prepared = parse_host_output("\n".join([SOURCE, *own]), set(checked), set(checked))
    numbers = [n for n, _request in NUMBERED]
    probed = parse_host_output("\n".join([SOURCE, *probe]), set(checked), set(), numbers)
    outputs = [prepared, probed]
    steps = probe_steps(TARGETS, PAIRS, NUMBERED, read_answers(NUMBERED, outputs, {}))
    return assemble(TARGETS, checked, outputs, lambda *_: "", SOURCE, {}, steps)


HEALTHY = [*healthy_lines("a"), "END\ta", *healthy_lines("b"), "END\tb"]


def failing(report: Any) -> dict[str, list[str]]:
    return {
        name: [s.name for s in result.steps if not s.ok]
        for name, result in report.services.items()
        if not result.ok
    }


def test_parse_output_reads_each_kind_of_line() -> None:
    lines = [
        SOURCE,
        "CHECK\ta\tassume role\tAccessDenied\t7\tAn error occurred (AccessDenied) when ...",
        "CHECK\tb\tlist\t\t8\tCould not connect to the endpoint URL",
        "ANSWER\t0\tAccessDenied\t40\tListObjectsV2",
        "ANSWER\t2\tOK\t41\t",
        "END\ta",
        "DEADLINE\t30",
    ]
    out = parse_host_output("\n".join(lines), KNOWN, {"a", "b"}, range(3))
    (assume,) = out.checks["a"]
    assert (assume.name, assume.code, assume.ok, assume.ms) == (
        "assume role",
        "AccessDenied",
        False,
        7,
    )
    assert out.checks["b"][0].code == "" and not out.checks["b"][0].ok
    assert out.answers == {0: ("AccessDenied", 40, "ListObjectsV2"), 2: ("OK", 41, "")}
    assert out.ended == {"a"} and out.deadline == "30" and out.problems == {}


HOSTILE = [
    ("CHECK\ta\tlist\tOK\tfast\tlisted", "a", "ms a whole number"),
    ("CHECK\ta\tlist\tyes please\t3\tlisted", "a", "the code must be a word"),
    ("CHECK\ta\tlist\tOK", "a", "needs 5 fields"),
    ("CHECK\tzz\tlist\tOK\t3\tx", "*", "unknown service"),
    ("ANSWER\tmany\tOK\t3\t", "*", "for no request this command sent"),
    ("ANSWER\t99\tOK\t3\t", "*", "for no request this command sent"),
    ("\x1b[31mCHECK\ta\tlist\tOK\t3\tx", "*", "not a line of the check's protocol"),
]


@pytest.mark.parametrize(("line", "owner", "problem"), HOSTILE)
def test_hostile_and_garbled_lines_fail_without_a_traceback(
    line: str, owner: str, problem: str
) -> None:
    """A garbled line is a finding about the report, never a crash and never a pass."""
    out = parse_host_output(f"{SOURCE}\n{line}\nEND\ta\n", KNOWN, {"a"}, range(12))
    assert problem in out.problems[owner][0], out.problems


PUT = "ANSWER\t3\tAccessDenied\t9\tPutObject"
"""Request 3, the host's put on b, denied."""


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ([PUT, PUT], "plan order"),
        (["ANSWER\t4\tAccessDenied\t9\tListObjectsV2", PUT], "plan order"),
        (["ANSWER\t4\tAccess Denied\t9\tListObjectsV2", PUT], "plan order"),
        (["ANSWER\t3\tAccess Denied\t9\tPutObject"], "unreadable"),
        (["ANSWER\t3\tAccessDenied\t9"], "unreadable"),
        (["ANSWER\t3\tAccessDenied\t9\tPutObject\textra"], "unreadable"),
        (["ANSWER\t3\tAccessDenied\t9\tPut Object"], "named no operation"),
    ],
)
def test_an_answer_out_of_order_or_garbled_is_no_answer(lines: list[str], why: str) -> None:
    """Request 3 (the host's put on b) must not read as denied from a line that repeats,
    comes after a higher number (even one whose own line was garbled), or does not parse:
    nothing may stand in for its answer."""
    out = parse_host_output("\n".join([SOURCE, *lines]), KNOWN, set(), range(12))
    assert why in out.garbled[3] and 3 not in out.answers, (out.garbled, out.answers)
    verdict, detail, _ms = read_answers(NUMBERED, [out], {})[3]
    assert verdict.value == "unproven" and why in detail


def test_host_side_errors_are_one_clear_message() -> None:
    """If the script could not run, say why instead of reporting an empty success."""
    with pytest.raises(HostError, match="no usable credentials"):
        parse_host_output("ERROR\tthe host has no usable credentials: nope", KNOWN, {"a"})
    with pytest.raises(HostError, match="printed no check result"):
        parse_host_output("", KNOWN, {"a"})


def test_a_healthy_report_passes_so_the_negatives_below_mean_something() -> None:
    report = report_of(HEALTHY, answers())
    assert report.ok, [s.detail for r in report.services.values() for s in r.steps if not s.ok]
    assert [s.name for s in report.services["a"].steps] == [
        "direct access denied",
        "assume role",
        "list",
        "put",
        "get",
        "isolation",
        "delete",
    ]


def test_a_leak_fails_the_step_of_the_identity_that_leaks() -> None:
    """The host's get on b answered OK, and a's delete on b answered PreconditionFailed
    (S3 authorized it): b's direct step and a's isolation step fail, naming the action."""
    host_get_b = next(n for n, r in NUMBERED if (r.who, r.owner, r.action) == (HOST, "b", "get"))
    a_delete_b = next(n for n, r in NUMBERED if (r.who, r.owner, r.action) == ("a", "b", "delete"))
    report = report_of(HEALTHY, answers({host_get_b: "OK", a_delete_b: "PreconditionFailed"}))
    assert failing(report) == {"a": ["isolation"], "b": ["direct access denied"]}
    assert "s3:GetObject" in report.services["b"].steps[0].detail
    isolation = next(s for s in report.services["a"].steps if s.name == "isolation")
    assert "s3:DeleteObject" in isolation.detail


@pytest.mark.parametrize("cut", [False, True])
def test_answers_that_never_arrived_are_not_proven(cut: bool) -> None:
    """The host's lines stop after the first six answers (SSM keeps 24,000 characters, or
    the script died): the steps whose requests got no line fail as not proven."""
    probe = answers()[:6] + (["x" * 24_000] if cut else [])
    report = report_of(HEALTHY, probe)
    unproven = [s for r in report.services.values() for s in r.steps if s.name != "report"]
    assert not report.ok and {s.name for s in unproven if not s.ok} == {"isolation", DIRECT}
    for step in (s for s in unproven if not s.ok):
        assert "Not proven, so not passed" in step.detail and "no answer" in step.detail, step


@pytest.mark.parametrize("cut", [False, True])
def test_a_service_whose_report_ended_early_fails(cut: bool) -> None:
    """Steps that never arrived must not read as a pass: SSM keeps only 24,000 characters."""
    own = ["CHECK\ta\tassume role\tOK\t5\tassumed", "END\ta", "CHECK\tb\tassume role\tOK\t5\tx"]
    stdout = "\n".join([SOURCE, *own]) + ("\n" + "x" * 24_000 if cut else "")
    out = parse_host_output(stdout, KNOWN, {"a", "b"})
    report = assemble(TARGETS, ["a", "b"], [out], lambda *_: "", out.source)
    last = report.services["b"].steps[-1]
    assert last.name == "report complete" and not last.ok and not report.ok
    assert ("24,000 characters" in last.detail) is cut, last.detail


@pytest.mark.parametrize("dropped", ["get", "delete", "list"])
def test_an_end_without_a_step_the_service_owes_fails(dropped: str) -> None:
    """A host that ENDs a service without its get (or whose cleanup printed no delete)
    must not pass on the steps it did report."""
    own = list(HEALTHY)
    own.remove(f"CHECK\ta\t{dropped}\tOK\t5\tok")
    report = report_of(own, answers())
    assert failing(report) == {"a": ["report complete"]}
    assert f"lacks its {dropped} step" in report.services["a"].steps[-1].detail


def test_a_check_line_for_a_service_not_sent_is_a_finding_not_a_traceback() -> None:
    """With --service a, the host printing about b (or any service it was not sent for)
    fails the run with a `report` step."""
    lines = [SOURCE, *healthy_lines("a"), "CHECK\tb\tlist\tOK\t5\tok", "END\ta"]
    out = parse_host_output("\n".join(lines), KNOWN, {"a"})
    report = assemble(TARGETS, ["a"], [out], lambda *_: "", out.source)
    steps = report.services["a"].steps
    assert any(s.name == "report" and "'b'" in s.detail for s in steps), steps
    assert not report.ok


def test_a_failed_put_leaves_only_list_to_probe_and_says_so() -> None:
    """b's put was denied: the plan sends only list at b's bucket, and b's direct step fails
    for lack of a test object rather than passing on list alone."""
    own = [*healthy_lines("a"), "END\ta", "CHECK\tb\tassume role\tOK\t5\tok"]
    own += ["CHECK\tb\tlist\tOK\t5\tok", "CHECK\tb\tput\tAccessDenied\t5\tdenied", "END\tb"]
    plan = list(enumerate(requests_of(PAIRS, {"a"})))
    assert {(r.owner, r.action) for _n, r in plan if r.owner == "b"} == {("b", "list")}
    prepared = parse_host_output("\n".join([SOURCE, *own]), KNOWN, KNOWN)
    lines = [f"ANSWER\t{n}\tAccessDenied\t9\t{OPERATIONS[r.action]}" for n, r in plan]
    probed = parse_host_output("\n".join([SOURCE, *lines]), KNOWN, set(), range(len(plan)))
    steps = probe_steps(TARGETS, PAIRS, plan, read_answers(plan, [prepared, probed], {}))
    report = assemble(TARGETS, ["a", "b"], [prepared, probed], lambda *_: "", SOURCE, {}, steps)
    direct_b = report.services["b"].steps[0]
    assert not direct_b.ok and "no test object to aim at" in direct_b.detail
    assert "Cause" in next(s for s in report.services["b"].steps if s.name == "put").detail


def test_after_a_break_in_plan_order_no_later_answer_is_taken() -> None:
    """0 to 3, then 5 before 4: 5 was printed too early or 4 too late, so neither, nor any
    answer after them, is taken; 0 to 3, before the break, stand."""
    lines = answers()
    lines[4], lines[5] = lines[5], lines[4]
    out = parse_host_output("\n".join([SOURCE, *lines]), KNOWN, set(), range(12))
    assert sorted(out.answers) == [0, 1, 2, 3]
    assert sorted(out.garbled) == list(range(4, 12))
    assert all(
        v.value != "denied"
        for v, _why, _ms in [read_answers(NUMBERED, [out], {})[n] for n in range(4, 12)]
    )


def test_a_denial_the_assume_role_gave_proves_nothing_of_s3() -> None:
    """The aws CLI assumes the profile's role inside the same command: an AccessDenied of that
    AssumeRole (IAM not yet consistent in the probe command) is not the S3 action's denial."""
    lines = [line.rsplit("\t", 1)[0] + "\tAssumeRole" for line in answers()]
    report = report_of(HEALTHY, lines)
    assert failing(report) == {"a": [DIRECT, "isolation"], "b": [DIRECT, "isolation"]}
    isolation = next(s for s in report.services["a"].steps if s.name == "isolation")
    assert "AccessDenied came from the AssumeRole call before it, not from" in isolation.detail


def test_a_detail_with_other_line_breaks_stays_one_line() -> None:
    """The host's script turns tabs and newlines in a detail into spaces, not every character
    str.splitlines would split at: a vertical tab or U+0085 in an error message must not cut
    a CHECK line in two (and fail every service with a garbled line)."""
    line = "CHECK\ta\tlist\tNoSuchBucket\t5\tthe bucket\x0bis gone\x85 (see the console)"
    out = parse_host_output(f"{SOURCE}\r\n{line}\nEND\ta\n", KNOWN, {"a"})
    assert out.problems == {} and out.checks["a"][0].detail.endswith("(see the console)")

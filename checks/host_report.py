"""Reading what `remote_check.sh` printed on the host: robust against garbled or cut output.

Every line is checked for its shape. A line that does not parse fails the service it names
(or every service of the command, when it names none) with a `report` step that quotes it;
nothing the host prints can raise here. The host reports answers, never verdicts: a CHECK line
carries the code its call answered, an ANSWER line the code one planned request answered, and
the sender reads both with `checks.plan.judge`. SSM keeps at most 24,000 characters of output,
so a service without its END line, or a request without its ANSWER, failed to report.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from checks.plan import CODE
from checks.report import Step

OUTPUT_LIMIT = 24_000
"""GetCommandInvocation returns at most this many characters of a command's output."""


class HostError(Exception):
    """The host said the check could not run (an ERROR line), or printed nothing usable."""


@dataclass(frozen=True)
class HostStep:
    """A CHECK line: one step of a service's own, with the code its call answered."""

    name: str
    code: str
    """`OK`, an AWS error code, `MISMATCH` (a get read back other bytes), or empty."""
    ms: int
    detail: str

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    def step(self) -> Step:
        return Step(self.name, self.ok, self.ms, self.detail)


@dataclass
class HostOutput:
    source: str = ""
    checks: dict[str, list[HostStep]] = field(default_factory=dict)
    answers: dict[int, tuple[str, int, str]] = field(default_factory=dict)
    """Request number -> (its code, ms, the operation whose error it is), for every ANSWER
    line that parsed, in plan order."""
    garbled: dict[int, str] = field(default_factory=dict)
    """Request number -> what was wrong with the ANSWER line that named it, or with the order
    of the lines around it: no answer."""
    highest: int = -1
    """The highest request number an ANSWER line has named so far."""
    disordered: bool = False
    """An ANSWER line came out of plan order: no answer after it is taken."""
    ended: set[str] = field(default_factory=set)
    problems: dict[str, list[str]] = field(default_factory=dict)
    """Service (or `*`) -> lines that did not parse."""
    deadline: str = ""
    cut: bool = False
    expected: set[str] = field(default_factory=set)
    """The services a prepare or cleanup command was sent for: each must END."""

    def forget(self, names: Collection[str]) -> None:
        """Drop what this command said of `names`: they were sent again (a retry)."""
        for name in names:
            self.checks.pop(name, None)
            self.problems.pop(name, None)
        self.ended -= set(names)
        self.expected -= set(names)


def _number(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def _code(text: str) -> bool:
    """An answer's code: a short word, or empty where the call got no answer at all."""
    return not text or CODE.fullmatch(text) is not None


def _check(out: HostOutput, fields: list[str], known: set[str]) -> str | None:
    """A CHECK line; returns what is wrong with it, or None."""
    if len(fields) != 5:
        return "a CHECK line needs 5 fields"
    name, step, code, ms, detail = fields
    if name not in known:
        return f"unknown service {name!r}"
    if name not in out.expected:
        return f"a CHECK line for {name!r}, which this command was not sent for"
    number = _number(ms)
    if not _code(code) or number is None:
        return "the code must be a word and ms a whole number"
    if any(s.name == step for s in out.checks.get(name, [])):
        return f"a second {step!r} step for {name!r}"
    out.checks.setdefault(name, []).append(HostStep(step, code, number, detail))
    return None


def _answer(out: HostOutput, fields: list[str], requests: Collection[int], line: str) -> str | None:
    """An ANSWER line. Its number must be one the command sent, above every number named
    before it (the host prints them in plan order), so no line can stand in for another's
    answer. Once the order breaks, the answers from where it broke on are not taken: not the
    lines that name a number again or too early, nor any after them. A line that names its
    request but is otherwise wrong leaves that request without an answer."""
    number = _number(fields[0])
    if number is None or number not in requests:
        return "an ANSWER line for no request this command sent"
    shown = f"({line[:80]!r})"
    if number <= out.highest:
        out.disordered = True
        for later in [n for n in out.answers if n >= number]:
            out.answers.pop(later)
            out.garbled[later] = f"the host's answers broke plan order after it {shown}"
    out.highest = max(out.highest, number)
    if out.disordered:
        out.garbled.setdefault(number, f"the host's answers were out of plan order {shown}")
    elif len(fields) != 4 or _number(fields[2]) is None or not _code(fields[1]):
        out.garbled[number] = f"the host's answer was unreadable {shown}"
    elif not re.fullmatch(r"[A-Za-z0-9]{0,60}", fields[3]):
        out.garbled[number] = f"the host's answer named no operation it could {shown}"
    else:
        out.answers[number] = (fields[1], int(fields[2]), fields[3])
    return None


def parse_host_output(
    stdout: str, known: set[str], expected: set[str], requests: Collection[int] = ()
) -> HostOutput:
    """Parse one command's output; raise HostError only for an ERROR line or no SOURCE.

    `expected`: the services a prepare or cleanup command was sent for; `requests`: the
    numbers of the requests a probe command was sent."""
    out = HostOutput(cut=len(stdout) >= OUTPUT_LIMIT, expected=set(expected))
    # Lines end at a newline only: the host's details may hold other characters that
    # str.splitlines would split at (a vertical tab, U+0085).
    for line in stdout.split("\n"):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        problem: str | None = None
        if kind == "ERROR":
            raise HostError(f"the check could not run on the host: {rest}")
        if kind == "SOURCE":
            out.source = rest
        elif kind == "END":
            out.ended.add(rest)
        elif kind == "DEADLINE":
            out.deadline = rest
        elif kind == "CHECK":
            problem = _check(out, fields, known)
        elif kind == "ANSWER":
            problem = _answer(out, fields, requests, line)
        else:
            problem = "not a line of the check's protocol"
        if problem:
            owner = fields[0] if kind == "CHECK" and fields[0] in known else "*"
            out.problems.setdefault(owner, []).append(f"{problem}: {line[:120]!r}")
    if not out.source:
        shown = stdout.strip()[:200] or "nothing"
        raise HostError(f"the host printed no check result (it printed {shown!r})")
    return out

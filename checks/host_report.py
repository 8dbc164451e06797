"""Reading what `remote_check.sh` printed on the host: robust against garbled or cut output.

Every line is checked for its shape. A line that does not parse fails the service it names
(or every service of the command, when it names none) with a `report` step that quotes it;
nothing the host prints can raise here. SSM keeps at most 24,000 characters of output, so a
service or identity without its END line failed to report in full, and fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from checks.report import Step

OUTPUT_LIMIT = 24_000
"""GetCommandInvocation returns at most this many characters of a command's output."""
VERDICTS = ("allowed", "unproven")
ACTIONS = ("list", "get", "put", "delete")
_TOKEN = re.compile(
    r"(?P<service>[a-z][a-z0-9-]*):(?P<action>\w+):(?P<verdict>\w+)(?::(?P<code>.*))?"
)


class HostError(Exception):
    """The host said the check could not run (an ERROR line), or printed nothing usable."""


@dataclass
class Finding:
    service: str
    action: str
    verdict: str
    code: str


@dataclass
class Proof:
    pairs: int
    ms: int
    findings: list[Finding] = field(default_factory=list)
    more: int = 0
    """Findings the host left off its line (it prints at most 60)."""


@dataclass
class HostOutput:
    source: str = ""
    checks: dict[str, list[Step]] = field(default_factory=dict)
    proofs: dict[str, Proof] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    problems: dict[str, list[str]] = field(default_factory=dict)
    """Service (or `*`) -> lines that did not parse."""
    deadline: str = ""
    cut: bool = False
    expected: set[str] = field(default_factory=set)
    """The services (or `host`) the command was sent for: each must END."""


def _number(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def _check(out: HostOutput, fields: list[str], known: set[str]) -> str | None:
    """A CHECK line; returns what is wrong with it, or None."""
    if len(fields) != 5:
        return "a CHECK line needs 5 fields"
    name, step, ok, ms, detail = fields
    if name not in known:
        return f"unknown service {name!r}"
    if name not in out.expected:
        return f"a CHECK line for {name!r}, which this command was not sent for"
    number = _number(ms)
    if ok not in ("0", "1") or number is None:
        return "result must be 0 or 1 and ms a whole number"
    if any(s.name == step for s in out.checks.get(name, [])):
        return f"a second {step!r} step for {name!r}"
    out.checks.setdefault(name, []).append(Step(step, ok == "1", number, detail))
    return None


def _proof(out: HostOutput, fields: list[str], identities: set[str], known: set[str]) -> str | None:
    if len(fields) < 3:
        return "a PROOF line needs an identity, a pair count and ms"
    who, pairs, ms, *tokens = fields
    if who not in identities:
        return f"unknown identity {who!r}"
    if who not in out.expected:
        return f"a PROOF line for {who!r}, which this command was not sent for"
    if who in out.proofs:  # a second line could otherwise replace one that shows a leak
        return f"a second PROOF line for {who!r}"
    count, number = _number(pairs), _number(ms)
    if count is None or number is None:
        return "pair count and ms must be whole numbers"
    proof = Proof(count, number)
    for token in tokens:
        if token.startswith("more:") and _number(token[5:]) is not None:
            proof.more = int(token[5:])
            continue
        match = _TOKEN.fullmatch(token)
        if not match or match["service"] not in known or match["action"] not in ACTIONS:
            return f"unreadable finding {token[:80]!r}"
        if match["verdict"] not in VERDICTS:
            return f"unknown verdict {match['verdict']!r}"
        proof.findings.append(
            Finding(match["service"], match["action"], match["verdict"], match["code"] or "")
        )
    out.proofs[who] = proof
    return None


def parse_host_output(
    stdout: str, known: set[str], identities: set[str], expected: set[str]
) -> HostOutput:
    """Parse one command's output; raise HostError only for an ERROR line or no SOURCE."""
    out = HostOutput(cut=len(stdout) >= OUTPUT_LIMIT, expected=expected)
    for line in stdout.splitlines():
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
        elif kind == "PROOF":
            problem = _proof(out, fields, identities, known)
        else:
            problem = "not a line of the check's protocol"
        if problem:
            owner = fields[0] if fields and fields[0] in known | identities else "*"
            out.problems.setdefault(owner, []).append(f"{problem}: {line[:120]!r}")
    if not out.source:
        shown = stdout.strip()[:200] or "nothing"
        raise HostError(f"the host printed no check result (it printed {shown!r})")
    return out

"""What the check found: steps, per-service results, and how they are shown.

stdout carries only the report, as one JSON document (`--json`) or a table; diagnostics go to
logging on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


@dataclass(frozen=True)
class Step:
    name: str
    """A stable name, e.g. `assume role` or `direct access denied`."""
    ok: bool
    ms: int
    """Wall time of the step, retries included."""
    detail: str
    """What happened; for a failure, the cause and the fix."""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "ms": self.ms, "detail": self.detail}


@dataclass
class ServiceResult:
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)


@dataclass
class Report:
    source: str
    """The caller's ARN, as STS reports it: whose permissions were checked."""
    services: dict[str, ServiceResult]
    extra: dict[str, Any] = field(default_factory=dict)
    """More top-level JSON keys (the rehearsal adds its access matrix here)."""

    @property
    def ok(self) -> bool:
        return bool(self.services) and all(r.ok for r in self.services.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "services": {
                name: {"ok": result.ok, "steps": [s.as_json() for s in result.steps]}
                for name, result in self.services.items()
            },
            **self.extra,
        }


def write_json(report: Report, out: IO[str]) -> None:
    json.dump(report.as_json(), out, indent=2)
    out.write("\n")


def write_table(report: Report, out: IO[str]) -> None:
    """One row per service and step: PASS/FAIL, latency, and the cause and fix of failures."""
    console = Console(file=out, width=120, soft_wrap=False)
    # AWS error texts hold brackets (`[profile a]`); they are data, never rich markup.
    table = Table(title=f"ec2-assume-role check as {escape(report.source)}", title_justify="left")
    for column, justify in (("service", "left"), ("step", "left"), ("result", "left")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for name, result in report.services.items():
        for index, step in enumerate(result.steps):
            verdict = "[green]PASS[/]" if step.ok else "[bold red]FAIL[/]"
            table.add_row(
                escape(name) if index == 0 else "",
                escape(step.name),
                verdict,
                str(step.ms),
                escape(step.detail),
            )
        table.add_section()
    console.print(table)
    passed = sum(r.ok for r in report.services.values())
    summary = "all expectations hold" if report.ok else "some expectations FAILED"
    console.print(f"{passed}/{len(report.services)} services pass: {summary}")
    if proof := report.extra.get("proof"):
        console.print(proof_line(proof))
    if (reach := report.extra.get("reach")) is not None:
        console.print(reach_line(reach, probed="proof" in report.extra))


def proof_line(proof: Mapping[str, Any]) -> str:
    """How much of the negative proof ran: all of it, a sample, or (cut short) how much."""
    planned, done, sample = proof["planned"], proof["done"], proof.get("sample")
    buckets = "bucket" if sample == 1 else "buckets"
    how = f", each service role on {sample} other {buckets}, in rotation" if sample else ""
    if done < planned:
        return (
            f"proof INCOMPLETE: {done:,} of {planned:,} denial probes ran{how}; each failed "
            "step names what was not proven"
        )
    return f"proof: {planned:,} of {planned:,} denial probes ran{how}"


def reach_line(reach: Mapping[str, Any], probed: bool = True) -> str:
    """Which parts the documents prove, which the probes, and what neither covered."""
    if reach.get("skipped"):
        return f"reach: not proven ({reach['skipped']}): only the probed paths are proven"
    if "error" in reach:
        return "reach: NOT PROVEN: the documents could not be read (see the reach steps)"
    verdict = "no identity reaches beyond the design" if reach["ok"] else "FINDINGS (see reach)"
    probes = (
        "the probes check the documents against AWS's answers"
        if probed
        else "no probes ran (--reach-only)"
    )
    line = (
        f"reach: proven by documents for every path ({reach['judged']:,} identities judged of "
        f"{reach['rolesRead']:,} roles): {verdict}; {probes}"
    )
    if missed := reach.get("notCovered"):
        line += (
            f"; not covered (--service): the roles {', '.join(missed['roles'])} and the "
            f"buckets {', '.join(missed['buckets'])}"
        )
    return line


def write_matrix(
    rows: Mapping[str, Mapping[str, str]], columns: Iterable[str], out: IO[str]
) -> None:
    """Principals by buckets, each cell the allowed operations (`list read write` or `-`)."""
    console = Console(file=out, width=120, soft_wrap=False)
    table = Table(title="access matrix (allowed operations)", title_justify="left")
    table.add_column("principal", no_wrap=True)
    names = list(columns)
    for column in names:
        table.add_column(column, no_wrap=True)
    for principal, cells in rows.items():
        table.add_row(escape(principal), *(cells[c] for c in names))
    console.print(table)

"""`python -m checks --rehearse`: the whole job against an in-process AWS emulator (moto)."""

from __future__ import annotations

import argparse
import sys
import time

from checks.progress import Progress
from checks.report import write_json, write_matrix, write_table
from checks.runner import CheckOptions
from checks.signals import deferred
from checks.stack_outputs import UsageError


def rehearse(args: argparse.Namespace, started: float) -> int:
    """Run the rehearsal for the CLI; the same report and exit codes as the check."""
    if args.outputs is not None or args.via_ssm or args.service:
        raise UsageError("--rehearse deploys its own stack: drop --outputs, --via-ssm, --service")
    if args.stack is not None and args.config_file is not None:
        raise UsageError(
            "--stack and --config-file both name the stack config; give one "
            f"(--stack {args.stack} reads Pulumi.{args.stack}.yaml)"
        )
    if args.audit_profile or args.reach_only:
        raise UsageError(
            "--rehearse reads the emulator with its own auditor: drop --audit-profile, --reach-only"
        )
    from checks.options import probe_sample, refuse_conflicts
    from rehearsal import matrix
    from rehearsal.run import config_path, load_stack_config, run_rehearsal

    refuse_conflicts(args)
    stack, path = config_path(args.stack, args.config_file)
    options = CheckOptions(
        deadline_seconds=args.deadline, sample=probe_sample(args), progress=Progress()
    )
    rehearsal = run_rehearsal(
        load_stack_config(path), stack=stack, options=options, reach=not args.without_reach
    )
    report = rehearsal.report
    with deferred():  # a signal now waits until the report is out whole
        if args.json:
            write_json(report, sys.stdout)
        else:
            write_table(report, sys.stdout)
            access = report.extra["matrix"]
            write_matrix(matrix.cells(access), access["columns"], sys.stdout)
            if "hostAssumes" in access:
                assumable = [name for name, ok in access["hostAssumes"].items() if ok]
                print(f"the host role assumes: {', '.join(assumable) or 'nothing'}")
            if "roleReach" in access:
                print(f"role-to-role reach (documents): {', '.join(access['roleReach']) or 'none'}")
                beyond = [
                    f"{b['identity']} {b['action']} on {b['bucket']}" for b in access["beyond"]
                ]
                print(f"actions beyond list, get, put, delete: {', '.join(beyond) or 'none'}")
        sys.stdout.flush()
    t = rehearsal.timings
    print(
        f"checks: rehearsal of {path.name}: evaluate {t['evaluate']:.2f} s, deploy into the "
        f"emulator {t['deploy']:.2f} s, check {t['check']:.2f} s; "
        f"{time.perf_counter() - started:.2f} s since start-up",
        file=sys.stderr,
    )
    return 0 if report.ok else 1

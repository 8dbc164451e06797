"""`python -m checks`: the command-line contract. Exit 0: all hold; 1: one failed; 2: bad input."""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import boto3
from botocore.exceptions import BotoCoreError, ProfileNotFound

from checks.options import CheckOptions, probe_sample, refuse_conflicts
from checks.progress import Progress
from checks.reach.steps import PendingReach, with_reach
from checks.report import Report, write_json, write_table
from checks.runner import Checker
from checks.signals import Interrupted, deferred, interrupts
from checks.stack_outputs import (
    CheckError,
    Targets,
    UsageError,
    load_outputs_file,
    load_stack_outputs,
)
from checks.via_ssm import run_via_ssm
from checks.work import Deadline, client_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_DEADLINE = 300.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, no usage dump: the contract is one clear message and exit 2."""
        self.exit(EXIT_USAGE, f"checks: error: {message} (see --help)\n")


def _seconds(option: str, low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{option} {text!r} is not a number of seconds"
            ) from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{option} {text!r} must be between {low:g} and {high:g} seconds"
            )
        return value

    return parse


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"--sample {text!r} must be a whole number from 1")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m checks",
        description="Prove that each service role, and only it, reaches its bucket.",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="stack outputs as printed by `pulumi stack output --json`",
    )
    target.add_argument(
        "--stack",
        metavar="NAME",
        help="read the outputs of this stack with the pulumi CLI (default: current)",
    )
    parser.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="NAME",
        help="check only this service (repeatable)",
    )
    parser.add_argument(
        "--wait",
        type=_seconds("--wait", 0, 3600),
        default=60.0,
        metavar="SECONDS",
        help="retry AccessDenied this long while IAM changes propagate (default 60)",
    )
    parser.add_argument(
        "--deadline",
        type=_seconds("--deadline", 5, 86400),
        default=DEFAULT_DEADLINE,
        metavar="SECONDS",
        help="end the whole run by then; what has not finished fails (default 300)",
    )
    parser.add_argument(
        "--sample",
        type=_count,
        metavar="N",
        help="probe each service role on N other buckets (in rotation) instead of all of them; "
        "the report says so. Without it, every pair is probed, and a run the deadline cuts "
        "short fails",
    )
    parser.add_argument(
        "--without-peer-get",
        action="store_true",
        help="dedicated topology: accept that get on the other services' buckets is not proven "
        "(it needs an object only their own instances can write); the report still says so",
    )
    reach = parser.add_mutually_exclusive_group()
    reach.add_argument(
        "--audit-profile",
        metavar="NAME",
        help="read the account's IAM and the bucket policies for the reach proof with this AWS "
        "profile (default: the caller's own credentials)",
    )
    reach.add_argument(
        "--without-reach",
        action="store_true",
        help="skip the reach proof, accepting that only the probed paths are proven; every "
        "pair is then probed",
    )
    parser.add_argument(
        "--reach-only",
        action="store_true",
        help="run only the reach proof, no probes (CI after a deploy, the nightly drift run)",
    )
    parser.add_argument(
        "--full-probes",
        action="store_true",
        help="probe every pair of identity and bucket even though the reach proof covers them "
        "(by default the probes are a rotation that checks the proof against reality)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--via-ssm",
        action="store_true",
        help="run the check on the shared host through SSM Run Command",
    )
    parser.add_argument(
        "--rehearse",
        action="store_true",
        help="deploy the program into an in-process AWS emulator and check it (no account)",
    )
    parser.add_argument(
        "--config-file",
        type=Path,
        metavar="PATH",
        help="with --rehearse: the stack config (default Pulumi.<stack>.yaml, stack dev)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return parser


def select(targets: Targets, wanted: Sequence[str]) -> list[str]:
    """The --service names, de-duplicated and known to the stack; empty means the default."""
    unknown = [name for name in wanted if name not in targets.services]
    if unknown:
        known = ", ".join(targets.services)
        raise UsageError(f"unknown --service {unknown[0]!r}; the stack has: {known}")
    return list(dict.fromkeys(wanted))


def _load(args: argparse.Namespace) -> Targets:
    if args.outputs is not None:
        return load_outputs_file(args.outputs)
    return load_stack_outputs(args.stack)


def _session(profile: str | None = None) -> boto3.Session:
    try:
        return boto3.Session(profile_name=profile)
    except ProfileNotFound:
        raise UsageError(f"--audit-profile {profile!r}: no such AWS profile") from None
    except BotoCoreError as err:  # e.g. AWS_PROFILE names a profile that does not exist
        raise UsageError(f"cannot set up AWS credentials: {err}") from None


def _check(args: argparse.Namespace) -> Report:
    if args.config_file is not None:
        raise UsageError("--config-file goes with --rehearse")
    refuse_conflicts(args)
    targets = _load(args)
    names = select(targets, args.service)
    session = _session()
    reader = _session(args.audit_profile) if args.audit_profile else session
    if args.without_peer_get and (args.via_ssm or targets.topology != "dedicated"):
        raise UsageError("--without-peer-get is for the check on a dedicated-topology instance")
    deadline = Deadline(args.deadline)
    # The proof reads beside the probes, under the same deadline; it covers every service
    # unless --service narrowed the run.
    pending = None if args.without_reach else PendingReach(reader, targets, names, deadline)
    if pending is not None and args.reach_only:
        source = _reader_arn(reader, targets, deadline)
        return with_reach(Report(source, {}), pending)
    if args.via_ssm:
        report = run_via_ssm(
            session,
            targets,
            names,
            wait_seconds=args.wait,
            deadline_seconds=deadline.remaining(),
            sample=probe_sample(args),
        )
    else:
        options = CheckOptions(
            wait_seconds=args.wait,
            deadline_seconds=max(deadline.remaining(), 1.0),
            sample=probe_sample(args),
            progress=Progress(),
            without_peer_get=args.without_peer_get,
        )
        report = Checker(session, targets, options).run(names)
    if pending is None:
        report.extra["reach"] = {"ok": None, "skipped": "--without-reach"}
        return report
    return with_reach(report, pending)


def _reader_arn(reader: boto3.Session, targets: Targets, deadline: Deadline) -> str:
    """Whose documents view the report shows (--reach-only), asked within the deadline."""
    from botocore.exceptions import ClientError, NoCredentialsError

    config = client_config(deadline.remaining(), 1)
    try:
        sts = reader.client("sts", region_name=targets.region, config=config)
        return str(sts.get_caller_identity()["Arn"])
    except NoCredentialsError:
        raise UsageError("no usable AWS credentials for the reach proof") from None
    except (ClientError, BotoCoreError) as err:
        raise CheckError(
            f"sts:GetCallerIdentity failed for the reach proof's reader: {err}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    args = build_parser().parse_args(argv)
    with interrupts() as stopped:
        try:
            code = _main(args, started)
        except Interrupted as err:
            print(f"checks: interrupted by {err.name}", file=sys.stderr)
            return err.exit_code
        # A signal that something swallowed on its way (a library catching BaseException)
        # must still end the run as interrupted, never as a pass.
        return stopped.exit_code if stopped.signal else code


def _main(args: argparse.Namespace, started: float) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="checks: %(message)s",
        stream=sys.stderr,
    )
    # botocore logs nothing secret at WARNING, but never let it go to DEBUG by accident.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        if args.rehearse:
            try:
                from rehearsal import rehearse
            except ModuleNotFoundError as err:
                # An installed check has no rehearsal: it deploys this repository's program.
                raise UsageError(
                    f"--rehearse needs a checkout of the repository and its dev requirements "
                    f"({err.name} is missing): run `python3 dev.py rehearse` there"
                ) from None
            return rehearse(args, started)
        report = _check(args)
    except UsageError as err:
        print(f"checks: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except CheckError as err:
        print(f"checks: failed: {err}", file=sys.stderr)
        return EXIT_FAILED
    with deferred():  # a signal now waits until the report is out whole
        (write_json if args.json else write_table)(report, sys.stdout)
        sys.stdout.flush()
    return EXIT_OK if report.ok else EXIT_FAILED

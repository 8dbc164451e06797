"""How a run is asked for: the check's options, and the CLI rules that derive them.

Shared by the live check (checks.cli) and the rehearsal, which takes the same options; a module
of its own so that neither imports the other, and the runner's parts (own_bucket, isolation)
can name the options without importing the runner.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from checks.probes import TestObject
from checks.stack_outputs import UsageError

DEFAULT_ROTATION = 1
"""With the reach proof, each service role probes this many other buckets, in rotation."""


@dataclass(frozen=True)
class CheckOptions:
    wait_seconds: float = 60.0
    """How long AccessDenied is retried on steps that must succeed (IAM propagation)."""
    deadline_seconds: float = 300.0
    """The whole run; what has not finished by then fails, and the run ends."""
    workers: int = 64
    """Requests in flight at once."""
    sample: int | None = None
    """Probe each service role on this many other buckets (chosen in rotation) instead of
    all; the report says so. None: every pair, which the deadline may not allow."""
    progress: Any = None
    """A checks.progress.Progress, told as services and probes finish."""
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    inspector: Any = None
    """An IAM client to diagnose AssumeRole denials with, instead of the caller's own."""
    peer_objects: Mapping[str, TestObject] | None = None
    """Dedicated: an object in each other service's bucket to aim the get probe at (the
    rehearsal plants them); without one that get is not proven."""
    without_peer_get: bool = False
    """Dedicated: accept that get on the other buckets is not proven (--without-peer-get)."""


def refuse_conflicts(args: argparse.Namespace) -> None:
    """Options that cannot go together, each named, before anything is read or sent."""
    if args.reach_only:
        for given, option in (
            (args.without_reach, "--without-reach"),
            (args.via_ssm, "--via-ssm"),
            (args.full_probes, "--full-probes"),
            (args.sample is not None, "--sample"),
            (args.without_peer_get, "--without-peer-get"),
        ):
            if given:
                raise UsageError(f"--reach-only runs no probes: {option} does not go with it")
    if args.full_probes and args.sample is not None:
        raise UsageError("--full-probes and --sample contradict each other: choose one")


def probe_sample(args: argparse.Namespace) -> int | None:
    """How many other buckets each service role probes.

    With the reach proof, the documents prove every pair, so by default the probes are a
    rotation that still sends every kind of probe from every identity and to every bucket:
    a check of the model against reality. Without it, every pair is probed.
    """
    if args.sample is not None:
        return int(args.sample)
    if args.full_probes or args.without_reach:
        return None
    return DEFAULT_ROTATION

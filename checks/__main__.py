"""Entry point: `python -m checks --help`."""

import os
import signal
import sys
from types import FrameType


def _before_start(signum: int, _frame: FrameType | None) -> None:
    """A signal while Python still imports boto3 and the rest: nothing has been written
    anywhere yet, so one line and the conventional exit code are the whole of it."""
    sys.stderr.write(f"checks: interrupted by {signal.Signals(signum).name}\n")
    sys.stderr.flush()
    os._exit(128 + signum)


for _signal in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_signal, _before_start)

from checks.cli import main  # noqa: E402 (after the handlers: importing takes a second)

code = main()
if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
    # Interrupted, and the cleanup has run: do not wait for threads still blocked in the
    # network (the Pulumi mock runtime's, a stuck request's), which could take minutes.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)

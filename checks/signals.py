"""SIGINT and SIGTERM end a run the same way: cleanup, one line, exit 130 or 143.

`timeout`, systemd and most CI runners stop a process with SIGTERM, which by default kills
Python at once: no `finally`, no cleanup. Within `interrupts()` both signals raise Interrupted
in the main thread instead, so the check's cleanup runs and the exit code says what happened.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread on SIGINT or SIGTERM (a KeyboardInterrupt, so nothing that
    catches Exception swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@dataclass
class Stopped:
    signal: int = 0

    @property
    def exit_code(self) -> int:
        return 128 + self.signal


@contextmanager
def interrupts() -> Iterator[Stopped]:
    """Within the block, SIGINT and SIGTERM raise Interrupted; the first one is remembered."""
    stopped = Stopped()
    if threading.current_thread() is not threading.main_thread():
        yield stopped  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stopped.signal:
            return  # a second signal must not cut the cleanup the first one started
        stopped.signal = signum
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped
    except Interrupted as err:
        stopped.signal = stopped.signal or err.signum
        raise
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

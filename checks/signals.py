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
    deferred: bool = False
    """While the report is written, a signal is only remembered (see `deferred`)."""

    @property
    def exit_code(self) -> int:
        return 128 + self.signal


_active: Stopped | None = None
"""The innermost `interrupts()` block's state, for `check()` and `deferred()`."""


def check() -> None:
    """Raise Interrupted if a signal came and was lost on its way.

    The handler raises wherever the main thread happens to be; when that is a finalizer or a
    weakref callback, Python prints "Exception ignored" and carries on as if nothing happened.
    The main thread calls this where it waits (checks.work.wait_until) and between phases, so a
    lost signal still ends the run there.
    """
    stopped = _active
    if stopped is not None and stopped.signal and not stopped.deferred:
        raise Interrupted(stopped.signal)


@contextmanager
def deferred() -> Iterator[None]:
    """Within the block a signal is remembered, not raised: a report is written whole (never
    cut mid-line on stdout); the signal is raised right after the block."""
    stopped = _active
    if stopped is None:
        yield
        return
    outer = stopped.deferred
    stopped.deferred = True
    try:
        yield
    finally:
        stopped.deferred = outer
    if not outer:  # an enclosing deferred block raises it at its own end
        check()


@contextmanager
def interrupts() -> Iterator[Stopped]:
    """Within the block, SIGINT and SIGTERM raise Interrupted; the first one is remembered."""
    stopped = Stopped()
    if threading.current_thread() is not threading.main_thread():
        yield stopped  # signal handlers can only be set from the main thread
        return

    global _active

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stopped.signal:
            return  # a second signal must not cut the cleanup the first one started
        stopped.signal = signum
        if not stopped.deferred:
            raise Interrupted(signum)

    outer = _active
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    _active = stopped
    try:
        yield stopped
    except Interrupted as err:
        stopped.signal = stopped.signal or err.signum
        raise
    finally:
        _active = outer
        for sig, old in previous.items():
            signal.signal(sig, old)

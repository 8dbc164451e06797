"""Concurrency with a deadline: daemon worker threads, and the whole-run clock.

The check runs hundreds of requests at once and must end by its deadline even when an
endpoint never answers. A ThreadPoolExecutor cannot do that: Python joins its threads at exit,
so one read stuck in the network would hold the process past the deadline. These workers are
daemon threads; when the deadline passes, the main thread reports what did not finish, cleans
up, and the process exits without waiting for them.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

from botocore.config import Config

from checks import signals

T = TypeVar("T")


class Deadline:
    """A point in monotonic time; `remaining()` is never negative."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"a deadline needs a positive number of seconds, not {seconds}")
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        return self.remaining() <= 0


def client_config(budget: float, pool: int) -> Config:
    """Per-call timeouts that fit well inside a run of `budget` seconds (three attempts at
    most), for `pool` requests in flight at once."""
    return Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=min(10.0, max(1.0, budget / 10)),
        read_timeout=min(30.0, max(2.0, budget / 8)),
        max_pool_connections=pool,
    )


class Cancelled(Exception):
    """The run is over (deadline or interrupt): work not yet started is not started."""


class WorkPool:
    """A fixed number of daemon threads running submitted calls, each into a Future."""

    def __init__(self, workers: int) -> None:
        self._tasks: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._cancelled = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"check-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, call = task
            if self._cancelled.is_set() or not future.set_running_or_notify_cancel():
                if not future.done():
                    future.set_exception(Cancelled())
                continue
            try:
                future.set_result(call())
            except BaseException as err:  # noqa: BLE001 (the caller reads it from the Future)
                future.set_exception(err)
            # Hand the GIL over between tasks. A worker running in-process moto (the rehearsal)
            # kept it from the main thread for 20 s at a time, measured: the deadline and
            # the signal handlers, which run in the main thread, were held up just as long.
            time.sleep(0)

    def submit(self, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._tasks.put((future, call))
        return future

    def cancel(self) -> None:
        """Start nothing more; calls already running finish (or are abandoned at exit)."""
        self._cancelled.set()

    def close(self) -> None:
        self.cancel()
        for _ in self._threads:
            self._tasks.put(None)


def wait_until(futures: Iterable[Future[Any]], deadline: Deadline) -> bool:
    """Wait for every future or the deadline; True when all finished in time.

    One callback per future counts them down, and the wait itself is O(1): concurrent.futures'
    `wait` takes every future's lock on each call, which with 90,000 probes in flight and the
    GIL shared with busy workers costs seconds a call and can overrun the deadline by minutes.
    The wait runs in slices of a second, so that a signal Python lost on its way
    (checks.signals.check) still ends the run promptly.
    """
    pending = [f for f in futures if not f.done()]
    if not pending:
        return True
    finished = threading.Condition()
    left = [len(pending)]

    def one_done(_future: Future[Any]) -> None:
        with finished:
            left[0] -= 1
            if left[0] == 0:
                finished.notify_all()

    for future in pending:
        future.add_done_callback(one_done)
    while True:
        with finished:
            if left[0] == 0:
                return True
            finished.wait(timeout=min(1.0, deadline.remaining()))
            if left[0] == 0:
                return True
        signals.check()
        if deadline.expired():
            return False


def reraise(futures: Iterable[Future[Any]]) -> None:
    """A bug in a worker must not pass as a quiet result: raise the first error seen."""
    for future in futures:
        if future.done():
            error = future.exception()
            if error is not None and not isinstance(error, Cancelled):
                raise error


def result_or(future: Future[T], default: T) -> T:
    """The future's result if it finished; `default` if it did not (or was cancelled)."""
    if not future.done():
        return default
    error = future.exception()
    if isinstance(error, Cancelled):
        return default
    if error is not None:
        raise error
    return future.result()

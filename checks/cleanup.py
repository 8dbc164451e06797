"""Every test object the check may have written, until it is known to be gone.

An object is recorded *before* its PutObject is sent, so that whatever stops the run (a failed
step, a crash, the deadline, SIGINT or SIGTERM) the final flush deletes it. A put still in
flight when the flush starts may land after the flush deleted the missing key, so the flush
deletes such an object again once its put has settled. The flush takes at most FLUSH_SECONDS
(its threads are daemons, so a hanging endpoint cannot hold the process); what it could not
delete, or whose put was still in flight, is named on stderr, and the stack's lifecycle rule
expires it within a day.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.work import Cancelled

log = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0
"""How long the final flush may take, after the deadline or an interrupt."""


@dataclass(frozen=True)
class Written:
    bucket: str
    key: str
    owner: str
    """ExpectedBucketOwner."""
    client: Callable[[], Any]
    """Makes an S3 client with the writer's credentials and short timeouts."""


class PendingObjects:
    """Thread-safe: many services write and delete at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._pending: dict[tuple[str, str], Written] = {}
        self._in_flight: set[tuple[str, str]] = set()
        self.left_behind: list[str] = []
        self.flushed: set[tuple[str, str]] = set()
        """What the final flush deleted (a delete step that ran out of time can say so)."""
        self._closed = False

    def add(self, written: Written) -> None:
        """Record an object before its put is sent; the put is in flight until `settled`.

        After the flush has begun nothing more may be written: a task still running then
        (the pool cannot stop it) gets Cancelled instead of putting an object no one deletes.
        """
        with self._lock:
            if self._closed:
                raise Cancelled()
            self._pending[(written.bucket, written.key)] = written
            self._in_flight.add((written.bucket, written.key))

    def settled(self, bucket: str, key: str) -> None:
        """The put has answered (or failed): the object is there or not, and stays so."""
        with self._lock:
            self._in_flight.discard((bucket, key))
            self._settled.notify_all()

    def done(self, bucket: str, key: str) -> None:
        with self._lock:
            self._pending.pop((bucket, key), None)
            self._in_flight.discard((bucket, key))
            self._settled.notify_all()

    def flush(self) -> list[str]:
        """Delete what is still pending, within FLUSH_SECONDS; return what is left."""
        end = time.monotonic() + FLUSH_SECONDS
        with self._lock:
            self._closed = True
            pending = list(self._pending.values())
        self._delete_all(pending, end)
        # A put in flight may land after the delete above: delete those again once settled.
        with self._lock:
            while self._in_flight & set(self._pending) and time.monotonic() < end:
                self._settled.wait(timeout=max(0.0, end - time.monotonic()))
            again = [w for k, w in self._pending.items() if k not in self._in_flight]
        self._delete_all(again, end)
        with self._lock:
            left = [
                f"s3://{w.bucket}/{w.key}"
                + (" (its put was still in flight)" if k in self._in_flight else "")
                for k, w in self._pending.items()
            ]
        for where in left:
            log.warning(
                "could not delete %s; the bucket's lifecycle rule expires it in a day", where
            )
        self.left_behind = left
        return left

    def _delete_all(self, written: list[Written], end: float) -> None:
        threads = [
            threading.Thread(target=self._delete, args=(w,), daemon=True, name="check-cleanup")
            for w in written
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(0.0, end - time.monotonic()))

    def _delete(self, written: Written) -> None:
        key = (written.bucket, written.key)
        with self._lock:
            # Read before the delete is sent: a put still in flight may land after this delete
            # reaches S3 but before its answer is read, so only a put settled beforehand
            # makes this delete final.
            in_flight = key in self._in_flight
        try:
            written.client().delete_object(
                Bucket=written.bucket, Key=written.key, ExpectedBucketOwner=written.owner
            )
        except (ClientError, BotoCoreError) as err:
            log.info("cleanup of s3://%s/%s failed: %s", written.bucket, written.key, err)
            return
        if in_flight:
            return  # its put may land after this delete: it stays pending for the next round
        with self._lock:
            self.flushed.add(key)
        self.done(written.bucket, written.key)

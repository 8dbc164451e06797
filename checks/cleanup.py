"""Every test object the check may have written, until it is known to be gone.

An object is recorded *before* its PutObject is sent, so that whatever stops the run (a failed
step, a crash, the deadline, SIGINT or SIGTERM) the final flush deletes it, with clients of
short timeouts so that a hanging endpoint cannot hold the process. What still cannot be
deleted is named on stderr; the stack's lifecycle rule expires it within a day.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

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
        self._pending: dict[tuple[str, str], Written] = {}
        self.left_behind: list[str] = []

    def add(self, written: Written) -> None:
        with self._lock:
            self._pending[(written.bucket, written.key)] = written

    def done(self, bucket: str, key: str) -> None:
        with self._lock:
            self._pending.pop((bucket, key), None)

    def flush(self) -> list[str]:
        """Delete what is still pending, concurrently, within FLUSH_SECONDS; return what is left."""
        with self._lock:
            pending = list(self._pending.values())
        threads = [
            threading.Thread(target=self._delete, args=(w,), daemon=True, name="check-cleanup")
            for w in pending
        ]
        for thread in threads:
            thread.start()
        end = time.monotonic() + FLUSH_SECONDS
        for thread in threads:
            thread.join(timeout=max(0.0, end - time.monotonic()))
        with self._lock:
            left = [f"s3://{w.bucket}/{w.key}" for w in self._pending.values()]
        for where in left:
            log.warning(
                "could not delete %s; the bucket's lifecycle rule expires it in a day", where
            )
        self.left_behind = left
        return left

    def _delete(self, written: Written) -> None:
        try:
            written.client().delete_object(
                Bucket=written.bucket, Key=written.key, ExpectedBucketOwner=written.owner
            )
        except (ClientError, BotoCoreError) as err:
            log.info("cleanup of s3://%s/%s failed: %s", written.bucket, written.key, err)
            return
        self.done(written.bucket, written.key)

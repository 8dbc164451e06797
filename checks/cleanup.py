"""Every test object the check may have written, until it is known to be gone.

An object is recorded *before* its PutObject is sent, so that whatever stops the run (a failed
step, a crash, the deadline, SIGINT or SIGTERM) the final flush deletes it. A put still in
flight when the flush starts may land after the flush deleted the missing key, so the flush
deletes such an object again once its put has settled. The flush takes at most FLUSH_SECONDS
(its threads are daemons, so a hanging endpoint cannot hold the process); what it could not
delete, or whose put was still in flight, is named on stderr, and the stack's lifecycle rule
expires it within a day.

In a versioned bucket a delete only hides an object: its version stays, under a new delete
marker. So the version id S3 gives each put, and the delete marker's each delete creates, are
recorded with the object, and both the delete step and the flush delete those versions by id
once the object itself is deleted. Only those: never a version the check did not create, and
never a listing (the service role has no s3:ListBucketVersions). A role without
s3:DeleteObjectVersion (a stack from before the grant) leaves them to the lifecycle rule, which
under the prefix expires noncurrent versions a day on, then the delete markers left alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.explain import describe, error_code
from checks.plan import DENIED
from checks.work import Cancelled

log = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0
"""How long the final flush may take, after the deadline or an interrupt."""
VERSION_ACTION = "s3:DeleteObjectVersion"
"""What deleting a version by id takes; the stack grants it under the check's prefix only."""


@dataclass(frozen=True)
class Written:
    bucket: str
    key: str
    owner: str
    """ExpectedBucketOwner."""
    client: Callable[[], Any]
    """Makes an S3 client with the writer's credentials and short timeouts."""


def marker_of(answer: Mapping[str, Any]) -> str | None:
    """The version id of the delete marker a DeleteObject created (a versioned bucket)."""
    version = answer.get("VersionId")
    return str(version) if answer.get("DeleteMarker") and version else None


@dataclass(frozen=True)
class Removal:
    """What became of the versions the check created at one key, once the object was deleted."""

    removed: int
    """Versions and delete markers deleted by id."""
    kept: int
    """Those still there."""
    denied: str | None = None
    """S3's error code when it refused the delete (the role lacks s3:DeleteObjectVersion)."""
    error: str | None = None
    """Another failure (a timeout, a 500): the final flush tries again."""

    def remain(self) -> str:
        """What stays and why, one clause for a step detail or a log line."""
        if self.denied:
            return (
                f"{versions_phrase(self.kept)} remain for the bucket's lifecycle rule, which "
                f"removes them in a day or two: the role lacks {VERSION_ACTION} (S3 answered "
                f"{self.denied}; `pulumi up` grants it on the check's prefix)"
            )
        return (
            f"{versions_phrase(self.kept)} remain: deleting them failed ({self.error}); "
            "the final cleanup tries again"
        )


def versions_phrase(count: int) -> str:
    """The usual pair by name: a put's version and the delete marker that hid it."""
    if count == 2:
        return "its 2 versions (the object's and its delete marker)"
    return f"{count} of its versions and delete markers"


class PendingObjects:
    """Thread-safe: many services write and delete at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._pending: dict[tuple[str, str], Written] = {}
        self._in_flight: set[tuple[str, str]] = set()
        self._versions: dict[tuple[str, str], list[str]] = {}
        """The versions (and delete markers) the check created at each key, by id."""
        self._hidden: set[tuple[str, str]] = set()
        """Keys whose object is deleted; only their versions are left to remove."""
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

    def created(self, bucket: str, key: str, version: str | None) -> None:
        """Record a version id S3 answered for the key (a put's, or a delete marker's); None
        (an unversioned bucket) records nothing."""
        with self._lock:
            if not version or (bucket, key) not in self._pending:
                return
            known = self._versions.setdefault((bucket, key), [])
            if version not in known:
                known.append(version)

    def versions_of(self, bucket: str, key: str) -> list[str]:
        with self._lock:
            return list(self._versions.get((bucket, key), ()))

    def done(self, bucket: str, key: str) -> None:
        """The object is gone (or was never written), and so are its versions, or they are
        left to the lifecycle rule: nothing more to delete."""
        with self._lock:
            self._pending.pop((bucket, key), None)
            self._in_flight.discard((bucket, key))
            self._versions.pop((bucket, key), None)
            self._hidden.discard((bucket, key))
            self._settled.notify_all()

    def deleted(self, bucket: str, key: str, answer: Mapping[str, Any], client: Any) -> Removal:
        """The object's DeleteObject succeeded (its answer given) after its put settled: now
        delete by id every version the check created there, the new delete marker included.

        All gone, or refused (retrying would be refused too), the key is done; after another
        failure it stays pending, and the flush deletes what is left.
        """
        self.created(bucket, key, marker_of(answer))
        with self._lock:
            written = self._pending.get((bucket, key))
            if written is None:  # another delete (the flush's) finished it meanwhile
                return Removal(0, 0)
            self._hidden.add((bucket, key))
            versions = list(self._versions.get((bucket, key), ()))
        removed = 0
        for version in versions:
            try:
                client.delete_object(
                    Bucket=bucket, Key=key, VersionId=version, ExpectedBucketOwner=written.owner
                )
            except ClientError as err:
                kept = len(versions) - removed
                if error_code(err) in DENIED:  # a retry would be refused as well
                    self.done(bucket, key)
                    return Removal(removed, kept, denied=error_code(err))
                return Removal(removed, kept, error=describe(err))
            except BotoCoreError as err:
                return Removal(removed, len(versions) - removed, error=describe(err))
            removed += 1
            with self._lock:
                known = self._versions.get((bucket, key), [])
                if version in known:
                    known.remove(version)
        self.done(bucket, key)
        return Removal(removed, 0)

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
                + (" (deleted, but not the versions it left)" if k in self._hidden else "")
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
            hidden = key in self._hidden  # the delete step deleted it; versions are left
        client = written.client()
        answer: Mapping[str, Any] = {}
        if not hidden:
            try:
                answer = client.delete_object(
                    Bucket=written.bucket, Key=written.key, ExpectedBucketOwner=written.owner
                )
            except (ClientError, BotoCoreError) as err:
                log.info("cleanup of s3://%s/%s failed: %s", written.bucket, written.key, err)
                return
            if in_flight:
                # Its put may land after this delete: it stays pending for the next round,
                # which deletes this round's delete marker too.
                self.created(written.bucket, written.key, marker_of(answer))
                return
            with self._lock:
                self.flushed.add(key)
        outcome = self.deleted(written.bucket, written.key, answer, client)
        if outcome.denied:  # no step reports on the flush: say it here
            log.warning("deleted s3://%s/%s, but %s", *key, outcome.remain())
        elif outcome.error:
            log.info("cleanup of the versions of s3://%s/%s failed: %s", *key, outcome.error)

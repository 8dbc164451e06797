"""The final cleanup's own guarantees, on PendingObjects and Checker.run directly: whatever
order a put and the cleanup's delete reach S3 in, and whatever signal comes meanwhile, every
test object is deleted or named."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

import boto3
import pytest

from checks.cleanup import PendingObjects, Written
from checks.report import Report
from checks.runner import Checker, CheckOptions
from checks.signals import Interrupted, interrupts
from checks.stack_outputs import parse_outputs
from checks.work import Cancelled

TARGETS = parse_outputs(
    {
        "topology": "shared",
        "region": "us-east-1",
        "hostRoleArn": "arn:aws:iam::123456789012:role/host",
        "services": {
            "a": {
                "bucketName": "a-bucket",
                "bucketArn": "arn:aws:s3:::a-bucket",
                "roleArn": "arn:aws:iam::123456789012:role/a",
            }
        },
    },
    "test",
)


def test_a_put_that_lands_between_the_delete_and_its_answer_is_deleted_again() -> None:
    """The cleanup's delete reaches S3 first, the put lands, then the delete's answer is
    read: that delete proved nothing, so the object is deleted once more."""
    store: set[str] = set()
    reached = threading.Event()
    landed = threading.Event()

    class S3:
        def delete_object(self, **kw: Any) -> dict[str, Any]:
            store.discard(kw["Key"])
            reached.set()
            landed.wait(2)  # the answer is read after the put has landed
            return {}

    pending = PendingObjects()
    pending.add(Written("bkt", "k", "123456789012", S3))

    def put() -> None:
        reached.wait(2)
        store.add("k")
        pending.settled("bkt", "k")
        landed.set()

    threading.Thread(target=put).start()
    left = pending.flush()
    assert store == set() and left == [], (store, left)


def test_nothing_may_be_written_once_the_cleanup_has_begun() -> None:
    """A task the pool could not stop must not put an object after the flush."""
    pending = PendingObjects()
    pending.flush()
    with pytest.raises(Cancelled):
        pending.add(Written("bkt", "late", "123456789012", lambda: None))


def test_a_signal_during_the_final_cleanup_waits_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM while the cleanup deletes: the delete finishes, then the run ends as
    interrupted (it used to cut the cleanup and exit with the object neither deleted nor
    named)."""
    deleted: list[str] = []
    handled = threading.Event()

    class SlowS3:
        def delete_object(self, **kw: Any) -> dict[str, Any]:
            # SIGTERM now, at the main thread (as the kernel delivers a signal from outside),
            # which waits for this delete; it finishes only once the handler has run.
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
            assert handled.wait(30), "the main thread never handled the SIGTERM"
            time.sleep(0.6)  # slow: a cleanup cut short by the signal would end before this
            deleted.append(kw["Key"])
            return {}

    def run_then_signal(self: Checker, *_args: Any) -> Report:
        self.pending.add(Written("a-bucket", "k", "123456789012", SlowS3))
        self.pending.settled("a-bucket", "k")
        handler = signal.getsignal(signal.SIGTERM)  # the one interrupts() installed
        assert callable(handler)

        def seen(signum: int, frame: FrameType | None) -> None:
            handled.set()
            handler(signum, frame)

        signal.signal(signal.SIGTERM, seen)  # interrupts() puts back its own predecessor
        return Report(source="x", services={})

    monkeypatch.setattr(Checker, "_run", run_then_signal)
    session = boto3.Session(
        region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with pytest.raises(Interrupted), interrupts():
        Checker(session, TARGETS, CheckOptions()).run([])
    assert deleted == ["k"]

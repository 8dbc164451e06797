"""Faults between botocore and S3, and signals: the check still tells the truth, leaves nothing
behind, and ends in bounded time. `python -m checks` runs as a real process against a real
moto server (IAM enforced) with a middleware that misbehaves on cue
(tests/support/fault_server.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.check_world import AUDITOR, REGION, USER_BODY, USER_KEY, Wiring, World, build, objects
from support.fake_credentials import use_fake_credentials
from support.fault_server import FaultyApp, answer_500, serve, stall, stall_then_store, store_then

from rehearsal.moto_rules import aws_iam_rules

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[tuple[str, FaultyApp]]:
    url, app, stop = serve()
    yield url, app
    stop()


@pytest.fixture
def faulty(
    faulty_server: tuple[str, FaultyApp], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[str, FaultyApp]:
    url, app = faulty_server
    requests.post(f"{url}/moto-api/reset", timeout=10)
    app.fault, app.hang_if, app.puts = None, None, 0
    app.put_seen.clear()
    app.release.clear()
    use_fake_credentials(monkeypatch, tmp_path, REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    return url, app


def start(world: World, tmp_path: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "AWS_ENDPOINT_URL": url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        # The world's auditor profile, which the reach proof reads with.
        "AWS_SHARED_CREDENTIALS_FILE": os.environ["AWS_SHARED_CREDENTIALS_FILE"],
        "AWS_EC2_METADATA_DISABLED": "true",
        **world.environment(),
    }
    command = [sys.executable, "-m", "checks", "--outputs", str(world.write_outputs(tmp_path))]
    return subprocess.Popen(
        [*command, "--wait", "0", "--json", "--audit-profile", AUDITOR, *extra],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def nothing_left(world: World) -> None:
    for out in world.outputs["services"].values():
        assert objects(out["bucketName"]) == {USER_KEY: USER_BODY}, out["bucketName"]


def put_step(report: dict[str, Any]) -> dict[str, Any]:
    steps = report["services"]["service-a"]["steps"]
    return next(s for s in steps if s["name"] == "put")


@pytest.mark.parametrize(
    ("then", "deadline"),
    [(answer_500, "300"), (stall(4), "16")],
    ids=["500-after-stored", "read-timeout-after-stored"],
)
def test_a_put_retried_after_it_was_stored_is_recognised_and_removed(
    faulty: tuple[str, FaultyApp], tmp_path: Path, then: Any, deadline: str
) -> None:
    """botocore retries; the retry meets the stored object (412). The check knows its own
    object by its token: no blame on the user, the run passes, and nothing is left."""
    url, app = faulty
    world = build(Wiring(services=("service-a",)))
    app.fault = store_then(then)
    with aws_iam_rules():
        done = start(world, tmp_path, url, "--deadline", deadline)
        out, err = done.communicate(timeout=60)
    report = json.loads(out)
    assert done.returncode == 0, (err, report)
    assert put_step(report)["ok"] and "stored by a retried attempt" in put_step(report)["detail"]
    assert "already exists" not in out + err
    assert app.puts >= 2, "the fault must have made botocore retry"
    nothing_left(world)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_put_cleans_up_and_says_so(
    faulty: tuple[str, FaultyApp], tmp_path: Path, signum: int, code: int
) -> None:
    """SIGTERM (what `timeout` and supervisors send) cleans up exactly like Ctrl-C: the object
    already stored is deleted, one line, the conventional exit code, no traceback."""
    url, app = faulty
    world = build(Wiring(services=("service-a",)))
    app.fault = store_then(stall(30))
    with aws_iam_rules():
        done = start(world, tmp_path, url)
        assert app.put_seen.wait(30), "the put never arrived"
        done.send_signal(signum)
        out, err = done.communicate(timeout=30)
        app.release.set()
    assert done.returncode == code, err
    assert err.strip().splitlines()[-1] == f"checks: interrupted by {signal.Signals(signum).name}"
    assert "Traceback" not in err and out == ""
    nothing_left(world)


def watch_moto(app: FaultyApp, monkeypatch: pytest.MonkeyPatch) -> dict[str, threading.Event]:
    """Events set the moment moto itself has answered a DeleteObject of a check object, or
    stored a check object's PutObject: the points in the middleware's pass to moto that a
    test waits for, instead of guessing how long they take."""
    done = {"DELETE": threading.Event(), "PUT": threading.Event()}
    moto = app.app

    def watched(environ: dict[str, Any], start_response: Any) -> Any:
        answer = moto(environ, start_response)
        if "ec2-assume-role-check/" in environ.get("PATH_INFO", ""):
            event = done.get(environ["REQUEST_METHOD"])
            if event is not None:
                event.set()
        return answer

    monkeypatch.setattr(app, "app", watched)
    return done


@pytest.mark.parametrize("lands", ["during-the-cleanup", "after-the-exit"])
def test_a_signal_while_a_put_is_still_in_flight_leaves_nothing_unsaid(
    faulty: tuple[str, FaultyApp], tmp_path: Path, lands: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM before S3 has stored the put: the cleanup's first delete finds nothing, and
    the object lands after it. The cleanup waits for the put to settle and deletes again;
    if it never settles in time, the object is named on stderr (the lifecycle rule expires
    it), never left in silence."""
    url, app = faulty
    world = build(Wiring(services=("service-a",)))
    app.fault = stall_then_store(30)
    moto = watch_moto(app, monkeypatch)
    with aws_iam_rules():
        done = start(world, tmp_path, url)
        assert app.put_seen.wait(30), "the put never arrived"
        done.send_signal(signal.SIGTERM)
        if lands == "during-the-cleanup":
            # The cleanup's first delete has found nothing: it waits for the put now.
            assert moto["DELETE"].wait(30), "the cleanup never deleted"
            assert not moto["PUT"].is_set(), "the put landed before the delete"
            app.release.set()
        out, err = done.communicate(timeout=30)
        app.release.set()
        assert moto["PUT"].wait(30), "the put never landed"  # a late one too, before looking
    assert done.returncode == 143, err
    assert err.strip().splitlines()[-1] == "checks: interrupted by SIGTERM"
    assert "Traceback" not in err and out == ""
    bucket = world.outputs["services"]["service-a"]["bucketName"]
    if lands == "during-the-cleanup":
        nothing_left(world)
    else:
        left = [key for key in objects(bucket) if key != USER_KEY]
        assert len(left) == 1, objects(bucket)
        assert f"could not delete s3://{bucket}/{left[0]} (its put was still in flight)" in err


@pytest.mark.parametrize("hang", ["everything", "s3"])
def test_an_endpoint_that_never_answers_ends_the_run_by_its_deadline(
    faulty: tuple[str, FaultyApp], tmp_path: Path, hang: str
) -> None:
    """Every request hangs (or only S3's): exit 1 within the deadline plus a few seconds."""
    url, app = faulty
    world = build(Wiring(services=("service-a", "service-b")))
    if hang == "everything":
        app.hang_if = lambda _environ: True
    else:
        app.hang_if = lambda environ: "-bucket-" in environ.get("PATH_INFO", "")
    began = time.monotonic()
    with aws_iam_rules():
        done = start(world, tmp_path, url, "--deadline", "5")
        out, err = done.communicate(timeout=60)
    elapsed = time.monotonic() - began
    app.release.set()
    assert done.returncode == 1, err
    assert elapsed < 5 + 8, f"{elapsed:.1f}s for a 5 s deadline"
    assert "Traceback" not in err
    if hang == "everything":
        assert "STS" in err and err.count("\n") == 1, err
    else:
        report = json.loads(out)
        details = [s["detail"] for r in report["services"].values() for s in r["steps"]]
        assert any("deadline" in d for d in details), details
        assert not report["ok"]

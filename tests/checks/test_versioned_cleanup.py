"""Versioned buckets: the check removes every version and delete marker it created, by version
id, and nothing else. Without that, each passing run leaves its test object behind as a
noncurrent version plus a delete marker, which only the lifecycle rule removes, days later.

The worlds are moto with IAM enforced (tests/support/check_world.py); the version listings are read
with enforcement off, as an administrator would.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from support.check_world import REGION, USER_KEY, Wiring, World, build

from checks import probes
from checks.cleanup import PendingObjects, Written
from checks.contract import RESERVED_PREFIX
from checks.own_bucket import TOKEN_KEY, OwnBucket, Timer
from checks.report import Report, Step
from checks.runner import Checker, CheckOptions
from checks.stack_outputs import parse_outputs
from infra import policies
from rehearsal.moto_rules import aws_iam_rules

Versions = list[tuple[str, str, str, bool]]
"""(kind, key, version id, is latest) of every version and delete marker in a bucket."""


@pytest.fixture
def enforced(aws: None) -> Iterator[None]:
    """moto's in-process AWS; each test builds its world, then enforces IAM for the check."""
    yield


def admin() -> Any:
    return boto3.client("s3", region_name=REGION)


def versions(bucket: str, prefix: str = "") -> Versions:
    """Every version and delete marker under `prefix`, as S3 lists them."""
    listing = admin().list_object_versions(Bucket=bucket, Prefix=prefix)
    found = [
        ("version", v["Key"], v["VersionId"], v["IsLatest"]) for v in listing.get("Versions", [])
    ]
    found += [
        ("marker", m["Key"], m["VersionId"], m["IsLatest"])
        for m in listing.get("DeleteMarkers", [])
    ]
    return sorted(found)


def user_data(world: World) -> dict[str, tuple[Versions, list[bytes]]]:
    """Per bucket: the versions outside the check's prefix and each version's bytes."""
    s3 = admin()
    found: dict[str, tuple[Versions, list[bytes]]] = {}
    for out in world.outputs["services"].values():
        bucket = out["bucketName"]
        listed = [v for v in versions(bucket) if not v[1].startswith(RESERVED_PREFIX)]
        bodies = [
            s3.get_object(Bucket=bucket, Key=key, VersionId=vid)["Body"].read()
            for kind, key, vid, _ in listed
            if kind == "version"
        ]
        found[bucket] = (listed, bodies)
    return found


def versioned_world(**wiring: Any) -> World:
    """A versioned world whose user object has two versions (an edit the check must keep)."""
    world = build(Wiring(versioned=True, **wiring))
    for out in world.outputs["services"].values():
        admin().put_object(Bucket=out["bucketName"], Key=USER_KEY, Body=b"an edited version\n")
    return world


def without_version_grant(world: World) -> None:
    """An older stack: the service roles' grant from before the versioned one."""
    iam = boto3.client("iam", region_name=REGION)
    for out in world.outputs["services"].values():
        role = out["roleArn"].rsplit("/", 1)[-1]
        document = policies.bucket_access_policy(out["bucketArn"])
        iam.put_role_policy(
            RoleName=role, PolicyName="bucket-access", PolicyDocument=json.dumps(document)
        )


def check(world: World) -> Report:
    """The check of every service the caller may check, as the CLI runs it (dedicated: the
    get on other buckets is accepted as unproven, as one instance cannot prove it)."""
    targets = parse_outputs(world.outputs, "test")
    options = CheckOptions(wait_seconds=0, without_peer_get=targets.topology == "dedicated")
    with aws_iam_rules():
        return Checker(world.session(), targets, options).run([])


def delete_step(report: Report, service: str) -> Step:
    (step,) = [s for s in report.services[service].steps if s.name == "delete"]
    return step


@pytest.mark.parametrize("topology", ["shared", "dedicated"])
def test_a_passing_check_of_a_versioned_world_leaves_no_version_behind(
    enforced: None, topology: str
) -> None:
    """No version and no delete marker under the reserved prefix of any bucket afterwards;
    the user's object keeps both its versions, byte for byte."""
    world = versioned_world(topology=topology)
    before = user_data(world)
    report = check(world)
    assert report.ok, report.as_json()
    for out in world.outputs["services"].values():
        assert versions(out["bucketName"], RESERVED_PREFIX) == [], out["bucketName"]
    assert report.services  # dedicated: the caller's own service only
    for service in report.services:
        step = delete_step(report, service)
        assert "and its 2 versions (the object's and its delete marker)" in step.detail, step
    assert user_data(world) == before
    assert all(len(listed) == 2 for listed, _ in before.values()), "two user versions each"


def test_without_the_version_grant_the_run_passes_and_says_the_versions_remain(
    enforced: None,
) -> None:
    """A stack from before the grant: the versions stay for the lifecycle rule, and the delete
    step says so, naming the missing action; the run does not fail for it."""
    world = versioned_world()
    without_version_grant(world)
    before = user_data(world)
    report = check(world)
    assert report.ok, report.as_json()
    for service, out in world.outputs["services"].items():
        step = delete_step(report, service)
        assert step.ok
        assert "s3:DeleteObjectVersion" in step.detail and "lifecycle rule" in step.detail, step
        left = versions(out["bucketName"], RESERVED_PREFIX)
        assert [kind for kind, *_ in left] == ["marker", "version"], (service, left)
    assert user_data(world) == before


def test_the_final_cleanup_removes_the_versions_too(
    enforced: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the put: the final cleanup deletes the object, then the version and the
    marker it created, by id."""
    world = versioned_world(services=("service-a", "service-b"))
    before = user_data(world)

    def crash(*_args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(OwnBucket, "_read_back", crash)
    with pytest.raises(RuntimeError, match="boom"):
        check(world)
    for out in world.outputs["services"].values():
        assert versions(out["bucketName"], RESERVED_PREFIX) == [], out["bucketName"]
    assert user_data(world) == before


def test_the_final_cleanup_without_the_grant_names_what_remains(
    enforced: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No step reports on the final cleanup, so stderr names the versions it had to leave."""
    world = versioned_world(services=("service-a",))
    without_version_grant(world)

    def crash(*_args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(OwnBucket, "_read_back", crash)
    with caplog.at_level(logging.WARNING, "checks.cleanup"), pytest.raises(RuntimeError):
        check(world)
    bucket = world.outputs["services"]["service-a"]["bucketName"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"s3://{bucket}/{RESERVED_PREFIX}" in warning and "s3:DeleteObjectVersion" in warning
    assert "lifecycle rule" in warning
    assert [kind for kind, *_ in versions(bucket, RESERVED_PREFIX)] == ["marker", "version"]


def test_an_unversioned_bucket_is_deleted_as_before(enforced: None) -> None:
    """No versions, no version deletes: the delete step reads as it always did."""
    world = build(Wiring(services=("service-a",)))
    report = check(world)
    step = delete_step(report, "service-a")
    assert report.ok and step.detail.startswith("deleted ") and "version" not in step.detail


class VersionedS3:
    """Just enough of a versioned bucket: a stack of versions per key, markers included."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stacks: dict[str, list[tuple[str, bool]]] = {}
        self.calls: list[tuple[str, str | None]] = []
        self.count = 0

    def _new(self, key: str, marker: bool) -> str:
        self.count += 1
        version = f"v{self.count}"
        self.stacks.setdefault(key, []).append((version, marker))
        return version

    def put_object(self, **kw: Any) -> dict[str, Any]:
        with self.lock:
            return {"VersionId": self._new(kw["Key"], marker=False)}

    def delete_object(self, **kw: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append((kw["Key"], kw.get("VersionId")))
            if "VersionId" not in kw:
                return {"DeleteMarker": True, "VersionId": self._new(kw["Key"], marker=True)}
            stack = self.stacks.get(kw["Key"], [])
            stack[:] = [v for v in stack if v[0] != kw["VersionId"]]
            return {"VersionId": kw["VersionId"]}


def test_a_put_that_lands_during_the_flush_leaves_no_version() -> None:
    """The flush's first delete finds no object yet (a marker, in a versioned bucket), the put
    lands, the flush deletes again: every version and marker of those rounds goes, by id."""
    s3 = VersionedS3()
    pending = PendingObjects()
    pending.add(Written("bkt", "k", "123456789012", lambda: s3))
    first_delete = threading.Event()
    original = s3.delete_object

    def delete(**kw: Any) -> dict[str, Any]:
        answer = original(**kw)
        first_delete.set()
        return answer

    s3.delete_object = delete  # type: ignore[method-assign]

    def put() -> None:
        first_delete.wait(2)
        answer = s3.put_object(Key="k")
        pending.created("bkt", "k", answer["VersionId"])
        pending.settled("bkt", "k")

    writer = threading.Thread(target=put)
    writer.start()
    left = pending.flush()
    writer.join()
    assert left == [] and s3.stacks == {"k": []}, (left, s3.stacks)
    by_id = sorted(v for _, v in s3.calls if v)
    assert by_id == ["v1", "v2", "v3"], "the two markers and the put's version, each once"


def test_only_versions_the_check_created_are_deleted() -> None:
    """A version at the key that the check never heard of (there cannot be one under a unique
    key, but were there) is left alone: the check deletes by the ids S3 gave it only."""
    s3 = VersionedS3()
    pending = PendingObjects()
    pending.add(Written("bkt", "k", "123456789012", lambda: s3))
    mine = s3.put_object(Key="k")["VersionId"]
    pending.created("bkt", "k", mine)
    pending.settled("bkt", "k")
    stranger = s3._new("k", marker=False)  # someone else's, after the check's put
    assert pending.flush() == []
    assert s3.stacks["k"] == [(stranger, False)]
    assert {v for _, v in s3.calls if v} == {mine, "v3"}, "its version and its own marker"


def test_a_put_answered_by_a_retry_records_the_stored_version() -> None:
    """botocore retried a put whose first attempt was stored: the second answers 412, and the
    version is the one head_object shows with the check's token."""
    obj = probes.TestObject(f"{RESERVED_PREFIX}x", "token")

    class RetriedS3:
        def put_object(self, **_kw: Any) -> None:
            error = {"Error": {"Code": "PreconditionFailed", "Message": "At least one"}}
            raise ClientError(error, "PutObject")  # type: ignore[arg-type]

        def head_object(self, **_kw: Any) -> dict[str, Any]:
            return {"Metadata": {TOKEN_KEY: "token"}, "VersionId": "stored-version"}

    pending = PendingObjects()
    target = parse_outputs(
        {
            "topology": "dedicated",
            "region": REGION,
            "services": {
                "a": {
                    "bucketName": "bkt",
                    "bucketArn": "arn:aws:s3:::bkt",
                    "roleArn": "arn:aws:iam::123456789012:role/a",
                }
            },
        },
        "t",
    ).services["a"]
    pending.add(Written("bkt", obj.key, target.account, RetriedS3))
    own = OwnBucket(CheckOptions(0), pending)
    owner = {"Bucket": "bkt", "ExpectedBucketOwner": target.account}
    step, stored = own._put(RetriedS3(), owner, obj, b"body", target, Timer())
    assert stored and step.ok
    assert pending.versions_of("bkt", obj.key) == ["stored-version"]


def test_versions_a_failed_delete_left_are_deleted_by_the_flush() -> None:
    """A version delete that got no answer (a timeout) is not given up on: the key stays
    pending with only its versions, and the final flush deletes them without deleting the
    object again (which would stack another delete marker)."""
    from botocore.exceptions import ReadTimeoutError

    s3 = VersionedS3()
    pending = PendingObjects()
    pending.add(Written("bkt", "k", "123456789012", lambda: s3))
    pending.created("bkt", "k", s3.put_object(Key="k")["VersionId"])
    pending.settled("bkt", "k")
    original = s3.delete_object
    timeouts = [ReadTimeoutError(endpoint_url="https://s3")]

    def flaky(**kw: Any) -> dict[str, Any]:
        if "VersionId" in kw and timeouts:
            raise timeouts.pop()
        return original(**kw)

    s3.delete_object = flaky  # type: ignore[method-assign]
    removal = pending.deleted("bkt", "k", original(Key="k"), s3)
    assert (removal.removed, removal.kept) == (0, 2) and removal.error, removal
    assert "the final cleanup tries again" in removal.remain()
    assert pending.flush() == []
    assert s3.stacks == {"k": []}
    assert [v for _, v in s3.calls].count(None) == 1, "the object was deleted once, not again"

"""rehearsal/moto_speed.py: moto's reset no longer builds what it drops, and EC2's AMI lists are
parsed once; what moto serves afterwards is what it served without them.

The tests' conftest installs `share_moto_setup()` in the `aws` and `aws_env` fixtures, so every
test here runs with it: what moto serves after a reset is compared with what it served before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from rehearsal import moto_speed
from rehearsal.moto_speed import cached_moto, share_moto_setup

REGION = "us-east-1"


@pytest.fixture
def ec2_builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The regions an EC2 backend is built for, in order."""
    from moto.ec2.models import EC2Backend

    built: list[str] = []
    init = EC2Backend.__init__

    def counted(self: Any, region_name: str, account_id: str) -> None:
        built.append(region_name)
        init(self, region_name, account_id)

    monkeypatch.setattr(EC2Backend, "__init__", counted)
    yield built


def _images(region: str) -> dict[str, tuple[Any, ...]]:
    """The region's AMIs as its backend holds them (describing 2,500 through the API takes
    seconds): id -> what an image says of itself, but its volume's and snapshot's random ids."""
    from moto.ec2.models import ec2_backends

    backend = ec2_backends["123456789012"][region]
    return {
        a.id: (
            a.name,
            a.description,
            a.owner_id,
            a.architecture,
            a.platform,
            a.state,
            a.root_device_name,
        )
        for a in backend.amis.values()
    }


def _use_everything() -> None:
    """A bucket, a role and an EC2 call, as a test of the check makes them."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="kept-name")
    boto3.client("iam").create_role(RoleName="kept-role", AssumeRolePolicyDocument="{}")
    boto3.client("ec2", region_name=REGION).describe_vpcs()


def test_a_reset_drops_without_building_and_the_next_mock_starts_empty(
    aws_env: None, ec2_builds: list[str]
) -> None:
    """The stop of a mock builds no backend anew; S3's own reset still frees the bucket's name
    (a reset that only dropped the backends would keep it taken: BucketAlreadyExists); the
    next mock sees no bucket, no role and the same default AMIs as the first, each backend
    built on first use. (This test starts its mocks itself: moto starts and resets only at the
    outermost one, so inside the `aws` fixture's a second would do nothing.)"""
    from moto import mock_aws

    with mock_aws():
        _use_everything()
        before = _images(REGION)
        assert ec2_builds == [REGION]
    assert ec2_builds == [REGION], "the stop built an EC2 backend it then dropped"
    with mock_aws():
        assert ec2_builds == [REGION], "the start built an EC2 backend it then dropped"
        assert boto3.client("s3", region_name=REGION).list_buckets()["Buckets"] == []
        with pytest.raises(ClientError, match="NoSuchEntity"):
            boto3.client("iam").get_role(RoleName="kept-role")
        assert ec2_builds == [REGION]
        assert set(_images(REGION)) == set(before)
        assert ec2_builds == [REGION, REGION]
        _use_everything()  # the name is free again, the role can be made again


def test_outside_the_reset_a_backend_s_own_reset_still_empties_it(aws: None) -> None:
    """Only BackendDict.reset leaves the new build out (a mock's start and stop, and moto's
    `/moto-api/reset`, go through it): a backend reset on its own, as a test may reset one, is
    emptied and built again, as moto does."""
    from moto.ec2.models import ec2_backends

    ec2 = boto3.client("ec2", region_name=REGION)
    made = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    backend = ec2_backends["123456789012"][REGION]
    assert made in backend.volumes
    backend.reset()
    assert made not in backend.volumes
    assert backend.amis, "built again: moto's default AMIs are back"


def test_the_patch_is_installed_once() -> None:
    from moto.core import base_backend

    share_moto_setup()
    reset, reset_all = base_backend.BaseBackend.reset, base_backend.BackendDict.reset
    share_moto_setup()
    assert base_backend.BaseBackend.reset is reset
    assert base_backend.BackendDict.reset == reset_all


def test_the_ami_lists_are_parsed_once_and_each_backend_gets_its_own_entries(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under cached_moto the AMIs of a region are those moto serves without it; each list file
    is parsed once; an entry moto changes in one backend's list is not changed in the next."""
    from moto.ec2.models import amis

    own = _images("eu-west-1")
    parsed: list[str] = []
    load = amis.load_resource  # type: ignore[attr-defined]

    def counted(resource: str) -> Any:
        parsed.append(resource)
        return load(resource)

    monkeypatch.setattr(amis, "load_resource", counted)
    # The parsed lists outlive a cached_moto (that is their point): an earlier rehearsal in this
    # process may have parsed eu-west-1's already, so this test starts from an empty cache.
    monkeypatch.setattr(moto_speed, "_resources", {})
    with cached_moto():
        from moto.ec2.models import EC2Backend

        first = EC2Backend("eu-west-1", "123456789012")
        files = list(parsed)
        assert files and all(f.endswith("eu-west-1.json") for f in files), files
        entries = amis.load_resource(files[0])  # type: ignore[attr-defined]
        entries[0]["name"] = "changed by one backend"
        second = EC2Backend("eu-west-1", "123456789012")
        assert parsed == files, "the second backend parsed the lists again"
        assert {a.id: a.name for a in first.amis.values()} == {
            a.id: a.name for a in second.amis.values()
        }
        assert amis.load_resource(files[0])[0]["name"] != "changed by one backend"  # type: ignore[attr-defined]
        from moto.core import base_backend

        base_backend.BackendDict.reset()  # the region's next backend is built under the cache
        served = _images("eu-west-1")
        assert len(parsed) == len(set(parsed)), f"a list was parsed again: {parsed}"
    assert amis.load_resource is counted  # type: ignore[attr-defined]  # moto's own is back
    assert len(served) > 1000 and served == own

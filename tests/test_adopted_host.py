"""hostInstanceId: an existing instance becomes the dev host; the stack destroys nothing on it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from conftest import Run

from infra.adopted_host import AdoptionRefused, ProfileAssociationProvider, attach, detach

ADOPTED = "i-0123456789abcdef0"


def test_an_adopted_host_gets_the_profile_and_the_association_but_no_instance(
    run_program: Any,
) -> None:
    from conftest import stack_config

    run: Run = run_program(stack_config(("service-a",), hostInstanceId=ADOPTED))
    types = {r.typ for r in run.mocks.resources}
    assert "aws:ec2/instance:Instance" not in types, "nothing is created in its place"
    assert "aws:ec2/securityGroup:SecurityGroup" not in types, "its network is left alone"
    (adopt,) = run.of_type("pulumi-python:dynamic:Resource")
    profile = run.named("aws:iam/instanceProfile:InstanceProfile", "dev-host-profile")
    assert adopt.inputs["instance_id"] == ADOPTED
    assert adopt.inputs["profile_name"] == run.outputs["hostInstanceProfile"]
    assert profile.inputs["role"] == run.outputs["hostRoleArn"].rsplit("/", 1)[-1]
    (association,) = run.of_type("aws:ssm/association:Association")
    assert association.inputs["targets"] == [{"key": "InstanceIds", "values": [ADOPTED]}]
    assert run.outputs["hostAdopted"] is True and run.outputs["hostInstanceId"] == ADOPTED
    attached = [
        a.inputs["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    ]
    assert attached == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]


def _instance(ec2: Any, profile: str | None = None) -> str:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    extra = {"IamInstanceProfile": {"Name": profile}} if profile else {}
    (instance,) = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, **extra)["Instances"]
    return str(instance["InstanceId"])


def _profile(iam: Any, name: str) -> str:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return name


def _profiles_on(ec2: Any, instance_id: str) -> list[str]:
    found = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    return [a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] for a in found]


def test_adoption_attaches_the_profile_and_destroy_only_takes_it_back(aws: None) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    host = _instance(ec2)
    profile = _profile(iam, "dev-host-profile-1")
    association = attach(ec2, host, profile)
    assert _profiles_on(ec2, host) == [profile]
    assert attach(ec2, host, profile) == association, "running it again changes nothing"
    detach(ec2, host, "iip-assoc-someone-elses")
    assert _profiles_on(ec2, host) == [profile], "only our own association is removed"
    ProfileAssociationProvider().delete(
        association, {"instance_id": host, "profile_name": profile, "region": "us-east-1"}
    )
    assert _profiles_on(ec2, host) == []
    (reservation,) = ec2.describe_instances(InstanceIds=[host])["Reservations"]
    assert reservation["Instances"][0]["State"]["Name"] == "running", "the instance lives on"


def test_an_instance_with_another_profile_is_refused_with_the_fix(aws: None) -> None:
    """Taking its role away would break whatever runs there: refuse, and say how to proceed."""
    ec2 = boto3.client("ec2", region_name="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    theirs = _profile(iam, "their-app-profile")
    host = _instance(ec2, theirs)
    with pytest.raises(AdoptionRefused) as refused:
        attach(ec2, host, _profile(iam, "dev-host-profile-1"))
    message = str(refused.value)
    assert f"instance {host} already has the instance profile their-app-profile" in message
    assert "disassociate-iam-instance-profile" in message and "unset hostInstanceId" in message
    assert _profiles_on(ec2, host) == [theirs], "nothing was changed"


def test_a_change_of_instance_replaces_the_association_delete_first() -> None:
    diff = ProfileAssociationProvider().diff(
        "iip-1",
        {"instance_id": "i-0123456789abcdef0", "profile_name": "p", "region": "us-east-1"},
        {"instance_id": "i-0fedcba9876543210", "profile_name": "p", "region": "us-east-1"},
    )
    assert diff.changes and diff.replaces == ["instance_id"] and diff.delete_before_replace

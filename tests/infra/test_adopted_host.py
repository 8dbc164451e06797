"""hostInstanceId: an existing instance becomes the dev host; the stack destroys nothing on it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from conftest import Run
from pulumi.runtime import rpc

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
    image = "ami-0abcdef1234567890"  # moto launches any id, as a Linux instance
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


def _news(host: str, profile: Any, **extra: Any) -> dict[str, Any]:
    return {"instance_id": host, "profile_name": profile, "region": "us-east-1", **extra}


def test_preview_refuses_an_instance_with_another_profile_with_the_same_fix(aws: None) -> None:
    """`check` runs in `pulumi preview`, before anything exists: the refusal comes there, not
    halfway through `pulumi up` after the IAM resources were made. In a first preview our
    profile's name is not known yet (auto-named), so any profile on the instance is another's."""
    ec2 = boto3.client("ec2", region_name="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    host = _instance(ec2, _profile(iam, "their-app-profile"))
    for ours in (rpc.UNKNOWN, "dev-host-profile-1"):
        result = ProfileAssociationProvider().check({}, _news(host, ours))
        (failure,) = result.failures
        assert failure.property == "instance_id"
        assert f"instance {host} already has the instance profile their-app-profile" in (
            failure.reason
        )
        assert "disassociate-iam-instance-profile" in failure.reason
    with pytest.raises(AdoptionRefused) as refused:  # and `up` still refuses: state can change
        ProfileAssociationProvider().create(_news(host, "dev-host-profile-1"))
    assert failure.reason == str(refused.value)


def test_preview_accepts_a_bare_instance_and_our_own_association(aws: None) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    bare = _instance(ec2)
    assert ProfileAssociationProvider().check({}, _news(bare, rpc.UNKNOWN)).failures == []
    ours = _profile(iam, "dev-host-profile-1")
    adopted = _instance(ec2, ours)
    assert ProfileAssociationProvider().check({}, _news(adopted, ours)).failures == []
    # The host role (so its profile) is being replaced: the new name is unknown in the
    # preview, and the profile on the instance is our previous one, not someone else's.
    olds = _news(adopted, ours, association_id="iip-assoc-1")
    assert ProfileAssociationProvider().check(olds, _news(adopted, rpc.UNKNOWN)).failures == []


def test_preview_refuses_a_windows_instance(aws: None) -> None:
    """The profiles are installed by a POSIX shell script through AWS-RunShellScript."""
    ec2 = boto3.client("ec2", region_name="us-east-1")
    windows = "ami-03cf127a"  # a Windows Server image of moto's catalogue
    (instance,) = ec2.run_instances(ImageId=windows, MinCount=1, MaxCount=1)["Instances"]
    assert instance.get("Platform") == "windows"
    host = str(instance["InstanceId"])
    (failure,) = ProfileAssociationProvider().check({}, _news(host, rpc.UNKNOWN)).failures
    assert f"instance {host} runs Windows" in failure.reason and "Linux" in failure.reason
    with pytest.raises(AdoptionRefused):
        ProfileAssociationProvider().create(_news(host, "dev-host-profile-1"))


def test_preview_names_an_instance_that_is_not_there(aws: None) -> None:
    (failure,) = ProfileAssociationProvider().check({}, _news(ADOPTED, rpc.UNKNOWN)).failures
    assert f"instance {ADOPTED} is not found in us-east-1" in failure.reason
    assert "hostInstanceId" in failure.reason


def test_preview_without_credentials_leaves_the_refusal_to_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """No credentials where the preview runs (or no permission to describe): nothing to
    check against, so the preview goes on and `create` checks again."""
    import os

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = ProfileAssociationProvider().check({}, _news(ADOPTED, rpc.UNKNOWN))
    assert result.failures == []


def test_the_stacks_aws_profile_and_region_reach_the_provider(run_program: Any) -> None:
    """The adoption's boto3 runs in the dynamic provider, outside pulumi-aws: it gets the
    stack's `aws:profile` (not a secret) and region as inputs instead of the default chain."""
    from conftest import REGION, stack_config

    config = {**stack_config(("service-a",), hostInstanceId=ADOPTED), "aws:profile": "deployer"}
    (adopt,) = run_program(config).of_type("pulumi-python:dynamic:Resource")
    assert adopt.inputs["aws_profile"] == "deployer"
    assert adopt.inputs["region"] == REGION
    (plain,) = run_program(stack_config(("service-a",), hostInstanceId=ADOPTED)).of_type(
        "pulumi-python:dynamic:Resource"
    )
    assert plain.inputs.get("aws_profile") is None


def test_boto3_uses_the_stacks_profile_rather_than_the_default_chain(
    aws: None, tmp_path: Any
) -> None:
    """The default chain finds the environment's keys (moto's); the stack's profile has its
    own, and its region is the stack's."""
    import os

    from infra.adopted_host import ec2_client

    credentials = tmp_path / "no-aws-credentials"
    assert os.environ["AWS_SHARED_CREDENTIALS_FILE"] == str(credentials)
    credentials.write_text(
        "[deployer]\naws_access_key_id = AKIADEPLOYER00000000\n"
        "aws_secret_access_key = deployer-secret\n"
    )
    stack = ec2_client({"region": "eu-west-1", "aws_profile": "deployer"})
    assert stack.meta.region_name == "eu-west-1"
    assert stack._request_signer._credentials.access_key == "AKIADEPLOYER00000000"
    default = ec2_client({"region": "eu-west-1", "aws_profile": None})
    access_key = default._request_signer._credentials.access_key
    assert access_key == os.environ["AWS_ACCESS_KEY_ID"] != "AKIADEPLOYER00000000"


def test_a_change_of_aws_profile_alone_updates_in_place() -> None:
    """Another profile name for the same account changes nothing on the instance."""
    provider = ProfileAssociationProvider()
    olds = {**_news(ADOPTED, "p", aws_profile="old"), "association_id": "iip-assoc-1"}
    news = {**_news(ADOPTED, "p", aws_profile="new"), "association_id": None}
    diff = provider.diff("iip-assoc-1", olds, news)
    assert diff.changes and not diff.replaces and not diff.delete_before_replace
    outs = provider.update("iip-assoc-1", olds, news).outs
    assert outs is not None
    assert (outs["aws_profile"], outs["association_id"]) == ("new", "iip-assoc-1")

"""Adopt an existing instance as the dev host: give it the host role's instance profile.

pulumi-aws has no resource that associates an instance profile with an instance it does not
manage, so this is a small dynamic provider over EC2's own API (boto3). It runs outside
pulumi-aws, so it cannot see the provider's credentials: it gets the stack's `aws:profile`
(when set) and region as inputs and builds its boto3 session from them (the rest of the
chain, e.g. AWS_PROFILE or SSO, as boto3 finds it). It never stops, changes or destroys the
instance:
- check (`pulumi preview`, and again at the start of `pulumi up`): refuse, when credentials
  allow looking, an instance that already carries a different profile (it belongs to someone
  else's setup) or runs Windows (the profiles are installed by a POSIX shell script through
  AWS-RunShellScript), before any IAM resource is made;
- create: the same refusals again (the instance may have changed since), then associate our
  profile, retrying while IAM propagates it;
- delete (`pulumi destroy`, or a change of instance): remove our association only, leaving
  the instance as it was before the stack adopted it.

The stack never modifies an adopted instance's metadata options either: `metadataHopLimit`
applies only to the instances the stack creates, and an adopted host keeps its own IMDS
settings (the README says how to set them).

The role an adopted host ends up with is the stack's own: an instance that already carries a
profile is refused, so the host role (created by HostRole) is the only one involved, and the
stack manages its policies exclusively (SharedHost declares them; infra/exclusive_policies).
An inline or managed policy someone adds to it by hand, say to let other software on the
adopted instance reach something, is removed by the next `pulumi up --refresh`: software that
needs AWS access there gets a service, and so a role, of its own. No role outside the stack is
ever touched.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.runtime import rpc

PROPAGATION_SECONDS = 120
"""A new instance profile can take this long before EC2 accepts it."""
REPLACING = ("instance_id", "profile_name", "region")
"""Inputs whose change means a new association; `aws_profile` only says how to reach AWS."""


class AdoptionRefused(Exception):
    """The instance cannot be adopted; the message says why and what to do."""


def ec2_client(props: Mapping[str, Any]) -> Any:
    """EC2 in the stack's region, with the stack's `aws:profile` when it sets one."""
    import boto3

    session = boto3.session.Session(
        profile_name=props.get("aws_profile") or None, region_name=props["region"]
    )
    return session.client("ec2")


def _current(ec2: Any, instance_id: str) -> dict[str, Any] | None:
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[
            {"Name": "instance-id", "Values": [instance_id]},
            {"Name": "state", "Values": ["associating", "associated"]},
        ]
    )["IamInstanceProfileAssociations"]
    return associations[0] if associations else None


def _profile_name(association: dict[str, Any]) -> str:
    return str(association["IamInstanceProfile"]["Arn"]).rsplit("/", 1)[-1]


def profile_refusal(ec2: Any, instance_id: str, ours: Collection[str]) -> str | None:
    """Why the instance cannot take our profile: it carries one that is not in `ours`."""
    existing = _current(ec2, instance_id)
    if existing is None or _profile_name(existing) in ours:
        return None
    return (
        f"instance {instance_id} already has the instance profile "
        f"{_profile_name(existing)}: adopting it would take that role away from whatever "
        "runs there. Fix: remove that profile yourself (aws ec2 "
        "disassociate-iam-instance-profile), or unset hostInstanceId to create a new host"
    )


def platform_refusal(ec2: Any, instance_id: str) -> str | None:
    """Why the instance cannot be the dev host: it runs Windows."""
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    if any(str(i.get("Platform", "")).lower() == "windows" for i in instances):
        return (
            f"instance {instance_id} runs Windows: the profiles are installed by a POSIX "
            "shell script (AWS-RunShellScript). Fix: adopt a Linux instance, or unset "
            "hostInstanceId to create a new host"
        )
    return None


def attach(
    ec2: Any, instance_id: str, profile_name: str, *, sleep: Any = time.sleep, clock: Any = None
) -> str:
    """Associate the profile with the instance; return the association id."""
    clock = clock or time.monotonic
    existing = _current(ec2, instance_id)
    if existing is not None and _profile_name(existing) == profile_name:
        return str(existing["AssociationId"])
    refusal = profile_refusal(ec2, instance_id, {profile_name})
    if refusal:
        raise AdoptionRefused(refusal)
    deadline = clock() + PROPAGATION_SECONDS
    while True:
        try:
            answer = ec2.associate_iam_instance_profile(
                IamInstanceProfile={"Name": profile_name}, InstanceId=instance_id
            )
            return str(answer["IamInstanceProfileAssociation"]["AssociationId"])
        except Exception as err:  # botocore's ClientError; imported lazily with boto3
            code = getattr(err, "response", {}).get("Error", {}).get("Code")
            if code != "InvalidParameterValue" or clock() >= deadline:
                raise
            sleep(5)  # the new profile is not yet visible to EC2


def detach(ec2: Any, instance_id: str, association_id: str) -> None:
    """Remove our association, and only ours; an instance that is gone needs nothing."""
    existing = _current(ec2, instance_id)
    if existing is not None and existing["AssociationId"] == association_id:
        ec2.disassociate_iam_instance_profile(AssociationId=association_id)


def _known(value: Any) -> bool:
    return isinstance(value, str) and value != rpc.UNKNOWN


class ProfileAssociationProvider(ResourceProvider):
    """Inputs: instance_id, profile_name, region, aws_profile. Output: association_id."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        instance_id, region = news.get("instance_id"), news.get("region")
        if not (_known(instance_id) and _known(region)):
            return CheckResult(news, [])
        # Ours: the profile this stack attaches (unknown in a first preview: auto-named) and
        # the one it attached before (a host role being replaced gets a new profile).
        ours = {str(p) for p in (news.get("profile_name"), olds.get("profile_name")) if _known(p)}
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            ec2 = ec2_client(news)
            refusal = platform_refusal(ec2, str(instance_id)) or profile_refusal(
                ec2, str(instance_id), ours
            )
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if not code.startswith("InvalidInstanceID"):
                return CheckResult(news, [])  # e.g. no permission to look: `create` checks
            refusal = (
                f"instance {instance_id} is not found in {region} with these credentials "
                f"({code}). Fix: check hostInstanceId, aws:region and aws:profile"
            )
        except BotoCoreError:
            return CheckResult(news, [])  # no credentials here: `create` checks again
        failures = [CheckFailure("instance_id", refusal)] if refusal else []
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        ec2 = ec2_client(props)
        refusal = platform_refusal(ec2, props["instance_id"])
        if refusal:
            raise AdoptionRefused(refusal)
        association_id = attach(ec2, props["instance_id"], props["profile_name"])
        return CreateResult(association_id, {**props, "association_id": association_id})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaced = [key for key in REPLACING if olds.get(key) != news.get(key)]
        profile_changed = olds.get("aws_profile") != news.get("aws_profile")
        # A new instance, profile or region means a new association: delete ours first, then
        # associate the new one. Another aws_profile alone is an update of the inputs.
        return DiffResult(
            changes=bool(replaced) or profile_changed,
            replaces=replaced,
            delete_before_replace=bool(replaced),
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**news, "association_id": olds.get("association_id")})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        detach(ec2_client(props), props["instance_id"], id_)


class ProfileAssociation(pulumi.dynamic.Resource):
    """The host role's instance profile on an instance this stack does not manage."""

    association_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        instance_id: str,
        profile_name: pulumi.Input[str],
        region: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            ProfileAssociationProvider(),
            name,
            {
                "instance_id": instance_id,
                "profile_name": profile_name,
                "region": region,
                # How pulumi-aws reaches AWS for this stack, so the adoption reaches the same
                # account: a profile name, not a secret.
                "aws_profile": pulumi.Config("aws").get("profile"),
                "association_id": None,
            },
            opts,
        )

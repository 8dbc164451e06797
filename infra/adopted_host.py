"""Adopt an existing instance as the dev host: give it the host role's instance profile.

pulumi-aws has no resource that associates an instance profile with an instance it does not
manage, so this is a small dynamic provider over EC2's own API (boto3, with the same AWS
credentials and the stack's region). It never stops, changes or destroys the instance:
- create: refuse an instance that already carries a different profile (it belongs to someone
  else's setup); otherwise associate ours, retrying while IAM propagates the new profile;
- delete (`pulumi destroy`, or a change of instance): remove our association only, leaving
  the instance as it was before the stack adopted it.
"""

from __future__ import annotations

import time
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider

PROPAGATION_SECONDS = 120
"""A new instance profile can take this long before EC2 accepts it."""


class AdoptionRefused(Exception):
    """The instance cannot be adopted; the message says why and what to do."""


def _ec2(region: str) -> Any:
    import boto3

    return boto3.client("ec2", region_name=region)


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


def attach(
    ec2: Any, instance_id: str, profile_name: str, *, sleep: Any = time.sleep, clock: Any = None
) -> str:
    """Associate the profile with the instance; return the association id."""
    clock = clock or time.monotonic
    existing = _current(ec2, instance_id)
    if existing is not None:
        if _profile_name(existing) == profile_name:
            return str(existing["AssociationId"])
        raise AdoptionRefused(
            f"instance {instance_id} already has the instance profile "
            f"{_profile_name(existing)}: adopting it would take that role away from whatever "
            "runs there. Fix: remove that profile yourself (aws ec2 "
            "disassociate-iam-instance-profile), or unset hostInstanceId to create a new host"
        )
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


class ProfileAssociationProvider(ResourceProvider):
    """Inputs: instance_id, profile_name, region. Output: association_id."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        ec2 = _ec2(props["region"])
        association_id = attach(ec2, props["instance_id"], props["profile_name"])
        return CreateResult(association_id, {**props, "association_id": association_id})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("instance_id", "profile_name", "region")
        changed = [key for key in keys if olds.get(key) != news.get(key)]
        # Any change means a new association: delete ours first, then associate the new one.
        return DiffResult(
            changes=bool(changed), replaces=changed, delete_before_replace=bool(changed)
        )

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        detach(_ec2(props["region"]), props["instance_id"], id_)


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
                "association_id": None,
            },
            opts,
        )

"""A small AWS world in moto, wired like the stack, for testing the post-deploy check.

It is built with IAM enforcement off (as `pulumi up` would, with admin rights), from the same
policy builders the program uses; the tests then turn enforcement on with
`rehearsal.moto_rules.aws_iam_rules()` and run the check with a *session of the host role*,
obtained the way the instance gets one: an AssumeRole whose session name is the instance id.
Variations break one side of the wiring at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from checks.reach.read import read_policy
from checks.stack_outputs import Targets, parse_outputs
from infra import policies

ACCOUNT = "123456789012"
EC2 = "ec2.amazonaws.com"
REGION = "us-east-1"
INSTANCE_ID = "i-0123456789abcdef0"
AUDITOR = "auditor"
OWN_STEPS = ("list", "put", "get", "isolation", "delete")
"""The steps of a service's own bucket and its isolation, in the report's order."""
DEDICATED_STEPS = ["reach", *OWN_STEPS]
"""A dedicated instance's report on its own service: the documents, then the probes."""
SHARED_PROBE_STEPS = ["direct access denied", "assume role", *OWN_STEPS]
"""A service's probe steps from the shared host, in the report's order."""
"""A dedicated instance's report on its own service: the documents, then the probes."""
USER_KEY = "data/keep.txt"
USER_BODY = b"user data that the check must never touch\n"


@dataclass(frozen=True)
class Wiring:
    """How the world is wired; the defaults are the healthy stack."""

    services: Sequence[str] = ("service-a", "service-b", "service-c")
    host_may_assume: Sequence[str] | None = None
    """Services whose role the host policy names; None means all (the identity side)."""
    trusting: Sequence[str] | None = None
    """Services whose trust policy names the host role; None means all (the resource side)."""
    host_extra: Sequence[Mapping[str, Any]] = ()
    """Extra Allow statements for the host role, e.g. direct S3 access."""
    service_extra: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    """Extra Allow statements per service role, e.g. a grant on another service's bucket."""
    host_reads_iam: bool = False
    """Let the host call iam:GetRole, so the check can say which side is missing."""
    topology: str = "shared"
    versioned: bool = False
    """Versioning on every bucket, and the service roles' grant for a versioned bucket."""
    kms: Sequence[str] = ()
    """Services whose bucket is SSE-KMS with a key of its own, as the stack creates it."""


@dataclass
class World:
    outputs: dict[str, Any]
    credentials: dict[str, str]
    """The caller's credentials: host role session (shared) or a service's (dedicated)."""

    def write_outputs(self, directory: Path) -> Path:
        path = directory / "outputs.json"
        path.write_text(json.dumps(self.outputs))
        return path

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": self.credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": self.credentials["SessionToken"],
        }

    def session(self) -> boto3.Session:
        env = self.environment()
        return boto3.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env["AWS_SESSION_TOKEN"],
            region_name=REGION,
        )


def _policy(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def statement(action: str | list[str], resource: str, effect: str = "Allow") -> dict[str, Any]:
    """One IAM policy statement, for wiring variations."""
    return {"Effect": effect, "Action": action, "Resource": resource}


def bucket_of(service: str) -> str:
    return f"{service}-bucket-0a1b2c3"


def statements_of(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(document["Statement"])


def _sse_kms(s3: Any, bucket: str) -> str:
    """A key as the stack creates one, and the bucket's default encryption with it."""
    kms = boto3.client("kms", region_name=REGION)
    root = f"arn:aws:iam::{ACCOUNT}:root"
    key = str(kms.create_key(Policy=json.dumps(policies.key_policy(root)))["KeyMetadata"]["Arn"])
    default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]
        },
    )
    return key


def build(wiring: Wiring = Wiring()) -> World:
    """Create buckets, roles and policies; return the stack outputs and the caller's session."""
    iam = boto3.client("iam", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    sts = boto3.client("sts", region_name=REGION)
    host = iam.create_role(
        RoleName="dev-host-role-0a1b2c3",
        AssumeRolePolicyDocument=json.dumps(policies.trust_policy(EC2)),
    )["Role"]
    trusting = set(wiring.services if wiring.trusting is None else wiring.trusting)
    shared = wiring.topology == "shared"
    services: dict[str, dict[str, str]] = {}
    for service in wiring.services:
        bucket = bucket_of(service)
        s3.create_bucket(Bucket=bucket)
        if wiring.versioned:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        key = _sse_kms(s3, bucket) if service in wiring.kms else None
        s3.put_object(Bucket=bucket, Key=USER_KEY, Body=USER_BODY)
        principals = [host["Arn"]] if shared and service in trusting else []
        role = iam.create_role(
            RoleName=f"{service}-role-0a1b2c3",
            Path=policies.service_role_path("dev"),
            AssumeRolePolicyDocument=json.dumps(policies.trust_policy(EC2, principals)),
        )["Role"]
        grant = policies.bucket_access_policy(
            f"arn:aws:s3:::{bucket}", wiring.versioned, key, policies.s3_via_service(REGION, "aws")
        )
        extra = list(wiring.service_extra.get(service, ()))
        iam.put_role_policy(
            RoleName=role["RoleName"],
            PolicyName="bucket-access",
            PolicyDocument=_policy(*statements_of(grant), *extra),
        )
        services[service] = {
            "bucketName": bucket,
            "bucketArn": f"arn:aws:s3:::{bucket}",
            "roleArn": role["Arn"],
        }
        if key is not None:
            services[service]["kmsKeyArn"] = key
    may_assume: Iterable[str] = (
        wiring.services if wiring.host_may_assume is None else wiring.host_may_assume
    )
    host_statements: list[Mapping[str, Any]] = list(wiring.host_extra)
    if wiring.host_may_assume is None:  # the stack's own grant: the service roles' path
        path_arn = policies.service_roles_arn("aws", ACCOUNT, "dev")
        host_statements += statements_of(policies.assume_roles_policy(path_arn))
    elif may_assume:  # a narrower grant, by ARN, that leaves some roles out
        arns = [services[s]["roleArn"] for s in may_assume]
        host_statements.append({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arns})
    if wiring.host_reads_iam:
        host_statements.append({"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"})
    if host_statements:
        iam.put_role_policy(
            RoleName=host["RoleName"],
            PolicyName="assume-service-roles",
            PolicyDocument=_policy(*host_statements),
        )
    outputs: dict[str, Any] = {"topology": wiring.topology, "region": REGION, "services": services}
    if shared:
        outputs.update(hostRoleArn=host["Arn"], hostInstanceId=INSTANCE_ID)
        caller_role = host["Arn"]
    else:
        outputs["instances"] = {s: INSTANCE_ID for s in wiring.services}
        caller_role = services[wiring.services[0]]["roleArn"]
    add_auditor(iam)
    # What EC2 does for the instance profile: assume the role, session named after the instance.
    credentials = sts.assume_role(RoleArn=caller_role, RoleSessionName=INSTANCE_ID)["Credentials"]
    return World(outputs=outputs, credentials=credentials)


def add_auditor(iam: Any, policy: Mapping[str, Any] | None = None) -> None:
    """A user holding the read policy (docs/check.md), as the AWS profile `auditor`.

    The reach proof reads with it (`--audit-profile auditor`): the host role itself may read
    no IAM. Its keys go to the shared credentials file the `aws` fixture points AWS_* at.
    """
    iam.create_user(UserName=AUDITOR)
    iam.put_user_policy(
        UserName=AUDITOR,
        PolicyName="reach-proof-read",
        PolicyDocument=json.dumps(read_policy() if policy is None else policy),
    )
    key = iam.create_access_key(UserName=AUDITOR)["AccessKey"]
    path = os.environ.get("AWS_SHARED_CREDENTIALS_FILE")
    if path:
        Path(path).write_text(
            f"[{AUDITOR}]\naws_access_key_id = {key['AccessKeyId']}\n"
            f"aws_secret_access_key = {key['SecretAccessKey']}\n"
        )


def objects(bucket: str) -> dict[str, bytes]:
    """Every current object in a bucket with its content (read with IAM enforcement off); a
    key whose latest version is a delete marker holds no object."""
    from moto.s3.models import FakeDeleteMarker, s3_backends

    backend = s3_backends[ACCOUNT]["aws"]
    keys = backend.get_bucket(bucket).keys.items()
    return {key: obj.value for key, obj in keys if not isinstance(obj, FakeDeleteMarker)}


def shared_targets(names: Sequence[str]) -> Targets:
    """A shared-topology stack's outputs for `names`, with no world behind them: for the
    tests that read what a host printed, or plan what it is sent."""
    services = {
        name: {
            "bucketName": f"{name}-bucket",
            "bucketArn": f"arn:aws:s3:::{name}-bucket",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{name}-role",
        }
        for name in names
    }
    outputs = {
        "topology": "shared",
        "region": REGION,
        "hostRoleArn": f"arn:aws:iam::{ACCOUNT}:role/host",
        "hostInstanceId": INSTANCE_ID,
        "services": services,
    }
    return parse_outputs(outputs, "test")

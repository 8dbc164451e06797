"""Pulumi mocks that deploy each resource the program registers into moto.

`new_resource` creates the resource in the emulator from its inputs (the provider's camelCase
wire format) and returns what moto gives back (ARNs, names, ids) as the resource's outputs, so
the program's own exports are real emulator values. `call` answers the program's invokes from
the emulator too. A resource type without a handler fails loudly, naming the type: when the
program grows, this mapping must grow with it.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import pulumi
from botocore.exceptions import ClientError

from checks.explain import error_code

COMPONENT_PREFIX = "ec2-assume-role:index:"

Tamper = Callable[[str, str, dict[str, Any]], dict[str, Any] | None]
"""(type, logical name, inputs) -> the inputs to deploy, or None to leave the resource out.
Tests use it to break the wiring the way a bad change to the program would."""


class UnknownResourceType(Exception):
    def __init__(self, typ: str) -> None:
        super().__init__(
            f"the rehearsal cannot emulate resource type {typ}: add a handler for it to "
            "rehearsal/emulator.py"
        )


PUBLIC_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/"
AWS_MANAGED_POLICY = re.compile(r"arn:(aws[a-z-]*):iam::aws:policy/")


def _provide_aws_managed_policy(arn: str) -> None:
    """Make one AWS-managed policy exist in moto, from moto's own copy of its document.

    moto can load all ~1,300 AWS-managed policies (MOTO_IAM_LOAD_MANAGED_POLICIES), but that
    costs over a second per emulator; the program attaches one, so only that one is loaded.
    """
    match = AWS_MANAGED_POLICY.match(arn)
    if match is None:
        return
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends

    # moto keeps one IAM backend per partition; the ARN (arn:aws-cn:...) says which.
    backend = iam_backends[DEFAULT_ACCOUNT_ID][match[1]]
    if arn in backend.managed_policies:
        return
    name = arn.rsplit("/", 1)[-1]
    start = aws_managed_policies_data.find(f'"{name}":')
    if start < 0:
        raise UnknownResourceType(f"AWS-managed policy {arn} (unknown to moto)")
    body = aws_managed_policies_data.index("{", start)
    data, _ = json.JSONDecoder().raw_decode(aws_managed_policies_data, body)
    policy = AWSManagedPolicy.from_data(name, DEFAULT_ACCOUNT_ID, match[1], data)
    backend.managed_policies[policy.arn] = policy


def _auto_name(logical: str) -> str:
    """Pulumi's auto-naming: the logical name plus a random suffix."""
    return f"{logical}-{secrets.token_hex(4)[:7]}"


def _document(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class Deployed:
    """A resource as created in the emulator."""

    typ: str
    name: str
    inputs: dict[str, Any]
    id: str
    outputs: dict[str, Any]


SSE_CONFIGURATION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)


@dataclass
class EmulatorMocks(pulumi.runtime.Mocks):
    region: str
    tamper: Tamper | None = None
    partition: str = "aws"
    """moto's partition for this region (moto serves aws, aws-cn and aws-us-gov regions)."""
    deployed: list[Deployed] = field(default_factory=list)
    associations: list[dict[str, Any]] = field(default_factory=list)
    """State Manager associations, as created: moto has no State Manager, so the rehearsal
    applies each one's script itself, the way the SSM agent would on the host."""
    seconds: float = 0.0
    """Time spent creating resources in the emulator (the 'deploy' share of an evaluation)."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._handlers: dict[str, Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]]]] = {
            "aws:s3/bucket:Bucket": self._bucket,
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": self._public_access_block,
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls": self._ownership,
            "aws:s3/bucketPolicy:BucketPolicy": self._bucket_policy,
            "aws:s3/bucketVersioning:BucketVersioning": self._versioning,
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": self._lifecycle,
            SSE_CONFIGURATION: self._encryption,
            "aws:kms/key:Key": self._key,
            "aws:iam/role:Role": self._role,
            "aws:iam/rolePolicy:RolePolicy": self._role_policy,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": self._attachment,
            "aws:iam/rolePoliciesExclusive:RolePoliciesExclusive": self._exclusive_inline,
            "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": (
                self._exclusive_attachments
            ),
            "aws:iam/instanceProfile:InstanceProfile": self._instance_profile,
            "aws:ec2/securityGroup:SecurityGroup": self._security_group,
            "aws:ec2/instance:Instance": self._instance,
            "aws:ssm/association:Association": self._association,
            "pulumi-python:dynamic:Resource": self._dynamic,
        }

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]

    # Pulumi's mock monitor calls these from several threads; the emulator is called serially.
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ.startswith(COMPONENT_PREFIX):
            return "", {}
        handler = self._handlers.get(args.typ)
        if handler is None:
            raise UnknownResourceType(args.typ)
        inputs = dict(args.inputs)
        if self.tamper is not None:
            tampered = self.tamper(args.typ, args.name, inputs)
            if tampered is None:
                return f"{args.name}-left-out", inputs
            inputs = tampered
        with self._lock:
            start = time.perf_counter()
            try:
                resource_id, outputs = handler(args.name, inputs)
            finally:
                self.seconds += time.perf_counter() - start
            state = {**inputs, **outputs}
            self.deployed.append(Deployed(args.typ, args.name, inputs, resource_id, state))
        return resource_id, state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        invokes: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "aws:index/getRegion:getRegion": self._region,
            "aws:index/getPartition:getPartition": self._partition,
            "aws:index/getCallerIdentity:getCallerIdentity": self._caller,
            "aws:index/getServicePrincipal:getServicePrincipal": self._service_principal,
            "aws:ssm/getParameter:getParameter": self._parameter,
            "aws:ec2/getVpc:getVpc": self._default_vpc,
            "aws:ec2/getSubnet:getSubnet": self._subnet,
            "aws:kms/getKey:getKey": self._describe_key,
        }
        invoke = invokes.get(args.token)
        if invoke is None:
            raise UnknownResourceType(f"invoke {args.token}")
        with self._lock:
            start = time.perf_counter()
            try:
                return invoke(args.args), []
            finally:
                self.seconds += time.perf_counter() - start

    def _region(self, _: Mapping[str, Any]) -> dict[str, Any]:
        return {"region": self.region, "name": self.region, "id": self.region}

    def _partition(self, _: Mapping[str, Any]) -> dict[str, Any]:
        return {"partition": self.partition, "id": self.partition}

    def _caller(self, _: Mapping[str, Any]) -> dict[str, Any]:
        identity = self._client("sts").get_caller_identity()
        return {"accountId": identity["Account"], "arn": identity["Arn"], "id": identity["Account"]}

    def _service_principal(self, args: Mapping[str, Any]) -> dict[str, Any]:
        name = f"{args['serviceName']}.amazonaws.com"
        return {"name": name, "serviceName": args["serviceName"], "id": name}

    def _parameter(self, args: Mapping[str, Any]) -> dict[str, Any]:
        name = args["name"]
        try:
            value = self._client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
        except ClientError as err:
            # moto publishes AWS's public AMI parameters for the commercial regions only; in
            # China and GovCloud the emulator answers with an Amazon image moto does have there.
            if error_code(err) != "ParameterNotFound" or not name.startswith(PUBLIC_AMI_PARAMETER):
                raise
            value = self._amazon_image("arm64" if "arm64" in name else "x86_64")
        return {"name": name, "value": value, "type": "String"}

    def _amazon_image(self, architecture: str) -> str:
        filters = [{"Name": "architecture", "Values": [architecture]}]
        images = self._client("ec2").describe_images(Owners=["amazon"], Filters=filters)["Images"]
        if not images:
            raise UnknownResourceType(f"an Amazon {architecture} image in {self.region}")
        return str(sorted(images, key=lambda image: image["ImageId"])[0]["ImageId"])

    def _default_vpc(self, _: Mapping[str, Any]) -> dict[str, Any]:
        default = [{"Name": "isDefault", "Values": ["true"]}]
        (vpc,) = self._client("ec2").describe_vpcs(Filters=default)["Vpcs"]
        return {"id": vpc["VpcId"], "default": True}

    def _subnet(self, args: Mapping[str, Any]) -> dict[str, Any]:
        (subnet,) = self._client("ec2").describe_subnets(SubnetIds=[args["id"]])["Subnets"]
        return {"id": subnet["SubnetId"], "vpcId": subnet["VpcId"]}

    # S3
    def _bucket(self, logical: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        name = inputs.get("bucket") or _auto_name(logical)
        location = (
            {}
            if self.region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        )
        self._client("s3").create_bucket(Bucket=name, **location)
        return name, {"bucket": name, "arn": f"arn:{self.partition}:s3:::{name}"}

    def _public_access_block(self, _: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        flags = (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
        config = {flag: bool(inputs.get(flag[0].lower() + flag[1:])) for flag in flags}
        self._client("s3").put_public_access_block(
            Bucket=inputs["bucket"], PublicAccessBlockConfiguration=config
        )
        return inputs["bucket"], {}

    def _ownership(self, _: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        ownership = inputs["rule"]["objectOwnership"]
        self._client("s3").put_bucket_ownership_controls(
            Bucket=inputs["bucket"],
            OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]},
        )
        return inputs["bucket"], {}

    def _bucket_policy(self, _: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        self._client("s3").put_bucket_policy(
            Bucket=inputs["bucket"], Policy=_document(inputs["policy"])
        )
        return inputs["bucket"], {}

    def _versioning(self, _: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        status = inputs["versioningConfiguration"]["status"]
        self._client("s3").put_bucket_versioning(
            Bucket=inputs["bucket"], VersioningConfiguration={"Status": status}
        )
        return inputs["bucket"], {}

    def _lifecycle(self, _: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        rules = []
        for rule in inputs["rules"]:
            converted: dict[str, Any] = {"ID": rule["id"], "Status": rule["status"]}
            converted["Filter"] = {"Prefix": rule.get("filter", {}).get("prefix", "")}
            if "noncurrentVersionExpiration" in rule:
                days = int(rule["noncurrentVersionExpiration"]["noncurrentDays"])
                converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
            if "expiration" in rule:
                marker = bool(rule["expiration"].get("expiredObjectDeleteMarker"))
                converted["Expiration"] = {"ExpiredObjectDeleteMarker": marker}
            rules.append(converted)
        self._client("s3").put_bucket_lifecycle_configuration(
            Bucket=inputs["bucket"], LifecycleConfiguration={"Rules": rules}
        )
        return inputs["bucket"], {}

    def _encryption(self, _: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        (rule,) = inputs["rules"]
        default = rule["applyServerSideEncryptionByDefault"]
        converted: dict[str, Any] = {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": default["sseAlgorithm"]},
            "BucketKeyEnabled": bool(rule.get("bucketKeyEnabled")),
        }
        if default.get("kmsMasterKeyId"):
            converted["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] = default[
                "kmsMasterKeyId"
            ]
        self._client("s3").put_bucket_encryption(
            Bucket=inputs["bucket"], ServerSideEncryptionConfiguration={"Rules": [converted]}
        )
        return inputs["bucket"], {}

    # KMS
    def _key(self, _: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        kms = self._client("kms")
        key = kms.create_key(
            Policy=_document(inputs["policy"]), Description=inputs.get("description", "")
        )["KeyMetadata"]
        if inputs.get("enableKeyRotation"):
            days = int(inputs.get("rotationPeriodInDays", 365))
            kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=days)
        return key["KeyId"], {"arn": key["Arn"], "keyId": key["KeyId"]}

    def _describe_key(self, args: Mapping[str, Any]) -> dict[str, Any]:
        key = self._client("kms").describe_key(KeyId=args["keyId"])["KeyMetadata"]
        return {
            "arn": key["Arn"],
            "id": key["Arn"],
            "keyId": key["KeyId"],
            "keyState": key["KeyState"],
            "keySpec": key["KeySpec"],
            "keyUsage": key["KeyUsage"],
        }

    # IAM
    def _role(self, logical: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        role = self._client("iam").create_role(
            RoleName=inputs.get("name") or _auto_name(logical),
            Path=inputs.get("path", "/"),
            AssumeRolePolicyDocument=_document(inputs["assumeRolePolicy"]),
            Description=inputs.get("description", ""),
            MaxSessionDuration=int(inputs.get("maxSessionDuration", 3600)),
        )["Role"]
        return role["RoleName"], {
            "name": role["RoleName"],
            "arn": role["Arn"],
            "uniqueId": role["RoleId"],
        }

    def _role_policy(self, logical: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        name = inputs.get("name") or _auto_name(logical)
        self._client("iam").put_role_policy(
            RoleName=inputs["role"], PolicyName=name, PolicyDocument=_document(inputs["policy"])
        )
        return f"{inputs['role']}:{name}", {"name": name}

    def _attachment(self, _: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        _provide_aws_managed_policy(inputs["policyArn"])
        self._client("iam").attach_role_policy(
            RoleName=inputs["role"], PolicyArn=inputs["policyArn"]
        )
        return f"{inputs['role']}-{inputs['policyArn'].rsplit('/', 1)[-1]}", {}

    # The provider's exclusive resources (terraform-provider-aws role_policies_exclusive.go and
    # role_policy_attachments_exclusive.go): list what the role has, take off what is not
    # listed. The id is the role's name, as `pulumi import` takes it.
    def _exclusive_inline(self, _: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        iam, role = self._client("iam"), inputs["roleName"]
        pages = iam.get_paginator("list_role_policies").paginate(RoleName=role)
        have = {name for page in pages for name in page["PolicyNames"]}
        # A listed policy the role lacks is left alone: the provider would PutRolePolicy it
        # without a document, which IAM refuses, and a program reaches that only through the
        # tamper hook (a RolePolicy left out while its name is still listed).
        for name in sorted(have - set(inputs["policyNames"])):
            iam.delete_role_policy(RoleName=role, PolicyName=name)
        return role, {}

    def _exclusive_attachments(
        self, _: str, inputs: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        iam, role = self._client("iam"), inputs["roleName"]
        pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=role)
        have = {p["PolicyArn"] for page in pages for p in page["AttachedPolicies"]}
        wanted = set(inputs["policyArns"])
        for arn in sorted(wanted - have):  # the provider attaches what is listed and missing
            _provide_aws_managed_policy(arn)
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        for arn in sorted(have - wanted):
            iam.detach_role_policy(RoleName=role, PolicyArn=arn)
        return role, {}

    def _instance_profile(
        self, logical: str, inputs: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        iam = self._client("iam")
        name = inputs.get("name") or _auto_name(logical)
        profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=inputs["role"])
        return name, {"name": name, "arn": profile["Arn"]}

    # EC2
    def _security_group(
        self, logical: str, inputs: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        ec2 = self._client("ec2")
        group_id = ec2.create_security_group(
            GroupName=inputs.get("name") or _auto_name(logical),
            Description=inputs["description"],
            VpcId=inputs["vpcId"],
        )["GroupId"]
        # Like the provider: inline rules replace the default allow-all egress.
        ec2.revoke_security_group_egress(
            GroupId=group_id,
            IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        )
        for direction, call in (
            ("egress", ec2.authorize_security_group_egress),
            ("ingress", ec2.authorize_security_group_ingress),
        ):
            rules = [
                {
                    "IpProtocol": rule["protocol"],
                    "FromPort": int(rule["fromPort"]),
                    "ToPort": int(rule["toPort"]),
                    "IpRanges": [{"CidrIp": cidr} for cidr in rule.get("cidrBlocks", [])],
                }
                for rule in inputs.get(direction, [])
            ]
            if rules:
                call(GroupId=group_id, IpPermissions=rules)
        return group_id, {
            "arn": f"arn:{self.partition}:ec2:{self.region}::security-group/{group_id}"
        }

    # SSM
    def _association(self, logical: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        association_id = f"{secrets.token_hex(4)}-{logical}"
        self.associations.append({"AssociationId": association_id, **inputs})
        return association_id, {"associationId": association_id}

    def _dynamic(self, logical: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Run the program's own dynamic provider against the emulator (adopting a host)."""
        from infra.adopted_host import attach

        if "instance_id" not in inputs or "profile_name" not in inputs:
            raise UnknownResourceType(f"dynamic resource {logical}")
        association_id = attach(self._client("ec2"), inputs["instance_id"], inputs["profile_name"])
        return association_id, {"association_id": association_id}

    def _instance(self, _: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        metadata = inputs.get("metadataOptions", {})
        root = inputs.get("rootBlockDevice", {})
        request: dict[str, Any] = {
            "ImageId": inputs["ami"],
            "InstanceType": inputs["instanceType"],
            "MinCount": 1,
            "MaxCount": 1,
            "SecurityGroupIds": list(inputs.get("vpcSecurityGroupIds", [])),
            "IamInstanceProfile": {"Name": inputs["iamInstanceProfile"]},
            "MetadataOptions": {
                "HttpTokens": metadata.get("httpTokens", "optional"),
                "HttpEndpoint": metadata.get("httpEndpoint", "enabled"),
                "HttpPutResponseHopLimit": int(metadata.get("httpPutResponseHopLimit", 1)),
            },
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/xvda",
                    "Ebs": {
                        "Encrypted": bool(root.get("encrypted")),
                        "VolumeType": root.get("volumeType", "gp3"),
                        # EC2 takes the size from the AMI's snapshot; moto needs it spelled out.
                        "VolumeSize": int(root.get("volumeSize", 8)),
                    },
                }
            ],
            "UserData": inputs.get("userData", ""),
        }
        if inputs.get("subnetId"):
            request["SubnetId"] = inputs["subnetId"]
        (instance,) = self._client("ec2").run_instances(**request)["Instances"]
        return instance["InstanceId"], {
            "arn": f"arn:{self.partition}:ec2:{self.region}::instance/{instance['InstanceId']}"
        }

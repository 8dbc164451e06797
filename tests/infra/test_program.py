"""The whole program (`__main__.py`) under recording mocks, in both topologies, 1 and 3 services."""

from __future__ import annotations

import configparser
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ACCOUNT, AMI, SHARED_OUTPUTS, Run, evaluated, physical, stack_config
from support.iam_lint import findings

from checks.trust import as_list

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
PROFILE = "aws:iam/instanceProfile:InstanceProfile"
BUCKET = "aws:s3/bucket:Bucket"
INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
ASSOCIATION = "aws:ssm/association:Association"
SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
ONE = ("service-a",)
THREE = ("service-a", "service-b", "service-c")

RunProgram = Callable[[dict[str, Any]], Run]


def _statements(document: str) -> list[dict[str, Any]]:
    parsed: dict[str, Any] = json.loads(document)
    return list(parsed["Statement"])


def _inline_policies(run: Run, role_name: str) -> list[Any]:
    return [p for p in run.of_type(ROLE_POLICY) if p.inputs["role"] == physical(role_name)]


def _aws_principals(trust: str) -> list[str]:
    return [
        principal
        for s in _statements(trust)
        for principal in as_list(s.get("Principal", {}).get("AWS", []))
    ]


@pytest.fixture(params=[ONE, THREE], ids=["1-service", "3-services"])
def shared(request: pytest.FixtureRequest) -> Run:
    return evaluated(stack_config(request.param))


@pytest.fixture(params=[ONE, THREE], ids=["1-service", "3-services"])
def dedicated(request: pytest.FixtureRequest) -> Run:
    return evaluated(stack_config(request.param, topology="dedicated"))


@pytest.fixture(params=["shared", "dedicated"])
def any_topology(request: pytest.FixtureRequest) -> Run:
    return evaluated(stack_config(THREE, topology=request.param))


def test_resource_side_each_service_role_trusts_ec2_and_exactly_the_host(shared: Run) -> None:
    """Without the host role in the trust policy, AssumeRole is denied whatever the host holds."""
    host_arn = shared.outputs["hostRoleArn"]
    for service in shared.outputs["services"]:
        trust = shared.named(ROLE, f"{service}-role").inputs["assumeRolePolicy"]
        assert _aws_principals(trust) == [host_arn], f"{service}-role trusts the wrong principals"
        services = [s["Principal"].get("Service") for s in _statements(trust)]
        assert "ec2.amazonaws.com" in services, f"{service}-role must trust EC2 for production"


def _allows(run: Run, role_name: str) -> list[dict[str, Any]]:
    """Every Allow statement in a role's inline policies."""
    return [
        statement
        for policy in _inline_policies(run, role_name)
        for statement in _statements(policy.inputs["policy"])
        if statement["Effect"] == "Allow"
    ]


def test_identity_side_host_may_assume_exactly_the_service_roles(shared: Run) -> None:
    """Without sts:AssumeRole on the service role in the host's policy, AssumeRole is denied.

    The grant names the stack's own role path; every service role lives under it, and the host
    role (and anything else the program creates) does not, so the host cannot assume itself.
    """
    policy = shared.named(ROLE_POLICY, "dev-host-assume-service-roles")
    (statement,) = _statements(policy.inputs["policy"])
    assert statement["Action"] == "sts:AssumeRole", policy.name
    assert statement["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/ec2-assume-role/dev/*"
    prefix = statement["Resource"][:-1]
    under = {
        r.name for r in shared.of_type(ROLE) if r.inputs.get("path") == "/ec2-assume-role/dev/"
    }
    assert under == {f"{s}-role" for s in shared.outputs["services"]}
    for out in shared.outputs["services"].values():
        assert out["roleArn"].startswith(prefix), out["roleArn"]
    assert not shared.outputs["hostRoleArn"].startswith(prefix)


def test_host_role_has_no_direct_s3_access(shared: Run) -> None:
    """Going through the service role must be the only way into a bucket: the host's only
    grant is sts:AssumeRole."""
    for policy in _inline_policies(shared, "dev-host-role"):
        assert "s3:" not in policy.inputs["policy"], f"{policy.name} grants the host S3 access"
    assert [s["Action"] for s in _allows(shared, "dev-host-role")] == ["sts:AssumeRole"]
    attached = [a.inputs["policyArn"] for a in shared.of_type(ATTACHMENT)]
    assert attached == [SSM_CORE], "the host role may carry only the SSM core managed policy"


def test_host_role_trusts_only_ec2_by_default(shared: Run) -> None:
    """No operator principal unless configured: nobody but the instance is the host."""
    trust = shared.named(ROLE, "dev-host-role").inputs["assumeRolePolicy"]
    assert _aws_principals(trust) == []


def test_trusted_principals_may_assume_the_host_role(run_program: RunProgram) -> None:
    """An operator named in trustedPrincipals can run the check as the host does."""
    operator = f"arn:aws:iam::{ACCOUNT}:role/operator"
    run = run_program(stack_config(ONE, trustedPrincipals=[operator]))
    trust = run.named(ROLE, "dev-host-role").inputs["assumeRolePolicy"]
    assert _aws_principals(trust) == [operator]


def test_each_service_role_reaches_only_its_own_bucket(any_topology: Run) -> None:
    """Isolation: a service role's grant names its own bucket and no other, with no wildcard."""
    services = any_topology.outputs["services"]
    for service, out in services.items():
        policy = any_topology.named(ROLE_POLICY, f"{service}-bucket-access")
        assert _allows(any_topology, f"{service}-role") == _statements(policy.inputs["policy"])
        grants = {
            (resource, action)
            for s in _statements(policy.inputs["policy"])
            for resource in as_list(s["Resource"])
            for action in as_list(s["Action"])
        }
        own = out["bucketArn"]
        assert grants == {
            (own, "s3:ListBucket"),
            (f"{own}/*", "s3:GetObject"),
            (f"{own}/*", "s3:PutObject"),
            (f"{own}/*", "s3:DeleteObject"),
        }, f"{policy.name} grants {sorted(grants)}"


def test_dedicated_service_roles_trust_only_ec2_and_there_is_no_host(dedicated: Run) -> None:
    """Production: each instance carries its own service role; no host role exists."""
    assert {r.name for r in dedicated.of_type(ROLE)} == {
        f"{s}-role" for s in dedicated.outputs["services"]
    }
    for service in dedicated.outputs["services"]:
        trust = dedicated.named(ROLE, f"{service}-role").inputs["assumeRolePolicy"]
        assert _aws_principals(trust) == [], f"{service}-role must trust only EC2"
        profile = dedicated.named(PROFILE, f"{service}-profile")
        assert profile.inputs["role"] == physical(f"{service}-role"), profile.name
        instance = dedicated.named(INSTANCE, f"{service}-instance")
        assert instance.inputs["iamInstanceProfile"] == physical(profile.name)
        assert "userData" not in instance.inputs, "a dedicated instance needs no profiles file"


def test_every_instance_requires_imdsv2_and_is_hardened(any_topology: Run) -> None:
    """IMDSv2 blunts SSRF credential theft; no key pair and an encrypted root volume."""
    instances = any_topology.of_type(INSTANCE)
    assert instances
    for instance in instances:
        inputs = instance.inputs
        assert inputs["metadataOptions"]["httpTokens"] == "required", instance.name
        assert inputs["rootBlockDevice"]["encrypted"] is True, instance.name
        assert "keyName" not in inputs, f"{instance.name} must have no SSH key pair"
        assert inputs["ami"] == AMI, instance.name


def test_instance_roles_may_not_read_ssm_parameters(any_topology: Run) -> None:
    """AmazonSSMManagedInstanceCore lets a role read every SSM parameter; an explicit Deny takes
    that back on every role an instance carries, before the instance boots."""
    profiles = {p.inputs["role"] for p in any_topology.of_type(PROFILE)}
    denies = {
        p.inputs["role"]: _statements(p.inputs["policy"])
        for p in any_topology.of_type(ROLE_POLICY)
        if p.name.endswith("-no-parameter-reads")
    }
    assert set(denies) == profiles
    for role, (statement,) in denies.items():
        assert statement["Effect"] == "Deny", role
        assert "ssm:GetParameter" in statement["Action"], role
        assert "ssm:GetParametersByPath" in statement["Action"], role


def test_security_groups_have_no_ingress_and_only_https_egress(any_topology: Run) -> None:
    """Operators use Session Manager, so nothing may listen to the network."""
    groups = any_topology.of_type(SECURITY_GROUP)
    assert groups
    for group in groups:
        assert not group.inputs.get("ingress"), f"{group.name} has ingress rules"
        for rule in group.inputs["egress"]:
            assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 443, 443)


def test_every_bucket_is_private_owner_enforced_and_tls_only(any_topology: Run) -> None:
    """Each bucket: public access fully blocked, ACLs disabled, plain HTTP denied."""
    for service, out in any_topology.outputs["services"].items():
        block = any_topology.named(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{service}-public-access"
        ).inputs
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls")
        assert all(block[f] is True for f in (*flags, "restrictPublicBuckets")), service
        assert block["bucket"] == out["bucketName"]
        ownership = any_topology.named(
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls", f"{service}-ownership"
        ).inputs
        assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}, service
        policy = any_topology.named("aws:s3/bucketPolicy:BucketPolicy", f"{service}-tls-only")
        (deny,) = _statements(policy.inputs["policy"])
        assert deny["Effect"] == "Deny" and deny["Condition"] == {
            "Bool": {"aws:SecureTransport": "false"}
        }, policy.name
        assert deny["Resource"] == [out["bucketArn"], out["bucketArn"] + "/*"], policy.name
        assert any_topology.named(BUCKET, f"{service}-bucket").inputs.get("forceDestroy") is False


def test_versioning_and_force_destroy_follow_the_config(run_program: RunProgram) -> None:
    """Versioning only where a service asks; forceDestroy reaches every bucket."""
    config = stack_config(forceDestroy=True)
    config["ec2-assume-role:services"] = [{"name": "keep", "versioning": True}, {"name": "tmp"}]
    run = run_program(config)
    versioning = run.of_type("aws:s3/bucketVersioning:BucketVersioning")
    assert [v.name for v in versioning] == ["keep-versioning"]
    assert versioning[0].inputs["versioningConfiguration"] == {"status": "Enabled"}
    assert all(b.inputs["forceDestroy"] is True for b in run.of_type(BUCKET))


def test_every_bucket_expires_what_a_killed_check_leaves(run_program: RunProgram) -> None:
    """The safety net for a check killed by SIGKILL: anything under the reserved prefix expires
    after a day, in every bucket; versioned buckets also lose the delete markers. The rules
    name only the check's prefix, so user data keeps all its objects and versions."""
    from checks.runner import RESERVED_PREFIX

    config = stack_config()
    config["ec2-assume-role:services"] = [{"name": "keep", "versioning": True}, {"name": "tmp"}]
    run = run_program(config)
    rules = {
        lc.inputs["bucket"]: lc.inputs["rules"]
        for lc in run.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    }
    assert set(rules) == {physical("keep-bucket"), physical("tmp-bucket")}
    for bucket, found in rules.items():
        assert all(r["filter"] == {"prefix": RESERVED_PREFIX} for r in found), bucket
        assert all(r["status"] == "Enabled" for r in found), bucket
        assert found[0]["expiration"] == {"days": 1}, bucket
        assert found[0]["noncurrentVersionExpiration"] == {"noncurrentDays": 1}, bucket
        assert found[0]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    assert len(rules[physical("tmp-bucket")]) == 1
    marker = rules[physical("keep-bucket")][1]
    assert marker["expiration"] == {"expiredObjectDeleteMarker": True}


def test_buckets_and_roles_are_auto_named(any_topology: Run) -> None:
    """Auto-naming: a replaced role gets a new ARN, which the trust policies then follow."""
    for resource in any_topology.of_type(BUCKET) + any_topology.of_type(ROLE):
        assert "bucket" not in resource.inputs and "name" not in resource.inputs, resource.name


def test_shared_outputs(shared: Run) -> None:
    """The check, CI and README rely on these exact names."""
    outputs = shared.outputs
    assert set(outputs) == SHARED_OUTPUTS
    assert outputs["hostAdopted"] is False
    assert outputs["awsConfigSha256"] == hashlib.sha256(outputs["awsConfig"].encode()).hexdigest()
    assert outputs["topology"] == "shared"
    assert outputs["region"] == "eu-west-1"
    assert outputs["hostRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{physical('dev-host-role')}"
    assert outputs["hostInstanceProfile"] == physical("dev-host-profile")
    assert re.fullmatch(r"i-[0-9a-f]{17}", outputs["hostInstanceId"])
    for service, out in outputs["services"].items():
        assert out == {
            "bucketName": physical(f"{service}-bucket"),
            "bucketArn": f"arn:aws:s3:::{physical(f'{service}-bucket')}",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/ec2-assume-role/dev/"
            f"{physical(f'{service}-role')}",
        }


def test_dedicated_outputs(dedicated: Run) -> None:
    """Dedicated stacks export one instance per service and nothing about a host."""
    outputs = dedicated.outputs
    assert set(outputs) == {"topology", "region", "partition", "services", "instances"}
    assert outputs["topology"] == "dedicated"
    assert set(outputs["instances"]) == set(outputs["services"])
    assert len(set(outputs["instances"].values())) == len(outputs["services"])


def test_aws_config_has_one_assuming_profile_per_service(shared: Run) -> None:
    """Each service runs with AWS_PROFILE=<name>; the SDK assumes and refreshes its role."""
    parser = configparser.ConfigParser()
    parser.read_string(shared.outputs["awsConfig"])
    assert parser["default"]["region"] == "eu-west-1"
    for service, out in shared.outputs["services"].items():
        profile = parser[f"profile {service}"]
        assert profile["role_arn"] == out["roleArn"], service
        assert profile["credential_source"] == "Ec2InstanceMetadata", service
    assert len(parser.sections()) == len(shared.outputs["services"]) + 1


def test_the_association_installs_the_aws_config_and_no_user_data_does(shared: Run) -> None:
    """The file the outputs show is the file the association installs on the host; the
    instance carries no user data, so nothing about the services can replace it."""
    (association,) = shared.of_type(ASSOCIATION)
    inputs = association.inputs
    assert inputs["name"] == "AWS-RunShellScript"
    assert inputs["targets"] == [
        {"key": "InstanceIds", "values": [shared.outputs["hostInstanceId"]]}
    ]
    script = inputs["parameters"]["commands"]
    assert shared.outputs["awsConfigSha256"] in script
    assert inputs["scheduleExpression"] == "rate(30 minutes)", "it must repair a hand-edited file"
    instance = shared.named(INSTANCE, "dev-host-instance").inputs
    assert "userData" not in instance and "userDataReplaceOnChange" not in instance
    assert "aws_secret_access_key" not in script and "aws_session_token" not in script


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_the_association_script_is_valid_shell(shared: Run) -> None:
    """A syntax error would only show up on the host, in the association's history."""
    (association,) = shared.of_type(ASSOCIATION)
    script = association.inputs["parameters"]["commands"]
    for shell in ("sh", "bash"):
        result = subprocess.run([shell, "-n"], input=script, text=True, capture_output=True)
        assert result.returncode == 0, result.stderr


def test_instances_let_containers_reach_metadata_unless_told_not_to(
    run_program: RunProgram,
) -> None:
    """Hop limit 2: a container's IMDSv2 token survives the extra hop; 1 keeps containers out."""
    default = run_program(stack_config(ONE)).named(INSTANCE, "dev-host-instance")
    assert default.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 2
    closed = run_program(stack_config(ONE, topology="dedicated", metadataHopLimit=1))
    assert (
        closed.named(INSTANCE, "service-a-instance").inputs["metadataOptions"][
            "httpPutResponseHopLimit"
        ]
        == 1
    )


def test_every_generated_policy_passes_parliament(any_topology: Run) -> None:
    """parliament lints every identity and bucket policy; trust policies have one excuse."""
    documents = [(p.name, p.inputs["policy"], False) for p in any_topology.of_type(ROLE_POLICY)]
    documents += [
        (p.name, p.inputs["policy"], False)
        for p in any_topology.of_type("aws:s3/bucketPolicy:BucketPolicy")
    ]
    documents += [(r.name, r.inputs["assumeRolePolicy"], True) for r in any_topology.of_type(ROLE)]
    assert documents
    for name, document, trust in documents:
        assert findings(document, trust=trust) == [], f"parliament findings in {name}"


def test_nothing_is_wildcarded_or_longer_than_an_hour(any_topology: Run) -> None:
    """No `*` action or resource in any Allow; role chaining caps sessions at one hour."""
    for policy in any_topology.of_type(ROLE_POLICY):
        allows = [s for s in _statements(policy.inputs["policy"]) if s["Effect"] == "Allow"]
        for statement in allows:
            assert all(a != "*" and not a.endswith(":*") for a in as_list(statement["Action"])), (
                policy.name
            )
            assert "*" not in as_list(statement["Resource"]), policy.name
    for role in any_topology.of_type(ROLE):
        assert role.inputs["maxSessionDuration"] <= 3600, role.name


def test_placement_lookups(run_program: RunProgram) -> None:
    """Unset amiId/subnetId are looked up: AL2023 for the type's architecture, default VPC."""
    run = run_program(stack_config(ONE, instanceType="t4g.small"))
    tokens = {c.token: c.args for c in run.mocks.calls}
    assert tokens["aws:ssm/getParameter:getParameter"]["name"].endswith("kernel-default-arm64")
    assert tokens["aws:ec2/getVpc:getVpc"] == {"default": True}
    assert run.named(SECURITY_GROUP, "dev-host-sg").inputs["vpcId"] == "vpc-0default"

    pinned = run_program(
        stack_config(ONE, amiId="ami-0123456789abcdef0", subnetId="subnet-0123abcd")
    )
    tokens = {c.token for c in pinned.mocks.calls}
    assert "aws:ssm/getParameter:getParameter" not in tokens
    instance = pinned.named(INSTANCE, "dev-host-instance").inputs
    assert (instance["ami"], instance["subnetId"]) == ("ami-0123456789abcdef0", "subnet-0123abcd")
    assert pinned.named(SECURITY_GROUP, "dev-host-sg").inputs["vpcId"] == "vpc-0chosen"


def test_under_the_mocks_resources_carry_no_stack_trace_and_the_sdk_keeps_its_own(
    run_program: RunProgram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`evaluate` skips the SDK's stack walk at each registration (the mock monitor discards
    it; infra.mock_program.without_source_positions): every registration arrives without
    one, and afterwards the SDK's own function is back. Without the skip the same program's
    registrations do carry traces, so the first half can fail; should a new SDK drop the
    function, the skip does nothing and the first half fails, so it is not lost unnoticed."""
    from contextlib import nullcontext

    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime import resource

    import infra.mock_program

    sdk_own = resource._get_stack_trace
    frames: list[int] = []
    register = pulumi_mocks.MockMonitor.RegisterResource

    def recording(self: Any, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            frames.append(len(request.stackTrace.frames))
        return register(self, request)

    monkeypatch.setattr(pulumi_mocks.MockMonitor, "RegisterResource", recording)
    run = run_program(stack_config(ONE))
    assert len(frames) == len(run.mocks.resources) and set(frames) == {0}
    assert resource._get_stack_trace is sdk_own

    frames.clear()
    monkeypatch.setattr(infra.mock_program, "without_source_positions", nullcontext)
    run_program(stack_config(ONE))
    assert frames and min(frames) > 0, "with the SDK's own, every registration has a trace"


def test_each_evaluated_run_is_its_own_copy_of_a_fresh_evaluation(run_program: RunProgram) -> None:
    """`conftest.evaluated` evaluates a config once: what a test does to its copy no later
    one sees, and each copy registers what a fresh evaluation registers."""
    first = evaluated(stack_config(ONE))
    first.mocks.resources[0].inputs.clear()
    first.mocks.resources.clear()
    first.outputs.clear()
    second, fresh = evaluated(stack_config(ONE)), run_program(stack_config(ONE))
    assert second.outputs == fresh.outputs and second.outputs

    def made(run: Run) -> list[tuple[str, str, str]]:  # the order of registration varies
        return sorted(
            (r.typ, r.name, json.dumps(r.inputs, sort_keys=True)) for r in run.mocks.resources
        )

    assert made(second) == made(fresh)

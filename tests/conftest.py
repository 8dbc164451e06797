"""Shared fixtures: recording Pulumi mocks and a runner for `__main__.py`."""

from __future__ import annotations

import copy
import json
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest
from support.aws_cli_fork import ForkedCli, forked_aws_cli
from support.fake_credentials import use_fake_credentials

from checks.contract import OUTPUT_KEYS
from infra.mock_program import evaluate
from infra.partition import Partition, ec2_principal, partition_of_region
from rehearsal.botocore_models import share_botocore_models
from rehearsal.moto_speed import share_moto_setup

share_botocore_models()  # every test process: see rehearsal/botocore_models.py

ACCOUNT = "123456789012"
REGION = "eu-west-1"
AMI = "ami-0abcdef1234567890"
SHARED_OUTPUTS = frozenset(OUTPUT_KEYS) - {"instances"}
"""The shared topology's stack outputs: the contract (checks/contract.py) the check, CI and the
README rely on; `instances` is the dedicated topology's."""
BROUGHT_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
"""A key the mocks' account holds (enabled, symmetric): one a config may bring."""


def key_arn_of(name: str, region: str = REGION, partition: str = "aws") -> str:
    """The ARN the mocks give a created KMS key (a UUID derived from its name)."""
    digits = f"{zlib.crc32(name.encode()):08x}" * 4
    uuid = f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:32]}"
    return f"arn:{partition}:kms:{region}:{ACCOUNT}:key/{uuid}"


def physical(name: str) -> str:
    """The auto-generated physical name the mocks give a resource: Pulumi's random suffix."""
    return f"{name}-0a1b2c3"


class RecordingMocks(pulumi.runtime.Mocks):
    """Keeps every registered resource's inputs and answers the program's invokes.

    The returned state mirrors what the AWS provider computes (ARNs, names, ids), so outputs
    that the program derives from them can be asserted on.
    """

    def __init__(self, region: str = REGION) -> None:
        self.region = region
        found = partition_of_region(region)
        self.partition = found if isinstance(found, Partition) else Partition.AWS
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.calls: list[pulumi.runtime.MockCallArgs] = []
        self._lock = threading.Lock()
        self.keys: dict[str, dict[str, Any]] = {
            BROUGHT_KEY: {
                "arn": BROUGHT_KEY,
                "keyState": "Enabled",
                "keySpec": "SYMMETRIC_DEFAULT",
                "keyUsage": "ENCRYPT_DECRYPT",
            }
        }
        """The account's KMS keys, by ARN, as `aws.kms.get_key` describes them."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        with self._lock:
            self.resources.append(args)
        state = dict(args.inputs)
        name = physical(args.name)
        if args.typ == "aws:s3/bucket:Bucket":
            state.update(bucket=name, arn=f"arn:{self.partition.value}:s3:::{name}")
            return name, state
        if args.typ == "aws:iam/role:Role":
            path = args.inputs.get("path") or "/"
            arn = f"arn:{self.partition.value}:iam::{ACCOUNT}:role{path}{name}"
            state.update(name=name, arn=arn)
            return name, state
        if args.typ == "aws:ssm/association:Association":
            state.update(associationId=f"{zlib.crc32(name.encode()):08x}-association")
            return state["associationId"], state
        if args.typ == "pulumi-python:dynamic:Resource":
            state.update(association_id=f"iip-assoc-{zlib.crc32(name.encode()):017x}")
            return state["association_id"], state
        if args.typ == "aws:iam/instanceProfile:InstanceProfile":
            state.update(name=name)
            return name, state
        if args.typ == "aws:ec2/instance:Instance":
            return f"i-{zlib.crc32(name.encode()):017x}", state
        if args.typ == "aws:kms/key:Key":
            arn = key_arn_of(args.name, self.region, self.partition.value)
            state.update(arn=arn, keyId=arn.rsplit("/", 1)[1])
            return state["keyId"], state
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        with self._lock:
            self.calls.append(args)
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getRegion:getRegion": {"region": self.region, "name": self.region},
            "aws:index/getPartition:getPartition": {
                "partition": self.partition.value,
                "dnsSuffix": "amazonaws.com.cn" if self.partition is Partition.CHINA else "",
                "id": self.partition.value,
            },
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT,
                "arn": f"arn:{self.partition.value}:iam::{ACCOUNT}:user/deployer",
                "userId": "AIDAEXAMPLE",
                "id": ACCOUNT,
            },
            "aws:index/getServicePrincipal:getServicePrincipal": {
                "name": ec2_principal(self.partition),
                "serviceName": args.args.get("serviceName"),
                "region": args.args.get("region"),
                "suffix": ec2_principal(self.partition).split(".", 1)[1],
                "id": ec2_principal(self.partition),
            },
            "aws:ssm/getParameter:getParameter": {"value": AMI, "name": args.args.get("name")},
            "aws:ec2/getVpc:getVpc": {"id": "vpc-0default"},
            "aws:ec2/getSubnet:getSubnet": {"id": args.args.get("id"), "vpcId": "vpc-0chosen"},
        }
        if args.token == "aws:kms/getKey:getKey":
            key = self.keys.get(args.args.get("keyId", ""))
            if key is None:  # as the provider reports it
                raise Exception(f"reading KMS Key ({args.args.get('keyId')}): NotFoundException")
            return {**key, "id": key["arn"], "keyId": key["arn"]}
        if args.token not in answers:
            raise AssertionError(f"the program made an unexpected invoke: {args.token}")
        return answers[args.token]


@dataclass
class Run:
    """One evaluation of `__main__.py`: what it exported and what it registered."""

    outputs: dict[str, Any]
    mocks: RecordingMocks
    calls: list[str] = field(default_factory=list)

    def of_type(self, token: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.mocks.resources if r.typ == token]

    def named(self, token: str, name: str) -> pulumi.runtime.MockResourceArgs:
        matches = [r for r in self.of_type(token) if r.name == name]
        assert len(matches) == 1, f"expected one {token} named {name!r}, found {len(matches)}"
        return matches[0]


def stack_config(services: Iterable[str] = ("service-a",), **keys: Any) -> dict[str, Any]:
    """A fully qualified config for the program: `aws:region` plus this project's keys."""
    config: dict[str, Any] = {
        "aws:region": REGION,
        "ec2-assume-role:services": [{"name": name} for name in services],
    }
    config.update({f"ec2-assume-role:{key}": value for key, value in keys.items()})
    return config


def fresh_run(config: dict[str, Any]) -> Run:
    """`__main__.py` evaluated under new recording mocks for the config's region."""
    mocks = RecordingMocks(str(config.get("aws:region", REGION)))
    return Run(outputs=evaluate(mocks, config), mocks=mocks)


_evaluations: dict[str, Run] = {}


def evaluated(config: dict[str, Any]) -> Run:
    """`__main__.py` under recording mocks, evaluated once per config and test process, for
    tests that only read what it made: each call gets its own deep copy, so what one test
    does to it no other sees. A test that patches anything the program reads (the SDK, the
    environment, the mocks) uses `run_program`, which evaluates each time."""
    key = json.dumps(config, sort_keys=True)
    if key not in _evaluations:
        _evaluations[key] = fresh_run(config)
    once = _evaluations[key]
    mocks = RecordingMocks(once.mocks.region)
    mocks.resources = copy.deepcopy(once.mocks.resources)
    mocks.calls = copy.deepcopy(once.mocks.calls)
    return Run(outputs=copy.deepcopy(once.outputs), mocks=mocks)


@pytest.fixture
def run_program() -> Callable[[dict[str, Any]], Run]:
    """Evaluate `__main__.py` under recording mocks with the given config, each time anew."""
    return fresh_run


@pytest.fixture
def aws(aws_env: None) -> Iterator[None]:
    """moto's in-process AWS, with fake credentials set before any client exists."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Fake credentials (support/fake_credentials.py), no endpoint and no instance metadata,
    and moto's shared setup installed, for a test that starts moto itself."""
    share_moto_setup()  # see rehearsal/moto_speed.py
    use_fake_credentials(monkeypatch, tmp_path, "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def forked_cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkedCli]:
    """The aws CLI forked from one process per test process (tests/support/aws_cli_fork.py)."""
    with forked_aws_cli(tmp_path_factory.mktemp("aws-cli")) as cli:
        yield cli


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A real moto server on 127.0.0.1, on a free port, for the aws CLI to talk to."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def server(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    """Fresh emulator state, and every boto3 client of this test pointed at the server."""
    import requests

    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    use_fake_credentials(monkeypatch, tmp_path, "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    return moto_url

"""A service in a container on the dev host: the README's recipe, run with the real aws CLI.

The container gets the host's profiles file mounted read-only, AWS_CONFIG_FILE pointing at it
and AWS_PROFILE naming its service; the SDK takes the host role's credentials from instance
metadata (IMDSv2, which the hop limit of 2 lets through the container's extra hop) and assumes
the service role. Here the file is the stack's own, unchanged; the metadata service is a
stand-in on 127.0.0.1 serving the host role's session; S3 and STS are a moto server.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from check_world import REGION, Wiring, World, bucket_of, build
from imds_server import Imds

from checks.aws_rules import aws_iam_rules
from infra.aws_config import render_aws_config

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(not (BIN / "aws").exists(), reason="needs the aws CLI")


@pytest.fixture
def host(server: str, tmp_path: Path) -> Iterator[tuple[World, Imds, Path]]:
    world = build(Wiring(services=("service-a", "service-b")))
    imds = Imds("dev-host-role-0a1b2c3", world.credentials)
    arns = {name: out["roleArn"] for name, out in world.outputs["services"].items()}
    mounted = tmp_path / "mnt" / "config"
    mounted.parent.mkdir()
    mounted.write_text(render_aws_config(REGION, arns))
    mounted.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # mounted :ro
    yield world, imds, mounted
    imds.stop()


def in_container(
    server: str, imds: Imds, config: Path, profile: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """What `docker run -v /etc/aws/config:/etc/aws/config:ro -e AWS_CONFIG_FILE -e
    AWS_PROFILE` gives the process: those two variables, and nothing else of AWS."""
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(config.parent.parent),
        "AWS_CONFIG_FILE": str(config),
        "AWS_PROFILE": profile,
        "AWS_SHARED_CREDENTIALS_FILE": str(config.parent / "no-credentials"),
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url,
        "AWS_ENDPOINT_URL": server,
    }
    return subprocess.run(["aws", *args], env=env, capture_output=True, text=True, timeout=60)


def test_a_container_reaches_its_own_bucket_through_the_mounted_profile(
    server: str, host: tuple[World, Imds, Path]
) -> None:
    world, imds, config = host
    with aws_iam_rules():
        own = in_container(
            server, imds, config, "service-a", "s3", "ls", f"s3://{bucket_of('service-a')}"
        )
        other = in_container(
            server, imds, config, "service-a", "s3", "ls", f"s3://{bucket_of('service-b')}"
        )
        who = in_container(
            server,
            imds,
            config,
            "service-a",
            "sts",
            "get-caller-identity",
            "--query",
            "Arn",
            "--output",
            "text",
        )
    assert own.returncode == 0, own.stderr
    assert "data/keep.txt" in own.stdout or "data/" in own.stdout
    assert other.returncode != 0 and "AccessDenied" in other.stderr, (
        "isolation holds in a container"
    )
    assert ":assumed-role/service-a-role-0a1b2c3/service-a.dev-host" in who.stdout, who.stderr
    assert ("PUT", "/latest/api/token", False) in imds.requests, "IMDSv2: a token first"
    assert all(token for method, _, token in imds.requests if method == "GET"), (
        "every GET carried it"
    )
    assert oct(config.stat().st_mode & 0o777) == "0o444", "the mount stays read-only"
    assert world.credentials["SecretAccessKey"] not in own.stdout + own.stderr

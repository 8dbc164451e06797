"""A service in a container on the dev host: the README's recipe, run with the real aws CLI.

The container gets the host's /etc/aws directory mounted read-only, AWS_CONFIG_FILE pointing at
the file in it and AWS_PROFILE naming its service; the SDK takes the host role's credentials
from instance metadata (IMDSv2, which the hop limit of 2 lets through the container's extra
hop) and assumes the service role. Here the file is installed by the association's own script
into a temporary root standing in for the host's `/`; the metadata service is a stand-in on
127.0.0.1 serving the host role's session; S3 and STS are a moto server.

How the mounts are stood in for, without Docker: a directory bind mount shows the directory's
entries as they are now, so a symlink to the host's directory behaves alike; a single-file
bind mount pins the file's inode at mount time, as a hard link does. The association replaces
the file by renaming a new inode over it, which is why the recipe mounts the directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Run
from support.aws_cli_fork import ForkedCli
from support.check_world import REGION, Wiring, World, bucket_of, build
from support.imds_server import Imds

from infra.aws_config import ROOT_VARIABLE, render_aws_config, render_install_script
from rehearsal.moto_rules import aws_iam_rules

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(not (BIN / "aws").exists(), reason="needs the aws CLI")
HOST_ROLE = "dev-host-role-0a1b2c3"


@dataclass
class Host:
    world: World
    imds: Imds
    root: Path
    """The host's `/`, where the association's script installs etc/aws/config."""
    container: Path
    """The container's `/`: etc/aws is the host's etc/aws directory, mounted (read-only)."""
    cli: Path
    """Where the container's `aws` is: the CLI forked from one process (tests/support/
    aws_cli_fork.py), the same CLI at a quarter of the CPU a call."""

    def apply(self, services: list[str]) -> None:
        """Run the association's script for these services, as State Manager does on a change."""
        arns = {s: self.world.outputs["services"][s]["roleArn"] for s in services}
        script = render_install_script(render_aws_config(REGION, arns))
        done = subprocess.run(
            ["sh", "-c", script],
            env={"PATH": os.environ["PATH"], ROOT_VARIABLE: str(self.root)},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr

    @property
    def config(self) -> Path:
        """AWS_CONFIG_FILE as the container sees it: /etc/aws/config inside the mount."""
        return self.container / "etc" / "aws" / "config"


@pytest.fixture
def host(server: str, tmp_path: Path, forked_cli: ForkedCli) -> Iterator[Host]:
    world = build(Wiring(services=("service-a", "service-b", "service-c")))
    imds = Imds(HOST_ROLE, world.credentials, hop_limit=2, hops=2)
    root, container = tmp_path / "host", tmp_path / "container"
    (root / "etc").mkdir(parents=True)
    (container / "etc").mkdir(parents=True)
    found = Host(world, imds, root, container, forked_cli.bin_dir)
    found.apply(["service-a", "service-b"])
    # -v /etc/aws:/etc/aws:ro
    (container / "etc" / "aws").symlink_to(root / "etc" / "aws", target_is_directory=True)
    yield found
    imds.stop()


def in_container(
    cli: Path, server: str, imds: Imds, config: Path, profile: str, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    """What `docker run -v /etc/aws:/etc/aws:ro -e AWS_CONFIG_FILE=/etc/aws/config -e
    AWS_PROFILE` gives the process: those two variables, and nothing else of AWS."""
    env = {
        "PATH": f"{cli}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(config.parent.parent.parent),
        "AWS_CONFIG_FILE": str(config),
        "AWS_PROFILE": profile,
        "AWS_SHARED_CREDENTIALS_FILE": str(config.parent / "no-credentials"),
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url,
        "AWS_ENDPOINT_URL": server,
        **extra,
    }
    return subprocess.run(["aws", *args], env=env, capture_output=True, text=True, timeout=60)


def who(
    cli: Path, server: str, imds: Imds, config: Path, profile: str
) -> subprocess.CompletedProcess[str]:
    return in_container(
        cli,
        server,
        imds,
        config,
        profile,
        "sts",
        "get-caller-identity",
        "--query",
        "Arn",
        "--output",
        "text",
    )


def _listing(directory: Path) -> Mapping[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_a_container_reaches_its_own_bucket_through_the_mounted_profile(
    server: str, host: Host
) -> None:
    world, imds, config = host.world, host.imds, host.config
    mounted = _listing(host.root / "etc" / "aws")
    with aws_iam_rules():
        own, other = (
            in_container(host.cli, server, imds, config, "service-a", "s3", "ls", f"s3://{b}")
            for b in (bucket_of("service-a"), bucket_of("service-b"))
        )
        caller = who(host.cli, server, imds, config, "service-a")
    assert own.returncode == 0, own.stderr
    assert "data/keep.txt" in own.stdout or "data/" in own.stdout
    assert other.returncode != 0 and "AccessDenied" in other.stderr, (
        "isolation holds in a container"
    )
    assert ":assumed-role/service-a-role-0a1b2c3/service-a.dev-host" in caller.stdout, caller.stderr
    assert ("PUT", "/latest/api/token", False) in imds.requests, "IMDSv2: a token first"
    assert all(token for method, _, token in imds.requests if method == "GET"), (
        "every GET carried it"
    )
    assert _listing(host.root / "etc" / "aws") == mounted, (
        "nothing in the container writes to the mount, so :ro costs nothing"
    )
    assert world.credentials["SecretAccessKey"] not in own.stdout + own.stderr


def test_a_running_container_sees_a_renamed_service_without_a_restart(
    server: str, host: Host
) -> None:
    """service-b is renamed service-c: the association installs the new file by rename, and
    the same container (the same mount) has the new profile at once; the old one is gone."""
    imds, config = host.imds, host.config
    with aws_iam_rules():
        before = who(host.cli, server, imds, config, "service-c")
        host.apply(["service-a", "service-c"])
        after = who(host.cli, server, imds, config, "service-c")
        gone = who(host.cli, server, imds, config, "service-b")
    assert before.returncode != 0 and "service-c" in before.stderr, before.stderr
    assert after.returncode == 0, after.stderr
    assert ":assumed-role/service-c-role-0a1b2c3/service-c.dev-host" in after.stdout
    assert gone.returncode != 0 and "could not be found" in gone.stderr, gone.stderr


def test_a_single_file_mount_would_keep_the_old_profiles(server: str, host: Host) -> None:
    """Why the recipe mounts the directory: `-v /etc/aws/config:/etc/aws/config` pins the
    inode the file had when the container started, and the association's rename gives the
    new file a new inode, so that container keeps the old profiles until it is restarted."""
    pinned = host.container / "pinned" / "config"
    pinned.parent.mkdir()
    os.link(host.root / "etc" / "aws" / "config", pinned)  # the inode, as a file bind mount
    host.apply(["service-a", "service-c"])
    stale = who(host.cli, server, host.imds, pinned, "service-c")
    assert stale.returncode != 0 and "could not be found" in stale.stderr, stale.stderr
    assert "[profile service-b]" in pinned.read_text()
    assert "[profile service-c]" in host.config.read_text()


def test_with_hop_limit_1_a_container_gets_no_credentials(
    server: str, host: Host, run_program: object
) -> None:
    """`metadataHopLimit: 1` keeps containers away from the host role's credentials.

    What the program controls is the instance's input, asserted here; the limit itself is
    enforced by EC2 (the TTL of the token's answer), beyond the reach of the mocks. The
    stand-in models its effect on a client two hops away: the token never arrives, the CLI
    falls back to tokenless GETs, which IMDSv2-only metadata refuses, and it gets nothing."""
    from conftest import stack_config

    run: Run = run_program(stack_config(("service-a",), metadataHopLimit=1))  # type: ignore[operator]
    instance = run.named("aws:ec2/instance:Instance", "dev-host-instance")
    hop_limit = instance.inputs["metadataOptions"]["httpPutResponseHopLimit"]
    assert hop_limit == 1
    assert instance.inputs["metadataOptions"]["httpTokens"] == "required"

    world, config = host.world, host.config
    quick = {"AWS_METADATA_SERVICE_TIMEOUT": "1", "AWS_METADATA_SERVICE_NUM_ATTEMPTS": "1"}
    from_container = Imds(HOST_ROLE, world.credentials, hop_limit=hop_limit, hops=2)
    on_host = Imds(HOST_ROLE, world.credentials, hop_limit=hop_limit, hops=1)
    try:
        with aws_iam_rules():
            denied = in_container(
                host.cli,
                server,
                from_container,
                config,
                "service-a",
                "sts",
                "get-caller-identity",
                **quick,
            )
            allowed = who(host.cli, server, on_host, config, "service-a")
    finally:
        from_container.stop()
        on_host.stop()
    assert denied.returncode != 0, denied.stdout
    assert "credential" in denied.stderr.lower(), denied.stderr
    assert from_container.withheld >= 1, "the token's answer never reached the container"
    refused = [r for r in from_container.requests if r[0] == "GET"]
    assert refused and not any(token for _, _, token in refused), "only tokenless GETs, all refused"
    assert allowed.returncode == 0, allowed.stderr  # a process on the host itself still can

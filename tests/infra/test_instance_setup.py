"""Pure helpers behind the instances: the AMI architecture and the profiles file."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import botocore.session
import pytest

from infra.aws_config import (
    ROOT_VARIABLE,
    SYSTEMD_VARIABLE,
    config_digest,
    render_aws_config,
    render_install_script,
)
from infra.placement import architecture


@pytest.mark.parametrize(
    ("instance_type", "arch"),
    [
        ("t3.micro", "x86_64"),
        ("t4g.small", "arm64"),
        ("a1.large", "arm64"),
        ("c7gn.16xlarge", "arm64"),
        ("im4gn.large", "arm64"),
        ("m7g.medium", "arm64"),
        ("g4dn.xlarge", "x86_64"),
        ("g5.xlarge", "x86_64"),
        ("u-6tb1.metal", "x86_64"),
    ],
)
def test_ami_architecture_follows_the_instance_type(instance_type: str, arch: str) -> None:
    """An x86_64 AMI on a Graviton type (or the reverse) fails to launch."""
    assert architecture(instance_type) == arch


@pytest.mark.parametrize("service", ["a", "service-a", "s" + "x" * 31])
def test_every_profile_is_one_sts_accepts(service: str) -> None:
    """The profile's session name must satisfy AssumeRole's own constraints (from botocore's
    STS model): a one-letter service name alone would be refused by the SDK."""
    model = botocore.session.get_session().get_service_model("sts")
    shape = model.operation_model("AssumeRole").input_shape.members["RoleSessionName"]
    arn = "arn:aws:iam::123456789012:role/x-role-1a2b3c4"
    parser = configparser.ConfigParser()
    parser.read_string(render_aws_config("us-east-1", {service: arn}))
    profile = parser[f"profile {service}"]
    name = profile["role_session_name"]
    assert shape.metadata["min"] <= len(name) <= shape.metadata["max"], name
    assert re.fullmatch(shape.metadata["pattern"], name), name
    assert profile["role_arn"] == arn


SYSTEMD_TOOLS = ("systemctl", "systemd-run")
# What the script needs on PATH, and nothing else: a host without systemd has no systemctl.
SCRIPT_TOOLS = (
    "awk", "base64", "cat", "chmod", "grep", "gzip", "install", "mktemp", "mv", "rm",
    "sha256sum", "sync",
)  # fmt: skip


def _stub(bin_dir: Path, tool: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / tool
    fake.write_text(f"#!/bin/sh\n{body}")
    fake.chmod(0o755)


def recorder(bin_dir: Path, tool: str, log: Path, *, real: bool = False) -> None:
    """A PATH stub that appends `tool args` to `log`, then runs the real tool if `real`."""
    found = shutil.which(tool) if real else None
    run = f'exec {shlex.quote(found)} "$@"\n' if found else ""
    _stub(bin_dir, tool, f'echo "{tool} $*" >> {shlex.quote(str(log))}\n{run}')


def run_install(
    tmp_path: Path,
    script: str,
    root: Path | None = None,
    *,
    systemd: bool = True,
    path: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the association's script as the SSM agent would, with `/` moved to a temporary root.

    systemctl / systemd-run are recorded in tmp_path/systemd.log, never run. With `systemd`,
    the test opts in to the script's systemd steps (which a redirected root otherwise skips)
    on a root where systemd runs (`$root/run/systemd/system`). `path` replaces PATH after the
    stubs' directory."""
    root = root or tmp_path / "root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    bin_dir = tmp_path / "bin"
    for tool in SYSTEMD_TOOLS:
        recorder(bin_dir, tool, tmp_path / "systemd.log")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH'] if path is None else path}",
        ROOT_VARIABLE: str(root),
    }
    if systemd:
        (root / "run" / "systemd" / "system").mkdir(parents=True, exist_ok=True)
        env[SYSTEMD_VARIABLE] = "1"
    sh = shutil.which("sh") or "sh"
    return subprocess.run([sh, "-c", script], env=env, capture_output=True, text=True)


def _calls(tmp_path: Path, log: str = "systemd.log") -> list[str]:
    path = tmp_path / log
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_the_association_script_installs_the_profiles_machine_wide(tmp_path: Path) -> None:
    """Run it for real: the profiles file and the three places that make it the default are
    written; a second run (the association's schedule) changes nothing and restarts nothing."""
    config = render_aws_config("us-east-1", {"svc": "arn:aws:iam::123456789012:role/svc-1"})
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "environment").write_text("LANG=C.UTF-8\n")
    for _ in range(2):
        done = run_install(tmp_path, render_install_script(config))
        assert done.returncode == 0, done.stderr
        assert f"sha256={config_digest(config)}" in done.stdout
    etc = root / "etc"
    assert (etc / "aws" / "config").read_text() == config
    assert oct((etc / "aws" / "config").stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in (etc / "aws").iterdir()] == ["config"], "no temporary file is left"
    assert (etc / "profile.d" / "aws-config.sh").read_text() == (
        "export AWS_CONFIG_FILE=/etc/aws/config\n"
    )
    assert (etc / "environment").read_text().splitlines() == [
        "LANG=C.UTF-8",
        "AWS_CONFIG_FILE=/etc/aws/config",
    ]
    assert (etc / "systemd" / "system.conf.d" / "aws-config.conf").read_text() == (
        "[Manager]\nDefaultEnvironment=AWS_CONFIG_FILE=/etc/aws/config\n"
    )
    calls = (tmp_path / "systemd.log").read_text().splitlines()
    assert calls == [
        "systemctl daemon-reexec",
        "systemd-run --on-active=60 --unit=ec2-assume-role-agent-restart "
        "systemctl try-restart amazon-ssm-agent",
    ], "the agent is restarted once, after this run, never during it"


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_a_new_file_replaces_the_old_one_by_rename(tmp_path: Path) -> None:
    """A reader holding the old file keeps reading the old content: the new file is a new
    inode renamed over it, never the old one rewritten in place."""
    old = render_aws_config("us-east-1", {"a": "arn:aws:iam::123456789012:role/a-1"})
    new = render_aws_config("us-east-1", {"a": "arn:aws:iam::123456789012:role/a-1", "b": "x"})
    assert run_install(tmp_path, render_install_script(old)).returncode == 0
    path = tmp_path / "root" / "etc" / "aws" / "config"
    with path.open() as reader:
        done = run_install(tmp_path, render_install_script(new))
        assert done.returncode == 0, done.stderr
        assert reader.read() == old
    assert path.read_text() == new


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_a_damaged_payload_leaves_the_installed_file_alone(tmp_path: Path) -> None:
    """The decoded file is checked against its SHA-256 before it replaces anything."""
    good = render_aws_config("us-east-1", {"a": "arn:aws:iam::123456789012:role/a-1"})
    assert run_install(tmp_path, render_install_script(good)).returncode == 0
    other = render_aws_config("us-east-1", {"b": "arn:aws:iam::123456789012:role/b-1"})
    damaged = render_install_script(other).replace(config_digest(other), config_digest(good))
    done = run_install(tmp_path, damaged)
    assert done.returncode != 0
    etc = tmp_path / "root" / "etc" / "aws"
    assert (etc / "config").read_text() == good
    assert [p.name for p in etc.iterdir()] == ["config"]


CONFIG = render_aws_config("us-east-1", {"svc": "arn:aws:iam::123456789012:role/svc-1"})


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_the_new_file_reaches_the_disk_before_it_replaces_the_old_one(tmp_path: Path) -> None:
    """A power cut right after the rename must not leave an empty /etc/aws/config: the
    temporary file is flushed (with its full content) before it is renamed over the old one,
    and the directory entry after."""
    log = tmp_path / "order.log"
    bin_dir = tmp_path / "bin"
    sync = shutil.which("sync")
    assert sync is not None
    _stub(
        bin_dir,
        "sync",
        'for f in "$@"; do if [ -f "$f" ]; then '
        'echo "sync $f $(sha256sum < "$f" | cut -d" " -f1)"; else echo "sync $f"; fi; done '
        f">> {shlex.quote(str(log))}\n[ $# -gt 0 ] || echo sync >> {shlex.quote(str(log))}\n"
        f'exec {shlex.quote(sync)} "$@"\n',
    )
    recorder(bin_dir, "mv", log, real=True)
    done = run_install(tmp_path, render_install_script(CONFIG))
    assert done.returncode == 0, done.stderr
    aws_dir = tmp_path / "root" / "etc" / "aws"
    calls = [c for c in _calls(tmp_path, "order.log") if str(aws_dir) in c]
    assert len(calls) == 3, calls
    first = calls[0].split()
    assert first[0] == "sync" and first[2] == config_digest(CONFIG), "flushed, complete"
    tmp = first[1]
    assert Path(tmp).parent == aws_dir and Path(tmp).name.startswith(".config.")
    assert calls[1:] == [f"mv -f {tmp} {aws_dir / 'config'}", f"sync {aws_dir}"]


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_a_sync_that_takes_no_file_flushes_everything_instead(tmp_path: Path) -> None:
    """An old sync (BusyBox, coreutils before 8.24) refuses file arguments: the script then
    flushes every file system, and still installs the file."""
    log = tmp_path / "order.log"
    _stub(
        tmp_path / "bin",
        "sync",
        f'echo "sync $*" >> {shlex.quote(str(log))}\n[ $# -eq 0 ] || exit 1\n',
    )
    done = run_install(tmp_path, render_install_script(CONFIG))
    assert done.returncode == 0, done.stderr
    calls = _calls(tmp_path, "order.log")
    assert calls[0].startswith("sync ") and calls[1] == "sync ", calls
    assert (tmp_path / "root" / "etc" / "aws" / "config").read_text() == CONFIG


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_an_aws_config_file_already_in_etc_environment_is_replaced_not_repeated(
    tmp_path: Path,
) -> None:
    """Whatever AWS_CONFIG_FILE /etc/environment set before (once, twice, with `export`) ends
    as exactly one line naming /etc/aws/config, where the first one was; every other line is
    left as it was, and a second run does not rewrite the file."""
    etc = tmp_path / "root" / "etc"
    etc.mkdir(parents=True)
    environment = etc / "environment"
    environment.write_text(
        "LANG=C.UTF-8\n"
        "AWS_CONFIG_FILE=/home/ec2-user/.aws/config\n"
        "# AWS_CONFIG_FILE=/commented/out\n"
        "PATH=/usr/local/bin:/usr/bin\n"
        " \texport AWS_CONFIG_FILE=/opt/aws/config\n"
        "AWS_CONFIG_FILES=/not/this/one\n"
    )
    expected = [
        "LANG=C.UTF-8",
        "AWS_CONFIG_FILE=/etc/aws/config",
        "# AWS_CONFIG_FILE=/commented/out",
        "PATH=/usr/local/bin:/usr/bin",
        "AWS_CONFIG_FILES=/not/this/one",
    ]
    done = run_install(tmp_path, render_install_script(CONFIG))
    assert done.returncode == 0, done.stderr
    assert environment.read_text().splitlines() == expected
    assert oct(environment.stat().st_mode & 0o777) == "0o644"
    before = environment.stat()
    done = run_install(tmp_path, render_install_script(CONFIG))
    assert done.returncode == 0, done.stderr
    assert environment.read_text().splitlines() == expected
    after = environment.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), (
        "a second run leaves /etc/environment alone"
    )
    assert [p.name for p in etc.iterdir() if p.name.startswith(".")] == [], "no temporary file"


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_a_missing_etc_environment_is_created_with_the_one_line(tmp_path: Path) -> None:
    done = run_install(tmp_path, render_install_script(CONFIG))
    assert done.returncode == 0, done.stderr
    environment = tmp_path / "root" / "etc" / "environment"
    assert environment.read_text() == "AWS_CONFIG_FILE=/etc/aws/config\n"


def _path_without_systemd(tmp_path: Path) -> str:
    """A PATH holding only the tools the script needs: no systemctl, no systemd-run."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in SCRIPT_TOOLS:
        found = shutil.which(tool)
        assert found is not None, f"{tool} is needed to run the script"
        (tools / tool).symlink_to(found)
    return str(tools)


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_a_host_without_systemd_gets_the_profiles_and_a_clean_exit(tmp_path: Path) -> None:
    """An adopted host may run without systemd (no systemctl at all): the file is installed
    and made the default for login shells and PAM sessions, the systemd steps are skipped,
    and the run succeeds, so the association reports success every 30 minutes. The test opts
    in to the systemd steps, so only the missing systemctl can be what skips them."""
    root = tmp_path / "root"
    done = subprocess.run(
        [shutil.which("sh") or "sh", "-c", render_install_script(CONFIG)],
        env={
            "PATH": _path_without_systemd(tmp_path),
            ROOT_VARIABLE: str(root),
            SYSTEMD_VARIABLE: "1",
        },
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (root / "etc" / "aws" / "config").read_text() == CONFIG
    assert (root / "etc" / "environment").read_text() == "AWS_CONFIG_FILE=/etc/aws/config\n"
    assert not (root / "etc" / "systemd").exists(), "no systemd drop-in on such a host"
    assert "systemd" in done.stdout and "not running" in done.stdout, done.stdout


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_systemctl_without_a_running_systemd_is_left_alone(tmp_path: Path) -> None:
    """systemctl may be installed where systemd is not PID 1 (a container, a chroot):
    /run/systemd/system tells, as sd_booted() does."""
    for tool in SYSTEMD_TOOLS:
        recorder(tmp_path / "bin", tool, tmp_path / "systemd.log")
    (tmp_path / "root" / "run").mkdir(parents=True)  # no run/systemd/system under the root
    done = subprocess.run(
        [shutil.which("sh") or "sh", "-c", render_install_script(CONFIG)],
        env={
            "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
            ROOT_VARIABLE: str(tmp_path / "root"),
            SYSTEMD_VARIABLE: "1",
        },
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert _calls(tmp_path) == []


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_a_redirected_root_never_reaches_the_real_systemd(tmp_path: Path) -> None:
    """With EC2_ASSUME_ROLE_ROOT set (the tests, the rehearsal) the script changes nothing
    outside that root: it calls no systemctl or systemd-run at all, whatever PATH holds (the
    recording stubs on PATH would see any call), unless a test opts in explicitly."""
    done = run_install(tmp_path, render_install_script(CONFIG), systemd=False)
    assert done.returncode == 0, done.stderr
    assert _calls(tmp_path) == [], "not even the stubs were called"
    assert "systemd: skipped" in done.stdout
    assert (tmp_path / "root" / "etc" / "aws" / "config").read_text() == CONFIG


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_a_hand_edited_file_is_put_back_by_the_next_run(tmp_path: Path) -> None:
    """The association's schedule is the repair: the next run restores the file byte for byte,
    and its mode, whatever was done to it by hand."""
    script = render_install_script(CONFIG)
    assert run_install(tmp_path, script).returncode == 0
    path = tmp_path / "root" / "etc" / "aws" / "config"
    path.write_text(CONFIG.replace("svc-1", "someone-elses-role") + "[profile extra]\n")
    path.chmod(0o600)
    done = run_install(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert path.read_bytes() == CONFIG.encode()
    assert oct(path.stat().st_mode & 0o777) == "0o644"


@pytest.mark.skipif(shutil.which("sh") is None, reason="sh is not installed")
def test_a_directory_in_the_files_place_fails_the_run_instead_of_hiding_the_file(
    tmp_path: Path,
) -> None:
    """`mv` onto a directory would move the new file into it and report success: the run
    fails instead, naming the path, and puts nothing inside."""
    path = tmp_path / "root" / "etc" / "aws" / "config"
    path.mkdir(parents=True)
    done = run_install(tmp_path, render_install_script(CONFIG))
    assert done.returncode != 0
    assert "/etc/aws/config is a directory" in done.stderr
    assert list(path.iterdir()) == []

"""The dev host's side of the rehearsal: apply the SSM association as the agent would.

moto has no State Manager, so the emulator only records each association. Here its script
(AWS-RunShellScript's `commands`) runs for real with `sh`, with a temporary directory standing
in for `/` and systemctl / systemd-run stubbed, and the profiles file it wrote is read back:
the check then assumes the roles that file names, so a script that installs the wrong file, or
none, fails the rehearsal.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from checks.stack_outputs import CheckError

ROOT_VARIABLE = "EC2_ASSUME_ROLE_ROOT"  # infra.aws_config.ROOT_VARIABLE; checks imports no infra
CONFIG_PATH = "etc/aws/config"


class HostSetupError(CheckError):
    """The association's script failed on the rehearsal's stand-in host."""


def apply_associations(associations: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Run each association's script in a temporary root; return profile name -> role ARN."""
    sh = shutil.which("sh")
    if sh is None:
        raise HostSetupError("the rehearsal needs sh to apply the host's SSM association")
    with tempfile.TemporaryDirectory(prefix="ec2-assume-role-host-") as directory:
        root, stubs = Path(directory) / "root", Path(directory) / "bin"
        (root / "etc").mkdir(parents=True)
        stubs.mkdir()
        for tool in ("systemctl", "systemd-run"):
            (stubs / tool).write_text("#!/bin/sh\nexit 0\n")
            (stubs / tool).chmod(0o755)
        env = {
            "PATH": f"{stubs}{os.pathsep}{os.environ.get('PATH', '')}",
            ROOT_VARIABLE: str(root),
        }
        for association in associations:
            script = str(association.get("parameters", {}).get("commands", ""))
            done = subprocess.run(  # noqa: S603 (the program's own script, in a temporary root)
                [sh, "-c", script], env=env, capture_output=True, text=True, timeout=60
            )
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                raise HostSetupError(
                    f"the host's SSM association {association.get('AssociationId')} failed "
                    f"(exit {done.returncode}): {last}"
                )
        path = root / CONFIG_PATH
        if not path.exists():
            return {}
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(path.read_text())
    return {
        section.removeprefix("profile "): parser[section].get("role_arn", "")
        for section in parser.sections()
        if section.startswith("profile ")
    }

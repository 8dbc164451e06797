"""The shared host's AWS config file, and the script that installs it in place (pure functions).

One profile per service replaces the scenario's manual `aws sts assume-role` and pasted keys:
with `credential_source = Ec2InstanceMetadata` the SDK or CLI takes the host role's credentials
from instance metadata, assumes the service role, and refreshes it before the hour runs out.
Nothing secret is written anywhere; the file holds only ARNs.

The file reaches the host through an SSM State Manager association (see `ProfileDelivery`),
not user data: a change to the services then updates the running host in seconds instead of
replacing it, and the association's schedule also repairs a file edited by hand.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Mapping

CONFIG_PATH = "/etc/aws/config"
ROOT_VARIABLE = "EC2_ASSUME_ROLE_ROOT"
"""Tests and the rehearsal set this to a temporary directory that stands in for `/`."""


def render_aws_config(region: str, role_arns: Mapping[str, str]) -> str:
    """An AWS config file: a default region, then `[profile <service>]` per service role."""
    lines = [
        "# Written by the ec2-assume-role stack. Use: AWS_PROFILE=<service> <command>",
        "[default]",
        f"region = {region}",
    ]
    for service in sorted(role_arns):
        lines += [
            "",
            f"[profile {service}]",
            f"role_arn = {role_arns[service]}",
            "credential_source = Ec2InstanceMetadata",
            # STS wants 2 to 64 characters; a one-letter service name alone would be refused.
            f"role_session_name = {service}.dev-host",
            f"region = {region}",
        ]
    return "\n".join(lines) + "\n"


def config_digest(aws_config: str) -> str:
    """The SHA-256 of the file as installed: how the check knows the host has the current one."""
    return hashlib.sha256(aws_config.encode()).hexdigest()


def _payload(aws_config: str) -> str:
    # gzip with a fixed mtime, so the same file always gives the same script (no spurious
    # association updates); base64 keeps it to characters the shell never interprets.
    return base64.b64encode(gzip.compress(aws_config.encode(), mtime=0)).decode()


def render_install_script(aws_config: str) -> str:
    """A POSIX shell script (run as root by AWS-RunShellScript) that installs the profiles.

    - The file is written to a temporary name in the same directory, checked against its
      SHA-256, then renamed over the old one: a service reads the old file or the new one,
      never half of either.
    - It makes the file the machine-wide default for every kind of process: login shells
      (profile.d), PAM sessions (/etc/environment) and systemd services (DefaultEnvironment).
    - Running it again changes nothing; it is how the association repairs a host.
    """
    digest = config_digest(aws_config)
    return f"""#!/bin/sh
# ec2-assume-role: install the service profiles ({digest[:12]}); run by an SSM association.
set -eu
umask 022
root="${{{ROOT_VARIABLE}:-}}"
config="$root{CONFIG_PATH}"
install -d -m 0755 "$root/etc/aws"
tmp=$(mktemp "$root/etc/aws/.config.XXXXXX")
trap 'rm -f "$tmp"' EXIT
printf '%s' '{_payload(aws_config)}' | base64 -d | gzip -dc > "$tmp"
echo "{digest}  $tmp" | sha256sum -c --status
chmod 0644 "$tmp"
mv -f "$tmp" "$config"
install -d -m 0755 "$root/etc/profile.d"
echo 'export AWS_CONFIG_FILE={CONFIG_PATH}' > "$root/etc/profile.d/aws-config.sh"
grep -qx 'AWS_CONFIG_FILE={CONFIG_PATH}' "$root/etc/environment" 2>/dev/null \\
  || echo 'AWS_CONFIG_FILE={CONFIG_PATH}' >> "$root/etc/environment"
unit="$root/etc/systemd/system.conf.d/aws-config.conf"
wanted='[Manager]
DefaultEnvironment=AWS_CONFIG_FILE={CONFIG_PATH}'
if [ "$(cat "$unit" 2>/dev/null)" != "$wanted" ]; then
  install -d -m 0755 "$root/etc/systemd/system.conf.d"
  printf '%s\\n' "$wanted" > "$unit"
  systemctl daemon-reexec
  # The SSM agent runs this script, and Session Manager shells and Run Command inherit its
  # environment; restarting it now would cut this run short, so restart it a minute later.
  systemd-run --on-active=60 --unit=ec2-assume-role-agent-restart \\
    systemctl try-restart amazon-ssm-agent || true
fi
echo "installed {CONFIG_PATH} sha256={digest}"
"""

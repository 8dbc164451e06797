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
"""Tests and the rehearsal set this to a temporary directory that stands in for `/`; the script
then changes nothing outside it (no systemd step)."""
SYSTEMD_VARIABLE = "EC2_ASSUME_ROLE_SYSTEMD"
"""Tests only: `1` runs the systemd steps for a redirected root too, with systemctl and
systemd-run stubbed on PATH and `$root/run/systemd/system` standing in for a running systemd."""


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


_SCRIPT = r"""#!/bin/sh
# ec2-assume-role: install the service profiles (@SHORT@); run by an SSM association.
set -eu
umask 022
root="${@ROOT_VARIABLE@:-}"
config="$root@CONFIG_PATH@"
tmp=
env_tmp=
trap 'rm -f ${tmp:+"$tmp"} ${env_tmp:+"$env_tmp"}' EXIT
install -d -m 0755 "$root/etc/aws"
if [ -d "$config" ]; then
  echo "ec2-assume-role: $config is a directory; remove it, the next run installs the file" >&2
  exit 1
fi
tmp=$(mktemp "$root/etc/aws/.config.XXXXXX")
printf '%s' '@PAYLOAD@' | base64 -d | gzip -dc > "$tmp"
echo "@DIGEST@  $tmp" | sha256sum -c --status
chmod 0644 "$tmp"
# On disk before the rename, so that a crash cannot leave an empty file behind the new name.
# A sync that takes no file argument (BusyBox, coreutils before 8.24) flushes everything.
sync "$tmp" 2>/dev/null || sync
mv -f "$tmp" "$config"
sync "$root/etc/aws" 2>/dev/null || true
install -d -m 0755 "$root/etc/profile.d"
echo 'export AWS_CONFIG_FILE=@CONFIG_PATH@' > "$root/etc/profile.d/aws-config.sh"
# /etc/environment (pam_env): exactly one AWS_CONFIG_FILE line, where the first one was;
# every other line is kept, and the file is only rewritten when that changes it.
env_file="$root/etc/environment"
env_tmp=$(mktemp "$root/etc/.environment.XXXXXX")
{ cat "$env_file" 2>/dev/null || true; } | awk -v line='AWS_CONFIG_FILE=@CONFIG_PATH@' '
  /^[ \t]*(export[ \t]+)?AWS_CONFIG_FILE=/ { if (!done) print line; done = 1; next }
  { print }
  END { if (!done) print line }' > "$env_tmp"
if [ "$(cat "$env_file" 2>/dev/null)" != "$(cat "$env_tmp")" ]; then
  chmod 0644 "$env_tmp"
  mv -f "$env_tmp" "$env_file"
fi
# systemd: services get the file through DefaultEnvironment. Only where systemd runs (an
# adopted host may have none), and never for a redirected root, whose systemd is not ours;
# tests opt in with @SYSTEMD_VARIABLE@=1 and PATH stubs.
if [ -n "$root" ] && [ "${@SYSTEMD_VARIABLE@:-}" != 1 ]; then
  echo "systemd: skipped (the root is redirected to $root)"
elif ! command -v systemctl >/dev/null 2>&1 || [ ! -d "$root/run/systemd/system" ]; then
  echo "systemd: not running here; only login shells and PAM sessions get AWS_CONFIG_FILE"
else
  unit="$root/etc/systemd/system.conf.d/aws-config.conf"
  wanted='[Manager]
DefaultEnvironment=AWS_CONFIG_FILE=@CONFIG_PATH@'
  if [ "$(cat "$unit" 2>/dev/null)" != "$wanted" ]; then
    install -d -m 0755 "$root/etc/systemd/system.conf.d"
    printf '%s\n' "$wanted" > "$unit"
    systemctl daemon-reexec
    # The SSM agent runs this script, and Session Manager shells and Run Command inherit its
    # environment; restarting it now would cut this run short, so restart it a minute later.
    systemd-run --on-active=60 --unit=ec2-assume-role-agent-restart \
      systemctl try-restart amazon-ssm-agent || true
  fi
fi
echo "installed @CONFIG_PATH@ sha256=@DIGEST@"
"""


def render_install_script(aws_config: str) -> str:
    """A POSIX shell script (run as root by AWS-RunShellScript) that installs the profiles.

    - The file is written to a temporary name in the same directory, checked against its
      SHA-256, flushed to disk, then renamed over the old one (and the directory flushed): a
      service reads the old file or the new one, never half of either, even after a crash.
    - It makes the file the machine-wide default for every kind of process: login shells
      (profile.d), PAM sessions (/etc/environment, one AWS_CONFIG_FILE line whatever was
      there) and, where systemd runs, systemd services (DefaultEnvironment).
    - A redirected root (ROOT_VARIABLE) never reaches systemd unless SYSTEMD_VARIABLE=1.
    - Running it again changes nothing; it is how the association repairs a host.
    """
    digest = config_digest(aws_config)
    values = {
        "@SHORT@": digest[:12],
        "@ROOT_VARIABLE@": ROOT_VARIABLE,
        "@SYSTEMD_VARIABLE@": SYSTEMD_VARIABLE,
        "@CONFIG_PATH@": CONFIG_PATH,
        "@PAYLOAD@": _payload(aws_config),
        "@DIGEST@": digest,
    }
    script = _SCRIPT
    for token, value in values.items():
        script = script.replace(token, value)
    return script

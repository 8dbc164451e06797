"""The shared host's AWS config file and the user data that installs it (pure functions).

One profile per service replaces the scenario's manual `aws sts assume-role` and pasted keys:
with `credential_source = Ec2InstanceMetadata` the SDK or CLI takes the host role's credentials
from instance metadata, assumes the service role, and refreshes it before the hour runs out.
Nothing secret is written anywhere; the file holds only ARNs.
"""

from __future__ import annotations

from collections.abc import Mapping

CONFIG_PATH = "/etc/aws/config"
_HEREDOC = "EC2_ASSUME_ROLE_AWS_CONFIG"


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


def render_user_data(aws_config: str) -> str:
    """A cloud-init script that installs the config file as the machine-wide default.

    It must reach every kind of process: login shells (profile.d), PAM sessions
    (/etc/environment) and systemd services (DefaultEnvironment), so that any service on the box
    only needs `AWS_PROFILE=<name>`.
    """
    if _HEREDOC in aws_config:
        raise ValueError("the AWS config must not contain the heredoc delimiter")
    return f"""#!/bin/bash
set -euo pipefail
install -d -m 0755 /etc/aws
cat > {CONFIG_PATH} <<'{_HEREDOC}'
{aws_config.rstrip()}
{_HEREDOC}
chmod 0644 {CONFIG_PATH}
install -d -m 0755 /etc/profile.d
echo 'export AWS_CONFIG_FILE={CONFIG_PATH}' > /etc/profile.d/aws-config.sh
grep -qx 'AWS_CONFIG_FILE={CONFIG_PATH}' /etc/environment \\
  || echo 'AWS_CONFIG_FILE={CONFIG_PATH}' >> /etc/environment
install -d -m 0755 /etc/systemd/system.conf.d
printf '[Manager]\\nDefaultEnvironment=AWS_CONFIG_FILE={CONFIG_PATH}\\n' \\
  > /etc/systemd/system.conf.d/aws-config.conf
systemctl daemon-reexec
# The SSM agent started before this script; restart it so Session Manager shells and Run
# Command scripts inherit AWS_CONFIG_FILE too.
systemctl try-restart amazon-ssm-agent || true
"""

"""ec2-assume-role: per-service buckets and roles, on a shared dev host or dedicated instances.

The project is its own component's first consumer: read and validate the stack config, hand it
to `Ec2AssumeRole` (infra/ec2_assume_role.py), export what the check reads.
"""

import pulumi

from infra import Ec2AssumeRole
from infra.config import component_args, load_config

config = load_config()  # Raises before any resource is registered if anything is invalid.
# "dev-host" names the shared host's resources (dev-host-role, ...), as every stack has them.
stack = Ec2AssumeRole("dev-host", component_args(config))
for key, value in stack.stack_outputs().items():
    pulumi.export(key, value)

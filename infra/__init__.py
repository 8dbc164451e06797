"""Least-privilege S3 access for several services on EC2, by assuming roles: Pulumi components.

Installed, this folder is the package `ec2_assume_role`; in this repository it is `infra`, which
the project's own program (`__main__.py`) and tests import. Every module imports its siblings
relatively, so both names work. docs/component.md shows how to use it from a program of yours.

- `Ec2AssumeRole`: the whole design, for a list of services and a topology.
- The building blocks it wires together: `ServiceAccess` (a service's bucket and role),
  `SecureBucket`, `HostRole`, `SharedHost` (the dev host) and `HardenedInstance`.
"""

from importlib import metadata
from pathlib import Path

from .ec2_assume_role import Ec2AssumeRole
from .ec2_assume_role_args import Ec2AssumeRoleArgs, Service, ServiceEndpoints
from .errors import ConfigError
from .hardened_instance import HardenedInstance, HardenedInstanceArgs
from .host_role import HostRole, HostRoleArgs
from .placement import Placement
from .secure_bucket import SecureBucket, SecureBucketArgs
from .service_access import ServiceAccess, ServiceAccessArgs
from .settings import Topology
from .shared_host import SharedHost, SharedHostArgs

DISTRIBUTION = "ec2-assume-role"


def _version() -> str:
    """pyproject.toml's version: read from the checkout when this is one, else as installed."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        project = tomllib.loads(pyproject.read_text()).get("project", {})
        if project.get("name") == DISTRIBUTION:
            return str(project["version"])
    return metadata.version(DISTRIBUTION)


__version__ = _version()

__all__ = [
    "ConfigError",
    "Ec2AssumeRole",
    "Ec2AssumeRoleArgs",
    "HardenedInstance",
    "HardenedInstanceArgs",
    "HostRole",
    "HostRoleArgs",
    "Placement",
    "SecureBucket",
    "SecureBucketArgs",
    "Service",
    "ServiceAccess",
    "ServiceAccessArgs",
    "ServiceEndpoints",
    "SharedHost",
    "SharedHostArgs",
    "Topology",
    "__version__",
]

COMPONENTS = (Ec2AssumeRole, ServiceAccess, SecureBucket, HostRole, SharedHost, HardenedInstance)
"""What the component package serves to other languages (provider/, schema.json)."""

"""The component package's entry: serves this project's components to every Pulumi language.

`pulumi package add <repo>@vX.Y.Z` reads PulumiPlugin.yaml at the repository's root, whose
`main` points here (the root's own `__main__.py` is this project's Pulumi program), and runs
this file with the engine's address: `component_provider_host` then infers the schema from the
components' type annotations and serves them, so the CLI can generate an SDK in the consumer's
language. The components live in infra/ (the `ec2_assume_role` package); nothing here is
specific to a language.

    python provider --schema    print the schema the SDK's analyser infers, offline: the
                                committed schema.json is exactly this output
                                (tests/provider/test_component_schema.py)
"""

import json
import sys
from pathlib import Path

# Run from a checkout (as the CLI does), infra/ is not installed: its folder is the repo root.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import infra  # noqa: E402 (after the path is set)

NAME = "ec2-assume-role"
"""The package name: the `ec2-assume-role:index:<Component>` tokens, and the SDKs' name."""


def schema() -> dict[str, object]:
    """The package schema, as the provider serves it, from the SDK's own analyser."""
    from pulumi.provider.experimental.component import ComponentProvider

    provider = ComponentProvider(list(infra.COMPONENTS), NAME, None, infra.__version__)
    served: dict[str, object] = json.loads(provider.schema or "{}")
    return served


def main(argv: list[str]) -> int:
    if argv == ["--schema"]:
        sys.stdout.write(json.dumps(schema(), indent=2, sort_keys=True) + "\n")
        return 0
    from pulumi.provider.experimental import component_provider_host

    component_provider_host(list(infra.COMPONENTS), NAME, version=infra.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

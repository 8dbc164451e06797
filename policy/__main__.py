"""The policy pack's entry point: `pulumi preview --policy-pack policy` runs this file.

It only builds the pack; constructing PolicyPack starts the analyzer's gRPC server and serves
until the CLI stops it, so nothing else may import this module.
"""

from pulumi_policy import PolicyPack

try:
    # As the `policy` package: what mypy checks, and what a checkout root on sys.path finds.
    from policy import adapters, rules
except ImportError:
    # The Pulumi CLI runs this directory as a script, with only the directory on sys.path.
    import adapters  # type: ignore[import-not-found, no-redef]
    import rules  # type: ignore[import-not-found, no-redef]

PolicyPack(
    name="ec2-assume-role",
    description="Guarantees of the ec2-assume-role stack: trust in named principals only, no "
    "IAM wildcards or privilege escalation, allow-listed managed policies, private TLS-only "
    "buckets, IMDSv2, encrypted EBS, no ingress from the internet.",
    policies=adapters.policies(rules.RESOURCE_RULES, rules.STACK_RULES),
    enforcement_level=adapters.ENFORCEMENT,
)

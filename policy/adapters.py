"""Thin CrossGuard wrappers: each pure rule of rules.py becomes a pulumi_policy policy.

This module imports no sibling: the Pulumi CLI runs the pack with policy/ itself on sys.path,
while the tests import it as `policy.adapters`, so the rules arrive as arguments instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

# Every rule blocks the deployment: each one is a guarantee this project makes.
ENFORCEMENT = EnforcementLevel.MANDATORY


class ResourceRuleLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def check(self) -> Callable[[str, Mapping[str, Any]], list[str]]: ...


class FindingsLike(Protocol):
    """rules_stack.Findings: the violations found, and what was left undecided in a preview."""

    @property
    def violations(self) -> Sequence[tuple[str, str]]: ...
    def unknown(self) -> UnknownValueError | None: ...


class StackRuleLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def check(self) -> Callable[[Sequence[PolicyResource]], FindingsLike]: ...


def resource_policy(rule: ResourceRuleLike) -> ResourceValidationPolicy:
    """Report each message the rule returns for the resource being validated, naming it.

    The rule sees only type and properties; the name comes first here so that every message
    says which resource to fix, even where the CLI prints it apart from the resource.
    """

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule.check(args.resource_type, args.props):
            report_violation(f"{args.resource_type} {args.name}: {message}", None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=ENFORCEMENT,
    )


def stack_policy(rule: StackRuleLike) -> StackValidationPolicy:
    """Report each (urn, message) the rule finds against that resource; then, if the rule left
    resources undecided (a preview), raise their unknown value.

    pulumi_policy keeps the violations already reported and turns the exception into its
    "can't run during preview" diagnostic: known breaches fail the preview, and the rest of the
    rule is shown as not run, never as passed.
    """

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        findings = rule.check(args.resources)
        for urn, message in findings.violations:
            report_violation(message, urn)
        unknown = findings.unknown()
        if unknown is not None:
            raise unknown

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=ENFORCEMENT,
    )


def policies(
    resource_rules: Iterable[ResourceRuleLike], stack_rules: Iterable[StackRuleLike]
) -> list[Policy]:
    """The pack's policies, one per rule, in the rules' order."""
    built: list[Policy] = [resource_policy(rule) for rule in resource_rules]
    built += [stack_policy(rule) for rule in stack_rules]
    return built

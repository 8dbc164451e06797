"""Make moto (5.2.5) evaluate role trust policies the way AWS does.

moto enforces IAM only when `INITIAL_NO_AUTH_ACTION_COUNT` is reached (`enable_iam_authentication`
turns that on), and then evaluates trust policies unlike AWS:
- it compares the caller's session ARN (`arn:aws:sts::ACCT:assumed-role/NAME/SESSION`)
  literally with the role ARN in the trust policy, so a valid role chain is denied;
- a statement whose principal does not match returns DENIED instead of neutral, so a
  statement trusting only `ec2.amazonaws.com` denies everyone;
- a statement without an `AWS` principal raises TypeError.

`aws_iam_rules()` replaces moto's trust check with `checks.trust.trust_allows`, which applies
AWS's rules (a role ARN matches every session of that role, an account root or id matches any
principal of the account, a non-matching statement is neutral), and turns enforcement on.
Identity policies are still evaluated by moto itself. Used by the tests and the rehearsal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from checks.trust import trust_allows


def _check_trust(request: Any, role_arn: str) -> bool:
    """Replacement for moto's `IAMRequestBase._check_role_trust_relationship`."""
    from moto.iam.access_control import IAMPolicyStatement
    from moto.iam.utils import format_incoming_conditional_values

    role = request.backend.get_role_by_arn(role_arn)
    incoming = format_incoming_conditional_values(request._data)

    def conditions_hold(statement: Mapping[str, Any]) -> bool:
        # Conditions (e.g. sts:ExternalId) keep moto's own evaluation.
        return bool(IAMPolicyStatement(dict(statement))._check_conditions(incoming))

    return trust_allows(
        role.assume_role_policy_document,
        request._access_key.arn,
        request._action,
        conditions_hold,
    )


@contextmanager
def aws_iam_rules() -> Iterator[None]:
    """IAM enforcement on, with AWS's trust-policy rules, for the duration of the block."""
    from moto.core.authorization import enable_iam_authentication
    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase._check_role_trust_relationship
    IAMRequestBase._check_role_trust_relationship = _check_trust  # type: ignore[method-assign,assignment]
    try:
        with enable_iam_authentication():
            yield
    finally:
        IAMRequestBase._check_role_trust_relationship = original  # type: ignore[method-assign]

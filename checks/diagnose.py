"""Why was AssumeRole denied? Name the missing side of the trust, or both and how to tell.

AssumeRole needs both sides: the caller's identity policy allows `sts:AssumeRole` on the role,
and the role's trust policy names the caller. Where the caller may read IAM (`iam:GetRole`,
`iam:SimulatePrincipalPolicy`), the diagnosis says which side is missing; otherwise it names
both and the commands that tell them apart. (The host role itself cannot read IAM: it is
least-privileged. Run the check with an operator's credentials for the precise answer.)
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.stack_outputs import ServiceTarget
from checks.trust import role_of, stale_principals, trust_allows

log = logging.getLogger(__name__)


def _trust_names(iam: Any, target: ServiceTarget, caller_arn: str) -> tuple[bool | None, str]:
    try:
        document = iam.get_role(RoleName=target.role_name)["Role"]["AssumeRolePolicyDocument"]
    except (ClientError, BotoCoreError) as err:
        log.debug("iam:GetRole on %s not available: %s", target.role_name, err)
        return None, ""
    stale = stale_principals(document)
    note = (
        f" It names {', '.join(stale)}, the unique id of a deleted role or user: that principal"
        " was replaced, and a replacement under the same name is not trusted."
        if stale
        else ""
    )
    return trust_allows(document, caller_arn), note


def _identity_allows(iam: Any, principal: str, target: ServiceTarget) -> bool | None:
    try:
        results = iam.simulate_principal_policy(
            PolicySourceArn=principal,
            ActionNames=["sts:AssumeRole"],
            ResourceArns=[target.role_arn],
        )["EvaluationResults"]
    except (ClientError, BotoCoreError) as err:
        log.debug("iam:SimulatePrincipalPolicy for %s not available: %s", principal, err)
        return None
    return bool(results) and all(r["EvalDecision"] == "allowed" for r in results)


def explain_assume_denied(iam: Any, caller_arn: str, target: ServiceTarget, message: str) -> str:
    """The step detail for a final AssumeRole denial: cause and fix."""
    principal = role_of(caller_arn) or caller_arn
    role = target.role_arn
    identity_fix = (
        f"identity side: {principal}'s policy lacks sts:AssumeRole on {role}. "
        "Fix: `pulumi up` restores the host's assume-service-roles policy."
    )
    resource_fix = (
        f"resource side: the trust policy of {role} does not name {principal}. "
        f"Fix: `pulumi up` restores the trust policy of {target.name}'s role."
    )
    trusted, note = _trust_names(iam, target, caller_arn)
    allowed = _identity_allows(iam, principal, target)
    if trusted is False and allowed is not False:
        checked = "" if allowed else " (identity side not checked: no iam:SimulatePrincipalPolicy)"
        return f"AssumeRole denied. Cause: {resource_fix}{note}{checked}"
    if trusted is False and allowed is False:
        return f"AssumeRole denied. Both sides are missing: {identity_fix} And {resource_fix}{note}"
    if trusted is True and allowed is True:
        return (
            f"AssumeRole denied ({message}), yet both sides are in place. Cause: something else"
            " denies it: a permissions boundary, an SCP or session policy, or IAM changes still"
            " propagating. Fix: check those, or retry with a longer --wait."
        )
    if trusted is True:
        # The trust names the caller, so by elimination the identity side is missing.
        return f"AssumeRole denied. Cause: {identity_fix}"
    if allowed is False:
        return (
            f"AssumeRole denied. Cause: {identity_fix} (resource side not checked: no iam:GetRole)"
        )
    return (
        f"AssumeRole denied ({message}). One of two sides is missing: (1) {identity_fix} "
        f"Check: aws iam simulate-principal-policy --policy-source-arn {principal} "
        f"--action-names sts:AssumeRole --resource-arns {role}. (2) {resource_fix} "
        f"Check: aws iam get-role --role-name {target.role_name} "
        "--query Role.AssumeRolePolicyDocument. Credentials that may call iam:GetRole and "
        "iam:SimulatePrincipalPolicy get the answer directly."
    )

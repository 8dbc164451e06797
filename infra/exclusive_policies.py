"""Exclusive management of a role's policies: the role carries what the stack declares, only.

`aws.iam.RolePoliciesExclusive` names every inline policy a role may have, and
`aws.iam.RolePolicyAttachmentsExclusive` every managed policy attached to it; the provider
deletes the others. So an inline policy or attachment added by hand shows in
`pulumi preview --refresh` and is removed by `pulumi up --refresh` (a plain `pulumi up` compares
the program with the state only, so it neither sees nor removes it; pulumi/pulumi-aws#4766).
Destroying the declarations removes nothing from the role.

One role takes exactly one declaration of each kind, made by the component that holds its
complete set: each declaration removes whatever it does not list, so two would fight. Each list
is built from the policies' own outputs, so Pulumi creates the declaration after them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws


def declare_role_policies(
    name: str,
    role_name: pulumi.Input[str],
    policy_names: Sequence[pulumi.Input[str]],
    policy_arns: Sequence[pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> list[pulumi.Resource]:
    """Declare that `role_name` carries exactly these inline policies and managed policies.

    Pass each RolePolicy's `name` and each RolePolicyAttachment's `policy_arn` outputs, not
    plain strings: that is what makes the declaration wait for them. An empty sequence is a
    declaration too: no inline policy, or no managed policy, at all.
    """
    return [
        aws.iam.RolePoliciesExclusive(
            f"{name}-exclusive-inline-policies",
            role_name=role_name,
            policy_names=list(policy_names),
            opts=opts,
        ),
        aws.iam.RolePolicyAttachmentsExclusive(
            f"{name}-exclusive-managed-policies",
            role_name=role_name,
            policy_arns=list(policy_arns),
            opts=opts,
        ),
    ]


def named_policy_options(opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
    """Options for an inline policy that has a fixed name (the same as its logical name).

    pulumi-aws asks to delete a named resource before replacing it, so that a new one of the
    same name can be created. An inline policy is replaced only when its name or its role
    changes, so old and new never share a role and a name: create-before-delete is safe, and it
    keeps the grant (or the Deny) on the role throughout, where a delete first would leave the
    role without it for a moment (and the new policy still propagating). The one exception is a
    replacement forced by hand (`pulumi up --replace` on the policy): the new policy overwrites
    the old one of the same name, whose delete then removes it; `pulumi up --refresh` puts it
    back.
    """
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=False))

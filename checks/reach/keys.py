"""Who may use a service's KMS key: key policy, IAM policies and grants, by AWS's rules.

In one account KMS allows a request when nothing denies it and
- the key policy names the caller (its role, a session of it, or `*`): on its own; or
- the key policy names the account (its root): that delegates to IAM, and the caller's own
  policies (within its boundary) must allow; or
- a grant (`kms:CreateGrant`) names the caller's role for the operation.
An unconditional Deny naming the caller, in the key policy or its own policies, takes it away;
conditions are never assumed to hold or fail, as everywhere in the proof.

The actions judged are the catalogue's KMS actions on a key that use or change it (access
levels Write, Permissions management and Tagging): encrypting, decrypting, data keys, grants,
the key policy, disabling or deleting. Reading its metadata is not judged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from checks.reach import catalogue
from checks.reach.documents import Identity, Statement
from checks.reach.evaluate import (
    Target,
    denied,
    identity_grants,
    judged_actions,
    names_action,
    names_target,
)
from checks.reach.graph import CONDITIONAL, Grant, denies_caller, names_caller, reach_kind

OWN_KEY_GRANTS = frozenset({"kms:GenerateDataKey", "kms:Decrypt"})
"""The only key actions a service role holds on its own key: what S3 asks KMS for."""
NOT_READ = "its policy and grants were not read"


@dataclass(frozen=True)
class KeyGrant:
    """One grant on a key, as `kms:ListGrants` lists it."""

    grant_id: str
    grantee: str
    operations: tuple[str, ...]
    constrained: bool = False
    """It carries an encryption-context constraint: it may apply or not."""

    @property
    def where(self) -> str:
        return f"grant {self.grant_id}"


@dataclass(frozen=True)
class KeyDocuments:
    """A key's policy statements and grants; `found` is False when the key is gone."""

    policy: tuple[Statement, ...]
    grants: tuple[KeyGrant, ...] = ()
    found: bool = True


@cache
def key_actions() -> tuple[catalogue.Action, ...]:
    """Every KMS action on a key that uses or changes it."""
    return tuple(
        a
        for a in catalogue.service_actions("kms")
        if "key" in a.resources and a.level in catalogue.CHANGES
    )


def _grantee(grant: KeyGrant, identity: Identity) -> bool:
    return grant.grantee == identity.arn or names_caller(grant.grantee, identity)


def key_grants(identity: Identity, key_arn: str, documents: KeyDocuments | None) -> list[Grant]:
    """Every judged KMS action the identity may take on the key, with the documents that
    grant it. Without the key's documents (not read), the policy is taken to delegate to IAM,
    the default, so the identity's own policies decide.

    Each statement is sorted once (which side it stands on, whether it concerns this identity
    and key at all), and only the actions something grants are judged: with 300 SSE-KMS
    services the proof asks this of every identity for every key.
    """
    target = Target(key_arn)
    policy = documents.policy if documents else ()
    reaching = [(s, reach_kind(s, identity)) for s in policy if s.allow and s.principals]
    direct = [s for s, kind in reaching if kind in ("named", "anyone")]
    delegating = [s for s, kind in reaching if kind == "account"]
    mine = []
    if delegating or documents is None:
        mine = [s for s in identity.policies if s.allow and _on_key(s, target)]
    grants = [g for g in (documents.grants if documents else ()) if _grantee(g, identity)]
    if not (direct or mine or grants):
        return []
    key_denies = [s for s in policy if denies_caller(s, identity)]
    found: list[Grant] = []
    for action in key_actions():
        name = action.name
        if denied(identity.policies, name, target) or denied(key_denies, name, target):
            continue
        named = [s for s in direct if names_action(s, name)]
        delegated = [s for s in delegating if names_action(s, name)]
        own: list[Statement] = []
        if mine and (delegated or documents is None):
            own = identity_grants(mine, identity.boundary, name, target)
        op = name.split(":", 1)[1]
        granted = [g for g in grants if op in g.operations]
        # The identity's own grant first: it is what a fix removes (the account statement is
        # the key's administration, and stays).
        sides = [*named, *own, *(delegated if own else [])]
        if not sides and not granted:
            continue
        why = _why(sides, granted, documents)
        where = tuple(s.where for s in sides) + tuple(
            f"{g.where} on key {key_arn}" for g in granted
        )
        found.append(Grant(name, "key", where, why))
    return found


def _on_key(statement: Statement, target: Target) -> bool:
    """Whether an identity-side statement may grant some KMS action on the key."""
    return names_target(statement, target) and any(
        a.name.startswith("kms:") for a in judged_actions(statement)
    )


def _why(
    sides: Iterable[Statement], grants: Iterable[KeyGrant], documents: KeyDocuments | None
) -> str:
    notes = []
    if documents is None:
        notes.append(f"the key's {NOT_READ}: counted as delegating to IAM")
    if any(s.conditional for s in sides) or any(g.constrained for g in grants):
        notes.append(CONDITIONAL)
    return "; ".join(notes)


def key_strangers(
    documents: KeyDocuments, owner_role: str, account: str
) -> Iterable[tuple[str, str]]:
    """(where, whom) for each key policy Allow or grant naming anyone but the account (the
    administration statement) and the owner's role."""
    for statement in documents.policy:
        if not statement.allow:
            continue
        if statement.not_principal:
            yield statement.where, "anyone but its NotPrincipal"
            continue
        for kind, value in statement.principals:
            root = value == account or value.endswith(f":iam::{account}:root")
            if not (kind == "AWS" and (root or value == owner_role)):
                yield statement.where, value if kind in ("AWS", "*") else f"{kind} {value}"
    for grant in documents.grants:
        if grant.grantee != owner_role:
            yield grant.where, grant.grantee

"""Who can become whom, and what each identity may do to a bucket: the edges of the proof.

One small checker per kind of edge, in the spirit of PMapper's edge checkers:
- `assume`: a role's trust policy and the caller's own policies, by AWS's rules in one
  account (a trust naming the caller's ARN lets it in on its own; one naming the account
  delegates to the caller's policies; one naming anyone is counted either way);
- `bucket_grants`: every S3 action an identity may take on a bucket or its objects, from its
  own policies and the bucket's policy, less what an unconditional Deny takes away;
- `changes`: IAM (and account-wide S3) actions that rewrite access, and the actions that run
  code where another identity's credentials are (SSM commands, instance user data, a
  function's code).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from checks.reach.documents import Identity, Statement
from checks.reach.evaluate import (
    Target,
    allowing,
    certain,
    denied,
    identity_grants,
    judged_actions,
    names_action,
)
from checks.reach.guarantees import identity_escalations

ASSUME = "sts:AssumeRole"
CONDITIONAL = "counted although a Condition may keep it from applying"
ANYONE = "the trust names any principal (*): counted whatever the caller's own policies say"
_ACCOUNT_ROOT = re.compile(r"^(?:(\d{12})|arn:[\w-]+:iam::(\d{12}):root)$")
_NAMED = re.compile(r"^arn:[\w-]+:(?:iam|sts)::(\d{12}):(role|user|assumed-role)/(?:.*/)?([^/]+)$")
_SESSION = re.compile(r"^arn:[\w-]+:sts::(\d{12}):assumed-role/([^/]+)/[^/]+$")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    action: str
    documents: tuple[str, ...]
    """Where the grant stands: `trust policy of role b statement 1`, `inline policy ...`."""
    why: str = ""
    """Why it was counted, where AWS's rule or a Condition leaves doubt."""


def _doubt(*statements: Statement, base: str = "") -> str:
    notes = [base] if base else []
    if any(s.conditional for s in statements):
        notes.append(CONDITIONAL)
    return "; ".join(notes)


def names_caller(value: str, caller: Identity) -> bool:
    """Whether a principal entry names the caller itself (its ARN, or a session of it)."""
    session = _SESSION.match(value)
    if session:
        return caller.kind == "role" and session[1] == caller.account and session[2] == caller.name
    named = _NAMED.match(value)
    return (
        named is not None
        and named[1] == caller.account
        and named[2] == caller.kind
        and named[3].lower() == caller.name.lower()
    )


def reach_kind(statement: Statement, caller: Identity) -> str | None:
    """How a resource-side statement reaches the caller: named, anyone, account, or not."""
    kinds = set()
    for kind, value in statement.principals:
        if kind == "*" or (kind == "AWS" and value == "*"):
            kinds.add("anyone")
        elif kind == "AWS" and (root := _ACCOUNT_ROOT.match(value)):
            if caller.account in (root[1], root[2]):
                kinds.add("account")
        elif kind == "AWS" and names_caller(value, caller):
            kinds.add("named")
    if statement.not_principal:
        # NotPrincipal reaches everyone it does not name, and AWS matches it per session: a
        # role's ARN (or its account) in it leaves every session of the role reached, and no
        # list of sessions names them all. So an Allow with NotPrincipal reaches anyone.
        return "anyone"
    for kind in ("named", "anyone", "account"):
        if kind in kinds:
            return kind
    return None


def denies_caller(statement: Statement, caller: Identity) -> bool:
    """Whether a resource-side Deny surely names the caller, every session of it included.

    Only what AWS matches for every session counts: anyone, the caller's account, or the
    caller's exact ARN. A Deny naming one session (`assumed-role/R/S`) leaves the others in,
    and NotPrincipal spares whoever it may name: a doubt never removes reach.
    """
    if statement.allow or statement.conditional:
        return False

    def surely_names(kind: str, value: str) -> bool:
        root = _ACCOUNT_ROOT.match(value) if kind == "AWS" else None
        if kind == "*" or value == "*" or (root and caller.account in (root[1], root[2])):
            return True
        return kind == "AWS" and value == caller.arn

    if statement.not_principal:
        return not any(
            kind == "*" or value == "*" or names_caller(value, caller) or _ACCOUNT_ROOT.match(value)
            for kind, value in statement.principals
        )
    return any(surely_names(kind, value) for kind, value in statement.principals)


def assume(caller: Identity, role: Identity) -> Edge | None:
    """The edge caller -> role when the documents let the caller assume the role."""
    if caller.arn == role.arn:
        return None
    target = Target(role.arn)
    trust = [s for s in role.trust if names_action(s, ASSUME)]
    reaching = [(s, reach_kind(s, caller)) for s in trust]
    if any(denies_caller(s, caller) for s in trust):
        return None
    if denied(caller.policies, ASSUME, target):
        return None
    for statement, kind in reaching:
        if not statement.allow or kind is None:
            continue
        own = identity_grants(caller.policies, caller.boundary, ASSUME, target)
        documents = (statement.where, *(s.where for s in own))
        if kind == "named":
            return Edge(caller.arn, role.arn, ASSUME, documents, _doubt(statement))
        if kind == "anyone":
            return Edge(caller.arn, role.arn, ASSUME, documents, _doubt(statement, base=ANYONE))
        if own:  # the account: its principals need a grant of their own
            return Edge(caller.arn, role.arn, ASSUME, documents, _doubt(statement, *own))
    return None


class Trusts:
    """Every role's trust, indexed by whom it names, so edges cost what they find."""

    def __init__(self, roles: Iterable[Identity]) -> None:
        self.by_name: dict[str, list[Identity]] = defaultdict(list)
        self.wide: list[Identity] = []
        for role in roles:
            named, wide = set(), False
            for statement in role.trust:
                if statement.not_principal:
                    wide = True
                for kind, value in statement.principals:
                    session = _SESSION.match(value) if kind == "AWS" else None
                    found = _NAMED.match(value) if kind == "AWS" else None
                    if session:  # a session of a role: indexed by the role's name
                        named.add(session[2].lower())
                    elif found:
                        named.add(found[3].lower())
                    elif kind == "*" or value == "*" or _ACCOUNT_ROOT.match(value):
                        wide = True
            for name in named:
                self.by_name[name].append(role)
            if wide:
                self.wide.append(role)

    def edges_from(self, caller: Identity) -> list[Edge]:
        candidates = {r.arn: r for r in (*self.by_name.get(caller.name.lower(), ()), *self.wide)}
        found = (assume(caller, role) for role in candidates.values())
        return [edge for edge in found if edge is not None]


@dataclass(frozen=True)
class Grant:
    action: str
    scope: str
    """`bucket`, `objects` (any of them) or `check objects` (the check's prefix only)."""
    documents: tuple[str, ...]
    why: str = ""


_S3_ARN = re.compile(r"^arn:[\w-]+:s3:::([^/*?$]+)(?:/.*)?$")
"""An S3 ARN whose bucket name is literal (its key part may hold wildcards)."""


def _buckets_named(statement: Statement, buckets: Iterable[str]) -> Iterable[str]:
    """The buckets a statement may concern: each resource names its own bucket, and only a
    resource whose bucket part is a wildcard or a variable (or NotResource) may be any."""
    if statement.not_resource:
        return buckets
    wanted: set[str] = set()
    for resource in statement.resources:
        if match := _S3_ARN.match(resource):
            wanted.add(match[1])
        elif "*" in resource or "?" in resource or not certain(resource):
            return buckets
    return [b for b in buckets if b in wanted]


def bucket_grants(
    identity: Identity,
    bucket_arns: Mapping[str, str],
    bucket_policies: Mapping[str, tuple[Statement, ...]],
    check_prefix: str,
) -> dict[str, list[Grant]]:
    """Per bucket name: every S3 action the identity may take on it or on its objects."""
    candidates: dict[str, list[tuple[Statement, bool]]] = defaultdict(list)
    for statement in identity.policies:
        if statement.allow and any(a.name.startswith("s3:") for a in judged_actions(statement)):
            for bucket in _buckets_named(statement, bucket_arns):
                candidates[bucket].append((statement, True))
    for bucket, policy in bucket_policies.items():
        for statement in policy:
            if (
                statement.allow
                and bucket in bucket_arns
                and reach_kind(statement, identity)
                in (
                    "named",
                    "anyone",
                )
            ):
                candidates[bucket].append((statement, False))
    grants: dict[str, list[Grant]] = {}
    for bucket, found in candidates.items():
        arn = bucket_arns[bucket]
        # Identity-side Denies, and the bucket policy's Denies that surely name the identity
        # (a statement naming nobody is neutral to `denied` only if it is not kept here).
        denies = [
            *identity.policies,
            *(s for s in bucket_policies.get(bucket, ()) if denies_caller(s, identity)),
        ]
        grants[bucket] = _grants_on(identity, arn, found, denies, check_prefix)
    return grants


def _grants_on(
    identity: Identity,
    arn: str,
    found: list[tuple[Statement, bool]],
    denies: list[Statement],
    check_prefix: str,
) -> list[Grant]:
    granted: list[Grant] = []
    actions = sorted(
        {a for s, _ in found for a in judged_actions(s) if a.name.startswith("s3:")},
        key=lambda a: a.name,
    )
    for action in actions:
        targets = []
        if "bucket" in action.resources:
            targets.append(("bucket", Target(arn)))
        if "object" in action.resources:
            targets.append(("objects", Target(f"{arn}/", prefix=True)))
        for scope, target in targets:
            if denied(denies, action.name, target):
                continue
            own = [s for s, identity_side in found if identity_side]
            resource_side = [s for s, identity_side in found if not identity_side]
            side = identity_grants(own, identity.boundary, action.name, target)
            side += allowing(resource_side, action.name, target)
            if not side:
                continue
            if scope == "objects" and all(
                all(r.startswith(f"{arn}/{check_prefix}") for r in s.resources)
                and not s.not_resource
                for s in side
            ):
                scope = "check objects"
            granted.append(Grant(action.name, scope, tuple(s.where for s in side), _doubt(*side)))
    return granted


def changes(identity: Identity) -> list[Grant]:
    """Actions that widen access whatever the resource (`guarantees.identity_escalations`,
    the same the policy pack refuses), less what a Deny or the boundary takes away."""
    found: dict[str, list[Statement]] = defaultdict(list)
    for statement in identity.policies:
        for name in identity_escalations(statement):
            found[name].append(statement)
    everything = Target("", prefix=True)
    granted = []
    for name, statements in sorted(found.items()):
        if denied(identity.policies, name, everything):
            continue
        if identity.boundary is not None and not any(
            names_action(s, name) and s.allow for s in identity.boundary
        ):
            continue
        granted.append(Grant(name, "any", tuple(s.where for s in statements), _doubt(*statements)))
    return granted

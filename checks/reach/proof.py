"""The reach proof: from the account's documents, who reaches each service's data, and how.

The expected graph follows from the design and the stack outputs alone:
- the host role reaches exactly the stack's service roles (who reaches the host is reported);
- a service role reaches no role;
- each service's bucket is reachable only through its own role, with exactly list, get, put
  and delete (and, for the check's own cleanup, version deletes under the check's prefix);
- no identity the stack reaches may change IAM, pass a role, or rewrite a bucket's settings.
Everything else the documents allow is a finding, with its path, the document that grants it
and the fix, charged to every service whose role or data it reaches.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from checks.reach.documents import Account, Identity, Statement
from checks.reach.evaluate import Target, judged_actions, names_target
from checks.reach.graph import ASSUME, Edge, Grant, Trusts, assume, bucket_grants, changes
from checks.reach.guarantees import (
    OWN_GRANTS,
    OWN_OPTIONAL,
    bucket_policy_strangers,
    stack_trust_problems,
)
from checks.reach.keys import OWN_KEY_GRANTS, KeyDocuments, key_grants, key_strangers

DATA_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket")
"""Named first in a finding: reading, writing and deleting the data itself."""


def _few(names: Sequence[str]) -> str:
    """The first four names, and how many more: `s3:*` is one finding, not sixty names."""
    more = f" and {len(names) - 4} more" if len(names) > 4 else ""
    return ", ".join(names[:4]) + more


@dataclass(frozen=True)
class Expected:
    """What the stack outputs say the graph must be."""

    roles: Mapping[str, str]
    """Every service's role ARN, by service name."""
    buckets: Mapping[str, tuple[str, str]]
    """Every service's (bucket name, bucket ARN)."""
    selected: Sequence[str]
    """The services this run judges (--service), in order."""
    host: str | None
    """The host role's ARN (shared topology)."""
    check_prefix: str
    ec2_principals: frozenset[str] = frozenset({"ec2.amazonaws.com", "ec2.amazonaws.com.cn"})
    keys: Mapping[str, str] = field(default_factory=dict)
    """SSE-KMS services' keys (the `kmsKeyArn` outputs), by service name."""


@dataclass(frozen=True)
class Finding:
    services: frozenset[str]
    path: str
    document: str
    fix: str
    why: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "services": sorted(self.services),
            "path": self.path,
            "document": self.document,
            "fix": self.fix,
            "why": self.why,
        }

    def __str__(self) -> str:
        why = f" ({self.why})" if self.why else ""
        return f"{self.path}, granted by {self.document}{why}: {self.fix}"


@dataclass
class Proof:
    findings: list[Finding] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    host_reached_by: list[str] = field(default_factory=list)
    others: list[dict[str, str]] = field(default_factory=list)
    """Identities the stack cannot reach that hold S3 grants on a stack bucket (an account's
    administrators, its CI): reported, never failed, since the proof's question is what the
    stack's identities can reach."""
    beyond: list[dict[str, str]] = field(default_factory=list)
    """Each S3 action an identity holds on a stack bucket beyond the design's grants."""
    labels: dict[str, str] = field(default_factory=dict)
    """How the report names each identity it mentions (`host role`, `service-a role`)."""
    judged: int = 0
    """Identities whose documents were judged: the stack's and every one they reach."""
    not_covered: dict[str, list[str]] = field(default_factory=dict)

    def of(self, service: str) -> list[Finding]:
        return [f for f in self.findings if service in f.services]


class _Prover:
    def __init__(
        self,
        account: Account,
        policies: Mapping[str, tuple[Statement, ...]],
        expected: Expected,
        keys: Mapping[str, KeyDocuments],
    ) -> None:
        self.account = account
        self.policies = policies
        self.key_documents = keys
        self.expected = expected
        self.selected = list(expected.selected)
        self.chosen: set[str] = set(self.selected)
        self.buckets = {b: a for n, (b, a) in expected.buckets.items() if n in self.chosen}
        self.service_of_role = {arn: name for name, arn in expected.roles.items()}
        self.service_of_bucket = {b: name for name, (b, _) in expected.buckets.items()}
        self.starts_of: dict[str, set[str]] = {}
        self.paths: dict[str, list[Edge]] = {}
        self.judged_set: set[str] = set()
        self.trusts = Trusts(account.roles.values())
        self.proof = Proof()

    def identity(self, arn: str) -> Identity | None:
        return self.account.roles.get(arn) or self.account.users.get(arn)

    def label(self, arn: str) -> str:
        if arn == self.expected.host:
            return "host role"
        if arn in self.service_of_role:
            return f"{self.service_of_role[arn]} role"
        found = self.identity(arn)
        return f"{found.kind} {found.name}" if found else arn

    def path(self, edges: Sequence[Edge], start: str) -> str:
        text = self.label(start)
        for edge in edges:
            text += f" → {edge.action} → {self.label(edge.target)}"
        return text

    def owners(self, arn: str) -> set[str]:
        """The services an identity's own powers are charged to: the host's are everyone's."""
        if arn == self.expected.host:
            return self.chosen
        if arn in self.service_of_role:
            return {self.service_of_role[arn]} & self.chosen
        return set().union(*(self.owners(s) for s in self.starts_of.get(arn, ())))

    def add(self, services: set[str], path: str, document: str, fix: str, why: str = "") -> None:
        chosen = frozenset(services) or frozenset(self.chosen)
        self.proof.findings.append(Finding(chosen, path, document, fix, why))

    # -- role to role -------------------------------------------------------------------

    def walk(self) -> list[str]:
        """Follow every assume edge from the stack's identities; the identities reached."""
        starts = [a for a in (self.expected.host, *self.roles_selected()) if a]
        stack = set(self.expected.roles.values()) | {self.expected.host}
        seen_edges: set[tuple[str, str]] = set()
        reached: list[str] = []
        for start in starts:
            if self.identity(start) is None:
                continue
            self.starts_of.setdefault(start, set()).add(start)
            queue, visited = deque([(start, list[Edge]())]), {start}
            while queue:
                arn, path = queue.popleft()
                caller = self.identity(arn)
                for edge in self.trusts.edges_from(caller) if caller else ():
                    if (edge.source, edge.target) not in seen_edges:
                        seen_edges.add((edge.source, edge.target))
                        self.proof.edges.append(edge)
                    if arn == self.expected.host and edge.target in self.service_of_role:
                        continue  # the design's own edge
                    self.unexpected_edge(start, [*path, edge])
                    if edge.target in stack or edge.target in visited:
                        continue  # a stack identity is judged from its own start
                    visited.add(edge.target)
                    self.starts_of.setdefault(edge.target, set()).add(start)
                    self.paths.setdefault(edge.target, [*path, edge])
                    reached.append(edge.target)
                    queue.append((edge.target, [*path, edge]))
        return list(dict.fromkeys(reached))

    def roles_selected(self) -> list[str]:
        return [self.expected.roles[name] for name in self.selected]

    def unexpected_edge(self, start: str, path: list[Edge]) -> None:
        edge = path[-1]
        target = self.label(edge.target)
        services = self.owners(start) | self.owners(edge.target)
        if edge.target in self.service_of_role or edge.target == self.expected.host:
            fix = (
                f"take {self.label(edge.source)} out of the trust policy of {target}: "
                "only the host role may assume a service role, and no service role the host"
            )
        elif edge.source == self.expected.host:
            fix = (
                f"delete {target} or take the host role out of its trust policy: the host may "
                "assume exactly the stack's service roles (every role under the stack's IAM "
                "path is covered by its grant)"
            )
        else:
            fix = f"take {self.label(edge.source)} out of the trust policy of {target}"
        self.add(services, self.path(path, start), " and ".join(edge.documents), fix, edge.why)

    def expected_edges(self) -> None:
        host = self.identity(self.expected.host) if self.expected.host else None
        if host is None:
            return
        for name in self.selected:
            role = self.identity(self.expected.roles[name])
            if role is not None and assume(host, role) is None:
                self.add(
                    {name},
                    f"host role → {ASSUME} → {name} role (expected, missing)",
                    f"trust policy of role {role.name} and the host role's policies",
                    "the host cannot assume the role by these documents: `pulumi up` restores "
                    "both sides (the trust names the host role; the host may assume the path)",
                )

    # -- what each identity may do ------------------------------------------------------

    def judge(self, arn: str, data_only: bool = False) -> None:
        """Every finding about one identity's powers; `data_only`: only its grants on the
        judged buckets (another service's role, outside a --service selection)."""
        identity = self.identity(arn)
        if identity is None:
            return
        grants = bucket_grants(identity, self.buckets, self.policies, self.expected.check_prefix)
        own = self.service_of_role.get(arn)
        if own is not None and own in self.chosen:
            self.owner_grants(own, identity, grants.get(self.expected.buckets[own][0], []))
        for bucket, found in grants.items():
            owner = self.service_of_bucket[bucket]
            extra = [
                g
                for g in found
                if owner != own or (g.action, g.scope) not in OWN_GRANTS | OWN_OPTIONAL
            ]
            # One finding per document and scope: `s3:*` is one grant, not sixty.
            groups: dict[tuple[tuple[str, ...], str], list[Grant]] = {}
            for grant in extra:
                where = bucket if grant.scope == "bucket" else f"{bucket}/*"
                groups.setdefault((grant.documents, where), []).append(grant)
            for (_, where), grouped in groups.items():
                self.data_finding(arn, owner, bucket, where, grouped)
        self.judge_keys(identity, own)
        if data_only:
            return
        self.change_findings(identity)
        for unseen in self.unseen_of(identity):
            self.add(
                self.owners(arn),
                self.path(self.paths.get(arn, []), self.start_of(arn)),
                unseen,
                "its document was not in GetAccountAuthorizationDetails, so what it grants is "
                "unknown: read it (iam:GetPolicyVersion) or detach it",
            )

    def start_of(self, arn: str) -> str:
        return min(self.starts_of.get(arn, {arn}))

    def unseen_of(self, identity: Identity) -> list[str]:
        return [u for u in self.account.unseen if u.endswith(f" attached to {identity.name}")]

    def owner_grants(self, service: str, identity: Identity, found: list[Grant]) -> None:
        have = {(g.action, g.scope) for g in found}
        # A grant on every object also covers the check's prefix.
        have |= {(a, "check objects") for a, s in have if s == "objects"}
        for action, scope in sorted(OWN_GRANTS - have):
            bucket = self.expected.buckets[service][0]
            self.add(
                {service},
                f"{service} role → {action} on {bucket}{'/*' if scope == 'objects' else ''} "
                "(expected, missing)",
                f"the policies of role {identity.name}",
                "the service role cannot do its job: `pulumi up` restores its bucket-access policy",
            )

    def data_finding(
        self, arn: str, owner: str, bucket: str, where: str, grants: list[Grant]
    ) -> None:
        services = {owner}
        if arn in self.service_of_role:
            services |= {self.service_of_role[arn]} & self.chosen
        else:
            starts = self.starts_of.get(arn, set())
            services |= {self.service_of_role[s] for s in starts if s in self.service_of_role}
            services &= self.chosen | {owner}
        path = self.path(self.paths.get(arn, []), self.start_of(arn))
        for grant in grants:
            self.proof.beyond.append(
                {"identity": self.label(arn), "bucket": bucket, "action": grant.action}
            )
        rank = {a: i for i, a in enumerate(DATA_ACTIONS)}
        names = sorted((g.action for g in grants), key=lambda a: (rank.get(a, len(rank)), a))
        shown = _few(names)
        document = grants[0].documents[0]
        if arn == self.service_of_role_arn(owner):
            fix = (
                f"remove {shown} from {document}: a service role needs exactly "
                "s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on its bucket"
            )
        else:
            fix = f"remove {shown} from {document}: only the {owner} role may reach {bucket}"
        self.add(
            services,
            f"{path} → {shown} on {where}",
            " and ".join(grants[0].documents),
            fix,
            "; ".join(dict.fromkeys(g.why for g in grants if g.why)),
        )

    # -- the services' KMS keys ---------------------------------------------------------

    def judge_keys(self, identity: Identity, own: str | None) -> None:
        """The identity's grants on each judged service's key: its own key's two actions for
        a service role, nothing at all on any other."""
        for service, key in self.expected.keys.items():
            if service not in self.chosen:
                continue
            documents = self.key_documents.get(key)
            if documents is not None and not documents.found:
                continue  # reported once, by stack_documents
            grants = key_grants(identity, key, documents)
            if own == service:
                have = {g.action for g in grants}
                for action in sorted(OWN_KEY_GRANTS - have):
                    self.add(
                        {service},
                        f"{service} role → {action} on key {key} (expected, missing)",
                        f"the policies of role {identity.name} and the key policy of {key}",
                        "S3 cannot encrypt or decrypt the service's objects for it: `pulumi up` "
                        "restores the grant (a brought key's policy must delegate to IAM: "
                        "docs/kms.md)",
                    )
                grants = [g for g in grants if g.action not in OWN_KEY_GRANTS]
            by_document: dict[str, list[Grant]] = {}
            for grant in grants:
                by_document.setdefault(grant.documents[0], []).append(grant)
            for document, grouped in by_document.items():
                self.key_finding(identity.arn, service, key, document, grouped)

    def key_finding(
        self, arn: str, service: str, key: str, document: str, grants: list[Grant]
    ) -> None:
        names = [g.action for g in grants]
        shown = _few(names)
        path = self.path(self.paths.get(arn, []), self.start_of(arn))
        if arn == self.expected.roles.get(service):
            fix = (
                f"remove {shown} from {document}: a service role needs exactly "
                "kms:GenerateDataKey and kms:Decrypt on its key, through S3"
            )
        else:
            fix = f"remove {shown} from {document}: only the {service} role may use {key}"
        services = {service} | (self.owners(arn) if arn != self.expected.host else set())
        self.add(
            services,
            f"{path} → {shown} on key {key}",
            " and ".join(grants[0].documents),
            fix,
            "; ".join(dict.fromkeys(g.why for g in grants if g.why)),
        )

    def key_documents_of(self, name: str) -> None:
        key = self.expected.keys.get(name)
        if key is None:
            return
        documents = self.key_documents.get(key)
        if documents is None:
            return
        if not documents.found:
            self.add(
                {name},
                f"{name} bucket's key {key}",
                f"key {key}",
                "the key is not in the account: the bucket cannot encrypt or decrypt; `pulumi "
                "up` recreates a stack-created key (a brought one must be restored)",
            )
            return
        role = self.expected.roles[name]
        account = role.split(":")[4]
        for where, whom in key_strangers(documents, role, account):
            if whom in self.judged_set:
                continue  # its grants are judged, with its path, by `judge`
            self.add(
                {name},
                f"{whom} → key {key}",
                f"{where} of key {key}" if where.startswith("grant") else where,
                f"remove {whom} from the key: only the account (administration) and the "
                f"{name} role may be named in it",
            )

    def service_of_role_arn(self, service: str) -> str:
        return self.expected.roles[service]

    def change_findings(self, identity: Identity) -> None:
        found = changes(identity)
        if not found:
            return
        by_document: dict[str, list[Grant]] = {}
        for grant in found:
            by_document.setdefault(grant.documents[0], []).append(grant)
        for document, grants in by_document.items():
            names = [g.action for g in grants]
            shown = _few(names)
            services = self.owners(identity.arn) | self.roles_touched(identity, names)
            self.add(
                services,
                f"{self.path(self.paths.get(identity.arn, []), self.start_of(identity.arn))} → "
                f"{shown}",
                document,
                f"remove them from {document}: no identity the stack reaches may change IAM "
                "(policies, trust, attachments), pass a role, or run code as another identity "
                "(SSM commands, instance user data, a function's code)",
                "; ".join(dict.fromkeys(g.why for g in grants if g.why)),
            )

    def roles_touched(self, identity: Identity, actions: list[str]) -> set[str]:
        """Services whose role an IAM change could rewrite (by the granting resources)."""
        wanted = set(actions)
        granting = [
            s
            for s in identity.policies
            if s.allow and any(a.name in wanted for a in judged_actions(s))
        ]
        return {
            name
            for name in self.selected
            for s in granting
            if names_target(s, Target(self.expected.roles[name]))
        }

    # -- documents of the stack's own resources -----------------------------------------

    def stack_documents(self) -> None:
        for name in self.selected:
            role = self.identity(self.expected.roles[name])
            if role is None:
                self.add(
                    {name},
                    f"{name} role",
                    f"role {self.expected.roles[name]}",
                    "the stack's role is not in the account: `pulumi up` recreates it",
                )
                continue
            allowed = {self.expected.host} if self.expected.host else set()
            for where, problem in stack_trust_problems(
                role.trust, allowed - {None}, self.expected.ec2_principals
            ):
                self.add({name}, f"anyone → {ASSUME} → {name} role", where, problem)
            self.key_documents_of(name)
            bucket, _ = self.expected.buckets[name]
            own_role = self.expected.roles[name]
            for statement, principal in bucket_policy_strangers(
                self.policies.get(bucket, ()), own_role
            ):
                if self.judged_principal(principal):
                    continue  # its reach is judged, with its path, by `judge`
                self.add(
                    {name},
                    f"{principal} → {', '.join(statement.actions)} on {bucket}",
                    statement.where,
                    f"remove {statement.label} from the bucket policy of {bucket}: only the "
                    f"{name} role may reach it, through its own policy",
                )
        host = self.identity(self.expected.host) if self.expected.host else None
        if host is not None:
            problems = stack_trust_problems(host.trust, None, self.expected.ec2_principals)
            for where, problem in problems:
                self.add(self.chosen, f"anyone → {ASSUME} → host role", where, problem)

    def judged_principal(self, principal: str) -> bool:
        return principal in self.judged_set

    def who_reaches_host(self) -> None:
        host = self.identity(self.expected.host) if self.expected.host else None
        if host is None:
            return
        for caller in self.account.identities:
            edge = assume(caller, host)
            if edge is not None:
                reason = edge.documents[0]
                self.proof.host_reached_by.append(f"{caller.kind} {caller.arn} ({reason})")
        for statement in host.trust:
            for kind, value in statement.principals:
                if kind == "AWS" and self.identity(value) is None:
                    self.proof.host_reached_by.append(f"{value} ({statement.where})")

    def others_with_grants(self) -> None:
        for identity in self.account.identities:
            if identity.arn in self.judged_set:
                continue
            prefix = self.expected.check_prefix
            grants = bucket_grants(identity, self.buckets, self.policies, prefix)
            for bucket, found in grants.items():
                if found:
                    self.proof.others.append(
                        {
                            "identity": identity.arn,
                            "bucket": bucket,
                            "actions": _few([g.action for g in found]),
                        }
                    )

    def run(self) -> Proof:
        reached = self.walk()
        self.expected_edges()
        starts = [a for a in (self.expected.host, *self.roles_selected()) if a]
        self.judged_set = set(starts) | set(reached)
        for arn in dict.fromkeys([*starts, *reached]):
            self.judge(arn)
        # With --service, the other services' roles are not judged for what they reach, but
        # the host reaches them all: their grants on the judged buckets are judged all the same.
        for name, arn in self.expected.roles.items():
            if name not in self.chosen and arn not in self.judged_set:
                self.judged_set.add(arn)
                self.judge(arn, data_only=True)
        self.stack_documents()
        self.who_reaches_host()
        self.others_with_grants()
        self.proof.judged = len(self.judged_set)
        self.proof.edges.sort(key=lambda e: (e.source, e.target))
        for edge in self.proof.edges:
            for arn in (edge.source, edge.target):
                self.proof.labels[arn] = self.label(arn)
        others = [n for n in self.expected.roles if n not in self.chosen]
        if others:
            self.proof.not_covered = {
                "roles": [self.expected.roles[n] for n in others],
                "buckets": [self.expected.buckets[n][0] for n in others],
            }
        return self.proof


def prove(
    account: Account,
    policies: Mapping[str, tuple[Statement, ...]],
    expected: Expected,
    keys: Mapping[str, KeyDocuments] | None = None,
) -> Proof:
    """Judge the account's documents (and the SSE-KMS keys' policies and grants) against the
    expected graph."""
    return _Prover(account, policies, expected, keys or {}).run()

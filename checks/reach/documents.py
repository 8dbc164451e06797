"""IAM and bucket policy documents as the reach proof reads them: parsed once, named for reports.

`account_from_details` turns the pages of `iam:GetAccountAuthorizationDetails` into roles and
users with every document that grants them something, each named the way a report should name
it (`inline policy bucket-access of role web-role`, `managed policy arn:...`). Nothing here
calls AWS; the documents are plain dicts, as boto3 returns them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from checks.trust import as_list, load_document

PrincipalEntry = tuple[str, str]
"""(kind, value) of one principal: ("AWS", arn), ("Service", name), ("*", "*"), ..."""


def load(document: str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A policy document (IAM's raw APIs URL-encode it), or an empty one for none."""
    if document is None:
        return {}
    parsed = load_document(document)
    return parsed if isinstance(parsed, Mapping) else {}


@dataclass(frozen=True)
class Statement:
    document: str
    """The document it stands in, named for a report."""
    label: str
    """Its Sid, or its position (`statement 2`) when it has none."""
    allow: bool
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    principals: tuple[PrincipalEntry, ...]
    """Resource-based documents only: whom the statement names."""
    not_principal: bool
    conditional: bool
    """It has a Condition: it may apply or not; the proof never assumes either."""

    @property
    def where(self) -> str:
        return f"{self.document} {self.label}"


def _principals(value: Any) -> tuple[PrincipalEntry, ...]:
    if value == "*":
        return (("*", "*"),)
    if not isinstance(value, Mapping):
        return ()
    return tuple(
        (str(kind), str(entry)) for kind, entries in value.items() for entry in as_list(entries)
    )


def statements(name: str, document: str | Mapping[str, Any] | None) -> tuple[Statement, ...]:
    """Every statement of a document, named `name`, in the document's order."""
    parsed: list[Statement] = []
    for index, raw in enumerate(as_list(load(document).get("Statement")), start=1):
        if not isinstance(raw, Mapping):
            continue
        sid = raw.get("Sid")
        parsed.append(
            Statement(
                document=name,
                label=f"statement {sid}" if sid else f"statement {index}",
                allow=raw.get("Effect", "Allow") != "Deny",
                actions=tuple(str(a) for a in as_list(raw.get("NotAction", raw.get("Action")))),
                not_action="NotAction" in raw,
                resources=tuple(
                    str(r) for r in as_list(raw.get("NotResource", raw.get("Resource", "*")))
                ),
                not_resource="NotResource" in raw,
                principals=_principals(raw.get("NotPrincipal", raw.get("Principal"))),
                not_principal="NotPrincipal" in raw,
                conditional=bool(raw.get("Condition")),
            )
        )
    return tuple(parsed)


@dataclass(frozen=True)
class Identity:
    """A role or user, with every identity-side statement that applies to it."""

    arn: str
    name: str
    kind: str
    """`role` or `user`."""
    account: str
    policies: tuple[Statement, ...]
    boundary: tuple[Statement, ...] | None = None
    """The permissions boundary's statements; None when it has none."""
    trust: tuple[Statement, ...] = ()
    """Roles only: the trust policy."""


@dataclass
class Account:
    roles: dict[str, Identity] = field(default_factory=dict)
    users: dict[str, Identity] = field(default_factory=dict)
    unseen: list[str] = field(default_factory=list)
    """Managed policies attached to someone whose document the details did not hold."""

    @property
    def identities(self) -> Iterable[Identity]:
        yield from self.roles.values()
        yield from self.users.values()


def _account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def _managed(pages: Iterable[Mapping[str, Any]]) -> dict[str, tuple[Statement, ...]]:
    """The default version of every managed policy in the details, by ARN."""
    found: dict[str, tuple[Statement, ...]] = {}
    for page in pages:
        for policy in page.get("Policies", []):
            arn = policy["Arn"]
            default = policy.get("DefaultVersionId")
            for version in policy.get("PolicyVersionList", []):
                if version.get("IsDefaultVersion") or version.get("VersionId") == default:
                    found[arn] = statements(f"managed policy {arn}", version.get("Document"))
    return found


def _inline(policies: Iterable[Mapping[str, Any]], owner: str) -> list[Statement]:
    """The statements of an identity's inline policies, each named `inline policy P of O`."""
    return [
        s
        for p in policies
        for s in statements(f"inline policy {p['PolicyName']} of {owner}", p["PolicyDocument"])
    ]


def account_from_details(pages: Iterable[Mapping[str, Any]]) -> Account:
    """An Account from the pages of GetAccountAuthorizationDetails (all filters)."""
    pages = list(pages)
    managed = _managed(pages)
    account = Account()

    def attached(entries: Iterable[Mapping[str, Any]], owner: str) -> list[Statement]:
        found: list[Statement] = []
        for entry in entries:
            arn = entry["PolicyArn"]
            if arn in managed:
                found += managed[arn]
            else:
                account.unseen.append(f"managed policy {arn} attached to {owner}")
        return found

    groups: dict[str, list[Statement]] = {}
    for page in pages:
        for group in page.get("GroupDetailList", []):
            name = group["GroupName"]
            inline = _inline(group.get("GroupPolicyList", []), f"group {name}")
            groups[name] = inline + attached(group.get("AttachedManagedPolicies", []), name)
    for page in pages:
        for role in page.get("RoleDetailList", []):
            name = role["RoleName"]
            inline = _inline(role.get("RolePolicyList", []), f"role {name}")
            boundary_arn = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
            account.roles[role["Arn"]] = Identity(
                arn=role["Arn"],
                name=name,
                kind="role",
                account=_account_of(role["Arn"]),
                policies=tuple(inline + attached(role.get("AttachedManagedPolicies", []), name)),
                boundary=_boundary(boundary_arn, managed),
                trust=statements(
                    f"trust policy of role {name}", role.get("AssumeRolePolicyDocument")
                ),
            )
        for user in page.get("UserDetailList", []):
            name = user["UserName"]
            inline = _inline(user.get("UserPolicyList", []), f"user {name}")
            via_groups = [s for g in user.get("GroupList", []) for s in groups.get(g, [])]
            boundary_arn = (user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
            account.users[user["Arn"]] = Identity(
                arn=user["Arn"],
                name=name,
                kind="user",
                account=_account_of(user["Arn"]),
                policies=tuple(
                    inline + via_groups + attached(user.get("AttachedManagedPolicies", []), name)
                ),
                boundary=_boundary(boundary_arn, managed),
            )
    return account


def _boundary(
    arn: str | None, managed: Mapping[str, tuple[Statement, ...]]
) -> tuple[Statement, ...] | None:
    if arn is None:
        return None
    # An unseen boundary could only narrow what the policies grant: judging without it
    # over-counts reach and never hides any, so it is no reason to fail.
    return managed.get(arn)

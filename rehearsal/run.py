"""The rehearsal: deploy the program's own resources into moto, then run the post-deploy check.

1. evaluate: run `__main__.py` under `EmulatorMocks`, which creates every resource in moto;
2. sessions: take a session of the host role the way EC2 does (an AssumeRole named after the
   instance), or of each service role in the dedicated topology;
3. check: with IAM enforced (and `rehearsal.moto_rules` applying AWS's trust rules), run exactly
   the expectations of `python -m checks`, then probe the access matrix.
No AWS account and no network: moto runs in-process.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from checks import signals
from checks.probes import TestObject
from checks.reach.read import read_policy
from checks.reach.steps import PendingReach, with_reach
from checks.report import Report, Step
from checks.runner import Checker, CheckOptions
from checks.stack_outputs import CheckError, Targets, UsageError, parse_outputs
from checks.work import Deadline
from infra.errors import ConfigError
from infra.mock_program import PROGRAM, evaluate
from infra.partition import Partition, partition_of_region
from rehearsal import matrix
from rehearsal.botocore_models import share_botocore_models
from rehearsal.emulator import EmulatorMocks, Tamper, UnknownResourceType
from rehearsal.host import apply_associations
from rehearsal.moto_rules import aws_iam_rules, aws_policy_rules
from rehearsal.moto_speed import share_moto_setup

PROJECT_DIR = PROGRAM.parent
DEFAULT_REGION = "us-east-1"
INSPECTOR = "rehearsal-inspector"
# Fake credentials for the emulator; the user's real AWS settings are hidden while it runs.
EMULATOR_ENV = {
    "AWS_ACCESS_KEY_ID": "rehearsal",
    "AWS_SECRET_ACCESS_KEY": "rehearsal",
    "AWS_EC2_METADATA_DISABLED": "true",
}
HIDDEN_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_IAM",
)
REGIONAL_ENV = ("AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_IAM")


class RehearsalError(CheckError):
    """The emulator could not deploy the program (a gap in the emulator, or a moto error)."""


@dataclass
class Rehearsal:
    report: Report
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent: evaluate (the program), deploy (into the emulator), check."""


def _partition(region: str) -> str:
    """The region's partition, as the program reckons it (a region the program refuses
    never gets past evaluate, so the default here only has to not crash)."""
    found = partition_of_region(region)
    return found.value if isinstance(found, Partition) else Partition.AWS.value


def load_stack_config(path: Path) -> dict[str, Any]:
    """The `config:` of a Pulumi.<stack>.yaml file, as fully qualified keys.

    Read as YAML 1.2, the way Pulumi reads stack files: `yes`, `on` and `no` are strings, not
    booleans (PyYAML's YAML 1.1 would turn them into booleans), so the rehearsal accepts and
    refuses exactly what `pulumi up` would.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    reader = YAML(typ="safe", pure=True)
    reader.version = (1, 2)
    try:
        document = reader.load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"stack config file {str(path)!r} does not exist") from None
    except YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or "cannot be parsed"
        raise UsageError(
            f"stack config file {str(path)!r} is not valid YAML ({where}{problem})"
        ) from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise UsageError(f"stack config file {str(path)!r} has no `config:` mapping")
    return dict(config)


@contextmanager
def emulated_aws(region: str) -> Iterator[None]:
    """moto in-process, with fake credentials, restoring the environment afterwards."""
    from moto import mock_aws

    share_moto_setup()  # a reset at the end need not build every backend again
    saved = {key: os.environ.get(key) for key in (*EMULATOR_ENV, *HIDDEN_ENV, *REGIONAL_ENV)}
    os.environ.update(EMULATOR_ENV, AWS_DEFAULT_REGION=region)
    for key in HIDDEN_ENV:
        os.environ.pop(key, None)
    if _partition(region) == "aws-us-gov":
        # GovCloud's IAM endpoint (iam.us-gov.amazonaws.com) names no region, so moto would
        # serve it from the commercial partition's IAM, where EC2 and STS of the region do not
        # look; a regional name keeps IAM in the region's partition, as AWS does.
        os.environ["AWS_ENDPOINT_URL_IAM"] = f"https://iam.{region}.amazonaws.com"
    try:
        with mock_aws():
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class RoleSession:
    """What a role session is to the check: `client(...)` with the role's credentials.

    Every client comes from one shared boto3 session, so the service models are loaded once
    however many roles there are; a boto3.Session per role costs tens of MB each.
    """

    def __init__(self, base: boto3.Session, credentials: Mapping[str, str]) -> None:
        self._base = base
        self._credentials = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }

    def client(self, service: str, **kwargs: Any) -> Any:
        return self._base.client(service, **{**self._credentials, **kwargs})


def _as_role(base: boto3.Session, sts: Any, role_arn: str, session_name: str) -> RoleSession:
    """What EC2 does for an instance profile: assume the role, session named after the instance."""
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return RoleSession(base, credentials)


def _inspector(region: str, partition: str) -> boto3.Session:
    """A user holding the read policy (docs/check.md) for the reach proof, plus iam:GetRole, so the
    report can say which side of a trust is missing. Its policy is enforced: the rehearsal
    proves the documented read policy is enough."""
    iam = boto3.client("iam", region_name=region)
    iam.create_user(UserName=INSPECTOR)
    policy = read_policy(partition)
    policy["Statement"].append({"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"})
    iam.put_user_policy(
        UserName=INSPECTOR, PolicyName="read-for-the-check", PolicyDocument=json.dumps(policy)
    )
    key = iam.create_access_key(UserName=INSPECTOR)["AccessKey"]
    return boto3.Session(
        region_name=region,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )


def _check(targets: Targets, outputs: Mapping[str, Any], options: CheckOptions) -> Report:
    base = boto3.Session(region_name=targets.region)
    sts = base.client("sts")
    if targets.topology == "shared":
        host = _as_role(base, sts, str(targets.host_role_arn), str(targets.host_instance_id))
        checker = Checker(host, targets, options)
        with aws_iam_rules():
            report = checker.run([])
        # The check's own probes cover every principal and bucket: the matrix is what they saw.
        access = matrix.from_check(checker, report)
        access["hostAssumes"] = {
            name: any(s.name == "assume role" and s.ok for s in result.steps)
            for name, result in report.services.items()
        }
        report.extra["matrix"] = access
        return report
    # Dedicated: each instance's role is its own caller; it can write no test object into the
    # other buckets, so the matrix probes an object planted in each with admin rights.
    instances: Mapping[str, str] = outputs.get("instances", {})
    roles = {
        name: _as_role(base, sts, t.role_arn, instances.get(name, "rehearsal"))
        for name, t in targets.services.items()
    }
    admin_s3 = base.client("s3")
    matrix.plant_probes(admin_s3, targets)
    # What no single instance has, the rehearsal does: an object in every bucket, written by
    # someone else, so each role's get on the other buckets is proven too.
    peers = dict.fromkeys(targets.services, TestObject(matrix.PROBE_KEY, ""))
    options = replace(options, peer_objects=peers)
    # One deadline for all of them: each role's check gets what the ones before it left.
    end = time.monotonic() + options.deadline_seconds
    try:
        with aws_iam_rules():
            reports = [
                Checker(
                    role,
                    targets,
                    replace(options, deadline_seconds=max(0.001, end - time.monotonic())),
                ).run([])
                for role in roles.values()
            ]
            access = matrix.probe({f"{n} role": r for n, r in roles.items()}, targets)
    finally:
        matrix.remove_probes(admin_s3, targets)
    proofs = [r.extra["proof"] for r in reports]
    report = Report(
        source=", ".join(r.source for r in reports),
        services={name: result for r in reports for name, result in r.services.items()},
        extra={
            "proof": {
                "planned": sum(p["planned"] for p in proofs),
                "done": sum(p["done"] for p in proofs),
                "sample": options.sample,
            }
        },
    )
    report.extra["matrix"] = access
    return report


def _show_reach(report: Report) -> None:
    """The matrix shows what the documents prove: role-to-role reach, actions beyond the four."""
    reach, access = report.extra["reach"], report.extra.get("matrix")
    if access is not None and "roleReach" in reach:
        access["roleReach"] = reach["roleReach"]
        access["beyond"] = reach["beyond"]


def _prepend_profile_steps(report: Report, targets: Targets, profiles: Mapping[str, str]) -> None:
    """Each service's first step: the file the association installed names its role."""
    for name, result in report.services.items():
        wanted = targets.services[name].role_arn
        found = profiles.get(name)
        if found == wanted:
            step = Step("host profile", True, 0, f"[profile {name}] in /etc/aws/config")
        else:
            got = "no such profile" if found is None else f"role_arn {found}"
            step = Step(
                "host profile",
                False,
                0,
                f"the association installed {got}, not {wanted}. Fix: `pulumi up` updates "
                "the association; its next run rewrites /etc/aws/config",
            )
        result.steps.insert(0, step)


def _refuse_unknown_region(region: str) -> None:
    """A region of the right shape that AWS does not have (eu-north-9): the AWS provider
    refuses it under `pulumi up`, and the emulator has no such region either. A region of the
    wrong shape is left to the program, which says so with the rest of the config."""
    partition = partition_of_region(region)
    if not isinstance(partition, Partition):
        return
    known = boto3.session.Session().get_available_regions("ec2", partition_name=partition.value)
    if known and region not in known:
        raise UsageError(
            f"invalid config aws:region = {region!r}: partition {partition.value} has no such "
            f"region ({len(known)} known, e.g. {', '.join(sorted(known)[:3])})"
        )


def _saying_when_deploying(tamper: Tamper | None, progress: Any) -> Tamper | None:
    """The tamper hook, and one progress line as the first resource reaches the emulator:
    the program has validated its config by then, so a bad one is still one line."""
    if progress is None:
        return tamper
    first = threading.Lock()  # the mock monitor creates resources from several threads

    def hook(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        if first.acquire(blocking=False):  # never released: only the first one says it
            progress.say("deploying the program into the emulator")
        return inputs if tamper is None else tamper(typ, name, inputs)

    return hook


def run_rehearsal(
    config: Mapping[str, Any],
    *,
    stack: str = "dev",
    tamper: Tamper | None = None,
    options: CheckOptions = CheckOptions(),  # noqa: B008 (frozen, never mutated)
    reach: bool = True,
) -> Rehearsal:
    """Deploy the program with this stack config into moto and check it."""
    share_botocore_models()  # its sessions and moto's parse each model once (a no-op again)
    region = str(config.get("aws:region") or DEFAULT_REGION)
    _refuse_unknown_region(region)
    with emulated_aws(region), aws_policy_rules():
        tamper = _saying_when_deploying(tamper, options.progress)
        mocks = EmulatorMocks(region=region, tamper=tamper, partition=_partition(region))
        start = time.perf_counter()
        try:
            outputs = evaluate(mocks, config, stack=stack)
        except ConfigError as err:
            raise UsageError(str(err)) from None
        except UnknownResourceType as err:
            raise RehearsalError(str(err)) from None
        except ClientError as err:
            raise RehearsalError(f"the emulator rejected a resource: {err}") from None
        evaluated = time.perf_counter()
        signals.check()  # a signal the mock runtime's callbacks swallowed ends the run here
        targets = parse_outputs(outputs, f"the rehearsed stack {stack}")
        profiles = apply_associations(mocks.associations) if mocks.associations else None
        # moto runs in this process, CPU-bound under the GIL: one worker is the fastest (at 50
        # services, 27 s against 39 s with 4 workers and 47 s with 64).
        # The deadline is the whole run's: what evaluate and deploy took comes off it.
        left = options.deadline_seconds - (time.perf_counter() - start)
        if left <= 0:
            raise CheckError(
                f"the deploy into the emulator took the whole deadline "
                f"({options.deadline_seconds:.0f} s, --deadline)"
            )
        reader = _inspector(region, _partition(region))
        options = replace(
            options,
            wait_seconds=0,
            workers=1,
            inspector=reader.client("iam"),
            deadline_seconds=left,
        )
        report = _check(targets, outputs, options)
        left = options.deadline_seconds - (time.perf_counter() - start)
        if reach:
            with aws_iam_rules():
                # What the probes left of the deadline, and no more: once it has passed, the
                # proof fails at once and no thread is left proving while the report is written.
                pending = PendingReach(reader, targets, [], Deadline(max(left, 0.001)))
                with_reach(report, pending)
            _show_reach(report)
        else:
            report.extra["reach"] = {"ok": None, "skipped": "--without-reach"}
        if profiles is not None:
            _prepend_profile_steps(report, targets, profiles)
        checked = time.perf_counter()
    return Rehearsal(
        report=report,
        timings={
            "evaluate": evaluated - start - mocks.seconds,
            "deploy": mocks.seconds,
            "check": checked - evaluated,
        },
    )


def config_path(stack: str | None, config_file: Path | None) -> tuple[str, Path]:
    name = stack or "dev"
    return name, config_file or PROJECT_DIR / f"Pulumi.{name}.yaml"

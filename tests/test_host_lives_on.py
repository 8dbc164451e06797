"""The dev host lives on: a change of services updates it in place, never replaces it.

pulumi-aws replaces an instance when one of its replace-forcing inputs changes (the provider
schema's ForceNew: the AMI, the subnet, user data with replace-on-change, ...). Under mocks
there is no diff engine, so these tests compare exactly those inputs between two evaluations.
"""

from __future__ import annotations

from typing import Any

from conftest import RecordingMocks, Run, stack_config
from replacements import replacement_causes

from infra.mock_program import evaluate

INSTANCE = "aws:ec2/instance:Instance"
ASSOCIATION = "aws:ssm/association:Association"


def _run(services: list[str], **keys: Any) -> Run:
    mocks = RecordingMocks()
    return Run(outputs=evaluate(mocks, stack_config(services, **keys)), mocks=mocks)


THREE = ["service-a", "service-b", "service-c"]


def test_adding_a_service_replaces_nothing_and_updates_the_association() -> None:
    """3 services, then 4: no replace-forcing input of the instance differs; the association
    that installs the profiles carries the new file."""
    before, after = _run(THREE), _run([*THREE, "service-d"])
    assert replacement_causes(before, after) == []
    (old,) = before.of_type(ASSOCIATION)
    (new,) = after.of_type(ASSOCIATION)
    assert old.inputs["parameters"]["commands"] != new.inputs["parameters"]["commands"]
    assert after.outputs["awsConfigSha256"] in new.inputs["parameters"]["commands"]
    assert "[profile service-d]" in after.outputs["awsConfig"]
    assert old.name == new.name, "the same association is updated in place"


def test_removing_or_renaming_a_service_replaces_nothing() -> None:
    base = _run(THREE)
    for changed in (["service-a", "service-b"], ["service-a", "service-b", "service-z"]):
        assert replacement_causes(base, _run(changed)) == [], changed


def test_a_pinned_ami_that_changes_does_replace_the_host() -> None:
    """The comparison is not blind: what truly needs a new instance is still seen."""
    one = _run(THREE, amiId="ami-0123456789abcdef0")
    two = _run(THREE, amiId="ami-0fedcba9876543210")
    assert replacement_causes(one, two) == ["ami"]


def _ignored_changes(**keys: Any) -> list[str]:
    """The instance's ignore_changes option, as the program registers it."""
    import pulumi

    seen: list[str] = []

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        if args.type_ == INSTANCE:
            seen.extend(args.opts.ignore_changes or [])

    def before() -> None:
        pulumi.runtime.register_stack_transformation(record)  # type: ignore[arg-type]

    evaluate(RecordingMocks(), stack_config(THREE, **keys), before=before)
    return seen


def test_an_unpinned_ami_is_not_followed_but_a_pinned_one_is() -> None:
    """AWS publishes a new AL2023 every few weeks; following it would replace the dev host
    each time. Only a pinned amiId moves the host to a new image."""
    assert _ignored_changes() == ["ami"]
    assert _ignored_changes(amiId="ami-0123456789abcdef0") == []

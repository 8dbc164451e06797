"""rehearsal/botocore_models.py: one parse per process, and the documents every session sees
are the ones it would have had alone.

botocore changes a model as it uses it (it merges the SDK extras into S3's shapes, and its
endpoint defaults into endpoints.json), so a shared document is changed once per session. The
second test holds the shared documents, after several sessions, against what ONE session
ends up with in a process without the fixture: the changes are idempotent, so they match.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from rehearsal.botocore_models import list_services

SERVICES = ("s3", "iam", "sts", "kms", "ssm")
SESSIONS = textwrap.dedent(
    f"""
    import json, sys
    import boto3
    from botocore.loaders import JSONFileLoader

    seen = {{}}
    if sys.argv[1] == "shared":
        from rehearsal.botocore_models import parsed as seen, share_botocore_models

        share_botocore_models()
    else:
        parse = JSONFileLoader.load_file

        def load_file(self, file_path):
            seen[file_path] = document = parse(self, file_path)
            return document

        JSONFileLoader.load_file = load_file
    for _ in range(int(sys.argv[2])):
        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y")
        for region in ("eu-west-1", "us-east-1"):
            for service in {SERVICES!r}:
                session.client(service, region_name=region)
    json.dump(seen, sys.stdout)
    """
)


def _documents(mode: str, sessions: int) -> dict[str, object]:
    """What the sessions of a fresh process end up with: shared, or one session's own."""
    done = subprocess.run(
        [sys.executable, "-c", SESSIONS, mode, str(sessions)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    documents: dict[str, object] = json.loads(done.stdout)
    return documents


def test_sessions_share_each_parsed_model() -> None:
    """Two sessions' clients get one parsed document: each model is parsed once a process."""
    first = boto3.Session(region_name="eu-west-1")._loader.load_service_model("s3", "service-2")
    second = boto3.Session(region_name="eu-west-1")._loader.load_service_model("s3", "service-2")
    assert first is second
    loader = boto3.Session()._loader
    assert loader.list_available_services("service-2") == list_services(loader, "service-2")
    assert "s3" in loader.list_available_services("service-2")


def test_the_shared_documents_are_what_one_session_alone_ends_up_with() -> None:
    """Three sessions sharing the documents end with what one session has alone, each in a
    fresh process doing the same work (the clients of five services in two regions)."""
    shared, alone = _documents("shared", 3), _documents("alone", 1)
    assert any(p.endswith("/s3/2006-03-01/service-2") for p in alone), sorted(alone)
    assert any(p.endswith("/endpoints") for p in alone)
    assert set(shared) == set(alone)
    for path, document in alone.items():
        assert shared[path] == document, path


def test_motos_extras_stay_in_motos_own_models() -> None:
    """moto's loader merges operations and error shapes of its own into S3's model (PostObject
    among them); the document every session's clients get stays botocore's alone, before and
    after moto loaded its own."""
    from moto.core.loaders import create_loader

    before = boto3.Session(region_name="eu-west-1").client("s3")
    motos = create_loader().load_service_model("s3", "service-2")
    assert "PostObject" in motos["operations"] and "BucketNotEmpty" in motos["shapes"]
    after = boto3.Session(region_name="eu-west-1").client("s3")
    for client in (before, after):
        document = client.meta.service_model._service_description
        assert "PostObject" not in document["operations"] and not hasattr(client, "post_object")
        assert "BucketNotEmpty" not in document["shapes"]


def test_a_shared_alias_is_what_an_aliaser_of_its_own_works_out() -> None:
    """Every event name the sessions so far had aliased, aliased again by an aliaser with a
    cache of its own: the same answers. An aliaser with other aliases keeps its own cache."""
    from botocore import hooks

    from rehearsal.botocore_models import aliases

    boto3.Session(region_name="eu-west-1").client("s3")
    assert aliases, "a session and its client alias event names through the shared cache"
    own = hooks.EventAliaser(hooks.HierarchicalEmitter())
    assert own._alias_name_cache is aliases
    own._alias_name_cache = {}
    for name, alias in list(aliases.items()):
        assert own._alias_event_name(name) == alias, name
    other = hooks.EventAliaser(hooks.HierarchicalEmitter(), {"bucket": "pail"})
    assert other._alias_name_cache is not aliases
    assert other._alias_event_name("before-call.s3.bucket") == "before-call.s3.pail"
    assert aliases.get("before-call.s3.bucket") != "before-call.s3.pail"


def test_a_handler_without_kwargs_is_still_refused_however_it_is_made() -> None:
    """The shared **kwargs answer is inspect's for each kind of handler, and botocore still
    refuses one that takes no **kwargs, also where a __signature__ says other than its code,
    or a second closure of the same code differs in nothing but its cell."""
    import functools
    import inspect

    from botocore import hooks

    from rehearsal.botocore_models import accepts_kwargs

    def with_kwargs(**kwargs: object) -> None:
        pass

    def without(event_name: str) -> None:
        pass

    def made() -> Callable[..., None]:
        def handler(**kwargs: object) -> None:
            pass

        return handler

    plain, disguised = made(), made()  # one code; the second says it takes nothing
    disguised.__signature__ = inspect.Signature()  # type: ignore[attr-defined]

    class Handler:
        def method(self, **kwargs: object) -> None:
            pass

        def narrow(self, x: int) -> None:
            pass

        def __call__(self, x: int) -> None:
            pass

    def closure(n: int) -> Callable[..., int]:
        return lambda **kwargs: n

    handlers = [
        with_kwargs,
        without,
        plain,
        disguised,
        Handler().method,
        Handler().narrow,
        Handler(),
        functools.partial(without),
        functools.partial(with_kwargs),
        closure(1),
        closure(2),
    ]
    for handler in handlers * 2:  # the second time from the shared answers
        assert bool(hooks.accepts_kwargs(handler)) == bool(accepts_kwargs(handler)), handler
    session = boto3.Session(region_name="eu-west-1")._session
    for refused in (without, disguised, Handler().narrow, Handler(), functools.partial(without)):
        with pytest.raises(ValueError, match="must accept keyword arguments"):
            session.register("before-call.s3", refused)
    session.register("before-call.s3", with_kwargs)


def test_the_rehearsal_shares_the_models_before_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`run_rehearsal` installs the sharing first (a `python -m checks --rehearse` process
    has no conftest): even a rehearsal refused at once, for a region AWS does not have, has."""
    import rehearsal.run
    from checks.stack_outputs import UsageError

    calls: list[str] = []
    monkeypatch.setattr(rehearsal.run, "share_botocore_models", lambda: calls.append("shared"))
    with pytest.raises(UsageError, match="eu-north-9"):
        rehearsal.run.run_rehearsal({"aws:region": "eu-north-9"})
    assert calls == ["shared"]


def test_a_shared_listing_of_api_versions_is_the_loaders_own(tmp_path: Path) -> None:
    """Each service's API versions, listed through the shared answers, are what the loader
    lists alone; a loader that searches one more directory sees the version it holds there."""
    from botocore.loaders import Loader

    from rehearsal.botocore_models import list_versions

    loader = boto3.Session()._loader
    for service in SERVICES:
        versions = loader.list_api_versions(service, "service-2")
        assert versions == list_versions(Loader(), service, "service-2"), service
    (tmp_path / "s3" / "2099-01-01").mkdir(parents=True)
    (tmp_path / "s3" / "2099-01-01" / "service-2.json").write_text("{}")
    wider = Loader(extra_search_paths=[str(tmp_path)])
    assert "2099-01-01" in wider.list_api_versions("s3", "service-2")
    assert "2099-01-01" not in Loader().list_api_versions("s3", "service-2")


def test_each_client_class_gets_its_own_copy_of_the_shared_methods() -> None:
    """A class hook that takes a method away takes it from its own session's class only;
    boto3's hook still adds its methods; a class's operations are those botocore makes alone;
    and a model document of its own gets methods of its own."""
    import copy

    from botocore import hooks
    from botocore.client import ClientCreator
    from botocore.model import ServiceModel

    from rehearsal.botocore_models import create_methods

    def take_list_buckets(class_attributes: dict[str, object], **_: object) -> None:
        del class_attributes["list_buckets"]

    narrowed = boto3.Session(region_name="eu-west-1")
    narrowed._session.register("creating-client-class.s3", take_list_buckets)
    left = narrowed.client("s3")
    whole = boto3.Session(region_name="eu-west-1").client("s3")
    assert not hasattr(left, "list_buckets") and hasattr(whole, "list_buckets")
    assert hasattr(left, "upload_file") and hasattr(whole, "upload_file")  # boto3's hook
    alone = ClientCreator.__new__(ClientCreator)  # all botocore's own needs is an emitter
    alone._event_emitter = hooks.HierarchicalEmitter()
    model = whole.meta.service_model
    operations = set(create_methods(alone, model))
    assert "list_buckets" in operations and "put_object" in operations
    assert operations == set(whole._PY_TO_OP_NAME) == set(alone._create_methods(model))
    document = copy.deepcopy(model._service_description)
    document["operations"]["ListPails"] = dict(document["operations"]["ListBuckets"])
    pails = alone._create_methods(ServiceModel(document, service_name="s3"))
    assert "list_pails" in pails and "list_pails" not in alone._create_methods(model)


def _resolved(provider: object, params: Mapping[str, object]) -> str:
    """The endpoint a provider resolves, or the error it refuses the parameters with."""
    from botocore.exceptions import EndpointResolutionError

    try:
        return str(provider.resolve_endpoint(**params).url)  # type: ignore[attr-defined]
    except EndpointResolutionError as err:
        return f"refused: {err}"


def test_clients_share_an_endpoint_provider_that_resolves_as_their_own_would() -> None:
    """Two sessions' clients of a service share one provider, whose endpoints are those a
    provider of their own resolves, in each partition; S3's, which leaves some parameters
    out, is not the provider of the same ruleset without them."""
    from botocore import regions
    from botocore.endpoint_provider import S3_UNREFERENCED_PARAMS

    from rehearsal.botocore_models import endpoint_provider

    loader = boto3.Session()._loader
    partitions = loader.load_data("partitions")
    answers: list[str] = []
    for service in ("s3", "iam", "sts"):
        ruleset = loader.load_service_model(service, "endpoint-rule-set-1")
        for region in ("us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"):
            first = boto3.Session(region_name=region).client(service)
            second = boto3.Session(region_name=region).client(service)
            shared = first._ruleset_resolver._provider
            assert shared is second._ruleset_resolver._provider
            own = endpoint_provider(ruleset, partitions)
            for fips in (False, True):
                params = {"Region": region, "UseFIPS": fips, "UseDualStack": False}
                answers.append(_resolved(shared, params))
                assert answers[-1] == _resolved(own, params), (service, region, fips)
    assert any(a.startswith("refused") for a in answers)  # S3 has no FIPS in China
    assert "https://s3.cn-north-1.amazonaws.com.cn" in answers

    s3 = loader.load_service_model("s3", "endpoint-rule-set-1")
    assert regions.EndpointProvider(s3, partitions, S3_UNREFERENCED_PARAMS) is not (
        regions.EndpointProvider(s3, partitions)
    )


def test_the_shared_endpoint_discovery_operation_is_the_models_own() -> None:
    """Per model document, the operation botocore's own search finds (DynamoDB's
    DescribeEndpoints; none for S3), as an operation of the asking model; a document of its
    own, in which another operation discovers endpoints, gets its own answer."""
    import copy

    from botocore.model import ServiceModel

    from rehearsal.botocore_models import find_discovery

    loader = boto3.Session()._loader
    for service, expected in (("dynamodb", "DescribeEndpoints"), ("s3", None), ("iam", None)):
        document = loader.load_service_model(service, "service-2")
        model, alone = ServiceModel(document, service), ServiceModel(document, service)
        found, own = model.endpoint_discovery_operation, find_discovery(alone)
        assert (found and found.name) == (own and own.name) == expected, service
        if found is not None:
            assert found is model.operation_model(expected), "an operation of the asking model"
    s3 = copy.deepcopy(loader.load_service_model("s3", "service-2"))
    s3["operations"]["ListBuckets"] = {**s3["operations"]["ListBuckets"], "endpointoperation": True}
    discovering = ServiceModel(s3, "s3").endpoint_discovery_operation
    assert discovering is not None and discovering.name == "ListBuckets"


def test_the_endpoint_discovery_search_runs_once_per_model_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The property the tests' processes install is the shared one: a second model of the same
    document does not search again, and a model of another document does."""
    import copy

    from botocore.model import ServiceModel

    from rehearsal import botocore_models

    searched: list[str] = []
    search = botocore_models.find_discovery

    def counted(model: ServiceModel) -> Any:
        searched.append(model.service_name)
        return search(model)

    monkeypatch.setattr(botocore_models, "find_discovery", counted)
    document = copy.deepcopy(boto3.Session()._loader.load_service_model("dynamodb", "service-2"))
    first = ServiceModel(document, "dynamodb").endpoint_discovery_operation
    second = ServiceModel(document, "dynamodb").endpoint_discovery_operation
    assert searched == ["dynamodb"], "not shared per document"
    assert first is not None and second is not None and first.name == second.name
    other = ServiceModel(copy.deepcopy(document), "dynamodb").endpoint_discovery_operation
    assert searched == ["dynamodb", "dynamodb"], "another document got this one's answer"
    assert other is not None and other.name == first.name

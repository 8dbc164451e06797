"""botocore's JSON models, parsed once per process instead of once per session.

botocore caches what it loads per session (its Loader). The rehearsal makes a session per
reader and for its roles, and moto makes one for each backend it starts (to list its regions);
the tests make a fresh one per world. Each parsed the S3, IAM, STS, EC2, SSM and endpoint
models again, and listed the 400-odd service directories of botocore's data: a dev-stack
rehearsal spent about 4 s of its 10 s so (bench/README.md). This shares the parsed documents
and the listing across sessions, as one session already shares them across its clients
(botocore hands every client of a session the same object). botocore changes a model as it
uses it, idempotently: tests/rehearsal/test_botocore_models.py shows the shared documents are
those one session would have alone. A loader that merges other extras than botocore's own
parses its own documents: moto's merges operations and error shapes into S3's and EC2's model
for its own use, and merged into the shared documents they would reach every client.

What botocore works out again for every session and client is shared the same way, as pure
functions of what it is asked (`share_botocore_lookups`):
- an event name's alias, which each session's event aliaser otherwise works out again;
- whether an event handler takes **kwargs, which `inspect` otherwise answers at each of the
  hundreds of registrations a session makes;
- the API versions of a service, which each session's loader otherwise lists from disk;
- a client class's methods, one function per operation, made from a model (each class still
  gets its own copy, and botocore's and boto3's class hooks still add to it or take from it);
- the endpoint provider of a ruleset, which each client otherwise parses again, and with it
  the endpoints it has already resolved for the same parameters;
- which operation of a model discovers endpoints (most have none), which each client otherwise
  finds by building a model of each of its service's operations.
The first two were about a third of making a session and its clients, and the next three
about 35% of what was left; the last saves up to 0.5 ms a client (bench/README.md). The one
visible difference: a method's docstring, rendered only by help(), is made with the first
session's event emitter.

The rehearsal (`run_rehearsal`) and the tests' processes (their conftest, the forked aws CLI)
install both. The check itself, which makes few sessions and runs on hosts, leaves botocore
as it is.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

from botocore import hooks, regions
from botocore.client import ClientCreator
from botocore.loaders import JSONFileLoader, Loader
from botocore.model import ServiceModel
from botocore.utils import CachedProperty

parse_file = JSONFileLoader.load_file
list_services = Loader.list_available_services
"""botocore's own, unshared."""
parsed: dict[str, Any] = {}
_listed: dict[tuple[tuple[str, ...], str], list[str]] = {}
_lock = threading.Lock()
accepts_kwargs = hooks.accepts_kwargs
alias_init = hooks.EventAliaser.__init__
"""botocore's own, unshared."""
aliases: dict[str, str] = {}
"""Event name -> its alias under botocore's own EVENT_ALIASES, for every aliaser that has them."""
_takes_kwargs: dict[types.CodeType, bool] = {}
list_versions = Loader.list_api_versions
create_methods = ClientCreator._create_methods
endpoint_provider = regions.EndpointProvider
"""botocore's own, unshared."""
_versions: dict[tuple[tuple[str, ...], str, str], list[str]] = {}
_methods: dict[int, tuple[object, dict[str, Any]]] = {}
"""id(model document) -> (the document, held so that its id stays its own; its methods)."""
_providers: dict[tuple[int, int, frozenset[str]], tuple[object, object, Any]] = {}
"""(id(ruleset), id(partitions), excluded parameters) -> (ruleset, partitions, provider)."""
find_discovery = ServiceModel.__dict__["endpoint_discovery_operation"]._fget
"""botocore's own, unshared."""
_discovery: dict[int, tuple[object, str | None]] = {}
"""id(model document) -> (the document, the name of its endpoint discovery operation)."""


class OwnFileLoader(JSONFileLoader):  # type: ignore[misc]  # botocore has no types
    """Parses each file itself, as botocore does: for a loader with extras of its own."""

    load_file = parse_file


loader_init = Loader.__init__
"""botocore's own."""


def _once(cache: dict[Any, Any], key: Any, make: Callable[[], Any]) -> Any:
    """cache[key], made on first use; two threads may both make it, and the first one kept
    is every caller's answer."""
    if key not in cache:
        made = make()
        with _lock:
            cache.setdefault(key, made)
    return cache[key]


def share_botocore_models() -> None:
    """Patch JSONFileLoader.load_file, once, to parse each model file once per process; and
    share the lookups too (`share_botocore_lookups`)."""
    if getattr(JSONFileLoader.load_file, "shared", False):
        return

    def init(self: Loader, *args: Any, **kwargs: Any) -> None:
        loader_init(self, *args, **kwargs)
        own_extras = self.extras_types != Loader.BUILTIN_EXTRAS_TYPES  # e.g. moto's
        if own_extras and type(self.file_loader) is JSONFileLoader:
            self.file_loader = OwnFileLoader()  # its extras would change the shared documents

    def load_file(self: JSONFileLoader, file_path: str) -> Any:
        return _once(parsed, file_path, lambda: parse_file(self, file_path))

    def list_available_services(self: Loader, type_name: str) -> list[str]:
        key = (tuple(self.search_paths), type_name)
        return list(_once(_listed, key, lambda: list_services(self, type_name)))

    load_file.shared = True  # type: ignore[attr-defined]
    JSONFileLoader.load_file = load_file
    Loader.__init__ = init
    Loader.list_available_services = list_available_services
    share_botocore_lookups()


def _code_of(handler: Callable[..., Any]) -> types.CodeType | None:
    """The code that alone decides whether `handler` takes **kwargs: a plain function's or a
    bound method's, unless a __signature__ overrides it; None for anything else."""
    function = handler.__func__ if isinstance(handler, types.MethodType) else handler
    if not isinstance(function, types.FunctionType) or hasattr(function, "__signature__"):
        return None
    return function.__code__


def share_botocore_lookups() -> None:
    """Patch, once, the lookups the module docstring lists to share their answers."""
    if getattr(hooks.accepts_kwargs, "shared", False):
        return

    def takes_kwargs(handler: Callable[..., Any]) -> bool:
        code = _code_of(handler)
        if code is None:
            return bool(accepts_kwargs(handler))
        return bool(_once(_takes_kwargs, code, lambda: accepts_kwargs(handler)))

    def init(self: hooks.EventAliaser, event_emitter: Any, event_aliases: Any = None) -> None:
        alias_init(self, event_emitter, event_aliases)
        if self._event_aliases == hooks.EVENT_ALIASES:  # a session's, or a copy for a client
            self._alias_name_cache = aliases

    def list_api_versions(self: Loader, service_name: str, type_name: str) -> list[str]:
        key = (tuple(self.search_paths), service_name, type_name)
        return list(_once(_versions, key, lambda: list_versions(self, service_name, type_name)))

    def methods(self: ClientCreator, service_model: Any) -> dict[str, Any]:
        document = service_model._service_description  # one object per process: shared above
        # The entry holds the document, so no other object takes its id.
        entry = _once(
            _methods, id(document), lambda: (document, create_methods(self, service_model))
        )
        return dict(entry[1])  # the class hooks add to it and take from it

    def provider(ruleset_data: Any, partition_data: Any, excluded_params: Any = None) -> Any:
        key = (id(ruleset_data), id(partition_data), frozenset(excluded_params or ()))
        entry = _once(  # the entry holds the documents, so their ids stay theirs
            _providers,
            key,
            lambda: (
                ruleset_data,
                partition_data,
                endpoint_provider(ruleset_data, partition_data, excluded_params),
            ),
        )
        return entry[2]

    def endpoint_discovery_operation(self: ServiceModel) -> Any:
        document = self._service_description

        def name() -> str | None:
            found = find_discovery(self)
            return None if found is None else str(found.name)

        operation = _once(_discovery, id(document), lambda: (document, name()))[1]
        return None if operation is None else self.operation_model(operation)

    takes_kwargs.shared = True  # type: ignore[attr-defined]
    hooks.accepts_kwargs = takes_kwargs
    hooks.EventAliaser.__init__ = init
    Loader.list_api_versions = list_api_versions
    ClientCreator._create_methods = methods
    regions.EndpointProvider = provider
    ServiceModel.endpoint_discovery_operation = CachedProperty(endpoint_discovery_operation)

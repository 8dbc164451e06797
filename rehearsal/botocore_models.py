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

Two lookups botocore repeats for every session and client are shared the same way, as pure
functions of what they are asked (`share_botocore_lookups`): an event name's alias, which each
session's event aliaser otherwise works out again, and whether an event handler takes
**kwargs, which `inspect` otherwise answers at each of the hundreds of registrations a session
makes. They were about a third of making a session and its clients.

The rehearsal (`run_rehearsal`) and the tests' processes (their conftest, the forked aws CLI)
install both. The check itself, which makes few sessions and runs on hosts, leaves botocore
as it is.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

from botocore import hooks
from botocore.loaders import JSONFileLoader, Loader

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


class OwnFileLoader(JSONFileLoader):  # type: ignore[misc]  # botocore has no types
    """Parses each file itself, as botocore does: for a loader with extras of its own."""

    load_file = parse_file


loader_init = Loader.__init__
"""botocore's own."""


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
        if file_path not in parsed:
            data = parse_file(self, file_path)
            with _lock:
                parsed.setdefault(file_path, data)
        return parsed[file_path]

    def list_available_services(self: Loader, type_name: str) -> list[str]:
        key = (tuple(self.search_paths), type_name)
        if key not in _listed:
            names = list_services(self, type_name)
            with _lock:
                _listed.setdefault(key, names)
        return list(_listed[key])

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
    """Patch botocore's event aliaser and its **kwargs check, once, to share their answers."""
    if getattr(hooks.accepts_kwargs, "shared", False):
        return

    def takes_kwargs(handler: Callable[..., Any]) -> bool:
        code = _code_of(handler)
        if code is None:
            return bool(accepts_kwargs(handler))
        if code not in _takes_kwargs:
            _takes_kwargs[code] = bool(accepts_kwargs(handler))
        return _takes_kwargs[code]

    def init(self: hooks.EventAliaser, event_emitter: Any, event_aliases: Any = None) -> None:
        alias_init(self, event_emitter, event_aliases)
        if self._event_aliases == hooks.EVENT_ALIASES:  # a session's, or a copy for a client
            self._alias_name_cache = aliases

    takes_kwargs.shared = True  # type: ignore[attr-defined]
    hooks.accepts_kwargs = takes_kwargs
    hooks.EventAliaser.__init__ = init

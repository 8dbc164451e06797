"""Three caches moto 5.2.5 lacks, which cost the check's hundreds of requests a third of their
time, and a faster draw of EC2's ids; and, for every process that starts moto again and again
(the tests, one `mock_aws` a test), resets that build nothing only to drop it.

Per request, moto rebuilds the URL table of the backend that serves it (for S3 it even reloads
`moto.s3.urls`, in case environment variables changed the URLs) and rebuilds the whole error
lookup of the service model whenever it answers with an error, as every AccessDenied is.
Neither can change while one rehearsal or test runs, so `cached_moto()` computes each once.
Behaviour is unchanged: the same URL patterns and the same error shapes, only remembered.

moto draws each EC2 id one hex digit at a time (a `random.choice` per digit). Each region's
EC2 backend starts by giving each of its 1,301 default AMIs a volume and a snapshot, which
made the draws half of that start (a rehearsal's first EC2 call). `cached_moto()` draws the
same uniform digits in one `getrandbits` from the same generator, so moto's seed
(`/moto-api/seed`) still decides them.

Each EC2 backend parses its region's AMI lists (1,200 entries for us-east-1) from moto's
gzipped JSON; `cached_moto()` parses each file once and gives each backend its own copy of
every entry (moto sets keys in them).

`share_moto_setup()` patches, once per process, what moto does at every stop of its mock (and
at a start after one): its reset runs each backend's own reset, which ends by building the
backend anew (EC2's: 1,300 AMIs or more, each with a volume and a snapshot), and then drops
them all, so that the next start builds them again. The new build is now left out of that
reset alone; the next use builds them, as it did. Two differences from moto's own reset: a
backend that an old reference still holds keeps its data instead of being emptied (nothing of
the project's keeps one across a reset), and the ids drawn after a reset differ from those
unpatched moto draws from the same `/moto-api/seed` (the skipped builds drew from the same
generator; they are still repeatable, and no test of the project seeds and then resets). A
`mock_aws` that touches EC2, IAM and S3 took 343 and 355 ms before, 165 and 170 ms after
(bench/README.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_resources: dict[str, Any] = {}
_lock = threading.Lock()


@contextmanager
def cached_moto() -> Iterator[None]:
    from moto.core import errors
    from moto.core.base_backend import BaseBackend
    from moto.ec2 import utils as ec2_utils
    from moto.ec2.models import amis
    from moto.moto_api._internal import mock_random

    urls_property = BaseBackend.__dict__["urls"]
    factory = errors.ErrorLookupFactory
    url_tables: dict[type, Any] = {}
    lookups: dict[str, Any] = {}

    def urls(backend: Any) -> Any:
        kind = type(backend)
        if kind not in url_tables:
            url_tables[kind] = urls_property.fget(backend)
        return url_tables[kind]

    class CachedErrorLookupFactory(factory):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            super().__init__()
            self._error_lut_cache = lookups  # shared by every instance, so computed once

    def random_resource_id(size: int = 8) -> str:
        return f"{mock_random.getrandbits(4 * size):0{size}x}" if size > 0 else ""

    load = getattr(amis, "load_resource")  # noqa: B009 (moto does not export it)

    def load_resource(resource: str) -> Any:
        if resource not in _resources:
            parsed = load(resource)
            with _lock:
                _resources.setdefault(resource, parsed)
        found = _resources[resource]
        return [dict(entry) for entry in found] if isinstance(found, list) else found

    draw = ec2_utils.random_resource_id
    BaseBackend.urls = property(urls)  # type: ignore[assignment,method-assign]
    errors.ErrorLookupFactory = CachedErrorLookupFactory  # type: ignore[misc]
    ec2_utils.random_resource_id = random_resource_id
    setattr(amis, "load_resource", load_resource)  # noqa: B010
    try:
        yield
    finally:
        BaseBackend.urls = urls_property  # type: ignore[method-assign]
        errors.ErrorLookupFactory = factory  # type: ignore[misc]
        ec2_utils.random_resource_id = draw
        setattr(amis, "load_resource", load)  # noqa: B010


def share_moto_setup() -> None:
    """Patch, once per process, moto's reset so that the backends it drops are not built anew
    first (the module docstring). Each backend's own reset still runs (S3's closes its objects'
    files and frees its bucket names); only the new build at its end is left out."""
    from moto.core import base_backend

    if getattr(base_backend.BaseBackend.reset, "skips_dropped", False):
        return
    rebuild = base_backend.BaseBackend.reset
    drop_all = base_backend.BackendDict.reset
    dropping = threading.local()

    def reset(self: base_backend.BaseBackend) -> None:
        if not getattr(dropping, "now", False):
            rebuild(self)

    def reset_all(cls: type) -> None:
        with base_backend.backend_lock:  # moto's reset takes it too (an RLock)
            dropping.now = True
            try:
                drop_all()  # every backend's reset, then every backend dropped
            finally:
                dropping.now = False

    reset.skips_dropped = True  # type: ignore[attr-defined]
    base_backend.BaseBackend.reset = reset  # type: ignore[method-assign]
    base_backend.BackendDict.reset = classmethod(reset_all)  # type: ignore[method-assign,assignment]

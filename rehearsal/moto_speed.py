"""Two caches moto 5.2.5 lacks, which cost the check's hundreds of requests a third of their time,
and a faster draw of EC2's ids.

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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def cached_moto() -> Iterator[None]:
    from moto.core import errors
    from moto.core.base_backend import BaseBackend
    from moto.ec2 import utils as ec2_utils
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

    draw = ec2_utils.random_resource_id
    BaseBackend.urls = property(urls)  # type: ignore[assignment,method-assign]
    errors.ErrorLookupFactory = CachedErrorLookupFactory  # type: ignore[misc]
    ec2_utils.random_resource_id = random_resource_id
    try:
        yield
    finally:
        BaseBackend.urls = urls_property  # type: ignore[method-assign]
        errors.ErrorLookupFactory = factory  # type: ignore[misc]
        ec2_utils.random_resource_id = draw

"""botocore's JSON models, parsed once per test process instead of once per session.

botocore caches what it loads per session (its Loader), and the check makes a session per run
and per reader, the tests a fresh one per world: so each test parsed the S3, IAM, STS and
endpoint models again, and listed the 400-odd service directories of botocore's data (what
that cost: bench/README.md). This shares the parsed documents and the listing across sessions,
as one session already shares them across its clients (botocore hands every client of a
session the same object). A test speed fixture only: the check, the rehearsal and every
subprocess (the aws CLI) load models as they always do.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.loaders import JSONFileLoader, Loader

parse_file = JSONFileLoader.load_file
list_services = Loader.list_available_services
"""botocore's own, unshared."""
parsed: dict[str, Any] = {}
_listed: dict[tuple[tuple[str, ...], str], list[str]] = {}
_lock = threading.Lock()


def share_botocore_models() -> None:
    """Patch JSONFileLoader.load_file, once, to parse each model file once per process."""
    if getattr(JSONFileLoader.load_file, "shared", False):
        return

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
    Loader.list_available_services = list_available_services

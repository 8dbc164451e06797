"""Benchmark: the post-deploy check against a moto server that adds 200 ms to every request.

Services are checked concurrently, so 8 services should cost little more than 1. Each size gets
a fresh world (built with no latency); only the check itself is timed, with IAM enforced.
Target: 8 services in at most 2.5x the time of one.

    python3 dev.py bench
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
LATENCY_SECONDS = 0.2
SIZES = (1, 8)
TARGET_RATIO = 2.5


class SlowApp:
    """WSGI middleware: every request waits `delay` seconds first, like a far-away endpoint."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.delay = 0.0
        self.requests = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self._lock:
            self.requests += 1
        time.sleep(self.delay)
        return self.app(environ, start_response)


def serve() -> tuple[str, SlowApp]:
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = SlowApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return f"http://{host}:{port}", app


def measure(url: str, app: SlowApp, count: int) -> tuple[float, int]:
    import requests
    from support.check_world import Wiring, build

    from checks.runner import Checker, CheckOptions
    from checks.stack_outputs import parse_outputs
    from rehearsal.moto_rules import aws_iam_rules

    requests.post(f"{url}/moto-api/reset", timeout=10)
    app.delay = 0.0
    world = build(Wiring(services=tuple(f"service-{i}" for i in range(count))))
    targets = parse_outputs(world.outputs, "bench")
    app.delay, app.requests = LATENCY_SECONDS, 0
    with aws_iam_rules():
        start = time.perf_counter()
        report = Checker(world.session(), targets, CheckOptions(wait_seconds=0)).run([])
        seconds = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(f"the check failed on a healthy world: {report.as_json()}")
    return seconds, app.requests


def main() -> int:
    # Fake credentials: the emulator only needs them to be present before any client exists.
    os.environ.update(dict.fromkeys(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), "bench"))
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    url, app = serve()
    os.environ["AWS_ENDPOINT_URL"] = url
    print(f"moto server with {LATENCY_SECONDS * 1000:.0f} ms per request, {os.cpu_count()} cores")
    print(f"{'services':>8} {'requests':>8} {'check s':>8}")
    times = {}
    for count in SIZES:
        seconds, requests = measure(url, app, count)
        times[count] = seconds
        print(f"{count:>8} {requests:>8} {seconds:>8.2f}")
    ratio = times[SIZES[-1]] / times[SIZES[0]]
    verdict = "OK" if ratio <= TARGET_RATIO else "MISSED"
    target = f"target <= {TARGET_RATIO}x"
    print(f"{SIZES[-1]} vs {SIZES[0]} services: {ratio:.2f}x ({target}): {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())

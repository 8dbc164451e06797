"""A real moto server on 127.0.0.1 whose S3 PutObject can misbehave on cue.

The check's cleanup guarantees are about what happens between botocore and S3: an answer lost
after the object was stored, a request that never returns, a signal mid-request. moto itself
cannot do any of that, so a WSGI middleware in front of it does, while moto still stores.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

Fault = Callable[[dict[str, Any], Callable[..., Any], "FaultyApp"], Iterable[bytes] | None]


class FaultyApp:
    """Passes every request to moto; a check PutObject goes through `fault` when one is set."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.fault: Fault | None = None
        self.hang_if: Callable[[dict[str, Any]], bool] | None = None
        self.put_seen = threading.Event()
        self.release = threading.Event()
        self.puts = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.hang_if is not None and self.hang_if(environ):
            self.release.wait(60)  # an endpoint that never answers (until the test ends)
        is_check_put = environ[
            "REQUEST_METHOD"
        ] == "PUT" and "ec2-assume-role-check/" in environ.get("PATH_INFO", "")
        if is_check_put and self.fault is not None:
            self.puts += 1
            answer = self.fault(environ, start_response, self)
            if answer is not None:
                return answer
        return self.app(environ, start_response)


def store_then(
    then: Callable[[FaultyApp, Callable[..., Any]], Iterable[bytes]], times: int = 1
) -> Fault:
    """A fault for the first `times` check puts: let moto store the object, then `then`."""

    def fault(environ: dict[str, Any], start_response: Callable[..., Any], app: FaultyApp) -> Any:
        if app.puts > times:
            return None
        for _ in app.app(environ, lambda *_args, **_kw: None):
            pass  # moto stored it; its answer is dropped
        return then(app, start_response)

    return fault


def answer_500(_app: FaultyApp, start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = b"<Error><Code>InternalError</Code><Message>internal error</Message></Error>"
    start_response("500 Internal Server Error", [("Content-Type", "application/xml")])
    return [body]


def stall(seconds: float) -> Callable[[FaultyApp, Callable[..., Any]], Iterable[bytes]]:
    def then(app: FaultyApp, start_response: Callable[..., Any]) -> Iterable[bytes]:
        app.put_seen.set()
        app.release.wait(seconds)
        return answer_500(app, start_response)

    return then


def stall_then_store(seconds: float) -> Fault:
    """A put that hangs BEFORE moto stores it, until released: a signal that comes now finds
    nothing to delete yet, and the object lands afterwards."""

    def fault(environ: dict[str, Any], start_response: Callable[..., Any], app: FaultyApp) -> Any:
        app.put_seen.set()
        app.release.wait(seconds)
        return app.app(environ, start_response)

    return fault


def serve() -> tuple[str, FaultyApp, Callable[[], None]]:
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = FaultyApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]

    def stop() -> None:
        app.release.set()
        time.sleep(0.05)
        server.shutdown()

    return f"http://{host}:{port}", app, stop

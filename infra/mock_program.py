"""Evaluate this Pulumi program in-process under Pulumi's mock runtime.

The tests, the benchmark and the rehearsal all run `__main__.py` itself this way, each with its
own `pulumi.runtime.Mocks`: recording mocks for unit tests, an emulator-backed one for the
rehearsal. Each run gets a fresh context, so runs do not share a root stack or config.
"""

from __future__ import annotations

import contextvars
import json
import runpy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import resource, settings
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from .settings import NAMESPACE

PROGRAM = Path(__file__).resolve().parent.parent / "__main__.py"


def _config_text(value: Any) -> str:
    """Config values reach a Pulumi program as text: JSON for objects, lowercase booleans."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


@contextmanager
def without_source_positions() -> Iterator[None]:
    """Resources registered meanwhile carry no stack trace: for runs under the mock monitor.

    The SDK walks the whole Python stack at each registration, reading every frame's source
    line and making a URI of its file, so that the engine can show where a resource was
    declared. The mock monitor discards that (it reads neither `stackTrace` nor
    `sourcePosition`), and under pytest the stack is some fifty frames deep: it was about a
    third of the time the tests spent evaluating the program. Nothing else changes. Where the
    SDK has no such function any more, this does nothing (tests/infra/test_program.py notices).
    """
    saved = getattr(resource, "_get_stack_trace", None)
    if saved is None:
        yield
        return
    resource._get_stack_trace = source_pb2.StackTrace  # an empty trace, as for a stackless call
    try:
        yield
    finally:
        resource._get_stack_trace = saved


def evaluate(
    mocks: pulumi.runtime.Mocks,
    config: Mapping[str, Any],
    *,
    stack: str = "dev",
    program: Path = PROGRAM,
    before: Callable[[], None] | None = None,
    secret_keys: Sequence[str] = (),
) -> dict[str, Any]:
    """Run the program with `config` (fully qualified keys, e.g. `aws:region`); return its exports.

    Exceptions from the program, such as a ConfigError, propagate unchanged. `before` runs in
    the program's context just before it, e.g. to register a stack transformation.
    """

    def run() -> dict[str, Any]:
        pulumi.runtime.set_all_config(
            {k: _config_text(v) for k, v in config.items()}, list(secret_keys)
        )
        pulumi.runtime.set_mocks(mocks, project=NAMESPACE, stack=stack, preview=False)
        root = settings.get_root_resource()
        if before is not None:
            before()
        runpy.run_path(str(program), run_name="__main__")
        _sync_await(wait_for_rpcs())
        exports: dict[str, Any] = getattr(root, "outputs", {})
        return {
            name: _sync_await(pulumi.Output.from_input(value).future())
            for name, value in exports.items()
        }

    with without_source_positions():
        return contextvars.Context().run(run)

"""Progress of a long check on stderr: a rich bar on a terminal, plain lines otherwise.

stdout carries only the report, so progress never mixes into `--json`. Short runs show
nothing: the first report comes after `after` seconds, then a plain line every `every`.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any


class Progress:
    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        after: float = 2.0,
        every: float = 5.0,
        quiet: bool = False,
    ) -> None:
        self._quiet = quiet
        self._stream = stream or sys.stderr
        self._after, self._every = after, every
        self._lock = threading.Lock()
        self.services = self.services_total = self.probes = self.probes_total = 0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._bar: Any = None
        self._thread: threading.Thread | None = None

    def start(self, services: int) -> None:
        self.services_total = services
        self._started = time.monotonic()
        if self._quiet:
            return
        self._thread = threading.Thread(target=self._report, daemon=True, name="progress")
        self._thread.start()

    def say(self, what: str) -> None:
        """One line of what the run is doing now, e.g. a long phase beginning (none if quiet)."""
        if not self._quiet:
            print(f"checks: {what}", file=self._stream, flush=True)

    def planned(self, probes: int) -> None:
        with self._lock:
            self.probes_total += probes

    def service_done(self) -> None:
        with self._lock:
            self.services += 1

    def probes_done(self, count: int) -> None:
        with self._lock:
            self.probes += count

    def line(self) -> str:
        with self._lock:
            return (
                f"checks: {self.services}/{self.services_total} services prepared, "
                f"{self.probes}/{self.probes_total} probes done, "
                f"{time.monotonic() - self._started:.0f} s"
            )

    def _report(self) -> None:
        if self._stop.wait(self._after):
            return
        if self._stream.isatty():
            self._rich()
            return
        while True:
            print(self.line(), file=self._stream, flush=True)
            if self._stop.wait(self._every):
                return

    def _rich(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Bar(
            *columns, TimeElapsedColumn(), console=Console(file=self._stream), transient=True
        ) as bar:
            services = bar.add_task("services", total=self.services_total)
            probes = bar.add_task("probes", total=None)
            while not self._stop.wait(0.2):
                with self._lock:
                    bar.update(services, completed=self.services)
                    bar.update(probes, completed=self.probes, total=self.probes_total or None)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)

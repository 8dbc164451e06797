"""Progress on stderr for long work: plain lines where there is no terminal, nothing for a
short run, and never on stdout."""

from __future__ import annotations

import io
import time

from checks.progress import Progress


def test_a_long_run_reports_plain_lines_with_services_and_probes() -> None:
    stream = io.StringIO()
    progress = Progress(stream, after=0.05, every=0.05)
    progress.start(3)
    progress.planned(40)
    progress.service_done()
    progress.probes_done(12)
    # Until the reporter's first line, however busy the machine: a fixed sleep could end first.
    deadline = time.monotonic() + 30
    while "probes done" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines, "a run past `after` must say how far it is"
    assert "checks: 1/3 services prepared, 12/40 probes done" in lines[-1]


def test_a_short_run_says_nothing_and_a_quiet_one_never() -> None:
    stream = io.StringIO()
    short = Progress(stream, after=5)
    short.start(3)
    short.close()
    quiet = Progress(stream, after=0, quiet=True)
    quiet.start(3)
    time.sleep(0.05)
    quiet.close()
    assert stream.getvalue() == ""

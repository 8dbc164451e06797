"""The CLIs under a user's hands: interrupts, stdout that stays machine-readable, and config
read exactly as Pulumi reads it. `python -m checks` and `dev.py` run as real processes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from checks.cli import main

ROOT = Path(__file__).resolve().parents[2]


HANDSHAKE_SECONDS = 60.0
"""How long a test waits for the line that proves the child is where the test means: a
generous bound, only ever reached when something is broken (a busy machine is slow, not
that slow)."""
DEPLOYING = "checks: deploying the program into the emulator"
CHECKING = re.compile(r"checks: \d+/\d+ services prepared, \d+/\d+ probes done")
"""The check's progress line: printed only while its probes run (2 s on, every 5 s)."""
IMPORTED_CHECKS = re.compile(r"import time: .*\|\s*checks$")
"""`python -X importtime`'s line once the `checks` package has been imported (by runpy)."""
IMPORTING_BOTO = re.compile(r"import time: .*\|\s*(boto3|botocore)(\.\S+)?$")
"""... and once a module of boto3's own import is: checks.cli's imports are under way."""


class Child:
    """A process whose stdout and stderr are read in threads as they come, so that a test
    can wait for the stderr line proving the child is in the phase the test means and only
    then signal it: a fixed sleep comes too early or too late on a busy machine."""

    def __init__(self, run: subprocess.Popen[str]) -> None:
        self.run = run
        self._out: list[str] = []
        self._err: list[str] = []
        self._err_closed = False
        self._changed = threading.Condition()
        assert run.stdout is not None and run.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(run.stdout, self._out), daemon=True),
            threading.Thread(target=self._read, args=(run.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._err_closed = self._err_closed or lines is self._err
            self._changed.notify_all()

    def wait_for(self, wanted: Callable[[str], object], what: str) -> str:
        """The first stderr line that `wanted` accepts; the test fails, saying what it waited
        for and what the child said, if the child ends or HANDSHAKE_SECONDS pass first."""
        end = time.monotonic() + HANDSHAKE_SECONDS
        seen = 0
        with self._changed:
            while True:
                for line in self._err[seen:]:
                    if wanted(line.rstrip("\n")):
                        return line.rstrip("\n")
                seen = len(self._err)
                said = "".join(self._err)
                if self._err_closed:  # every line read: the run has ended
                    pytest.fail(f"the run ended before {what}: {said}")
                left = end - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {what} within {HANDSHAKE_SECONDS:.0f} s: {said}")
                self._changed.wait(min(left, 1.0))

    def finish(self, timeout: float = 60) -> tuple[str, str]:
        """Wait for the child's end; all it wrote on stdout and on stderr."""
        self.run.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        with self._changed:
            return "".join(self._out), "".join(self._err)


@contextmanager
def child(command: list[str], cwd: Path, **popen: Any) -> Iterator[Child]:
    """Start `command`; whatever the test's outcome, the process (or the session it leads,
    with start_new_session) is gone afterwards."""
    run = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )
    try:
        yield Child(run)
    finally:
        if run.poll() is None:
            if popen.get("start_new_session"):
                os.killpg(run.pid, signal.SIGKILL)
            else:
                run.kill()
        run.wait(timeout=60)


def stack_file(tmp_path: Path, services: int, extra: str = "") -> Path:
    path = tmp_path / "Pulumi.hands.yaml"
    names = "".join(f"    - name: svc-{i:02d}\n" for i in range(services))
    path.write_text(
        f"config:\n  aws:region: us-east-1\n{extra}  ec2-assume-role:services:\n{names}"
    )
    return path


def test_sigterm_while_deploying_ends_the_rehearsal_with_one_line(tmp_path: Path) -> None:
    """A real process: never a traceback, never exit 0: one line and 143. The signal goes once
    the rehearsal's own progress line says it deploys; the process exits at once however many
    of the mock runtime's threads are still running."""
    config = stack_file(tmp_path, 24)
    command = [sys.executable, "-m", "checks", "--rehearse", "--config-file", str(config)]
    with child([*command, "--json"], ROOT) as run:
        run.wait_for(DEPLOYING.__eq__, "the deploy into the emulator")
        assert run.run.poll() is None, "the rehearsal ended before the signal; make it bigger"
        run.run.send_signal(signal.SIGTERM)
        out, err = run.finish()
    assert run.run.returncode == 143, err
    said = [line for line in err.splitlines() if DEPLOYING not in line]
    assert "Traceback" not in err, err
    assert said == ["checks: interrupted by SIGTERM"], err
    assert out == "", "an interrupted run prints no report"


def test_sigint_while_checking_ends_the_rehearsal_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process: the signal comes from a thread of the run itself, the moment its first
    probes are done, and reaches the main thread wherever it waits, as a Ctrl-C would: one
    line, 130, no report. (Mid-check and mid-put signals to a real `python -m checks`:
    test_faults.py.)"""
    from checks.progress import Progress

    sent: list[int] = []
    done = Progress.probes_done

    def probes_done(self: Progress, count: int) -> None:
        done(self, count)
        if not sent:
            sent.append(count)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Progress, "probes_done", probes_done)
    config = stack_file(tmp_path, 3)
    exit_code = main(["--rehearse", "--config-file", str(config), "--json"])
    out, err = capsys.readouterr()
    assert sent, f"the run never reached its probes: {err}"
    assert exit_code == 130, err
    said = [line for line in err.splitlines() if DEPLOYING not in line]
    assert said == ["checks: interrupted by SIGINT"], err
    assert out == "", "an interrupted run prints no report"


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repository's committed files, with this environment's .venv, so that
    dev.py finds it installed (its stamp matches) and runs at once."""
    clone = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # What this change has not committed yet must be there too, or the test runs old code.
    for path in (
        "checks",
        "rehearsal",
        "infra",
        "__main__.py",
        "dev.py",
        "Pulumi.yaml",
        "Pulumi.dev.yaml",
    ):
        source = ROOT / path
        target = clone / path
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    (clone / ".venv").symlink_to(ROOT / ".venv")
    return clone


def test_dev_py_rehearse_json_prints_only_the_document_on_stdout(fresh_clone: Path) -> None:
    done = subprocess.run(
        [sys.executable, "dev.py", "rehearse", "--json"],
        cwd=fresh_clone,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is True and set(document["services"]) == {
        "service-a",
        "service-b",
        "service-c",
    }
    assert "+ " in done.stderr, "what dev.py runs is said on stderr"


def test_dev_py_first_run_speaks_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Creating .venv and installing say so on stderr only (installs stubbed here)."""
    sys.path.insert(0, str(ROOT))
    import dev

    monkeypatch.setattr(dev, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(dev, "STAMP", tmp_path / ".venv" / ".stamp")
    created: list[Path] = []

    class Builder:
        def __init__(self, **_kwargs: object) -> None:
            pass

        def create(self, path: Path) -> None:
            created.append(path)
            (path / "bin").mkdir(parents=True)
            (path / "bin" / "python").write_text("")

    monkeypatch.setattr(dev.venv, "EnvBuilder", Builder)
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(dev, "_run", lambda *args, **kw: calls.append(args) or 0)
    dev.ensure_env()
    captured = capsys.readouterr()
    assert created and len(calls) == 2
    assert captured.out == "" and "creating .venv/" in captured.err


def test_dev_py_help_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "dev.py"), "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "dev.py test" in done.stdout


@pytest.mark.parametrize("to", ["process-group", "dev.py-alone"])
def test_dev_py_passes_on_an_interrupt_as_the_tools_exit_code(fresh_clone: Path, to: str) -> None:
    """Ctrl-C reaches dev.py and its tool together (one process group); `kill -INT` reaches
    dev.py alone, which passes it on. Either way: one line from the tool, 130, no
    KeyboardInterrupt traceback from dev.py, never a finished run with exit 0."""
    config = stack_file(fresh_clone, 24)
    command = [sys.executable, "dev.py", "rehearse", "--config-file", str(config)]
    with child(command, fresh_clone, start_new_session=True) as run:
        # The tool says so once it deploys: both it and dev.py have their handlers by then.
        run.wait_for(DEPLOYING.__eq__, "the tool's deploy into the emulator")
        if to == "process-group":
            os.killpg(run.run.pid, signal.SIGINT)
        else:
            os.kill(run.run.pid, signal.SIGINT)
        _, err = run.finish()
    assert run.run.returncode == 130, err
    assert (
        "Traceback" not in err and err.strip().splitlines()[-1] == "checks: interrupted by SIGINT"
    )


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--wait", "nan"], "--wait 'nan' must be between"),
        (["--deadline", "inf"], "--deadline 'inf' must be between"),
        (["--sample", "0"], "--sample '0' must be a whole number"),
        (["--rehearse", "--stack", "dev", "--config-file", "x.yaml"], "--stack and --config-file"),
    ],
)
def test_bad_or_conflicting_options_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(argv, capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "  ec2-assume-role:forceDestroy: yes\n",
            "invalid config ec2-assume-role:forceDestroy = 'yes'",
        ),
        ("  ec2-assume-role:topology: on\n", "invalid config ec2-assume-role:topology = 'on'"),
    ],
)
def test_the_rehearsal_reads_yaml_as_pulumi_does(
    tmp_path: Path, extra: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """YAML 1.2, like Pulumi: `yes` and `on` are strings, which the program refuses."""
    code, err = run_cli(
        ["--rehearse", "--config-file", str(stack_file(tmp_path, 1, extra))], capsys
    )
    assert code == 2 and message in err, err


def test_versioning_yes_in_a_service_is_refused_as_pulumi_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "Pulumi.v.yaml"
    path.write_text("config:\n  ec2-assume-role:services:\n    - name: a\n      versioning: yes\n")
    code, err = run_cli(["--rehearse", "--config-file", str(path)], capsys)
    assert code == 2 and "ec2-assume-role:services[0].versioning = 'yes'" in err, err


def test_a_bad_region_and_other_problems_come_together_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(
        "config:\n  aws:region: mars-north-9\n  ec2-assume-role:topolgy: dedicated\n"
        "  ec2-assume-role:services:\n    - name: default\n"
    )
    code, err = run_cli(["--rehearse", "--config-file", str(path)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 3, err
    assert "aws:region = 'mars-north-9'" in err and "did you mean topology?" in err
    assert "services[0].name = 'default'" in err and "Traceback" not in err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_start_up_is_one_line_too(signum: int, code: int) -> None:
    """While Python still imports boto3 (the first ~second), before any handler of the check
    itself: one line and the conventional code, not a KeyboardInterrupt traceback or a bare
    death by signal."""
    # -X importtime says on stderr when each module is imported: the signal goes once a
    # module of boto3's is, so checks.cli's imports are under way.
    command = [sys.executable, "-X", "importtime", "-m", "checks", "--rehearse"]
    with child(command, ROOT) as run:
        run.wait_for(IMPORTING_BOTO.match, "the import of boto3")
        run.run.send_signal(signum)
        out, err = run.finish()
    assert run.run.returncode == code, err
    said = [line for line in err.strip().splitlines() if not line.startswith("import time:")]
    assert said == [f"checks: interrupted by {signal.Signals(signum).name}"], err
    assert out == ""


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_signal_between_the_packages_import_and_its_main_is_one_line(
    signum: int, code: int
) -> None:
    """runpy imports the `checks` package, then runs checks/__main__.py, whose own imports
    (signal, enum) take milliseconds before it can install a handler: a signal in between
    was a KeyboardInterrupt traceback (SIGTERM: a bare death by signal). The package installs
    the handlers itself when it is being run. Thirty runs, each signalled at once after
    `-X importtime` says the package is imported, so each hits that window (or just after)."""
    command = [sys.executable, "-X", "importtime", "-m", "checks", "--outputs", "none.json"]
    name = signal.Signals(signum).name
    for attempt in range(30):
        with child(command, ROOT) as run:
            run.wait_for(IMPORTED_CHECKS.match, "the import of the checks package")
            run.run.send_signal(signum)
            out, err = run.finish()
        said = [line for line in err.splitlines() if not line.startswith("import time:")]
        assert "Traceback" not in err, (attempt, err)
        assert (run.run.returncode, said, out) == (code, [f"checks: interrupted by {name}"], ""), (
            attempt,
            err,
        )


def test_a_signal_the_moment_the_process_starts_is_one_line_or_nothing() -> None:
    """A signal sent the moment the process exists, thirty times: each run ends with the one
    line and 130, or dies of SIGINT having printed nothing (the signal came before Python had
    installed any handler, as it does when sent at once). Between the two lies Python's own
    start-up (site, encodings, runpy) before it runs any code of the project's: there a
    signal is Python's KeyboardInterrupt, which no code of ours can cover."""
    outcomes: list[tuple[int, str, str]] = []
    for _ in range(30):
        run = subprocess.Popen(
            [sys.executable, "-m", "checks", "--outputs", "none.json"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        run.send_signal(signal.SIGINT)  # at once: no reader thread, no sleep before it
        try:
            out, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(timeout=60)
        outcomes.append((run.returncode, out, err))
    assert not [o for o in outcomes if "Traceback" in o[2]], outcomes
    allowed = [(130, "", "checks: interrupted by SIGINT\n"), (-signal.SIGINT, "", "")]
    assert all(outcome in allowed for outcome in outcomes), outcomes


def test_a_finished_run_skips_only_the_teardown_not_its_exit_handlers_or_output() -> None:
    """`python -m checks` ends with os._exit once its report is out (the interpreter's
    teardown took seconds after a rehearsal): the exit handlers still run, in order, and
    what they and the run printed reaches a pipe whole, with the run's exit code."""
    script = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('second handler', flush=False))\n"
        "atexit.register(lambda: print('first handler', file=sys.stderr, flush=False))\n"
        "sys.argv = ['checks', '--outputs', 'none.json']\n"
        "runpy.run_module('checks', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == "second handler\n"
    assert done.stderr.splitlines() == [
        "checks: error: outputs file 'none.json' does not exist",
        "first handler",
    ], done.stderr


LOOK = (
    "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, "
    "signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)"
)
"""Prints `True True` while SIGINT and SIGTERM are as Python starts them."""


@pytest.mark.parametrize(
    "how",
    [
        ["-c", f"import checks; {LOOK}"],
        # Another package run with -m that imports checks: sys.argv[0] is "-m" then too.
        ["-m", "importer"],
    ],
    ids=["import", "imported-by-another-m"],
)
def test_importing_the_package_installs_no_handler(tmp_path: Path, how: list[str]) -> None:
    """Only `python -m checks` installs the start-up handlers: a library import (the tests,
    a program using checks) leaves its signals as they were."""
    (tmp_path / "importer").mkdir()
    (tmp_path / "importer" / "__init__.py").write_text("import checks\n")
    (tmp_path / "importer" / "__main__.py").write_text(f"{LOOK}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    done = subprocess.run(
        [sys.executable, *how], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "True True\n", "")
    # This process imported checks too (as every test does).
    handler = signal.getsignal(signal.SIGTERM)
    assert getattr(handler, "__module__", None) != "checks", handler


def test_a_signal_lost_on_its_way_still_ends_the_run_at_the_next_wait() -> None:
    """Python drops an exception raised inside a finalizer or weakref callback ("Exception
    ignored in ..."); the signal is remembered, and the next wait raises it."""
    from concurrent.futures import Future

    from checks.signals import Interrupted, interrupts
    from checks.work import Deadline, wait_until

    never: Future[None] = Future()
    with pytest.raises(Interrupted), interrupts() as stopped:
        stopped.signal = signal.SIGTERM  # what the handler records before its raise is lost
        wait_until([never], Deadline(30))


def test_a_signal_while_the_report_is_written_waits_for_its_end() -> None:
    """The report goes out whole (a document cut mid-line is worse than none), then the
    signal ends the run as interrupted."""
    from checks.signals import Interrupted, deferred, interrupts

    written: list[str] = []
    with pytest.raises(Interrupted), interrupts() as stopped, deferred():
        # At the main thread, whose handler runs as the call returns: no sleep to wait for it.
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
        assert stopped.signal == signal.SIGTERM, "the handler has run, and only remembered it"
        written.append("the whole report")
    assert written == ["the whole report"] and stopped.signal == signal.SIGTERM


def test_a_region_aws_does_not_have_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """eu-north-9 has the shape of a region; the provider refuses it, and so does the
    rehearsal: one line, exit 2, no emulator traceback."""
    config = tmp_path / "Pulumi.x.yaml"
    config.write_text(
        "config:\n  aws:region: eu-north-9\n  ec2-assume-role:services:\n    - name: a\n"
    )
    code, err = run_cli(["--rehearse", "--config-file", str(config)], capsys)
    assert code == 2 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert "invalid config aws:region = 'eu-north-9': partition aws has no such region" in line


def test_dev_py_bench_stops_at_an_interrupted_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C or SIGTERM during one benchmark ends `dev.py bench`, not just that one."""
    sys.path.insert(0, str(ROOT))
    import dev

    ran: list[str] = []

    def interrupted(*args: object, **_kw: object) -> int:
        ran.append(str(args[1]))
        return 143

    monkeypatch.setattr(dev, "ensure_env", lambda: Path("python"))
    monkeypatch.setattr(dev, "_run", interrupted)
    assert dev.bench([]) == 143
    assert ran == [dev.BENCHMARKS[0]]

"""The CLIs under a user's hands: interrupts, stdout that stays machine-readable, and config
read exactly as Pulumi reads it. `python -m checks` and `dev.py` run as real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checks.cli import main

ROOT = Path(__file__).resolve().parent.parent


def stack_file(tmp_path: Path, services: int, extra: str = "") -> Path:
    path = tmp_path / "Pulumi.hands.yaml"
    names = "".join(f"    - name: svc-{i:02d}\n" for i in range(services))
    path.write_text(
        f"config:\n  aws:region: us-east-1\n{extra}  ec2-assume-role:services:\n{names}"
    )
    return path


@pytest.mark.parametrize(
    ("signum", "code", "after"),
    # SIGTERM mid-check, mid-put and at start-up: test_faults.py and below.
    [(signal.SIGTERM, 143, 1.5), (signal.SIGINT, 130, 4.0)],
    ids=["SIGTERM-while-deploying", "SIGINT-while-checking"],
)
def test_a_signal_anywhere_in_the_rehearsal_ends_it_with_one_line(
    tmp_path: Path, signum: int, code: int, after: float
) -> None:
    """Never a traceback, never exit 0: one line and 128 + the signal's number."""
    config = stack_file(tmp_path, 24)
    run = subprocess.Popen(
        [sys.executable, "-m", "checks", "--rehearse", "--config-file", str(config), "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after)
    assert run.poll() is None, "the rehearsal ended before the signal; make it bigger"
    run.send_signal(signum)
    out, err = run.communicate(timeout=60)
    assert run.returncode == code, err
    said = [line for line in err.splitlines() if "services prepared" not in line]  # progress
    assert "Traceback" not in err, err
    assert said == [f"checks: interrupted by {signal.Signals(signum).name}"], err
    assert out == "", "an interrupted run prints no report"


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repository's committed files, with this environment's .venv, so that
    dev.py finds it installed (its stamp matches) and runs at once."""
    clone = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # What this change has not committed yet must be there too, or the test runs old code.
    for path in ("checks", "infra", "__main__.py", "dev.py", "Pulumi.yaml", "Pulumi.dev.yaml"):
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
    run = subprocess.Popen(
        [sys.executable, "dev.py", "rehearse", "--config-file", str(config)],
        cwd=fresh_clone,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    time.sleep(3)
    if to == "process-group":
        os.killpg(run.pid, signal.SIGINT)
    else:
        os.kill(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
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
    run = subprocess.Popen(
        [sys.executable, "-m", "checks", "--rehearse"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.15)  # the interpreter is up; the check's imports are under way
    run.send_signal(signum)
    out, err = run.communicate(timeout=60)
    assert run.returncode == code, err
    assert err.strip().splitlines() == [f"checks: interrupted by {signal.Signals(signum).name}"]
    assert out == ""


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
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
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

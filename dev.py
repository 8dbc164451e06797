#!/usr/bin/env python3
"""The project's jobs, each one command on a fresh machine that has only Python 3.11+.

    python3 dev.py test       create .venv, install, lint, type-check and run pytest
    python3 dev.py rehearse   create .venv, install, and rehearse the dev stack in an emulator
    python3 dev.py bench      create .venv, install, and run the benchmarks

Arguments after the job name go to the tool it runs (pytest, or `python -m checks --rehearse`).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")
STAMP = VENV / ".requirements.sha256"
BENCHMARKS = (
    "bench/bench_program.py",
    "bench/bench_check.py",
    "bench/bench_rehearsal.py",
    "bench/bench_replacements.py",
    "bench/bench_reach.py",
    "bench/bench_scale.py",
)
WORKFLOWS = ROOT / ".github" / "workflows"
SCHEMA = ("--builtin-schema", "vendor.github-workflows")


def _venv_bin(name: str) -> Path:
    """An executable in .venv (zizmor ships a binary console script, not a Python module)."""
    if os.name == "nt":
        return VENV / "Scripts" / f"{name}.exe"
    return VENV / "bin" / name


def _python() -> Path:
    return _venv_bin("python")


def _shown(arg: str | Path) -> str:
    return os.path.relpath(arg, ROOT) if isinstance(arg, Path) else arg


def _run(*args: str | Path, quiet_stdout: bool = False, env: dict[str, str] | None = None) -> int:
    """Run a tool; its exit code. stdout stays the job's own output (e.g. a --json report):
    what dev.py says, and what installers print, goes to stderr.

    Ctrl-C reaches the tool too (same process group); dev.py waits for it and passes on its
    exit code. A SIGTERM sent to dev.py alone is forwarded to the tool the same way.
    """
    print("+", " ".join(_shown(a) for a in args), file=sys.stderr, flush=True)
    child = subprocess.Popen(  # noqa: S603 (our own tools)
        [str(a) for a in args], cwd=ROOT, stdout=sys.stderr if quiet_stdout else None, env=env
    )

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                # Ctrl-C reaches the whole process group, but `kill -INT <dev.py>` reaches
                # dev.py alone: pass it on (the tools ignore a second one while cleaning up).
                child.send_signal(signal.SIGINT)
                continue  # its exit code tells how it ended
    finally:
        signal.signal(signal.SIGTERM, previous)


def ensure_env() -> Path:
    """Create .venv and install the pinned ranges, unless it already matches the files."""
    if sys.version_info < (3, 11):  # noqa: UP036 (this script must say why on an old Python)
        sys.exit(f"dev.py: Python 3.11 or newer is required, this is {sys.version.split()[0]}")
    digest = hashlib.sha256()
    for name in REQUIREMENTS:
        digest.update((ROOT / name).read_bytes())
    wanted = digest.hexdigest()
    if not _python().exists():
        print(
            f"dev.py: creating {VENV.name}/ (the first run installs for under a minute)",
            file=sys.stderr,
            flush=True,
        )
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        quiet = ("-q", "--disable-pip-version-check")
        pip = (_python(), "-m", "pip", "install", *quiet)
        if _run(*pip, "--upgrade", "pip", quiet_stdout=True) != 0:
            sys.exit("dev.py: upgrading pip failed")
        if _run(*pip, "-r", "requirements-dev.txt", quiet_stdout=True) != 0:
            sys.exit("dev.py: installing requirements-dev.txt failed (see pip's message above)")
        STAMP.write_text(wanted + "\n")
    return _python()


def test(extra: list[str]) -> int:
    python = ensure_env()
    workflows = sorted(str(p.relative_to(ROOT)) for p in WORKFLOWS.glob("*.yml"))
    if not workflows:
        print(f"dev.py test: no workflows in {WORKFLOWS.relative_to(ROOT)}", file=sys.stderr)
        return 1
    checks: list[tuple[str, tuple[str | Path, ...]]] = [
        ("ruff check", (python, "-m", "ruff", "check", ".")),
        ("ruff format", (python, "-m", "ruff", "format", "--check", ".")),
        ("mypy", (python, "-m", "mypy")),
        # The CI workflows: zizmor audits them for security mistakes (offline: it needs no
        # GitHub API), and check-jsonschema validates them against the bundled workflow schema.
        ("zizmor", (_venv_bin("zizmor"), "--offline", "--strict-collection", ".github/workflows")),
        ("check-jsonschema", (python, "-m", "check_jsonschema", *SCHEMA, *workflows)),
    ]
    for label, command in checks:
        if _run(*command) != 0:
            print(f"dev.py test: {label} failed", file=sys.stderr)
            return 1
    # The suite starts four workers and hundreds of Python processes (the aws CLI, `python -m
    # checks`, dev.py itself); with PYTHONDONTWRITEBYTECODE set, each compiles the project's
    # modules (and pytest rewrites every test module) again. The bytecode goes to the
    # __pycache__ directories that .gitignore lists (measured on 2 cores, in a fresh clone:
    # 241 s with it set, 212 s without).
    suite = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = _run(python, "-m", "pytest", *extra, env=suite)
    if code == 5:
        print("dev.py test: pytest collected no tests; that is a failure", file=sys.stderr)
        return 1
    return code


def rehearse(extra: list[str]) -> int:
    return _run(ensure_env(), "-m", "checks", "--rehearse", *extra)


def bench(extra: list[str]) -> int:
    """Every benchmark runs, even after one missed its target; the exit code says if any did."""
    python = ensure_env()
    codes: list[int] = []
    for script in BENCHMARKS:
        code = _run(python, script, *extra)
        codes.append(code)
        if code < 0 or code in (130, 143):  # interrupted: the user wants it over, not more
            return code
    return max(codes, key=abs, default=0)


JOBS = {"test": test, "rehearse": rehearse, "bench": bench}


def _terminated(_signum: int, _frame: object) -> None:
    """SIGTERM while dev.py itself works (creating .venv, between tools): one line, 143."""
    print("dev.py: interrupted by SIGTERM", file=sys.stderr, flush=True)
    raise SystemExit(128 + signal.SIGTERM)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    if argv[:1] in (["-h"], ["--help"], ["help"]):
        print(__doc__)
        return 0
    if not argv or argv[0] not in JOBS:
        print(__doc__, file=sys.stderr)
        print(f"dev.py: name a job: {', '.join(JOBS)}", file=sys.stderr)
        return 2
    try:
        code = JOBS[argv[0]](argv[1:])
    except KeyboardInterrupt:  # Ctrl-C while dev.py itself works (creating .venv, pip)
        print("dev.py: interrupted", file=sys.stderr)
        return 130
    return 128 - code if code < 0 else code  # a tool killed by a signal: 128 + its number


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Post-deploy check: proves who can reach which bucket, and explains every failure.

Run as `python -m checks`, the package installs the start-up signal handlers itself, the
moment runpy imports it: checks/__main__.py could install them only after its own imports
(`signal` alone, and the enum it needs, take milliseconds), and a Ctrl-C in between was a
KeyboardInterrupt traceback, a SIGTERM a bare death by signal. Imported as a library, the
package leaves signals alone. Before runpy imports the package, Python's own start-up is
beyond any code of ours: a signal then ends the process as Python decides.
"""

import os
import sys

TYPE_CHECKING = False  # mypy reads it as true; imports nothing (`typing` takes milliseconds)
if TYPE_CHECKING:
    import signal as _signal
    from types import FrameType
else:
    import _signal  # built in: no import of `signal` and its enum before the handlers

_NAMES: dict[int, str] = {_signal.SIGINT: "SIGINT", _signal.SIGTERM: "SIGTERM"}


def interrupted_at_start_up(signum: int, _frame: "FrameType | None") -> None:
    """A signal while Python still imports boto3 and the rest: nothing has been written
    anywhere yet, so one line and the conventional exit code are the whole of it."""
    sys.stderr.write(f"checks: interrupted by {_NAMES.get(signum, signum)}\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def install_start_up_handlers() -> None:
    """SIGINT and SIGTERM end the process with one line until `checks.signals.interrupts()`
    takes over (from the main thread only, as Python requires)."""
    for signum in _NAMES:
        _signal.signal(signum, interrupted_at_start_up)


def _run_by_python_m() -> bool:
    """True while runpy imports this package to run `python -m checks` (or checks.__main__).

    runpy keeps sys.argv[0] == "-m" until it has found the module to run; so it does for any
    package run with -m, so the module named after -m in sys.orig_argv must be this one.
    """
    if sys.argv[:1] != ["-m"]:
        return False
    args = iter(sys.orig_argv[1:])
    for arg in args:
        if arg == "--check-hash-based-pycs":
            next(args, None)
        elif arg.startswith("--"):
            continue  # --help, --version, ...
        elif arg == "-" or not arg.startswith("-"):
            return False  # a script (or stdin): not run with -m
        else:  # short options, maybe together: -m checks, -mchecks, -Bm checks, -X dev, -Xdev
            for at, flag in enumerate(arg[1:], start=2):
                if flag == "m":
                    module = arg[at:] or next(args, "")
                    return module in (__name__, f"{__name__}.__main__")
                if flag == "c":
                    return False
                if flag in "WX":
                    if not arg[at:]:
                        next(args, None)
                    break
    return False


if _run_by_python_m():
    install_start_up_handlers()

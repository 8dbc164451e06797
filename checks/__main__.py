"""Entry point: `python -m checks --help`, and the `ec2-assume-role-check` command."""

import atexit
import os
import signal
import sys

from checks import install_start_up_handlers


def main() -> None:
    """Run the check and exit with its code (`ec2-assume-role-check` starts here too)."""
    # Already installed by the package as runpy imported it (checks/__init__.py); again here
    # for a run that did not come through `python -m checks` (runpy.run_module, a debugger's
    # launcher, the ec2-assume-role-check script).
    install_start_up_handlers()

    from checks.cli import main as check  # after the handlers: importing takes a second

    code = check()
    # Either way the process ends with os._exit, after its output is flushed:
    # - interrupted, and the cleanup has run: do not wait for threads still blocked in the
    #   network (the Pulumi mock runtime's, a stuck request's), which could take minutes;
    # - done, the report out: what is left is the interpreter's teardown, which frees every
    #   object one by one (2.9 s of a 12.7 s rehearsal, with moto's backends and Pulumi's
    #   modules loaded). The exit handlers still run (logging's flush, temporary
    #   directories' finalizers); only the teardown is skipped.
    if code not in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()

"""Entry point: `python -m checks --help`, and the `ec2-assume-role-check` command."""

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
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        # Interrupted, and the cleanup has run: do not wait for threads still blocked in the
        # network (the Pulumi mock runtime's, a stuck request's), which could take minutes.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()

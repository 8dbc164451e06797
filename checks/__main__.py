"""Entry point: `python -m checks --help`."""

import sys

from checks.cli import main

sys.exit(main())

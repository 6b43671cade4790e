"""`python -m ftcli` runs the same entry point as the `ftcli` script."""

import sys

from ftcli.cli.main import main

sys.exit(main())

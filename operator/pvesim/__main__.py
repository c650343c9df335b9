"""`python -m pvesim` runs the `pvesim` CLI."""

import sys

from pvesim.cli import main

sys.exit(main())

"""``python -m local.preflight``: see ``local/preflight/cli.py``."""

import sys

from local.preflight.cli import main

sys.exit(main())

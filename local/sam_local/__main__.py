"""python -m local.sam_local: see local/sam_local/__init__.py and run.py."""

import sys

from local.sam_local.run import main

sys.exit(main())

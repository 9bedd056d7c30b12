"""The embedded local stack: moto for AWS, Billbee and sevDesk sandboxes, and the runner (architecture.md §6)."""

import sys
from pathlib import Path

# The shared core lives in the Lambda layer's folder; locally it is imported from there, as on AWS from /opt/python.
_CORE = str(Path(__file__).resolve().parents[1] / "layers" / "core")
if _CORE not in sys.path:
    sys.path.insert(0, _CORE)

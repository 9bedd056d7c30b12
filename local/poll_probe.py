"""One PollFunction invocation in a process of its own, measured: what ``make bench`` reports as the poll's time and
peak memory (``tracemalloc`` in this process only: the sandboxes and moto run in the bench's process, not here).

    python -m local.poll_probe [--remaining-ms MS]      # env: what LocalStack.env holds (AWS, sandbox URLs)

Prints one JSON line: ``seconds``, ``peakMiB`` (Python allocations during the handler, imports excluded), the
handler's answer (``summary``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.poll_probe")
    parser.add_argument("--remaining-ms", type=int, default=600_000)
    args = parser.parse_args(argv)
    from local.lambda_sqs import FakeContext
    from local.stack import EVENTS, load_handler

    app = load_handler("poll")
    event = json.loads((EVENTS / "poll_schedule.json").read_text())
    tracemalloc.start()
    started = time.perf_counter()
    answer = app.handler(event, FakeContext("PollFunction", remaining_ms=args.remaining_ms))
    seconds = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"seconds": round(seconds, 2), "peakMiB": round(peak / 2**20, 1), "summary": answer}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

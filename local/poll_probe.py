"""One PollFunction invocation in a process of its own, measured: what ``make bench`` reports as the poll's time and
peak memory (``tracemalloc`` in this process only: the sandboxes and moto run in the bench's process, not here).

    python -m local.poll_probe [--remaining-ms MS]      # env: what LocalStack.env holds (AWS, sandbox URLs)

Prints one JSON line: ``seconds``, ``peakMiB`` (Python allocations during the handler, imports excluded),
``sqsSeconds`` (time in SQS sends: moto's ``SendMessageBatch`` grows with the queue's length, SQS's does not, so the
bench shows the poll's time with and without it) and the handler's answer (``summary``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.poll_probe")
    parser.add_argument("--remaining-ms", type=int, default=600_000)
    args = parser.parse_args(argv)
    import botocore.client

    from local.lambda_sqs import FakeContext
    from local.stack import EVENTS, load_handler

    sqs_seconds = 0.0
    call = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 - untyped botocore internals

    def timed(client: Any, operation: str, params: Any) -> Any:
        nonlocal sqs_seconds
        if operation != "SendMessageBatch":
            return call(client, operation, params)
        began = time.perf_counter()
        try:
            return call(client, operation, params)
        finally:
            sqs_seconds += time.perf_counter() - began

    setattr(botocore.client.BaseClient, "_make_api_call", timed)  # noqa: B010
    app = load_handler("poll")
    event = json.loads((EVENTS / "poll_schedule.json").read_text())
    tracemalloc.start()
    started = time.perf_counter()
    answer = app.handler(event, FakeContext("PollFunction", remaining_ms=args.remaining_ms))
    seconds = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"seconds": round(seconds, 2), "peakMiB": round(peak / 2**20, 1),
                      "sqsSeconds": round(sqs_seconds, 2), "summary": answer}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

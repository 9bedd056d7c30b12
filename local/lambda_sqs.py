"""Lambda's SQS event source, as the local stack emulates it: the events it builds and what it does with a handler's
answer. One emulation, used by ``LocalStack.drain`` (``make run``, real time) and by the fault suite's
``LambdaPoller`` (tests/e2e/chaos.py, a clock moved by hand): they differ only in how they wait.

- a batch of received messages becomes one event of records shaped like ``events/export_sqs.json``;
- the handler answers ``batchItemFailures`` (ReportBatchItemFailures): the other records are deleted, the failed ones
  stay in the queue (invisible for the back-off the handler set on them);
- a handler that dies (an exception escapes) leaves every message of the batch in the queue.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REGION = "eu-central-1"
ACCOUNT = "123456789012"
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class FakeContext:
    """What powertools reads from a Lambda context."""

    function_name: str
    aws_request_id: str = "local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:local"
    remaining_ms: int = 120_000  # the function's timeout (template.yaml: ExportFunction 120 s, PollFunction 600 s)

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def queue_arn(queue_url: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_url.rsplit('/', 1)[-1]}"


def sqs_record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    """The event record Lambda builds from one received SQS message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {"ApproximateReceiveCount": "1"}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn(queue_url),
        "awsRegion": REGION,
    }


def sqs_event(
    bodies: list[str], *, queue_url: str = "ExportQueue-local", message_ids: list[str] | None = None
) -> dict[str, Any]:
    """An event with these raw bodies (not JSON-encoded again, so a malformed body stays malformed)."""
    ids = message_ids or [f"message-{i}-{secrets.token_hex(4)}" for i in range(len(bodies))]
    return {
        "Records": [
            sqs_record({"MessageId": message_id, "ReceiptHandle": f"handle-{message_id}", "Body": body}, queue_url)
            for message_id, body in zip(ids, bodies, strict=True)
        ]
    }


@dataclass
class BatchResult:
    died: bool = False  # an exception escaped the handler: every message comes back
    failed: set[str] = field(default_factory=set)  # message ids the handler reported as failed


def invoke_batch(handler: Handler, messages: list[dict[str, Any]], queue_url: str) -> BatchResult:
    """Invoke the handler with one batch and say which messages stay in the queue. A ``BaseException`` that is not
    an ``Exception`` (the fault suite's ``Killed``: the runtime killing the function) passes through."""
    event = {"Records": [sqs_record(m, queue_url) for m in messages]}
    try:
        result = handler(event, FakeContext("ExportFunction"))
    except Exception:  # noqa: BLE001 - the invocation died: Lambda retries the whole batch later
        return BatchResult(died=True, failed={m["MessageId"] for m in messages})
    return BatchResult(failed={f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])})

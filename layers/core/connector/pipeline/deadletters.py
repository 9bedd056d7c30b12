"""What reached the export queue's dead-letter queue, for the status API: nothing is lost silently.

SQS has no "list" call. A look receives batches of ten with a short visibility timeout, so each receive brings
messages not seen yet, until the queue gives no more (or ``MAX_MESSAGES``); then it makes every one of them visible
again at once, so they stay in the queue for the next look and for a redrive. ``approximateCount`` is SQS's own count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

HIDE_SECONDS = 30  # long enough to page through the queue; every message is made visible again right after
MAX_MESSAGES = 1000  # a look stops here (a dead-letter queue this full needs a redrive, not a list)


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str
    connection_id: str | None  # None: the message was malformed and names no connection
    order_id: int | None


def _parse(message: dict[str, Any]) -> DeadLetter:
    body = message.get("Body") or ""
    connection_id: str | None = None
    order_id: int | None = None
    try:
        data = json.loads(body)
        if isinstance(data, dict):
            connection_id = data.get("connectionId") if isinstance(data.get("connectionId"), str) else None
            order_id = data.get("orderId") if isinstance(data.get("orderId"), int) else None
    except ValueError:
        pass
    return DeadLetter(str(message.get("MessageId")), body[:2000], connection_id, order_id)


def peek_dead_letters(sqs: Any, queue_url: str, *, limit: int = MAX_MESSAGES) -> tuple[int, list[DeadLetter]]:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    approximate = int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0))
    seen: dict[str, DeadLetter] = {}
    handles: list[str] = []
    try:
        while len(seen) < limit:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=HIDE_SECONDS
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                handles.append(message["ReceiptHandle"])
                letter = _parse(message)
                seen.setdefault(letter.message_id, letter)
    finally:
        for start in range(0, len(handles), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                         for i, h in enumerate(handles[start : start + 10])],
            )
    return max(approximate, len(seen)), list(seen.values())[:limit]

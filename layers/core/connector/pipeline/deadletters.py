"""What reached the export queue's dead-letter queue, for the status API: nothing is lost silently.

SQS has no "list" call: the messages are received with a visibility timeout of 0, so they stay in the queue for the
next look (and for a redrive). A look sees at most ``limit`` messages; ``approximateCount`` says how many there are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PEEK_ROUNDS = 5


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


def peek_dead_letters(sqs: Any, queue_url: str, *, limit: int = 50) -> tuple[int, list[DeadLetter]]:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    approximate = int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0))
    seen: dict[str, DeadLetter] = {}
    for _ in range(PEEK_ROUNDS):
        if len(seen) >= min(limit, approximate):
            break
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            letter = _parse(message)
            seen.setdefault(letter.message_id, letter)
    return approximate, list(seen.values())[:limit]

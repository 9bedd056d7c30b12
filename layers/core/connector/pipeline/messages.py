"""The export queue's message: one order of one connection."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connector.observability import logger
from connector.settings.model import CONNECTION_ID_PATTERN


class ExportMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connectionId: str = Field(pattern=CONNECTION_ID_PATTERN)  # noqa: N815 - the wire format
    orderId: int = Field(gt=0)  # noqa: N815
    reason: Literal["poll", "manual", "retry"] = "poll"


class RetryLater(Exception):
    """The order must come back later: a transient failure, or another worker holds its lease."""


def retry_delay(receive_count: int, base: float, cap: float) -> int:
    """Exponential back-off by delivery: base, 2 x base, 4 x base ... (whole seconds, SQS's unit)."""
    return int(min(cap, base * 2 ** max(0, receive_count - 1)) + 0.999)


def delay_message(runtime: Any, record: Any, retry_after: float | None) -> None:
    """Keep a failed message away for its back-off (or for what the failure asked, e.g. a lease's rest or a
    Retry-After) instead of the queue's fixed 720 s visibility. Best effort: if it fails, the queue's timeout holds."""
    config = runtime.config
    try:
        receives = int(record.attributes.approximate_receive_count or 1)
    except (TypeError, ValueError):
        receives = 1
    delay = retry_delay(receives, config.retry_base_seconds, config.retry_max_seconds)
    if retry_after is not None:
        delay = int(min(config.retry_max_seconds, max(1.0, retry_after)) + 0.999)
    try:
        runtime.sqs.change_message_visibility(
            QueueUrl=config.export_queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay
        )
    except Exception as exc:  # noqa: BLE001 - the redelivery still happens, only later
        logger.warning("could not set the retry delay", extra={"error": type(exc).__name__})

"""The export queue: one message per order, sent in batches of ten, for the poll, the manual export and retries.

Each message names its connection as its ``MessageGroupId``: on a standard queue that makes SQS treat connections as
tenants of a fair queue (architecture.md §5, "Fairness"), so a connection with a long backlog is not served before
a quiet one's hourly orders."""

from __future__ import annotations

import json

from connector.observability import logger
from connector.pipeline.runtime import Runtime
from connector.store.dynamo import ConflictError
from connector.store.records import ExportState, OrderRecord

SQS_BATCH = 10


def enqueue_exports(
    runtime: Runtime,
    connection_id: str,
    order_ids: list[int],
    *,
    reason: str,
    records: dict[int, OrderRecord | None] | None = None,
    mark: bool = True,
) -> None:
    """Send one message per order, then mark the PENDING ones as queued (``records``: copies already read).

    A message that could not be sent is not lost: its record stays PENDING without ``enqueuedAt``, and the next poll
    queues it again. ``mark=False``: the caller wrote ``enqueuedAt`` with the record already (the poll, one write
    per order instead of two); a message that could not be sent is then queued again once that is
    ``REQUEUE_AFTER`` old."""
    store = runtime.store
    now = store.clock()
    for start in range(0, len(order_ids), SQS_BATCH):
        batch = order_ids[start : start + SQS_BATCH]
        response = runtime.sqs.send_message_batch(
            QueueUrl=runtime.config.export_queue_url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": json.dumps({"connectionId": connection_id, "orderId": oid, "reason": reason}),
                    # SQS fair queues (standard queues, 2025): the connection is the tenant, so one connection's
                    # backfill of thousands of messages does not hold up another connection's few.
                    "MessageGroupId": connection_id,
                }
                for i, oid in enumerate(batch)
            ],
        )
        failed = {int(entry["Id"]) for entry in response.get("Failed") or []}
        if failed:
            logger.error("some export messages were not queued", extra={"failed": response.get("Failed")})
        for index, order_id in enumerate(batch):
            if index in failed or not mark:
                continue
            record = (records or {}).get(order_id) or store.get_order(connection_id, order_id)
            if record is not None and record.state is ExportState.PENDING:
                record.enqueued_at = now
                try:
                    store.save(record)
                except ConflictError:
                    pass  # an export worker took it already

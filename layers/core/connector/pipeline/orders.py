"""What a person does with one order: retry it, or mark it as booked by hand."""

from __future__ import annotations

from connector.pipeline.queue import enqueue_exports
from connector.pipeline.runtime import Runtime
from connector.store.dynamo import ConflictError
from connector.store.records import ExportState, OrderRecord

RETRYABLE = (ExportState.FAILED, ExportState.NEEDS_ATTENTION)
HANDLEABLE = (ExportState.FAILED, ExportState.NEEDS_ATTENTION, ExportState.SKIPPED)


class NotAllowed(Exception):
    """The order's state does not allow this (the message says why and what is allowed)."""


def retry(runtime: Runtime, record: OrderRecord) -> None:
    """Reset the attempts and queue the order again; it resumes at the step it had reached.

    Raises ``NotAllowed`` for other states, ``ConflictError`` when the record changed meanwhile."""
    if record.state not in RETRYABLE:
        raise NotAllowed(f"order {record.order_id} is {record.state.value}; only FAILED or NEEDS_ATTENTION orders "
                         "can be retried")
    record.state, record.attempts, record.reason = ExportState.PENDING, 0, None
    runtime.store.save(record)
    enqueue_exports(runtime, record.connection_id, [record.order_id], reason="retry")


def mark_handled(runtime: Runtime, record: OrderRecord, *, by: str, note: str) -> None:
    """A bookkeeper booked the order by hand: it leaves the list of orders needing attention for good, stops
    coming back every hour, and keeps who said so, when and why.

    Raises ``NotAllowed`` for an order that was exported (its voucher is in sevDesk) or is being exported."""
    if record.state not in HANDLEABLE:
        raise NotAllowed(f"order {record.order_id} is {record.state.value}; only FAILED, NEEDS_ATTENTION or SKIPPED "
                         "orders can be marked as booked by hand")
    at = runtime.store.clock()
    before = record.reason or record.last_error or record.state.value
    record.handled = {"by": by, "at": at, "note": note, "was": before}
    record.state = ExportState.HANDLED
    record.reason = f"booked by hand, said {by} on {at[:10]}: {note}"
    runtime.store.save(record)


__all__ = ["ConflictError", "NotAllowed", "mark_handled", "retry"]

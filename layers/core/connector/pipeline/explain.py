""""Why was this order not exported?" in plain words, for any order id (the console's question, issue 14).

An order the connector has a record of is explained by that record (its state, reason, last error). An order
without a record is explained by what the poll would decide about it: Billbee does not have it, its data cannot be
read, a filter of the connection leaves it out (``pipeline/filters.py``, the same checks the poll and the export
make), it has no invoice yet, or it matches and the next hourly run picks it up. Pure functions: the record or the
Billbee order in, the explanation out; the route (``api/routes/orders.py``) does the reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connector.billbee.models import Order
from connector.bookkeeping.voucher import is_credit_note
from connector.pipeline.filters import filter_mismatch
from connector.settings.model import ConnectionSettings
from connector.store.records import ExportState, OrderRecord


class Verdict(StrEnum):
    EXPORTED = "exported"  # in sevDesk (or booked by hand): nothing to do
    IN_PROGRESS = "inProgress"  # queued, being exported, or the next hourly run takes it
    NOT_EXPORTED = "notExported"  # not in sevDesk, and the reason says why


@dataclass(frozen=True)
class Explanation:
    verdict: Verdict
    reason: str
    what_to_do: str | None = None


RETRY_OR_HAND = ("fix the cause named in the reason, then press Retry; or book it in sevDesk by hand and mark it "
                 "as booked by hand")
FILTERS = ("change the connection's settings (General tab) if it should be exported every hour, or export it once "
           "with Manual export")
NO_INVOICE = "create the invoice in Billbee; the next hourly run exports it"


def explain_record(record: OrderRecord, *, max_attempts: int) -> Explanation:
    """An order with an export record: what its state means and what a person can do about it."""
    state = record.state
    if state is ExportState.EXPORTED:
        voucher = f" as voucher {record.steps.voucher_id}" if record.steps.voucher_id else ""
        return Explanation(Verdict.EXPORTED, f"exported to sevDesk{voucher}")
    if state is ExportState.HANDLED:
        handled = record.handled or {}
        who = f" by {handled['by']}" if handled.get("by") else ""
        note = f": {handled['note']}" if handled.get("note") else ""
        return Explanation(Verdict.EXPORTED, f"booked in sevDesk by hand{who}{note}")
    if state is ExportState.PENDING:
        return Explanation(Verdict.IN_PROGRESS, "queued for export; the export worker takes it within minutes")
    if state is ExportState.EXPORTING:
        return Explanation(Verdict.IN_PROGRESS, "being exported right now")
    if state is ExportState.FAILED:
        error = record.last_error or "unknown error"
        return Explanation(
            Verdict.NOT_EXPORTED,
            f"the last attempt failed ({record.attempts} of {max_attempts} attempts): {error}",
            "nothing: it is tried again automatically; press Retry to try it now",
        )
    if state is ExportState.NEEDS_ATTENTION:
        return Explanation(Verdict.NOT_EXPORTED, record.reason or record.last_error or "needs attention",
                           RETRY_OR_HAND)
    # SKIPPED: the reason is the poll's or the export's own sentence.
    reason = record.reason or "skipped"
    if "no invoice" in reason:
        return Explanation(Verdict.NOT_EXPORTED, reason, NO_INVOICE)
    if "filter" in reason or "tag" in reason:
        return Explanation(Verdict.NOT_EXPORTED, reason, FILTERS)
    return Explanation(Verdict.NOT_EXPORTED, reason, "export it with Manual export, or mark it as booked by hand")


def explain_unrecorded(order: Order | None, settings: ConnectionSettings, *,
                       unreadable: str | None = None) -> Explanation:
    """An order the connector has no record of: ``order`` as Billbee has it (None: Billbee has no such order), or
    ``unreadable`` naming what in Billbee's data cannot be read."""
    if unreadable is not None:
        return Explanation(Verdict.NOT_EXPORTED, f"Billbee's data for it cannot be read: {unreadable}",
                           "correct the order in Billbee; the next hourly run reads it again")
    if order is None:
        return Explanation(Verdict.NOT_EXPORTED, "Billbee has no order with this id",
                           "check the id: it is Billbee's order id (BillBeeOrderId), not the shop's order number")
    mismatch = filter_mismatch(order, settings, credit_note=is_credit_note(order, None))
    if mismatch is not None:
        return Explanation(Verdict.NOT_EXPORTED, mismatch, FILTERS)
    if not order.has_invoice:
        return Explanation(Verdict.NOT_EXPORTED, "the order has no invoice yet", NO_INVOICE)
    if not settings.enabled:
        return Explanation(Verdict.NOT_EXPORTED, "the connection is disabled: the hourly run skips it",
                           "enable the connection (General tab), or export it with Manual export")
    return Explanation(
        Verdict.IN_PROGRESS,
        "it matches the connection's filters and has an invoice, but was not listed yet; the next hourly run "
        "exports it",
        "wait for the next hourly run, or export it now with Manual export",
    )

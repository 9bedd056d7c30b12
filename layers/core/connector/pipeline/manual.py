"""Manual export of chosen orders, independent of the hourly run (mission.md, "Manual export").

The user chose the orders, so the connection's start date, shop and state filters do not apply; ``onlyUntagged``
skips orders that already carry the export tag, ``setTag: false`` exports without tagging. An order already exported
by this connector is never exported twice.

Why a request answers with a *time budget*: the HTTP API must answer within API Gateway's 29 s, and Billbee allows
2 requests/s per endpoint (``GET /orders/{id}`` included), so checking 500 orders one by one takes over 4 minutes.
Each request therefore

1. sorts out, from DynamoDB alone, the orders this connector already exported or is exporting (no Billbee call);
2. fetches the other orders from Billbee one by one (short timeouts, one retry) while the request's time budget
   lasts and decides each one (``skippedTagged``, ``unknownOrder``, ``skippedNoInvoice``, ``needsAttention`` for an
   order whose data cannot be read);
3. fetches the invoice list (positions: the VAT rate of shipping) once for all the orders to export, not once per
   order (Billbee allows one call per minute per page and ``minInvoiceDate``), writes them as ``PENDING`` records
   carrying the order, the invoice positions, ``setTag`` and ``origin: manual``, and queues them for the export
   worker, which exports them exactly as polled ones (and looks up an invoice this request could not match);
4. answers ``notChecked`` for the orders the budget did not reach (at least one order is always checked, so a caller
   that re-sends the ``resend`` ids until the list is empty always finishes).

So every outcome in the answer is final for that request: nothing is half-queued, and the caller learns at once why an
order was not exported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from connector.billbee.client import BillbeeClient
from connector.billbee.invoices import InvoiceIndex
from connector.billbee.models import InvoiceDetails, Order
from connector.errors import ApiError, AuthError, NotFoundError, UnreadableData
from connector.observability import logger
from connector.pipeline.connection import interactive_clients
from connector.pipeline.queue import enqueue_exports
from connector.pipeline.runtime import Runtime
from connector.store.dynamo import ConflictError, StoredConnection
from connector.store.records import ExportState, OrderRecord, data_hash

MAX_ORDERS_PER_REQUEST = 500
# Seconds a request may spend fetching orders from Billbee. With the per-call limits below, the last call started
# inside the budget ends by about budget + 2 x 4 s + back-off, still inside the function's 29 s.
DEFAULT_TIME_BUDGET_SECONDS = 15.0
# The invoice list is searched this far around the order's invoice date for its positions (shipping VAT rate).
INVOICE_WINDOW = timedelta(minutes=1)


class ManualOutcome(StrEnum):
    QUEUED = "queued"  # written as PENDING and queued for the export worker
    ALREADY_EXPORTED = "alreadyExported"  # this connector exported it before: never twice
    IN_PROGRESS = "inProgress"  # an export worker holds it right now, or it changed while we wrote it
    SKIPPED_TAGGED = "skippedTagged"  # onlyUntagged and the order carries the export tag
    SKIPPED_NO_INVOICE = "skippedNoInvoice"  # the connector never creates a Billbee invoice
    UNKNOWN_ORDER = "unknownOrder"  # Billbee has no such order
    NEEDS_ATTENTION = "needsAttention"  # Billbee's data for it cannot be read; its record says why
    FAILED = "failed"  # Billbee could not be asked (the detail says why); nothing was written
    NOT_CHECKED = "notChecked"  # the request's time budget ran out before this order: send it again


@dataclass
class OrderOutcome:
    order_id: int
    outcome: ManualOutcome
    detail: str | None = None
    voucher_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "orderId": self.order_id,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "voucherId": self.voucher_id,
        }


@dataclass
class ManualExportResult:
    outcomes: list[OrderOutcome] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.outcome.value] = counts.get(outcome.outcome.value, 0) + 1
        return counts

    def ids(self, outcome: ManualOutcome) -> list[int]:
        return [o.order_id for o in self.outcomes if o.outcome is outcome]


def request_manual_export(
    runtime: Runtime,
    stored: StoredConnection,
    order_ids: list[int],
    *,
    set_tag: bool,
    only_untagged: bool,
    time_budget: float = DEFAULT_TIME_BUDGET_SECONDS,
    started: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ManualExportResult:
    """Decide and queue the chosen orders (see the module docstring). ``started`` is when the HTTP request began, on
    ``clock``'s scale, so the budget covers the whole request. Raises ``CredentialsUnavailable`` when the connection's
    secret cannot be read."""
    if len(order_ids) > MAX_ORDERS_PER_REQUEST:
        raise ValueError(f"at most {MAX_ORDERS_PER_REQUEST} order ids per request")
    started = clock() if started is None else started
    settings = stored.settings
    store = runtime.store
    result = ManualExportResult()
    decided: dict[int, OrderOutcome] = {}
    to_check: list[tuple[int, OrderRecord | None]] = []
    for order_id in dict.fromkeys(order_ids):  # each id once, in the caller's order
        record = store.get_order(settings.connection_id, order_id)
        if record is not None and record.state is ExportState.EXPORTED:
            decided[order_id] = OrderOutcome(
                order_id, ManualOutcome.ALREADY_EXPORTED, "exported by this connector before; never exported twice",
                record.steps.voucher_id,
            )
        elif record is not None and record.state is ExportState.HANDLED:
            decided[order_id] = OrderOutcome(
                order_id, ManualOutcome.ALREADY_EXPORTED, f"booked by hand: {record.reason}", record.steps.voucher_id
            )
        elif record is not None and record.state is ExportState.EXPORTING and record.lease_until >= store.epoch():
            decided[order_id] = OrderOutcome(order_id, ManualOutcome.IN_PROGRESS, "an export worker is exporting it")
        else:
            to_check.append((order_id, record))

    queued: list[int] = []
    if to_check:
        credentials = runtime.secrets.get(stored.secret_id)
        with interactive_clients(runtime, settings.connection_id, credentials) as clients:
            checker = _Checker(runtime, stored, clients.billbee, set_tag=set_tag, only_untagged=only_untagged)
            ready: list[tuple[Order, OrderRecord | None]] = []
            broken: str | None = None
            for index, (order_id, record) in enumerate(to_check):
                if broken is not None:
                    decided[order_id] = OrderOutcome(order_id, ManualOutcome.FAILED, broken)
                elif index > 0 and clock() - started > time_budget:
                    decided[order_id] = OrderOutcome(
                        order_id, ManualOutcome.NOT_CHECKED,
                        f"not checked: Billbee allows 2 requests/s, and this request's {time_budget:g} s were used "
                        "up by the orders before it; send this id again",
                    )
                else:
                    try:
                        checked = checker.check(order_id, record)
                    except AuthError as exc:
                        broken = f"Billbee rejected the connection's credentials ({exc}); fix them with PUT"
                        checked = OrderOutcome(order_id, ManualOutcome.FAILED, broken)
                    if isinstance(checked, Order):
                        ready.append((checked, record))
                    else:
                        decided[order_id] = checked
            invoices = checker.invoice_index([order for order, _ in ready], deadline=started + time_budget, clock=clock)
            for order, record in ready:
                found = invoices.find(order)[0] if invoices is not None else None
                decided[order.bill_bee_order_id] = checker.write(order, record, found)
                if decided[order.bill_bee_order_id].outcome is ManualOutcome.QUEUED:
                    queued.append(order.bill_bee_order_id)
    if queued:
        enqueue_exports(runtime, settings.connection_id, queued, reason="manual")
    result.outcomes = [decided[order_id] for order_id in dict.fromkeys(order_ids)]
    return result


class _Checker:
    def __init__(
        self, runtime: Runtime, stored: StoredConnection, billbee: BillbeeClient, *, set_tag: bool, only_untagged: bool
    ) -> None:
        self.store = runtime.store
        self.settings = stored.settings
        self.billbee = billbee
        self.set_tag = set_tag
        self.only_untagged = only_untagged

    def check(self, order_id: int, record: OrderRecord | None) -> OrderOutcome | Order:
        """The order's outcome, or the order itself when it is to be exported."""
        tag = self.settings.export_tag
        try:
            order = self.billbee.get_order(order_id)
        except NotFoundError:
            return OrderOutcome(order_id, ManualOutcome.UNKNOWN_ORDER, f"Billbee has no order {order_id}")
        except AuthError:
            raise
        except UnreadableData as exc:
            return self._set_aside(order_id, record, f"Billbee sent order data the connector cannot read: {exc.detail}")
        except ApiError as exc:
            return OrderOutcome(order_id, ManualOutcome.FAILED, f"Billbee could not be asked: {exc}; try again")
        if order.bill_bee_order_id != order_id:
            return OrderOutcome(
                order_id, ManualOutcome.UNKNOWN_ORDER, f"Billbee answered with another order for {order_id}"
            )
        if self.only_untagged and order.has_tag(tag):
            return OrderOutcome(
                order_id, ManualOutcome.SKIPPED_TAGGED, f"the order carries the tag {tag!r} and onlyUntagged is on"
            )
        if not order.has_invoice:
            return OrderOutcome(
                order_id, ManualOutcome.SKIPPED_NO_INVOICE,
                "the order has no invoice yet; the connector never creates one (Billbee would allocate a number)",
            )
        return order

    def _set_aside(self, order_id: int, record: OrderRecord | None, reason: str) -> OrderOutcome:
        """An order whose data cannot be read gets its own NEEDS_ATTENTION record; the others in the request go on."""
        if record is None:
            record = OrderRecord(
                connection_id=self.settings.connection_id, order_id=order_id, state=ExportState.NEEDS_ATTENTION,
                order={"BillBeeOrderId": order_id}, origin="manual",
            )
        record.state, record.reason = ExportState.NEEDS_ATTENTION, reason
        try:
            if record.version == 0:
                self.store.create_order(record)
            else:
                self.store.save(record)
        except ConflictError:
            pass  # someone else is working on it; the outcome still says why this request could not
        return OrderOutcome(order_id, ManualOutcome.NEEDS_ATTENTION, reason)

    def invoice_index(
        self, orders: list[Order], *, deadline: float, clock: Callable[[], float]
    ) -> InvoiceIndex | None:
        """One invoice-list query for every order of the request, from the oldest invoice date to the newest. It
        stops paging when the request's time is up; an order left unmatched is looked up by its export."""
        dates = [o.invoice_date for o in orders if o.invoice_date is not None]
        if not dates:
            return None
        items: list[InvoiceDetails] = []
        try:
            for item in self.billbee.iter_invoices(min(dates) - INVOICE_WINDOW, max(dates) + INVOICE_WINDOW):
                items.append(item)
                if clock() > deadline:
                    logger.info("manual export: invoice list cut short by the time budget", extra={"items": len(items)})
                    break
        except ApiError as exc:
            # Not fatal: the export worker looks each unmatched invoice up itself.
            logger.warning("manual export: invoice list unavailable", extra={"error": str(exc)})
        return InvoiceIndex(items)

    def write(self, order: Order, record: OrderRecord | None, invoice: InvoiceDetails | None) -> OrderOutcome:
        order_id = order.bill_bee_order_id
        raw = order.model_dump(mode="json", by_alias=True)
        if record is None:
            record = OrderRecord(
                connection_id=self.settings.connection_id, order_id=order_id, state=ExportState.PENDING, order=raw
            )
        if record.state in (ExportState.FAILED, ExportState.NEEDS_ATTENTION):
            record.attempts = 0  # the user asked again, as with retry
        record.state, record.reason = ExportState.PENDING, None
        record.order = raw
        if invoice is not None:
            record.invoice = invoice.model_dump(mode="json", by_alias=True)
            if record.invoice_number is None and invoice.invoice_number:
                record.invoice_number, record.invoice_number_source = invoice.invoice_number, "invoiceList"
        # Chosen by the user: the poll must not skip it for not matching the connection's filters.
        record.origin, record.set_tag = "manual", self.set_tag
        record.data_hash = data_hash(raw, record.invoice)
        try:
            if record.version == 0:
                written = self.store.create_order(record)
            else:
                self.store.save(record)
                written = True
        except ConflictError:
            written = False
        if not written:
            return OrderOutcome(
                order_id, ManualOutcome.IN_PROGRESS, "the order's record changed while it was being queued; try again"
            )
        return OrderOutcome(order_id, ManualOutcome.QUEUED, None, record.steps.voucher_id)

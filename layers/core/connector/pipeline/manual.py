"""Manual export of chosen orders, independent of the hourly run (mission.md, "Manual export").

The user chose the orders, so the connection's start date, shop and state filters do not apply; ``onlyUntagged``
skips orders that already carry the export tag, ``setTag: false`` exports without tagging. An order already exported
by this connector is never exported twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connector.billbee.models import Order
from connector.errors import ApiError, NotFoundError
from connector.pipeline.poll import Poller
from connector.pipeline.runtime import Runtime
from connector.settings.model import ConnectionSettings
from connector.store.dynamo import ConflictError
from connector.store.records import ExportState, OrderRecord, data_hash

MAX_ORDERS_PER_REQUEST = 500


def request_manual_export(
    runtime: Runtime,
    settings: ConnectionSettings,
    secret_id: str,
    order_ids: list[int],
    *,
    set_tag: bool,
    only_untagged: bool,
) -> list[dict[str, Any]]:
    store = runtime.store
    clients = runtime.clients_for(settings.connection_id, runtime.secrets.get(secret_id))
    outcomes: list[dict[str, Any]] = []
    to_queue: list[int] = []
    for order_id in dict.fromkeys(order_ids):  # each id once, in the caller's order
        record = store.get_order(settings.connection_id, order_id)
        if record is not None and record.state in (ExportState.EXPORTED, ExportState.EXPORTING):
            outcomes.append(
                {
                    "orderId": order_id,
                    "outcome": "alreadyExported" if record.state is ExportState.EXPORTED else "inProgress",
                    "voucherId": record.steps.voucher_id,
                }
            )
            continue
        try:
            order = clients.billbee.get_order(order_id)
        except NotFoundError:
            outcomes.append({"orderId": order_id, "outcome": "unknownOrder", "detail": "Billbee has no such order"})
            continue
        except ApiError as exc:
            outcomes.append({"orderId": order_id, "outcome": "failed", "detail": str(exc)})
            continue
        if only_untagged and order.has_tag(settings.export_tag):
            outcomes.append(
                {"orderId": order_id, "outcome": "skippedTagged", "detail": f"already tagged {settings.export_tag!r}"}
            )
            continue
        if not order.has_invoice:
            outcomes.append(
                {"orderId": order_id, "outcome": "skippedNoInvoice", "detail": "the order has no invoice yet"}
            )
            continue
        raw = order.model_dump(mode="json", by_alias=True)
        invoice = _invoice_details(clients.billbee, order)
        if record is None:
            record = OrderRecord(
                connection_id=settings.connection_id, order_id=order_id, state=ExportState.PENDING, order=raw
            )
        record.order, record.invoice, record.state = raw, invoice, ExportState.PENDING
        record.set_tag, record.origin, record.reason = set_tag, "manual", None
        record.invoice_number = order.printed_invoice_number
        record.data_hash = data_hash(raw, invoice)
        try:
            saved = store.create_order(record) if record.version == 0 else (store.save(record) or True)
        except ConflictError:
            saved = False
        if not saved:
            outcomes.append({"orderId": order_id, "outcome": "inProgress", "detail": "changed concurrently"})
            continue
        to_queue.append(order_id)
        outcomes.append({"orderId": order_id, "outcome": "queued"})
    Poller(runtime).enqueue(settings.connection_id, to_queue, reason="manual")
    return outcomes


def _invoice_details(billbee: Any, order: Order) -> dict[str, Any] | None:
    """The invoice-list entry of one order (its positions carry the shipping VAT rate)."""
    if order.invoice_date is None:
        return None
    try:
        invoices = billbee.invoices_since(order.invoice_date - timedelta(seconds=1), order.invoice_date
                                          + timedelta(seconds=1))
    except ApiError:
        return None
    for invoice in invoices:
        if invoice.billbee_id == order.bill_bee_order_id:
            return dict(invoice.model_dump(mode="json", by_alias=True))
    return None

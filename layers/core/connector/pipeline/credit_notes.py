"""Finding a credit note's order and the invoice it reverses in Billbee (billbee-api.md §9).

Which fields Billbee fills is unverified, so each lookup tries every plausible reading and says which one it met
(the caller logs it). The rules that turn a credit note into a voucher are in ``bookkeeping/voucher.py``.
"""

from __future__ import annotations

from typing import Any

from connector.billbee.client import BillbeeClient
from connector.billbee.invoices import printed_number_matches
from connector.billbee.models import InvoiceDetails, Order
from connector.errors import NotFoundError
from connector.store.records import OrderRecord

STORNO_SUFFIX = "-GS"  # "Die Auftragsnummer setzt sich ... aus der Nummer des Ursprungsauftrages plus -GS zusammen"
NO_ORIGINAL = "none (a Gutschrift of its own)"


def order_of_invoice(billbee: BillbeeClient, item: InvoiceDetails) -> Order | None:
    """The order behind an invoice-list item, whichever ``BillbeeId`` reading Billbee follows (the order's id in the
    PHP SDK's fixture, the invoice's own id in the C# SDK's model): by id if that order carries this printed number,
    else by the item's order number."""
    if item.billbee_id is not None:
        try:
            order = billbee.get_order(item.billbee_id)
        except NotFoundError:
            order = None
        if order is not None and printed_number_matches(item.invoice_number, order):
            return order
    if item.order_number:
        order = billbee.find_order_by_number(item.order_number)
        if order is not None and printed_number_matches(item.invoice_number, order):
            return order
    return None


def original_order(billbee: BillbeeClient, credit_note: Order) -> tuple[Order | None, str]:
    """The order a Storno order cancels, and which link found it: Billbee's parent order id; else the order whose
    number the Storno order's number extends with ``-GS``; else ``IsCancelationFor`` read as an order number (the
    spec calls it Shopify's). None: a Gutschrift of its own."""
    parent = credit_note.bill_bee_parent_order_id
    if parent and parent != credit_note.bill_bee_order_id:
        try:
            return billbee.get_order(parent), "BillBeeParentOrderId"
        except NotFoundError:
            pass
    number = credit_note.order_number or ""
    if number.upper().endswith(STORNO_SUFFIX) and len(number) > len(STORNO_SUFFIX):
        found = billbee.find_order_by_number(number[: -len(STORNO_SUFFIX)])
        if found is not None and found.bill_bee_order_id != credit_note.bill_bee_order_id:
            return found, "OrderNumber without -GS"
    if credit_note.is_cancelation_for:
        found = billbee.find_order_by_number(credit_note.is_cancelation_for)
        if found is not None and found.bill_bee_order_id != credit_note.bill_bee_order_id:
            return found, "IsCancelationFor"
    return None, NO_ORIGINAL


def storno_order(billbee: BillbeeClient, order: Order) -> Order | None:
    """The Storno order Billbee numbers after this order (``<number>-GS``), if there is one."""
    if not order.order_number:
        return None
    return billbee.find_order_by_number(order.order_number + STORNO_SUFFIX)


def original_link(original: Order, known: OrderRecord | None) -> dict[str, Any]:
    """What a credit note's record keeps of its original: the order, its printed invoice number, its voucher."""
    return {
        "orderId": original.bill_bee_order_id,
        "invoiceNumber": (known.invoice_number if known else None)
        or (original.printed_invoice_number if original.has_invoice else None),
        "voucherId": known.steps.voucher_id if known else None,
    }

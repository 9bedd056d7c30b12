"""Which invoice belongs to which order, and whether an invoice document is the order's own: pure rules.

The evidence leaves two readings open, and the connector must be right under both (ERRATA Billbee 6; billbee-api.md):
- ``GET /orders/invoices`` items carry ``BillbeeId``: the order id in Billbee's PHP SDK fixture, but the invoice's own
  id in the C# SDK's model. So an item is matched by ``BillbeeId`` only when its printed number is also the order's,
  else by ``OrderNumber``, else by the printed number alone (each unique, or no match).
- ``CreateInvoice`` is the only route to the PDF, and what it does for an order that already has an invoice is
  unconfirmed (billbee-api.md §10.3): it might answer another number. The document is used only when its number is
  the order's and its total is the voucher's.

The printed number (the voucher's duplicate key in sevDesk) is Billbee's own string; prefix + number + postfix is
only a last resort: the php-sdk fixtures print ``RN-2022-0083`` for prefix ``RN-2022-00``, number 83 and postfix
``-xx``, so the postfix is not always printed.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from connector.billbee.models import InvoiceDetails, InvoiceDocument, Order
from connector.money import cents


def printed_number_matches(printed: str | None, order: Order) -> bool:
    """Whether ``printed`` is a rendering of the order's invoice number: its prefix, the number (zero-padding
    allowed), and its postfix if printed. Strict on purpose: a false match could attach another invoice."""
    if not printed or not order.invoice_number:
        return False
    text = printed.strip()
    prefix = order.invoice_number_prefix or ""
    postfix = order.invoice_number_postfix or ""
    if not text.startswith(prefix):
        return False
    text = text[len(prefix) :]
    if postfix and text.endswith(postfix):
        text = text[: -len(postfix)]
    return text.isdigit() and int(text) == order.invoice_number


def is_invoice(details: InvoiceDetails) -> bool:
    return (details.type or "invoice").lower() == "invoice"


class InvoiceIndex:
    """Invoice-list items, looked up by order (``match_invoice`` over many orders without a quadratic scan)."""

    def __init__(self, invoices: Iterable[InvoiceDetails]) -> None:
        # Invoices and credit notes alike: each has its own printed number, which every match checks.
        self.invoices = list(invoices)
        self._by_id: dict[int, list[InvoiceDetails]] = {}
        self._by_order_number: dict[str, list[InvoiceDetails]] = {}
        for item in self.invoices:
            if item.billbee_id is not None:
                self._by_id.setdefault(item.billbee_id, []).append(item)
            if item.order_number:
                self._by_order_number.setdefault(item.order_number, []).append(item)

    def credit_notes(self) -> list[InvoiceDetails]:
        return [i for i in self.invoices if not is_invoice(i)]

    def find(self, order: Order) -> tuple[InvoiceDetails | None, str]:
        """The order's item and how it was found (logged: it tells which reading Billbee showed). An order with a
        negative total (a Storno order) matches only credit notes, any other only invoices."""

        def kind(item: InvoiceDetails) -> bool:
            if order.total_cost is None:
                return True
            return is_invoice(item) is (order.total_cost >= 0)

        for item in self._by_id.get(order.bill_bee_order_id, []):
            if kind(item) and (item.invoice_number is None or printed_number_matches(item.invoice_number, order)):
                return item, "BillbeeId is the order id"
        if order.order_number:
            same = [i for i in self._by_order_number.get(order.order_number, [])
                    if kind(i) and printed_number_matches(i.invoice_number, order)]
            if len(same) == 1:
                return same[0], "OrderNumber and invoice number"
        by_number = [i for i in self.invoices if kind(i) and printed_number_matches(i.invoice_number, order)]
        if len(by_number) == 1:
            return by_number[0], "invoice number"
        return None, "no matching invoice-list item"


def match_invoice(order: Order, invoices: Iterable[InvoiceDetails]) -> tuple[InvoiceDetails | None, str]:
    """The invoice-list item of one order (see ``InvoiceIndex.find``)."""
    return InvoiceIndex(invoices).find(order)


def document_problem(
    document: InvoiceDocument, order: Order, *, invoice_number: str | None, expected_total: Decimal
) -> str | None:
    """Why this ``CreateInvoice`` answer must not be attached to the order's voucher, or None when it may."""
    printed = (document.invoice_number or "").strip()
    if printed:
        if invoice_number is not None and printed != invoice_number:
            return (
                f"Billbee's invoice document is numbered {printed}, but the order's invoice is {invoice_number}; "
                "its PDF was not attached and no voucher was written (check the order's invoices in Billbee)"
            )
        if invoice_number is None and not printed_number_matches(printed, order):
            return (
                f"Billbee's invoice document is numbered {printed}, which is not the order's invoice number "
                f"{order.invoice_number}; its PDF was not attached and no voucher was written"
            )
    if document.total_gross is not None and cents(document.total_gross) != cents(expected_total):
        return (
            f"Billbee's invoice document shows a total of {cents(document.total_gross)}, but the invoice positions "
            f"add up to {cents(expected_total)}; its PDF was not attached and no voucher was written"
        )
    return None

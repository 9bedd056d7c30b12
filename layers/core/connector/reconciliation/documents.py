"""Billbee's invoice-list items, sevDesk's vouchers and the connector's export records as the report's records: pure.

A Billbee document's gross per VAT rate is recomputed from its positions and fees, never taken from ``TotalGross``
alone (ERRATA Billbee 6: the list states it with or without the fees). With the order the connector stored in its
export record, the rules are exactly the export's (``bookkeeping.voucher.gross_by_rate`` and ``fee_amounts``: a
shipping fee listed as 11.996 is the 12.00 the customer was charged), so a voucher the connector wrote matches to the
cent. Without a record the positions and fees count as listed, rounded once per rate, and a fee listed with a
fraction of a cent is noted, because only the order says what was charged.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from connector.billbee.invoices import printed_number_matches
from connector.billbee.models import InvoiceDetails, Order
from connector.bookkeeping.voucher import BookkeepingProblem, gross_by_rate, is_credit_note, tax_rule_for
from connector.money import CENT, ZERO, cents, to_decimal
from connector.reconciliation.report import Amounts, BillbeeDocument, ExportInfo, Kind, SevdeskVoucher, split_gross
from connector.sevdesk.models import RevenueVoucher, VoucherPosition
from connector.store.records import OrderRecord


def _tax_rule(vat_mode: int | None) -> int | None:
    try:
        return tax_rule_for(vat_mode)
    except BookkeepingProblem:
        return None  # VatMode 4 (margin scheme) or 5: no voucher tax rule fits; its totals are kept apart


def _as_listed(invoice: InvoiceDetails) -> dict[Decimal, Decimal]:
    shares: dict[Decimal, Decimal] = {}
    for position in invoice.positions or []:
        rate = position.vat_rate.normalize()
        shares[rate] = shares.get(rate, ZERO) + position.total_gross_value
    for fee in invoice.additional_fees or []:
        rate = fee.vat_rate.normalize()
        shares[rate] = shares.get(rate, ZERO) + fee.gross
    return shares


def billbee_document(invoice: InvoiceDetails, order: Order | None = None) -> BillbeeDocument:
    """An item of ``GET /orders/invoices?includePositions=true`` as the report's document; ``order``: the order the
    connector stored for it, when it has a record."""
    notes: list[str] = []
    credit = is_credit_note(order, invoice) if order is not None else (invoice.type or "").lower() == "creditnote"
    shares: dict[Decimal, Decimal] = {}
    if order is not None:
        try:
            shares = {rate: share.gross for rate, share in gross_by_rate(order, invoice, credit_note=credit).items()}
        except BookkeepingProblem as problem:
            notes.append(f"amounts as listed: {problem.reason}")
            shares = _as_listed(invoice)
    else:
        shares = _as_listed(invoice)
        fractions = [fee for fee in invoice.additional_fees or [] if fee.gross != fee.gross.quantize(CENT)]
        if fractions:
            notes.append(
                "Billbee lists a fee with a fraction of a cent ("
                + ", ".join(f"{fee.type or 'fee'} {fee.gross}" for fee in fractions)
                + ") and the connector has no record of the order to say what was charged: rounded per rate"
            )
    if invoice.positions is None and order is None:
        notes.append("Billbee's invoice list gave no positions for it: its amounts cannot be recomputed")
    rates = {rate: split_gross(gross, rate) for rate, gross in shares.items() if cents(gross) != ZERO}
    total = sum((amounts.gross for amounts in rates.values()), ZERO)
    if invoice.positions is not None:
        positions = cents(sum((p.total_gross_value for p in invoice.positions), ZERO))
        listed = cents(invoice.total_gross)
        if listed not in (total, positions):
            notes.append(f"Billbee's TotalGross {listed} is neither the positions ({positions}) nor positions and "
                         f"fees ({total}) (ERRATA Billbee 6)")
    vat_mode = invoice.vat_mode if invoice.vat_mode is not None else (order.vat_mode if order is not None else None)
    invoice_date = invoice.invoice_date or (order.invoice_date if order is not None else None)
    number = invoice.invoice_number or (order.printed_invoice_number if order is not None else None)
    return BillbeeDocument(
        number=(number or f"(Billbee id {invoice.billbee_id})").strip(),
        kind=Kind.CREDIT_NOTE if credit else Kind.INVOICE,
        invoice_date=invoice_date.date() if invoice_date is not None else None,
        vat_mode=vat_mode,
        tax_rule=_tax_rule(vat_mode),
        rates=rates,
        order_id=order.bill_bee_order_id if order is not None else invoice.billbee_id,
        notes=tuple(notes),
    )


def sevdesk_voucher(voucher: RevenueVoucher, positions: Iterable[VoucherPosition]) -> SevdeskVoucher:
    """A voucher with sevDesk's own net, tax and gross summed per rate of its positions."""
    rates: dict[Decimal, Amounts] = {}
    for position in positions:
        rate = position.tax_rate.normalize()
        amounts = Amounts(cents(position.sum_gross), cents(position.sum_net), cents(position.sum_tax))
        rates[rate] = rates.get(rate, Amounts()) + amounts
    return SevdeskVoucher(
        voucher_id=voucher.id,
        number=(voucher.description or "").strip() or None,
        voucher_date=voucher.voucher_day,
        tax_rule=voucher.tax_rule,
        status=voucher.status,
        paid_amount=to_decimal(voucher.paid_amount),
        rates={rate: amounts for rate, amounts in rates.items() if not amounts.is_zero},
    )


def record_order(record: OrderRecord) -> Order | None:
    """The order an export record stored, or None when it cannot be read (an unreadable order has a record too)."""
    try:
        return Order.model_validate(record.order)
    except ValidationError:
        return None


def record_invoice(record: OrderRecord) -> InvoiceDetails | None:
    if not record.invoice:
        return None
    try:
        return InvoiceDetails.model_validate(record.invoice)
    except ValidationError:
        return None


def export_info(record: OrderRecord, *, with_document: bool = False) -> ExportInfo:
    """What the record says; ``with_document``: also the document as the record holds it (for a voucher of the
    period whose invoice is dated in another period)."""
    order = record_order(record)
    invoice = record_invoice(record)
    invoice_date = (invoice.invoice_date if invoice is not None else None) or (
        order.invoice_date if order is not None else None)
    document = None
    if with_document and invoice is not None:
        document = billbee_document(invoice, order)
    return ExportInfo(
        order_id=record.order_id,
        state=record.state.value,
        reason=record.reason or record.last_error,
        voucher_id=record.steps.voucher_id,
        invoice_date=invoice_date.date() if invoice_date is not None else None,
        document=document,
    )


class RecordIndex:
    """The connection's export records by printed invoice number, and by order id for a record that has no number
    yet (an order invoiced after the last poll)."""

    def __init__(self, records: Iterable[OrderRecord]) -> None:
        self.by_number: dict[str, OrderRecord] = {}
        self.by_order: dict[int, OrderRecord] = {}
        for record in records:
            self.by_order[record.order_id] = record
            if record.invoice_number:
                self.by_number.setdefault(record.invoice_number.strip(), record)

    def find(self, invoice: InvoiceDetails) -> OrderRecord | None:
        number = (invoice.invoice_number or "").strip()
        if number and number in self.by_number:
            return self.by_number[number]
        # BillbeeId is the order id in Billbee's PHP fixture, the invoice's own id in its C# SDK (billbee-api.md
        # §8.3): taken only when that order's invoice number prints as this one.
        record = self.by_order.get(invoice.billbee_id) if invoice.billbee_id is not None else None
        if record is not None and not record.invoice_number:
            order = record_order(record)
            if order is not None and printed_number_matches(number, order):
                return record
        return None


# -- as JSON, for a job kept between requests (job.py) ----------------------------------------------------------------
def _amounts_json(amounts: Amounts) -> list[str]:
    return [str(amounts.gross), str(amounts.net), str(amounts.vat)]


def document_to_json(document: BillbeeDocument) -> dict[str, Any]:
    return {
        "number": document.number, "kind": document.kind.value,
        "invoiceDate": document.invoice_date.isoformat() if document.invoice_date else None,
        "vatMode": document.vat_mode, "taxRule": document.tax_rule, "orderId": document.order_id,
        "rates": {str(rate): _amounts_json(amounts) for rate, amounts in document.rates.items()},
        "notes": list(document.notes),
    }


def document_from_json(data: dict[str, Any]) -> BillbeeDocument:
    return BillbeeDocument(
        number=data["number"], kind=Kind(data["kind"]),
        invoice_date=date.fromisoformat(data["invoiceDate"]) if data.get("invoiceDate") else None,
        vat_mode=data.get("vatMode"), tax_rule=data.get("taxRule"), order_id=data.get("orderId"),
        rates={Decimal(rate): Amounts(*(Decimal(v) for v in values)) for rate, values in data["rates"].items()},
        notes=tuple(data.get("notes") or ()),
    )


def export_to_json(export: ExportInfo) -> dict[str, Any]:
    return {
        "orderId": export.order_id, "state": export.state, "reason": export.reason, "voucherId": export.voucher_id,
        "invoiceDate": export.invoice_date.isoformat() if export.invoice_date else None,
        "document": None if export.document is None else document_to_json(export.document),
    }


def export_from_json(data: dict[str, Any]) -> ExportInfo:
    return ExportInfo(
        order_id=int(data["orderId"]), state=data["state"], reason=data.get("reason"), voucher_id=data.get("voucherId"),
        invoice_date=date.fromisoformat(data["invoiceDate"]) if data.get("invoiceDate") else None,
        document=None if data.get("document") is None else document_from_json(data["document"]),
    )

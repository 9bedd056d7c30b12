"""What Billbee's invoice endpoints would say about an order: the InvoiceApiModel and a stand-in invoice PDF.

Pure functions from a raw Billbee order dict (PascalCase, exactly as ``GET /orders`` returns it) to dicts in the API's
own format; no I/O, so the sandbox and the tests share one computation.

Money rules (sources in ``shared/docs/billbee-api.md`` §6 and ``billbee-pitfalls.md`` #9/#10):
- ``OrderItem.TotalPrice`` is the line's *gross*, already discounted; ``TotalCost`` = items + shipping.
- A line's VAT rate comes from ``TaxIndex`` (0 none, 1 ``TaxRate1``, 2 ``TaxRate2``); ``IsCoupon`` lines are a
  "tax-free payment" (rate 0); no VAT at all unless ``VatMode`` is 0 (1 Kleinunternehmer, 2 intra-EU, 3 export,
  4 margin scheme, whose invoice must not show VAT either; 5 is a sentinel we treat the same).
- Shipping has no rate in the order model. We follow Billbee's common default "shipping follows the main rate": the
  highest rate among the non-coupon items (``AdditionalFees[Type=ShipCost].VatRate`` in the invoice list).
- Decimal arithmetic, rounding half-up. Header nets are rounded from the *unrounded* line nets, which is what
  Billbee's own fixtures show (CreateInvoice ``TotalNet 143.5`` for 133.4118 + 10.084), so they can differ by a cent
  from the sum of the rounded position nets, as on a real Billbee invoice.
- Invoice-list totals have two readings (``totals``; ERRATA Billbee 6). ``"positions"`` (the default) is Billbee's
  own fixture ``php-sdk_get_invoices_response.json`` for the php-sdk order (ShippingCost 12.00 at 19 %):
  ``TotalGross``/``TotalNet`` 158.76/133.41 are the positions only; position totals carry 4 decimals
  (``TotalNetValue`` 133.4118, ``TotalVatAmount`` 25.3482); the ShipCost fee has ``Net`` = exact net in cents (10.08),
  ``VatAmount`` = gross - exact net to 3 decimals (1.916; 4 decimals would give the same here) and ``Gross`` =
  Net + VatAmount (11.996, *not* the 12.00 charged; for about one amount in 20 it is half a cent *above* the charge,
  e.g. 3.85 at 19 % -> 3.24 + 0.615 = 3.855, which rounds to the next cent). ``"with_fees"`` is the other reading
  (totals include the fees, everything in cents, fee ``Gross`` = the amount charged): what the sandbox answered
  before the fixture was read.
- ``CreateInvoice`` totals (``document_totals``) include the fees either way: the php-sdk CreateInvoice fixture says
  170.76/143.5 for the same order.
"""

from __future__ import annotations

import zlib
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

InvoiceTotals = Literal["positions", "with_fees"]
INVOICE_TOTALS: tuple[InvoiceTotals, ...] = ("positions", "with_fees")

CENT = Decimal("0.01")
UNIT = Decimal("0.0001")  # per-unit values carry 4 decimals in Billbee's invoice-list fixture (NetValue 11.1176)
MILLI = Decimal("0.001")  # the fixture's fee VatAmount 1.916 (= 12 - 10.08403)
INT32_MAX = 2**31 - 1


def dec(value: Any) -> Decimal:
    """A JSON number (float, int, str or Decimal) as Decimal; ``str()`` first so 3498.6 stays 3498.6."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> float:
    """JSON has no decimals: the API sends doubles, so do we (after rounding)."""
    return float(value)


def has_invoice(order: dict[str, Any]) -> bool:
    """Billbee has issued an invoice: a number > 0 and a date (``InvoiceNumber`` is null or 0 before; unverified)."""
    number = order.get("InvoiceNumber")
    return isinstance(number, int) and not isinstance(number, bool) and number > 0 and bool(order.get("InvoiceDate"))


def printed_invoice_number(order: dict[str, Any]) -> str:
    """The number as Billbee prints it, in the invoice list and the CreateInvoice answer.

    Billbee's own PHP SDK fixtures print ``RN-2022-0083`` for prefix ``RN-2022-00``, number 83 and postfix ``-xx``
    (both the invoice list and CreateInvoice): prefix + number, without the postfix. That is the strongest evidence
    there is, so the sandbox prints it so; the connector takes Billbee's string as it comes either way and never
    builds the key itself unless Billbee sent none (docs/real-apis.md).
    """
    prefix = order.get("InvoiceNumberPrefix") or ""
    return f"{prefix}{order.get('InvoiceNumber')}"


def is_no_vat(order: dict[str, Any]) -> bool:
    return (order.get("VatMode") or 0) != 0


def item_vat_rate(order: dict[str, Any], item: dict[str, Any]) -> Decimal:
    if is_no_vat(order) or item.get("IsCoupon"):
        return Decimal(0)
    index = item.get("TaxIndex") or 0
    if index == 1:
        return dec(order.get("TaxRate1"))
    if index == 2:
        return dec(order.get("TaxRate2"))
    return Decimal(0)


def shipping_vat_rate(order: dict[str, Any]) -> Decimal:
    """Highest rate of the non-coupon items ("shipping follows the main rate"); 0 without VAT or without items."""
    if is_no_vat(order):
        return Decimal(0)
    rates = [item_vat_rate(order, item) for item in order.get("OrderItems") or [] if not item.get("IsCoupon")]
    return max(rates, default=Decimal(0))


def _net_of(gross: Decimal, rate: Decimal) -> Decimal:
    """Unrounded net contained in a gross amount at ``rate`` percent."""
    return gross / (1 + rate / 100)


def _article_id(product: dict[str, Any] | None) -> int | None:
    """``ArticleBillbeeId`` is int32 in the spec, but article ids are 15-digit int64 values. The php-sdk fixture shows
    58592683 for article 100000058592683, i.e. the id without its 10^14 shard prefix; we mirror that (unverified)."""
    if not product or product.get("BillbeeId") is None:
        return None
    article = int(product["BillbeeId"])
    if article > INT32_MAX:
        article %= 10**14
    return article if article <= INT32_MAX else None


def _customer_number(order: dict[str, Any]) -> int | None:
    customer = order.get("Customer") or {}
    for candidate in (customer.get("Number"), order.get("CustomerNumber")):
        try:
            if candidate is not None and candidate != "":
                return int(candidate)
        except (TypeError, ValueError):
            continue
    return None


def _vat_flags(order: dict[str, Any]) -> dict[str, Any]:
    """Synthetic VatDetectionFlags: the real ones come from Billbee's VAT detection, which we cannot reproduce. The
    merchant is assumed to ship from Germany unless ``DeliverySourceCountryCode`` says otherwise."""
    source = order.get("DeliverySourceCountryCode") or "DE"
    destination = (order.get("ShippingAddress") or {}).get("CountryISO2") or (order.get("InvoiceAddress") or {}).get(
        "CountryISO2"
    )
    same = destination is None or destination == source
    return {
        "ThirdPartyCountry": order.get("VatMode") == 3,
        "SrcCountryIsEqualToDstCountry": same,
        "CustomerHasVatId": bool(order.get("CustomerVatId") or order.get("VatId")),
        "EuDeliveryThresholdExceeded": False,
        "OssEnabled": False,
        "SellerIsRegisteredInDstCountry": same,
        "OrderDistributionCountryIsEmpty": not order.get("DeliverySourceCountryCode"),
        "UserProfileCountryIsEmpty": False,
        "SetIglWhenVatIdIsAvailableEnabled": False,
        "RatesFrom": "destination_country",
        "VatIdFrom": "destination_country",
        "IsDistanceSale": False,
    }


def _fee(fee_type: str, gross: Decimal, rate: Decimal, totals: InvoiceTotals) -> tuple[dict[str, Any], Decimal]:
    """One ``AdditionalFees`` entry and its unrounded net. ``"positions"``: the fixture's 11.996/10.08/1.916 for 12.00
    at 19 % (Gross = Net + VatAmount, so it may miss the charged amount by a few tenths of a cent); ``"with_fees"``:
    Gross is the amount charged, Net in cents and VatAmount the difference."""
    exact_net = _net_of(gross, rate)
    net = cents(exact_net)
    if totals == "positions":
        vat = (gross - exact_net).quantize(MILLI, rounding=ROUND_HALF_UP)
        shown_gross = net + vat
    else:
        vat = gross - net
        shown_gross = gross
    fee = {
        "Type": fee_type,
        "Gross": money(shown_gross),
        "Net": money(net),
        "VatAmount": money(vat),
        "VatRate": money(rate),
    }
    return fee, exact_net


def document_totals(order: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """(TotalGross, TotalNet) of the invoice document, as ``CreateInvoice`` answers them: positions + fees (the php-sdk
    CreateInvoice fixture: 170.76 / 143.5 for the order whose invoice-list totals are 158.76 / 133.41)."""
    invoice = invoice_for(order, totals="with_fees")
    return dec(invoice["TotalGross"]), dec(invoice["TotalNet"])


def invoice_for(order: dict[str, Any], *, totals: InvoiceTotals = "positions") -> dict[str, Any]:
    """The ``GET /orders/invoices`` item (InvoiceApiModel) for an invoiced order, always with Positions and
    AdditionalFees (the sandbox drops them unless ``includePositions=true``). Shape: php-sdk fixture
    ``get_invoices_response.json``. ``totals`` picks the reading (module docstring): ``"positions"`` reproduces the
    fixture (totals without the fees, 4-decimal position totals, 3-decimal fee amounts; positions + fees equal the
    order's ``TotalCost`` once rounded to cents); ``"with_fees"`` has cent amounts and totals equal to ``TotalCost``.
    """
    if totals not in INVOICE_TOTALS:
        raise ValueError(f"totals must be one of {INVOICE_TOTALS}, not {totals!r}")
    line_digits = UNIT if totals == "positions" else CENT
    positions: list[dict[str, Any]] = []
    total_gross = Decimal(0)
    exact_net_total = Decimal(0)
    for number, item in enumerate(order.get("OrderItems") or [], start=1):
        gross = cents(dec(item.get("TotalPrice")))
        rate = item_vat_rate(order, item)
        exact_net = _net_of(gross, rate)
        net = exact_net.quantize(line_digits, rounding=ROUND_HALF_UP)
        quantity = dec(item.get("Quantity"))
        product = item.get("Product") or {}
        positions.append(
            {
                "Position": number,
                "Amount": money(quantity),
                # unit values from the unrounded amounts, as the fixture's NetValue 11.1176 (= 133.41176 / 12)
                "NetValue": money((exact_net / quantity).quantize(UNIT, ROUND_HALF_UP) if quantity else net),
                "TotalNetValue": money(net),
                "GrossValue": money((gross / quantity).quantize(UNIT, ROUND_HALF_UP) if quantity else gross),
                "TotalGrossValue": money(gross),
                "VatRate": money(rate),
                "TotalVatAmount": money(gross - net),
                "RebatePercent": money(dec(item.get("Discount"))),
                "Sku": product.get("SKU"),
                "Title": product.get("Title"),
                "ArticleBillbeeId": _article_id(product),
                "BillbeeId": item.get("BillbeeId"),
            }
        )
        total_gross += gross
        exact_net_total += exact_net

    fees: list[dict[str, Any]] = []
    fee_rate = shipping_vat_rate(order)
    fee_amounts = [("ShipCost", cents(dec(order.get("ShippingCost"))))]
    # Order-level surcharge/discount: not in any fixture, so its fee type name is our guess (unverified).
    fee_amounts.append(("AdjustmentCost", cents(dec(order.get("AdjustmentCost")))))
    charged = total_gross  # positions + fees: the document's total, whatever the list's totals say
    for fee_type, amount in fee_amounts:
        if not amount:
            continue
        fee, exact_net = _fee(fee_type, amount, fee_rate, totals)
        fees.append(fee)
        charged += amount
        if totals == "with_fees":
            total_gross += amount
            exact_net_total += exact_net

    address = order.get("InvoiceAddress") or {}
    customer = order.get("Customer") or {}
    seller = order.get("Seller") or {}
    order_total = dec(order["TotalCost"]) if order.get("TotalCost") is not None else charged
    customer_number = _customer_number(order)
    return {
        "BillbeeId": order.get("BillBeeOrderId"),
        "InvoiceNumber": printed_invoice_number(order),
        # A Storno order or a Gutschrift has negative positions: the invoice list calls it a credit note (docs §9).
        "Type": "creditnote" if order_total < 0 else "invoice",
        "Title": "",
        "Salutation": None,
        "LastName": address.get("LastName"),
        "FirstName": address.get("FirstName"),
        "Company": address.get("Company"),
        "CustomerNumber": customer_number,
        "DebtorNumber": customer_number,
        "InvoiceDate": order.get("InvoiceDate"),
        "TotalNet": money(cents(exact_net_total)),
        "TotalGross": money(total_gross),
        "Currency": order.get("Currency"),
        "PaymentTypeId": order.get("PaymentMethod"),
        "OrderNumber": order.get("OrderNumber"),
        "TransactionId": order.get("PaymentTransactionId"),
        "Email": address.get("Email") or customer.get("Email"),
        "ShopName": seller.get("BillbeeShopName"),
        "Positions": positions,
        "PayDate": order.get("PayedAt"),
        "VatMode": order.get("VatMode") or 0,
        "VatFlags": _vat_flags(order),
        "ShippingCountry": (order.get("ShippingAddress") or {}).get("CountryISO2") or address.get("CountryISO2"),
        "AdditionalFees": fees,
        "MerchantVatId": order.get("MerchantVatId"),
        "CustomerVatId": order.get("CustomerVatId"),
    }


# -- a minimal one-page PDF, written with the stdlib --------------------------------------------------------------


def _pdf_text(text: str) -> bytes:
    """A PDF string literal in WinAnsi (the standard Helvetica encoding), with ( ) \\ escaped."""
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def render_invoice_pdf(order: dict[str, Any]) -> bytes:
    """A small, valid PDF 1.4 standing in for Billbee's invoice: invoice number, date, order and total.

    Deterministic for a given order, so tests can compare bytes and sevDesk-side uploads can be matched.
    """
    total_gross, _ = document_totals(order)
    total = f"{total_gross:.2f} {order.get('Currency') or ''}".strip()
    lines = [
        f"Rechnung {printed_invoice_number(order)}",
        f"Rechnungsdatum: {order.get('InvoiceDate') or ''}",
        f"Auftrag: {order.get('OrderNumber') or order.get('BillBeeOrderId')}",
        f"Gesamtbetrag: {total}",
    ]
    ops = [b"BT", b"/F1 12 Tf", b"16 TL", b"72 770 Td"]
    for line in lines:
        ops += [_pdf_text(line) + b" Tj", b"T*"]
    ops.append(b"ET")
    stream = b"\n".join(ops)
    compressed = zlib.compress(stream)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(compressed) + compressed + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_at)
    return bytes(out)

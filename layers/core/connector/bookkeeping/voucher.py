"""Order -> voucher plan: the bookkeeping rules of docs/bookkeeping.md as pure functions (no I/O).

A Billbee invoice becomes one sevDesk revenue voucher whose gross per VAT rate equals the invoice's, to the cent.
Cases that cannot be booked correctly raise ``BookkeepingProblem`` (the order goes to NEEDS_ATTENTION); nothing is
ever booked approximately.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from connector.billbee.models import InvoiceDetails, InvoiceFee, Order
from connector.money import CENT, ZERO, cents, rate_key
from connector.settings.model import (
    KNOWN_PAYMENT_METHODS,
    ConnectionSettings,
    PaymentReconciliation,
    VoucherDateSource,
)
from connector.sevdesk.models import RevenueAccount

# Billbee VatMode -> sevDesk revenue taxRule (bookkeeping.md, "Tax rule from Billbee's VatMode").
TAX_RULE_BY_VAT_MODE = {0: 1, 1: 11, 2: 3, 3: 2}
VAT_MODE_NAMES = {
    0: "normal, VAT shown",
    1: "Kleinunternehmer §19 UStG",
    2: "intra-EU supply to a business",
    3: "export to a third country",
    4: "margin scheme §25a UStG",
    5: "unknown (Billbee's LastEnumEntry sentinel)",
}
# German VAT rates a taxRule-1 voucher can carry; any other rate on a VatMode-0 invoice is a foreign (OSS) rate.
DOMESTIC_RATES = frozenset({Decimal(0), Decimal(7), Decimal(19)})
ZERO_RATE_RULES = frozenset({2, 11})
FULL_PAYMENT = "FULL_PAYMENT"
PARTIAL_PAYMENT = "N"  # sevDesk's "partial payment" booking type (sevdesk-api.md §5)
# The two readings of the invoice list's TotalGross (ERRATA Billbee 6); which one an invoice met is logged.
TOTAL_WITH_FEES = "TotalGross includes the fees"
TOTAL_POSITIONS_ONLY = "TotalGross is the positions only (fees extra)"
TOTAL_FROM_ORDER = "no invoice positions: the order's items and shipping"


class BookkeepingProblem(Exception):
    """An order that cannot be booked correctly; ``reason`` is written for a bookkeeper."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PlannedPosition:
    account_datev_id: int
    tax_rate: Decimal
    sum_gross: Decimal
    comment: str


@dataclass(frozen=True)
class PlannedPayment:
    key: str  # stable per Billbee payment, so a retry never books it twice
    amount: Decimal
    date: datetime
    check_account_id: int
    payment_method: int | None
    booking_type: str


@dataclass(frozen=True)
class ContactPlan:
    customer_id: int
    customer_number: str
    organisation_name: str | None
    first_name: str | None
    last_name: str | None
    vat_number: str | None
    email: str | None
    street: str | None
    zip: str | None
    city: str | None
    country_code: str | None


@dataclass(frozen=True)
class Original:
    """The invoice a credit note reverses, as far as Billbee lets the connector find it."""

    order_id: int
    invoice_number: str | None
    voucher_id: str | None

    def label(self) -> str:
        text = f"Gutschrift zu Rechnung {self.invoice_number}" if self.invoice_number else "Gutschrift"
        return text + (f" (Beleg {self.voucher_id})" if self.voucher_id else "")


@dataclass(frozen=True)
class VoucherPlan:
    order_id: int
    invoice_number: str
    voucher_date: date
    delivery_date: date
    tax_rule: int
    currency: str
    supplier_name: str
    positions: tuple[PlannedPosition, ...]
    total_gross: Decimal
    payments: tuple[PlannedPayment, ...]
    contact: ContactPlan | None
    notes: tuple[str, ...] = field(default=())
    total_reading: str = ""  # which reading of Billbee's invoice total this invoice met (logged)
    credit_note: bool = False  # a Stornorechnung or Gutschrift: negative positions, refunds as negative bookings
    original: Original | None = None  # the invoice it reverses, when known


@dataclass
class _Share:
    gross: Decimal = ZERO
    kinds: list[str] = field(default_factory=list)

    def add(self, amount: Decimal, kind: str) -> None:
        self.gross += amount
        if kind not in self.kinds:
            self.kinds.append(kind)


def tax_rule_for(vat_mode: int | None) -> int:
    if vat_mode is None:
        vat_mode = 0
    rule = TAX_RULE_BY_VAT_MODE.get(vat_mode)
    if rule is None:
        name = VAT_MODE_NAMES.get(vat_mode, "unknown")
        raise BookkeepingProblem(
            f"Billbee VatMode {vat_mode} ({name}) has no sevDesk voucher tax rule; book this invoice by hand"
        )
    return rule


def fee_amounts(order: Order, invoice: InvoiceDetails) -> list[tuple[InvoiceFee, Decimal]]:
    """Each fee of the invoice list with the amount the customer was charged for it.

    Billbee's SDK fixture lists a shipping cost of 12.00 as a fee of Gross 11.996 (Net 10.08 rounded to the cent plus
    VatAmount 1.916 to three decimals), while the order's TotalCost and CreateInvoice's TotalGross carry 12.00
    (ERRATA Billbee 6). Summing 11.996 per rate and rounding is right for 12.00, but 3.85 would become 3.855 and
    round to 3.86. So a fee that is the order's shipping (or order-level adjustment) within a cent is booked at the
    order's own amount; several fees of one kind are taken to the cent when they add up to it; anything else stays
    as listed, and the totals check names a contradiction."""
    fees = list(invoice.additional_fees or [])
    charged = {"shipcost": order.shipping_cost, "adjustmentcost": order.adjustment_cost}
    amounts: dict[int, Decimal] = {index: fee.gross for index, fee in enumerate(fees)}
    for kind, amount in charged.items():
        indexes = [i for i, fee in enumerate(fees) if (fee.type or "").lower() == kind]
        if not indexes or amount is None:
            continue
        listed = sum((fees[i].gross for i in indexes), ZERO)
        if len(indexes) == 1 and abs(listed - amount) < CENT:
            amounts[indexes[0]] = cents(amount)
        elif sum((cents(fees[i].gross) for i in indexes), ZERO) == cents(amount):
            for i in indexes:
                amounts[i] = cents(fees[i].gross)
    return [(fee, amounts[index]) for index, fee in enumerate(fees)]


def gross_by_rate(
    order: Order, invoice: InvoiceDetails | None, *, credit_note: bool = False
) -> OrderedDict[Decimal, _Share]:
    """The invoice's gross per VAT rate, from Billbee's invoice list when it has positions, else from the order.
    On a credit note the goods are the negative positions (goods taken back), so a position's kind follows the sign
    of the document, not its own.

    The order model has no VAT rate for shipping; the invoice list does (``AdditionalFees[].VatRate``,
    bookkeeping.md "Positions"). Without it, shipping can only be assigned when every item has the same rate.
    """
    shares: OrderedDict[Decimal, _Share] = OrderedDict()

    def add(rate: Decimal, amount: Decimal, kind: str) -> None:
        shares.setdefault(rate.normalize(), _Share()).add(amount, kind)

    if invoice is not None and invoice.positions is not None:
        for position in invoice.positions:
            goods = position.total_gross_value <= 0 if credit_note else position.total_gross_value >= 0
            kind = "Waren" if goods else "Rabatt"
            add(position.vat_rate, position.total_gross_value, kind)
        for fee, amount in fee_amounts(order, invoice):
            fee_kind = "Versand" if (fee.type or "").lower() == "shipcost" else (fee.type or "Gebühr")
            add(fee.vat_rate, amount, fee_kind)
        return shares

    no_vat = (order.vat_mode or 0) != 0
    item_rates: set[Decimal] = set()
    for item in order.order_items:
        if item.is_coupon:
            # "coupon, interpreted as tax-free payment" (Billbee spec): booked at 0 % as the invoice shows it.
            add(ZERO, item.total_price, "Gutschein")
            continue
        rate = ZERO if no_vat else order.rate_for_tax_index(item.tax_index)
        item_rates.add(rate.normalize())
        add(rate, item.total_price, "Waren")
    if order.shipping_cost:
        if len(item_rates) != 1:
            raise BookkeepingProblem(
                "the VAT rate of the shipping costs is unknown: Billbee's invoice list has no positions for this "
                "invoice and the items carry different rates"
            )
        add(next(iter(item_rates)), order.shipping_cost, "Versand")
    if order.adjustment_cost:
        raise BookkeepingProblem(
            "the order has an order-level adjustment whose VAT rate is unknown without Billbee's invoice positions"
        )
    return shares


def invoice_total(
    order: Order, invoice: InvoiceDetails | None, shares: OrderedDict[Decimal, _Share]
) -> tuple[Decimal, str]:
    """The voucher total: the invoice's gross per rate, each rounded to the cent as the invoice shows it, checked
    against Billbee's invoice total under both readings of ``TotalGross`` (with or without the fees; ERRATA Billbee 6)
    and against the order's ``TotalCost``. Any contradiction is named, never booked approximately."""
    total = sum((cents(share.gross) for share in shares.values()), ZERO)
    currency = order.currency or "EUR"
    reading = TOTAL_FROM_ORDER
    if invoice is not None and invoice.positions is not None:
        positions = cents(sum((p.total_gross_value for p in invoice.positions), ZERO))
        listed = cents(invoice.total_gross)
        readings = [name for name, value in ((TOTAL_WITH_FEES, total), (TOTAL_POSITIONS_ONLY, positions))
                    if value == listed]
        if not readings:
            raise BookkeepingProblem(
                f"the invoice positions add up to {positions} {currency} and with the fees to {total} {currency}, "
                f"but Billbee's invoice total is {listed} {currency}"
            )
        reading = readings[0] if len(readings) == 1 else "no fees: both readings agree"
    elif invoice is not None and invoice.total_gross and cents(invoice.total_gross) != total:
        raise BookkeepingProblem(
            f"the order's items and shipping add up to {total} {currency}, but Billbee's invoice total is "
            f"{cents(invoice.total_gross)} {currency}"
        )
    if order.total_cost is not None and cents(order.total_cost) != total:
        raise BookkeepingProblem(
            f"the invoice adds up to {total} {currency}, but the order's total (TotalCost) is "
            f"{cents(order.total_cost)} {currency}; the order and its invoice contradict each other"
        )
    return total, reading


def is_credit_note(order: Order, invoice: InvoiceDetails | None) -> bool:
    """A Stornorechnung or Gutschrift: Billbee's invoice list says ``creditnote``, or the order's total is negative
    (a Storno order carries negated quantities and amounts; billbee-api.md §9)."""
    if invoice is not None and (invoice.type or "").lower() == "creditnote":
        return True
    return order.total_cost is not None and order.total_cost < ZERO


def plan_voucher(
    order: Order,
    invoice: InvoiceDetails | None,
    settings: ConnectionSettings,
    *,
    invoice_number: str | None = None,
    original: Original | None = None,
) -> VoucherPlan:
    """The voucher, payments and contact that reproduce this order's Billbee invoice. ``invoice_number`` is the
    printed number fixed for this order (the voucher's duplicate key); without it, the invoice list's string, and
    prefix + number + postfix only as the last resort.

    A credit note becomes a revenue voucher of its own (sevDesk 2.0 has no credit notes for vouchers,
    sevdesk-pitfalls #13): the same tax rule and revenue account per rate as an invoice, the credit note's negative
    gross per rate, its own number as the duplicate key, the invoice it reverses named in every position; refunds
    Billbee records are booked as negative amounts (``original``: that invoice, when known)."""
    if not order.has_invoice:
        raise BookkeepingProblem("the order has no invoice yet")
    currency = (order.currency or (invoice.currency if invoice else None) or "EUR").upper()
    if currency != "EUR":
        raise BookkeepingProblem(
            f"the invoice is in {currency}; foreign-currency vouchers need an exchange rate the connector does not "
            "have yet (sevdesk-api.md §11); book it by hand"
        )
    tax_rule = tax_rule_for(order.vat_mode)
    credit = is_credit_note(order, invoice)
    shares = gross_by_rate(order, invoice, credit_note=credit)
    total, reading = invoice_total(order, invoice, shares)
    if credit and total >= ZERO:
        raise BookkeepingProblem(
            f"Billbee calls this invoice a credit note, but it adds up to {total} {currency}; a credit note reverses "
            "an amount, so its total must be negative"
        )
    if not credit and total < ZERO:
        raise BookkeepingProblem(f"the invoice adds up to {total} {currency}, a negative amount, but is no credit note")
    positions: list[PlannedPosition] = []
    for rate, share in shares.items():
        if cents(share.gross) == ZERO:
            continue  # free shipping must not leave a stray 0.00 line (peers-and-user-pains.md §3.8)
        if tax_rule == 1 and rate not in DOMESTIC_RATES:
            raise BookkeepingProblem(
                f"the invoice carries {rate_key(rate)} % VAT, a foreign EU rate (OSS distance sale); sevDesk accepts "
                "OSS tax rules only on invoices, not on vouchers"
            )
        if tax_rule in ZERO_RATE_RULES and rate != ZERO:
            raise BookkeepingProblem(
                f"the invoice shows {rate_key(rate)} % VAT although its VatMode ({VAT_MODE_NAMES[order.vat_mode or 0]})"
                " is VAT-free"
            )
        account = settings.accounts.revenue_account_for(tax_rule, rate)
        if account is None:
            raise BookkeepingProblem(
                f"no revenue account is mapped for tax rule {tax_rule} at {rate_key(rate)} %; add it to the "
                "connection's revenue accounts"
            )
        comment = f"{' und '.join(share.kinds)} {rate_key(rate)} %"
        if credit:
            comment = f"{original.label() if original else 'Gutschrift'}: {comment}"
        positions.append(PlannedPosition(account, rate, cents(share.gross), comment))
    if not positions:
        raise BookkeepingProblem("the invoice has no amount to book (every position is 0.00)")

    notes: list[str] = []
    invoice_date = (invoice.invoice_date if invoice and invoice.invoice_date else None) or order.invoice_date
    assert invoice_date is not None  # has_invoice
    voucher_date = _voucher_date(order, settings.sevdesk.voucher_date, invoice_date, notes)
    delivery_date = (order.shipped_at or invoice_date).date()
    if credit:
        payments = _plan_refunds(order, settings, total, invoice_date, notes)
        if original is None:
            notes.append("credit note: Billbee names no original invoice for it (a Gutschrift); booked on its own")
    else:
        payments = _plan_payments(order, settings, total, invoice_date, notes)
    return VoucherPlan(
        order_id=order.bill_bee_order_id,
        invoice_number=invoice_number
        or (invoice.invoice_number if invoice and invoice.invoice_number else None)
        or order.printed_invoice_number,
        voucher_date=voucher_date,
        delivery_date=delivery_date,
        tax_rule=tax_rule,
        currency=currency,
        supplier_name=supplier_name(order),
        positions=tuple(positions),
        total_gross=total,
        payments=tuple(payments),
        contact=plan_contact(order) if settings.sevdesk.create_contacts else None,
        notes=tuple(notes),
        total_reading=reading,
        credit_note=credit,
        original=original,
    )


def _voucher_date(order: Order, source: VoucherDateSource, invoice_date: datetime, notes: list[str]) -> date:
    if source is VoucherDateSource.INVOICE:
        return invoice_date.date()
    if source is VoucherDateSource.PAYMENT:
        pay_dates = [p.pay_date for p in order.payments if p.pay_date is not None and p.pay_value > 0]
        paid = min(pay_dates) if pay_dates else order.payed_at
        if paid is None:
            notes.append("voucher date: the order has no payment date yet, so the invoice date was used")
            return invoice_date.date()
        return paid.date()
    if order.created_at is None:
        notes.append("voucher date: the order has no order date, so the invoice date was used")
        return invoice_date.date()
    return order.created_at.date()


def _plan_payments(
    order: Order, settings: ConnectionSettings, total: Decimal, invoice_date: datetime, notes: list[str]
) -> list[PlannedPayment]:
    """One booking per Billbee payment, in Billbee's order, never more than the invoice total; the booking that
    brings the paid sum up to the total is ``FULL_PAYMENT``, the others partial. Whatever is not booked is said."""
    if settings.sevdesk.payment_reconciliation is PaymentReconciliation.SEVDESK:
        return []  # the voucher stays open for sevDesk's own bank matching
    currency = order.currency or "EUR"
    received: list[tuple[str, Decimal, datetime, int | None]] = []
    for index, payment in enumerate(order.payments):
        key = f"payment-{payment.billbee_id}" if payment.billbee_id else f"payment-{index}"
        amount = cents(payment.pay_value)
        if amount < ZERO:
            # A refund: it belongs to a credit note, not to this invoice's voucher.
            notes.append(
                f"Billbee records a refund of {-amount} {currency} ({key}); refunds are not booked on the invoice's "
                "voucher"
            )
            continue
        if amount == ZERO:
            continue
        when = payment.pay_date or order.payed_at or invoice_date
        received.append((key, amount, when, payment.payment_type or order.payment_method))
    if not order.payments and order.payed_at is not None:
        # Real data: PayedAt set, Payments [] and PaidAmount 0.0 (billbee-pitfalls #11): the order is paid in full.
        received.append(("payment-payedat", total, order.payed_at, order.payment_method))
        notes.append("Billbee lists no payment record; the invoice total was booked on the order's paid date")
    if not received:
        if not order.payments:
            notes.append("no payment is recorded in Billbee; the voucher stays open")
        return []

    planned: list[PlannedPayment] = []
    remaining = total
    for key, amount, when, method in received:
        method_text = f"payment method {method}"
        if method is None or method not in KNOWN_PAYMENT_METHODS:
            method_text = f"a payment type Billbee does not list ({method})"
        account = settings.accounts.check_account_for(method)
        if account is None and settings.sevdesk.book_unassigned_payments_as_default:
            account = settings.sevdesk.default_check_account_id
            if method is None or method not in KNOWN_PAYMENT_METHODS:
                notes.append(f"payment {key} of {amount} {currency} came with {method_text}; booked on the default "
                             "account")
        if account is None:
            notes.append(
                f"payment of {amount} {currency} by {method_text} has no account mapping "
                "and default payments are off; it was not booked, so the voucher is not fully paid"
            )
            continue
        if remaining <= ZERO:
            notes.append(f"payment {key} of {amount} {currency} exceeds the invoice total; not booked")
            continue
        booked = min(amount, remaining)
        if booked < amount:
            notes.append(
                f"payment {key} of {amount} {currency} exceeds the open amount by {amount - booked} {currency}; "
                f"{booked} {currency} were booked"
            )
        remaining -= booked
        booking_type = FULL_PAYMENT if remaining == ZERO else PARTIAL_PAYMENT
        planned.append(PlannedPayment(key, booked, when, account, method, booking_type))
    if planned and remaining > ZERO:
        notes.append(f"{remaining} {currency} of the invoice are not paid in Billbee; the voucher stays partly open")
    return planned


def _plan_refunds(
    order: Order, settings: ConnectionSettings, total: Decimal, invoice_date: datetime, notes: list[str]
) -> list[PlannedPayment]:
    """A credit note's refunds: each payment Billbee records on it with a negative value is booked as that negative
    amount (money going out: the sign of a bookAmount is the money's direction, sevdesk-pitfalls #2) on the account
    mapped to its payment method, never more than the credit note's total; the booking that completes it is
    ``FULL_PAYMENT``. Without a recorded refund the voucher stays open, and the note says so."""
    if settings.sevdesk.payment_reconciliation is PaymentReconciliation.SEVDESK:
        return []  # the voucher stays open for sevDesk's own bank matching
    currency = order.currency or "EUR"
    planned: list[PlannedPayment] = []
    remaining = -total  # what is still to be paid back, positive
    for index, payment in enumerate(order.payments):
        key = f"refund-{payment.billbee_id}" if payment.billbee_id else f"refund-{index}"
        amount = cents(payment.pay_value)
        if amount >= ZERO:
            if amount > ZERO:
                notes.append(f"Billbee records a payment of {amount} {currency} on the credit note ({key}); its "
                             "direction is unclear, so it was not booked")
            continue
        method = payment.payment_type or order.payment_method
        account = settings.accounts.check_account_for(method)
        if account is None and settings.sevdesk.book_unassigned_payments_as_default:
            account = settings.sevdesk.default_check_account_id
        if account is None:
            notes.append(f"refund of {-amount} {currency} by payment method {method} has no account mapping and "
                         "default payments are off; it was not booked, so the credit note stays open")
            continue
        if remaining <= ZERO:
            notes.append(f"refund {key} of {-amount} {currency} exceeds the credit note's total; not booked")
            continue
        booked = min(-amount, remaining)
        remaining -= booked
        booking_type = FULL_PAYMENT if remaining == ZERO else PARTIAL_PAYMENT
        when = payment.pay_date or invoice_date
        planned.append(PlannedPayment(key, -booked, when, account, method, booking_type))
    if not planned:
        notes.append("no refund is recorded in Billbee for this credit note; the voucher stays open")
    elif remaining > ZERO:
        notes.append(f"{remaining} {currency} of the credit note are not refunded in Billbee; the voucher stays "
                     "partly open")
    return planned


def supplier_name(order: Order) -> str:
    """The counterparty on a revenue voucher: the customer (company if set)."""
    address = order.invoice_address
    if address is not None:
        if address.company:
            return address.company.strip()
        if address.person_name:
            return address.person_name
    if order.customer is not None and order.customer.name:
        return order.customer.name.strip()
    return f"Billbee-Kunde {order.customer_number}" if order.customer_number else "Billbee-Kunde"


def customer_number_for(customer_id: int) -> str:
    """A stable sevDesk customer number derived from the Billbee customer id: the key that finds it again."""
    return f"BB-{customer_id}"


def plan_contact(order: Order) -> ContactPlan | None:
    customer = order.customer
    if customer is None or customer.id is None:
        return None
    address = order.invoice_address
    street = None
    if address is not None and address.street:
        street = f"{address.street} {address.house_number or ''}".strip()
    company = address.company.strip() if address is not None and address.company else None
    first = address.first_name if address is not None else None
    last = address.last_name if address is not None else None
    if not company and not (first or last):
        last = customer.name or supplier_name(order)
    return ContactPlan(
        customer_id=customer.id,
        customer_number=customer_number_for(customer.id),
        organisation_name=company,
        first_name=first,
        last_name=last,
        vat_number=order.customer_vat_id or customer.vat_id or order.vat_id,
        email=(address.email if address is not None and address.email else None) or customer.email,
        street=street,
        zip=address.zip if address is not None else None,
        city=address.city if address is not None else None,
        country_code=(address.country_iso2 or "").upper() or None if address is not None else None,
    )


def check_against_guidance(plan: VoucherPlan, guidance: list[RevenueAccount]) -> None:
    """Every (account, tax rule, rate) must be allowed for REVENUE, or sevDesk answers 422 (sevdesk-pitfalls #9)."""
    by_id = {account.account_datev_id: account for account in guidance}
    for position in plan.positions:
        account = by_id.get(position.account_datev_id)
        if account is None:
            raise BookkeepingProblem(
                f"revenue account {position.account_datev_id} is not offered by sevDesk's receipt guidance for revenue"
            )
        refusal = account.refusal(plan.tax_rule, position.tax_rate)
        if refusal is not None:
            raise BookkeepingProblem(refusal)

"""Credit notes (Stornorechnungen, Gutschriften) as pure bookkeeping rules (issue 13): a revenue voucher with the
negative gross of the credit note per rate, the original's tax rule and accounts, refunds as negative bookings; and,
over random invoices and partial credit notes, the invoice plus all its credit notes per rate is what the customer
finally paid per rate."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bookkeeping import connection, order

from connector.billbee.models import InvoiceDetails, Order
from connector.bookkeeping.voucher import (
    FULL_PAYMENT,
    PARTIAL_PAYMENT,
    BookkeepingProblem,
    Original,
    VoucherPlan,
    is_credit_note,
    plan_voucher,
)
from connector.settings.model import ConnectionSettings
from connector.sevdesk.bodies import book_amount_body, save_voucher_body

ZERO = Decimal(0)
RATE_INDEX = {Decimal(19): 1, Decimal(7): 2}
PAYPAL, PREPAYMENT, UNMAPPED = 3, 59, 1


def document(
    lines: list[tuple[Decimal, Decimal]],
    shipping: Decimal,
    shipping_rate: Decimal,
    *,
    number: int,
    credit: bool,
    payments: tuple[tuple[Decimal, int], ...] | list[tuple[Decimal, int]] = (),
    **changes: Any,
) -> tuple[Order, InvoiceDetails]:
    """An order (goods ``(gross, rate)`` and shipping) and its invoice-list item, as Billbee sends both."""
    total = sum((gross for gross, _ in lines), ZERO) + shipping
    raw = order(
        BillBeeOrderId=300000000000000 + number,
        OrderNumber=f"#{number}",
        InvoiceNumberPrefix="GS-2026-" if credit else "RE-2026-",
        InvoiceNumber=number,
        OrderItems=[{"TotalPrice": float(g), "TaxIndex": RATE_INDEX[r], "Quantity": -1 if credit else 1}
                    for g, r in lines],
        ShippingCost=float(shipping),
        TotalCost=float(total),
        Payments=[{"BillbeeId": number * 10 + i, "PayValue": float(v), "PaymentType": m,
                   "PayDate": "2026-11-02T10:00:00"} for i, (v, m) in enumerate(payments)],
        **changes,
    )
    invoice = {
        "BillbeeId": raw["BillBeeOrderId"],
        "InvoiceNumber": f"{raw['InvoiceNumberPrefix']}{number}",
        "Type": "creditnote" if credit else "invoice",
        "TotalGross": float(total),
        "Positions": [{"TotalGrossValue": float(g), "VatRate": float(r)} for g, r in lines],
        "AdditionalFees": [{"Type": "ShipCost", "Gross": float(shipping), "VatRate": float(shipping_rate)}]
        if shipping else [],
    }
    return Order.model_validate(raw), InvoiceDetails.model_validate(invoice)


def plan_of(
    parts: tuple[Order, InvoiceDetails], settings_: ConnectionSettings | None = None, original: Original | None = None
) -> VoucherPlan:
    return plan_voucher(parts[0], parts[1], settings_ or connection(), original=original)


def per_rate(plan: VoucherPlan) -> dict[Decimal, Decimal]:
    return {p.tax_rate: p.sum_gross for p in plan.positions}


D = Decimal
MIXED = [(D("59.50"), D(19)), (D("21.40"), D(7))]


# -- what a credit note is ---------------------------------------------------------------------------------------------
def test_billbees_creditnote_type_or_a_negative_total_makes_a_credit_note() -> None:
    storno = document([(D("-10.00"), D(19))], ZERO, D(19), number=1, credit=True)
    assert is_credit_note(*storno)
    assert is_credit_note(storno[0], None)  # the negative total alone
    listed_only = InvoiceDetails.model_validate({"Type": "CreditNote", "TotalGross": -5})
    assert is_credit_note(Order.model_validate(order(TotalCost=None)), listed_only)
    assert not is_credit_note(*document(MIXED, D("4.90"), D(19), number=2, credit=False))


def test_a_credit_note_that_adds_up_to_a_positive_amount_is_refused_with_the_amount() -> None:
    sale = document(MIXED, ZERO, D(19), number=3, credit=False)
    mislabelled = (sale[0], sale[1].model_copy(update={"type": "creditnote"}))
    with pytest.raises(BookkeepingProblem, match=r"credit note, but it adds up to 80\.90 EUR"):
        plan_of(mislabelled)


# -- the voucher -------------------------------------------------------------------------------------------------------
def test_a_full_storno_of_a_mixed_rate_invoice_with_shipping_reverses_it_per_rate_on_the_same_accounts() -> None:
    invoice = plan_of(document(MIXED, D("4.90"), D(19), number=1001, credit=False))
    original = Original(300000000001001, "RE-2026-1001", "156000007")
    storno = plan_of(document([(-g, r) for g, r in MIXED], D("-4.90"), D(19), number=1, credit=True),
                     original=original)
    assert storno.credit_note and storno.original == original
    assert per_rate(storno) == {rate: -gross for rate, gross in per_rate(invoice).items()}
    assert storno.total_gross == D("-85.80")
    assert storno.tax_rule == invoice.tax_rule == 1
    assert {p.tax_rate: p.account_datev_id for p in storno.positions} == {
        p.tax_rate: p.account_datev_id for p in invoice.positions}
    assert storno.invoice_number == "GS-2026-1"  # its own number: the duplicate key
    assert {p.comment for p in storno.positions} == {
        "Gutschrift zu Rechnung RE-2026-1001 (Beleg 156000007): Waren und Versand 19 %",
        "Gutschrift zu Rechnung RE-2026-1001 (Beleg 156000007): Waren 7 %",
    }


def test_a_partial_storno_takes_back_only_its_lines_per_rate() -> None:
    storno = plan_of(document([(D("-21.40"), D(7))], D("-4.90"), D(19), number=2, credit=True))
    assert per_rate(storno) == {D(7): D("-21.40"), D(19): D("-4.90")}
    assert {p.comment for p in storno.positions} == {"Gutschrift: Waren 7 %", "Gutschrift: Versand 19 %"}


def test_a_gutschrift_without_an_original_is_booked_on_its_own_and_says_so() -> None:
    plan = plan_of(document([(D("-20.00"), D(19))], ZERO, D(19), number=3, credit=True))
    assert plan.original is None
    assert "credit note: Billbee names no original invoice for it (a Gutschrift); booked on its own" in plan.notes


def test_an_intra_eu_credit_note_keeps_the_originals_tax_rule_and_zero_rate_account() -> None:
    plan = plan_of(_intra_eu_credit_note())
    assert plan.tax_rule == 3
    assert [(p.tax_rate, p.sum_gross, p.account_datev_id) for p in plan.positions] == [(D(0), D("-50.00"), 3640)]


def _intra_eu_credit_note() -> tuple[Order, InvoiceDetails]:
    raw = order(VatMode=2, InvoiceNumberPrefix="GS-2026-", InvoiceNumber=4, TotalCost=-50.0,
                OrderItems=[{"TotalPrice": -50.0, "TaxIndex": 1, "Quantity": -1}])
    invoice = {"Type": "creditnote", "TotalGross": -50.0, "InvoiceNumber": "GS-2026-4",
               "Positions": [{"TotalGrossValue": -50.0, "VatRate": 0}], "AdditionalFees": []}
    return Order.model_validate(raw), InvoiceDetails.model_validate(invoice)


def test_the_save_voucher_body_carries_the_negative_gross_as_an_open_revenue_voucher() -> None:
    plan = plan_of(document([(D("-10.00"), D(19))], ZERO, D(19), number=5, credit=True))
    body = save_voucher_body(plan, filename="GS-2026-5.pdf", contact_id=None)
    assert body["voucher"]["creditDebit"] == "D" and body["voucher"]["status"] == 100
    assert body["voucher"]["description"] == "GS-2026-5"
    assert [p["sumGross"] for p in body["voucherPosSave"]] == [-10.0]


# -- refunds -----------------------------------------------------------------------------------------------------------
def test_a_recorded_refund_is_one_negative_full_payment_on_the_mapped_account() -> None:
    plan = plan_of(document([(D("-40.80"), D(19))], ZERO, D(19), number=6, credit=True,
                            payments=[(D("-40.80"), PAYPAL)]))
    (refund,) = plan.payments
    assert (refund.amount, refund.check_account_id, refund.booking_type) == (D("-40.80"), 5101, FULL_PAYMENT)
    assert book_amount_body(refund)["amount"] == -40.8
    assert plan.notes == ("credit note: Billbee names no original invoice for it (a Gutschrift); booked on its own",)


def test_two_refunds_book_a_partial_then_the_full_payment_that_completes_it() -> None:
    plan = plan_of(document([(D("-30.00"), D(19))], ZERO, D(19), number=7, credit=True,
                            payments=[(D("-10.00"), PREPAYMENT), (D("-20.00"), PAYPAL)]))
    assert [(p.amount, p.check_account_id, p.booking_type) for p in plan.payments] == [
        (D("-10.00"), 5102, PARTIAL_PAYMENT), (D("-20.00"), 5101, FULL_PAYMENT)]


def test_a_refund_beyond_the_credit_note_is_capped_and_named() -> None:
    plan = plan_of(document([(D("-30.00"), D(19))], ZERO, D(19), number=8, credit=True,
                            payments=[(D("-30.00"), PAYPAL), (D("-5.00"), PAYPAL)]))
    assert [p.amount for p in plan.payments] == [D("-30.00")]
    assert any("refund-81 of 5.00 EUR exceeds the credit note's total" in n for n in plan.notes)


def test_a_positive_payment_on_a_credit_note_is_not_booked_and_named() -> None:
    plan = plan_of(document([(D("-30.00"), D(19))], ZERO, D(19), number=9, credit=True,
                            payments=[(D("30.00"), PAYPAL)]))
    assert plan.payments == ()
    assert any("payment of 30.00 EUR on the credit note" in n and "not booked" in n for n in plan.notes)
    assert "no refund is recorded in Billbee for this credit note; the voucher stays open" in plan.notes


def test_without_a_recorded_refund_the_voucher_stays_open_and_says_why() -> None:
    plan = plan_of(document([(D("-30.00"), D(19))], ZERO, D(19), number=10, credit=True))
    assert plan.payments == ()
    assert "no refund is recorded in Billbee for this credit note; the voucher stays open" in plan.notes


def test_a_partly_recorded_refund_leaves_the_rest_open_and_names_it() -> None:
    plan = plan_of(document([(D("-30.00"), D(19))], ZERO, D(19), number=11, credit=True,
                            payments=[(D("-10.00"), PAYPAL)]))
    assert [(p.amount, p.booking_type) for p in plan.payments] == [(D("-10.00"), PARTIAL_PAYMENT)]
    assert any("20.00 EUR of the credit note are not refunded" in n for n in plan.notes)


def test_an_unmapped_refund_goes_to_the_default_account_or_stays_open() -> None:
    parts = document([(D("-30.00"), D(19))], ZERO, D(19), number=12, credit=True, payments=[(D("-30.00"), UNMAPPED)])
    with_default = plan_of(parts, connection(bookUnassignedPaymentsAsDefault=True, defaultCheckAccountId=5199))
    assert [(p.amount, p.check_account_id) for p in with_default.payments] == [(D("-30.00"), 5199)]
    without = plan_of(parts)
    assert without.payments == ()
    assert any("refund of 30.00 EUR by payment method 1 has no account mapping" in n for n in without.notes)


def test_with_reconciliation_in_sevdesk_no_refund_is_booked() -> None:
    parts = document([(D("-30.00"), D(19))], ZERO, D(19), number=13, credit=True, payments=[(D("-30.00"), PAYPAL)])
    assert plan_of(parts, connection(paymentReconciliation="sevdesk")).payments == ()


# -- the property ------------------------------------------------------------------------------------------------------
units = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)


@st.composite
def invoices_with_credit_notes(draw: st.DrawFn) -> tuple[list[tuple[Decimal, int, Decimal]], Decimal, list[Any]]:
    """An invoice (lines of unit gross x quantity at 19 % or 7 %, shipping) and up to three credit notes, each taking
    back some quantity of some lines and maybe the shipping; never more than was sold."""
    lines = draw(st.lists(st.tuples(units, st.integers(1, 5), st.sampled_from([D(19), D(7)])), min_size=1,
                          max_size=6))
    shipping = draw(st.one_of(st.just(ZERO), units))
    left = [quantity for _, quantity, _ in lines]
    shipping_left = shipping > 0
    notes = []
    for _ in range(draw(st.integers(1, 3))):
        taken = [draw(st.integers(0, q)) for q in left]
        refund_shipping = shipping_left and draw(st.booleans())
        if not any(taken) and not refund_shipping:
            continue
        left = [q - t for q, t in zip(left, taken, strict=True)]
        shipping_left = shipping_left and not refund_shipping
        notes.append((taken, refund_shipping, draw(st.booleans())))
    return lines, shipping, notes


@settings(max_examples=300, deadline=None)
@given(case=invoices_with_credit_notes())
def test_an_invoice_and_all_its_credit_notes_per_rate_equal_what_the_customer_finally_paid_per_rate(
    case: tuple[list[tuple[Decimal, int, Decimal]], Decimal, list[Any]],
) -> None:
    lines, shipping, notes = case
    shipping_rate = max(rate for _, _, rate in lines)  # Billbee: shipping at the highest rate of the goods
    sold = [(unit * quantity, rate) for unit, quantity, rate in lines]
    total = sum((g for g, _ in sold), ZERO) + shipping
    invoice = plan_of(document(sold, shipping, shipping_rate, number=1, credit=False,
                               payments=[(total, PAYPAL)]))
    booked = dict(per_rate(invoice))
    paid = sum((p.amount for p in invoice.payments), ZERO)
    kept = {rate: ZERO for _, _, rate in lines}
    for (unit, quantity, rate) in lines:
        kept[rate] += unit * quantity
    if shipping:
        kept[shipping_rate] += shipping
    original = Original(invoice.order_id, invoice.invoice_number, None)
    for number, (taken, refund_shipping, refunded) in enumerate(notes, start=2):
        back = [(-unit * t, rate) for (unit, _, rate), t in zip(lines, taken, strict=True) if t]
        ship_back = -shipping if refund_shipping else ZERO
        credit_total = sum((g for g, _ in back), ZERO) + ship_back
        credit = plan_of(document(back, ship_back, shipping_rate, number=number, credit=True,
                                  payments=[(credit_total, PAYPAL)] if refunded else []), original=original)
        assert credit.credit_note and credit.total_gross == credit_total < 0
        assert all(p.sum_gross < 0 for p in credit.positions)
        for rate, gross in per_rate(credit).items():
            booked[rate] = booked.get(rate, ZERO) + gross
        for gross, rate in back:
            kept[rate] += gross
        kept[shipping_rate] += ship_back
        paid += sum((p.amount for p in credit.payments), ZERO)
        assert sum((p.amount for p in credit.payments), ZERO) == (credit_total if refunded else ZERO)
    assert {r: g for r, g in booked.items() if g} == {r: g for r, g in kept.items() if g}
    refunded_all = all(refunded for _, _, refunded in notes)
    if refunded_all:
        assert paid == sum(kept.values(), ZERO)  # the money kept is the revenue kept

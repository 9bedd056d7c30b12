"""The order -> voucher rules (docs/bookkeeping.md), pure: dicts in, plans out, no I/O."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.billbee.models import InvoiceDetails, Order
from connector.bookkeeping.voucher import (
    FULL_PAYMENT,
    PARTIAL_PAYMENT,
    BookkeepingProblem,
    VoucherPlan,
    check_against_guidance,
    plan_voucher,
    tax_rule_for,
)
from connector.settings.model import ConnectionSettings
from connector.sevdesk.bodies import book_amount_body, save_voucher_body
from connector.sevdesk.models import RevenueAccount

SPECS = Path(__import__("os").environ.get("SPECS_DIR", Path(__file__).resolve().parents[3] / "shared" / "specs"))

REVENUE_ACCOUNTS = [
    {"taxRule": 1, "taxRate": "19", "accountDatevId": 3631},
    {"taxRule": 1, "taxRate": "7", "accountDatevId": 3632},
    {"taxRule": 1, "taxRate": "0", "accountDatevId": 3633},
    {"taxRule": 3, "taxRate": "0", "accountDatevId": 3640},
    {"taxRule": 2, "taxRate": "0", "accountDatevId": 3650},
    {"taxRule": 11, "taxRate": "0", "accountDatevId": 3660},
]
GUIDANCE_ANSWER = [
    {"accountDatevId": 3631, "accountNumber": "8400", "accountName": "Erlöse 19 %", "allowedReceiptTypes": ["REVENUE"],
     "allowedTaxRules": [{"id": 1, "taxRates": ["NINETEEN"]}]},
    {"accountDatevId": 3632, "accountNumber": "8300", "accountName": "Erlöse 7 %", "allowedReceiptTypes": ["REVENUE"],
     "allowedTaxRules": [{"id": 1, "taxRates": ["SEVEN"]}]},
    {"accountDatevId": 3633, "accountNumber": "8200", "accountName": "Erlöse", "allowedReceiptTypes": ["REVENUE"],
     "allowedTaxRules": [{"id": 1, "taxRates": ["ZERO"]}]},
    {"accountDatevId": 3640, "accountNumber": "8125", "accountName": "ig. Lieferung",
     "allowedReceiptTypes": ["REVENUE"], "allowedTaxRules": [{"id": 3, "taxRates": ["ZERO"]}]},
]


GUIDANCE = [RevenueAccount.model_validate(entry) for entry in GUIDANCE_ANSWER]


def connection(**sevdesk: Any) -> ConnectionSettings:
    return ConnectionSettings.model_validate(
        {
            "connectionId": "test",
            "name": "Test",
            "general": {"startDate": "2026-01-01", "orderStateIds": [3, 4, 7]},
            "sevdesk": {"paymentReconciliation": "billbee", "createContacts": False, **sevdesk},
            "accounts": {
                "paymentAccounts": [{"paymentMethod": 3, "checkAccountId": 5101},
                                    {"paymentMethod": 59, "checkAccountId": 5102}],
                "revenueAccounts": REVENUE_ACCOUNTS,
            },
        }
    )


def order(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "BillBeeOrderId": 300000000000001,
        "State": 3,
        "VatMode": 0,
        "CreatedAt": "2026-10-02T09:00:00",
        "PayedAt": None,
        "ShippedAt": "2026-10-04T10:00:00",
        "InvoiceDate": "2026-10-03T12:30:00.797",
        "InvoiceNumberPrefix": "RE-2026-",
        "InvoiceNumber": 1001,
        "InvoiceNumberPostfix": None,
        "Currency": "EUR",
        "PaymentMethod": 3,
        "Payments": [],
        "TaxRate1": 19.0,
        "TaxRate2": 7.0,
        "ShippingCost": 0.0,
        "AdjustmentCost": 0.0,
        "InvoiceAddress": {"FirstName": "Erika", "LastName": "Mustermann", "Company": None, "Street": "Hauptstr.",
                           "HouseNumber": "5", "Zip": "10115", "City": "Berlin", "CountryISO2": "DE",
                           "Email": "erika@example.com"},
        "Customer": {"Id": 4711, "Name": "Erika Mustermann", "VatId": None},
        "OrderItems": [{"TotalPrice": 119.0, "TaxAmount": 19.0, "TaxIndex": 1, "Quantity": 1}],
        "TotalCost": 119.0,
    }
    base.update(overrides)
    return base


def plan(
    raw: dict[str, Any], invoice: dict[str, Any] | None = None, settings_: ConnectionSettings | None = None
) -> VoucherPlan:
    return plan_voucher(
        Order.model_validate(raw),
        InvoiceDetails.model_validate(invoice) if invoice else None,
        settings_ or connection(),
    )


# -- tax rules -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("vat_mode", "rule"), [(0, 1), (1, 11), (2, 3), (3, 2), (None, 1)])
def test_vat_mode_maps_to_the_revenue_tax_rule(vat_mode: int | None, rule: int) -> None:
    assert tax_rule_for(vat_mode) == rule


@pytest.mark.parametrize("vat_mode", [4, 5])
def test_margin_scheme_and_the_sentinel_vat_mode_need_attention(vat_mode: int) -> None:
    with pytest.raises(BookkeepingProblem, match=f"VatMode {vat_mode}"):
        plan(order(VatMode=vat_mode))
    assert "no sevDesk voucher tax rule" in str(pytest.raises(BookkeepingProblem, tax_rule_for, 9).value)


@pytest.mark.parametrize(("field", "value"), [("VatMode", 9), ("VatMode", -1)])
def test_a_vat_mode_outside_billbees_enum_cannot_be_read(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        Order.model_validate(order(**{field: value}))


def test_a_tax_index_outside_billbees_enum_cannot_be_read() -> None:
    with pytest.raises(ValueError, match="TaxIndex"):
        Order.model_validate(order(OrderItems=[{"TotalPrice": 119.0, "TaxIndex": 7}]))


def test_a_foreign_eu_rate_is_an_oss_case_that_vouchers_cannot_carry() -> None:
    invoice = {"BillbeeId": 1, "TotalGross": 120.0, "Positions": [{"TotalGrossValue": 120.0, "VatRate": 20}],
               "AdditionalFees": []}
    with pytest.raises(BookkeepingProblem, match="OSS"):
        plan(order(OrderItems=[{"TotalPrice": 120.0, "TaxIndex": 1}], TotalCost=120.0), invoice)


def test_vat_on_an_intra_eu_invoice_is_refused() -> None:
    invoice = {"TotalGross": 119.0, "Positions": [{"TotalGrossValue": 119.0, "VatRate": 19}]}
    with pytest.raises(BookkeepingProblem, match="VAT-free"):
        plan(order(VatMode=3), invoice)


def test_foreign_currency_needs_attention() -> None:
    with pytest.raises(BookkeepingProblem, match="CHF"):
        plan(order(Currency="CHF"))


def test_an_order_without_invoice_is_not_booked() -> None:
    with pytest.raises(BookkeepingProblem, match="no invoice"):
        plan(order(InvoiceNumber=None, InvoiceDate=None))


def test_a_missing_revenue_account_is_named() -> None:
    settings_ = connection()
    accounts = settings_.accounts.model_copy(update={"revenue_accounts": []})
    settings_ = settings_.model_copy(update={"accounts": accounts})
    with pytest.raises(BookkeepingProblem, match="tax rule 1 at 19 %"):
        plan(order(), None, settings_)


# -- positions -------------------------------------------------------------------------------------------------------
def test_the_real_billbee_orders_become_one_19_percent_position_each() -> None:
    page = json.loads((SPECS / "billbee-examples" / "ithoc-mock_real_orders_page_redacted.json").read_text())
    for raw in page["Data"]:
        result = plan(raw)
        assert result.tax_rule == 1
        assert [p.tax_rate for p in result.positions] == [Decimal(19)]
        assert result.total_gross == Decimal(str(raw["TotalCost"])).quantize(Decimal("0.01"))
        assert result.positions[0].account_datev_id == 3631


def test_mixed_rates_with_shipping_follow_the_invoice_list() -> None:
    raw = order(
        OrderItems=[{"TotalPrice": 59.50, "TaxIndex": 1}, {"TotalPrice": 21.40, "TaxIndex": 2}],
        ShippingCost=4.90,
        TotalCost=85.80,
    )
    invoice = {
        "BillbeeId": 300000000000001,
        "InvoiceNumber": "RE-2026-1001",
        "TotalGross": 85.80,
        "Positions": [{"TotalGrossValue": 59.50, "VatRate": 19}, {"TotalGrossValue": 21.40, "VatRate": 7}],
        "AdditionalFees": [{"Type": "ShipCost", "Gross": 4.90, "VatRate": 19}],
    }
    result = plan(raw, invoice)
    by_rate = {p.tax_rate: p for p in result.positions}
    assert by_rate[Decimal(19)].sum_gross == Decimal("64.40")
    assert by_rate[Decimal(19)].comment == "Waren und Versand 19 %"
    assert by_rate[Decimal(7)].sum_gross == Decimal("21.40")
    assert by_rate[Decimal(7)].account_datev_id == 3632
    assert result.total_gross == Decimal("85.80")


def test_mixed_rates_with_shipping_but_without_invoice_positions_are_not_guessed() -> None:
    raw = order(
        OrderItems=[{"TotalPrice": 59.50, "TaxIndex": 1}, {"TotalPrice": 21.40, "TaxIndex": 2}],
        ShippingCost=4.90,
        TotalCost=85.80,
    )
    with pytest.raises(BookkeepingProblem, match="shipping"):
        plan(raw)


def test_a_coupon_is_a_negative_zero_rate_position_and_free_shipping_leaves_no_line() -> None:
    raw = order(
        OrderItems=[{"TotalPrice": 119.0, "TaxIndex": 1}, {"TotalPrice": -10.0, "TaxIndex": 0, "IsCoupon": True}],
        ShippingCost=0.0,
        TotalCost=109.0,
    )
    result = plan(raw)
    assert sorted((p.tax_rate, p.sum_gross) for p in result.positions) == [
        (Decimal(0), Decimal("-10.00")),
        (Decimal(19), Decimal("119.00")),
    ]
    assert result.total_gross == Decimal("109.00")


def test_positions_that_do_not_add_up_to_the_invoice_total_are_refused() -> None:
    invoice = {"TotalGross": 100.0, "Positions": [{"TotalGrossValue": 99.99, "VatRate": 19}]}
    with pytest.raises(BookkeepingProblem, match="99.99"):
        plan(order(), invoice)


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.tuples(amounts, st.sampled_from([Decimal(19), Decimal(7), Decimal(0)])), min_size=1, max_size=8),
    shipping=st.one_of(st.just(Decimal(0)), amounts),
    shipping_rate=st.sampled_from([Decimal(19), Decimal(7)]),
    coupon=st.one_of(st.just(Decimal(0)), st.decimals(min_value=Decimal("0.01"), max_value=Decimal("20"), places=2)),
)
def test_voucher_gross_per_rate_equals_the_invoice_to_the_cent(
    lines: list[tuple[Decimal, Decimal]], shipping: Decimal, shipping_rate: Decimal, coupon: Decimal
) -> None:
    positions = [{"TotalGrossValue": float(g), "VatRate": float(r)} for g, r in lines]
    if coupon:
        positions.append({"TotalGrossValue": float(-coupon), "VatRate": 0})
    fees = [{"Type": "ShipCost", "Gross": float(shipping), "VatRate": float(shipping_rate)}] if shipping else []
    total = sum((g for g, _ in lines), Decimal(0)) + shipping - coupon
    invoice = {"TotalGross": float(total), "Positions": positions, "AdditionalFees": fees}
    if total <= 0:
        return
    result = plan(order(TotalCost=float(total)), invoice)

    expected: dict[Decimal, Decimal] = {}
    for gross, rate in lines:
        expected[rate] = expected.get(rate, Decimal(0)) + gross
    if shipping:
        expected[shipping_rate] = expected.get(shipping_rate, Decimal(0)) + shipping
    if coupon:
        expected[Decimal(0)] = expected.get(Decimal(0), Decimal(0)) - coupon
    expected = {rate: gross for rate, gross in expected.items() if gross != 0}

    assert {p.tax_rate: p.sum_gross for p in result.positions} == expected
    assert sum(p.sum_gross for p in result.positions) == total == result.total_gross
    assert all(p.sum_gross != 0 for p in result.positions)
    assert len({p.tax_rate for p in result.positions}) == len(result.positions)


# -- payments --------------------------------------------------------------------------------------------------------
def test_one_full_payment_is_booked_as_full_payment_on_the_mapped_account() -> None:
    raw = order(Payments=[{"BillbeeId": 77, "PayDate": "2026-10-02T10:00:00", "PaymentType": 3, "PayValue": 119.0}])
    (payment,) = plan(raw).payments
    assert (payment.amount, payment.check_account_id, payment.booking_type) == (Decimal("119.00"), 5101, FULL_PAYMENT)
    assert payment.key == "payment-77"


def test_a_split_payment_books_a_partial_payment_then_the_full_payment_that_completes_it() -> None:
    raw = order(
        PaymentMethod=3,
        Payments=[
            {"BillbeeId": 1, "PayDate": "2026-10-02T10:00:00", "PaymentType": 59, "PayValue": 19.0},
            {"BillbeeId": 2, "PayDate": "2026-10-02T11:00:00", "PaymentType": 3, "PayValue": 100.0},
        ],
    )
    payments = plan(raw).payments
    assert [(p.amount, p.check_account_id, p.booking_type) for p in payments] == [
        (Decimal("19.00"), 5102, PARTIAL_PAYMENT),
        (Decimal("100.00"), 5101, FULL_PAYMENT),  # brings the paid sum up to the total (issue 8, item 11)
    ]


def test_an_unmapped_payment_goes_to_the_default_account_when_that_is_on() -> None:
    raw = order(PaymentMethod=1, PayedAt="2026-10-03T08:00:00")
    result = plan(raw, None, connection(bookUnassignedPaymentsAsDefault=True, defaultCheckAccountId=5199))
    assert [p.check_account_id for p in result.payments] == [5199]


def test_an_unmapped_payment_stays_open_and_says_why_when_default_is_off() -> None:
    result = plan(order(PaymentMethod=1, PayedAt="2026-10-03T08:00:00"))
    assert result.payments == ()
    assert any("no account mapping" in note for note in result.notes)


def test_paid_without_payment_records_books_the_total_on_the_paid_date() -> None:
    (payment,) = plan(order(PayedAt="2026-10-05T08:00:00", PaidAmount=0.0, Payments=[])).payments
    assert payment.amount == Decimal("119.00") and payment.date.day == 5


def test_unpaid_invoice_payment_orders_stay_open() -> None:
    result = plan(order(PaymentMethod=26, PayedAt=None, Payments=[]))
    assert result.payments == ()
    assert any("no payment" in note for note in result.notes)


def test_reconciliation_in_sevdesk_books_nothing() -> None:
    raw = order(Payments=[{"BillbeeId": 77, "PayDate": "2026-10-02T10:00:00", "PaymentType": 3, "PayValue": 119.0}])
    assert plan(raw, None, connection(paymentReconciliation="sevdesk")).payments == ()


def test_overpayment_books_at_most_the_invoice_total() -> None:
    raw = order(Payments=[{"BillbeeId": 1, "PayDate": "2026-10-02T10:00:00", "PaymentType": 3, "PayValue": 150.0}])
    assert sum(p.amount for p in plan(raw).payments) == Decimal("119.00")


# -- dates, counterparty, payloads -----------------------------------------------------------------------------------
def test_voucher_date_follows_the_setting_with_a_reported_fallback() -> None:
    raw = order(PayedAt="2026-10-06T08:00:00")
    assert plan(raw, None, connection(voucherDate="invoice")).voucher_date.isoformat() == "2026-10-03"
    assert plan(raw, None, connection(voucherDate="payment")).voucher_date.isoformat() == "2026-10-06"
    assert plan(raw, None, connection(voucherDate="order")).voucher_date.isoformat() == "2026-10-02"
    unpaid = plan(order(), None, connection(voucherDate="payment"))
    assert unpaid.voucher_date.isoformat() == "2026-10-03"
    assert any("invoice date was used" in n for n in unpaid.notes)


def test_delivery_date_is_the_shipping_date_else_the_invoice_date() -> None:
    assert plan(order()).delivery_date.isoformat() == "2026-10-04"
    assert plan(order(ShippedAt=None)).delivery_date.isoformat() == "2026-10-03"


def test_the_counterparty_is_the_company_if_set() -> None:
    raw = order(InvoiceAddress={"Company": "Muster GmbH", "FirstName": "Max", "LastName": "Muster"})
    assert plan(raw).supplier_name == "Muster GmbH"
    assert plan(order()).supplier_name == "Erika Mustermann"


def test_save_voucher_body_is_a_revenue_voucher_with_gross_positions() -> None:
    result = plan(order())
    body = save_voucher_body(result, filename="abc.pdf", contact_id=None)
    voucher = body["voucher"]
    assert voucher["creditDebit"] == "D" and voucher["status"] == 100 and voucher["voucherType"] == "VOU"
    assert voucher["taxRule"] == {"id": "1", "objectName": "TaxRule"}
    assert voucher["description"] == "RE-2026-1001"
    assert voucher["voucherDate"] == "03.10.2026"
    assert voucher["supplierName"] == "Erika Mustermann" and "supplier" not in voucher
    assert "taxType" not in voucher
    (position,) = body["voucherPosSave"]
    assert position["net"] is False and position["sumGross"] == 119 and position["taxRate"] == 19
    assert body["filename"] == "abc.pdf"
    with_contact = save_voucher_body(result, filename="abc.pdf", contact_id="42")["voucher"]
    assert with_contact["supplier"] == {"id": "42", "objectName": "Contact"} and "supplierName" not in with_contact


def test_book_amount_body_is_positive_and_has_no_bank_transaction() -> None:
    raw = order(Payments=[{"BillbeeId": 1, "PayDate": "2026-10-02T10:00:00", "PaymentType": 3, "PayValue": 119.0}])
    body = book_amount_body(plan(raw).payments[0])
    assert body["amount"] == 119 and body["type"] == FULL_PAYMENT
    assert body["checkAccount"] == {"id": 5101, "objectName": "CheckAccount"}
    assert "checkAccountTransaction" not in body


def test_guidance_check_catches_a_rate_the_account_does_not_allow() -> None:
    check_against_guidance(plan(order()), GUIDANCE)
    settings_ = connection()
    wrong = [dict(a, accountDatevId=3632) if a["taxRate"] == "19" else a for a in REVENUE_ACCOUNTS]
    settings_ = settings_.model_copy(
        update={"accounts": settings_.accounts.model_validate({"revenueAccounts": wrong})}
    )
    with pytest.raises(BookkeepingProblem, match="does not allow 19 %"):
        check_against_guidance(plan(order(), None, settings_), GUIDANCE)


def test_contact_plan_uses_a_stable_customer_number_and_the_company() -> None:
    raw = order(InvoiceAddress={"Company": "Muster GmbH", "Street": "Weg", "HouseNumber": "1", "Zip": "1",
                                "City": "X", "CountryISO2": "at"}, CustomerVatId="ATU12345678")
    contact = plan(raw, None, connection(createContacts=True)).contact
    assert contact is not None
    assert contact.customer_number == "BB-4711"
    assert contact.organisation_name == "Muster GmbH" and contact.vat_number == "ATU12345678"
    assert contact.country_code == "AT" and contact.street == "Weg 1"
    assert plan(raw).contact is None

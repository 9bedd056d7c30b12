"""The real APIs as the evidence shows them (issue 8), proved on the pure rules: Billbee's SDK fixtures, the two
readings of the invoice list's total, null lists, printed invoice numbers, the CreateInvoice check, sevDesk's dates,
split payments. Each test names the item of the issue it proves."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connector.billbee.invoices import InvoiceIndex, document_problem, match_invoice, printed_number_matches
from connector.billbee.models import InvoiceDetails, InvoiceDocument, Order
from connector.bookkeeping.voucher import (
    FULL_PAYMENT,
    PARTIAL_PAYMENT,
    TOTAL_POSITIONS_ONLY,
    TOTAL_WITH_FEES,
    BookkeepingProblem,
    VoucherPlan,
    plan_voucher,
)
from connector.money import to_decimal
from connector.settings.model import ConnectionSettings
from connector.sevdesk.bodies import book_amount_body, save_voucher_body

SPECS = Path(__import__("os").environ.get("SPECS_DIR", Path(__file__).resolve().parents[3] / "shared" / "specs"))
EXAMPLES = SPECS / "billbee-examples"


def fixture(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


PHP_ORDER: dict[str, Any] = fixture("php-sdk_get_orders_response.json")["Data"][0]
PHP_INVOICE: dict[str, Any] = fixture("php-sdk_get_invoices_response.json")["Data"][0]
PHP_DOCUMENT: dict[str, Any] = fixture("php-sdk_create_invoice_response.json")["Data"]


def settings(**sevdesk: Any) -> ConnectionSettings:
    return ConnectionSettings.model_validate(
        {
            "connectionId": "readings",
            "name": "Readings",
            "general": {"startDate": "2022-01-01", "orderStateIds": [1, 3, 4, 7]},
            "sevdesk": {"paymentReconciliation": "billbee", "bookUnassignedPaymentsAsDefault": True,
                        "defaultCheckAccountId": 5199, **sevdesk},
            "accounts": {
                "paymentAccounts": [{"paymentMethod": 1, "checkAccountId": 5101}],
                "revenueAccounts": [{"taxRule": 1, "taxRate": "19", "accountDatevId": 3631},
                                    {"taxRule": 1, "taxRate": "7", "accountDatevId": 3632}],
            },
        }
    )


def plan_of(order: dict[str, Any], invoice: dict[str, Any] | None, **kwargs: Any) -> VoucherPlan:
    return plan_voucher(
        Order.model_validate(order), InvoiceDetails.model_validate(invoice) if invoice else None, settings(), **kwargs
    )


# -- item 1: invoice-list totals without the fees ------------------------------------------------------------------
def test_billbees_sdk_fixture_books_170_76_with_its_three_decimal_shipping_fee() -> None:
    """TotalGross 158.76 leaves out the ShipCost fee of 11.996: 158.76 + 11.996 = 170.756 -> 170.76 at 19 %,
    the order's TotalCost and CreateInvoice's TotalGross."""
    result = plan_of(PHP_ORDER, PHP_INVOICE)
    assert [(p.tax_rate, p.sum_gross, p.account_datev_id) for p in result.positions] == [
        (Decimal(19), Decimal("170.76"), 3631)
    ]
    assert result.total_gross == Decimal("170.76") == to_decimal(PHP_DOCUMENT["TotalGross"])
    assert result.positions[0].comment == "Waren und Versand 19 %"
    assert result.total_reading == TOTAL_POSITIONS_ONLY


def test_an_invoice_total_that_includes_the_fees_is_booked_the_same() -> None:
    invoice = dict(PHP_INVOICE, TotalGross=170.76, TotalNet=143.5)
    result = plan_of(PHP_ORDER, invoice)
    assert result.total_gross == Decimal("170.76")
    assert result.total_reading == TOTAL_WITH_FEES


def test_an_invoice_total_matching_neither_reading_is_named_not_booked() -> None:
    invoice = dict(PHP_INVOICE, TotalGross=160.00)
    with pytest.raises(BookkeepingProblem, match=r"158\.76 EUR and with the fees to 170\.76 EUR, but Billbee's "
                                                 r"invoice total is 160\.00"):
        plan_of(PHP_ORDER, invoice)


def test_an_invoice_that_contradicts_the_orders_total_cost_is_set_aside() -> None:
    order = dict(PHP_ORDER, TotalCost=171.76)
    with pytest.raises(BookkeepingProblem, match=r"order's total \(TotalCost\) is 171\.76"):
        plan_of(order, PHP_INVOICE)


def test_three_decimal_fees_are_summed_per_rate_before_the_rate_is_rounded_to_the_cent() -> None:
    """Two rates, each with a three-decimal fee share: each rate is rounded once, as the invoice prints it."""
    order = dict(PHP_ORDER, TotalCost=184.21, ShippingCost=14.75)
    invoice = copy.deepcopy(PHP_INVOICE)
    invoice["Positions"].append({"TotalGrossValue": 10.70, "VatRate": 7.0})
    invoice["TotalGross"] = 169.46
    invoice["AdditionalFees"] = [
        {"Type": "ShipCost", "Gross": 11.996, "Net": 10.08, "VatAmount": 1.916, "VatRate": 19.0},
        {"Type": "ShipCost", "Gross": 2.754, "Net": 2.57, "VatAmount": 0.184, "VatRate": 7.0},
    ]
    result = plan_of(order, invoice)
    assert {p.tax_rate: p.sum_gross for p in result.positions} == {
        Decimal(19): Decimal("170.76"),  # 158.76 + 11.996 = 170.756
        Decimal(7): Decimal("13.45"),  # 10.70 + 2.754 = 13.454
    }
    assert result.total_gross == Decimal("184.21")


@pytest.mark.parametrize("shipping", ["3.85", "12.00", "4.90", "0.05", "29.99"])
def test_a_shipping_fee_listed_with_three_decimals_is_booked_at_the_shipping_the_customer_paid(shipping: str) -> None:
    """Billbee lists the fee as Net (cents) + VatAmount (3 decimals): 3.85 at 19 % becomes 3.24 + 0.615 = 3.855,
    which would round to 3.86. The voucher carries the 3.85 the customer was charged, as the order's TotalCost."""
    charged = Decimal(shipping)
    exact_net = charged / Decimal("1.19")
    net = exact_net.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    vat = (charged - exact_net).quantize(Decimal("0.001"), rounding="ROUND_HALF_UP")
    fee = {"Type": "ShipCost", "Gross": float(net + vat), "Net": float(net), "VatAmount": float(vat), "VatRate": 19.0}
    order = dict(PHP_ORDER, ShippingCost=float(charged), TotalCost=float(Decimal("158.76") + charged))
    result = plan_of(order, dict(PHP_INVOICE, AdditionalFees=[fee]))
    assert result.total_gross == Decimal("158.76") + charged
    assert result.total_reading == TOTAL_POSITIONS_ONLY


def test_a_fee_that_is_not_the_orders_shipping_is_not_bent_to_it() -> None:
    fee = {"Type": "ShipCost", "Gross": 11.90, "Net": 10.0, "VatAmount": 1.90, "VatRate": 19.0}
    with pytest.raises(BookkeepingProblem, match="TotalCost"):
        plan_of(PHP_ORDER, dict(PHP_INVOICE, AdditionalFees=[fee]))


# -- item 2: null lists --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["Tags", "Payments", "OrderItems"])
def test_a_null_list_reads_as_an_empty_list(field: str) -> None:
    order = Order.model_validate(dict(PHP_ORDER, **{field: None}))
    assert getattr(order, {"Tags": "tags", "Payments": "payments", "OrderItems": "order_items"}[field]) == []


def test_the_real_page_with_null_shipping_services_reads() -> None:
    page = fixture("ithoc-mock_real_orders_page_redacted.json")
    assert any(o.get("ShippingServices") is None for o in page["Data"])
    assert [Order.model_validate(o).bill_bee_order_id for o in page["Data"]]


@pytest.mark.parametrize("bad", ["12,50", "zwölf", float("nan"), float("inf"), True])
def test_numbers_billbee_cannot_mean_are_refused_not_guessed(bad: Any) -> None:
    with pytest.raises(ValueError, match="number"):
        to_decimal(bad)


# -- items 4 and 5: the printed invoice number and the CreateInvoice answer ----------------------------------------
def test_the_printed_number_is_billbees_string_not_prefix_number_postfix() -> None:
    order = Order.model_validate(PHP_ORDER)
    assert order.printed_invoice_number == "RN-2022-0083-xx"  # the last resort: Billbee printed no postfix
    result = plan_of(PHP_ORDER, PHP_INVOICE)
    assert result.invoice_number == "RN-2022-0083"  # the invoice list's printed string
    fixed = plan_of(PHP_ORDER, PHP_INVOICE, invoice_number="RN-2022-0083")
    assert fixed.invoice_number == "RN-2022-0083"


@pytest.mark.parametrize(
    ("printed", "matches"),
    [("RN-2022-0083", True), ("RN-2022-0083-xx", True), ("RN-2022-00083", True), ("RN-2022-0084", False),
     ("RE-2022-0083", False), ("RN-2022-0083x", False), ("", False), (None, False)],
)
def test_a_printed_number_matches_only_a_rendering_of_the_orders_own_number(printed: str | None, matches: bool) -> None:
    assert printed_number_matches(printed, Order.model_validate(PHP_ORDER)) is matches


def test_the_createinvoice_answer_of_the_orders_invoice_is_accepted() -> None:
    document = InvoiceDocument.model_validate(PHP_DOCUMENT)
    order = Order.model_validate(PHP_ORDER)
    assert document_problem(document, order, invoice_number="RN-2022-0083", expected_total=Decimal("170.76")) is None
    assert document_problem(document, order, invoice_number=None, expected_total=Decimal("170.76")) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [({"InvoiceNumber": "RN-2022-0084"}, "numbered RN-2022-0084"), ({"TotalGross": 170.75}, "total of 170.75")],
)
def test_a_createinvoice_answer_for_another_invoice_is_never_used(change: dict[str, Any], problem: str) -> None:
    document = InvoiceDocument.model_validate(dict(PHP_DOCUMENT, **change))
    order = Order.model_validate(PHP_ORDER)
    for key in ("RN-2022-0083", None):
        found = document_problem(document, order, invoice_number=key, expected_total=Decimal("170.76"))
        assert found is not None and problem in found


# -- item 6: matching invoice-list items under both readings of BillbeeId ------------------------------------------
def test_an_invoice_list_item_is_matched_whether_billbeeid_is_the_order_or_the_invoice() -> None:
    order = Order.model_validate(PHP_ORDER)
    as_order = InvoiceDetails.model_validate(PHP_INVOICE)
    as_invoice = InvoiceDetails.model_validate(dict(PHP_INVOICE, BillbeeId=900000000000001))
    assert match_invoice(order, [as_order]) == (as_order, "BillbeeId is the order id")
    assert match_invoice(order, [as_invoice]) == (as_invoice, "OrderNumber and invoice number")
    anonymous = InvoiceDetails.model_validate(dict(PHP_INVOICE, BillbeeId=900000000000001, OrderNumber=None))
    assert match_invoice(order, [anonymous]) == (anonymous, "invoice number")


def test_an_invoice_id_that_happens_to_equal_another_orders_id_is_not_taken_for_it() -> None:
    order = Order.model_validate(PHP_ORDER)
    other = InvoiceDetails.model_validate(dict(PHP_INVOICE, InvoiceNumber="RN-2022-0099", OrderNumber="X"))
    own = InvoiceDetails.model_validate(dict(PHP_INVOICE, BillbeeId=900000000000001))
    assert InvoiceIndex([other, own]).find(order)[0] is own


def test_credit_notes_and_ambiguous_numbers_are_never_matched_to_an_invoice() -> None:
    order = Order.model_validate(dict(PHP_ORDER, OrderNumber=None))
    credit = InvoiceDetails.model_validate(dict(PHP_INVOICE, Type="creditnote"))
    assert match_invoice(order, [credit])[0] is None
    twins = [InvoiceDetails.model_validate(dict(PHP_INVOICE, BillbeeId=i)) for i in (1, 2)]
    assert match_invoice(order, twins)[0] is None


# -- item 8: sevDesk dates -----------------------------------------------------------------------------------------
def test_voucher_dates_are_german_dates_and_booking_dates_have_no_fractions() -> None:
    order = dict(PHP_ORDER, Payments=[dict(PHP_ORDER["Payments"][0], PayDate="2022-08-17T10:11:12.345678")])
    result = plan_of(order, PHP_INVOICE)
    voucher = save_voucher_body(result, filename="x.pdf", contact_id=None)["voucher"]
    assert voucher["voucherDate"] == "22.07.2022"
    assert voucher["deliveryDate"] == "17.08.2022"  # ShippedAt 2022-08-17T00:00:00+00:00 = 02:00 Berlin
    booking = book_amount_body(result.payments[0])
    assert booking["date"] == "2022-08-17T10:11:12+02:00"


# -- item 11: split payments ---------------------------------------------------------------------------------------
def test_the_booking_that_completes_a_split_payment_is_full_payment() -> None:
    payments = [
        {"BillbeeId": 1, "PayDate": "2022-08-10T00:00:00", "PaymentType": 1, "PayValue": 100.00},
        {"BillbeeId": 2, "PayDate": "2022-08-11T00:00:00", "PaymentType": 1, "PayValue": 50.00},
        {"BillbeeId": 3, "PayDate": "2022-08-12T00:00:00", "PaymentType": 1, "PayValue": 20.76},
    ]
    result = plan_of(dict(PHP_ORDER, Payments=payments), PHP_INVOICE)
    assert [(p.amount, p.booking_type) for p in result.payments] == [
        (Decimal("100.00"), PARTIAL_PAYMENT), (Decimal("50.00"), PARTIAL_PAYMENT), (Decimal("20.76"), FULL_PAYMENT)
    ]


def test_a_payment_short_of_the_total_stays_partial_and_says_what_is_open() -> None:
    result = plan_of(PHP_ORDER, PHP_INVOICE)  # the fixture's one payment: 162.00 of 170.76
    assert [(p.amount, p.booking_type, p.check_account_id) for p in result.payments] == [
        (Decimal("162.00"), PARTIAL_PAYMENT, 5101)
    ]
    assert any("8.76 EUR of the invoice are not paid" in note for note in result.notes)


def test_delivery_date_is_never_before_it_is_known() -> None:
    result = plan_of(dict(PHP_ORDER, ShippedAt=None), PHP_INVOICE)
    assert result.delivery_date == date(2022, 7, 22)

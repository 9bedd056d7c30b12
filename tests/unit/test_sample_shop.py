"""The built-in sample shop covers every case the connector must book, in Billbee's exact order format."""

from __future__ import annotations

import copy
import json
import os
import re
from collections import Counter
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from connector.billbee.models import Order
from connector.settings.model import ConnectionSettings
from local.sample_shop import AMAZON_SHOP_ID, SHOPIFY_SHOP_ID, is_sample_credit_note, sample_orders, sample_shops

# The official specs and examples live beside the project (architecture.md §7); SPECS_DIR overrides.
SPECS_DIR = Path(os.environ.get("SPECS_DIR", Path(__file__).resolve().parents[3] / "shared" / "specs"))
REAL_SAMPLE = SPECS_DIR / "billbee-examples" / "ithoc-mock_real_orders_page_redacted.json"
CONNECTION_FILE = Path(__file__).resolve().parents[2] / "local" / "sample_connection.json"
# Naive, 0-3 fractional digits, no offset: what the real API sends (billbee-pitfalls #5).
NAIVE_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?$")
TIMESTAMP_FIELDS = ("CreatedAt", "ConfirmedAt", "PayedAt", "ShippedAt", "InvoiceDate", "LastModifiedAt", "UpdatedAt")

Json = dict[str, Any]


def dec(value: float | int) -> Decimal:
    return Decimal(repr(value))


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def vat_contained(gross: Decimal, rate: Decimal) -> Decimal:
    return (gross * rate / (100 + rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture(scope="module")
def orders() -> list[Json]:
    return sample_orders()


@pytest.fixture(scope="module")
def sales(orders: list[Json]) -> list[Json]:
    """The orders themselves, without the credit notes (Storno orders and the Gutschrift) that follow them."""
    return [o for o in orders if not is_sample_credit_note(o)]


@pytest.fixture(scope="module")
def credit_notes(orders: list[Json]) -> list[Json]:
    return [o for o in orders if is_sample_credit_note(o)]


@pytest.fixture(scope="module")
def real_order() -> Json:
    data: Json = json.loads(REAL_SAMPLE.read_text(encoding="utf-8"))["Data"][0]
    return data


@pytest.fixture(scope="module")
def connection() -> Json:
    data: Json = json.loads(CONNECTION_FILE.read_text(encoding="utf-8"))
    return data


def invoiced(orders: list[Json]) -> list[Json]:
    return [o for o in orders if o["InvoiceNumber"]]


def goods_lines(order: Json) -> list[Json]:
    return [i for i in order["OrderItems"] if not i["IsCoupon"]]


# --- shape -------------------------------------------------------------------------------------------------------


def test_the_shop_has_at_least_42_orders(orders: list[Json]) -> None:
    assert len(orders) >= 42


def test_every_order_has_exactly_the_fields_of_the_real_api_in_its_order(orders: list[Json], real_order: Json) -> None:
    for order in orders:
        assert list(order) == list(real_order), order["BillBeeOrderId"]
        assert list(order["InvoiceAddress"]) == list(real_order["InvoiceAddress"])
        assert list(order["ShippingAddress"]) == list(real_order["ShippingAddress"])
        assert list(order["Customer"]) == list(real_order["Customer"])
        assert list(order["Seller"]) == list(real_order["Seller"])
        for item in order["OrderItems"]:
            assert list(item) == list(real_order["OrderItems"][0])
            assert list(item["Product"]) == list(real_order["OrderItems"][0]["Product"])
        for shipment in order["ShippingIds"]:
            assert list(shipment) == list(real_order["ShippingIds"][0])
        for entry in order["History"]:
            assert list(entry) == list(real_order["History"][0])


def test_payments_have_billbees_payment_fields(orders: list[Json]) -> None:
    expected = [
        "BillbeeId",
        "TransactionId",
        "PayDate",
        "PaymentType",
        "SourceTechnology",
        "SourceText",
        "PayValue",
        "Purpose",
        "Name",
    ]
    payments = [p for o in orders for p in o["Payments"]]
    assert payments
    assert all(list(p) == expected for p in payments)


def test_order_ids_are_unique_ascending_15_digit_ints(orders: list[Json]) -> None:
    ids = [o["BillBeeOrderId"] for o in orders]
    assert all(isinstance(i, int) and len(str(i)) == 15 for i in ids)
    assert ids == sorted(set(ids))


def test_nested_billbee_ids_are_unique(orders: list[Json]) -> None:
    items = [i["BillbeeId"] for o in orders for i in o["OrderItems"]]
    payments = [p["BillbeeId"] for o in orders for p in o["Payments"]]
    assert len(items) == len(set(items))
    assert len(payments) == len(set(payments))


def test_timestamps_are_naive_like_the_real_api(orders: list[Json]) -> None:
    for order in orders:
        for name in TIMESTAMP_FIELDS:
            value = order[name]
            assert value is None or NAIVE_TIMESTAMP.match(value), (order["BillBeeOrderId"], name, value)
        for payment in order["Payments"]:
            assert NAIVE_TIMESTAMP.match(payment["PayDate"])


def test_orders_were_created_between_2_october_and_20_november_2026(sales: list[Json]) -> None:
    created = [when(o["CreatedAt"]).date() for o in sales]
    assert min(created) >= date(2026, 10, 2)
    assert max(created) <= date(2026, 11, 20)
    assert created == sorted(created)


def test_orders_are_json_and_deterministic(orders: list[Json]) -> None:
    assert json.loads(json.dumps(orders)) == orders  # plain JSON types only (no Decimal, no datetime)
    assert sample_orders() == orders


def test_each_call_returns_a_fresh_list(orders: list[Json]) -> None:
    first = sample_orders()
    pristine = copy.deepcopy(first)
    first[0]["Tags"].append("Sevdesk")
    first[1]["OrderItems"].clear()
    assert sample_orders() == pristine


def test_every_order_parses_with_the_connectors_billbee_model(orders: list[Json]) -> None:
    parsed = [Order.model_validate(o) for o in orders]
    assert [p.bill_bee_order_id for p in parsed] == [o["BillBeeOrderId"] for o in orders]
    assert sum(1 for p in parsed if not p.has_invoice) == 1


# --- shops -------------------------------------------------------------------------------------------------------


def test_orders_come_from_both_shops_and_one_manual_entry(sales: list[Json]) -> None:
    shops = Counter(o["Seller"]["BillbeeShopId"] for o in sales)
    assert set(shops) == {SHOPIFY_SHOP_ID, AMAZON_SHOP_ID, None}
    assert shops[None] == 1
    assert shops[SHOPIFY_SHOP_ID] >= 10 and shops[AMAZON_SHOP_ID] >= 10
    for order in sales:
        seller = order["Seller"]
        if seller["BillbeeShopId"] == SHOPIFY_SHOP_ID:
            assert (seller["Platform"], seller["BillbeeShopName"]) == ("Shopify", "Shopify Naturkosmetik")
        elif seller["BillbeeShopId"] == AMAZON_SHOP_ID:
            assert (seller["Platform"], seller["BillbeeShopName"]) == ("Amazon", "Amazon DE")


def test_the_manual_order_has_no_shop_no_buyer_and_no_external_id(sales: list[Json]) -> None:
    (manual,) = [o for o in sales if o["Seller"]["BillbeeShopId"] is None]
    assert manual["Seller"]["Platform"] is None
    assert manual["Seller"]["BillbeeShopName"] is None
    assert manual["Buyer"] is None
    assert manual["Id"] is None
    assert manual["OrderNumber"] is None
    assert manual["InvoiceNumber"]  # it is invoiced and must be exported (includeManualOrders)


def test_shop_orders_have_a_buyer_of_their_shop(sales: list[Json]) -> None:
    for order in sales:
        if order["Seller"]["BillbeeShopId"] is not None:
            assert order["Buyer"]["BillbeeShopId"] == order["Seller"]["BillbeeShopId"]
            assert order["Id"] and order["OrderNumber"]


def test_sample_shops_lists_both_shop_accounts() -> None:
    shops = sample_shops()
    assert [(s["Id"], s["Name"]) for s in shops] == [(1001, "Shopify Naturkosmetik"), (1002, "Amazon DE")]
    for shop in shops:
        assert list(shop) == ["Id", "Name", "AccountType", "LastSyncDate", "LastSyncState"]
        assert isinstance(shop["AccountType"], int) and isinstance(shop["LastSyncState"], int)
        assert NAIVE_TIMESTAMP.match(shop["LastSyncDate"])


# --- states, payment methods, VAT modes --------------------------------------------------------------------------


def test_states_paid_shipped_and_closed_are_mixed(sales: list[Json]) -> None:
    states = Counter(o["State"] for o in sales)
    assert set(states) == {3, 4, 7}
    assert min(states.values()) >= 5


def test_all_required_payment_methods_occur(orders: list[Json]) -> None:
    methods = {o["PaymentMethod"] for o in orders}
    assert {3, 59, 26, 98, 63, 62, 1} <= methods


def test_vat_modes_are_normal_except_two_intra_eu_and_one_export(orders: list[Json]) -> None:
    modes = Counter(o["VatMode"] for o in orders)
    assert modes == {0: len(orders) - 3, 2: 2, 3: 1}


def test_intra_eu_orders_are_businesses_in_at_and_nl_without_vat(orders: list[Json]) -> None:
    intra_eu = [o for o in orders if o["VatMode"] == 2]
    assert sorted(o["InvoiceAddress"]["CountryISO2"] for o in intra_eu) == ["AT", "NL"]
    for order in intra_eu:
        assert order["CustomerVatId"] and order["CustomerVatId"][:2] == order["InvoiceAddress"]["CountryISO2"]
        assert order["InvoiceAddress"]["Company"]
        assert all(i["TaxAmount"] == 0.0 for i in order["OrderItems"])


def test_the_export_order_goes_to_switzerland_without_vat(orders: list[Json]) -> None:
    (export,) = [o for o in orders if o["VatMode"] == 3]
    assert export["InvoiceAddress"]["CountryISO2"] == "CH"
    assert export["ShippingAddress"]["CountryISO2"] == "CH"
    assert all(i["TaxAmount"] == 0.0 for i in export["OrderItems"])


def test_currency_and_tax_rates(orders: list[Json]) -> None:
    assert {o["Currency"] for o in orders} == {"EUR"}
    assert {(o["TaxRate1"], o["TaxRate2"]) for o in orders} == {(19.0, 7.0)}


# --- money -------------------------------------------------------------------------------------------------------


def test_amounts_have_at_most_two_decimals(orders: list[Json]) -> None:
    def cents_only(value: float) -> bool:
        return dec(value) == dec(value).quantize(Decimal("0.01"))

    for order in orders:
        for name in ("ShippingCost", "TotalCost", "AdjustmentCost", "PaidAmount", "RebateDifference"):
            assert cents_only(order[name]), (order["BillBeeOrderId"], name)
        for item in order["OrderItems"]:
            for name in ("TotalPrice", "TaxAmount", "UnrebatedTotalPrice"):
                assert cents_only(item[name]), (order["BillBeeOrderId"], name)
        for payment in order["Payments"]:
            assert cents_only(payment["PayValue"])


def test_total_cost_is_items_plus_shipping_plus_adjustment_to_the_cent(orders: list[Json]) -> None:
    for order in orders:
        items = sum((dec(i["TotalPrice"]) for i in order["OrderItems"]), Decimal(0))
        expected = items + dec(order["ShippingCost"]) + dec(order["AdjustmentCost"])
        assert expected == dec(order["TotalCost"]), order["BillBeeOrderId"]


def test_line_vat_is_contained_in_the_gross_price_for_vat_orders(orders: list[Json]) -> None:
    checked = 0
    for order in orders:
        for item in goods_lines(order):
            if order["VatMode"] == 0:
                rate = dec(order["TaxRate1"] if item["TaxIndex"] == 1 else order["TaxRate2"])
                assert dec(item["TaxAmount"]) == vat_contained(dec(item["TotalPrice"]), rate), item["BillbeeId"]
                checked += 1
            else:
                assert item["TaxAmount"] == 0.0
    assert checked >= 60


def test_both_vat_rates_occur_and_several_orders_mix_them(orders: list[Json]) -> None:
    vat_orders = [o for o in orders if o["VatMode"] == 0]
    indices = [{i["TaxIndex"] for i in goods_lines(o)} for o in vat_orders]
    assert sum(1 for s in indices if s == {1}) >= 5
    assert sum(1 for s in indices if s == {2}) >= 3
    assert sum(1 for s in indices if s == {1, 2}) >= 5


def test_line_discounts_are_percent_of_the_unrebated_price(orders: list[Json]) -> None:
    discounted = 0
    for order in orders:
        for item in goods_lines(order):
            unrebated, total, percent = dec(item["UnrebatedTotalPrice"]), dec(item["TotalPrice"]), dec(item["Discount"])
            expected = (unrebated * (100 - percent) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            assert total == expected, item["BillbeeId"]
            if percent > 0:
                discounted += 1
                assert total < unrebated
        rebate = sum((dec(i["UnrebatedTotalPrice"]) - dec(i["TotalPrice"]) for i in order["OrderItems"]), Decimal(0))
        assert dec(order["RebateDifference"]) == rebate
    assert discounted >= 3


def test_coupon_lines_are_negative_and_tax_free(orders: list[Json]) -> None:
    coupons = [i for o in orders for i in o["OrderItems"] if i["IsCoupon"]]
    assert len(coupons) >= 2
    for coupon in coupons:
        assert coupon["TotalPrice"] < 0
        assert coupon["TaxAmount"] == 0.0
        assert coupon["TaxIndex"] == 0


def test_most_orders_pay_shipping_and_some_ship_free(orders: list[Json]) -> None:
    charged = [o for o in orders if o["ShippingCost"] > 0]
    assert len(charged) > len(orders) / 2
    assert any(o["ShippingCost"] == 0 and o["VatMode"] == 0 for o in orders)


# --- customers ---------------------------------------------------------------------------------------------------


def test_company_customers_carry_a_company_and_a_vat_id(orders: list[Json]) -> None:
    companies = {o["Customer"]["Id"] for o in orders if o["InvoiceAddress"]["Company"] and o["Customer"]["VatId"]}
    assert len(companies) >= 4
    for order in orders:
        if order["Customer"]["VatId"]:
            assert order["InvoiceAddress"]["Company"]


def test_repeat_customers_share_one_customer_id_and_number(orders: list[Json]) -> None:
    per_customer = Counter(o["Customer"]["Id"] for o in orders)
    assert max(per_customer.values()) >= 4
    assert sum(1 for n in per_customer.values() if n >= 2) >= 5
    by_id: dict[int, set[tuple[int, str, str]]] = {}
    for order in orders:
        customer = order["Customer"]
        by_id.setdefault(customer["Id"], set()).add((customer["Number"], customer["Name"], order["CustomerNumber"]))
    for customer_id, variants in by_id.items():
        assert len(variants) == 1, customer_id
        ((number, _name, customer_number),) = variants
        assert str(number) == customer_number
    assert len({next(iter(v))[0] for v in by_id.values()}) == len(by_id)  # customer numbers are unique


# --- payments ----------------------------------------------------------------------------------------------------


def test_orders_with_payments_are_paid_in_full(orders: list[Json]) -> None:
    with_payments = [o for o in orders if o["Payments"]]
    assert len(with_payments) >= 35
    for order in with_payments:
        paid = sum((dec(p["PayValue"]) for p in order["Payments"]), Decimal(0))
        assert paid == dec(order["PaidAmount"]) == dec(order["TotalCost"]), order["BillBeeOrderId"]
        assert all(p["PayDate"] == order["PayedAt"] for p in order["Payments"])


def test_one_order_is_split_between_a_gift_card_and_paypal(orders: list[Json]) -> None:
    (split,) = [o for o in orders if len(o["Payments"]) > 1]
    assert split["PaymentMethod"] == 3
    assert sorted(p["PaymentType"] for p in split["Payments"]) == [3, 6]
    assert all(p["PayValue"] > 0 for p in split["Payments"])


def test_one_paid_order_has_no_payment_rows_and_paid_amount_zero(orders: list[Json]) -> None:
    quirky = [o for o in orders if o["PayedAt"] and not o["Payments"]]
    assert len(quirky) == 1
    assert quirky[0]["PaidAmount"] == 0.0
    assert quirky[0]["State"] in (4, 7)


def test_shipped_invoice_payment_orders_stay_open(sales: list[Json]) -> None:
    open_orders = [o for o in sales if o["PayedAt"] is None]
    assert len(open_orders) >= 2
    for order in open_orders:
        assert order["PaymentMethod"] == 26
        assert order["State"] == 4
        assert order["Payments"] == [] and order["PaidAmount"] == 0.0
        assert order["InvoiceNumber"]


def test_some_invoice_payment_orders_were_paid_later(orders: list[Json]) -> None:
    paid_invoices = [o for o in orders if o["PaymentMethod"] == 26 and o["Payments"]]
    assert paid_invoices
    assert all(when(o["PayedAt"]) > when(o["InvoiceDate"]) for o in paid_invoices)


# --- tags --------------------------------------------------------------------------------------------------------


def test_merchant_tags_are_present_and_nothing_is_exported_yet(orders: list[Json], connection: Json) -> None:
    tags = Counter(t for o in orders for t in o["Tags"])
    assert tags["VIP"] >= 3
    assert tags["Retoure geprüft"] >= 2
    export_tag = connection["exportTag"].casefold()
    assert not any(t.casefold() == export_tag for o in orders for t in o["Tags"])


# --- invoices ----------------------------------------------------------------------------------------------------


def test_exactly_one_paid_order_has_no_invoice(orders: list[Json]) -> None:
    uninvoiced = [o for o in orders if not o["InvoiceNumber"]]
    assert len(uninvoiced) == 1
    (order,) = uninvoiced
    assert order["State"] == 3
    assert order["InvoiceDate"] is None
    assert order["InvoiceNumber"] in (None, 0)
    assert order["PayedAt"] is not None


def test_invoice_numbers_are_unique_and_ascending(sales: list[Json]) -> None:
    with_invoice = invoiced(sales)
    assert len(with_invoice) == len(sales) - 1
    assert all(o["InvoiceNumberPrefix"] == "RE-2026-" for o in with_invoice)
    numbers = [o["InvoiceNumber"] for o in with_invoice]
    assert numbers == sorted(set(numbers))
    printed = [f"{o['InvoiceNumberPrefix']}{o['InvoiceNumber']}{o['InvoiceNumberPostfix'] or ''}" for o in with_invoice]
    assert len(set(printed)) == len(printed)


def test_invoice_dates_follow_order_dates_and_numbering(sales: list[Json]) -> None:
    with_invoice = invoiced(sales)
    for order in with_invoice:
        assert when(order["InvoiceDate"]) > when(order["CreatedAt"]), order["BillBeeOrderId"]
        assert when(order["LastModifiedAt"]) >= when(order["InvoiceDate"])
    dates = [when(o["InvoiceDate"]) for o in with_invoice]
    assert dates == sorted(dates)


def test_shipped_and_closed_orders_have_a_shipment(sales: list[Json]) -> None:
    for order in sales:
        if order["State"] in (4, 7):
            assert order["ShippedAt"] and order["ShippingIds"], order["BillBeeOrderId"]
        else:
            assert order["ShippedAt"] is None and order["ShippingIds"] == []


# --- the sample connection ---------------------------------------------------------------------------------------


def test_connection_file_has_exactly_the_documented_schema(connection: Json) -> None:
    assert list(connection) == ["connectionId", "name", "enabled", "general", "sevdesk", "accounts", "exportTag"]
    assert connection["connectionId"] == "demo-shop"
    assert connection["name"] == "Demo-Shop → sevDesk"
    assert connection["enabled"] is True
    assert connection["exportTag"] == "Sevdesk"
    assert connection["general"] == {
        "startDate": "2026-10-01",
        "shopIds": [1001, 1002],
        "includeManualOrders": True,
        "orderStateIds": [3, 4, 7],
    }
    assert connection["sevdesk"] == {
        "paymentReconciliation": "billbee",
        "createContacts": True,
        "bookUnassignedPaymentsAsDefault": True,
        "defaultCheckAccountId": 5199,
        "voucherDate": "invoice",
        "creditNotes": "voucher",
    }
    payment_accounts = {a["paymentMethod"]: a["checkAccountId"] for a in connection["accounts"]["paymentAccounts"]}
    assert payment_accounts == {3: 5101, 59: 5102, 26: 5103, 98: 5104, 63: 5105, 62: 5106}
    revenue = {(a["taxRule"], a["taxRate"]): a["accountDatevId"] for a in connection["accounts"]["revenueAccounts"]}
    assert revenue == {(1, "19"): 3631, (1, "7"): 3632, (1, "0"): 3633, (3, "0"): 3640, (2, "0"): 3650, (11, "0"): 3660}


def test_connection_file_holds_no_credentials() -> None:
    text = CONNECTION_FILE.read_text(encoding="utf-8").lower()
    for word in ("credential", "password", "token", "apikey", "api_key"):
        assert word not in text


def test_connection_is_accepted_by_the_settings_model(connection: Json) -> None:
    settings = ConnectionSettings.model_validate(connection)
    assert settings.public_dict() == connection


def test_connection_matches_the_sample_shop(orders: list[Json], sales: list[Json], connection: Json) -> None:
    assert connection["general"]["shopIds"] == [s["Id"] for s in sample_shops()]
    assert set(connection["general"]["orderStateIds"]) == {o["State"] for o in sales}
    assert all(o["CreatedAt"] >= connection["general"]["startDate"] for o in orders)
    mapped = {a["paymentMethod"] for a in connection["accounts"]["paymentAccounts"]}
    used = {p["PaymentType"] for o in orders for p in o["Payments"]} | {o["PaymentMethod"] for o in orders}
    # Bank transfer (1) and gift card (6) are deliberately unmapped: they go to the default account.
    assert used - mapped == {1, 6}


# --- credit notes --------------------------------------------------------------------------------------------------


def printed(order: Json) -> str:
    return f"{order['InvoiceNumberPrefix']}{order['InvoiceNumber']}{order['InvoiceNumberPostfix'] or ''}"


def gross_by_rate(order: Json) -> dict[Decimal, Decimal]:
    """Gross per VAT rate as the sample's invoices print it: goods by their tax index, shipping at the highest rate
    among the goods (the sandbox's invoice rule)."""
    rates = {1: Decimal(19), 2: Decimal(7)}
    out: dict[Decimal, Decimal] = {}
    for item in goods_lines(order):
        rate = rates[item["TaxIndex"]]
        out[rate] = out.get(rate, Decimal(0)) + dec(item["TotalPrice"])
    if order["ShippingCost"]:
        top = max(rates[i["TaxIndex"]] for i in goods_lines(order))
        out[top] = out.get(top, Decimal(0)) + dec(order["ShippingCost"])
    return out


def test_four_credit_notes_follow_the_orders_three_storno_orders_and_one_gutschrift(
    sales: list[Json], credit_notes: list[Json]
) -> None:
    assert len(credit_notes) == 4
    numbers = {o["OrderNumber"] for o in sales}
    stornos = [o for o in credit_notes if o["OrderNumber"]]
    assert len(stornos) == 3
    for storno in stornos:
        assert storno["OrderNumber"].endswith("-GS") and storno["OrderNumber"][:-3] in numbers
    (gutschrift,) = [o for o in credit_notes if not o["OrderNumber"]]
    assert gutschrift["BillBeeParentOrderId"] is None and gutschrift["Seller"]["BillbeeShopId"] is None
    assert [printed(o) for o in credit_notes] == [f"GS-2026-{n}" for n in range(1, 5)]
    assert min(o["BillBeeOrderId"] for o in credit_notes) > max(o["BillBeeOrderId"] for o in sales)


def test_a_storno_order_negates_lines_of_its_original_and_totals_to_the_cent(
    sales: list[Json], credit_notes: list[Json]
) -> None:
    by_number = {o["OrderNumber"]: o for o in sales}
    for storno in (o for o in credit_notes if o["OrderNumber"]):
        original = by_number[storno["OrderNumber"][:-3]]
        lines = {i["Product"]["SKU"]: i for i in original["OrderItems"]}
        for item in storno["OrderItems"]:
            source = lines[item["Product"]["SKU"]]
            assert item["Product"]["Title"] == f"Storno {source['Product']['Title']}"
            assert -source["Quantity"] <= item["Quantity"] < 0
            unit = dec(source["TotalPrice"]) / dec(source["Quantity"])
            assert dec(item["TotalPrice"]) == (unit * dec(item["Quantity"])).quantize(Decimal("0.01"))
            assert item["TaxIndex"] == source["TaxIndex"]
        assert dec(storno["ShippingCost"]) in (Decimal(0), -dec(original["ShippingCost"]))
        goods = sum((dec(i["TotalPrice"]) for i in storno["OrderItems"]), Decimal(0))
        assert dec(storno["TotalCost"]) == goods + dec(storno["ShippingCost"]) < 0
        assert when(storno["InvoiceDate"]) > when(original["InvoiceDate"])
        for rate, amount in gross_by_rate(storno).items():
            assert gross_by_rate(original)[rate] + amount >= 0  # never more taken back than invoiced


def test_credit_notes_cover_a_full_a_partial_mixed_rate_and_a_weeks_old_storno(
    sales: list[Json], credit_notes: list[Json]
) -> None:
    by_number = {o["OrderNumber"]: o for o in sales}
    stornos = [o for o in credit_notes if o["OrderNumber"]]
    full = [s for s in stornos if dec(s["TotalCost"]) == -dec(by_number[s["OrderNumber"][:-3]]["TotalCost"])]
    assert len(full) == 1
    partial_mixed = [s for s in stornos if s not in full and len(gross_by_rate(s)) == 2 and s["ShippingCost"]]
    assert len(partial_mixed) == 1
    def age(storno: Json) -> int:
        return (when(storno["InvoiceDate"]) - when(by_number[storno["OrderNumber"][:-3]]["InvoiceDate"])).days

    weeks_old = [s for s in stornos if age(s) > 45]
    assert len(weeks_old) == 1


def test_storno_orders_link_their_original_in_both_plausible_ways(
    sales: list[Json], credit_notes: list[Json], connection: Json
) -> None:
    ids = {o["BillBeeOrderId"]: o for o in sales}
    stornos = [o for o in credit_notes if o["OrderNumber"]]
    linked = [s for s in stornos if s["BillBeeParentOrderId"] is not None]
    assert linked and len(linked) < len(stornos)  # one is found only by its "-GS" number
    for storno in linked:
        assert ids[storno["BillBeeParentOrderId"]]["OrderNumber"] == storno["OrderNumber"][:-3]
    # Issuing a credit note is what counts, not its order state: two lie outside the connection's states.
    outside = [o for o in credit_notes if o["State"] not in connection["general"]["orderStateIds"]]
    assert {o["State"] for o in outside} == {1, 8}


def test_refunds_are_negative_payments_on_the_originals_method_and_the_gutschrift_is_open(
    sales: list[Json], credit_notes: list[Json]
) -> None:
    by_number = {o["OrderNumber"]: o for o in sales}
    for note in credit_notes:
        if not note["OrderNumber"]:
            assert note["Payments"] == [] and note["PayedAt"] is None and note["PaidAmount"] == 0.0
            continue
        original = by_number[note["OrderNumber"][:-3]]
        (refund,) = note["Payments"]
        assert dec(refund["PayValue"]) == dec(note["TotalCost"]) == dec(note["PaidAmount"])
        assert refund["PaymentType"] == original["Payments"][-1]["PaymentType"]
        assert when(refund["PayDate"]) > when(note["InvoiceDate"])

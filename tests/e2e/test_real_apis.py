"""The connector on its first day with the real APIs (issue 8), on the local stack: every reading the evidence leaves
open is a switch of the sandboxes, and the books must come out the same under each (``chaos.check_books``: one
voucher per invoice, the invoice's gross per rate to the cent, the PDF, one booking per payment, the tag).

One stack for the module; each test starts from a blank merchant (``chaos.reset``) and puts the switches back.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from chaos import check_books, reset

from local.faults import FaultRule
from local.sample_shop import sample_orders
from local.stack import LocalStack

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONNECTION: dict[str, Any] = json.loads((REPO / "local" / "sample_connection.json").read_text())
CID = CONNECTION["connectionId"]
SAMPLE = sample_orders()
# Mixed 19 %/7 % with shipping (0, 8, 36: shipping's rate only the invoice list tells), a manual order with
# shipping (5), a split payment (11), an intra-EU order (7).
ORDERS = [SAMPLE[i] for i in (0, 5, 7, 8, 11, 36)]
BILLBEE_DEFAULTS = {
    "invoice_totals": "positions", "null_lists": False, "retry_after_header": True, "invoice_pdf": "data",
    "create_invoice_on_invoiced": "same", "invoice_billbee_id": "order", "paging": True, "array_form": "both",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(orders=ORDERS, billbee_rate_limits=False) as local:
        local.save_connection(CONNECTION)
        yield local


@pytest.fixture
def merchant(stack: LocalStack) -> Iterator[LocalStack]:
    reset(stack, copy.deepcopy(ORDERS), CONNECTION)
    try:
        yield stack
    finally:
        for name, value in BILLBEE_DEFAULTS.items():
            setattr(stack.billbee, name, value)
        stack.sevdesk.delivery_after_voucher_date = "accept"
        for runtime in stack.runtimes():  # a worker that met sevDesk's 422 remembers it for its container
            for connection_id in list(runtime._clients):
                runtime.forget_clients(connection_id)


def run(stack: LocalStack, orders: list[dict[str, Any]] | None = None) -> None:
    stack.poll()
    stack.drain()
    books = check_books(stack, CID, originals=orders or ORDERS, settled=True)
    assert books.problems == [], books.summary()


def states(stack: LocalStack) -> dict[int, str]:
    return {r.order_id: r.state.value for r in stack.records(CID)}


def exported_all(stack: LocalStack, orders: list[dict[str, Any]] | None = None) -> None:
    assert states(stack) == {o["BillBeeOrderId"]: "EXPORTED" for o in orders or ORDERS}, [
        (r.order_id, r.reason, r.last_error) for r in stack.records(CID) if r.state.value != "EXPORTED"
    ]


def vouchers(stack: LocalStack) -> dict[str, dict[str, Any]]:
    return {v["description"]: v for v in stack.sevdesk.dump()["vouchers"]}


def gross_per_rate(voucher: dict[str, Any]) -> dict[Decimal, Decimal]:
    return {Decimal(p["taxRate"]): Decimal(p["sumGross"]) for p in voucher["positions"]}


def calls(stack: LocalStack, api: str, operation: str) -> list[Any]:
    sandbox = stack.billbee if api == "billbee" else stack.sevdesk
    return [e for e in sandbox.exchanges if e.operation == operation]


# -- item 1: both readings of the invoice list's total ---------------------------------------------------------------
def test_both_readings_of_the_invoice_total_book_the_same_vouchers_to_the_cent(merchant: LocalStack) -> None:
    booked: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
    for reading in ("positions", "with_fees"):
        reset(merchant, copy.deepcopy(ORDERS), CONNECTION)
        merchant.billbee.invoice_totals = reading
        run(merchant)
        exported_all(merchant)
        booked[reading] = {number: gross_per_rate(v) for number, v in vouchers(merchant).items()}
        for order in ORDERS:
            voucher = vouchers(merchant)[f"{order['InvoiceNumberPrefix']}{order['InvoiceNumber']}"]
            assert sum(gross_per_rate(voucher).values()) == Decimal(str(order["TotalCost"])).quantize(Decimal("0.01"))
    assert booked["positions"] == booked["with_fees"]
    mixed = booked["positions"][f"{ORDERS[0]['InvoiceNumberPrefix']}{ORDERS[0]['InvoiceNumber']}"]
    assert set(mixed) == {Decimal(19), Decimal(7)}  # shipping at the rate the invoice list gave it


# -- item 2: null lists ----------------------------------------------------------------------------------------------
def test_orders_whose_empty_lists_arrive_as_null_are_exported(merchant: LocalStack) -> None:
    merchant.billbee.null_lists = True
    orders = copy.deepcopy(ORDERS)
    orders[0]["Tags"], orders[3]["Comments"] = [], []
    reset(merchant, orders, CONNECTION)
    merchant.billbee.null_lists = True
    run(merchant, orders)
    exported_all(merchant, orders)


# -- item 4: the CreateInvoice answer ----------------------------------------------------------------------------------
def test_a_pdf_given_only_as_a_download_link_is_downloaded_without_credentials(merchant: LocalStack) -> None:
    merchant.billbee.invoice_pdf = "url"
    run(merchant)
    exported_all(merchant)
    downloads = calls(merchant, "billbee", "download_invoice_pdf")
    assert len(downloads) == len(ORDERS)
    for exchange in downloads:
        assert "authorization" not in exchange.request_headers
        assert "x-billbee-api-key" not in exchange.request_headers
    assert all(v["file"] and v["file"]["size"] > 0 for v in vouchers(merchant).values())


def test_a_createinvoice_answer_for_another_invoice_attaches_nothing_and_writes_no_voucher(
    merchant: LocalStack,
) -> None:
    merchant.billbee.create_invoice_on_invoiced = "new_number"
    merchant.poll()
    merchant.drain()
    assert set(states(merchant).values()) == {"NEEDS_ATTENTION"}
    for record in merchant.records(CID):
        assert "numbered" in (record.reason or "") and "not attached" in (record.reason or "")
    assert vouchers(merchant) == {}
    assert calls(merchant, "sevdesk", "upload_temp_file") == []
    assert calls(merchant, "sevdesk", "save_voucher") == []


# -- item 5: the printed invoice number ------------------------------------------------------------------------------
def test_the_voucher_number_is_billbees_printed_string_fixed_once_even_without_the_invoice_list(
    merchant: LocalStack,
) -> None:
    orders = copy.deepcopy([SAMPLE[3], SAMPLE[5], SAMPLE[0]])  # one rate each, and a mixed 19 %/7 % one
    for order in orders:
        order["InvoiceNumberPostfix"] = "-B"  # Billbee prints prefix + number, without it (php-sdk fixtures)
    reset(merchant, orders, CONNECTION)
    merchant.faults.add(FaultRule("billbee", "list_invoices", "503", times=float("inf")))
    merchant.poll()
    merchant.drain()
    # Without the invoice list, one-rate orders are booked from the order; the mixed one waits for the shipping's
    # rate, which only the invoice list gives, instead of being refused or guessed.
    mixed = merchant.record(CID, SAMPLE[0]["BillBeeOrderId"])
    assert mixed.state.value == "FAILED" and "list_invoices" in mixed.last_error
    merchant.faults.clear()
    run(merchant, orders)
    exported_all(merchant, orders)
    assert merchant.record(CID, SAMPLE[0]["BillBeeOrderId"]).invoice_number_source == "invoiceList"
    orders = orders[:2]
    for order in orders:
        record = merchant.record(CID, order["BillBeeOrderId"])
        assert record.invoice_number == f"{order['InvoiceNumberPrefix']}{order['InvoiceNumber']}"
        assert record.invoice_number_source == "createInvoice"  # Billbee's string, not prefix + number + postfix
    assert set(vouchers(merchant)) == {r.invoice_number for r in merchant.records(CID)}
    run(merchant, orders)  # a later run: the same key, nothing new
    assert len(vouchers(merchant)) == len(orders) + 1


# -- item 6: matching and paging the invoice list ------------------------------------------------------------------
def test_invoice_list_items_are_found_when_billbeeid_is_the_invoices_own_id_and_paging_is_missing(
    merchant: LocalStack,
) -> None:
    merchant.billbee.invoice_billbee_id = "invoice"
    merchant.billbee.paging = False
    run(merchant)
    exported_all(merchant)
    for record in merchant.records(CID):
        assert record.invoice is not None and record.invoice_number_source == "invoiceList"
    mixed = vouchers(merchant)[f"{ORDERS[0]['InvoiceNumberPrefix']}{ORDERS[0]['InvoiceNumber']}"]
    assert set(gross_per_rate(mixed)) == {Decimal(19), Decimal(7)}


def test_a_manual_export_reads_the_invoice_list_once_per_request_not_once_per_order(merchant: LocalStack) -> None:
    from connector.pipeline.manual import ManualOutcome, request_manual_export

    stored = merchant.runtime.store.get_connection(CID)
    assert stored is not None
    result = request_manual_export(
        merchant.runtime, stored, [o["BillBeeOrderId"] for o in ORDERS], set_tag=True, only_untagged=False,
        time_budget=60.0,
    )
    assert {o.outcome for o in result.outcomes} == {ManualOutcome.QUEUED}
    assert len(calls(merchant, "billbee", "list_invoices")) == 1
    merchant.drain()
    exported_all(merchant)


# -- item 7: array parameters ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["indexed", "multi"])
def test_whichever_array_form_billbee_binds_exactly_the_wanted_orders_are_exported(
    merchant: LocalStack, form: str
) -> None:
    ordered = copy.deepcopy(SAMPLE[43])
    ordered.update(State=1, InvoiceNumber=2999, BillBeeOrderId=300000189999001)  # invoiced, but "ordered"
    tagged = copy.deepcopy(SAMPLE[1])
    tagged["Tags"] = ["Sevdesk"]  # exported earlier, by hand or by Billbee's own connection
    orders = [*copy.deepcopy(ORDERS), ordered, tagged]
    reset(merchant, orders, CONNECTION)
    setattr(merchant.billbee, "array_form", form)  # noqa: B010 - a switch chosen by the parametrization
    merchant.poll()
    merchant.drain()
    assert states(merchant) == {o["BillBeeOrderId"]: "EXPORTED" for o in ORDERS}
    # The candidates' listing (the other one asks for exported orders since cancelled, state 8 with the tag).
    (query,) = [e.query for e in calls(merchant, "billbee", "list_orders") if ("excludeTags", "true") in e.query]
    assert ("orderStateId[0]", "3") in query


# -- item 8: a delivery date after the voucher date ------------------------------------------------------------------
def test_a_refused_delivery_date_after_the_voucher_date_falls_back_to_the_voucher_date_and_says_so(
    merchant: LocalStack,
) -> None:
    merchant.sevdesk.delivery_after_voucher_date = "reject"
    run(merchant)
    exported_all(merchant)
    for voucher in vouchers(merchant).values():
        assert voucher["deliveryDate"] == voucher["voucherDate"]
    shipped_later = [r for r in merchant.records(CID) if any("delivery date" in n for n in r.notes)]
    assert shipped_later
    refused = [e for e in calls(merchant, "sevdesk", "save_voucher") if e.status == 422]
    assert 1 <= len(refused) <= 2  # once per export container: later vouchers use the voucher date at once


def test_a_delivery_date_after_the_voucher_date_is_kept_where_sevdesk_accepts_it(merchant: LocalStack) -> None:
    run(merchant)
    shipped = [v for v in vouchers(merchant).values() if v["deliveryDate"] != v["voucherDate"]]
    assert shipped  # the sample orders ship after they are invoiced
    assert all(not any("delivery date" in n for n in r.notes) for r in merchant.records(CID))


# -- sevDesk's dates on the wire (ERRATA sevDesk 3) ------------------------------------------------------------------
def test_voucher_dates_go_out_as_german_dates_and_booking_dates_without_fractions(merchant: LocalStack) -> None:
    run(merchant)
    for exchange in calls(merchant, "sevdesk", "save_voucher"):
        voucher = exchange.request_body["voucher"]
        for field in ("voucherDate", "deliveryDate"):
            day, month, year = voucher[field].split(".")
            assert len(day) == 2 and len(month) == 2 and len(year) == 4
    for exchange in calls(merchant, "sevdesk", "book_amount"):
        assert "." not in exchange.request_body["date"]
    for exchange in merchant.sevdesk.exchanges:
        assert exchange.request_headers.get("x-version") == "default"


# -- item 2: one bad order never stops the others --------------------------------------------------------------------
def test_an_order_the_models_cannot_read_gets_its_own_record_and_the_others_are_exported(
    merchant: LocalStack,
) -> None:
    words = copy.deepcopy(SAMPLE[3])
    words.update(BillBeeOrderId=300000189100001, InvoiceNumber=3001)
    words["OrderItems"][0]["TotalPrice"] = "zwölf"
    no_date = copy.deepcopy(SAMPLE[9])
    no_date.update(BillBeeOrderId=300000189100002, InvoiceNumber=3002, InvoiceDate="morgen")
    no_id = copy.deepcopy(SAMPLE[10])
    no_id.update(BillBeeOrderId=-5, InvoiceNumber=3003, OrderNumber="A-1003")
    orders = [*copy.deepcopy(ORDERS), words, no_date]
    reset(merchant, orders, CONNECTION)
    with merchant.billbee.lock:
        merchant.billbee._orders[-5] = no_id  # an impossible id: the sandbox would refuse to store it otherwise
    summary = merchant.poll()["connections"][0]
    merchant.drain()
    assert summary["status"] == "OK" and summary["unreadable"] == 3
    assert states(merchant) == {
        **{o["BillBeeOrderId"]: "EXPORTED" for o in ORDERS},
        300000189100001: "NEEDS_ATTENTION",
        300000189100002: "NEEDS_ATTENTION",
    }
    reasons = {r.order_id: r.reason for r in merchant.records(CID)}
    assert "OrderItems[0].TotalPrice is 'zwölf'" in reasons[300000189100001]
    assert "InvoiceDate is 'morgen'" in reasons[300000189100002]
    assert any("A-1003" in p and "BillBeeOrderId" in p for p in summary["problems"])
    # The next hour: unchanged bad data is not written again, and the good orders are done.
    again = merchant.poll()["connections"][0]
    assert again["queued"] == 0 and again["unreadable"] == 3

"""Credit notes on the local stack (issue 13): Stornorechnungen and Gutschriften reach sevDesk once, to the cent per
VAT rate, with their PDF and their link to the original; refunds Billbee records are booked as negative amounts.

The sample shop's four credit notes (a full Storno set to "storniert", a partial Storno of a mixed 19 %/7 % order with
shipping linked only by its "-GS" number, a Gutschrift without original and without refund, a Storno of the first
order weeks later) run with their originals; further cases build on them: a Storno of an order exported months
before, an order cancelled after its export without a Stornorechnung, ``creditNotes: off``, sevDesk refusing a
negative voucher, lost answers and an unreachable Billbee while a Storno order's original is looked up.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from chaos import check_books, reset

from local.faults import FaultRule
from local.sample_shop import is_sample_credit_note, sample_orders
from local.sandbox.billbee import berlin_now, format_billbee_datetime
from local.stack import LocalStack

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONNECTION: dict[str, Any] = json.loads((REPO / "local" / "sample_connection.json").read_text())
CID = CONNECTION["connectionId"]
SAMPLE = sample_orders()
CREDIT_NOTES = [o for o in SAMPLE if is_sample_credit_note(o)]
FULL, PARTIAL, GUTSCHRIFT, WEEKS_LATER = CREDIT_NOTES
BY_NUMBER = {o["OrderNumber"]: o for o in SAMPLE if o["OrderNumber"]}
ORIGINALS = [BY_NUMBER[o["OrderNumber"][:-3]] for o in (FULL, PARTIAL, WEEKS_LATER)]
ORDERS = [*ORIGINALS, *CREDIT_NOTES]
D = Decimal


def printed(order: dict[str, Any]) -> str:
    return f"{order['InvoiceNumberPrefix']}{order['InvoiceNumber']}"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(orders=ORDERS, billbee_rate_limits=False) as local:
        local.save_connection(CONNECTION)
        yield local


@pytest.fixture
def merchant(stack: LocalStack) -> Iterator[LocalStack]:
    reset(stack, copy.deepcopy(ORDERS), CONNECTION)
    clocks = [(store, store.epoch) for store in (stack.runtime.store, stack.export_runtime.store)]
    try:
        yield stack
    finally:
        stack.sevdesk.negative_vouchers = "accept"
        stack.billbee.invoice_billbee_id = "order"
        for store, epoch in clocks:
            store.epoch = epoch


def run(stack: LocalStack) -> dict[str, Any]:
    result = stack.poll()
    stack.drain()
    return result


def books_are_right(stack: LocalStack) -> None:
    books = check_books(stack, CID, originals=ORDERS, settled=True)
    assert books.problems == [], books.summary()


def vouchers(stack: LocalStack) -> dict[str, dict[str, Any]]:
    return {v["description"]: v for v in stack.sevdesk.dump()["vouchers"]}


def per_rate(voucher: dict[str, Any]) -> dict[Decimal, Decimal]:
    return {D(p["taxRate"]): D(p["sumGross"]) for p in voucher["positions"]}


def listed_per_rate(stack: LocalStack, order: dict[str, Any]) -> dict[Decimal, Decimal]:
    """The credit note's gross per rate as Billbee's own invoice list prints it (positions and fees)."""
    from local.sandbox.invoices import invoice_for

    invoice = invoice_for(stack.billbee.order(order["BillBeeOrderId"]))
    out: dict[Decimal, Decimal] = {}
    for item in [*invoice["Positions"], *invoice["AdditionalFees"]]:
        rate = D(str(item["VatRate"])).normalize()
        amount = D(str(item.get("TotalGrossValue", item.get("Gross"))))
        out[rate] = out.get(rate, D(0)) + amount
    return {rate: amount.quantize(D("0.01")) for rate, amount in out.items() if amount}


def record(stack: LocalStack, order: dict[str, Any]) -> Any:
    return stack.record(CID, order["BillBeeOrderId"])


def writes(stack: LocalStack, operation: str) -> int:
    return sum(1 for e in stack.sevdesk.exchanges if e.operation == operation)


def storno_of(original: dict[str, Any], *, order_id: int, number: int, state: int = 8) -> dict[str, Any]:
    """A full Storno order of ``original`` as Billbee makes it today: "-GS" number, negated lines, refunded."""
    storno = copy.deepcopy(FULL)
    now = format_billbee_datetime(berlin_now())
    items = []
    for item in original["OrderItems"]:
        line = copy.deepcopy(item)
        line.update(Quantity=-item["Quantity"], TotalPrice=-item["TotalPrice"], TaxAmount=-item["TaxAmount"],
                    UnrebatedTotalPrice=-item["UnrebatedTotalPrice"], BillbeeId=item["BillbeeId"] + 900_000)
        items.append(line)
    storno.update(
        BillBeeOrderId=order_id, BillBeeParentOrderId=original["BillBeeOrderId"],
        OrderNumber=f"{original['OrderNumber']}-GS", State=state, InvoiceNumber=number, CreatedAt=now,
        InvoiceDate=now, OrderItems=items, ShippingCost=-original["ShippingCost"], TotalCost=-original["TotalCost"],
        Seller=original["Seller"], Customer=original["Customer"], PaymentMethod=original["PaymentMethod"],
        Payments=[{**FULL["Payments"][0], "BillbeeId": order_id + 1, "PayValue": -original["TotalCost"],
                   "PaymentType": original["Payments"][-1]["PaymentType"], "PayDate": now}],
        PayedAt=now, PaidAmount=-original["TotalCost"],
    )
    return storno


# -- the four cases of the sample shop -----------------------------------------------------------------------------
def test_each_credit_note_is_booked_once_to_the_cent_per_rate_with_its_pdf_and_its_original(
    merchant: LocalStack,
) -> None:
    result = run(merchant)
    assert result["connections"][0]["problems"] == []
    books_are_right(merchant)
    booked = vouchers(merchant)
    assert len(booked) == len(ORDERS)
    for note in CREDIT_NOTES:
        voucher = booked[printed(note)]
        assert voucher["creditDebit"] == "D" and voucher["file"] and voucher["file"]["size"] > 0
        assert per_rate(voucher) == listed_per_rate(merchant, note), printed(note)
        assert all(gross < 0 for gross in per_rate(voucher).values())
        assert sum(per_rate(voucher).values()) == D(str(note["TotalCost"])).quantize(D("0.01"))
        assert record(merchant, note).state.value == "EXPORTED"
    # The partial Storno of the mixed order: 7 % and 19 % (the lip balm and the shipping) to the cent.
    assert per_rate(booked[printed(PARTIAL)]) == {D(7): D("-9.80"), D(19): D("-9.40")}
    for note, original in zip((FULL, PARTIAL, WEEKS_LATER), ORIGINALS, strict=True):
        link = record(merchant, note).credit_note_of
        original_voucher = booked[printed(original)]
        assert link == {"orderId": original["BillBeeOrderId"], "invoiceNumber": printed(original),
                        "voucherId": str(original_voucher["id"])}
        assert {p["comment"].split(":")[0] for p in booked[printed(note)]["positions"]} == {
            f"Gutschrift zu Rechnung {printed(original)} (Beleg {original_voucher['id']})"}
        # The refund, booked as money going out on the original's payment account.
        (refund,) = booked[printed(note)]["bookings"]
        (payment,) = original_voucher["bookings"]
        assert D(str(refund["amount"])) == D(str(note["TotalCost"])).quantize(D("0.01"))
        assert refund["checkAccount"]["id"] == payment["checkAccount"]["id"]
        assert booked[printed(note)]["status"] == "1000"
    gutschrift = record(merchant, GUTSCHRIFT)
    assert gutschrift.credit_note_of is None and booked[printed(GUTSCHRIFT)]["status"] == "100"
    assert "no refund is recorded in Billbee for this credit note; the voucher stays open" in gutschrift.notes
    # Two of them lie outside the connection's states (8 "storniert", 1 "bestellt"): found in the invoice list.
    assert {FULL["State"], GUTSCHRIFT["State"]} == {8, 1}

    saved = writes(merchant, "save_voucher")
    second = run(merchant)
    assert writes(merchant, "save_voucher") == saved and writes(merchant, "book_amount") == len(ORDERS) - 1
    assert second["connections"][0]["problems"] == []
    books_are_right(merchant)


def test_under_the_reading_that_billbee_id_is_the_invoices_own_id_the_same_books_come_out(
    merchant: LocalStack,
) -> None:
    merchant.billbee.invoice_billbee_id = "invoice"
    run(merchant)
    books_are_right(merchant)
    assert {printed(o) for o in ORDERS} == set(vouchers(merchant))
    assert all(record(merchant, o).credit_note_of for o in (FULL, PARTIAL, WEEKS_LATER))


# -- a Storno months later, and an order cancelled without one --------------------------------------------------------
def test_a_storno_of_an_order_exported_months_ago_is_booked_and_linked_to_its_voucher(merchant: LocalStack) -> None:
    old = copy.deepcopy(ORIGINALS[0])
    old.update(CreatedAt="2026-07-14T10:00:00", InvoiceDate="2026-07-14T10:03:00", ShippedAt="2026-07-15T14:30:00",
               PayedAt="2026-07-14T10:00:18", LastModifiedAt="2026-07-18T10:00:00")
    connection = copy.deepcopy(CONNECTION)
    connection["general"]["startDate"] = "2026-07-01"
    reset(merchant, [old], connection)
    run(merchant)
    (exported,) = merchant.records(CID)
    assert exported.state.value == "EXPORTED"

    storno = storno_of(old, order_id=300000199000001, number=90)
    merchant.billbee.add_order(storno)
    result = run(merchant)
    assert result["connections"][0]["problems"] == []
    link = record(merchant, storno).credit_note_of
    assert link == {"orderId": old["BillBeeOrderId"], "invoiceNumber": printed(old),
                    "voucherId": exported.steps.voucher_id}
    booked = vouchers(merchant)
    assert per_rate(booked[printed(storno)]) == {rate: -gross for rate, gross in per_rate(booked[printed(old)]).items()}
    assert booked[printed(storno)]["voucherDate"] > booked[printed(old)]["voucherDate"]
    books = check_books(merchant, CID, originals=[old, storno], settled=True)
    assert books.problems == [], books.summary()


def test_an_order_cancelled_after_its_export_without_a_stornorechnung_is_reported_until_one_exists(
    merchant: LocalStack,
) -> None:
    original = ORIGINALS[0]
    reset(merchant, [copy.deepcopy(original)], CONNECTION)
    run(merchant)
    merchant.billbee.set_state(original["BillBeeOrderId"], 8)

    result = run(merchant)
    (problem,) = result["connections"][0]["problems"]
    assert problem == (
        f"order {original['BillBeeOrderId']} (invoice {printed(original)}) was cancelled after its export, but "
        "Billbee holds no Stornorechnung for it: create one in Billbee, then it is booked"
    )
    assert record(merchant, original).reason == problem
    assert record(merchant, original).state.value == "EXPORTED"  # its voucher stays; nothing is booked on a guess
    assert len(vouchers(merchant)) == 1

    storno = storno_of(original, order_id=300000199000002, number=91, state=7)
    merchant.billbee.add_order(storno)
    result = run(merchant)
    assert result["connections"][0]["problems"] == []
    assert record(merchant, original).reason is None
    assert record(merchant, storno).state.value == "EXPORTED"
    assert run(merchant)["connections"][0]["problems"] == []


def per_order_calls(stack: LocalStack, since: int) -> dict[tuple[str, int], int]:
    """Billbee calls about one order (read, find its Storno) after the ``since``-th exchange, by (operation, id)."""
    calls: dict[tuple[str, int], int] = {}
    for exchange in stack.billbee.exchanges[since:]:
        if exchange.operation == "get_order":
            key = ("get_order", int(exchange.path.rstrip("/").rsplit("/", 1)[-1]))
        elif exchange.operation == "find_order":
            number = unquote(exchange.path.rsplit("/", 1)[-1]).removesuffix("-GS")
            key = ("find_order", int(BY_NUMBER[number]["BillBeeOrderId"]))
        else:
            continue
        calls[key] = calls.get(key, 0) + 1
    return calls


def cancelled_listings(stack: LocalStack, since: int) -> list[dict[str, str]]:
    return [dict(e.query) for e in stack.billbee.exchanges[since:]
            if e.operation == "list_orders" and ("orderStateId[0]", "8") in e.query]


def test_the_hourly_check_of_cancelled_orders_reads_only_what_changed_and_what_still_waits(
    merchant: LocalStack,
) -> None:
    """Issue 12: the hourly cost follows what changed. A cancelled order that is covered by its Storno is looked at
    once; one still waiting for its Stornorechnung is read again each hour (its state, its Storno); the others cost
    nothing. The listing of cancelled orders asks only for the ones changed since the last poll (minus six hours)."""
    waiting, covered = ORIGINALS[0], ORIGINALS[2]
    reset(merchant, [copy.deepcopy(waiting), copy.deepcopy(covered)], CONNECTION)
    day = merchant.runtime.store.clock()[:10]
    run(merchant)
    merchant.billbee.set_state(waiting["BillBeeOrderId"], 8)
    merchant.billbee.set_state(covered["BillBeeOrderId"], 8)
    merchant.billbee.add_order(storno_of(covered, order_id=300000199000003, number=92))

    mark = len(merchant.billbee.exchanges)
    result = run(merchant)
    assert [p for p in result["connections"][0]["problems"] if "cancelled after its export" in p] == [
        record(merchant, waiting).reason]
    assert record(merchant, covered).reason is None
    if merchant.runtime.store.clock()[:10] == day:  # the first poll of a UTC day looks at every cancelled order
        (listing,) = cancelled_listings(merchant, mark)
        assert "modifiedAtMin" in listing, listing

    # A day later nothing about the two has changed: Billbee's listing of changed orders no longer brings them.
    with merchant.billbee.lock:
        for order in (waiting, covered):
            merchant.billbee._orders[order["BillBeeOrderId"]]["LastModifiedAt"] = "2026-01-02T10:00:00"
    for _hour in range(2):
        mark = len(merchant.billbee.exchanges)
        result = run(merchant)
        assert [p for p in result["connections"][0]["problems"] if "cancelled after its export" in p] == [
            record(merchant, waiting).reason]
        # Only the waiting order is read again (its state, then its Storno); the covered one costs nothing.
        calls = per_order_calls(merchant, mark)
        assert {order_id for _op, order_id in calls} == {waiting["BillBeeOrderId"]}, calls
        assert calls[("find_order", waiting["BillBeeOrderId"])] == 1
        same_day = merchant.runtime.store.clock()[:10] == day
        assert calls.get(("get_order", waiting["BillBeeOrderId"]), 0) == (1 if same_day else 0), calls

    merchant.billbee.add_order(storno_of(waiting, order_id=300000199000004, number=93, state=7))
    assert run(merchant)["connections"][0]["problems"] == []
    assert record(merchant, waiting).reason is None
    mark = len(merchant.billbee.exchanges)
    assert run(merchant)["connections"][0]["problems"] == []
    assert per_order_calls(merchant, mark) == {}  # nothing waits any more: no order is read


# -- the setting, and sevDesk's answer --------------------------------------------------------------------------------
def test_with_credit_notes_off_they_are_skipped_with_the_reason_and_nothing_is_booked(merchant: LocalStack) -> None:
    connection = copy.deepcopy(CONNECTION)
    connection["sevdesk"]["creditNotes"] = "off"
    reset(merchant, copy.deepcopy(ORDERS), connection)
    run(merchant)
    for note in CREDIT_NOTES:
        skipped = record(merchant, note)
        assert skipped.state.value == "SKIPPED"
        assert skipped.reason == ("credit notes are booked by hand (the connection's setting sevdesk.creditNotes is "
                                  "off)")
    assert set(vouchers(merchant)) == {printed(o) for o in ORIGINALS}
    assert not any(o["BillBeeOrderId"] == n["BillBeeOrderId"] and "Sevdesk" in o["Tags"]
                   for o in merchant.billbee.dump_orders() for n in CREDIT_NOTES)


def test_a_negative_voucher_sevdesk_refuses_needs_attention_with_its_message_and_is_not_retried(
    merchant: LocalStack,
) -> None:
    merchant.sevdesk.negative_vouchers = "reject"
    run(merchant)
    for note in CREDIT_NOTES:
        refused = record(merchant, note)
        assert refused.state.value == "NEEDS_ATTENTION"
        assert "The sum of a voucher must not be negative" in (refused.reason or "")
    assert set(vouchers(merchant)) == {printed(o) for o in ORIGINALS}
    refusals = writes(merchant, "save_voucher") - len(ORIGINALS)
    assert refusals == len(CREDIT_NOTES)  # one request each: no retry storm
    run(merchant)
    assert writes(merchant, "save_voucher") - len(ORIGINALS) == refusals  # the next hour leaves them alone


# -- exactly once under faults ----------------------------------------------------------------------------------------
def test_a_lost_answer_on_a_credit_notes_voucher_and_refund_never_books_it_twice(merchant: LocalStack) -> None:
    reset(merchant, [copy.deepcopy(ORIGINALS[1]), copy.deepcopy(PARTIAL)], CONNECTION)
    merchant.faults.add(FaultRule("sevdesk", "save_voucher", "saved500", times=1, after=1))
    merchant.faults.add(FaultRule("sevdesk", "book_amount", "saveddrop", times=1, after=1))
    for _ in range(4):
        run(merchant)
        if all(r.state.value == "EXPORTED" for r in merchant.records(CID)):
            break
        an_hour_later(merchant)
    books = check_books(merchant, CID, originals=[ORIGINALS[1], PARTIAL], settled=True)
    assert books.problems == [], books.summary()
    assert sum(f.fired for f in merchant.faults.rules) == 2
    assert len(vouchers(merchant)[printed(PARTIAL)]["bookings"]) == 1


def test_an_unreachable_billbee_while_the_original_is_looked_up_delays_the_credit_note_but_never_unlinks_it(
    merchant: LocalStack,
) -> None:
    merchant.faults.add(FaultRule("billbee", "find_order", "503", times=40))
    run(merchant)
    partial = record(merchant, PARTIAL)  # linked only by its "-GS" number, which needs find_order
    assert partial.state.value == "FAILED" and partial.steps.voucher_id is None
    assert printed(PARTIAL) not in vouchers(merchant)
    merchant.faults.clear()
    an_hour_later(merchant)
    run(merchant)
    books_are_right(merchant)
    assert record(merchant, PARTIAL).credit_note_of["orderId"] == ORIGINALS[1]["BillBeeOrderId"]


def an_hour_later(stack: LocalStack) -> None:
    """The functions' clocks an hour on: waits for lost answers and retries are due (the fixture puts them back)."""
    for store in (stack.runtime.store, stack.export_runtime.store):
        epoch = store.epoch
        store.epoch = lambda epoch=epoch: epoch() + 3600

"""Billbee's "General" tab, end to end on the local stack (issue 3), plus the export tag and the example connection.

Each test reads like the help text it proves. The stack is the real one (moto + Billbee and sevDesk sandboxes + the
real Poll and Export handlers); the orders are small hand-picked lists from the built-in sample shop, so each test
shows exactly which order is or is not exported and why.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from settings_support import ORDERS, REPO, connection, invoice_number, local_stack, orders, run_once

from local.faults import FaultRule
from local.stack import LocalStack

pytestmark = pytest.mark.slow  # each test runs the whole local stack

# Sample-shop orders used below (local/sample_shop.py), named by what makes them interesting here.
SHOPIFY_OCT_02 = 300000181401940  # shop 1001, created 2026-10-02, closed, PayPal, 19 % + 7 % + shipping
AMAZON_OCT_02 = 300000181402883  # shop 1002 (Amazon DE), created 2026-10-02, closed
AMAZON_OCT_05 = 300000181405712  # shop 1002, created 2026-10-05, closed
MANUAL_OCT_06 = 300000181406655  # a manual order (no shop), created 2026-10-06, closed, bank transfer
SHOPIFY_OCT_06 = 300000181407598  # shop 1001, created 2026-10-06, closed, PayPal
SHOPIFY_VIP = 300000181403826  # shop 1001, the merchant tagged it "VIP"
SHOPIFY_PAID = 300000181437882  # shop 1001, state 3 (paid), created 2026-11-12
SHOPIFY_PAID_2 = 300000181438825  # shop 1001, state 3 (paid), created 2026-11-14

STATE_ORDERED, STATE_PAID, STATE_SHIPPED, STATE_CLOSED, STATE_CANCELLED = 1, 3, 4, 7, 8


# -- helpers of this file (the shared ones are in settings_support.py) -----------------------------------------------


def states(stack: LocalStack, connection_id: str = "demo-shop") -> dict[int, str]:
    return {record.order_id: record.state.value for record in stack.records(connection_id)}


def tags(stack: LocalStack, order_id: int) -> list[str]:
    return list(stack.billbee.order(order_id).get("Tags") or [])


def voucher_numbers(stack: LocalStack) -> list[str]:
    return sorted(v["description"] for v in stack.sevdesk.dump()["vouchers"])


def exported(stack: LocalStack, connection_id: str = "demo-shop") -> set[int]:
    return {order_id for order_id, state in states(stack, connection_id).items() if state == "EXPORTED"}


def answers(stack: LocalStack, api: str, status: int) -> int:
    sandbox = stack.billbee if api == "billbee" else stack.sevdesk
    return sum(1 for exchange in sandbox.exchanges if exchange.status == status)


# -- several connections side by side -------------------------------------------------------------------------------
def test_several_named_connections_each_export_with_their_own_filters_accounts_and_tag() -> None:
    with local_stack(orders(SHOPIFY_OCT_02, AMAZON_OCT_02, MANUAL_OCT_06)) as stack:
        stack.save_connection(
            connection("shopify", general={"shopIds": [1001], "includeManualOrders": True}, exportTag="Sevdesk")
        )
        stack.save_connection(
            connection(
                "amazon",
                general={"shopIds": [1002], "includeManualOrders": False},
                sevdesk={"createContacts": False},
                exportTag="Buchhaltung Amazon",
            )
        )
        result = run_once(stack)

        assert {c["connectionId"]: c["status"] for c in result["connections"]} == {"amazon": "OK", "shopify": "OK"}
        assert exported(stack, "shopify") == {SHOPIFY_OCT_02, MANUAL_OCT_06}
        assert exported(stack, "amazon") == {AMAZON_OCT_02}
        # Each connection tags only its own orders, with its own tag (never the other connection's).
        assert tags(stack, SHOPIFY_OCT_02) == ["Sevdesk"]
        assert tags(stack, MANUAL_OCT_06) == ["Sevdesk"]
        assert tags(stack, AMAZON_OCT_02) == ["Buchhaltung Amazon"]
        # Each has its own credentials secret and its own sevDesk settings (contacts only for "shopify").
        secrets = {c: stack.runtime.store.get_connection(c).secret_id for c in ("shopify", "amazon")}
        assert secrets["shopify"] != secrets["amazon"]
        vouchers = {v["description"]: v for v in stack.sevdesk.dump()["vouchers"]}
        assert vouchers[invoice_number(SHOPIFY_OCT_02)].get("supplier") is not None
        assert vouchers[invoice_number(AMAZON_OCT_02)].get("supplier") is None
        assert vouchers[invoice_number(AMAZON_OCT_02)].get("supplierName")
        assert len(vouchers) == 3


def test_a_disabled_connection_is_skipped_by_the_hourly_run_and_the_others_go_on() -> None:
    with local_stack(orders(SHOPIFY_OCT_02, AMAZON_OCT_02)) as stack:
        stack.save_connection(connection("paused", enabled=False, general={"shopIds": [1001]}))
        stack.save_connection(connection("running", general={"shopIds": [1002]}, exportTag="Amazon"))
        result = run_once(stack)

        assert [c["connectionId"] for c in result["connections"]] == ["running"]
        assert states(stack, "paused") == {}
        assert tags(stack, SHOPIFY_OCT_02) == []
        assert exported(stack, "running") == {AMAZON_OCT_02}


def _break_sevdesk_token(stack: LocalStack, connection_id: str) -> None:
    """The merchant revoked this connection's sevDesk token: its secret now holds one sevDesk rejects."""
    from connector.settings.model import Credentials

    secret_id = stack.runtime.store.get_connection(connection_id).secret_id
    bad = {**stack.credentials, "sevdeskApiToken": "0" * 32}
    stack.runtime.secrets.put(connection_id, Credentials.model_validate(bad))
    stack.export_runtime.secrets.forget(secret_id)


def _break_billbee_password(stack: LocalStack, connection_id: str) -> None:
    from connector.settings.model import Credentials

    secret_id = stack.runtime.store.get_connection(connection_id).secret_id
    bad = {**stack.credentials, "billbeeApiPassword": "not-the-api-password"}
    stack.runtime.secrets.put(connection_id, Credentials.model_validate(bad))
    stack.export_runtime.secrets.forget(secret_id)


def _delete_secret(stack: LocalStack, connection_id: str) -> None:
    secret_id = stack.runtime.store.get_connection(connection_id).secret_id
    stack.runtime.secrets.delete(secret_id)
    stack.export_runtime.secrets.forget(secret_id)


def _billbee_down_for_the_first_connection(stack: LocalStack, connection_id: str) -> None:
    from connector.transport import RetryPolicy

    # Connections are polled in id order, so "a-broken" meets every attempt of its listing and "b-healthy" none.
    stack.faults.add(FaultRule(api="billbee", operation="list_orders", kind="503", times=RetryPolicy().attempts))


@pytest.mark.parametrize(
    ("breakage", "broken_status", "reason_words"),
    [
        (_break_sevdesk_token, "ERROR", "sevDesk rejected the API token"),
        (_break_billbee_password, "ERROR", "Billbee rejected the API key"),
        (_delete_secret, "ERROR", "does not exist"),
        (_billbee_down_for_the_first_connection, "FAILED", "server error"),
    ],
    ids=["revoked-sevdesk-token", "wrong-billbee-password", "missing-secret", "billbee-down"],
)
def test_one_connection_failing_never_stops_another(breakage: Any, broken_status: str, reason_words: str) -> None:
    with local_stack(orders(SHOPIFY_OCT_02, AMAZON_OCT_02)) as stack:
        stack.save_connection(connection("a-broken", general={"shopIds": [1001], "includeManualOrders": False}))
        stack.save_connection(
            connection("b-healthy", general={"shopIds": [1002], "includeManualOrders": False}, exportTag="Amazon")
        )
        breakage(stack, "a-broken")
        result = run_once(stack)

        summaries = {c["connectionId"]: c for c in result["connections"]}
        assert summaries["a-broken"]["status"] == broken_status
        assert reason_words in summaries["a-broken"]["error"]
        assert summaries["b-healthy"]["status"] == "OK"
        assert exported(stack, "b-healthy") == {AMAZON_OCT_02}
        assert tags(stack, AMAZON_OCT_02) == ["Amazon"]
        # The broken connection wrote nothing anywhere.
        assert states(stack, "a-broken") == {}
        assert tags(stack, SHOPIFY_OCT_02) == []
        assert voucher_numbers(stack) == [invoice_number(AMAZON_OCT_02)]
        if broken_status == "ERROR":
            status = stack.runtime.store.get_connection_status("a-broken")
            assert status.state == "ERROR" and reason_words in (status.reason or "")
            # One rejected request per hourly run, not a retry storm.
            assert answers(stack, "sevdesk", 401) + answers(stack, "billbee", 401) <= 1


# -- start date -----------------------------------------------------------------------------------------------------
def test_orders_created_before_the_start_date_are_never_exported() -> None:
    before = [SHOPIFY_OCT_02, AMAZON_OCT_05]
    on_or_after = [MANUAL_OCT_06, SHOPIFY_OCT_06]
    with local_stack(orders(*before, *on_or_after)) as stack:
        stack.save_connection(connection(general={"startDate": "2026-10-06"}))
        run_once(stack)
        assert exported(stack) == set(on_or_after)  # the start day itself counts

        # Still never, even when an older order changes (a new state, a new modification time) and runs go on.
        stack.billbee.set_state(SHOPIFY_OCT_02, STATE_SHIPPED)
        run_once(stack)

        assert set(states(stack)) == set(on_or_after)  # no record at all for the older orders
        for order_id in before:
            assert tags(stack, order_id) == []
        assert voucher_numbers(stack) == sorted(invoice_number(o) for o in on_or_after)


# -- shops ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shop_ids", "include_manual", "expected"),
    [
        ([1001], True, {SHOPIFY_OCT_02, MANUAL_OCT_06}),
        ([1001], False, {SHOPIFY_OCT_02}),
        ([], False, {SHOPIFY_OCT_02, AMAZON_OCT_02}),
        ([], True, {SHOPIFY_OCT_02, AMAZON_OCT_02, MANUAL_OCT_06}),
    ],
    ids=["shop-1001+manual", "shop-1001-only", "every-shop-no-manual", "every-shop+manual"],
)
def test_only_the_chosen_shops_orders_are_exported_and_manual_orders_follow_their_own_switch(
    shop_ids: list[int], include_manual: bool, expected: set[int]
) -> None:
    """No shop chosen means every shop; manual orders have no shop and are exported only when included."""
    everything = {SHOPIFY_OCT_02, AMAZON_OCT_02, MANUAL_OCT_06}
    with local_stack(orders(*sorted(everything))) as stack:
        stack.save_connection(connection(general={"shopIds": shop_ids, "includeManualOrders": include_manual}))
        run_once(stack)

        assert exported(stack) == expected
        assert set(states(stack)) == expected  # the others are not even candidates
        for order_id in everything - expected:
            assert tags(stack, order_id) == []
        assert voucher_numbers(stack) == sorted(invoice_number(o) for o in expected)


def test_a_shop_billbee_does_not_know_is_refused_at_setup_and_nothing_is_saved() -> None:
    from connector.pipeline.setup import SetupError

    with local_stack(orders(SHOPIFY_OCT_02)) as stack:
        with pytest.raises(SetupError, match=r"shop\[4242\]: Billbee has no shop 4242"):
            stack.save_connection(connection(general={"shopIds": [1001, 4242]}))
        assert stack.runtime.store.get_connection("demo-shop") is None


# -- order states ---------------------------------------------------------------------------------------------------
def test_an_order_that_was_paid_but_is_now_cancelled_is_not_exported_when_only_paid_is_selected() -> None:
    """The state *at the time of the transfer* counts: listed as paid, cancelled before its export ran."""
    with local_stack(orders(SHOPIFY_PAID, SHOPIFY_PAID_2)) as stack:
        stack.save_connection(connection(general={"orderStateIds": [STATE_PAID]}))
        stack.poll()
        stack.billbee.set_state(SHOPIFY_PAID, STATE_CANCELLED)  # between the listing and the transfer
        stack.drain()

        assert invoice_number(SHOPIFY_PAID) not in voucher_numbers(stack)
        assert tags(stack, SHOPIFY_PAID) == []
        record = stack.record("demo-shop", SHOPIFY_PAID)
        assert record.state.value == "SKIPPED"
        assert record.reason and "state" in record.reason
        assert exported(stack) == {SHOPIFY_PAID_2}  # the other paid order is not held up


def test_an_order_cancelled_while_its_export_is_still_queued_is_skipped_by_the_next_run() -> None:
    """The export queue is behind (e.g. sevDesk was slow): the next hourly run sees the cancellation first."""
    with local_stack(orders(SHOPIFY_PAID, SHOPIFY_PAID_2)) as stack:
        stack.save_connection(connection(general={"orderStateIds": [STATE_PAID]}))
        stack.poll()  # both listed and queued, not yet exported
        stack.billbee.set_state(SHOPIFY_PAID, STATE_CANCELLED)
        stack.poll()  # the next run: the order no longer matches
        stack.drain()  # now the queue (with both first-run messages) is worked off

        record = stack.record("demo-shop", SHOPIFY_PAID)
        assert record.state.value == "SKIPPED"
        assert "no longer matches" in (record.reason or "")
        assert tags(stack, SHOPIFY_PAID) == []
        assert voucher_numbers(stack) == [invoice_number(SHOPIFY_PAID_2)]


def test_an_order_that_reaches_a_chosen_state_later_is_exported_by_the_next_run() -> None:
    later = copy.deepcopy(ORDERS[SHOPIFY_PAID])
    later["State"] = STATE_ORDERED
    with local_stack([later, *orders(SHOPIFY_PAID_2)]) as stack:
        stack.save_connection(connection(general={"orderStateIds": [STATE_PAID, STATE_SHIPPED, STATE_CLOSED]}))
        run_once(stack)
        assert exported(stack) == {SHOPIFY_PAID_2}
        assert stack.record("demo-shop", SHOPIFY_PAID) is None  # not a candidate while only "ordered"

        stack.billbee.set_state(SHOPIFY_PAID, STATE_PAID)
        run_once(stack)

        assert exported(stack) == {SHOPIFY_PAID, SHOPIFY_PAID_2}
        assert "Sevdesk" in tags(stack, SHOPIFY_PAID)
        assert voucher_numbers(stack).count(invoice_number(SHOPIFY_PAID)) == 1


# -- the export tag -------------------------------------------------------------------------------------------------
def test_the_export_tag_is_configurable_and_added_with_post_keeping_the_merchants_own_tags() -> None:
    with local_stack(orders(SHOPIFY_VIP, SHOPIFY_OCT_02)) as stack:
        stack.save_connection(connection(exportTag="An sevDesk übertragen"))
        run_once(stack)

        assert tags(stack, SHOPIFY_VIP) == ["VIP", "An sevDesk übertragen"]
        assert tags(stack, SHOPIFY_OCT_02) == ["An sevDesk übertragen"]
        tag_calls = [e for e in stack.billbee.exchanges if e.path.endswith("/tags")]
        assert len(tag_calls) == 2
        assert {e.method for e in tag_calls} == {"POST"}  # PUT would replace the merchant's tags
        assert all(e.request_body == {"Tags": ["An sevDesk übertragen"]} for e in tag_calls)

        # Tagged orders are left out of the next listing: nothing is exported twice.
        run_once(stack)
        listings = [e for e in stack.billbee.exchanges if e.operation == "list_orders"]
        assert ["tag[0]", "An sevDesk übertragen"] in [list(q) for q in listings[-1].query]  # the SDKs' form
        assert len(stack.sevdesk.dump()["vouchers"]) == 2


def test_the_export_tag_defaults_to_sevdesk() -> None:
    body = connection()
    del body["exportTag"]
    with local_stack(orders(SHOPIFY_OCT_02)) as stack:
        stack.save_connection(body)
        run_once(stack)
        assert stack.runtime.store.get_connection("demo-shop").settings.export_tag == "Sevdesk"
        assert tags(stack, SHOPIFY_OCT_02) == ["Sevdesk"]


# -- the example connection file through python -m local.run ---------------------------------------------------------
def test_local_run_with_the_example_connection_shows_each_options_effect(tmp_path: Path) -> None:
    example = json.loads((REPO / "local" / "example_connection.json").read_text())
    out = tmp_path / "out"
    result = subprocess.run(  # noqa: S603 - our own runner with fixed arguments
        [sys.executable, "-m", "local.run", "--connection", "local/example_connection.json", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=400, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    sevdesk = json.loads((out / "sevdesk.json").read_text())
    billbee = {o["BillBeeOrderId"]: o for o in json.loads((out / "billbee.json").read_text())}
    general, tab2, tag = example["general"], example["sevdesk"], example["exportTag"]
    assert report["connection"]["status"] == "OK"

    # General: start date, shops (+ manual orders), states decide which orders are exported and tagged.
    def wanted(order: dict[str, Any]) -> bool:
        shop = (order.get("Seller") or {}).get("BillbeeShopId")
        return (
            order["CreatedAt"][:10] >= general["startDate"]
            and (shop in general["shopIds"] if shop is not None else general["includeManualOrders"])
            and order["State"] in general["orderStateIds"]
            and bool(order.get("InvoiceNumber"))
        )

    # Credit notes: with creditNotes "off" they are listed as SKIPPED, with the reason, and never booked.
    credit_notes = {order_id for order_id, order in ORDERS.items() if order["TotalCost"] < 0}
    assert tab2["creditNotes"] == "off" and credit_notes
    for entry in report["orders"]:
        if entry["orderId"] in credit_notes:
            assert entry["state"] == "SKIPPED" and "sevdesk.creditNotes is off" in entry["reason"]
    expected = {order_id for order_id, order in ORDERS.items() if wanted(order)} - credit_notes
    assert {o["orderId"] for o in report["orders"] if o["state"] == "EXPORTED"} == expected
    assert {i for i, o in billbee.items() if tag in o["Tags"]} == expected
    assert "Sevdesk" not in {t for o in billbee.values() for t in o["Tags"]}
    assert {v["description"] for v in sevdesk["vouchers"]} == {invoice_number(i) for i in expected}

    by_number = {v["description"]: v for v in sevdesk["vouchers"]}
    mapped = {m["paymentMethod"]: m["checkAccountId"] for m in example["accounts"]["paymentAccounts"]}
    for order_id in expected:
        order, voucher = ORDERS[order_id], by_number[invoice_number(order_id)]
        assert voucher["file"] is not None and voucher["file"]["mimeType"] == "application/pdf"
        # sevDesk tab: contacts on, reconciliation in Billbee, voucher date = payment date (invoice date if unpaid).
        assert tab2["createContacts"] and voucher.get("supplier") is not None
        paid_at = order.get("PayedAt")
        assert voucher["voucherDate"][:10] == (paid_at or order["InvoiceDate"])[:10], order_id
        # Each Billbee payment goes to the account mapped to its own method (a split payment may use two).
        methods = {p.get("PaymentType") or order["PaymentMethod"] for p in order.get("Payments") or []}
        if not methods and paid_at:
            methods = {order["PaymentMethod"]}
        booked = {int(b["checkAccount"]["id"]) for b in voucher["bookings"]}
        assert booked == {mapped[m] for m in methods if m in mapped}, order_id
        if methods and methods <= mapped.keys():
            assert voucher["status"] == "1000", order_id
        else:  # unmapped method with default payments off, or not paid yet: (partly) open, and the report says why
            assert voucher["status"] != "1000", order_id
            notes = next(o["notes"] for o in report["orders"] if o["orderId"] == order_id)
            assert notes, order_id
    assert len({c["customerNumber"] for c in sevdesk["contacts"]}) == len(sevdesk["contacts"])

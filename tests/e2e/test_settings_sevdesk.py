"""Billbee's "sevDesk" tab, end to end on the local stack (issue 3).

Payment reconciliation, the API token (at setup and when revoked later), the bookkeeping version, contacts, unassigned
payments and the voucher date, each shown on a few sample-shop orders run through the real Poll and Export handlers.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from settings_support import (
    ORDERS,
    calls,
    connection,
    invoice_number,
    local_stack,
    orders,
    run_once,
    vouchers,
)

from local.stack import LocalStack

pytestmark = pytest.mark.slow  # each test runs the whole local stack

# Sample-shop orders used below (local/sample_shop.py).
ANNA_1 = 300000181401940  # customer Anna Schmidt (a person), PayPal, one payment
ANNA_2 = 300000181407598  # Anna Schmidt again, PayPal
ANNA_3 = 300000181412313  # Anna Schmidt again: split payment, 25.00 gift card (method 6) + 40.70 PayPal
GRUENBLATT = 300000181403826  # Grünblatt Kosmetikstudio GmbH, on invoice: ordered+invoiced 2026-10-03, paid 10-16
NATURSCHOEN = 300000181408541  # Naturschön Handels GmbH, Vienna, VAT id ATU68543219 (intra-EU), prepayment
GRUENBLATT_UNPAID = 300000181421797  # Grünblatt again, on invoice (method 26), not paid yet
BANK_TRANSFER = 300000181429341  # paid by bank transfer (method 1), which the sample connection does not map
DEFAULT_ACCOUNT, PAYPAL_ACCOUNT, INVOICE_ACCOUNT = 5199, 5101, 5103


# -- helpers of this file (the shared ones are in settings_support.py) -----------------------------------------------


def voucher_of(stack: LocalStack, order_id: int) -> dict[str, Any]:
    return vouchers(stack)[invoice_number(order_id)]


def bookings(voucher: dict[str, Any]) -> list[tuple[int, Decimal, str, str]]:
    """(account, amount, booking day, type) per booking, in booking order."""
    return [
        (int(b["checkAccount"]["id"]), Decimal(b["amount"]), b["bookingDate"][:10], b["type"])
        for b in voucher["bookings"]
    ]


def state_of(stack: LocalStack, order_id: int, connection_id: str = "demo-shop") -> str:
    return str(stack.record(connection_id, order_id).state.value)


def hour_later(stack: LocalStack, hours: int = 1) -> None:
    """Let the poll's clock run ahead (the next hourly run), instead of sleeping."""
    later = datetime.now(UTC) + timedelta(hours=hours)
    stack.runtime.store.clock = lambda: later.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- payment reconciliation -----------------------------------------------------------------------------------------
def test_reconciliation_in_billbee_books_each_payment_on_its_offline_account_dated_by_the_payment() -> None:
    with local_stack(orders(ANNA_1, ANNA_3, GRUENBLATT)) as stack:
        stack.save_connection(connection(sevdesk={"paymentReconciliation": "billbee"}))
        run_once(stack)

        one = voucher_of(stack, ANNA_1)
        assert one["status"] == "1000"  # paid
        assert bookings(one) == [(PAYPAL_ACCOUNT, Decimal("43.6"), "2026-10-02", "FULL_PAYMENT")]

        # Several payments, several bookings: the gift card on the default account, PayPal on the PayPal account.
        split = voucher_of(stack, ANNA_3)
        assert split["status"] == "1000"
        assert sorted(bookings(split)) == [
            # The booking that brings the paid sum up to the total is the full payment (issue 8, item 11).
            (PAYPAL_ACCOUNT, Decimal("40.7"), "2026-10-11", "FULL_PAYMENT"),
            (DEFAULT_ACCOUNT, Decimal("25"), "2026-10-11", "N"),
        ]

        # Dated by the payment (16 Oct), not by the invoice (3 Oct).
        paid_later = voucher_of(stack, GRUENBLATT)
        assert bookings(paid_later) == [(INVOICE_ACCOUNT, Decimal("186.98"), "2026-10-16", "FULL_PAYMENT")]
        assert paid_later["voucherDate"][:10] == "2026-10-03"

        assert len(calls(stack, "book_amount")) == 4
        assert all(e.method == "PUT" for e in calls(stack, "book_amount"))


def test_reconciliation_in_sevdesk_sends_every_voucher_open_without_a_booking() -> None:
    with local_stack(orders(ANNA_1, ANNA_3, GRUENBLATT)) as stack:
        stack.save_connection(connection(sevdesk={"paymentReconciliation": "sevdesk"}))
        run_once(stack)

        assert len(vouchers(stack)) == 3
        for voucher in vouchers(stack).values():
            assert voucher["status"] == "100", voucher["description"]  # open, for sevDesk's own bank matching
            assert voucher["bookings"] == []
        assert calls(stack, "book_amount") == []
        assert all(r.state.value == "EXPORTED" and r.steps.bookings == {} for r in stack.records("demo-shop"))


# -- the API token --------------------------------------------------------------------------------------------------
def test_a_wrong_sevdesk_token_is_refused_at_setup_and_nothing_is_saved() -> None:
    from connector.pipeline.setup import SetupError

    with local_stack(orders(ANNA_1)) as stack:
        body = connection()
        body["credentials"] = {**stack.credentials, "sevdeskApiToken": "f" * 32}
        with pytest.raises(SetupError) as refused:
            stack.save_connection(body)

        failed = {c.name: c.detail for c in refused.value.report.checks if not c.ok}
        assert failed == {"sevdeskToken": "sevDesk rejected the API token"}
        assert "f" * 32 not in str(refused.value)
        assert stack.runtime.store.get_connection("demo-shop") is None
        secrets = stack.client("secretsmanager").list_secrets()["SecretList"]
        assert not any(s["Name"].endswith("demo-shop") for s in secrets)
        assert calls(stack, "save_voucher") == []


def test_a_token_revoked_after_setup_stops_the_connection_with_a_clear_error_and_no_retry_storm(tmp_path: Path) -> None:
    order_ids = [ANNA_1, ANNA_2, ANNA_3, GRUENBLATT, NATURSCHOEN, BANK_TRANSFER]
    log = tmp_path / "functions.log"
    with local_stack(orders(*order_ids)) as stack, stack.function_logs(log):
        good_token = stack.credentials["sevdeskApiToken"]
        stack.save_connection(connection())
        stack.poll()  # all six listed and queued
        stack.sevdesk.api_token = "revoked-" + "0" * 24  # the merchant revokes the token in sevDesk
        stack.drain()

        status = stack.runtime.store.get_connection_status("demo-shop")
        assert status.state == "ERROR"
        assert "sevDesk rejected the API token" in (status.reason or "")
        report = stack.report("demo-shop")
        assert report["connection"]["status"] == "ERROR"
        assert vouchers(stack) == {}
        assert not any(r.state.value == "EXPORTED" for r in stack.records("demo-shop"))
        # Stopped at once: at most one rejected request per concurrent export worker, not one per order and retry.
        rejected_during_export = sum(1 for e in stack.sevdesk.exchanges if e.status == 401)
        assert 1 <= rejected_during_export <= 2
        assert stack.dead_letters() == []  # nothing hammered the queue until it gave up

        run_once(stack)  # the next hourly run checks the token once and stops again
        assert sum(1 for e in stack.sevdesk.exchanges if e.status == 401) == rejected_during_export + 1
        assert stack.runtime.store.get_connection_status("demo-shop").state == "ERROR"

        # The merchant enters a valid token: the next run exports every order, once.
        stack.sevdesk.api_token = good_token
        stack.save_connection(connection())
        hour_later(stack)
        run_once(stack)
        assert stack.runtime.store.get_connection_status("demo-shop").state == "OK"
        assert {r.order_id for r in stack.records("demo-shop") if r.state.value == "EXPORTED"} == set(order_ids)
        assert sorted(vouchers(stack)) == sorted(invoice_number(o) for o in order_ids)

    logged = log.read_text()
    assert "sevDesk rejected the API token" in logged
    for secret in (good_token, *stack.credentials.values()):
        assert secret not in logged
        assert secret not in json.dumps(report, default=str)


# -- bookkeeping version --------------------------------------------------------------------------------------------
def test_a_sevdesk_account_on_bookkeeping_1_0_is_refused_at_setup_with_a_clear_message() -> None:
    from connector.pipeline.setup import SetupError

    with local_stack(orders(ANNA_1), bookkeeping_version="1.0") as stack:
        with pytest.raises(SetupError) as refused:
            stack.save_connection(connection())

        failed = {c.name: c.detail for c in refused.value.report.checks if not c.ok}
        assert list(failed) == ["bookkeepingVersion"]
        assert "1.0" in failed["bookkeepingVersion"] and "only version 2.0" in failed["bookkeepingVersion"]
        assert stack.runtime.store.get_connection("demo-shop") is None


def test_an_account_switched_to_bookkeeping_1_0_after_setup_is_not_written_to() -> None:
    with local_stack(orders(ANNA_1, ANNA_2)) as stack:
        stack.save_connection(connection())
        stack.sevdesk.bookkeeping_version = "1.0"
        result = run_once(stack)

        assert result["connections"][0]["status"] == "ERROR"
        status = stack.runtime.store.get_connection_status("demo-shop")
        assert status.state == "ERROR"
        assert "bookkeeping version 1.0" in (status.reason or "") and "2.0" in (status.reason or "")
        assert calls(stack, "save_voucher") == [] and calls(stack, "upload_temp_file") == []
        assert stack.records("demo-shop") == []


# -- contacts -------------------------------------------------------------------------------------------------------
def test_one_sevdesk_contact_per_billbee_customer_across_orders_and_runs() -> None:
    with local_stack(orders(ANNA_1, ANNA_2, NATURSCHOEN)) as stack:
        stack.save_connection(connection(sevdesk={"createContacts": True}))
        run_once(stack)
        stack.billbee.add_order(copy.deepcopy(ORDERS[ANNA_3]))  # Anna orders again before the next run
        run_once(stack)

        contacts = stack.sevdesk.dump()["contacts"]
        anna = ORDERS[ANNA_1]["Customer"]["Id"]
        assert sorted(c["customerNumber"] for c in contacts) == sorted(
            [f"BB-{anna}", f"BB-{ORDERS[NATURSCHOEN]['Customer']['Id']}"]
        )
        anna_contact = next(c["id"] for c in contacts if c["customerNumber"] == f"BB-{anna}")
        for order_id in (ANNA_1, ANNA_2, ANNA_3):
            assert voucher_of(stack, order_id)["supplier"]["id"] == anna_contact
        assert len(calls(stack, "create_contact")) == 2
        # Looked up before created: each creation follows a search for its customer number (two export workers
        # interleave their requests, so the search need not be the request just before).
        exchanges = list(stack.sevdesk.exchanges)
        for index, exchange in enumerate(exchanges):
            if exchange.operation == "create_contact":
                number = str(exchange.request_body["customerNumber"])
                assert any(e.operation == "list_contacts" and ("customerNumber", number) in e.query
                           for e in exchanges[:index]), number


def test_a_contact_that_already_exists_in_sevdesk_is_found_by_its_customer_number_and_not_created_twice() -> None:
    shipped = copy.deepcopy(ORDERS[ANNA_2])
    shipped["State"] = 4
    with local_stack([*orders(ANNA_1), shipped]) as stack:
        # A first connection exported Anna's closed order and created her contact.
        stack.save_connection(connection("first", sevdesk={"createContacts": True}, general={"orderStateIds": [7]}))
        run_once(stack)
        [existing] = stack.sevdesk.dump()["contacts"]

        # A second connection to the same sevDesk account has never seen Anna: it finds her, it does not add her.
        stack.save_connection(
            connection("second", sevdesk={"createContacts": True}, general={"orderStateIds": [4]}, exportTag="Zwei")
        )
        run_once(stack)

        assert stack.record("second", ANNA_2).state.value == "EXPORTED"
        assert [c["id"] for c in stack.sevdesk.dump()["contacts"]] == [existing["id"]]
        assert voucher_of(stack, ANNA_2)["supplier"]["id"] == existing["id"]
        assert stack.record("second", ANNA_2).steps.contact_id == existing["id"]
        assert len(calls(stack, "create_contact")) == 1
        searches = [e for e in calls(stack, "list_contacts") if ["customerNumber", existing["customerNumber"]]
                    in [list(q) for q in e.query]]
        assert len(searches) == 2  # one per connection: the first before creating, the second instead of creating


def test_companies_become_organisations_and_people_persons_with_address_email_and_vat_id() -> None:
    with local_stack(orders(ANNA_1, NATURSCHOEN)) as stack:
        stack.save_connection(connection(sevdesk={"createContacts": True}))
        run_once(stack)
        contacts = {c["customerNumber"]: c for c in stack.sevdesk.dump()["contacts"]}

        company = contacts[f"BB-{ORDERS[NATURSCHOEN]['Customer']['Id']}"]
        assert company["name"] == "Naturschön Handels GmbH"  # an organisation: it has a name
        assert company["surename"] is None and company["familyname"] is None  # null, as the live API sends it
        assert company["vatNumber"] == "ATU68543219"
        assert company["category"]["id"] == "3"  # customer
        [address] = company["addresses"]
        assert (address["street"], address["zip"], address["city"]) == ("Mariahilfer Straße 88", "1070", "Wien")
        countries = {c["id"]: c["code"] for c in stack.sevdesk.countries}
        assert countries[int(address["country"]["id"])] == "at"
        assert [(w["type"], w["value"]) for w in company["communicationWays"]] == [
            ("EMAIL", "office@naturschoen.example")
        ]

        person = contacts[f"BB-{ORDERS[ANNA_1]['Customer']['Id']}"]
        assert (person["surename"], person["familyname"]) == ("Anna", "Schmidt")
        assert "name" not in person or not person["name"]
        assert person["addresses"][0]["city"] == "Köln"
        assert [w["value"] for w in person["communicationWays"]] == ["anna.schmidt@example.com"]


def test_without_contacts_the_voucher_names_the_customer_in_supplier_name_only() -> None:
    with local_stack(orders(ANNA_1, GRUENBLATT)) as stack:
        stack.save_connection(connection(sevdesk={"createContacts": False}))
        run_once(stack)

        assert stack.sevdesk.dump()["contacts"] == []
        assert not any(e.path.endswith(("/Contact", "/ContactAddress", "/CommunicationWay"))
                       for e in stack.sevdesk.exchanges)
        assert voucher_of(stack, ANNA_1)["supplierName"] == "Anna Schmidt"
        assert voucher_of(stack, GRUENBLATT)["supplierName"] == "Grünblatt Kosmetikstudio GmbH"
        assert voucher_of(stack, ANNA_1).get("supplier") is None


# -- unassigned payments ---------------------------------------------------------------------------------------------
def test_a_payment_whose_method_has_no_account_goes_to_the_default_account_when_that_is_on() -> None:
    with local_stack(orders(BANK_TRANSFER, ANNA_1)) as stack:
        stack.save_connection(
            connection(sevdesk={"bookUnassignedPaymentsAsDefault": True, "defaultCheckAccountId": DEFAULT_ACCOUNT})
        )
        run_once(stack)

        voucher = voucher_of(stack, BANK_TRANSFER)
        assert voucher["status"] == "1000"
        assert bookings(voucher) == [(DEFAULT_ACCOUNT, Decimal("33.9"), "2026-10-30", "FULL_PAYMENT")]
        # A mapped method still goes to its own account.
        assert [b[0] for b in bookings(voucher_of(stack, ANNA_1))] == [PAYPAL_ACCOUNT]


def test_a_payment_whose_method_has_no_account_leaves_the_voucher_open_and_the_report_says_why_when_that_is_off() -> (
    None
):
    with local_stack(orders(BANK_TRANSFER, ANNA_1)) as stack:
        stack.save_connection(connection(sevdesk={"bookUnassignedPaymentsAsDefault": False}))
        run_once(stack)

        voucher = voucher_of(stack, BANK_TRANSFER)
        assert voucher["status"] == "100" and voucher["bookings"] == []
        record = stack.record("demo-shop", BANK_TRANSFER)
        assert record.state.value == "EXPORTED"
        [note] = record.notes
        assert "payment method 1" in note and "no account mapping" in note and "not fully paid" in note
        report = {o["orderId"]: o for o in stack.report("demo-shop")["orders"]}
        assert report[BANK_TRANSFER]["notes"] == [note]
        assert voucher_of(stack, ANNA_1)["status"] == "1000"


# -- voucher date ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "expected_day"),
    [("invoice", "2026-10-05"), ("payment", "2026-10-16"), ("order", "2026-10-03")],
)
def test_the_voucher_date_is_the_invoice_payment_or_order_date_as_chosen(source: str, expected_day: str) -> None:
    order = copy.deepcopy(ORDERS[GRUENBLATT])
    order["InvoiceDate"] = "2026-10-05T10:00:00"  # three different days: ordered 3 Oct, invoiced 5 Oct, paid 16 Oct
    with local_stack([order]) as stack:
        stack.save_connection(connection(sevdesk={"voucherDate": source}))
        run_once(stack)

        assert voucher_of(stack, GRUENBLATT)["voucherDate"][:10] == expected_day
        assert stack.record("demo-shop", GRUENBLATT).notes == []
        # The payment keeps its own date whatever the voucher date.
        assert [b[2] for b in bookings(voucher_of(stack, GRUENBLATT))] == ["2026-10-16"]


def test_payment_date_chosen_but_not_paid_yet_falls_back_to_the_invoice_date_and_the_report_says_so() -> None:
    with local_stack(orders(GRUENBLATT_UNPAID)) as stack:
        stack.save_connection(connection(sevdesk={"voucherDate": "payment"}))
        run_once(stack)

        voucher = voucher_of(stack, GRUENBLATT_UNPAID)
        assert voucher["voucherDate"][:10] == ORDERS[GRUENBLATT_UNPAID]["InvoiceDate"][:10]
        assert voucher["status"] == "100"
        notes = stack.record("demo-shop", GRUENBLATT_UNPAID).notes
        assert any("voucher date" in n and "invoice date was used" in n for n in notes), notes

"""The sevDesk client reads every answer recorded from the live API (issue 8): ``sevdesk-examples/`` holds 41 answers
of a sevDesk test account (strings for scalars, nulls, a list of one for GET by id, a VoucherLog for bookAmount ...).
Each answer the connector can receive is served to the real client through httpx's mock transport, and what the
client makes of it is checked against the recording's values."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.bookkeeping.voucher import ContactPlan, PlannedPayment, PlannedPosition, VoucherPlan
from connector.errors import NotFoundError, RejectedError
from connector.sevdesk.client import SevdeskClient
from connector.transport import RetryPolicy

SPECS = Path(os.environ.get("SPECS_DIR", Path(__file__).resolve().parents[3] / "shared" / "specs"))
RECORDED = SPECS / "sevdesk-examples"
VOUCHER = VoucherPlan(
    order_id=1, invoice_number="RE-1", voucher_date=date(2026, 10, 2), delivery_date=date(2026, 10, 2), tax_rule=1,
    currency="EUR", supplier_name="Erika Muster", positions=(PlannedPosition(3631, Decimal(19), Decimal("119"), "x"),),
    total_gross=Decimal("119"), payments=(), contact=None,
)
PAYMENT = PlannedPayment("payment-1", Decimal("0.45"), datetime(2026, 9, 29, 12), 5101, 3, "FULL_PAYMENT")
PERSON = ContactPlan(4711, "BB-4711", None, "Erika", "Mustermann", None, "erika@example.com", "Weg 1", "10115",
                     "Berlin", None)


def recorded(name: str) -> tuple[int, bytes]:
    text = (RECORDED / f"sevdesk-rs_{name}.json").read_bytes()
    body = json.loads(text)
    status = 200
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        status = int(body["error"].get("responseCode") or 400)
    return status, text


def client_answering(name: str, status: int | None = None) -> SevdeskClient:
    code, text = recorded(name)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "0" * 32 and request.headers["x-version"] == "default"
        return httpx.Response(status or code, content=text, headers={"Content-Type": "application/json"})

    return SevdeskClient(api_token="0" * 32, base_url="https://my.sevdesk.de/api/v1",
                         transport=httpx.MockTransport(handler), retry=RetryPolicy(attempts=1))


def raw(name: str) -> Any:
    return json.loads(recorded(name)[1])["objects"]


CASES: dict[str, tuple[str, int | None, Callable[[SevdeskClient], Any], Callable[[Any], None]]] = {
    "bookkeeping version": (
        "bookkeeping_system_version", None, lambda c: c.bookkeeping_version(), lambda v: _eq(v, "2.0")),
    "check accounts": (
        "check_account_list", None, lambda c: c.check_accounts(),
        lambda accounts: _eq([(a.id, a.type, a.is_offline, a.is_active) for a in accounts],
                             [(6306017, "online", False, True), (6305996, "offline", True, True),
                              (6306016, "offline", True, True)])),
    "one check account, a list of one": (
        "check_account", None, lambda c: c.check_accounts(), lambda accounts: _eq(len(accounts), 1)),
    "voucher by id, a list of one": (
        "voucher", None, lambda c: c.get_voucher("156244013"),
        lambda v: _eq((v.id, v.status, v.paid_amount, v.credit_debit), ("156244013", "1000", "87.49", "C"))),
    "saveVoucher": (
        "write_voucher_save_create", 201, lambda c: c.save_voucher(VOUCHER),
        lambda v: _eq((v.id, v.status, v.sum_gross), ("156270656", "50", "0.45"))),
    "saveVoucher with the PDF attached": (
        "write_voucher_save_update_release_attach", 201, lambda c: c.save_voucher(VOUCHER),
        lambda v: _eq(v.status, "100")),
    "voucher search (exact description, revenue only)": (
        "voucher_list", None, lambda c: c.find_revenue_vouchers("M11-D-OVER-OF"),
        lambda found: _eq(found, [])),  # both recorded vouchers are expenses ("C"): never taken for revenue
    "bookAmount answers a VoucherLog": (
        "write_voucher_book_amount", None, lambda c: c.book_amount("156270656", PAYMENT),
        lambda log: _eq((log.amount_payed, log.to_status), ("0.45", "1000"))),
    "uploadTempFile": (
        "write_upload_temp_file", 201, lambda c: c.upload_temp_file("x.pdf", b"%PDF-1.4"),
        lambda name: _eq(name, raw("write_upload_temp_file")["filename"])),
    "contact by customer number": (
        "contact_list_by_customer_number", None, lambda c: c.find_contact("SDRS-LIVE-1790865321-contacts"),
        lambda contact_id: _eq(contact_id, "138810376")),
    "contact create": (
        "write_contact_create", 201, lambda c: c.create_contact(PERSON),
        lambda contact_id: _eq(contact_id, str(raw("write_contact_create")["id"]))),
    "contact address create (the contact embedded)": (
        "write_contact_address_create", 201, lambda c: c.add_contact_address("1", PERSON), lambda r: _eq(r, None)),
    "contact address create (probe session)": (
        "contact_address", 201, lambda c: c.add_contact_address("1", PERSON), lambda r: _eq(r, None)),
    "e-mail create (probe session)": (
        "communication_way", 201, lambda c: c.add_contact_email("1", "x@example.com"), lambda r: _eq(r, None)),
    "e-mail create": (
        "write_communication_way_create", 201, lambda c: c.add_contact_email("1", "x@example.com"),
        lambda r: _eq(r, None)),
    "receipt guidance (ids as JSON numbers)": (
        "receipt_guidance", None, lambda c: c.revenue_guidance(),
        lambda guidance: _eq((guidance[0].account_datev_id, guidance[0].allowed_tax_rules[0].id), (4285, 9))),
}


def _eq(actual: Any, expected: Any) -> None:
    assert actual == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_client_reads_the_recorded_live_answer(case: str) -> None:
    name, status, call, check = CASES[case]
    client = client_answering(name, status)
    try:
        check(call(client))
    finally:
        client.close()


def test_the_recorded_404_is_not_found_and_the_recorded_422_a_rejection_with_sevdesks_message() -> None:
    client = client_answering("error_404_code_151")
    with pytest.raises(NotFoundError) as missing:
        client.get_voucher("1")
    assert missing.value.code == 151 or str(missing.value.code) == "151"
    client = client_answering("error_422_offline_account")
    with pytest.raises(RejectedError, match="only create transactions on online checkaccounts") as refused:
        client.save_voucher(VOUCHER)
    assert refused.value.status == 422


def test_every_recording_the_client_can_receive_is_covered() -> None:
    """The recordings of requests the connector sends; the others (invoices, credit notes, transactions ...) are
    answers to requests it never makes."""
    never_sent = {
        "balance_at_date", "communication_way_list", "contact", "contact_address_list", "credit_note",
        "invoice_draft", "invoice_enshrined", "invoice_list", "invoice_pdf",
        "invoice_xml", "payment_method_list", "transaction", "transaction_deleted", "transaction_list",
        "transaction_log", "voucher_positions", "write_credit_note_save", "write_invoice_cancel", "write_invoice_save",
        "write_transaction_create", "write_transaction_delete", "write_transaction_update",
        "write_voucher_reset_to_open",
    }
    covered = {name for name, *_ in CASES.values()} | {"error_404_code_151", "error_422_offline_account"}
    files = {p.name.removeprefix("sevdesk-rs_").removesuffix(".json") for p in RECORDED.glob("sevdesk-rs_*.json")}
    assert len(files) == 41
    assert files == covered | never_sent, sorted(files ^ (covered | never_sent))

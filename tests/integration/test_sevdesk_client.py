"""The sevDesk client against the sevDesk sandbox over real HTTP: the raw token, the ``objects`` wrapper, error
classes (including errors inside HTTP 200), writes whose answer is lost, exact searches and the PDF upload."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

import pytest

import connector.sevdesk.client as sevdesk_client_module
from connector.bookkeeping.voucher import ContactPlan, PlannedPayment, PlannedPosition, VoucherPlan
from connector.errors import AuthError, NotFoundError, RejectedError, TransientError, UnknownOutcome
from connector.sevdesk.client import SevdeskClient
from connector.transport import RetryPolicy, send
from local.faults import FaultRule
from local.sandbox.base import Request, Response
from local.sandbox.sevdesk import SevdeskSandbox

TOKEN = "0123456789abcdef0123456789abcdef"  # fake, shaped like a real 32-hex-digit token
PDF = b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\ntrailer << >>\n%%EOF\n"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
CLIENT_TIMEOUT = 5.0
IMPATIENT_TIMEOUT = 0.5  # seconds; for the lost-answer tests only, so a busy machine cannot fake a timeout elsewhere
HOLD_SECONDS = 1.5  # how long the sandbox holds a "timeout" answer: well past the impatient client's timeout


@pytest.fixture
def sandbox() -> Iterator[SevdeskSandbox]:
    box = SevdeskSandbox(api_token=TOKEN, hold_seconds=HOLD_SECONDS)
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits recorded instead of slept (``send`` binds ``time.sleep`` as a default argument)."""
    recorded: list[float] = []
    monkeypatch.setattr(sevdesk_client_module, "send", functools.partial(send, sleep=recorded.append))
    return recorded


def client_for(sandbox: SevdeskSandbox, token: str = TOKEN, timeout: float = CLIENT_TIMEOUT) -> SevdeskClient:
    return SevdeskClient(api_token=token, base_url=sandbox.base_url, timeout=timeout, retry=FAST_RETRY)


@pytest.fixture
def client(sandbox: SevdeskSandbox) -> Iterator[SevdeskClient]:
    c = client_for(sandbox)
    yield c
    c.close()


@pytest.fixture
def impatient_client(sandbox: SevdeskSandbox) -> Iterator[SevdeskClient]:
    c = client_for(sandbox, timeout=IMPATIENT_TIMEOUT)
    yield c
    c.close()


def voucher(description: str, gross: str = "119", account: int = 3631) -> VoucherPlan:
    """A valid bookkeeping-2.0 revenue voucher: one 19 % position on a revenue account (3631: 19 %)."""
    return VoucherPlan(
        order_id=1, invoice_number=description, voucher_date=date(2026, 10, 2), delivery_date=date(2026, 10, 2),
        tax_rule=1, currency="EUR", supplier_name="Erika Muster",
        positions=(PlannedPosition(account, Decimal(19), Decimal(gross), "Waren 19 %"),),
        total_gross=Decimal(gross), payments=(), contact=None,
    )


def person(customer_number: str) -> ContactPlan:
    return ContactPlan(
        customer_id=1,
        customer_number=customer_number,
        organisation_name=None,
        first_name="Erika",
        last_name="Muster",
        vat_number=None,
        email=None,
        street=None,
        zip=None,
        city=None,
        country_code=None,
    )


def operations(sandbox: SevdeskSandbox, operation: str) -> list[tuple[int | None, str | None]]:
    return [(e.status, e.fault) for e in sandbox.exchanges if e.operation == operation]


# -- auth and envelope ---------------------------------------------------------------------------------------------


def test_the_token_goes_bare_into_authorization_without_bearer(
    sandbox: SevdeskSandbox, client: SevdeskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []
    check = sandbox.authenticate

    def capture(request: Request) -> Response | None:
        seen.append(request.headers.get("authorization"))
        return check(request)

    monkeypatch.setattr(sandbox, "authenticate", capture)
    assert client.bookkeeping_version() == "2.0"
    assert seen == [TOKEN]


def test_a_rejected_token_is_an_auth_error_and_not_retried(sandbox: SevdeskSandbox, sleeps: list[float]) -> None:
    client = client_for(sandbox, token="ffffffffffffffffffffffffffffffff")
    with pytest.raises(AuthError) as raised:
        client.check_accounts()
    assert raised.value.status == 401
    assert "ffffffff" not in str(raised.value)
    assert operations(sandbox, "list_check_accounts") == [(401, None)]
    assert sleeps == []


def test_objects_are_unwrapped_into_typed_accounts(client: SevdeskClient) -> None:
    accounts = {a.id: a for a in client.check_accounts()}
    assert accounts[5101].type == "offline" and accounts[5101].is_offline
    assert accounts[5201].is_offline  # a register books without a bank transaction too
    assert accounts[5001].type == "online" and not accounts[5001].is_offline
    guidance = {account.account_datev_id for account in client.revenue_guidance()}
    assert {3631, 3632, 3633, 3640, 3650, 3660} <= guidance


def test_an_error_inside_http_200_is_a_rejection(sandbox: SevdeskSandbox, client: SevdeskClient) -> None:
    route = next(r for r in sandbox.routes if r.operation == "list_check_accounts")
    route.handler = lambda request: Response(
        200, {"objects": None, "error": {"message": "Account locked for maintenance", "code": 42}}
    )
    with pytest.raises(RejectedError) as raised:
        client.check_accounts()
    assert "Account locked for maintenance" in str(raised.value)
    assert raised.value.code == 42


def test_an_answer_without_objects_is_transient(sandbox: SevdeskSandbox, client: SevdeskClient) -> None:
    route = next(r for r in sandbox.routes if r.operation == "bookkeeping_version")
    route.handler = lambda request: Response(200, {"unexpected": True})
    with pytest.raises(TransientError, match="objects"):
        client.bookkeeping_version()


def test_a_422_is_a_rejection_carrying_sevdesks_message(sandbox: SevdeskSandbox, client: SevdeskClient) -> None:
    with pytest.raises(RejectedError) as raised:
        client.save_voucher(voucher("RE-1", account=3632))  # 7 % account, 19 % position
    assert raised.value.status == 422
    [(status, message)] = [(e.status, e.response_body["error"]["message"]) for e in sandbox.exchanges]
    assert status == 422 and message in raised.value.detail
    assert sandbox.vouchers_with_description("RE-1") == []


def test_an_unknown_voucher_is_not_found(client: SevdeskClient) -> None:
    with pytest.raises(NotFoundError) as raised:
        client.get_voucher("156999999")
    assert raised.value.status == 404
    assert str(raised.value.code) == "151"


# -- writes whose answer is lost -----------------------------------------------------------------------------------


def test_a_voucher_saved_but_answered_500_is_an_unknown_outcome_and_exists_afterwards(
    sandbox: SevdeskSandbox, client: SevdeskClient, sleeps: list[float]
) -> None:
    sandbox.faults.add(FaultRule(api="sevdesk", operation="save_voucher", kind="saved500"))
    with pytest.raises(UnknownOutcome) as raised:
        client.save_voucher(voucher("RE-2001"))
    assert raised.value.status == 500
    assert operations(sandbox, "save_voucher") == [(500, "saved500")]  # a write is never repeated blindly
    assert sleeps == []
    found = client.find_revenue_vouchers("RE-2001")  # what the exporter does next: look before writing again
    assert len(found) == 1 and found[0].sum_gross == "119"


def test_a_write_without_answer_is_an_unknown_outcome_and_not_repeated(
    sandbox: SevdeskSandbox, impatient_client: SevdeskClient
) -> None:
    sandbox.faults.add(FaultRule(api="sevdesk", operation="save_voucher", kind="timeout"))
    with pytest.raises(UnknownOutcome):
        impatient_client.save_voucher(voucher("RE-2002"))
    assert operations(sandbox, "save_voucher") == [(None, "timeout")]


def test_a_booking_applied_but_answered_too_late_is_an_unknown_outcome(
    sandbox: SevdeskSandbox, client: SevdeskClient, impatient_client: SevdeskClient
) -> None:
    saved = client.save_voucher(voucher("RE-2003"))
    sandbox.faults.add(FaultRule(api="sevdesk", operation="book_amount", kind="savedtimeout"))
    payment = PlannedPayment("payment-1", Decimal(119), datetime(2026, 10, 2, 10), 5101, 3, "FULL_PAYMENT")
    with pytest.raises(UnknownOutcome):
        impatient_client.book_amount(saved.id, payment)
    assert operations(sandbox, "book_amount") == [(None, "savedtimeout")]
    assert client.get_voucher(saved.id).status == "1000"  # it was booked: the read-back settles the doubt


def test_a_read_answered_503_is_retried(sandbox: SevdeskSandbox, client: SevdeskClient, sleeps: list[float]) -> None:
    sandbox.faults.add(FaultRule(api="sevdesk", operation="list_vouchers", kind="503"))
    assert client.find_revenue_vouchers("RE-1") == []
    assert operations(sandbox, "list_vouchers") == [(503, "503"), (200, None)]
    assert len(sleeps) == 1


# -- searches ------------------------------------------------------------------------------------------------------


def test_find_revenue_vouchers_matches_the_description_exactly(sandbox: SevdeskSandbox, client: SevdeskClient) -> None:
    for number in ("RE-1", "RE-10", "RE-100", "XRE-1"):
        client.save_voucher(voucher(number))
    found = client.find_revenue_vouchers("RE-1")
    assert [v.description for v in found] == ["RE-1"]
    # sevDesk's descriptionLike is a substring match: the answer held all four, the client kept one.
    [listing] = [e for e in sandbox.exchanges if e.operation == "list_vouchers"]
    assert len(listing.response_body["objects"]) == 4
    assert ("creditDebit", "D") in listing.query
    assert client.find_revenue_vouchers("RE-1000") == []


def test_find_contact_finds_a_person_by_exact_customer_number(sandbox: SevdeskSandbox, client: SevdeskClient) -> None:
    contact_id = client.create_contact(person("K-1001"))
    client.create_contact(person("K-10011"))
    assert client.find_contact("K-1001") == contact_id
    assert client.find_contact("K-100") is None
    lookups = [e for e in sandbox.exchanges if e.operation == "list_contacts"]
    assert all(("depth", "1") in e.query for e in lookups)  # without depth=1 sevDesk hides persons


def test_upload_temp_file_sends_the_pdf_as_multipart_field_file(sandbox: SevdeskSandbox, client: SevdeskClient) -> None:
    name = client.upload_temp_file("RE-1041.pdf", PDF)
    assert name.endswith(".pdf")
    assert sandbox.file_bytes(name) == PDF
    [upload] = [e for e in sandbox.exchanges if e.operation == "upload_temp_file"]
    assert upload.request_headers["content-type"].startswith("multipart/form-data")
    assert upload.request_body["multipart"]["files"]["file"] == {
        "filename": "RE-1041.pdf",
        "content_type": "application/pdf",
        "size": len(PDF),
    }
    client.save_voucher(voucher("RE-1041"), filename=name)
    [saved] = sandbox.vouchers_with_description("RE-1041")
    assert saved["document"] is not None  # the uploaded file became the voucher's document


# -- the real API's answers (issue 8, items 10 and 12) ----------------------------------------------------------------
def test_a_voucher_search_pages_with_offset_until_a_short_page(sandbox: SevdeskSandbox, client: SevdeskClient) -> None:
    client.search_page_size = 2
    for number in ("RE-1", "RE-10", "RE-11", "RE-12", "RE-13", "RE-100"):  # "RE-1" is a substring of each
        client.save_voucher(voucher(number))
    assert [v.description for v in client.find_revenue_vouchers("RE-1")] == ["RE-1"]
    pages = [e for e in sandbox.exchanges if e.operation == "list_vouchers"]
    assert [dict(e.query)["offset"] for e in pages] == ["0", "2", "4", "6"]  # the last page is empty: short
    assert client.find_revenue_vouchers("RE-100") != []


def test_a_search_that_ends_on_a_full_page_cannot_say_not_there(
    sandbox: SevdeskSandbox, client: SevdeskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.search_page_size = 1
    monkeypatch.setattr(sevdesk_client_module, "MAX_SEARCH_PAGES", 2)
    for number in ("RE-20", "RE-21", "RE-22"):
        client.save_voucher(voucher(number))
    with pytest.raises(TransientError, match="cannot tell"):
        client.find_revenue_vouchers("RE-2")  # two full pages, more may follow: "unknown", never "not there"


def test_every_request_pins_the_default_resource_version(sandbox: SevdeskSandbox, client: SevdeskClient) -> None:
    client.bookkeeping_version()
    client.check_accounts()
    assert {e.request_headers.get("x-version") for e in sandbox.exchanges} == {"default"}


def test_a_british_address_gets_the_united_kingdom_not_england(sandbox: SevdeskSandbox, client: SevdeskClient) -> None:
    rows = {str(c["id"]): c for c in sandbox.countries if str(c["code"]).lower() == "gb"}
    assert len(rows) > 1  # ERRATA sevDesk 12: England, Great Britain and United Kingdom
    chosen = client.country_id("GB")
    assert chosen is not None and rows[chosen]["nameEn"] == "United Kingdom"
    assert client.country_id("de") == "1"


def test_an_archived_account_is_not_active(sandbox: SevdeskSandbox, client: SevdeskClient) -> None:
    accounts = {a.id: a for a in client.check_accounts()}
    offline = next(a for a in accounts.values() if a.is_offline)
    assert offline.is_active
    sandbox.archive_check_account(offline.id)
    assert not {a.id: a for a in client.check_accounts()}[offline.id].is_active

"""The sevDesk sandbox behaves like the real API for everything the connector uses (over real HTTP on 127.0.0.1).

Expectations come from shared/docs/sevdesk-api.md and sevdesk-pitfalls.md; section and pitfall numbers are cited.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from local.faults import FaultPlan, FaultRule
from local.sandbox.sevdesk import SevdeskSandbox

TOKEN = "0123456789abcdef0123456789abcdef"  # a 32-char hex token, like the real ones (docs §1)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF\n"
REVENUE_19 = 3631  # 8400 Erlöse 19 %: rule 1, NINETEEN only
REVENUE_7 = 3632  # 8300 Erlöse 7 %: rule 1, SEVEN only
EXPENSE_FEES = 4285  # 4970 Nebenkosten des Geldverkehrs: EXPENSE only, rule 9
PAYPAL = 5101  # offline clearing account
BANK = 5001  # online account


class FakeClock:
    """Monotonic seconds the test moves by hand, so throttling is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def make_sandbox(**kwargs: Any) -> SevdeskSandbox:
    return SevdeskSandbox(api_token=TOKEN, **kwargs)


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[SevdeskSandbox]:
    # One server for the module (stopping one waits up to its 0.5 s poll interval); reset() between tests.
    sb = make_sandbox()
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def sandbox(shared_sandbox: SevdeskSandbox) -> SevdeskSandbox:
    shared_sandbox.reset()
    return shared_sandbox


def client_for(sb: SevdeskSandbox, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = token
    return httpx.Client(base_url=sb.base_url, headers=headers, timeout=5.0)


@pytest.fixture
def api(sandbox: SevdeskSandbox) -> Iterator[httpx.Client]:
    with client_for(sandbox) as client:
        yield client


def position(account: int = REVENUE_19, rate: Any = 19, gross: Any = "119.00", **extra: Any) -> dict[str, Any]:
    pos = {
        "objectName": "VoucherPos",
        "mapAll": True,
        "accountDatev": {"id": account, "objectName": "AccountDatev"},
        "taxRate": rate,
        "net": False,
        "sumGross": gross,
        "comment": f"Waren {rate} %",
        "isAsset": False,
    }
    pos.update(extra)
    return pos


def voucher_body(
    description: str = "RE-1001",
    positions: list[dict[str, Any]] | None = None,
    filename: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    voucher = {
        "objectName": "Voucher",
        "mapAll": True,
        "voucherDate": "07.05.2026",
        "supplierName": "Erika Muster",
        "description": description,
        "status": 100,
        "creditDebit": "D",
        "voucherType": "VOU",
        "taxRule": {"id": "1", "objectName": "TaxRule"},
        "currency": "EUR",
    }
    voucher.update(fields)
    return {
        "voucher": voucher,
        "voucherPosSave": positions if positions is not None else [position()],
        "voucherPosDelete": None,
        "filename": filename,
    }


def upload(api: httpx.Client, data: bytes = PDF, name: str = "RE-1001.pdf") -> dict[str, Any]:
    response = api.post("/Voucher/Factory/uploadTempFile", files={"file": (name, data, "application/pdf")})
    assert response.status_code == 201, response.text
    objects: dict[str, Any] = response.json()["objects"]
    return objects


def save(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/Voucher/Factory/saveVoucher", json=body)
    assert response.status_code == 201, response.text
    objects: dict[str, Any] = response.json()["objects"]
    return objects


def book(api: httpx.Client, voucher_id: str, amount: Any, account: int = PAYPAL, **extra: Any) -> httpx.Response:
    body = {
        "amount": amount,
        "date": "2026-05-08T12:00:00+02:00",
        "type": "FULL_PAYMENT",
        "checkAccount": {"id": account, "objectName": "CheckAccount"},
        "createFeed": False,
    }
    body.update(extra)
    return api.put(f"/Voucher/{voucher_id}/bookAmount", json=body)


def assert_error(response: httpx.Response, status: int, *, code: int | None = None, contains: str = "") -> None:
    """sevDesk's error body ([JRS] fixtures): objects null, error with message/code/exceptionUUID/responseCode."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["objects"] is None
    error = body["error"]
    assert set(error) >= {"message", "code", "exceptionUUID", "errorCode", "data", "responseCode"}
    assert error["responseCode"] == status
    assert error["code"] == code
    assert contains.lower() in error["message"].lower(), error["message"]


# -- auth and envelope ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "wrong-token", f"Bearer {TOKEN}", f"SEVDESK_API_TOKEN={TOKEN}"])
def test_requests_without_the_bare_token_get_401(sandbox: SevdeskSandbox, token: str | None) -> None:
    with client_for(sandbox, token) as client:
        response = client.get("/CheckAccount")
    assert_error(response, 401, contains="Authentication required")


def test_the_bare_token_is_accepted_and_is_not_recorded(sandbox: SevdeskSandbox, api: httpx.Client) -> None:
    assert api.get("/CheckAccount").status_code == 200
    assert sandbox.exchanges[-1].request_headers["authorization"] == "***"


def test_bookkeeping_version_is_2_0_by_default(api: httpx.Client) -> None:
    assert api.get("/Tools/bookkeepingSystemVersion").json() == {"objects": {"version": "2.0"}}


def test_lists_are_arrays_of_string_scalars_and_by_id_is_an_array_of_one(api: httpx.Client) -> None:
    accounts = api.get("/CheckAccount").json()["objects"]
    by_id = {a["id"]: a for a in accounts}
    assert set(by_id) == {"5001", "5101", "5102", "5103", "5104", "5105", "5106", "5199", "5201"}
    bank = by_id["5001"]
    assert (bank["type"], bank["importType"], bank["name"]) == ("online", "CSV", "Geschäftskonto")
    assert (by_id["5201"]["type"], by_id["5199"]["name"]) == ("register", "Sonstige Zahlungen BB")
    assert all(a["type"] == "offline" for i, a in by_id.items() if i.startswith("51"))
    assert all(isinstance(a["status"], str) and isinstance(a["accountingNumber"], str) for a in accounts)
    assert len({a["accountingNumber"] for a in accounts}) == len(accounts)

    single = api.get("/CheckAccount/5101").json()["objects"]
    assert isinstance(single, list) and len(single) == 1
    assert single[0]["name"] == "PayPal BB" and single[0]["objectName"] == "CheckAccount"


def test_unknown_ids_are_404_with_code_151_and_unknown_paths_404(api: httpx.Client) -> None:
    assert_error(api.get("/CheckAccount/424242"), 404, code=151, contains="CheckAccount")
    assert_error(api.get("/Voucher/424242"), 404, code=151, contains="Voucher")
    assert_error(api.get("/NoSuchResource"), 404)


def test_guidance_for_revenue_omits_expense_accounts_but_all_accounts_lists_them(api: httpx.Client) -> None:
    revenue = api.get("/ReceiptGuidance/forRevenue").json()["objects"]
    everything = api.get("/ReceiptGuidance/forAllAccounts").json()["objects"]
    assert [g["accountNumber"] for g in revenue] == ["8400", "8300", "8200", "8125", "8120", "8195"]
    assert EXPENSE_FEES in {g["accountDatevId"] for g in everything}
    assert EXPENSE_FEES not in {g["accountDatevId"] for g in revenue}
    first = revenue[0]
    assert first["accountDatevId"] == REVENUE_19  # an integer in the live fixture, unlike other ids
    assert first["allowedTaxRules"] == [
        {"name": "USTPFL_UMS_EINN", "id": 1, "description": "Umsatzsteuerpflichtige Umsätze", "taxRates": ["NINETEEN"]}
    ]
    assert first["allowedReceiptTypes"] == ["REVENUE"]
    small_business = next(g for g in revenue if g["accountNumber"] == "8195")
    assert small_business["allowedTaxRules"][0]["id"] == 11


# -- the happy flow -------------------------------------------------------------------------------------------------
def test_upload_save_book_gives_a_paid_voucher_with_its_pdf_and_one_transaction(
    sandbox: SevdeskSandbox, api: httpx.Client
) -> None:
    uploaded = upload(api)
    assert uploaded["filename"].endswith(".pdf") and len(uploaded["filename"]) == 36
    assert uploaded["contentHash"] == hashlib.sha256(PDF).hexdigest()
    assert (uploaded["mimeType"], uploaded["originMimeType"], uploaded["isEInvoice"]) == (
        "image/jpg",
        "application/pdf",
        False,
    )

    saved = save(
        api,
        voucher_body(
            positions=[position(REVENUE_19, 19, "119.00"), position(REVENUE_7, 7, 10.70)],
            filename=uploaded["filename"],
        ),
    )
    voucher = saved["voucher"]
    # The recorded answer is {voucher, voucherPos, document, vatdrop} and has no "filename" key, although docs §3
    # shows one (sevdesk-examples/sevdesk-rs_write_voucher_save_update_release_attach.json; the recording wins).
    assert list(saved) == ["voucher", "voucherPos", "document", "vatdrop"]
    assert saved["vatdrop"] == "not relevant"
    assert f"{saved['document']['filename']}.{saved['document']['extension']}" == uploaded["filename"]
    assert saved["document"]["contentHash"] == uploaded["contentHash"]
    assert voucher["id"].isdigit() and voucher["status"] == "100" and voucher["creditDebit"] == "D"
    assert (voucher["sumNet"], voucher["sumTax"], voucher["sumGross"]) == ("110", "19.7", "129.7")
    assert voucher["voucherDate"] == "2026-05-07T00:00:00+02:00"
    assert voucher["deliveryDate"] == voucher["voucherDate"]
    assert voucher["taxRule"] == {"id": "1", "objectName": "TaxRule"}
    assert voucher["taxType"] is None and voucher["paidAmount"] == 0
    assert voucher["document"]["objectName"] == "Document"
    assert [p["sumGross"] for p in saved["voucherPos"]] == ["119", "10.7"]
    assert [p["sumNet"] for p in saved["voucherPos"]] == ["100", "10"]
    assert saved["voucherPos"][0]["accountDatev"] == {"id": str(REVENUE_19), "objectName": "AccountDatev"}
    assert saved["voucherPos"][0]["net"] == "0" and saved["voucherPos"][0]["taxRate"] == "19"

    fetched = api.get(f"/Voucher/{voucher['id']}").json()["objects"]
    assert len(fetched) == 1 and fetched[0]["sumGross"] == "129.7"
    positions = api.get("/VoucherPos", params={"voucher[id]": voucher["id"], "voucher[objectName]": "Voucher"}).json()[
        "objects"
    ]
    assert sorted(p["sumGross"] for p in positions) == ["10.7", "119"]

    booked = book(api, voucher["id"], 129.70)
    assert booked.status_code == 200, booked.text
    log = booked.json()["objects"]
    assert log["objectName"] == "VoucherLog"
    assert (log["fromStatus"], log["toStatus"], log["amountPayed"]) == ("100", "1000", "129.7")
    assert log["bookingDate"] == "2026-05-08T12:00:00+02:00"
    assert log["voucher"] == {"id": voucher["id"], "objectName": "Voucher"}

    paid = api.get(f"/Voucher/{voucher['id']}").json()["objects"][0]
    assert paid["status"] == "1000" and paid["paidAmount"] == 129.7
    assert paid["payDate"] == "2026-05-08T12:00:00+02:00"
    transactions = api.get("/CheckAccountTransaction", params={"checkAccount[id]": PAYPAL}).json()["objects"]
    assert len(transactions) == 1
    assert transactions[0]["amount"] == "129.7" and transactions[0]["checkAccount"]["id"] == str(PAYPAL)
    assert api.get("/CheckAccountTransaction", params={"checkAccount[id]": 5102}).json()["objects"] == []

    dumped = sandbox.vouchers_with_description("RE-1001")
    assert len(dumped) == 1
    attached = dumped[0]["file"]
    assert attached["filename"] == uploaded["filename"] and attached["size"] == len(PDF)
    assert attached["sha256"] == hashlib.sha256(PDF).hexdigest() and attached["originalName"] == "RE-1001.pdf"
    assert [b["toStatus"] for b in dumped[0]["bookings"]] == ["1000"]
    assert dumped[0]["bookings"][0]["checkAccount"]["id"] == str(PAYPAL)
    assert sandbox.file_bytes(uploaded["filename"]) == PDF


def test_net_positions_compute_tax_and_gross(api: httpx.Client) -> None:
    net_position = position(gross=None, net=True, sumNet="100.00")
    del net_position["sumGross"]
    saved = save(api, voucher_body(positions=[net_position]))
    assert (saved["voucher"]["sumNet"], saved["voucher"]["sumTax"], saved["voucher"]["sumGross"]) == (
        "100",
        "19",
        "119",
    )
    assert saved["voucher"]["showNet"] == "1" and saved["voucherPos"][0]["net"] == "1"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("07.05.2026", "2026-05-07T00:00:00+02:00"),
        ("7.1.2026", "2026-01-07T00:00:00+01:00"),  # winter: +01:00
        ("2026-05-06T23:30:00Z", "2026-05-07T00:00:00+02:00"),  # already the 7th in Berlin
        ("2026-05-07T09:15:00+02:00", "2026-05-07T00:00:00+02:00"),
        ("2026-05-07t09:15:00z", "2026-05-07T00:00:00+02:00"),  # RFC 3339 allows lower-case t and z
        (1778104800, "2026-05-07T00:00:00+02:00"),  # 2026-05-06T22:00:00Z
        ("1778104800", "2026-05-07T00:00:00+02:00"),
    ],
)
def test_voucher_dates_are_stored_as_berlin_midnight(api: httpx.Client, sent: Any, stored: str) -> None:
    assert save(api, voucher_body(voucherDate=sent))["voucher"]["voucherDate"] == stored


def test_an_unparsable_voucher_date_is_422(api: httpx.Client) -> None:
    assert_error(
        api.post("/Voucher/Factory/saveVoucher", json=voucher_body(voucherDate="May 7th")), 422, contains="voucherDate"
    )


VOUCHER_DATE_FIELDS = ("voucherDate", "deliveryDate", "deliveryDateUntil", "paymentDeadline")
# ERRATA sevDesk 3: live clients send dd.mm.yyyy or RFC 3339 WITHOUT fractions; no public client sends anything else.
# A bare ISO day was accepted before; it is unproven, so it is refused now like every other unproven form.
UNPROVEN_DATES = [
    "2026-10-01T12:00:00.123+02:00",  # fractional seconds
    "2026-10-01T12:00:00.000Z",
    "2026-10-01T12:00:00",  # no offset
    "2026-10-01",  # a bare ISO day
    "2026-10-01 12:00:00+02:00",  # a space instead of T
    "31.02.2026",  # no such day
    "2026-02-30T12:00:00+01:00",
    1790848800.5,  # a timestamp with a fraction
    "tomorrow",
]


@pytest.mark.parametrize("field", VOUCHER_DATE_FIELDS)
@pytest.mark.parametrize("sent", UNPROVEN_DATES)
def test_unproven_date_forms_are_422_naming_the_field(api: httpx.Client, field: str, sent: Any) -> None:
    response = api.post("/Voucher/Factory/saveVoucher", json=voucher_body(**{field: sent}))
    assert_error(response, 422, contains=field)
    assert api.get("/Voucher").json()["objects"] == []


def test_fractional_seconds_are_named_in_the_message(api: httpx.Client) -> None:
    response = api.post(
        "/Voucher/Factory/saveVoucher", json=voucher_body(paymentDeadline="2026-10-01T12:00:00.123+02:00")
    )
    assert_error(response, 422, contains="paymentDeadline")
    assert "fractional seconds" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("01.10.2026", "2026-10-01T00:00:00+02:00"),  # dd.mm.yyyy comes back as Berlin midnight (ERRATA sevDesk 3)
        ("2026-10-01T12:00:00+02:00", "2026-10-01T00:00:00+02:00"),
        ("2026-10-01T10:00:00Z", "2026-10-01T00:00:00+02:00"),
        (1790848800, "2026-10-01T00:00:00+02:00"),  # 2026-10-01T12:00:00+02:00
    ],
)
def test_every_voucher_date_field_takes_the_proven_forms(api: httpx.Client, sent: Any, stored: str) -> None:
    body = voucher_body(voucherDate="01.10.2026", **{f: sent for f in VOUCHER_DATE_FIELDS[1:]})
    voucher = save(api, body)["voucher"]
    assert [voucher[f] for f in VOUCHER_DATE_FIELDS] == ["2026-10-01T00:00:00+02:00", stored, stored, stored]


@pytest.mark.parametrize(
    ("sent", "booked"),
    [
        ("2026-05-08T12:00:00+02:00", "2026-05-08T12:00:00+02:00"),
        ("2026-05-08T10:00:00Z", "2026-05-08T12:00:00+02:00"),
        ("08.05.2026", "2026-05-08T00:00:00+02:00"),
        (1778234400, "2026-05-08T12:00:00+02:00"),
    ],
)
def test_book_amount_takes_the_proven_date_forms(api: httpx.Client, sent: Any, booked: str) -> None:
    voucher_id = save(api, voucher_body())["voucher"]["id"]
    response = book(api, voucher_id, 119, date=sent)
    assert response.status_code == 200, response.text
    assert response.json()["objects"]["bookingDate"] == booked


@pytest.mark.parametrize("sent", ["2026-05-08T12:00:00.5+02:00", "2026-05-08T12:00:00", "2026-05-08"])
def test_book_amount_refuses_unproven_date_forms(sandbox: SevdeskSandbox, api: httpx.Client, sent: str) -> None:
    voucher_id = save(api, voucher_body())["voucher"]["id"]
    assert_error(book(api, voucher_id, 119, date=sent), 422, contains="date")
    assert api.get(f"/Voucher/{voucher_id}").json()["objects"][0]["status"] == "100"
    assert sandbox.dump()["vouchers"][0]["bookings"] == []


def test_delivery_after_the_voucher_date_is_accepted_by_default(api: httpx.Client) -> None:
    voucher = save(api, voucher_body(voucherDate="07.05.2026", deliveryDate="09.05.2026"))["voucher"]
    assert voucher["deliveryDate"] == "2026-05-09T00:00:00+02:00"


def test_delivery_after_the_voucher_date_can_be_refused_on_a_running_sandbox(
    sandbox: SevdeskSandbox, api: httpx.Client
) -> None:
    sandbox.delivery_after_voucher_date = "reject"
    try:
        later = voucher_body(voucherDate="07.05.2026", deliveryDate="2026-05-08T00:00:00+02:00")
        assert_error(api.post("/Voucher/Factory/saveVoucher", json=later), 422, contains="deliveryDate")
        assert api.get("/Voucher").json()["objects"] == []
        # The same day (any time of it) and earlier days stay fine; without a deliveryDate it is the voucher date.
        assert save(api, voucher_body(voucherDate="07.05.2026", deliveryDate="2026-05-07T23:00:00+02:00"))
        assert save(api, voucher_body(voucherDate="07.05.2026", deliveryDate="01.05.2026"))
        assert save(api, voucher_body(voucherDate="07.05.2026"))["voucher"]["deliveryDate"].startswith("2026-05-07")
    finally:
        sandbox.delivery_after_voucher_date = "accept"
    assert save(api, voucher_body(voucherDate="07.05.2026", deliveryDate="08.05.2026"))


def test_delivery_after_voucher_date_is_a_constructor_keyword_with_two_values() -> None:
    assert make_sandbox().delivery_after_voucher_date == "accept"
    assert make_sandbox(delivery_after_voucher_date="reject").delivery_after_voucher_date == "reject"
    with pytest.raises(ValueError, match="delivery_after_voucher_date"):
        make_sandbox(delivery_after_voucher_date="maybe")


# -- saveVoucher validation (sevDesk 2.0) ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("positions", "fields", "message"),
    [
        ([position(REVENUE_19, 7, "107.00")], {}, "tax rate 7 is not allowed for account 8400"),
        ([position(REVENUE_19, 19, "119.00"), position(REVENUE_7, 7, "107.00", net=True, sumNet="100")], {}, "net"),
        ([position()], {"status": 1000}, "status"),
        ([position()], {"status": 200}, "status"),
        ([position(EXPENSE_FEES, 19, "11.90")], {}, "can not be used for REVENUE"),
        ([position(3640, 0, "100.00")], {}, "tax rule 1 is not allowed for account 8125"),
        ([position(99999, 19, "119.00")], {}, "accountDatev 99999"),
        ([position(REVENUE_19, 19, "119.00", accountDatev=None, accountingType={"id": 26})], {}, "accountDatev"),
        ([position(REVENUE_19, None, "119.00")], {}, "taxRate"),
        ([position(REVENUE_19, 19, None)], {}, "sumGross"),
        ([position(net=None)], {}, "net is required"),
        ([position()], {"creditDebit": "X"}, "creditDebit"),
        ([position()], {"voucherType": "RE"}, "voucherType"),
        ([position()], {"taxRule": None}, "taxRule is required"),
        ([position()], {"taxRule": {"id": 19, "objectName": "TaxRule"}}, "can not be used for vouchers"),
        ([position()], {"taxRule": {"id": 9, "objectName": "TaxRule"}}, "not allowed for revenue"),
        ([position()], {"supplierName": None}, "supplier"),
        ([position()], {"supplier": {"id": 1, "objectName": "Contact"}}, "does not exist"),
        ([position()], {"objectName": "Invoice"}, "objectName"),
        ([], {}, "at least one position"),
        ([position()], {"currency": "USD"}, "propertyExchangeRate"),
    ],
)
def test_invalid_vouchers_are_refused_with_422_and_nothing_is_saved(
    sandbox: SevdeskSandbox, api: httpx.Client, positions: list[dict[str, Any]], fields: dict[str, Any], message: str
) -> None:
    response = api.post("/Voucher/Factory/saveVoucher", json=voucher_body(positions=positions, **fields))
    assert_error(response, 422, contains=message)
    assert api.get("/Voucher").json()["objects"] == []
    assert sandbox.dump()["vouchers"] == []


def test_the_string_false_for_net_is_true_like_in_php(api: httpx.Client) -> None:
    # [ADP] sent net="false" and sevDesk treated the position as net: the gross amount alone is then not enough.
    response = api.post("/Voucher/Factory/saveVoucher", json=voucher_body(positions=[position(net="false")]))
    assert_error(response, 422, contains="sumNet is required")


def test_an_unknown_filename_is_422(api: httpx.Client) -> None:
    response = api.post("/Voucher/Factory/saveVoucher", json=voucher_body(filename="0" * 32 + ".pdf"))
    assert_error(response, 422, contains="could not be found")


def test_expense_vouchers_use_expense_accounts(api: httpx.Client) -> None:
    body = voucher_body(
        description="Gebühren 05/2026",
        positions=[position(EXPENSE_FEES, 0, "12.50")],
        creditDebit="C",
        taxRule={"id": 9, "objectName": "TaxRule"},
        supplierName="PayPal (Europe)",
    )
    assert save(api, body)["voucher"]["sumGross"] == "12.5"
    refused = voucher_body(positions=[position(REVENUE_19)], creditDebit="C", taxRule={"id": 9})
    assert_error(api.post("/Voucher/Factory/saveVoucher", json=refused), 422, contains="EXPENSE")


def test_foreign_currency_stores_eur_in_sums_and_the_original_in_foreign_fields(api: httpx.Client) -> None:
    body = voucher_body(positions=[position(gross="378.00")], currency="USD", propertyExchangeRate="0.8587")
    voucher = save(api, body)["voucher"]
    assert voucher["sumGross"] == "324.59"  # numtide commit 247b20be: 378 USD read as 324.59
    assert voucher["sumGrossForeignCurrency"] == "378" and voucher["currency"] == "USD"


# -- updating drafts --------------------------------------------------------------------------------------------------
def test_only_drafts_can_be_saved_again(api: httpx.Client) -> None:
    open_voucher = save(api, voucher_body())["voucher"]
    again = voucher_body()
    again["voucher"]["id"] = open_voucher["id"]
    assert_error(api.post("/Voucher/Factory/saveVoucher", json=again), 400, code=90400, contains="resetToDraft")


def test_a_draft_update_totals_only_the_positions_of_that_call(api: httpx.Client) -> None:
    draft = save(api, voucher_body(positions=[position(gross="119"), position(REVENUE_7, 7, "107")], status=50))
    voucher_id = draft["voucher"]["id"]
    first_id = draft["voucherPos"][0]["id"]
    update = {
        "voucher": {"id": voucher_id, "objectName": "Voucher", "status": 100},
        "voucherPosSave": [{**position(gross="238"), "id": first_id}],
        "voucherPosDelete": None,
    }
    updated = save(api, update)
    # [JRS] measured: sevDesk totals the positions sent in this call, although the 7 % one still exists.
    assert updated["voucher"]["sumGross"] == "238" and updated["voucher"]["status"] == "100"
    assert updated["voucher"]["description"] == "RE-1001"  # fields not sent are kept
    remaining = api.get("/VoucherPos", params={"voucher[id]": voucher_id, "voucher[objectName]": "Voucher"})
    assert sorted(p["sumGross"] for p in remaining.json()["objects"]) == ["107", "238"]


def test_voucher_pos_delete_removes_a_position_of_a_draft(api: httpx.Client) -> None:
    draft = save(api, voucher_body(positions=[position(gross="119"), position(REVENUE_7, 7, "107")], status=50))
    voucher_id, (first, second) = draft["voucher"]["id"], draft["voucherPos"]
    update = {
        "voucher": {"id": voucher_id, "objectName": "Voucher"},
        "voucherPosSave": [{**position(gross="119"), "id": first["id"]}],
        "voucherPosDelete": [{"id": second["id"], "objectName": "VoucherPos"}],
    }
    assert save(api, update)["voucher"]["status"] == "50"
    remaining = api.get("/VoucherPos", params={"voucher[id]": voucher_id, "voucher[objectName]": "Voucher"})
    assert [p["id"] for p in remaining.json()["objects"]] == [first["id"]]


# -- bookAmount --------------------------------------------------------------------------------------------------------
def test_booking_twice_is_refused_with_code_751(sandbox: SevdeskSandbox, api: httpx.Client) -> None:
    voucher_id = save(api, voucher_body())["voucher"]["id"]
    assert book(api, voucher_id, 119).status_code == 200
    assert_error(book(api, voucher_id, 119), 422, code=751, contains="already paid")
    assert len(sandbox.dump()["vouchers"][0]["bookings"]) == 1
    transactions = api.get("/CheckAccountTransaction", params={"checkAccount[id]": PAYPAL}).json()["objects"]
    assert len(transactions) == 1


def test_a_draft_can_not_be_paid(api: httpx.Client) -> None:
    voucher_id = save(api, voucher_body(status=50))["voucher"]["id"]
    assert_error(book(api, voucher_id, 119), 422, contains="A draft can not be paid")


def test_online_accounts_need_a_transaction_and_offline_accounts_refuse_one(api: httpx.Client) -> None:
    voucher_id = save(api, voucher_body())["voucher"]["id"]
    assert_error(book(api, voucher_id, 119, account=BANK), 422, contains="checkAccountTransaction is required")
    refused = book(api, voucher_id, 119, checkAccountTransaction={"id": 1, "objectName": "CheckAccountTransaction"})
    assert_error(refused, 422, contains="offline")
    assert api.get(f"/Voucher/{voucher_id}").json()["objects"][0]["status"] == "100"

    created = api.post(
        "/CheckAccountTransaction",
        json={
            "valueDate": "2026-05-08T00:00:00+02:00",
            "amount": 119,
            "payeePayerName": "Erika Muster",
            "paymtPurpose": "RE-1001",
            "checkAccount": {"id": BANK, "objectName": "CheckAccount"},
            "status": 100,
        },
    )
    assert created.status_code == 201, created.text
    txn = created.json()["objects"]
    ok = book(
        api,
        voucher_id,
        119,
        account=BANK,
        checkAccountTransaction={"id": txn["id"], "objectName": "CheckAccountTransaction"},
    )
    assert ok.status_code == 200 and ok.json()["objects"]["toStatus"] == "1000"
    bank_rows = api.get("/CheckAccountTransaction", params={"checkAccount[id]": BANK}).json()["objects"]
    assert [(t["id"], t["status"]) for t in bank_rows] == [(txn["id"], "400")]  # linked, no new transaction


def test_transactions_can_not_be_created_on_offline_accounts(api: httpx.Client) -> None:
    response = api.post(
        "/CheckAccountTransaction",
        json={"valueDate": "2026-05-08", "amount": 5, "checkAccount": {"id": PAYPAL, "objectName": "CheckAccount"}},
    )
    assert_error(response, 422, contains="You can only create transactions on online checkaccounts")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"type": "CF"}, "CF is not supported"),
        ({"type": "PAYED"}, "booking type"),
        ({"date": None}, "date is required"),
        ({"amount": None}, "amount is required"),
    ],
)
def test_invalid_bookings_are_422(api: httpx.Client, extra: dict[str, Any], message: str) -> None:
    voucher_id = save(api, voucher_body())["voucher"]["id"]
    body_amount = extra.pop("amount", 119)
    assert_error(book(api, voucher_id, body_amount, **extra), 422, contains=message)


def test_booking_on_an_unknown_account_is_404(api: httpx.Client) -> None:
    voucher_id = save(api, voucher_body())["voucher"]["id"]
    assert_error(book(api, voucher_id, 119, account=9999), 404, code=151, contains="CheckAccount")


def test_partial_payments_leave_the_voucher_partially_paid_until_the_total_is_reached(api: httpx.Client) -> None:
    voucher_id = save(api, voucher_body())["voucher"]["id"]
    first = book(api, voucher_id, 100, type="N").json()["objects"]
    assert (first["fromStatus"], first["toStatus"]) == ("100", "750")
    assert api.get(f"/Voucher/{voucher_id}").json()["objects"][0]["paidAmount"] == 100
    second = book(api, voucher_id, 50, type="N").json()["objects"]  # over-booking: accepted, paidAmount capped
    assert (second["fromStatus"], second["toStatus"]) == ("750", "1000")
    assert api.get(f"/Voucher/{voucher_id}").json()["objects"][0]["paidAmount"] == 119


def test_full_payment_marks_paid_even_for_a_smaller_amount(api: httpx.Client) -> None:
    voucher_id = save(api, voucher_body())["voucher"]["id"]
    assert book(api, voucher_id, 118.5).json()["objects"]["toStatus"] == "1000"


def test_a_positive_amount_on_an_expense_voucher_leaves_it_partially_paid(api: httpx.Client) -> None:
    body = voucher_body(positions=[position(EXPENSE_FEES, 0, "58.31")], creditDebit="C", taxRule={"id": 9})
    voucher_id = save(api, body)["voucher"]["id"]
    assert book(api, voucher_id, 58.31).json()["objects"]["toStatus"] == "750"  # pitfall 2
    assert api.get(f"/Voucher/{voucher_id}").json()["objects"][0]["paidAmount"] == -58.31


def test_a_negative_amount_pays_an_expense_voucher(api: httpx.Client) -> None:
    body = voucher_body(positions=[position(EXPENSE_FEES, 0, "58.31")], creditDebit="C", taxRule={"id": 9})
    voucher_id = save(api, body)["voucher"]["id"]
    assert book(api, voucher_id, "-58.31").json()["objects"]["toStatus"] == "1000"


# -- listing and filters -----------------------------------------------------------------------------------------------
def test_description_like_is_a_case_insensitive_substring_match(api: httpx.Client) -> None:
    for description in ("RE-1001", "RE-10010", "XRE-1001-storno", "RE-2000"):
        save(api, voucher_body(description=description))
    found = api.get("/Voucher", params={"descriptionLike": "re-1001"}).json()["objects"]
    assert sorted(v["description"] for v in found) == ["RE-1001", "RE-10010", "XRE-1001-storno"]


def test_unknown_filters_are_ignored_and_return_everything(api: httpx.Client) -> None:
    save(api, voucher_body(description="RE-1"))
    save(api, voucher_body(description="RE-2"))
    everything = api.get("/Voucher", params={"descriptonLike": "RE-1", "embed": "voucherPos"}).json()["objects"]
    assert len(everything) == 2
    assert "voucherPos" not in everything[0]  # embed=voucherPos is ignored too (docs §3)


def test_credit_debit_status_and_contact_filters(api: httpx.Client) -> None:
    contact = api.post("/Contact", json={"category": {"id": 3, "objectName": "Category"}, "name": "Firma GmbH"})
    contact_id = contact.json()["objects"]["id"]
    save(api, voucher_body(description="RE-1", supplier={"id": contact_id, "objectName": "Contact"}))
    save(api, voucher_body(description="RE-2", status=50))
    save(
        api,
        voucher_body(
            description="EX-1", positions=[position(EXPENSE_FEES, 0, "1")], creditDebit="C", taxRule={"id": 9}
        ),
    )

    def descriptions(params: dict[str, str]) -> list[str]:
        return sorted(v["description"] for v in api.get("/Voucher", params=params).json()["objects"])

    assert descriptions({"creditDebit": "D"}) == ["RE-1", "RE-2"]
    assert descriptions({"status": "50"}) == ["RE-2"]
    assert descriptions({"contact[id]": contact_id, "contact[objectName]": "Contact"}) == ["RE-1"]


def test_date_filters_take_unix_timestamps_and_iso_dates_give_an_empty_list(api: httpx.Client) -> None:
    save(api, voucher_body(description="MAY", voucherDate="07.05.2026"))
    save(api, voucher_body(description="JUNE", voucherDate="07.06.2026"))
    may_end = int(datetime.fromisoformat("2026-05-31T23:59:59+02:00").timestamp())
    found = api.get("/Voucher", params={"endDate": may_end}).json()["objects"]
    assert [v["description"] for v in found] == ["MAY"]
    june_start = int(datetime.fromisoformat("2026-06-01T00:00:00+02:00").timestamp())
    assert [v["description"] for v in api.get("/Voucher", params={"startDate": june_start}).json()["objects"]] == [
        "JUNE"
    ]
    assert api.get("/Voucher", params={"startDate": "2026-05-01"}).json()["objects"] == []  # pitfall 15


def test_limit_offset_and_count_all(api: httpx.Client) -> None:
    for number in range(5):
        save(api, voucher_body(description=f"RE-{number}"))
    page = api.get("/Voucher", params={"limit": 2, "offset": 1, "countAll": "true"}).json()
    assert page["total"] == 5
    assert [v["description"] for v in page["objects"]] == ["RE-1", "RE-2"]


# -- faults ------------------------------------------------------------------------------------------------------------
def test_saved500_creates_the_voucher_and_answers_500() -> None:
    plan = FaultPlan([FaultRule(api="sevdesk", operation="save_voucher", kind="saved500")])
    sb = make_sandbox(faults=plan)
    sb.start()
    try:
        with client_for(sb) as api:
            response = api.post("/Voucher/Factory/saveVoucher", json=voucher_body(description="RE-500"))
            assert_error(response, 500)
            found = api.get("/Voucher", params={"descriptionLike": "RE-500"}).json()["objects"]
            assert [v["description"] for v in found] == ["RE-500"]  # docs §1: a 500 may still have written
            assert api.post("/Voucher/Factory/saveVoucher", json=voucher_body(description="RE-501")).status_code == 201
        assert [e.fault for e in sb.exchanges if e.operation == "save_voucher"] == ["saved500", None]
    finally:
        sb.stop()


def test_a_plain_500_fault_does_not_save() -> None:
    plan = FaultPlan([FaultRule(api="sevdesk", operation="book_amount", kind="500")])
    sb = make_sandbox(faults=plan)
    sb.start()
    try:
        with client_for(sb) as api:
            voucher_id = save(api, voucher_body())["voucher"]["id"]
            assert_error(book(api, voucher_id, 119), 500)
            assert api.get(f"/Voucher/{voucher_id}").json()["objects"][0]["status"] == "100"
    finally:
        sb.stop()


def test_rate_limit_answers_429_with_retry_after_and_recovers_with_time() -> None:
    clock = FakeClock()
    sb = make_sandbox(rate_limit_per_second=2, clock=clock)
    sb.start()
    try:
        with client_for(sb) as api:
            assert [api.get("/CheckAccount").status_code for _ in range(2)] == [200, 200]
            limited = api.get("/CheckAccount")
            assert_error(limited, 429)
            assert limited.headers["Retry-After"] == "1"
            clock.now += 0.5  # one token back at 2/s
            assert api.get("/CheckAccount").status_code == 200
            assert api.get("/CheckAccount").status_code == 429
    finally:
        sb.stop()


def test_no_rate_limit_by_default(api: httpx.Client) -> None:
    assert {api.get("/Tools/bookkeepingSystemVersion").status_code for _ in range(30)} == {200}


# -- bookkeeping 1.0 ---------------------------------------------------------------------------------------------------
def test_bookkeeping_version_1_0_refuses_2_0_vouchers_and_is_switchable() -> None:
    sb = make_sandbox(bookkeeping_version="1.0")
    sb.start()
    try:
        with client_for(sb) as api:
            assert api.get("/Tools/bookkeepingSystemVersion").json()["objects"]["version"] == "1.0"
            assert_error(api.post("/Voucher/Factory/saveVoucher", json=voucher_body()), 422, contains="taxType")
            legacy = voucher_body(taxType="default", positions=[position(accountDatev=None, accountingType={"id": 26})])
            assert save(api, legacy)["voucher"]["taxType"] == "default"
            sb.bookkeeping_version = "2.0"
            assert api.get("/Tools/bookkeepingSystemVersion").json()["objects"]["version"] == "2.0"
            assert save(api, voucher_body())["voucher"]["taxRule"]["id"] == "1"
    finally:
        sb.stop()


# -- check accounts ----------------------------------------------------------------------------------------------------
def test_clearing_accounts_are_offline_and_need_a_unique_accounting_number(api: httpx.Client) -> None:
    created = api.post("/CheckAccount/Factory/clearingAccount", json={"name": "Billbee eBay", "accountingNumber": 1370})
    assert created.status_code == 201, created.text
    account = created.json()["objects"]
    assert (account["type"], account["accountingNumber"], account["status"]) == ("offline", "1370", "100")
    assert account["id"] in {a["id"] for a in api.get("/CheckAccount").json()["objects"]}

    duplicate = api.post("/CheckAccount/Factory/clearingAccount", json={"name": "Again", "accountingNumber": "1361"})
    assert_error(duplicate, 422, contains="1361")
    assert_error(
        api.post("/CheckAccount/Factory/clearingAccount", json={"accountingNumber": 1371}), 422, contains="name"
    )
    automatic = api.post("/CheckAccount/Factory/clearingAccount", json={"name": "Auto", "accountingNumber": None})
    assert automatic.json()["objects"]["accountingNumber"] == "1371"


# -- contacts ----------------------------------------------------------------------------------------------------------
def test_contact_list_hides_persons_without_depth_1(sandbox: SevdeskSandbox, api: httpx.Client) -> None:
    person = api.post(
        "/Contact",
        json={
            "objectName": "Contact",
            "mapAll": True,
            "category": {"id": 3, "objectName": "Category"},
            "surename": "Max",
            "familyname": "Muster",
            "customerNumber": "BB-4711",
            "status": 1000,
        },
    )
    assert person.status_code == 201, person.text
    created = person.json()["objects"]
    # A person's "name" is null, not left out: the live API sends every field (write_invoice_cancel.json's contact).
    assert created["surename"] == "Max" and created["status"] == "1000" and created["name"] is None
    org = api.post(
        "/Contact",
        json={"category": {"id": 3}, "name": "Firma GmbH", "customerNumber": "BB-47", "vatNumber": "ATU12345678"},
    )
    assert org.status_code == 201

    assert [c["customerNumber"] for c in api.get("/Contact").json()["objects"]] == ["BB-47"]
    assert api.get("/Contact", params={"customerNumber": "BB-4711"}).json()["objects"] == []  # the pitfall
    found = api.get("/Contact", params={"customerNumber": "BB-4711", "depth": 1}).json()["objects"]
    assert [c["id"] for c in found] == [created["id"]]  # exact match: BB-47 is not returned
    assert api.get(f"/Contact/{created['id']}").json()["objects"][0]["familyname"] == "Muster"
    assert [c["name"] for c in api.get("/Contact", params={"name": "firma"}).json()["objects"]] == ["Firma GmbH"]
    assert {c["customerNumber"] for c in sandbox.dump()["contacts"]} == {"BB-4711", "BB-47"}


def test_contact_needs_a_category_and_a_name(api: httpx.Client) -> None:
    assert_error(api.post("/Contact", json={"name": "Firma"}), 422, contains="category")
    assert_error(api.post("/Contact", json={"category": {"id": 3}}), 422, contains="name")


def test_customer_numbers(api: httpx.Client) -> None:
    assert api.get("/Contact/Factory/getNextCustomerNumber").json() == {"objects": "1000"}
    api.post("/Contact", json={"category": {"id": 3}, "name": "A", "customerNumber": "1041"})
    assert api.get("/Contact/Factory/getNextCustomerNumber").json() == {"objects": "1042"}
    check = "/Contact/Mapper/checkCustomerNumberAvailability"
    assert api.get(check, params={"customerNumber": "1041"}).json() == {"objects": False}
    assert api.get(check, params={"customerNumber": "BB-1"}).json() == {"objects": True}


def test_addresses_and_communication_ways_are_attached_to_the_contact(
    sandbox: SevdeskSandbox, api: httpx.Client
) -> None:
    contact_id = api.post("/Contact", json={"category": {"id": 3}, "name": "Firma GmbH"}).json()["objects"]["id"]
    germany = api.get("/StaticCountry", params={"code": "DE"}).json()["objects"]
    assert [(c["id"], c["code"]) for c in germany] == [("1", "de")]
    # Three GB rows (ERRATA sevDesk 12: England, Great Britain, United Kingdom; pitfall 19 said "duplicate").
    assert len(api.get("/StaticCountry", params={"code": "gb"}).json()["objects"]) == 3
    categories = api.get("/Category", params={"objectType": "ContactAddress"}).json()["objects"]
    assert "47" in {c["id"] for c in categories}
    assert all(c["objectType"] == "ContactAddress" for c in categories)

    address = api.post(
        "/ContactAddress",
        json={
            "contact": {"id": contact_id, "objectName": "Contact"},
            "street": "Teststraße 1",
            "zip": "10115",
            "city": "Berlin",
            "country": {"id": 1, "objectName": "StaticCountry"},
            "category": {"id": 47, "objectName": "Category"},
        },
    )
    assert address.status_code == 201, address.text
    assert address.json()["objects"]["country"] == {"id": "1", "objectName": "StaticCountry"}
    way = api.post(
        "/CommunicationWay",
        json={
            "contact": {"id": contact_id, "objectName": "Contact"},
            "type": "EMAIL",
            "value": "erika@example.com",
            "key": {"id": 2, "objectName": "CommunicationWayKey"},
            "main": True,
        },
    )
    assert way.status_code == 201 and way.json()["objects"]["main"] == "1"
    missing = api.post("/ContactAddress", json={"contact": {"id": 1}, "country": {"id": 1}})
    assert_error(missing, 404, code=151, contains="Contact")

    dumped = sandbox.dump()["contacts"][0]
    assert [a["city"] for a in dumped["addresses"]] == ["Berlin"]
    assert [w["value"] for w in dumped["communicationWays"]] == ["erika@example.com"]


# -- uploads -----------------------------------------------------------------------------------------------------------
def test_upload_needs_multipart_with_a_file_field(api: httpx.Client) -> None:
    assert_error(
        api.post("/Voucher/Factory/uploadTempFile", content=PDF, headers={"Content-Type": "application/pdf"}),
        400,
        contains="multipart",
    )
    wrong_field = api.post("/Voucher/Factory/uploadTempFile", files={"document": ("a.pdf", PDF, "application/pdf")})
    assert_error(wrong_field, 400, contains="file")


def test_the_dump_is_json_ready(sandbox: SevdeskSandbox, api: httpx.Client) -> None:
    uploaded = upload(api)
    voucher_id = save(api, voucher_body(filename=uploaded["filename"]))["voucher"]["id"]
    book(api, voucher_id, "119.00")
    dumped = json.loads(json.dumps(sandbox.dump()))
    assert dumped["bookkeepingVersion"] == "2.0"
    assert dumped["files"][0]["attachedTo"] == [voucher_id]
    paypal = next(a for a in dumped["checkAccounts"] if a["id"] == str(PAYPAL))
    assert [t["amount"] for t in paypal["transactions"]] == ["119"]
    assert Decimal(paypal["balance"]) == Decimal("119")


def test_reset_restores_the_seed(sandbox: SevdeskSandbox, api: httpx.Client) -> None:
    first_id = save(api, voucher_body())["voucher"]["id"]
    api.post("/CheckAccount/Factory/clearingAccount", json={"name": "Extra", "accountingNumber": 1399})
    sandbox.reset()
    assert api.get("/Voucher").json()["objects"] == []
    assert len(api.get("/CheckAccount").json()["objects"]) == 9
    assert save(api, voucher_body())["voucher"]["id"] == first_id  # ids start again


# -- behaviour the live recordings and ERRATA settle (see also test_sevdesk_recorded.py for the shapes) ---------------
def test_static_country_gb_has_three_rows_and_united_kingdom_is_found_by_name(api: httpx.Client) -> None:
    rows = api.get("/StaticCountry", params={"code": "GB"}).json()["objects"]
    # ERRATA sevDesk 12: England, Great Britain and United Kingdom. United Kingdom is not the first row, so a client
    # that takes the first match picks England; it has to pick the row by name.
    assert [r["nameEn"] for r in rows] == ["England", "Great Britain", "United Kingdom"]
    assert {r["code"].upper() for r in rows} == {"GB"}
    assert len({r["id"] for r in rows}) == 3
    assert next(r for r in rows if r["nameEn"] == "United Kingdom")["name"] == "Vereinigtes Königreich"
    assert [r["nameEn"] for r in api.get("/StaticCountry", params={"code": "AT"}).json()["objects"]] == ["Austria"]
    assert len(api.get("/StaticCountry", params={"code": "de"}).json()["objects"]) == 1


def test_an_archived_offline_account_shows_status_0_and_takes_no_bookings(
    sandbox: SevdeskSandbox, api: httpx.Client
) -> None:
    voucher_id = save(api, voucher_body())["voucher"]["id"]
    sandbox.archive_check_account(PAYPAL)
    listed = {a["id"]: a["status"] for a in api.get("/CheckAccount").json()["objects"]}
    assert listed[str(PAYPAL)] == "0" and listed["5102"] == "100"  # strings, like check_account_list.json
    assert api.get(f"/CheckAccount/{PAYPAL}").json()["objects"][0]["status"] == "0"
    assert_error(book(api, voucher_id, 119), 422, contains="archived")
    with pytest.raises(KeyError):
        sandbox.archive_check_account(424242)
    sandbox.reset()
    assert api.get(f"/CheckAccount/{PAYPAL}").json()["objects"][0]["status"] == "100"


@pytest.mark.parametrize(
    "path", ["/Tools/bookkeepingSystemVersion", "/CheckAccount", "/Voucher", "/ReceiptGuidance/forRevenue"]
)
def test_x_version_default_is_accepted(api: httpx.Client, path: str) -> None:
    assert api.get(path, headers={"X-Version": "default"}).status_code == 200


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_x_version_1_0_and_2_0_are_refused_on_bookkeeping_system_version(api: httpx.Client, version: str) -> None:
    # docs §1: "`1.0`/`2.0` are rejected on `/Tools/bookkeepingSystemVersion`".
    response = api.get("/Tools/bookkeepingSystemVersion", headers={"X-Version": version})
    assert_error(response, 400, contains="X-Version")
    assert api.get("/CheckAccount", headers={"X-Version": version}).status_code == 200  # other endpoints ignore it


def test_a_429_without_retry_after_has_no_header_and_with_one_keeps_it(sandbox: SevdeskSandbox) -> None:
    bare = sandbox.error_response(429, "Too Many Requests", retry_after=None)
    assert bare.status == 429 and "Retry-After" not in bare.headers
    assert bare.body["error"]["responseCode"] == 429 and bare.body["objects"] is None
    timed = sandbox.error_response(429, "Too Many Requests", retry_after=7)
    assert timed.headers["Retry-After"] == "7"


def test_a_429_fault_over_http_carries_its_retry_after() -> None:
    rule = FaultRule(api="sevdesk", operation="list_vouchers", kind="429", retry_after=3)
    sb = make_sandbox(faults=FaultPlan([rule]))
    sb.start()
    try:
        with client_for(sb) as api:
            limited = api.get("/Voucher")
            assert_error(limited, 429)
            assert limited.headers["Retry-After"] == "3"
            assert api.get("/Voucher").status_code == 200
    finally:
        sb.stop()


def test_a_429bare_fault_over_http_has_no_retry_after() -> None:
    # The fault kind of local/faults.py that calls error_response(429, ..., retry_after=None).
    sb = make_sandbox(faults=FaultPlan([FaultRule(api="sevdesk", operation="list_vouchers", kind="429bare")]))
    sb.start()
    try:
        with client_for(sb) as api:
            limited = api.get("/Voucher")
            assert_error(limited, 429)
            assert "Retry-After" not in limited.headers
    finally:
        sb.stop()


def test_description_like_search_pages_with_limit_and_offset_until_a_short_page(api: httpx.Client) -> None:
    # The connector's duplicate search: descriptionLike (substring) + creditDebit=D, paged with offset (docs §13).
    for number in range(7):
        save(api, voucher_body(description=f"RE-2026-{number:03d}"))
    save(api, voucher_body(description="GS-2026-001"))
    save(
        api,
        voucher_body(
            description="RE-2026-EXP",
            positions=[position(EXPENSE_FEES, 0, "1")],
            creditDebit="C",
            taxRule={"id": 9, "objectName": "TaxRule"},
        ),
    )
    found: list[str] = []
    offset, limit = 0, 3
    while True:
        params: dict[str, str | int] = {"descriptionLike": "2026-0", "creditDebit": "D", "limit": limit}
        params["offset"] = offset
        page = api.get("/Voucher", params=params).json()["objects"]
        found += [v["description"] for v in page]
        if len(page) < limit:
            break
        offset += limit
    assert found == [f"RE-2026-{n:03d}" for n in range(7)] + ["GS-2026-001"]
    assert offset == 6  # pages of 3, 3 and 2
    assert api.get("/Voucher", params={"descriptionLike": "2026-0", "offset": 100}).json()["objects"] == []


def test_book_amount_answers_amount_payed_signed_by_the_voucher_direction(api: httpx.Client) -> None:
    # write_voucher_book_amount.json: -0.45 booked on an expense voucher answers amountPayed "0.45".
    body = voucher_body(positions=[position(EXPENSE_FEES, 0, "0.45")], creditDebit="C", taxRule={"id": 14})
    voucher_id = save(api, body)["voucher"]["id"]
    log = book(api, voucher_id, -0.45).json()["objects"]
    assert (log["amountPayed"], log["fromStatus"], log["toStatus"]) == ("0.45", "100", "1000")


def test_reset_to_open_unlinks_an_offline_booking_and_drops_its_transaction(api: httpx.Client) -> None:
    voucher_id = save(api, voucher_body())["voucher"]["id"]
    assert book(api, voucher_id, 119).status_code == 200
    assert len(api.get("/CheckAccountTransaction", params={"checkAccount[id]": PAYPAL}).json()["objects"]) == 1
    reset = api.put(f"/Voucher/{voucher_id}/resetToOpen")
    assert reset.status_code == 200, reset.text
    voucher = reset.json()["objects"]  # a single object (write_voucher_reset_to_open.json)
    assert isinstance(voucher, dict) and voucher["id"] == voucher_id
    assert (voucher["status"], voucher["payDate"], voucher["paidAmount"]) == ("100", None, 0)
    assert api.get("/CheckAccountTransaction", params={"checkAccount[id]": PAYPAL}).json()["objects"] == []
    assert book(api, voucher_id, 119).json()["objects"]["fromStatus"] == "100"  # can be paid again


def test_reset_to_open_puts_a_linked_online_transaction_back_to_100(api: httpx.Client) -> None:
    voucher_id = save(api, voucher_body())["voucher"]["id"]
    txn = api.post(
        "/CheckAccountTransaction",
        json={"valueDate": "2026-05-08T12:00:00+02:00", "amount": 119, "checkAccount": {"id": BANK}, "status": 100},
    ).json()["objects"]
    ref = {"id": txn["id"], "objectName": "CheckAccountTransaction"}
    assert book(api, voucher_id, 119, account=BANK, checkAccountTransaction=ref).status_code == 200
    assert api.get(f"/CheckAccountTransaction/{txn['id']}").json()["objects"][0]["status"] == "400"
    assert api.put(f"/Voucher/{voucher_id}/resetToOpen").status_code == 200
    assert api.get(f"/CheckAccountTransaction/{txn['id']}").json()["objects"][0]["status"] == "100"


def test_reset_to_open_refuses_drafts_and_unknown_vouchers(api: httpx.Client) -> None:
    draft_id = save(api, voucher_body(status=50))["voucher"]["id"]
    assert_error(api.put(f"/Voucher/{draft_id}/resetToOpen"), 422, contains="draft")
    assert_error(api.put("/Voucher/424242/resetToOpen"), 404, code=151, contains="Voucher")


def test_transactions_by_id_and_the_recorded_404(api: httpx.Client) -> None:
    created = api.post(
        "/CheckAccountTransaction",
        json={"valueDate": "29.09.2026", "amount": "-0.45", "checkAccount": {"id": BANK}, "paymtPurpose": "x"},
    ).json()["objects"]
    by_id = api.get(f"/CheckAccountTransaction/{created['id']}").json()["objects"]
    assert isinstance(by_id, list) and by_id[0]["amount"] == "-0.45"
    missing = api.get("/CheckAccountTransaction/1")
    assert_error(missing, 404, code=151)
    assert missing.json()["error"]["message"] == "No Model_CheckAccountTransaction with the id 1 was found"


def test_contacts_carry_every_field_and_the_address_answer_expands_the_contact(api: httpx.Client) -> None:
    contact = api.post("/Contact", json={"category": {"id": 3}, "name": "Firma GmbH"}).json()["objects"]
    # Unset fields are null, not left out (contact.json, write_contact_create.json; ERRATA sevDesk 11).
    assert contact["surename"] is None and contact["vatNumber"] is None and contact["defaultShowVat"] == "1"
    assert "parent" not in contact  # an empty reference is left out, as in every recording
    address = api.post(
        "/ContactAddress",
        json={"contact": {"id": contact["id"]}, "street": "A 1", "zip": "1", "city": "B", "country": {"id": 1}},
    ).json()["objects"]
    assert address["contact"] == contact  # fully expanded (write_contact_address_create.json)
    assert "name2" not in address and address["name"] is None
    listed = api.get("/ContactAddress", params={"contact[id]": contact["id"], "contact[objectName]": "Contact"})
    assert listed.json()["objects"][0]["contact"] == {"id": contact["id"], "objectName": "Contact"}
    other = api.post("/Contact", json={"category": {"id": 3}, "name": "Andere"}).json()["objects"]
    for owner, value in ((contact, "a@example.com"), (other, "b@example.com")):
        api.post(
            "/CommunicationWay",
            json={"contact": {"id": owner["id"]}, "type": "EMAIL", "value": value, "key": {"id": 2}, "main": True},
        )
    ways = api.get("/CommunicationWay", params={"contact[id]": contact["id"], "contact[objectName]": "Contact"})
    assert [w["value"] for w in ways.json()["objects"]] == ["a@example.com"]

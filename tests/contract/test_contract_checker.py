"""The contract checker accepts realistic traffic, catches spec violations, and carries no dead-weight corrections.

Realistic sevDesk answers are modelled on live-recorded fixtures of ``jernoxit/sevdesk-rs`` ([JRS] in
shared/docs/sevdesk-api.md: ``tests/fixtures/write_voucher_save_create.json``, ``write_voucher_book_amount.json``,
``write_upload_temp_file.json``, ``contact_list_by_customer_number.json``, ``write_contact_address_create.json``,
``bookkeeping_system_version.json``), adapted to a Billbee revenue voucher. Billbee answers come from
shared/specs/billbee-examples/.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.contract import (
    ALL_CORRECTIONS,
    DOC_BACKED_CORRECTIONS,
    ERRATA_CORRECTIONS,
    ContractChecker,
    _load_raw_spec,
    corrected_spec,
    default_specs_dir,
)
from local.sandbox.base import Request, Response, SandboxServer

Exchange = dict[str, Any]
EXAMPLES = default_specs_dir() / "billbee-examples"
ALL_NAMES = [c.name for c in ALL_CORRECTIONS]


@pytest.fixture(scope="module")
def checker() -> ContractChecker:
    return ContractChecker()


def without(name: str) -> ContractChecker:
    return ContractChecker(corrections=[n for n in ALL_NAMES if n != name])


RAW = ContractChecker(corrections=())


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def exchange(
    api: str,
    method: str,
    path: str,
    *,
    query: list[list[str]] | None = None,
    body: Any = None,
    status: int | None = 200,
    response: Any = None,
    headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
    fault: str | None = None,
) -> Exchange:
    """An exchange as ``Exchange.as_json()`` in local/sandbox/base.py records it (secrets already redacted)."""
    if headers is None:
        headers = {"authorization": "***", "accept": "application/json"}
        if api == "billbee":
            headers["x-billbee-api-key"] = "***"
        if body is not None:
            headers["content-type"] = "application/json"
    return {
        "api": api,
        "operation": "test",
        "method": method,
        "path": path,
        "query": query or [],
        "request_headers": headers,
        "request_body": body,
        "status": status,
        "response_headers": response_headers or {},
        "response_body": response,
        "fault": fault,
        "started": 0.0,
        "duration_ms": 1.0,
    }


def messages_with(violations: list[str], *needles: str) -> list[str]:
    return [v for v in violations if all(n in v for n in needles)]


# ---------------------------------------------------------------------------------------------------------------
# Realistic exchanges
# ---------------------------------------------------------------------------------------------------------------
def billbee_list_orders() -> Exchange:
    # billbee-api.md §4 "Suggested connector query", array filters in the spec's repeated-key form.
    return exchange(
        "billbee",
        "GET",
        "/api/v1/orders",
        query=[
            ["minOrderDate", "2023-03-01T00:00:00+01:00"],
            ["orderStateId", "3"],
            ["orderStateId", "4"],
            ["tag", "Sevdesk"],
            ["excludeTags", "true"],
            ["pageSize", "250"],
            ["page", "1"],
        ],
        response=example("ithoc-mock_real_orders_page_redacted.json"),
    )


def billbee_add_tags() -> Exchange:
    return exchange(
        "billbee",
        "POST",
        "/api/v1/orders/300000180937794/tags",
        body={"Tags": ["Sevdesk"]},
        response={"ErrorMessage": None, "ErrorCode": 0, "ErrorDescription": "NoError", "Data": {}},
    )


def billbee_create_invoice() -> Exchange:
    answer = example("php-sdk_create_invoice_response.json")
    # The fixture's "base64-data" is a placeholder, not base64 (billbee-examples/README.md): use a real one.
    answer["Data"]["PDFData"] = base64.b64encode(b"%PDF-1.4\n%test invoice\n").decode()
    return exchange(
        "billbee",
        "POST",
        "/api/v1/orders/CreateInvoice/100000186018330",
        query=[["includeInvoicePdf", "true"]],
        response=answer,
    )


def billbee_php_sdk_orders() -> Exchange:
    return exchange("billbee", "GET", "/api/v1/orders", response=example("php-sdk_get_orders_response.json"))


def save_voucher_body() -> dict[str, Any]:
    """A 2.0 revenue voucher for one Billbee invoice (sevdesk-api.md §3, §4)."""
    return {
        "voucher": {
            "objectName": "Voucher",
            "mapAll": True,
            "voucherDate": "22.07.2022",
            "description": "RN-2022-0083",
            "supplierName": "vorname nachname",
            "status": 100,
            "creditDebit": "D",
            "voucherType": "VOU",
            "taxRule": {"id": "1", "objectName": "TaxRule"},
            "currency": "EUR",
        },
        "voucherPosSave": [
            {
                "objectName": "VoucherPos",
                "mapAll": True,
                # Ids come back from sevDesk as strings (ReceiptGuidance / AccountDatev) and are passed on as such.
                "accountDatev": {"id": "3631", "objectName": "AccountDatev"},
                "taxRate": 19,
                "net": False,
                "sumGross": 170.76,
                "comment": "Bestellung Test",
                "isAsset": False,
            }
        ],
        "voucherPosDelete": None,
        "filename": "d97ad10ac85bdb2d863c4fa9af354997.pdf",
    }


def save_voucher_answer() -> dict[str, Any]:
    """Shape and string scalars of [JRS] ``write_voucher_save_create.json`` for the body above."""
    client = {"id": "1303847", "objectName": "SevClient"}
    return {
        "objects": {
            "voucher": {
                "id": "156270656",
                "objectName": "Voucher",
                "additionalInformation": None,
                "create": "2026-09-29T21:19:13+02:00",
                "update": "2026-09-29T21:19:13+02:00",
                "sevClient": client,
                "createUser": {"id": "1551095", "objectName": "SevUser"},
                "voucherDate": "2022-07-22T00:00:00+02:00",
                "supplierName": "vorname nachname",
                "description": "RN-2022-0083",
                "payDate": None,
                "status": "100",
                "currency": "EUR",
                "sumNet": "143.5",
                "sumTax": "27.26",
                "sumGross": "170.76",
                "sumNetAccounting": "143.5",
                "sumTaxAccounting": "27.26",
                "sumGrossAccounting": "170.76",
                "paidAmount": 0,
                "taxType": None,
                "creditDebit": "D",
                "voucherType": "VOU",
                "recurringInterval": None,
                "recurringStartDate": None,
                "enshrined": None,
                "paymentDeadline": None,
                "deliveryDate": "2022-07-22T00:00:00+02:00",
                "deliveryDateUntil": None,
                "taxRule": {"id": "1", "objectName": "TaxRule"},
            },
            "voucherPos": [
                {
                    "id": "213070388",
                    "objectName": "VoucherPos",
                    "create": "2026-09-29T21:19:13+02:00",
                    "update": "2026-09-29T21:19:13+02:00",
                    "sevClient": client,
                    "voucher": {"id": "156270656", "objectName": "Voucher"},
                    "taxRate": "19",
                    "net": "0",
                    "isAsset": "0",
                    "sumNet": "143.5",
                    "sumTax": "27.26",
                    "sumGross": "170.76",
                    "sumNetAccounting": "143.5",
                    "sumTaxAccounting": "27.26",
                    "sumGrossAccounting": "170.76",
                    "comment": "Bestellung Test",
                    "accountDatev": {"id": "3631", "objectName": "AccountDatev"},
                }
            ],
            "filename": "d97ad10ac85bdb2d863c4fa9af354997.pdf",
        }
    }


def sevdesk_save_voucher(body: Any = None, answer: Any = None) -> Exchange:
    return exchange(
        "sevdesk",
        "POST",
        "/api/v1/Voucher/Factory/saveVoucher",
        body=save_voucher_body() if body is None else body,
        status=201,
        response=save_voucher_answer() if answer is None else answer,
    )


def sevdesk_upload() -> Exchange:
    headers = {"authorization": "***", "accept": "application/json", "content-type": "multipart/form-data; boundary=x1"}
    return exchange(
        "sevdesk",
        "POST",
        "/api/v1/Voucher/Factory/uploadTempFile",
        headers=headers,
        body={
            "multipart": {
                "fields": {},
                "files": {"file": {"filename": "RN-2022-0083.pdf", "content_type": "application/pdf", "size": 48213}},
            }
        },
        status=201,
        response={
            "objects": {
                "pages": 1,
                "mimeType": "image/jpg",
                "originMimeType": "application/pdf",
                "filename": "d97ad10ac85bdb2d863c4fa9af354997.pdf",
                "contentHash": "46620b3e7575523b425c72f4ffc21c023c2c084b660c8297ad3a5936bbe19716",
                "content": [],
                "isEInvoice": False,
            }
        },
    )


def book_amount_body() -> dict[str, Any]:
    # sevdesk-api.md §5; an offline clearing account, so no checkAccountTransaction. The id is passed on as the
    # string GET /CheckAccount returned.
    return {
        "amount": 170.76,
        "date": "2022-07-22T12:00:00+02:00",
        "type": "FULL_PAYMENT",
        "checkAccount": {"id": "5936021", "objectName": "CheckAccount"},
        "createFeed": True,
    }


def sevdesk_book_amount(body: Any = None) -> Exchange:
    return exchange(
        "sevdesk",
        "PUT",
        "/api/v1/Voucher/156270656/bookAmount",
        body=book_amount_body() if body is None else body,
        response={
            "objects": {
                "id": "148586846",
                "objectName": "VoucherLog",
                "additionalInformation": None,
                "create": "2026-09-29T21:19:16+02:00",
                "voucher": {"id": "156270656", "objectName": "Voucher"},
                "fromStatus": "100",
                "toStatus": "1000",
                "amountPayed": "170.76",
                "bookingDate": "2022-07-22T12:00:00+02:00",
                "sevClient": {"id": "1303847", "objectName": "SevClient"},
            }
        },
    )


def contact_answer() -> dict[str, Any]:
    """[JRS] ``contact_list_by_customer_number.json`` (an organisation), with our customer number."""
    nulls = ("surename", "familyname", "titel", "description", "academicTitle", "gender", "name2", "birthday")
    more_nulls = ("vatNumber", "bankAccount", "bankNumber", "mandateReference", "defaultCashbackTime", "taxNumber")
    contact: dict[str, Any] = {
        "id": "138810376",
        "objectName": "Contact",
        "additionalInformation": None,
        "create": "2026-10-01T16:35:22+02:00",
        "update": "2026-10-01T16:35:22+02:00",
        "name": "Kreisstadt Unna",
        "status": "1000",
        "customerNumber": "BB-23024",
        "category": {"id": "3", "objectName": "Category"},
        "sevClient": {"id": "1303847", "objectName": "SevClient"},
        "defaultCashbackPercent": None,
        "defaultTimeToPay": None,
        "taxOffice": None,
        "exemptVat": "0",
        "taxType": None,
        "defaultDiscountAmount": None,
        "defaultDiscountPercentage": "1",
        "buyerReference": "-",
        "governmentAgency": "0",
        "defaultShowVat": "1",
    }
    contact.update(dict.fromkeys(nulls + more_nulls))
    return {"objects": [contact]}


def sevdesk_find_contact() -> Exchange:
    return exchange(
        "sevdesk",
        "GET",
        "/api/v1/Contact",
        query=[["customerNumber", "BB-23024"], ["depth", "1"]],
        response=contact_answer(),
    )


def sevdesk_bookkeeping_version() -> Exchange:
    return exchange(
        "sevdesk", "GET", "/api/v1/Tools/bookkeepingSystemVersion", response={"objects": {"version": "2.0"}}
    )


def sevdesk_contact_address() -> Exchange:
    """sevdesk-api.md §7 address creation; answer from [JRS] ``write_contact_address_create.json`` (trimmed)."""
    contact_ref = {"id": "138810376", "objectName": "Contact"}
    return exchange(
        "sevdesk",
        "POST",
        "/api/v1/ContactAddress",
        body={
            "contact": contact_ref,
            "street": "Rathausplatz 1",
            "zip": "59423",
            "city": "Unna",
            "country": {"id": 1, "objectName": "StaticCountry"},
            "category": {"id": 47, "objectName": "Category"},
        },
        status=201,
        response={
            "objects": {
                "id": "120178864",
                "objectName": "ContactAddress",
                "create": "2026-10-01T16:35:24+02:00",
                "update": "2026-10-01T16:35:24+02:00",
                "contact": contact_ref,
                "street": "Rathausplatz 1",
                "zip": "59423",
                "city": "Unna",
                "country": {"id": "1", "objectName": "StaticCountry"},
                "category": {"id": "47", "objectName": "Category"},
                "name": None,
                "sevClient": {"id": "1303847", "objectName": "SevClient"},
            }
        },
    )


def sevdesk_get_voucher(status: str) -> Exchange:
    voucher = copy.deepcopy(save_voucher_answer()["objects"]["voucher"])
    voucher["status"] = status
    # GET /X/{id} returns an array of one (sevdesk-api.md §1).
    return exchange("sevdesk", "GET", "/api/v1/Voucher/156270656", response={"objects": [voucher]})


def sevdesk_voucher_positions() -> Exchange:
    # The verify step of sevdesk-api.md §3: GET /VoucherPos?voucher[id]=..&voucher[objectName]=Voucher.
    positions = save_voucher_answer()["objects"]["voucherPos"]
    return exchange(
        "sevdesk",
        "GET",
        "/api/v1/VoucherPos",
        query=[["voucher[id]", "156270656"], ["voucher[objectName]", "Voucher"]],
        response={"objects": positions},
    )


REALISTIC: dict[str, Callable[[], Exchange]] = {
    "billbee GET /orders (ithoc real page)": billbee_list_orders,
    "billbee GET /orders (php-sdk fixture)": billbee_php_sdk_orders,
    "billbee POST /orders/{id}/tags": billbee_add_tags,
    "billbee POST /orders/CreateInvoice/{id}": billbee_create_invoice,
    "sevdesk saveVoucher": sevdesk_save_voucher,
    "sevdesk uploadTempFile": sevdesk_upload,
    "sevdesk bookAmount": sevdesk_book_amount,
    "sevdesk GET /Contact": sevdesk_find_contact,
    "sevdesk GET /Tools/bookkeepingSystemVersion": sevdesk_bookkeeping_version,
    "sevdesk POST /ContactAddress": sevdesk_contact_address,
    "sevdesk GET /Voucher/{id} (paid)": lambda: sevdesk_get_voucher("1000"),
    "sevdesk GET /VoucherPos": sevdesk_voucher_positions,
}


@pytest.mark.parametrize("name", list(REALISTIC))
def test_realistic_exchange_conforms(checker: ContractChecker, name: str) -> None:
    assert checker.check(REALISTIC[name]()) == []


# ---------------------------------------------------------------------------------------------------------------
# Violations that must be caught
# ---------------------------------------------------------------------------------------------------------------
def test_credit_debit_outside_the_enum_is_caught(checker: ContractChecker) -> None:
    body = save_voucher_body()
    body["voucher"]["creditDebit"] = "X"
    violations = checker.check(sevdesk_save_voucher(body))
    assert messages_with(violations, "request (voucherFactorySaveVoucher)", "voucher.creditDebit", "'X' is not one of")


def test_voucher_pos_save_as_a_dict_is_caught(checker: ContractChecker) -> None:
    body = save_voucher_body()
    body["voucherPosSave"] = body["voucherPosSave"][0]
    violations = checker.check(sevdesk_save_voucher(body))
    assert messages_with(violations, "voucherPosSave", "is not of type 'array'")


def test_net_sent_as_a_string_is_caught(checker: ContractChecker) -> None:
    # sevdesk-api.md §3: "Use real JSON booleans, not "false" strings" - the string leniency is for answers only.
    body = save_voucher_body()
    body["voucherPosSave"][0]["net"] = "false"
    violations = checker.check(sevdesk_save_voucher(body))
    assert messages_with(violations, "voucherPosSave[0].net", "is not of type 'boolean'")


def test_position_without_any_sum_is_caught(checker: ContractChecker) -> None:
    body = save_voucher_body()
    del body["voucherPosSave"][0]["sumGross"]
    violations = checker.check(sevdesk_save_voucher(body))
    assert messages_with(violations, "voucherPosSave[0]", "matches none of")


def test_missing_voucher_is_caught(checker: ContractChecker) -> None:
    body = save_voucher_body()
    del body["voucher"]
    assert messages_with(checker.check(sevdesk_save_voucher(body)), "'voucher' is a required property")


def test_book_amount_without_amount_is_caught(checker: ContractChecker) -> None:
    body = book_amount_body()
    del body["amount"]
    violations = checker.check(sevdesk_book_amount(body))
    assert messages_with(violations, "request (bookVoucher)", "'amount' is a required property")


def test_book_amount_with_unknown_type_is_caught(checker: ContractChecker) -> None:
    # PARTIAL_PAYMENT is what one client sends, but the spec enum lacks it (sevdesk-pitfalls.md #24).
    body = book_amount_body()
    body["type"] = "PARTIAL_PAYMENT"
    assert messages_with(checker.check(sevdesk_book_amount(body)), "body type", "is not one of")


def test_non_integer_path_id_is_caught(checker: ContractChecker) -> None:
    ex = sevdesk_book_amount()
    ex["path"] = "/api/v1/Voucher/abc/bookAmount"
    assert messages_with(checker.check(ex), "path parameter 'voucherId'", "'abc' is not a valid integer")


def test_page_size_that_is_not_a_number_is_caught(checker: ContractChecker) -> None:
    ex = billbee_list_orders()
    ex["query"] = [["pageSize", "abc"]]
    violations = checker.check(ex)
    assert messages_with(violations, "request (OrderApi_GetList)", "query parameter 'pageSize'", "'abc'")


def test_order_state_that_is_not_a_number_is_caught(checker: ContractChecker) -> None:
    ex = billbee_list_orders()
    ex["query"] = [["orderStateId", "3"], ["orderStateId", "shipped"]]
    assert messages_with(checker.check(ex), "query parameter 'orderStateId'", "'shipped'")


def test_unknown_path_is_caught(checker: ContractChecker) -> None:
    ex = exchange("billbee", "GET", "/api/v1/orders/tags/bulk")
    assert checker.check(ex) == ["request: path /api/v1/orders/tags/bulk is not in the billbee spec"]


def test_post_where_the_spec_has_only_get_is_caught(checker: ContractChecker) -> None:
    ex = exchange("sevdesk", "POST", "/api/v1/Tools/bookkeepingSystemVersion", body={})
    violations = checker.check(ex)
    assert violations == [
        "request: POST /api/v1/Tools/bookkeepingSystemVersion is not in the sevdesk spec "
        "(path /Tools/bookkeepingSystemVersion has GET)"
    ]


def test_create_invoice_with_the_delivery_note_flag_is_caught(checker: ContractChecker) -> None:
    # billbee-pitfalls.md #15: CreateInvoice takes includeInvoicePdf; includePdf is silently ignored by Billbee.
    ex = billbee_create_invoice()
    ex["query"] = [["includePdf", "true"]]
    assert messages_with(checker.check(ex), "query key 'includePdf' is not a parameter of this operation")


def test_indexed_array_query_keys_are_reported(checker: ContractChecker) -> None:
    ex = billbee_list_orders()
    ex["query"] = [["tag[0]", "Sevdesk"], ["excludeTags", "true"]]
    assert messages_with(checker.check(ex), "query key 'tag[0]'", "billbee-pitfalls.md #7")


def test_missing_billbee_api_key_is_caught(checker: ContractChecker) -> None:
    ex = billbee_add_tags()
    del ex["request_headers"]["x-billbee-api-key"]
    assert messages_with(checker.check(ex), "request (OrderApi_TagsCreate): security")


def test_missing_sevdesk_token_is_caught(checker: ContractChecker) -> None:
    ex = sevdesk_bookkeeping_version()
    del ex["request_headers"]["authorization"]
    assert messages_with(checker.check(ex), "security")


def test_json_body_without_content_type_is_caught(checker: ContractChecker) -> None:
    ex = billbee_add_tags()
    del ex["request_headers"]["content-type"]
    assert messages_with(checker.check(ex), "request body sent without a Content-Type header")


def test_upload_sent_as_json_is_caught(checker: ContractChecker) -> None:
    ex = sevdesk_upload()
    ex["request_headers"]["content-type"] = "application/json"
    ex["request_body"] = {"file": "JVBERi0xLjQK"}
    assert messages_with(checker.check(ex), "media type 'application/json' not documented")


def test_upload_without_the_file_part_is_caught(checker: ContractChecker) -> None:
    ex = sevdesk_upload()
    ex["request_body"] = {"multipart": {"fields": {"name": "RN-2022-0083.pdf"}, "files": {}}}
    assert messages_with(checker.check(ex), "request (voucherUploadFile): body", "'file' is a required property")


def test_unwrapped_save_voucher_answer_is_caught(checker: ContractChecker) -> None:
    # The spec's own response shape lacks the {"objects": ...} envelope the real API always sends.
    answer = save_voucher_answer()["objects"]
    violations = checker.check(sevdesk_save_voucher(answer=answer))
    assert messages_with(
        violations, "response (voucherFactorySaveVoucher): 201 body", "'objects' is a required property"
    )


def test_wrong_value_inside_the_envelope_is_caught(checker: ContractChecker) -> None:
    answer = save_voucher_answer()
    answer["objects"]["voucher"]["creditDebit"] = "Einnahme"
    violations = checker.check(sevdesk_save_voucher(answer=answer))
    assert messages_with(violations, "objects.voucher.creditDebit", "'Einnahme' is not one of")


def test_reference_id_that_is_not_a_number_is_caught(checker: ContractChecker) -> None:
    answer = save_voucher_answer()
    answer["objects"]["voucherPos"][0]["accountDatev"]["id"] = "Erlöse"
    violations = checker.check(sevdesk_save_voucher(answer=answer))
    assert messages_with(violations, "objects.voucherPos[0].accountDatev.id", "'Erlöse' matches none of")


def test_placeholder_pdf_data_is_caught(checker: ContractChecker) -> None:
    # The php-sdk fixture's "base64-data" is not base64 (billbee-examples/README.md): format: byte is enforced.
    ex = billbee_create_invoice()
    ex["response_body"]["Data"]["PDFData"] = "base64-data"
    assert messages_with(checker.check(ex), "Data.PDFData", "is not a 'byte'")


def test_order_with_a_non_numeric_id_is_caught(checker: ContractChecker) -> None:
    ex = billbee_list_orders()
    ex["response_body"]["Data"][0]["BillBeeOrderId"] = "300000180937794"
    assert messages_with(checker.check(ex), "Data[0].BillBeeOrderId", "is not of type 'integer'")


def test_billbee_timestamp_that_is_not_a_date_is_caught(checker: ContractChecker) -> None:
    ex = billbee_list_orders()
    ex["response_body"]["Data"][0]["InvoiceDate"] = "22.04.2023"
    assert messages_with(checker.check(ex), "Data[0].InvoiceDate", "does not match")


def test_undocumented_status_is_caught(checker: ContractChecker) -> None:
    ex = sevdesk_bookkeeping_version()
    ex["status"] = 404
    assert checker.check(ex) == [
        "response (bookkeepingSystemVersion): status 404 is not documented (documented: 200, 401)"
    ]


def test_sevdesk_429_without_a_fault_is_caught(checker: ContractChecker) -> None:
    # sevDesk documents no rate limit and no 429 (sevdesk-api.md §1): only a fault may produce one.
    ex = sevdesk_book_amount()
    ex.update(status=429, response_headers={"retry-after": "1"}, response_body={"objects": None, "error": {}})
    assert messages_with(checker.check(ex), "status 429 is not documented")


def test_billbee_429_needs_retry_after(checker: ContractChecker) -> None:
    ex = billbee_add_tags()
    ex.update(status=429, response_body=None)
    assert messages_with(checker.check(ex), "429 without a Retry-After header")
    ex["response_headers"] = {"retry-after": "2"}
    assert checker.check(ex) == []  # info.description: "HTTP 429 status code and a Retry-After-Header"


def test_sevdesk_error_inside_http_200_is_accepted_only_in_the_error_shape(checker: ContractChecker) -> None:
    # sevdesk-api.md §1: "Some failures come back as HTTP 200 with an error object".
    ex = sevdesk_book_amount()
    ex["response_body"] = {
        "objects": None,
        "error": {"message": "Voucher already paid", "code": 751, "exceptionUUID": "x", "errorCode": 0, "data": []},
    }
    assert checker.check(ex) == []
    ex["response_body"] = {"objects": None, "error": {"code": 751}}
    assert messages_with(checker.check(ex), "error.message must be a string")


# ---------------------------------------------------------------------------------------------------------------
# What is skipped, and why (module docstring of local/contract.py)
# ---------------------------------------------------------------------------------------------------------------
def test_faulted_answers_are_not_checked_but_their_requests_are(checker: ContractChecker) -> None:
    body = save_voucher_body()
    body["voucher"]["status"] = 1000  # "Paid (1000) only via bookAmount", but it is in the spec enum
    body["voucher"]["voucherType"] = "BAD"
    ex = sevdesk_save_voucher(body, answer={"something": "synthetic"})
    ex.update(status=500, fault="saved500")
    violations = checker.check(ex)
    assert [v for v in violations if v.startswith("response")] == []
    assert messages_with(violations, "request", "voucher.voucherType", "'BAD' is not one of")


def test_dropped_connection_is_not_checked(checker: ContractChecker) -> None:
    ex = sevdesk_save_voucher(answer={"objects": {"voucher": {"status": "nonsense"}}})
    ex.update(status=None, fault="saveddrop")
    assert checker.check(ex) == []


def test_auth_failure_the_spec_does_not_document_is_skipped(checker: ContractChecker) -> None:
    ex = billbee_add_tags()
    ex.update(status=401, response_body={"Message": "Authorization has been denied for this request."})
    assert checker.check(ex) == []


def test_binary_answer_is_checked_for_status_only(checker: ContractChecker) -> None:
    ex = billbee_create_invoice()
    ex["response_body"] = None  # base.py records non-JSON bodies as null
    assert checker.check(ex) == []


# ---------------------------------------------------------------------------------------------------------------
# Every correction is needed: the realistic exchange fails without it and passes with all of them.
# ---------------------------------------------------------------------------------------------------------------
def save_voucher_with_tax_rule_17() -> Exchange:
    body = save_voucher_body()
    body["voucher"]["taxRule"]["id"] = "17"  # "Nicht im Inland steuerbare Leistung" (sevdesk-api.md §4)
    body["voucherPosSave"][0]["taxRate"] = 0
    answer = save_voucher_answer()
    answer["objects"]["voucher"]["taxRule"]["id"] = "17"
    return sevdesk_save_voucher(body, answer)


NEEDED: dict[str, tuple[Callable[[], Exchange], tuple[str, ...]]] = {
    "sevdesk_erratum_1": (sevdesk_save_voucher, ("'voucherPos' is a required property",)),
    "sevdesk_erratum_2": (sevdesk_save_voucher, ("voucher: 'taxType' is a required property",)),
    "sevdesk_erratum_3": (sevdesk_save_voucher, ("voucher.voucherDate", "'22.07.2022' is not a 'date-time'")),
    "sevdesk_erratum_4": (sevdesk_book_amount, ("checkAccount.id", "'5936021' is not of type 'integer'")),
    "sevdesk_erratum_5": (sevdesk_contact_address, ("201 body (root): 'contact' is a required property",)),
    "sevdesk_doc_upload_multipart": (sevdesk_upload, ("media type 'multipart/form-data' not documented",)),
    "sevdesk_doc_voucher_pos_2_0": (sevdesk_save_voucher, ("voucherPosSave[0]: 'accountingType' is a required",)),
    "sevdesk_doc_tax_rule_enum": (save_voucher_with_tax_rule_17, ("voucher.taxRule.id", "'17'")),
    "sevdesk_doc_voucher_status": (lambda: sevdesk_get_voucher("750"), ("objects[0].status", "'750' is not one of")),
    "sevdesk_doc_response_scalars": (sevdesk_voucher_positions, ("objects[0].net", "'0' is not of type 'boolean'")),
    "sevdesk_fixture_response_nulls": (sevdesk_find_contact, ("objects[0].surename", "null is not allowed")),
    "billbee_erratum_1": (billbee_list_orders, ("Data[0].PayedAt", "null is not allowed")),
    "billbee_erratum_2": (billbee_list_orders, ("ErrorDescription", "'NoError' is not of type 'integer'")),
    "billbee_erratum_3": (billbee_php_sdk_orders, ("Data[0].ShippingProfileId", "12345 is not of type 'string'")),
    "billbee_doc_naive_timestamps": (billbee_list_orders, ("Data[0].InvoiceDate", "is not a 'date-time'")),
}


def test_every_correction_has_a_proof() -> None:
    assert sorted(NEEDED) == sorted(ALL_NAMES)


@pytest.mark.parametrize("name", list(NEEDED))
def test_correction_is_needed(checker: ContractChecker, name: str) -> None:
    build, needles = NEEDED[name]
    ex = build()
    assert checker.check(ex) == []
    assert messages_with(without(name).check(ex), *needles), without(name).check(ex)
    assert messages_with(RAW.check(ex), *needles)  # the official document alone rejects it the same way


def test_corrections_are_listed_with_their_sources() -> None:
    for correction in ERRATA_CORRECTIONS:
        assert correction.kind == "erratum"
        assert correction.source.startswith("ERRATA.md")
        assert (correction.apply.__doc__ or "").strip().startswith(correction.source), correction.name
    for correction in DOC_BACKED_CORRECTIONS:
        assert correction.kind == "doc-backed"
        assert correction.name not in {c.name for c in ERRATA_CORRECTIONS}
        assert "ERRATA.md" not in correction.source and correction.source


def test_corrections_leave_the_official_document_untouched() -> None:
    raw = _load_raw_spec(str(default_specs_dir() / "sevdesk-openapi.yaml"))
    before = json.dumps(raw, sort_keys=True, default=str)
    corrected = corrected_spec("sevdesk", default_specs_dir(), ALL_NAMES)
    assert json.dumps(raw, sort_keys=True, default=str) == before
    assert raw["components"]["schemas"]["saveVoucher"]["required"] == ["voucher", "voucherPos"]
    assert corrected["components"]["schemas"]["saveVoucher"]["required"] == ["voucher", "voucherPosSave"]


def test_unknown_correction_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown corrections"):
        ContractChecker(corrections=["sevdesk_erratum_9"])


# ---------------------------------------------------------------------------------------------------------------
# requests.jsonl and the real recording format of local/sandbox/base.py
# ---------------------------------------------------------------------------------------------------------------
def test_check_log_reports_only_violating_lines(checker: ContractChecker, tmp_path: Path) -> None:
    bad = billbee_list_orders()
    bad["query"] = [["pageSize", "abc"]]
    log = tmp_path / "requests.jsonl"
    lines = [json.dumps(sevdesk_bookkeeping_version()), json.dumps(bad), "", "{not json"]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = checker.check_log(log)
    assert list(result) == ["2: billbee GET /api/v1/orders", "4: <not JSON>"]
    assert messages_with(result["2: billbee GET /api/v1/orders"], "query parameter 'pageSize'")


class _RecordingSevdesk(SandboxServer):
    """The smallest sandbox that records real HTTP exchanges the way the real sevDesk sandbox does."""

    api = "sevdesk"

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__()
        self.route("POST", r"/api/v1/Voucher/Factory/uploadTempFile", "upload_temp_file", self._upload)
        self.answer = answer

    def _upload(self, request: Request) -> Response:
        _fields, files = request.multipart()
        if "file" not in files:
            return self.error_response(400, "no file")
        return Response(201, self.answer)

    def error_response(self, status: int, message: str, *, retry_after: int | None = None) -> Response:
        return Response(status, {"objects": None, "error": {"message": message}})


class _RecordingBillbee(SandboxServer):
    api = "billbee"

    def __init__(self) -> None:
        super().__init__()
        self.route("POST", r"/api/v1/orders/(?P<id>\d+)/tags", "add_tags", self._tags)

    def _tags(self, request: Request) -> Response:
        return Response(200, {"ErrorMessage": None, "ErrorCode": 0, "ErrorDescription": "NoError", "Data": {}})

    def error_response(self, status: int, message: str, *, retry_after: int | None = None) -> Response:
        return Response(status, {"Message": message})


@pytest.fixture
def recorded() -> Iterator[tuple[_RecordingSevdesk, _RecordingBillbee]]:
    sevdesk = _RecordingSevdesk(sevdesk_upload()["response_body"])
    billbee = _RecordingBillbee()
    sevdesk.start()
    billbee.start()
    try:
        yield sevdesk, billbee
    finally:
        sevdesk.stop()
        billbee.stop()


def test_exchanges_recorded_by_a_sandbox_are_checked(
    checker: ContractChecker, recorded: tuple[_RecordingSevdesk, _RecordingBillbee]
) -> None:
    sevdesk, billbee = recorded
    with httpx.Client(timeout=5) as client:
        client.post(
            f"{sevdesk.base_url}/api/v1/Voucher/Factory/uploadTempFile",
            headers={"Authorization": "0123456789abcdef0123456789abcdef"},
            files={"file": ("RN-2022-0083.pdf", b"%PDF-1.4\n", "application/pdf")},
        ).raise_for_status()
        client.post(
            f"{billbee.base_url}/api/v1/orders/300000180937794/tags",
            headers={"X-Billbee-Api-Key": "key"},
            auth=("user@example.com", "ApiPassword123"),
            json={"Tags": ["Sevdesk"]},
        ).raise_for_status()
        client.post(  # wrong: a JSON body where sevDesk expects a multipart upload
            f"{sevdesk.base_url}/api/v1/Voucher/Factory/uploadTempFile",
            headers={"Authorization": "0123456789abcdef0123456789abcdef"},
            json={"file": "x"},
        )
    exchanges = [e.as_json() for e in sevdesk.exchanges + billbee.exchanges]
    assert [e["request_headers"]["authorization"] for e in exchanges] == ["***", "***", "***"]
    assert checker.check(exchanges[0]) == []
    assert checker.check(exchanges[2]) == []
    assert messages_with(checker.check(exchanges[1]), "media type 'application/json' not documented")

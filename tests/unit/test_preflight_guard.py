"""The preflight's read-only guard (local/preflight/guard.py): only reads of the configured APIs leave the process;
everything else is refused before the transport below is called, and the record masks every credential."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from local.preflight.guard import Masker, ReadOnlyGuard, WriteRefused

BILLBEE = "https://app.example/api/v1"
SEVDESK = "https://books.example/api/v1"
KEY, USER, PASSWORD, TOKEN = "k3y-0123456789", "shop@example.com", "pa$$-word-42", "t0ken-abcdef0123"


class Counting(httpx.BaseTransport):
    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(200, json={"Data": [], "echo": request.headers.get("authorization")})


def clients() -> tuple[ReadOnlyGuard, Counting, httpx.Client, httpx.Client]:
    masker = Masker([KEY, USER, PASSWORD, TOKEN])
    masker.add_basic(USER, PASSWORD)
    guard = ReadOnlyGuard({"billbee": BILLBEE, "sevdesk": SEVDESK}, masker=masker)
    inner = Counting()
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    billbee = httpx.Client(base_url=BILLBEE + "/", transport=guard.transport("billbee", inner),
                           headers={"X-Billbee-Api-Key": KEY, "Authorization": f"Basic {basic}"})
    sevdesk = httpx.Client(base_url=SEVDESK + "/", transport=guard.transport("sevdesk", inner),
                           headers={"Authorization": TOKEN})
    return guard, inner, billbee, sevdesk


def test_reads_of_the_configured_apis_pass() -> None:
    guard, inner, billbee, sevdesk = clients()
    assert billbee.get("orders", params={"page": 1}).json()["Data"] == []
    assert sevdesk.get("Voucher", params={"descriptionLike": "RE-1"}).status_code == 200
    assert len(inner.sent) == 2 and guard.refused == [] and guard.methods() == {"GET": 2}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_every_method_but_get_is_refused_before_it_is_sent(method: str) -> None:
    guard, inner, billbee, sevdesk = clients()
    for client, path in ((billbee, "orders/1/tags"), (sevdesk, "Voucher/Factory/saveVoucher")):
        with pytest.raises(WriteRefused, match=f"refused {method}"):
            client.request(method, path, json={"Tags": ["Sevdesk"]})
    assert inner.sent == [] and len(guard.refused) == 2 and guard.methods() == {}


@pytest.mark.parametrize("path", ["orders/CreateInvoice/1", "ORDERS/createinvoice/1?includeInvoicePdf=true"])
def test_create_invoice_is_refused_even_as_a_read(path: str) -> None:
    guard, inner, billbee, _ = clients()
    with pytest.raises(WriteRefused, match="createinvoice"):
        billbee.get(path)
    assert inner.sent == []


def test_sevdesk_get_pdf_which_marks_a_document_sent_is_refused() -> None:
    _, inner, _, sevdesk = clients()
    with pytest.raises(WriteRefused):
        sevdesk.get("Invoice/5/getPdf")
    assert inner.sent == []


@pytest.mark.parametrize("url", [
    "https://objectstore.example/invoices/x.pdf",  # a presigned PDF link
    "https://app.example/download/invoices/x.pdf",  # same host, outside the API
    "http://app.example/api/v1/orders",  # another scheme
    "https://app.example:8443/api/v1/orders",  # another port
])
def test_nothing_outside_the_api_base_url_is_fetched(url: str) -> None:
    _, inner, billbee, _ = clients()
    with pytest.raises(WriteRefused, match="not under the billbee API"):
        billbee.get(url)
    assert inner.sent == []


def test_a_refusal_is_no_network_error_so_no_retry_loop_repeats_it() -> None:
    assert not issubclass(WriteRefused, httpx.HTTPError)


def test_the_record_masks_every_credential() -> None:
    guard, _, billbee, sevdesk = clients()
    billbee.get("orders")
    sevdesk.get("Contact", params={"customerNumber": "BB-1"})
    with pytest.raises(WriteRefused):
        sevdesk.post("Contact", json={"note": f"a body that quotes {TOKEN} and {PASSWORD}"})
    lines = list(guard.jsonl_lines())
    assert len(lines) == 3
    text = "\n".join(lines)
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (KEY, USER, PASSWORD, TOKEN, basic):
        assert secret not in text
    first = json.loads(lines[0])
    assert first["requestHeaders"]["authorization"] == "***" and first["requestHeaders"]["x-billbee-api-key"] == "***"
    assert json.loads(lines[2])["refused"]

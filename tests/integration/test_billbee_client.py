"""The Billbee client against the Billbee sandbox over real HTTP: auth, paging, filters, error classes, retries,
tagging and the invoice PDF.

Retry waits are recorded instead of slept: the client module's ``send`` is swapped for the real
``connector.transport.send`` with a recording ``sleep`` (the default ``time.sleep`` is bound when ``send`` is defined,
so patching ``time.sleep`` would not reach it).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest

import connector.billbee.client as billbee_client_module
from connector.billbee.client import BillbeeClient
from connector.billbee.models import Order
from connector.errors import AuthError, NotFoundError, RejectedError, TransientError
from connector.transport import RetryPolicy, send
from local.faults import FaultRule
from local.sample_shop import sample_orders
from local.sandbox.base import Request, Response
from local.sandbox.billbee import BillbeeSandbox

API_KEY = "test-developer-key"
USER = "merchant@example.com"
PASSWORD = "test-api-password"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=15.0)

ORDERS = sample_orders()
INVOICED = next(o for o in ORDERS if o.get("InvoiceNumber") and o["State"] == 7)
UNINVOICED = next(o for o in ORDERS if not o.get("InvoiceNumber"))
VIP_ORDER = next(o for o in ORDERS if o.get("Tags") == ["VIP"])


@pytest.fixture
def sandbox() -> Iterator[BillbeeSandbox]:
    box = BillbeeSandbox(api_key=API_KEY, username=USER, password=PASSWORD, orders=ORDERS, rate_limits=False)
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every wait the transport asks for, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(billbee_client_module, "send", functools.partial(send, sleep=recorded.append))
    return recorded


def client_for(sandbox: BillbeeSandbox, *, password: str = PASSWORD, api_key: str = API_KEY) -> BillbeeClient:
    return BillbeeClient(
        api_key=api_key, username=USER, password=password, base_url=sandbox.base_url, timeout=5.0, retry=FAST_RETRY
    )


@pytest.fixture
def client(sandbox: BillbeeSandbox) -> Iterator[BillbeeClient]:
    c = client_for(sandbox)
    yield c
    c.close()


def answer_with(sandbox: BillbeeSandbox, operation: str, response: Response) -> None:
    """Make the sandbox answer one operation with a fixed response (still over HTTP, still authenticated)."""
    route = next(r for r in sandbox.routes if r.operation == operation)
    route.handler = lambda request: response


def statuses(sandbox: BillbeeSandbox, operation: str) -> list[int | None]:
    return [e.status for e in sandbox.exchanges if e.operation == operation]


# -- authentication ----------------------------------------------------------------------------------------------


def test_every_request_carries_the_developer_key_and_basic_auth_of_user_and_api_password(
    sandbox: BillbeeSandbox, client: BillbeeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The recorded exchanges redact credentials, so the raw headers are captured where the sandbox checks them.
    seen: list[dict[str, str]] = []
    check = sandbox.authenticate

    def capture(request: Request) -> Response | None:
        seen.append(dict(request.headers))
        return check(request)

    monkeypatch.setattr(sandbox, "authenticate", capture)
    client.get_order(INVOICED["BillBeeOrderId"])
    client.list_shops()
    expected_basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert len(seen) == 2
    for headers in seen:
        assert headers["x-billbee-api-key"] == API_KEY
        assert headers["authorization"] == expected_basic


@pytest.mark.parametrize("wrong", ["password", "api_key"])
def test_a_wrong_api_password_or_key_is_an_auth_error_and_not_retried(
    sandbox: BillbeeSandbox, wrong: str, sleeps: list[float]
) -> None:
    client = client_for(sandbox, **{wrong: "not-the-right-one"})
    with pytest.raises(AuthError) as raised:
        client.list_orders(page=1, page_size=1)
    assert raised.value.status == 401
    assert "not-the-right-one" not in str(raised.value)  # messages never carry credentials
    assert statuses(sandbox, "list_orders") == [401]
    assert sleeps == []


# -- listing -----------------------------------------------------------------------------------------------------


def test_iter_order_pages_collects_every_page_of_a_query(sandbox: BillbeeSandbox, client: BillbeeClient) -> None:
    pages = list(client.iter_order_pages(page_size=10))
    assert [p.page for p in pages] == [1, 2, 3, 4, 5]
    assert all(p.total_pages == 5 for p in pages)
    ids = [o.bill_bee_order_id for p in pages for o in p.items]
    assert sorted(ids) == sorted(o["BillBeeOrderId"] for o in ORDERS)
    assert len(ids) == len(set(ids))  # no order twice
    requested_pages = [dict(e.query)["page"] for e in sandbox.exchanges if e.operation == "list_orders"]
    assert requested_pages == ["1", "2", "3", "4", "5"]


def test_filters_are_sent_in_the_sdks_indexed_form_and_applied_by_billbee(
    sandbox: BillbeeSandbox, client: BillbeeClient
) -> None:
    pages = list(
        client.iter_order_pages(
            min_order_date=date(2026, 10, 20),
            shop_ids=[1001, 1002],
            state_ids=[3, 4],
            tag="VIP",
            exclude_tags=True,
        )
    )
    query = sandbox.exchanges[-1].query
    # Arrays as Billbee's official C# and PHP SDKs send them (ERRATA Billbee 8), never repeated or comma-joined.
    assert [(k, v) for k, v in query if k.startswith("shopId")] == [("shopId[0]", "1001"), ("shopId[1]", "1002")]
    assert [(k, v) for k, v in query if k.startswith("orderStateId")] == [("orderStateId[0]", "3"),
                                                                          ("orderStateId[1]", "4")]
    assert ("minOrderDate", "2026-10-20T00:00:00") in query
    assert ("tag[0]", "VIP") in query and ("excludeTags", "true") in query
    assert not [k for k, _ in query if k in ("shopId", "orderStateId", "tag")]
    assert not [v for _, v in query if "," in v]
    expected = {
        o["BillBeeOrderId"]
        for o in ORDERS
        if o["State"] in (3, 4)
        and o["CreatedAt"] >= "2026-10-20"
        and (o.get("Seller") or {}).get("BillbeeShopId") in (1001, 1002)
        and "VIP" not in (o.get("Tags") or [])
    }
    got = {o.bill_bee_order_id for p in pages for o in p.items}
    assert got == expected and expected


# -- errors --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "error_class"),
    [
        (1, "API not activated", AuthError),
        (17, None, AuthError),
        (2, "order not found", NotFoundError),
        (3, "invoice not created", RejectedError),
        (11, "invalid data", RejectedError),
        (8, "internal error", TransientError),
        (0, "something went wrong", RejectedError),  # ErrorCode 0 but an ErrorMessage is a failure too (pitfall 23)
    ],
)
def test_an_error_envelope_inside_http_200_raises_the_matching_error(
    sandbox: BillbeeSandbox, client: BillbeeClient, code: int, message: str | None, error_class: type[Exception]
) -> None:
    answer_with(
        sandbox,
        "get_order",
        Response(200, {"ErrorMessage": message, "ErrorCode": code, "ErrorDescription": "X", "Data": None}),
    )
    with pytest.raises(error_class) as raised:
        client.get_order(INVOICED["BillBeeOrderId"])
    if message:
        assert message in str(raised.value)
    assert statuses(sandbox, "get_order") == [200]  # an envelope error is never retried in the call


def test_an_unknown_order_is_not_found(sandbox: BillbeeSandbox, client: BillbeeClient) -> None:
    with pytest.raises(NotFoundError) as raised:
        client.get_order(999_999_999)
    assert raised.value.status == 404
    assert statuses(sandbox, "get_order") == [404]


def test_a_400_with_model_state_is_rejected_with_the_field_named(
    sandbox: BillbeeSandbox, client: BillbeeClient
) -> None:
    with pytest.raises(RejectedError) as raised:
        client.list_orders(page_size=1000)  # Billbee allows at most 250
    assert raised.value.status == 400
    assert "pageSize" in str(raised.value)


# -- retries -------------------------------------------------------------------------------------------------------


def test_a_429_is_retried_after_the_retry_after_wait(
    sandbox: BillbeeSandbox, client: BillbeeClient, sleeps: list[float]
) -> None:
    sandbox.faults.add(FaultRule(api="billbee", operation="get_order", kind="429", times=1, retry_after=3))
    order = client.get_order(INVOICED["BillBeeOrderId"])
    assert order.bill_bee_order_id == INVOICED["BillBeeOrderId"]
    assert statuses(sandbox, "get_order") == [429, 200]
    assert sleeps == [3.0]  # exactly the Retry-After, no back-off of its own


def test_a_429_asking_for_a_long_wait_is_left_to_the_queue(
    sandbox: BillbeeSandbox, client: BillbeeClient, sleeps: list[float]
) -> None:
    sandbox.faults.add(FaultRule(api="billbee", operation="get_order", kind="429", times=1, retry_after=60))
    with pytest.raises(TransientError) as raised:
        client.get_order(INVOICED["BillBeeOrderId"])
    assert raised.value.retry_after == 60.0
    assert statuses(sandbox, "get_order") == [429]
    assert sleeps == []


def test_a_read_answered_5xx_is_retried_and_succeeds(
    sandbox: BillbeeSandbox, client: BillbeeClient, sleeps: list[float]
) -> None:
    sandbox.faults.add(FaultRule(api="billbee", operation="get_order", kind="503", times=2))
    order = client.get_order(INVOICED["BillBeeOrderId"])
    assert order.invoice_number == INVOICED["InvoiceNumber"]
    assert statuses(sandbox, "get_order") == [503, 503, 200]
    assert len(sleeps) == 2 and all(0 < s <= FAST_RETRY.max_delay for s in sleeps)


def test_a_read_answered_5xx_every_time_gives_up_as_transient(
    sandbox: BillbeeSandbox, client: BillbeeClient, sleeps: list[float]
) -> None:
    sandbox.faults.add(FaultRule(api="billbee", operation="list_orders", kind="500", times=float("inf")))
    with pytest.raises(TransientError) as raised:
        client.list_orders()
    assert raised.value.status == 500
    assert statuses(sandbox, "list_orders") == [500] * FAST_RETRY.attempts
    assert len(sleeps) == FAST_RETRY.attempts - 1


# -- tags ----------------------------------------------------------------------------------------------------------


def test_add_tags_posts_and_keeps_the_merchants_own_tags(sandbox: BillbeeSandbox, client: BillbeeClient) -> None:
    order_id = VIP_ORDER["BillBeeOrderId"]
    client.add_tags(order_id, ["Sevdesk"])
    assert sandbox.order(order_id)["Tags"] == ["VIP", "Sevdesk"]
    tag_calls = [e for e in sandbox.exchanges if e.path.endswith(f"/orders/{order_id}/tags")]
    assert [(e.method, e.operation, e.status) for e in tag_calls] == [("POST", "add_tags", 200)]
    assert tag_calls[0].request_body == {"Tags": ["Sevdesk"]}
    assert sandbox.call_counts()["replace_tags"] == 0


def test_tagging_twice_leaves_one_tag(sandbox: BillbeeSandbox, client: BillbeeClient) -> None:
    order_id = VIP_ORDER["BillBeeOrderId"]
    client.add_tags(order_id, ["Sevdesk"])
    client.add_tags(order_id, ["sevdesk"])  # Billbee compares tags case-insensitively
    assert sandbox.order(order_id)["Tags"] == ["VIP", "Sevdesk"]


# -- invoice PDF ---------------------------------------------------------------------------------------------------


def test_invoice_pdf_refuses_an_order_without_invoice_before_sending_anything(
    sandbox: BillbeeSandbox, client: BillbeeClient
) -> None:
    order = Order.model_validate(UNINVOICED)
    with pytest.raises(RejectedError, match="no invoice"):
        client.invoice_document(order)
    assert sandbox.exchanges == []  # not a single request: CreateInvoice would have numbered a new invoice
    assert sandbox.invoices_created == []
    assert sandbox.order(order.bill_bee_order_id).get("InvoiceNumber") is None


def test_invoice_pdf_returns_the_existing_invoice_as_real_pdf_bytes(
    sandbox: BillbeeSandbox, client: BillbeeClient
) -> None:
    order = Order.model_validate(INVOICED)
    document = client.invoice_document(order)
    pdf = client.invoice_pdf_bytes(order, document)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert document.invoice_number == order.printed_invoice_number
    assert sandbox.invoices_created == []  # the existing invoice, no new one
    [call] = [e for e in sandbox.exchanges if e.operation == "create_invoice"]
    assert call.method == "POST" and ("includeInvoicePdf", "true") in call.query


def test_setup_lists_shops_states_and_payment_types(client: BillbeeClient) -> None:
    shops = {s.id for s in client.list_shops()}
    assert {1001, 1002} <= shops
    states = {e.id: e.name for e in client.order_states()}
    assert states[3] and states[4] and states[7]
    payment_types: dict[int, Any] = {e.id: e.name for e in client.payment_types()}
    assert payment_types[3] == "PayPal"


# -- the real API's answers (issue 8, items 2, 3, 4, 6) ----------------------------------------------------------
def test_null_lists_read_as_empty_and_an_unreadable_order_is_handed_back_not_raised(
    sandbox: BillbeeSandbox, client: BillbeeClient
) -> None:
    sandbox.null_lists = True
    bad = dict(ORDERS[3], BillBeeOrderId=300000189000001, TotalCost="12,50")  # a number written as German text
    sandbox.add_order(bad)
    orders: list[Order] = []
    unreadable = []
    for page in client.iter_order_pages(min_order_date=date(2026, 1, 1)):
        orders += page.items
        unreadable += page.unreadable
    assert len(orders) == len(ORDERS)  # every other order, null lists and all
    assert [u.order_id for u in unreadable] == [300000189000001]
    assert "TotalCost is '12,50'" in unreadable[0].problem and "not a number" in unreadable[0].problem


def test_an_unreadable_single_order_is_a_rejection_naming_the_field(
    sandbox: BillbeeSandbox, client: BillbeeClient
) -> None:
    from connector.errors import UnreadableData

    sandbox.add_order(dict(ORDERS[3], BillBeeOrderId=300000189000002, CreatedAt="gestern"))
    with pytest.raises(UnreadableData, match="CreatedAt is 'gestern'"):
        client.get_order(300000189000002)


def test_the_invoice_list_is_paged_until_a_short_page_when_paging_is_missing(
    sandbox: BillbeeSandbox, client: BillbeeClient
) -> None:
    sandbox.paging = False
    template = next(o for o in ORDERS if o.get("InvoiceNumber"))
    for n in range(260):  # more than one page of 250
        sandbox.add_order(dict(template, BillBeeOrderId=300000188000000 + n, InvoiceNumber=50_000 + n))
    invoiced = len([o for o in sandbox.dump_orders() if o.get("InvoiceNumber")])
    invoices = client.invoices_since(datetime(2020, 1, 1))
    assert len(invoices) == invoiced > 250
    pages = [e for e in sandbox.exchanges if e.operation == "list_invoices"]
    assert [dict(e.query)["page"] for e in pages] == ["1", "2"]
    assert all("Paging" not in e.response_body for e in pages)


def test_a_429_without_retry_after_waits_the_documented_window_of_the_resource(
    sandbox: BillbeeSandbox, client: BillbeeClient, sleeps: list[float]
) -> None:
    sandbox.faults.add(FaultRule("billbee", "get_order", "429bare", times=1))
    sandbox.faults.add(FaultRule("billbee", "list_orders", "429bare", times=1))
    client.get_order(INVOICED["BillBeeOrderId"])
    client.list_orders(page=1, page_size=1)
    assert sleeps == [10.0, 1.0]  # 6 calls per order per minute; 2 per second per endpoint
    with pytest.raises(TransientError) as raised:
        sandbox.faults.add(FaultRule("billbee", "create_invoice", "429bare", times=1))
        client.invoice_document(Order.model_validate(INVOICED))
    assert raised.value.status == 429 and raised.value.retry_after == 300.0  # 1 per 5 minutes: the queue waits


def test_a_pdf_given_only_as_a_link_is_downloaded_without_billbee_credentials(
    sandbox: BillbeeSandbox, client: BillbeeClient
) -> None:
    sandbox.invoice_pdf = "url"
    order = Order.model_validate(INVOICED)
    document = client.invoice_document(order)
    assert document.pdf_data is None and document.pdf_download_url
    pdf = client.invoice_pdf_bytes(order, document)
    assert pdf.startswith(b"%PDF-")
    [download] = [e for e in sandbox.exchanges if e.operation == "download_invoice_pdf"]
    assert "authorization" not in download.request_headers and "x-billbee-api-key" not in download.request_headers

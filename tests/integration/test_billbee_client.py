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
from datetime import date
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


def test_filters_are_sent_as_repeated_keys_and_applied_by_billbee(
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
    assert [v for k, v in query if k == "shopId"] == ["1001", "1002"]
    assert [v for k, v in query if k == "orderStateId"] == ["3", "4"]
    assert ("minOrderDate", "2026-10-20T00:00:00") in query
    assert ("tag", "VIP") in query and ("excludeTags", "true") in query
    # No indexed ("shopId[0]") or comma-joined ("1001,1002") arrays.
    assert not [k for k, _ in query if "[" in k]
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
        client.invoice_pdf(order)
    assert sandbox.exchanges == []  # not a single request: CreateInvoice would have numbered a new invoice
    assert sandbox.invoices_created == []
    assert sandbox.order(order.bill_bee_order_id).get("InvoiceNumber") is None


def test_invoice_pdf_returns_the_existing_invoice_as_real_pdf_bytes(
    sandbox: BillbeeSandbox, client: BillbeeClient
) -> None:
    order = Order.model_validate(INVOICED)
    document, pdf = client.invoice_pdf(order)
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

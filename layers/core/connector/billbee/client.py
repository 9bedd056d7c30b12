"""A typed client for the Billbee REST API (billbee-api.md), on httpx.

Auth is the developer's ``X-Billbee-Api-Key`` plus HTTP Basic with the merchant's user and API password. Success
needs HTTP 2xx **and** ``ErrorCode == 0`` with an empty ``ErrorMessage`` (billbee-pitfalls #23). Every request first
claims a slot from the shared rate limiter (2/s per endpoint, 10/s per key + user).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx

from connector.billbee.models import EnumEntry, InvoiceDetails, InvoiceDocument, Order, Shop
from connector.errors import AuthError, NotFoundError, RejectedError, TransientError
from connector.ratelimit import NoRateLimit, RateLimiter
from connector.transport import RetryPolicy, send

API = "billbee"
DEFAULT_BASE_URL = "https://app.billbee.io/api/v1"
PAGE_SIZE = 250  # the maximum Billbee allows (billbee-api.md §3)
PER_ENDPOINT_PER_SECOND = 2.0
PER_USER_PER_SECOND = 10.0
MAX_PAGES = 1000  # loop guard

# ErrorCode values from the official C# SDK (billbee-api.md §3).
ERROR_NAMES = {
    1: "ApiNotActivated",
    2: "OrderNotFound",
    3: "InvoiceNotCreated",
    4: "CantCreateInvoice",
    5: "OrderCanceled",
    6: "OrderDeleted",
    7: "OrderNotPaid",
    8: "InternalError",
    11: "InvalidData",
    16: "NoPaidAccount",
    17: "APIServiceNotBooked",
}


@dataclass(frozen=True)
class Page:
    items: list[Any]
    page: int
    total_pages: int


def _format_datetime(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return value.strftime("%Y-%m-%dT00:00:00")


class BillbeeClient:
    def __init__(
        self,
        *,
        api_key: str,
        username: str,
        password: str,
        base_url: str = DEFAULT_BASE_URL,
        limiter: RateLimiter | None = None,
        timeout: float = 20.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={
                "X-Billbee-Api-Key": api_key,
                "Authorization": f"Basic {basic}",
                "Accept": "application/json",
                "User-Agent": "billbee-sevdesk-connector/0.1",
            },
            transport=transport,
        )
        self._limiter = limiter or NoRateLimit()
        self._retry = retry or RetryPolicy()

    def close(self) -> None:
        self._http.close()

    # -- transport -----------------------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        params: list[tuple[str, Any]] | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        request = self._http.build_request(method, path, params=params, json=json)

        def claim_slots() -> None:
            self._limiter.acquire(f"billbee:{operation}", PER_ENDPOINT_PER_SECOND)
            self._limiter.acquire("billbee:user", PER_USER_PER_SECOND)

        response = send(
            self._http, request, api=API, operation=operation, idempotent=idempotent,
            policy=self._retry, before_send=claim_slots,
        )
        return self._envelope(response, operation)

    @staticmethod
    def _envelope(response: httpx.Response, operation: str) -> dict[str, Any]:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status in (401, 403):
            raise AuthError(API, f"{operation}: the API key, user or API password was rejected", status=status)
        if status == 404:
            raise NotFoundError(API, f"{operation}: not found", status=status)
        if status >= 400:
            message = "request rejected"
            if isinstance(body, dict):
                message = str(body.get("Message") or body.get("ErrorMessage") or message)
                model_state = body.get("ModelState")
                if model_state:
                    message += f": {model_state}"
            raise RejectedError(API, f"{operation}: {message}", status=status)
        if isinstance(body, list):
            return {"Data": body}  # the enum endpoints answer with a bare array (billbee-csharp-sdk reads it so)
        if not isinstance(body, dict):
            raise TransientError(API, f"{operation}: answer is not a JSON envelope", status=status)
        code = body.get("ErrorCode") or 0
        error_message = body.get("ErrorMessage")
        if code or error_message:
            name = ERROR_NAMES.get(int(code), str(body.get("ErrorDescription") or code))
            text = f"{operation}: {name}" + (f": {error_message}" if error_message else "")
            if code == 2:
                raise NotFoundError(API, text, code=code)
            if code in (1, 17):
                raise AuthError(API, text, code=code)
            if code == 8:
                raise TransientError(API, text)
            raise RejectedError(API, text, code=code)
        return body

    # -- orders --------------------------------------------------------------------------------------------------
    def list_orders(
        self,
        *,
        min_order_date: date | datetime | None = None,
        shop_ids: list[int] | None = None,
        state_ids: list[int] | None = None,
        tag: str | None = None,
        exclude_tags: bool = False,
        modified_after: datetime | None = None,
        page: int = 1,
        page_size: int = PAGE_SIZE,
    ) -> Page:
        # Arrays as repeated keys (the spec's collectionFormat "multi"; billbee-api.md §4).
        params: list[tuple[str, Any]] = [("page", page), ("pageSize", page_size)]
        if min_order_date is not None:
            params.append(("minOrderDate", _format_datetime(min_order_date)))
        if modified_after is not None:
            params.append(("modifiedAtMin", _format_datetime(modified_after)))
        params += [("shopId", s) for s in shop_ids or []]
        params += [("orderStateId", s) for s in state_ids or []]
        if tag:
            params.append(("tag", tag))
            params.append(("excludeTags", "true" if exclude_tags else "false"))
        body = self._call("GET", "orders", "list_orders", params=params)
        return Page(
            items=[Order.model_validate(o) for o in body.get("Data") or []],
            page=int((body.get("Paging") or {}).get("Page") or page),
            total_pages=int((body.get("Paging") or {}).get("TotalPages") or 1),
        )

    def iter_order_pages(self, **filters: Any) -> Iterator[Page]:
        """Every page of a query. Callers collect the ids first and export afterwards: tagging while paging would
        shift the pages of an ``excludeTags`` query and skip orders (billbee-pitfalls #4)."""
        page = 1
        while page <= MAX_PAGES:
            result = self.list_orders(page=page, **filters)
            yield result
            if page >= result.total_pages or not result.items:
                return
            page += 1

    def get_order(self, order_id: int) -> Order:
        body = self._call("GET", f"orders/{order_id}", "get_order")
        return Order.model_validate(body.get("Data"))

    def list_invoices(
        self, *, min_invoice_date: datetime, max_invoice_date: datetime | None = None, page: int = 1
    ) -> Page:
        params: list[tuple[str, Any]] = [
            ("minInvoiceDate", _format_datetime(min_invoice_date)),
            ("page", page),
            ("pageSize", PAGE_SIZE),
            ("includePositions", "true"),
        ]
        if max_invoice_date is not None:
            params.append(("maxInvoiceDate", _format_datetime(max_invoice_date)))
        body = self._call("GET", "orders/invoices", "list_invoices", params=params)
        return Page(
            items=[InvoiceDetails.model_validate(i) for i in body.get("Data") or []],
            page=int((body.get("Paging") or {}).get("Page") or page),
            total_pages=int((body.get("Paging") or {}).get("TotalPages") or 1),
        )

    def invoices_since(
        self, min_invoice_date: datetime, max_invoice_date: datetime | None = None
    ) -> list[InvoiceDetails]:
        invoices: list[InvoiceDetails] = []
        page = 1
        while page <= MAX_PAGES:
            result = self.list_invoices(min_invoice_date=min_invoice_date, max_invoice_date=max_invoice_date, page=page)
            invoices += result.items
            if page >= result.total_pages or not result.items:
                break
            page += 1
        return invoices

    def invoice_pdf(self, order: Order) -> tuple[InvoiceDocument, bytes]:
        """The PDF of an order's existing invoice.

        ``CreateInvoice`` is the only endpoint that returns the PDF, and it *creates* an invoice (allocating the next
        number) when the order has none (billbee-pitfalls #16). The connector never invoices: this refuses orders
        without an invoice before any request is sent.
        """
        if not order.has_invoice:
            raise RejectedError(API, f"order {order.bill_bee_order_id} has no invoice; refusing to create one")
        body = self._call(
            "POST",
            f"orders/CreateInvoice/{order.bill_bee_order_id}",
            "create_invoice",
            params=[("includeInvoicePdf", "true")],
        )
        document = InvoiceDocument.model_validate(body.get("Data") or {})
        if not document.pdf_data:
            raise TransientError(API, f"invoice of order {order.bill_bee_order_id} came without PDF data")
        try:
            pdf = base64.b64decode(document.pdf_data, validate=True)
        except ValueError as exc:
            raise TransientError(API, f"invoice PDF of order {order.bill_bee_order_id} is not valid base64") from exc
        return document, pdf

    def add_tags(self, order_id: int, tags: list[str]) -> None:
        """``POST`` adds tags (existing ones ignored, case-insensitive); ``PUT`` would wipe the merchant's own tags."""
        self._call("POST", f"orders/{order_id}/tags", "add_tags", json={"Tags": tags}, idempotent=True)

    # -- setup ---------------------------------------------------------------------------------------------------
    def list_shops(self) -> list[Shop]:
        body = self._call("GET", "shopaccounts", "list_shops", params=[("page", 1), ("pageSize", 250)])
        return [Shop.model_validate(s) for s in body.get("Data") or []]

    def order_states(self) -> list[EnumEntry]:
        body = self._call("GET", "enums/orderstates", "order_states")
        return [EnumEntry.model_validate(e) for e in body.get("Data") or []]

    def payment_types(self) -> list[EnumEntry]:
        body = self._call("GET", "enums/paymenttypes", "payment_types")
        return [EnumEntry.model_validate(e) for e in body.get("Data") or []]


"""A typed client for the Billbee REST API (billbee-api.md), on httpx.

Auth is the developer's ``X-Billbee-Api-Key`` plus HTTP Basic with the merchant's user and API password. Success
needs HTTP 2xx **and** ``ErrorCode == 0`` with an empty ``ErrorMessage`` (billbee-pitfalls #23). Every request first
claims a slot from the shared rate limiter (2/s per endpoint, 10/s per key + user).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from connector.billbee.models import EnumEntry, InvoiceDetails, InvoiceDocument, Order, Shop
from connector.billbee.problems import UnreadableOrder, describe_validation_error, raw_order_id
from connector.errors import AuthError, NotFoundError, RejectedError, TransientError, UnreadableData
from connector.observability import logger
from connector.ratelimit import Limit, NoRateLimit, RateLimiter
from connector.transport import RetryPolicy, send

API = "billbee"
DEFAULT_BASE_URL = "https://app.billbee.io/api/v1"
PAGE_SIZE = 250  # the maximum Billbee allows (billbee-api.md §3)
PER_ENDPOINT_PER_SECOND = 2.0
PER_USER_PER_SECOND = 10.0
# Where each endpoint's slots start within the paced grid (ratelimit.py): an export's three endpoints a quarter slot
# (129 ms) apart, so they never want the same 125 ms place under the user's limit; the poll's between them.
ENDPOINT_PHASES = {
    "get_order": 0.0,
    "create_invoice": 0.25,
    "add_tags": 0.5,
    "list_orders": 0.75,
    "list_invoices": 0.125,
    "find_order": 0.375,
}
MAX_PAGES = 1000  # loop guard
# What to wait after a 429 that carries no Retry-After (ERRATA Billbee 5): the documented window of the resource.
THROTTLE_WINDOWS = {
    "get_order": 10.0,  # "6 calls per order in one minute"
    "create_invoice": 300.0,  # "1 per 5 minutes" per order and API key
    "list_invoices": 60.0,  # "1 per 1 minute for same page and minInvoiceDate"
}
DEFAULT_THROTTLE_WINDOW = 1.0  # 2 per second per endpoint: after a whole second the endpoint is free again
PDF_DOWNLOAD_TIMEOUT = 20.0

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


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    total_pages: int | None  # None: the answer carried no Paging (Billbee's SDK fixtures have none)
    page_size: int
    unreadable: list[UnreadableOrder] = field(default_factory=list)

    @property
    def is_last(self) -> bool:
        size = len(self.items) + len(self.unreadable)
        if self.total_pages is None:
            return size < self.page_size  # without Paging, only a short page says "no more"
        return self.page >= self.total_pages or size == 0


def indexed(name: str, values: list[Any] | None) -> list[tuple[str, Any]]:
    """An array parameter in the form Billbee's official C# and PHP SDKs send: ``name[0]=a&name[1]=b``
    (ERRATA Billbee 8). Which forms the live API binds is not recorded; the pipeline filters on its side too."""
    return [(f"{name}[{index}]", value) for index, value in enumerate(values or [])]


def _paging(body: dict[str, Any]) -> tuple[int | None, int | None]:
    paging = body.get("Paging")
    if not isinstance(paging, dict):
        return None, None
    total = paging.get("TotalPages")
    page = paging.get("Page")
    return (int(page) if isinstance(page, int) else None), (int(total) if isinstance(total, int) else None)


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
        rate_scale: float = 1.0,
    ) -> None:
        """``rate_scale`` K: Billbee's limits taken K times faster (K times the rates, a K-th of every window), for a
        local sandbox scaled the same way (``BILLBEE_RATE_SCALE``); 1 against the real Billbee."""
        if rate_scale <= 0:
            raise ValueError("rate_scale must be positive")
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
        self._rate_scale = rate_scale
        self._retry = retry or RetryPolicy()
        # The PDF download URL is a presigned object-store address: it gets no Billbee credentials.
        self._download = httpx.Client(timeout=httpx.Timeout(PDF_DOWNLOAD_TIMEOUT, connect=5.0), transport=transport)

    def close(self) -> None:
        self._http.close()
        self._download.close()

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

        scale = self._rate_scale
        endpoint = Limit(f"billbee:{operation}", PER_ENDPOINT_PER_SECOND * scale, ENDPOINT_PHASES.get(operation, 0.0))
        user = Limit("billbee:user", PER_USER_PER_SECOND * scale)

        def claim_slots() -> None:
            self._limiter.acquire(endpoint, user)

        response = send(
            self._http, request, api=API, operation=operation, idempotent=idempotent,
            policy=self._retry, before_send=claim_slots,
            throttle_window=THROTTLE_WINDOWS.get(operation, DEFAULT_THROTTLE_WINDOW) / scale,
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
        minimum_order_id: int | None = None,
        page: int = 1,
        page_size: int = PAGE_SIZE,
    ) -> Page[Order]:
        """One page of orders. An order the models cannot read is handed back in ``unreadable`` with the reason,
        never allowed to fail the page: one bad order must not stop the others."""
        params: list[tuple[str, Any]] = [("page", page), ("pageSize", page_size)]
        if min_order_date is not None:
            params.append(("minOrderDate", _format_datetime(min_order_date)))
        if modified_after is not None:
            params.append(("modifiedAtMin", _format_datetime(modified_after)))
        if minimum_order_id is not None:
            # "As ids are in sequence, this can be used to get only orders, not already imported" [CS SDK]
            params.append(("minimumBillBeeOrderId", minimum_order_id))
        params += indexed("shopId", shop_ids)
        params += indexed("orderStateId", state_ids)
        if tag:
            params += indexed("tag", [tag])
            params.append(("excludeTags", "true" if exclude_tags else "false"))
        body = self._call("GET", "orders", "list_orders", params=params)
        items: list[Order] = []
        unreadable: list[UnreadableOrder] = []
        for raw in _data_list(body, "list_orders"):
            try:
                items.append(Order.model_validate(raw))
            except ValidationError as exc:
                unreadable.append(UnreadableOrder(raw, raw_order_id(raw), describe_validation_error(exc)))
        page_no, total_pages = _paging(body)
        return Page(items, page_no or page, total_pages, page_size, unreadable)

    def iter_order_pages(self, **filters: Any) -> Iterator[Page[Order]]:
        """Every page of a query. Callers collect the ids first and export afterwards: tagging while paging would
        shift the pages of an ``excludeTags`` query and skip orders (billbee-pitfalls #4)."""
        page = 1
        while page <= MAX_PAGES:
            result = self.list_orders(page=page, **filters)
            yield result
            if result.is_last:
                return
            page += 1

    def get_order(self, order_id: int) -> Order:
        body = self._call("GET", f"orders/{order_id}", "get_order")
        try:
            return Order.model_validate(body.get("Data"))
        except ValidationError as exc:
            raise UnreadableData(API, describe_validation_error(exc)) from exc

    def find_order_by_number(self, order_number: str) -> Order | None:
        """The order with this external order number (``GET /orders/findbyextref/{extRef}``), or None."""
        try:
            body = self._call("GET", f"orders/findbyextref/{quote(order_number, safe='')}", "find_order")
        except NotFoundError:
            return None
        data = body.get("Data")
        if not data:
            return None
        try:
            return Order.model_validate(data)
        except ValidationError as exc:
            raise UnreadableData(API, describe_validation_error(exc)) from exc

    def list_invoices(
        self, *, min_invoice_date: datetime, max_invoice_date: datetime | None = None, page: int = 1
    ) -> Page[InvoiceDetails]:
        params: list[tuple[str, Any]] = [
            ("minInvoiceDate", _format_datetime(min_invoice_date)),
            ("page", page),
            ("pageSize", PAGE_SIZE),
            ("includePositions", "true"),
        ]
        if max_invoice_date is not None:
            params.append(("maxInvoiceDate", _format_datetime(max_invoice_date)))
        body = self._call("GET", "orders/invoices", "list_invoices", params=params)
        items: list[InvoiceDetails] = []
        unreadable: list[UnreadableOrder] = []
        for raw in _data_list(body, "list_invoices"):
            try:
                items.append(InvoiceDetails.model_validate(raw))
            except ValidationError as exc:
                # The order behind it is told by its own export (its positions are then missing); the page keeps
                # it, so paging counts it and a reconciliation can name it.
                problem = describe_validation_error(exc)
                number = raw.get("InvoiceNumber") if isinstance(raw, dict) else None
                unreadable.append(UnreadableOrder(raw, None, f"invoice {number or '(no number)'}: {problem}"))
                logger.warning("unreadable invoice-list item", extra={"invoice": number, "problem": problem})
        page_no, total_pages = _paging(body)
        if total_pages is None:
            logger.info("invoice list without Paging; paging until a short page", extra={"page": page})
        return Page(items, page_no or page, total_pages, PAGE_SIZE, unreadable)

    def iter_invoices(
        self, min_invoice_date: datetime, max_invoice_date: datetime | None = None
    ) -> Iterator[InvoiceDetails]:
        """Every invoice and credit note of a period, page by page (streamed: a year holds tens of thousands)."""
        page = 1
        while page <= MAX_PAGES:
            result = self.list_invoices(min_invoice_date=min_invoice_date, max_invoice_date=max_invoice_date, page=page)
            yield from result.items
            if result.is_last:
                return
            page += 1

    def invoices_since(
        self, min_invoice_date: datetime, max_invoice_date: datetime | None = None
    ) -> list[InvoiceDetails]:
        return list(self.iter_invoices(min_invoice_date, max_invoice_date))

    def invoice_document(self, order: Order) -> InvoiceDocument:
        """The order's existing invoice as ``CreateInvoice`` answers it, PDF included.

        ``CreateInvoice`` is the only endpoint that returns the PDF, and it *creates* an invoice (allocating the next
        number) when the order has none (billbee-pitfalls #16). The connector never invoices: this refuses orders
        without an invoice before any request is sent. Whether the answer for an invoiced order is that invoice is
        unconfirmed: callers check it (``invoices.document_problem``) before using the PDF.
        """
        if not order.has_invoice:
            raise RejectedError(API, f"order {order.bill_bee_order_id} has no invoice; refusing to create one")
        body = self._call(
            "POST",
            f"orders/CreateInvoice/{order.bill_bee_order_id}",
            "create_invoice",
            params=[("includeInvoicePdf", "true")],
        )
        try:
            return InvoiceDocument.model_validate(body.get("Data") or {})
        except ValidationError as exc:
            raise UnreadableData(API, describe_validation_error(exc)) from exc

    def invoice_pdf_bytes(self, order: Order, document: InvoiceDocument) -> bytes:
        """The PDF of a ``CreateInvoice`` answer: ``PDFData`` (base64), else downloaded from ``PdfDownloadUrl``."""
        pdf: bytes | None = None
        source = "PDFData"
        if document.pdf_data:
            try:
                pdf = base64.b64decode(document.pdf_data, validate=True)
            except (binascii.Error, ValueError):
                logger.warning("invoice PDFData is not valid base64", extra={"order": order.bill_bee_order_id})
        if pdf is None and document.pdf_download_url:
            pdf = self._download_pdf(order, document.pdf_download_url)
            source = "PdfDownloadUrl"
        if pdf is None:
            raise TransientError(API, f"invoice of order {order.bill_bee_order_id} came without a usable PDF or link")
        if not pdf.startswith(b"%PDF"):
            raise TransientError(API, f"the invoice PDF of order {order.bill_bee_order_id} is not a PDF ({source})")
        logger.info("invoice PDF received", extra={"order": order.bill_bee_order_id, "source": source})
        return pdf

    def _download_pdf(self, order: Order, url: str) -> bytes:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("https", "http"):
            raise TransientError(API, f"invoice of order {order.bill_bee_order_id} has an unusable PDF link")
        request = self._download.build_request("GET", parsed)
        response = send(
            self._download, request, api=API, operation="download_invoice_pdf", idempotent=True, policy=self._retry
        )
        if response.status_code >= 400:
            raise TransientError(
                API, f"download_invoice_pdf: the PDF link of order {order.bill_bee_order_id} answered "
                f"{response.status_code}", status=response.status_code,
            )
        return response.content

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



def _data_list(body: dict[str, Any], operation: str) -> list[Any]:
    data = body.get("Data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise TransientError(API, f"{operation}: Data is not a list")
    return data

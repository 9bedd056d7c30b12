"""A typed client for the sevDesk API (sevdesk-api.md), on httpx.

The token goes bare into ``Authorization`` (no "Bearer", sevdesk-pitfalls #26). Every answer is ``{"objects": ...}``
with string scalars; errors can arrive inside HTTP 200 (sevdesk-pitfalls #18), so every body is checked for
``error``. Filters that sevDesk does not know are ignored silently (#14): every search is re-checked here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
from pydantic import ValidationError

from connector.bookkeeping.voucher import ContactPlan, PlannedPayment, VoucherPlan
from connector.errors import AuthError, NotFoundError, RejectedError, TransientError
from connector.observability import logger
from connector.sevdesk.bodies import (
    book_amount_body,
    contact_address_body,
    contact_body,
    email_body,
    save_voucher_body,
)
from connector.sevdesk.models import (
    BERLIN,
    Booking,
    CheckAccount,
    RevenueAccount,
    RevenueVoucher,
    VoucherPosition,
    VoucherState,
)
from connector.transport import RetryPolicy, send

API = "sevdesk"
DEFAULT_BASE_URL = "https://my.sevdesk.de/api/v1"
SEARCH_PAGE_SIZE = 1000  # sevDesk's largest page (sevdesk-api.md §1)
MAX_SEARCH_PAGES = 20
# GET /StaticCountry?code=GB answers England, Great Britain and United Kingdom (ERRATA sevDesk 12): the state is
# the United Kingdom. Other codes answer one row.
COUNTRY_NAMES = {"gb": ("united kingdom", "vereinigtes königreich")}


@dataclass(frozen=True)
class VoucherPage:
    """One page of a period's revenue vouchers; ``next_offset`` None: it was the last page."""

    vouchers: list[RevenueVoucher]
    next_offset: int | None


class SevdeskClient:
    def __init__(
        self,
        *,
        api_token: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 20.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={
                "Authorization": api_token,
                "Accept": "application/json",
                # The oldest (default) version of every resource, as the recorded live answers were made with.
                "X-Version": "default",
                "User-Agent": "Billbee-sevDesk-Connector (self-hosted)",
            },
            transport=transport,
        )
        self._retry = retry or RetryPolicy()
        self._countries: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self.search_page_size = SEARCH_PAGE_SIZE

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
        files: dict[str, tuple[str, bytes, str]] | None = None,
        idempotent: bool = True,
    ) -> Any:
        request = self._http.build_request(method, path, params=params, json=json, files=files)
        response = send(self._http, request, api=API, operation=operation, idempotent=idempotent, policy=self._retry)
        return self._objects(response, operation)

    @staticmethod
    def _objects(response: httpx.Response, operation: str) -> Any:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if status in (401, 403):
            raise AuthError(API, f"{operation}: the API token was rejected", status=status)
        if error or status >= 400:
            message = "request rejected"
            code = None
            if isinstance(error, dict):
                message = str(error.get("message") or message)
                code = error.get("code")
            elif isinstance(body, dict) and body.get("message"):
                message = str(body["message"])
            if status == 404 or str(code) == "151":
                raise NotFoundError(API, f"{operation}: {message}", status=status, code=code)
            if 200 <= status < 300:
                # An error inside HTTP 200: the write may or may not have happened; treat like a rejection.
                raise RejectedError(API, f"{operation}: {message}", status=status, code=code)
            raise RejectedError(API, f"{operation}: {message}", status=status, code=code)
        if not isinstance(body, dict) or "objects" not in body:
            raise TransientError(API, f"{operation}: answer has no 'objects'", status=status)
        return body["objects"]

    # -- setup ---------------------------------------------------------------------------------------------------
    def bookkeeping_version(self) -> str:
        objects = self._call("GET", "Tools/bookkeepingSystemVersion", "bookkeeping_version")
        return str((objects or {}).get("version"))

    def revenue_guidance(self) -> list[RevenueAccount]:
        """The revenue accounts with the tax rules and rates each allows; an entry that cannot be read is left out
        (logged): a mapping to it is then refused as unknown, never booked against a guess."""
        accounts = []
        for raw in self._call("GET", "ReceiptGuidance/forRevenue", "guidance_revenue") or []:
            try:
                accounts.append(RevenueAccount.model_validate(raw))
            except ValidationError:
                logger.warning("unreadable receipt guidance entry", extra={"entry": str(raw)[:200]})
        return accounts

    def check_accounts(self) -> list[CheckAccount]:
        objects = self._call("GET", "CheckAccount", "list_check_accounts", params=[("limit", 1000)])
        return [CheckAccount.model_validate(a) for a in objects or []]

    def create_clearing_account(self, name: str, accounting_number: int | None = None) -> CheckAccount:
        body: dict[str, Any] = {"name": name}
        if accounting_number is not None:
            body["accountingNumber"] = accounting_number
        account = self._call("POST", "CheckAccount/Factory/clearingAccount", "create_clearing_account", json=body,
                             idempotent=False)
        return CheckAccount.model_validate(account)

    # -- vouchers ------------------------------------------------------------------------------------------------
    def upload_temp_file(self, filename: str, content: bytes) -> str:
        """Upload the invoice PDF (multipart, field ``file``); sevDesk names the temp file."""
        objects = self._call(
            "POST",
            "Voucher/Factory/uploadTempFile",
            "upload_temp_file",
            files={"file": (filename, content, "application/pdf")},
            idempotent=True,  # a repeated upload only leaves an unused temp file
        )
        name = (objects or {}).get("filename")
        if not name:
            raise TransientError(API, "uploadTempFile answered without a file name")
        return str(name)

    def save_voucher(
        self, plan: VoucherPlan, *, filename: str | None = None, contact_id: str | None = None
    ) -> VoucherState:
        body = save_voucher_body(plan, filename=filename, contact_id=contact_id)
        objects = self._call("POST", "Voucher/Factory/saveVoucher", "save_voucher", json=body, idempotent=False)
        voucher = (objects or {}).get("voucher")
        if not isinstance(voucher, dict) or voucher.get("id") is None:
            raise TransientError(API, "saveVoucher answered without a voucher id")
        return VoucherState.model_validate(voucher)

    def find_revenue_vouchers(self, description: str) -> list[VoucherState]:
        """Revenue vouchers whose description is exactly ``description``.

        ``descriptionLike`` is a substring match (sevdesk-pitfalls #14): ``RE-1`` also finds ``RE-10`` ... ``RE-1999``,
        so the answer is paged with ``offset`` until a short page. A search that still ends on a full page cannot
        tell "not there" from "not reached": it raises instead of answering "none" (a duplicate would follow).
        """
        limit = self.search_page_size
        found: list[VoucherState] = []
        for page in range(MAX_SEARCH_PAGES):
            objects = self._call(
                "GET",
                "Voucher",
                "list_vouchers",
                params=[("descriptionLike", description), ("creditDebit", "D"), ("limit", limit),
                        ("offset", page * limit)],
            )
            rows = list(objects or [])
            found += [
                VoucherState.model_validate(v)
                for v in rows
                if v.get("description") == description and v.get("creditDebit") in ("D", None)
            ]
            if len(rows) < limit:
                return found
        raise TransientError(
            API, f"the voucher search for {description!r} matched more than {MAX_SEARCH_PAGES * limit} vouchers; "
            "cannot tell whether this invoice is already in sevDesk"
        )

    def get_voucher(self, voucher_id: str) -> VoucherState:
        objects = self._call("GET", f"Voucher/{voucher_id}", "get_voucher")
        if not objects:
            raise NotFoundError(API, f"voucher {voucher_id} not found")
        return VoucherState.model_validate(objects[0] if isinstance(objects, list) else objects)

    # -- reconciliation (read only) ---------------------------------------------------------------------------
    def revenue_vouchers_dated(self, first: date, last: date, *, offset: int = 0) -> VoucherPage:
        """One page of the revenue vouchers dated ``first`` to ``last`` (Berlin days), for a reconciliation
        (sevdesk-api.md §13): ``startDate``/``endDate`` as Unix timestamps (ISO dates silently give an empty list,
        sevdesk-pitfalls #15), paged with ``offset``.

        The bounds are widened by a day on each side, because the spec contradicts itself on whether they are
        inclusive and says nothing of their zone; every row is then kept only if its own voucher date falls in the
        period and it is revenue (``D``): sevDesk ignores a filter it does not know and answers everything
        (sevdesk-pitfalls #14). ``next_offset`` is None after a short page."""
        limit = self.search_page_size
        start = datetime.combine(first - timedelta(days=1), time.min, tzinfo=BERLIN)
        end = datetime.combine(last + timedelta(days=2), time.min, tzinfo=BERLIN)
        objects = self._call(
            "GET",
            "Voucher",
            "list_vouchers",
            params=[("creditDebit", "D"), ("startDate", int(start.timestamp())), ("endDate", int(end.timestamp())),
                    ("limit", limit), ("offset", offset)],
        )
        rows = list(objects or [])
        vouchers = []
        for raw in rows:
            voucher = RevenueVoucher.model_validate(raw)
            day = voucher.voucher_day
            if voucher.credit_debit in ("D", None) and day is not None and first <= day <= last:
                vouchers.append(voucher)
        return VoucherPage(vouchers, offset + len(rows) if len(rows) >= limit else None)

    def revenue_voucher(self, voucher_id: str) -> RevenueVoucher:
        """``GET /Voucher/{id}`` (a list of one, ERRATA sevDesk 13) read for a reconciliation."""
        objects = self._call("GET", f"Voucher/{voucher_id}", "get_voucher")
        if not objects:
            raise NotFoundError(API, f"voucher {voucher_id} not found")
        return RevenueVoucher.model_validate(objects[0] if isinstance(objects, list) else objects)

    def revenue_vouchers_numbered(self, description: str) -> list[RevenueVoucher]:
        """The revenue vouchers whose description is exactly ``description`` (the exact search of
        ``find_revenue_vouchers``), each read with its date and tax rule."""
        return [self.revenue_voucher(found.id) for found in self.find_revenue_vouchers(description)]

    def voucher_positions(self, voucher_id: str) -> list[VoucherPosition]:
        """A voucher's positions: ``GET /VoucherPos?voucher[id]=…&voucher[objectName]=Voucher`` (sevdesk-api.md §3,
        §13; ``embed=voucherPos`` on ``/Voucher`` is ignored, sevdesk-pitfalls #16). A row of another voucher is
        dropped: an ignored filter would answer every position of the account (sevdesk-pitfalls #14)."""
        objects = self._call(
            "GET",
            "VoucherPos",
            "list_voucher_positions",
            params=[("voucher[id]", voucher_id), ("voucher[objectName]", "Voucher"), ("limit", SEARCH_PAGE_SIZE)],
        )
        positions = [VoucherPosition.model_validate(raw) for raw in objects or []]
        if len(positions) >= SEARCH_PAGE_SIZE:
            # A full page: either the filter was ignored or the voucher has more positions than one page holds.
            raise TransientError(API, f"the positions of voucher {voucher_id} fill a whole page; cannot tell them all")
        return [p for p in positions if str(p.voucher) == str(voucher_id)]

    def book_amount(self, voucher_id: str, payment: PlannedPayment) -> Booking:
        result = self._call("PUT", f"Voucher/{voucher_id}/bookAmount", "book_amount",
                            json=book_amount_body(payment), idempotent=False)
        return Booking.model_validate(result or {})

    # -- contacts ------------------------------------------------------------------------------------------------
    def find_contact(self, customer_number: str) -> str | None:
        """The contact with exactly this customer number. ``depth=1`` or persons are not returned (pitfalls #19)."""
        objects = self._call(
            "GET", "Contact", "list_contacts", params=[("customerNumber", customer_number), ("depth", 1)]
        )
        for contact in objects or []:
            if str(contact.get("customerNumber")) == customer_number:
                return str(contact["id"])
        return None

    def country_id(self, code: str | None) -> str | None:
        if not code:
            return None
        code = code.lower()
        with self._lock:
            if code in self._countries:
                return self._countries[code]
        objects = self._call("GET", "StaticCountry", "list_countries", params=[("code", code), ("limit", 100)])
        rows = [c for c in objects or [] if str(c.get("code", "")).lower() == code]
        wanted = COUNTRY_NAMES.get(code)
        if wanted is not None and len(rows) > 1:
            named = [c for c in rows if {str(c.get("name") or "").lower(), str(c.get("nameEn") or "").lower()}
                     & set(wanted)]
            logger.info("StaticCountry answered several rows", extra={"code": code, "rows": len(rows),
                                                                       "picked": bool(named)})
            rows = named  # never England or Great Britain for the state; no country rather than a wrong one
        found = str(rows[0]["id"]) if rows else None
        with self._lock:
            self._countries[code] = found
        return found

    def create_contact(self, plan: ContactPlan) -> str:
        contact = self._call("POST", "Contact", "create_contact", json=contact_body(plan), idempotent=False)
        return str(contact["id"])

    def add_contact_address(self, contact_id: str, plan: ContactPlan) -> None:
        if not (plan.street or plan.city):
            return
        body = contact_address_body(contact_id, plan, self.country_id(plan.country_code))
        self._call("POST", "ContactAddress", "create_contact_address", json=body, idempotent=False)

    def add_contact_email(self, contact_id: str, email: str) -> None:
        self._call("POST", "CommunicationWay", "create_communication_way", json=email_body(contact_id, email),
                   idempotent=False)

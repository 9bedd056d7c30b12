"""A typed client for the sevDesk API (sevdesk-api.md), on httpx.

The token goes bare into ``Authorization`` (no "Bearer", sevdesk-pitfalls #26). Every answer is ``{"objects": ...}``
with string scalars; errors can arrive inside HTTP 200 (sevdesk-pitfalls #18), so every body is checked for
``error``. Filters that sevDesk does not know are ignored silently (#14): every search is re-checked here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx

from connector.bookkeeping.voucher import ContactPlan
from connector.errors import AuthError, NotFoundError, RejectedError, TransientError
from connector.observability import logger
from connector.transport import RetryPolicy, send

API = "sevdesk"
DEFAULT_BASE_URL = "https://my.sevdesk.de/api/v1"
CUSTOMER_CATEGORY_ID = 3  # "Kunde" (sevdesk-api.md §7)
WORK_EMAIL_KEY = 2
INVOICE_ADDRESS_CATEGORY_ID = 47  # "Rechnungsadresse"
SEARCH_PAGE_SIZE = 1000  # sevDesk's largest page (sevdesk-api.md §1)
MAX_SEARCH_PAGES = 20
ACTIVE_ACCOUNT_STATUS = "100"  # CheckAccount status: 100 active, 0 archived (sevdesk-api.md §5)
# GET /StaticCountry?code=GB answers England, Great Britain and United Kingdom (ERRATA sevDesk 12): the state is
# the United Kingdom. Other codes answer one row.
COUNTRY_NAMES = {"gb": ("united kingdom", "vereinigtes königreich")}


@dataclass(frozen=True)
class CheckAccount:
    id: int
    name: str
    type: str  # online | offline | register
    status: str | None

    @property
    def is_offline(self) -> bool:
        # Bookings without a bank transaction are only possible on offline (clearing) accounts and registers.
        return self.type in ("offline", "register")

    @property
    def is_active(self) -> bool:
        # An archived account (status 0) takes no bookings; None: an answer without status is taken as active.
        return self.status is None or str(self.status) == ACTIVE_ACCOUNT_STATUS


def _check_account(raw: dict[str, Any]) -> CheckAccount:
    status = raw.get("status")
    return CheckAccount(int(raw["id"]), str(raw.get("name") or ""), str(raw.get("type") or ""),
                        None if status is None else str(status))


@dataclass(frozen=True)
class VoucherState:
    id: str
    description: str | None
    status: str | None
    sum_gross: str | None
    paid_amount: str | None
    credit_debit: str | None


def _voucher_state(raw: dict[str, Any]) -> VoucherState:
    return VoucherState(
        id=str(raw.get("id")),
        description=raw.get("description"),
        status=None if raw.get("status") is None else str(raw.get("status")),
        sum_gross=None if raw.get("sumGross") is None else str(raw.get("sumGross")),
        paid_amount=None if raw.get("paidAmount") is None else str(raw.get("paidAmount")),
        credit_debit=raw.get("creditDebit"),
    )


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

    def revenue_guidance(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "ReceiptGuidance/forRevenue", "guidance_revenue") or [])

    def check_accounts(self) -> list[CheckAccount]:
        objects = self._call("GET", "CheckAccount", "list_check_accounts", params=[("limit", 1000)])
        return [_check_account(a) for a in objects or []]

    def create_clearing_account(self, name: str, accounting_number: int | None = None) -> CheckAccount:
        body: dict[str, Any] = {"name": name}
        if accounting_number is not None:
            body["accountingNumber"] = accounting_number
        a = self._call("POST", "CheckAccount/Factory/clearingAccount", "create_clearing_account", json=body,
                       idempotent=False)
        return _check_account(a)

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

    def save_voucher(self, body: dict[str, Any]) -> VoucherState:
        objects = self._call("POST", "Voucher/Factory/saveVoucher", "save_voucher", json=body, idempotent=False)
        voucher = (objects or {}).get("voucher")
        if not isinstance(voucher, dict) or voucher.get("id") is None:
            raise TransientError(API, "saveVoucher answered without a voucher id")
        return _voucher_state(voucher)

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
                _voucher_state(v)
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
        return _voucher_state(objects[0] if isinstance(objects, list) else objects)

    def book_amount(self, voucher_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self._call("PUT", f"Voucher/{voucher_id}/bookAmount", "book_amount", json=body, idempotent=False)
        return dict(result or {})

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
        body: dict[str, Any] = {
            "objectName": "Contact",
            "mapAll": True,
            "category": {"id": CUSTOMER_CATEGORY_ID, "objectName": "Category"},
            "customerNumber": plan.customer_number,
            "status": 1000,
        }
        if plan.organisation_name:
            body["name"] = plan.organisation_name  # a contact with `name` is an organisation
        else:
            body["surename"] = plan.first_name or ""  # sevDesk's spelling; surename is the *first* name
            body["familyname"] = plan.last_name or ""
        if plan.vat_number:
            body["vatNumber"] = plan.vat_number
        contact = self._call("POST", "Contact", "create_contact", json=body, idempotent=False)
        return str(contact["id"])

    def add_contact_address(self, contact_id: str, plan: ContactPlan) -> None:
        if not (plan.street or plan.city):
            return
        body: dict[str, Any] = {
            "contact": {"id": contact_id, "objectName": "Contact"},
            "street": plan.street,
            "zip": plan.zip,
            "city": plan.city,
            "name": plan.organisation_name or " ".join(p for p in (plan.first_name, plan.last_name) if p),
            "category": {"id": INVOICE_ADDRESS_CATEGORY_ID, "objectName": "Category"},
        }
        country = self.country_id(plan.country_code)
        if country is not None:
            body["country"] = {"id": country, "objectName": "StaticCountry"}
        self._call("POST", "ContactAddress", "create_contact_address", json=body, idempotent=False)

    def add_contact_email(self, contact_id: str, email: str) -> None:
        body = {
            "contact": {"id": contact_id, "objectName": "Contact"},
            "type": "EMAIL",
            "value": email,
            "key": {"id": WORK_EMAIL_KEY, "objectName": "CommunicationWayKey"},
            "main": True,
        }
        self._call("POST", "CommunicationWay", "create_communication_way", json=body, idempotent=False)

"""``SevdeskSandbox``: the account's state, authentication, throttling, the route table, persistence and dump().

The endpoints themselves are the resource mixins' (``accounts``, ``vouchers``, ``payments``, ``contacts``).
"""

from __future__ import annotations

import copy
import math
import pickle
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from local.faults import FaultPlan
from local.sandbox.base import Request, Response
from local.sandbox.sevdesk.accounts import AccountsMixin
from local.sandbox.sevdesk.contacts import ContactsMixin
from local.sandbox.sevdesk.payments import PaymentsMixin
from local.sandbox.sevdesk.vouchers import VouchersMixin
from local.sandbox.sevdesk.wire import (
    API_PREFIX,
    ID_BASES,
    SEED_TIME,
    SevdeskApiError,
    _decimal,
    _num,
    _parse_day,
    _ref,
    default_seed,
)


class SevdeskSandbox(AccountsMixin, ContactsMixin, PaymentsMixin, VouchersMixin):
    """The sevDesk API on 127.0.0.1; state lives in memory and is inspected with ``dump()``."""

    api = "sevdesk"
    url_prefix = API_PREFIX

    def __init__(
        self,
        *,
        api_token: str,
        bookkeeping_version: str = "2.0",
        seed: dict[str, Any] | None = None,
        faults: FaultPlan | None = None,
        hold_seconds: float = 3.0,
        rate_limit_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        delivery_after_voucher_date: str = "accept",
        negative_vouchers: str = "accept",
    ) -> None:
        super().__init__(faults=faults, hold_seconds=hold_seconds)
        if bookkeeping_version not in ("1.0", "2.0"):
            raise ValueError("bookkeeping_version must be '1.0' or '2.0'")
        self.api_token = api_token
        self.bookkeeping_version = bookkeeping_version  # may be switched at runtime
        # sevDesk refuses a deliveryDate after the invoiceDate on invoices; whether it does on vouchers is unknown, so
        # both readings can be played: "accept" (default) or "reject" (422 naming deliveryDate). Switchable at runtime.
        self.delivery_after_voucher_date = delivery_after_voucher_date
        # A revenue voucher whose positions add up to less than 0 (a credit note): integrations send them, no recorded
        # answer shows sevDesk's reply. "accept" (default) or "reject" (422 naming the sum). Switchable at runtime.
        self.negative_vouchers = negative_vouchers
        self.rate_limit_per_second = rate_limit_per_second
        self.clock = clock
        self._bucket_lock = threading.Lock()
        self._tokens = self._bucket_capacity()
        self._bucket_at = clock()
        self._seed = copy.deepcopy(seed)
        self._load_seed()
        self._register_routes()

    # -- seed ----------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seeded state (data, ids, recorded exchanges), keeping the server, faults and settings.

        Cheaper than a new sandbox: stopping a server waits for its poll interval (up to 0.5 s).
        """
        with self.lock:
            self._load_seed()
            self.exchanges.clear()
        with self._bucket_lock:
            self._tokens = self._bucket_capacity()
            self._bucket_at = self.clock()

    def _load_seed(self) -> None:
        """Keys given in ``seed`` replace the default's; missing keys keep the default."""
        self._next_ids = dict(ID_BASES)
        self.vouchers = {}
        self.positions = {}
        self.bookings = []
        self.documents = {}
        self.temp_files = {}
        self.contacts = {}
        self.addresses = {}
        self.communication_ways = {}
        self.check_accounts = {}
        self.transactions = {}
        data = default_seed()
        data.update(copy.deepcopy(self._seed or {}))
        self.guidance = data["receiptGuidance"]
        self.countries = data["countries"]
        self.categories = data["categories"]
        for account in data["checkAccounts"]:
            account_id = int(account["id"])
            self.check_accounts[account_id] = {**account, "id": account_id, "create": SEED_TIME, "update": SEED_TIME}
        for contact in data["contacts"]:
            contact_id = int(contact["id"]) if "id" in contact else self._allocate("Contact")
            self.contacts[contact_id] = {**contact, "id": contact_id, "create": SEED_TIME, "update": SEED_TIME}
        for txn in data["transactions"]:
            txn_id = int(txn["id"]) if "id" in txn else self._allocate("CheckAccountTransaction")
            self.transactions[txn_id] = {
                "id": txn_id,
                "checkAccount": int(txn["checkAccount"]),
                "amount": _decimal(txn["amount"], "amount"),
                "valueDate": _parse_day(txn.get("valueDate", SEED_TIME), "valueDate"),
                "paymtPurpose": txn.get("paymtPurpose"),
                "payeePayerName": txn.get("payeePayerName"),
                "status": str(txn.get("status", "100")),
                "create": SEED_TIME,
                "update": SEED_TIME,
            }
        for kind, table in (("Contact", self.contacts), ("CheckAccountTransaction", self.transactions)):
            if table:
                self._next_ids[kind] = max(self._next_ids[kind], max(table) + 1)

    # -- base-class hooks ----------------------------------------------------------------------------------------
    def error_response(
        self, status: int, message: str, *, retry_after: int | None = None, code: int | None = None
    ) -> Response:
        # Error body of the [JRS] fixtures, used for every 4xx/5xx (docs §1).
        body: dict[str, Any] = {
            "objects": None,
            "error": {
                "message": message,
                "code": code,
                "exceptionUUID": str(uuid.uuid4()),
                "errorCode": 0,
                "data": [],
                "responseCode": status,
            },
        }
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Response(status=status, body=body, headers=headers)

    def authenticate(self, request: Request) -> Response | None:
        # The raw token, no "Bearer" (docs §1, pitfall 26): anything else is a 401.
        if request.headers.get("authorization") == self.api_token:
            return None
        return self.error_response(401, "Authentication required")

    def _bucket_capacity(self) -> float:
        rate = self.rate_limit_per_second
        return max(1.0, rate) if rate else 0.0

    def throttle(self, request: Request, operation: str) -> Response | None:
        """Token bucket on the injected clock. sevDesk publishes no limit (docs §1), so None means unlimited."""
        rate = self.rate_limit_per_second
        if rate is None:
            return None
        with self._bucket_lock:
            now = self.clock()
            self._tokens = min(self._bucket_capacity(), self._tokens + (now - self._bucket_at) * rate)
            self._bucket_at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            wait = (1 - self._tokens) / rate
        return self.error_response(429, "Too Many Requests", retry_after=max(1, math.ceil(wait)))

    # -- routing -------------------------------------------------------------------------------------------------
    def _register_routes(self) -> None:
        p = API_PREFIX
        table: list[tuple[str, str, str, Callable[[Request], Response]]] = [
            ("GET", r"/Tools/bookkeepingSystemVersion", "bookkeeping_version", self._bookkeeping_version),
            ("GET", r"/ReceiptGuidance/forRevenue", "guidance_revenue", self._guidance_revenue),
            ("GET", r"/ReceiptGuidance/forExpense", "guidance_expense", self._guidance_expense),
            ("GET", r"/ReceiptGuidance/forAllAccounts", "guidance_all", self._guidance_all),
            ("GET", r"/CheckAccount", "list_check_accounts", self._list_check_accounts),
            ("GET", r"/CheckAccount/(?P<id>\d+)", "get_check_account", self._get_check_account),
            (
                "POST",
                r"/CheckAccount/Factory/clearingAccount",
                "create_clearing_account",
                self._create_clearing_account,
            ),
            ("GET", r"/CheckAccountTransaction", "list_transactions", self._list_transactions),
            ("GET", r"/CheckAccountTransaction/(?P<id>\d+)", "get_transaction", self._get_transaction),
            ("POST", r"/CheckAccountTransaction", "create_transaction", self._create_transaction),
            ("POST", r"/Voucher/Factory/uploadTempFile", "upload_temp_file", self._upload_temp_file),
            ("POST", r"/Voucher/Factory/saveVoucher", "save_voucher", self._save_voucher),
            ("GET", r"/Voucher", "list_vouchers", self._list_vouchers),
            ("GET", r"/Voucher/(?P<id>\d+)", "get_voucher", self._get_voucher),
            ("PUT", r"/Voucher/(?P<id>\d+)/bookAmount", "book_amount", self._book_amount),
            ("PUT", r"/Voucher/(?P<id>\d+)/resetToOpen", "reset_to_open", self._reset_to_open),
            ("GET", r"/VoucherPos", "list_voucher_positions", self._list_voucher_positions),
            ("GET", r"/Contact", "list_contacts", self._list_contacts),
            ("POST", r"/Contact", "create_contact", self._create_contact),
            ("GET", r"/Contact/(?P<id>\d+)", "get_contact", self._get_contact),
            ("GET", r"/Contact/Factory/getNextCustomerNumber", "next_customer_number", self._next_customer_number),
            (
                "GET",
                r"/Contact/Mapper/checkCustomerNumberAvailability",
                "check_customer_number",
                self._check_customer_number,
            ),
            ("GET", r"/ContactAddress", "list_contact_addresses", self._list_contact_addresses),
            ("POST", r"/ContactAddress", "create_contact_address", self._create_contact_address),
            ("GET", r"/CommunicationWay", "list_communication_ways", self._list_communication_ways),
            ("POST", r"/CommunicationWay", "create_communication_way", self._create_communication_way),
            ("GET", r"/StaticCountry", "list_countries", self._list_countries),
            ("GET", r"/Category", "list_categories", self._list_categories),
        ]
        for method, path, operation, handler in table:
            self.route(method, re.escape(p) + path, operation, self._guarded(handler))

    def _guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            try:
                return handler(request)
            except SevdeskApiError as exc:
                return self.error_response(exc.status, exc.message, code=exc.code)

        return run

    # -- persistence between local runs -------------------------------------------------------------------------
    _STATE_ATTRIBUTES = (
        "_next_ids", "vouchers", "positions", "bookings", "documents", "temp_files", "contacts", "addresses",
        "communication_ways", "check_accounts", "transactions", "guidance", "countries", "categories",
        "bookkeeping_version",
    )

    def export_state(self) -> bytes:
        """Everything the account holds, for ``local.run --state`` (a file the runner itself wrote and reads)."""
        with self.lock:
            return pickle.dumps({name: getattr(self, name) for name in self._STATE_ATTRIBUTES})

    def import_state(self, data: bytes) -> None:
        state = pickle.loads(data)  # noqa: S301 - only the runner's own state file
        with self.lock:
            for name in self._STATE_ATTRIBUTES:
                if name in state:
                    setattr(self, name, state[name])

    # -- inspection ----------------------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """The sandbox's state as JSON-ready data (``sevdesk.json`` of ``local.run``), in the API's own shapes."""
        with self.lock:
            vouchers = []
            for voucher_id, voucher in sorted(self.vouchers.items()):
                entry = self._render_voucher(voucher)
                entry["positions"] = [
                    self._render_position(p) for _, p in sorted(self.positions.items()) if p["voucher"] == voucher_id
                ]
                document = self.documents.get(voucher["document"]) if voucher["document"] is not None else None
                entry["file"] = (
                    None
                    if document is None
                    else {
                        "filename": document["filename"],
                        "originalName": document["originalName"],
                        "mimeType": document["mimeType"],
                        "size": document["size"],
                        "sha256": document["sha256"],
                        "documentId": str(document["id"]),
                    }
                )
                entry["bookings"] = [
                    {
                        **self._render_voucher_log(b),
                        "type": b["type"],
                        "amount": _num(b["amount"]),
                        "checkAccount": _ref(b["checkAccount"], "CheckAccount"),
                        "checkAccountTransaction": _ref(b["transaction"], "CheckAccountTransaction"),
                    }
                    for b in self.bookings
                    if b["voucher"] == voucher_id
                ]
                vouchers.append(entry)
            contacts = []
            for contact_id, contact in sorted(self.contacts.items()):
                entry = self._render_contact(contact)
                entry["addresses"] = [
                    self._render_address(a) for a in self.addresses.values() if a["contact"] == contact_id
                ]
                entry["communicationWays"] = [
                    self._render_communication_way(w)
                    for w in self.communication_ways.values()
                    if w["contact"] == contact_id
                ]
                contacts.append(entry)
            accounts = []
            for account_id, account in sorted(self.check_accounts.items()):
                entry = self._render_check_account(account)
                entry["transactions"] = [
                    self._render_transaction(t)
                    for _, t in sorted(self.transactions.items())
                    if t["checkAccount"] == account_id
                ]
                accounts.append(entry)
            files = [
                {
                    "filename": f["filename"],
                    "originalName": f["originalName"],
                    "mimeType": f["mimeType"],
                    "size": f["size"],
                    "sha256": f["sha256"],
                    "attachedTo": [
                        str(d["voucher"]) for d in self.documents.values() if d["filename"] == f["filename"]
                    ],
                }
                for f in self.temp_files.values()
            ]
            return {
                "bookkeepingVersion": self.bookkeeping_version,
                "vouchers": vouchers,
                "contacts": contacts,
                "checkAccounts": accounts,
                "files": files,
            }

    def vouchers_with_description(self, description: str) -> list[dict[str, Any]]:
        """Dumped vouchers whose description is exactly ``description`` (the duplicate check of docs §8)."""
        return [v for v in self.dump()["vouchers"] if v["description"] == description]

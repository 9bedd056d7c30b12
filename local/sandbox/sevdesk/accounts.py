"""Accounts and reference data: bookkeeping version, receipt guidance, check accounts and their transactions,
countries and categories."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from local.sandbox.base import Request, Response
from local.sandbox.sevdesk.core import SevdeskCore
from local.sandbox.sevdesk.wire import (
    SEED_TIME,
    SEV_CLIENT,
    SevdeskApiError,
    _check_account,
    _decimal,
    _id_of,
    _not_found,
    _now_iso,
    _num,
    _parse_moment,
    _ref,
    _to_berlin,
)


class AccountsMixin(SevdeskCore):
    """``/Tools/bookkeepingSystemVersion``, ``/ReceiptGuidance``, ``/CheckAccount``, ``/CheckAccountTransaction``,
    ``/StaticCountry`` and ``/Category``."""

    # -- test helpers --------------------------------------------------------------------------------------------
    def archive_check_account(self, account_id: int | str) -> None:
        """Archive a check account the way a user does in sevDesk's UI: ``status`` becomes ``"0"`` (docs §5: 100 active,
        0 archived). The API offers no call for it; bookings on it are then refused."""
        with self.lock:
            account = self.check_accounts.get(int(account_id))
            if account is None:
                raise KeyError(f"no check account {account_id}")
            account["status"] = "0"
            account["update"] = _now_iso()

    # -- basics and guidance -------------------------------------------------------------------------------------
    def _bookkeeping_version(self, request: Request) -> Response:
        # X-Version selects a per-resource version; "default" (the oldest) is what sevdesk-rs pins. "1.0" and "2.0" are
        # rejected on this endpoint (docs §1); the status is a sandbox decision.
        version = request.headers.get("x-version")
        if version is not None and version.strip() != "default":
            raise SevdeskApiError(
                400, f"X-Version {version!r} is not available for /Tools/bookkeepingSystemVersion; send 'default'"
            )
        return self._ok({"version": self.bookkeeping_version})

    def _guidance_revenue(self, request: Request) -> Response:
        return self._ok([g for g in self.guidance if "REVENUE" in g["allowedReceiptTypes"]])

    def _guidance_expense(self, request: Request) -> Response:
        return self._ok([g for g in self.guidance if "EXPENSE" in g["allowedReceiptTypes"]])

    def _guidance_all(self, request: Request) -> Response:
        return self._ok(list(self.guidance))

    # -- check accounts and transactions ---------------------------------------------------------------------------
    def _render_check_account(self, account: dict[str, Any]) -> dict[str, Any]:
        # Keys, order and types of sevdesk-examples/sevdesk-rs_check_account(_list).json.
        booked = [t["amount"] for t in self.transactions.values() if t["checkAccount"] == account["id"]]
        number = account.get("accountingNumber")
        return {
            "id": str(account["id"]),
            "objectName": "CheckAccount",
            "additionalInformation": None,
            "create": account["create"],
            "update": account["update"],
            "sevClient": SEV_CLIENT,
            "name": account["name"],
            "type": account["type"],
            "importType": account.get("importType"),
            "currency": account.get("currency", "EUR"),
            "checkAccId": None,
            "pin": None,
            "defaultAccount": str(account.get("defaultAccount", "0")),
            "status": str(account.get("status", "100")),  # "100" active, "0" archived
            "translationCode": None,
            "bankServer": None,
            "balance": _num(sum(booked, Decimal(0))),
            "accountingNumber": None if number is None else str(number),
            "iban": account.get("iban"),
            "bic": account.get("bic"),
            "baseAccount": str(account.get("baseAccount", "0")),
            "priority": "0",
            "countryCode": None,
            "autoMapTransaction": "1",
            "autoSyncTransactions": "0",
            "lastSync": None,
        }

    def _list_check_accounts(self, request: Request) -> Response:
        rows = [self._render_check_account(a) for _, a in sorted(self.check_accounts.items())]
        return self._page(request, rows)

    def _get_check_account(self, request: Request) -> Response:
        account = self.check_accounts.get(int(request.params["id"]))
        if account is None:
            raise _not_found("CheckAccount", request.params["id"])
        return self._ok([self._render_check_account(account)])

    def _create_clearing_account(self, request: Request) -> Response:
        body = self._body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SevdeskApiError(422, "name is required")
        taken = {str(a.get("accountingNumber")) for a in self.check_accounts.values() if a.get("accountingNumber")}
        raw_number = body.get("accountingNumber")
        if raw_number is None:
            # Nullable per spec; sevDesk then picks the next free booking account ([JRS] payload.rs).
            number = str(max([int(n) for n in taken if n.isdigit()] + [1360]) + 1)
        else:
            number = str(_id_of(raw_number) if _id_of(raw_number) is not None else raw_number)
            if not number.isdigit():
                raise SevdeskApiError(422, f"Invalid value for accountingNumber: {raw_number!r}")
            if number in taken:
                # Must be unique among ALL check accounts (spec, pitfall 22).
                raise SevdeskApiError(422, f"The accounting number {number} is already used by another check account")
        account_id = self._allocate("CheckAccount")
        now = _now_iso()
        self.check_accounts[account_id] = {
            **_check_account(account_id, name.strip(), "offline", number),
            "create": now,
            "update": now,
        }
        return self._ok(self._render_check_account(self.check_accounts[account_id]), status=201)

    def _render_transaction(self, txn: dict[str, Any]) -> dict[str, Any]:
        # Keys, order and types of sevdesk-examples/sevdesk-rs_transaction.json and write_transaction_create.json;
        # ``targetTransaction`` (a transfer) would sit after ``enshrined``, and is left out like every empty reference.
        return {
            "id": str(txn["id"]),
            "objectName": "CheckAccountTransaction",
            "additionalInformation": None,
            "create": txn["create"],
            "update": txn["update"],
            "sevClient": SEV_CLIENT,
            "valueDate": txn["valueDate"],
            "entryDate": txn["valueDate"],
            "amount": _num(txn["amount"]),
            "feeAmount": None,
            "gvCode": None,
            "entryText": None,
            "primaNotaNo": None,
            "paymtPurpose": txn.get("paymtPurpose"),
            "payeePayerBankCode": None,
            "payeePayerAcctNo": None,
            "payeePayerName": txn.get("payeePayerName"),
            "checkAccount": _ref(txn["checkAccount"], "CheckAccount"),
            "status": txn["status"],
            "score": None,
            "compareHash": None,
            "enshrined": None,
            "obonoReceiptUuid": None,
            "externalId": None,
            "deletedAt": None,
            "restoredAt": None,
        }

    def _get_transaction(self, request: Request) -> Response:
        txn = self.transactions.get(int(request.params["id"]))
        if txn is None:
            # Verbatim the recorded answer to GET /CheckAccountTransaction/1 (error_404_code_151.json).
            raise _not_found("CheckAccountTransaction", request.params["id"])
        return self._ok([self._render_transaction(txn)])

    def _list_transactions(self, request: Request) -> Response:
        rows = sorted(self.transactions.values(), key=lambda t: t["id"])
        account_id = _id_of(request.query_value("checkAccount[id]"))
        if account_id is not None:
            rows = [t for t in rows if t["checkAccount"] == account_id]
        status = request.query_value("status")
        if status:
            rows = [t for t in rows if t["status"] == status]
        purpose = request.query_value("paymtPurpose")
        if purpose:  # a substring match ([JRS] README)
            rows = [t for t in rows if purpose.lower() in (t.get("paymtPurpose") or "").lower()]
        # isBooked is ignored, like every unknown filter ([GZ], docs §5).
        return self._page(request, [self._render_transaction(t) for t in rows])

    def _create_transaction(self, request: Request) -> Response:
        body = self._body(request)
        account_id = _id_of(body.get("checkAccount"))
        account = self.check_accounts.get(account_id) if account_id is not None else None
        if account is None:
            raise SevdeskApiError(422, "checkAccount is required")
        if account["type"] != "online":
            # Verbatim from the [JRS] fixture error_422_offline_account.json (pitfall 21).
            raise SevdeskApiError(
                422,
                "You can only create transactions on online checkaccounts. "
                "Use document bookAmount to create transactions on other types.",
            )
        txn_id = self._allocate("CheckAccountTransaction")
        now = _now_iso()
        self.transactions[txn_id] = {
            "id": txn_id,
            "checkAccount": account["id"],
            "amount": _decimal(body.get("amount"), "amount"),
            "valueDate": _to_berlin(_parse_moment(body.get("valueDate"), "valueDate")[0]).isoformat(),
            "paymtPurpose": body.get("paymtPurpose"),
            "payeePayerName": body.get("payeePayerName"),
            "status": str(body.get("status", "100")),
            "create": now,
            "update": now,
        }
        return self._ok(self._render_transaction(self.transactions[txn_id]), status=201)

    # -- static data ---------------------------------------------------------------------------------------------
    def _list_countries(self, request: Request) -> Response:
        rows = self.countries
        code = request.query_value("code")
        if code:
            rows = [c for c in rows if str(c["code"]).lower() == code.lower()]
        return self._page(
            request,
            [
                {
                    "id": str(c["id"]),
                    "objectName": "StaticCountry",
                    "code": c["code"],
                    "name": c["name"],
                    "nameEn": c.get("nameEn"),
                    "translationCode": c.get("translationCode") or f"COUNTRY_{str(c['code']).upper()}",
                    "locale": c.get("locale"),
                    "priority": str(c.get("priority", 100)),
                }
                for c in rows
            ],
        )

    def _list_categories(self, request: Request) -> Response:
        rows = self.categories
        object_type = request.query_value("objectType")
        if object_type:
            rows = [c for c in rows if c["objectType"] == object_type]
        return self._page(
            request,
            [
                {
                    "id": str(c["id"]),
                    "objectName": "Category",
                    "create": SEED_TIME,
                    "update": SEED_TIME,
                    "name": c["name"],
                    "objectType": c["objectType"],
                    "priority": "0",
                    "code": None,
                    "color": None,
                    "postingAccount": None,
                }
                for c in rows
            ],
        )

"""The base of the sevDesk sandbox's resource mixins: the account's state and the request/answer helpers.

The state is declared here, so every mixin type-checks against it; ``SevdeskSandbox._load_seed`` sets it.
"""

from __future__ import annotations

from typing import Any

from local.sandbox.base import Request, Response, SandboxServer
from local.sandbox.sevdesk.wire import SevdeskApiError


class SevdeskCore(SandboxServer):
    """A sevDesk account's data, shared by the resource mixins (``accounts``, ``vouchers``, ``payments``,
    ``contacts``); handlers run under ``self.lock``."""

    bookkeeping_version: str  # "1.0" or "2.0"; may be switched at runtime
    _delivery_after_voucher_date: str
    _negative_vouchers: str
    _next_ids: dict[str, int]
    vouchers: dict[int, dict[str, Any]]
    positions: dict[int, dict[str, Any]]
    bookings: list[dict[str, Any]]
    documents: dict[int, dict[str, Any]]
    temp_files: dict[str, dict[str, Any]]
    contacts: dict[int, dict[str, Any]]
    addresses: dict[int, dict[str, Any]]
    communication_ways: dict[int, dict[str, Any]]
    check_accounts: dict[int, dict[str, Any]]
    transactions: dict[int, dict[str, Any]]
    guidance: list[dict[str, Any]]
    countries: list[dict[str, Any]]
    categories: list[dict[str, Any]]

    @property
    def delivery_after_voucher_date(self) -> str:
        return self._delivery_after_voucher_date

    @delivery_after_voucher_date.setter
    def delivery_after_voucher_date(self, value: str) -> None:
        if value not in ("accept", "reject"):
            raise ValueError("delivery_after_voucher_date must be 'accept' or 'reject'")
        self._delivery_after_voucher_date = value

    @property
    def negative_vouchers(self) -> str:
        return self._negative_vouchers

    @negative_vouchers.setter
    def negative_vouchers(self, value: str) -> None:
        if value not in ("accept", "reject"):
            raise ValueError("negative_vouchers must be 'accept' or 'reject'")
        self._negative_vouchers = value

    def _allocate(self, kind: str) -> int:
        value = self._next_ids[kind]
        self._next_ids[kind] = value + 1
        return value

    # -- request helpers -----------------------------------------------------------------------------------------
    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError as exc:
            raise SevdeskApiError(400, "Bad request: the body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise SevdeskApiError(400, "Bad request: the body must be a JSON object")
        return body

    @staticmethod
    def _page(request: Request, rows: list[dict[str, Any]]) -> Response:
        """limit/offset/countAll (docs §1); a bad value is ignored like any unknown filter."""
        limit_text, offset_text = request.query_value("limit"), request.query_value("offset")
        limit = int(limit_text) if limit_text and limit_text.isdigit() else 100
        offset = int(offset_text) if offset_text and offset_text.isdigit() else 0
        page = rows[offset : offset + max(1, min(limit, 1000))]
        body: dict[str, Any] = {"objects": page}
        if (request.query_value("countAll") or "").lower() in ("true", "1"):
            body = {"total": len(rows), "objects": page}
        return Response(200, body)

    @staticmethod
    def _ok(objects: Any, status: int = 200) -> Response:
        return Response(status, {"objects": objects})

"""Paying vouchers: bookAmount (a VoucherLog, and on offline accounts the transaction it creates) and resetToOpen."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from local.sandbox.base import Request, Response
from local.sandbox.sevdesk.contacts import _contact_display_name
from local.sandbox.sevdesk.vouchers import VouchersMixin
from local.sandbox.sevdesk.wire import (
    BOOKING_TYPES,
    SETTLING_BOOKING_TYPES,
    SEV_CLIENT,
    SevdeskApiError,
    _decimal,
    _id_of,
    _not_found,
    _now_iso,
    _num,
    _parse_document_date,
    _ref,
)


class PaymentsMixin(VouchersMixin):
    """``PUT /Voucher/{id}/bookAmount`` and ``PUT /Voucher/{id}/resetToOpen``; built on the vouchers they pay."""

    # -- vouchers: bookAmount ----------------------------------------------------------------------------------------
    def _book_amount(self, request: Request) -> Response:
        voucher = self.vouchers.get(int(request.params["id"]))
        if voucher is None:
            raise _not_found("Voucher", request.params["id"])
        body = self._body(request)
        amount = _decimal(body.get("amount"), "amount")
        if amount == 0:
            raise SevdeskApiError(422, "amount must not be 0")
        booked_at = _parse_document_date(body.get("date"), "date")
        booking_type = body.get("type")
        if not isinstance(booking_type, str) or booking_type not in BOOKING_TYPES:
            raise SevdeskApiError(422, f"Invalid booking type {booking_type!r}")
        if booking_type == "CF" and self.bookkeeping_version == "2.0":
            raise SevdeskApiError(422, "The booking type CF is not supported with sevdesk-Update 2.0")

        account_id = _id_of(body.get("checkAccount"))
        if account_id is None:
            raise SevdeskApiError(422, "checkAccount is required")
        account = self.check_accounts.get(account_id)
        if account is None:
            raise _not_found("CheckAccount", account_id)
        if str(account.get("status", "100")) != "100":
            raise SevdeskApiError(422, f"The check account {account_id} is archived")
        transaction_ref = body.get("checkAccountTransaction")
        transaction: dict[str, Any] | None = None
        if account["type"] == "online":
            # Online accounts need the transaction to link (spec bookAmount, docs §5).
            txn_id = _id_of(transaction_ref)
            if txn_id is None:
                raise SevdeskApiError(422, "A checkAccountTransaction is required to book on an online check account")
            transaction = self.transactions.get(txn_id)
            if transaction is None:
                raise _not_found("CheckAccountTransaction", txn_id)
            if transaction["checkAccount"] != account_id:
                raise SevdeskApiError(422, f"The transaction {txn_id} does not belong to check account {account_id}")
            if transaction["status"] == "400":
                raise SevdeskApiError(422, f"The transaction {txn_id} is already booked")
        elif transaction_ref not in (None, {}, ""):
            # Offline/clearing accounts and registers create their transaction themselves (docs §5, pitfall 21).
            raise SevdeskApiError(
                422,
                "Do not provide a checkAccountTransaction for offline check accounts or cash "
                "registers; the transaction is created automatically",
            )

        if voucher["status"] == 50:
            raise SevdeskApiError(422, "A draft can not be paid")
        if voucher["status"] == 1000:
            raise SevdeskApiError(422, "The voucher is already paid", code=751)
        if voucher["status"] not in (100, 750):
            raise SevdeskApiError(422, f"A voucher in status {voucher['status']} can not be paid")

        # The amount carries the sign of the money flow: + for revenue (D), - for expense (C) (docs §5, pitfall 2).
        # A voucher that adds up to less than 0 (a credit note) is settled by money going the other way: its
        # progress is measured in the direction of its sum (sandbox decision; no recorded answer shows one).
        effective = amount if voucher["creditDebit"] == "D" else -amount
        direction = -1 if voucher["sumGross"] < 0 else 1
        paid = voucher["paidAmount"] + effective
        if paid * direction > voucher["sumGross"] * direction:
            paid = voucher["sumGross"]  # an over-booking is accepted and paidAmount capped ([JRS])
        settled = effective * direction > 0 and (
            booking_type in SETTLING_BOOKING_TYPES or paid * direction >= voucher["sumGross"] * direction
        )
        from_status = voucher["status"]
        to_status = 1000 if settled else 750
        booking_date = booked_at.replace(microsecond=0).isoformat()
        now = _now_iso()
        created_transaction = transaction is None
        if transaction is None:
            txn_id = self._allocate("CheckAccountTransaction")
            transaction = {
                "id": txn_id,
                "checkAccount": account_id,
                "amount": amount,
                "valueDate": booking_date,
                "paymtPurpose": voucher["description"],
                "payeePayerName": voucher["supplierName"] or _contact_display_name(self.contacts, voucher["supplier"]),
                "status": "400",
                "create": now,
                "update": now,
            }
            self.transactions[txn_id] = transaction
        else:
            transaction["status"] = "400"
            transaction["update"] = now
        # payDate is the date of the booking that settled the voucher; a partially paid voucher has none
        # (sevdesk-examples/sevdesk-rs_voucher_list.json: status 750 with payDate null, 1000 with a payDate).
        pay_date = booking_date if to_status == 1000 else None
        voucher.update(paidAmount=paid, status=to_status, payDate=pay_date, update=now)
        log = {
            "id": self._allocate("VoucherLog"),
            "voucher": voucher["id"],
            "checkAccount": account_id,
            "transaction": transaction["id"],
            "amount": amount,
            # The VoucherLog's amountPayed is what the voucher was paid: the sent amount signed by the voucher's
            # direction (write_voucher_book_amount.json: -0.45 on an expense voucher answers "0.45").
            "amountPayed": effective,
            "createdTransaction": created_transaction,
            "type": booking_type,
            "fromStatus": from_status,
            "toStatus": to_status,
            "bookingDate": booking_date,
            "create": now,
        }
        self.bookings.append(log)
        return self._ok(self._render_voucher_log(log))

    @staticmethod
    def _render_voucher_log(log: dict[str, Any]) -> dict[str, Any]:
        # Shape of the [JRS] fixture write_voucher_book_amount.json.
        return {
            "id": str(log["id"]),
            "objectName": "VoucherLog",
            "additionalInformation": None,
            "create": log["create"],
            "voucher": _ref(log["voucher"], "Voucher"),
            "fromStatus": str(log["fromStatus"]),
            "toStatus": str(log["toStatus"]),
            "amountPayed": _num(log.get("amountPayed", log["amount"])),
            "bookingDate": log["bookingDate"],
            "sevClient": SEV_CLIENT,
        }

    def _reset_to_open(self, request: Request) -> Response:
        """``PUT /Voucher/{id}/resetToOpen``: back to open (100), payments unlinked (docs §3); answers the voucher as a
        single object with ``payDate`` null (write_voucher_reset_to_open.json)."""
        voucher = self.vouchers.get(int(request.params["id"]))
        if voucher is None:
            raise _not_found("Voucher", request.params["id"])
        if voucher["status"] == 50:
            raise SevdeskApiError(422, "A draft can not be reset to open; save it with status 100 instead")
        now = _now_iso()
        for booking in [b for b in self.bookings if b["voucher"] == voucher["id"]]:
            transaction = self.transactions.get(booking["transaction"])
            if transaction is None:
                continue
            if booking.get("createdTransaction"):
                del self.transactions[transaction["id"]]  # the booking's own transaction goes with it
            else:
                transaction.update(status="100", update=now)  # an online transaction is unlinked, not deleted
        self.bookings = [b for b in self.bookings if b["voucher"] != voucher["id"]]
        voucher.update(status=100, paidAmount=Decimal(0), payDate=None, update=now)
        return self._ok(self._render_voucher(voucher))

"""The order export record and its states (architecture.md §3-4)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ExportState(StrEnum):
    PENDING = "PENDING"
    EXPORTING = "EXPORTING"
    EXPORTED = "EXPORTED"
    SKIPPED = "SKIPPED"  # with a reason: no invoice yet, no longer matches the filters, ...
    FAILED = "FAILED"  # retryable: attempts and last error
    NEEDS_ATTENTION = "NEEDS_ATTENTION"  # not retryable without a change: a 422, a missing mapping, a tax case
    HANDLED = "HANDLED"  # a bookkeeper booked it by hand and said so (who, when, why): never exported, never alarmed


# Where an export may start from. EXPORTING with an expired lease is claimable too (a worker died mid-way).
CLAIMABLE = (ExportState.PENDING, ExportState.FAILED)


@dataclass
class Steps:
    """What the export has done so far; each step is recorded before the next starts."""

    contact_id: str | None = None
    file_name: str | None = None
    file_uploaded_at: str | None = None
    voucher_id: str | None = None
    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)  # payment key -> {amount, account, at}
    booking_attempted: list[str] = field(default_factory=list)
    tagged: bool = False
    # Writes whose answer was lost: "voucher" or "booking:<payment key>" -> {"since": epoch, "searches": n}. Such a
    # write may still commit later; it is written again only after searches spread over a window found nothing.
    unknown: dict[str, dict[str, Any]] = field(default_factory=dict)
    # sevDesk refused a delivery date after the voucher date: the voucher date is the delivery date (noted).
    delivery_date_is_voucher_date: bool = False

    def to_item(self) -> dict[str, Any]:
        return {
            "contactId": self.contact_id,
            "fileName": self.file_name,
            "fileUploadedAt": self.file_uploaded_at,
            "voucherId": self.voucher_id,
            "bookings": json.dumps(self.bookings, sort_keys=True),
            "bookingAttempted": list(self.booking_attempted),
            "tagged": self.tagged,
            "unknown": json.dumps(self.unknown, sort_keys=True),
            "deliveryDateIsVoucherDate": self.delivery_date_is_voucher_date,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> Steps:
        item = item or {}
        return cls(
            contact_id=item.get("contactId"),
            file_name=item.get("fileName"),
            file_uploaded_at=item.get("fileUploadedAt"),
            voucher_id=item.get("voucherId"),
            bookings=json.loads(item.get("bookings") or "{}"),
            booking_attempted=list(item.get("bookingAttempted") or []),
            tagged=bool(item.get("tagged")),
            unknown=json.loads(item.get("unknown") or "{}"),
            delivery_date_is_voucher_date=bool(item.get("deliveryDateIsVoucherDate")),
        )


@dataclass
class OrderRecord:
    connection_id: str
    order_id: int
    state: ExportState
    order: dict[str, Any]  # the Billbee order as listed (raw API JSON)
    invoice: dict[str, Any] | None = None  # the Billbee invoice-list entry with positions, when known
    invoice_number: str | None = None  # as printed by Billbee: the voucher's duplicate key, fixed once
    invoice_number_source: str | None = None  # invoiceList | createInvoice | derived (prefix + number + postfix)
    steps: Steps = field(default_factory=Steps)
    attempts: int = 0
    last_error: str | None = None
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    set_tag: bool = True
    origin: str = "poll"  # poll | manual | retry
    handled: dict[str, str] | None = None  # {"by", "at", "note"} once a person marked it as booked by hand
    # A credit note's original invoice: {"orderId", "invoiceNumber", "voucherId"} (whatever Billbee lets us find).
    credit_note_of: dict[str, Any] | None = None
    lease_owner: str | None = None
    lease_until: int = 0
    created_at: str = ""
    updated_at: str = ""
    enqueued_at: str | None = None
    data_hash: str = ""
    version: int = 0

    def public_dict(self) -> dict[str, Any]:
        """What the API and the report show."""
        return {
            "connectionId": self.connection_id,
            "orderId": self.order_id,
            "state": self.state.value,
            "invoiceNumber": self.invoice_number,
            "invoiceNumberSource": self.invoice_number_source,
            "voucherId": self.steps.voucher_id,
            "contactId": self.steps.contact_id,
            "fileName": self.steps.file_name,
            "bookings": self.steps.bookings,
            "tagged": self.steps.tagged,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "reason": self.reason,
            "notes": self.notes,
            "origin": self.origin,
            "handled": self.handled,
            "creditNoteOf": self.credit_note_of,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


def data_hash(order: dict[str, Any], invoice: dict[str, Any] | None) -> str:
    """A hash of what the voucher is made of, ignoring tags and modification times (tagging changes those)."""
    relevant = {k: v for k, v in order.items() if k not in ("Tags", "LastModifiedAt", "UpdatedAt", "History")}
    payload = json.dumps({"order": relevant, "invoice": invoice}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]

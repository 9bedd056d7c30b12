"""The request bodies the connector sends to sevDesk (bookkeeping 2.0), built from the bookkeeping plans: the wire
format in one place, beside the client; the bookkeeping module stays domain-only."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from connector.billbee.models import BILLBEE_ZONE
from connector.bookkeeping.voucher import ContactPlan, PlannedPayment, VoucherPlan

CUSTOMER_CATEGORY_ID = 3  # "Kunde" (sevdesk-api.md §7)
WORK_EMAIL_KEY = 2
INVOICE_ADDRESS_CATEGORY_ID = 47  # "Rechnungsadresse"


def german_date(day: date) -> str:
    """``dd.mm.yyyy``: the form working clients send for voucher dates (ERRATA sevDesk 3)."""
    return day.strftime("%d.%m.%Y")


def _number(value: Decimal) -> int | float:
    """A Decimal as a JSON number (2 decimals at most here, so float is exact in its repr)."""
    return int(value) if value == value.to_integral_value() else float(value)


def save_voucher_body(plan: VoucherPlan, *, filename: str | None, contact_id: str | None) -> dict[str, Any]:
    """The ``POST /Voucher/Factory/saveVoucher`` body for bookkeeping 2.0 (sevdesk-api.md §3)."""
    voucher: dict[str, Any] = {
        "objectName": "Voucher",
        "mapAll": True,
        "voucherDate": german_date(plan.voucher_date),
        "deliveryDate": german_date(plan.delivery_date),
        "description": plan.invoice_number,
        "status": 100,
        "creditDebit": "D",  # revenue; "C" would be an expense (sevdesk-pitfalls #1)
        "voucherType": "VOU",
        "taxRule": {"id": str(plan.tax_rule), "objectName": "TaxRule"},
        "currency": plan.currency,
    }
    if contact_id is not None:
        voucher["supplier"] = {"id": contact_id, "objectName": "Contact"}
    else:
        voucher["supplierName"] = plan.supplier_name
    return {
        "voucher": voucher,
        "voucherPosSave": [
            {
                "objectName": "VoucherPos",
                "mapAll": True,
                "accountDatev": {"id": str(p.account_datev_id), "objectName": "AccountDatev"},
                "taxRate": _number(p.tax_rate),
                "net": False,
                "sumGross": _number(p.sum_gross),
                "comment": p.comment,
                "isAsset": False,
            }
            for p in plan.positions
        ],
        "voucherPosDelete": None,
        "filename": filename,
    }


def book_amount_body(payment: PlannedPayment) -> dict[str, Any]:
    """``PUT /Voucher/{id}/bookAmount`` on an offline account: no checkAccountTransaction (sevdesk-api.md §5)."""
    return {
        # The sign is the money's direction: positive flows in on a revenue voucher, negative is a refund paid out on
        # a credit note's voucher (sevdesk-pitfalls #2).
        "amount": _number(payment.amount),
        # Billbee's naive times are Berlin wall time; RFC 3339 without fractions, as working clients send (ERRATA
        # sevDesk 3: fractional seconds are unproven).
        "date": payment.date.replace(tzinfo=BILLBEE_ZONE, microsecond=0).isoformat(),
        "type": payment.booking_type,
        "checkAccount": {"id": payment.check_account_id, "objectName": "CheckAccount"},
        "createFeed": True,
    }


def contact_body(plan: ContactPlan) -> dict[str, Any]:
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
    return body


def contact_address_body(contact_id: str, plan: ContactPlan, country_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "contact": {"id": contact_id, "objectName": "Contact"},
        "street": plan.street,
        "zip": plan.zip,
        "city": plan.city,
        "name": plan.organisation_name or " ".join(p for p in (plan.first_name, plan.last_name) if p),
        "category": {"id": INVOICE_ADDRESS_CATEGORY_ID, "objectName": "Category"},
    }
    if country_id is not None:
        body["country"] = {"id": country_id, "objectName": "StaticCountry"}
    return body


def email_body(contact_id: str, email: str) -> dict[str, Any]:
    return {
        "contact": {"id": contact_id, "objectName": "Contact"},
        "type": "EMAIL",
        "value": email,
        "key": {"id": WORK_EMAIL_KEY, "objectName": "CommunicationWayKey"},
        "main": True,
    }

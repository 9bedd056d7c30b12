"""sevDesk's answers as the connector reads them: typed once here, so no raw dict reaches the pipeline.

The live API sends scalars as strings (``"id": "123"``, ``"status": "1000"``), ``paidAmount`` as a number, and
``null`` for many fields (ERRATA sevDesk 10, 11; ``../shared/specs/sevdesk-examples/``): the models read either form.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from connector.money import to_decimal

# ReceiptGuidance names the allowed rates as words (sevdesk-api.md §4).
RATE_NAMES = {
    Decimal(0): "ZERO",
    Decimal(5): "FIVE",
    Decimal(7): "SEVEN",
    Decimal(16): "SIXTEEN",
    Decimal(19): "NINETEEN",
}
ACTIVE_ACCOUNT_STATUS = "100"  # CheckAccount status: 100 active, 0 archived (sevdesk-api.md §5)
BERLIN = ZoneInfo("Europe/Berlin")


def _text(value: Any) -> Any:
    return None if value is None else str(value)


Text = Annotated[str | None, BeforeValidator(_text)]


class _Answer(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class CheckAccount(_Answer):
    """A payment account: ``online`` (bank, PayPal import), ``offline`` (clearing) or ``register`` (cash)."""

    id: int
    name: Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))] = ""
    type: Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))] = ""
    status: Text = None

    @property
    def is_offline(self) -> bool:
        # Bookings without a bank transaction are only possible on offline (clearing) accounts and registers.
        return self.type in ("offline", "register")

    @property
    def is_active(self) -> bool:
        # An archived account (status 0) takes no bookings; an answer without status is taken as active.
        return self.status is None or self.status == ACTIVE_ACCOUNT_STATUS


class VoucherState(_Answer):
    """What the connector reads of a voucher: its number, status and the amounts that tell whether it is paid."""

    id: Annotated[str, BeforeValidator(str)]
    description: Text = None
    status: Text = None
    sum_gross: Text = None
    paid_amount: Text = None
    credit_debit: Text = None


class AllowedTaxRule(_Answer):
    id: int
    name: str | None = None
    tax_rates: list[str] = Field(default_factory=list)


class RevenueAccount(_Answer):
    """One account of ``GET /ReceiptGuidance/forRevenue``: the tax rules and rates it allows (sevdesk-pitfalls #9:
    anything else is a 422 when the voucher is saved)."""

    account_datev_id: int
    account_number: Text = None
    account_name: str | None = None
    allowed_tax_rules: list[AllowedTaxRule] = Field(default_factory=list)
    allowed_receipt_types: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.account_number or ''} {self.account_name or ''}".strip() or str(self.account_datev_id)

    def refusal(self, tax_rule: int, rate: Decimal) -> str | None:
        """Why this account cannot take revenue under ``tax_rule`` at ``rate``, or None when it can."""
        if "REVENUE" not in self.allowed_receipt_types:
            return f"account {self.label} does not accept revenue"
        rule = next((r for r in self.allowed_tax_rules if r.id == tax_rule), None)
        if rule is None:
            return f"account {self.label} does not allow tax rule {tax_rule}"
        if RATE_NAMES.get(rate.normalize()) not in rule.tax_rates:
            return f"account {self.label} does not allow {format(rate.normalize(), 'f')} % under tax rule {tax_rule}"
        return None

    def allows(self, tax_rule: int, rate: Decimal) -> bool:
        return self.refusal(tax_rule, rate) is None


class Booking(_Answer):
    """``PUT /Voucher/{id}/bookAmount`` answers a VoucherLog (sevdesk-examples: write_voucher_book_amount)."""

    id: Text = None
    from_status: Text = None
    to_status: Text = None
    amount_payed: Text = None  # sevDesk's spelling


def _reference_id(value: Any) -> Any:
    """A reference such as ``{"id": "14", "objectName": "TaxRule"}`` as its id (ids come as strings or numbers,
    ERRATA sevDesk 4, 10); a missing or empty reference as None."""
    if isinstance(value, dict):
        value = value.get("id")
    return None if value is None or value == "" else value


def _amount(value: Any) -> Any:
    # Amounts arrive as strings without trailing zeros ("87.49", "30") or, for paidAmount, as JSON numbers.
    return Decimal(0) if value is None or value == "" else to_decimal(value)


Amount = Annotated[Decimal, BeforeValidator(_amount)]
ReferenceId = Annotated[int | None, BeforeValidator(_reference_id)]


class RevenueVoucher(VoucherState):
    """A voucher as a list (``GET /Voucher``) or by-id read shows it, with what a reconciliation compares: its date,
    tax rule and sums (sevdesk-api.md §13; sevdesk-examples voucher_list.json, voucher.json). The supplier's name is
    not read: a report keeps no personal data."""

    voucher_date: Text = None  # Berlin midnight with offset, "2026-08-31T00:00:00+02:00" (ERRATA sevDesk 3)
    tax_rule: ReferenceId = None
    sum_net: Text = None
    sum_tax: Text = None

    @property
    def voucher_day(self) -> date | None:
        """The voucher date as the Berlin calendar day it names (sevDesk answers midnight in Berlin time)."""
        if not self.voucher_date:
            return None
        try:
            moment = datetime.fromisoformat(self.voucher_date)
        except ValueError:
            return None  # not a date sevDesk sends; the voucher then counts as undated
        if moment.tzinfo is not None:
            moment = moment.astimezone(BERLIN)
        return moment.date()


class VoucherPosition(_Answer):
    """One ``GET /VoucherPos`` row (sevdesk-examples voucher_positions.json): sevDesk's own net, tax and gross of the
    position, whichever of the two it was saved with (``net``)."""

    id: Annotated[str, BeforeValidator(str)]
    voucher: ReferenceId = None
    tax_rate: Amount = Decimal(0)
    net: Text = None
    sum_net: Amount = Decimal(0)
    sum_tax: Amount = Decimal(0)
    sum_gross: Amount = Decimal(0)
    account_datev: ReferenceId = None

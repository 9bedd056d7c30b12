"""The connection settings: every field of Billbee's three tabs (mission.md), defined once.

The same model is the HTTP API's request body, the item stored in DynamoDB (without credentials) and what the local
runner reads from ``--connection``. Credentials are write-only: they go to Secrets Manager and are never dumped.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from connector.money import rate_key
from connector.observability import redact_secret

CONNECTION_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
DEFAULT_EXPORT_TAG = "Sevdesk"
# Billbee's order states ([S] allows 1-17; billbee-api.md §7). Ids outside are unknown.
KNOWN_ORDER_STATES = frozenset(range(1, 18))
# Billbee's payment type ids ([S] allows 1-4, 6, 19-150; billbee-api.md §7).
KNOWN_PAYMENT_METHODS = frozenset({1, 2, 3, 4, 6, *range(19, 151)})


class _Model(BaseModel):
    # hide_input_in_errors: a validation error's text must never carry a value: credentials sit in these models.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, hide_input_in_errors=True
    )


class PaymentReconciliation(StrEnum):
    BILLBEE = "billbee"  # vouchers are booked as paid (bookAmount) on the mapped offline account
    SEVDESK = "sevdesk"  # vouchers stay open for sevDesk's own bank matching


class CreditNotes(StrEnum):
    VOUCHER = "voucher"  # each Stornorechnung or Gutschrift becomes a revenue voucher with negative positions
    OFF = "off"  # credit notes are left to the bookkeeper (they are listed SKIPPED with that reason)


class VoucherDateSource(StrEnum):
    INVOICE = "invoice"
    PAYMENT = "payment"
    ORDER = "order"


class GeneralSettings(_Model):
    """Tab 1: start date, shops, order states."""

    start_date: date
    # Empty = every shop. Manual orders have no shop (Seller.BillbeeShopId is null) and follow include_manual_orders.
    shop_ids: list[int] = Field(default_factory=list)
    include_manual_orders: bool = True
    # The state *at the time of the transfer* counts (Billbee help text).
    order_state_ids: list[int] = Field(min_length=1)

    @field_validator("order_state_ids")
    @classmethod
    def _known_states(cls, value: list[int]) -> list[int]:
        unknown = sorted(set(value) - KNOWN_ORDER_STATES)
        if unknown:
            raise ValueError(f"unknown Billbee order state id(s) {unknown}; known ids are 1-17")
        return sorted(set(value))

    @field_validator("start_date")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > datetime.now(UTC).date():
            raise ValueError(f"start date {value.isoformat()} is in the future")
        return value


class SevdeskSettings(_Model):
    """Tab 2: payment reconciliation, contacts, default payments, voucher date."""

    payment_reconciliation: PaymentReconciliation = PaymentReconciliation.BILLBEE
    create_contacts: bool = False
    book_unassigned_payments_as_default: bool = False
    default_check_account_id: int | None = None
    voucher_date: VoucherDateSource = VoucherDateSource.INVOICE
    credit_notes: CreditNotes = CreditNotes.VOUCHER

    @model_validator(mode="after")
    def _default_account_needed(self) -> SevdeskSettings:
        if (
            self.book_unassigned_payments_as_default
            and self.payment_reconciliation is PaymentReconciliation.BILLBEE
            and self.default_check_account_id is None
        ):
            raise ValueError(
                "defaultCheckAccountId is required when bookUnassignedPaymentsAsDefault is on "
                "and payments are reconciled in Billbee"
            )
        return self


class PaymentAccount(_Model):
    payment_method: int
    check_account_id: int

    @field_validator("payment_method")
    @classmethod
    def _known_method(cls, value: int) -> int:
        if value not in KNOWN_PAYMENT_METHODS:
            raise ValueError(f"unknown Billbee payment method id {value}")
        return value


class RevenueAccount(_Model):
    tax_rule: int
    tax_rate: Annotated[Decimal, Field(ge=0, le=100)]
    account_datev_id: int


class AccountSettings(_Model):
    """Tab 3: payment method -> offline sevDesk account; (tax rule, rate) -> revenue account."""

    payment_accounts: list[PaymentAccount] = Field(default_factory=list)
    revenue_accounts: list[RevenueAccount] = Field(default_factory=list)

    @field_validator("payment_accounts")
    @classmethod
    def _one_account_per_method(cls, value: list[PaymentAccount]) -> list[PaymentAccount]:
        seen: set[int] = set()
        for mapping in value:
            if mapping.payment_method in seen:
                raise ValueError(f"payment method {mapping.payment_method} is mapped twice")
            seen.add(mapping.payment_method)
        return value

    @field_validator("revenue_accounts")
    @classmethod
    def _one_account_per_rule_rate(cls, value: list[RevenueAccount]) -> list[RevenueAccount]:
        seen: set[tuple[int, str]] = set()
        for mapping in value:
            key = (mapping.tax_rule, rate_key(mapping.tax_rate))
            if key in seen:
                raise ValueError(f"tax rule {key[0]} at {key[1]} % is mapped twice")
            seen.add(key)
        return value

    def check_account_for(self, payment_method: int | None) -> int | None:
        for mapping in self.payment_accounts:
            if mapping.payment_method == payment_method:
                return mapping.check_account_id
        return None

    def revenue_account_for(self, tax_rule: int, tax_rate: Decimal) -> int | None:
        for mapping in self.revenue_accounts:
            if mapping.tax_rule == tax_rule and mapping.tax_rate == tax_rate:
                return mapping.account_datev_id
        return None


_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


class Credentials(_Model):
    """Write-only: stored in Secrets Manager, never in DynamoDB, never logged or returned.

    A credential pasted with spaces or a line break around it is trimmed (a header cannot carry them, and httpx would
    put the whole value into its error message); one with a space or a control character inside is refused, with a
    message that names the field and never the value."""

    billbee_api_key: SecretStr = Field(min_length=1)
    billbee_username: SecretStr = Field(min_length=1)
    billbee_api_password: SecretStr = Field(min_length=1)
    sevdesk_api_token: SecretStr = Field(min_length=1)

    @field_validator("billbee_api_key", "billbee_username", "billbee_api_password", "sevdesk_api_token", mode="before")
    @classmethod
    def _trimmed(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str):
            raise ValueError("must be a string")  # noqa: TRY004 - pydantic turns ValueError into a field problem
        text = text.strip()
        if not text:
            raise ValueError("must not be empty")
        if _CONTROL_OR_SPACE.search(text):
            raise ValueError("must not contain spaces, line breaks or control characters (was it pasted whole?)")
        return text

    @field_validator("billbee_api_key", "sevdesk_api_token", mode="after")
    @classmethod
    def _ascii(cls, value: SecretStr) -> SecretStr:
        # Both travel in an HTTP header, which carries ASCII only (httpx raises UnicodeEncodeError otherwise);
        # Billbee's keys and sevDesk's tokens are hex or base64. The user name and password go base64-encoded.
        if not value.get_secret_value().isascii():
            raise ValueError("must contain only ASCII letters, digits and punctuation (was something else pasted?)")
        return value

    @model_validator(mode="after")
    def _never_logged(self) -> Credentials:
        for value in self.as_secret_json().values():
            redact_secret(value)
            redact_secret(json.dumps(value)[1:-1])  # as it appears inside a JSON log line
        return self

    def as_secret_json(self) -> dict[str, str]:
        return {
            "billbeeApiKey": self.billbee_api_key.get_secret_value(),
            "billbeeUsername": self.billbee_username.get_secret_value(),
            "billbeeApiPassword": self.billbee_api_password.get_secret_value(),
            "sevdeskApiToken": self.sevdesk_api_token.get_secret_value(),
        }


class ConnectionSettings(_Model):
    connection_id: Annotated[str, Field(pattern=CONNECTION_ID_PATTERN)]
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    enabled: bool = True
    general: GeneralSettings
    sevdesk: SevdeskSettings = Field(default_factory=SevdeskSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    export_tag: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = (
        DEFAULT_EXPORT_TAG
    )
    credentials: Credentials | None = None

    @field_validator("export_tag")
    @classmethod
    def _tag_text(cls, value: str) -> str:
        if not re.fullmatch(r"[\w .\-äöüÄÖÜß]+", value):
            raise ValueError("export tag may contain letters, digits, spaces, '.', '-' and '_' only")
        return value.strip()

    def public_dict(self) -> dict[str, Any]:
        """The settings as JSON, without credentials (for DynamoDB, the API's GET and reports)."""
        return self.model_dump(mode="json", by_alias=True, exclude={"credentials"})

    def without_credentials(self) -> ConnectionSettings:
        return self.model_copy(update={"credentials": None})

"""The connection settings: every field of Billbee's three tabs (mission.md), defined once.

The same model is the HTTP API's request body, the item stored in DynamoDB (without credentials) and what the local
runner reads from ``--connection``. Credentials are write-only: they go to Secrets Manager and are never dumped.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from connector.money import rate_key

CONNECTION_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
DEFAULT_EXPORT_TAG = "Sevdesk"
# Billbee's order states ([S] allows 1-17; billbee-api.md §7). Ids outside are unknown.
KNOWN_ORDER_STATES = frozenset(range(1, 18))
# Billbee's payment type ids ([S] allows 1-4, 6, 19-150; billbee-api.md §7).
KNOWN_PAYMENT_METHODS = frozenset({1, 2, 3, 4, 6, *range(19, 151)})


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class PaymentReconciliation(StrEnum):
    BILLBEE = "billbee"  # vouchers are booked as paid (bookAmount) on the mapped offline account
    SEVDESK = "sevdesk"  # vouchers stay open for sevDesk's own bank matching


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


class Credentials(_Model):
    """Write-only: stored in Secrets Manager, never in DynamoDB, never logged or returned."""

    billbee_api_key: SecretStr = Field(min_length=1)
    billbee_username: SecretStr = Field(min_length=1)
    billbee_api_password: SecretStr = Field(min_length=1)
    sevdesk_api_token: SecretStr = Field(min_length=1)

    def as_secret_json(self) -> dict[str, str]:
        return {
            "billbeeApiKey": self.billbee_api_key.get_secret_value(),
            "billbeeUsername": self.billbee_username.get_secret_value(),
            "billbeeApiPassword": self.billbee_api_password.get_secret_value(),
            "sevdeskApiToken": self.sevdesk_api_token.get_secret_value(),
        }


class ConnectionSettings(_Model):
    connection_id: Annotated[str, Field(pattern=CONNECTION_ID_PATTERN)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    enabled: bool = True
    general: GeneralSettings
    sevdesk: SevdeskSettings = Field(default_factory=SevdeskSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    export_tag: Annotated[str, Field(min_length=1, max_length=100)] = DEFAULT_EXPORT_TAG
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

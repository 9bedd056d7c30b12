"""Billbee API models: the fields the connector uses, parsed leniently.

Billbee's JSON differs from its own spec (billbee-pitfalls.md #5, #12, #13): spec non-nullables arrive as null,
timestamps are naive with 0-7 fractional digits, enums are open-ended, numbers carry up to 7 decimals. So every field
is optional, dates are parsed by hand, money is Decimal. Fields the connector does not use are dropped: an order is
stored in its export record as these models dump it, and a 600 KB seller comment or an order's history must not
push a record past DynamoDB's 400 KB.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_pascal

from connector.money import to_decimal

BILLBEE_ZONE = ZoneInfo("Europe/Berlin")
_TIMESTAMP = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)"
    r"(?:\.(?P<frac>\d{1,7}))?(?P<zone>Z|[+-]\d{2}:?\d{2})?$"
)


def parse_billbee_datetime(value: Any) -> datetime | None:
    """Naive or offset timestamps, 0-7 fractional digits (``2023-04-29T13:22:18.797``, ``...+00:00``)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    match = _TIMESTAMP.match(str(value).strip())
    if not match:
        raise ValueError(f"not a Billbee timestamp: {value!r}")
    text = match["base"].replace(" ", "T")
    if match["frac"]:
        text += "." + match["frac"][:6].ljust(6, "0")
    zone = match["zone"]
    if zone:
        text += "+00:00" if zone == "Z" else zone
    parsed = datetime.fromisoformat(text)
    # Billbee's own timestamps are naive (zone undocumented, probably Europe/Berlin: billbee-pitfalls #5). Values
    # with an offset (SDK fixtures) are converted to Berlin wall time so all comparisons stay naive-to-naive.
    if parsed.tzinfo is None:
        return parsed
    return parsed.astimezone(BILLBEE_ZONE).replace(tzinfo=None)


def _null_list_is_empty(value: Any) -> Any:
    """Billbee sends ``null`` for an empty list (ERRATA Billbee 7: ``ShippingServices: null`` in a real page)."""
    return [] if value is None else value


BillbeeDateTime = Annotated[datetime | None, BeforeValidator(parse_billbee_datetime)]
Money = Annotated[Decimal, BeforeValidator(to_decimal)]
MAX_TEXT = 200  # a product title longer than this is cut: the voucher books per rate, titles are only for people


def _shortened(value: Any) -> Any:
    return value[:MAX_TEXT] if isinstance(value, str) and len(value) > MAX_TEXT else value


ShortText = Annotated[str | None, BeforeValidator(_shortened)]
OptionalMoney = Annotated[Decimal | None, BeforeValidator(lambda v: None if v is None else to_decimal(v))]
T = TypeVar("T")
NullableList = Annotated[list[T], BeforeValidator(_null_list_is_empty)]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="ignore")


class Address(_Model):
    company: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    name_addition: str | None = None
    street: str | None = None
    house_number: str | None = None
    line2: str | None = None
    zip: str | None = None
    city: str | None = None
    country_iso2: str | None = Field(default=None, alias="CountryISO2")
    country: str | None = None
    email: str | None = None
    phone: str | None = None

    @property
    def person_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part).strip()


class Customer(_Model):
    id: int | None = None
    number: int | None = None
    name: str | None = None
    email: str | None = None
    vat_id: str | None = None
    type: int | None = None


class Seller(_Model):
    platform: str | None = None
    billbee_shop_name: str | None = None
    billbee_shop_id: int | None = None


class Product(_Model):
    title: ShortText = None
    sku: str | None = Field(default=None, alias="SKU")


class OrderItem(_Model):
    billbee_id: int | None = None
    product: Product | None = None
    quantity: Money = Decimal(0)
    total_price: Money = Decimal(0)  # gross, after the line discount (billbee-pitfalls #10)
    tax_amount: Money = Decimal(0)  # VAT contained in total_price
    # 0 none, 1 -> TaxRate1, 2 -> TaxRate2; any other value leaves the line's VAT rate unknown: unreadable.
    tax_index: Annotated[int | None, Field(ge=0, le=2)] = None
    discount: Money = Decimal(0)  # percent
    unrebated_total_price: Money = Decimal(0)
    is_coupon: bool | None = False


class Payment(_Model):
    billbee_id: int | None = None
    transaction_id: str | None = None
    pay_date: BillbeeDateTime = None
    payment_type: int | None = None
    pay_value: Money = Decimal(0)
    source_text: str | None = None


class Order(_Model):
    bill_bee_order_id: Annotated[int, Field(gt=0, lt=2**63)]  # int64; anything else is not an order id
    # A Storno order's link to the order it cancels (unverified which Billbee fills: billbee-api.md §9).
    bill_bee_parent_order_id: int | None = None
    is_cancelation_for: str | None = None
    id: str | None = None
    order_number: str | None = None
    state: int | None = None
    # 0-4 as in the C# SDK, 5 its sentinel (booking refuses 4 and 5 with a reason); anything else is unreadable.
    vat_mode: Annotated[int | None, Field(ge=0, le=5)] = None
    created_at: BillbeeDateTime = None
    payed_at: BillbeeDateTime = None
    shipped_at: BillbeeDateTime = None
    invoice_date: BillbeeDateTime = None
    last_modified_at: BillbeeDateTime = None
    invoice_number_prefix: str | None = None
    invoice_number: int | None = None
    invoice_number_postfix: str | None = None
    invoice_address: Address | None = None
    shipping_address: Address | None = None
    customer: Customer | None = None
    customer_number: str | None = None
    customer_vat_id: str | None = None
    vat_id: str | None = None
    seller: Seller | None = None
    order_items: NullableList[OrderItem] = Field(default_factory=list)
    shipping_cost: Money = Decimal(0)
    total_cost: OptionalMoney = None  # items + shipping, despite the spec (billbee-pitfalls #9)
    adjustment_cost: Money = Decimal(0)
    paid_amount: Money = Decimal(0)
    currency: str | None = None
    payment_method: int | None = None
    payments: NullableList[Payment] = Field(default_factory=list)
    tags: NullableList[str] = Field(default_factory=list)
    tax_rate1: Money = Decimal(0)
    tax_rate2: Money = Decimal(0)
    archived_at: BillbeeDateTime = None

    @property
    def has_invoice(self) -> bool:
        """An invoice exists once Billbee has numbered and dated it; the connector never creates one."""
        return bool(self.invoice_number) and self.invoice_date is not None

    @property
    def printed_invoice_number(self) -> str:
        """Prefix + number + postfix, as printed on the PDF (billbee-api.md §5)."""
        return f"{self.invoice_number_prefix or ''}{self.invoice_number or ''}{self.invoice_number_postfix or ''}"

    @property
    def shop_id(self) -> int | None:
        return self.seller.billbee_shop_id if self.seller else None

    def has_tag(self, tag: str) -> bool:
        # Billbee matches tags case-insensitively (billbee-api.md §8.2).
        wanted = tag.casefold()
        return any(t.casefold() == wanted for t in self.tags or [])

    def rate_for_tax_index(self, tax_index: int | None) -> Decimal:
        if tax_index == 1:
            return self.tax_rate1
        if tax_index == 2:
            return self.tax_rate2
        return Decimal(0)


class InvoicePosition(_Model):
    position: int | None = None
    amount: Money = Decimal(0)
    total_net_value: Money = Decimal(0)
    total_gross_value: Money = Decimal(0)
    vat_rate: Money = Decimal(0)
    total_vat_amount: Money = Decimal(0)
    title: ShortText = None
    sku: str | None = None


class InvoiceFee(_Model):
    type: str | None = None  # "ShipCost", ...
    gross: Money = Decimal(0)
    net: Money = Decimal(0)
    vat_amount: Money = Decimal(0)
    vat_rate: Money = Decimal(0)


class InvoiceDetails(_Model):
    """One item of ``GET /orders/invoices?includePositions=true`` (InvoiceApiModel)."""

    billbee_id: int | None = None  # the order id (PHP SDK fixture) or the invoice's own id (C# SDK): invoices.py
    invoice_number: str | None = None  # as printed: the voucher's duplicate key
    order_number: str | None = None
    type: str | None = None  # "invoice" | "creditnote"
    invoice_date: BillbeeDateTime = None
    pay_date: BillbeeDateTime = None
    total_net: Money = Decimal(0)
    total_gross: Money = Decimal(0)
    currency: str | None = None
    vat_mode: int | None = None
    positions: list[InvoicePosition] | None = None
    additional_fees: list[InvoiceFee] | None = None


class InvoiceDocument(_Model):
    """``POST /orders/CreateInvoice/{id}?includeInvoicePdf=true`` result for an order that already has its invoice."""

    invoice_number: str | None = None
    pdf_data: str | None = Field(default=None, alias="PDFData")  # base64
    invoice_date: BillbeeDateTime = None
    total_gross: OptionalMoney = None
    pdf_download_url: str | None = None


class Shop(_Model):
    id: int
    name: str | None = None


class EnumEntry(_Model):
    id: int
    name: str | None = None

"""The built-in sample shop: realistic Billbee orders for ``python -m local.run`` without ``--orders``.

Every order is a ``Data`` item of ``GET /orders`` in Billbee's exact JSON shape: the same 64 properties, in the same
order, as the real page in ``shared/specs/billbee-examples/ithoc-mock_real_orders_page_redacted.json`` (PascalCase,
naive timestamps with trimmed fractional seconds, ``null`` where Billbee sends null). ``WebUrl`` (newer spec field) is
left out because the real sample does not carry it.

A small German natural-cosmetics merchant sells through two shops (Shopify 1001, Amazon DE 1002) and enters one order
by hand. The orders cover the cases the connector must book correctly: 19 % and 7 % lines (cosmetics vs. books and
food), mixed-rate orders, line discounts, coupons, free and paid shipping, company customers with VAT ids, repeat
customers, intra-EU B2B (VatMode 2), export (VatMode 3), split payments, open invoice-payment orders, and Billbee's
payment-data quirks (billbee-pitfalls #11). Exactly one paid order has no invoice yet.

Amounts are computed with ``Decimal`` and emitted as floats rounded to cents, as the API's JSON numbers. Nothing here
is random or depends on today's date: every call returns the same, freshly built list.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

SHOPIFY_SHOP_ID = 1001
AMAZON_SHOP_ID = 1002
INVOICE_NUMBER_PREFIX = "RE-2026-"
FIRST_INVOICE_NUMBER = 1041  # the merchant issued invoices before the sample period
TAX_RATE_REGULAR = Decimal(19)
TAX_RATE_REDUCED = Decimal(7)

# Billbee payment type ids (billbee-api.md §7).
PM_BANK_TRANSFER = 1  # Bankueberweisung: deliberately not mapped in sample_connection.json
PM_PAYPAL = 3
PM_GIFT_CARD = 6  # Gutschein, used as a payment (multi-purpose voucher), not as a coupon line
PM_INVOICE = 26  # Rechnung
PM_PREPAYMENT = 59  # Vorkasse
PM_AMAZON_PAY = 62  # Amazon_Payments_Advanced; the Amazon DE shop's orders use it (real marketplace orders may say 61)
PM_STRIPE = 63
PM_KLARNA = 98

# Billbee order states (billbee-api.md §7).
STATE_PAID = 3
STATE_SHIPPED = 4
STATE_CLOSED = 7

# Billbee VatMode (billbee-api.md §7). VatMode 1 (Kleinunternehmer) is a property of the merchant, not of one order,
# and VatMode 4 (margin scheme) does not occur in a cosmetics shop, so neither appears here.
VAT_MODE_NORMAL = 0
VAT_MODE_INTRA_EU = 2
VAT_MODE_EXPORT = 3

CENT = Decimal("0.01")
ZERO = Decimal(0)

_SHOPS: dict[int, tuple[str, str]] = {
    # BillbeeShopId: (BillbeeShopName, Seller.Platform)
    SHOPIFY_SHOP_ID: ("Shopify Naturkosmetik", "Shopify"),
    AMAZON_SHOP_ID: ("Amazon DE", "Amazon"),
}
_MERCHANT_EMAIL = "shop@gruene-auszeit.example"
_MERCHANT_VAT_ID = "DE314159265"
# Seller.Id of manual orders is a GUID in the real sample (ithoc), the Billbee user.
_MANUAL_SELLER_ID = "7c1e4a52-93d0-4f1b-a8e6-2b5d0c9f3e71"


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _money(value: Decimal) -> float:
    """A JSON number as Billbee sends it; float only at the very edge."""
    return float(_cents(value))


def _timestamp(value: datetime | None) -> str | None:
    """Naive, millisecond precision with trailing zeros trimmed, like .NET: ``2023-04-29T13:32:39.36``."""
    if value is None:
        return None
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    millis = value.microsecond // 1000
    if millis:
        text += "." + f"{millis:03d}".rstrip("0")
    return text


def _ean13(body: str) -> str:
    digits = [int(c) for c in body]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return body + str(check)


@dataclass(frozen=True)
class _Product:
    sku: str
    title: str
    gross: Decimal  # German gross unit price
    tax_index: int  # 1 regular (19 %), 2 reduced (7 %: books, food)
    weight_g: int
    billbee_id: int
    ean_body: str


_PRODUCTS: dict[str, _Product] = {
    p.sku: p
    for p in (
        _Product(
            "NK-GC-50", "Bio Gesichtscreme Ringelblume 50 ml", Decimal("24.90"), 1, 120, 300000065910001, "426012345001"
        ),
        _Product("NK-SB-75", "Festes Shampoo Lavendel 75 g", Decimal("9.90"), 1, 90, 300000065910002, "426012345002"),
        _Product("NK-SE-3", "Olivenölseife 3er-Set", Decimal("14.50"), 1, 330, 300000065910003, "426012345003"),
        _Product("NK-DEO-50", "Deo-Creme Zitrone 50 ml", Decimal("8.95"), 1, 80, 300000065910004, "426012345004"),
        _Product("NK-LB-01", "Lippenbalsam Sheabutter", Decimal("4.50"), 1, 20, 300000065910005, "426012345005"),
        _Product("NK-KO-100", "Körperöl Mandel 100 ml", Decimal("19.90"), 1, 160, 300000065910006, "426012345006"),
        _Product("NK-ZB-4", "Bambus-Zahnbürsten 4er-Pack", Decimal("11.90"), 1, 70, 300000065910007, "426012345007"),
        _Product("NK-GS-WELL", "Geschenkset Wellness", Decimal("49.00"), 1, 650, 300000065910008, "426012345008"),
        _Product(
            "BU-NK-01", "Buch: Naturkosmetik selber machen", Decimal("19.99"), 2, 540, 300000065910009, "978312345001"
        ),
        _Product(
            "BU-SE-01", "Buch: Seifen sieden für Einsteiger", Decimal("16.00"), 2, 410, 300000065910010, "978312345002"
        ),
        _Product(
            "LM-TEE-100", "Bio Kräutertee Abendruhe 100 g", Decimal("6.90"), 2, 110, 300000065910011, "426012345011"
        ),
        _Product("LM-HON-500", "Akazienhonig 500 g", Decimal("9.80"), 2, 720, 300000065910012, "426012345012"),
    )
}


@dataclass(frozen=True)
class _Customer:
    billbee_id: int
    number: int
    first_name: str | None
    last_name: str | None
    email: str
    street: str
    house_number: str
    zip: str
    city: str
    country: str = "DE"
    company: str | None = None
    vat_id: str | None = None
    phone: str | None = None
    language_id: int | None = 3  # 3 = German in the real sample
    language_code: str = "DE"

    @property
    def name(self) -> str:
        return self.company or f"{self.first_name} {self.last_name}"


_CUSTOMERS: dict[str, _Customer] = {
    # Shopify: private customers, several of them ordering again (same Customer.Id -> one sevDesk contact).
    "anna": _Customer(
        300000148100101, 20417, "Anna", "Schmidt", "anna.schmidt@example.com", "Lindenstraße", "12", "50674", "Köln"
    ),
    "max": _Customer(
        300000148100102, 20418, "Max", "Becker", "max.becker@example.com", "Hauptstraße", "5a", "80331", "München"
    ),
    "lena": _Customer(
        300000148100103, 20421, "Lena", "Hoffmann", "lena.hoffmann@example.org", "Am Markt", "3", "04109", "Leipzig"
    ),
    "tom": _Customer(
        300000148100104, 20425, "Tom", "Wagner", "t.wagner@example.net", "Gartenweg", "8", "20095", "Hamburg"
    ),
    "julia": _Customer(
        300000148100105, 20430, "Julia", "Klein", "julia.klein@example.com", "Rosenstraße", "21", "70173", "Stuttgart"
    ),
    "sophie": _Customer(
        300000148100106, 20433, "Sophie", "Braun", "sophie.braun@example.de", "Bahnhofstraße", "44", "90402", "Nürnberg"
    ),
    "felix": _Customer(
        300000148100107, 20440, "Felix", "Schulz", "felix.schulz@example.com", "Kirchplatz", "2", "48143", "Münster"
    ),
    # Shopify: German companies with a VAT id (normal VAT, VatMode 0).
    "gruenblatt": _Customer(
        300000148100201,
        20419,
        "Sabine",
        "Grün",
        "einkauf@gruenblatt-kosmetik.example",
        "Friedrichstraße",
        "101",
        "10117",
        "Berlin",
        company="Grünblatt Kosmetikstudio GmbH",
        vat_id="DE287654321",
        phone="+49 30 1234567",
    ),
    "seeblick": _Customer(
        300000148100202,
        20426,
        "Markus",
        "Huber",
        "buchhaltung@hotel-seeblick.example",
        "Seeuferweg",
        "7",
        "82319",
        "Starnberg",
        company="Hotel Seeblick GmbH & Co. KG",
        vat_id="DE811234567",
        phone="+49 8151 998877",
    ),
    "schoenhaut": _Customer(
        300000148100203,
        20437,
        "Petra",
        "Lange",
        "info@schoenhaut.example",
        "Marktgasse",
        "4",
        "79098",
        "Freiburg im Breisgau",
        company="Kosmetikinstitut Schönhaut",
        vat_id="DE276543219",
    ),
    # Shopify: intra-EU businesses (VatMode 2) and an export customer (VatMode 3).
    "wien": _Customer(
        300000148100301,
        20423,
        "Katharina",
        "Gruber",
        "office@naturschoen.example",
        "Mariahilfer Straße",
        "88",
        "1070",
        "Wien",
        country="AT",
        company="Naturschön Handels GmbH",
        vat_id="ATU68543219",
        phone="+43 1 5223344",
    ),
    "amsterdam": _Customer(
        300000148100302,
        20428,
        "Daan",
        "de Vries",
        "inkoop@groenenpuur.example",
        "Prinsengracht",
        "263",
        "1016 GV",
        "Amsterdam",
        country="NL",
        company="Groen & Puur B.V.",
        vat_id="NL859123456B01",
        language_id=None,
        language_code="NL",
    ),
    "zuerich": _Customer(
        300000148100303,
        20431,
        "Lukas",
        "Meier",
        "lukas.meier@example.ch",
        "Bahnhofstrasse",
        "15",
        "8001",
        "Zürich",
        country="CH",
    ),
    # Manual order: a physiotherapy practice (no VAT id: its own services are VAT-exempt).
    "weber": _Customer(
        300000148100401,
        20420,
        "Karin",
        "Weber",
        "praxis@physio-weber.example",
        "Schulstraße",
        "9",
        "34117",
        "Kassel",
        company="Physiotherapie Weber",
        phone="+49 561 445566",
    ),
}

# Amazon hides buyers behind relay addresses; every Amazon order is a new Billbee customer.
_AMAZON_BUYERS = (
    ("Jonas", "Fischer", "Berliner Allee", "17", "40212", "Düsseldorf"),
    ("Marie", "Weber", "Goethestraße", "6", "60313", "Frankfurt am Main"),
    ("Paul", "Meyer", "Schillerplatz", "1", "01067", "Dresden"),
    ("Emma", "Wolf", "Lange Reihe", "29", "28195", "Bremen"),
    ("Leon", "Schäfer", "Ulmenweg", "3", "30159", "Hannover"),
    ("Mia", "Koch", "Wiesenstraße", "55", "45127", "Essen"),
    ("Noah", "Richter", "Marktplatz", "9", "69117", "Heidelberg"),
    ("Hannah", "Neumann", "Domstraße", "14", "93047", "Regensburg"),
    ("Elias", "Zimmermann", "Hafenstraße", "2", "18055", "Rostock"),
    ("Lea", "Krüger", "Eichendorffweg", "11", "24103", "Kiel"),
    ("Ben", "Hartmann", "Turmstraße", "8", "52062", "Aachen"),
    ("Clara", "Lange", "Am Stadtpark", "20", "66111", "Saarbrücken"),
    ("Finn", "Schmitt", "Kastanienallee", "33", "99084", "Erfurt"),
)


def _amazon_customer(n: int) -> _Customer:
    first, last, street, house, zip_code, city = _AMAZON_BUYERS[n]
    return _Customer(
        300000148200001 + n * 7,
        30101 + n,
        first,
        last,
        f"{first.lower()}{n + 7}x2k9q@marketplace.amazon.de",
        street,
        house,
        zip_code,
        city,
    )


@dataclass(frozen=True)
class _Line:
    sku: str
    quantity: int
    discount: Decimal = ZERO  # percent, as Billbee's OrderItem.Discount
    attribute: tuple[str, str] | None = None


@dataclass(frozen=True)
class _OrderSpec:
    created: datetime
    shop_id: int | None  # None = manual order
    customer: str  # key of _CUSTOMERS or "amazon:<n>"
    state: int
    payment_method: int
    lines: tuple[_Line, ...]
    vat_mode: int = VAT_MODE_NORMAL
    shipping: Decimal | None = None  # gross (net for VatMode 2/3); None = the Shopify rule (free from 50 EUR)
    coupon: tuple[str, Decimal] | None = None  # (code, gross amount off)
    # "paid": one payment of the total; "open": invoice not paid yet; "split": gift card + payment method;
    # "no_payment_rows": paid (PayedAt set) but Payments [] and PaidAmount 0.0, as in the real sample.
    payment: str = "paid"
    invoiced: bool = True
    tags: tuple[str, ...] = ()
    customer_comment: str | None = None
    seller_comment: str | None = None
    ship_to: tuple[str, str, str, str, str, str] | None = None  # differing shipping address (gift)


def _d(month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, month, day, hour, minute)


_S, _A = SHOPIFY_SHOP_ID, AMAZON_SHOP_ID
_VIP, _RETURN_CHECKED = "VIP", "Retoure geprüft"

_ORDER_SPECS: tuple[_OrderSpec, ...] = (
    _OrderSpec(_d(10, 2, 9, 14), _S, "anna", STATE_CLOSED, PM_PAYPAL, (_Line("NK-GC-50", 1), _Line("LM-TEE-100", 2))),
    _OrderSpec(
        _d(10, 2, 16, 40),
        _A,
        "amazon:0",
        STATE_CLOSED,
        PM_AMAZON_PAY,
        (_Line("NK-SB-75", 2, attribute=("Duft", "Lavendel")),),
        shipping=Decimal("2.99"),
    ),
    _OrderSpec(
        _d(10, 3, 11, 5),
        _S,
        "gruenblatt",
        STATE_CLOSED,
        PM_INVOICE,
        (_Line("NK-GS-WELL", 3), _Line("BU-NK-01", 2)),
        tags=(_VIP,),
        seller_comment="Rechnung per E-Mail an die Buchhaltung",
    ),
    _OrderSpec(_d(10, 4, 8, 30), _S, "max", STATE_CLOSED, PM_PREPAYMENT, (_Line("NK-KO-100", 1), _Line("NK-LB-01", 2))),
    _OrderSpec(_d(10, 5, 14, 22), _A, "amazon:1", STATE_CLOSED, PM_AMAZON_PAY, (_Line("BU-SE-01", 1),), shipping=ZERO),
    # The manual order: no shop, no external id, no buyer (like the real ithoc sample), paid by bank transfer.
    _OrderSpec(
        datetime(2026, 10, 6),
        None,
        "weber",
        STATE_CLOSED,
        PM_BANK_TRANSFER,
        (_Line("NK-GS-WELL", 5, Decimal(10)), _Line("NK-SE-3", 2)),
        shipping=Decimal("6.90"),
        seller_comment="Telefonische Bestellung, Praxisgeschenke",
    ),
    _OrderSpec(
        _d(10, 6, 19, 47),
        _S,
        "anna",
        STATE_CLOSED,
        PM_PAYPAL,
        (_Line("NK-SB-75", 3, attribute=("Duft", "Rosmarin")), _Line("NK-SE-3", 1)),
    ),
    _OrderSpec(
        _d(10, 7, 10, 12),
        _S,
        "wien",
        STATE_CLOSED,
        PM_PREPAYMENT,
        (_Line("NK-GC-50", 6), _Line("LM-HON-500", 4)),
        vat_mode=VAT_MODE_INTRA_EU,
        shipping=Decimal("12.00"),
    ),
    _OrderSpec(_d(10, 8, 13, 33), _S, "lena", STATE_CLOSED, PM_KLARNA, (_Line("NK-DEO-50", 2), _Line("BU-NK-01", 1))),
    _OrderSpec(
        _d(10, 9, 9, 58), _A, "amazon:2", STATE_CLOSED, PM_AMAZON_PAY, (_Line("NK-GC-50", 1),), shipping=Decimal("2.99")
    ),
    _OrderSpec(_d(10, 10, 17, 20), _S, "tom", STATE_CLOSED, PM_STRIPE, (_Line("NK-ZB-4", 3),), tags=(_RETURN_CHECKED,)),
    # Split payment: part gift card (PaymentType 6), rest PayPal.
    _OrderSpec(
        _d(10, 11, 12, 45),
        _S,
        "anna",
        STATE_CLOSED,
        PM_PAYPAL,
        (_Line("NK-GS-WELL", 1), _Line("LM-TEE-100", 1), _Line("LM-HON-500", 1)),
        payment="split",
    ),
    _OrderSpec(
        _d(10, 12, 20, 5),
        _A,
        "amazon:3",
        STATE_CLOSED,
        PM_AMAZON_PAY,
        (_Line("LM-TEE-100", 3), _Line("LM-HON-500", 2)),
        shipping=ZERO,
    ),
    _OrderSpec(
        _d(10, 13, 15, 16),
        _S,
        "seeblick",
        STATE_CLOSED,
        PM_INVOICE,
        (_Line("NK-SE-3", 10, Decimal(5)), _Line("NK-LB-01", 20)),
        tags=(_VIP,),
        customer_comment="Bitte Lieferschein beilegen, Wareneingang Hotelküche",
    ),
    _OrderSpec(
        _d(10, 14, 7, 55),
        _S,
        "julia",
        STATE_CLOSED,
        PM_STRIPE,
        (_Line("NK-KO-100", 2),),
        coupon=("WILLKOMMEN5", Decimal("5.00")),
    ),
    _OrderSpec(
        _d(10, 15, 11, 11),
        _A,
        "amazon:4",
        STATE_CLOSED,
        PM_AMAZON_PAY,
        (_Line("NK-SB-75", 1, attribute=("Duft", "Lavendel")), _Line("NK-LB-01", 1)),
        shipping=Decimal("2.99"),
    ),
    _OrderSpec(
        _d(10, 16, 16, 2),
        _S,
        "amsterdam",
        STATE_SHIPPED,
        PM_PAYPAL,
        (_Line("BU-NK-01", 5), _Line("NK-GC-50", 5)),
        vat_mode=VAT_MODE_INTRA_EU,
        shipping=Decimal("15.00"),
    ),
    # Paid by prepayment, but Billbee recorded no payment row (real quirk, billbee-pitfalls #11).
    _OrderSpec(
        _d(10, 17, 10, 30), _S, "max", STATE_SHIPPED, PM_PREPAYMENT, (_Line("NK-GC-50", 2),), payment="no_payment_rows"
    ),
    _OrderSpec(
        _d(10, 18, 13, 41),
        _S,
        "zuerich",
        STATE_SHIPPED,
        PM_STRIPE,
        (_Line("NK-GS-WELL", 1), _Line("LM-TEE-100", 2)),
        vat_mode=VAT_MODE_EXPORT,
        shipping=Decimal("19.90"),
    ),
    _OrderSpec(
        _d(10, 19, 18, 26),
        _A,
        "amazon:5",
        STATE_SHIPPED,
        PM_AMAZON_PAY,
        (_Line("NK-DEO-50", 3),),
        shipping=ZERO,
        tags=(_RETURN_CHECKED,),
    ),
    # Shipped on open invoice: PayedAt null, no payments; the voucher stays open.
    _OrderSpec(
        _d(10, 20, 9, 3),
        _S,
        "gruenblatt",
        STATE_SHIPPED,
        PM_INVOICE,
        (_Line("NK-SE-3", 6, Decimal(10)), _Line("NK-KO-100", 4)),
        payment="open",
        tags=(_VIP,),
    ),
    _OrderSpec(
        _d(10, 21, 14, 50),
        _S,
        "lena",
        STATE_SHIPPED,
        PM_KLARNA,
        (_Line("LM-HON-500", 2), _Line("LM-TEE-100", 2), _Line("NK-LB-01", 1)),
    ),
    _OrderSpec(
        _d(10, 22, 12, 12),
        _A,
        "amazon:6",
        STATE_SHIPPED,
        PM_AMAZON_PAY,
        (_Line("BU-NK-01", 1), _Line("BU-SE-01", 1)),
        shipping=ZERO,
    ),
    _OrderSpec(
        _d(10, 23, 16, 37),
        _S,
        "sophie",
        STATE_SHIPPED,
        PM_PAYPAL,
        (_Line("NK-GC-50", 1), _Line("NK-LB-01", 1)),
        coupon=("HERBST10", Decimal("10.00")),
        tags=("Geschenk",),
        customer_comment="Bitte als Geschenk verpacken, danke!",
        ship_to=("Ingrid", "Braun", "Amselweg", "6", "91054", "Erlangen"),
    ),
    _OrderSpec(_d(10, 24, 10, 5), _S, "anna", STATE_SHIPPED, PM_PAYPAL, (_Line("NK-SB-75", 2),), tags=(_VIP,)),
    _OrderSpec(
        _d(10, 25, 11, 48),
        _S,
        "schoenhaut",
        STATE_SHIPPED,
        PM_INVOICE,
        (_Line("NK-GC-50", 4), _Line("NK-SB-75", 4)),
        payment="open",
    ),
    _OrderSpec(
        _d(10, 26, 19, 19), _A, "amazon:7", STATE_SHIPPED, PM_AMAZON_PAY, (_Line("NK-GS-WELL", 1),), shipping=ZERO
    ),
    _OrderSpec(_d(10, 27, 8, 44), _S, "tom", STATE_SHIPPED, PM_STRIPE, (_Line("NK-KO-100", 1), _Line("BU-SE-01", 1))),
    _OrderSpec(_d(10, 28, 15, 27), _S, "felix", STATE_SHIPPED, PM_BANK_TRANSFER, (_Line("NK-SE-3", 2),)),
    _OrderSpec(
        _d(10, 30, 13, 13),
        _A,
        "amazon:8",
        STATE_SHIPPED,
        PM_AMAZON_PAY,
        (_Line("NK-LB-01", 4),),
        shipping=Decimal("2.99"),
    ),
    _OrderSpec(_d(11, 1, 10, 0), _S, "julia", STATE_SHIPPED, PM_KLARNA, (_Line("NK-ZB-4", 2), _Line("LM-TEE-100", 1))),
    _OrderSpec(
        _d(11, 3, 17, 45),
        _S,
        "max",
        STATE_SHIPPED,
        PM_PAYPAL,
        (_Line("NK-GC-50", 1), _Line("NK-DEO-50", 1), _Line("LM-HON-500", 1)),
    ),
    _OrderSpec(
        _d(11, 5, 12, 20),
        _A,
        "amazon:9",
        STATE_SHIPPED,
        PM_AMAZON_PAY,
        (_Line("LM-HON-500", 3),),
        shipping=Decimal("2.99"),
    ),
    _OrderSpec(_d(11, 7, 9, 36), _S, "sophie", STATE_SHIPPED, PM_PREPAYMENT, (_Line("NK-GS-WELL", 2, Decimal(15)),)),
    _OrderSpec(
        _d(11, 9, 14, 14),
        _S,
        "anna",
        STATE_SHIPPED,
        PM_STRIPE,
        (_Line("NK-SB-75", 1, attribute=("Duft", "Lavendel")), _Line("NK-SE-3", 1)),
        tags=(_VIP,),
    ),
    _OrderSpec(
        _d(11, 11, 11, 11), _A, "amazon:10", STATE_SHIPPED, PM_AMAZON_PAY, (_Line("NK-GC-50", 2),), shipping=ZERO
    ),
    _OrderSpec(_d(11, 12, 16, 58), _S, "lena", STATE_PAID, PM_KLARNA, (_Line("NK-KO-100", 1), _Line("BU-NK-01", 1))),
    _OrderSpec(_d(11, 14, 10, 25), _S, "felix", STATE_PAID, PM_PAYPAL, (_Line("NK-LB-01", 3), _Line("LM-TEE-100", 1))),
    _OrderSpec(
        _d(11, 15, 20, 40),
        _A,
        "amazon:11",
        STATE_PAID,
        PM_AMAZON_PAY,
        (_Line("NK-SB-75", 3),),
        shipping=Decimal("2.99"),
    ),
    _OrderSpec(
        _d(11, 16, 9, 9), _S, "seeblick", STATE_PAID, PM_PREPAYMENT, (_Line("NK-SE-3", 20, Decimal(10)),), tags=(_VIP,)
    ),
    _OrderSpec(_d(11, 17, 13, 57), _S, "tom", STATE_PAID, PM_STRIPE, (_Line("NK-GC-50", 1), _Line("LM-HON-500", 1))),
    _OrderSpec(
        _d(11, 18, 18, 18),
        _A,
        "amazon:12",
        STATE_PAID,
        PM_AMAZON_PAY,
        (_Line("LM-TEE-100", 4),),
        shipping=Decimal("2.99"),
    ),
    _OrderSpec(_d(11, 19, 11, 34), _S, "julia", STATE_PAID, PM_KLARNA, (_Line("NK-GS-WELL", 1), _Line("BU-SE-01", 1))),
    # Paid, but the merchant has not created the invoice yet: must not be exported (billbee-pitfalls #16).
    _OrderSpec(
        _d(11, 20, 15, 5),
        _S,
        "max",
        STATE_PAID,
        PM_PAYPAL,
        (_Line("NK-KO-100", 1), _Line("NK-LB-01", 1)),
        invoiced=False,
    ),
)

# Shopify charges 4.90 EUR shipping in Germany, free from 50 EUR of goods (after coupons).
_SHOPIFY_SHIPPING = Decimal("4.90")
_SHOPIFY_FREE_SHIPPING_FROM = Decimal("50.00")
_INSTANT_METHODS = frozenset({PM_PAYPAL, PM_STRIPE, PM_KLARNA, PM_AMAZON_PAY})
_GIFT_CARD_AMOUNT = Decimal("25.00")

_PAYMENT_SOURCE = {
    # PaymentType: (SourceTechnology, SourceText). Real values are undocumented; these read like Billbee's UI.
    PM_PAYPAL: ("Shopify", "PayPal"),
    PM_STRIPE: ("Shopify", "Stripe"),
    PM_KLARNA: ("Shopify", "Klarna"),
    PM_AMAZON_PAY: ("Amazon", "Amazon"),
    PM_PREPAYMENT: ("Bank", "Kontoabgleich Sparkasse"),
    PM_BANK_TRANSFER: ("Bank", "Kontoabgleich Sparkasse"),
    PM_INVOICE: ("Bank", "Kontoabgleich Sparkasse"),
    PM_GIFT_CARD: ("Shopify", "Geschenkgutschein"),
}


@dataclass
class _Ids:
    """Billbee's 15-digit int64 ids, handed out in ascending order so that later objects have larger ids."""

    next_item: int = 300000306200011
    next_payment: int = 300000045100003
    next_address: int = 300000171900007
    next_shipment: int = 300000003100001
    invoice_number: int = FIRST_INVOICE_NUMBER
    credit_note_number: int = 1
    issued: list[int] = field(default_factory=list)

    def item(self) -> int:
        self.next_item += 13
        return self.next_item

    def payment(self) -> int:
        self.next_payment += 7
        return self.next_payment

    def address(self) -> int:
        self.next_address += 11
        return self.next_address

    def shipment(self) -> int:
        self.next_shipment += 3
        return self.next_shipment


def _rate(tax_index: int) -> Decimal:
    return TAX_RATE_REGULAR if tax_index == 1 else TAX_RATE_REDUCED


def _vat_contained(gross: Decimal, rate: Decimal) -> Decimal:
    return _cents(gross * rate / (100 + rate))


def _address(
    customer: _Customer, billbee_id: int, override: tuple[str, str, str, str, str, str] | None = None
) -> dict[str, Any]:
    first, last, street, house, zip_code, city = override or (
        customer.first_name,
        customer.last_name,
        customer.street,
        customer.house_number,
        customer.zip,
        customer.city,
    )
    return {
        "BillbeeId": billbee_id,
        "FirstName": first,
        "LastName": last,
        # Private customers: Company "" (not null), like the real sample.
        "Company": "" if override else (customer.company or ""),
        "NameAddition": None,
        "Street": street,
        "HouseNumber": house,
        "Zip": zip_code,
        "City": city,
        "CountryISO2": customer.country,
        "Country": customer.country,  # the real sample carries the ISO2 code here as well
        "Line2": "",
        "Email": customer.email,
        "State": "",
        "Phone": customer.phone,
    }


def _contact_entries(customer: _Customer) -> tuple[dict[str, Any], dict[str, Any] | None]:
    mail = {
        "Id": customer.billbee_id % 100000000,
        "TypeId": 1,
        "TypeName": "EMail",
        "SubType": "",
        "Value": customer.email,
    }
    phone = None
    if customer.phone:
        phone = {
            "Id": customer.billbee_id % 100000000 + 1,
            "TypeId": 2,
            "TypeName": "Phone",
            "SubType": "",
            "Value": customer.phone,
        }
    return mail, phone


def _customer_model(customer: _Customer) -> dict[str, Any]:
    mail, phone = _contact_entries(customer)
    return {
        "Id": customer.billbee_id,
        "Name": customer.name,
        "Email": customer.email,
        "Tel1": customer.phone,
        "Tel2": None,
        "Number": customer.number,
        "PriceGroupId": None,
        "LanguageId": customer.language_id,
        "DefaultMailAddress": mail,
        "DefaultCommercialMailAddress": None,
        "DefaultStatusUpdatesMailAddress": None,
        "DefaultPhone1": phone,
        "DefaultPhone2": None,
        "DefaultFax": None,
        "VatId": customer.vat_id,
        # Customer type: 0 private (Endkunde), 1 business (Geschäftskunde). The numbers are unverified; the real
        # sample has 0 even for a public authority, so the connector must look at the company name too.
        "Type": 1 if customer.company else 0,
        "MetaData": [entry for entry in (mail, phone) if entry],
        "ArchivedAt": None,
        "RestoredAt": None,
    }


def _order_user(spec: _OrderSpec, customer: _Customer, index: int) -> dict[str, Any] | None:
    if spec.shop_id is None:
        return None  # manual orders have Buyer null (real sample)
    shop_name, platform = _SHOPS[spec.shop_id]
    return {
        "Platform": platform,
        "BillbeeShopName": shop_name,
        "BillbeeShopId": spec.shop_id,
        "Id": str(7391200000 + customer.number * 10 + index % 10),
        "Nick": None,
        "FirstName": customer.first_name,
        "LastName": customer.last_name,
        "FullName": f"{customer.first_name} {customer.last_name}",
        "Email": customer.email,
    }


def _seller(spec: _OrderSpec) -> dict[str, Any]:
    if spec.shop_id is None:
        # Manual order: Platform, shop name and shop id are null (real sample, billbee-pitfalls #8).
        return {
            "Platform": None,
            "BillbeeShopName": None,
            "BillbeeShopId": None,
            "Id": _MANUAL_SELLER_ID,
            "Nick": None,
            "FirstName": None,
            "LastName": None,
            "FullName": "",
            "Email": _MERCHANT_EMAIL,
        }
    shop_name, platform = _SHOPS[spec.shop_id]
    return {
        "Platform": platform,
        "BillbeeShopName": shop_name,
        "BillbeeShopId": spec.shop_id,
        "Id": "gruene-auszeit.myshopify.com" if spec.shop_id == SHOPIFY_SHOP_ID else "A1B2C3D4E5F6G7",
        "Nick": None,
        "FirstName": None,
        "LastName": None,
        "FullName": "",
        "Email": _MERCHANT_EMAIL,
    }


def _external_ids(spec: _OrderSpec, index: int) -> tuple[str | None, str | None]:
    """(Id, OrderNumber) in the external shop; both null for manual orders (real sample)."""
    if spec.shop_id == SHOPIFY_SHOP_ID:
        return str(6123456780000 + index * 1733), f"#{1180 + index}"
    if spec.shop_id == AMAZON_SHOP_ID:
        amazon_id = f"302-{(4817263 + index * 104729) % 10000000:07d}-{(9038471 + index * 7919) % 10000000:07d}"
        return amazon_id, amazon_id
    return None, None


def _line_item(line: _Line, spec: _OrderSpec, ids: _Ids, index: int, position: int) -> dict[str, Any]:
    product = _PRODUCTS[line.sku]
    rate = _rate(product.tax_index)
    if spec.vat_mode == VAT_MODE_NORMAL:
        unit = product.gross
    else:
        # Intra-EU B2B and export invoices carry no VAT: the line is net (TaxAmount 0). TaxIndex still names the
        # product's rate class, so VatMode, not TaxIndex, decides whether VAT applies.
        unit = _cents(product.gross * 100 / (100 + rate))
    unrebated = _cents(unit * line.quantity)
    total = _cents(unrebated * (100 - line.discount) / 100)
    tax = _vat_contained(total, rate) if spec.vat_mode == VAT_MODE_NORMAL else ZERO
    return {
        "BillbeeId": ids.item(),
        "TransactionId": None if spec.shop_id is None else str(14123000000 + index * 100 + position),
        "Product": {
            "OldId": None,
            "Id": None if spec.shop_id is None else str(8012345000 + product.billbee_id % 1000),
            "Title": product.title,
            "Weight": product.weight_g,
            "SKU": product.sku,
            "SkuOrId": product.sku,
            "IsDigital": False,
            "Images": None,
            "EAN": _ean13(product.ean_body),
            "PlatformData": None,
            "TARICCode": None,
            "CountryOfOrigin": None,
            "BillbeeId": product.billbee_id,
            "Type": 1,
        },
        "Quantity": float(line.quantity),
        "TotalPrice": _money(total),
        "TaxAmount": _money(tax),
        "TaxIndex": product.tax_index,
        "Discount": float(line.discount),
        "Attributes": []
        if line.attribute is None
        else [
            {"Id": str(300000167774100 + index), "Name": line.attribute[0], "Value": line.attribute[1], "Price": 0.0}
        ],
        "GetPriceFromArticleIfAny": False,
        "IsCoupon": False,
        "ShippingProfileId": None,
        "DontAdjustStock": False,
        "UnrebatedTotalPrice": _money(unrebated),
        "SerialNumber": None,
        "InvoiceSKU": product.sku,
    }


def _coupon_item(code: str, amount: Decimal, ids: _Ids) -> dict[str, Any]:
    # A coupon is "interpreted as tax-free payment" [S]: negative gross, TaxAmount 0, no tax index.
    return {
        "BillbeeId": ids.item(),
        "TransactionId": None,
        "Product": {
            "OldId": None,
            "Id": None,
            "Title": f"Gutschein {code}",
            "Weight": None,
            "SKU": None,
            "SkuOrId": code,
            "IsDigital": False,
            "Images": None,
            "EAN": None,
            "PlatformData": None,
            "TARICCode": None,
            "CountryOfOrigin": None,
            "BillbeeId": None,
            "Type": 1,
        },
        "Quantity": 1.0,
        "TotalPrice": _money(-amount),
        "TaxAmount": 0.0,
        "TaxIndex": 0,
        "Discount": 0.0,
        "Attributes": [],
        "GetPriceFromArticleIfAny": False,
        "IsCoupon": True,
        "ShippingProfileId": None,
        "DontAdjustStock": True,
        "UnrebatedTotalPrice": _money(-amount),
        "SerialNumber": None,
        "InvoiceSKU": None,
    }


def _timeline(spec: _OrderSpec, index: int) -> dict[str, datetime | None]:
    """Confirmation, payment, invoice, shipping and last-modification times, all after CreatedAt."""
    jitter = timedelta(seconds=(index * 37) % 60, milliseconds=(index * 271) % 1000)
    created = spec.created if spec.shop_id is None else spec.created + jitter
    # Manual orders carry the order date at midnight and were entered later that morning (real sample).
    entered = created + timedelta(hours=9, minutes=41) if spec.shop_id is None else created + timedelta(minutes=2)
    confirmed = None if spec.shop_id is None else created + timedelta(minutes=1, seconds=12)
    if spec.payment == "open":
        payed = None
    elif spec.payment_method in _INSTANT_METHODS:
        payed = created + timedelta(seconds=18)
    else:
        # Bank transfers show up with the morning's bank statement import: prepayment after two days, an invoice
        # within its 14-day term.
        days = 13 if spec.payment_method == PM_INVOICE else 2
        payed = (created + timedelta(days=days)).replace(hour=8, minute=15, second=3, microsecond=120000)
    # Instant payments: Billbee invoices on payment; prepayment/invoice: the invoice goes out with the order.
    invoice = entered + timedelta(minutes=3, milliseconds=(index * 619) % 1000) if spec.invoiced else None
    shipped = None
    if spec.state in (STATE_SHIPPED, STATE_CLOSED):
        ready = payed if spec.payment_method == PM_PREPAYMENT and payed else created
        shipped = ready.replace(hour=14, minute=30, second=0, microsecond=0) + timedelta(days=1)
    closed = None
    if spec.state == STATE_CLOSED:
        closed = max(t for t in (shipped, payed) if t) + timedelta(days=3)
    last = max(t for t in (created, entered, confirmed, payed, invoice, shipped, closed) if t)
    return {
        "created": created,
        "entered": entered,
        "confirmed": confirmed,
        "payed": payed,
        "invoice": invoice,
        "shipped": shipped,
        "last_modified": last + timedelta(minutes=4, milliseconds=317),
    }


def _payments(
    spec: _OrderSpec, customer: _Customer, total: Decimal, payed: datetime | None, purpose: str, ids: _Ids, index: int
) -> list[dict[str, Any]]:
    if spec.payment in ("open", "no_payment_rows") or payed is None:
        return []
    if spec.payment == "split":
        parts = [(PM_GIFT_CARD, _GIFT_CARD_AMOUNT), (spec.payment_method, total - _GIFT_CARD_AMOUNT)]
    else:
        parts = [(spec.payment_method, total)]
    rows = []
    for payment_type, amount in parts:
        technology, text = _PAYMENT_SOURCE[payment_type]
        rows.append(
            {
                "BillbeeId": ids.payment(),
                "TransactionId": _transaction_id(payment_type, index),
                "PayDate": _timestamp(payed),
                "PaymentType": payment_type,
                "SourceTechnology": technology,
                "SourceText": text,
                "PayValue": _money(amount),
                "Purpose": purpose,
                "Name": customer.name,
            }
        )
    return rows


def _transaction_id(payment_type: int, index: int) -> str | None:
    if payment_type == PM_PAYPAL:
        return f"{5100 + index}4K{index * 7919 % 1000000:06d}P{index:03d}Z"
    if payment_type == PM_STRIPE:
        return f"pi_3Q{index * 104729:010d}Gx{index:02d}"
    if payment_type == PM_KLARNA:
        return f"a1b2{index:04d}-7c3e-4f10-9d2b-{index * 7919:012d}"
    if payment_type == PM_AMAZON_PAY:
        return f"P01-{(1234567 + index * 7919) % 10000000:07d}-{(7654321 + index) % 10000000:07d}"
    if payment_type == PM_GIFT_CARD:
        return f"GC-{index:04d}-XMAS"
    return None  # bank transfers carry no transaction id


def _build_order(spec: _OrderSpec, index: int, ids: _Ids) -> dict[str, Any]:
    customer = (
        _amazon_customer(int(spec.customer.split(":")[1]))
        if spec.customer.startswith("amazon:")
        else _CUSTOMERS[spec.customer]
    )
    times = _timeline(spec, index)
    external_id, order_number = _external_ids(spec, index)
    items = [_line_item(line, spec, ids, index, position) for position, line in enumerate(spec.lines)]
    if spec.coupon:
        items.append(_coupon_item(spec.coupon[0], spec.coupon[1], ids))
    goods = sum((Decimal(str(i["TotalPrice"])) for i in items), ZERO)
    if spec.shipping is not None:
        shipping = spec.shipping
    else:
        shipping = ZERO if goods >= _SHOPIFY_FREE_SHIPPING_FROM else _SHOPIFY_SHIPPING
    adjustment = ZERO
    # TotalCost is items + shipping (+ adjustment), despite the spec's "excluding shipping" (billbee-pitfalls #9).
    total = goods + shipping + adjustment
    rebate = sum((Decimal(str(i["UnrebatedTotalPrice"])) - Decimal(str(i["TotalPrice"])) for i in items), ZERO)
    if spec.invoiced:
        number: int | None = ids.invoice_number
        ids.invoice_number += 1
        prefix: str | None = INVOICE_NUMBER_PREFIX
    else:
        number, prefix = None, None
    # Bank transfers of manual orders quote the invoice number; shop payments the shop's order number.
    purpose = f"Bestellung {order_number}" if order_number else f"Rechnung {prefix}{number}"
    payments = _payments(spec, customer, total, times["payed"], purpose, ids, index)
    paid_amount = sum((Decimal(str(p["PayValue"])) for p in payments), ZERO)

    invoice_address_id = ids.address()
    shipping_address_id = ids.address() if spec.ship_to else invoice_address_id
    shipped = times["shipped"]
    shipments = (
        []
        if shipped is None
        else [
            {
                "BillbeeId": ids.shipment(),
                "ShippingId": f"00340434{161000000000 + index * 7919}",
                "Shipper": "DHL",
                "Created": _timestamp(shipped + timedelta(minutes=-95)),
                "TrackingUrl": "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html",
                "ShippingProviderId": 300000000031001,
                "ShippingProviderProductId": 300000000052001,
                "ShippingCarrier": 1,  # DHL in Billbee's ShippingCarrier enum (unverified numbering)
                "ShipmentType": 0,
            }
        ]
    )
    weight = sum(_PRODUCTS[line.sku].weight_g * line.quantity for line in spec.lines)
    vat_id = customer.vat_id if customer.company else None
    comments = (
        []
        if spec.customer_comment is None
        else [
            {
                "Id": 4100 + index,
                "FromCustomer": True,
                "Text": spec.customer_comment,
                "Name": customer.name,
                "Created": _timestamp(times["created"]),
            }
        ]
    )
    history = [
        {
            "Created": _timestamp(times["entered"]),
            "EventTypeName": "Auftrag eingelesen",
            "Text": "Der Auftrag wurde eingelesen",
            "EmployeeName": None,
            "TypeId": 0,
        },
        {
            "Created": _timestamp(times["created"]),
            "EventTypeName": "Auftrag eingegangen",
            "Text": "Der Auftrag ist eingegangen",
            "EmployeeName": None,
            "TypeId": 86,
        },
    ]
    online = spec.payment_method in _INSTANT_METHODS
    # Key order follows the real API response (ithoc sample), so dumps look like Billbee's.
    return {
        "RebateDifference": _money(rebate),
        "ShippingIds": shipments,
        "AcceptLossOfReturnRight": False,
        "Id": external_id,
        "OrderNumber": order_number,
        "State": spec.state,
        "VatMode": spec.vat_mode,
        "CreatedAt": _timestamp(times["created"]),
        "ShippedAt": _timestamp(shipped),
        "ConfirmedAt": _timestamp(times["confirmed"]),
        "PayedAt": _timestamp(times["payed"]),
        "SellerComment": spec.seller_comment,
        "Comments": comments,
        "InvoiceNumberPrefix": prefix,
        "InvoiceNumberPostfix": None,
        "InvoiceNumber": number,
        "InvoiceDate": _timestamp(times["invoice"]),
        "InvoiceAddress": _address(customer, invoice_address_id),
        "ShippingAddress": _address(customer, shipping_address_id, spec.ship_to),
        "PaymentMethod": spec.payment_method,
        "ShippingCost": _money(shipping),
        "TotalCost": _money(total),
        "AdjustmentCost": _money(adjustment),
        "AdjustmentReason": None,
        "OrderItems": items,
        "Currency": "EUR",
        "Seller": _seller(spec),
        "Buyer": _order_user(spec, customer, index),
        "UpdatedAt": _timestamp(times["last_modified"]) if spec.shop_id is not None else None,
        "TaxRate1": float(TAX_RATE_REGULAR),
        "TaxRate2": float(TAX_RATE_REDUCED),
        "BillBeeOrderId": 300000181400000 + index * 1000 + (index * 7919) % 997,
        "BillBeeParentOrderId": None,
        "VatId": vat_id,
        "Tags": list(spec.tags),
        "ShipWeightKg": round(weight / 1000, 3),
        "LanguageCode": customer.language_code,
        "PaidAmount": _money(paid_amount),
        "ShippingProfileId": None,
        "ShippingProviderId": 300000000031001 if shipped else None,
        "ShippingProviderProductId": 300000000052001 if shipped else None,
        "ShippingProviderName": "DHL" if shipped else None,
        "ShippingProviderProductName": "DHL Paket" if shipped else None,
        "ShippingProfileName": None,
        "PaymentInstruction": None,
        "IsCancelationFor": None,
        "PaymentTransactionId": payments[-1]["TransactionId"] if payments and online else None,
        "DistributionCenter": None,
        "DeliverySourceCountryCode": "DE" if spec.shop_id == AMAZON_SHOP_ID else None,
        "CustomInvoiceNote": None,
        "CustomerNumber": str(customer.number),
        "PaymentReference": order_number if spec.payment_method in (PM_PREPAYMENT, PM_INVOICE) else None,
        "ShippingServices": None,
        "Customer": _customer_model(customer),
        "History": history,
        "Payments": payments,
        "LastModifiedAt": _timestamp(times["last_modified"]),
        "ArchivedAt": None,
        "RestoredAt": None,
        "ApiAccountId": None,
        "ApiAccountName": None,
        "MerchantVatId": _MERCHANT_VAT_ID,
        "CustomerVatId": vat_id,
        "IsFromBillbeeApi": False,
    }


# --- credit notes ----------------------------------------------------------------------------------------------
# Billbee's "Storno" on an invoiced order creates a separate order numbered "<original>-GS" with negated quantities
# and amounts and a Stornorechnung; positions can be removed first (a partial Storno). A negative order without an
# original gets a Gutschrift. The original keeps its state (billbee-api.md §9). Which field links a Storno order to
# its original is unverified, so the sample plays both: BillBeeParentOrderId, or only the "-GS" number.
CREDIT_NOTE_PREFIX = "GS-2026-"
STATE_ORDERED = 1
STATE_CANCELLED = 8


@dataclass(frozen=True)
class _CreditNoteSpec:
    created: datetime
    original: str | None  # the original's order number (None: a Gutschrift of its own)
    state: int
    lines: tuple[tuple[str, int], ...] = ()  # (SKU, quantity) taken back; empty: every line (a full Storno)
    shipping: bool = True  # the shipping is refunded too
    parent_link: bool = True  # BillBeeParentOrderId names the original
    refund: bool = True  # Billbee records the refund as a negative payment
    goodwill: Decimal = ZERO  # a Gutschrift's goodwill amount (19 %)
    customer: str = ""


_CREDIT_NOTE_SPECS: tuple[_CreditNoteSpec, ...] = (
    # A full Storno of a shipped Stripe order (19 % and 7 % with shipping), refunded by Stripe; set to "storniert".
    _CreditNoteSpec(_d(11, 10, 9, 20), "#1208", STATE_CANCELLED),
    # A partial Storno of a mixed 19 %/7 % Klarna order: one honey and the lip balm back, shipping refunded; linked
    # only by its number.
    _CreditNoteSpec(_d(11, 13, 15, 40), "#1202", STATE_CLOSED, lines=(("LM-HON-500", 1), ("NK-LB-01", 1)),
                    parent_link=False),
    # A goodwill Gutschrift for the hotel, without an original; to be set off against its next invoice (no refund).
    _CreditNoteSpec(_d(11, 18, 11, 0), None, STATE_ORDERED, refund=False, goodwill=Decimal("20.00"),
                    customer="seeblick"),
    # A Storno of the very first order, exported weeks before: the face cream back, shipping kept.
    _CreditNoteSpec(_d(11, 19, 10, 5), "#1181", STATE_CLOSED, lines=(("NK-GC-50", 1),), shipping=False),
)


def _negated_item(item: dict[str, Any], quantity: int, ids: _Ids) -> dict[str, Any]:
    """A Storno line: the original's line with its quantity taken back, amounts negated, title prefixed "Storno"."""
    share = Decimal(quantity) / Decimal(str(item["Quantity"]))
    line = copy.deepcopy(item)
    line["BillbeeId"] = ids.item()
    line["Product"]["Title"] = f"Storno {item['Product']['Title']}"
    line["Quantity"] = float(-quantity)
    for name in ("TotalPrice", "TaxAmount", "UnrebatedTotalPrice"):
        line[name] = _money(-_cents(Decimal(str(item[name])) * share))
    return line


def _goodwill_item(amount: Decimal, ids: _Ids) -> dict[str, Any]:
    line = _coupon_item("Kulanz", amount, ids)
    line["Product"]["Title"] = "Kulanzgutschrift Lieferverzug"
    line["Product"]["SkuOrId"] = "KULANZ"
    line.update(IsCoupon=False, TaxIndex=1, TaxAmount=_money(-_vat_contained(amount, TAX_RATE_REGULAR)))
    return line


def _build_credit_note(spec: _CreditNoteSpec, index: int, ids: _Ids, orders: list[dict[str, Any]]) -> dict[str, Any]:
    original = next((o for o in orders if o["OrderNumber"] == spec.original), None) if spec.original else None
    if original is not None:
        order = copy.deepcopy(original)
        wanted = dict(spec.lines)
        items = [
            _negated_item(item, wanted.get(item["Product"]["SKU"], 0) if wanted else int(item["Quantity"]), ids)
            for item in original["OrderItems"]
            if not wanted or item["Product"]["SKU"] in wanted
        ]
        shipping = -Decimal(str(original["ShippingCost"])) if spec.shipping else ZERO
        order.update(OrderNumber=f"{spec.original}-GS", Id=None, BillBeeParentOrderId=(
            original["BillBeeOrderId"] if spec.parent_link else None))
    else:
        customer = _CUSTOMERS[spec.customer]
        base = _OrderSpec(spec.created, None, spec.customer, spec.state, PM_BANK_TRANSFER, (), payment="open")
        order = _build_order(base, index, _Ids())
        items = [_goodwill_item(spec.goodwill, ids)]
        shipping = ZERO
        order.update(InvoiceAddress=_address(customer, ids.address()), ShippingAddress=None)
        order["ShippingAddress"] = order["InvoiceAddress"]
    total = sum((Decimal(str(i["TotalPrice"])) for i in items), ZERO) + shipping
    created = spec.created + timedelta(seconds=index % 60)
    invoiced = created + timedelta(minutes=2, milliseconds=(index * 619) % 1000)
    refunded = created + timedelta(hours=1, minutes=5)
    payments = []
    if spec.refund and original is not None:
        method = original["Payments"][-1]["PaymentType"] if original["Payments"] else original["PaymentMethod"]
        technology, text = _PAYMENT_SOURCE[method]
        payments.append({
            "BillbeeId": ids.payment(),
            "TransactionId": None,
            "PayDate": _timestamp(refunded),
            "PaymentType": method,
            "SourceTechnology": technology,
            "SourceText": text,
            "PayValue": _money(total),
            "Purpose": f"Erstattung {order['OrderNumber']}",
            "Name": original["Payments"][-1]["Name"] if original["Payments"] else None,
        })
    number = ids.credit_note_number
    ids.credit_note_number += 1
    order.update(
        BillBeeOrderId=300000181400000 + index * 1000 + (index * 7919) % 997,
        State=spec.state,
        CreatedAt=_timestamp(created),
        ConfirmedAt=None,
        ShippedAt=None,
        ShippingIds=[],
        PayedAt=_timestamp(refunded) if payments else None,
        PaidAmount=_money(sum((Decimal(str(p["PayValue"])) for p in payments), ZERO)),
        Payments=payments,
        PaymentTransactionId=None,
        InvoiceNumberPrefix=CREDIT_NOTE_PREFIX,
        InvoiceNumber=number,
        InvoiceDate=_timestamp(invoiced),
        OrderItems=items,
        ShippingCost=_money(shipping),
        TotalCost=_money(total),
        RebateDifference=0.0,
        Tags=[],
        Comments=[],
        SellerComment=None if original is None else f"Storno zu Auftrag {spec.original}",
        UpdatedAt=_timestamp(refunded if payments else invoiced),
        LastModifiedAt=_timestamp((refunded if payments else invoiced) + timedelta(minutes=4, milliseconds=317)),
        ShipWeightKg=0.0,
        ShippingProviderId=None,
        ShippingProviderProductId=None,
        ShippingProviderName=None,
        ShippingProviderProductName=None,
        History=[{"Created": _timestamp(created), "EventTypeName": "Auftrag angelegt",
                  "Text": "Stornoauftrag angelegt" if original is not None else "Gutschrift angelegt",
                  "EmployeeName": "Shop-Team", "TypeId": 0}],
    )
    return order


def sample_orders() -> list[dict[str, Any]]:
    """The sample shop's orders (``Data`` items of ``GET /orders``), oldest first, freshly built on each call: the
    orders with their invoices, then the credit notes (Storno orders and one Gutschrift)."""
    ids = _Ids()
    orders = [_build_order(spec, index, ids) for index, spec in enumerate(_ORDER_SPECS, start=1)]
    first = len(orders) + 1
    orders += [_build_credit_note(spec, index, ids, list(orders))
               for index, spec in enumerate(_CREDIT_NOTE_SPECS, start=first)]
    return orders


def is_sample_credit_note(order: dict[str, Any]) -> bool:
    return order.get("InvoiceNumberPrefix") == CREDIT_NOTE_PREFIX


def sample_shops() -> list[dict[str, Any]]:
    """``GET /shopaccounts`` items for the two shops (ShopAccountReadApiModel)."""
    # AccountType numbers come from Billbee's /enums/shopaccounttype, which no public source lists; the values below
    # are placeholders within the spec's enum range. LastSyncState 0 is the first value of /enums/accountsyncstate.
    return [
        {
            "Id": SHOPIFY_SHOP_ID,
            "Name": _SHOPS[SHOPIFY_SHOP_ID][0],
            "AccountType": 22,
            "LastSyncDate": "2026-11-20T16:00:12.44",
            "LastSyncState": 0,
        },
        {
            "Id": AMAZON_SHOP_ID,
            "Name": _SHOPS[AMAZON_SHOP_ID][0],
            "AccountType": 1,
            "LastSyncDate": "2026-11-20T16:00:31.907",
            "LastSyncState": 0,
        },
    ]

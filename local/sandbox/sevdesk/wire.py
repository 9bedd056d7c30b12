"""What every resource of the sevDesk sandbox shares: the wire conventions and the seed data.

Constants (tax rule sets, booking types, id ranges), the default seed (receipt guidance, check accounts, countries,
categories), the error raised inside handlers, Berlin time, the date forms sevDesk accepts and the way it renders
amounts, ids, references and flags.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

try:  # the tz database is missing on some machines (e.g. Windows without the tzdata package)
    from zoneinfo import ZoneInfo

    _BERLIN: tzinfo | None = ZoneInfo("Europe/Berlin")
except (ImportError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError: use the EU DST rule below
    _BERLIN = None

API_PREFIX = "/api/v1"
SEV_CLIENT = {"id": "1000001", "objectName": "SevClient"}
SEV_USER = {"id": "1000101", "objectName": "SevUser"}
SEED_TIME = "2026-01-02T09:00:00+01:00"
CENT = Decimal("0.01")

# Tax rules of sevDesk-Update 2.0 (docs §4). 18-21 are invoice-only ("Usage in vouchers" unsupported).
REVENUE_TAX_RULES = frozenset({1, 2, 3, 4, 5, 11, 17, 18, 19, 20, 21, 22})
EXPENSE_TAX_RULES = frozenset({8, 9, 10, 12, 13, 14, 16})
INVOICE_ONLY_TAX_RULES = frozenset({18, 19, 20, 21})
TAX_RATE_NAMES = {
    "ZERO": Decimal(0),
    "FIVE": Decimal(5),
    "SEVEN": Decimal(7),
    "SIXTEEN": Decimal(16),
    "NINETEEN": Decimal(19),
}
# Bookkeeping 1.0 voucher tax types (docs §2, §4: default/eu/noteu/ss/custom).
TAX_TYPES_V1 = frozenset({"default", "eu", "noteu", "custom", "ss"})
BOOKING_TYPES = frozenset({"FULL_PAYMENT", "N", "CB", "CF", "O", "OF", "MTC", "PARTIAL_PAYMENT"})
# Types that settle the voucher whatever the amount: the difference is a discount, fee or other write-off (docs §5).
SETTLING_BOOKING_TYPES = frozenset({"FULL_PAYMENT", "CB", "CF", "O", "OF", "MTC"})

# Id ranges per object type, in the magnitudes of the live recordings, so an id of one kind never collides with
# another kind's (a connector mixing up a voucher id and a contact id gets a 404, not someone else's object).
ID_BASES = {
    "Voucher": 156_000_001,
    "VoucherPos": 213_000_001,
    "VoucherLog": 148_000_001,
    "Document": 300_000_001,
    "Contact": 138_000_001,
    "ContactAddress": 120_000_001,
    "CommunicationWay": 115_000_001,
    "CheckAccount": 6_306_001,
    "CheckAccountTransaction": 1_897_000_001,
}


def _guide(
    account_id: int,
    number: str,
    name: str,
    description: str,
    rule: tuple[int, str, str],
    rates: list[str],
    receipt_types: list[str],
) -> dict[str, Any]:
    rule_id, rule_name, rule_description = rule
    return {
        "accountDatevId": account_id,
        "accountNumber": number,
        "accountName": name,
        "description": description,
        "allowedTaxRules": [
            {"name": rule_name, "id": rule_id, "description": rule_description, "taxRates": rates},
        ],
        "allowedReceiptTypes": receipt_types,
    }


_RULE_1 = (1, "USTPFL_UMS_EINN", "Umsatzsteuerpflichtige Umsätze")
_RULE_2 = (2, "AUSFUHREN", "Ausfuhren")
_RULE_3 = (3, "INNERGEM_LIEF", "Innergemeinschaftliche Lieferungen")
_RULE_11 = (11, "KLEINUNTERNEHMER_P19", "Steuer nicht erhoben nach §19 UStG")

DEFAULT_RECEIPT_GUIDANCE: list[dict[str, Any]] = [
    _guide(3631, "8400", "Erlöse 19 % USt", "Umsatzerlöse zum Regelsteuersatz", _RULE_1, ["NINETEEN"], ["REVENUE"]),
    _guide(3632, "8300", "Erlöse 7 % USt", "Umsatzerlöse zum ermäßigten Steuersatz", _RULE_1, ["SEVEN"], ["REVENUE"]),
    _guide(3633, "8200", "Erlöse", "Umsatzerlöse ohne Umsatzsteuer", _RULE_1, ["ZERO"], ["REVENUE"]),
    _guide(
        3640,
        "8125",
        "Steuerfreie innergemeinschaftliche Lieferungen §4 Nr. 1b UStG",
        "Lieferungen an Unternehmer im EU-Ausland mit USt-IdNr.",
        _RULE_3,
        ["ZERO"],
        ["REVENUE"],
    ),
    _guide(
        3650,
        "8120",
        "Steuerfreie Umsätze §4 Nr. 1a UStG (Ausfuhr Drittland)",
        "Ausfuhrlieferungen in Drittländer",
        _RULE_2,
        ["ZERO"],
        ["REVENUE"],
    ),
    _guide(
        3660,
        "8195",
        "Erlöse als Kleinunternehmer i.S.d. §19 Abs. 1 UStG",
        "Umsätze, für die als Kleinunternehmer keine Umsatzsteuer erhoben wird",
        _RULE_11,
        ["ZERO"],
        ["REVENUE"],
    ),
    # The expense account of the [JRS]/[STR] recordings: listed by forAllAccounts and forExpense, never by forRevenue.
    # Its allowed rules are the recorded ones (sevdesk-examples/sevdesk-rs_receipt_guidance.json: 9, 12, 13, 14).
    {
        "accountDatevId": 4285,
        "accountNumber": "4970",
        "accountName": "Nebenkosten des Geldverkehrs",
        "description": "z.B. Kontogebühren und Gebühren für Kreditkarten",
        "allowedTaxRules": [
            {
                "name": "VORST_ABZUGSF_AUFW",
                "id": 9,
                "description": "Vorsteuerabziehbare Aufwendungen",
                "taxRates": ["ZERO", "SEVEN", "NINETEEN"],
            },
            {
                "name": "REV_CHARGE_13B_MIT_VORST_ABZUG_0",
                "id": 12,
                "description": "Reverse Charge gem. §13b Abs. 2 UStG mit Vorsteuerabzug 0% (19%) z.B. "
                "Dienstleistungen aus dem Drittland, Bauleistungen",
                "taxRates": ["ZERO"],
            },
            {
                "name": "REV_CHARGE_13B_OHNE_VORST_ABZUG_0",
                "id": 13,
                "description": "Reverse Charge gem. §13b UStG ohne Vorsteuerabzug 0% (19%) z.B. Kleinunternehmer, "
                "Versicherungsvertreter, Ärzte",
                "taxRates": ["ZERO"],
            },
            {
                "name": "REV_CHARGE_13B_EU_0",
                "id": 14,
                "description": "Reverse Charge gem. §13b Abs. 1 EU Umsätze 0% (19%) z.B. Dienstleistung aus den "
                "EU Staaten",
                "taxRates": ["ZERO"],
            },
        ],
        "allowedReceiptTypes": ["EXPENSE"],
    },
]


def _check_account(
    account_id: int, name: str, account_type: str, accounting_number: str, import_type: str | None = None
) -> dict[str, Any]:
    return {
        "id": account_id,
        "name": name,
        "type": account_type,
        "importType": import_type,
        "currency": "EUR",
        "defaultAccount": "0",
        "status": "100",
        "accountingNumber": accounting_number,
        "baseAccount": "0",
        "iban": None,
        "bic": None,
    }


# Fixed ids: the sample connection (local.run) references them. SKR03 numbers, like the guidance above.
DEFAULT_CHECK_ACCOUNTS: list[dict[str, Any]] = [
    _check_account(5001, "Geschäftskonto", "online", "1200", import_type="CSV"),
    _check_account(5101, "PayPal BB", "offline", "1361"),
    _check_account(5102, "Vorkasse BB", "offline", "1362"),
    _check_account(5103, "Rechnung BB", "offline", "1363"),
    _check_account(5104, "Klarna BB", "offline", "1364"),
    _check_account(5105, "Stripe BB", "offline", "1365"),
    _check_account(5106, "Amazon Pay BB", "offline", "1366"),
    _check_account(5199, "Sonstige Zahlungen BB", "offline", "1369"),
    _check_account(5201, "Kasse", "register", "1000"),
]

# Germany is id 1 ([SSS]); the other ids are a sandbox choice. Codes are lower-case like sevDesk's StaticCountry
# ([WHM]: deliveryAddressCountry "fr" "in the lower-case form of StaticCountry"). code=GB returns England, Great
# Britain and United Kingdom (ERRATA sevDesk 12, pitfall 19); a client has to pick United Kingdom by name.
DEFAULT_COUNTRIES: list[dict[str, Any]] = [
    {"id": 1, "code": "de", "name": "Deutschland", "nameEn": "Germany", "locale": "de_DE"},
    {"id": 2, "code": "at", "name": "Österreich", "nameEn": "Austria", "locale": "de_AT"},
    {"id": 3, "code": "ch", "name": "Schweiz", "nameEn": "Switzerland", "locale": "de_CH"},
    {"id": 4, "code": "fr", "name": "Frankreich", "nameEn": "France", "locale": "fr_FR"},
    {"id": 5, "code": "nl", "name": "Niederlande", "nameEn": "Netherlands", "locale": "nl_NL"},
    {"id": 6, "code": "it", "name": "Italien", "nameEn": "Italy", "locale": "it_IT"},
    {"id": 7, "code": "es", "name": "Spanien", "nameEn": "Spain", "locale": "es_ES"},
    {"id": 8, "code": "be", "name": "Belgien", "nameEn": "Belgium", "locale": "nl_BE"},
    {"id": 9, "code": "pl", "name": "Polen", "nameEn": "Poland", "locale": "pl_PL"},
    {"id": 10, "code": "us", "name": "Vereinigte Staaten", "nameEn": "United States", "locale": "en_US"},
    {
        "id": 11,
        "code": "gb",
        "name": "England",
        "nameEn": "England",
        "locale": "en_GB",
        "translationCode": "COUNTRY_ENG",
    },
    {
        "id": 57,
        "code": "gb",
        "name": "Großbritannien",
        "nameEn": "Great Britain",
        "locale": "en_GB",
        "translationCode": "COUNTRY_GBR",
    },
    {"id": 58, "code": "gb", "name": "Vereinigtes Königreich", "nameEn": "United Kingdom", "locale": "en_GB"},
]

# Contact categories per docs §7 (2 supplier, 3 customer, 4 partner, 28 prospect); address category 47
# "Rechnungsadresse" is what [WHM]-style clients send; 48/49 are a sandbox choice.
DEFAULT_CATEGORIES: list[dict[str, Any]] = [
    {"id": 2, "name": "Lieferant", "objectType": "Contact"},
    {"id": 3, "name": "Kunde", "objectType": "Contact"},
    {"id": 4, "name": "Partner", "objectType": "Contact"},
    {"id": 28, "name": "Interessent", "objectType": "Contact"},
    {"id": 47, "name": "Rechnungsadresse", "objectType": "ContactAddress"},
    {"id": 48, "name": "Lieferadresse", "objectType": "ContactAddress"},
    {"id": 49, "name": "Abholadresse", "objectType": "ContactAddress"},
]


def default_seed() -> dict[str, Any]:
    """The seed used when none is given (a deep copy, safe to modify)."""
    return copy.deepcopy(
        {
            "checkAccounts": DEFAULT_CHECK_ACCOUNTS,
            "receiptGuidance": DEFAULT_RECEIPT_GUIDANCE,
            "countries": DEFAULT_COUNTRIES,
            "categories": DEFAULT_CATEGORIES,
            "contacts": [],
            "transactions": [],
        }
    )


class SevdeskApiError(Exception):
    """Raised inside a handler; turned into sevDesk's error body."""

    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def _not_found(model: str, object_id: Any) -> SevdeskApiError:
    # Wording of the [JRS] fixture error_404_code_151.json.
    return SevdeskApiError(404, f"No Model_{model} with the id {object_id} was found", code=151)


# -- time ----------------------------------------------------------------------------------------------------------
def _last_sunday(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() + 1) % 7)


def _to_berlin(moment: datetime) -> datetime:
    if _BERLIN is not None:
        return moment.astimezone(_BERLIN)
    # EU rule: summer time from the last Sunday of March to the last Sunday of October, switching at 01:00 UTC.
    utc = moment.astimezone(UTC)
    start = datetime.combine(_last_sunday(utc.year, 3), datetime.min.time(), UTC) + timedelta(hours=1)
    end = datetime.combine(_last_sunday(utc.year, 10), datetime.min.time(), UTC) + timedelta(hours=1)
    return utc.astimezone(timezone(timedelta(hours=2 if start <= utc < end else 1)))


def _berlin_midnight(day: date) -> str:
    """A calendar day as sevDesk renders voucher dates: Berlin midnight, ``2026-05-07T00:00:00+02:00`` ([JRS])."""
    if _BERLIN is not None:
        return datetime(day.year, day.month, day.day, tzinfo=_BERLIN).isoformat()
    # Midnight CET is 23:00 UTC the day before; DST switches at 01:00 UTC, so that instant has the day's offset.
    probe = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=1)
    offset = _to_berlin(probe).utcoffset() or timedelta(hours=1)
    return datetime(day.year, day.month, day.day, tzinfo=timezone(offset)).isoformat()


def _now_iso() -> str:
    return _to_berlin(datetime.now(UTC)).replace(microsecond=0).isoformat()


_GERMAN_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_UNIX = re.compile(r"^-?\d+(\.\d+)?$")


def _parse_moment(value: Any, what: str) -> tuple[datetime, bool]:
    """A date in any form sevDesk accepts; returns (Berlin datetime, whether a time of day was given).

    voucherDate takes "dd.mm.yyyy" or a Unix timestamp (spec, ERRATA 3) and ISO strings work too; a bare day is
    Berlin local, a Unix timestamp is converted to Berlin time.
    """
    if isinstance(value, bool) or value is None or value == "":
        raise SevdeskApiError(422, f"{what} is required")
    if isinstance(value, (int, float)) or (isinstance(value, str) and _UNIX.match(value.strip())):
        try:
            return _to_berlin(datetime.fromtimestamp(float(value), UTC)), True
        except (OverflowError, OSError, ValueError) as exc:
            raise SevdeskApiError(422, f"Invalid value for {what}: {value!r}") from exc
    if not isinstance(value, str):
        raise SevdeskApiError(422, f"Invalid value for {what}: {value!r}")
    text = value.strip()
    try:
        german = _GERMAN_DATE.match(text)
        if german:
            day = date(int(german.group(3)), int(german.group(2)), int(german.group(1)))
            return datetime.fromisoformat(_berlin_midnight(day)), False
        if len(text) == 10:
            return datetime.fromisoformat(_berlin_midnight(date.fromisoformat(text))), False
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SevdeskApiError(422, f"Invalid value for {what}: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_BERLIN) if _BERLIN is not None else _to_berlin(moment.astimezone())
    return _to_berlin(moment), True


def _parse_day(value: Any, what: str) -> str:
    moment, _ = _parse_moment(value, what)
    return _berlin_midnight(moment.date())


_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")
_INTEGER = re.compile(r"^-?\d+$")


def _parse_document_date(value: Any, what: str) -> datetime:
    """A voucher date or bookAmount's date in one of the forms live clients are known to send (ERRATA sevDesk 3).

    ``dd.mm.yyyy`` (Berlin midnight; jernoxit/sevdesk-rs, WHMCS module), an RFC 3339 date-time WITHOUT fractional
    seconds, with ``Z`` or an offset (sevdesk-rs bookings, numtide), or a Unix timestamp (the spec's "timestamp"): a
    JSON integer, or its digits as a string, the only form a url-encoded body can carry (docs §1). No public client
    sends fractions, a bare ISO day or a time without an offset; those are unproven and refused with 422.
    """
    if isinstance(value, bool) or value is None or value == "":
        raise SevdeskApiError(422, f"{what} is required")
    if isinstance(value, int) or (isinstance(value, str) and _INTEGER.match(value.strip())):
        try:
            return _to_berlin(datetime.fromtimestamp(int(value), UTC))
        except (OverflowError, OSError, ValueError) as exc:
            raise SevdeskApiError(422, f"Invalid value for {what}: {value!r}") from exc
    if isinstance(value, float):
        raise SevdeskApiError(422, f"Invalid value for {what}: {value!r} (a Unix timestamp must be a whole number)")
    if not isinstance(value, str):
        raise SevdeskApiError(422, f"Invalid value for {what}: {value!r}")
    text = value.strip()
    german = _GERMAN_DATE.match(text)
    if german:
        try:
            day = date(int(german.group(3)), int(german.group(2)), int(german.group(1)))
        except ValueError as exc:
            raise SevdeskApiError(422, f"Invalid value for {what}: {value!r} (no such day)") from exc
        return datetime.fromisoformat(_berlin_midnight(day))
    stamp = _RFC3339.match(text)
    if stamp is None:
        raise SevdeskApiError(
            422,
            f"Invalid value for {what}: {value!r} (expected dd.mm.yyyy, a date-time like 2026-05-07T12:00:00+02:00 "
            "or a Unix timestamp)",
        )
    if stamp.group(7):
        raise SevdeskApiError(
            422, f"Invalid value for {what}: {value!r} (fractional seconds are not accepted; send whole seconds)"
        )
    if stamp.group(8) is None:
        raise SevdeskApiError(422, f"Invalid value for {what}: {value!r} (a date-time needs an offset or Z)")
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise SevdeskApiError(422, f"Invalid value for {what}: {value!r} (no such date or time)") from exc
    return _to_berlin(moment)


def _parse_document_day(value: Any, what: str) -> str:
    """A voucher date as sevDesk stores it: the Berlin calendar day at Berlin midnight ([JRS] recordings)."""
    return _berlin_midnight(_parse_document_date(value, what).date())


# -- values --------------------------------------------------------------------------------------------------------
def _decimal(value: Any, what: str) -> Decimal:
    """Numbers arrive as JSON numbers or decimal strings; both are accepted (docs §3, [JRS] payload.rs)."""
    if value is None or isinstance(value, bool) or value == "":
        raise SevdeskApiError(422, f"{what} is required")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise SevdeskApiError(422, f"Invalid value for {what}: {value!r}") from exc
    if not number.is_finite():
        raise SevdeskApiError(422, f"Invalid value for {what}: {value!r}")
    return number


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _num(value: Decimal) -> str:
    """sevDesk's rendering of an amount: a string without trailing zeros (``"30"``, ``"0.1"``, ``"87.49"``)."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def _json_number(value: Decimal) -> int | float:
    """``paidAmount`` is the one amount sevDesk sends as a JSON number ([JRS] voucher.json: ``87.49``, ``0``)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _id_of(value: Any) -> int | None:
    """The id of ``{"id": 1, ...}`` or of a bare id; ids are accepted as integers or strings (ERRATA 4)."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _php_truthy(value: Any) -> bool:
    """sevDesk is PHP: the string "false" is true. [ADP] sent net="false" form-encoded and saw gross re-taxed as net."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def _ref(object_id: int | None, object_name: str) -> dict[str, str] | None:
    return None if object_id is None else {"id": str(object_id), "objectName": object_name}


def _flag(value: bool) -> str:
    return "1" if value else "0"

"""A local stand-in for the sevDesk API v1 (bookkeeping "Update 2.0"), for every endpoint the connector uses.

Behaviour follows ``shared/docs/sevdesk-api.md`` and ``sevdesk-pitfalls.md``; the shapes of the answers follow the 41
live recordings in ``shared/specs/sevdesk-examples/`` (``jernoxit/sevdesk-rs`` ``tests/fixtures``, [JRS]), the
strongest evidence there is, then ``shared/specs/ERRATA.md`` (sevDesk 1-13). ``tests/integration/
test_sevdesk_recorded.py`` compares every answer the sandbox gives for a recorded request with its recording, key by
key and type by type. Where the official spec disagrees, the recordings win:

- every answer is ``{"objects": ...}``; ``GET /X/{id}`` is an array of one; POST/PUT and factory endpoints answer a
  single object (ERRATA 13);
- scalars are strings (``"id": "123"``, ``"status": "1000"``, ``"sumGross": "87.49"``, ``"net": "1"``); amounts are
  rendered the way sevDesk does, without trailing zeros (``"30"``, ``"0.1"``); ``paidAmount`` is a JSON number, and
  so are the ids inside ReceiptGuidance (ERRATA 10);
- scalar fields without a value are sent as ``null`` (ERRATA 11: ``surename``, ``enshrined``, ``recurringInterval``,
  ...), while a reference without a value (``supplier``, ``document``, ``costCentre``, ``parent``,
  ``targetTransaction``, ``accountingType`` in 2.0) is left out, exactly as in every recording;
- errors are ``{"objects": null, "error": {"message", "code", "exceptionUUID", "errorCode", "data", "responseCode"}}``.

Known differences from the official spec that stay on purpose, because the live API answers this way: wrappers and
string ids (ERRATA 4 and 5); ``VoucherPos`` has no ``accountingType`` in 2.0 (the spec requires it) and its
``net``/``isAsset`` are ``"0"``/``"1"`` strings (spec: boolean; [JRS] voucher_positions.json); voucher status
``"750"`` (partially paid, pitfall 30) is missing from the spec's enum.

Choices where the docs are silent are listed in ``DECISIONS``.
"""

from __future__ import annotations

import copy
import hashlib
import math
import pickle
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from local.faults import FaultPlan
from local.sandbox.base import Request, Response, SandboxServer

try:  # the tz database is missing on some machines (e.g. Windows without the tzdata package)
    from zoneinfo import ZoneInfo

    _BERLIN: tzinfo | None = ZoneInfo("Europe/Berlin")
except (ImportError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError: use the EU DST rule below
    _BERLIN = None

DECISIONS = """
(sandbox decision) list endpoints default to limit=100 and cap at 1000 (docs §1: limit 1-1000; [GZ] saw 100 as default);
(sandbox decision) a booking on a paid voucher is HTTP 422 with code 751 (the docs give the code, not the status);
(sandbox decision) not-found objects are HTTP 404 with code 151 (the [JRS] fixture error_404_code_151.json);
(sandbox decision) bookkeeping 1.0 requires voucher.taxType and position.accountingType; 2.0 payloads without them 422;
(sandbox decision) a temp file may be attached more than once (the docs do not say whether saveVoucher consumes it);
(sandbox decision) saveVoucher needs at least one position on create;
(sandbox decision) a foreign-currency voucher needs propertyExchangeRate (we cannot look rates up offline);
(sandbox decision) PARTIAL_PAYMENT is accepted as an alias of N (numtide sends it successfully, docs §5);
(sandbox decision) contacts may share a customerNumber (the API offers an availability check, not a constraint);
(sandbox decision) a voucher without voucherDate gets today's date;
(sandbox decision) a clearing account without accountingNumber gets the next free number (at least 1361);
(sandbox decision) StaticCountry ids other than Germany = 1 are invented; the code filter ignores case;
(sandbox decision) code=GB answers three rows (ERRATA 12: England, Great Britain, United Kingdom), all with code "gb",
    German `name` and English `nameEn`; United Kingdom is the last one, so "take the first row" picks the wrong one;
(sandbox decision) voucher dates (voucherDate, deliveryDate, deliveryDateUntil, paymentDeadline) and bookAmount's date
    take "dd.mm.yyyy", an RFC 3339 date-time without fractional seconds, or a Unix timestamp as a JSON integer or a
    string of digits (form-encoded bodies carry only strings; docs §1); anything else is 422 naming the field;
(sandbox decision) deliveryDate after voucherDate is accepted unless delivery_after_voucher_date="reject" (sevDesk
    forbids it on invoices; whether on vouchers is unknown);
(sandbox decision) an X-Version other than "default" on GET /Tools/bookkeepingSystemVersion is HTTP 400 (docs §1 says
    1.0/2.0 are rejected there, not how); every other endpoint ignores the header;
(sandbox decision) resetToOpen on a draft is 422; it unlinks the voucher's bookings: a transaction the booking created
    (offline account) is removed, a linked online transaction goes back to status 100;
(sandbox decision) the temp file answer counts PDF pages; sevDesk's own count is unverified.
"""

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


class SevdeskSandbox(SandboxServer):
    """The sevDesk API on 127.0.0.1; state lives in memory and is inspected with ``dump()``."""

    api = "sevdesk"
    url_prefix = API_PREFIX

    def __init__(
        self,
        *,
        api_token: str,
        bookkeeping_version: str = "2.0",
        seed: dict[str, Any] | None = None,
        faults: FaultPlan | None = None,
        hold_seconds: float = 3.0,
        rate_limit_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        delivery_after_voucher_date: str = "accept",
    ) -> None:
        super().__init__(faults=faults, hold_seconds=hold_seconds)
        if bookkeeping_version not in ("1.0", "2.0"):
            raise ValueError("bookkeeping_version must be '1.0' or '2.0'")
        self.api_token = api_token
        self.bookkeeping_version = bookkeeping_version  # may be switched at runtime
        # sevDesk refuses a deliveryDate after the invoiceDate on invoices; whether it does on vouchers is unknown, so
        # both readings can be played: "accept" (default) or "reject" (422 naming deliveryDate). Switchable at runtime.
        self.delivery_after_voucher_date = delivery_after_voucher_date
        self.rate_limit_per_second = rate_limit_per_second
        self.clock = clock
        self._bucket_lock = threading.Lock()
        self._tokens = self._bucket_capacity()
        self._bucket_at = clock()
        self._seed = copy.deepcopy(seed)
        self._load_seed()
        self._register_routes()

    @property
    def delivery_after_voucher_date(self) -> str:
        return self._delivery_after_voucher_date

    @delivery_after_voucher_date.setter
    def delivery_after_voucher_date(self, value: str) -> None:
        if value not in ("accept", "reject"):
            raise ValueError("delivery_after_voucher_date must be 'accept' or 'reject'")
        self._delivery_after_voucher_date = value

    # -- test helpers --------------------------------------------------------------------------------------------
    def archive_check_account(self, account_id: int | str) -> None:
        """Archive a check account the way a user does in sevDesk's UI: ``status`` becomes ``"0"`` (docs §5: 100 active,
        0 archived). The API offers no call for it; bookings on it are then refused."""
        with self.lock:
            account = self.check_accounts.get(int(account_id))
            if account is None:
                raise KeyError(f"no check account {account_id}")
            account["status"] = "0"
            account["update"] = _now_iso()

    # -- seed ----------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seeded state (data, ids, recorded exchanges), keeping the server, faults and settings.

        Cheaper than a new sandbox: stopping a server waits for its poll interval (up to 0.5 s).
        """
        with self.lock:
            self._load_seed()
            self.exchanges.clear()
        with self._bucket_lock:
            self._tokens = self._bucket_capacity()
            self._bucket_at = self.clock()

    def _load_seed(self) -> None:
        """Keys given in ``seed`` replace the default's; missing keys keep the default."""
        self._next_ids = dict(ID_BASES)
        self.vouchers: dict[int, dict[str, Any]] = {}
        self.positions: dict[int, dict[str, Any]] = {}
        self.bookings: list[dict[str, Any]] = []
        self.documents: dict[int, dict[str, Any]] = {}
        self.temp_files: dict[str, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.addresses: dict[int, dict[str, Any]] = {}
        self.communication_ways: dict[int, dict[str, Any]] = {}
        self.check_accounts: dict[int, dict[str, Any]] = {}
        self.transactions: dict[int, dict[str, Any]] = {}
        data = default_seed()
        data.update(copy.deepcopy(self._seed or {}))
        self.guidance: list[dict[str, Any]] = data["receiptGuidance"]
        self.countries: list[dict[str, Any]] = data["countries"]
        self.categories: list[dict[str, Any]] = data["categories"]
        for account in data["checkAccounts"]:
            account_id = int(account["id"])
            self.check_accounts[account_id] = {**account, "id": account_id, "create": SEED_TIME, "update": SEED_TIME}
        for contact in data["contacts"]:
            contact_id = int(contact["id"]) if "id" in contact else self._allocate("Contact")
            self.contacts[contact_id] = {**contact, "id": contact_id, "create": SEED_TIME, "update": SEED_TIME}
        for txn in data["transactions"]:
            txn_id = int(txn["id"]) if "id" in txn else self._allocate("CheckAccountTransaction")
            self.transactions[txn_id] = {
                "id": txn_id,
                "checkAccount": int(txn["checkAccount"]),
                "amount": _decimal(txn["amount"], "amount"),
                "valueDate": _parse_day(txn.get("valueDate", SEED_TIME), "valueDate"),
                "paymtPurpose": txn.get("paymtPurpose"),
                "payeePayerName": txn.get("payeePayerName"),
                "status": str(txn.get("status", "100")),
                "create": SEED_TIME,
                "update": SEED_TIME,
            }
        for kind, table in (("Contact", self.contacts), ("CheckAccountTransaction", self.transactions)):
            if table:
                self._next_ids[kind] = max(self._next_ids[kind], max(table) + 1)

    def _allocate(self, kind: str) -> int:
        value = self._next_ids[kind]
        self._next_ids[kind] = value + 1
        return value

    # -- base-class hooks ----------------------------------------------------------------------------------------
    def error_response(
        self, status: int, message: str, *, retry_after: int | None = None, code: int | None = None
    ) -> Response:
        # Error body of the [JRS] fixtures, used for every 4xx/5xx (docs §1).
        body: dict[str, Any] = {
            "objects": None,
            "error": {
                "message": message,
                "code": code,
                "exceptionUUID": str(uuid.uuid4()),
                "errorCode": 0,
                "data": [],
                "responseCode": status,
            },
        }
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Response(status=status, body=body, headers=headers)

    def authenticate(self, request: Request) -> Response | None:
        # The raw token, no "Bearer" (docs §1, pitfall 26): anything else is a 401.
        if request.headers.get("authorization") == self.api_token:
            return None
        return self.error_response(401, "Authentication required")

    def _bucket_capacity(self) -> float:
        rate = self.rate_limit_per_second
        return max(1.0, rate) if rate else 0.0

    def throttle(self, request: Request, operation: str) -> Response | None:
        """Token bucket on the injected clock. sevDesk publishes no limit (docs §1), so None means unlimited."""
        rate = self.rate_limit_per_second
        if rate is None:
            return None
        with self._bucket_lock:
            now = self.clock()
            self._tokens = min(self._bucket_capacity(), self._tokens + (now - self._bucket_at) * rate)
            self._bucket_at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            wait = (1 - self._tokens) / rate
        return self.error_response(429, "Too Many Requests", retry_after=max(1, math.ceil(wait)))

    # -- routing -------------------------------------------------------------------------------------------------
    def _register_routes(self) -> None:
        p = API_PREFIX
        table: list[tuple[str, str, str, Callable[[Request], Response]]] = [
            ("GET", r"/Tools/bookkeepingSystemVersion", "bookkeeping_version", self._bookkeeping_version),
            ("GET", r"/ReceiptGuidance/forRevenue", "guidance_revenue", self._guidance_revenue),
            ("GET", r"/ReceiptGuidance/forExpense", "guidance_expense", self._guidance_expense),
            ("GET", r"/ReceiptGuidance/forAllAccounts", "guidance_all", self._guidance_all),
            ("GET", r"/CheckAccount", "list_check_accounts", self._list_check_accounts),
            ("GET", r"/CheckAccount/(?P<id>\d+)", "get_check_account", self._get_check_account),
            (
                "POST",
                r"/CheckAccount/Factory/clearingAccount",
                "create_clearing_account",
                self._create_clearing_account,
            ),
            ("GET", r"/CheckAccountTransaction", "list_transactions", self._list_transactions),
            ("GET", r"/CheckAccountTransaction/(?P<id>\d+)", "get_transaction", self._get_transaction),
            ("POST", r"/CheckAccountTransaction", "create_transaction", self._create_transaction),
            ("POST", r"/Voucher/Factory/uploadTempFile", "upload_temp_file", self._upload_temp_file),
            ("POST", r"/Voucher/Factory/saveVoucher", "save_voucher", self._save_voucher),
            ("GET", r"/Voucher", "list_vouchers", self._list_vouchers),
            ("GET", r"/Voucher/(?P<id>\d+)", "get_voucher", self._get_voucher),
            ("PUT", r"/Voucher/(?P<id>\d+)/bookAmount", "book_amount", self._book_amount),
            ("PUT", r"/Voucher/(?P<id>\d+)/resetToOpen", "reset_to_open", self._reset_to_open),
            ("GET", r"/VoucherPos", "list_voucher_positions", self._list_voucher_positions),
            ("GET", r"/Contact", "list_contacts", self._list_contacts),
            ("POST", r"/Contact", "create_contact", self._create_contact),
            ("GET", r"/Contact/(?P<id>\d+)", "get_contact", self._get_contact),
            ("GET", r"/Contact/Factory/getNextCustomerNumber", "next_customer_number", self._next_customer_number),
            (
                "GET",
                r"/Contact/Mapper/checkCustomerNumberAvailability",
                "check_customer_number",
                self._check_customer_number,
            ),
            ("GET", r"/ContactAddress", "list_contact_addresses", self._list_contact_addresses),
            ("POST", r"/ContactAddress", "create_contact_address", self._create_contact_address),
            ("GET", r"/CommunicationWay", "list_communication_ways", self._list_communication_ways),
            ("POST", r"/CommunicationWay", "create_communication_way", self._create_communication_way),
            ("GET", r"/StaticCountry", "list_countries", self._list_countries),
            ("GET", r"/Category", "list_categories", self._list_categories),
        ]
        for method, path, operation, handler in table:
            self.route(method, re.escape(p) + path, operation, self._guarded(handler))

    def _guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            try:
                return handler(request)
            except SevdeskApiError as exc:
                return self.error_response(exc.status, exc.message, code=exc.code)

        return run

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

    # -- basics and guidance -------------------------------------------------------------------------------------
    def _bookkeeping_version(self, request: Request) -> Response:
        # X-Version selects a per-resource version; "default" (the oldest) is what sevdesk-rs pins. "1.0" and "2.0" are
        # rejected on this endpoint (docs §1); the status is a sandbox decision.
        version = request.headers.get("x-version")
        if version is not None and version.strip() != "default":
            raise SevdeskApiError(
                400, f"X-Version {version!r} is not available for /Tools/bookkeepingSystemVersion; send 'default'"
            )
        return self._ok({"version": self.bookkeeping_version})

    def _guidance_revenue(self, request: Request) -> Response:
        return self._ok([g for g in self.guidance if "REVENUE" in g["allowedReceiptTypes"]])

    def _guidance_expense(self, request: Request) -> Response:
        return self._ok([g for g in self.guidance if "EXPENSE" in g["allowedReceiptTypes"]])

    def _guidance_all(self, request: Request) -> Response:
        return self._ok(list(self.guidance))

    # -- check accounts and transactions ---------------------------------------------------------------------------
    def _render_check_account(self, account: dict[str, Any]) -> dict[str, Any]:
        # Keys, order and types of sevdesk-examples/sevdesk-rs_check_account(_list).json.
        booked = [t["amount"] for t in self.transactions.values() if t["checkAccount"] == account["id"]]
        number = account.get("accountingNumber")
        return {
            "id": str(account["id"]),
            "objectName": "CheckAccount",
            "additionalInformation": None,
            "create": account["create"],
            "update": account["update"],
            "sevClient": SEV_CLIENT,
            "name": account["name"],
            "type": account["type"],
            "importType": account.get("importType"),
            "currency": account.get("currency", "EUR"),
            "checkAccId": None,
            "pin": None,
            "defaultAccount": str(account.get("defaultAccount", "0")),
            "status": str(account.get("status", "100")),  # "100" active, "0" archived
            "translationCode": None,
            "bankServer": None,
            "balance": _num(sum(booked, Decimal(0))),
            "accountingNumber": None if number is None else str(number),
            "iban": account.get("iban"),
            "bic": account.get("bic"),
            "baseAccount": str(account.get("baseAccount", "0")),
            "priority": "0",
            "countryCode": None,
            "autoMapTransaction": "1",
            "autoSyncTransactions": "0",
            "lastSync": None,
        }

    def _list_check_accounts(self, request: Request) -> Response:
        rows = [self._render_check_account(a) for _, a in sorted(self.check_accounts.items())]
        return self._page(request, rows)

    def _get_check_account(self, request: Request) -> Response:
        account = self.check_accounts.get(int(request.params["id"]))
        if account is None:
            raise _not_found("CheckAccount", request.params["id"])
        return self._ok([self._render_check_account(account)])

    def _create_clearing_account(self, request: Request) -> Response:
        body = self._body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SevdeskApiError(422, "name is required")
        taken = {str(a.get("accountingNumber")) for a in self.check_accounts.values() if a.get("accountingNumber")}
        raw_number = body.get("accountingNumber")
        if raw_number is None:
            # Nullable per spec; sevDesk then picks the next free booking account ([JRS] payload.rs).
            number = str(max([int(n) for n in taken if n.isdigit()] + [1360]) + 1)
        else:
            number = str(_id_of(raw_number) if _id_of(raw_number) is not None else raw_number)
            if not number.isdigit():
                raise SevdeskApiError(422, f"Invalid value for accountingNumber: {raw_number!r}")
            if number in taken:
                # Must be unique among ALL check accounts (spec, pitfall 22).
                raise SevdeskApiError(422, f"The accounting number {number} is already used by another check account")
        account_id = self._allocate("CheckAccount")
        now = _now_iso()
        self.check_accounts[account_id] = {
            **_check_account(account_id, name.strip(), "offline", number),
            "create": now,
            "update": now,
        }
        return self._ok(self._render_check_account(self.check_accounts[account_id]), status=201)

    def _render_transaction(self, txn: dict[str, Any]) -> dict[str, Any]:
        # Keys, order and types of sevdesk-examples/sevdesk-rs_transaction.json and write_transaction_create.json;
        # ``targetTransaction`` (a transfer) would sit after ``enshrined``, and is left out like every empty reference.
        return {
            "id": str(txn["id"]),
            "objectName": "CheckAccountTransaction",
            "additionalInformation": None,
            "create": txn["create"],
            "update": txn["update"],
            "sevClient": SEV_CLIENT,
            "valueDate": txn["valueDate"],
            "entryDate": txn["valueDate"],
            "amount": _num(txn["amount"]),
            "feeAmount": None,
            "gvCode": None,
            "entryText": None,
            "primaNotaNo": None,
            "paymtPurpose": txn.get("paymtPurpose"),
            "payeePayerBankCode": None,
            "payeePayerAcctNo": None,
            "payeePayerName": txn.get("payeePayerName"),
            "checkAccount": _ref(txn["checkAccount"], "CheckAccount"),
            "status": txn["status"],
            "score": None,
            "compareHash": None,
            "enshrined": None,
            "obonoReceiptUuid": None,
            "externalId": None,
            "deletedAt": None,
            "restoredAt": None,
        }

    def _get_transaction(self, request: Request) -> Response:
        txn = self.transactions.get(int(request.params["id"]))
        if txn is None:
            # Verbatim the recorded answer to GET /CheckAccountTransaction/1 (error_404_code_151.json).
            raise _not_found("CheckAccountTransaction", request.params["id"])
        return self._ok([self._render_transaction(txn)])

    def _list_transactions(self, request: Request) -> Response:
        rows = sorted(self.transactions.values(), key=lambda t: t["id"])
        account_id = _id_of(request.query_value("checkAccount[id]"))
        if account_id is not None:
            rows = [t for t in rows if t["checkAccount"] == account_id]
        status = request.query_value("status")
        if status:
            rows = [t for t in rows if t["status"] == status]
        purpose = request.query_value("paymtPurpose")
        if purpose:  # a substring match ([JRS] README)
            rows = [t for t in rows if purpose.lower() in (t.get("paymtPurpose") or "").lower()]
        # isBooked is ignored, like every unknown filter ([GZ], docs §5).
        return self._page(request, [self._render_transaction(t) for t in rows])

    def _create_transaction(self, request: Request) -> Response:
        body = self._body(request)
        account_id = _id_of(body.get("checkAccount"))
        account = self.check_accounts.get(account_id) if account_id is not None else None
        if account is None:
            raise SevdeskApiError(422, "checkAccount is required")
        if account["type"] != "online":
            # Verbatim from the [JRS] fixture error_422_offline_account.json (pitfall 21).
            raise SevdeskApiError(
                422,
                "You can only create transactions on online checkaccounts. "
                "Use document bookAmount to create transactions on other types.",
            )
        txn_id = self._allocate("CheckAccountTransaction")
        now = _now_iso()
        self.transactions[txn_id] = {
            "id": txn_id,
            "checkAccount": account["id"],
            "amount": _decimal(body.get("amount"), "amount"),
            "valueDate": _to_berlin(_parse_moment(body.get("valueDate"), "valueDate")[0]).isoformat(),
            "paymtPurpose": body.get("paymtPurpose"),
            "payeePayerName": body.get("payeePayerName"),
            "status": str(body.get("status", "100")),
            "create": now,
            "update": now,
        }
        return self._ok(self._render_transaction(self.transactions[txn_id]), status=201)

    # -- files ---------------------------------------------------------------------------------------------------
    def _upload_temp_file(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            # The spec says media type "form-data"; the real endpoint wants multipart with field `file` (docs §3).
            raise SevdeskApiError(400, "Bad request: expected multipart/form-data with a field 'file'")
        _, files = request.multipart()
        upload = files.get("file")
        if upload is None:
            raise SevdeskApiError(400, "Bad request: no file in field 'file'")
        if not upload.data:
            raise SevdeskApiError(422, "The uploaded file is empty")
        data = upload.data
        origin = _sniff_mime(data, upload.content_type)
        extension = {"application/pdf": "pdf", "application/xml": "xml", "text/xml": "xml"}.get(origin, "")
        if not extension:
            extension = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else "bin"
        filename = f"{secrets.token_hex(16)}.{extension}"
        digest = hashlib.sha256(data).hexdigest()
        e_invoice = extension == "xml" and b"CrossIndustryInvoice" in data
        self.temp_files[filename] = {
            "filename": filename,
            "originalName": upload.filename,
            "mimeType": origin,
            "size": len(data),
            "sha256": digest,
            "data": data,
            "pages": max(1, len(re.findall(rb"/Type\s*/Page(?!s)", data))) if origin == "application/pdf" else 1,
        }
        return self._ok(
            {
                "pages": self.temp_files[filename]["pages"],
                "mimeType": "image/jpg",  # sevDesk answers image/jpg for PDFs too (spec example, [JRS] fixture)
                "originMimeType": origin,
                "filename": filename,
                "contentHash": digest,
                "content": [],
                "isEInvoice": e_invoice,
            },
            status=201,
        )

    def file_bytes(self, filename: str) -> bytes:
        """The bytes of an uploaded temp file (for tests)."""
        with self.lock:
            return bytes(self.temp_files[filename]["data"])

    # -- vouchers: saveVoucher -------------------------------------------------------------------------------------
    def _save_voucher(self, request: Request) -> Response:
        body = self._body(request)
        voucher_in = body.get("voucher")
        if not isinstance(voucher_in, dict):
            raise SevdeskApiError(422, "voucher is required")
        positions_in = body.get("voucherPosSave") or []
        deletes_in = body.get("voucherPosDelete") or []
        if not isinstance(positions_in, list) or not all(isinstance(p, dict) for p in positions_in):
            raise SevdeskApiError(422, "voucherPosSave must be a list of VoucherPos objects")
        if not isinstance(deletes_in, list):
            raise SevdeskApiError(422, "voucherPosDelete must be a list of {id, objectName} or null")

        existing: dict[str, Any] | None = None
        if voucher_in.get("id") not in (None, "", 0):
            existing_id = _id_of(voucher_in.get("id"))
            existing = self.vouchers.get(existing_id) if existing_id is not None else None
            if existing is None:
                raise _not_found("Voucher", voucher_in.get("id"))
            if existing["status"] != 50:
                # Only drafts change (pitfall 7, [JRS] measured: 400 with code 90400).
                raise SevdeskApiError(400, "Use resetToDraft first", code=90400)
        fields = {**(existing["input"] if existing else {}), **voucher_in}
        header = self._validate_voucher(fields)

        filename = body.get("filename")
        if filename is not None and not isinstance(filename, str):
            raise SevdeskApiError(422, f"Invalid value for filename: {filename!r}")
        if filename not in (None, "") and filename not in self.temp_files:
            raise SevdeskApiError(
                422, f"The file {filename} could not be found; upload it with /Voucher/Factory/uploadTempFile first"
            )
        delete_ids = self._validate_deletes(deletes_in, existing)
        if existing is None and not positions_in:
            raise SevdeskApiError(422, "A voucher needs at least one position (voucherPosSave)")
        positions = [self._validate_position(p, i, header, existing) for i, p in enumerate(positions_in)]
        if len({p["net"] for p in positions}) > 1:
            raise SevdeskApiError(
                422, "All voucher positions must use the same value for 'net' (either all net or all gross amounts)"
            )

        # Everything is valid: apply.
        now = _now_iso()
        voucher_id = existing["id"] if existing else self._allocate("Voucher")
        for pos_id in delete_ids:
            del self.positions[pos_id]
        rate = header["propertyExchangeRate"]
        saved_positions = []
        for pos in positions:
            pos_id = pos.pop("id") or self._allocate("VoucherPos")
            old = self.positions.get(pos_id)
            record = {
                **pos,
                "id": pos_id,
                "voucher": voucher_id,
                "create": old["create"] if old else now,
                "update": now,
            }
            record.update(_position_sums(record, rate))
            self.positions[pos_id] = record
            saved_positions.append(record)
        # sevDesk totals only the positions sent in THIS call ([JRS] measured; pitfall 7).
        totals = {
            key: sum((p[key] for p in saved_positions), Decimal(0))
            for key in (
                "sumNet",
                "sumTax",
                "sumGross",
                "sumNetForeignCurrency",
                "sumTaxForeignCurrency",
                "sumGrossForeignCurrency",
            )
        }
        voucher = {
            **header,
            **totals,
            "id": voucher_id,
            "input": {k: v for k, v in fields.items() if k != "id"},
            "create": existing["create"] if existing else now,
            "update": now,
            "paidAmount": existing["paidAmount"] if existing else Decimal(0),
            "payDate": existing["payDate"] if existing else None,
            "document": existing["document"] if existing else None,
            "showNet": bool(positions and positions[0]["net"]),
        }
        document = None
        if filename not in (None, ""):
            document = self._attach_document(str(filename), voucher_id, now)
            voucher["document"] = document["id"]
        self.vouchers[voucher_id] = voucher
        # {voucher, voucherPos, [document,] vatdrop} (write_voucher_save_create.json and, with a file,
        # write_voucher_save_update_release_attach.json); no "filename" key, although docs §3 shows one.
        result: dict[str, Any] = {
            "voucher": self._render_voucher(voucher, answer="updated" if existing else "created"),
            "voucherPos": [self._render_position(p, saved_now=True) for p in saved_positions],
        }
        if document is not None:
            result["document"] = self._render_document(document)
        result["vatdrop"] = "not relevant"
        return self._ok(result, status=201)

    def _validate_voucher(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The voucher header as sevDesk 2.0 checks it; returns the normalised header (no state is changed)."""
        if fields.get("objectName") != "Voucher":
            raise SevdeskApiError(422, "objectName must be 'Voucher'")
        status = _id_of(fields.get("status"))
        if status not in (50, 100):
            # Update 2.0: create/update as draft (50) or open (100) only; paid only via bookAmount (pitfall 3).
            raise SevdeskApiError(
                422,
                f"Invalid status {fields.get('status')!r}. Vouchers can only be saved with "
                "status 50 (draft) or 100 (open); use bookAmount to pay them",
            )
        credit_debit = fields.get("creditDebit")
        if credit_debit not in ("C", "D"):
            raise SevdeskApiError(422, f"Invalid value for creditDebit: {credit_debit!r} (expected 'C' or 'D')")
        voucher_type = fields.get("voucherType")
        if voucher_type not in ("VOU", "RV"):
            raise SevdeskApiError(422, f"Invalid value for voucherType: {voucher_type!r} (expected 'VOU' or 'RV')")

        tax_rule: int | None = None
        tax_type: str | None = None
        if self.bookkeeping_version == "2.0":
            tax_rule = _id_of(fields.get("taxRule"))
            if tax_rule is None:
                raise SevdeskApiError(422, "taxRule is required (sevdesk-Update 2.0)")
            if tax_rule not in REVENUE_TAX_RULES | EXPENSE_TAX_RULES:
                raise SevdeskApiError(422, f"Unknown taxRule {tax_rule}")
            if tax_rule in INVOICE_ONLY_TAX_RULES:
                # Rules 18-21 list "Usage in vouchers" as unsupported (docs §4, pitfall 10).
                raise SevdeskApiError(422, f"The tax rule {tax_rule} can not be used for vouchers; use an invoice")
            expected = REVENUE_TAX_RULES if credit_debit == "D" else EXPENSE_TAX_RULES
            if tax_rule not in expected:
                kind = "revenue (creditDebit D)" if credit_debit == "D" else "expense (creditDebit C)"
                raise SevdeskApiError(422, f"The tax rule {tax_rule} is not allowed for {kind} vouchers")
            # taxType is silently dropped in 2.0 (docs §4, pitfall 8).
        else:
            # 1.0 (sandbox decision): the legacy taxType is mandatory; a 2.0 payload (taxRule only) is refused.
            tax_type = fields.get("taxType")
            if tax_type not in TAX_TYPES_V1:
                raise SevdeskApiError(
                    422,
                    "taxType is required for bookkeeping system version 1.0 "
                    f"(one of {', '.join(sorted(TAX_TYPES_V1))}); taxRule is not supported",
                )

        supplier = _id_of(fields.get("supplier"))
        supplier_name = fields.get("supplierName")
        if fields.get("supplier") not in (None, "") and (supplier is None or supplier not in self.contacts):
            raise SevdeskApiError(422, f"The contact {fields.get('supplier')!r} given as supplier does not exist")
        if supplier is None and not (isinstance(supplier_name, str) and supplier_name.strip()):
            raise SevdeskApiError(422, "Either supplier or supplierName is required")

        voucher_date = (
            _parse_document_day(fields["voucherDate"], "voucherDate")
            if fields.get("voucherDate") not in (None, "")
            else _berlin_midnight(_to_berlin(datetime.now(UTC)).date())
        )
        currency = fields.get("currency") or "EUR"
        if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
            raise SevdeskApiError(422, f"Invalid value for currency: {currency!r}")
        exchange_rate: Decimal | None = None
        if currency != "EUR":
            if fields.get("propertyExchangeRate") in (None, ""):
                raise SevdeskApiError(422, f"A voucher in {currency} needs propertyExchangeRate")
            exchange_rate = _decimal(fields["propertyExchangeRate"], "propertyExchangeRate")
            if exchange_rate <= 0:
                raise SevdeskApiError(422, "propertyExchangeRate must be positive")

        def optional_day(name: str) -> str | None:
            value = fields.get(name)
            return None if value in (None, "") else _parse_document_day(value, name)

        delivery_date = optional_day("deliveryDate")
        delivery_until = optional_day("deliveryDateUntil")
        payment_deadline = optional_day("paymentDeadline")
        if (
            self.delivery_after_voucher_date == "reject"
            and delivery_date is not None
            and datetime.fromisoformat(delivery_date) > datetime.fromisoformat(voucher_date)
        ):
            # sevDesk's rule on invoices; played on vouchers only when the switch says so (a sandbox decision).
            raise SevdeskApiError(
                422,
                f"deliveryDate {delivery_date[:10]} must not lie after the voucherDate {voucher_date[:10]}",
            )
        description = fields.get("description")
        return {
            "status": status,
            "creditDebit": credit_debit,
            "voucherType": voucher_type,
            "taxRule": tax_rule,
            "taxType": tax_type,
            "supplier": supplier,
            "supplierName": supplier_name if isinstance(supplier_name, str) else None,
            "description": str(description) if description is not None else None,
            "voucherDate": voucher_date,
            # Without a deliveryDate sevDesk repeats the voucher date ([JRS] write_voucher_save_create.json).
            "deliveryDate": delivery_date or voucher_date,
            "deliveryDateUntil": delivery_until,
            "paymentDeadline": payment_deadline,
            "currency": currency,
            "propertyExchangeRate": exchange_rate,
            "costCentre": _id_of(fields.get("costCentre")),
        }

    def _validate_deletes(self, deletes_in: list[Any], existing: dict[str, Any] | None) -> list[int]:
        ids = []
        for item in deletes_in:
            pos_id = _id_of(item)
            pos = self.positions.get(pos_id) if pos_id is not None else None
            if pos is None or existing is None or pos["voucher"] != existing["id"]:
                raise SevdeskApiError(422, f"voucherPosDelete: no position {item!r} on this voucher")
            ids.append(pos["id"])
        return ids

    def _validate_position(
        self, pos: dict[str, Any], index: int, header: dict[str, Any], existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        where = f"voucherPosSave[{index}]"
        if pos.get("objectName") != "VoucherPos":
            raise SevdeskApiError(422, f"{where}: objectName must be 'VoucherPos'")
        pos_id: int | None = None
        if pos.get("id") not in (None, "", 0):
            pos_id = _id_of(pos.get("id"))
            known = self.positions.get(pos_id) if pos_id is not None else None
            if known is None or existing is None or known["voucher"] != existing["id"]:
                raise SevdeskApiError(422, f"{where}: the position {pos.get('id')!r} does not belong to this voucher")
        tax_rate = _decimal(pos.get("taxRate"), f"{where}.taxRate")
        if tax_rate < 0:
            raise SevdeskApiError(422, f"{where}: taxRate must not be negative")
        if pos.get("net") is None:
            raise SevdeskApiError(422, f"{where}: net is required")
        net = _php_truthy(pos["net"])
        amount_field = "sumNet" if net else "sumGross"
        if pos.get(amount_field) in (None, ""):
            raise SevdeskApiError(
                422, f"{where}: {amount_field} is required for a position with net={str(net).lower()}"
            )
        amount = _decimal(pos[amount_field], f"{where}.{amount_field}")

        account_datev: int | None = None
        accounting_type: int | None = None
        if self.bookkeeping_version == "2.0":
            account_datev = _id_of(pos.get("accountDatev"))
            if account_datev is None:
                raise SevdeskApiError(422, f"{where}: accountDatev is required (sevdesk-Update 2.0)")
            self._check_guidance(where, account_datev, header, tax_rate)
        else:
            accounting_type = _id_of(pos.get("accountingType"))
            if accounting_type is None:
                raise SevdeskApiError(422, f"{where}: accountingType is required for bookkeeping system version 1.0")
        comment = pos.get("comment")
        return {
            "id": pos_id,
            "accountDatev": account_datev,
            "accountingType": accounting_type,
            "taxRate": tax_rate,
            "net": net,
            "amount": amount,
            "comment": str(comment) if comment is not None else None,
            "isAsset": _php_truthy(pos.get("isAsset", False)),
        }

    def _check_guidance(self, where: str, account_datev: int, header: dict[str, Any], tax_rate: Decimal) -> None:
        """Account x receipt type x tax rule x rate must be allowed by ReceiptGuidance (docs §4, pitfall 9)."""
        guide = next((g for g in self.guidance if int(g["accountDatevId"]) == account_datev), None)
        if guide is None:
            raise SevdeskApiError(422, f"{where}: accountDatev {account_datev} is unknown or can not be used")
        account = f"{guide['accountNumber']} ({guide['accountName']})"
        receipt_type = "REVENUE" if header["creditDebit"] == "D" else "EXPENSE"
        if receipt_type not in guide["allowedReceiptTypes"]:
            raise SevdeskApiError(422, f"{where}: account {account} can not be used for {receipt_type} vouchers")
        rule = next((r for r in guide["allowedTaxRules"] if int(r["id"]) == header["taxRule"]), None)
        if rule is None:
            raise SevdeskApiError(422, f"{where}: tax rule {header['taxRule']} is not allowed for account {account}")
        allowed = [TAX_RATE_NAMES[name] for name in rule["taxRates"] if name in TAX_RATE_NAMES]
        if tax_rate not in allowed:
            rates = ", ".join(_num(r) for r in allowed)
            raise SevdeskApiError(
                422,
                f"{where}: tax rate {_num(tax_rate)} is not allowed for account {account} "
                f"with tax rule {rule['name']} (allowed: {rates})",
            )

    def _attach_document(self, filename: str, voucher_id: int, now: str) -> dict[str, Any]:
        temp = self.temp_files[filename]
        document_id = self._allocate("Document")
        stem, _, extension = filename.rpartition(".")
        document = {
            "id": document_id,
            "voucher": voucher_id,
            "filename": filename,
            "stem": stem,
            "extension": extension,
            "size": temp["size"],
            "sha256": temp["sha256"],
            "mimeType": temp["mimeType"],
            "originalName": temp["originalName"],
            "create": now,
        }
        self.documents[document_id] = document
        return document

    # -- vouchers: rendering and reading ---------------------------------------------------------------------------
    def _render_voucher(self, v: dict[str, Any], answer: str = "read") -> dict[str, Any]:
        """A voucher in the keys, order and types of the recordings (sevdesk-rs_voucher.json, voucher_list.json,
        write_voucher_*.json).

        ``answer`` is "read" (GET, PUT), "created" (saveVoucher of a new voucher: the recording adds
        ``propertyCreationOrigin: null``) or "updated" (saveVoucher of an existing draft: ``propertyIsBookkeepingV1:
        null`` instead). Empty references (``supplier``, ``document``, ``costCentre``) are left out, as recorded.
        """
        out: dict[str, Any] = {
            "id": str(v["id"]),
            "objectName": "Voucher",
            "additionalInformation": None,
        }
        if answer == "created":
            out["propertyCreationOrigin"] = None
        elif answer == "updated":
            out["propertyIsBookkeepingV1"] = None
        out.update(
            {
                "create": v["create"],
                "update": v["update"],
                "sevClient": SEV_CLIENT,
                "createUser": SEV_USER,
                "voucherDate": v["voucherDate"],
            }
        )
        if v["supplier"] is not None:
            out["supplier"] = _ref(v["supplier"], "Contact")
        out["supplierName"] = v["supplierName"]
        out["description"] = v["description"]
        if v["document"] is not None:
            out["document"] = _ref(v["document"], "Document")
        foreign = v["propertyExchangeRate"] is not None
        out.update(
            {
                "resultDisdar": None,
                "payDate": v["payDate"],
                "status": str(v["status"]),
                "currency": v["currency"],
                "sumNet": _num(v["sumNet"]),
                "sumTax": _num(v["sumTax"]),
                "sumGross": _num(v["sumGross"]),
                "sumNetAccounting": _num(v["sumNet"]),
                "sumTaxAccounting": _num(v["sumTax"]),
                "sumGrossAccounting": _num(v["sumGross"]),
                "showNet": _flag(v["showNet"]),
                "paidAmount": _json_number(v["paidAmount"]),
                "taxType": v["taxType"],
                "creditDebit": v["creditDebit"],
                "hidden": "0",
                "voucherType": v["voucherType"],
                "recurringIntervall": None,
                "recurringInterval": None,
                "recurringStartDate": None,
                "recurringNextVoucher": None,
                "recurringLastVoucher": None,
                "recurringEndDate": None,
                "enshrined": None,
                "sendType": None,
                "inSource": None,
                "iban": None,
                "accountingSpecialCase": None,
                "paymentDeadline": v["paymentDeadline"],
                "tip": "0",
                "mileageRate": "0",
                "selectedForPaymentFile": "0",
                "supplierNameAtSave": None,
                "taxmaroStockAccount": None,
                "vatNumber": None,
                "deliveryDate": v["deliveryDate"],
                "deliveryDateUntil": v["deliveryDateUntil"],
            }
        )
        if foreign:
            # Not in the (EUR-only) recordings; the field the client sent (docs §11), echoed like sevDesk's input.
            out["propertyExchangeRate"] = _num(v["propertyExchangeRate"])
        out.update(
            {
                "sumDiscountNet": "0",
                "sumDiscountGross": "0",
                "sumNetForeignCurrency": _num(v["sumNetForeignCurrency"]) if foreign else "0",
                "sumTaxForeignCurrency": _num(v["sumTaxForeignCurrency"]) if foreign else "0",
                "sumGrossForeignCurrency": _num(v["sumGrossForeignCurrency"]) if foreign else "0",
                "sumDiscountNetForeignCurrency": "0",
                "sumDiscountGrossForeignCurrency": "0",
            }
        )
        if v["taxRule"] is not None:
            out["taxRule"] = _ref(v["taxRule"], "TaxRule")
        if v["costCentre"] is not None:
            out["costCentre"] = _ref(v["costCentre"], "CostCentre")
        return out

    def _render_position(self, p: dict[str, Any], saved_now: bool = False) -> dict[str, Any]:
        """A position as in sevdesk-rs_voucher_positions.json. In a saveVoucher answer (``saved_now``)
        ``cateringTip`` is ``null``; read back later it is ``"0"`` (write_voucher_save_*.json, voucher_positions.json).
        """
        foreign = self.vouchers.get(p["voucher"], {}).get("propertyExchangeRate") is not None
        out: dict[str, Any] = {
            "id": str(p["id"]),
            "objectName": "VoucherPos",
            "additionalInformation": None,
            "create": p["create"],
            "update": p["update"],
            "sevClient": SEV_CLIENT,
            "voucher": _ref(p["voucher"], "Voucher"),
            "taxRate": _num(p["taxRate"]),
            "sum": None,
            # A string flag like every scalar in the live API ([JRS] voucher_positions.json: "net": "1").
            "net": _flag(p["net"]),
            "isAsset": _flag(p["isAsset"]),
            "assetMemoValue": "0",
            "sumNet": _num(p["sumNet"]),
            "sumTax": _num(p["sumTax"]),
            "sumGross": _num(p["sumGross"]),
            "sumNetAccounting": _num(p["sumNet"]),
            "sumTaxAccounting": _num(p["sumTax"]),
            "sumGrossAccounting": _num(p["sumGross"]),
            "comment": p["comment"],
            "isGwg": "0",
            "cateringTaxRate": None,
            "cateringTip": None if saved_now else "0",
            "specialAccountingField1": None,
            "specialAccountingField2": None,
            "specialAccountingField3": None,
            "specialAccountingField4": None,
            "specialAccountingField5": None,
        }
        if p["accountDatev"] is not None:
            out["accountDatev"] = _ref(p["accountDatev"], "AccountDatev")
        if p["accountingType"] is not None:
            out["accountingType"] = _ref(p["accountingType"], "AccountingType")
        out.update(
            {
                "isPercentage": "1",
                "discountedValue": "0",
                "sumNetForeignCurrency": _num(p["sumNetForeignCurrency"]) if foreign else "0",
                "sumTaxForeignCurrency": _num(p["sumTaxForeignCurrency"]) if foreign else "0",
                "sumGrossForeignCurrency": _num(p["sumGrossForeignCurrency"]) if foreign else "0",
                "sumDiscountForeignCurrency": "0",
                "createNextPart": None,
            }
        )
        return out

    def _render_document(self, d: dict[str, Any]) -> dict[str, Any]:
        # Shape of the "document" in the [JRS] fixture write_voucher_save_update_release_attach.json.
        return {
            "id": str(d["id"]),
            "objectName": "Document",
            "additionalInformation": None,
            "create": d["create"],
            "update": d["create"],
            "documentNumber": None,
            "createUser": SEV_USER,
            "updateUser": SEV_USER,
            "mimeType": None,
            "description": None,
            "sevClient": SEV_CLIENT,
            "filename": d["stem"],
            "status": "50",
            "extension": d["extension"],
            "filesize": str(d["size"]),
            "contentHash": d["sha256"],
        }

    def _get_voucher(self, request: Request) -> Response:
        voucher = self.vouchers.get(int(request.params["id"]))
        if voucher is None:
            raise _not_found("Voucher", request.params["id"])
        return self._ok([self._render_voucher(voucher)])

    def _list_vouchers(self, request: Request) -> Response:
        rows = sorted(self.vouchers.values(), key=lambda v: v["id"])
        like = request.query_value("descriptionLike")
        if like:  # a SUBSTRING match (docs §8, pitfall 14)
            rows = [v for v in rows if like.lower() in (v["description"] or "").lower()]
        search = request.query_value("searchCommentOrDescription")
        if search:
            needle = search.lower()
            rows = [
                v
                for v in rows
                if needle in (v["description"] or "").lower()
                or any(
                    needle in (p["comment"] or "").lower() for p in self.positions.values() if p["voucher"] == v["id"]
                )
            ]
        for name in ("creditDebit", "voucherType"):
            wanted = request.query_value(name)
            if wanted:
                rows = [v for v in rows if v[name] == wanted]
        status = request.query_value("status")
        if status:
            rows = [v for v in rows if str(v["status"]) == status]
        contact = _id_of(request.query_value("contact[id]"))
        if contact is not None:
            rows = [v for v in rows if v["supplier"] == contact]
        for name in ("startDate", "endDate"):
            bound_text = request.query_value(name)
            if bound_text is None or bound_text == "":
                continue
            if not _UNIX.match(bound_text):
                # ISO dates give 200 and an empty list (docs §8, pitfall 15, [Blume1805] five runs).
                return self._page(request, [])
            bound = float(bound_text)
            sign = 1 if name == "startDate" else -1  # startDate: on or after; endDate: on or before
            rows = [v for v in rows if sign * (datetime.fromisoformat(v["voucherDate"]).timestamp() - bound) >= 0]
        # embed=voucherPos and every other unknown filter are ignored silently (docs §1, §3).
        return self._page(request, [self._render_voucher(v) for v in rows])

    def _list_voucher_positions(self, request: Request) -> Response:
        rows = sorted(self.positions.values(), key=lambda p: p["id"])
        voucher_id = _id_of(request.query_value("voucher[id]"))
        if voucher_id is not None:
            rows = [p for p in rows if p["voucher"] == voucher_id]
        return self._page(request, [self._render_position(p) for p in rows])

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
        effective = amount if voucher["creditDebit"] == "D" else -amount
        paid = voucher["paidAmount"] + effective
        if paid > voucher["sumGross"]:
            paid = voucher["sumGross"]  # an over-booking is accepted and paidAmount capped ([JRS])
        settled = effective > 0 and (booking_type in SETTLING_BOOKING_TYPES or paid >= voucher["sumGross"])
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
                "payeePayerName": voucher["supplierName"] or self._contact_display_name(voucher["supplier"]),
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

    # -- contacts ------------------------------------------------------------------------------------------------
    def _contact_display_name(self, contact_id: int | None) -> str | None:
        contact = self.contacts.get(contact_id) if contact_id is not None else None
        if contact is None:
            return None
        if contact.get("name"):
            return str(contact["name"])
        return " ".join(str(contact[k]) for k in ("surename", "familyname") if contact.get(k)) or None

    def _render_contact(self, c: dict[str, Any]) -> dict[str, Any]:
        """A contact in the keys, order and types of sevdesk-rs_contact.json and write_contact_create.json: every
        field is present, ``null`` when unset (an empty string counts as unset); ``parent`` only when set."""

        def text(key: str) -> str | None:
            value = c.get(key)
            return None if value in (None, "") else str(value)

        def flag(key: str, default: bool) -> str:
            return _flag(_php_truthy(c.get(key, default)))

        out: dict[str, Any] = {
            "id": str(c["id"]),
            "objectName": "Contact",
            "additionalInformation": None,
            "create": c["create"],
            "update": c["update"],
            "name": text("name"),
            "status": str(c.get("status") or 100),
            "customerNumber": text("customerNumber"),
            "surename": text("surename"),
            "familyname": text("familyname"),
            "titel": text("titel"),
            "category": _ref(_id_of(c.get("category")), "Category"),
            "description": text("description"),
            "academicTitle": text("academicTitle"),
            "gender": text("gender"),
            "sevClient": SEV_CLIENT,
            "name2": text("name2"),
            "birthday": text("birthday"),
            "vatNumber": text("vatNumber"),
            "bankAccount": text("bankAccount"),
            "bankNumber": text("bankNumber"),
            "mandateReference": text("mandateReference"),
            "defaultCashbackTime": text("defaultCashbackTime"),
            "defaultCashbackPercent": text("defaultCashbackPercent"),
            "defaultTimeToPay": text("defaultTimeToPay"),
            "taxNumber": text("taxNumber"),
            "taxOffice": text("taxOffice"),
            "exemptVat": flag("exemptVat", False),
            "taxType": text("taxType"),
            "defaultDiscountAmount": text("defaultDiscountAmount"),
            "defaultDiscountPercentage": flag("defaultDiscountPercentage", True),
            "buyerReference": text("buyerReference"),
            "governmentAgency": flag("governmentAgency", False),
            "defaultShowVat": flag("defaultShowVat", True),
        }
        if out["category"] is None:
            del out["category"]  # not reachable through the API (category is required); seeds may omit it
        if _id_of(c.get("parent")) is not None:
            out["parent"] = _ref(_id_of(c.get("parent")), "Contact")
        return out

    def _list_contacts(self, request: Request) -> Response:
        rows = sorted(self.contacts.values(), key=lambda c: c["id"])
        if request.query_value("depth") != "1":
            # Without depth=1 only organisations come back (spec, docs §7, pitfall 19).
            rows = [c for c in rows if c.get("name")]
        number = request.query_value("customerNumber")
        if number is not None and number != "":
            rows = [c for c in rows if str(c.get("customerNumber") or "") == number]  # exact (docs §7)
        name = request.query_value("name")
        if name:
            needle = name.lower()
            rows = [
                c
                for c in rows
                if any(needle in str(c.get(k) or "").lower() for k in ("name", "surename", "familyname"))
            ]
        category = _id_of(request.query_value("category[id]"))
        if category is not None:
            rows = [c for c in rows if _id_of(c.get("category")) == category]
        return self._page(request, [self._render_contact(c) for c in rows])

    def _get_contact(self, request: Request) -> Response:
        contact = self.contacts.get(int(request.params["id"]))
        if contact is None:
            raise _not_found("Contact", request.params["id"])
        return self._ok([self._render_contact(contact)])

    def _create_contact(self, request: Request) -> Response:
        body = self._body(request)
        if _id_of(body.get("category")) is None:
            raise SevdeskApiError(422, "category is required")  # the only required field of Model_Contact
        if not any(isinstance(body.get(k), str) and body[k].strip() for k in ("name", "surename", "familyname")):
            raise SevdeskApiError(422, "A contact needs a name (organisation) or surename/familyname (person)")
        parent = _id_of(body.get("parent"))
        if parent is not None and parent not in self.contacts:
            raise SevdeskApiError(422, f"The parent contact {parent} does not exist")
        contact_id = self._allocate("Contact")
        now = _now_iso()
        self.contacts[contact_id] = {**body, "id": contact_id, "create": now, "update": now}
        return self._ok(self._render_contact(self.contacts[contact_id]), status=201)

    def _used_customer_numbers(self) -> set[str]:
        return {str(c["customerNumber"]) for c in self.contacts.values() if c.get("customerNumber")}

    def _next_customer_number(self, request: Request) -> Response:
        numeric = [int(n) for n in self._used_customer_numbers() if n.isdigit()]
        return self._ok(str(max(numeric, default=999) + 1))

    def _check_customer_number(self, request: Request) -> Response:
        number = request.query_value("customerNumber") or ""
        return self._ok(number not in self._used_customer_numbers())

    def _contact_ref(self, body: dict[str, Any]) -> int:
        contact_id = _id_of(body.get("contact"))
        if contact_id is None:
            raise SevdeskApiError(422, "contact is required")
        if contact_id not in self.contacts:
            raise _not_found("Contact", contact_id)
        return contact_id

    def _render_address(self, a: dict[str, Any], expand_contact: bool = False) -> dict[str, Any]:
        """An address as in sevdesk-rs_contact_address_list.json (``contact`` a reference) or, answering the POST, as
        in write_contact_address_create.json (``contact`` fully expanded). No name2/name3/name4 keys: the recordings
        have none, although the spec lists them."""
        contact = self.contacts.get(a["contact"]) if expand_contact else None
        return {
            "id": str(a["id"]),
            "objectName": "ContactAddress",
            "additionalInformation": None,
            "create": a["create"],
            "update": a["update"],
            "contact": self._render_contact(contact) if contact is not None else _ref(a["contact"], "Contact"),
            "street": a.get("street"),
            "zip": a.get("zip"),
            "city": a.get("city"),
            "country": _ref(a["country"], "StaticCountry"),
            "category": _ref(a.get("category"), "Category"),
            "name": a.get("name"),
            "sevClient": SEV_CLIENT,
        }

    def _list_contact_addresses(self, request: Request) -> Response:
        rows = sorted(self.addresses.values(), key=lambda a: a["id"])
        contact_id = _id_of(request.query_value("contact[id]"))
        if contact_id is not None:
            rows = [a for a in rows if a["contact"] == contact_id]
        return self._page(request, [self._render_address(a) for a in rows])

    def _create_contact_address(self, request: Request) -> Response:
        body = self._body(request)
        contact_id = self._contact_ref(body)
        country = _id_of(body.get("country"))
        if country is None:
            raise SevdeskApiError(422, "country is required")
        if not any(int(c["id"]) == country for c in self.countries):
            raise _not_found("StaticCountry", country)
        category = _id_of(body.get("category"))
        if category is not None and not any(int(c["id"]) == category for c in self.categories):
            raise _not_found("Category", category)
        address_id = self._allocate("ContactAddress")
        now = _now_iso()
        self.addresses[address_id] = {
            **{k: body.get(k) for k in ("street", "zip", "city", "name", "name2", "name3", "name4")},
            "id": address_id,
            "contact": contact_id,
            "country": country,
            "category": category,
            "create": now,
            "update": now,
        }
        return self._ok(self._render_address(self.addresses[address_id], expand_contact=True), status=201)

    def _render_communication_way(self, w: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(w["id"]),
            "objectName": "CommunicationWay",
            "additionalInformation": None,
            "create": w["create"],
            "update": w["update"],
            "contact": _ref(w["contact"], "Contact"),
            "type": w["type"],
            "value": w["value"],
            "key": _ref(w["key"], "CommunicationWayKey"),
            "main": _flag(w["main"]),
            "sevClient": SEV_CLIENT,
        }

    def _list_communication_ways(self, request: Request) -> Response:
        rows = sorted(self.communication_ways.values(), key=lambda w: w["id"])
        contact_id = _id_of(request.query_value("contact[id]"))
        if contact_id is not None:
            rows = [w for w in rows if w["contact"] == contact_id]
        way_type = request.query_value("type")
        if way_type:
            rows = [w for w in rows if w["type"] == way_type]
        main = request.query_value("main")
        if main in ("0", "1", "true", "false"):
            rows = [w for w in rows if w["main"] == (main in ("1", "true"))]
        return self._page(request, [self._render_communication_way(w) for w in rows])

    def _create_communication_way(self, request: Request) -> Response:
        body = self._body(request)
        contact_id = self._contact_ref(body)
        way_type = body.get("type")
        if way_type not in ("EMAIL", "PHONE", "WEB", "MOBILE"):
            raise SevdeskApiError(422, f"Invalid value for type: {way_type!r}")
        value = body.get("value")
        if not isinstance(value, str) or not value.strip():
            raise SevdeskApiError(422, "value is required")
        key = _id_of(body.get("key"))
        if key is None or key not in range(1, 9):  # keys 1-8 per docs §7
            raise SevdeskApiError(422, "key is required (a CommunicationWayKey 1-8)")
        way_id = self._allocate("CommunicationWay")
        now = _now_iso()
        self.communication_ways[way_id] = {
            "id": way_id,
            "contact": contact_id,
            "type": way_type,
            "value": value.strip(),
            "key": key,
            "main": _php_truthy(body.get("main", False)),
            "create": now,
            "update": now,
        }
        return self._ok(self._render_communication_way(self.communication_ways[way_id]), status=201)

    # -- static data ---------------------------------------------------------------------------------------------
    def _list_countries(self, request: Request) -> Response:
        rows = self.countries
        code = request.query_value("code")
        if code:
            rows = [c for c in rows if str(c["code"]).lower() == code.lower()]
        return self._page(
            request,
            [
                {
                    "id": str(c["id"]),
                    "objectName": "StaticCountry",
                    "code": c["code"],
                    "name": c["name"],
                    "nameEn": c.get("nameEn"),
                    "translationCode": c.get("translationCode") or f"COUNTRY_{str(c['code']).upper()}",
                    "locale": c.get("locale"),
                    "priority": str(c.get("priority", 100)),
                }
                for c in rows
            ],
        )

    def _list_categories(self, request: Request) -> Response:
        rows = self.categories
        object_type = request.query_value("objectType")
        if object_type:
            rows = [c for c in rows if c["objectType"] == object_type]
        return self._page(
            request,
            [
                {
                    "id": str(c["id"]),
                    "objectName": "Category",
                    "create": SEED_TIME,
                    "update": SEED_TIME,
                    "name": c["name"],
                    "objectType": c["objectType"],
                    "priority": "0",
                    "code": None,
                    "color": None,
                    "postingAccount": None,
                }
                for c in rows
            ],
        )

    # -- persistence between local runs -------------------------------------------------------------------------
    _STATE_ATTRIBUTES = (
        "_next_ids", "vouchers", "positions", "bookings", "documents", "temp_files", "contacts", "addresses",
        "communication_ways", "check_accounts", "transactions", "guidance", "countries", "categories",
        "bookkeeping_version",
    )

    def export_state(self) -> bytes:
        """Everything the account holds, for ``local.run --state`` (a file the runner itself wrote and reads)."""
        with self.lock:
            return pickle.dumps({name: getattr(self, name) for name in self._STATE_ATTRIBUTES})

    def import_state(self, data: bytes) -> None:
        state = pickle.loads(data)  # noqa: S301 - only the runner's own state file
        with self.lock:
            for name in self._STATE_ATTRIBUTES:
                if name in state:
                    setattr(self, name, state[name])

    # -- inspection ----------------------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """The sandbox's state as JSON-ready data (``sevdesk.json`` of ``local.run``), in the API's own shapes."""
        with self.lock:
            vouchers = []
            for voucher_id, voucher in sorted(self.vouchers.items()):
                entry = self._render_voucher(voucher)
                entry["positions"] = [
                    self._render_position(p) for _, p in sorted(self.positions.items()) if p["voucher"] == voucher_id
                ]
                document = self.documents.get(voucher["document"]) if voucher["document"] is not None else None
                entry["file"] = (
                    None
                    if document is None
                    else {
                        "filename": document["filename"],
                        "originalName": document["originalName"],
                        "mimeType": document["mimeType"],
                        "size": document["size"],
                        "sha256": document["sha256"],
                        "documentId": str(document["id"]),
                    }
                )
                entry["bookings"] = [
                    {
                        **self._render_voucher_log(b),
                        "type": b["type"],
                        "amount": _num(b["amount"]),
                        "checkAccount": _ref(b["checkAccount"], "CheckAccount"),
                        "checkAccountTransaction": _ref(b["transaction"], "CheckAccountTransaction"),
                    }
                    for b in self.bookings
                    if b["voucher"] == voucher_id
                ]
                vouchers.append(entry)
            contacts = []
            for contact_id, contact in sorted(self.contacts.items()):
                entry = self._render_contact(contact)
                entry["addresses"] = [
                    self._render_address(a) for a in self.addresses.values() if a["contact"] == contact_id
                ]
                entry["communicationWays"] = [
                    self._render_communication_way(w)
                    for w in self.communication_ways.values()
                    if w["contact"] == contact_id
                ]
                contacts.append(entry)
            accounts = []
            for account_id, account in sorted(self.check_accounts.items()):
                entry = self._render_check_account(account)
                entry["transactions"] = [
                    self._render_transaction(t)
                    for _, t in sorted(self.transactions.items())
                    if t["checkAccount"] == account_id
                ]
                accounts.append(entry)
            files = [
                {
                    "filename": f["filename"],
                    "originalName": f["originalName"],
                    "mimeType": f["mimeType"],
                    "size": f["size"],
                    "sha256": f["sha256"],
                    "attachedTo": [
                        str(d["voucher"]) for d in self.documents.values() if d["filename"] == f["filename"]
                    ],
                }
                for f in self.temp_files.values()
            ]
            return {
                "bookkeepingVersion": self.bookkeeping_version,
                "vouchers": vouchers,
                "contacts": contacts,
                "checkAccounts": accounts,
                "files": files,
            }

    def vouchers_with_description(self, description: str) -> list[dict[str, Any]]:
        """Dumped vouchers whose description is exactly ``description`` (the duplicate check of docs §8)."""
        return [v for v in self.dump()["vouchers"] if v["description"] == description]


def _sniff_mime(data: bytes, declared: str) -> str:
    if data.startswith(b"%PDF"):
        return "application/pdf"
    if data.lstrip().startswith(b"<?xml") or data.lstrip().startswith(b"<"):
        return "application/xml"
    return declared or "application/octet-stream"


def _position_sums(pos: dict[str, Any], exchange_rate: Decimal | None) -> dict[str, Decimal]:
    """sevDesk computes the rest of a position from sumNet (net=true) or sumGross (net=false); sumTax is read-only.

    A foreign-currency voucher keeps the sent amounts in ``sum*ForeignCurrency`` and stores EUR (amount x
    propertyExchangeRate) in ``sum*`` (docs §11, numtide commit 247b20be).
    """
    rate = pos["taxRate"]
    amount = _money(pos["amount"])
    if pos["net"]:
        net = amount
        tax = _money(net * rate / 100)
        gross = net + tax
    else:
        gross = amount
        net = _money(gross * 100 / (100 + rate))
        tax = gross - net
    sums = {"sumNetForeignCurrency": net, "sumTaxForeignCurrency": tax, "sumGrossForeignCurrency": gross}
    if exchange_rate is not None:
        gross_eur = _money(gross * exchange_rate)
        net_eur = _money(net * exchange_rate)
        sums.update(sumNet=net_eur, sumTax=gross_eur - net_eur, sumGross=gross_eur)
    else:
        sums.update(sumNet=net, sumTax=tax, sumGross=gross)
    return sums

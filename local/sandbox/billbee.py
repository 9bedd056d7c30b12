"""A Billbee REST API sandbox: the endpoints the connector uses, behaving like ``app.billbee.io/api/v1``.

Sources for every behaviour below: ``shared/docs/billbee-api.md`` (§ numbers), ``billbee-pitfalls.md`` (#numbers),
``shared/specs/billbee-swagger.json`` [S] and the official C# SDK [CS]. Orders are kept as the raw API dicts
(PascalCase, unknown fields included) and returned in the same format.

Decisions where the real API is undocumented (each marked "unverified" in the docs):
- Unknown order id: HTTP 404 with an empty body. A Billbee developer: "Wenn eine ID angegeben wird zu der bei Billbee
  keine Order gefunden werden kann, liefert der Endpoint 404 zurück" (billbeeio/billbee-csharp-sdk#83); the SDK's error
  text there ("NotFound: -") shows a body without ErrorCode/ErrorMessage/Message, i.e. ASP.NET's bare NotFound().
  ErrorCode 2 (OrderNotFound) is therefore never sent in a 200.
- Naive timestamps (query and order fields) are compared as they are; the zone Billbee means is undocumented
  (pitfall #5). A query value with an offset or ``Z`` is converted to naive UTC. A ``+`` that arrives unencoded turns
  into a space (as in ASP.NET) and the value is rejected with 400, exposing the client bug.
- ``tag`` with several values: the order must carry all of them ("the tags the order must have attached" [S]);
  with ``excludeTags=true`` an order carrying any of them is dropped, orders without tags are kept. Case-insensitive.
- ``shopId`` filter: manual orders (``Seller.BillbeeShopId`` null) are dropped (unverified, conservative).
- Tagging an archived order (``ArchivedAt`` set) is allowed (real behaviour unverified, pitfall #21).
- Enum endpoints answer a bare JSON array of ``{Id, Name}`` (no envelope): [CS] ``EnumEndPoint`` deserialises the body
  as ``List<EnumEntry>``. Names are the [CS] enum names (§7); a live account may show renamed states.
- 429 body: the JSON string WebApiThrottle (the usual ASP.NET Web API throttle) answers with; Retry-After is whole
  seconds >= 1 [S info.description]. Throttled requests do not count against the windows.
  ``error_response(429, ..., retry_after=None)`` answers without the header (the fault kind ``429bare``).
- ``includePositions=false`` leaves ``Positions`` and ``AdditionalFees`` null, so a client has to ask for them.
- Scalar query parameters bind by their plain name only (``page=2``; ``page[0]=2`` is ignored, as ASP.NET binds a
  simple type); array parameters per ``array_form`` below.
- CreateInvoice's ``PdfDownloadUrl`` really serves the PDF: ``http://127.0.0.1:<port>/download/invoices/<token>.pdf``,
  outside ``/api/v1`` and without Billbee authentication or throttling, as a presigned object-store URL
  (``https://objectstore.billbee.io`` in the php-sdk fixture); the token (``secrets.token_urlsafe``) is new on every
  call and tied to the order, the bytes are the ones rendered for that call, it stays valid while the sandbox runs
  (real lifetime unverified, docs §10.4), and an unknown token is a 404. Operation ``download_invoice_pdf``.

Readings the evidence does not settle are switches: constructor keywords, also settable as attributes while the
sandbox runs (validated on assignment). The default is the strongest evidence:
- ``invoice_totals`` ``"positions"`` | ``"with_fees"`` (ERRATA Billbee 6): the php-sdk invoice-list fixture has
  TotalGross/TotalNet 158.76/133.41 = the positions only, 4-decimal position totals and a ShipCost fee of
  Gross 11.996 / Net 10.08 / VatAmount 1.916 for ShippingCost 12.00; ``"with_fees"`` puts the fees into the totals
  and keeps every amount in cents (the sandbox's earlier answer). CreateInvoice's totals include the fees either way
  (php-sdk CreateInvoice fixture 170.76/143.5). Details in ``invoices.py``.
- ``null_lists`` ``False`` | ``True`` (ERRATA Billbee 7): by default an empty ``ShippingServices`` is rendered
  ``null``, as in the real page (ithoc); ``True`` renders every empty order list (``Tags``, ``Payments``,
  ``OrderItems``, ``Comments``, ``ShippingServices``, ``History``, ``ShippingIds``) as ``null`` in GET /orders and
  GET /orders/{id}. Stored orders are not changed.
- ``retry_after_header`` ``True`` | ``False`` (ERRATA Billbee 5): the spec promises Retry-After on 429; php-sdk#82
  reports 429 answers without it. ``False`` drops it from the sandbox's own throttle answers.
- ``invoice_pdf`` ``"data"`` | ``"url"`` (docs §8.3, [CS] "If the pdf file was not attached as byte[], it can be
  downloaded from this url"): ``"data"`` sends PDFData (base64) and PdfDownloadUrl, as the php-sdk fixture;
  ``"url"`` sends PDFData null even with ``includeInvoicePdf=true``.
- ``create_invoice_on_invoiced`` ``"same"`` | ``"new_number"`` (docs §10.3, unverified): ``"same"`` answers the
  existing invoice; ``"new_number"`` invoices the order again with the account's next number (the order then carries
  it, and ``invoices_created`` lists the order).
- ``invoice_billbee_id`` ``"order"`` | ``"invoice"``: the php-sdk fixture has BillbeeId = BillBeeOrderId; [CS]
  documents it as "the unique internal id of this invoice", here a stable 15-digit id derived from order id and
  printed number, different for every invoice.
- ``paging`` ``True`` | ``False``: the spec and the real /orders page carry ``Paging``; the php-sdk invoice fixture and
  [CS] (a plain list) have none. ``False`` leaves it out of /orders/invoices, so a client must page while pages are
  full.
- ``array_form`` ``"both"`` | ``"indexed"`` | ``"multi"`` (ERRATA Billbee 8): [S] says ``multi``
  (``orderStateId=3&orderStateId=4``), both SDKs send ``orderStateId[0]=3``; which one the live API binds is not
  recorded. With one form only, parameters in the other form are silently ignored (the filter does not apply), as an
  ASP.NET binder that does not recognise them would.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import math
import re
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar, get_args, overload
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from local.faults import FaultPlan
from local.sandbox.base import Request, Response, SandboxServer
from local.sandbox.invoices import (
    InvoiceTotals,
    document_totals,
    has_invoice,
    invoice_for,
    money,
    printed_invoice_number,
    render_invoice_pdf,
)

PREFIX = "/api/v1"
MAX_PAGE_SIZE = 250  # [S] "Defaults to 50, max value is 250"
INVALID_REQUEST = "Die Anforderung ist ungültig."  # ASP.NET's German 400 text (php-sdk#63, csharp-sdk PR #81)
AUTH_DENIED = "Authorization has been denied for this request."  # ASP.NET [Authorize] default
DOWNLOAD_PREFIX = "/download/invoices/"  # outside /api/v1, like the object store the php-sdk fixture points at
NULLABLE_LISTS = ("Tags", "Payments", "OrderItems", "Comments", "ShippingServices", "History", "ShippingIds")

InvoicePdf = Literal["data", "url"]
OnInvoiced = Literal["same", "new_number"]
InvoiceBillbeeId = Literal["order", "invoice"]
ArrayForm = Literal["both", "indexed", "multi"]

# [CS] ApiResult.ErrorCodeEnum (first entries); responses carry ErrorDescription as the name, not the int [EX ithoc].
ERROR_DESCRIPTIONS = {0: "NoError", 1: "ApiNotActivated", 2: "OrderNotFound", 3: "InvoiceNotCreated"}

# §7: [CS] OrderStateEnum names; 17 "Retoure" from the cainydev fork / AccountOne doc.
ORDER_STATES: dict[int, str] = {
    1: "Bestellt", 2: "Bestaetigt", 3: "Zahlung_erhalten", 4: "Versendet", 5: "Reklamation", 6: "Geloescht",
    7: "Abgeschlossen", 8: "Storniert", 9: "Archiviert", 10: "Rated", 11: "Mahnung", 12: "Mahnung2", 13: "Gepackt",
    14: "Angeboten", 15: "Zahlungserinnerung", 16: "Im_Fulfillment", 17: "Retoure",
}  # fmt: skip

# §7: [CS] PaymentTypeEnum (2023-04); 139-150 are allowed by [S] but unnamed everywhere.
PAYMENT_TYPES: dict[int, str] = {
    1: "Bankueberweisung", 2: "Nachnahme", 3: "PayPal", 4: "Barzahlung", 6: "Gutschein", 19: "Sofortüberweisung",
    20: "MoneyOrder", 21: "Check", 22: "Andere", 23: "Lastschrift", 24: "Moneybookers", 25: "KLARNA_Invoice",
    26: "Rechnung", 27: "Moneybookers_Kreditkarte", 28: "Moneybookers_Lastschrift", 29: "BILLPAY_Rechnung",
    30: "BILLPAY_Lastschrift", 31: "Kreditkarte", 32: "Maestro", 33: "iDEAL", 34: "EPS", 35: "P24",
    36: "ClickAndBuy", 37: "GiroPay", 38: "Novalnet_Lastschrift", 39: "KLARNA_PartPayment", 40: "iPayment_CC",
    41: "Billsafe", 42: "Testbestellung", 43: "WireCard_Kreditkarte", 44: "AmazonPayments",
    45: "Secupay_Kreditkarte", 46: "Secupay_Lastschrift", 47: "WireCard_Lastschrift", 48: "EC",
    49: "Paymill_Kreditkarte", 50: "Novalnet_Kreditkarte", 51: "Novalnet_Rechnung", 52: "Novalnet_PayPal",
    53: "Paymill", 54: "Rechnung_PayPal", 55: "Selekkt", 56: "Avocadostore", 57: "DirectCheckout", 58: "Rakuten",
    59: "Vorkasse", 60: "Kommissionsabrechnung", 61: "Amazon_Marketplace", 62: "Amazon_Payments_Advanced",
    63: "Stripe", 64: "BILLPAY_PayLater", 65: "PostFinance", 66: "iZettle", 67: "SumUp", 68: "payleven",
    69: "atalanda", 70: "Saferpay_Kreditkarte", 71: "WireCard_PayPal", 72: "Micropayment", 73: "Ratenkauf",
    74: "Wayfair", 75: "MangoPay_PayPal", 76: "MangoPay_Sofortueberweisung", 77: "MangoPay_Kreditkarte",
    78: "MangoPay_iDeal", 79: "PayPal_Express", 80: "PayPal_Lastschrift", 81: "PayPal_Kreditkarte", 82: "Wish",
    83: "Bancontact_Mister_Cash", 84: "Belfius_Direct_Net", 85: "KBC_CBC_Betaalknop", 86: "Novalnet_Przelewy24",
    87: "Novalnet_Vorkasse", 88: "Novalnet_Instantbank", 89: "Novalnet_IDEAL", 90: "Novalnet_EPS",
    91: "Novalnet_GiroPay", 92: "Novalnet_Barzahlen", 93: "Real", 94: "Fruugo", 95: "Cdiscount", 96: "PayDirekt",
    97: "EtsyPayments", 98: "KLARNA", 99: "limango", 100: "SantanderRatenkauf", 101: "SantanderRechnungskauf",
    102: "Cashpresso", 103: "Tipser", 104: "Ebay", 105: "Mollie", 106: "MollieInvoice", 107: "MollieCreditCard",
    108: "MollieSofort", 109: "MollieGiroPay", 110: "MollieMaestro", 111: "MollieKlarnaPayLater",
    112: "MolliePayPal", 113: "ApplePay", 114: "Braintree", 115: "BraintreeCreditCard", 116: "BraintreePayPal",
    117: "MollieIdeal", 118: "Scalapay", 119: "OttoPayments", 120: "IdealoDirektkaufPayments", 121: "EasyCredit",
    122: "MollieApplePay", 123: "MollieEPS", 124: "CrefoPayPrepaid", 125: "MollieBancontact",
    126: "MolliePrzelewy24", 127: "MollieKlarnaRatenkauf", 128: "MollieKlarnaSliceit", 129: "GooglePay",
    130: "MollieKlarnaPayNow", 131: "MultiSafepay", 132: "Ratepay_Rechnung", 133: "HoodPay", 134: "Quickpay",
    135: "PayPal_PayLater", 136: "Kaufland", 137: "MollieBankUeberweisung", 138: "Lena",
}  # fmt: skip

# Per-resource throttles from the operation summaries in [S] (§2): (limit, window seconds).
GET_ORDER_LIMIT = (6, 60.0)  # "throttled to 6 calls per order in one minute"
CREATE_INVOICE_LIMIT = (1, 300.0)  # "by order and api key to a maximum of 1 per 5 minutes"
LIST_INVOICES_LIMIT = (1, 60.0)  # "1 per 1 minute for same page and minInvoiceDate"

_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)
_INT_RE = re.compile(r"\s*[+-]?\d+\s*")


def parse_billbee_datetime(text: str) -> datetime:
    """Lenient parse of Billbee's date-times (pitfall #5/#6): date only, ``yyyy-MM-dd HH:mm`` as [CS] sends, ISO with
    0-7 fraction digits, optional ``Z``/offset. Naive values stay naive; zoned values become naive UTC."""
    match = _DATE_RE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a date-time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])
    value = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro)
    if zone and zone.upper() != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        value -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return value


def format_billbee_datetime(value: datetime) -> str:
    """Billbee's own output style: naive, milliseconds (``2023-04-29T13:29:37.833``, [EX ithoc])."""
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds")


def berlin_now() -> datetime:
    """Wall-clock time for the fields Billbee stamps (LastModifiedAt, InvoiceDate): naive German local time."""
    try:
        return datetime.now(ZoneInfo("Europe/Berlin")).replace(tzinfo=None)
    except ZoneInfoNotFoundError:  # no tz database on this machine: UTC is the next best guess
        return datetime.now(UTC).replace(tzinfo=None)


def _order_time(order: dict[str, Any], field: str) -> datetime | None:
    value = order.get(field)
    if not isinstance(value, str):
        return None
    try:
        return parse_billbee_datetime(value)
    except ValueError:
        return None


def _tags_of(order: dict[str, Any]) -> set[str]:
    return {str(tag).lower() for tag in order.get("Tags") or []}


class _BadRequest(Exception):
    """A model-binding / validation failure: HTTP 400 in ASP.NET's ModelState format."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _NotFound(Exception):
    """An order id Billbee does not know: HTTP 404, empty body (see module docstring)."""


class _Windows:
    """Sliding-window request logs keyed by anything hashable, on an injectable clock."""

    def __init__(self) -> None:
        self._events: dict[tuple[Any, ...], deque[float]] = {}

    def wait(self, key: tuple[Any, ...], limit: int, window: float, now: float) -> float:
        """Seconds until one more request fits under ``limit`` per ``window`` (0 if it fits now)."""
        events = self._events.get(key)
        if events is None:
            return 0.0
        while events and events[0] <= now - window:
            events.popleft()
        if len(events) < limit:
            return 0.0
        return events[len(events) - limit] + window - now

    def record(self, key: tuple[Any, ...], now: float) -> None:
        self._events.setdefault(key, deque()).append(now)


def _per_second(rate: float) -> tuple[int, float]:
    """A rate as (limit, window): 2/s -> 2 per 1 s; 0.5/s -> 1 per 2 s."""
    if rate <= 0:
        raise ValueError("rate limits must be positive")
    if rate >= 1:
        return int(rate), 1.0
    return 1, 1.0 / rate


def _period(window: float) -> str:
    if window == 1.0:
        return "Second"
    if window == 60.0:
        return "Minute"
    return f"{window:g} Seconds"


_T = TypeVar("_T")


class _Switch(Generic[_T]):
    """A reading switch: an instance attribute that only takes one of its choices (checked on every assignment)."""

    def __init__(self, choices: tuple[Any, ...]) -> None:
        self.choices = choices

    def __set_name__(self, owner: type, name: str) -> None:
        self.public = name
        self.private = "_switch_" + name

    @overload
    def __get__(self, obj: None, owner: type) -> _Switch[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> _T: ...
    def __get__(self, obj: object | None, owner: type) -> _Switch[_T] | _T:
        if obj is None:
            return self
        value: _T = getattr(obj, self.private)
        return value

    def __set__(self, obj: object, value: _T) -> None:
        if not any(type(value) is type(choice) and value == choice for choice in self.choices):
            raise ValueError(f"{self.public} must be one of {self.choices}, not {value!r}")
        setattr(obj, self.private, value)


class BillbeeSandbox(SandboxServer):
    """Billbee ``/api/v1`` on 127.0.0.1 for the endpoints the connector uses (see the module docstring).

    Operations (names for FaultPlan rules and ``handled``): list_orders, get_order, find_order, create_invoice,
    list_invoices, add_tags, replace_tags, change_state, list_shops, order_states, payment_types,
    download_invoice_pdf (the PdfDownloadUrl, outside the API).
    """

    api = "billbee"
    url_prefix = PREFIX

    # Reading switches (module docstring); the defaults are in __init__.
    invoice_totals: _Switch[InvoiceTotals] = _Switch(get_args(InvoiceTotals))
    null_lists: _Switch[bool] = _Switch((False, True))
    retry_after_header: _Switch[bool] = _Switch((True, False))
    invoice_pdf: _Switch[InvoicePdf] = _Switch(get_args(InvoicePdf))
    create_invoice_on_invoiced: _Switch[OnInvoiced] = _Switch(get_args(OnInvoiced))
    invoice_billbee_id: _Switch[InvoiceBillbeeId] = _Switch(get_args(InvoiceBillbeeId))
    paging: _Switch[bool] = _Switch((True, False))
    array_form: _Switch[ArrayForm] = _Switch(get_args(ArrayForm))

    def __init__(
        self,
        *,
        api_key: str,
        username: str,
        password: str,
        orders: list[dict[str, Any]],
        shops: list[dict[str, Any]] | None = None,
        rate_limits: bool = True,
        per_endpoint_per_second: float = 2,
        per_user_per_second: float = 10,
        rate_scale: float = 1.0,
        faults: FaultPlan | None = None,
        hold_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        pdf_renderer: Callable[[dict[str, Any]], bytes] | None = None,
        wall_clock: Callable[[], datetime] = berlin_now,
        invoice_totals: InvoiceTotals = "positions",
        null_lists: bool = False,
        retry_after_header: bool = True,
        invoice_pdf: InvoicePdf = "data",
        create_invoice_on_invoiced: OnInvoiced = "same",
        invoice_billbee_id: InvoiceBillbeeId = "order",
        paging: bool = True,
        array_form: ArrayForm = "both",
    ) -> None:
        """``orders``: raw ``GET /orders`` Data items (deep-copied). ``shops``: ShopAccountReadApiModel dicts, or None
        to derive them from ``Seller``. ``rate_limits=False`` switches off every throttle, the per-order ones included;
        ``rate_scale`` K keeps their shape K times faster (every window a K-th as long, Retry-After in K-ths of a
        second) so that a backfill at the bound runs in a K-th of the time.
        ``clock`` drives the throttle windows (monotonic seconds); ``wall_clock`` (an addition to the brief) gives the
        naive local time Billbee stamps into LastModifiedAt/InvoiceDate. The keywords after it are the reading
        switches of the module docstring (attributes too, changeable while the sandbox runs)."""
        super().__init__(faults=faults, hold_seconds=hold_seconds)
        self.invoice_totals = invoice_totals
        self.null_lists = null_lists
        self.retry_after_header = retry_after_header
        self.invoice_pdf = invoice_pdf
        self.create_invoice_on_invoiced = create_invoice_on_invoiced
        self.invoice_billbee_id = invoice_billbee_id
        self.paging = paging
        self.array_form = array_form
        self.api_key = api_key
        self.username = username
        self.password = password
        self.rate_limits = rate_limits
        if rate_scale <= 0:
            raise ValueError("rate_scale must be positive")
        self.rate_scale = rate_scale
        self.endpoint_limit = _per_second(per_endpoint_per_second)
        self.user_limit = _per_second(per_user_per_second)
        self.clock = clock
        self.wall_clock = wall_clock  # stamps LastModifiedAt / InvoiceDate; injectable for tests
        self.pdf_renderer = pdf_renderer or render_invoice_pdf
        self._orders: dict[int, dict[str, Any]] = {}
        for order in orders:
            self._store(order)
        self._shops = copy.deepcopy(shops) if shops is not None else None
        # ids whose invoice CreateInvoice had to *create* (must stay empty), "new_number" re-invoicing included
        self.invoices_created: list[int] = []
        self._pdf_downloads: dict[str, tuple[int, bytes]] = {}  # PdfDownloadUrl token -> (order id, PDF bytes)
        self.handled: Counter[str] = Counter()  # requests that reached a handler, per operation
        self.throttled: Counter[str] = Counter()  # requests refused by a rate limit (429), per operation
        self._windows = _Windows()
        self._register_routes()

    # -- inspection helpers for tests and the local runner (not HTTP) --------------------------------------------
    def dump_orders(self) -> list[dict[str, Any]]:
        """All orders in API format with their current tags/state/invoice, sorted by BillBeeOrderId."""
        with self.lock:
            return [copy.deepcopy(self._orders[key]) for key in sorted(self._orders)]

    def order(self, order_id: int) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self._orders[order_id])

    def add_order(self, order: dict[str, Any]) -> None:
        with self.lock:
            self._store(order)

    def set_state(self, order_id: int, state: int) -> None:
        with self.lock:
            order = self._orders[order_id]
            order["State"] = state
            self._touch(order)

    def set_invoice(self, order_id: int, number: int, date: str | datetime) -> None:
        """The merchant invoices an order in Billbee's UI (after the connector first saw it without one)."""
        with self.lock:
            order = self._orders[order_id]
            order["InvoiceNumber"] = number
            order["InvoiceDate"] = date if isinstance(date, str) else format_billbee_datetime(date)
            self._touch(order)

    def call_counts(self) -> Counter[str]:
        """Requests per operation as seen on the wire (including faulted, throttled and rejected ones)."""
        with self.lock:
            return Counter(exchange.operation for exchange in self.exchanges)

    # -- SandboxServer hooks ---------------------------------------------------------------------------------------
    def error_response(self, status: int, message: str, *, retry_after: float | None = None) -> Response:
        if status == 429:
            # WebApiThrottle answers the quota message as a JSON string plus Retry-After in seconds; without a value
            # there is no header (ERRATA Billbee 5: php-sdk#82 reports such answers). Whole seconds, except under a
            # rate_scale, where a second lasts a K-th as long.
            if retry_after is None:
                return Response(429, message)
            if self.rate_scale == 1:
                return Response(429, message, headers={"Retry-After": str(max(1, int(retry_after)))})
            return Response(429, message, headers={"Retry-After": f"{max(1 / self.rate_scale, retry_after):g}"})
        if status == 401:
            return Response(401, {"Message": AUTH_DENIED})
        route_miss = re.fullmatch(r"No route for (\S+) (\S+)", message)
        if status == 404 and route_miss:
            uri = f"https://app.billbee.io{route_miss.group(2)}"
            return Response(404, {"Message": f"No HTTP resource was found that matches the request URI '{uri}'."})
        if status == 405 and route_miss:
            method = route_miss.group(1)
            return Response(405, {"Message": f"The requested resource does not support http method '{method}'."})
        if status >= 500:
            return Response(status, {"Message": "An error has occurred.", "ExceptionMessage": message})
        return Response(status, {"Message": message})

    def authenticate(self, request: Request) -> Response | None:
        """Both the developer key header and Basic auth with the merchant's API password (§1), else 401. The
        PdfDownloadUrl is outside the API: its token is the only credential (a presigned URL)."""
        if request.path.startswith(DOWNLOAD_PREFIX):
            return None
        key_ok = hmac.compare_digest(request.headers.get("x-billbee-api-key", ""), self.api_key)
        if key_ok and self._basic_auth_ok(request.headers.get("authorization", "")):
            return None
        return self.error_response(401, AUTH_DENIED)

    def _basic_auth_ok(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded, f"{self.username}:{self.password}")

    def throttle(self, request: Request, operation: str) -> Response | None:
        """2/s per endpoint and 10/s per (API key + user), plus the per-resource throttles of [S] (§2)."""
        if not self.rate_limits or operation in ("unknown", "download_invoice_pdf"):
            return None
        caller = (self.api_key, self.username)  # authenticate() already pinned the request to these
        checks: list[tuple[tuple[Any, ...], int, float]] = [
            (("endpoint", caller, operation), *self.endpoint_limit),
            (("user", caller), *self.user_limit),
        ]
        order_id = request.params.get("id", "")
        if operation == "get_order":
            checks.append((("get_order", caller, order_id), *GET_ORDER_LIMIT))
        elif operation == "create_invoice":
            checks.append((("create_invoice", self.api_key, order_id), *CREATE_INVOICE_LIMIT))
        elif operation == "list_invoices":
            page = (_first(request, "page") or "1").strip()
            checks.append(
                (("list_invoices", caller, page, _first(request, "minInvoiceDate") or ""), *LIST_INVOICES_LIMIT)
            )
        scale = self.rate_scale
        checks = [(key, limit, window / scale) for key, limit, window in checks]
        with self.lock:
            now = self.clock()
            waits = [(self._windows.wait(key, limit, window, now), limit, window) for key, limit, window in checks]
            blocked = [entry for entry in waits if entry[0] > 0]
            if blocked:
                wait, limit, window = max(blocked)
                message = f"API calls quota exceeded! maximum admitted {limit} per {_period(window * scale)}."
                retry_after = math.ceil(wait * scale - 1e-9) / scale if self.retry_after_header else None
                self.throttled[operation] += 1
                return self.error_response(429, message, retry_after=retry_after)
            for key, _limit, _window in checks:
                self._windows.record(key, now)
        return None

    # -- routing -----------------------------------------------------------------------------------------------------
    def _register_routes(self) -> None:
        # Order matters: /orders/invoices must win over /orders/{id}. Routes are case-insensitive like ASP.NET's.
        self._add("GET", r"/orders", "list_orders", self._list_orders)
        self._add("GET", r"/orders/invoices", "list_invoices", self._list_invoices)
        self._add("POST", r"/orders/CreateInvoice/(?P<id>[^/]+)", "create_invoice", self._create_invoice)
        self._add("POST", r"/orders/(?P<id>[^/]+)/tags", "add_tags", self._add_tags)
        self._add("PUT", r"/orders/(?P<id>[^/]+)/tags", "replace_tags", self._replace_tags)
        self._add("PUT", r"/orders/(?P<id>[^/]+)/orderstate", "change_state", self._change_state)
        self._add("GET", r"/orders/findbyextref/(?P<ref>[^/]+)", "find_order", self._find_order)
        self._add("GET", r"/orders/(?P<id>[^/]+)", "get_order", self._get_order)
        self._add("GET", r"/shopaccounts", "list_shops", self._list_shops)
        self._add("GET", r"/enums/orderstates", "order_states", self._order_states)
        self._add("GET", r"/enums/paymenttypes", "payment_types", self._payment_types)
        self.route("GET", re.escape(DOWNLOAD_PREFIX) + r"(?P<token>[^/]*)", "download_invoice_pdf", self._download_pdf)

    def _add(self, method: str, path: str, operation: str, handler: Callable[[Request], Response]) -> None:
        def run(request: Request) -> Response:
            self.handled[operation] += 1
            try:
                return handler(request)
            except _BadRequest as exc:
                return Response(400, {"Message": INVALID_REQUEST, "ModelState": {exc.field: [exc.message]}})
            except _NotFound:
                return Response(404, b"")

        self.route(method, "(?i)" + re.escape(PREFIX) + path, operation, run)

    # -- handlers (run under self.lock) ------------------------------------------------------------------------------
    def _list_orders(self, request: Request) -> Response:
        page, page_size = _paging(request)
        _int(request, "articleTitleSource", 0, low=0, high=3)  # we have no article data; validate only
        min_id = _int(request, "minimumBillBeeOrderId", None)
        predicates = self._common_filters(request)
        predicates += _date_filter(request, "minOrderDate", "maxOrderDate", "CreatedAt")
        predicates += _date_filter(request, "modifiedAtMin", "modifiedAtMax", "LastModifiedAt", low_exclusive=True)
        if min_id is not None:
            predicates.append(lambda order: int(order["BillBeeOrderId"]) >= min_id)
        selected = [self._orders[key] for key in sorted(self._orders) if all(p(self._orders[key]) for p in predicates)]
        return _paged(selected, page, page_size, render=self._render_order)

    def _get_order(self, request: Request) -> Response:
        _int(request, "articleTitleSource", 0, low=0, high=3)
        return _ok(self._render_order(self._order_for(request)))

    def _find_order(self, request: Request) -> Response:
        """``GET /orders/findbyextref/{extRef}``: the first order with that ``OrderNumber``. What Billbee answers when
        none has it is unrecorded; the sandbox sends the documented 200 with ``Data: null`` (the client takes a 404
        the same way)."""
        wanted = unquote(request.params.get("ref", ""))
        for key in sorted(self._orders):
            if self._orders[key].get("OrderNumber") == wanted:
                return _ok(self._render_order(self._orders[key]))
        return _ok(None)

    def _create_invoice(self, request: Request) -> Response:
        order = self._order_for(request)
        include_pdf = _bool(request, "includeInvoicePdf", False)
        _int(request, "templateId", None)
        _int(request, "sendToCloudId", None)
        if not has_invoice(order) or self.create_invoice_on_invoiced == "new_number":
            self._issue_invoice(order)  # what the real call does: it *creates* the invoice (pitfall #16)
        total_gross, total_net = document_totals(order)
        pdf = self.pdf_renderer(copy.deepcopy(order))
        token = secrets.token_urlsafe(24)
        self._pdf_downloads[token] = (int(order["BillBeeOrderId"]), pdf)
        pdf_data = base64.b64encode(pdf).decode("ascii") if include_pdf and self.invoice_pdf == "data" else None
        return _ok(
            {
                "OrderNumber": order.get("OrderNumber"),
                "InvoiceNumber": printed_invoice_number(order),
                "PDFData": pdf_data,
                "InvoiceDate": order.get("InvoiceDate"),
                "TotalGross": money(total_gross),
                "TotalNet": money(total_net),
                "PdfDownloadUrl": f"{self._root_url()}{DOWNLOAD_PREFIX}{token}.pdf",
            }
        )

    def _download_pdf(self, request: Request) -> Response:
        """The PdfDownloadUrl: the PDF rendered for that CreateInvoice call; an unknown token is the object store's
        404 (S3 style, XML)."""
        self.handled["download_invoice_pdf"] += 1
        name = request.params.get("token", "")
        entry = self._pdf_downloads.get(name.removesuffix(".pdf")) if name.endswith(".pdf") else None
        if entry is None:
            body = b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code></Error>'
            return Response(404, body, content_type="application/xml")
        order_id, pdf = entry
        return Response(
            200,
            pdf,
            headers={"Content-Disposition": f'attachment; filename="invoice-{order_id}.pdf"'},
            content_type="application/pdf",
        )

    def _list_invoices(self, request: Request) -> Response:
        page, page_size = _paging(request)
        include_positions = _bool(request, "includePositions", False)
        predicates = self._common_filters(request)
        predicates += _date_filter(request, "minInvoiceDate", "maxInvoiceDate", "InvoiceDate")
        predicates += _date_filter(request, "minPayDate", "maxPayDate", "PayedAt")
        selected = [
            order
            for order in self._orders.values()
            if has_invoice(order) and all(predicate(order) for predicate in predicates)
        ]
        selected.sort(key=_by_invoice_date)

        def render(order: dict[str, Any]) -> dict[str, Any]:
            try:
                invoice = invoice_for(order, totals=self.invoice_totals)
            except (ValueError, TypeError, ArithmeticError):
                # An order whose data is bad (tests feed such ones on purpose) is listed with its values as they
                # are, the way Billbee would echo what it holds, instead of failing the whole page.
                invoice = _raw_invoice(order)
            if self.invoice_billbee_id == "invoice":
                invoice["BillbeeId"] = _invoice_id(order)
            if not include_positions:
                invoice["Positions"] = None
                invoice["AdditionalFees"] = None
            return invoice

        return _paged(selected, page, page_size, with_paging=self.paging, render=render)

    def _add_tags(self, request: Request) -> Response:
        """[S]: "When a tag is already attached, it is ignored. Tags are not case sensitive." (pitfall #19)."""
        order = self._order_for(request)
        tags = order.setdefault("Tags", [])
        if tags is None:
            tags = order["Tags"] = []
        present = _tags_of(order)
        changed = False
        for tag in _tags_body(request):
            if tag.lower() not in present:
                tags.append(tag)
                present.add(tag.lower())
                changed = True
        if changed:
            self._touch(order)
        return _ok(None)

    def _replace_tags(self, request: Request) -> Response:
        """[S]: "All existing tags will be replaced by the given list of new tags" - wipes the merchant's tags."""
        order = self._order_for(request)
        new_tags: list[str] = []
        for tag in _tags_body(request):
            if tag.lower() not in {t.lower() for t in new_tags}:
                new_tags.append(tag)
        order["Tags"] = new_tags
        self._touch(order)
        return _ok(None)

    def _change_state(self, request: Request) -> Response:
        order = self._order_for(request)
        body = _json_object(request, "model")
        state = _case_insensitive(body, "NewStateId")
        if not isinstance(state, int) or isinstance(state, bool) or not 1 <= state <= 17:
            raise _BadRequest("model.NewStateId", f'Der Wert "{state}" ist für NewStateId ungültig.')
        order["State"] = state
        self._touch(order)
        return _ok(None)

    def _list_shops(self, request: Request) -> Response:
        page, page_size = _paging(request)
        return _paged(copy.deepcopy(self._shop_accounts()), page, page_size)

    def _order_states(self, request: Request) -> Response:
        return Response(200, [{"Id": key, "Name": name} for key, name in ORDER_STATES.items()])

    def _payment_types(self, request: Request) -> Response:
        return Response(200, [{"Id": key, "Name": name} for key, name in PAYMENT_TYPES.items()])

    # -- state helpers -------------------------------------------------------------------------------------------------
    def _store(self, order: dict[str, Any]) -> None:
        """Keyed by BillBeeOrderId; an order whose id is no integer (bad data a test feeds the connector) is kept
        under a key of its own, listed by GET /orders but not reachable by id."""
        order_id = order.get("BillBeeOrderId")
        if not isinstance(order_id, int) or isinstance(order_id, bool):
            order_id = -(10**15) - len(self._orders)
        self._orders[order_id] = copy.deepcopy(order)

    def _order_for(self, request: Request) -> dict[str, Any]:
        raw = request.params.get("id", "")
        if not _INT_RE.fullmatch(raw):
            raise _BadRequest("id", f'Der Wert "{raw}" ist für id ungültig.')
        order = self._orders.get(int(raw))
        if order is None:
            raise _NotFound(raw)
        return order

    def _render_order(self, order: dict[str, Any]) -> dict[str, Any]:
        """An order as GET /orders and GET /orders/{id} send it: a copy, empty lists as ``null`` per ``null_lists``."""
        rendered = copy.deepcopy(order)
        for name in NULLABLE_LISTS if self.null_lists else ("ShippingServices",):
            if rendered.get(name) == []:
                rendered[name] = None
        return rendered

    def _root_url(self) -> str:
        """``http://127.0.0.1:<port>``: the sandbox's own host, where the PdfDownloadUrl is served."""
        return self.base_url.removesuffix(PREFIX)

    def _touch(self, order: dict[str, Any]) -> None:
        order["LastModifiedAt"] = format_billbee_datetime(self.wall_clock())

    def _issue_invoice(self, order: dict[str, Any]) -> None:
        """Allocate the account's next invoice number, as Billbee does when CreateInvoice meets an uninvoiced order."""
        invoiced = [other for other in self._orders.values() if has_invoice(other)]
        latest = max(invoiced, key=lambda other: int(other["InvoiceNumber"]), default=None)
        order["InvoiceNumber"] = int(latest["InvoiceNumber"]) + 1 if latest else 1
        if latest is not None and order.get("InvoiceNumberPrefix") is None:
            order["InvoiceNumberPrefix"] = latest.get("InvoiceNumberPrefix")
        if latest is not None and order.get("InvoiceNumberPostfix") is None:
            order["InvoiceNumberPostfix"] = latest.get("InvoiceNumberPostfix")
        order["InvoiceDate"] = format_billbee_datetime(self.wall_clock())
        self._touch(order)
        self.invoices_created.append(int(order["BillBeeOrderId"]))

    def _shop_accounts(self) -> list[dict[str, Any]]:
        """The configured shops plus one ShopAccountReadApiModel per other ``Seller.BillbeeShopId`` of the orders (an
        order always comes from one of the account's shops). AccountType 1 and LastSyncState 0 are placeholders: the
        enum meanings are not in any source we have."""
        shops: dict[int, dict[str, Any]] = {int(s["Id"]): s for s in self._shops or []}
        for key in sorted(self._orders):
            seller = self._orders[key].get("Seller") or {}
            shop_id = seller.get("BillbeeShopId")
            if shop_id is not None and shop_id not in shops:
                shops[shop_id] = {
                    "Id": shop_id,
                    "Name": seller.get("BillbeeShopName"),
                    "AccountType": 1,
                    "LastSyncDate": format_billbee_datetime(self.wall_clock()),
                    "LastSyncState": 0,
                }
        return [shops[shop_id] for shop_id in sorted(shops)]

    def _common_filters(self, request: Request) -> list[Callable[[dict[str, Any]], bool]]:
        """shopId[], orderStateId[], tag[] + excludeTags: shared by /orders and /orders/invoices."""
        predicates: list[Callable[[dict[str, Any]], bool]] = []
        form = self.array_form
        shop_ids = set(_int_list(request, "shopId", form))
        if shop_ids:
            predicates.append(lambda order: (order.get("Seller") or {}).get("BillbeeShopId") in shop_ids)
        states = set(_int_list(request, "orderStateId", form))
        if states:
            predicates.append(lambda order: order.get("State") in states)
        tags = {value.strip().lower() for value in _values(request, "tag", form) if value.strip()}
        exclude = _bool(request, "excludeTags", False)  # validated even without tags, as ASP.NET binds it anyway
        if tags and exclude:
            predicates.append(lambda order: not (_tags_of(order) & tags))
        elif tags:
            predicates.append(lambda order: tags <= _tags_of(order))
        return predicates


# -- query/body binding, ASP.NET style (case-insensitive names; array forms per ``array_form``) ---------------------
def _values(request: Request, name: str, form: ArrayForm) -> list[str]:
    """The values of array parameter ``name``: the ``name=a&name=b`` [S multi] form, the ``name[0]=a`` [CS/PHP] form,
    or both; keys in a form that is not bound are ignored."""
    indexed = re.compile(re.escape(name) + r"\[\d*\]", re.IGNORECASE)
    return [
        value
        for key, value in request.query
        if (form != "indexed" and key.lower() == name.lower()) or (form != "multi" and indexed.fullmatch(key))
    ]


def _first(request: Request, name: str) -> str | None:
    """A scalar parameter: the first non-empty value under its plain name (ASP.NET binds ``name=`` to null for
    optional parameters, and never binds a simple type from ``name[0]``)."""
    for key, value in request.query:
        if key.lower() == name.lower() and value.strip():
            return value
    return None


def _parse_int(name: str, raw: str) -> int:
    if not _INT_RE.fullmatch(raw):
        raise _BadRequest(name, f'Der Wert "{raw}" ist für {name} ungültig.')
    return int(raw)


def _int(request: Request, name: str, default: int | None, *, low: int | None = None, high: int | None = None) -> Any:
    raw = _first(request, name)
    if raw is None:
        return default
    value = _parse_int(name, raw)
    if (low is not None and value < low) or (high is not None and value > high):
        raise _BadRequest(name, f"Der Wert für {name} muss zwischen {low} und {high} liegen.")
    return value


def _int_list(request: Request, name: str, form: ArrayForm) -> list[int]:
    return [_parse_int(name, raw) for raw in _values(request, name, form) if raw.strip()]


def _bool(request: Request, name: str, default: bool) -> bool:
    """ASP.NET binds "true"/"false" in any case ([CS] sends "True"); anything else is a 400."""
    raw = _first(request, name)
    if raw is None:
        return default
    if raw.strip().lower() not in ("true", "false"):
        raise _BadRequest(name, f'Der Wert "{raw}" ist für {name} ungültig.')
    return raw.strip().lower() == "true"


def _date(request: Request, name: str) -> datetime | None:
    raw = _first(request, name)
    if raw is None:
        return None
    try:
        return parse_billbee_datetime(raw)
    except ValueError as exc:
        raise _BadRequest(name, f'Der Wert "{raw}" ist für {name} ungültig.') from exc


def _date_filter(
    request: Request, low_name: str, high_name: str, field: str, *, low_exclusive: bool = False
) -> list[Callable[[dict[str, Any]], bool]]:
    """Inclusive bounds on an order timestamp, except ``modifiedAtMin`` ("newer than", exclusive [S]). An order
    without that timestamp never matches a bound on it."""
    low, high = _date(request, low_name), _date(request, high_name)
    predicates: list[Callable[[dict[str, Any]], bool]] = []
    if low is not None:

        def above(order: dict[str, Any]) -> bool:
            value = _order_time(order, field)
            return value is not None and (value > low if low_exclusive else value >= low)

        predicates.append(above)
    if high is not None:

        def below(order: dict[str, Any]) -> bool:
            value = _order_time(order, field)
            return value is not None and value <= high

        predicates.append(below)
    return predicates


def _paging(request: Request) -> tuple[int, int]:
    page = _int(request, "page", 1, low=1, high=2**31 - 1)
    page_size = _int(request, "pageSize", 50, low=1, high=MAX_PAGE_SIZE)
    return page, page_size


def _json_object(request: Request, parameter: str) -> dict[str, Any]:
    """A JSON object body; anything else is the 400 ASP.NET gives for an unbindable body parameter."""
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadRequest(parameter, f"Ungültiger JSON-Text: {exc}") from exc
    if not isinstance(body, dict):
        raise _BadRequest(parameter, f"Ein Wert für {parameter} ist erforderlich (JSON-Objekt).")
    return body


def _case_insensitive(body: dict[str, Any], name: str) -> Any:
    """Json.NET binds property names case-insensitively (the exact case wins)."""
    if name in body:
        return body[name]
    for key, value in body.items():
        if key.lower() == name.lower():
            return value
    return None


def _tags_body(request: Request) -> list[str]:
    """``OrderTagCreate`` {"Tags": [..]}: empty strings are ignored, non-strings are a 400."""
    tags = _case_insensitive(_json_object(request, "tagData"), "Tags")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise _BadRequest("tagData.Tags", "Tags muss eine Liste von Zeichenfolgen sein.")
    return [tag.strip() for tag in tags if tag.strip()]


def _by_invoice_date(order: dict[str, Any]) -> tuple[datetime, str]:
    return _order_time(order, "InvoiceDate") or datetime.min, str(order.get("BillBeeOrderId")).zfill(24)


def _raw_invoice(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "BillbeeId": order.get("BillBeeOrderId"),
        "InvoiceNumber": printed_invoice_number(order),
        "Type": "invoice",
        "InvoiceDate": order.get("InvoiceDate"),
        "TotalGross": order.get("TotalCost"),
        "Currency": order.get("Currency"),
        "OrderNumber": order.get("OrderNumber"),
        "VatMode": order.get("VatMode"),
        "Positions": [],
        "AdditionalFees": [],
    }


def _ok(data: Any) -> Response:
    """ApiResult<T>: ``ErrorDescription`` as the enum *name* (ERRATA Billbee #2)."""
    return Response(
        200, {"ErrorMessage": None, "ErrorCode": 0, "ErrorDescription": ERROR_DESCRIPTIONS[0], "Data": data}
    )


def _paged(items: list[Any], page: int, page_size: int, *, with_paging: bool = True,
           render: Callable[[Any], Any] | None = None) -> Response:
    """ApiPagedResult<T>: ``Paging`` first, as in [EX ithoc]; an empty result has TotalPages 0. Without
    ``with_paging`` the envelope has no ``Paging`` (php-sdk invoice fixture) and only the page's items say more.
    ``render``: applied to the page's items only (a backfill's 50,000 orders are not rendered for every page)."""
    total = len(items)
    start = (page - 1) * page_size
    if render is not None:
        items = [render(item) for item in items[start: start + page_size]]
        start = 0
    paging = {"Page": page, "TotalPages": math.ceil(total / page_size), "TotalRows": total, "PageSize": page_size}
    body: dict[str, Any] = {"Paging": paging} if with_paging else {}
    body.update(
        {
            "ErrorMessage": None,
            "ErrorCode": 0,
            "ErrorDescription": ERROR_DESCRIPTIONS[0],
            "Data": items[start : start + page_size],
        }
    )
    return Response(200, body)


def _invoice_id(order: dict[str, Any]) -> int:
    """The [CS] reading of ``InvoiceApiModel.BillbeeId`` ("the unique internal id of this invoice"): a 15-digit id,
    stable for an order and its printed number, different for each invoice (and never the order's id)."""
    key = f"{order['BillBeeOrderId']}:{printed_invoice_number(order)}".encode()
    value = 200_000_000_000_000 + int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % 10**14
    return value + 1 if value == order["BillBeeOrderId"] else value

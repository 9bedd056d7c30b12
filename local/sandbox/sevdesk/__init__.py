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

The package is split by resource, like moto's fakes: ``wire`` (what every resource shares: constants, seed data,
errors, dates, amounts), ``core`` (the state every resource works on, and the request/answer helpers),
``accounts`` (bookkeeping version, receipt guidance, check accounts, transactions, countries, categories),
``vouchers`` (uploadTempFile, saveVoucher, voucher and position reads, documents), ``payments`` (bookAmount,
resetToOpen), ``contacts`` (contacts, addresses, communication ways, customer numbers) and ``sandbox``
(``SevdeskSandbox``, which composes them as mixins, owns the state and registers the routes).
"""

from __future__ import annotations

from local.sandbox.sevdesk.sandbox import SevdeskSandbox
from local.sandbox.sevdesk.wire import (
    API_PREFIX,
    BOOKING_TYPES,
    CENT,
    DEFAULT_CATEGORIES,
    DEFAULT_CHECK_ACCOUNTS,
    DEFAULT_COUNTRIES,
    DEFAULT_RECEIPT_GUIDANCE,
    EXPENSE_TAX_RULES,
    ID_BASES,
    INVOICE_ONLY_TAX_RULES,
    REVENUE_TAX_RULES,
    SEED_TIME,
    SETTLING_BOOKING_TYPES,
    SEV_CLIENT,
    SEV_USER,
    TAX_RATE_NAMES,
    TAX_TYPES_V1,
    SevdeskApiError,
    default_seed,
)

__all__ = [
    "API_PREFIX",
    "BOOKING_TYPES",
    "CENT",
    "DECISIONS",
    "DEFAULT_CATEGORIES",
    "DEFAULT_CHECK_ACCOUNTS",
    "DEFAULT_COUNTRIES",
    "DEFAULT_RECEIPT_GUIDANCE",
    "EXPENSE_TAX_RULES",
    "ID_BASES",
    "INVOICE_ONLY_TAX_RULES",
    "REVENUE_TAX_RULES",
    "SEED_TIME",
    "SETTLING_BOOKING_TYPES",
    "SEV_CLIENT",
    "SEV_USER",
    "TAX_RATE_NAMES",
    "TAX_TYPES_V1",
    "SevdeskApiError",
    "SevdeskSandbox",
    "default_seed",
]

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
(sandbox decision) a voucher whose positions add up to less than 0 (a credit note) is accepted unless
    negative_vouchers="reject" (422 "The sum of a voucher must not be negative"): integrations send them, no recorded
    answer shows one; bookAmount settles such a voucher by money in the direction of its sum (a negative amount);
(sandbox decision) an X-Version other than "default" on GET /Tools/bookkeepingSystemVersion is HTTP 400 (docs §1 says
    1.0/2.0 are rejected there, not how); every other endpoint ignores the header;
(sandbox decision) resetToOpen on a draft is 422; it unlinks the voucher's bookings: a transaction the booking created
    (offline account) is removed, a linked online transaction goes back to status 100;
(sandbox decision) the temp file answer counts PDF pages; sevDesk's own count is unverified.
"""

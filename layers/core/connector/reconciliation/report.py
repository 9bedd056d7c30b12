"""The reconciliation's arithmetic: pure functions from records to records, ``Decimal`` throughout, no I/O.

Before a VAT return a bookkeeper must be sure that sevDesk holds exactly the revenue Billbee invoiced. ``reconcile``
takes the period's Billbee documents (invoices and credit notes, their gross per VAT rate recomputed from positions
and fees), the period's sevDesk revenue vouchers (gross per rate from their positions), the vouchers of the period's
documents that are dated outside it, and the connector's export records, and puts every one of them on exactly one
line:

| category | what it means |
|---|---|
| ``matched`` | one voucher of the period carries the document's number, with the same gross per rate and tax rule |
| ``open`` | matched, but the voucher is not paid although payments are reconciled in Billbee (they are booked there) |
| ``different`` | the voucher differs in gross per rate or tax rule, or one of the two is dated in another period |
| ``missing`` | no voucher carries the number: the export record's state and reason say why |
| ``extra`` | a voucher of the period with a number no Billbee document of the period has, or a second one with one |

The voucher's ``description`` is the printed invoice number (the connector's duplicate key, bookkeeping.md), so that
is the key here too. Totals are kept per (tax rule, rate) on both sides, each side counting only what is dated in the
period, so a voucher dated into the next month shows in this month's difference and in the next month's.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from connector.money import ZERO, cents, rate_key

PAID = "1000"  # sevDesk voucher status: 50 draft, 100 open, 750 partially paid, 1000 paid (sevdesk-api.md §3)
VOUCHER_STATUS_NAMES = {"50": "draft", "100": "open", "150": "transferred", "750": "partially paid", "1000": "paid"}
# The revenue tax rules the connector books (bookkeeping.md, "Tax rule from Billbee's VatMode").
TAX_RULE_NAMES = {1: "taxable sales", 2: "export", 3: "intra-EU supply", 11: "Kleinunternehmer §19 UStG"}
NO_TAX_RULE = "no voucher tax rule"
MAX_PERIOD_DAYS = 366
# The dates a period may name: sevDesk's date filters are Unix timestamps, and a year 1 or 9999 is a typing error.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


class Category(StrEnum):
    MATCHED = "matched"
    OPEN = "open"
    DIFFERENT = "different"
    MISSING = "missing"
    EXTRA = "extra"


class Kind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "creditNote"


@dataclass(frozen=True)
class Period:
    """Calendar days ``first`` to ``last``, both included, in Billbee's and sevDesk's own (Berlin) dates."""

    first: date
    last: date

    def __post_init__(self) -> None:
        for day in (self.first, self.last):
            if not EARLIEST_DAY <= day <= LATEST_DAY:
                raise ValueError(f"{day} is outside {EARLIEST_DAY} to {LATEST_DAY}")
        if self.last < self.first:
            raise ValueError(f"the period ends ({self.last}) before it starts ({self.first})")
        if (self.last - self.first).days + 1 > MAX_PERIOD_DAYS:
            raise ValueError(f"a period is at most {MAX_PERIOD_DAYS} days long")

    def contains(self, day: date | None) -> bool:
        return day is not None and self.first <= day <= self.last

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        return cls(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))

    @classmethod
    def quarter(cls, year: int, quarter: int) -> Period:
        first = date(year, 3 * quarter - 2, 1)
        return cls(first, cls.month(year, 3 * quarter).last)

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2026-11`` (a month), ``2026-Q4`` (a quarter) or ``2026-11-01..2026-11-30``."""
        text = text.strip()
        try:
            if match := _MONTH.match(text):
                return cls.month(int(match[1]), int(match[2]))
            if match := _QUARTER.match(text):
                return cls.quarter(int(match[1]), int(match[2]))
            if match := _RANGE.match(text):
                return cls(date.fromisoformat(match[1]), date.fromisoformat(match[2]))
        except ValueError as exc:
            raise ValueError(f"not a period: {text!r} ({exc})") from None
        raise ValueError(f"not a period: {text!r} (a month 2026-11, a quarter 2026-Q4, or 2026-11-01..2026-11-30)")

    @property
    def label(self) -> str:
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


@dataclass(frozen=True)
class Amounts:
    """Gross, net and VAT in cents."""

    gross: Decimal = ZERO
    net: Decimal = ZERO
    vat: Decimal = ZERO

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(self.gross + other.gross, self.net + other.net, self.vat + other.vat)

    def __sub__(self, other: Amounts) -> Amounts:
        return Amounts(self.gross - other.gross, self.net - other.net, self.vat - other.vat)

    @property
    def is_zero(self) -> bool:
        return self.gross == ZERO and self.net == ZERO and self.vat == ZERO


def split_gross(gross: Decimal, rate: Decimal) -> Amounts:
    """A gross amount at ``rate`` % as net and VAT, the way sevDesk splits a gross position (net = gross / (1 + rate),
    half-up to the cent, VAT the rest): so one gross shows the same net and VAT on both sides of the report."""
    gross = cents(gross)
    net = cents(gross * 100 / (100 + rate))
    return Amounts(gross, net, gross - net)


def total_of(rates: Mapping[Decimal, Amounts]) -> Amounts:
    return sum(rates.values(), Amounts())


@dataclass(frozen=True)
class BillbeeDocument:
    """An invoice or credit note of Billbee's invoice list, its amounts per VAT rate recomputed from its positions
    and fees (``documents.billbee_document``)."""

    number: str
    kind: Kind
    invoice_date: date | None
    vat_mode: int | None
    tax_rule: int | None  # None: no voucher tax rule fits the VatMode (4 margin scheme, 5)
    rates: Mapping[Decimal, Amounts]
    order_id: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> Amounts:
        return total_of(self.rates)


@dataclass(frozen=True)
class SevdeskVoucher:
    """A revenue voucher with its amounts per VAT rate from its positions (``documents.sevdesk_voucher``)."""

    voucher_id: str
    number: str | None  # the description: the printed invoice number for the connector's vouchers
    voucher_date: date | None
    tax_rule: int | None
    status: str | None
    paid_amount: Decimal
    rates: Mapping[Decimal, Amounts]

    @property
    def total(self) -> Amounts:
        return total_of(self.rates)

    @property
    def is_paid(self) -> bool:
        return self.status == PAID


@dataclass(frozen=True)
class ExportInfo:
    """What the connector's export record says about an invoice number (store/records.py)."""

    order_id: int
    state: str
    reason: str | None
    voucher_id: str | None
    invoice_date: date | None = None
    # The document as the record holds it: for a voucher of the period whose invoice is dated in another period.
    document: BillbeeDocument | None = None


@dataclass(frozen=True)
class Line:
    category: Category
    number: str | None
    billbee: BillbeeDocument | None
    sevdesk: SevdeskVoucher | None
    billbee_in_period: bool
    sevdesk_in_period: bool
    export: ExportInfo | None
    reasons: tuple[str, ...]

    @property
    def billbee_counted(self) -> Mapping[Decimal, Amounts]:
        """What this line adds to the Billbee side of the period's totals."""
        return self.billbee.rates if self.billbee is not None and self.billbee_in_period else {}

    @property
    def sevdesk_counted(self) -> Mapping[Decimal, Amounts]:
        return self.sevdesk.rates if self.sevdesk is not None and self.sevdesk_in_period else {}


TotalKey = tuple[int | None, Decimal]


@dataclass(frozen=True)
class TotalRow:
    tax_rule: int | None
    rate: Decimal
    billbee: Amounts
    sevdesk: Amounts

    @property
    def difference(self) -> Amounts:
        return self.billbee - self.sevdesk


@dataclass(frozen=True)
class Report:
    period: Period
    lines: tuple[Line, ...]
    totals: tuple[TotalRow, ...]
    reconciliation_in_billbee: bool
    notes: tuple[str, ...] = field(default=())
    unreadable: int = 0  # documents Billbee listed that could not be read (named in the notes)

    @property
    def counts(self) -> dict[str, int]:
        counts = {category.value: 0 for category in Category}
        for line in self.lines:
            counts[line.category.value] += 1
        return counts

    @property
    def billbee_total(self) -> Amounts:
        return sum((row.billbee for row in self.totals), Amounts())

    @property
    def sevdesk_total(self) -> Amounts:
        return sum((row.sevdesk for row in self.totals), Amounts())

    @property
    def reconciles(self) -> bool:
        """No line missing, extra or different, no difference in any total, and no document Billbee listed that could
        not be read. Open vouchers do not count against it: they are booked revenue whose payment is still to come."""
        lines_agree = all(line.category in (Category.MATCHED, Category.OPEN) for line in self.lines)
        return not self.unreadable and lines_agree and all(row.difference.is_zero for row in self.totals)


def tax_rule_label(tax_rule: int | None) -> str:
    if tax_rule is None:
        return NO_TAX_RULE
    return f"{tax_rule} ({TAX_RULE_NAMES[tax_rule]})" if tax_rule in TAX_RULE_NAMES else str(tax_rule)


def _money(amount: Decimal) -> str:
    return f"{cents(amount):.2f}"


def rate_differences(document: BillbeeDocument, voucher: SevdeskVoucher) -> list[str]:
    """Each VAT rate at which the voucher's gross is not the document's, and a differing tax rule."""
    reasons = []
    if document.tax_rule != voucher.tax_rule:
        billbee = tax_rule_label(document.tax_rule)
        mode = f"VatMode {document.vat_mode if document.vat_mode is not None else 0}"
        reasons.append(f"tax rule: Billbee {billbee} ({mode}), sevDesk {tax_rule_label(voucher.tax_rule)}")
    for rate in sorted(set(document.rates) | set(voucher.rates)):
        ours = document.rates.get(rate, Amounts()).gross
        theirs = voucher.rates.get(rate, Amounts()).gross
        if ours != theirs:
            reasons.append(f"gross at {rate_key(rate)} %: Billbee {_money(ours)}, sevDesk {_money(theirs)}")
    return reasons


NO_EXPORT_RECORDS = ("not in sevDesk; the connector's export records were not read (not available here), so "
                     "the export state is unknown")


def _missing_reason(export: ExportInfo | None, export_records: bool = True) -> str:
    if not export_records:
        return NO_EXPORT_RECORDS
    if export is None:
        return ("not in sevDesk; the connector has no export record of it (the connection's start date, shops or "
                "states left the order out, or it was not polled yet)")
    text = f"not in sevDesk; export {export.state}"
    if export.voucher_id is not None:
        text += f" with voucher {export.voucher_id}, which sevDesk does not hold (any more)"
    return text + (f": {export.reason}" if export.reason else "")


def _open_reason(voucher: SevdeskVoucher) -> str:
    status = VOUCHER_STATUS_NAMES.get(voucher.status or "", voucher.status or "unknown")
    return (f"voucher {voucher.voucher_id} is {status} (status {voucher.status}): {_money(abs(voucher.paid_amount))} "
            f"of {_money(abs(voucher.total.gross))} paid, although payments are reconciled in Billbee")


def _primary(candidates: list[SevdeskVoucher], export: ExportInfo | None) -> SevdeskVoucher:
    """The voucher a document is matched with: the one its export wrote, else the oldest (lowest id)."""
    if export is not None and export.voucher_id is not None:
        for voucher in candidates:
            if voucher.voucher_id == export.voucher_id:
                return voucher
    return min(candidates, key=_voucher_order)


def _voucher_order(voucher: SevdeskVoucher) -> tuple[int, str]:
    digits = voucher.voucher_id.isdigit()
    return (int(voucher.voucher_id) if digits else 0, "" if digits else voucher.voucher_id)


def reconcile(
    period: Period,
    documents: Iterable[BillbeeDocument],
    vouchers: Iterable[SevdeskVoucher],
    *,
    elsewhere: Mapping[str, list[SevdeskVoucher]] | None = None,
    exports: Mapping[str, ExportInfo] | None = None,
    reconciliation_in_billbee: bool = True,
    export_records: bool = True,
    notes: Iterable[str] = (),
    unreadable: int = 0,
) -> Report:
    """The report: one line per Billbee document of the period and per sevDesk voucher of the period not matched to
    one, and the totals per (tax rule, rate) of both sides.

    ``documents``: Billbee's invoices and credit notes dated in the period. ``vouchers``: sevDesk's revenue vouchers
    dated in the period. ``elsewhere``: by number, vouchers of the period's documents that are dated outside it.
    ``exports``: by number, the connector's export records (state and reason for a missing voucher; the invoice of a
    voucher whose invoice is dated in another period); ``export_records`` False: none could be read, and a missing
    line says so instead of blaming the connection's filters."""
    elsewhere = elsewhere or {}
    exports = exports or {}
    by_number: dict[str, list[SevdeskVoucher]] = {}
    in_period = list(vouchers)
    for voucher in in_period:
        by_number.setdefault(voucher.number or "", []).append(voucher)
    lines: list[Line] = []
    claimed: set[str] = set()  # voucher ids on a line already
    primary_of: dict[str, str] = {}  # number -> the voucher id matched with it

    seen_numbers: set[str] = set()
    for document in sorted(documents, key=lambda d: (d.invoice_date or date.min, d.number)):
        export = exports.get(document.number)
        if document.number in seen_numbers:
            lines.append(Line(Category.DIFFERENT, document.number, document, None, True, False, export,
                              (f"Billbee lists the number {document.number} more than once in the period; its "
                               "voucher is matched with the first",)))
            continue
        seen_numbers.add(document.number)
        candidates = by_number.get(document.number, [])
        if candidates:
            voucher = _primary(candidates, export)
            claimed.add(voucher.voucher_id)
            primary_of[document.number] = voucher.voucher_id
            reasons = rate_differences(document, voucher)
            if reasons:
                category = Category.DIFFERENT
            elif reconciliation_in_billbee and not voucher.is_paid:
                category, reasons = Category.OPEN, [_open_reason(voucher)]
            else:
                category = Category.MATCHED
            lines.append(Line(category, document.number, document, voucher, True, True, export, tuple(reasons)))
            continue
        outside = [v for v in elsewhere.get(document.number, []) if not period.contains(v.voucher_date)]
        if outside:
            voucher = _primary(outside, export)
            when = voucher.voucher_date.isoformat() if voucher.voucher_date else "without a date"
            reasons = [f"voucher {voucher.voucher_id} is dated {when}, outside the period (invoice date "
                       f"{document.invoice_date.isoformat() if document.invoice_date else 'unknown'})",
                       *rate_differences(document, voucher)]
            lines.append(Line(Category.DIFFERENT, document.number, document, voucher, True, False, export,
                              tuple(reasons)))
            continue
        lines.append(Line(Category.MISSING, document.number, document, None, True, False, export,
                          (_missing_reason(export, export_records),)))

    for voucher in sorted(in_period, key=_voucher_order):
        if voucher.voucher_id in claimed:
            continue
        claimed.add(voucher.voucher_id)
        number = voucher.number or ""
        if number in primary_of:
            lines.append(Line(Category.EXTRA, voucher.number, None, voucher, False, True, exports.get(number),
                              (f"a second voucher with the number {number}; voucher {primary_of[number]} is the one "
                               "matched with Billbee's document",)))
            continue
        export = exports.get(number) if number else None
        if export is not None and not period.contains(export.invoice_date):
            primary_of[number] = voucher.voucher_id
            when = export.invoice_date.isoformat() if export.invoice_date else "unknown"
            reasons = [f"invoice date {when} is outside the period (voucher {voucher.voucher_id} dated "
                       f"{voucher.voucher_date.isoformat() if voucher.voucher_date else 'unknown'})"]
            if export.document is not None:
                reasons += rate_differences(export.document, voucher)
            lines.append(Line(Category.DIFFERENT, voucher.number, export.document, voucher, False, True, export,
                              tuple(reasons)))
            continue
        what = f"the number {number}" if number else "no number (empty description)"
        lines.append(Line(Category.EXTRA, voucher.number, None, voucher, False, True, None,
                          (f"no Billbee invoice or credit note of the period has {what}",)))

    return Report(period, tuple(lines), totals(lines), reconciliation_in_billbee, tuple(notes), unreadable)


def totals(lines: Iterable[Line]) -> tuple[TotalRow, ...]:
    """Per (tax rule, rate): the sum of what each line counts on each side (``Line.billbee_counted``,
    ``Line.sevdesk_counted``), ordered by tax rule, then rate from the highest."""
    billbee: dict[TotalKey, Amounts] = {}
    sevdesk: dict[TotalKey, Amounts] = {}
    for line in lines:
        if line.billbee is not None:
            for rate, amounts in line.billbee_counted.items():
                key = (line.billbee.tax_rule, rate)
                billbee[key] = billbee.get(key, Amounts()) + amounts
        if line.sevdesk is not None:
            for rate, amounts in line.sevdesk_counted.items():
                key = (line.sevdesk.tax_rule, rate)
                sevdesk[key] = sevdesk.get(key, Amounts()) + amounts
    keys = sorted(set(billbee) | set(sevdesk), key=lambda k: (k[0] is None, k[0] or 0, -k[1]))
    return tuple(TotalRow(rule, rate, billbee.get((rule, rate), Amounts()), sevdesk.get((rule, rate), Amounts()))
                 for rule, rate in keys)

"""Reading a period from both APIs and the export records, resumable within a time budget.

What is read (read only, through the typed clients with their retry and rate-limit rules):

1. Billbee: every page of ``GET /orders/invoices?includePositions=true`` from the day before the period's first day
   to the day after its last (the zone of the naive filter values is undocumented, billbee-pitfalls #5; pageSize
   250, 2 requests/s per endpoint through the shared limiter; billbee-api.md §8.3), invoices and credit notes alike,
   each kept only if its own invoice date (Berlin wall time) is in the period;
2. sevDesk, at the same time: every page of the period's revenue vouchers (``GET /Voucher``, 1000 a page), then each
   voucher's positions (``GET /VoucherPos``, a few at a time: sevDesk publishes no limit and none was measured,
   sevdesk-api.md §1);
3. the export record of each document (DynamoDB, by key: ``records.py``): the order behind it, whose shipping amount
   the fee rule needs, and the state and reason of a missing one; each document is recomputed here;
4. for each document that no voucher of the period carries: the voucher its export record names (``GET /Voucher/{id}``),
   else an exact search by its number, with its positions (a voucher dated in another period is "different", not
   "missing"); and for each voucher of the period whose number is no document of the period, that number's record.

A month with thousands of invoices takes longer than one HTTP API request may (29 s): ``advance`` works until its
deadline and leaves everything in the ``JobState``, which the API keeps in the table between requests (``jobs.py``);
the next request continues where it stopped. Every step reads before it looks at the clock, so each request makes
progress. ``report`` is then arithmetic only. Nothing personal is kept: numbers, dates, amounts, ids, states and the
export's reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as day_time
from typing import Any

from connector.billbee.client import BillbeeClient
from connector.billbee.models import InvoiceDetails
from connector.errors import ApiError, NotFoundError, TransientError
from connector.observability import logger
from connector.reconciliation.documents import (
    billbee_document,
    document_from_json,
    document_to_json,
    export_from_json,
    export_info,
    export_to_json,
    record_order,
    sevdesk_voucher,
)
from connector.reconciliation.records import Records
from connector.reconciliation.report import BillbeeDocument, ExportInfo, Period, Report, SevdeskVoucher, reconcile
from connector.settings.model import ConnectionSettings, PaymentReconciliation
from connector.sevdesk.client import SevdeskClient
from connector.sevdesk.models import RevenueVoucher, VoucherPosition

POSITION_READERS = 4  # concurrent GET /VoucherPos; sevDesk measured no limit at 133 requests/s (sevdesk-api.md §1)
RECORDS_PER_ROUND = 400  # documents whose records are read between two looks at the clock
_INVOICE_FIELDS_DROPPED = {"positions": {"__all__": {"title", "sku"}}}  # product names are not needed


def _compact(model: Any, **options: Any) -> dict[str, Any]:
    return dict(model.model_dump(mode="json", by_alias=True, exclude_none=True, **options))


def _number(raw_invoice: dict[str, Any]) -> str:
    return str(raw_invoice.get("InvoiceNumber") or "").strip()


@dataclass
class JobState:
    """Everything a job has read so far, as JSON-ready data (kept in the table between API requests)."""

    first: str
    last: str
    billbee_page: int = 1
    billbee_done: bool = False
    invoices: list[dict[str, Any]] = field(default_factory=list)  # the period's invoice-list items, compact
    voucher_offset: int = 0
    vouchers_done: bool = False
    vouchers: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> voucher of the period
    positions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # voucher id -> its positions
    # Per invoice (by its place in ``invoices``): the document recomputed with its record's order, and the export.
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    looked_up: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # number -> its vouchers elsewhere
    # Numbers of vouchers of the period that no document of the period has: that number's export, or None.
    other_exports: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    lookups_done: bool = False
    read_in_full: bool = False
    unreadable: list[str] = field(default_factory=list)  # invoice-list items of the period that could not be read
    requests: dict[str, int] = field(default_factory=lambda: {"billbee": 0, "sevdesk": 0})

    @classmethod
    def new(cls, period: Period) -> JobState:
        return cls(first=period.first.isoformat(), last=period.last.isoformat())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobState:
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def period(self) -> Period:
        return Period(date.fromisoformat(self.first), date.fromisoformat(self.last))

    @property
    def reading_done(self) -> bool:
        return self.billbee_done and self.vouchers_done and all(v in self.positions for v in self.vouchers)

    @property
    def records_done(self) -> bool:
        return self.billbee_done and len(self.documents) == len(self.invoices)

    @property
    def finished(self) -> bool:
        return self.reading_done and self.records_done and self.lookups_done

    def progress(self) -> dict[str, Any]:
        return {
            "billbee": {"pagesRead": self.billbee_page - (0 if self.billbee_done else 1),
                        "documents": len(self.invoices), "done": self.billbee_done},
            "sevdesk": {"vouchers": len(self.vouchers), "vouchersDone": self.vouchers_done,
                        "positionsRead": sum(1 for v in self.vouchers if v in self.positions)},
            "records": {"read": len(self.documents), "of": len(self.invoices)},
            "lookups": {"done": self.lookups_done, "numbers": len(self.looked_up) + len(self.other_exports)},
            "requests": dict(self.requests),
        }


@dataclass(frozen=True)
class Progress:
    finished: bool
    retry_after: float | None = None  # an API asked to wait this long before the next request
    detail: str | None = None


class ReconciliationJob:
    """One period of one connection: ``advance`` reads until done or the deadline, ``report`` builds the report."""

    def __init__(
        self,
        state: JobState,
        *,
        billbee: BillbeeClient,
        sevdesk: SevdeskClient,
        records: Callable[[], Records],
        settings: ConnectionSettings,
        clock: Callable[[], float] = time.monotonic,
        readers: int = POSITION_READERS,
    ) -> None:
        self.state = state
        self.period = state.period
        self.billbee = billbee
        self.sevdesk = sevdesk
        self._records_factory = records
        self._records: Records | None = None
        self.settings = settings
        self.clock = clock
        self.readers = readers
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------------------------------
    def advance(self, deadline: float | None = None) -> Progress:
        """Read on until everything is read or ``deadline`` (on ``clock``) has passed. A throttled API ends the
        slice with its wait (``retry_after``); any other API error is raised, with what was read kept in state."""
        waits: list[TransientError] = []
        state = self.state
        read_apis = not state.reading_done
        if read_apis:
            waits += self._read_both_apis(deadline)
        # The records follow the APIs in the same request while time is left, and lead the next one.
        if state.billbee_done and not state.records_done and not (read_apis and self._expired(deadline)):
            self._read_records(deadline)
        if state.reading_done and state.records_done and not state.lookups_done and not waits:
            try:
                self._look_up(deadline)
            except TransientError as exc:
                if exc.retry_after is None:
                    raise
                waits.append(exc)
        if self._records is not None:
            state.read_in_full = state.read_in_full or self._records.read_in_full
        if waits:
            longest = max(waits, key=lambda exc: exc.retry_after or 0)
            return Progress(state.finished, longest.retry_after, str(longest))
        return Progress(state.finished)

    def _read_both_apis(self, deadline: float | None) -> list[TransientError]:
        """Billbee's pages in a thread of their own while this one reads sevDesk's."""
        waits: list[TransientError] = []
        failures: list[BaseException] = []

        def read_billbee() -> None:
            try:
                self._read_billbee(deadline)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
                failures.append(exc)

        reader = threading.Thread(target=read_billbee, name="reconcile-billbee")
        reader.start()
        try:
            self._read_sevdesk(deadline)
        except TransientError as exc:
            if exc.retry_after is None:
                raise
            waits.append(exc)
        finally:
            reader.join()
        for failure in failures:
            if isinstance(failure, TransientError) and failure.retry_after is not None:
                waits.append(failure)
            else:
                raise failure
        return waits

    def _expired(self, deadline: float | None) -> bool:
        return deadline is not None and self.clock() >= deadline

    def _count(self, api: str, requests: int = 1) -> None:
        with self._lock:
            self.state.requests[api] = self.state.requests.get(api, 0) + requests

    def _read_billbee(self, deadline: float | None) -> None:
        state = self.state
        # A day more on each side: the zone Billbee applies to the naive filter values is undocumented
        # (billbee-pitfalls #5), so the exact bounds could lose the first or last hours of the period.
        first = datetime.combine(self.period.first - timedelta(days=1), day_time.min)
        last = datetime.combine(self.period.last + timedelta(days=1), day_time(23, 59, 59))
        seen = {(i.get("BillbeeId"), i.get("InvoiceNumber")) for i in state.invoices}
        while not state.billbee_done:
            page = self.billbee.list_invoices(min_invoice_date=first, max_invoice_date=last, page=state.billbee_page)
            self._count("billbee")
            for bad in page.unreadable:
                # Kept unless its own date says it belongs to another period: a document the report cannot read
                # must never just vanish from it.
                raw_day = str(bad.raw.get("InvoiceDate") or "")[:10] if isinstance(bad.raw, dict) else ""
                if not _outside(self.period, raw_day) and bad.problem not in state.unreadable:
                    state.unreadable.append(bad.problem)
            for item in page.items:
                day = item.invoice_date.date() if item.invoice_date else None
                key = (item.billbee_id, item.invoice_number)
                # The widened filter brings the neighbouring days: each item counts by its own invoice date, read as
                # Berlin wall time (billbee-pitfalls #5); an item seen on an earlier page (the list moved while being
                # read) counts once.
                if self.period.contains(day) and key not in seen:
                    seen.add(key)
                    state.invoices.append(_compact(item, exclude=_INVOICE_FIELDS_DROPPED))
            if page.is_last:
                state.billbee_done = True
            else:
                state.billbee_page += 1
            if self._expired(deadline):
                return

    def _read_sevdesk(self, deadline: float | None) -> None:
        state = self.state
        while not state.vouchers_done:
            page = self.sevdesk.revenue_vouchers_dated(self.period.first, self.period.last,
                                                       offset=state.voucher_offset)
            self._count("sevdesk")
            for voucher in page.vouchers:
                state.vouchers[voucher.id] = _compact(voucher)
            if page.next_offset is None:
                state.vouchers_done = True
            else:
                state.voucher_offset = page.next_offset
            if self._expired(deadline):
                return
        unread = [voucher_id for voucher_id in state.vouchers if voucher_id not in state.positions]
        self._in_parallel(unread, self._read_positions, deadline)

    def _read_positions(self, voucher_id: str) -> None:
        positions = self.sevdesk.voucher_positions(voucher_id)
        self._count("sevdesk")
        with self._lock:
            self.state.positions[voucher_id] = [_compact(p) for p in positions]

    def _in_parallel(self, items: list[str], work: Callable[[str], None], deadline: float | None) -> None:
        """``work`` on each item, ``readers`` at a time, in rounds that stop at the deadline; the first error is
        raised after its round (what the round read is kept)."""
        chunk = self.readers * 4
        with ThreadPoolExecutor(max_workers=self.readers) as pool:
            for start in range(0, len(items), chunk):
                if start and self._expired(deadline):
                    return
                futures = [pool.submit(work, item) for item in items[start:start + chunk]]
                errors = [future.exception() for future in futures]
                for error in errors:
                    if error is not None:
                        raise error

    def _reader(self) -> Records:
        if self._records is None:
            self._records = self._records_factory()
        return self._records

    def _read_records(self, deadline: float | None) -> None:
        """Each document's export record, and the document recomputed with the order the record holds."""
        state = self.state
        todo = [index for index in range(len(state.invoices)) if str(index) not in state.documents]
        for start in range(0, len(todo), RECORDS_PER_ROUND):
            if start and self._expired(deadline):
                return
            round_ = todo[start:start + RECORDS_PER_ROUND]
            invoices = {index: InvoiceDetails.model_validate(state.invoices[index]) for index in round_}
            found = self._reader().resolve(invoices.values())
            for index, invoice in invoices.items():
                record = found.get((invoice.invoice_number or "").strip())
                document = billbee_document(invoice, record_order(record) if record is not None else None)
                state.documents[str(index)] = {
                    "document": document_to_json(document),
                    "export": None if record is None else export_to_json(export_info(record)),
                }

    def _look_up(self, deadline: float | None) -> None:
        """The vouchers of documents that no voucher of the period carries (dated elsewhere, or gone), and the
        records of vouchers whose number no document of the period has (their invoice is dated elsewhere)."""
        state = self.state
        numbers_in_period = {str(v.get("description") or "").strip() for v in state.vouchers.values()}
        document_numbers: dict[str, str | None] = {}
        for entry in state.documents.values():
            number = entry["document"]["number"]
            export = entry["export"]
            document_numbers.setdefault(number, export["voucherId"] if export else None)
        wanted = [n for n in document_numbers if n not in numbers_in_period and n not in state.looked_up]

        def look_up(number: str) -> None:
            found: list[RevenueVoucher] = []
            voucher_id = document_numbers[number]
            if voucher_id is not None:
                try:
                    found = [self.sevdesk.revenue_voucher(voucher_id)]
                except NotFoundError:
                    found = []  # deleted in sevDesk: the document is missing, and the report says so
                self._count("sevdesk")
            if not found:
                found = self.sevdesk.revenue_vouchers_numbered(number)
                self._count("sevdesk", 1 + len(found))
            entries = []
            for voucher in found:
                positions = self.sevdesk.voucher_positions(voucher.id)
                self._count("sevdesk")
                entries.append({"voucher": _compact(voucher), "positions": [_compact(p) for p in positions]})
            with self._lock:
                state.looked_up[number] = entries

        self._in_parallel(wanted, look_up, deadline)
        if not all(number in state.looked_up for number in wanted):
            return
        others = sorted(n for n in numbers_in_period
                        if n and n not in document_numbers and n not in state.other_exports)
        for number in others:
            record = self._reader().by_number(number)
            state.other_exports[number] = None if record is None else export_to_json(
                export_info(record, with_document=True))
        state.lookups_done = True

    # -- the report ----------------------------------------------------------------------------------------------
    def report(self) -> Report:
        """The report from what the job read: arithmetic only."""
        state = self.state
        if not state.finished:
            raise RuntimeError("the job has not read everything yet")
        documents: list[BillbeeDocument] = []
        exports: dict[str, ExportInfo] = {}
        for index in range(len(state.invoices)):
            entry = state.documents[str(index)]
            document = document_from_json(entry["document"])
            documents.append(document)
            if entry["export"] is not None:
                exports.setdefault(document.number, export_from_json(entry["export"]))
        for number, export in state.other_exports.items():
            if export is not None:
                exports.setdefault(number, export_from_json(export))
        vouchers = [self._voucher(raw, state.positions.get(voucher_id, []))
                    for voucher_id, raw in state.vouchers.items()]
        elsewhere = {
            number: [self._voucher(entry["voucher"], entry["positions"]) for entry in entries]
            for number, entries in state.looked_up.items()
        }
        notes = [f"{d.number}: {note}" for d in documents for note in d.notes]
        notes += [f"Billbee listed a document the report cannot read, so the period cannot be confirmed: {problem}"
                  for problem in state.unreadable]
        records = self._reader()
        if not records.available:
            notes.append("the connector's export records were not read (they live in its table, which is not "
                         "available here): a missing line carries no export state, each document's amounts are "
                         "recomputed from the invoice list alone, and a voucher of the period whose invoice is dated "
                         "in another period shows as extra")
        if state.read_in_full:
            notes.append("the export records were read in full (a voucher's invoice is dated elsewhere, or "
                         "Billbee's BillbeeId is not the order id on this account)")
        in_billbee = self.settings.sevdesk.payment_reconciliation is PaymentReconciliation.BILLBEE
        report = reconcile(self.period, documents, vouchers, elsewhere=elsewhere, exports=exports,
                           reconciliation_in_billbee=in_billbee, export_records=records.available, notes=notes,
                           unreadable=len(state.unreadable))
        logger.info("reconciliation report", extra={"period": self.period.label, "counts": report.counts,
                                                     "requests": state.requests})
        return report

    @staticmethod
    def _voucher(raw: dict[str, Any], positions: list[dict[str, Any]]) -> SevdeskVoucher:
        return sevdesk_voucher(RevenueVoucher.model_validate(raw),
                               [VoucherPosition.model_validate(p) for p in positions])


def run_to_end(job: ReconciliationJob, *, sleep: Callable[[float], None] = time.sleep,
               max_wait: float = 120.0) -> Report:
    """Read everything without a deadline (the local command line), waiting where an API asks to; then report."""
    while True:
        progress = job.advance(None)
        if progress.finished:
            return job.report()
        if progress.retry_after is None:
            raise ApiError("reconciliation", "the job stopped without finishing and without a reason")
        if progress.retry_after > max_wait:
            raise TransientError("reconciliation", progress.detail or "throttled", retry_after=progress.retry_after)
        sleep(progress.retry_after)


def _outside(period: Period, day: str) -> bool:
    """Whether a raw ``YYYY-MM-DD`` lies outside the period; an unreadable date is not known to."""
    try:
        return not period.contains(date.fromisoformat(day))
    except ValueError:
        return False

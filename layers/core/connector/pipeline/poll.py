"""The hourly poll: list each enabled connection's candidate orders, store them, queue one export per order.

Order of work per connection (architecture.md §1, §5):
1. check the credentials (sevDesk token and bookkeeping version, Billbee access); a broken connection is marked
   ERROR and skipped, the others go on;
2. list ``GET /orders`` (start date, states, shops, ``tag=<export tag>&excludeTags=true``) page by page, by
   ``minimumBillBeeOrderId`` from the last order seen, so tagging while listing shifts nothing; for each page, read
   its records in one batch, fetch the invoice positions of the orders that need them from ``GET /orders/invoices``
   (VAT rate of shipping and fees), write or refresh one record per order that changed, and queue one SQS message
   per order to export (batches of 10), so exports start while the listing goes on;
3. a listing that reaches its time budget stops after a page and keeps its place (``LISTING``): the next poll
   continues there, so a year of history is listed over as many runs as it takes and every run finishes;
4. once a listing is complete: open records whose orders left the filters, credit notes from the invoice list, and
   exported orders cancelled since.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connector.billbee.invoices import InvoiceIndex, is_invoice, printed_number_matches
from connector.billbee.models import InvoiceDetails, Order
from connector.billbee.problems import UnreadableOrder, order_fields
from connector.bookkeeping.voucher import is_credit_note
from connector.errors import ApiError
from connector.observability import logger
from connector.pipeline.connection import BROKEN, check_sevdesk_account, mark_broken
from connector.pipeline.credit_notes import order_of_invoice, storno_order
from connector.pipeline.decisions import Act, listed_order, unlisted_order
from connector.pipeline.filters import filter_mismatch
from connector.pipeline.progress import listing_left
from connector.pipeline.queue import enqueue_exports
from connector.pipeline.runtime import ConnectionClients, Runtime
from connector.settings.model import ConnectionSettings, CreditNotes
from connector.store.dynamo import ConflictError, StoredConnection
from connector.store.records import ExportState, OrderRecord, data_hash

DONE_OR_BUSY = (ExportState.EXPORTED, ExportState.EXPORTING, ExportState.HANDLED)
REQUEUE_AFTER = timedelta(minutes=15)  # a PENDING order whose message got lost is queued again
CREDIT_NOTE_OVERLAP = timedelta(hours=6)  # credit notes are looked for back to the last poll minus this
INVOICE_MARGIN = timedelta(hours=3)  # around a page's invoice times: Billbee's naive times may be read in UTC
# The last page's invoice read also serves the credit notes when it reaches back at most this much further; a longer
# look-back is read on its own, keeping credit notes only, so no list of a year's invoices is ever held.
COVER_REACH = timedelta(days=2)
CANCELLED = 8  # Billbee's order state "Storniert"
CREDIT_NOTES_OFF = "credit notes are booked by hand (the connection's setting sevdesk.creditNotes is off)"


@dataclass
class PollSummary:
    connection_id: str
    status: str = "OK"
    error: str | None = None
    listed: int = 0
    queued: int = 0
    skipped: int = 0
    unchanged: int = 0
    unreadable: int = 0  # orders Billbee sent that the connector cannot read (each has its own record)
    problems: list[str] = field(default_factory=list)  # unreadable orders without a usable id, named here
    credit_notes_pending: int = 0  # credit notes whose order could not be looked up: the next poll looks back again
    complete: bool = True  # False: the listing stopped at its budget and continues in the next poll
    listing: dict[str, Any] | None = None  # an unfinished listing's progress (orders and pages so far)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connectionId": self.connection_id,
            "status": self.status,
            "error": self.error,
            "listed": self.listed,
            "queued": self.queued,
            "skipped": self.skipped,
            "unchanged": self.unchanged,
            "unreadable": self.unreadable,
            "problems": self.problems,
            "creditNotesPending": self.credit_notes_pending,
            "complete": self.complete,
            "listing": self.listing,
        }


@dataclass
class Candidates:
    orders: list[dict[str, Any]]  # readable orders that match the filters, as JSON (parsed, then dumped)
    unreadable: list[UnreadableOrder]  # orders the models cannot read (Billbee's filters selected them)


def unreadable_filter_mismatch(raw: Any, settings: ConnectionSettings) -> bool:
    """Best effort for an order the models cannot read: leave it out when its readable parts show the connection
    does not want it (another state, or the export tag), so a bad order outside the filters raises no alarm."""
    if not isinstance(raw, dict):
        return False
    state = raw.get("State")
    if isinstance(state, int) and state not in settings.general.order_state_ids:
        return True
    tags = raw.get("Tags")
    if isinstance(tags, list):
        wanted = settings.export_tag.casefold()
        return any(isinstance(t, str) and t.casefold() == wanted for t in tags)
    return False


@dataclass
class PageCandidates:
    orders: list[Order]  # readable orders the connection's filters keep
    unreadable: list[UnreadableOrder]
    left_out: dict[str, int]  # orders Billbee sent that the connector's own filters dropped, by filter


def page_candidates(
    items: list[Order], unreadable: list[UnreadableOrder], settings: ConnectionSettings
) -> PageCandidates:
    """One page's candidates: Billbee's filters are applied again on this side (an unbound array parameter, manual
    orders, the start date's zone must never cost a wrong export)."""
    kept: list[Order] = []
    left_out: dict[str, int] = {}
    for order in items:
        mismatch = filter_mismatch(order, settings)
        if mismatch is None:
            kept.append(order)
        else:
            left_out[mismatch.split(",")[0]] = left_out.get(mismatch.split(",")[0], 0) + 1
    bad = [b for b in unreadable if not unreadable_filter_mismatch(b.raw, settings)]
    return PageCandidates(kept, bad, left_out)


def order_query(settings: ConnectionSettings) -> dict[str, Any]:
    """The filters of the candidates' listing. Manual orders have no shop, and a shopId filter would drop them
    (billbee-api.md §10.7, unverified): when they are wanted, the listing has no shop filter and it is applied
    here."""
    general = settings.general
    shop_filter = general.shop_ids if general.shop_ids and not general.include_manual_orders else None
    return {"min_order_date": general.start_date, "shop_ids": shop_filter, "state_ids": general.order_state_ids,
            "tag": settings.export_tag, "exclude_tags": True}


def list_candidates(clients: ConnectionClients, settings: ConnectionSettings) -> Candidates:
    """Every candidate at once (the preflight's view; the poll lists page by page, ``Poller._list``)."""
    raw_orders: dict[int, dict[str, Any]] = {}
    unreadable: dict[int | str, UnreadableOrder] = {}
    left_out: dict[str, int] = {}
    for page in clients.billbee.iter_order_pages(**order_query(settings)):
        found = page_candidates(page.items, page.unreadable, settings)
        for order in found.orders:
            raw_orders[order.bill_bee_order_id] = order.model_dump(mode="json", by_alias=True)
        for bad in found.unreadable:
            unreadable[bad.order_id if bad.order_id is not None else f"page{page.page}-{len(unreadable)}"] = bad
        for name, count in found.left_out.items():
            left_out[name] = left_out.get(name, 0) + count
    if left_out:
        logger.info("orders left out by the connector's own filters", extra={"left_out": left_out})
    return Candidates(list(raw_orders.values()), list(unreadable.values()))


@dataclass
class Listing:
    """Where a listing of the candidates stands, kept in the table between polls (``LISTING``).

    Billbee's ids are "in sequence" [CS SDK], so each next page is asked for with ``minimumBillBeeOrderId`` above
    the highest id seen, page 1: orders that leave the list meanwhile (tagged by their export) shift nothing. Whether
    Billbee sorts a page by id is undocumented: a page that is not ascending, or that holds ids below the minimum,
    switches the listing to plain page numbers of the query it stopped in (``mode``), logged as the reading met."""

    filters: str  # the connection's filters this listing was started for
    started_at: str
    min_id: int | None = None
    page: int = 1
    mode: str = "ascending"  # or "pages"
    listed: int = 0
    pages: int = 0
    queued: int = 0
    pages_left: int | None = None  # Billbee's TotalPages of the query the last page came from, minus that page
    page_size: int | None = None

    @classmethod
    def resume(cls, item: dict[str, Any] | None, filters: str, now: str) -> tuple[Listing, bool]:
        """The stored listing if it was started for these filters, else a new one; True if new."""
        if item is not None and item.get("filters") == filters:
            return cls(**item), False
        return cls(filters=filters, started_at=now), True

    def advance(self, ids: list[int], total_pages: int | None = None, page_size: int | None = None) -> None:
        self.pages += 1
        self.listed += len(ids)
        self.page_size = page_size
        self.pages_left = None if total_pages is None else max(0, total_pages - self.page)
        if self.mode == "ascending" and ids and ids == sorted(ids) and (self.min_id is None or ids[0] >= self.min_id):
            self.min_id, self.page = ids[-1] + 1, 1
            return
        if self.mode == "ascending" and ids:
            logger.warning("Billbee's order page is not in ascending id order; continuing by page numbers",
                           extra={"minimumBillBeeOrderId": self.min_id, "page": self.page})
            self.mode = "pages"
        self.page += 1

    def as_dict(self) -> dict[str, Any]:
        return {"filters": self.filters, "started_at": self.started_at, "min_id": self.min_id, "page": self.page,
                "mode": self.mode, "listed": self.listed, "pages": self.pages, "queued": self.queued,
                "pages_left": self.pages_left, "page_size": self.page_size}

    def progress(self) -> dict[str, Any]:
        return {"startedAt": self.started_at, "ordersListed": self.listed, "pages": self.pages,
                "ordersQueued": self.queued, "ordersLeftToList": listing_left(self.as_dict())}


def filters_key(settings: ConnectionSettings) -> str:
    query = order_query(settings)
    return json.dumps({**query, "min_order_date": str(query["min_order_date"]),
                       "manual": settings.general.include_manual_orders,
                       "shops": settings.general.shop_ids}, sort_keys=True)


class Poller:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.store = runtime.store
        # The invoice list the last page of a listing read, open-ended from a point: the credit notes' read too.
        self._covering: tuple[datetime, InvoiceIndex] | None = None
        self._last_ok: str | None = None  # the connection's last complete poll, read once per poll

    def poll_all(self, deadline: float | None = None) -> list[PollSummary]:
        """Every enabled connection; ``deadline`` (``time.monotonic()``): when the poll should be done. Each connection
        gets an equal share of what is left when its turn comes, so one connection's backfill never takes another's
        hourly run; a connection that finishes early leaves its time to the next."""
        summaries = []
        connections = [c for c in self.runtime.store.list_connections() if c.settings.enabled]
        for index, stored in enumerate(connections):
            share = None
            if deadline is not None:
                share = time.monotonic() + max(0.0, deadline - time.monotonic()) / (len(connections) - index)
            try:
                summary = self.poll_connection(stored, share)
            except Exception as exc:  # one connection failing never stops another
                logger.exception("poll failed", extra={"connection": stored.settings.connection_id})
                summary = PollSummary(
                    stored.settings.connection_id, status="FAILED", error=f"internal error: {type(exc).__name__}: {exc}"
                )
            summaries.append(summary)
            self._record_poll(summary)
        return summaries

    def _record_poll(self, summary: PollSummary) -> None:
        """Every poll's outcome, failed ones included, is what the status API shows as the connection's last poll."""
        try:
            self.store.set_cursor(summary.connection_id, self.store.clock(), summary.as_dict())
        except Exception:  # noqa: BLE001 - the outcome is in the log and the metric even when this write fails
            logger.exception("poll outcome not stored", extra={"connection": summary.connection_id})

    def poll_connection(self, stored: StoredConnection, deadline: float | None = None) -> PollSummary:
        settings = stored.settings
        connection_id = settings.connection_id
        summary = PollSummary(connection_id)
        try:
            credentials = self.runtime.secrets.get(stored.secret_id)
            clients = self.runtime.clients_for(connection_id, credentials)
            clients.checked_version = None  # re-check each hour: the account may have changed
            check_sevdesk_account(clients)
            listing, fresh = Listing.resume(self.store.get_listing(connection_id), filters_key(settings),
                                            self.store.clock())
            self._covering = None
            self._last_ok = self.store.last_ok_poll(connection_id)
            seen = self._list(clients, settings, listing, summary, deadline)
        except BROKEN as exc:
            summary.status, summary.error = "ERROR", mark_broken(self.runtime, stored, exc)
            return summary
        except ApiError as exc:
            # What was listed so far is stored and queued; the next poll continues from where this one stopped.
            summary.status, summary.error = "FAILED", str(exc)
            logger.error("poll could not list orders", extra={"connection": connection_id, "error": str(exc)})
            return summary
        self.store.set_connection_status(connection_id, "OK", None)
        if not summary.complete:
            summary.listing = listing.progress()
            logger.info("poll stopped at its budget; the next one continues the listing",
                        extra={**summary.as_dict()})
            return summary
        self.store.set_listing(connection_id, None)
        to_queue: list[int] = []
        if fresh:
            # The whole listing ran in this poll, so ``seen`` is every order Billbee lists for the connection.
            self._reconcile_missing(settings, seen, to_queue)
        self._credit_note_pass(clients, settings, summary, to_queue)
        enqueue_exports(self.runtime, connection_id, to_queue, reason="poll")
        summary.queued += len(to_queue)
        self._cancelled_after_export(clients, settings, summary)
        logger.info("poll finished", extra=summary.as_dict())
        return summary

    def _list(
        self,
        clients: ConnectionClients,
        settings: ConnectionSettings,
        listing: Listing,
        summary: PollSummary,
        deadline: float | None,
    ) -> set[int]:
        """List, store and queue page by page from where ``listing`` stands, until the last page or the budget
        (time, or ``POLL_MAX_PAGES``); the place is stored after each page. Returns the ids listed in this call."""
        config = self.runtime.config
        query = order_query(settings)
        seen: set[int] = set()
        pages = 0
        slowest = 0.0  # the longest page so far: the next one is not started unless it can finish in the budget
        while True:
            started = time.monotonic()
            page = clients.billbee.list_orders(**query, minimum_order_id=listing.min_id, page=listing.page,
                                               page_size=config.billbee_page_size)
            found = page_candidates(page.items, page.unreadable, settings)
            if found.left_out:
                logger.info("orders left out by the connector's own filters", extra={"left_out": found.left_out})
            self._set_aside(settings, found.unreadable, summary)
            # The last page's invoice list also serves the credit notes (one read: Billbee throttles the list to one
            # a minute per page and minInvoiceDate).
            queued = self._take_page(clients, settings, found.orders, summary,
                                     cover=self._credit_since(settings) if page.is_last else None)
            enqueue_exports(self.runtime, settings.connection_id, queued, reason="poll", mark=False)
            summary.queued += len(queued)
            summary.listed += len(found.orders) + len(found.unreadable)
            ids = [o.bill_bee_order_id for o in page.items] + [b.order_id for b in page.unreadable
                                                               if b.order_id is not None]
            seen.update(ids)
            listing.queued += len(queued)
            listing.advance([o.bill_bee_order_id for o in page.items], page.total_pages, page.page_size)
            pages += 1
            if page.is_last or not page.items and not page.unreadable:
                return seen
            self.store.set_listing(settings.connection_id, listing.as_dict())
            now = time.monotonic()
            slowest = max(slowest, now - started)
            if (deadline is not None and now + slowest >= deadline) or (
                    config.poll_max_pages and pages >= config.poll_max_pages):
                summary.complete = False
                return seen

    def _take_page(
        self,
        clients: ConnectionClients,
        settings: ConnectionSettings,
        orders: list[Order],
        summary: PollSummary,
        cover: datetime | None = None,
    ) -> list[int]:
        """One page's candidates: their records in one batch read, the invoice positions of those that need them,
        then each record created or refreshed where something changed. Returns the ids to queue."""
        records = self.store.get_orders(settings.connection_id, [o.bill_bee_order_id for o in orders])
        invoices = self._invoice_details(clients, orders, records, cover)
        to_queue: list[int] = []
        for order in orders:
            order_id = order.bill_bee_order_id
            raw = order.model_dump(mode="json", by_alias=True)
            decision = self._upsert(settings, raw, invoices.get(order_id), records, order_id)
            if decision == "queue":
                to_queue.append(order_id)
            elif decision == "skipped":
                summary.skipped += 1
            else:
                summary.unchanged += 1
        return to_queue

    def _set_aside(self, settings: ConnectionSettings, unreadable: list[UnreadableOrder], summary: PollSummary) -> None:
        """Each order the models cannot read gets its own NEEDS_ATTENTION record naming the problem; the others go
        on. One without a usable id cannot have a record: it is named in the poll's summary (and the log)."""
        for bad in unreadable:
            summary.unreadable += 1
            reason = f"Billbee sent order data the connector cannot read: {bad.problem}"
            logger.warning("unreadable order", extra={"connection": settings.connection_id, "order": bad.order_id,
                                                      "problem": bad.problem})
            if bad.order_id is None:
                number = bad.raw.get("OrderNumber") if isinstance(bad.raw, dict) else None
                summary.problems.append(
                    f"an order without a usable BillBeeOrderId (order number {number or 'unknown'}): {bad.problem}"
                )
                continue
            raw = {**order_fields(bad.raw), "BillBeeOrderId": bad.order_id}
            digest = data_hash(raw, None)
            record = self.store.get_order(settings.connection_id, bad.order_id)
            if record is None:
                record = OrderRecord(
                    connection_id=settings.connection_id, order_id=bad.order_id, state=ExportState.NEEDS_ATTENTION,
                    order=raw, reason=reason, data_hash=digest,
                )
                self.store.create_order(record)
                continue
            if record.state in DONE_OR_BUSY:
                continue
            if record.state is ExportState.NEEDS_ATTENTION and record.data_hash == digest:
                continue
            record.state, record.reason = ExportState.NEEDS_ATTENTION, reason
            record.order, record.data_hash = raw, digest
            self._save_quietly(record)

    def _invoice_details(
        self,
        clients: ConnectionClients,
        orders: list[Order],
        records: dict[int, OrderRecord | None],
        cover: datetime | None = None,
    ) -> dict[int, dict[str, Any]]:
        """Invoice positions (with the VAT rate of shipping) for a page's orders whose record lacks them, from the
        invoice list around their invoice dates (a page of orders listed by id spans days, not the whole history).
        ``cover``: read from there on, open-ended, and keep the list for the credit notes (``_credit_note_pass``).

        The window is the invoices' own times widened by ``INVOICE_MARGIN``, not whole days: Billbee allows one read
        a minute per page and ``minInvoiceDate``, and consecutive pages of a busy day would otherwise ask alike."""
        wanted: list[Order] = []
        for order in orders:
            if not order.has_invoice or order.invoice_date is None:
                continue
            record = records.get(order.bill_bee_order_id)
            if record is None or record.invoice is None or record.state in (ExportState.SKIPPED,):
                wanted.append(order)
        dates = [o.invoice_date for o in wanted if o.invoice_date is not None]
        reach_from = min(dates) - INVOICE_MARGIN if dates else _naive(self.store.clock())
        if cover is not None and cover < reach_from - COVER_REACH:
            cover = None  # a long look-back (a first backfill's) is streamed by the credit-note pass instead
        if not wanted and cover is None:
            return {}
        since = min(dates) - INVOICE_MARGIN if dates else cover
        until = max(dates) + INVOICE_MARGIN if dates else None
        if cover is not None:
            since, until = min(since or cover, cover), None
        assert since is not None
        try:
            index = InvoiceIndex(clients.billbee.iter_invoices(since.replace(microsecond=0), until))
        except ApiError as exc:
            # Without positions an order can still be booked when all its lines share one rate (voucher.py); the
            # export also looks its invoice up once more.
            logger.warning("invoice list unavailable", extra={"error": str(exc)})
            return {}
        if cover is not None:
            self._covering = (since, index)
        details: dict[int, dict[str, Any]] = {}
        ways: dict[str, int] = {}
        for order in wanted:
            found, how = index.find(order)
            ways[how] = ways.get(how, 0) + 1
            if found is not None:
                details[order.bill_bee_order_id] = found.model_dump(mode="json", by_alias=True)
        if wanted:
            logger.info("invoice-list items matched", extra={"matched": ways})
        return details

    def _credit_since(self, settings: ConnectionSettings) -> datetime:
        """From when credit notes are looked for: the last complete poll minus six hours, never before the start."""
        last_ok = self._last_ok
        start = datetime.combine(settings.general.start_date, datetime.min.time())
        return start if last_ok is None else max(start, _naive(last_ok) - CREDIT_NOTE_OVERLAP)

    def _credit_note_pass(
        self, clients: ConnectionClients, settings: ConnectionSettings, summary: PollSummary, to_queue: list[int]
    ) -> None:
        """Credit notes issued since the last complete poll (minus six hours) whose Storno order the listing did not
        bring: their state is outside the filter (docs/settings.md, "Credit notes"). Read from the invoice list (the
        one the last page read, when it reaches back far enough); one that cannot be read keeps the window open
        (``credit_notes_pending``)."""
        since = self._credit_since(settings)
        if self._covering is not None and self._covering[0] <= since:
            index = self._covering[1]
        else:
            try:
                index = InvoiceIndex(i for i in clients.billbee.iter_invoices(since) if not is_invoice(i))
            except ApiError as exc:
                logger.warning("invoice list unavailable; credit notes wait for the next poll",
                               extra={"error": str(exc)})
                summary.credit_notes_pending += 1
                return
        for raw, invoice in self._credit_notes(clients, settings, index, summary):
            order_id = int(raw["BillBeeOrderId"])
            decision = self._upsert(settings, raw, invoice, {order_id: None}, order_id)
            if decision == "queue":
                to_queue.append(order_id)
            elif decision == "skipped":
                summary.skipped += 1

    def _credit_notes(
        self,
        clients: ConnectionClients,
        settings: ConnectionSettings,
        index: InvoiceIndex,
        summary: PollSummary,
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Credit notes (Stornorechnungen, Gutschriften) issued since the last poll whose orders the order list did
        not bring (the state filter does not apply to them: docs/settings.md), each with its invoice-list item.

        Each one's order is found by the item's ``BillbeeId`` or order number (``order_of_invoice``), else among the
        orders Billbee changed since the credit note's day (a Gutschrift has no order number, and ``BillbeeId`` may
        be the invoice's own id). One that cannot be looked up now keeps the look-back window open
        (``credit_notes_pending``), so the next poll searches back to it again: none is lost."""
        connection_id = settings.connection_id
        start = settings.general.start_date
        wanted: list[tuple[InvoiceDetails, Order | None]] = []
        for item in index.credit_notes():
            if item.invoice_date is not None and item.invoice_date.date() < start:
                continue
            if self.store.credit_note_order(connection_id, item.invoice_number):
                continue  # taken already: listed with the candidates, or by an earlier poll
            try:
                wanted.append((item, order_of_invoice(clients.billbee, item)))
            except ApiError as exc:
                logger.warning("credit note's order not read", extra={"invoice": item.invoice_number,
                                                                       "error": str(exc)})
                summary.credit_notes_pending += 1
        unresolved = [item for item, order in wanted if order is None]
        changed: list[Order] = []
        if unresolved:
            oldest = min((i.invoice_date for i in unresolved if i.invoice_date is not None), default=None)
            try:
                changed = self._orders_changed_since(clients, settings, oldest)
            except ApiError as exc:
                logger.warning("orders changed since the credit notes not listed", extra={"error": str(exc)})
                summary.credit_notes_pending += len(unresolved)
                wanted = [(item, order) for item, order in wanted if order is not None]
        found: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for item, order in wanted:
            if order is None:
                order = next((o for o in changed if printed_number_matches(item.invoice_number, o)), None)
                logger.info("credit note's order among the changed orders",
                            extra={"invoice": item.invoice_number, "found": order is not None})
            if order is None:
                summary.problems.append(f"credit note {item.invoice_number}: Billbee shows no order for it")
                continue
            if self.store.get_order(connection_id, order.bill_bee_order_id):
                continue
            if filter_mismatch(order, settings, credit_note=True) is not None:
                continue
            found.append((order.model_dump(mode="json", by_alias=True), item.model_dump(mode="json", by_alias=True)))
        return found

    @staticmethod
    def _orders_changed_since(
        clients: ConnectionClients, settings: ConnectionSettings, day: datetime | None
    ) -> list[Order]:
        since = (day or datetime.combine(settings.general.start_date, datetime.min.time())) - timedelta(days=1)
        pages = clients.billbee.iter_order_pages(min_order_date=settings.general.start_date, modified_after=since)
        return [order for page in pages for order in page.items]

    def _cancelled_after_export(
        self, clients: ConnectionClients, settings: ConnectionSettings, summary: PollSummary
    ) -> None:
        """An order this connector exported that Billbee now shows as cancelled (state 8) without a credit note: the
        books still hold its revenue. Cancelling an invoiced order in Billbee needs a Stornorechnung (billbee-api.md
        §9); until one exists the order says so, every hour, and nothing is booked on a guess.

        The cost follows what changed: the cancelled, tagged orders Billbee changed since the last complete poll
        (minus six hours; all of them in the first poll of a UTC day, in case a cancellation did not move
        ``LastModifiedAt``), plus the ones still waiting for their credit note, which are read again one by one."""
        connection_id = settings.connection_id
        since = self._cancelled_since(settings)
        waiting = self.store.get_open_cancellations(connection_id)
        try:
            pages = clients.billbee.iter_order_pages(
                min_order_date=settings.general.start_date, state_ids=[CANCELLED], tag=settings.export_tag,
                exclude_tags=False, modified_after=since,
            )
            orders = {o.bill_bee_order_id: o for page in pages for o in page.items if o.state == CANCELLED}
        except ApiError as exc:
            logger.warning("cancelled orders not checked", extra={"error": str(exc)})
            return
        logger.info("cancelled orders checked", extra={"since": since.isoformat() if since else "start date",
                                                        "listed": len(orders), "waiting": len(waiting)})
        still_waiting: set[int] = set()
        records = self.store.get_orders(connection_id, [*orders, *(waiting - orders.keys())])
        for order_id in sorted(waiting - orders.keys()):
            record = records.get(order_id)
            if record is None or record.state is not ExportState.EXPORTED:
                continue
            try:
                order = clients.billbee.get_order(order_id)
            except ApiError as exc:
                logger.warning("cancelled order not read again", extra={"order": order_id, "error": str(exc)})
                still_waiting.add(order_id)
                summary.problems.append(record.reason or f"order {order_id}: cancelled after its export")
                continue
            if order.state == CANCELLED:
                orders[order_id] = order
            elif record.reason == cancelled_without_credit_note(order_id, record.invoice_number):
                record.reason = None  # cancelled no more
                self._save_quietly(record)
        for order in orders.values():
            record = records.get(order.bill_bee_order_id)
            if record is None or record.state is not ExportState.EXPORTED:
                continue
            if self._cancellation_open(clients, settings, order, record, summary):
                still_waiting.add(order.bill_bee_order_id)
        if still_waiting != waiting:
            self.store.set_open_cancellations(connection_id, still_waiting)

    def _cancellation_open(
        self, clients: ConnectionClients, settings: ConnectionSettings, order: Order, record: OrderRecord,
        summary: PollSummary,
    ) -> bool:
        """Whether this exported, cancelled order still waits for its credit note (said in the summary and on its
        record); False once a credit note or Storno order covers it."""
        stored_invoice = InvoiceDetails.model_validate(record.invoice) if record.invoice else None
        if record.credit_note_of is not None or is_credit_note(order, stored_invoice):
            return False  # a Storno order set to "storniert" is the cancellation itself
        problem = cancelled_without_credit_note(order.bill_bee_order_id, record.invoice_number)
        try:
            # Linked by an exported credit note, or its Storno order exists (its export links the two).
            covered = bool(self.store.credit_notes_of(settings.connection_id, order.bill_bee_order_id)) or (
                storno_order(clients.billbee, order) is not None)
        except ApiError as exc:
            logger.warning("Storno order not looked up", extra={"order": order.bill_bee_order_id, "error": str(exc)})
            return True
        if covered:
            if record.reason == problem:
                record.reason = None
                self._save_quietly(record)
            return False
        summary.problems.append(problem)
        if record.reason != problem:
            record.reason = problem
            self._save_quietly(record)
        return True

    def _cancelled_since(self, settings: ConnectionSettings) -> datetime | None:
        """From when cancelled orders are listed: the last complete poll minus six hours; None (every one since the
        start date) without one, or when that poll was on an earlier UTC day."""
        last_ok = self._last_ok
        if last_ok is None or last_ok[:10] != self.store.clock()[:10]:
            return None
        return _naive(last_ok) - CREDIT_NOTE_OVERLAP

    def _upsert(
        self,
        settings: ConnectionSettings,
        raw: dict[str, Any],
        invoice: dict[str, Any] | None,
        records: dict[int, OrderRecord | None],
        order_id: int,
    ) -> str:
        """Create or refresh one candidate's record (kept in ``records``) and say whether it must be queued."""
        order = Order.model_validate(raw)
        connection_id = settings.connection_id
        record = records.get(order_id)
        # Without fresh invoice details (only fetched for new records) compare with the ones stored, or every known
        # record would look changed and a NEEDS_ATTENTION order would be retried each hour.
        digest = data_hash(raw, invoice if invoice is not None or record is None else record.invoice)
        excluded = None
        if settings.sevdesk.credit_notes is CreditNotes.OFF and is_credit_note(
            order, InvoiceDetails.model_validate(invoice) if invoice else None
        ):
            excluded = CREDIT_NOTES_OFF
        if record is None:
            first = listed_order(None, has_invoice=order.has_invoice, changed=True, lease_expired=False,
                                 enqueue_due=True, attempts=0, max_attempts=self.runtime.config.max_attempts,
                                 excluded=excluded)
            record = OrderRecord(
                connection_id=connection_id,
                order_id=order.bill_bee_order_id,
                state=ExportState.PENDING if first.act is Act.QUEUE else ExportState.SKIPPED,
                enqueued_at=self.store.clock() if first.act is Act.QUEUE else None,  # queued right after this write
                order=raw,
                invoice=invoice,
                # The voucher's duplicate key is Billbee's printed string (fixed once; the export fixes it from
                # CreateInvoice when the invoice list had none).
                invoice_number=(invoice or {}).get("InvoiceNumber") if order.has_invoice else None,
                invoice_number_source="invoiceList" if (invoice or {}).get("InvoiceNumber") else None,
                reason=first.reason,
                data_hash=digest,
            )
            if not self.store.create_order(record):
                return "unchanged"  # created concurrently (a manual export); that one carries on
            if record.invoice_number and is_credit_note(order, InvoiceDetails.model_validate(invoice) if invoice
                                                          else None):
                self.store.remember_credit_note(connection_id, record.invoice_number, order_id)
            records[order_id] = record
            return "queue" if first.act is Act.QUEUE else "skipped"

        changed = digest != record.data_hash
        step = listed_order(
            record.state, has_invoice=order.has_invoice, changed=changed,
            lease_expired=record.state is ExportState.EXPORTING and record.lease_until < self.store.epoch(),
            enqueue_due=self._enqueue_due(record), attempts=record.attempts,
            max_attempts=self.runtime.config.max_attempts, last_error=record.last_error, excluded=excluded,
            reason=record.reason,
        )
        if step.write:
            record.order = raw
            if invoice is not None:
                record.invoice = invoice
                if record.invoice_number is None and invoice.get("InvoiceNumber"):
                    record.invoice_number, record.invoice_number_source = invoice["InvoiceNumber"], "invoiceList"
            record.data_hash = digest
        if step.act is Act.SKIP:
            record.state, record.reason = ExportState.SKIPPED, step.reason
        elif step.act is Act.GIVE_UP:
            record.state, record.reason = ExportState.NEEDS_ATTENTION, step.reason
        elif step.act is Act.QUEUE and step.write:
            record.state, record.reason = ExportState.PENDING, None
            record.enqueued_at = self.store.clock()  # queued right after this write
        if step.write and not self._save_quietly(record):
            return "unchanged"  # someone else changed it meanwhile; they carry on
        return {Act.QUEUE: "queue", Act.SKIP: "skipped"}.get(step.act, "unchanged")

    def _enqueue_due(self, record: OrderRecord) -> bool:
        if not record.enqueued_at:
            return True
        enqueued = datetime.fromisoformat(record.enqueued_at.replace("Z", "+00:00"))
        now = datetime.fromisoformat(self.store.clock().replace("Z", "+00:00"))
        return now - enqueued > REQUEUE_AFTER

    def _save_quietly(self, record: OrderRecord) -> bool:
        try:
            self.store.save(record)
        except ConflictError:
            return False
        return True

    def _reconcile_missing(self, settings: ConnectionSettings, listed: set[int], to_queue: list[int]) -> None:
        """Open records whose order is no longer listed (``decisions.unlisted_order``)."""
        queued = set(to_queue)
        now = self.store.epoch()
        for state in (ExportState.PENDING, ExportState.FAILED, ExportState.EXPORTING):
            # Only the records of orders not listed are read (in batches): after a listing that is nearly all of none.
            unlisted = [i for i in self.store.ids_by_state(settings.connection_id, state)
                        if i not in listed and i not in queued]
            for record in self.store.get_orders(settings.connection_id, unlisted).values():
                if record is None or record.state is not state:
                    continue  # moved on since the index was read
                step = unlisted_order(record.origin, attempts=record.attempts,
                                      max_attempts=self.runtime.config.max_attempts,
                                      voucher_id=record.steps.voucher_id, tagged=record.steps.tagged,
                                      exporting=state is ExportState.EXPORTING, lease_expired=record.lease_until < now)
                if step.act is Act.SKIP:
                    record.state, record.reason = ExportState.SKIPPED, step.reason
                    self._save_quietly(record)
                elif step.act is Act.QUEUE:
                    to_queue.append(record.order_id)


def cancelled_without_credit_note(order_id: int, invoice_number: str | None) -> str:
    """The problem an exported order cancelled in Billbee without a Stornorechnung reports, each hour."""
    return (f"order {order_id} (invoice {invoice_number}) was cancelled after its export, but Billbee holds no "
            "Stornorechnung for it: create one in Billbee, then it is booked")


def _naive(stamp: str) -> datetime:
    """A stored UTC timestamp as Billbee's naive local time, roughly (the overlap covers the zone)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=None)

"""The hourly poll: list each enabled connection's candidate orders, store them, queue one export per order.

Order of work per connection (architecture.md §1, §5):
1. check the credentials (sevDesk token and bookkeeping version, Billbee access); a broken connection is marked
   ERROR and skipped, the others go on;
2. list every page of ``GET /orders`` (start date, states, shops, ``tag=<export tag>&excludeTags=true``) and collect
   the ids first - tagging while paging would shift the pages;
3. fetch the invoice positions of new candidates from ``GET /orders/invoices`` (VAT rate of shipping and fees);
4. write or refresh one record per order (conditional writes) and decide whether it needs an export;
5. send one SQS message per order to export (batches of 10).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connector.billbee.invoices import InvoiceIndex, printed_number_matches
from connector.billbee.models import InvoiceDetails, Order
from connector.billbee.problems import UnreadableOrder, order_fields
from connector.bookkeeping.voucher import is_credit_note
from connector.errors import ApiError
from connector.observability import logger
from connector.pipeline.connection import BROKEN, check_sevdesk_account, mark_broken
from connector.pipeline.credit_notes import order_of_invoice, storno_order
from connector.pipeline.decisions import Act, listed_order, unlisted_order
from connector.pipeline.filters import filter_mismatch
from connector.pipeline.queue import enqueue_exports
from connector.pipeline.runtime import ConnectionClients, Runtime
from connector.settings.model import ConnectionSettings, CreditNotes
from connector.store.dynamo import ConflictError, StoredConnection
from connector.store.records import ExportState, OrderRecord, data_hash

DONE_OR_BUSY = (ExportState.EXPORTED, ExportState.EXPORTING, ExportState.HANDLED)
REQUEUE_AFTER = timedelta(minutes=15)  # a PENDING order whose message got lost is queued again
CREDIT_NOTE_OVERLAP = timedelta(hours=6)  # credit notes are looked for back to the last poll minus this
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


def list_candidates(clients: ConnectionClients, settings: ConnectionSettings) -> Candidates:
    general = settings.general
    # Manual orders have no shop, and a shopId filter would drop them (billbee-api.md §10.7, unverified): when they
    # are wanted, list without the shop filter and apply it here.
    shop_filter = general.shop_ids if general.shop_ids and not general.include_manual_orders else None
    raw_orders: dict[int, dict[str, Any]] = {}
    unreadable: dict[int | str, UnreadableOrder] = {}
    left_out: dict[str, int] = {}
    for page in clients.billbee.iter_order_pages(
        min_order_date=general.start_date,
        shop_ids=shop_filter,
        state_ids=general.order_state_ids,
        tag=settings.export_tag,
        exclude_tags=True,
    ):
        for order in page.items:
            mismatch = filter_mismatch(order, settings)
            if mismatch is None:
                raw_orders[order.bill_bee_order_id] = order.model_dump(mode="json", by_alias=True)
            else:
                left_out[mismatch.split(",")[0]] = left_out.get(mismatch.split(",")[0], 0) + 1
        for bad in page.unreadable:
            if not unreadable_filter_mismatch(bad.raw, settings):
                unreadable[bad.order_id if bad.order_id is not None else f"page{page.page}-{len(unreadable)}"] = bad
    if left_out:
        # Billbee returned orders its own filters should have dropped (the array form not bound, manual orders,
        # the start date's zone): the connector's filters hold either way; logged so the reading is known.
        logger.info("orders left out by the connector's own filters", extra={"left_out": left_out})
    return Candidates(list(raw_orders.values()), list(unreadable.values()))


class Poller:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.store = runtime.store

    def poll_all(self) -> list[PollSummary]:
        summaries = []
        for stored in self.runtime.store.list_connections():
            if not stored.settings.enabled:
                continue
            try:
                summary = self.poll_connection(stored)
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

    def poll_connection(self, stored: StoredConnection) -> PollSummary:
        settings = stored.settings
        summary = PollSummary(settings.connection_id)
        try:
            credentials = self.runtime.secrets.get(stored.secret_id)
            clients = self.runtime.clients_for(settings.connection_id, credentials)
            clients.checked_version = None  # re-check each hour: the account may have changed
            check_sevdesk_account(clients)
            listed = list_candidates(clients, settings)
        except BROKEN as exc:
            summary.status, summary.error = "ERROR", mark_broken(self.runtime, stored, exc)
            return summary
        except ApiError as exc:
            summary.status, summary.error = "FAILED", str(exc)
            logger.error("poll could not list orders", extra={"connection": settings.connection_id, "error": str(exc)})
            return summary
        self.store.set_connection_status(settings.connection_id, "OK", None)
        candidates = listed.orders
        summary.listed = len(candidates) + len(listed.unreadable)
        self._set_aside(settings, listed.unreadable, summary)

        # Each candidate's record is read once and handed on (invoice check, upsert, marking it queued).
        records = {
            int(raw["BillBeeOrderId"]): self.store.get_order(settings.connection_id, int(raw["BillBeeOrderId"]))
            for raw in candidates
        }
        invoices, index = self._invoice_details(clients, settings, candidates, records)
        for raw, invoice in self._credit_notes(clients, settings, index, records, invoices, summary):
            candidates.append(raw)
            invoices[int(raw["BillBeeOrderId"])] = invoice
        to_queue: list[int] = []
        for raw in candidates:
            order_id = int(raw["BillBeeOrderId"])
            decision = self._upsert(settings, raw, invoices.get(order_id), records, order_id)
            if decision == "queue":
                to_queue.append(order_id)
            elif decision == "skipped":
                summary.skipped += 1
            else:
                summary.unchanged += 1
        still_listed = {int(r["BillBeeOrderId"]) for r in candidates}
        still_listed |= {bad.order_id for bad in listed.unreadable if bad.order_id is not None}
        self._reconcile_missing(settings, still_listed, to_queue)
        enqueue_exports(self.runtime, settings.connection_id, to_queue, reason="poll", records=records)
        summary.queued = len(to_queue)
        self._cancelled_after_export(clients, settings, summary)
        logger.info("poll finished", extra=summary.as_dict())
        return summary

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
        settings: ConnectionSettings,
        candidates: list[dict[str, Any]],
        records: dict[int, OrderRecord | None],
    ) -> tuple[dict[int, dict[str, Any]], InvoiceIndex]:
        """Invoice positions (with the VAT rate of shipping) for candidates whose record lacks them, and the invoice
        list itself: it also holds the credit notes issued since the last poll (``_credit_notes``). One list, read
        from the oldest invoice a candidate needs or the last poll (minus six hours), whichever is older."""
        wanted: list[Order] = []
        for raw in candidates:
            order = Order.model_validate(raw)
            if not order.has_invoice or order.invoice_date is None:
                continue
            record = records.get(order.bill_bee_order_id)
            if record is None or record.invoice is None or record.state in (ExportState.SKIPPED,):
                wanted.append(order)
        last_ok = self.store.last_ok_poll(settings.connection_id)
        start = datetime.combine(settings.general.start_date, datetime.min.time())
        since = start if last_ok is None else max(start, _naive(last_ok) - CREDIT_NOTE_OVERLAP)
        if wanted:
            oldest = min(o.invoice_date for o in wanted if o.invoice_date is not None)
            since = min(since, oldest.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1))
        try:
            index = InvoiceIndex(clients.billbee.iter_invoices(since))
        except ApiError as exc:
            # Without positions an order can still be booked when all its lines share one rate (voucher.py); the
            # export also looks its invoice up once more. Credit notes wait for the next poll.
            logger.warning("invoice list unavailable", extra={"error": str(exc)})
            return {}, InvoiceIndex([])
        details: dict[int, dict[str, Any]] = {}
        ways: dict[str, int] = {}
        for order in wanted:
            found, how = index.find(order)
            ways[how] = ways.get(how, 0) + 1
            if found is not None:
                details[order.bill_bee_order_id] = found.model_dump(mode="json", by_alias=True)
        logger.info("invoice-list items matched", extra={"matched": ways})
        return details, index

    def _credit_notes(
        self,
        clients: ConnectionClients,
        settings: ConnectionSettings,
        index: InvoiceIndex,
        records: dict[int, OrderRecord | None],
        invoices: dict[int, dict[str, Any]],
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
        listed = {record.invoice_number for record in records.values() if record is not None}
        listed |= {str(i.get("InvoiceNumber")) for i in invoices.values() if i.get("InvoiceNumber")}
        wanted: list[tuple[InvoiceDetails, Order | None]] = []
        for item in index.credit_notes():
            if item.invoice_date is not None and item.invoice_date.date() < start:
                continue
            if item.invoice_number in listed or self.store.credit_note_order(connection_id, item.invoice_number):
                continue  # a candidate already, or taken by an earlier poll
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
            if order.bill_bee_order_id in records or self.store.get_order(connection_id, order.bill_bee_order_id):
                continue
            if filter_mismatch(order, settings, credit_note=True) is not None:
                continue
            records[order.bill_bee_order_id] = None
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
        §9); until one exists the order says so, every hour, and nothing is booked on a guess."""
        try:
            pages = list(clients.billbee.iter_order_pages(
                min_order_date=settings.general.start_date, state_ids=[CANCELLED], tag=settings.export_tag,
                exclude_tags=False,
            ))
        except ApiError as exc:
            logger.warning("cancelled orders not checked", extra={"error": str(exc)})
            return
        for order in (o for page in pages for o in page.items):
            record = self.store.get_order(settings.connection_id, order.bill_bee_order_id)
            if record is None or record.state is not ExportState.EXPORTED:
                continue
            stored_invoice = InvoiceDetails.model_validate(record.invoice) if record.invoice else None
            if record.credit_note_of is not None or is_credit_note(order, stored_invoice):
                continue  # a Storno order set to "storniert" is the cancellation itself
            problem = (
                f"order {order.bill_bee_order_id} (invoice {record.invoice_number}) was cancelled after its export, "
                "but Billbee holds no Stornorechnung for it: create one in Billbee, then it is booked"
            )
            try:
                # Linked by an exported credit note, or its Storno order exists (its export links the two).
                covered = bool(self.store.credit_notes_of(settings.connection_id, order.bill_bee_order_id)) or (
                    storno_order(clients.billbee, order) is not None)
            except ApiError as exc:
                logger.warning("Storno order not looked up", extra={"order": order.bill_bee_order_id,
                                                                     "error": str(exc)})
                continue
            if covered:
                if record.reason == problem:
                    record.reason = None
                    self._save_quietly(record)
                continue
            summary.problems.append(problem)
            if record.reason != problem:
                record.reason = problem
                self._save_quietly(record)

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
            for record in self.store.all_by_state(settings.connection_id, state):
                if record.order_id in listed or record.order_id in queued:
                    continue
                step = unlisted_order(record.origin, attempts=record.attempts,
                                      max_attempts=self.runtime.config.max_attempts,
                                      voucher_id=record.steps.voucher_id, tagged=record.steps.tagged,
                                      exporting=state is ExportState.EXPORTING, lease_expired=record.lease_until < now)
                if step.act is Act.SKIP:
                    record.state, record.reason = ExportState.SKIPPED, step.reason
                    self._save_quietly(record)
                elif step.act is Act.QUEUE:
                    to_queue.append(record.order_id)


def _naive(stamp: str) -> datetime:
    """A stored UTC timestamp as Billbee's naive local time, roughly (the overlap covers the zone)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=None)
